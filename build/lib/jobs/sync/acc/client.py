"""A client for the Autodesk Platform Services (APS) REST APIs that an ACC project's files need: listing
folders, downloading and uploading through signed S3 URLs, new versions, folders, deletions.

Every path is relative to settings.APS_BASE_URL; the signed storage URLs APS hands out are followed as given,
without our Authorization header. 429 waits for Retry-After; 5xx and connection errors retry with exponential
backoff; anything else raises ApsError with Autodesk's code and detail. Access tokens come from a TokenSource
(jobs.sync.acc.tokens), which refreshes them under a lock shared by every worker.
"""

import logging
import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Protocol
from urllib.parse import quote

import requests
import requests.adapters
from django.conf import settings

log = logging.getLogger(__name__)

JSONAPI = {"version": "1.0"}
FILE_ITEM = "items:autodesk.bim360:File"
FILE_VERSION = "versions:autodesk.bim360:File"
DELETED_VERSION = "versions:autodesk.core:Deleted"
FOLDER = "folders:autodesk.bim360:Folder"
PAGE_LIMIT = 200
MIN_PART = 5 * 1024 * 1024
MAX_ATTEMPTS = 8
MAX_RETRY_AFTER = 120


class ApsError(Exception):
    """APS refused a request. The message carries Autodesk's status, code and detail, never a token."""

    def __init__(self, status: int, code: str, detail: str, *, retryable: bool = False) -> None:
        super().__init__(f"APS answered {status} {code}: {detail}".strip())
        self.status, self.code, self.detail, self.retryable = status, code, detail, retryable


class TokenSource(Protocol):
    def access_token(self) -> str: ...

    def refresh(self, rejected: str) -> str: ...


@dataclass
class Entry:
    """A folder or a file (an item and its tip version) in a project."""

    kind: str  # "folder" or "file"
    id: str
    name: str
    size: int = 0
    modified: datetime | None = None
    created: datetime | None = None
    version_id: str = ""
    storage_id: str = ""
    deleted: bool = False
    hidden: bool = False


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def split_storage_id(storage_id: str) -> tuple[str, str]:
    """urn:adsk.objects:os.object:{bucket}/{objectKey} -> (bucket, objectKey)."""
    tail = storage_id.split("os.object:", 1)[-1]
    bucket, _, key = tail.partition("/")
    if not bucket or not key:
        raise ApsError(0, "BAD_STORAGE_ID", "a version's storage id is not an OSS object URN")
    return bucket, key


