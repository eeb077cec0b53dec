"""Keeps Redis (one RedBeat entry per active job) in step with the database, which is the truth.

`sync_job` is the one function that turns a job row into its entry or removes it; services call it after their
transaction commits. `reconcile` rebuilds every entry from the database (missing, orphaned, drifted) and runs
from `manage.py sync_schedules` and from beat, on start and whenever the reconciled marker has vanished or is older
than JOBS_RECONCILE_SECONDS. The marker lives in RedBeat's Redis; `reconciled_at` is its one reader (beat, /readyz).
"""

import logging
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from redbeat.schedulers import ensure_conf, get_redis

from jobs.models import JobHistory, ScheduledJob
from jobs.ops import metrics
from jobs.scheduling.entries import EntryStore, JobEntry, build_entry, score_of
from jobs.scheduling.slots import MAX_CATCHUP, MAX_LOOKAHEAD
from pointscene.celery import app

log = logging.getLogger(__name__)

BATCH = 1000


def _conf():
    return ensure_conf(app)


def marker_key() -> str:
    return _conf().key_prefix + "reconciled-at"


def sync_job(job_id: int) -> str:
    """Makes job `job_id`'s entry match the database: 'added', 'updated', 'removed' or 'unchanged'."""
    store = EntryStore()
    key = store.key(job_id)
    job = ScheduledJob.objects.filter(pk=job_id, active=True).first()
    if job is None:
        with store.client.pipeline() as pipe:
            store.remove(pipe, key)
            removed, _ = pipe.execute()
        return "removed" if removed else "unchanged"
    now = datetime.now(UTC)
    entry = build_entry(job, last_run_at=now)
    [(stored, _meta, score)] = store.read([key], scores=True)
    if stored == entry.encoded_definition() and score is not None:
        return "unchanged"
    # A new or changed schedule counts from now: nothing between the old schedule and this one is fired.
    with store.client.pipeline() as pipe:
        store.write_next(pipe, key, entry, now)
        pipe.execute()
    return "added" if stored is None else "updated"


def schedule_after_commit(job_id: int) -> None:
    """Syncs the job's entry once the caller's transaction commits; a Redis outage is left to reconciliation."""

    def run() -> None:
        try:
            sync_job(job_id)
        except Exception:
            log.exception("could not sync the schedule of job %s; beat's reconciliation will", job_id)

    transaction.on_commit(run)


def unschedule_after_commit(job_ids: list[int]) -> None:
    """For deletions that cascade from above a job (an instance): drops those jobs' entries after commit."""
    for job_id in job_ids:
        schedule_after_commit(job_id)


def reconcile() -> dict[str, list[int]]:
    """Adds missing entries, removes orphans, fixes drifted ones. Returns the job ids changed, by kind."""
    store = EntryStore()
    now = datetime.now(UTC)
    changes: dict[str, list[int]] = {"added": [], "removed": [], "fixed": []}
    in_redis = store.job_ids(BATCH)

    active_ids: set[int] = set()
    batch: list[ScheduledJob] = []
    for job in ScheduledJob.objects.filter(active=True).order_by("pk").iterator(chunk_size=BATCH):
        active_ids.add(job.pk)
        batch.append(job)
        if len(batch) >= BATCH:
            _reconcile_batch(store, batch, now, changes)
            batch = []
    if batch:
        _reconcile_batch(store, batch, now, changes)

    orphans = sorted(in_redis - active_ids)
    for start in range(0, len(orphans), BATCH):
        with store.client.pipeline(transaction=False) as pipe:
            for job_id in orphans[start : start + BATCH]:
                store.remove(pipe, store.key(job_id))
            pipe.execute()
    changes["removed"] = orphans
    store.client.set(marker_key(), now.isoformat())
    metrics.record_drift(changes)
    return changes


def _reconcile_batch(store: EntryStore, jobs: list[ScheduledJob], now: datetime, changes: dict) -> None:
    keys = [store.key(job.pk) for job in jobs]
    raw = store.read(keys, scores=True)
    missing = [job.pk for job, (stored, _meta, _score) in zip(jobs, raw, strict=True) if stored is None]
    last_slots = _last_recorded_slots(missing) if missing else {}
    with store.client.pipeline(transaction=False) as pipe:
        for key, job, (stored, meta, score) in zip(keys, jobs, raw, strict=True):
            entry = build_entry(job, last_run_at=now)
            if stored == entry.encoded_definition() and score is not None and _consistent(entry, meta, score, now):
                continue
            last = now
            if stored is None:
                # Lost (Redis flushed or restarted): count from the job's last recorded slot, so that beat fires
                # or records (MISSED) every slot that passed while the entry was gone.
                last = max(last_slots.get(job.pk) or job.schedule_anchor, now - MAX_CATCHUP)
            store.write_next(pipe, key, entry, last)
            changes["added" if stored is None else "fixed"].append(job.pk)
        pipe.execute()


def _consistent(entry: JobEntry, meta: str | None, score: float, now: datetime) -> bool:
    """Whether an entry with the right definition is where beat would have put it: its score at the slot after
    the one it last fired. Beat publishes ahead, so a fired entry may rightly point past the next slot after now;
    what it must never do is point past the slot after its own last one (that would skip a run)."""
    last = JobEntry.decode_meta(meta)["last_run_at"] if meta else None
    if last is None or last > now + timedelta(seconds=MAX_LOOKAHEAD):
        return False
    return score <= score_of(entry.schedule, last) + 1


def _last_recorded_slots(job_ids: list[int]) -> dict[int, datetime]:
    """The newest slot each job has a run row for (one index-backed aggregate per batch)."""
    rows = (
        JobHistory.objects.filter(job_id__in=job_ids, scheduled_for__isnull=False)
        .values("job_id")
        .annotate(last=Max("scheduled_for"))
    )
    return {row["job_id"]: row["last"] for row in rows}


def reconciled_at() -> datetime | None:
    """When the schedule was last reconciled; None when RedBeat's Redis has no readable marker (never reconciled,
    or flushed or restarted since). The marker lives in RedBeat's Redis (REDBEAT_REDIS_URL), next to the entries
    it vouches for, which need not be the service's own (REDIS_URL)."""
    raw = get_redis(app).get(marker_key())
    if raw is None:
        return None
    try:
        return datetime.fromisoformat(raw)
    except ValueError:
        return None


def reconcile_due() -> bool:
    """True when Redis has lost the reconciled marker (flushed or restarted) or it is older than the period."""
    last = reconciled_at()
    return last is None or (datetime.now(UTC) - last).total_seconds() >= settings.JOBS_RECONCILE_SECONDS
