"""One rclone sync step on a worker: rclone sync/copy/move/bisync run inside the step's rclone session
(jobs.sync.session: remotes checked, ACC bridges, egress proxy, encrypted config, tokens stored back), its JSON log
streamed into the run's log and its stats kept as the step's counters.
"""

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings

from configs import rclone
from configs.runtime import RemoteNotRunnable, RunRemotes
from jobs.steps import RunCancelled, StepContext, StepFailed, StepResult
from jobs.sync.session import rclone_session, run_rclone
from jobs.sync.state import INITIALISED

log = logging.getLogger(__name__)

# rclone's documented exit codes: https://rclone.org/docs/#exit-code
EXIT_CODES = {
    1: ("syntax or usage error", False),
    2: ("error not otherwise categorised", True),
    3: ("directory not found", False),
    4: ("file not found", False),
    5: ("temporary error (more retries might fix it)", True),
    6: ("less serious errors (files that could not be transferred)", False),
    7: ("fatal error (retries will not fix it: account suspended, quota, ...)", False),
    8: ("transfer limit exceeded", False),
    9: ("operation successful but no files transferred", False),
    10: ("duration limit exceeded", True),
}
_STATS_KEYS = {
    "transfers": "filesTransferred",
    "bytes": "bytesTransferred",
    "checks": "checks",
    "deletes": "deletes",
    "deletedDirs": "deletedDirs",
    "renames": "renames",
    "errors": "errors",
    "serverSideCopies": "serverSideCopies",
}


@dataclass
class SyncSpec:
    resource_id: int
    source: str
    destination: str
    mode: str = "sync"
    include: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    dry_run: bool = False
    checksum: bool = False
    transfers: int | None = None
    checkers: int | None = None
    verbose: bool = False
    # bisync's --workdir, filled with the job's stored listings (jobs.sync.state; None: not bisync).
    state_dir: Path | None = None


def run_sync(ctx: StepContext, spec: SyncSpec) -> StepResult:
    names = {location.split(":", 1)[0] for location in (spec.source, spec.destination)}
    try:
        remotes_ = RunRemotes.load(spec.resource_id, names)
    except RemoteNotRunnable as exc:
        raise StepFailed(str(exc)) from None
    stats: dict = {}
    with rclone_session(ctx, remotes_) as session:
        command = step_command(spec, session.flags())
        ctx.log(f"rclone {spec.mode} {spec.source} -> {spec.destination}" + (" (dry run)" if spec.dry_run else ""))
        if "--resync" in command:
            ctx.log("bisync has no listings stored by an earlier successful run: --resync merges both sides")
        def log_line(line: str) -> None:
            text = format_line(line, stats)
            ctx.log(session.redact(text))
            if text.startswith(STATS_PREFIX):
                ctx.progress(sync_progress(stats))

        exit_code = run_rclone(ctx, command, session.env, log_line)
        acc_errors = [error for bridge in session.bridges.values() for error in bridge.project.errors]
        redact, refusals = session.redact, session.refusals()

    counters = {ours: int(stats.get(theirs, 0)) for theirs, ours in _STATS_KEYS.items()}
    counters["exitCode"] = exit_code
    if ctx.cancelled.is_set():
        raise RunCancelled()
    if exit_code != 0:
        meaning, retryable = EXIT_CODES.get(exit_code, ("unknown exit code", False))
        if acc_errors:
            # What ACC said is clearer than rclone's view of it (a 500 from the bridge).
            last_error = redact(f"ACC: {acc_errors[-1]}")
            retryable = all(error.retryable for error in acc_errors)
        else:
            last_error = redact(stats.get("lastError") or "")
        message = f"rclone exited with code {exit_code}: {meaning}" + (
            f"; last error: {last_error}" if last_error else ""
        )
        message += refusals
        raise StepFailed(message, retryable=retryable, counters=counters)
    if spec.state_dir is not None:
        (spec.state_dir / INITIALISED).touch()
    return StepResult(outputs={"counters": counters}, counters=counters)


def step_command(spec: SyncSpec, flags: list[str]) -> list[str]:
    """rclone's argv for the step, `flags` being its session's (RcloneSession.flags)."""
    command = [rclone.binary(), spec.mode, spec.source, spec.destination, *flags]
    # JSON log lines: warnings, errors, and the stats every 10 s and once at the end, as a bare rclone prints
    # them; `verbose` adds a line per file acted on, which costs rclone itself several percent on big trees.
    command += ["--use-json-log", "--log-level", "INFO" if spec.verbose else "NOTICE"]
    command += ["--stats", f"{settings.JOBS_PROGRESS_SECONDS}s", "--stats-log-level", "NOTICE"]
    # Excludes first: rclone applies the first matching rule, so an exclude wins over an include.
    for pattern in spec.exclude:
        command += ["--filter", f"- {pattern}"]
    for pattern in spec.include:
        command += ["--filter", f"+ {pattern}"]
    if spec.include:
        command += ["--filter", "- **"]
    if spec.dry_run:
        command.append("--dry-run")
    if spec.checksum:
        command.append("--checksum")
    if spec.transfers:
        command += ["--transfers", str(spec.transfers)]
    if spec.checkers:
        command += ["--checkers", str(spec.checkers)]
    if spec.state_dir is not None:
        spec.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        command += ["--workdir", str(spec.state_dir), "--resilient", "--recover"]
        if not (spec.state_dir / INITIALISED).exists():
            # bisync's first run (or the first after a failed first) builds its listings from both sides.
            command.append("--resync")
    return command


STATS_PREFIX = "rclone stats:"


def sync_progress(stats: dict) -> dict:
    """A step's progress from rclone's own stats: done and in total (totals once rclone has listed enough to know),
    what is moving now, the speed (bytes/s) and rclone's ETA (seconds; null until it can tell)."""
    eta = stats.get("eta")
    return {
        "bytesDone": int(stats.get("bytes", 0)),
        "bytesTotal": int(stats.get("totalBytes", 0)),
        "filesDone": int(stats.get("transfers", 0)),
        "filesTotal": int(stats.get("totalTransfers", 0)),
        "transferring": len(stats.get("transferring") or []),
        "checks": int(stats.get("checks", 0)),
        "errors": int(stats.get("errors", 0)),
        "speed": round(float(stats.get("speed") or 0)),
        "etaSeconds": int(eta) if isinstance(eta, int | float) else None,
        "updatedAt": datetime.now(UTC).isoformat(),
    }


def format_line(line: str, stats: dict) -> str:
    """One rclone JSON log line as a readable line of the run's log; stats are also kept for the counters."""
    try:
        entry = json.loads(line)
    except ValueError:
        return f"rclone: {line}"
    if not isinstance(entry, dict):
        return f"rclone: {line}"
    if isinstance(entry.get("stats"), dict):
        stats.clear()
        stats.update(entry["stats"])
        s = entry["stats"]
        return (
            f"{STATS_PREFIX} {s.get('transfers', 0)} files, {s.get('bytes', 0)} bytes transferred, "
            f"{s.get('checks', 0)} checks, {s.get('deletes', 0)} deletes, {s.get('errors', 0)} errors, "
            f"{s.get('elapsedTime', 0):.1f} s"
        )
    level = entry.get("level", "info")
    where = f"{entry['object']}: " if entry.get("object") else ""
    return f"rclone {level}: {where}{entry.get('msg', '').strip()}"
