"""Running a job: one JobHistory row per slot or manual run, admitted under the job's overlap policy (run lock,
skip or wait), handed to the step engine (jobs.running.engine) beside its watcher (jobs.running.watch), and
ended with its log stored and its outcome recorded, with bookkeeping that survives a brief database outage.

Called by the Celery tasks in jobs/tasks.py, which only pass ids and the slot.
"""

import logging
import os
import socket
import time
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta

from celery import current_task
from django.conf import settings
from django.db import IntegrityError, InterfaceError, OperationalError, connection, transaction

from jobs import dispatch
from jobs.models import JobHistory, OverlapPolicy, RunStatus, RunTrigger, ScheduledJob
from jobs.ops import metrics
from jobs.running import engine, outcome
from jobs.running.locks import RunLock
from jobs.running.logs import RunLog, discard_log
from jobs.running.watch import Watch
from jobs.scheduling.slots import JobSchedule
from pointscene.core import statements
from pointscene.core.storage import run_log_path
from pointscene.logconfig import log_context

log = logging.getLogger(__name__)

DB_RETRY_SECONDS = 60


def run_scheduled(
    job_id: int, slot: datetime, published_at: datetime | None = None, task_id: str | None = None
) -> int | None:
    """Runs the job for schedule slot `slot` unless that slot already has a run. Returns the run's id.

    `task_id`: the Celery task doing this, recorded on the run (its result is the run's task result)."""
    # Every slot of every job comes through here: its statements are built once (pointscene.core.statements).
    job = statements.get_by_pk(ScheduledJob, job_id)
    if job is None or not job.active:
        log.info("job %s: slot %s dropped (job deleted or paused)", job_id, slot)
        return None
    if not JobSchedule.for_job(job).is_occurrence(slot):
        # Published before the schedule changed: the new schedule does not have this slot.
        log.info("job %s: slot %s dropped (no longer in the job's schedule)", job_id, slot)
        return None
    now = datetime.now(UTC)
    missed = job.late_slot_fate(slot, now)
    if missed:
        run = _record_slot(job, slot, published_at, task_id, status=RunStatus.MISSED, error=missed, finished_at=now)
        if run is not None:
            log.warning("job %s: slot %s %s", job_id, slot.isoformat(), missed)
            metrics.record_end(RunStatus.MISSED, RunTrigger.SCHEDULE, None, now, None)
        return run.pk if run else None
    if published_at is not None and job.fire_time(slot) < now - timedelta(seconds=settings.JOBS_MISFIRE_GRACE_SECONDS):
        log.info("job %s: slot %s runs late, within its catch-up window", job_id, slot.isoformat())
    # The slot's row comes first, and its INSERT alone tells a duplicate delivery (the unique job+slot): a
    # duplicate never touches the job's lock. (Were the lock taken first, a twin delivery holding it for the length
    # of its INSERT would make this slot skip, and a late duplicate would make the job's next slot skip.) In the
    # usual case this one INSERT is all the admission costs: the row is born claimed by this worker.
    started = datetime.now(UTC)
    run = _record_slot(
        job,
        slot,
        published_at,
        task_id,
        status=RunStatus.RUNNING,
        started_at=started,
        heartbeat_at=started,
        worker=worker_name(),
        steps=engine.claimed_steps(job.workflow["tasks"]),
    )
    if run is None:
        return None
    lock = _lock_for(job)
    if lock is None or lock.acquire():
        with log_context(job_id=job.pk, run_id=run.pk, instance_id=job.instance_id):
            _run_claimed(run, job, lock)
        return run.pk
    # The job's previous run holds the lock. The row, RUNNING for one Redis round trip, goes back to QUEUED and
    # is skipped or parked under the job's policy like any queued run.
    _unclaim(run)
    execute(run, job)
    return run.pk


def _record_slot(job: ScheduledJob, slot: datetime, published_at, task_id, **fields) -> JobHistory | None:
    """The slot's one row, or None when it already has one (the unique job+slot constraint: a duplicate delivery)."""
    row = JobHistory(
        job=job,
        instance_id=job.instance_id,
        trigger=RunTrigger.SCHEDULE,
        scheduled_for=slot,
        published_at=published_at,
        task_id=task_id,
        **fields,
    )
    try:
        # A worker is in autocommit: the INSERT is its own transaction, and a duplicate's failure ends with it.
        # Inside a caller's transaction (a test, a shell) a savepoint keeps that transaction usable.
        with transaction.atomic() if connection.in_atomic_block else nullcontext():
            statements.insert(row)
        return row
    except IntegrityError:
        log.info("job %s: slot %s already has a run; duplicate delivery ignored", job.pk, slot)
        return None


def _unclaim(run: JobHistory) -> None:
    fields = {"status": RunStatus.QUEUED, "started_at": None, "heartbeat_at": None, "worker": None, "steps": None}
    db_retry(
        lambda: JobHistory.objects.filter(pk=run.pk, status=RunStatus.RUNNING).update(**fields), "queue the slot"
    )
    for name, value in fields.items():
        setattr(run, name, value)


