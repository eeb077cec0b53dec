"""An in-memory fake of Google Drive v3 and Google's OAuth token endpoint, for driving the real rclone binary.

Why a fake and not a mock: the sync engine is the rclone binary, so the only honest test is rclone talking HTTP to
something that answers like Drive. This module holds the state (a file tree, tokens, upload sessions) and the
request logic as a plain function, `FakeDrive.handle(method, host, target, headers, body)`; the transport (TLS
interception) lives in tests/fakes/tls_proxy.py.

Faithfulness rules, so that a bug in how we use rclone shows up here rather than against Google:
- every API request needs `Authorization: Bearer <current access token>`; anything else is 401;
- refresh tokens are single-use (rotated on every refresh); a reused one is 400 invalid_grant and is counted;
- errors use Google's JSON shape {"error": {"code", "message", "errors": [{"reason", ...}]}};
- a path, query parameter, `q` term or metadata field the fake does not know is an error (404/400) and is recorded
  in `FakeDrive.unhandled`, so a new rclone call shows up as a failing test, not as silently wrong data.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

FOLDER_MIME = "application/vnd.google-apps.folder"
DEFAULT_MIME = "application/octet-stream"
# Google's own default page size for files.list; the fake then applies its (test-configurable) cap.
DEFAULT_PAGE_SIZE = 100
TOKEN_HOSTS = frozenset({"oauth2.googleapis.com", "accounts.google.com"})
TOKEN_PATHS = frozenset({"/token", "/o/oauth2/token"})
ACCESS_TOKEN_LIFETIME = timedelta(hours=1)

# Parameters any Google API call may carry (system parameters plus the shared-drive switches rclone always sends).
COMMON_PARAMS = frozenset(
    {
        "alt",
        "fields",
        "prettyPrint",
        "key",
        "quotaUser",
        "supportsAllDrives",
        "supportsTeamDrives",
        "includeItemsFromAllDrives",
        "includeTeamDriveItems",
        "includePermissionsForView",
        "includeLabels",
    }
)
LIST_PARAMS = frozenset({"q", "pageSize", "pageToken", "spaces", "corpora", "driveId", "teamDriveId", "orderBy"})
WRITE_PARAMS = frozenset(
    {"uploadType", "upload_id", "keepRevisionForever", "useContentAsIndexableText", "ignoreDefaultVisibility"}
)
# setModifiedDate is a v2 parameter rclone still sends on resumable updates; Google v3 tolerates it.
UPDATE_PARAMS = WRITE_PARAMS | {"addParents", "removeParents", "setModifiedDate"}
# Writable metadata fields of a File resource; anything else in a request body is rejected.
WRITABLE_FIELDS = frozenset(
    {
        "name",
        "mimeType",
        "parents",
        "modifiedTime",
        "createdTime",
        "trashed",
        "description",
        "starred",
        "properties",
        "appProperties",
        "originalFilename",
        "contentHints",
        "viewedByMeTime",
        "writersCanShare",
        "copyRequiresWriterPermission",
        "folderColorRgb",
        "shortcutDetails",
    }
)


def rfc3339(moment: datetime) -> str:
    """Drive's timestamp format: UTC, millisecond precision, 'Z' suffix."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_rfc3339(text: str) -> datetime:
    """Parse a client timestamp and keep Drive's millisecond precision (rclone sends nanoseconds)."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"timestamp without a zone: {text}")
    moment = moment.astimezone(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


@dataclass
class DriveResponse:
    """What the transport must send back: status, headers and a body (already encoded)."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass
class DriveCall:
    """One request as seen by the fake, with its query, for tests that assert how rclone talked to Drive."""

    method: str
    host: str
    path: str
    query: dict[str, str]
    headers: dict[str, str] = field(default_factory=dict)  # lower-cased names
    status: int = 0
    metadata: dict | None = None  # the JSON body of metadata requests (e.g. {"trashed": true}), else None


@dataclass
class _Item:
    id: str
    name: str
    mime_type: str
    parents: list[str]
    modified: datetime
    created: datetime
    content: bytes | None = None  # None for folders
    trashed: bool = False
    explicitly_trashed: bool = False
    description: str | None = None
    version: int = 1

    @property
    def is_folder(self) -> bool:
        return self.mime_type == FOLDER_MIME


@dataclass
class _UploadSession:
    file_id: str | None  # None: the upload creates a new file
    metadata: dict
    mime_type: str
    total: int | None
    data: bytearray = field(default_factory=bytearray)


