"""Checks a workflow document: shape, task types, the inputs graph, and the resources it touches."""

import json

from django.conf import settings
from django.core.exceptions import ValidationError

from jobs import tasktypes
from pointscene.core import errors
from pointscene.core.ids import parse_id
from pointscene.core.models import Resource
from pointscene.storable import unstorable


def task_inputs(task: dict) -> list[str]:
    """`inputs` as clients write it: absent, null, one name, or a list of names."""
    raw = task.get("inputs")
    if raw is None:
        return []
    if isinstance(raw, str):
        return [raw]
    return list(raw)


def check_workflow(workflow: object, instance_id: int, field: str = "workflow") -> list[tuple[str, str]]:
    """Every problem with `workflow` for a job of `instance_id`, as (path, message); empty when valid."""
    if not isinstance(workflow, dict):
        return [(field, "must be an object with a tasks list")]
    problem = unstorable(workflow, field)
    if problem:
        return [problem]
    size = len(json.dumps(workflow, separators=(",", ":")))
    if size > settings.JOBS_MAX_WORKFLOW_BYTES:
        return [(field, f"is {size} bytes; at most {settings.JOBS_MAX_WORKFLOW_BYTES} allowed")]

    problems: list[tuple[str, str]] = []
    if "instanceId" in workflow and parse_id(workflow["instanceId"]) != instance_id:
        problems.append((f"{field}.instanceId", "must be the job's instance"))
    if "name" in workflow and workflow["name"] is not None and not isinstance(workflow["name"], str):
        problems.append((f"{field}.name", "must be a string"))

    tasks = workflow.get("tasks")
    if not isinstance(tasks, list) or not tasks:
        return [*problems, (f"{field}.tasks", "must be a non-empty list of tasks")]
    if len(tasks) > settings.JOBS_MAX_WORKFLOW_TASKS:
        return [*problems, (f"{field}.tasks", f"at most {settings.JOBS_MAX_WORKFLOW_TASKS} tasks")]

    names: dict[str, int] = {}
    resource_refs: list[tuple[str, int]] = []
    for i, task in enumerate(tasks):
        path = f"{field}.tasks[{i}]"
        if not isinstance(task, dict):
            problems.append((path, "must be an object with name and type"))
            continue
        name = task.get("name")
        if not isinstance(name, str) or not name.strip():
            problems.append((f"{path}.name", "must be a non-empty string"))
        elif name in names:
            problems.append((f"{path}.name", f"{name!r} is used by task {names[name]} too; names must be unique"))
        else:
            names[name] = i
        task_type = tasktypes.get(task.get("type")) if isinstance(task.get("type"), str) else None
        if task_type is None:
            known = ", ".join(sorted(tasktypes.REGISTRY))
            problems.append((f"{path}.type", f"unknown task type {task.get('type')!r}; known: {known}"))
        args = task.get("args", {})
        if args is None:
            args = {}
        if not isinstance(args, dict):
            problems.append((f"{path}.args", "must be an object"))
        elif task_type is not None:
            check = tasktypes.ArgsCheck()
            task_type.check_args(args, check)
            problems.extend((f"{path}.{sub}", message) for sub, message in check.errors)
            resource_refs.extend((f"{path}.{sub}", rid) for sub, rid in check.resource_ids)
        raw_inputs = task.get("inputs")
        if raw_inputs is not None and not (
            isinstance(raw_inputs, str)
            or (isinstance(raw_inputs, list) and all(isinstance(x, str) for x in raw_inputs))
        ):
            problems.append((f"{path}.inputs", "must be a task name or a list of task names"))

    if problems:
        return problems
    problems.extend(_check_inputs_graph(tasks, names, field))
    problems.extend(_check_resources(resource_refs, instance_id))
    return problems


def _check_inputs_graph(tasks: list[dict], names: dict[str, int], field: str) -> list[tuple[str, str]]:
    problems = []
    edges: dict[str, list[str]] = {}
    for i, task in enumerate(tasks):
        inputs = task_inputs(task)
        for j, source in enumerate(inputs):
            if source not in names:
                problems.append((f"{field}.tasks[{i}].inputs[{j}]", f"no task is named {source!r}"))
            elif source == task["name"]:
                problems.append((f"{field}.tasks[{i}].inputs[{j}]", "a task cannot be its own input"))
        edges[task["name"]] = [s for s in inputs if s in names]
    if problems:
        return problems
    cycle = _find_cycle(edges)
    if cycle:
        i = names[cycle[0]]
        return [(f"{field}.tasks[{i}].inputs", "inputs form a cycle: " + " -> ".join(cycle))]
    return []


def _find_cycle(edges: dict[str, list[str]]) -> list[str] | None:
    """A cycle in the inputs graph as a list of names (first repeated at the end), or None."""
    white, grey, black = 0, 1, 2
    color = dict.fromkeys(edges, white)
    for start in edges:
        if color[start] != white:
            continue
        # Iterative DFS: workflows are small, but recursion depth should not depend on input.
        stack = [(start, iter(edges[start]))]
        path = [start]
        color[start] = grey
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                color[node] = black
                stack.pop()
                path.pop()
            elif color[child] == grey:
                return [*path[path.index(child) :], child]
            elif color[child] == white:
                color[child] = grey
                stack.append((child, iter(edges[child])))
                path.append(child)
    return None


def _check_resources(refs: list[tuple[str, int]], instance_id: int) -> list[tuple[str, str]]:
    if not refs:
        return []
    ids = {rid for _, rid in refs}
    own = set(Resource.objects.filter(pk__in=ids, instance_id=instance_id).values_list("id", flat=True))
    # Another tenant's resource reads exactly like a missing one.
    return [(path, f"resource {rid} not found in this instance") for path, rid in refs if rid not in own]


def validate_workflow(workflow: object, instance_id: int, field: str = "workflow") -> None:
    problems = check_workflow(workflow, instance_id, field)
    if problems:
        by_path: dict[str, list[ValidationError]] = {}
        for path, message in problems:
            by_path.setdefault(path, []).append(ValidationError(message, code=errors.INVALID_WORKFLOW))
        raise ValidationError(by_path)
