"""Running a job: one JobHistory row per run, the workflow's tasks in dependency order, a log, the job's
overlap policy, retries of retryable step failures, and bookkeeping that survives a brief database outage.

Called by the Celery tasks in jobs/tasks.py, which only pass ids and the slot.
"""

import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, InterfaceError, OperationalError, connection, transaction

from jobs import dispatch, tasktypes
from jobs.models import JobHistory, OverlapPolicy, RunStatus, RunTrigger, ScheduledJob
from jobs.ops import metrics
from jobs.running import outcome
from jobs.running.locks import RunLock, cancel_requested
from jobs.running.logs import RunLog
from jobs.scheduling.slots import JobSchedule
from jobs.steps import RunCancelled, StepContext, StepFailed
from jobs.storage import run_log_path
from jobs.workflow import task_inputs
from pointscene.logconfig import log_context

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 3600
DB_RETRY_SECONDS = 60


def run_scheduled(job_id: int, slot: datetime, published_at: datetime | None = None) -> int | None:
    """Runs the job for schedule slot `slot` unless that slot already has a run. Returns the run's id."""
    job = ScheduledJob.objects.filter(pk=job_id).first()
    if job is None or not job.active:
        log.info("job %s: slot %s dropped (job deleted or paused)", job_id, slot)
        return None
    if not JobSchedule.for_job(job).is_occurrence(slot):
        # Published before the schedule changed: the new schedule does not have this slot.
        log.info("job %s: slot %s dropped (no longer in the job's schedule)", job_id, slot)
        return None
    now = datetime.now(UTC)
    missed = job.late_slot_fate(slot, now)
    try:
        with transaction.atomic():
            run = JobHistory.objects.create(
                job=job,
                instance_id=job.instance_id,
                trigger=RunTrigger.SCHEDULE,
                scheduled_for=slot,
                published_at=published_at,
                **({"status": RunStatus.MISSED, "error": missed, "finished_at": now} if missed else {}),
            )
    except IntegrityError:
        log.info("job %s: slot %s already has a run; duplicate delivery ignored", job_id, slot)
        return None
    if missed:
        log.warning("job %s: slot %s %s", job_id, slot.isoformat(), missed)
        metrics.record_end(RunStatus.MISSED, RunTrigger.SCHEDULE, None, now, None)
        return run.pk
    if published_at is not None and job.fire_time(slot) < now - timedelta(seconds=settings.JOBS_MISFIRE_GRACE_SECONDS):
        log.info("job %s: slot %s runs late, within its catch-up window", job_id, slot.isoformat())
    execute(run, job)
    return run.pk


def record_missed(job_id: int, after: datetime, before: datetime) -> int:
    """Records as MISSED every slot of the job strictly between `after` and `before` (beat found them passed,
    unfired, when it came back; it fires `before` itself). Newest JOBS_MISSED_RECORD_LIMIT only. Idempotent."""
    job = ScheduledJob.objects.filter(pk=job_id).first()
    if job is None:
        return 0
    now = datetime.now(UTC)
    slots = []
    for slot in JobSchedule.for_job(job).occurrences_after(after):
        if slot >= before:
            break
        slots.append(slot)
    slots = slots[-settings.JOBS_MISSED_RECORD_LIMIT :]
    if slots:
        taken = set(
            JobHistory.objects.filter(job=job, scheduled_for__gte=slots[0], scheduled_for__lte=slots[-1]).values_list(
                "scheduled_for", flat=True
            )
        )
        slots = [slot for slot in slots if slot not in taken]
    window = timedelta(minutes=job.catchup_window_minutes)
    rows = [
        JobHistory.missed(
            job,
            slot,
            job.coalesced_reason(before)
            if job.catchup_window_minutes and before - slot <= window
            else job.missed_reason(int((now - job.fire_time(slot)).total_seconds())),
            now,
        )
        for slot in slots
    ]
    # ignore_conflicts: a run that another delivery recorded meanwhile keeps its row.
    JobHistory.objects.bulk_create(rows, ignore_conflicts=True)
    if rows:
        log.warning("job %s: %d slots before %s were missed (beat was not firing)", job_id, len(rows), before)
    return len(rows)


