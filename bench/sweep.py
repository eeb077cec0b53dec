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
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


PORT = free_port()
REDIS_DIR = tempfile.mkdtemp(prefix="pointscene-bench-sweep-")
REDIS = subprocess.Popen(
    [shutil.which("redis-server") or "redis-server", "--port", str(PORT), "--bind", "127.0.0.1", "--save", ""]
    + ["--appendonly", "no", "--dir", REDIS_DIR],
    stdout=subprocess.DEVNULL,
)
os.environ["REDIS_URL"] = f"redis://127.0.0.1:{PORT}/0"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pointscene.settings")
os.environ["DATABASE_URL"] = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/pointscene_sweepbench"
)

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from jobs.models import JobHistory, RunStatus, ScheduledJob  # noqa: E402
from jobs.running import sweeper  # noqa: E402
from pointscene.core.connections import redis_client  # noqa: E402
from pointscene.core.models import Instance  # noqa: E402

SLOTS_SEEDED = 20
WORKFLOW = {"tasks": [{"name": "ping", "type": "http.request", "args": {"url": "https://example.com"}}]}


def ensure_database() -> None:
    url = os.environ["DATABASE_URL"]
    name = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    import psycopg

    with psycopg.connect(admin.replace("postgres://", "postgresql://"), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    call_command("migrate", verbosity=0)


def seed(count: int, now: datetime) -> Instance:
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
    best, queries, result = float("inf"), 0, None
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as ctx:
            started = time.perf_counter()
            result = fn()
            elapsed = time.perf_counter() - started
        best, queries = min(best, elapsed), len(ctx.captured_queries)
    return best, queries, result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", default="1000,10000")
    args = parser.parse_args()
    ensure_database()
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
    try:
        main()
    finally:
        REDIS.terminate()
        shutil.rmtree(REDIS_DIR, ignore_errors=True)