class ApsClient:
    def __init__(
        self,
        tokens: TokenSource,
        *,
        base_url: str | None = None,
        session: requests.Session | None = None,
        cancelled: threading.Event | None = None,
    ) -> None:
        self.tokens = tokens
        self.base_url = (base_url or settings.APS_BASE_URL).rstrip("/")
        self.session = session or _pooled_session()
        self.cancelled = cancelled or threading.Event()
        self.retries = 0
        # S3 parts: all but the last at least 5 MiB, at most 10,000 of them (100 MiB parts: files up to ~1 TB).
        self.part_size = max(MIN_PART, settings.APS_UPLOAD_PART_BYTES)

    # ------------------------------------------------------------------ transport

    def request(self, method: str, path: str, *, signed: bool = False, **kwargs) -> requests.Response:
        """One API call (or a call to a signed URL, without our token), retried as APS asks."""
        url = path if signed else f"{self.base_url}{path}"
        kwargs.setdefault("timeout", (10, 300))
        base_headers = kwargs.pop("headers", None) or {}
        body = kwargs.get("data")
        refreshed = False
        for attempt in range(1, MAX_ATTEMPTS + 1):
            headers = dict(base_headers)
            if not signed:
                token = self.tokens.access_token()
                headers["Authorization"] = f"Bearer {token}"
            if hasattr(body, "seek"):
                body.seek(0)  # a retry sends the whole body again
            try:
                response = self.session.request(method, url, headers=headers, **kwargs)
            except (requests.ConnectionError, requests.Timeout) as exc:
                if attempt == MAX_ATTEMPTS:
                    raise ApsError(
                        0, "CONNECTION_FAILED", f"{type(exc).__name__} calling APS", retryable=True
                    ) from None
                self._wait(attempt, None)
                continue
            if response.status_code == 401 and not signed and not refreshed:
                # The access token expired early or was revoked: refresh once, then try again.
                self.tokens.refresh(token)
                refreshed = True
                continue
            if response.status_code == 429 or response.status_code >= 500:
                if attempt == MAX_ATTEMPTS:
                    raise self._error(response, retryable=True)
                self._wait(attempt, response.headers.get("Retry-After"))
                continue
            if response.status_code >= 400:
                raise self._error(response)
            return response
        raise AssertionError("unreachable")

    def _wait(self, attempt: int, retry_after: str | None) -> None:
        self.retries += 1
        delay = min(0.5 * 2 ** (attempt - 1), 30.0)
        if retry_after:
            try:
                delay = min(max(float(retry_after), 0.0), MAX_RETRY_AFTER)
            except ValueError:
                pass
        if self.cancelled.wait(delay):
            raise ApsError(0, "CANCELLED", "the run was cancelled while waiting to retry")

    @staticmethod
    def _error(response: requests.Response, *, retryable: bool = False) -> ApsError:
        code, detail = "", response.reason or ""
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            errors = body.get("errors")
            if isinstance(errors, list) and errors and isinstance(errors[0], dict):
                code = str(errors[0].get("code") or errors[0].get("title") or "")
                detail = str(errors[0].get("detail") or errors[0].get("title") or detail)
            else:
                code = str(body.get("errorCode") or body.get("code") or body.get("reason") or "")
                detail = str(body.get("developerMessage") or body.get("detail") or body.get("message") or detail)
        return ApsError(response.status_code, code, detail[:500], retryable=retryable)

    def json(self, method: str, path: str, **kwargs) -> dict:
        if "json" in kwargs:
            # The Data Management API speaks JSON:API; OSS plain JSON.
            media = "application/json" if path.startswith("/oss/") else "application/vnd.api+json"
            kwargs.setdefault("headers", {})["Content-Type"] = media
        return self.request(method, path, **kwargs).json()

    # ------------------------------------------------------------------ listing

    def top_folders(self, hub_id: str, project_id: str) -> list[Entry]:
        doc = self.json("GET", f"/project/v1/hubs/{quote(hub_id)}/projects/{quote(project_id)}/topFolders")
        return [self._folder(f) for f in doc.get("data") or []]

    def folder_contents(self, project_id: str, folder_id: str) -> Iterator[Entry]:
        """Every folder and file in a folder, page by page. Names, sizes and times come from the tip versions
        in `included`, never from a call per file (APS allows 50 tip calls a minute)."""
        url = f"/data/v1/projects/{quote(project_id)}/folders/{quote(folder_id)}/contents"
        # includeHidden: deleted files too, so that uploading one of their names adds a version to that item
        # (a new item of that name would be refused), and hidden folders, which are skipped.
        params: dict | None = {"page[limit]": PAGE_LIMIT, "includeHidden": "true"}
        while True:
            doc = self.json("GET", url, params=params)
            versions = {v["id"]: v for v in doc.get("included") or [] if v.get("type") == "versions"}
            for data in doc.get("data") or []:
                if data.get("type") == "folders":
                    yield self._folder(data)
                elif data.get("type") == "items":
                    tip = ((data.get("relationships") or {}).get("tip") or {}).get("data") or {}
                    yield self._file(data, versions.get(tip.get("id")))
            following = ((doc.get("links") or {}).get("next") or {}).get("href")
            if not following:
                return
            url, params = self._api_path(following), None

    def _api_path(self, href: str) -> str:
        # links.next is an absolute APS URL; it is an API call like any other (our token, our retries).
        if href.startswith(self.base_url + "/"):
            return href[len(self.base_url) :]
        if href.startswith("/"):
            return href
        raise ApsError(0, "BAD_LINK", "links.next points outside APS_BASE_URL")

    @staticmethod
    def _folder(data: dict) -> Entry:
        attributes = data.get("attributes") or {}
        return Entry(
            kind="folder",
            id=data["id"],
            name=attributes.get("name") or attributes.get("displayName") or data["id"],
            modified=parse_time(attributes.get("lastModifiedTime")),
            created=parse_time(attributes.get("createTime")),
            hidden=bool(attributes.get("hidden")),
        )

    @staticmethod
    def _file(item: dict, version: dict | None) -> Entry:
        item_attributes = item.get("attributes") or {}
        attributes = (version or {}).get("attributes") or {}
        extension = ((attributes.get("extension") or {}).get("type")) or ""
        storage = (((version or {}).get("relationships") or {}).get("storage") or {}).get("data") or {}
        return Entry(
            kind="file",
            id=item["id"],
            name=attributes.get("name") or item_attributes.get("displayName") or item["id"],
            size=int(attributes.get("storageSize") or 0),
            modified=parse_time(attributes.get("lastModifiedTime") or item_attributes.get("lastModifiedTime")),
            created=parse_time(attributes.get("createTime")),
            version_id=(version or {}).get("id", ""),
            storage_id=storage.get("id", ""),
            deleted=extension == DELETED_VERSION or bool(item_attributes.get("hidden")),
            hidden=bool(item_attributes.get("hidden")),
        )

    # ------------------------------------------------------------------ download

    def download_url(self, storage_id: str) -> str:
        bucket, key = split_storage_id(storage_id)
        doc = self.json("GET", f"/oss/v2/buckets/{quote(bucket)}/objects/{quote(key, safe='')}/signeds3download")
        if not doc.get("url"):
            raise ApsError(0, "NO_URL", f"signeds3download answered status {doc.get('status')!r} without a url")
        return doc["url"]

    def open_download(self, url: str, start: int = 0) -> requests.Response:
        headers = {"Range": f"bytes={start}-"} if start else {}
        return self.request("GET", url, signed=True, headers=headers, stream=True)

    # ------------------------------------------------------------------ upload

    def upload(
        self,
        project_id: str,
        folder_id: str,
        name: str,
        body: IO[bytes],
        size: int,
        existing_item_id: str | None = None,
    ) -> Entry:
        """Uploads `size` bytes from `body` as a new file in the folder, or as a new version of an existing item."""
        storage = self.json(
            "POST",
            f"/data/v1/projects/{quote(project_id)}/storage",
            json={
                "jsonapi": JSONAPI,
                "data": {
                    "type": "objects",
                    "attributes": {"name": name},
                    "relationships": {"target": {"data": {"type": "folders", "id": folder_id}}},
                },
            },
        )
        storage_id = storage["data"]["id"]
        bucket, key = split_storage_id(storage_id)
        oss = f"/oss/v2/buckets/{quote(bucket)}/objects/{quote(key, safe='')}/signeds3upload"
        parts = max(1, math.ceil(size / self.part_size))
        signed = self.json("GET", oss, params={"parts": parts})
        if len(signed.get("urls") or []) < parts:
            raise ApsError(0, "NO_URLS", "signeds3upload returned fewer URLs than parts")
        for number, url in enumerate(signed["urls"][:parts]):
            start = number * self.part_size
            length = min(self.part_size, size - start)
            chunk = _Slice(body, start, length)
            self.request("PUT", url, signed=True, data=chunk, headers={"Content-Length": str(length)})
        self.json("POST", oss, json={"uploadKey": signed["uploadKey"]})
        return self._create_version(project_id, folder_id, name, storage_id, existing_item_id)

    def _create_version(
        self, project_id: str, folder_id: str, name: str, storage_id: str, existing_item_id: str | None
    ) -> Entry:
        storage = {"data": {"type": "objects", "id": storage_id}}
        version = {
            "type": "versions",
            "attributes": {"name": name, "extension": {"type": FILE_VERSION, "version": "1.0"}},
            "relationships": {"storage": storage},
        }
        if existing_item_id:
            version["relationships"]["item"] = {"data": {"type": "items", "id": existing_item_id}}
            doc = self.json(
                "POST", f"/data/v1/projects/{quote(project_id)}/versions", json={"jsonapi": JSONAPI, "data": version}
            )
            return self._file({"id": existing_item_id, "attributes": {}}, doc.get("data"))
        version["id"] = "1"
        item = {
            "type": "items",
            "attributes": {"displayName": name, "extension": {"type": FILE_ITEM, "version": "1.0"}},
            "relationships": {
                "tip": {"data": {"type": "versions", "id": "1"}},
                "parent": {"data": {"type": "folders", "id": folder_id}},
            },
        }
        doc = self.json(
            "POST",
            f"/data/v1/projects/{quote(project_id)}/items",
            json={"jsonapi": JSONAPI, "data": item, "included": [version]},
        )
        included = [v for v in doc.get("included") or [] if v.get("type") == "versions"]
        return self._file(doc["data"], included[0] if included else None)

    # ------------------------------------------------------------------ folders and deletions

    def create_folder(self, project_id: str, parent_id: str, name: str) -> Entry:
        doc = self.json(
            "POST",
            f"/data/v1/projects/{quote(project_id)}/folders",
            json={
                "jsonapi": JSONAPI,
                "data": {
                    "type": "folders",
                    "attributes": {"name": name, "extension": {"type": FOLDER, "version": "1.0"}},
                    "relationships": {"parent": {"data": {"type": "folders", "id": parent_id}}},
                },
            },
        )
        return self._folder(doc["data"])

    def delete_file(self, project_id: str, item_id: str, name: str) -> None:
        """ACC keeps every version: deleting a file adds a Deleted version on top."""
        self.json(
            "POST",
            f"/data/v1/projects/{quote(project_id)}/versions",
            json={
                "jsonapi": JSONAPI,
                "data": {
                    "type": "versions",
                    "attributes": {"name": name, "extension": {"type": DELETED_VERSION, "version": "1.0"}},
                    "relationships": {"item": {"data": {"type": "items", "id": item_id}}},
                },
            },
        )

    def hide_folder(self, project_id: str, folder_id: str) -> None:
        self.json(
            "PATCH",
            f"/data/v1/projects/{quote(project_id)}/folders/{quote(folder_id)}",
            json={"jsonapi": JSONAPI, "data": {"type": "folders", "id": folder_id, "attributes": {"hidden": True}}},
        )


def _pooled_session() -> requests.Session:
    # The bridge calls APS from many request threads at once (rclone's transfers and checkers).
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=32)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class _Slice:
    """A window of a seekable file, read by requests as an upload body (so retries can start over)."""

    def __init__(self, body: IO[bytes], start: int, length: int) -> None:
        self.body, self.start, self.length, self.position = body, start, length, 0

    def __len__(self) -> int:
        return self.length

    def seek(self, offset: int, whence: int = 0) -> int:
        self.position = offset if whence == 0 else (self.length + offset if whence == 2 else self.position + offset)
        return self.position

    def tell(self) -> int:
        return self.position

    def read(self, size: int = -1) -> bytes:
        remaining = self.length - self.position
        if remaining <= 0:
            return b""
        size = remaining if size is None or size < 0 else min(size, remaining)
        self.body.seek(self.start + self.position)
        data = self.body.read(size)
        self.position += len(data)
        return data