def run_queued(run_id: int) -> None:
    """Runs a queued run (runScheduledJob, or a BUFFER_ONE slot whose turn came), unless it was cancelled or
    already taken meanwhile."""
    run = JobHistory.objects.select_related("job").filter(pk=run_id, status=RunStatus.QUEUED).first()
    if run is not None:
        execute(run, run.job)


def execute(run: JobHistory, job: ScheduledJob) -> None:
    with log_context(job_id=job.pk, run_id=run.pk, instance_id=job.instance_id):
        _execute(run, job)


def _execute(run: JobHistory, job: ScheduledJob) -> None:
    run_log = RunLog()
    # ALLOW runs side by side: no lock, so nothing to skip or wait for.
    lock = None if job.overlap_policy == OverlapPolicy.ALLOW else RunLock(job.pk)
    try:
        if lock is not None and not lock.acquire():
            if run.buffered_at is not None:
                return  # still waiting its turn: the running run (or the sweeper) starts it
            if not _may_buffer(run, job):
                reason = "the previous run of this job was still going"
                if job.overlap_policy == OverlapPolicy.BUFFER_ONE and run.trigger == RunTrigger.SCHEDULE:
                    reason += " and another slot was already waiting"
                run_log.line(f"Run {run.pk} of job {job.pk}: skipped, {reason}.")
                _finish(run, RunStatus.SKIPPED, run_log, error=f"skipped: {reason}")
                return
            # Parked. The running run may have ended between our two looks: then start it ourselves.
            if not lock.acquire():
                log.info("run %s: waits for the job's running run (BUFFER_ONE)", run.pk)
                return
        try:
            _execute_locked(run, job, run_log, lock)
        finally:
            if lock is not None:
                lock.release()
        if lock is not None:
            start_buffered(job.pk)
    finally:
        run_log.close()


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


def _execute_locked(run: JobHistory, job: ScheduledJob, run_log: RunLog, lock: RunLock | None) -> None:
    started = datetime.now(UTC)
    worker = f"{socket.gethostname()}:{os.getpid()}"
    # Only a queued run starts: a run cancelled while queued stays cancelled.
    claimed = db_retry(
        lambda: JobHistory.objects.filter(pk=run.pk, status=RunStatus.QUEUED).update(
            status=RunStatus.RUNNING, started_at=started, worker=worker, heartbeat_at=started
        ),
        "claim the run",
    )
    if not claimed:
        return
    db_retry(lambda: ScheduledJob.objects.filter(pk=job.pk).update(last_run_at=started), "note the start")
    run.status, run.started_at = RunStatus.RUNNING, started
    metrics.record_start(run.trigger, run.scheduled_for, started)
    log.info(
        "run started (%s%s)",
        run.trigger.lower(),
        f", slot {run.scheduled_for.isoformat()}" if run.scheduled_for else "",
    )

    slot = f" for {run.scheduled_for.isoformat()}" if run.scheduled_for else ""
    run_log.line(f"Run {run.pk} of job {job.pk} ({job.name or 'unnamed'}), {run.trigger.lower()}{slot}, on {worker}")
    limit = job.time_limit_seconds or settings.JOBS_RUN_TIME_LIMIT
    watch = Watch(run.pk, lock, limit)
    status, error, steps = RunStatus.FAILED, None, []
    watch.start()
    try:
        status, error, steps = run_workflow(run, job, run_log, watch)
    except Exception as exc:
        # The row must still end: a run left RUNNING would block nothing but would mislead everyone.
        log.exception("run %s: internal error", run.pk)
        error = f"internal error: {type(exc).__name__}"
    watch.stop()
    if watch.reason == "cancelled":
        status, error = RunStatus.CANCELLED, "cancelled"
        JobHistory.objects.filter(pk=run.pk).update(cancel_requested_at=datetime.now(UTC))
    elif watch.reason == "time limit":
        status, error = RunStatus.FAILED, f"time limit of {limit} s exceeded"
    run_log.line(f"Run {run.pk} {status.lower()}" + (f": {error}" if error else ""))
    _finish(run, status, run_log, error=error, steps=steps)


