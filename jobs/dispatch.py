"""Handing runs to the workers, by task name.

The senders (services, the runner, the sweeper) publish by name, so they need not import jobs.tasks, which
imports them; beat publishes the same names (jobs.scheduling.entries.RUN_TASK). Messages carry ids only.
"""

from datetime import datetime

from pointscene.celery import app

RUN_SCHEDULED = "jobs.run_scheduled"
RUN_QUEUED = "jobs.run_queued"
PURGE_LOGS = "jobs.purge_logs"


def run_queued(run_id: int) -> None:
    """Asks a worker to start queued run `run_id` (a manual run, or a slot that waited for its job's lock)."""
    app.send_task(RUN_QUEUED, args=[run_id])


def run_scheduled(job_id: int, slot: datetime) -> None:
    """Asks a worker to run job `job_id`'s slot `slot` now; a slot that already has its run is left as it is."""
    app.send_task(RUN_SCHEDULED, args=[job_id, slot.isoformat()])


def purge_logs(purge_id: int) -> None:
    """Asks a worker to delete the run logs that LogDeletion `purge_id` names (jobs.running.purge)."""
    app.send_task(PURGE_LOGS, args=[purge_id])
