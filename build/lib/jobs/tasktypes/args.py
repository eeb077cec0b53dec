"""Checkers for argument shapes that several task types share."""


from jobs.tasktypes import ArgsCheck
from pointscene.core.ids import parse_id


def check_resource(args: dict, check: ArgsCheck) -> None:
    """The task's resource: args.resourceId or args.id (clients use both), exactly one of them."""
    keys = [k for k in ("resourceId", "id") if k in args]
    if not keys:
        check.error("args.resourceId", "a resource id is required (args.resourceId or args.id)")
        return
    if len(keys) > 1 and parse_id(args["resourceId"]) != parse_id(args["id"]):
        check.error("args.resourceId", "args.resourceId and args.id name different resources")
        return
    resource_id = parse_id(args[keys[0]])
    if resource_id is None:
        check.error(f"args.{keys[0]}", "must be a resource id")
        return
    check.resource_ids.append((f"args.{keys[0]}", resource_id))


def check_globs(args: dict, check: ArgsCheck, *names: str) -> None:
    for name in names:
        if name not in args or args[name] is None:
            continue
        value = args[name]
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            check.error(f"args.{name}", "must be a list of non-empty glob patterns")
        elif len(value) > 200:
            check.error(f"args.{name}", "at most 200 patterns")


def check_bool(args: dict, check: ArgsCheck, *names: str) -> None:
    for name in names:
        if name in args and args[name] is not None and not isinstance(args[name], bool):
            check.error(f"args.{name}", "must be true or false")


def check_int(args: dict, check: ArgsCheck, name: str, low: int, high: int) -> None:
    if name not in args or args[name] is None:
        return
    value = args[name]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        check.error(f"args.{name}", f"must be an integer from {low} to {high}")
