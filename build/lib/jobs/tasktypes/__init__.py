"""Task types: the steps a workflow is made of, registered by name, one module each.

Each type has an argument checker, used when a job is created or updated, and a run function, used by the
worker: it gets a StepContext (its args, the outputs of the tasks named in its inputs, the run's log) and
returns a StepResult (outputs for the tasks that name it, counters for the run's steps), or raises StepFailed.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

from jobs.steps import StepContext, StepResult


@dataclass
class ArgsCheck:
    """What an argument checker found: problems (path, message) and the resource ids the task uses."""

    errors: list[tuple[str, str]] = field(default_factory=list)
    resource_ids: list[tuple[str, int]] = field(default_factory=list)

    def error(self, path: str, message: str) -> None:
        self.errors.append((path, message))


@dataclass(frozen=True)
class TaskType:
    name: str
    check_args: Callable[[dict, ArgsCheck], None]
    run: Callable[[StepContext], StepResult]


REGISTRY: dict[str, TaskType] = {}


def register(task_type: TaskType) -> TaskType:
    if task_type.name in REGISTRY:
        raise ValueError(f"task type {task_type.name!r} registered twice")
    REGISTRY[task_type.name] = task_type
    return task_type


def get(name: str) -> TaskType | None:
    return REGISTRY.get(name)


# Importing the modules registers their types.
from jobs.tasktypes import http_request, rclone_sync, resource_input  # noqa: E402, F401