class ApiError(Exception):
    """A Google-shaped error; raised anywhere in request handling and rendered by `FakeDrive.handle`."""

    def __init__(self, code: int, reason: str, message: str, **extra: str) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.extra = extra

    def response(self) -> DriveResponse:
        detail = {"domain": "global", "reason": self.reason, "message": self.message, **self.extra}
        body = {"error": {"code": self.code, "message": self.message, "errors": [detail]}}
        headers = {"Content-Type": "application/json; charset=UTF-8"}
        if self.code == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="https://accounts.google.com/", error="invalid_token"'
        return DriveResponse(self.code, headers, json.dumps(body).encode())


class FakeDrive:
    """The in-memory Drive: a file tree, the OAuth token state, upload sessions. Thread-safe (one lock).

    `page_size_cap` bounds files.list pages below Google's 1000 so tests exercise nextPageToken paging.
    """

    def __init__(self, page_size_cap: int = 50, *, email: str = "fake-user@example.com") -> None:
        self.page_size_cap = page_size_cap
        self.email = email
        self._lock = threading.RLock()
        self._items: dict[str, _Item] = {}
        self._sessions: dict[str, _UploadSession] = {}
        self._pages: dict[str, tuple[list[str], int]] = {}
        now = datetime.now(UTC)
        self.root_id = "0AFakeRoot" + secrets.token_hex(8)
        self._items[self.root_id] = _Item(self.root_id, "My Drive", FOLDER_MIME, [], now, now)
        self._access_token: str | None = None
        self._access_expiry = now
        self._refresh_token: str | None = None
        self._spent_refresh_tokens: set[str] = set()
        self.refresh_reuse_attempts = 0
        # One record per token-endpoint call: grant_type, refresh_token, client_id, client_auth ("basic"/"form").
        self.token_requests: list[dict[str, str]] = []
        self.requests: list[tuple[str, str, str]] = []
        self.calls: list[DriveCall] = []
        self.unhandled: list[str] = []

    # ----- test-facing helpers -----

    def put_file(
        self, path: str, content: bytes, modified: datetime | None = None, mime_type: str = DEFAULT_MIME
    ) -> str:
        """Create (or overwrite) the file at 'Folder/sub/name', creating folders as needed; return its id."""
        parts = [part for part in path.split("/") if part]
        modified = modified or datetime.now(UTC)
        with self._lock:
            parent = self.root_id
            for folder in parts[:-1]:
                existing = self._child(parent, folder, folders=True)
                parent = existing.id if existing else self._new_item(folder, FOLDER_MIME, parent, None, modified).id
            item = self._child(parent, parts[-1], folders=False)
            if item is None:
                return self._new_item(parts[-1], mime_type, parent, content, modified).id
            item.content, item.modified, item.version = bytes(content), modified, item.version + 1
            return item.id

    def read_file(self, path: str) -> bytes | None:
        """Content of the (not trashed) file at path, or None."""
        with self._lock:
            item = self._find(path)
            return None if item is None or item.is_folder else item.content

    def file_info(self, path: str) -> dict | None:
        """The Drive JSON of the (not trashed) file or folder at path, as rclone would receive it."""
        with self._lock:
            item = self._find(path)
            return None if item is None else self._json(item)

    def list_paths(self, *, trashed: bool = False) -> list[str]:
        """Sorted paths of files (not folders) that are not trashed, or, with trashed=True, of those in the trash."""
        with self._lock:
            found = []
            for item in self._items.values():
                if item.is_folder or item.trashed != trashed:
                    continue
                path = self._path(item)
                if path is not None:
                    found.append(path)
            return sorted(found)

    def issue_token(self, expired: bool = False) -> dict:
        """Mint a fresh token pair (the previous refresh token is spent) in rclone's config format."""
        with self._lock:
            token = self._rotate_tokens()
            if expired:
                # An hour-old token: rclone must refresh before its first API call.
                self._access_expiry = datetime.now(UTC) - timedelta(hours=1)
            return {
                "access_token": token["access_token"],
                "token_type": "Bearer",
                "refresh_token": token["refresh_token"],
                "expiry": self._access_expiry.strftime("%Y-%m-%dT%H:%M:%SZ"),
            }

    @property
    def access_token(self) -> str | None:
        """The only access token the API currently accepts."""
        return self._access_token

    @property
    def refresh_token(self) -> str | None:
        """The only refresh token the token endpoint currently accepts."""
        return self._refresh_token

    # ----- the request entry point -----

    def handle(self, method: str, host: str, target: str, headers: Mapping[str, str], body: bytes) -> DriveResponse:
        """Answer one decrypted HTTP request addressed to `host` (taken from the CONNECT tunnel)."""
        split = urlsplit(target)
        query = {key: values[-1] for key, values in parse_qs(split.query, keep_blank_values=True).items()}
        lowered = {key.lower(): value for key, value in headers.items()}
        host = host.split(":")[0].lower()
        call = DriveCall(method, host, split.path, query, lowered)
        if lowered.get("content-type", "").startswith("application/json") and body:
            try:
                call.metadata = json.loads(body)
            except ValueError:
                pass  # recorded as is; the handler answers the parse error
        with self._lock:
            self.requests.append((method, host, split.path))
            self.calls.append(call)
            try:
                if host in TOKEN_HOSTS:
                    response = self._token_endpoint(method, split.path, lowered, body)
                else:
                    response = self._api(method, host, split.path, query, lowered, body)
            except ApiError as error:
                response = error.response()
            call.status = response.status
            return response

    # ----- OAuth -----

    def _rotate_tokens(self) -> dict:
        if self._refresh_token:
            self._spent_refresh_tokens.add(self._refresh_token)
        self._access_token = "ya29.fake-" + secrets.token_urlsafe(24)
        self._refresh_token = "1//fake-" + secrets.token_urlsafe(24)
        self._access_expiry = datetime.now(UTC) + ACCESS_TOKEN_LIFETIME
        return {"access_token": self._access_token, "refresh_token": self._refresh_token}

    def _token_endpoint(self, method: str, path: str, headers: dict[str, str], body: bytes) -> DriveResponse:
        if method != "POST" or path not in TOKEN_PATHS:
            self.unhandled.append(f"{method} token-host {path}")
            return _oauth_error(404, "not_found", f"no such endpoint {path}")
        form = {key: values[-1] for key, values in parse_qs(body.decode(), keep_blank_values=True).items()}
        # Google takes the client credentials either as HTTP Basic or in the form. rclone (golang.org/x/oauth2 in
        # auto-detect mode) tries Basic first and, on any error, retries with them in the form.
        client_id, client_secret, client_auth = form.get("client_id"), form.get("client_secret"), "form"
        scheme, _, encoded = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic":
            try:
                basic_id, _, basic_secret = base64.b64decode(encoded).decode().partition(":")
            except ValueError:
                basic_id = basic_secret = ""
            client_id, client_secret, client_auth = unquote(basic_id), unquote(basic_secret), "basic"
        self.token_requests.append(
            {
                "grant_type": form.get("grant_type", ""),
                "refresh_token": form.get("refresh_token", ""),
                "client_id": client_id or "",
                "client_auth": client_auth,
            }
        )
        if form.get("grant_type") != "refresh_token":
            self.unhandled.append(f"token grant_type={form.get('grant_type')}")
            return _oauth_error(400, "unsupported_grant_type", "Only refresh_token is faked")
        if not client_id or not client_secret:
            return _oauth_error(401, "invalid_client", "The OAuth client was not found.")
        presented = form.get("refresh_token", "")
        if presented in self._spent_refresh_tokens:
            self.refresh_reuse_attempts += 1
            return _oauth_error(400, "invalid_grant", "Token has been expired or revoked.")
        if not presented or presented != self._refresh_token:
            return _oauth_error(400, "invalid_grant", "Bad Request")
        token = self._rotate_tokens()
        payload = {
            "access_token": token["access_token"],
            "expires_in": int(ACCESS_TOKEN_LIFETIME.total_seconds()) - 1,
            "refresh_token": token["refresh_token"],
            "scope": "https://www.googleapis.com/auth/drive",
            "token_type": "Bearer",
        }
        return _json_response(200, payload)

    def _check_auth(self, headers: dict[str, str]) -> None:
        scheme, _, presented = headers.get("authorization", "").partition(" ")
        valid = (
            scheme.lower() == "bearer"
            and self._access_token is not None
            and secrets.compare_digest(presented, self._access_token)
            and datetime.now(UTC) < self._access_expiry
        )
        if not valid:
            raise ApiError(
                401,
                "authError",
                "Request had invalid authentication credentials. Expected OAuth 2 access token.",
                location="Authorization",
                locationType="header",
            )

    # ----- Drive API routing -----

    def _api(
        self, method: str, host: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes
    ) -> DriveResponse:
        if not host.endswith(".googleapis.com"):
            self.unhandled.append(f"{method} {host}{path}")
            raise ApiError(404, "notFound", f"Unknown host {host}")
        for pattern, methods in _ROUTES:
            match = pattern.fullmatch(path)
            if not match:
                continue
            route = methods.get(method)
            if route is None:
                self.unhandled.append(f"{method} {path}")
                raise ApiError(405, "methodNotAllowed", f"Method {method} not allowed on {path}")
            handler, allowed = route
            unknown = sorted(set(query) - COMMON_PARAMS - allowed)
            if unknown:
                self.unhandled.append(f"{method} {path} params {unknown}")
                raise ApiError(400, "invalidParameter", f"Invalid parameter(s): {', '.join(unknown)}")
            self._check_auth(headers)
            return handler(self, host, query, headers, body, *match.groups())
        self.unhandled.append(f"{method} {path}")
        raise ApiError(404, "notFound", f"Not Found: {path}")

    def _about(self, host, query, headers, body) -> DriveResponse:
        used = sum(len(item.content or b"") for item in self._items.values())
        return _json_response(
            200,
            {
                "kind": "drive#about",
                "user": {
                    "kind": "drive#user",
                    "displayName": "Fake User",
                    "emailAddress": self.email,
                    "me": True,
                    "permissionId": "00000000000000000000",
                },
                # int64 fields are JSON strings in Google APIs (the Go client decodes them with `,string`).
                "storageQuota": {
                    "limit": str(15 * 1024**3),
                    "usage": str(used),
                    "usageInDrive": str(used),
                    "usageInDriveTrash": "0",
                },
                "maxUploadSize": str(5 * 1024**4),
                "importFormats": {},
                "exportFormats": {},
                "canCreateDrives": False,
            },
        )

    def _start_page_token(self, host, query, headers, body) -> DriveResponse:
        return _json_response(200, {"kind": "drive#startPageToken", "startPageToken": "1"})

    def _drives(self, host, query, headers, body) -> DriveResponse:
        return _json_response(200, {"kind": "drive#driveList", "drives": []})

    def _list(self, host, query, headers, body) -> DriveResponse:
        token = query.get("pageToken")
        if token:
            if token not in self._pages:
                raise ApiError(400, "invalid", "Invalid Value", location="pageToken", locationType="parameter")
            ids, offset = self._pages.pop(token)
        else:
            predicate = _QueryParser(query.get("q", ""), self).parse()
            matches = [item for item in self._items.values() if item.id != self.root_id and predicate(item)]
            matches.sort(key=lambda item: (item.name, item.id))
            ids, offset = [item.id for item in matches], 0
        try:
            requested = int(query.get("pageSize", DEFAULT_PAGE_SIZE))
        except ValueError as error:
            raise ApiError(400, "invalid", "Invalid Value", location="pageSize", locationType="parameter") from error
        size = max(1, min(requested, 1000, self.page_size_cap))
        # Results are a snapshot taken on the first page, like Google's cursor; items deleted since are skipped.
        page = [self._json(self._items[i]) for i in ids[offset : offset + size] if i in self._items]
        payload: dict = {"kind": "drive#fileList", "incompleteSearch": False, "files": page}
        if offset + size < len(ids):
            next_token = secrets.token_urlsafe(12)
            self._pages[next_token] = (ids, offset + size)
            payload["nextPageToken"] = next_token
        return _json_response(200, payload)

    def _get(self, host, query, headers, body, file_id) -> DriveResponse:
        item = self._lookup(file_id)
        if query.get("alt") != "media":
            return _json_response(200, self._json(item))
        if item.is_folder:
            raise ApiError(403, "fileNotDownloadable", "Only files with binary content can be downloaded.")
        return _media_response(item.content or b"", item.mime_type, headers.get("range"))

    def _create(self, host, query, headers, body) -> DriveResponse:
        metadata = self._metadata(body)
        item = self._create_from_metadata(metadata, None if metadata.get("mimeType") == FOLDER_MIME else b"")
        return _json_response(200, self._json(item))

    def _copy(self, host, query, headers, body, file_id) -> DriveResponse:
        source = self._lookup(file_id)
        if source.is_folder:
            raise ApiError(403, "fileNotCopyable", "Folders cannot be copied.")
        metadata = {"name": source.name, "parents": list(source.parents), "mimeType": source.mime_type}
        metadata.update(self._metadata(body))
        metadata.setdefault("modifiedTime", rfc3339(source.modified))
        return _json_response(200, self._json(self._create_from_metadata(metadata, source.content)))

    def _update(self, host, query, headers, body, file_id) -> DriveResponse:
        item = self._lookup(file_id)
        self._apply_metadata(item, self._metadata(body), query)
        return _json_response(200, self._json(item))

    def _delete(self, host, query, headers, body, file_id) -> DriveResponse:
        item = self._lookup(file_id)
        if item.id == self.root_id:
            raise ApiError(403, "cannotDeleteRootFolder", "The root folder cannot be deleted.")
        for doomed in [item, *self._descendants(item)]:
            self._items.pop(doomed.id, None)
        return DriveResponse(204)

    def _empty_trash(self, host, query, headers, body) -> DriveResponse:
        for item in [item for item in self._items.values() if item.explicitly_trashed]:
            for doomed in [item, *self._descendants(item)]:
                self._items.pop(doomed.id, None)
        return DriveResponse(204)

    def _upload(self, host, query, headers, body, file_id=None) -> DriveResponse:
        """files.create / files.update with media: multipart, media, resumable start, or a resumable chunk."""
        if "upload_id" in query:
            return self._upload_chunk(query["upload_id"], headers, body)
        kind = query.get("uploadType")
        existing = self._lookup(file_id) if file_id else None
        if kind == "multipart":
            metadata_part, media, media_type = _split_multipart(headers.get("content-type", ""), body)
            metadata = self._metadata(metadata_part)
            return self._finish_upload(existing, metadata, media, media_type)
        if kind == "media":
            return self._finish_upload(existing, {}, body, headers.get("content-type", DEFAULT_MIME))
        if kind == "resumable":
            metadata = self._metadata(body)
            if existing is None:
                self._check_parents(metadata.get("parents") or [self.root_id])
            total = headers.get("x-upload-content-length")
            upload_id = "fake-" + secrets.token_urlsafe(18)
            self._sessions[upload_id] = _UploadSession(
                file_id=existing.id if existing else None,
                metadata=metadata,
                mime_type=headers.get("x-upload-content-type") or DEFAULT_MIME,
                total=int(total) if total else None,
            )
            session_path = "/upload/drive/v3/files" + (f"/{quote(existing.id)}" if existing else "")
            location = f"https://{host}{session_path}?" + urlencode({"uploadType": "resumable", "upload_id": upload_id})
            return DriveResponse(200, {"Location": location, "X-GUploader-UploadID": upload_id, "Content-Length": "0"})
        self.unhandled.append(f"upload uploadType={kind}")
        raise ApiError(400, "invalidParameter", f"Invalid uploadType: {kind}")

    def _upload_chunk(self, upload_id: str, headers: dict[str, str], body: bytes) -> DriveResponse:
        session = self._sessions.get(upload_id)
        if session is None:
            raise ApiError(404, "notFound", "Upload session not found or expired.")
        content_range = headers.get("content-range")
        if content_range:
            match = re.fullmatch(r"bytes (?:(\d+)-(\d+)|\*)/(\d+|\*)", content_range.strip())
            if not match:
                raise ApiError(400, "badContentRange", f"Invalid Content-Range: {content_range}")
            start, end, total = match.groups()
            if total != "*":
                session.total = int(total)
            if start is not None:
                if int(start) != len(session.data) or int(end) - int(start) + 1 != len(body):
                    raise ApiError(400, "badContentRange", f"Content-Range {content_range} does not follow the data")
                session.data += body
        else:
            session.data += body
            session.total = len(session.data)
        if session.total is None or len(session.data) < session.total:
            # 308 "Resume Incomplete" with no Location, so Go's client does not treat it as a redirect.
            progress = {"Range": f"bytes=0-{len(session.data) - 1}"} if session.data else {}
            return DriveResponse(308, {**progress, "Content-Length": "0"})
        if len(session.data) > session.total:
            raise ApiError(400, "badContentRange", "More data than the declared length")
        del self._sessions[upload_id]
        existing = self._lookup(session.file_id) if session.file_id else None
        return self._finish_upload(existing, session.metadata, bytes(session.data), session.mime_type)

    def _finish_upload(self, existing: _Item | None, metadata: dict, media: bytes, media_type: str) -> DriveResponse:
        if existing is None:
            metadata.setdefault("mimeType", media_type or DEFAULT_MIME)
            item = self._create_from_metadata(metadata, media)
        else:
            item = existing
            if item.is_folder:
                raise ApiError(400, "invalid", "Folders have no content.")
            item.content = media
            item.version += 1
            metadata.setdefault("modifiedTime", rfc3339(datetime.now(UTC)))
            self._apply_metadata(item, metadata, {})
        return _json_response(200, self._json(item))

    # ----- state helpers -----

    def _new_item(self, name: str, mime: str, parent: str, content: bytes | None, modified: datetime) -> _Item:
        item_id = "1Fake" + secrets.token_urlsafe(20).replace("-", "x").replace("_", "y")
        now = datetime.now(UTC)
        item = _Item(item_id, name, mime, [parent], modified.astimezone(UTC), now, content)
        self._items[item_id] = item
        return item

    def _create_from_metadata(self, metadata: dict, content: bytes | None) -> _Item:
        parents = [self._resolve(parent) for parent in metadata.get("parents") or [self.root_id]]
        self._check_parents(parents)
        mime = metadata.get("mimeType") or DEFAULT_MIME
        modified = _metadata_time(metadata, "modifiedTime") or datetime.now(UTC)
        item = self._new_item(metadata.get("name") or "Untitled", mime, parents[0], content, modified)
        item.parents = parents
        item.description = metadata.get("description")
        if "createdTime" in metadata:
            item.created = _metadata_time(metadata, "createdTime")
        return item

    def _apply_metadata(self, item: _Item, metadata: dict, query: dict[str, str]) -> None:
        if "parents" in metadata:
            raise ApiError(403, "fieldNotWritable", "The parents field is not directly writable in update requests.")
        if "name" in metadata:
            item.name = metadata["name"]
        if "modifiedTime" in metadata:
            item.modified = _metadata_time(metadata, "modifiedTime")
        if "description" in metadata:
            item.description = metadata["description"]
        if "trashed" in metadata:
            self._set_trashed(item, bool(metadata["trashed"]))
        removed = [self._resolve(p) for p in query.get("removeParents", "").split(",") if p]
        added = [self._resolve(p) for p in query.get("addParents", "").split(",") if p]
        self._check_parents(added)
        if added and any(self._is_within(self._items[parent], item) for parent in added):
            raise ApiError(403, "invalidParent", "A folder cannot be moved into itself or its descendants.")
        item.parents = [parent for parent in item.parents if parent not in removed]
        item.parents += [parent for parent in added if parent not in item.parents]

    def _set_trashed(self, item: _Item, trashed: bool) -> None:
        # Trashing a folder trashes its contents implicitly; restoring it restores only those.
        item.trashed = item.explicitly_trashed = trashed
        for child in self._descendants(item):
            if not child.explicitly_trashed:
                child.trashed = trashed

    def _metadata(self, body: bytes) -> dict:
        if not body.strip():
            return {}
        try:
            metadata = json.loads(body)
        except ValueError as error:
            raise ApiError(400, "parseError", "Parse Error") from error
        if not isinstance(metadata, dict):
            raise ApiError(400, "parseError", "Parse Error")
        unknown = sorted(set(metadata) - WRITABLE_FIELDS)
        if unknown:
            self.unhandled.append(f"metadata fields {unknown}")
            raise ApiError(400, "fieldNotWritable", f"Field(s) not writable or unknown: {', '.join(unknown)}")
        return metadata

    def _resolve(self, file_id: str) -> str:
        return self.root_id if file_id == "root" else file_id

    def _lookup(self, file_id: str) -> _Item:
        item = self._items.get(self._resolve(file_id))
        if item is None:
            raise ApiError(404, "notFound", f"File not found: {file_id}.", location="fileId", locationType="parameter")
        return item

    def _check_parents(self, parents: list[str]) -> None:
        for parent in parents:
            item = self._items.get(self._resolve(parent))
            if item is None or not item.is_folder:
                raise ApiError(404, "notFound", f"File not found: {parent}.", location="fileId")

    def _child(self, parent: str, name: str, *, folders: bool) -> _Item | None:
        for item in self._items.values():
            if parent in item.parents and item.name == name and not item.trashed and item.is_folder == folders:
                return item
        return None

    def _find(self, path: str) -> _Item | None:
        parts = [part for part in path.split("/") if part]
        item: _Item | None = self._items[self.root_id]
        for index, name in enumerate(parts):
            last = index == len(parts) - 1
            parent = item.id
            item = self._child(parent, name, folders=False) if last else None
            item = item or self._child(parent, name, folders=True)
            if item is None:
                return None
        return item

    def _path(self, item: _Item) -> str | None:
        names = []
        current = item
        while current.id != self.root_id:
            names.append(current.name)
            if not current.parents or current.parents[0] not in self._items:
                return None
            current = self._items[current.parents[0]]
        return "/".join(reversed(names))

    def _descendants(self, folder: _Item) -> list[_Item]:
        found, frontier = [], [folder.id]
        while frontier:
            parent = frontier.pop()
            for item in self._items.values():
                if parent in item.parents:
                    found.append(item)
                    frontier.append(item.id)
        return found

    def _is_within(self, candidate: _Item, ancestor: _Item) -> bool:
        return candidate.id == ancestor.id or candidate in self._descendants(ancestor)

    def _json(self, item: _Item) -> dict:
        """The File resource; all fields regardless of `fields=` (rclone ignores the extras)."""
        data: dict = {
            "kind": "drive#file",
            "id": item.id,
            "name": item.name,
            "mimeType": item.mime_type,
            "parents": list(item.parents),
            "trashed": item.trashed,
            "explicitlyTrashed": item.explicitly_trashed,
            "starred": False,
            "createdTime": rfc3339(item.created),
            "modifiedTime": rfc3339(item.modified),
            "version": str(item.version),
            "webViewLink": f"https://drive.google.com/file/d/{item.id}/view",
            "ownedByMe": True,
        }
        if item.description is not None:
            data["description"] = item.description
        if not item.is_folder:
            content = item.content or b""
            data.update(
                {
                    "size": str(len(content)),
                    "quotaBytesUsed": str(len(content)),
                    "md5Checksum": hashlib.md5(content).hexdigest(),
                    "sha1Checksum": hashlib.sha1(content).hexdigest(),
                    "sha256Checksum": hashlib.sha256(content).hexdigest(),
                    "headRevisionId": f"rev{item.version}",
                    "originalFilename": item.name,
                    "fileExtension": item.name.rpartition(".")[2] if "." in item.name else "",
                }
            )
        else:
            data["webViewLink"] = f"https://drive.google.com/drive/folders/{item.id}"
        return data


