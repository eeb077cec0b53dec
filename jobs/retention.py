"""History kept bounded: old runs deleted with their logs, in small batches, never the last runs of a job.

Each instance keeps `history_retention_days` of runs (the server's JOBS_HISTORY_RETENTION_DAYS unless an operator
set the instance's own), but every job keeps its last JOBS_HISTORY_KEEP_RUNS runs whatever their age, and a run
still queued or going is never touched. Rows go first, JOBS_PRUNE_BATCH per transaction, and in that transaction
their logs are queued for deletion (jobs.running.purge, the same queue as a deleted job's logs); storage deletes the
files afterwards (`purge.drain`), and a file storage could not delete stays queued for a later try. So no row ever
points at a deleted log, no log of a kept row is deleted, and a storage failure loses nothing.

The prune yields to the service: after every JOBS_PRUNE_BATCH rows deleted (whichever jobs they came from) it
pauses JOBS_PRUNE_PAUSE_MS, so a backlog of a million runs does not keep a core and PostgreSQL busy end to end while
API pages are read on the same machine (docs/benchmarks.md, Prune).

Every query is one an index serves: the instance's jobs from (instance, id), each job's N-th newest run and the
rows below it from (job, created_at, id) (one query per instance finds the jobs with something to delete), the
deletions by primary key.
"""

import logging
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, Subquery
from django.utils import timezone

from jobs.models import JobHistory, RunStatus, ScheduledJob
from jobs.running import purge
from pointscene.core.models import Instance

log = logging.getLogger(__name__)

ACTIVE = (RunStatus.QUEUED, RunStatus.RUNNING)


@dataclass
class InstancePrune:
    id: int
    retention_days: int
    runs: int = 0
    logs: int = 0


@dataclass
class PruneReport:
    dry_run: bool
    instances: list[InstancePrune] = field(default_factory=list)
    runs_deleted: int = 0
    logs_deleted: int = 0
    logs_failed: int = 0

    def as_dict(self) -> dict:
        report = asdict(self)
        report["instances"] = [i for i in report["instances"] if i["runs"]]
        return report


class _Pace:
    """Counts rows deleted across jobs and pauses after each JOBS_PRUNE_BATCH of them."""

    def __init__(self) -> None:
        self.since_pause = 0

    def deleted(self, rows: int) -> None:
        self.since_pause += rows
        if self.since_pause >= settings.JOBS_PRUNE_BATCH and settings.JOBS_PRUNE_PAUSE_MS > 0:
            self.since_pause -= settings.JOBS_PRUNE_BATCH  # a call never brings more than one batch
            time.sleep(settings.JOBS_PRUNE_PAUSE_MS / 1000)


def prune(now: datetime | None = None, dry_run: bool = False) -> PruneReport:
    """Deletes every instance's runs past its retention (or counts them, with dry_run), then drains the log
    deletions queued so far."""
    now = now or timezone.now()
    report = PruneReport(dry_run=dry_run)
    pace = _Pace()
    for instance_id, own_days in Instance.objects.values_list("id", "history_retention_days").order_by("id"):
        days = own_days or settings.JOBS_HISTORY_RETENTION_DAYS
        found = InstancePrune(instance_id, days)
        cutoff = now - timedelta(days=days)
        for job_id, floor in _jobs_to_prune(instance_id, cutoff):
            runs, logs = _prune_job(job_id, floor, cutoff, now, dry_run, pace)
            found.runs += runs
            found.logs += logs
        report.instances.append(found)
        report.runs_deleted += found.runs
    if not dry_run:
        report.logs_deleted, report.logs_failed = purge.drain(now, in_flight=True)
    return report


def _jobs_to_prune(instance_id: int, cutoff: datetime) -> list[tuple[int, tuple[datetime, int] | None]]:
    """The instance's jobs with a run to delete, each with its floor: the (created_at, id) of its
    JOBS_HISTORY_KEEP_RUNS-th newest run, None when no run is kept by count. One query for the whole instance: a job
    whose old runs are all among its last runs costs nothing, so an hourly prune with nothing to do stays a handful
    of statements however many jobs there are (it was two or three per job with an old run)."""
    keep = settings.JOBS_HISTORY_KEEP_RUNS
    jobs = ScheduledJob.objects.filter(instance_id=instance_id)
    old = JobHistory.objects.filter(job_id=OuterRef("pk"), created_at__lt=cutoff).exclude(status__in=ACTIVE)
    if keep > 0:
        newest = JobHistory.objects.filter(job_id=OuterRef("pk")).order_by("-created_at", "-id")[keep - 1 : keep]
        jobs = jobs.annotate(floor_at=Subquery(newest.values("created_at")), floor_id=Subquery(newest.values("id")))
        old = old.filter(
            Q(created_at__lt=OuterRef("floor_at")) | Q(created_at=OuterRef("floor_at"), id__lt=OuterRef("floor_id"))
        )
        rows = jobs.filter(Exists(old)).order_by("pk").values_list("pk", "floor_at", "floor_id")
        return [(pk, (floor_at, floor_id)) for pk, floor_at, floor_id in rows]
    return [(pk, None) for pk in jobs.filter(Exists(old)).order_by("pk").values_list("pk", flat=True)]


def _prune_job(
    job_id: int, floor: tuple[datetime, int] | None, cutoff: datetime, now: datetime, dry_run: bool, pace: _Pace
) -> tuple[int, int]:
    """(runs, logs) deleted (or that would be) of one job: older than cutoff and below its floor (its last N runs)."""
    old = JobHistory.objects.filter(job_id=job_id, created_at__lt=cutoff).exclude(status__in=ACTIVE)
    if floor is not None:
        created_at, row_id = floor
        old = old.filter(Q(created_at__lt=created_at) | Q(created_at=created_at, id__lt=row_id))
    if dry_run:
        return old.count(), old.exclude(log_path__isnull=True).exclude(log_path="").count()
    runs = logs = 0
    while True:
        with transaction.atomic():
            batch = list(old.order_by("created_at", "id").values_list("id", "log_path")[: settings.JOBS_PRUNE_BATCH])
            if not batch:
                return runs, logs
            paths = [path for _, path in batch if path]
            purge.forget_files(paths, now)
            JobHistory.objects.filter(pk__in=[pk for pk, _ in batch]).delete()
        runs, logs = runs + len(batch), logs + len(paths)
        pace.deleted(len(batch))
