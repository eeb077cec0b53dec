"""Run logs: human-readable lines written through Django's storage API, downloaded through signed links.

A link (`/logs/<token>`) is a TimestampSigner token (SECRET_KEY, SECRET_KEY_FALLBACKS honoured) holding the run id,
the holder it was issued to, and a MAC of both made with the run's own random `log_key`: SECRET_KEY alone forges
nothing, a link names one holder, and the download checks that holder may still read the run's instance.
"""

import logging
import os
import re
import tempfile
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, default_storage
from django.http import HttpRequest
from django.urls import reverse
from django.utils.crypto import constant_time_compare, salted_hmac

from jobs.models import JobHistory
from jobs.recent_runs import Run
from pointscene.core.access import Principal, linked_instance_ids

log = logging.getLogger(__name__)

SALT = "pointscene.jobs.run-log.v2"
# Who a link was issued to: an OAuth application ("a<id>"), a user of a password-grant token ("u<id>"), or the
# operator console ("o": opens only in a signed-in staff session that may view runs).
_HOLDER = re.compile(r"^(?:[au][1-9][0-9]{0,18}|o)$")
OPERATOR = "o"


class RunLog:
    """Collects a run's log in a private temporary file; stores what it has so far while the run goes on (every
    JOBS_PROGRESS_SECONDS, by the run's Watch), and the whole log at the end, at the same path."""

    def __init__(self) -> None:
        self._file = tempfile.SpooledTemporaryFile(max_size=1 << 20, mode="w+b")
        self._lock = threading.Lock()
        self._written = 0
        self._stored = 0

    def line(self, message: str) -> None:
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        with self._lock:
            for part in str(message).splitlines() or [""]:
                data = f"{stamp} {part}\n".encode(errors="replace")
                self._file.write(data)
                self._written += len(data)

    def save(self, path: str) -> str:
        """The whole log, stored at `path` (replacing what was stored so far)."""
        return _replace(path, self._snapshot())

    def save_so_far(self, path: str) -> str | None:
        """What the log holds now, stored at `path` if it grew since the last store; None when it did not. The copy
        is taken under the lock and stored outside it, so steps keep logging while a slow storage writes."""
        content = self._snapshot(only_if_grown=True)
        return None if content is None else _replace(path, content)

    def _snapshot(self, only_if_grown: bool = False) -> bytes | None:
        with self._lock:
            if only_if_grown and self._written == self._stored:
                return None
            self._file.flush()
            self._file.seek(0)
            content, self._stored = self._file.read(), self._written
            self._file.seek(0, 2)
            return content

    def close(self) -> None:
        self._file.close()


def _replace(path: str, content: bytes) -> str:
    """Stores `content` at `path`, replacing what is there, so that a reader sees the old or the new log, never
    none: a local folder gets a temporary file renamed over the old one; object storage replaces in one PUT."""
    if isinstance(default_storage, FileSystemStorage):
        target = Path(default_storage.path(path))
        # Named by hand, not by tempfile (which costs the cheapest run a tenth of its log's store): unique per
        # process and thread, random against another machine's process of the same pid on a shared folder.
        part = target.parent / f".part-{os.getpid()}-{threading.get_ident()}-{os.urandom(4).hex()}"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
        try:
            fd = os.open(part, flags, 0o644)
        except FileNotFoundError:  # the job's first log
            target.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(part, flags, 0o644)
        try:
            with open(fd, "wb") as out:
                os.fchmod(out.fileno(), 0o644)  # whatever the umask: the web process reads what workers write
                out.write(content)
            os.replace(part, target)
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        return path
    if default_storage.exists(path) and not getattr(default_storage, "file_overwrite", False):
        default_storage.delete(path)
    return default_storage.save(path, ContentFile(content, name=path))


def discard_log(path: str | None) -> None:
    """Deletes a log stored for a run whose row is gone (its job was deleted meanwhile); trouble is only logged, the
    file is an orphan either way."""
    if not path:
        return
    try:
        default_storage.delete(path)
    except Exception:
        log.warning("could not delete the log %s of a deleted run", path, exc_info=True)


