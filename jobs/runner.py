"""Running a job: one JobHistory row per run, the workflow's tasks in dependency order, a log, one run at a time.

Called by the Celery tasks in jobs/tasks.py, which only pass ids and the slot.
"""

import logging
import os
import signal
import socket
import threading
import time
from datetime import UTC, datetime

from django.conf import settings
from django.db import IntegrityError, transaction

from jobs import metrics, tasktypes
from jobs.beat import JobSchedule
from jobs.locks import RunLock, cancel_requested
from jobs.logs import RunLog
from jobs.models import JobHistory, RunStatus, RunTrigger, ScheduledJob
from jobs.storage import run_log_path
from jobs.workflow import task_inputs
from pointscene.logconfig import log_context

log = logging.getLogger(__name__)


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
    try:
        with transaction.atomic():
            run = JobHistory.objects.create(
                job=job,
                instance_id=job.instance_id,
                trigger=RunTrigger.SCHEDULE,
                scheduled_for=slot,
                published_at=published_at,
            )
    except IntegrityError:
        log.info("job %s: slot %s already has a run; duplicate delivery ignored", job_id, slot)
        return None
    execute(run, job)
    return run.pk


def run_queued(run_id: int) -> None:
    """Runs a run queued by runScheduledJob, unless it was cancelled (or already taken) meanwhile."""
    run = JobHistory.objects.select_related("job").filter(pk=run_id, status=RunStatus.QUEUED).first()
    if run is not None:
        execute(run, run.job)


def execute(run: JobHistory, job: ScheduledJob) -> None:
    with log_context(job_id=job.pk, run_id=run.pk, instance_id=job.instance_id):
        _execute(run, job)


def _execute(run: JobHistory, job: ScheduledJob) -> None:
    run_log = RunLog()
    lock = RunLock(job.pk)
    try:
        if not lock.acquire():
            run_log.line(f"Run {run.pk} of job {job.pk}: skipped, the previous run is still going.")
            _finish(run, RunStatus.SKIPPED, run_log, error="skipped: the previous run of this job was still going")
            return
        try:
            _execute_locked(run, job, run_log, lock)
        finally:
            lock.release()
    finally:
        run_log.close()


def _execute_locked(run: JobHistory, job: ScheduledJob, run_log: RunLog, lock: RunLock) -> None:
    started = datetime.now(UTC)
    worker = f"{socket.gethostname()}:{os.getpid()}"
    # Only a queued run starts: a run cancelled while queued stays cancelled.
    claimed = JobHistory.objects.filter(pk=run.pk, status=RunStatus.QUEUED).update(
        status=RunStatus.RUNNING, started_at=started, worker=worker
    )
    if not claimed:
        return
    ScheduledJob.objects.filter(pk=job.pk).update(last_run_at=started)
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
        JobHistory.objects.filter(pk=run.pk).update(steps=steps)
        run_log.line(f"[{task['name']}] {task['type']} started")
        started = time.monotonic()
        ctx = tasktypes.StepContext(
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
        failure, counters = None, {}
        try:
            if watch.stop_event.is_set():
                raise tasktypes.RunCancelled()
            result = task_type.run(ctx)
        except tasktypes.RunCancelled:
            failure = watch.reason or "cancelled"
        except tasktypes.StepFailed as exc:
            failure, counters = str(exc), exc.counters
        except Exception as exc:
            log.exception("run %s step %s: internal error", run.pk, task["name"])
            failure = f"internal error: {type(exc).__name__}"
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
    JobHistory.objects.filter(pk=run.pk).update(**fields)
    metrics.record_end(status, run.trigger, run.started_at, fields["finished_at"], steps)
    log.info("run ended: %s%s", status.lower(), f" ({error})" if error else "")


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


class Watch(threading.Thread):
    """Beside a running run: renews the job's lock lease, notices cancellation and the time limit, and then
    stops the run's steps (their child processes included)."""

    POLL_SECONDS = 1.0

    def __init__(self, run_id: int, lock: RunLock, limit_seconds: int) -> None:
        super().__init__(daemon=True, name=f"watch-run-{run_id}")
        self.run_id = run_id
        self.lock = lock
        self.deadline = time.monotonic() + limit_seconds
        self.stop_event = threading.Event()
        self.done = threading.Event()
        self.reason: str | None = None
        self.processes: list = []

    def run(self) -> None:
        renew_every = max(1.0, self.lock.lease / 3)
        next_renew = time.monotonic() + renew_every
        while not self.done.wait(self.POLL_SECONDS):
            now = time.monotonic()
            if now >= next_renew:
                self._renew()
                next_renew = now + renew_every
            if now >= self.deadline:
                self._halt("time limit")
            elif self._cancel_requested():
                self._halt("cancelled")

    def _renew(self) -> None:
        try:
            if not self.lock.renew():
                log.warning("run %s: its job lock lease ran out; another run may start", self.run_id)
        except Exception:
            log.warning("run %s: could not renew the job lock", self.run_id, exc_info=True)

    def _cancel_requested(self) -> bool:
        try:
            return cancel_requested(self.run_id, self.lock.client)
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
