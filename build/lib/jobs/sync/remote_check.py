"""testJobConfig on a worker: one stored remote, listed once at its root, read-only, inside the same rclone session
as a sync step (jobs.sync.session: the remote checked again, its connections through the egress proxy, an `acc`
remote through its bridge, so the project's top folders), with a short time limit. The answer is rclone's (or
Autodesk's) error in words, scrubbed of the remote's secrets, or how many entries the root holds."""

import json
import os
import signal
import threading
import time

from configs import rclone
from configs.checks import CHECK_SECONDS, RemoteCheck
from configs.models import RemoteConfig
from configs.runtime import RemoteNotRunnable, RunRemotes
from jobs.steps import StepContext
from jobs.sync.rclone import EXIT_CODES
from jobs.sync.session import rclone_session, run_rclone

_RCLONE_FLAGS = ["--contimeout", "10s", "--timeout", "20s", "--low-level-retries", "1", "--retries", "1"]


def check_remote(remote_id: int) -> dict:
    """The check of stored remote `remote_id`, as a plain dict (a Celery result)."""
    started = time.monotonic()
    remote = RemoteConfig.objects.filter(pk=remote_id).only("resource_id", "name").first()
    if remote is None:
        return RemoteCheck(False, "the remote no longer exists").as_dict()
    check = _check(remote.resource_id, remote.name)
    elapsed = int((time.monotonic() - started) * 1000)
    return RemoteCheck(check.ok, check.message, check.entries, elapsed).as_dict()


def _check(resource_id: int, name: str) -> RemoteCheck:
    try:
        loaded = RunRemotes.load(resource_id, {name})
    except RemoteNotRunnable as exc:
        return RemoteCheck(False, str(exc))
    notes: list[str] = []
    ctx = StepContext(
        run_id=0,
        job_id=0,
        instance_id=0,
        task_name="testJobConfig",
        args={},
        inputs={},
        log=notes.append,
        cancelled=threading.Event(),
    )
    entries, errors = 0, []

    def read(line: str) -> None:
        nonlocal entries
        entry = _log_entry(line)
        if entry is None:
            entries += 1
        elif entry.get("level") in ("error", "critical"):
            errors.append(str(entry.get("msg", "")).strip())

    with rclone_session(ctx, loaded) as session:
        command = [rclone.binary(), "lsf", f"{name}:", "--max-depth", "1", *session.flags(), *_RCLONE_FLAGS]
        command += ["--use-json-log", "--log-level", "ERROR"]
        timer = threading.Timer(CHECK_SECONDS, _stop, [ctx])
        timer.start()
        try:
            exit_code = run_rclone(ctx, command, session.env, read)
        finally:
            timer.cancel()
        acc_errors = [f"ACC: {e}" for bridge in session.bridges.values() for e in bridge.project.errors]
        redact, refusals, timed_out = session.redact, session.refusals(), ctx.cancelled.is_set()

    if exit_code == 0:
        return RemoteCheck(True, f"ok: {entries} entries at the top of {name}:", entries)
    if timed_out:
        return RemoteCheck(False, f"no answer within {CHECK_SECONDS} s")
    meaning, _ = EXIT_CODES.get(exit_code, ("unknown exit code", False))
    detail = (acc_errors or errors or [""])[-1]
    message = f"rclone exited with code {exit_code}: {meaning}" + (f"; {redact(detail)}" if detail else "")
    return RemoteCheck(False, message + refusals)


def _log_entry(line: str) -> dict | None:
    """rclone's JSON log line, or None for a line of lsf's listing (a name)."""
    if not line.startswith("{"):
        return None
    try:
        entry = json.loads(line)
    except ValueError:
        return None
    return entry if isinstance(entry, dict) and "level" in entry and "msg" in entry else None


def _stop(ctx: StepContext) -> None:
    ctx.cancelled.set()
    for process in list(ctx.processes):
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
