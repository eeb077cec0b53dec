"""Slots that passed while nothing fired them: recorded as MISSED (or coalesced into the run that catches up)."""

import logging
from datetime import UTC, datetime, timedelta

from django.conf import settings

from jobs.models import JobHistory, ScheduledJob
from jobs.scheduling.slots import JobSchedule

log = logging.getLogger(__name__)


def record_missed(job_id: int, after: datetime, before: datetime) -> int:
    """Records as MISSED every slot of the job strictly between `after` and `before` (beat found them passed,
    unfired, when it came back; it fires `before` itself). Newest JOBS_MISSED_RECORD_LIMIT only. Idempotent."""
    job = ScheduledJob.objects.filter(pk=job_id).first()
    if job is None:
        return 0
    now = datetime.now(UTC)
    slots = []
    for slot in JobSchedule.for_job(job).occurrences_after(after):
        if slot >= before:
            break
        slots.append(slot)
    slots = slots[-settings.JOBS_MISSED_RECORD_LIMIT :]
    if slots:
        taken = set(
            JobHistory.objects.filter(job=job, scheduled_for__gte=slots[0], scheduled_for__lte=slots[-1]).values_list(
                "scheduled_for", flat=True
            )
        )
        slots = [slot for slot in slots if slot not in taken]
    window = timedelta(minutes=job.catchup_window_minutes)
    rows = [
        JobHistory.missed(
            job,
            slot,
            job.coalesced_reason(before)
            if job.catchup_window_minutes and before - slot <= window
            else job.missed_reason(int((now - job.fire_time(slot)).total_seconds())),
            now,
        )
        for slot in slots
    ]
    # ignore_conflicts: a run that another delivery recorded meanwhile keeps its row.
    JobHistory.objects.bulk_create(rows, ignore_conflicts=True)
    if rows:
        log.warning("job %s: %d slots before %s were missed (beat was not firing)", job_id, len(rows), before)
    return len(rows)
