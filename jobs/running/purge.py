"""Deleting stored run logs whose rows are gone, from a local folder or S3, after the delete commits, without losing
one when storage fails: the one queue (LogDeletion) for a deleted job's or instance's log folder and for the log
files of runs pruned by retention.

Why a row, not the storage keys in a message: the runs' rows are gone, and a message is not durable (a Redis flush,
a worker killed mid-task, retries running out). So the deleting transaction queues what it leaves behind:

- a deleted job (or instance) queues its log folder (pointscene.core.storage.job_log_folder: every log of that job
  and nothing else) with `forget_folder`, and after commit jobs.purge_logs gets the row's id;
- a prune (jobs/retention.py) queues each deleted run's log file with `forget_files`, and drains the queue itself
  once its rows are deleted (`drain`).

Both kinds are queued in flight (due IN_FLIGHT_SECONDS later): whoever queued them is on them, so the sweeper keeps
off while a prune is still deleting rows. When storage fails, the row keeps the error and when to try again
(JOBS_LOG_PURGE_RETRY_SECONDS, doubling, at most an hour), and the sweeper sends it again then (`resend_due`); a row
whose message was lost, or whose prune died, comes due and is sent again the same way. Whoever takes rows (a drain,
the sweeper) first claims them (locked, skipping rows another holds, and moved in flight), so two of them do not
take the same row at once; deleting what is already gone does nothing, so a row handled twice anyway (a message
sent again while its worker was still on it) does no harm.

A run still going when its job is deleted stores its log afterwards: it finds its row gone and deletes that log
itself (runner._finish, sweeper.end_lost_runs).
"""

import logging
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.files.storage import FileSystemStorage, default_storage
from django.db import transaction
from django.db.models import F, Q, QuerySet

from jobs import dispatch
from jobs.models import LogDeletion
from pointscene.logconfig import redact

log = logging.getLogger(__name__)

# A deletion sent (after commit, or by the sweeper) and not done within this long is sent again.
IN_FLIGHT_SECONDS = 600
MAX_BACKOFF_SECONDS = 3600
BATCH = 100


def forget_folder(folder: str) -> LogDeletion:
    """Inside the deleting transaction: every log under `folder` ("a/b/") is deleted once it commits, and retried
    until it is."""
    if not folder.endswith("/"):
        raise ValueError(f"a log folder ends with '/': {folder!r}")
    row = LogDeletion.objects.create(path=folder, next_attempt_at=_in_flight(datetime.now(UTC)))
    # robust: the delete has committed; if Redis is away now, the sweeper sends the deletion later.
    transaction.on_commit(lambda: dispatch.purge_logs(row.pk), robust=True)
    return row


def forget_files(paths: Iterable[str], now: datetime) -> int:
    """Inside the deleting transaction: these log files are deleted by the caller's `drain(now, in_flight=True)`,
    or by the sweeper once IN_FLIGHT_SECONDS have passed without it. Returns how many were queued."""
    rows = [LogDeletion(path=path, next_attempt_at=_in_flight(now)) for path in paths]
    if any(row.is_folder for row in rows):
        raise ValueError("a log file's path does not end with '/'")
    return len(LogDeletion.objects.bulk_create(rows))


def _in_flight(now: datetime) -> datetime:
    return now + timedelta(seconds=IN_FLIGHT_SECONDS)


def backoff_seconds(attempts: int) -> int:
    """Wait after failed attempt number `attempts`: JOBS_LOG_PURGE_RETRY_SECONDS, doubling, at most an hour."""
    first = max(1, settings.JOBS_LOG_PURGE_RETRY_SECONDS)  # 0 would have a drain retry a failure in the same call
    return min(MAX_BACKOFF_SECONDS, first * 2 ** max(attempts - 1, 0))


def purge(deletion_id: int) -> bool:
    """Deletes what the row names, then the row. False if storage failed (the row waits for its retry); True when it
    is done, or was done already."""
    row = LogDeletion.objects.filter(pk=deletion_id).first()
    if row is None:
        return True
    if not _delete(row, datetime.now(UTC)):
        return False
    LogDeletion.objects.filter(pk=deletion_id).delete()
    return True


def drain(now: datetime | None = None, limit: int | None = None, in_flight: bool = False) -> tuple[int, int]:
    """Deletes the due rows from storage, `limit` (JOBS_PRUNE_BATCH) at a time, until none is left or a whole batch
    failed (storage is down: the rest waits for later): (deleted, failed). in_flight: also the files `forget_files`
    queued at `now` and not tried yet, as the prune that queued them wants (one that fails is retried when due, not
    again in this call)."""
    now = now or datetime.now(UTC)
    limit = limit or settings.JOBS_PRUNE_BATCH
    wanted = Q(next_attempt_at__lte=now)
    if in_flight:
        wanted |= Q(attempts=0, next_attempt_at__lte=_in_flight(now)) & ~Q(path__endswith="/")
    deleted = failed = 0
    while True:
        due = _claim(LogDeletion.objects.filter(wanted).order_by("id"), limit)
        done = [row.pk for row in due if _delete(row, now)]
        LogDeletion.objects.filter(pk__in=done).delete()
        deleted, failed = deleted + len(done), failed + len(due) - len(done)
        if len(due) < limit or not done:
            return deleted, failed


def _claim(due: QuerySet, limit: int) -> list[LogDeletion]:
    """Up to `limit` of the `due` rows, moved in flight so that no one else takes them meanwhile. On PostgreSQL rows
    another claimer holds are skipped; SQLite has one writer at a time, and ignores the lock."""
    with transaction.atomic(savepoint=False):  # inside a caller's transaction, no savepoint statements
        rows = list(due.select_for_update(skip_locked=True)[:limit])
        LogDeletion.objects.filter(pk__in=[row.pk for row in rows]).update(
            next_attempt_at=_in_flight(datetime.now(UTC))
        )
    return rows


def _delete(row: LogDeletion, now: datetime) -> bool:
    """Deletes the row's file or folder from storage. On failure, notes it on the row with its next attempt."""
    try:
        if row.is_folder:
            removed = empty_folder(row.path)
            log.info("log deletion %s: %d files deleted from %s", row.pk, removed, row.path)
        else:
            default_storage.delete(row.path)
    except Exception as exc:  # noqa: BLE001 - whatever the storage raised, the row waits and tries again
        attempts = row.attempts + 1
        wait = backoff_seconds(attempts)
        error = redact(f"{type(exc).__name__}: {exc}")[:500]
        # From now, or from the caller's `now` if later: a prune's `now` is its start, minutes ago by its drain.
        retry_at = max(now, datetime.now(UTC)) + timedelta(seconds=wait)
        LogDeletion.objects.filter(pk=row.pk).update(
            attempts=F("attempts") + 1, last_error=error, next_attempt_at=retry_at
        )
        log.warning(
            "log deletion %s (%s), attempt %d failed: %s; retrying in %d s", row.pk, row.path, attempts, error, wait
        )
        return False
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
    """For the sweeper: sends the rows whose next attempt has come (claimed: moved in flight). Returns how many."""
    due = _claim(LogDeletion.objects.filter(next_attempt_at__lte=now).order_by("next_attempt_at"), BATCH)
    for row in due:
        dispatch.purge_logs(row.pk)
    return len(due)
