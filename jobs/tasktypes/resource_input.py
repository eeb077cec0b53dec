"""resource.input: lists the resource's own files in the service's storage (include/exclude globs) and hands
the list, and its globs, on to the tasks that name it."""

from django.core.files.storage import default_storage

from jobs.steps import StepContext, StepFailed, StepResult, progress
from jobs.tasktypes import ArgsCheck, TaskType, register
from jobs.tasktypes.args import check_globs, check_resource
from jobs.tasktypes.globs import as_list, selected
from pointscene.core.ids import parse_id
from pointscene.core.storage import resource_area

MAX_FILES = 100_000
# Listing a big area takes a while: say how far it is every this many files (saved at most every interval).
PROGRESS_EVERY = 100


def check_args(args: dict, check: ArgsCheck) -> None:
    check_resource(args, check)
    check_globs(args, check, "include", "exclude")


def walk(prefix: str, ctx: StepContext):
    """(relative path, size) of every file under `prefix` in the service's storage."""
    stack = [""]
    while stack:
        ctx.check_cancelled()
        folder = stack.pop()
        try:
            dirs, files = default_storage.listdir(prefix + folder)
        except FileNotFoundError:
            continue
        stack.extend(f"{folder}{d}/" for d in sorted(dirs, reverse=True))
        for name in sorted(files):
            path = folder + name
            try:
                size = default_storage.size(prefix + path)
            except FileNotFoundError:
                continue  # deleted since the listing (a sync writing the same area): not there any more
            yield path, size


def run(ctx: StepContext) -> StepResult:
    resource_id = parse_id(ctx.args.get("resourceId", ctx.args.get("id")))
    include, exclude = as_list(ctx.args.get("include")), as_list(ctx.args.get("exclude"))
    prefix = resource_area(resource_id)
    files, total = [], 0
    for path, size in walk(prefix, ctx):
        if selected(path, include, exclude):
            files.append({"path": path, "size": size})
            total += size
            if len(files) > MAX_FILES:
                raise StepFailed(f"the resource holds more than {MAX_FILES} matching files")
            if len(files) % PROGRESS_EVERY == 0:
                ctx.progress(progress(files_done=len(files), bytes_done=total))
    ctx.progress(progress(files_done=len(files), files_total=len(files), bytes_done=total, bytes_total=total))
    ctx.log(f"resource {resource_id}: {len(files)} files, {total} bytes (include={include}, exclude={exclude})")
    return StepResult(
        outputs={"resourceId": resource_id, "files": files, "include": include, "exclude": exclude},
        counters={"files": len(files), "bytes": total},
    )


resource_input = register(TaskType(name="resource.input", check_args=check_args, run=run))