def run_workflow(run: JobHistory, job: ScheduledJob, run_log: RunLog, watch: "Watch"):
    tasks = job.workflow["tasks"]
    steps = [{"name": t["name"], "type": t["type"], "status": "PENDING"} for t in tasks]
    outputs: dict[str, dict] = {}
    for i in dependency_order(tasks):
        task, step = tasks[i], steps[i]
        task_type = tasktypes.get(task["type"])
        step.update(status="RUNNING", startedAt=_now_iso())
        _save_progress(run.pk, steps)
        run_log.line(f"[{task['name']}] {task['type']} started")
        started = time.monotonic()
        ctx = StepContext(
            run_id=run.pk,
            job_id=job.pk,
            instance_id=job.instance_id,
            task_name=task["name"],
            args=task.get("args") or {},
            inputs={name: outputs[name] for name in task_inputs(task)},
            log=lambda message, name=task["name"]: run_log.line(f"[{name}] {message}"),
            cancelled=watch.stop_event,
            processes=watch.processes,
        )
        failure, counters, result = attempt_step(
            task_type, ctx, job, step, run_log, watch, save=lambda: _save_progress(run.pk, steps)
        )
        step["finishedAt"] = _now_iso()
        step["seconds"] = round(time.monotonic() - started, 3)
        if failure is None:
            outputs[task["name"]] = result.outputs
            step.update(status="SUCCEEDED", counters=result.counters)
            run_log.line(f"[{task['name']}] succeeded in {step['seconds']} s {result.counters}")
            continue
        step.update(status="FAILED", error=failure, **({"counters": counters} if counters else {}))
        run_log.line(f"[{task['name']}] failed after {step['seconds']} s: {failure}")
        for j in range(len(tasks)):
            if steps[j]["status"] == "PENDING":
                steps[j]["status"] = "NOT_RUN"
        return RunStatus.FAILED, f"step {task['name']!r} failed: {failure}", steps
    return RunStatus.SUCCEEDED, None, steps


def attempt_step(
    task_type, ctx, job: ScheduledJob, step: dict, run_log: RunLog, watch: "Watch", save: Callable[[], None]
):
    """Runs one step, retrying a retryable failure up to job.max_retries times with doubling waits.

    Returns (failure or None, counters of the failed attempt, result). Every attempt is in the step's
    `attempts`/`retries` and in the log; cancel and the time limit cut a wait short."""
    attempt = 0
    while True:
        attempt += 1
        step["attempts"] = attempt
        failure, counters, result, retryable = None, {}, None, False
        try:
            if watch.stop_event.is_set():
                raise RunCancelled()
            result = task_type.run(ctx)
        except RunCancelled:
            return watch.reason or "cancelled", {}, None
        except StepFailed as exc:
            failure, counters, retryable = str(exc), exc.counters, exc.retryable
        except Exception as exc:
            log.exception("run %s step %s: internal error", ctx.run_id, ctx.task_name)
            failure = f"internal error: {type(exc).__name__}"
        if failure is None:
            return None, {}, result
        if not retryable or attempt > job.max_retries:
            if retryable and job.max_retries:
                failure = f"{failure} (after {attempt} attempts)"
            return failure, counters, None
        wait = min(job.retry_backoff_seconds * 2 ** (attempt - 1), MAX_BACKOFF_SECONDS)
        step.setdefault("retries", []).append({"attempt": attempt, "error": failure, "at": _now_iso(), "wait": wait})
        run_log.line(f"[{ctx.task_name}] attempt {attempt} failed (retryable): {failure}; retrying in {wait} s")
        save()
        if watch.stop_event.wait(wait):
            return watch.reason or "cancelled", counters, None