@dataclass(frozen=True)
class LinkTarget:
    """What a valid link points at: the run and the holder it was issued to (checked again on download)."""

    run_id: int
    holder: str
    mac: str


def holder_of(principal: Principal | None) -> str:
    """The link holder for an API caller, as pointscene.core.access sees it (a token's user before its application)."""
    if principal is None:
        return OPERATOR
    if principal.user_id is not None:
        return f"u{principal.user_id}"
    if principal.application_id is not None:
        return f"a{principal.application_id}"
    raise ValueError("a principal with neither a user nor an application cannot hold a log link")


def _mac(run_id: int, holder: str, log_key: str) -> str:
    return salted_hmac(SALT, f"{run_id}:{holder}", secret=log_key, algorithm="sha256").hexdigest()[:32]


def sign_run(run: JobHistory, holder: str) -> str:
    """A log-link token for `run`, issued to `holder` (see holder_of)."""
    if not _HOLDER.match(holder):
        raise ValueError("not a log-link holder")
    payload = {"r": run.pk, "h": holder, "m": _mac(run.pk, holder, run.log_key)}
    return signing.dumps(payload, salt=SALT, compress=True)


def unsign_run(token: str) -> LinkTarget:
    """The run and holder a token names, once its signature and age are checked (JOBS_LOG_URL_MAX_AGE).

    signing.BadSignature (SignatureExpired included) or ValueError for anything else. The MAC is checked
    against the run's log_key by run_for_link, which needs the database.
    """
    data = signing.loads(token, salt=SALT, max_age=settings.JOBS_LOG_URL_MAX_AGE)
    if not isinstance(data, dict) or set(data) != {"r", "h", "m"}:
        raise ValueError("not a log link")
    run_id, holder, mac = data["r"], data["h"], data["m"]
    if type(run_id) is not int or run_id < 1 or not isinstance(holder, str) or not _HOLDER.match(holder):
        raise ValueError("not a log link")
    if not isinstance(mac, str):
        raise ValueError("not a log link")
    return LinkTarget(run_id, holder, mac)


def _holder_may_read(holder: str, instance_id: int, request: HttpRequest) -> bool:
    if holder == OPERATOR:
        user = getattr(request, "user", None)
        return bool(
            user is not None
            and user.is_authenticated
            and user.is_active
            and user.is_staff
            and user.has_perm("jobs.view_jobhistory")
        )
    kind, ident = holder[0], int(holder[1:])
    if kind == "u":
        if not get_user_model().objects.filter(pk=ident, is_active=True).exists():
            return False
        return instance_id in linked_instance_ids(user_id=ident, application_id=None)
    return instance_id in linked_instance_ids(user_id=None, application_id=ident)


def run_for_link(token: str, request: HttpRequest) -> JobHistory | None:
    """The run whose log `token` may download now, or None: bad, expired or forged links, runs (or jobs) deleted
    since, and holders who lost access to the run's instance all look the same to the caller."""
    try:
        target = unsign_run(token)
    except (signing.BadSignature, ValueError, KeyError, TypeError):
        return None
    run = JobHistory.objects.filter(pk=target.run_id).only("log_path", "log_key", "instance_id").first()
    if run is None or not run.log_key:
        return None
    if not constant_time_compare(target.mac, _mac(run.pk, target.holder, run.log_key)):
        return None
    if not _holder_may_read(target.holder, run.instance_id, request):
        return None
    return run


def signed_log_url(
    run: JobHistory | Run | int, request: HttpRequest | None = None, principal: Principal | None = None
) -> str:
    """A download link for `run`'s log, issued to the API caller `principal`.

    Without a principal the link is the operator console's: it opens only in a signed-in staff session.
    A run id (rather than the run, or a jobs.recent_runs.Run) costs a query for its log_key.
    """
    if isinstance(run, int):
        run = JobHistory.objects.only("log_key").get(pk=run)
    path = reverse("job-run-log", args=[sign_run(run, holder_of(principal))])
    if settings.PUBLIC_BASE_URL:
        return settings.PUBLIC_BASE_URL.rstrip("/") + path
    return request.build_absolute_uri(path) if request is not None else path
