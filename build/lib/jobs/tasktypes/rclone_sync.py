"""rclone.sync (and its older name sync.files): runs rclone from args.remotes[0] (source) to args.remotes[1]
(destination) in one of MODES, with the resource's stored remotes (jobs.sync.rclone does the running)."""

import contextlib
from pathlib import Path

from configs.remotes import REMOTE_NAME
from jobs.steps import StepContext, StepResult
from jobs.sync.rclone import SyncSpec, run_sync
from jobs.sync.state import bisync_workdir
from jobs.tasktypes import ArgsCheck, TaskType, register
from jobs.tasktypes.args import check_bool, check_globs, check_int, check_resource
from jobs.tasktypes.globs import as_list
from pointscene.core.ids import parse_id

MODES = ("sync", "copy", "move", "bisync")


def check_remote_path(value: object) -> str | None:
    """Why `value` is not a `name:path` rclone location, or None when it is one."""
    if not isinstance(value, str) or ":" not in value:
        return "must be written remote:path"
    name, path = value.split(":", 1)
    if not REMOTE_NAME.match(name):
        return f"{name!r} is not a valid remote name"
    if ".." in path.replace("\\", "/").split("/"):
        return "paths must not climb out of the remote with '..'"
    if any(ord(c) < 32 for c in path):
        return "paths must not contain control characters"
    return None


def check_args(args: dict, check: ArgsCheck) -> None:
    check_resource(args, check)
    remotes = args.get("remotes")
    if not isinstance(remotes, list) or len(remotes) != 2:
        check.error("args.remotes", "must be a list of two locations: [source, destination]")
    else:
        for i, remote in enumerate(remotes):
            problem = check_remote_path(remote)
            if problem:
                check.error(f"args.remotes[{i}]", problem)
    mode = args.get("mode")
    if mode is not None and mode not in MODES:
        check.error("args.mode", f"must be one of {', '.join(MODES)}")
    check_globs(args, check, "include", "exclude")
    check_bool(args, check, "dryRun", "checksum", "verbose")
    check_int(args, check, "transfers", 1, 64)
    check_int(args, check, "checkers", 1, 128)


def run(ctx: StepContext) -> StepResult:

    args = ctx.args
    mode = args.get("mode") or "sync"
    exclude = as_list(args.get("exclude"))
    # A resource.input task feeding this one contributes its excludes (e.g. the service's own ".log/**").
    for output in ctx.inputs.values():
        exclude += [p for p in output.get("exclude") or [] if p not in exclude]
    with contextlib.ExitStack() as stack:
        state_dir = None
        if mode == "bisync":
            state_dir = stack.enter_context(bisync_workdir(ctx.run_id, ctx.job_id, ctx.task_name, ctx.log))
        return run_sync(ctx, _spec(args, mode, exclude, state_dir))


def _spec(args: dict, mode: str, exclude: list[str], state_dir: Path | None) -> SyncSpec:
    return SyncSpec(
        resource_id=parse_id(args.get("resourceId", args.get("id"))),
        source=args["remotes"][0],
        destination=args["remotes"][1],
        mode=mode,
        include=as_list(args.get("include")),
        exclude=exclude,
        dry_run=bool(args.get("dryRun")),
        checksum=bool(args.get("checksum")),
        transfers=args.get("transfers"),
        checkers=args.get("checkers"),
        verbose=bool(args.get("verbose")),
        state_dir=state_dir,
    )


rclone_sync = register(TaskType(name="rclone.sync", check_args=check_args, run=run))
# Older clients send the same step under this name.
sync_files = register(TaskType(name="sync.files", check_args=check_args, run=run))
