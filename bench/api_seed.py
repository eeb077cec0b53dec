"""bench/api.py's data: the seeded instances, jobs and history rows (raw INSERT ... SELECT generate_series).

Imported after django.setup() (bench/api.py does it).
"""

import re
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import connection

from jobs.models import JobHistory, ScheduledJob
from pointscene.core.models import Instance, Resource


@dataclass(frozen=True)
class SeedInstance:
    name: str
    jobs: int
    runs: int  # history rows of the instance, spread round-robin over its jobs
    step_seconds: int  # time between consecutive runs of the instance


# 977,800 + 20,000 + 2,000 + 200 = 1,000,000 rows; and "bench-list", the 100,000 jobs scheduledJobs pages through
# (one run each: lastRunStatus has something to match), 1,100,000 rows in all.
SEED = [
    SeedInstance("bench-deep", 1000, 977_800, 30),
    SeedInstance("bench-jobs-1000", 1000, 20_000, 60),
    SeedInstance("bench-jobs-100", 100, 2_000, 600),
    SeedInstance("bench-jobs-10", 10, 200, 3600),
    SeedInstance("bench-list", 100_000, 100_000, 30),
]
# --smoke: the same four instances, small enough to seed and measure in seconds.
SMOKE_SEED = [
    SeedInstance("bench-deep", 20, 2_400, 30),
    SeedInstance("bench-jobs-1000", 50, 1_000, 60),
    SeedInstance("bench-jobs-100", 10, 200, 600),
    SeedInstance("bench-jobs-10", 5, 100, 3600),
    SeedInstance("bench-list", 1_000, 1_000, 30),
]
# Columns the INSERTs below leave to the table that the table cannot fill itself: Django keeps these defaults in
# Python. Per row: the log-link key (32 characters, like jobs.models.new_log_key's).
ROW_DEFAULTS = {"log_key": "md5(random()::text || k)"}


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def seeded_counts(specs: list[SeedInstance]) -> dict[str, tuple[int, int]] | None:
    """(jobs, history rows) per bench instance, or None when the bench instances are missing or duplicated."""
    found = {}
    for spec in specs:
        ids = list(Instance.objects.filter(name=spec.name).values_list("id", flat=True))
        if len(ids) != 1:
            return None
        found[spec.name] = (
            ScheduledJob.objects.filter(instance_id=ids[0]).count(),
            JobHistory.objects.filter(instance_id=ids[0]).count(),
        )
    return found


def delete_bench_rows(specs: list[SeedInstance]) -> None:
    ids = list(Instance.objects.filter(name__in=[s.name for s in specs]).values_list("id", flat=True))
    if not ids:
        return
    with connection.cursor() as cursor:
        # Raw deletes: the ORM would load a million rows to cascade them.
        cursor.execute("DELETE FROM jobs_jobhistory WHERE instance_id = ANY(%s)", [ids])
        cursor.execute("DELETE FROM jobs_scheduledjob WHERE instance_id = ANY(%s)", [ids])
        cursor.execute("VACUUM jobs_jobhistory")
    Instance.objects.filter(pk__in=ids).delete()


JOBS_SQL = """
INSERT INTO jobs_scheduledjob (instance_id, name, description, workflow, frequency_type, cron_expression,
    interval_minutes, timezone, active, schedule_anchor, last_run_at, created_at, updated_at /*more columns*/)
SELECT %(instance)s, 'bench job ' || g, 'Seeded by bench/api.py',
    jsonb_build_object('name', 'bench job ' || g, 'instanceId', %(instance)s::text, 'tasks', jsonb_build_array(
        jsonb_build_object('name', 'input', 'type', 'resource.input',
            'args', jsonb_build_object('id', %(resource)s::text, 'exclude', jsonb_build_array('sync/**', '.log/**'))),
        jsonb_build_object('name', 'sync', 'type', 'rclone.sync', 'inputs', 'input',
            'args', jsonb_build_object('id', %(resource)s::text,
                'remotes', jsonb_build_array('acc:/Project Files', 'gdrive:/backup/' || g))))),
    CASE WHEN g %% 2 = 0 THEN 'CRON_BASED' ELSE 'INTERVAL_BASED' END,
    CASE WHEN g %% 2 = 0 THEN (g %% 60) || ' ' || (g %% 24) || ' * * *' END,
    CASE WHEN g %% 2 = 1 THEN 15 + g %% 600 END,
    CASE WHEN g %% 10 = 0 THEN 'Europe/Helsinki' ELSE 'UTC' END,
    g %% 17 <> 0,
    %(start)s, NULL, %(start)s, %(start)s /*more values*/
FROM generate_series(1, %(jobs)s) AS g
"""

