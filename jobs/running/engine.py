"""The step engine: a run's tasks in dependency order, each step retried while its failure is retryable, its
progress saved as it goes. The runner (admission, the run's row) calls run_workflow; task types do the work."""

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection

from jobs import tasktypes
from jobs.models import JobHistory, RunStatus, ScheduledJob
from jobs.running.logs import RunLog
from jobs.running.watch import Watch
from jobs.steps import RunCancelled, StepContext, StepFailed
from jobs.workflow import task_inputs

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 3600


def pending_steps(tasks: list[dict]) -> list[dict]:
    """A run's steps before it starts: one PENDING entry per task, in the workflow's order."""
    return [{"name": t["name"], "type": t["type"], "status": "PENDING"} for t in tasks]


def claimed_steps(tasks: list[dict]) -> list[dict]:
    """A run's steps as its claim writes them: the first task in dependency order already RUNNING. The claim is a
    write the run makes anyway, so the first step's start costs none of its own."""
    steps = pending_steps(tasks)
    steps[dependency_order(tasks)[0]].update(status="RUNNING", startedAt=_now_iso())
    return steps


def run_workflow(run: JobHistory, job: ScheduledJob, run_log: RunLog, watch: Watch, steps: list[dict]):
    """Runs the tasks in dependency order, updating `steps` (the caller's, so that what was done survives an
    internal error) and saving them as each step starts (the runner's final write has how they ended). Returns
    (status, error, steps)."""
    tasks = job.workflow["tasks"]
    outputs: dict[str, dict] = {}
    reporter = ProgressReporter(run.pk, steps)
    for i in dependency_order(tasks):
        task, step = tasks[i], steps[i]
        shown = step["status"] == "RUNNING"  # the first step, written by the claim (claimed_steps)
        step.update(status="RUNNING", startedAt=_now_iso())
        if not shown:
            _save_progress(run.pk, steps)
        run_log.line(f"[{task['name']}] {task['type']} started")
        started = time.monotonic()
        task_type = tasktypes.get(task["type"])
        if task_type is None:
            # Checked when the job was saved; a release may since have dropped the type.
            return _fail(tasks, steps, i, run_log, started, f"unknown task type {task['type']!r}")
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
            progress=lambda progress, step=step: reporter.report(step, progress),
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
        close_steps(steps)
        return RunStatus.FAILED, f"step {task['name']!r} failed: {failure}", steps
    return RunStatus.SUCCEEDED, None, steps


def _fail(tasks: list[dict], steps: list[dict], i: int, run_log: RunLog, started: float, failure: str):
    name = tasks[i]["name"]
    steps[i].update(status="FAILED", error=failure, finishedAt=_now_iso(), seconds=round(time.monotonic() - started, 3))
    run_log.line(f"[{name}] failed: {failure}")
    close_steps(steps)
    return RunStatus.FAILED, f"step {name!r} failed: {failure}", steps


def close_steps(steps: list[dict] | None, failure: str | None = None) -> list[dict] | None:
    """Ends an ended run's steps: one still RUNNING failed (with `failure`), those never started are NOT_RUN.
    Also used by the sweeper on the steps a lost worker last saved."""
    for step in steps or []:
        if step.get("status") == "RUNNING" and failure is not None:
            step.update(status="FAILED", error=failure)
        elif step.get("status") == "PENDING":
            step["status"] = "NOT_RUN"
    return steps


def attempt_step(
    task_type, ctx, job: ScheduledJob, step: dict, run_log: RunLog, watch: Watch, save: Callable[[], None]
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


class ProgressReporter:
    """Keeps a running step's latest progress in its entry and saves the run's steps at most once per
    JOBS_PROGRESS_SECONDS (one small UPDATE), however often a step reports. The first save comes one period
    after the run starts: a run that ends sooner shows its progress in its final write only."""

    def __init__(self, run_id: int, steps: list[dict]) -> None:
        self.run_id, self.steps = run_id, steps
        self.saved_at = time.monotonic()

    def report(self, step: dict, progress: dict) -> None:
        step["progress"] = progress
        now = time.monotonic()
        # A little slack: rclone reports every interval, and each report should be saved, not every other one.
        if now - self.saved_at >= settings.JOBS_PROGRESS_SECONDS * 0.8:
            self.saved_at = now
            _save_progress(self.run_id, self.steps)


def _save_progress(run_id: int, steps: list[dict]) -> None:
    """Progress is a courtesy: a database hiccup must not fail the run (the final write retries)."""
    try:
        JobHistory.objects.filter(pk=run_id).update(steps=steps)
    except (OperationalError, InterfaceError):
        log.warning("run %s: could not save progress to the database; carrying on", run_id)
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


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()