def _metadata_time(metadata: dict, key: str) -> datetime | None:
    try:
        return parse_rfc3339(metadata[key]) if metadata.get(key) else None
    except (TypeError, ValueError) as error:
        raise ApiError(400, "invalid", f"Invalid value for {key}: {metadata[key]}") from error


def _json_response(status: int, payload: dict) -> DriveResponse:
    return DriveResponse(status, {"Content-Type": "application/json; charset=UTF-8"}, json.dumps(payload).encode())


def _oauth_error(status: int, error: str, description: str) -> DriveResponse:
    return _json_response(status, {"error": error, "error_description": description})


def _media_response(content: bytes, mime: str, range_header: str | None) -> DriveResponse:
    """alt=media, honouring a single `Range: bytes=` spec (rclone seeks and resumes with it)."""
    headers = {"Content-Type": mime, "Accept-Ranges": "bytes"}
    if not range_header:
        return DriveResponse(200, headers, content)
    match = re.fullmatch(r"bytes=(\d*)-(\d*)", range_header.strip())
    if not match or match.groups() == ("", ""):
        return DriveResponse(200, headers, content)
    first, last = match.groups()
    size = len(content)
    if first == "":
        start, end = max(0, size - int(last)), size - 1
    else:
        start, end = int(first), min(int(last), size - 1) if last else size - 1
    if start >= size or start > end:
        headers["Content-Range"] = f"bytes */{size}"
        return DriveResponse(416, headers)
    headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    return DriveResponse(206, headers, content[start : end + 1])


