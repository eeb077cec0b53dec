"""Task types: the steps a workflow is made of, registered by name, one module each.

Each type has an argument checker used when a job is created or updated. The run side arrives with the
scheduling issue; until then a registered type can be stored and validated, not executed.
"""

from collections.abc import Callable
from dataclasses import dataclass, field


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
    description: str = ""


REGISTRY: dict[str, TaskType] = {}


def register(task_type: TaskType) -> TaskType:
    if task_type.name in REGISTRY:
        raise ValueError(f"task type {task_type.name!r} registered twice")
    REGISTRY[task_type.name] = task_type
    return task_type


def get(name: str) -> TaskType | None:
    return REGISTRY.get(name)


# Importing the modules registers their types.
from jobs.tasktypes import rclone_sync, resource_input  # noqa: E402, F401
