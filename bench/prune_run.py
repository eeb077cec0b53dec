"""bench/prune.py's measuring: the real prune (jobs.retention.prune, what the jobs.prune_history task calls) on the
seeded instance while a reader fetches the newest getInstanceJobHistory page over HTTP (gunicorn) and a sampler
watches PostgreSQL for sessions waiting on a lock.

Imported after django.setup() (bench/prune.py does it).
"""

import os
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta

import psycopg
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.test import Client

from bench import prune_seed
from bench.api_run import GET_HISTORY, OverHttp, body, machine, percentile, start_gunicorn
from bench.harness import free_port, write_doc
from bench.prune_report import SECTION, render
from bench.prune_seed import SEED, SMOKE_SEED, log
from jobs import retention
from jobs.running import purge
from pointscene.core.clients import create_api_client

# A reader pause between pages: a console refreshing, not a load test (about 30 pages a second on this machine).
READER_PAUSE_S = 0.02
LOCK_SAMPLE_S = 0.05
LOCK_WAITS_SQL = """
SELECT count(*), coalesce(max(extract(epoch FROM clock_timestamp() - l.waitstart)), 0)
FROM pg_locks AS l JOIN pg_stat_activity AS a ON a.pid = l.pid
WHERE NOT l.granted AND a.datname = current_database()
"""
SIZES_SQL = """
SELECT pg_relation_size('jobs_jobhistory'), pg_indexes_size('jobs_jobhistory'),
    (SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'jobs_jobhistory')
"""


@dataclass
class Watch:
    """What the reader and the sampler saw, by phase."""

    phase: str = "before"
    pages: dict[str, list[float]] = field(default_factory=dict)  # phase -> page latencies (ms)
    errors: list[str] = field(default_factory=list)
    lock_samples: int = 0
    lock_waiting_samples: int = 0  # samples with any session of this database waiting on a lock
    max_lock_wait_s: float = 0.0
    waits_over_100ms: int = 0  # samples that saw a wait of more than 100 ms
    stop: threading.Event = field(default_factory=threading.Event)


def reader(watch: Watch, http: OverHttp, payload: str) -> None:
    while not watch.stop.is_set():
        phase = watch.phase
        t0 = time.perf_counter()
        try:
            status, data = http.post(payload)
        except Exception as exc:  # noqa: BLE001 - recorded and shown in the report
            watch.errors.append(f"{type(exc).__name__}: {exc}"[:200])
            continue
        ms = (time.perf_counter() - t0) * 1000
        if status != 200 or "errors" in data or not data["data"]["getInstanceJobHistory"]["items"]:
            watch.errors.append(f"HTTP {status}: {str(data)[:200]}")
        watch.pages.setdefault(phase, []).append(ms)
        time.sleep(READER_PAUSE_S)