def _split_multipart(content_type: str, body: bytes) -> tuple[bytes, bytes, str]:
    """Split a multipart/related upload into (metadata JSON, media bytes, media Content-Type).

    Parsed by hand rather than with the email package because the media part is arbitrary binary.
    """
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not content_type.startswith("multipart/") or not match:
        raise ApiError(400, "badContent", f"Expected multipart/related, got {content_type!r}")
    delimiter = b"--" + match.group(1).encode()
    segments = body.split(delimiter)
    # segments: preamble, part 1, part 2, "--\r\n" epilogue
    parts = []
    for segment in segments[1:]:
        if segment.startswith(b"--"):
            break
        segment = segment.removeprefix(b"\r\n").removesuffix(b"\r\n")
        head, _, payload = segment.partition(b"\r\n\r\n")
        part_headers = {}
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            part_headers[name.strip().lower()] = value.strip()
        parts.append((part_headers, payload))
    if len(parts) != 2:
        raise ApiError(400, "badContent", f"Expected 2 multipart parts, got {len(parts)}")
    (_, metadata), (media_headers, media) = parts
    return metadata, media, media_headers.get("content-type", DEFAULT_MIME)


class _QueryParser:
    """Parse the subset of Drive's `q` language rclone sends into a predicate over items.

    Grammar: expr := and ('or' and)* ; and := unary ('and' unary)* ; unary := 'not' unary | '(' expr ')' | term ;
    term := STRING 'in' parents | FIELD op VALUE, FIELD in {name, mimeType, trashed, starred, modifiedTime}.
    """

    _TOKEN = re.compile(r"\s*(?:(?P<str>'(?:\\.|[^'\\])*')|(?P<op>!=|<=|>=|=|<|>)|(?P<paren>[()])|(?P<word>[\w.]+))")

    def __init__(self, text: str, drive: FakeDrive) -> None:
        self.text = text
        self.drive = drive
        self.tokens = self._tokenize(text)
        self.pos = 0

    def parse(self) -> Callable[[_Item], bool]:
        if not self.tokens:
            return lambda item: True
        predicate = self._or()
        if self.pos != len(self.tokens):
            self._fail(f"unexpected {self.tokens[self.pos][1]!r}")
        return predicate

    def _fail(self, why: str):
        self.drive.unhandled.append(f"q {self.text!r}: {why}")
        raise ApiError(400, "invalid", f"Invalid Value: {why}", location="q", locationType="parameter")

    def _tokenize(self, text: str) -> list[tuple[str, str]]:
        tokens, pos = [], 0
        while pos < len(text):
            if text[pos:].strip() == "":
                break
            match = self._TOKEN.match(text, pos)
            if not match:
                self._fail(f"cannot tokenize at {text[pos:]!r}")
            kind = match.lastgroup
            value = match.group(kind)
            if kind == "str":
                value = re.sub(r"\\(.)", r"\1", value[1:-1])
            tokens.append((kind, value))
            pos = match.end()
        return tokens

    def _peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _take(self) -> tuple[str, str]:
        token = self._peek()
        if token is None:
            self._fail("unexpected end of query")
        self.pos += 1
        return token

    def _keyword(self, word: str) -> bool:
        token = self._peek()
        if token and token[0] == "word" and token[1].lower() == word:
            self.pos += 1
            return True
        return False

    def _or(self) -> Callable[[_Item], bool]:
        terms = [self._and()]
        while self._keyword("or"):
            terms.append(self._and())
        return terms[0] if len(terms) == 1 else (lambda item: any(term(item) for term in terms))

    def _and(self) -> Callable[[_Item], bool]:
        terms = [self._unary()]
        while self._keyword("and"):
            terms.append(self._unary())
        return terms[0] if len(terms) == 1 else (lambda item: all(term(item) for term in terms))

    def _unary(self) -> Callable[[_Item], bool]:
        if self._keyword("not"):
            inner = self._unary()
            return lambda item: not inner(item)
        if self._peek() == ("paren", "("):
            self.pos += 1
            inner = self._or()
            if self._take() != ("paren", ")"):
                self._fail("missing ')'")
            return inner
        return self._term()

    def _term(self) -> Callable[[_Item], bool]:
        kind, value = self._take()
        if kind == "str":
            if not self._keyword("in"):
                self._fail("expected 'in' after a string")
            collection = self._take()
            if collection != ("word", "parents"):
                self._fail(f"unsupported collection {collection[1]!r}")
            parent = self.drive._resolve(value)
            return lambda item: parent in item.parents
        if kind != "word":
            self._fail(f"unexpected {value!r}")
        op_kind, op = self._take()
        if op_kind != "op" and not (op_kind == "word" and op == "contains"):
            self._fail(f"expected an operator after {value}")
        operand_kind, operand = self._take()
        if value in ("name", "mimeType") and operand_kind == "str":
            getter = (lambda item: item.name) if value == "name" else (lambda item: item.mime_type)
            return _compare(getter, op, operand, self._fail)
        if value in ("trashed", "starred") and operand in ("true", "false") and op in ("=", "!="):
            wanted = operand == "true"
            if value == "starred":
                return lambda item: (not wanted) == (op == "=")
            return lambda item: (item.trashed == wanted) == (op == "=")
        if value == "modifiedTime" and operand_kind == "str":
            moment = parse_rfc3339(operand)
            return _compare(lambda item: item.modified, op, moment, self._fail)
        self._fail(f"unsupported term {value} {op} {operand}")
        raise AssertionError("unreachable")


