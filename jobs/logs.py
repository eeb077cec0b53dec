"""Run logs: human-readable lines written through Django's storage API, downloaded through signed links."""

import tempfile
import threading
from datetime import UTC, datetime

from django.conf import settings
from django.core import signing
from django.core.files import File
from django.core.files.storage import default_storage
from django.urls import reverse

SALT = "pointscene.jobs.run-log"


class RunLog:
    """Collects a run's log in a private temporary file, then stores it in one piece."""

    def __init__(self) -> None:
        self._file = tempfile.SpooledTemporaryFile(max_size=1 << 20, mode="w+b")
        self._lock = threading.Lock()

    def line(self, message: str) -> None:
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        with self._lock:
            for part in str(message).splitlines() or [""]:
                self._file.write(f"{stamp} {part}\n".encode(errors="replace"))

    def save(self, path: str) -> str:
        with self._lock:
            self._file.flush()
            self._file.seek(0)
            if default_storage.exists(path):
                default_storage.delete(path)
            return default_storage.save(path, File(self._file, name=path))

    def close(self) -> None:
        self._file.close()


def sign_run(run_id: int) -> str:
    return signing.dumps({"run": run_id}, salt=SALT, compress=True)


def unsign_run(token: str) -> int:
    """The run id in a log link; signing.BadSignature (or SignatureExpired) if it was tampered with or is old."""
    data = signing.loads(token, salt=SALT, max_age=settings.JOBS_LOG_URL_MAX_AGE)
    return int(data["run"])


def signed_log_url(run_id: int, request=None) -> str:
    path = reverse("job-run-log", args=[sign_run(run_id)])
    if settings.PUBLIC_BASE_URL:
        return settings.PUBLIC_BASE_URL.rstrip("/") + path
    return request.build_absolute_uri(path) if request is not None else path
