"""bench/prune.py's data: one instance whose jobs have many runs past retention (each with a small log file on the
local storage, as a worker leaves them) and recent runs that must stay. Rows by raw INSERT ... SELECT
generate_series, as bench/api_seed.py does; files written by this process.

Imported after django.setup() (bench/prune.py does it).
"""

import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import connection

from bench.api_seed import JOBS_SQL, with_defaults
from bench.api_seed import log as log
from jobs.models import JobHistory, LogDeletion, ScheduledJob
from pointscene.core.models import Instance, Resource
from pointscene.core.storage import job_log_folder

NAME = "bench-prune"


@dataclass(frozen=True)
class PruneSeed:
    jobs: int
    old: int  # runs past retention, spread round-robin over the jobs: all of them are to be deleted
    recent: int  # runs within retention (each job's last ones): none is touched
    no_log_every: int = 100  # every n-th old run has no stored log (a run that never started): ~1 % of them


SEED = PruneSeed(jobs=1000, old=1_000_000, recent=30_000)
SMOKE_SEED = PruneSeed(jobs=20, old=3_000, recent=600)

# Old runs are spread evenly from 400 to 100 days ago (the default retention is 90 days), recent ones over the last
# 30 days.
OLD_SPAN = (timedelta(days=400), timedelta(days=100))
RECENT_SPAN = timedelta(days=30)

HISTORY_SQL = """
WITH j AS (SELECT array_agg(id ORDER BY id) AS ids FROM jobs_scheduledjob WHERE instance_id = %(instance)s)
INSERT INTO jobs_jobhistory (job_id, instance_id, status, trigger, scheduled_for, started_at, finished_at, error,
    steps, log_path, created_at /*more columns*/)
SELECT j.ids[1 + k %% %(jobs)s], %(instance)s,
    CASE WHEN k %% 23 = 5 THEN 'FAILED' ELSE 'SUCCEEDED' END, 'SCHEDULE', t.ts, t.ts + interval '1 second',
    t.ts + make_interval(secs => 5 + k %% 300),
    CASE WHEN k %% 23 = 5 THEN 'rclone.sync: exit status 7 (fatal error: 403 Forbidden)' END,
    jsonb_build_object('sync', jsonb_build_object('status', 'SUCCEEDED', 'transferred', k %% 300)),
    CASE WHEN %(logs)s AND k %% %(no_log_every)s <> 0
        THEN %(prefix)s || 'job-' || j.ids[1 + k %% %(jobs)s] || '/run-' || %(tag)s || k || '.log' END,
    t.ts /*more values*/
FROM j, generate_series(0, %(runs)s - 1) AS k,
    LATERAL (SELECT %(first)s + make_interval(secs => k * %(step)s) AS ts) AS t
"""


def delete_previous() -> None:
    """Drops the rows of an earlier run (a bench interrupted half-way) and their queued deletions."""
    ids = list(Instance.objects.filter(name=NAME).values_list("id", flat=True))
    with connection.cursor() as cursor:
        if ids:
            cursor.execute("DELETE FROM jobs_jobhistory WHERE instance_id = ANY(%s)", [ids])
            cursor.execute("DELETE FROM jobs_scheduledjob WHERE instance_id = ANY(%s)", [ids])
        cursor.execute("DELETE FROM jobs_logdeletion")
    Instance.objects.filter(pk__in=ids).delete()


def seed(spec: PruneSeed) -> dict:
    """Seeds the instance and writes the old runs' log files; returns what was made and how long it took."""
    delete_previous()
    now = datetime.now(UTC).replace(microsecond=0)
    instance = Instance.objects.create(name=NAME)
    resource = Resource.objects.create(instance=instance, name=f"{NAME} resource")
    prefix = job_log_folder(instance.pk, 0).removesuffix("job-0/")
    jobs_sql, jobs_defaults = with_defaults(JOBS_SQL, ScheduledJob)
    history_sql, history_defaults = with_defaults(HISTORY_SQL, JobHistory)
    base = {"instance": instance.pk, "resource": resource.pk, "jobs": spec.jobs, "prefix": prefix}
    old_span = (OLD_SPAN[0] - OLD_SPAN[1]).total_seconds()
    t0 = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = off")
        cursor.execute(jobs_sql, base | {"start": now - OLD_SPAN[0]} | jobs_defaults)
        for runs, first, step, logs, tag in (
            (spec.old, now - OLD_SPAN[0], old_span / spec.old, True, "old-"),
            (spec.recent, now - RECENT_SPAN, RECENT_SPAN.total_seconds() / spec.recent, False, "new-"),
        ):
            params = {"runs": runs, "first": first, "step": step, "logs": logs, "tag": tag}
            cursor.execute(history_sql, base | params | {"no_log_every": spec.no_log_every} | history_defaults)
        cursor.execute("SET synchronous_commit = on")
        rows_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        cursor.execute("VACUUM ANALYZE jobs_jobhistory")
        cursor.execute("VACUUM ANALYZE jobs_scheduledjob")
        vacuum_s = time.perf_counter() - t1
    t2 = time.perf_counter()
    files = write_logs(instance.pk)
    files_s = time.perf_counter() - t2
    log(f"seeded {spec.old:,} + {spec.recent:,} runs in {rows_s:.1f} s, {files:,} log files in {files_s:.1f} s")
    return {
        "instance": instance,
        "rows_s": rows_s,
        "vacuum_s": vacuum_s,
        "files": files,
        "files_s": files_s,
        "now": now,
    }


def write_logs(instance_id: int) -> int:
    """One small file per old run that has a log_path, under MEDIA_ROOT (the local storage), ~200 bytes each."""
    root = Path(settings.MEDIA_ROOT)
    made = set()
    written = 0
    rows = JobHistory.objects.filter(instance_id=instance_id, log_path__isnull=False).values_list("log_path", "id")
    for path, row_id in rows.iterator(chunk_size=10_000):
        target = root / path
        if target.parent not in made:
            target.parent.mkdir(parents=True, exist_ok=True)
            made.add(target.parent)
        with open(target, "w") as f:
            f.write(f"run {row_id}\nrclone sync: Transferred: 0 B / 0 B, -, 0 B/s, ETA -\nChecks: 12 / 12, 100%\n")
        written += 1
    return written


def files_left(instance_id: int) -> int:
    folder = Path(settings.MEDIA_ROOT) / job_log_folder(instance_id, 0).removesuffix("job-0/")
    return sum(len(files) for _, _, files in os.walk(folder))


def counts(instance_id: int, cutoff: datetime) -> dict:
    history = JobHistory.objects.filter(instance_id=instance_id)
    return {
        "runs": history.count(),
        "old_runs": history.filter(created_at__lt=cutoff).count(),
        "queued_logs": LogDeletion.objects.count(),
    }