def _compare(getter, op: str, operand, fail) -> Callable[[_Item], bool]:
    operations = {
        "=": lambda a: a == operand,
        "!=": lambda a: a != operand,
        "<": lambda a: a < operand,
        "<=": lambda a: a <= operand,
        ">": lambda a: a > operand,
        ">=": lambda a: a >= operand,
        "contains": lambda a: isinstance(a, str) and operand in a,
    }
    if op not in operations:
        fail(f"unsupported operator {op}")
    check = operations[op]
    return lambda item: check(getter(item))


_FILE_ID = r"/([^/]+)"
_ROUTES: list[tuple[re.Pattern, dict[str, tuple[Callable, frozenset]]]] = [
    (re.compile(r"/drive/v3/about"), {"GET": (FakeDrive._about, frozenset())}),
    (re.compile(r"/drive/v3/changes/startPageToken"), {"GET": (FakeDrive._start_page_token, frozenset({"driveId"}))}),
    (re.compile(r"/drive/v3/drives"), {"GET": (FakeDrive._drives, frozenset({"pageSize", "pageToken", "q"}))}),
    (re.compile(r"/drive/v3/files/trash"), {"DELETE": (FakeDrive._empty_trash, frozenset({"driveId"}))}),
    (
        re.compile(r"/drive/v3/files"),
        {"GET": (FakeDrive._list, LIST_PARAMS), "POST": (FakeDrive._create, WRITE_PARAMS)},
    ),
    (re.compile(r"/drive/v3/files" + _FILE_ID + "/copy"), {"POST": (FakeDrive._copy, WRITE_PARAMS)}),
    (
        re.compile(r"/drive/v3/files" + _FILE_ID),
        {
            "GET": (FakeDrive._get, frozenset({"acknowledgeAbuse"})),
            "PATCH": (FakeDrive._update, UPDATE_PARAMS),
            "DELETE": (FakeDrive._delete, frozenset()),
        },
    ),
    (
        re.compile(r"/upload/drive/v3/files"),
        {"POST": (FakeDrive._upload, WRITE_PARAMS), "PUT": (FakeDrive._upload, WRITE_PARAMS)},
    ),
    (
        re.compile(r"/upload/drive/v3/files" + _FILE_ID),
        {
            "PATCH": (FakeDrive._upload, UPDATE_PARAMS),
            "POST": (FakeDrive._upload, UPDATE_PARAMS),
            "PUT": (FakeDrive._upload, UPDATE_PARAMS),
        },
    ),
]
