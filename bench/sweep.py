#!/usr/bin/env python
"""Sweep benchmark (not a test): how long one `jobs.sweep` takes with many active jobs, on PostgreSQL.

    make bench-sweep          # or: BENCH_DATABASE_URL=... .venv/bin/python bench/sweep.py [--jobs 1000,10000]

For each job count it seeds that many active "* * * * *" jobs whose last 20 minute slots all have a run row (the
healthy case: nothing to record), then times, in-process:
  - the steady-state sweep: the previous sweep stopped 30 s ago, so about one new slot per job is checked;
  - a cold sweep: no record of the previous sweep (after a Redis flush), so JOBS_SWEEP_LOOKBACK_SECONDS (15 min)
    of slots per job are checked;
  - the lost-run check with 1,000 RUNNING runs, all with fresh heartbeats.
It starts a private redis-server for the sweep's marker. Prints markdown; application code is only called.
"""

import argparse
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import ensure_database, private_database, start_redis, stop_on_exit  # noqa: E402

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/pointscene_sweepbench"
SLOTS_SEEDED = 20
WORKFLOW = {"tasks": [{"name": "ping", "type": "http.request", "args": {"url": "https://example.com"}}]}


def seed(count: int, now: datetime):
    from django.db import connection

    from jobs.models import JobHistory, RunStatus, ScheduledJob
    from pointscene.core.models import Instance

    Instance.objects.filter(name__startswith="bench-sweep").delete()
    instance = Instance.objects.create(name=f"bench-sweep-{count}")
    anchor = now - timedelta(hours=1)
    jobs = ScheduledJob.objects.bulk_create(
        ScheduledJob(
            instance=instance,
            workflow=WORKFLOW,
            frequency_type="CRON_BASED",
            cron_expression="* * * * *",
            schedule_anchor=anchor,
        )
        for _ in range(count)
    )
    minute = now.replace(second=0, microsecond=0)
    rows = []
    for job in jobs:
        for back in range(SLOTS_SEEDED):
            rows.append(
                JobHistory(
                    job=job,
                    instance=instance,
                    scheduled_for=minute - timedelta(minutes=back),
                    status=RunStatus.SUCCEEDED,
                )
            )
        if len(rows) >= 50_000:
            JobHistory.objects.bulk_create(rows)
            rows = []
    JobHistory.objects.bulk_create(rows)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE jobs_jobhistory; ANALYZE jobs_scheduledjob")
    return instance


def timed(fn, repeat: int = 3) -> tuple[float, int, object]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    best, queries, result = float("inf"), 0, None
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as ctx:
            started = time.perf_counter()
            result = fn()
            elapsed = time.perf_counter() - started
        best, queries = min(best, elapsed), len(ctx.captured_queries)
    return best, queries, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", default="1000,10000")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="a quick check that the benchmark works: 50 jobs, a private database (dropped at the end)",
    )
    args = parser.parse_args()
    stop_on_exit()
    database_url = os.environ.get("BENCH_DATABASE_URL") or DEFAULT_DATABASE_URL
    if args.smoke:
        args.jobs = "50"
        database_url = private_database(database_url)
    else:
        ensure_database(database_url)
    os.environ["DATABASE_URL"] = database_url
    os.environ["REDIS_URL"] = start_redis(Path(tempfile.mkdtemp(prefix="sweepbench-")))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pointscene.settings")
    import django

    django.setup()
    from django.core.management import call_command

    from jobs.models import JobHistory, RunStatus
    from jobs.running import sweeper
    from pointscene.core.connections import redis_client

    call_command("migrate", verbosity=0)
    marker = "pointscene:swept-until"
    lines = ["| active jobs | sweep | seconds (best of 3) | SQL queries | slots checked |", "|---|---|---|---|---|"]
    for count in (int(n) for n in args.jobs.split(",")):
        now = datetime.now(UTC)
        instance = seed(count, now)
        horizon = now - timedelta(seconds=65)

        def steady(horizon=horizon, now=now):
            redis_client().set(marker, (horizon - timedelta(seconds=30)).isoformat())
            return sweeper.audit_slots(now)

        def cold(now=now):
            redis_client().delete(marker)
            return sweeper.audit_slots(now)

        for name, fn, checked in (
            ("steady (30 s since the last)", steady, "~1 per job"),
            ("cold (15 min)", cold, "~14 per job"),
        ):
            seconds, queries, result = timed(fn)
            assert result == {"missed": 0, "resent": 0}, result
            lines.append(f"| {count:,} | {name} | {seconds:.3f} | {queries} | {checked} |")

        running = JobHistory.objects.filter(instance=instance).order_by("pk")[:1000]
        JobHistory.objects.filter(pk__in=list(running.values_list("pk", flat=True))).update(
            status=RunStatus.RUNNING, started_at=now, heartbeat_at=datetime.now(UTC)
        )
        seconds, queries, ended = timed(lambda: sweeper.end_lost_runs(datetime.now(UTC)))
        assert ended == 0
        lines.append(f"| {count:,} | lost-run check, 1,000 RUNNING | {seconds:.3f} | {queries} | - |")
        instance.delete()
    print("\n".join(lines))


if __name__ == "__main__":
    main()
