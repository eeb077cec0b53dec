"""Celery tasks: ids in, service call out. Idempotent: a redelivered message finds its slot taken.

Each run records the id of the task that ran it (JobHistory.task_id). A run task stores a result
(pointscene/results.py) only when it crashes: its exception and traceback, which the console links from the run. A
run task that returns has nothing to add to its run's row (state, worker, times are there), and storing it anyway
cost every run four more statements (the started state, then the end) and kept a table as big as the history
(docs/benchmarks.md, Scheduler). The others ignore theirs: the sweep runs every 30 s, and webhooks and purges keep
their own account (logs, rows); testJobConfig's check returns its answer through its result.
"""

from datetime import datetime

from celery import shared_task

from jobs import (
    metrics_port,  # noqa: F401 - a worker's or beat's own metrics port
    retention,
)
from jobs.ops.notify import notify_webhook  # noqa: F401 - registers jobs.notify_webhook with the worker
from jobs.running import missed, purge, runner, sweeper
from jobs.sync import remote_check

RUN_TASK = {"bind": True, "acks_late": True, "ignore_result": True, "store_errors_even_if_ignored": True}


@shared_task(name="jobs.run_scheduled", **RUN_TASK)
def run_scheduled(self, job_id: int, scheduled_for: str, published_at: str | None = None) -> int | None:
    return runner.run_scheduled(
        job_id,
        datetime.fromisoformat(scheduled_for),
        datetime.fromisoformat(published_at) if published_at else None,
        task_id=self.request.id,
    )


@shared_task(name="jobs.run_queued", **RUN_TASK)
def run_queued(self, run_id: int) -> int | None:
    return runner.run_queued(run_id, task_id=self.request.id)


@shared_task(name="jobs.record_missed", acks_late=True, ignore_result=True)
def record_missed(job_id: int, after: str, before: str) -> None:
    missed.record_missed(job_id, datetime.fromisoformat(after), datetime.fromisoformat(before))


@shared_task(name="jobs.sweep", ignore_result=True)
def sweep() -> None:
    sweeper.sweep()


@shared_task(name="jobs.purge_logs", acks_late=True, ignore_result=True)
def purge_logs(purge_id: int) -> None:
    purge.purge(purge_id)


@shared_task(name="jobs.check_remote", ignore_result=False)
def check_remote(remote_id: int) -> dict:
    """testJobConfig's check; its answer (no secret: scrubbed by the session's redactor) goes back as the result."""
    return remote_check.check_remote(remote_id)


@shared_task(name="jobs.prune_history", ignore_result=True)
def prune_history() -> None:
    """Beat's periodic prune (JOBS_PRUNE_SECONDS); a prune that overlaps another only finds less to do."""
    retention.prune()
