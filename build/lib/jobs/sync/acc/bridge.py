"""An ACC project served to rclone as WebDAV, on loopback, for the length of one sync step.

rclone stays the one sync engine (filters, dry run, incremental skip, stats and deletions behave exactly as for
any other remote); this bridge only translates WebDAV to APS calls:

    PROPFIND  -> topFolders / folder contents (paged; names, sizes and times from the tip versions)
    GET       -> signeds3download, answered as a redirect to the signed URL (rclone reads storage directly)
    PUT       -> storage + signeds3upload parts + complete + a new item, or a new version of an existing one
    MKCOL     -> a new folder;  DELETE file -> a Deleted version;  DELETE folder -> hidden: true

The server listens on 127.0.0.1 on a random port with random Basic credentials, handed to rclone as a
`webdav` remote in its encrypted config. ACC cannot set modification times, so rclone compares sizes: a file
changed without changing its size is found only with `checksum` off and a different size. Listings are cached
per folder for the step, and updated by the step's own writes.
"""

import logging
import secrets
import tempfile
import threading
from dataclasses import dataclass, field

from cheroot import wsgi
from wsgidav.dav_error import HTTP_FORBIDDEN, HTTP_INTERNAL_ERROR, DAVError
from wsgidav.dav_provider import DAVCollection, DAVNonCollection, DAVProvider
from wsgidav.wsgidav_app import WsgiDAVApp

from jobs.sync.acc.client import ApsClient, ApsError, Entry

log = logging.getLogger(__name__)


@dataclass
class Folder:
    entry: Entry
    # name -> Entry of every member, deleted files included (an upload of that name is a new version).
    members: dict[str, Entry] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class AccProject:
    """The project's tree as far as the step has looked at it."""

    def __init__(self, client: ApsClient, hub_id: str, project_id: str) -> None:
        self.client = client
        self.hub_id = hub_id
        self.project_id = project_id
        self._root: dict[str, Folder] | None = None
        self._folders: dict[str, Folder] = {}
        self._lock = threading.Lock()
        # The first APS failure, reported as the step's error rather than rclone's view of a 500.
        self.errors: list[ApsError] = []

    def record(self, exc: ApsError) -> DAVError:
        self.errors.append(exc)
        return DAVError(HTTP_INTERNAL_ERROR, str(exc))

    def top(self) -> dict[str, Folder]:
        with self._lock:
            if self._root is None:
                found = self.client.top_folders(self.hub_id, self.project_id)
                self._root = {e.name: self._folder(e) for e in found if not e.hidden}
            return self._root

    def _folder(self, entry: Entry) -> Folder:
        return self._folders.setdefault(entry.id, Folder(entry))

    def members(self, folder: Folder) -> dict[str, Entry]:
        with folder.lock:
            if folder.members is None:
                folder.members = {}
                for entry in self.client.folder_contents(self.project_id, folder.entry.id):
                    if entry.kind == "folder" and entry.hidden:
                        continue
                    folder.members[entry.name] = entry
            return folder.members

    def resolve(self, path: str) -> tuple[Folder | None, Entry | None]:
        """(parent folder, entry) for a path; the root is (None, None); a missing path raises KeyError."""
        parts = [p for p in path.strip("/").split("/") if p]
        if not parts:
            return None, None
        top = self.top()
        if parts[0] not in top:
            raise KeyError(path)
        folder = top[parts[0]]
        if len(parts) == 1:
            return None, folder.entry
        for name in parts[1:-1]:
            entry = self.members(folder).get(name)
            if entry is None or entry.kind != "folder":
                raise KeyError(path)
            folder = self._folder(entry)
        entry = self.members(folder).get(parts[-1])
        if entry is None or entry.deleted:
            raise KeyError(path)
        return folder, entry

    def folder(self, entry: Entry) -> Folder:
        return self._folder(entry)