def run_queued(run_id: int, task_id: str | None = None) -> int | None:
    """Runs a queued run (runScheduledJob, or a BUFFER_ONE slot whose turn came), unless it was cancelled or
    already taken meanwhile. Returns its id if it was still queued.

    `task_id`: the Celery task doing this; the run records it once it starts (or is skipped) here."""
    run = JobHistory.objects.select_related("job").filter(pk=run_id, status=RunStatus.QUEUED).first()
    if run is None:
        return None
    # Several messages may name a queued run (a parked slot, a sweeper re-send): the one that ends up running it
    # (or skipping it) is its task.
    run.task_id = task_id or run.task_id
    execute(run, run.job)
    return run.pk


def execute(run: JobHistory, job: ScheduledJob) -> None:
    """Runs a QUEUED run: admitted under the job's overlap policy, claimed, run."""
    with log_context(job_id=job.pk, run_id=run.pk, instance_id=job.instance_id):
        lock = _lock_for(job)
        if not _admit(run, job, lock):
            return
        started, worker = datetime.now(UTC), worker_name()
        steps = engine.claimed_steps(job.workflow["tasks"])
        # Only a queued run starts: a run cancelled while queued stays cancelled.
        claimed = db_retry(
            lambda: JobHistory.objects.filter(pk=run.pk, status=RunStatus.QUEUED).update(
                status=RunStatus.RUNNING,
                started_at=started,
                worker=worker,
                heartbeat_at=started,
                task_id=run.task_id,
                steps=steps,
            ),
            "claim the run",
        )
        if not claimed:
            if lock is not None:
                lock.release()
            _hand_on_parked(job)
            return
        run.status, run.started_at, run.worker, run.steps = RunStatus.RUNNING, started, worker, steps
        _run_claimed(run, job, lock)


def _lock_for(job: ScheduledJob) -> RunLock | None:
    # ALLOW runs side by side (unless a bisync step forbids it): no lock, so nothing to skip or wait for.
    return RunLock(job.pk) if job.runs_one_at_a_time else None


def _admit(run: JobHistory, job: ScheduledJob, lock: RunLock | None) -> bool:
    """Takes the job's lock for `run`; if the previous run holds it, skips or parks `run` under the job's overlap
    policy and answers False."""
    if lock is None or lock.acquire():
        return True
    if run.buffered_at is not None:
        return False  # still waiting its turn: the running run (or the sweeper) starts it
    if not _may_buffer(run, job):
        reason = "the previous run of this job was still going"
        if job.overlap_policy == OverlapPolicy.BUFFER_ONE and run.trigger == RunTrigger.SCHEDULE:
            reason += " and another slot was already waiting"
        run_log = RunLog()
        try:
            run_log.line(f"Run {run.pk} of job {job.pk}: skipped, {reason}.")
            _finish(run, RunStatus.SKIPPED, run_log, error=f"skipped: {reason}")
        finally:
            run_log.close()
        return False
    # Parked. The running run may have ended between our two looks: then start it ourselves.
    if lock.acquire():
        return True
    log.info("run %s: waits for the job's running run (BUFFER_ONE)", run.pk)
    return False


def _run_claimed(run: JobHistory, job: ScheduledJob, lock: RunLock | None) -> None:
    """Runs a run this worker has claimed (RUNNING, its row says so) and holds the lock of, then lets go of it."""
    run_log = RunLog()
    try:
        _execute_claimed(run, job, run_log, lock)
    finally:
        run_log.close()
        if lock is not None:
            lock.release()
    _hand_on_parked(job)


def _hand_on_parked(job: ScheduledJob) -> None:
    """Now that the job's lock is free, its parked slot (BUFFER_ONE), if any, goes to a worker."""
    if job.overlap_policy == OverlapPolicy.BUFFER_ONE:
        start_buffered(job.pk)


def _may_buffer(run: JobHistory, job: ScheduledJob) -> bool:
    """Parks `run` as the job's one waiting slot (BUFFER_ONE); False if the job skips instead."""
    if job.overlap_policy != OverlapPolicy.BUFFER_ONE or run.trigger != RunTrigger.SCHEDULE:
        return False
    with transaction.atomic():
        # The job row serializes slots arriving together: exactly one of them gets the waiting place.
        ScheduledJob.objects.select_for_update().filter(pk=job.pk).first()
        waiting = (
            JobHistory.objects.filter(job_id=job.pk, status=RunStatus.QUEUED, buffered_at__isnull=False)
            .exclude(pk=run.pk)
            .exists()
        )
        if waiting:
            return False
        run.buffered_at = datetime.now(UTC)
        JobHistory.objects.filter(pk=run.pk).update(buffered_at=run.buffered_at)
    return True


