"""Prometheus metrics of the job service, served at /metrics.

Counters and histograms are recorded where things happen: workers (runs, steps, bytes, firing lag) and beat
(schedule drift). prometheus_client's multiprocess mode adds up the processes that share a PROMETHEUS_MULTIPROC_DIR:
one folder per process group, emptied at its start (pointscene.procmetrics): per container in compose (web's gunicorn
workers; a worker and its prefork children; beat), per session under `make run` (web, worker and beat together, so
/metrics shows the worker's runs). In compose each worker serves its own counters on its metrics port
(jobs.metrics_port) and Prometheus scrapes web and every worker (docs/deploy.md, "Metrics").

Gauges of the current state (active jobs, runs going, queue depth) are read at scrape time from the database
and Redis, so they are right however many processes there are.
"""

import logging
import os
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

import redis
from django.conf import settings
from django.db.models import Count
from kombu.transport.redis import PRIORITY_STEPS, Channel
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily

from jobs.models import JobHistory, RunStatus, ScheduledJob
from pointscene.core.connections import redis_client
from pointscene.core.sentinel import SentinelUrl

log = logging.getLogger(__name__)

RUNS = Counter("pointscene_runs_total", "Runs that ended, by outcome and trigger.", ["status", "trigger"])
STEPS = Counter(
    "pointscene_steps_total", "Workflow steps that ended, by task type and outcome.", ["task_type", "status"]
)
RUN_SECONDS = Histogram(
    "pointscene_run_duration_seconds",
    "Time from a run's start to its end.",
    buckets=(0.5, 1, 5, 15, 60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600),
)
FIRING_LAG = Histogram(
    "pointscene_firing_lag_seconds",
    "Time from a scheduled slot to the start of its run on a worker.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
)
BYTES = Counter("pointscene_transferred_bytes_total", "Bytes moved by sync steps.", ["task_type"])
FILES = Counter("pointscene_transferred_files_total", "Files moved by sync steps.", ["task_type"])
DRIFT = Counter(
    "pointscene_schedule_drift_total",
    "Schedule entries that reconciliation found missing (added), orphaned (removed) or wrong (fixed).",
    ["kind"],
)


def record_start(scheduled_for: datetime | None, started_at: datetime) -> None:
    """How late a scheduled run started after its slot (manual runs have no slot, so no lag)."""
    if scheduled_for is not None:
        FIRING_LAG.observe(max(0.0, (started_at - scheduled_for).total_seconds()))


def record_end(status: str, trigger: str, started_at, finished_at, steps: list[dict] | None) -> None:
    """Called once per run by the worker, when the run's row is final. Never raises: metrics must not fail runs."""
    try:
        RUNS.labels(status=status.lower(), trigger=trigger.lower()).inc()
        if started_at is not None:
            RUN_SECONDS.observe(max(0.0, (finished_at - started_at).total_seconds()))
        for step in steps or []:
            if step.get("status") in ("SUCCEEDED", "FAILED"):
                STEPS.labels(task_type=step["type"], status=step["status"].lower()).inc()
            counters = step.get("counters") or {}
            if counters.get("bytesTransferred"):
                BYTES.labels(task_type=step["type"]).inc(counters["bytesTransferred"])
            if counters.get("filesTransferred"):
                FILES.labels(task_type=step["type"]).inc(counters["filesTransferred"])
    except Exception:  # noqa: BLE001
        log.warning("could not record the run's metrics", exc_info=True)


@dataclass
class QueueDepth:
    ok: bool
    detail: str
    waiting: int = 0
    reserved: int = 0
    queue: str = ""


def queue_depth() -> QueueDepth:
    """Messages waiting in the Celery queue on the Redis broker, and messages workers have taken but not yet
    acknowledged (acks_late: the runs in their hands, and ETA runs they hold). The one count /metrics and the
    admin dashboard both show.

    Waiting counts every list kombu keeps for the queue: the plain one and one per priority step (a message sent
    with a priority goes to "<queue>\x06\x16<step>"), under the transport's global_keyprefix, on the broker's own
    Redis, which need not be REDIS_URL."""
    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    broker = settings.CELERY_BROKER_URL
    if not broker.startswith(("redis://", "rediss://", "unix://", "sentinel://")):
        return QueueDepth(False, "the broker is not Redis; its queue depth is not shown here", queue=queue)
    options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}) or {}
    prefix = options.get("global_keyprefix", "")
    steps = options.get("priority_steps", PRIORITY_STEPS)
    names = [prefix + queue] + [f"{prefix}{queue}{Channel.sep}{step}" for step in steps if step]
    if broker.startswith("sentinel://") and not _same_redis(broker):
        reason = "the broker is a Sentinel set other than REDIS_URL's; its queue depth is not shown here"
        return QueueDepth(False, reason, queue=queue)
    try:
        client = redis_client() if _same_redis(broker) else _broker_client(broker)
        with client.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.llen(name)
            pipe.hlen(prefix + options.get("unacked_key", Channel.unacked_key))
            *lengths, reserved = pipe.execute()
    except redis.RedisError as exc:
        return QueueDepth(False, f"the broker did not answer: {type(exc).__name__}", queue=queue)
    return QueueDepth(True, "ok", waiting=sum(lengths), reserved=reserved, queue=queue)


def _same_redis(broker: str) -> bool:
    sentinel = SentinelUrl.parse(settings.REDIS_URL)
    return broker == (sentinel.broker_url() if sentinel else settings.REDIS_URL)


@lru_cache(maxsize=4)
def _broker_client(url: str) -> redis.Redis:
    # One pool per process for a broker that is not the app's own Redis.
    return redis.Redis.from_url(url)


def record_drift(changes: dict[str, list]) -> None:
    for kind, ids in changes.items():
        if ids:
            DRIFT.labels(kind=kind).inc(len(ids))


class StateCollector:
    """What is true now, read at scrape time."""

    def collect(self):
        active = GaugeMetricFamily("pointscene_active_jobs", "Jobs that are active (scheduled).")
        active.add_metric([], ScheduledJob.objects.filter(active=True).count())
        yield active
        going = GaugeMetricFamily("pointscene_runs_in_progress", "Runs queued or running now.", labels=["status"])
        counts = dict(
            JobHistory.objects.filter(status__in=[RunStatus.QUEUED, RunStatus.RUNNING])
            .values_list("status")
            .annotate(n=Count("id"))
        )
        for status in (RunStatus.QUEUED, RunStatus.RUNNING):
            going.add_metric([status.lower()], counts.get(status, 0))
        yield going
        found = queue_depth()
        if found.ok:
            # Left out when unknown (broker not Redis, or not answering) rather than a made-up 0.
            depth = GaugeMetricFamily("pointscene_queue_depth", "Messages waiting in the broker's run queue.")
            depth.add_metric([], found.waiting)
            yield depth


def exposition() -> bytes:
    """Every metric, in Prometheus's text format: all processes' counters (multiprocess mode) or this one's,
    plus the state gauges."""
    registry = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    state = CollectorRegistry()
    state.register(StateCollector())
    return generate_latest(registry) + generate_latest(state)
