"""The reference side of bench/scheduler.py: a plain Celery task and two stock schedulers that note publish times.

The task `bench.ref_run(job_id, slot)` records when a worker started it, and which worker (its node name). The
schedulers are stock `redbeat.RedBeatScheduler` and `django_celery_beat.schedulers.DatabaseScheduler`, subclassed
only to note, after each publish returns, (job id, slot, time.time()); the notes are written to Redis in batches (at
most every 0.5 s or 500 notes) so that noting costs the scheduler as little as possible. Nothing else is changed.

Environment: REDIS_URL (the benchmark's private Redis), BENCH_REF_KEY (key prefix of this run's notes).
"""

import os
import time

import redis
from celery import shared_task
from django_celery_beat.schedulers import DatabaseScheduler
from redbeat import RedBeatScheduler

FLUSH_SECONDS = 0.5
FLUSH_NOTES = 500


def _client() -> redis.Redis:
    return redis.Redis.from_url(os.environ["REDIS_URL"])


def _key(name: str) -> str:
    return os.environ["BENCH_REF_KEY"] + name


_worker_client: redis.Redis | None = None


@shared_task(name="bench.ref_run", ignore_result=True, bind=True)
def ref_run(self, job_id: int, slot: str) -> None:
    started = time.time()
    global _worker_client
    if _worker_client is None:
        _worker_client = _client()
    _worker_client.rpush(_key("started"), f"{job_id} {slot} {started:.6f} {self.request.hostname}")


class Noting:
    """Mixin: notes when each due entry's message was published (after the publish returned)."""

    def _bench_setup(self) -> None:
        self._bench_client = _client()
        self._bench_notes: list[str] = []
        self._bench_flushed = time.monotonic()
        self._bench_ticks = 0

    def apply_async(self, entry, *args, **kwargs):
        result = super().apply_async(entry, *args, **kwargs)
        if entry.task == "bench.ref_run":
            job_id, slot = entry.args
            self._bench_notes.append(f"{job_id} {slot} {time.time():.6f}")
        return result

    def tick(self, *args, **kwargs):
        interval = super().tick(*args, **kwargs)
        self._bench_ticks += 1
        if self._bench_ticks == 1:
            # The first tick has loaded the whole schedule: the scheduler is ready.
            self._bench_client.set(_key("ready"), f"{time.time():.6f}")
        if len(self._bench_notes) >= FLUSH_NOTES or time.monotonic() - self._bench_flushed >= FLUSH_SECONDS:
            self._bench_flush()
        return interval

    def _bench_flush(self) -> None:
        if self._bench_notes:
            self._bench_client.rpush(_key("sent"), *self._bench_notes)
            self._bench_notes = []
        self._bench_flushed = time.monotonic()

    def close(self):
        self._bench_flush()
        super().close()


class NotingRedBeatScheduler(Noting, RedBeatScheduler):
    def __init__(self, *args, **kwargs):
        self._bench_setup()
        super().__init__(*args, **kwargs)


class NotingDatabaseScheduler(Noting, DatabaseScheduler):
    # The app imports redbeat (jobs.scheduling.beat), whose beat_init handler looks for a lock on any scheduler.
    lock_key = None

    def __init__(self, *args, **kwargs):
        self._bench_setup()
        super().__init__(*args, **kwargs)
