"""What a run's start and end mean for its job: lastRun noted, consecutive failures counted, the job paused at its
pauseAfterFailures, and its webhook told. Called by the runner and the sweeper once a run's final row is written."""

import logging
from datetime import datetime
from functools import cache

from django.db import connection, transaction
from django.utils import timezone

from jobs.models import RunStatus, ScheduledJob
from jobs.ops.notify import notify_webhook
from jobs.scheduling.reconcile import schedule_after_commit

log = logging.getLogger(__name__)


def pause_after_failures(job_id: int, failures: int) -> bool:
    """Deactivates the job because its last `failures` runs failed; False if it was already inactive."""
    with transaction.atomic():
        paused = ScheduledJob.objects.filter(pk=job_id, active=True).update(
            active=False,
            paused_reason=f"paused by the service after {failures} consecutive failed runs",
            updated_at=timezone.now(),
        )
        if paused:
            schedule_after_commit(job_id)
    return bool(paused)


def run_ended(job_id: int, run_id: int, status: str, started_at: datetime | None = None) -> None:
    """Counts consecutive failures, pauses the job at its pauseAfterFailures, and notifies its webhook of a failed
    run (and of the pause). A success resets the count. Other outcomes (skipped, cancelled, missed) count for
    nothing. `started_at`: when the run started (None if it never did), for the job's lastRun, in the same UPDATE."""
    failures = {RunStatus.SUCCEEDED: "reset", RunStatus.FAILED: "add"}.get(status)
    _note(job_id, started_at, failures)
    if status != RunStatus.FAILED:
        return
    job = (
        ScheduledJob.objects.filter(pk=job_id)
        .only("pk", "consecutive_failures", "pause_after_failures", "webhook_url")
        .first()
    )
    if job is None:
        return
    events = ["run.failed"]
    if job.pause_after_failures and job.consecutive_failures >= job.pause_after_failures:
        if pause_after_failures(job_id, job.consecutive_failures):
            events.append("job.paused")
    if job.webhook_url:
        for event in events:
            try:
                notify_webhook.delay(job_id, event, run_id)
            except Exception:
                log.warning("job %s: could not queue the %s webhook", job_id, event, exc_info=True)


def note_start(job_id: int, started_at: datetime) -> None:
    """The job's lastRun, for a run still going (the watcher's first tick); a run that ends sooner has it set by
    run_ended instead, in the UPDATE that counts its outcome."""
    _note(job_id, started_at, None)


def _note(job_id: int, started_at: datetime | None, failures: str | None) -> None:
    """One UPDATE of the job: lastRun (if the run started) and the failure count ("reset", "add", or None)."""
    if started_at is None and failures is None:
        return
    sql = _note_sql(connection.vendor, started_at is not None, failures)
    params = []
    if started_at is not None:
        params += [_LAST_RUN.get_db_prep_save(started_at, connection)] * 2
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, job_id])


_LAST_RUN = ScheduledJob._meta.get_field("last_run_at")


@cache
def _note_sql(vendor: str, started: bool, failures: str | None) -> str:
    # Every run ends with this statement, so its SQL is built once, not compiled by the ORM each time (see
    # pointscene/core/statements.py). Runs that overlap (ALLOW) may end out of order: lastRun keeps the latest
    # start (a CASE, which every database reads alike: PostgreSQL's GREATEST skips a NULL, SQLite's MAX returns it).
    quote = connection.ops.quote_name
    last, count = quote("last_run_at"), quote("consecutive_failures")
    assignments = []
    if started:
        assignments.append(f"{last} = CASE WHEN {last} IS NULL OR {last} < %s THEN %s ELSE {last} END")
    if failures == "reset":
        assignments.append(f"{count} = 0")
    elif failures == "add":
        assignments.append(f"{count} = {count} + 1")
    table, pk = quote(ScheduledJob._meta.db_table), quote(ScheduledJob._meta.pk.column)
    return f"UPDATE {table} SET {', '.join(assignments)} WHERE {pk} = %s"
