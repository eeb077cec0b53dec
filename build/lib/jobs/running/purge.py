"""Deleting the run logs of a deleted job (or instance) from storage, a local folder or S3, after the delete commits,
without losing one when storage fails.

Why a row, not the storage keys in the message: the runs' rows are gone with their job, and a message is not
durable (a Redis flush, a worker killed mid-task, retries running out). So the deleting transaction writes a
LogPurge row naming the job's log folder (pointscene.core.storage.job_log_folder: every log of that job and nothing
else), and after commit jobs.purge_logs gets the row's id. The task deletes every file in the folder, then the row.
When storage fails, the row keeps the error and when to try again (JOBS_LOG_PURGE_RETRY_SECONDS, doubling, at most
an hour), and the sweeper sends it again then; a message that never arrived is sent again IN_FLIGHT_SECONDS after
it was sent. A second pass over a folder finds less or nothing, so a duplicate does no harm.

A run still going when its job is deleted stores its log afterwards: it finds its row gone and deletes that log
itself (runner._finish, sweeper.end_lost_runs).
"""

import logging
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.files.storage import FileSystemStorage, default_storage
from django.db import transaction
from django.db.models import F

from jobs import dispatch
from jobs.models import LogPurge
from pointscene.logconfig import redact

log = logging.getLogger(__name__)

# A purge sent (after commit, or by the sweeper) and not done within this long is sent again.
IN_FLIGHT_SECONDS = 600
MAX_BACKOFF_SECONDS = 3600
BATCH = 100


def schedule(folder: str) -> LogPurge:
    """Inside the deleting transaction: the folder's logs are deleted once it commits, and retried until they are."""
    purge = LogPurge.objects.create(
        folder=folder, next_attempt_at=datetime.now(UTC) + timedelta(seconds=IN_FLIGHT_SECONDS)
    )
    # robust: the delete has committed; if Redis is away now, the sweeper sends the purge later.
    transaction.on_commit(lambda: dispatch.purge_logs(purge.pk), robust=True)
    return purge


def backoff_seconds(attempts: int) -> int:
    """Wait after failed attempt number `attempts`: JOBS_LOG_PURGE_RETRY_SECONDS, doubling, at most an hour."""
    return min(MAX_BACKOFF_SECONDS, settings.JOBS_LOG_PURGE_RETRY_SECONDS * 2 ** max(attempts - 1, 0))


def purge(purge_id: int) -> bool:
    """Empties the purge's folder and deletes the purge. False if storage failed (the purge waits for its retry);
    True when it is done, or was done already."""
    row = LogPurge.objects.filter(pk=purge_id).first()
    if row is None:
        return True
    try:
        removed = empty_folder(row.folder)
    except Exception as exc:  # noqa: BLE001 - whatever the storage raised, the purge waits and tries again
        attempts = row.attempts + 1
        wait = backoff_seconds(attempts)
        error = redact(f"{type(exc).__name__}: {exc}")[:500]
        LogPurge.objects.filter(pk=purge_id).update(
            attempts=F("attempts") + 1,
            last_error=error,
            next_attempt_at=datetime.now(UTC) + timedelta(seconds=wait),
        )
        log.warning(
            "log purge %s (%s), attempt %d failed: %s; retrying in %d s", purge_id, row.folder, attempts, error, wait
        )
        return False
    LogPurge.objects.filter(pk=purge_id).delete()
    log.info("log purge %s: %d files deleted from %s", purge_id, removed, row.folder)
    return True


def empty_folder(folder: str) -> int:
    """Deletes every file under `folder` ("a/b/"), subfolders included; returns how many. No folder: nothing to do."""
    try:
        folders, files = default_storage.listdir(folder)
    except FileNotFoundError:
        return 0
    removed = 0
    for name in files:
        default_storage.delete(folder + name)
        removed += 1
    for name in folders:
        removed += empty_folder(f"{folder}{name}/")
    if isinstance(default_storage, FileSystemStorage):
        # Its delete() removes an empty directory (S3 has no directories). A file written meanwhile makes this
        # fail, and the retry deletes it too: nothing but the deleted job's logs is ever written here.
        default_storage.delete(folder)
    return removed


def resend_due(now: datetime) -> int:
    """For the sweeper: sends the purges whose next attempt has come. Returns how many."""
    due = list(
        LogPurge.objects.filter(next_attempt_at__lte=now)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:BATCH]
    )
    if not due:
        return 0
    LogPurge.objects.filter(pk__in=due).update(next_attempt_at=now + timedelta(seconds=IN_FLIGHT_SECONDS))
    for purge_id in due:
        dispatch.purge_logs(purge_id)
    return len(due)
