from jobs.tasktypes import ArgsCheck, TaskType, register
from jobs.tasktypes.args import check_globs, check_resource


def check_args(args: dict, check: ArgsCheck) -> None:
    check_resource(args, check)
    check_globs(args, check, "include", "exclude")


resource_input = register(
    TaskType(
        name="resource.input",
        check_args=check_args,
        description="Lists the resource's own files (include/exclude globs) and hands the list on.",
    )
)
