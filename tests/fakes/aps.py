"""A loopback fake of the Autodesk Platform Services (APS) REST APIs an Autodesk Construction Cloud (ACC) sync client
uses: Authentication v2 (refresh-token grant), Data Management v1 (hubs, projects, folders, items, versions,
storage) and OSS v2 (signed S3 download/upload), plus a tiny "S3" that serves the signed URLs.

Why a fake and not a mock: the client under test talks HTTP, so the honest test is the client talking to something
that answers like APS, on one base URL (the client's APS_BASE_URL). `FakeAps.handle` holds the request logic as a
plain function; `FakeAps.start` puts it behind a ThreadingHTTPServer on 127.0.0.1.

Shapes follow Autodesk's published OpenAPI specs (github.com/autodesk-platform-services/aps-sdk-openapi:
authentication/authentication.yaml, datamanagement/datamanagement.yaml, oss/oss.yaml). Faithfulness rules, so a bug
in the client shows up here rather than against Autodesk:
- every API request needs `Authorization: Bearer <unexpired access token>`, else 401; access tokens are JWT-shaped and
  stay valid until they expire (a refresh does not revoke the previous one, as with APS's JWTs);
- refresh tokens are single-use: a reused one is 400 invalid_grant and counted in `refresh_reuse_attempts`;
- folder contents are paged by `page[number]` (0-based) and `page[limit]` (default and maximum 200), with
  `links.next` until the last page; hidden folders and deleted items (tip version `versions:autodesk.core:Deleted`,
  item `hidden: true`) are left out unless `includeHidden=true`, as the spec documents;
- signed URLs are absolute, need no Authorization header, expire (2 minutes by default) and honour `Range`;
- multipart uploads enforce S3's minimum part size (5 MiB, configurable) for every part but the last;
- errors come in each API's own shape: JSON:API `errors` for Data Management, `{"reason"}` for OSS,
  `developerMessage`/`errorCode` for the gateway (401, 429), S3's XML for the signed URLs;
- a path, method or query parameter the fake does not know is an error and is recorded in `FakeAps.unhandled`, so a
  new client call shows up as a failing test, not as silently wrong data.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import secrets
import socket
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import NamedTuple
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

BUCKET = "wip.dm.prod"
OBJECT_URN_PREFIX = f"urn:adsk.objects:os.object:{BUCKET}/"
JSONAPI = {"version": "1.0"}
SCHEMA_BASE = "https://developer.api.autodesk.com/schema/v1/versions/"
ERROR_HELP = "https://aps.autodesk.com/en/docs/oauth/v2/developers_guide/error_handling/"

FOLDER_TYPE = "folders:autodesk.bim360:Folder"
ITEM_TYPE = "items:autodesk.bim360:File"
FILE_VERSION = "versions:autodesk.bim360:File"
DELETED_VERSION = "versions:autodesk.core:Deleted"
TOP_FOLDERS = ("Project Files", "Plans")

DM_PAGE_LIMIT_MAX = 200  # the spec: "The default value is 200. The min value is 1. The max value is 200."
S3_MIN_PART_SIZE = 5 * 1024 * 1024
ACCESS_TOKEN_LIFETIME = timedelta(hours=1)
SIGNED_URL_LIFETIME = timedelta(minutes=2)  # OSS's default minutesExpiration
USER_ID = "FAKEUSER0001"
USER_NAME = "Fake User"


def rfc3339(moment: datetime) -> str:
    """The Data Management timestamp format: UTC, millisecond precision, 'Z' suffix."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _urn_suffix() -> str:
    """22 URL-safe characters, the length of the ids in APS's examples (e.g. `co.0J4paz_FQgWPX2QRsaBkiw`)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("=")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


@dataclass
class ApsResponse:
    """What the transport must send back: status, headers and a body (already encoded)."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


class ApsCall(NamedTuple):
    """One request as the fake saw it: `method, path, query, status = call`."""

    method: str
    path: str
    query: dict[str, str]
    status: int


@dataclass
class _Folder:
    id: str
    name: str
    parent_id: str | None  # None for the project's root folder
    created: datetime
    modified: datetime
    hidden: bool = False


@dataclass
class _Version:
    id: str
    number: int
    name: str
    ext_type: str
    created: datetime
    modified: datetime
    object_key: str | None = None  # None for a Deleted version


@dataclass
class _Item:
    id: str
    lineage: str
    name: str
    parent_id: str
    created: datetime
    versions: list[_Version] = field(default_factory=list)

    @property
    def tip(self) -> _Version:
        return self.versions[-1]

    @property
    def deleted(self) -> bool:
        return self.tip.ext_type == DELETED_VERSION


@dataclass
class _Object:
    """An OSS object: created empty by POST storage, filled by a completed signed S3 upload."""

    key: str
    content: bytes | None = None
    content_type: str = "application/octet-stream"


@dataclass
class _Upload:
    key: str
    upload_key: str
    expires: datetime
    parts: dict[int, bytes] = field(default_factory=dict)


@dataclass
class _Signature:
    method: str  # GET (download) or PUT (upload part)
    key: str
    expires: datetime
    part: int | None = None
    upload_key: str | None = None


class ApiError(Exception):
    """An error response in the shape of the API that raised it; rendered by `FakeAps.handle`."""

    def __init__(self, status: int, body: bytes, content_type: str, headers: Mapping[str, str] | None = None):
        super().__init__(body.decode(errors="replace"))
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = dict(headers or {})

    def response(self) -> ApsResponse:
        return ApsResponse(self.status, {"Content-Type": self.content_type, **self.headers}, self.body)


_DM_CODES = {
    400: ("BAD_INPUT", "One or more input values in the request were bad"),
    403: ("FORBIDDEN", "Forbidden"),
    404: ("NOT_FOUND", "Unable to find the requested resource"),
    405: ("METHOD_NOT_ALLOWED", "Method not allowed"),
    409: ("CONFLICT", "Conflict"),
    500: ("INTERNAL_SERVER_ERROR", "Internal Server Error"),
    503: ("SERVICE_UNAVAILABLE", "Service Unavailable"),
}


def dm_error(status: int, detail: str, code: str | None = None, headers: Mapping[str, str] | None = None) -> ApiError:
    """A Data Management error: a JSON:API document with an `errors` array."""
    default_code, title = _DM_CODES.get(status, ("ERROR", "Error"))
    error = {"id": str(uuid.uuid4()), "status": str(status), "code": code or default_code, "title": title}
    error["detail"] = detail
    body = json.dumps({"jsonapi": JSONAPI, "errors": [error]}).encode()
    return ApiError(status, body, "application/vnd.api+json", headers)


def oss_error(status: int, reason: str, headers: Mapping[str, str] | None = None) -> ApiError:
    """An OSS error: `{"reason": ...}` (the spec's `reason` schema)."""
    return ApiError(status, json.dumps({"reason": reason}).encode(), "application/json", headers)


def gateway_error(status: int, message: str, code: str | None = None, headers: Mapping[str, str] | None = None):
    """An error from APS's API gateway (auth, rate limit): developerMessage / errorCode / moreInfo."""
    payload: dict = {"developerMessage": message}
    if code:
        payload.update({"moreInfo": ERROR_HELP, "errorCode": code})
    return ApiError(status, json.dumps(payload).encode(), "application/json", headers)


def s3_error(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> ApiError:
    """An S3 error document, as the signed URLs (which point at S3, not at APS) answer."""
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message><RequestId>{secrets.token_hex(8)}</RequestId></Error>"
    ).encode()
    return ApiError(status, body, "application/xml", headers)


def token_error(status: int, error: str, description: str) -> ApiError:
    """An Authentication v2 token-endpoint error.

    APS documents `developerMessage`/`errorCode`/`more info` for authentication errors; standard OAuth2 clients read
    RFC 6749's `error`/`error_description`. The real v2 body is not documented, so the fake sends both: a client must
    decide on the status (400 = the grant is dead, re-authorise; 401 = bad client credentials).
    """
    payload = {
        "developerMessage": description,
        "errorCode": error,
        "more info": ERROR_HELP,
        "error": error,
        "error_description": description,
    }
    return ApiError(status, json.dumps(payload).encode(), "application/json")


