from jobs.tasktypes import ArgsCheck, StepContext, StepFailed, StepResult, TaskType, register
from jobs.tasktypes.args import REMOTE_NAME, check_bool, check_globs, check_int, check_resource

MODES = ("sync", "copy", "move", "bisync")


def check_remote_path(value: object) -> str | None:
    """Why `value` is not a `name:path` rclone location, or None when it is one."""
    if not isinstance(value, str) or ":" not in value:
        return "must be written remote:path"
    name = value.split(":", 1)[0]
    if not REMOTE_NAME.match(name):
        return f"{name!r} is not a valid remote name"
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
    check_bool(args, check, "dryRun", "checksum")
    check_int(args, check, "transfers", 1, 64)
    check_int(args, check, "checkers", 1, 128)


def run(ctx: StepContext) -> StepResult:
    # Stored remote configs and the rclone runner arrive with the configs issue; say so instead of pretending.
    raise StepFailed("rclone sync steps are not available on this server yet (they arrive with remote configs)")


DESCRIPTION = "Runs rclone between args.remotes[0] (source) and args.remotes[1] (destination)."
rclone_sync = register(TaskType(name="rclone.sync", check_args=check_args, run=run, description=DESCRIPTION))
# Older clients send the same step under this name.
sync_files = register(TaskType(name="sync.files", check_args=check_args, run=run, description=DESCRIPTION))
