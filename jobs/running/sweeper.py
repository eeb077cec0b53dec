"""The periodic sweep (task jobs.sweep, every JOBS_SWEEP_SECONDS): what no single process can notice about itself.

- Runs whose worker died: a RUNNING run whose heartbeat is older than the lock lease has no worker any more
  (SIGKILL, OOM, a lost machine). It ends FAILED ("worker lost"); its job lock has expired by then, so the job's
  next slot runs.
- Slots whose message was lost: a worker killed while holding ETA messages, or a Redis flush, can lose a run's
  message after beat published it. A slot with no run row once its grace has passed is recorded MISSED, or sent
  again when the job's catch-up window still wants it run.
- Queued runs nobody started: a BUFFER_ONE slot whose hand-over was lost, a manual run whose message was lost.
- Log deletions (a deleted job's folder, a pruned run's file) that failed (storage unavailable), or whose message
  was lost or whose prune died: sent again when due.

Every action is conditional or idempotent (the unique (job, slot) key, status-guarded updates), so two sweeps at
once, or a sweep racing a late worker, record nothing twice.
"""

import logging
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.db.models.functions import Coalesce

from jobs import dispatch
from jobs.models import JobHistory, RunStatus, ScheduledJob
from jobs.ops import metrics
from jobs.running import engine, outcome, purge
from jobs.running.logs import RunLog, discard_log
from jobs.scheduling.slots import JobSchedule
from pointscene.core.connections import redis_client
from pointscene.core.storage import run_log_path

log = logging.getLogger(__name__)

BATCH = 1000
# A queued run older than this with no worker on it has lost its message.
QUEUED_STALE_SECONDS = 300


def sweep(now: datetime | None = None) -> dict[str, int]:
    now = now or datetime.now(UTC)
    done = {
        "lost": end_lost_runs(now),
        "requeued": restart_queued_runs(now),
        "purges": purge.resend_due(now),
    }
    done.update(audit_slots(now))
    if any(done.values()):
        log.warning("sweep: %s", done)
    return done


def end_lost_runs(now: datetime) -> int:
    """Ends RUNNING runs whose heartbeat stopped a lease ago as FAILED (worker lost)."""
    lease = settings.JOBS_RUN_LOCK_LEASE
    stale = now - timedelta(seconds=lease)
    lost = (
        JobHistory.objects.filter(status=RunStatus.RUNNING)
        .annotate(beat=Coalesce("heartbeat_at", "started_at", "created_at"))
        .filter(beat__lt=stale)
    )
    ended = 0
    for run in lost:
        silent = int((now - (run.heartbeat_at or run.started_at or run.created_at)).total_seconds())
        error = f"worker lost: {run.worker or 'its worker'} stopped reporting ({silent} s without a heartbeat)"
        steps = engine.close_steps(run.steps, failure="worker lost")
        path = _store_log(run, error)
        # Only if nothing moved since we looked: a worker that came back and finished wins.
        changed = JobHistory.objects.filter(pk=run.pk, status=RunStatus.RUNNING, heartbeat_at=run.heartbeat_at).update(
            status=RunStatus.FAILED, finished_at=now, error=error, steps=steps, log_path=path
        )
        if not changed:
            if path != run.log_path and not JobHistory.objects.filter(pk=run.pk).exists():
                discard_log(path)  # the job was deleted meanwhile: its log purge may have looked already
            continue
        ended += 1
        log.warning("run %s of job %s: %s", run.pk, run.job_id, error)
        metrics.record_end(RunStatus.FAILED, run.trigger, run.started_at, now, steps)
        outcome.run_ended(run.job_id, run.pk, RunStatus.FAILED)
    return ended


def _slots_firing_between(schedule: JobSchedule, since: datetime, horizon: datetime) -> list[datetime]:
    """The schedule's slots whose fire time (slot + jitter) is in (since, horizon]."""
    slots = []
    for slot in schedule.occurrences_after(since - timedelta(seconds=schedule.offset)):
        if schedule.fire_at(slot) > horizon:
            break
        slots.append(slot)
    return slots


def _store_log(run: JobHistory, error: str) -> str | None:
    """The dead worker's log died with it; leave one that says what happened, unless a log is already there."""
    if run.log_path:
        return run.log_path
    run_log = RunLog()
    try:
        started = run.started_at.isoformat() if run.started_at else "unknown"
        run_log.line(f"Run {run.pk} of job {run.job_id} started {started} on {run.worker or 'a worker'}")
        run_log.line(f"Run {run.pk} failed: {error}. The worker's own log of this run was lost with it.")
        return run_log.save(run_log_path(run.instance_id, run.job_id, run.pk))
    except Exception:
        log.exception("run %s: could not store its log", run.pk)
        return None
    finally:
        run_log.close()


