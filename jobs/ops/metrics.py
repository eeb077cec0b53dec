"""Prometheus metrics of the job service, served at /metrics.

Counters and histograms are recorded where things happen: workers (runs, steps, bytes, firing lag) and beat
(schedule drift). They live in separate processes from the web server, so deployments set
PROMETHEUS_MULTIPROC_DIR to a folder shared by web, worker and beat on a machine (compose.yaml: a volume);
/metrics then adds up every process's values (prometheus_client's multiprocess mode). Without it (`make run`
sets none), /metrics shows the web process's own counters only, none of the workers' or beat's.

Gauges of the current state (active jobs, runs going, queue depth) are read at scrape time from the database
and Redis, so they are right however many processes there are.
"""

import logging
import os

from django.conf import settings
from django.db.models import Count
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily

from jobs.models import JobHistory, RunStatus, ScheduledJob
from pointscene.core.connections import redis_client

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


def record_start(trigger: str, scheduled_for, started_at) -> None:
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
        depth = GaugeMetricFamily("pointscene_queue_depth", "Messages waiting in the broker's run queue.")
        depth.add_metric([], redis_client().llen(settings.CELERY_TASK_DEFAULT_QUEUE))
        yield depth


def exposition() -> bytes:
    """Every metric, in Prometheus's text format: all processes' counters (multiprocess mode) or this one's,
    plus the state gauges."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        from prometheus_client import REGISTRY as registry
    state = CollectorRegistry()
    state.register(StateCollector())
    return generate_latest(registry) + generate_latest(state)
