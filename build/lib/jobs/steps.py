"""What a step gets and gives back: the contract between the step engine (jobs.running) and the code that does a
step's work (jobs.tasktypes, jobs.sync.rclone). A leaf module, so that both sides can import it."""

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


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
    # How far the step is, as it goes (e.g. a sync's bytes and files done and in total): a dict the engine saves
    # with the step, at most every JOBS_PROGRESS_SECONDS.
    progress: Callable[[dict], None] = lambda _: None

    def check_cancelled(self) -> None:
        if self.cancelled.is_set():
            raise RunCancelled()


@dataclass
class StepResult:
    outputs: dict[str, Any] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
