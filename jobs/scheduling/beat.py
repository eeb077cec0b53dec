"""RedBeat, taught our schedules: one entry per active job, published in batches, a little ahead, with exact ETAs.

Stock RedBeat loads and publishes due entries one by one, which is what makes 10,000 jobs due in the same
minute arrive seconds late. This scheduler keeps RedBeat's storage (one hash per entry plus the schedule zset),
its high-availability lock and its handling of static `beat_schedule` entries, and changes how job entries are
fired: every tick it takes the job entries due within the look-ahead window, loads them in one pipeline, publishes
one run per entry carrying its slot, with the slot's fire time (slot plus the job's jitter) as exact ETA, or none
once that has passed, and moves them all to their next slot in one more pipeline. Slots that passed while no beat
was firing go to jobs.record_missed. Beat also reconciles the schedule from the database on start and whenever
reconcile.reconcile_due() says so.
"""

import json
import logging
import time
from datetime import UTC, datetime, timedelta

from django.conf import settings
from redbeat.decoder import to_timestamp
from redbeat.schedulers import RedBeatConfig, RedBeatScheduler, get_redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import LockError
from redis.exceptions import TimeoutError as RedisTimeoutError

from jobs.scheduling import reconcile
from jobs.scheduling.entries import MISSED_TASK, RUN_TASK, EntryStore, JobEntry, score_of
from jobs.scheduling.slots import MAX_LOOKAHEAD, JobSchedule

log = logging.getLogger(__name__)

PUBLISH_BATCH = 1000
FIRE_CHUNK = 5000
REDIS_RETRY_SECONDS = 1.0


def beat_health(now: float) -> dict:
    """Whether this container's beat works: it ticked within BEAT_HEARTBEAT_MAX_AGE seconds (the active beat ticks
    at least every max_interval), or it has not ticked but RedBeat's lock is held, so it is a standby that waits
    for it (a standby blocks on the lock and never ticks)."""
    limit = settings.BEAT_HEARTBEAT_MAX_AGE
    try:
        age = now - settings.BEAT_HEARTBEAT_FILE.stat().st_mtime
    except FileNotFoundError:
        age = None
    if age is not None and age <= limit:
        return {"ok": True, "detail": f"ticked {age:.0f} s ago (limit {limit} s)"}
    from pointscene.celery import app

    lock_key = RedBeatConfig(app).lock_key
    held = bool(get_redis(app).exists(lock_key))
    never = "never ticked" if age is None else f"last ticked {age:.0f} s ago (limit {limit} s)"
    if held and age is None:
        return {"ok": True, "detail": f"standing by: {never}, another beat holds {lock_key}"}
    return {"ok": False, "detail": f"{never}; lock {lock_key} {'held' if held else 'free'}"}


def beat_alive() -> None:
    """This beat is ticking: touch the heartbeat file compose's healthcheck reads (manage.py beat_health)."""
    try:
        settings.BEAT_HEARTBEAT_FILE.parent.mkdir(parents=True, exist_ok=True)
        settings.BEAT_HEARTBEAT_FILE.touch()
    except OSError:
        log.warning("beat: cannot write the heartbeat file %s", settings.BEAT_HEARTBEAT_FILE, exc_info=True)