class FileResource(DAVNonCollection):
    def __init__(
        self, path: str, environ: dict, project: AccProject, parent: Folder, name: str, entry: Entry | None
    ) -> None:
        super().__init__(path, environ)
        self.project, self.parent, self.name, self.entry = project, parent, name, entry
        self._upload = None

    def get_content_length(self):
        return self.entry.size if self.entry else 0

    def get_content_type(self):
        return "application/octet-stream"

    def get_creation_date(self):
        return self.entry.created.timestamp() if self.entry and self.entry.created else None

    def get_last_modified(self):
        return self.entry.modified.timestamp() if self.entry and self.entry.modified else None

    def get_display_name(self):
        return self.name

    def get_etag(self):
        return self.entry.version_id if self.entry else None

    def support_etag(self):
        return True

    def support_ranges(self):
        return True

    def get_content(self):
        # Never called: AccProvider.custom_request_handler answers every GET of a file with a redirect.
        raise DAVError(HTTP_INTERNAL_ERROR, "ACC files are served by redirect to their signed URL")

    def begin_write(self, *, content_type=None):
        # Spooled in the step's private temp folder: APS wants the size before the first byte.
        self._upload = tempfile.TemporaryFile()
        return _Keep(self._upload)

    def end_write(self, *, with_errors):
        upload, self._upload = self._upload, None
        try:
            if with_errors:
                return
            size = upload.seek(0, 2)
            existing = self.project.members(self.parent).get(self.name)
            try:
                entry = self.project.client.upload(
                    self.project.project_id,
                    self.parent.entry.id,
                    self.name,
                    upload,
                    size,
                    existing_item_id=existing.id if existing else None,
                )
            except ApsError as exc:
                raise self.project.record(exc) from None
            entry.size = entry.size or size
            self.project.members(self.parent)[self.name] = entry
            self.entry = entry
        finally:
            upload.close()

    def delete(self):
        try:
            self.project.client.delete_file(self.project.project_id, self.entry.id, self.name)
        except ApsError as exc:
            raise self.project.record(exc) from None
        self.entry.deleted = True

    def copy_move_single(self, dest_path, *, is_move):
        raise DAVError(HTTP_FORBIDDEN, "ACC files are not copied or moved on the server")


class _Keep:
    """WsgiDAV closes the stream it wrote to before end_write; the upload needs it open until then."""

    def __init__(self, file) -> None:
        self.file = file

    def write(self, data: bytes) -> int:
        return self.file.write(data)

    def close(self) -> None:
        self.file.flush()


class FolderResource(DAVCollection):
    def __init__(self, path: str, environ: dict, project: AccProject, folder: Folder | None) -> None:
        super().__init__(path, environ)
        self.project, self.folder = project, folder  # folder None: the project's root (its top folders)

    def _members(self) -> dict[str, Entry]:
        try:
            if self.folder is None:
                return {name: f.entry for name, f in self.project.top().items()}
            return {n: e for n, e in self.project.members(self.folder).items() if not e.deleted}
        except ApsError as exc:
            raise self.project.record(exc) from None

    def get_member_names(self):
        return sorted(self._members())

    def get_member(self, name):
        entry = self._members().get(name)
        return None if entry is None else self._resource(name, entry)

    def get_member_list(self):
        # WsgiDAV's default asks get_member per name, rebuilding the member map each time: quadratic in a
        # folder's size on every PROPFIND. One map serves the whole listing.
        members = self._members()
        return [self._resource(name, members[name]) for name in sorted(members)]

    def _resource(self, name: str, entry: Entry):
        path = self.path.rstrip("/") + "/" + name
        if entry.kind == "folder":
            return FolderResource(path, self.environ, self.project, self.project.folder(entry))
        return FileResource(path, self.environ, self.project, self.folder, name, entry)

    def get_last_modified(self):
        entry = self.folder.entry if self.folder else None
        return entry.modified.timestamp() if entry and entry.modified else None

    def create_empty_resource(self, name):
        if self.folder is None:
            raise DAVError(HTTP_FORBIDDEN, "files go inside the project's top folders")
        return FileResource(self.path.rstrip("/") + "/" + name, self.environ, self.project, self.folder, name, None)

    def create_collection(self, name):
        if self.folder is None:
            raise DAVError(HTTP_FORBIDDEN, "ACC top folders are made in ACC itself")
        try:
            entry = self.project.client.create_folder(self.project.project_id, self.folder.entry.id, name)
        except ApsError as exc:
            raise self.project.record(exc) from None
        self.project.members(self.folder)[name] = entry

    def support_recursive_delete(self):
        return True

    def delete(self):
        if self.folder is None or self.folder.entry.id in {f.entry.id for f in self.project.top().values()}:
            raise DAVError(HTTP_FORBIDDEN, "ACC top folders are not deleted by a sync")
        try:
            self.project.client.hide_folder(self.project.project_id, self.folder.entry.id)
        except ApsError as exc:
            raise self.project.record(exc) from None
        self.folder.entry.hidden = True
        self.folder.entry.deleted = True
        return []

    def copy_move_single(self, dest_path, *, is_move):
        raise DAVError(HTTP_FORBIDDEN, "ACC folders are not copied or moved on the server")


