"""bisync's listings, kept with the job rather than on a worker's disk, so that whichever worker runs a bisync step
next continues from them: a worker that never ran the job does not --resync (which merges both sides and can bring
back files deleted on one of them).

The step's rclone --workdir is a fresh private folder, filled from the job's stored listings (jobs.BisyncListings)
before rclone starts and stored back, whatever the outcome, when the step ends: bisync's own --resilient/--recover
then see exactly what one worker's folder would have held. Runs of a job with a bisync step never overlap (the
runner takes the job's run lock for them whatever the overlap policy), so a step's listings are never written by
two runs at once.
"""

import contextlib
import hashlib
import io
import logging
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from django.db import IntegrityError, transaction

from jobs.models import BisyncListings, ScheduledJob

log = logging.getLogger(__name__)

# Written into the workdir after a successful run; a workdir without it makes the next run --resync.
INITIALISED = "initialised"


def task_key(task_name: str) -> str:
    return hashlib.sha256(task_name.encode()).hexdigest()[:16]


@contextlib.contextmanager
def bisync_workdir(run_id: int, job_id: int, task_name: str, note: Callable[[str], None]) -> Iterator[Path]:
    """A private folder holding the step's stored listings (empty if none), stored back when the block ends."""
    key = task_key(task_name)
    folder = Path(tempfile.mkdtemp(prefix="bisync-"))  # mode 0700: only the worker's user
    try:
        stored = BisyncListings.objects.filter(job_id=job_id, task=key).values_list("archive", flat=True).first()
        if stored is not None:
            unpack(bytes(stored), folder)
        try:
            yield folder
        finally:
            store(run_id, job_id, key, folder, note)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def store(run_id: int, job_id: int, key: str, folder: Path, note: Callable[[str], None]) -> None:
    archive = pack(folder)
    try:
        with transaction.atomic():
            updated = BisyncListings.objects.filter(job_id=job_id, task=key).update(
                archive=archive, stored_by_run=run_id, updated_at=datetime.now(UTC)
            )
            if not updated and ScheduledJob.objects.filter(pk=job_id).exists():
                BisyncListings.objects.create(job_id=job_id, task=key, archive=archive, stored_by_run=run_id)
    except IntegrityError:
        # The job was deleted while the step ran: its listings go with it.
        note("bisync listings not stored: the job was deleted meanwhile")
        return
    log.info("run %s: bisync listings stored (%d bytes)", run_id, len(archive))


def pack(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not path.is_symlink():
                tar.add(path, arcname=str(path.relative_to(folder)), recursive=False)
    return buffer.getvalue()


def unpack(archive: bytes, folder: Path) -> None:
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        # "data": regular files below `folder` only (no links, devices, absolute paths or ..).
        tar.extractall(folder, filter="data")
