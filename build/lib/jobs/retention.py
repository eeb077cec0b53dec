"""History kept bounded: old runs deleted with their logs, in small batches, never the last runs of a job.

Each instance keeps `history_retention_days` of runs (the server's JOBS_HISTORY_RETENTION_DAYS unless an operator
set the instance's own), but every job keeps its last JOBS_HISTORY_KEEP_RUNS runs whatever their age, and a run
still queued or going is never touched. Rows go first, JOBS_PRUNE_BATCH per transaction, and in that transaction
their logs are queued as LogDeletion rows; storage deletes the files afterwards (`drain`), and a file storage could
not delete stays queued for a later try. So no row ever points at a deleted log, no log of a kept row is deleted,
and a storage failure loses nothing.

Every query is one an index serves: candidate jobs from (instance, created_at), a job's N-th newest run and the
rows below it from (job, created_at, id), the deletions by primary key.
"""

import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from jobs.models import JobHistory, LogDeletion, RunStatus
from pointscene.core.models import Instance

log = logging.getLogger(__name__)

ACTIVE = (RunStatus.QUEUED, RunStatus.RUNNING)
# Waits before a failed log delete is tried again: doubling from a minute, at most a day.
RETRY_FIRST_SECONDS = 60
RETRY_MAX_SECONDS = 86_400


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


def prune(now: datetime | None = None, dry_run: bool = False) -> PruneReport:
    """Deletes every instance's runs past its retention (or counts them, with dry_run), then drains the log
    deletions queued so far."""
    now = now or timezone.now()
    report = PruneReport(dry_run=dry_run)
    for instance_id, own_days in Instance.objects.values_list("id", "history_retention_days").order_by("id"):
        days = own_days or settings.JOBS_HISTORY_RETENTION_DAYS
        found = InstancePrune(instance_id, days)
        for job_id in _jobs_with_runs_before(instance_id, now - timedelta(days=days)):
            runs, logs = _prune_job(job_id, now - timedelta(days=days), now, dry_run)
            found.runs += runs
            found.logs += logs
        report.instances.append(found)
        report.runs_deleted += found.runs
    if not dry_run:
        report.logs_deleted, report.logs_failed = drain(now)
    return report


def _jobs_with_runs_before(instance_id: int, cutoff: datetime) -> list[int]:
    rows = JobHistory.objects.filter(instance_id=instance_id, created_at__lt=cutoff)
    return sorted(set(rows.values_list("job_id", flat=True).distinct()))


def _prune_job(job_id: int, cutoff: datetime, now: datetime, dry_run: bool) -> tuple[int, int]:
    """(runs, logs) deleted (or that would be) of one job: older than cutoff and below its last N runs."""
    keep = settings.JOBS_HISTORY_KEEP_RUNS
    floor = (
        JobHistory.objects.filter(job_id=job_id)
        .order_by("-created_at", "-id")
        .values_list("created_at", "id")[keep - 1 : keep]
        if keep > 0
        else []
    )
    old = JobHistory.objects.filter(job_id=job_id, created_at__lt=cutoff).exclude(status__in=ACTIVE)
    floor = list(floor)
    if keep > 0:
        if not floor:
            return 0, 0  # fewer runs than the floor: all kept
        created_at, row_id = floor[0]
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
            LogDeletion.objects.bulk_create([LogDeletion(path=path, next_attempt_at=now) for path in paths])
            JobHistory.objects.filter(pk__in=[pk for pk, _ in batch]).delete()
        runs, logs = runs + len(batch), logs + len(paths)


def drain(now: datetime | None = None, limit: int | None = None) -> tuple[int, int]:
    """Deletes queued logs from storage: (deleted, failed). A failure is tried again after a doubling wait."""
    now = now or timezone.now()
    limit = limit or settings.JOBS_PRUNE_BATCH
    deleted = failed = 0
    while True:
        due = list(LogDeletion.objects.filter(next_attempt_at__lte=now).order_by("id")[:limit])
        if not due:
            return deleted, failed
        done = []
        for item in due:
            try:
                default_storage.delete(item.path)
            except Exception as exc:  # noqa: BLE001 - any storage error: keep it queued, try later
                failed += 1
                wait = min(RETRY_FIRST_SECONDS * 2**item.attempts, RETRY_MAX_SECONDS)
                LogDeletion.objects.filter(pk=item.pk).update(
                    attempts=item.attempts + 1,
                    next_attempt_at=now + timedelta(seconds=wait),
                    last_error=f"{type(exc).__name__}"[:200],
                )
                log.warning("could not delete log %s (%s); trying again in %s s", item.path, type(exc).__name__, wait)
            else:
                done.append(item.pk)
        LogDeletion.objects.filter(pk__in=done).delete()
        deleted += len(done)
        if len(due) < limit or not done:
            return deleted, failed
