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
from redbeat.decoder import to_timestamp
from redbeat.schedulers import ensure_conf, get_redis

from jobs.models import JobHistory, ScheduledJob
from jobs.ops import metrics
from jobs.scheduling.entries import ENTRY_PREFIX, JobEntry, build_entry, encode_meta, entry_name, job_id_of
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
    client = get_redis(app)
    key = JobEntry.generate_key(app, entry_name(job_id))
    job = ScheduledJob.objects.filter(pk=job_id, active=True).first()
    if job is None:
        with client.pipeline() as pipe:
            pipe.zrem(_conf().schedule_key, key)
            pipe.delete(key)
            removed, _ = pipe.execute()
        return "removed" if removed else "unchanged"
    now = datetime.now(UTC)
    entry = build_entry(job, last_run_at=now)
    with client.pipeline() as pipe:
        pipe.hget(key, "definition")
        pipe.zscore(_conf().schedule_key, key)
        stored, score = pipe.execute()
    if stored == entry.encoded_definition() and score is not None:
        return "unchanged"
    # A new or changed schedule counts from now: nothing between the old schedule and this one is fired.
    entry.save()
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
    client = get_redis(app)
    conf = _conf()
    now = datetime.now(UTC)
    changes: dict[str, list[int]] = {"added": [], "removed": [], "fixed": []}

    prefix = conf.key_prefix + ENTRY_PREFIX
    in_redis: set[int] = set()
    for key in client.zscan_iter(conf.schedule_key, match=prefix + "*", count=BATCH):
        job_id = job_id_of(key[0][len(conf.key_prefix) :])
        if job_id is not None:
            in_redis.add(job_id)
    for key in client.scan_iter(match=prefix + "*", count=BATCH):
        job_id = job_id_of(key[len(conf.key_prefix) :])
        if job_id is not None:
            in_redis.add(job_id)

    active = ScheduledJob.objects.filter(active=True).order_by("pk")
    active_ids: set[int] = set()
    batch: list[ScheduledJob] = []
    for job in active.iterator(chunk_size=BATCH):
        active_ids.add(job.pk)
        batch.append(job)
        if len(batch) >= BATCH:
            _reconcile_batch(client, conf, batch, now, changes)
            batch = []
    if batch:
        _reconcile_batch(client, conf, batch, now, changes)

    orphans = sorted(in_redis - active_ids)
    for start in range(0, len(orphans), BATCH):
        with client.pipeline(transaction=False) as pipe:
            for job_id in orphans[start : start + BATCH]:
                key = JobEntry.generate_key(app, entry_name(job_id))
                pipe.zrem(conf.schedule_key, key)
                pipe.delete(key)
            pipe.execute()
    changes["removed"] = orphans
    client.set(marker_key(), now.isoformat())
    metrics.record_drift(changes)
    return changes


def _reconcile_batch(client, conf, jobs: list[ScheduledJob], now: datetime, changes: dict) -> None:
    keys = [JobEntry.generate_key(app, entry_name(job.pk)) for job in jobs]
    with client.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.hget(key, "definition")
            pipe.hget(key, "meta")
            pipe.zscore(conf.schedule_key, key)
        raw = pipe.execute()
    missing = [job.pk for i, job in enumerate(jobs) if raw[3 * i] is None]
    last_slots = _last_recorded_slots(missing) if missing else {}
    with client.pipeline(transaction=False) as pipe:
        for i, job in enumerate(jobs):
            stored, meta, score = raw[3 * i], raw[3 * i + 1], raw[3 * i + 2]
            entry = build_entry(job, last_run_at=now)
            if stored == entry.encoded_definition() and score is not None and _consistent(entry, meta, score, now):
                continue
            last = now
            if stored is None:
                # Lost (Redis flushed or restarted): count from the job's last recorded slot, so that beat fires
                # or records (MISSED) every slot that passed while the entry was gone.
                last = max(last_slots.get(job.pk) or job.schedule_anchor, now - MAX_CATCHUP)
            pipe.hset(keys[i], "definition", entry.encoded_definition())
            pipe.hset(keys[i], "meta", encode_meta(last))
            pipe.zadd(conf.schedule_key, {keys[i]: to_timestamp(entry.schedule.next_fire_after(last))})
            changes["added" if stored is None else "fixed"].append(job.pk)
        pipe.execute()


def _consistent(entry: JobEntry, meta: str | None, score: float, now: datetime) -> bool:
    """Whether an entry with the right definition is where beat would have put it: its score at the slot after
    the one it last fired. Beat publishes ahead, so a fired entry may rightly point past the next slot after now;
    what it must never do is point past the slot after its own last one (that would skip a run)."""
    last = JobEntry.decode_meta(meta)["last_run_at"] if meta else None
    if last is None or last > now + timedelta(seconds=MAX_LOOKAHEAD):
        return False
    return score <= to_timestamp(entry.schedule.next_fire_after(last)) + 1


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
