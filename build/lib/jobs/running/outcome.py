"""What a run's end means for its job: consecutive failures counted, the job paused at its pauseAfterFailures, and
its webhook told. Called by the runner and the sweeper once a run's final row is written."""

import logging

from django.db import transaction
from django.db.models import F
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


def run_ended(job_id: int, run_id: int, status: str) -> None:
    """Counts consecutive failures, pauses the job at its pauseAfterFailures, and notifies its webhook of a failed
    run (and of the pause). A success resets the count. Other outcomes (skipped, cancelled, missed) count for
    nothing."""
    if status == RunStatus.SUCCEEDED:
        ScheduledJob.objects.filter(pk=job_id, consecutive_failures__gt=0).update(consecutive_failures=0)
        return
    if status != RunStatus.FAILED:
        return
    ScheduledJob.objects.filter(pk=job_id).update(consecutive_failures=F("consecutive_failures") + 1)
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
