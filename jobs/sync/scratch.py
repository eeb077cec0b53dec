"""The private folders a worker uses while a step runs (rclone's encrypted config and cache, bisync's working copy
of its listings), and the clean-up of those a killed worker left behind.

A step removes its folder when it ends, whatever the outcome; only a process killed outright (SIGKILL, OOM, a lost
container) leaves one. Each folder's name carries the id of the process that made it, so the next step on the
machine removes the folders of processes that no longer exist, and never a live process's. This assumes the
temporary folder is not shared with processes of another PID namespace (containers give each their own /tmp).
"""

import contextlib
import os
import re
import shutil
import tempfile
from pathlib import Path

_NAME = re.compile(r"^(?:rclone-step|bisync)-(\d+)-")


def scratch_folder(kind: str) -> Path:
    """A new folder only this worker's user can enter (mode 0700), named for `kind` and this process."""
    return Path(tempfile.mkdtemp(prefix=f"{kind}-{os.getpid()}-"))


def remove_abandoned() -> list[Path]:
    """Removes the scratch folders of processes that have exited; returns them."""
    removed = []
    for folder in Path(tempfile.gettempdir()).iterdir():
        match = _NAME.match(folder.name)
        if match is None or not folder.is_dir() or _alive(int(match.group(1))):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: not ours to judge
    with contextlib.suppress(OSError):
        # A zombie has exited; only its parent has not reaped it yet.
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True