class AccProvider(DAVProvider):
    def __init__(self, project: AccProject) -> None:
        super().__init__()
        self.project = project

    def custom_request_handler(self, environ, start_response, default_handler):
        """GET of a file answers with a redirect to its signed S3 URL: rclone (Go's HTTP client, which drops our
        Basic credentials on the way to another host) then reads the bytes, ranges included, straight from
        storage, and none of them pass through Python."""
        if environ["REQUEST_METHOD"] != "GET":
            return default_handler(environ, start_response)
        try:
            _, entry = self.project.resolve(environ["PATH_INFO"])
        except KeyError:
            return default_handler(environ, start_response)  # WsgiDAV's 404
        try:
            if entry is None or entry.kind != "file":
                return default_handler(environ, start_response)
            url = self.project.client.download_url(entry.storage_id)
        except ApsError as exc:
            self.project.errors.append(exc)
            body = str(exc).encode()
            start_response("502 Bad Gateway", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
            return [body]
        start_response("302 Found", [("Location", url), ("Content-Length", "0"), ("Cache-Control", "no-store")])
        return [b""]

    def get_resource_inst(self, path: str, environ: dict):
        try:
            parent, entry = self.project.resolve(path)
        except KeyError:
            return None
        except ApsError as exc:
            raise self.project.record(exc) from None
        if entry is None:
            return FolderResource("/", environ, self.project, None)
        if entry.kind == "folder":
            return FolderResource(path, environ, self.project, self.project.folder(entry))
        return FileResource(path, environ, self.project, parent, entry.name, entry)


class Bridge:
    """The WebDAV server for one ACC remote during one step. Use as a context manager."""

    def __init__(self, project: AccProject, threads: int = 16) -> None:
        self.project = project
        self.user = "acc-" + secrets.token_hex(8)
        self.password = secrets.token_urlsafe(24)
        app = WsgiDAVApp(
            {
                "provider_mapping": {"/": AccProvider(project)},
                "http_authenticator": {"accept_basic": True, "accept_digest": False, "default_to_digest": False},
                "simple_dc": {"user_mapping": {"*": {self.user: {"password": self.password}}}},
                "dir_browser": {"enable": False},
                # Bigger reads and writes than WsgiDAV's 8 KiB: each block is a Python round trip.
                "block_size": 1024 * 1024,
                "lock_storage": None,
                "property_manager": None,
                "verbose": 1,
                "logging": {"enable": False, "enable_loggers": []},
            }
        )
        self.server = wsgi.Server(("127.0.0.1", 0), app, numthreads=threads)
        self.server.prepare()
        self.port = self.server.bind_addr[1]
        self._thread = threading.Thread(target=self.server.serve, name=f"acc-bridge-{self.port}", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def rclone_remote(self) -> dict[str, str]:
        """The remote rclone uses instead of the acc one (the password is obscured by the caller)."""
        # rclone paces WebDAV calls 10 ms apart by default, which caps a sync at about 90 small files a second;
        # the bridge is ours and on loopback, and APS's own limits are handled by the client (429 and backoff).
        return {
            "type": "webdav",
            "url": self.url,
            "vendor": "other",
            "user": self.user,
            "pass": self.password,
            "pacer_min_sleep": "1ms",
        }

    def __enter__(self) -> "Bridge":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.stop()
        self._thread.join(timeout=10)
