"""The one owner of a process group's Prometheus multiprocess folder (prometheus_client's multiprocess mode).

prometheus_client names its files by PID. Containers each have their own PID 1, so a folder shared between them
mixes (and overwrites) values of unrelated processes; a folder kept across restarts adds up dead processes' old
counters. So each container (and each `make run`) gets its own folder, emptied before any of its processes starts:
the image's entrypoint (pointscene/entrypoint.py) and pointscene/run.py call prepare() before they start anything.
A process that exits (a gunicorn worker, a Celery prefork child) is marked dead, so its live gauges go away.

Only this module touches the folder; it imports neither Django nor the app, so it runs before either.
"""

import os
from pathlib import Path

VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
# The files prometheus_client writes: <type>_<pid>.db (gauges: gauge_<mode>_<pid>.db). Nothing else is removed, so a
# folder set by mistake to a place holding other files loses none of them.
PATTERNS = ("counter_*.db", "gauge_*.db", "histogram_*.db", "summary_*.db")


def folder(env: dict[str, str] | None = None) -> Path | None:
    """The multiprocess folder the environment names, or None when metrics are per process."""
    value = (os.environ if env is None else env).get(VARIABLE, "")
    return Path(value) if value else None


def prepare(env: dict[str, str] | None = None) -> Path | None:
    """Create the folder if needed and remove every metrics file in it: the process group starting now begins from
    zero. Call it before any process of the group imports prometheus_client's metrics."""
    path = folder(env)
    if path is None:
        return None
    path.mkdir(parents=True, exist_ok=True)
    for pattern in PATTERNS:
        for stale in path.glob(pattern):
            stale.unlink(missing_ok=True)
    return path


def forget_process(pid: int) -> None:
    """A process of the group has exited: drop its live gauges (counters and histograms stay, as they must)."""
    if folder() is None:
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)