@dataclass
class _Fault:
    remaining: int
    status: int
    retry_after: int | None
    path_prefix: str | None


class FakeAps:
    """The in-memory APS: one ACC hub with one project, its folder tree, OSS objects, tokens. Thread-safe (one lock).

    `page_limit_cap` bounds folder-contents pages below APS's 200 so tests exercise paging with few files;
    `min_part_size` lowers S3's 5 MiB minimum part size so multipart uploads can be tested with small files.
    `include_hidden_by_default` lists hidden folders and deleted items even without `includeHidden=true`.
    """

    def __init__(
        self,
        page_limit_cap: int = DM_PAGE_LIMIT_MAX,
        min_part_size: int = S3_MIN_PART_SIZE,
        *,
        access_token_lifetime: timedelta = ACCESS_TOKEN_LIFETIME,
        signed_url_lifetime: timedelta = SIGNED_URL_LIFETIME,
        client_id: str = "fake-client-id",
        client_secret: str = "fake-client-secret",
        reject_auth_on_signed_urls: bool = False,
        include_hidden_by_default: bool = False,
    ) -> None:
        self.page_limit_cap = page_limit_cap
        self.min_part_size = min_part_size
        self.access_token_lifetime = access_token_lifetime
        self.signed_url_lifetime = signed_url_lifetime
        self.client_id = client_id
        self.client_secret = client_secret
        # Real S3 refuses a presigned URL that also carries an Authorization header; off by default (see module doc).
        self.reject_auth_on_signed_urls = reject_auth_on_signed_urls
        # What folder contents does without `includeHidden`: the spec says hidden folders and deleted items are left
        # out; True makes them listed (hidden: true, Deleted tip) to test that a client skips them when they appear.
        self.include_hidden_by_default = include_hidden_by_default
        self.hub_id = f"b.{uuid.uuid4()}"
        self.project_id = f"b.{uuid.uuid4()}"
        self.project_name = "Fake ACC Project"
        self._lock = threading.RLock()
        self._folders: dict[str, _Folder] = {}
        self._items: dict[str, _Item] = {}
        self._versions: dict[str, tuple[_Item, _Version]] = {}
        self._objects: dict[str, _Object] = {}
        self._uploads: dict[str, _Upload] = {}
        self._signatures: dict[str, _Signature] = {}
        self._access_tokens: dict[str, datetime] = {}
        self._refresh_tokens: set[str] = set()
        self._spent_refresh_tokens: set[str] = set()
        self._faults: list[_Fault] = []
        now = datetime.now(UTC)
        self.root_folder_id = self._new_folder_id()
        self._folders[self.root_folder_id] = _Folder(self.root_folder_id, f"{self.project_id[2:]}-root", None, now, now)
        for name in TOP_FOLDERS:
            self._new_folder(name, self.root_folder_id, now)
        self.refresh_reuse_attempts = 0
        self.tip_calls = 0
        self.versions_calls = 0
        # One record per token-endpoint call: grant_type, refresh_token, client_id, client_auth ("basic"/"form"), scope.
        self.token_requests: list[dict[str, str]] = []
        self.calls: list[ApsCall] = []
        self.faults: list[ApsCall] = []
        self.unhandled: list[str] = []
        # Signed-URL requests that carried an Authorization header (real S3 would refuse them).
        self.signed_url_auth_headers = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._base_url = "http://127.0.0.1:0"

    # ----- server lifecycle -----

    def start(self) -> FakeAps:
        """Serve on 127.0.0.1 (an ephemeral port) in a daemon thread; `base_url` is then valid."""
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.daemon_threads = True
        server.aps = self  # type: ignore[attr-defined]
        self._server = server
        self._base_url = f"http://127.0.0.1:{server.server_address[1]}"
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-aps", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeAps:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """The APS_BASE_URL the client must use (also the host of the signed S3 URLs)."""
        return self._base_url

    # ----- test-facing helpers -----

    def put_file(self, path: str, content: bytes, modified: datetime | None = None) -> str:
        """Create 'Top Folder/sub/name' (folders as needed) or add a version to it; return the item id.

        The first segment is a top folder ("Project Files", "Plans"; another name creates one). Hidden folders are
        skipped, as the web UI does: a visible folder of that name is created next to them.
        """
        parts = [part for part in path.split("/") if part]
        if len(parts) < 2:
            raise ValueError(f"a file lives in a top folder, e.g. 'Project Files/a.pdf', not {path!r}")
        when = (modified or datetime.now(UTC)).astimezone(UTC)
        with self._lock:
            parent = self._folders[self.root_folder_id]
            for name in parts[:-1]:
                parent = self._child_folder(parent.id, name) or self._new_folder(name, parent.id, when)
            key = self._new_object_key(parts[-1])
            self._objects[key] = _Object(key, bytes(content))
            item = self._child_item(parent.id, parts[-1])
            if item is None:
                item = self._new_item(parts[-1], parent.id, when)
            self._add_version(item, parts[-1], FILE_VERSION, key, when)
            return item.id

    def delete_file(self, path: str) -> None:
        """Delete a file as ACC does: a new tip version of type versions:autodesk.core:Deleted."""
        with self._lock:
            item = self._find_item(path)
            if item is None:
                raise KeyError(path)
            self._add_version(item, item.name, DELETED_VERSION, None, datetime.now(UTC))

    def hide_folder(self, path: str, hidden: bool = True) -> None:
        """Hide (ACC's "delete") or unhide the folder at path."""
        with self._lock:
            folder = self._find_folder(path, include_hidden=True)
            if folder is None:
                raise KeyError(path)
            folder.hidden = hidden

    def read_file(self, path: str) -> bytes | None:
        """Content of the tip version at path; None if there is no such file or its tip is Deleted."""
        with self._lock:
            item = self._find_item(path)
            if item is None or item.deleted:
                return None
            return self._objects[item.tip.object_key].content  # type: ignore[index]

    def list_paths(self) -> list[str]:
        """Sorted paths of live files: tip not Deleted and no hidden folder on the way."""
        with self._lock:
            found = []
            for item in self._items.values():
                if item.deleted:
                    continue
                folders = self._ancestors(item.parent_id)
                if any(folder.hidden for folder in folders):
                    continue
                found.append("/".join([folder.name for folder in folders] + [item.name]))
            return sorted(found)

    def versions(self, path: str) -> list[str]:
        """The extension type of each version of the file at path, oldest first ([] if there is no such file)."""
        with self._lock:
            item = self._find_item(path)
            return [] if item is None else [version.ext_type for version in item.versions]

    def folder_id(self, path: str) -> str | None:
        """The id of the visible folder at 'Project Files/sub' (or a top folder's name), or None."""
        with self._lock:
            folder = self._find_folder(path)
            return None if folder is None else folder.id

    def item_id(self, path: str) -> str | None:
        with self._lock:
            item = self._find_item(path)
            return None if item is None else item.id

    def issue_token(self, expired: bool = False) -> dict:
        """A fresh 3-legged grant in rclone's oauth2 token JSON format (plus `expires_in`).

        expired=True: the access token is already past its expiry, so the client must refresh before its first call.
        """
        with self._lock:
            access, refresh = self._mint_tokens()
            now = datetime.now(UTC)
            if expired:
                self._access_tokens[access] = now - timedelta(hours=1)
            expiry = self._access_tokens[access]
            return {
                "access_token": access,
                "token_type": "Bearer",
                "refresh_token": refresh,
                "expiry": expiry.isoformat().replace("+00:00", "Z"),
                "expires_in": max(0, int((expiry - now).total_seconds())),
            }

    def expire_access_token(self) -> None:
        """Make every access token issued so far invalid (as if an hour had passed)."""
        with self._lock:
            past = datetime.now(UTC) - timedelta(seconds=1)
            for token in self._access_tokens:
                self._access_tokens[token] = past

    def fail_next(self, n: int, status: int = 429, retry_after: int | None = 1, path_prefix: str | None = None) -> None:
        """Answer the next n requests (only those whose path starts with path_prefix, if given) with `status`.

        429 comes with `Retry-After` as APS's gateway sends it; 500/503 in the path's API shape. Without a prefix the
        signed-URL "S3" paths (/s3/...) are not affected; pass path_prefix="/s3/" to fail those. Recorded in `faults`.
        """
        with self._lock:
            self._faults.append(_Fault(n, status, retry_after, path_prefix))

    # ----- the request entry point -----

    def handle(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> ApsResponse:
        """Answer one HTTP request (`target` is the raw request-target: path and query)."""
        split = urlsplit(target)
        path = split.path
        query_pairs = parse_qsl(split.query, keep_blank_values=True)
        query = dict(query_pairs)
        lowered = {key.lower(): value for key, value in headers.items()}
        with self._lock:
            try:
                response = self._injected_fault(method, path) or self._route(
                    method, path, query, query_pairs, lowered, body
                )
            except ApiError as error:
                response = error.response()
            self.calls.append(ApsCall(method, path, query, response.status))
            return response

    def _injected_fault(self, method: str, path: str) -> ApsResponse | None:
        for fault in self._faults:
            if fault.remaining <= 0:
                continue
            if fault.path_prefix is None and path.startswith("/s3/"):
                continue
            if fault.path_prefix is not None and not path.startswith(fault.path_prefix):
                continue
            fault.remaining -= 1
            self.faults.append(ApsCall(method, path, {}, fault.status))
            extra = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
            if path.startswith("/s3/"):
                code = {503: "SlowDown", 500: "InternalError"}.get(fault.status, "ServiceUnavailable")
                return s3_error(fault.status, code, "Please reduce your request rate.", extra).response()
            if fault.status == 429:
                return gateway_error(429, "Quota limit exceeded.", headers=extra).response()
            if path.startswith(("/data/", "/project/")):
                return dm_error(fault.status, "Injected failure", headers=extra).response()
            if path.startswith("/oss/"):
                return oss_error(fault.status, "Injected failure", extra).response()
            return gateway_error(fault.status, "Injected failure", headers=extra).response()
        return None

    def _route(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        query_pairs: list[tuple[str, str]],
        headers: dict[str, str],
        body: bytes,
    ) -> ApsResponse:
        for pattern, methods, kind in _ROUTES:
            match = pattern.fullmatch(path)
            if not match:
                continue
            route = methods.get(method)
            if route is None:
                self.unhandled.append(f"{method} {path}")
                raise _not_allowed(kind, method, path)
            handler, allowed = route
            unknown = sorted(set(query) - allowed)
            if unknown:
                self.unhandled.append(f"{method} {path} params {unknown}")
                raise _bad_request(kind, f"Unsupported query parameter(s): {', '.join(unknown)}")
            args = [unquote(group) for group in match.groups()]
            if kind == "s3":
                return handler(self, method, query, headers, body, *args)
            if kind != "token":
                self._check_auth(headers)
            if kind == "dm":
                return handler(self, query, query_pairs, body, *args)
            return handler(self, query, headers, body, *args)
        self.unhandled.append(f"{method} {path}")
        if path.startswith(("/data/", "/project/")):
            raise dm_error(404, f"No such endpoint: {method} {path}")
        raise gateway_error(404, f"No such endpoint: {method} {path}")

    # ----- Authentication v2 -----

    def _mint_tokens(self) -> tuple[str, str]:
        now = datetime.now(UTC)
        expiry = now + self.access_token_lifetime
        header = {"alg": "RS256", "kid": "fake-aps-key", "typ": "JWT"}
        claims = {
            "scope": ["data:read", "data:write", "data:create"],
            "client_id": self.client_id,
            "iss": "https://developer.api.autodesk.com",
            "aud": "https://autodesk.com",
            "jti": secrets.token_urlsafe(24),
            "userid": USER_ID,
            "exp": int(expiry.timestamp()),
        }
        access = ".".join(
            [
                _b64url(json.dumps(header).encode()),
                _b64url(json.dumps(claims).encode()),
                _b64url(secrets.token_bytes(64)),
            ]
        )
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
        refresh = "".join(secrets.choice(alphabet) for _ in range(42))
        self._access_tokens[access] = expiry
        self._refresh_tokens.add(refresh)
        return access, refresh

    def _token(self, query, headers, body) -> ApsResponse:
        form = dict(parse_qsl(body.decode(errors="replace"), keep_blank_values=True))
        client_id, client_secret, client_auth = form.get("client_id"), form.get("client_secret"), "form"
        scheme, _, encoded = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic":
            try:
                basic_id, _, basic_secret = base64.b64decode(encoded).decode().partition(":")
            except ValueError:
                basic_id = basic_secret = ""
            client_id, client_secret, client_auth = unquote(basic_id), unquote(basic_secret), "basic"
        grant_type = form.get("grant_type", "")
        self.token_requests.append(
            {
                "grant_type": grant_type,
                "refresh_token": form.get("refresh_token", ""),
                "client_id": client_id or "",
                "client_auth": client_auth,
                "scope": form.get("scope", ""),
            }
        )
        if not headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            raise token_error(400, "invalid_request", "Content-Type must be application/x-www-form-urlencoded")
        if not client_id:
            raise token_error(401, "invalid_client", "No client credentials were found.")
        if client_id != self.client_id or (client_secret is not None and client_secret != self.client_secret):
            raise token_error(401, "invalid_client", "The client credentials are invalid.")
        if client_secret is None:
            raise token_error(401, "invalid_client", "The client_secret is required for this application.")
        if grant_type != "refresh_token":
            self.unhandled.append(f"token grant_type={grant_type!r}")
            raise token_error(400, "unsupported_grant_type", f"Only refresh_token is faked, not {grant_type!r}")
        presented = form.get("refresh_token", "")
        if not presented:
            raise token_error(400, "invalid_request", "The refresh_token parameter is required.")
        if presented in self._spent_refresh_tokens:
            self.refresh_reuse_attempts += 1
            raise token_error(400, "invalid_grant", "The refresh token is invalid or expired.")
        if presented not in self._refresh_tokens:
            raise token_error(400, "invalid_grant", "The refresh token is invalid or expired.")
        self._refresh_tokens.discard(presented)
        self._spent_refresh_tokens.add(presented)
        access, refresh = self._mint_tokens()
        lifetime = self.access_token_lifetime.total_seconds()
        payload = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": max(0, math.ceil(lifetime) - 1),
            "refresh_token": refresh,
        }
        return _json(200, payload)

    def _check_auth(self, headers: dict[str, str]) -> None:
        scheme, _, presented = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not presented:
            raise gateway_error(401, "The token is not provided in the request.", "AUTH-010")
        expiry = self._access_tokens.get(presented.strip())
        if expiry is None or datetime.now(UTC) >= expiry:
            raise gateway_error(401, "The token is invalid or has expired.", "AUTH-006")

    # ----- Data Management: hubs and projects -----

    def _hub(self, hub_id: str) -> None:
        if hub_id != self.hub_id:
            raise dm_error(404, f"Hub {hub_id} not found", "ERR_RESOURCE_NOT_FOUND")

    def _project(self, project_id: str) -> None:
        if project_id != self.project_id:
            raise dm_error(404, f"Project {project_id} not found", "ERR_RESOURCE_NOT_FOUND")

    def _hub_json(self) -> dict:
        return {
            "type": "hubs",
            "id": self.hub_id,
            "attributes": {
                "name": "Fake ACC Account",
                "extension": _extension("hubs:autodesk.bim360:Account", {}),
                "region": "US",
            },
            "links": {"self": {"href": f"{self._base_url}/project/v1/hubs/{self.hub_id}"}},
            "relationships": {
                "projects": {"links": {"related": {"href": f"{self._base_url}/project/v1/hubs/{self.hub_id}/projects"}}}
            },
        }

    def _project_json(self) -> dict:
        project_href = f"{self._base_url}/project/v1/hubs/{self.hub_id}/projects/{self.project_id}"
        return {
            "type": "projects",
            "id": self.project_id,
            "attributes": {
                "name": self.project_name,
                "scopes": ["b360project." + self.project_id[2:], "global"],
                "extension": _extension("projects:autodesk.bim360:Project", {"projectType": "ACC"}),
            },
            "links": {"self": {"href": project_href}},
            "relationships": {
                "hub": {
                    "data": {"type": "hubs", "id": self.hub_id},
                    "links": {"related": {"href": f"{self._base_url}/project/v1/hubs/{self.hub_id}"}},
                },
                "rootFolder": {
                    "data": {"type": "folders", "id": self.root_folder_id},
                    "meta": {"link": {"href": self._folder_href(self.root_folder_id)}},
                },
                "topFolders": {"links": {"related": {"href": f"{project_href}/topFolders"}}},
            },
        }

    def _hubs(self, query, query_pairs, body) -> ApsResponse:
        return _dm(200, {"links": {"self": {"href": f"{self._base_url}/project/v1/hubs"}}, "data": [self._hub_json()]})

    def _projects(self, query, query_pairs, body, hub_id) -> ApsResponse:
        self._hub(hub_id)
        href = f"{self._base_url}/project/v1/hubs/{hub_id}/projects"
        return _dm(200, {"links": {"self": {"href": href}}, "data": [self._project_json()]})

    def _get_project(self, query, query_pairs, body, hub_id, project_id) -> ApsResponse:
        self._hub(hub_id)
        self._project(project_id)
        return _dm(
            200,
            {"links": {"self": {"href": self._project_json()["links"]["self"]["href"]}}, "data": self._project_json()},
        )

    def _top_folders(self, query, query_pairs, body, hub_id, project_id) -> ApsResponse:
        self._hub(hub_id)
        self._project(project_id)
        folders = [f for f in self._folders.values() if f.parent_id == self.root_folder_id]
        if _flag(query, "excludeDeleted"):
            folders = [f for f in folders if not f.hidden]
        if _flag(query, "projectFilesOnly"):
            folders = [f for f in folders if f.name == "Project Files"]
        href = f"{self._base_url}/project/v1/hubs/{hub_id}/projects/{project_id}/topFolders"
        return _dm(200, {"links": {"self": {"href": href}}, "data": [self._folder_json(f) for f in folders]})

    # ----- Data Management: folders -----

    def _get_folder(self, query, query_pairs, body, project_id, folder_id) -> ApsResponse:
        self._project(project_id)
        folder = self._folder(folder_id)
        return _dm(200, {"links": {"self": {"href": self._folder_href(folder.id)}}, "data": self._folder_json(folder)})

    def _contents(self, query, query_pairs, body, project_id, folder_id) -> ApsResponse:
        self._project(project_id)
        folder = self._folder(folder_id)
        limit = _int_param(query, "page[limit]", DM_PAGE_LIMIT_MAX, 1, DM_PAGE_LIMIT_MAX)
        limit = min(limit, self.page_limit_cap)
        number = _int_param(query, "page[number]", 0, 0, None)
        include_hidden = _flag(query, "includeHidden") if "includeHidden" in query else self.include_hidden_by_default
        types = {t for t in query.get("filter[type]", "folders,items").split(",") if t}
        if not types <= {"folders", "items"}:
            raise dm_error(400, f"Invalid filter[type]: {query['filter[type]']}")
        entries: list[_Folder | _Item] = []
        if "folders" in types:
            subfolders = [f for f in self._folders.values() if f.parent_id == folder.id]
            entries += sorted((f for f in subfolders if include_hidden or not f.hidden), key=lambda f: f.name)
        if "items" in types:
            items = [i for i in self._items.values() if i.parent_id == folder.id]
            entries += sorted((i for i in items if include_hidden or not i.deleted), key=lambda i: i.name)
        page = entries[number * limit : (number + 1) * limit]
        base = f"{self._folder_href(folder.id)}/contents"

        def page_href(page_number: int) -> str:
            params = [(k, v) for k, v in query_pairs if k != "page[number]"] + [("page[number]", str(page_number))]
            return f"{base}?{urlencode(params)}"

        links: dict = {"self": {"href": f"{base}?{urlencode(query_pairs)}" if query_pairs else base}}
        if len(entries) > limit:
            links["first"] = {"href": page_href(0)}
            if number > 0:
                links["prev"] = {"href": page_href(number - 1)}
            if (number + 1) * limit < len(entries):
                links["next"] = {"href": page_href(number + 1)}
        data = [self._folder_json(e) if isinstance(e, _Folder) else self._item_json(e) for e in page]
        included = [self._version_json(e, e.tip) for e in page if isinstance(e, _Item)]
        payload: dict = {"links": links, "data": data}
        if included:
            payload["included"] = included
        return _dm(200, payload)

    def _create_folder(self, query, query_pairs, body, project_id) -> ApsResponse:
        self._project(project_id)
        data = _jsonapi_data(body, "folders")
        attributes = data.get("attributes") or {}
        name = attributes.get("name")
        _check_name(name)
        extension = attributes.get("extension") or {}
        if extension.get("type") != FOLDER_TYPE:
            raise dm_error(400, f"ACC folders need extension.type {FOLDER_TYPE}, got {extension.get('type')!r}")
        parent = self._folder(_relationship_id(data, "parent", "folders"))
        if parent.id == self.root_folder_id:
            raise dm_error(403, "Folders cannot be created in the project's root folder", "ERR_NOT_ALLOWED")
        if self._child_folder(parent.id, name) is not None:
            raise dm_error(409, "Another object with the same name already exists in this container")
        folder = self._new_folder(name, parent.id, datetime.now(UTC))
        return _dm(201, {"links": {"self": {"href": self._folder_href(folder.id)}}, "data": self._folder_json(folder)})

    def _patch_folder(self, query, query_pairs, body, project_id, folder_id) -> ApsResponse:
        self._project(project_id)
        folder = self._folder(folder_id)
        data = _jsonapi_data(body, "folders")
        if data.get("id") not in (None, folder.id):
            raise dm_error(400, "data.id does not match the folder in the URL")
        attributes = data.get("attributes") or {}
        unknown = sorted(set(attributes) - {"hidden", "name"})
        if unknown or set(data) - {"type", "id", "attributes"}:
            self.unhandled.append(f"PATCH folder fields {unknown or sorted(set(data))}")
            raise dm_error(400, f"Unsupported folder fields: {unknown or sorted(set(data))}")
        if folder.parent_id in (None, self.root_folder_id):
            raise dm_error(403, "Top-level folders cannot be modified", "ERR_NOT_ALLOWED")
        if "hidden" in attributes:
            if not isinstance(attributes["hidden"], bool):
                raise dm_error(400, "attributes.hidden must be a boolean")
            folder.hidden = attributes["hidden"]
        if "name" in attributes:
            _check_name(attributes["name"])
            clash = self._child_folder(folder.parent_id, attributes["name"])
            if clash is not None and clash.id != folder.id:
                raise dm_error(409, "Another object with the same name already exists in this container")
            folder.name = attributes["name"]
        folder.modified = datetime.now(UTC)
        return _dm(200, {"links": {"self": {"href": self._folder_href(folder.id)}}, "data": self._folder_json(folder)})

    # ----- Data Management: items and versions -----

    def _get_item(self, query, query_pairs, body, project_id, item_id) -> ApsResponse:
        self._project(project_id)
        item = self._item(item_id)
        payload = {
            "links": {"self": {"href": self._item_href(item.id)}},
            "data": self._item_json(item),
            "included": [self._version_json(item, item.tip)],
        }
        return _dm(200, payload)

    def _item_tip(self, query, query_pairs, body, project_id, item_id) -> ApsResponse:
        self.tip_calls += 1
        self._project(project_id)
        item = self._item(item_id)
        return _dm(
            200,
            {"links": {"self": {"href": self._version_href(item.tip.id)}}, "data": self._version_json(item, item.tip)},
        )

    def _item_versions(self, query, query_pairs, body, project_id, item_id) -> ApsResponse:
        self.versions_calls += 1
        self._project(project_id)
        item = self._item(item_id)
        limit = min(_int_param(query, "page[limit]", DM_PAGE_LIMIT_MAX, 1, DM_PAGE_LIMIT_MAX), self.page_limit_cap)
        number = _int_param(query, "page[number]", 0, 0, None)
        newest_first = list(reversed(item.versions))
        page = newest_first[number * limit : (number + 1) * limit]
        base = f"{self._item_href(item.id)}/versions"
        links: dict = {"self": {"href": base}}
        if (number + 1) * limit < len(newest_first):
            params = [(k, v) for k, v in query_pairs if k != "page[number]"] + [("page[number]", str(number + 1))]
            links["next"] = {"href": f"{base}?{urlencode(params)}"}
        return _dm(200, {"links": links, "data": [self._version_json(item, v) for v in page]})

    def _get_version(self, query, query_pairs, body, project_id, version_id) -> ApsResponse:
        self._project(project_id)
        found = self._versions.get(version_id)
        if found is None:
            raise dm_error(404, f"Version {version_id} not found", "ERR_RESOURCE_NOT_FOUND")
        item, version = found
        return _dm(
            200,
            {"links": {"self": {"href": self._version_href(version.id)}}, "data": self._version_json(item, version)},
        )

    def _create_storage(self, query, query_pairs, body, project_id) -> ApsResponse:
        self._project(project_id)
        data = _jsonapi_data(body, "objects")
        name = (data.get("attributes") or {}).get("name")
        _check_name(name)
        target = (data.get("relationships") or {}).get("target", {}).get("data") or {}
        if target.get("type") not in ("folders", "items") or not target.get("id"):
            raise dm_error(400, "relationships.target.data must name a folder (or item)")
        if target["type"] == "folders":
            target_href = self._folder_href(self._folder(target["id"]).id)
        else:
            target_href = self._item_href(self._item(target["id"]).id)
        key = self._new_object_key(name)
        self._objects[key] = _Object(key)
        payload = {
            "links": {"self": {"href": f"{self._base_url}/oss/v2/buckets/{BUCKET}/objects/{quote(key)}"}},
            "data": {
                "type": "objects",
                "id": OBJECT_URN_PREFIX + key,
                "relationships": {
                    "target": {
                        "links": {"related": {"href": target_href}},
                        "data": {"type": target["type"], "id": target["id"]},
                    }
                },
            },
        }
        return _dm(201, payload)

    def _create_item(self, query, query_pairs, body, project_id) -> ApsResponse:
        self._project(project_id)
        document = _json_body(body)
        data = _jsonapi_data(body, "items")
        attributes = data.get("attributes") or {}
        if (attributes.get("extension") or {}).get("type") != ITEM_TYPE:
            raise dm_error(400, f"ACC items need extension.type {ITEM_TYPE}")
        parent = self._folder(_relationship_id(data, "parent", "folders"))
        tip_ref = _relationship_id(data, "tip", "versions")
        included = document.get("included") or []
        version = next((v for v in included if v.get("type") == "versions" and v.get("id") == tip_ref), None)
        if version is None:
            raise dm_error(400, "included must hold the tip version named by relationships.tip")
        version_attributes = version.get("attributes") or {}
        name = version_attributes.get("name") or attributes.get("displayName")
        _check_name(name)
        if (version_attributes.get("extension") or {}).get("type") != FILE_VERSION:
            raise dm_error(400, f"The first version of an ACC item needs extension.type {FILE_VERSION}")
        key = self._uploaded_object(version)
        if self._child_item(parent.id, name) is not None:
            raise dm_error(409, "Another object with the same name already exists in this container")
        now = datetime.now(UTC)
        item = self._new_item(name, parent.id, now)
        tip = self._add_version(item, name, FILE_VERSION, key, now)
        payload = {
            "links": {"self": {"href": self._item_href(item.id)}},
            "data": self._item_json(item),
            "included": [self._version_json(item, tip)],
        }
        return _dm(201, payload)

    def _create_version(self, query, query_pairs, body, project_id) -> ApsResponse:
        self._project(project_id)
        data = _jsonapi_data(body, "versions")
        attributes = data.get("attributes") or {}
        name = attributes.get("name")
        _check_name(name)
        ext_type = (attributes.get("extension") or {}).get("type")
        item = self._item(_relationship_id(data, "item", "items"))
        if ext_type == FILE_VERSION:
            key = self._uploaded_object(data)
        elif ext_type == DELETED_VERSION:
            if (data.get("relationships") or {}).get("storage"):
                raise dm_error(400, "A Deleted version has no storage")
            key = None
        else:
            self.unhandled.append(f"version extension.type {ext_type!r}")
            raise dm_error(400, f"Unsupported version extension.type {ext_type!r}")
        clash = self._child_item(item.parent_id, name)
        if clash is not None and clash.id != item.id:
            raise dm_error(409, "Another object with the same name already exists in this container")
        version = self._add_version(item, name, ext_type, key, datetime.now(UTC))
        payload = {
            "links": {"self": {"href": self._version_href(version.id)}},
            "data": self._version_json(item, version),
            "included": [self._item_json(item)],
        }
        return _dm(201, payload)

    def _uploaded_object(self, resource: dict) -> str:
        """The object key of resource.relationships.storage, which must hold a completed upload."""
        storage = ((resource.get("relationships") or {}).get("storage") or {}).get("data") or {}
        urn = storage.get("id") or ""
        if storage.get("type") != "objects" or not urn.startswith(OBJECT_URN_PREFIX):
            raise dm_error(400, f"relationships.storage.data must be an objects URN in {BUCKET}, got {urn!r}")
        obj = self._objects.get(urn.removeprefix(OBJECT_URN_PREFIX))
        if obj is None or obj.content is None:
            raise dm_error(400, f"Storage {urn} has no uploaded content (complete the signed S3 upload first)")
        return obj.key

    # ----- OSS v2 -----

    def _object(self, bucket: str, key: str) -> _Object:
        if bucket != BUCKET:
            raise oss_error(403, f"Access to bucket {bucket} is not allowed")
        obj = self._objects.get(key)
        if obj is None:
            raise oss_error(404, "Object not found")
        return obj

    def _signeds3download(self, query, headers, body, bucket, key) -> ApsResponse:
        obj = self._object(bucket, key)
        if obj.content is None:
            raise oss_error(404, "Object not found")
        expires = self._url_expiry(query)
        signature = self._sign(_Signature("GET", key, expires))
        payload = {
            "status": "complete",
            "url": self._s3_url(key, signature, expires),
            "params": {},
            "size": len(obj.content),
            "sha1": hashlib.sha1(obj.content).hexdigest(),
        }
        return _json(200, payload)

    def _signeds3upload_urls(self, query, headers, body, bucket, key) -> ApsResponse:
        self._object(bucket, key)
        parts = _oss_int(query, "parts", 1, 1)
        first = _oss_int(query, "firstPart", 1, 1)
        now = datetime.now(UTC)
        if "uploadKey" in query:
            upload = self._uploads.get(query["uploadKey"])
            if upload is None or upload.key != key or upload.expires <= now:
                raise oss_error(400, f"uploadKey {query['uploadKey']} is not an active upload of {key}")
        else:
            upload = _Upload(key, secrets.token_urlsafe(48), now + timedelta(hours=24))
            self._uploads[upload.upload_key] = upload
        expires = self._url_expiry(query)
        urls = []
        for part in range(first, first + parts):
            signature = self._sign(_Signature("PUT", key, expires, part, upload.upload_key))
            urls.append(self._s3_url(key, signature, expires, part, upload.upload_key))
        payload = {
            "uploadKey": upload.upload_key,
            "uploadExpiration": rfc3339(upload.expires),
            "urlExpiration": rfc3339(expires),
            "urls": urls,
        }
        return _json(200, payload)

    def _signeds3upload_complete(self, query, headers, body, bucket, key) -> ApsResponse:
        obj = self._object(bucket, key)
        if not headers.get("content-type", "").startswith("application/json"):
            raise oss_error(400, "Content-Type must be application/json")
        try:
            request = json.loads(body or b"{}")
        except ValueError as error:
            raise oss_error(400, "The request body is not JSON") from error
        upload = self._uploads.get(request.get("uploadKey") or "")
        if upload is None or upload.key != key:
            raise oss_error(400, f"uploadKey {request.get('uploadKey')!r} is not an active upload of {key}")
        if not upload.parts:
            raise oss_error(400, "No parts were uploaded")
        last = max(upload.parts)
        etags = request.get("eTags")
        statuses = []
        for number in range(1, last + 1):
            part = upload.parts.get(number)
            status = "Pending" if part is None else "Ok"
            if part is not None and number != last and len(part) < self.min_part_size:
                status = "TooSmall"
            if part is not None and etags is not None:
                expected = etags[number - 1].strip('"') if number - 1 < len(etags) else None
                if expected != hashlib.md5(part).hexdigest():
                    status = "Unexpected" if status == "Ok" else f"Unexpected+{status}"
            statuses.append(
                {
                    "firstPart": number,
                    "status": status,
                    "size": len(part or b""),
                    "eTag": hashlib.md5(part).hexdigest() if part is not None else None,
                }
            )
        bad = [s for s in statuses if s["status"] != "Ok"]
        if bad:
            # S3 answers a small non-final part with EntityTooSmall; OSS reports each part's status.
            reason = "EntityTooSmall: " if any("TooSmall" in s["status"] for s in bad) else ""
            reason += f"Part(s) {[s['firstPart'] for s in bad]} are not valid: {[s['status'] for s in bad]}"
            raise ApiError(
                400, json.dumps({"status": "error", "reason": reason, "parts": statuses}).encode(), "application/json"
            )
        content = b"".join(upload.parts[n] for n in range(1, last + 1))
        if request.get("size") is not None and request["size"] != len(content):
            raise oss_error(400, f"Size mismatch: expected {request['size']}, uploaded {len(content)}")
        obj.content = content
        obj.content_type = headers.get("x-ads-meta-content-type", obj.content_type)
        del self._uploads[upload.upload_key]
        payload = {
            "bucketKey": BUCKET,
            "objectId": OBJECT_URN_PREFIX + key,
            "objectKey": key,
            "size": len(content),
            "contentType": obj.content_type,
            "location": f"{self._base_url}/oss/v2/buckets/{BUCKET}/objects/{quote(key)}",
        }
        return _json(200, payload)

    def _legacy_object(self, query, headers, body, bucket, key) -> ApsResponse:
        # The direct OSS download/upload endpoints were retired in favour of signed S3 URLs.
        self.unhandled.append(f"legacy OSS object endpoint for {bucket}/{key}")
        raise oss_error(403, "Legacy endpoint is deprecated; use signeds3download / signeds3upload")

    # ----- the signed-URL "S3" -----

    def _url_expiry(self, query: dict[str, str]) -> datetime:
        lifetime = self.signed_url_lifetime
        if "minutesExpiration" in query:
            lifetime = timedelta(minutes=_oss_int(query, "minutesExpiration", 2, 1, 60))
        return datetime.now(UTC) + lifetime

    def _sign(self, signature: _Signature) -> str:
        token = secrets.token_hex(32)
        self._signatures[token] = signature
        return token

    def _s3_url(self, key: str, signature: str, expires: datetime, part: int | None = None, upload: str | None = None):
        params = []
        if part is not None:
            params += [("uploadId", upload), ("partNumber", str(part))]
        params += [
            ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
            ("X-Amz-Date", expires.strftime("%Y%m%dT%H%M%SZ")),
            ("X-Amz-Expires", str(max(1, int((expires - datetime.now(UTC)).total_seconds())))),
            ("X-Amz-SignedHeaders", "host"),
            ("X-Amz-Signature", signature),
        ]
        return f"{self._base_url}/s3/{BUCKET}/{quote(key)}?{urlencode(params)}"

    def _s3(self, method, query, headers, body, bucket, key) -> ApsResponse:
        if "authorization" in headers:
            self.signed_url_auth_headers += 1
            if self.reject_auth_on_signed_urls:
                raise s3_error(
                    400,
                    "InvalidArgument",
                    "Only one auth mechanism allowed; only the X-Amz-Algorithm query "
                    "parameter, Signature query string parameter or the Authorization header should be specified",
                )
        signature = self._signatures.get(query.get("X-Amz-Signature", ""))
        expected = "GET" if method == "HEAD" else method
        if (
            signature is None
            or bucket != BUCKET
            or signature.key != key
            or signature.method != expected
            or (signature.part is not None and query.get("partNumber") != str(signature.part))
        ):
            raise s3_error(403, "SignatureDoesNotMatch", "The request signature we calculated does not match")
        if datetime.now(UTC) >= signature.expires:
            raise s3_error(403, "AccessDenied", "Request has expired")
        if method == "PUT":
            upload = self._uploads.get(signature.upload_key or "")
            if upload is None:
                raise s3_error(404, "NoSuchUpload", "The specified upload does not exist.")
            upload.parts[signature.part] = body  # type: ignore[index]
            return ApsResponse(200, {"ETag": f'"{hashlib.md5(body).hexdigest()}"', "Content-Length": "0"})
        obj = self._objects.get(key)
        if obj is None or obj.content is None:
            raise s3_error(404, "NoSuchKey", "The specified key does not exist.")
        response = _ranged(obj.content, obj.content_type, headers.get("range"))
        if method == "HEAD":
            response.headers["Content-Length"] = str(len(response.body))
            response.body = b""
        return response

    # ----- state helpers -----

    def _new_folder_id(self) -> str:
        return f"urn:adsk.wipprod:fs.folder:co.{_urn_suffix()}"

    def _new_folder(self, name: str, parent_id: str, when: datetime) -> _Folder:
        folder = _Folder(self._new_folder_id(), name, parent_id, when, when)
        self._folders[folder.id] = folder
        return folder

    def _new_item(self, name: str, parent_id: str, when: datetime) -> _Item:
        lineage = _urn_suffix()
        item = _Item(f"urn:adsk.wipprod:dm.lineage:{lineage}", lineage, name, parent_id, when)
        self._items[item.id] = item
        return item

    def _add_version(self, item: _Item, name: str, ext_type: str, key: str | None, when: datetime) -> _Version:
        number = len(item.versions) + 1
        version = _Version(
            f"urn:adsk.wipprod:fs.file:vf.{item.lineage}?version={number}", number, name, ext_type, when, when, key
        )
        item.versions.append(version)
        item.name = name
        self._versions[version.id] = (item, version)
        return version

    def _new_object_key(self, name: str) -> str:
        extension = name.rpartition(".")[2] if "." in name else ""
        return f"{uuid.uuid4()}.{extension}" if extension else str(uuid.uuid4())

    def _folder(self, folder_id: str) -> _Folder:
        folder = self._folders.get(folder_id)
        if folder is None:
            raise dm_error(404, f"Folder {folder_id} not found", "ERR_RESOURCE_NOT_FOUND")
        return folder

    def _item(self, item_id: str) -> _Item:
        item = self._items.get(item_id)
        if item is None:
            raise dm_error(404, f"Item {item_id} not found", "ERR_RESOURCE_NOT_FOUND")
        return item

    def _child_folder(self, parent_id: str | None, name: str, include_hidden: bool = False) -> _Folder | None:
        for folder in self._folders.values():
            if folder.parent_id == parent_id and folder.name == name and (include_hidden or not folder.hidden):
                return folder
        return None

    def _child_item(self, parent_id: str, name: str) -> _Item | None:
        # Deleted items keep their name: a new upload must become a new version of them (or get a 409).
        for item in self._items.values():
            if item.parent_id == parent_id and item.name == name:
                return item
        return None

    def _find_folder(self, path: str, include_hidden: bool = False) -> _Folder | None:
        folder: _Folder | None = self._folders[self.root_folder_id]
        for name in [part for part in path.split("/") if part]:
            folder = self._child_folder(folder.id, name, include_hidden)  # type: ignore[union-attr]
            if folder is None:
                return None
        return folder

    def _find_item(self, path: str) -> _Item | None:
        folder_path, _, name = path.rstrip("/").rpartition("/")
        folder = self._find_folder(folder_path)
        return None if folder is None else self._child_item(folder.id, name)

    def _ancestors(self, folder_id: str) -> list[_Folder]:
        """The folders from the top folder down to folder_id (the root excluded)."""
        chain = []
        current = self._folders[folder_id]
        while current.parent_id is not None:
            chain.append(current)
            current = self._folders[current.parent_id]
        return list(reversed(chain))

    # ----- JSON:API rendering -----

    def _project_href(self) -> str:
        return f"{self._base_url}/data/v1/projects/{self.project_id}"

    def _folder_href(self, folder_id: str) -> str:
        return f"{self._project_href()}/folders/{quote(folder_id, safe='')}"

    def _item_href(self, item_id: str) -> str:
        return f"{self._project_href()}/items/{quote(item_id, safe='')}"

    def _version_href(self, version_id: str) -> str:
        return f"{self._project_href()}/versions/{quote(version_id, safe='')}"

    def _folder_json(self, folder: _Folder) -> dict:
        href = self._folder_href(folder.id)
        children = [f for f in self._folders.values() if f.parent_id == folder.id]
        children_items = [i for i in self._items.values() if i.parent_id == folder.id]
        data: dict = {
            "type": "folders",
            "id": folder.id,
            "attributes": {
                "name": folder.name,
                "displayName": folder.name,
                "createTime": rfc3339(folder.created),
                "createUserId": USER_ID,
                "createUserName": USER_NAME,
                "lastModifiedTime": rfc3339(folder.modified),
                "lastModifiedUserId": USER_ID,
                "lastModifiedUserName": USER_NAME,
                "lastModifiedTimeRollup": rfc3339(folder.modified),
                "objectCount": len(children) + len(children_items),
                "hidden": folder.hidden,
                "extension": _extension(
                    FOLDER_TYPE,
                    {
                        "allowedTypes": ["folders", "items:autodesk.bim360:File"],
                        "visibleTypes": ["folders", "items:autodesk.bim360:File"],
                        "namingStandardIds": [],
                    },
                ),
            },
            "links": {"self": {"href": href}},
            "relationships": {
                "refs": {
                    "links": {"self": {"href": f"{href}/relationships/refs"}, "related": {"href": f"{href}/refs"}}
                },
                "links": {"links": {"self": {"href": f"{href}/relationships/links"}}},
                "contents": {"links": {"related": {"href": f"{href}/contents"}}},
            },
        }
        parent: dict = {"links": {"related": {"href": f"{href}/parent"}}}
        if folder.parent_id is not None:
            parent["data"] = {"type": "folders", "id": folder.parent_id}
        data["relationships"]["parent"] = parent
        return data

    def _item_json(self, item: _Item) -> dict:
        href = self._item_href(item.id)
        tip = item.tip
        return {
            "type": "items",
            "id": item.id,
            "attributes": {
                "displayName": item.name,
                "createTime": rfc3339(item.created),
                "createUserId": USER_ID,
                "createUserName": USER_NAME,
                "lastModifiedTime": rfc3339(tip.modified),
                "lastModifiedUserId": USER_ID,
                "lastModifiedUserName": USER_NAME,
                "hidden": item.deleted,
                "reserved": False,
                "extension": _extension(ITEM_TYPE, {}),
            },
            "links": {"self": {"href": href}},
            "relationships": {
                "tip": {"data": {"type": "versions", "id": tip.id}, "links": {"related": {"href": f"{href}/tip"}}},
                "versions": {"links": {"related": {"href": f"{href}/versions"}}},
                "parent": {
                    "data": {"type": "folders", "id": item.parent_id},
                    "links": {"related": {"href": f"{href}/parent"}},
                },
                "refs": {
                    "links": {"self": {"href": f"{href}/relationships/refs"}, "related": {"href": f"{href}/refs"}}
                },
                "links": {"links": {"self": {"href": f"{href}/relationships/links"}}},
            },
        }

    def _version_json(self, item: _Item, version: _Version) -> dict:
        href = self._version_href(version.id)
        attributes: dict = {
            "name": version.name,
            "displayName": version.name,
            "createTime": rfc3339(version.created),
            "createUserId": USER_ID,
            "createUserName": USER_NAME,
            "lastModifiedTime": rfc3339(version.modified),
            "lastModifiedUserId": USER_ID,
            "lastModifiedUserName": USER_NAME,
            "versionNumber": version.number,
        }
        relationships: dict = {
            "item": {"data": {"type": "items", "id": item.id}, "links": {"related": {"href": f"{href}/item"}}},
            "refs": {"links": {"self": {"href": f"{href}/relationships/refs"}, "related": {"href": f"{href}/refs"}}},
            "links": {"links": {"self": {"href": f"{href}/relationships/links"}}},
        }
        extension_data: dict = {}
        if version.object_key is not None:
            obj = self._objects[version.object_key]
            file_type = version.name.rpartition(".")[2].lower() if "." in version.name else ""
            attributes.update({"mimeType": obj.content_type, "storageSize": len(obj.content or b"")})
            if file_type:
                attributes["fileType"] = file_type
            urn = OBJECT_URN_PREFIX + version.object_key
            scopes = f"b360project.{self.project_id[2:]},global"
            oss_href = f"{self._base_url}/oss/v2/buckets/{BUCKET}/objects/{quote(version.object_key)}?scopes={scopes}"
            relationships["storage"] = {"data": {"type": "objects", "id": urn}, "meta": {"link": {"href": oss_href}}}
            extension_data = {
                "processState": "PROCESSING_COMPLETE",
                "sourceFileName": version.name,
                "storageUrn": urn,
                "storageType": "OSS",
                "conformingStatus": "NONE",
            }
        attributes["extension"] = _extension(version.ext_type, extension_data)
        return {
            "type": "versions",
            "id": version.id,
            "attributes": attributes,
            "links": {"self": {"href": href}},
            "relationships": relationships,
        }


# ----- module helpers -----


def _extension(ext_type: str, data: dict) -> dict:
    return {
        "type": ext_type,
        "version": "1.0",
        "schema": {"href": SCHEMA_BASE + quote(f"{ext_type}-1.0", safe="")},
        "data": data,
    }


def _json(status: int, payload: dict) -> ApsResponse:
    return ApsResponse(status, {"Content-Type": "application/json; charset=utf-8"}, json.dumps(payload).encode())


def _dm(status: int, payload: dict) -> ApsResponse:
    """A Data Management JSON:API document."""
    body = json.dumps({"jsonapi": JSONAPI, **payload}).encode()
    return ApsResponse(status, {"Content-Type": "application/vnd.api+json"}, body)


def _flag(query: dict[str, str], name: str) -> bool:
    value = query.get(name, "false").lower()
    if value not in ("true", "false"):
        raise dm_error(400, f"{name} must be true or false, got {value!r}")
    return value == "true"


def _int_param(query: dict[str, str], name: str, default: int, low: int, high: int | None) -> int:
    if name not in query:
        return default
    try:
        value = int(query[name])
    except ValueError as error:
        raise dm_error(400, f"{name} must be an integer, got {query[name]!r}") from error
    if value < low or (high is not None and value > high):
        raise dm_error(400, f"{name} must be between {low} and {high if high is not None else 'infinity'}")
    return value


def _oss_int(query: dict[str, str], name: str, default: int, low: int, high: int | None = None) -> int:
    if name not in query:
        return default
    try:
        value = int(query[name])
    except ValueError as error:
        raise oss_error(400, f"{name} must be an integer") from error
    if value < low or (high is not None and value > high):
        raise oss_error(400, f"{name} is out of range")
    return value


def _json_body(body: bytes) -> dict:
    try:
        document = json.loads(body)
    except ValueError as error:
        raise dm_error(400, "The request body is not valid JSON") from error
    if not isinstance(document, dict) or not isinstance(document.get("data"), dict):
        raise dm_error(400, "The request body must be a JSON:API document with a data object")
    return document


def _jsonapi_data(body: bytes, expected_type: str) -> dict:
    data = _json_body(body)["data"]
    if data.get("type") != expected_type:
        raise dm_error(400, f"data.type must be {expected_type!r}, got {data.get('type')!r}")
    return data


def _relationship_id(data: dict, name: str, expected_type: str) -> str:
    ref = ((data.get("relationships") or {}).get(name) or {}).get("data") or {}
    if ref.get("type") != expected_type or not ref.get("id"):
        raise dm_error(400, f"relationships.{name}.data must be {{type: {expected_type}, id}}")
    return ref["id"]


_RESERVED_NAME_CHARS = set('<>:"/\\|?*\n\r\t\0\f')


def _check_name(name: object) -> None:
    if not isinstance(name, str) or not 1 <= len(name) <= 255 or set(name) & _RESERVED_NAME_CHARS:
        raise dm_error(400, f'Invalid name {name!r}: 1-255 characters, none of < > : " / \\ | ? *')


def _ranged(content: bytes, content_type: str, range_header: str | None) -> ApsResponse:
    """S3 GET semantics for a single `Range: bytes=` spec: 206 with Content-Range, or 416."""
    headers = {
        "Content-Type": content_type,
        "Accept-Ranges": "bytes",
        "ETag": f'"{hashlib.md5(content).hexdigest()}"',
    }
    match = re.fullmatch(r"bytes=(\d*)-(\d*)", (range_header or "").strip())
    if not match or match.groups() == ("", ""):
        return ApsResponse(200, headers, content)
    first, last = match.groups()
    size = len(content)
    if first == "":
        start, end = max(0, size - int(last)), size - 1
    else:
        start, end = int(first), min(int(last), size - 1) if last else size - 1
    if start >= size or start > end:
        raise s3_error(
            416, "InvalidRange", "The requested range is not satisfiable", {"Content-Range": f"bytes */{size}"}
        )
    headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    return ApsResponse(206, headers, content[start : end + 1])


def _not_allowed(kind: str, method: str, path: str) -> ApiError:
    if kind == "dm":
        return dm_error(405, f"Method {method} not allowed on {path}")
    if kind == "s3":
        return s3_error(405, "MethodNotAllowed", "The specified method is not allowed against this resource.")
    return gateway_error(405, f"Method {method} not allowed on {path}")


def _bad_request(kind: str, message: str) -> ApiError:
    if kind == "dm":
        return dm_error(400, message)
    if kind == "s3":
        return s3_error(400, "InvalidArgument", message)
    if kind == "token":
        return token_error(400, "invalid_request", message)
    return oss_error(400, message)


_SEG = r"([^/]+)"
_PAGE = frozenset({"page[number]", "page[limit]"})
_DOWNLOAD_PARAMS = frozenset(
    {
        "minutesExpiration",
        "response-content-type",
        "response-content-disposition",
        "response-cache-control",
        "public-resource-fallback",
        "useCdn",
    }
)
_UPLOAD_PARAMS = frozenset({"parts", "firstPart", "uploadKey", "minutesExpiration", "useAcceleration"})
_S3_PARAMS = frozenset(
    {
        "uploadId",
        "partNumber",
        "X-Amz-Algorithm",
        "X-Amz-Date",
        "X-Amz-Expires",
        "X-Amz-SignedHeaders",
        "X-Amz-Signature",
        "X-Amz-Credential",
    }
)
_NONE: frozenset[str] = frozenset()
_Route = tuple[Callable, frozenset[str]]
_ROUTES: list[tuple[re.Pattern, dict[str, _Route], str]] = [
    (re.compile(r"/authentication/v2/token"), {"POST": (FakeAps._token, _NONE)}, "token"),
    (re.compile(r"/project/v1/hubs"), {"GET": (FakeAps._hubs, frozenset({"filter[id]", "filter[name]"}))}, "dm"),
    (re.compile(r"/project/v1/hubs/" + _SEG + "/projects"), {"GET": (FakeAps._projects, _PAGE)}, "dm"),
    (re.compile(r"/project/v1/hubs/" + _SEG + "/projects/" + _SEG), {"GET": (FakeAps._get_project, _NONE)}, "dm"),
    (
        re.compile(r"/project/v1/hubs/" + _SEG + "/projects/" + _SEG + "/topFolders"),
        {"GET": (FakeAps._top_folders, frozenset({"excludeDeleted", "projectFilesOnly"}))},
        "dm",
    ),
    (re.compile(r"/data/v1/projects/" + _SEG + "/folders"), {"POST": (FakeAps._create_folder, _NONE)}, "dm"),
    (
        re.compile(r"/data/v1/projects/" + _SEG + "/folders/" + _SEG),
        {"GET": (FakeAps._get_folder, _NONE), "PATCH": (FakeAps._patch_folder, _NONE)},
        "dm",
    ),
    (
        re.compile(r"/data/v1/projects/" + _SEG + "/folders/" + _SEG + "/contents"),
        {"GET": (FakeAps._contents, _PAGE | {"includeHidden", "filter[type]"})},
        "dm",
    ),
    (re.compile(r"/data/v1/projects/" + _SEG + "/items"), {"POST": (FakeAps._create_item, _NONE)}, "dm"),
    (re.compile(r"/data/v1/projects/" + _SEG + "/items/" + _SEG), {"GET": (FakeAps._get_item, _NONE)}, "dm"),
    (re.compile(r"/data/v1/projects/" + _SEG + "/items/" + _SEG + "/tip"), {"GET": (FakeAps._item_tip, _NONE)}, "dm"),
    (
        re.compile(r"/data/v1/projects/" + _SEG + "/items/" + _SEG + "/versions"),
        {"GET": (FakeAps._item_versions, _PAGE)},
        "dm",
    ),
    (re.compile(r"/data/v1/projects/" + _SEG + "/versions"), {"POST": (FakeAps._create_version, _NONE)}, "dm"),
    (re.compile(r"/data/v1/projects/" + _SEG + "/versions/" + _SEG), {"GET": (FakeAps._get_version, _NONE)}, "dm"),
    (re.compile(r"/data/v1/projects/" + _SEG + "/storage"), {"POST": (FakeAps._create_storage, _NONE)}, "dm"),
    (
        re.compile(r"/oss/v2/buckets/" + _SEG + "/objects/" + _SEG + "/signeds3download"),
        {"GET": (FakeAps._signeds3download, _DOWNLOAD_PARAMS)},
        "oss",
    ),
    (
        re.compile(r"/oss/v2/buckets/" + _SEG + "/objects/" + _SEG + "/signeds3upload"),
        {"GET": (FakeAps._signeds3upload_urls, _UPLOAD_PARAMS), "POST": (FakeAps._signeds3upload_complete, _NONE)},
        "oss",
    ),
    (
        re.compile(r"/oss/v2/buckets/" + _SEG + "/objects/" + _SEG),
        {"GET": (FakeAps._legacy_object, frozenset({"scopes"})), "PUT": (FakeAps._legacy_object, _NONE)},
        "oss",
    ),
    (
        re.compile(r"/s3/" + _SEG + "/" + _SEG),
        {"GET": (FakeAps._s3, _S3_PARAMS), "HEAD": (FakeAps._s3, _S3_PARAMS), "PUT": (FakeAps._s3, _S3_PARAMS)},
        "s3",
    ),
]


class _Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 (keep-alive) transport for `FakeAps.handle`."""

    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; without this, Nagle + delayed ACK add ~40 ms per keep-alive request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _serve(self) -> None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = self._read_chunked()
        else:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
        response = self.server.aps.handle(self.command, self.path, dict(self.headers.items()), body)  # type: ignore[attr-defined]
        self.send_response(response.status)
        headers = dict(response.headers)
        headers.setdefault("Content-Length", str(len(response.body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD" and response.body:
            self.wfile.write(response.body)

    def _read_chunked(self) -> bytes:
        chunks = []
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline()

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def log_message(self, format: str, *args: object) -> None:
        pass