def restart_queued_runs(now: datetime) -> int:
    """Sends again queued runs whose message may be lost: waiting BUFFER_ONE slots after a lease, other queued
    runs after QUEUED_STALE_SECONDS. At most once per lease per run; a message that was not lost after all
    finds its run taken and does nothing."""
    lease = settings.JOBS_RUN_LOCK_LEASE
    stale = (
        JobHistory.objects.filter(status=RunStatus.QUEUED)
        .filter(
            Q(buffered_at__lt=now - timedelta(seconds=lease))
            | Q(buffered_at__isnull=True, created_at__lt=now - timedelta(seconds=QUEUED_STALE_SECONDS))
        )
        .values_list("pk", flat=True)[:BATCH]
    )
    client = redis_client()
    sent = 0
    for run_id in stale:
        if client.set(f"{settings.JOBS_REDIS_PREFIX}requeued:run:{run_id}", "1", nx=True, ex=lease):
            dispatch.run_queued(run_id)
            sent += 1
    return sent


def audit_slots(now: datetime) -> dict[str, int]:
    """Finds slots that came due (fire time + grace) since the previous sweep and have no run row."""
    grace = timedelta(seconds=settings.JOBS_MISFIRE_GRACE_SECONDS)
    # A few seconds past the grace: a message that is being processed right now gets to write its row first.
    horizon = now - grace - timedelta(seconds=5)
    client = redis_client()
    marker = f"{settings.JOBS_REDIS_PREFIX}swept-until"
    floor = now - timedelta(seconds=settings.JOBS_SWEEP_LOOKBACK_SECONDS)
    raw = client.get(marker)
    since = floor
    if raw:
        try:
            since = max(floor, datetime.fromisoformat(raw.decode()))
        except ValueError:
            pass
    if since >= horizon:
        return {"missed": 0, "resent": 0}

    missed_rows: list[JobHistory] = []
    resend: list[tuple[int, datetime]] = []
    jobs = ScheduledJob.objects.filter(active=True).order_by("pk")
    batch: list[ScheduledJob] = []
    for job in jobs.iterator(chunk_size=BATCH):
        batch.append(job)
        if len(batch) == BATCH:
            _audit_batch(batch, since, horizon, now, missed_rows, resend)
            batch = []
    if batch:
        _audit_batch(batch, since, horizon, now, missed_rows, resend)

    # ignore_conflicts: a late message that wrote its slot's row meanwhile keeps it.
    JobHistory.objects.bulk_create(missed_rows, ignore_conflicts=True)
    for job_id, slot in resend:
        dispatch.run_scheduled(job_id, slot)
    client.set(marker, horizon.isoformat(), ex=settings.JOBS_SWEEP_LOOKBACK_SECONDS)
    for row in missed_rows:
        log.warning("job %s: slot %s had no run; %s", row.job_id, row.scheduled_for.isoformat(), row.error)
    return {"missed": len(missed_rows), "resent": len(resend)}


def _audit_batch(jobs, since, horizon, now, missed_rows, resend) -> None:
    expected: dict[int, list[datetime]] = {}
    # Cron jobs sharing a schedule share their slots: compute each list once per batch (stepping croniter is
    # the sweep's main cost), then drop the slots from before each job's anchor.
    shared: dict[tuple, list[datetime]] = {}
    for job in jobs:
        schedule = JobSchedule.for_job(job)
        key = (schedule.cron, schedule.tz, schedule.offset) if schedule.kind == "cron" else None
        slots = shared.get(key) if key is not None else None
        if slots is None:
            slots = _slots_firing_between(schedule, since, horizon)
            if key is not None:
                shared[key] = slots
        slots = [slot for slot in slots if slot > job.schedule_anchor]
        if slots:
            expected[job.pk] = slots
    if not expected:
        return
    low = min(s[0] for s in expected.values())
    high = max(s[-1] for s in expected.values())
    have = set(
        JobHistory.objects.filter(
            job_id__in=list(expected), scheduled_for__gte=low, scheduled_for__lte=high
        ).values_list("job_id", "scheduled_for")
    )
    by_id = {job.pk: job for job in jobs}
    for job_id, slots in expected.items():
        job = by_id[job_id]
        for slot in slots:
            if (job_id, slot) in have:
                continue
            fate = job.late_slot_fate(slot, now)
            if fate is None:
                resend.append((job_id, slot))
                continue
            missed_rows.append(JobHistory.missed(job, slot, fate, now))