def lock_sampler(watch: Watch, url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        while not watch.stop.is_set():
            waiting, longest = conn.execute(LOCK_WAITS_SQL).fetchone()
            watch.lock_samples += 1
            watch.lock_waiting_samples += waiting > 0
            watch.max_lock_wait_s = max(watch.max_lock_wait_s, float(longest))
            watch.waits_over_100ms += float(longest) > 0.1
            time.sleep(LOCK_SAMPLE_S)


class StatementCounter:
    """Counts the statements this process sends (connection.execute_wrapper), by first word."""

    def __init__(self) -> None:
        self.by_verb: dict[str, int] = {}

    def __call__(self, execute, sql, params, many, context):
        verb = sql.lstrip().split(None, 1)[0].upper()
        self.by_verb[verb] = self.by_verb.get(verb, 0) + 1
        return execute(sql, params, many, context)

    def total(self) -> int:
        return sum(self.by_verb.values())


def sizes() -> dict:
    with connection.cursor() as cursor:
        cursor.execute(SIZES_SQL)
        table, indexes, dead = cursor.fetchone()
    return {"table_mb": table / 2**20, "indexes_mb": indexes / 2**20, "dead_rows": dead or 0}


def token_for(instance) -> str:
    api = create_api_client(f"bench-prune {time.strftime('%Y%m%dT%H%M%S')}", [instance.pk])
    answer = Client().post(
        "/oauth2/token",
        {
            "grant_type": "client_credentials",
            "client_id": api.client_id,
            "client_secret": api.client_secret,
            "scope": "instance-*",
        },
    )
    if answer.status_code != 200:
        raise SystemExit(f"no token: {answer.content[:300]}")
    return answer.json()["access_token"]


def page_stats(samples: list[float]) -> dict:
    if not samples:
        return {"n": 0, "p50": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0}
    return {
        "n": len(samples),
        "p50": percentile(samples, 50),
        "p95": percentile(samples, 95),
        "p99": percentile(samples, 99),
        "max": max(samples),
    }


def timed_prune(watch: Watch) -> dict:
    """retention.prune() as the task calls it, with the phase switched when its log drain starts (purge.drain
    wrapped: the same function runs), statements counted per phase."""
    marks = {"start": time.perf_counter()}
    counters = {"rows": StatementCounter(), "drain": StatementCounter()}
    original = purge.drain

    def drain(*args, **kwargs):
        marks["drain"] = time.perf_counter()
        watch.phase = "during log drain"
        with connection.execute_wrapper(counters["drain"]):
            return original(*args, **kwargs)

    purge.drain = drain
    try:
        watch.phase = "during rows"
        with connection.execute_wrapper(counters["rows"]):
            report = retention.prune()
    finally:
        purge.drain = original
    marks["end"] = time.perf_counter()
    return {
        "report": report,
        "rows_s": marks["drain"] - marks["start"],
        "drain_s": marks["end"] - marks["drain"],
        "statements_rows": counters["rows"].total() - counters["drain"].total(),
        "statements_drain": counters["drain"].total(),
        # The rows counter also saw the drain's statements (the wrappers nest): take them out.
        "verbs_rows": {
            verb: count - counters["drain"].by_verb.get(verb, 0) for verb, count in counters["rows"].by_verb.items()
        },
    }


def run(args) -> None:
    spec = SMOKE_SEED if args.smoke else SEED
    if connection.vendor != "postgresql":
        raise SystemExit("bench/prune.py measures PostgreSQL: set DATABASE_URL=postgres://...")
    load_start = os.getloadavg()
    began = time.perf_counter()
    call_command("migrate", interactive=False, verbosity=0)
    seeded = prune_seed.seed(spec)
    instance = seeded["instance"]
    cutoff = seeded["now"] - timedelta(days=settings.JOBS_HISTORY_RETENTION_DAYS)
    before_counts = prune_seed.counts(instance.pk, cutoff)
    before_sizes = sizes()
    dry_t0 = time.perf_counter()
    dry = retention.prune(dry_run=True)
    dry_s = time.perf_counter() - dry_t0

    port = free_port()
    gunicorn = start_gunicorn(port, args.gunicorn_log)
    watch = Watch()
    threads = []
    try:
        http = OverHttp(f"http://127.0.0.1:{port}", token_for(instance))
        payload = body(GET_HISTORY, {"instanceId": str(instance.pk), "page": {}})
        for _ in range(3 if args.smoke else 20):
            http.post(payload)  # warm both workers
        threads = [
            threading.Thread(target=reader, args=(watch, http, payload), daemon=True),
            threading.Thread(target=lock_sampler, args=(watch, os.environ["DATABASE_URL"]), daemon=True),
        ]
        for t in threads:
            t.start()
        time.sleep(args.settle)
        log(f"pruning {before_counts['old_runs']:,} old runs")
        pruned = timed_prune(watch)
        after_counts = prune_seed.counts(instance.pk, cutoff)
        after_sizes = sizes()
        watch.phase = "after"
        time.sleep(args.settle)
        empty_t0 = time.perf_counter()
        empty_counter = StatementCounter()
        with connection.execute_wrapper(empty_counter):
            empty = retention.prune()
        empty_s = time.perf_counter() - empty_t0
        watch.phase = "during VACUUM"
        vacuum_t0 = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE jobs_jobhistory")
        vacuum_s = time.perf_counter() - vacuum_t0
        vacuumed_sizes = sizes()
        watch.phase = "after VACUUM"
        time.sleep(args.settle)
    finally:
        watch.stop.set()
        for t in threads:
            t.join(timeout=10)
        gunicorn.terminate()
        gunicorn.wait(timeout=30)
    files_left = prune_seed.files_left(instance.pk)
    load_end = os.getloadavg()
    report = pruned["report"]
    result = {
        "smoke": args.smoke,
        "spec": spec,
        "seeded": seeded,
        "settings": {
            "retention_days": settings.JOBS_HISTORY_RETENTION_DAYS,
            "keep_runs": settings.JOBS_HISTORY_KEEP_RUNS,
            "batch": settings.JOBS_PRUNE_BATCH,
            "pause_ms": settings.JOBS_PRUNE_PAUSE_MS,
        },
        "before": before_counts,
        "after": after_counts,
        "dry": {"runs": dry.runs_deleted, "seconds": dry_s},
        "pruned": pruned,
        "runs_deleted": report.runs_deleted,
        "logs_deleted": report.logs_deleted,
        "logs_failed": report.logs_failed,
        "files_left": files_left,
        "empty": {"seconds": empty_s, "statements": empty_counter.total(), "runs": empty.runs_deleted},
        "sizes": {"before": before_sizes, "after prune": after_sizes, "after VACUUM": vacuumed_sizes},
        "vacuum_s": vacuum_s,
        "pages": {phase: page_stats(samples) for phase, samples in watch.pages.items()},
        "reader_errors": watch.errors,
        "locks": {
            "samples": watch.lock_samples,
            "waiting_samples": watch.lock_waiting_samples,
            "max_wait_ms": watch.max_lock_wait_s * 1000,
            "over_100ms": watch.waits_over_100ms,
        },
        "load": (load_start, load_end),
        "machine": machine(),
        "minutes": (time.perf_counter() - began) / 60,
    }
    text = render(result)
    print(text)
    if not args.no_doc:
        write_doc(SECTION, text, args.doc)
        log(f"wrote {SECTION!r} to {args.doc}")
    if report.runs_deleted != before_counts["old_runs"] or after_counts["runs"] != spec.recent or files_left:
        raise SystemExit(f"the prune left something: {after_counts}, {files_left} files")
    if watch.errors:
        raise SystemExit(f"{len(watch.errors)} page reads failed: {watch.errors[:3]}")