HISTORY_SQL = """
WITH j AS (SELECT array_agg(id ORDER BY id) AS ids FROM jobs_scheduledjob WHERE instance_id = %(instance)s)
INSERT INTO jobs_jobhistory (job_id, instance_id, status, trigger, scheduled_for, started_at, finished_at, error,
    steps, log_path, created_at /*more columns*/)
SELECT j.ids[1 + k %% %(jobs)s], %(instance)s,
    CASE WHEN k %% 23 = 5 THEN 'FAILED' WHEN k %% 97 = 3 THEN 'SKIPPED' ELSE 'SUCCEEDED' END,
    CASE WHEN k %% 50 = 0 THEN 'MANUAL' ELSE 'SCHEDULE' END,
    CASE WHEN k %% 50 = 0 THEN NULL ELSE t.ts END,
    t.ts + interval '1 second',
    t.ts + make_interval(secs => 5 + k %% 300),
    CASE WHEN k %% 23 = 5 THEN 'rclone.sync: exit status 7 (fatal error: 403 Forbidden)' END,
    jsonb_build_object(
        'input', jsonb_build_object('status', 'SUCCEEDED', 'files', k %% 5000),
        'sync', jsonb_build_object('status', CASE WHEN k %% 23 = 5 THEN 'FAILED' ELSE 'SUCCEEDED' END,
            'transferred', k %% 300, 'bytes', (k %% 300) * 1048576)),
    'logs/' || %(instance)s || '/' || j.ids[1 + k %% %(jobs)s] || '/' || k || '.log',
    t.ts /*more values*/
FROM j, generate_series(0, %(runs)s - 1) AS k,
    LATERAL (SELECT %(latest)s - make_interval(secs => (%(runs)s - 1 - k) * %(step)s) AS ts) AS t
"""


def with_defaults(sql: str, model) -> tuple[str, dict]:
    """`sql` with every NOT NULL column it does not list added, valued as the ORM would (the field's default), so
    that a field added to the model later does not break seeding; one without a usable default stops the bench."""
    listed = set(re.findall(r"\w+", re.search(r"INSERT INTO \w+ \(([^)]*)\)", sql)[1]))
    columns, values, params = [], [], {}
    for f in model._meta.concrete_fields:
        if f.column in listed or f.primary_key or f.null:
            continue
        if f.column in ROW_DEFAULTS:
            value = ROW_DEFAULTS[f.column]
        elif f.has_default() and not callable(f.default):
            params[f"default_{f.column}"] = f.get_db_prep_save(f.get_default(), connection)
            value = f"%(default_{f.column})s"
        else:
            raise SystemExit(f"bench/api.py cannot seed {model.__name__}.{f.name}: no default to give it")
        columns.append(f.column)
        values.append(value)
    sql = sql.replace("/*more columns*/", "".join(f", {c}" for c in columns))
    return sql.replace("/*more values*/", "".join(f", {v}" for v in values)), params


def seed(specs: list[SeedInstance]) -> None:
    latest = datetime.now(UTC).replace(microsecond=0)
    jobs_sql, jobs_defaults = with_defaults(JOBS_SQL, ScheduledJob)
    history_sql, history_defaults = with_defaults(HISTORY_SQL, JobHistory)
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = off")
        for spec in specs:
            instance = Instance.objects.create(name=spec.name)
            resource = Resource.objects.create(instance=instance, name=f"{spec.name} resource")
            start = latest - timedelta(seconds=spec.runs * spec.step_seconds + 86400)
            params = {
                "instance": instance.pk,
                "resource": resource.pk,
                "jobs": spec.jobs,
                "runs": spec.runs,
                "step": spec.step_seconds,
                "start": start,
                "latest": latest,
            }
            t0 = time.perf_counter()
            cursor.execute(jobs_sql, params | jobs_defaults)
            cursor.execute(history_sql, params | history_defaults)
            cursor.execute(
                """UPDATE jobs_scheduledjob AS s SET last_run_at = h.last FROM
                   (SELECT job_id, max(started_at) AS last FROM jobs_jobhistory WHERE instance_id = %s
                    GROUP BY job_id) AS h WHERE s.id = h.job_id""",
                [instance.pk],
            )
            log(f"seeded {spec.name}: {spec.jobs} jobs, {spec.runs:,} runs in {time.perf_counter() - t0:.1f} s")
        cursor.execute("SET synchronous_commit = on")
        t0 = time.perf_counter()
        cursor.execute("VACUUM ANALYZE jobs_jobhistory")
        cursor.execute("VACUUM ANALYZE jobs_scheduledjob")
        log(f"VACUUM ANALYZE in {time.perf_counter() - t0:.1f} s")


def ensure_seeded(specs: list[SeedInstance], reseed: bool) -> dict:
    expected = {s.name: (s.jobs, s.runs) for s in specs}
    t0 = time.perf_counter()
    counts = None if reseed else seeded_counts(specs)
    if counts == expected:
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE jobs_jobhistory")
            cursor.execute("ANALYZE jobs_scheduledjob")
        log("reusing the seeded database (row counts match)")
        return {"action": "reused (row counts matched)", "seconds": time.perf_counter() - t0}
    if counts is not None or Instance.objects.filter(name__in=expected).exists():
        log("deleting the previous bench rows" + (" (--reseed)" if reseed else " (row counts differ)"))
        delete_bench_rows(specs)
    seed(specs)
    if seeded_counts(specs) != expected:
        raise SystemExit(f"seeding produced {seeded_counts(specs)}, expected {expected}")
    return {"action": "seeded", "seconds": time.perf_counter() - t0}


def per_job(spec: SeedInstance) -> str:
    return f"{spec.runs // spec.jobs}" if spec.runs % spec.jobs == 0 else f"~{round(spec.runs / spec.jobs)}"
