"""Task types: the steps a workflow is made of, registered by name, one module each.

Each type has an argument checker, used when a job is created or updated, and a run function, used by the
worker: it gets a StepContext (its args, the outputs of the tasks named in its inputs, the run's log) and
returns a StepResult (outputs for the tasks that name it, counters for the run's steps), or raises StepFailed.
"""

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ArgsCheck:
    """What an argument checker found: problems (path, message) and the resource ids the task uses."""

    errors: list[tuple[str, str]] = field(default_factory=list)
    resource_ids: list[tuple[str, int]] = field(default_factory=list)

    def error(self, path: str, message: str) -> None:
        self.errors.append((path, message))


class StepFailed(Exception):
    """A step's failure, with a message safe to show to API users and to write to the log (no secrets)."""

    def __init__(self, message: str, *, retryable: bool = False, counters: dict[str, int] | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        # What the step did before it failed (files transferred, errors, exit code), for the run's steps.
        self.counters = counters or {}


class RunCancelled(Exception):
    """The run was cancelled or ran out of time while this step was going."""


@dataclass
class StepContext:
    run_id: int
    job_id: int
    instance_id: int
    task_name: str
    args: dict
    # Outputs of the tasks this one names in `inputs`, by task name.
    inputs: dict[str, dict]
    log: Callable[[str], None]
    cancelled: threading.Event
    # Child processes to kill (their whole process group) when the run is cancelled.
    processes: list = field(default_factory=list)

    def check_cancelled(self) -> None:
        if self.cancelled.is_set():
            raise RunCancelled()


@dataclass
class StepResult:
    outputs: dict[str, Any] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskType:
    name: str
    check_args: Callable[[dict, ArgsCheck], None]
    run: Callable[[StepContext], StepResult]
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
from jobs.tasktypes import http_request, rclone_sync, resource_input  # noqa: E402, F401
