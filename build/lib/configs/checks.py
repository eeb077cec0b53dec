"""Checking a stored remote before a run finds it broken (testJobConfig, the admin's "Test connection").

The check itself runs on a worker (jobs.sync.remote_check), under the same trust rules as a run: the web process
never opens a tenant's connection. Asked by task name, as jobs.dispatch does, since configs does not import jobs;
the answer comes back through Celery's result backend (django-celery-results) and is forgotten once read.
"""

from dataclasses import asdict, dataclass

from celery.exceptions import TimeoutError as CeleryTimeout

from configs.models import RemoteConfig
from pointscene.celery import app

CHECK_REMOTE = "jobs.check_remote"
# Seconds the worker gives a check; the caller waits that and a margin for the queue.
CHECK_SECONDS = 30
WAIT_SECONDS = CHECK_SECONDS + 10


@dataclass(frozen=True)
class RemoteCheck:
    ok: bool
    message: str
    entries: int | None = None
    duration_ms: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def check_remote(remote: RemoteConfig, wait: float | None = None) -> RemoteCheck:
    """A worker's check of `remote` (a listing of its root), or why there is none."""
    wait = WAIT_SECONDS if wait is None else wait
    result = app.send_task(CHECK_REMOTE, args=[remote.pk], expires=wait)
    try:
        answer = result.get(timeout=wait, interval=0.25, propagate=False)
    except CeleryTimeout:
        return RemoteCheck(False, f"no worker answered within {wait:g} s: is a worker running?")
    result.forget()
    if not isinstance(answer, dict):
        return RemoteCheck(False, "the check failed on the worker (its log says why)")
    return RemoteCheck(**answer)