def _save_progress(run_id: int, steps: list[dict]) -> None:
    """Progress is a courtesy: a database hiccup must not fail the run (the final write retries)."""
    try:
        JobHistory.objects.filter(pk=run_id).update(steps=steps)
    except (OperationalError, InterfaceError):
        log.warning("run %s: could not save progress; carrying on", run_id)
        connection.close()


def dependency_order(tasks: list[dict]) -> list[int]:
    """Task positions such that every task comes after the tasks it names in inputs; ties keep list order."""
    position = {t["name"]: i for i, t in enumerate(tasks)}
    waiting = {i: {position[n] for n in task_inputs(t)} for i, t in enumerate(tasks)}
    order: list[int] = []
    while waiting:
        ready = [i for i, deps in sorted(waiting.items()) if not deps]
        if not ready:
            raise ValueError("workflow inputs form a cycle")  # validation refuses these at create time
        for i in ready:
            order.append(i)
            del waiting[i]
        for deps in waiting.values():
            deps.difference_update(ready)
    return order


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
    db_retry(lambda: JobHistory.objects.filter(pk=run.pk).update(**fields), "record the outcome")
    metrics.record_end(status, run.trigger, run.started_at, fields["finished_at"], steps)
    log.info("run ended: %s%s", status.lower(), f" ({error})" if error else "")
    db_retry(lambda: outcome.run_ended(run.job_id, run.pk, status), "count failures")


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


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


class Watch(threading.Thread):
    """Beside a running run: renews the job's lock lease, notices cancellation and the time limit, and then
    stops the run's steps (their child processes included)."""

    POLL_SECONDS = 1.0

    def __init__(self, run_id: int, lock: RunLock | None, limit_seconds: int) -> None:
        super().__init__(daemon=True, name=f"watch-run-{run_id}")
        self.run_id = run_id
        self.lock = lock
        self.deadline = time.monotonic() + limit_seconds
        self.stop_event = threading.Event()
        self.done = threading.Event()
        self.reason: str | None = None
        self.processes: list = []

    def run(self) -> None:
        renew_every = max(1.0, settings.JOBS_RUN_LOCK_LEASE / 3)
        next_renew = time.monotonic() + renew_every
        try:
            while not self.done.wait(self.POLL_SECONDS):
                now = time.monotonic()
                if now >= next_renew:
                    self._renew()
                    next_renew = now + renew_every
                if now >= self.deadline:
                    self._halt("time limit")
                elif self._cancel_requested():
                    self._halt("cancelled")
        finally:
            # This thread's own database connection.
            connection.close()

    def _renew(self) -> None:
        if self.lock is not None:
            try:
                if not self.lock.renew():
                    log.warning("run %s: its job lock lease ran out; another run may start", self.run_id)
            except Exception:
                log.warning("run %s: could not renew the job lock", self.run_id, exc_info=True)
        # The heartbeat is what tells the sweeper this run still has a worker; it lives in the database,
        # so a Redis flush cannot make a live run look dead.
        try:
            JobHistory.objects.filter(pk=self.run_id, status=RunStatus.RUNNING).update(heartbeat_at=datetime.now(UTC))
        except Exception:
            log.warning("run %s: could not write its heartbeat", self.run_id, exc_info=True)
            connection.close()

    def _cancel_requested(self) -> bool:
        try:
            return cancel_requested(self.run_id)
        except Exception:
            log.warning("run %s: could not check for cancellation", self.run_id, exc_info=True)
            return False

    def _halt(self, reason: str) -> None:
        if self.stop_event.is_set():
            return
        self.reason = reason
        self.stop_event.set()
        for process in list(self.processes):
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                pass

    def stop(self) -> None:
        self.done.set()
        self.join(timeout=5)