def start_buffered(job_id: int) -> None:
    """Hands the job's waiting BUFFER_ONE slot, if any, to a worker now that the job's lock is free."""
    waiting = (
        JobHistory.objects.filter(job_id=job_id, status=RunStatus.QUEUED, buffered_at__isnull=False)
        .order_by("scheduled_for")
        .values_list("pk", flat=True)
        .first()
    )
    if waiting is None:
        return
    try:
        dispatch.run_queued(waiting)
    except Exception:
        log.warning("run %s: could not hand on the waiting slot; the sweeper will", waiting, exc_info=True)


def worker_name() -> str:
    """Who runs this: the Celery node (its -n name, e.g. worker-b@host, which names the machine even where every
    container's hostname looks alike) and the process; the host name when not run by a worker (tests, shells)."""
    node = getattr(getattr(current_task, "request", None), "hostname", None) or socket.gethostname()
    return f"{node}:{os.getpid()}"[:200]


def _execute_claimed(run: JobHistory, job: ScheduledJob, run_log: RunLog, lock: RunLock | None) -> None:
    started, worker = run.started_at, run.worker
    metrics.record_start(run.scheduled_for, started)
    # DEBUG: the run's row (started_at, worker) tells as much, and "run ended" (INFO) has the rest.
    log.debug(
        "run started (%s%s)",
        run.trigger.lower(),
        f", slot {run.scheduled_for.isoformat()}" if run.scheduled_for else "",
    )

    slot = f" for {run.scheduled_for.isoformat()}" if run.scheduled_for else ""
    run_log.line(f"Run {run.pk} of job {job.pk} ({job.name or 'unnamed'}), {run.trigger.lower()}{slot}, on {worker}")
    limit = job.time_limit_seconds or settings.JOBS_RUN_TIME_LIMIT
    watch = Watch(
        run.pk,
        lock,
        limit,
        flush=lambda: _store_log_so_far(run, run_log),
        going=lambda: outcome.note_start(job.pk, started),
    )
    steps = run.steps
    watch.start()
    try:
        status, error, steps = engine.run_workflow(run, job, run_log, watch, steps)
    except Exception as exc:
        # The row must still end: a run left RUNNING would block nothing but would mislead everyone. What its
        # steps did so far stays in the row.
        log.exception("run %s: internal error", run.pk)
        status, error = RunStatus.FAILED, f"internal error: {type(exc).__name__}"
        engine.close_steps(steps, failure=error)
    watch.stop()
    if watch.reason == "cancelled":
        status, error = RunStatus.CANCELLED, "cancelled"
        JobHistory.objects.filter(pk=run.pk).update(cancel_requested_at=datetime.now(UTC))
    elif watch.reason == "time limit":
        status, error = RunStatus.FAILED, f"time limit of {limit} s exceeded"
    run_log.line(f"Run {run.pk} {status.lower()}" + (f": {error}" if error else ""))
    _finish(run, status, run_log, error=error, steps=steps)


def _store_log_so_far(run: JobHistory, run_log: RunLog) -> None:
    """The log so far, at the path the whole log will have; the row points at it from the first store on, so
    signedLogUrl and the admin's tail read a running run's log (one JOBS_PROGRESS_SECONDS behind at most)."""
    stored = run_log.save_so_far(run_log_path(run.instance_id, run.job_id, run.pk))
    if stored is not None and run.log_path != stored:
        JobHistory.objects.filter(pk=run.pk).update(log_path=stored)
        run.log_path = stored


def _finish(run: JobHistory, status: str, run_log: RunLog, error: str | None = None, steps=None) -> None:
    path = run_log_path(run.instance_id, run.job_id, run.pk)
    try:
        stored = run_log.save(path)
    except Exception:
        log.exception("run %s: could not store its log", run.pk)
        stored = None
    fields = {"status": status, "finished_at": datetime.now(UTC), "error": error, "log_path": stored}
    if steps is not None:
        fields["steps"] = steps
    if run.task_id:
        fields["task_id"] = run.task_id
    recorded = db_retry(lambda: statements.update_by_pk(JobHistory, run.pk, **fields), "record the outcome")
    if not recorded:
        # The job was deleted while this run went: its log purge (jobs.running.purge) may have looked already.
        discard_log(stored)
    metrics.record_end(status, run.trigger, run.started_at, fields["finished_at"], steps)
    log.info("run ended: %s%s", status.lower(), f" ({error})" if error else "")
    db_retry(lambda: outcome.run_ended(run.job_id, run.pk, status, run.started_at), "count failures")


def db_retry(operation, what: str):
    """Runs a bookkeeping write, reconnecting and retrying for up to about a minute if the database went away:
    a run that did its work must not end up RUNNING because PostgreSQL restarted under it."""
    delay = 0.5
    deadline = time.monotonic() + DB_RETRY_SECONDS
    while True:
        try:
            return operation()
        except (OperationalError, InterfaceError):
            if time.monotonic() + delay > deadline:
                raise
            log.warning("database unavailable (%s); retrying in %.1f s", what, delay)
            connection.close()
            time.sleep(delay)
            delay = min(delay * 2, 8)
