"""What a run's start and end mean for its job: lastRun noted, consecutive failures counted, the job paused at its
pauseAfterFailures, and its webhook told. Called by the runner and the sweeper once a run's final row is written."""

import logging
from datetime import datetime

from django.db import transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce, Greatest
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
    fields = {}
    if started_at is not None:
        fields["last_run_at"] = latest_start(started_at)
    if status == RunStatus.SUCCEEDED:
        fields["consecutive_failures"] = 0
    elif status == RunStatus.FAILED:
        fields["consecutive_failures"] = F("consecutive_failures") + 1
    if fields:
        ScheduledJob.objects.filter(pk=job_id).update(**fields)
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
    ScheduledJob.objects.filter(pk=job_id).update(last_run_at=latest_start(started_at))


def latest_start(started_at: datetime):
    # Runs that overlap (ALLOW) may report out of order: lastRun keeps the latest start.
    return Greatest(Coalesce(F("last_run_at"), Value(started_at)), Value(started_at))