class JobsScheduler(RedBeatScheduler):
    Entry = JobEntry

    def __init__(self, app, *args, **kwargs):
        # Set before super().__init__, which already calls setup_schedule.
        self.lookahead = settings.JOBS_SCHEDULE_LOOKAHEAD_SECONDS
        self.reconcile_every = settings.JOBS_RECONCILE_SECONDS
        self._next_reconcile_check = 0.0
        # Entries per second fire_jobs gets through (measured as it goes); sizes the look-ahead for crowded minutes.
        self.publish_rate = 2000.0
        super().__init__(app, *args, **kwargs)

    def setup_schedule(self):
        super().setup_schedule()
        self._reconcile(force=True)

    def hold_lock(self) -> bool:
        """Extends the HA lock; False if another beat holds it now (this one then stands by)."""
        if not self.lock_key or self.lock is None:
            return True
        try:
            self.lock.extend(int(self.lock_timeout))
            return True
        except LockError:
            # Lost it (a tick ran longer than the lock timeout): take it back unless a standby took over.
            if self.lock.acquire(blocking=False):
                log.warning("beat: lock had lapsed; taken back")
                return True
            log.warning("beat: another beat holds the lock; standing by")
            return False

    def tick(self, min=min, **kwargs):
        beat_alive()
        try:
            return self._tick()
        except (RedisConnectionError, RedisTimeoutError) as exc:
            # Redis restarting is not a reason for beat to exit: keep trying, and once Redis answers again the
            # reconciliation (its marker is gone with the data) rebuilds what was lost.
            log.warning("beat: Redis unavailable (%s); retrying in %s s", type(exc).__name__, REDIS_RETRY_SECONDS)
            return REDIS_RETRY_SECONDS

    def _tick(self):
        if not self.hold_lock():
            return self.max_interval
        if time.monotonic() >= self._next_reconcile_check:
            self._reconcile(force=False)

        client = get_redis(self.app)
        now = datetime.now(UTC)
        lookahead = self.lookahead_for(client, now)
        horizon = to_timestamp(now + timedelta(seconds=lookahead))
        keys = client.zrangebyscore(self.app.redbeat_conf.schedule_key, 0, horizon)
        store = EntryStore(self.app, client)
        job_keys = [k for k in keys if store.is_job_key(k)]
        other_keys = [k for k in keys if not store.is_job_key(k)]
        # Earliest slots first, in chunks, renewing the lock between them: one tick may have 100,000 entries.
        for start in range(0, len(job_keys), FIRE_CHUNK):
            if not self.hold_lock():
                return self.max_interval
            self.fire_jobs(client, job_keys[start : start + FIRE_CHUNK], now, lookahead)
        for key in other_keys:
            try:
                entry = self.Entry.from_key(key, app=self.app)
            except KeyError:
                client.zrem(self.app.redbeat_conf.schedule_key, key)
                continue
            self.maybe_due(entry, **self._maybe_due_kwargs)
        # Wake for the next entry entering the look-ahead window, at most max_interval from now.
        upcoming = client.zrangebyscore(
            self.app.redbeat_conf.schedule_key, f"({horizon}", "+inf", start=0, num=1, withscores=True
        )
        if upcoming:
            wait = upcoming[0][1] - lookahead - time.time()
            return max(0.05, min(wait, self.max_interval))
        return self.max_interval

    def lookahead_for(self, client, now: datetime) -> float:
        """Seconds ahead to publish: the configured look-ahead, widened when more runs are coming up than beat
        can publish in it (at its measured rate, with margin), so that a crowded minute still starts on time."""
        coming = client.zcount(
            self.app.redbeat_conf.schedule_key, 0, to_timestamp(now + timedelta(seconds=MAX_LOOKAHEAD))
        )
        needed = 1.5 * coming / self.publish_rate
        return min(MAX_LOOKAHEAD, self.lookahead + needed) if needed > self.lookahead / 2 else self.lookahead

    def fire_jobs(self, client, keys: list[str], now: datetime, lookahead: float | None = None) -> int:
        """Publishes one run per due job entry (ETA = its slot) and advances the entries. Returns runs sent."""
        started = time.monotonic()
        until = now + timedelta(seconds=self.lookahead if lookahead is None else lookahead)
        store = EntryStore(self.app, client)
        raw = store.read(keys)

        fired: list[tuple[str, JobSchedule, datetime, str]] = []
        sends: list[tuple[int, datetime, datetime]] = []
        # (job, last fired slot, slot fired now) where slots between them passed unfired: beat was not firing.
        gaps: list[tuple[int, datetime, datetime]] = []
        stale: list[str] = []
        # Jobs sharing a schedule and a last slot share their answers: compute each once per call.
        schedules: dict[str, JobSchedule] = {}
        due: dict[tuple[str, datetime], datetime | None] = {}
        for key, (definition, meta) in zip(keys, raw, strict=True):
            if not definition:
                stale.append(key)
                continue
            schedule_json = json.dumps(json.loads(definition)["schedule"], sort_keys=True)
            schedule = schedules.get(schedule_json)
            if schedule is None:
                schedule = schedules[schedule_json] = JobEntry.decode_definition(definition)["schedule"]
            last = JobEntry.decode_meta(meta)["last_run_at"] or now
            if (schedule_json, last) not in due:
                # Jitter shifts when a slot fires, not which slot it is.
                due[(schedule_json, last)] = schedule.latest_due(last, until - timedelta(seconds=schedule.offset))
            slot = due[(schedule_json, last)]
            job_id = store.job_id(key)
            if slot is None or job_id is None:
                # Not due after all (score was stale): just re-score it below.
                fired.append((key, schedule, last, definition))
                continue
            sends.append((job_id, slot, schedule.fire_at(slot)))
            if schedule.next_after(last) < slot:
                gaps.append((job_id, last, slot))
            fired.append((key, schedule, slot, definition))

        # kombu buffers the batch's LPUSHes in pipelines: a few round trips for thousands of runs.
        with self.app.producer_or_acquire() as producer, producer.batch(max_size=PUBLISH_BATCH):
            for job_id, slot, fire_at in sends:
                self.app.send_task(
                    RUN_TASK,
                    args=[job_id, slot.isoformat()],
                    # When beat let go of it: the run records it, so firing lag is measurable per run.
                    kwargs={"published_at": datetime.now(UTC).isoformat()},
                    eta=fire_at if fire_at > now else None,
                    producer=producer,
                )
            for job_id, last, slot in gaps:
                self.app.send_task(MISSED_TASK, args=[job_id, last.isoformat(), slot.isoformat()], producer=producer)

        with client.pipeline(transaction=False) as pipe:
            next_slots: dict[tuple[int, datetime], float] = {}
            for key, schedule, last, definition in fired:
                if (id(schedule), last) not in next_slots:
                    next_slots[(id(schedule), last)] = score_of(schedule, last)
                store.advance(pipe, key, definition, last, next_slots[(id(schedule), last)])
            for key in stale:
                store.drop_if_gone(pipe, key)
            pipe.execute()
        if sends:
            log.info("beat: published %d job runs", len(sends))
        if gaps:
            log.warning("beat: %d jobs had slots pass unfired (beat was not firing); recording them", len(gaps))
        if len(keys) >= 100:
            rate = len(keys) / max(time.monotonic() - started, 1e-3)
            self.publish_rate = 0.5 * self.publish_rate + 0.5 * rate
        return len(sends)

    def _reconcile(self, force: bool) -> None:
        self._next_reconcile_check = time.monotonic() + min(self.reconcile_every, 15)
        try:
            if force or reconcile.reconcile_due():
                if not force:
                    # Redis lost its data (or the period came round): put beat's own entries back too.
                    RedBeatScheduler.setup_schedule(self)
                changes = reconcile.reconcile()
                if any(changes.values()):
                    log.warning("beat: schedule reconciled from the database: %s", changes)
        except Exception:
            # A reconcile that fails (database briefly away) must not stop beat from firing what it has.
            log.exception("beat: reconciliation failed; will retry")
