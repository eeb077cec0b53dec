"""bench/api.py's measuring: the cases (history pages at several depths, getScheduledJobs), timed in-process and
over HTTP (gunicorn), the SQL of one request counted and explained.

Imported after django.setup() (bench/api.py does it). It stays one file of about 450 lines: run() is one
sequence (cases, timings, query counts, plans) whose steps share the token, cursors and cases it sets up.
"""

import gc
import json
import math
import os
import platform
import re
import subprocess
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import django
import requests
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from oauth2_provider.models import Application

from bench import api_lists
from bench.api_report import SECTION, render, tables_of
from bench.api_seed import SEED, SMOKE_SEED, ensure_seeded, log, per_job
from bench.harness import ROOT, cpu_model, free_port, memory_gib, write_doc
from jobs.graphql.listing import attach_next_runs
from jobs.history import NEWEST_FIRST, attach_recent_history, encode_cursor
from jobs.models import JobHistory, ScheduledJob
from pointscene.core.clients import create_api_client
from pointscene.core.models import Instance

# The selection of docs/contract/examples/get_jobs.graphql and instance_history.graphql, with variables.
GET_JOBS = """query ($instanceId: ID!) {
  getScheduledJobs(instanceId: $instanceId) {
    id
    active
    history { id jobId success logPath createdAt }
    instanceId
    workflow
    frequencyType
    cronExpression
    intervalMinutes
    nextRun
    lastRun
    createdAt
  }
}"""
HISTORY_FIELDS = set(re.search(r"history \{ ([^}]*) \}", GET_JOBS).group(1).split())  # what GET_JOBS reads of runs
GET_HISTORY = """query ($instanceId: ID!, $page: PageInput) {
  getInstanceJobHistory(instanceId: $instanceId, page: $page) {
    items { id jobId success logPath createdAt }
    cursor
    hasNextPage
  }
}"""
DEPTHS = [0, 1_000, 100_000, 900_000]
SMOKE_DEPTHS = [0, 1_000, 2_000]  # 1,000: the cursor check walks 10 default pages
PAGE_SIZES = [None, 25]  # None: the API's default page size (100)


def expect(condition: object, problem: object) -> None:
    """A wrong answer stops the benchmark (explicit, unlike assert, which python -O drops)."""
    if not condition:
        raise SystemExit(f"bench/api.py: unexpected answer: {problem}")


def auth(token: str) -> str:
    return f"Bearer {token}"


def body(query: str, variables: dict) -> str:
    return json.dumps({"query": query, "variables": variables})


def percentile(samples: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


@dataclass
class Timing:
    samples_ms: list[float] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.samples_ms)

    def p(self, q: float) -> float:
        return percentile(self.samples_ms, q)


@dataclass
class Case:
    label: str
    payload: str
    check: object  # callable(response json) -> None, raises on a wrong answer
    requests: int
    budget_s: float
    warmup: int = 10
    depth: int | None = None
    size: int | None = None
    results: dict[str, Timing] = field(default_factory=dict)


class InProcess:
    name = "in-process"

    def __init__(self, token: str) -> None:
        self.client = Client()
        self.headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"}

    def send(self, payload: str) -> tuple[int, bytes]:
        response = self.client.post("/graphql", payload, content_type="application/json", **self.headers)
        return response.status_code, response.content

    def post(self, payload: str) -> tuple[int, dict]:
        status, content = self.send(payload)
        return status, json.loads(content)


class OverHttp:
    name = "HTTP"

    def __init__(self, base: str, token: str) -> None:
        self.url = f"{base}/graphql"
        self.session = requests.Session()
        self.session.trust_env = False  # no proxies for 127.0.0.1
        self.session.headers.update({"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        self.connection_headers: set[str] = set()

    def send(self, payload: str) -> tuple[int, bytes]:
        response = self.session.post(self.url, data=payload, timeout=120)  # returns once the whole body is read
        self.connection_headers.add(response.headers.get("Connection", "-"))
        return response.status_code, response.content

    def post(self, payload: str) -> tuple[int, dict]:
        status, content = self.send(payload)
        return status, json.loads(content)


def measure(transport, case: Case) -> Timing:
    gc.collect()  # start each case without the previous case's garbage
    for _ in range(case.warmup):
        status, data = transport.post(case.payload)
        if status != 200:
            raise SystemExit(f"{case.label} via {transport.name}: HTTP {status}: {json.dumps(data)[:500]}")
        case.check(data)
    timing = Timing()
    started = time.perf_counter()
    while timing.n < case.requests:
        # Timed until the whole answer has arrived; the client's parsing of it (1.7 MB for 1,000 jobs) is not the
        # service's latency.
        t0 = time.perf_counter()
        status, content = transport.send(case.payload)
        timing.samples_ms.append((time.perf_counter() - t0) * 1000)
        data = json.loads(content)
        if status != 200 or "errors" in data:
            raise SystemExit(f"{case.label} via {transport.name}: HTTP {status}: {json.dumps(data)[:500]}")
        if time.perf_counter() - started > case.budget_s and timing.n >= 20:
            break
    case.check(data)
    return timing


def start_gunicorn(port: int, log_path: Path) -> subprocess.Popen:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "pointscene.settings", "LOG_LEVEL": "WARNING"}
    command = [
        str(ROOT / ".venv" / "bin" / "gunicorn"),
        "pointscene.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "2",
        "--log-level",
        "warning",
    ]
    with open(log_path, "w") as log_file:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    probe = requests.Session()
    probe.trust_env = False
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise SystemExit(f"gunicorn exited with {process.returncode}; see {log_path}")
            try:
                probe.post(f"http://127.0.0.1:{port}/graphql", timeout=10)  # a 401 without a token: it answers
                return process
            except requests.RequestException:
                time.sleep(0.3)
        raise SystemExit(f"gunicorn did not answer within 60 s; see {log_path}")
    except BaseException:
        process.terminate()
        process.wait(timeout=30)
        raise


def captured(client: Client, token: str, payload: str) -> list[str]:
    with CaptureQueriesContext(connection) as ctx:
        response = client.post("/graphql", payload, content_type="application/json", HTTP_AUTHORIZATION=auth(token))
    expect(response.status_code == 200, response.content[:500])
    expect("errors" not in response.json(), response.content[:500])
    return [q["sql"] for q in ctx.captured_queries]


def explain(sql: str) -> tuple[str, float]:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)  # once to warm the cache
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
        lines = [row[0] for row in cursor.fetchall()]
    execution = next((float(m[1]) for line in lines if (m := re.search(r"Execution Time: ([\d.]+)", line))), 0.0)
    return "\n".join(lines), execution


def jobs_breakdown(transport, instance_id: int, repeats: int = 5) -> dict[str, float]:
    """Medians, taken together: a whole in-process getScheduledJobs request, then the resolver's own steps done
    directly as it does them: the jobs as model instances, their latest runs (the columns GET_JOBS's history
    selection reads), nextRun once per distinct schedule. The remainder is GraphQL execution, JSON and the rest."""
    steps: dict[str, list[float]] = {"request_ms": [], "jobs_ms": [], "runs_ms": [], "next_run_ms": []}
    payload = body(GET_JOBS, {"instanceId": str(instance_id)})
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        transport.send(payload)
        t1 = time.perf_counter()
        jobs = list(ScheduledJob.objects.filter(instance_id=instance_id).order_by("id"))
        t2 = time.perf_counter()
        attach_recent_history(jobs, HISTORY_FIELDS)
        t3 = time.perf_counter()
        attach_next_runs(jobs, datetime.now(UTC))
        t4 = time.perf_counter()
        for name, seconds in zip(steps, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            steps[name].append(seconds * 1000)
    return {name: percentile(samples, 50) for name, samples in steps.items()}


def lateral_sql(instance_id: int) -> str:
    """The latest runs of every job of an instance, one index probe per job: the suggested prefetch."""
    return (
        "SELECT h.* FROM jobs_scheduledjob AS j CROSS JOIN LATERAL (SELECT * FROM jobs_jobhistory AS x"
        f" WHERE x.job_id = j.id ORDER BY x.created_at DESC, x.id DESC LIMIT {settings.JOBS_RECENT_HISTORY})"
        f" AS h WHERE j.instance_id = {int(instance_id)}"
    )


def machine() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        pg = cursor.fetchone()[0].split(" on ")[0]
        cursor.execute("SHOW shared_buffers")
        shared_buffers = cursor.fetchone()[0]
        cursor.execute("SELECT pg_size_pretty(pg_total_relation_size('jobs_jobhistory'))")
        history_size = cursor.fetchone()[0]
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu_model(),
        "ram": f"{memory_gib():.1f} GiB",
        "postgres": f"{pg} (shared_buffers {shared_buffers})",
        "history_size": history_size,
        "python": platform.python_version(),
        "django": django.get_version(),
    }


def run(args) -> None:
    """Seeds (or reuses) the data, measures, prints the report and writes its section to args.doc."""
    specs, depths = (SMOKE_SEED, SMOKE_DEPTHS) if args.smoke else (SEED, DEPTHS)
    warmup = 1 if args.smoke else 10
    if connection.vendor != "postgresql":
        raise SystemExit("bench/api.py measures PostgreSQL: set DATABASE_URL=postgres://...")
    began = time.perf_counter()
    call_command("migrate", interactive=False, verbosity=0)
    seeding = ensure_seeded(specs, args.reseed)
    instances = {i.name: i for i in Instance.objects.filter(name__in=[s.name for s in specs])}
    deep = instances["bench-deep"]

    api = create_api_client(f"bench-api {datetime.now(UTC):%Y%m%dT%H%M%S}", [i.pk for i in instances.values()])
    gunicorn = None
    try:
        client = Client()
        answer = client.post(
            "/oauth2/token",
            {
                "grant_type": "client_credentials",
                "client_id": api.client_id,
                "client_secret": api.client_secret,
                "scope": "instance-*",
            },
        )
        expect(answer.status_code == 200, answer.content)
        token = answer.json()["access_token"]

        # --- cursors deep into bench-deep's history, from rows found by OFFSET (setup only)
        newest = JobHistory.objects.filter(instance_id=deep.pk).order_by(*NEWEST_FIRST)
        cursors, first_ids = {0: None}, {0: newest.values_list("id", flat=True)[0]}
        for depth in depths[1:]:
            before, first_row = list(newest[depth - 1 : depth + 1])
            cursors[depth], first_ids[depth] = encode_cursor(before), first_row.pk
        # Sanity: following the API's own cursors for 10 default pages lands on the constructed 1,000-row cursor.
        walked = None
        for _ in range(10):
            page = {"after": walked} if walked else {}
            data = InProcess(token).post(body(GET_HISTORY, {"instanceId": str(deep.pk), "page": page}))[1]
            walked = data["data"]["getInstanceJobHistory"]["cursor"]
        expect(walked == cursors[1000], "the API's cursor after 1,000 rows differs from encode_cursor(row 1,000)")

        # --- cases
        def jobs_check(jobs: int, runs_each: int):
            def check(data: dict) -> None:
                expect("errors" not in data, data.get("errors"))
                rows = data["data"]["getScheduledJobs"]
                expect(len(rows) == jobs, len(rows))
                want = min(runs_each, settings.JOBS_RECENT_HISTORY)
                expect(all(len(r["history"]) == want for r in rows), f"a job without {want} history rows")

            return check

        def page_check(depth: int, size: int):
            def check(data: dict) -> None:
                expect("errors" not in data, data.get("errors"))
                page = data["data"]["getInstanceJobHistory"]
                expect(len(page["items"]) == size, f"{len(page['items'])} items, expected {size}")
                expect(page["hasNextPage"], "hasNextPage is false")
                expect(int(page["items"][0]["id"]) == first_ids[depth], (page["items"][0]["id"], first_ids[depth]))

            return check

        # History pages first: measured in a fresh process heap, before the big getScheduledJobs answers.
        cases = []
        for size in PAGE_SIZES:
            for depth in depths:
                page = {"first": size} if size else {}
                if cursors[depth]:
                    page["after"] = cursors[depth]
                shown = size or settings.JOBS_HISTORY_PAGE_DEFAULT
                cases.append(
                    Case(
                        f"getInstanceJobHistory, first {shown}{'' if size else ' (default)'}, after {depth:,} rows",
                        body(GET_HISTORY, {"instanceId": str(deep.pk), "page": page}),
                        page_check(depth, shown),
                        requests=args.requests,
                        budget_s=60,
                        warmup=warmup,
                        depth=depth,
                        size=shown,
                    )
                )
        for name in ("bench-jobs-1000", "bench-deep"):
            spec = next(s for s in specs if s.name == name)
            cases.append(
                Case(
                    f"getScheduledJobs, {spec.jobs:,} jobs x {per_job(spec)} runs ({name})",
                    body(GET_JOBS, {"instanceId": str(instances[name].pk)}),
                    jobs_check(spec.jobs, spec.runs // spec.jobs),
                    requests=args.requests if args.smoke else 200,
                    budget_s=30,
                    warmup=min(3, warmup),
                )
            )

        lists = next(s for s in specs if s.name == "bench-list")
        extra = api_lists.list_cases(Case, body, instances[lists.name], lists.jobs, args.requests, warmup)
        extra += api_lists.history_cases(Case, body, deep, args.requests, warmup)
        load = [os.getloadavg()[0]]
        # As the served app does once loaded (gunicorn.conf.py, post_worker_init): what is alive now stays out of
        # the collector's scans, so that both modes measure the service as it runs.
        gc.collect()
        gc.freeze()
        inprocess = InProcess(token)
        for case in cases + extra:
            case.results["in-process"] = measure(inprocess, case)
            log(f"in-process {case.label}: p50 {case.results['in-process'].p(50):.1f} ms")

        port = free_port()
        gunicorn = start_gunicorn(port, args.gunicorn_log)
        http = OverHttp(f"http://127.0.0.1:{port}", token)
        for case in cases + extra:
            case.results["HTTP"] = measure(http, case)
            log(f"HTTP {case.label}: p50 {case.results['HTTP'].p(50):.1f} ms")
        gunicorn.terminate()
        gunicorn.wait(timeout=30)
        gunicorn = None
        load.append(os.getloadavg()[0])

        # --- SQL queries per request
        query_rows = []
        queries_seen = {}
        for spec in sorted((s for s in specs if s is not lists), key=lambda s: (s.runs // s.jobs, s.jobs)):
            payload = body(GET_JOBS, {"instanceId": str(instances[spec.name].pk)})
            first = captured(client, token, payload)
            again = captured(client, token, payload)
            queries_seen[spec.name] = again
            history_queries = sum(tables_of(q) == "jobs_jobhistory" for q in again)
            query_rows.append((spec, len(first), len(again), history_queries))
        history_payload = body(GET_HISTORY, {"instanceId": str(deep.pk), "page": {}})
        captured(client, token, history_payload)
        history_page_queries = captured(client, token, history_payload)

        # --- plans of the SQL Django generated
        deep_page = next(c for c in cases if c.depth == depths[-1] and c.size == settings.JOBS_HISTORY_PAGE_DEFAULT)
        page_sql = next(q for q in captured(client, token, deep_page.payload) if tables_of(q) == "jobs_jobhistory")
        page_plan, page_ms = explain(page_sql)
        prefetch_sql = next(q for q in queries_seen["bench-deep"] if "jobs_jobhistory" in q)
        prefetch_plan, prefetch_ms = explain(prefetch_sql)
        small_prefetch_sql = next(q for q in queries_seen["bench-jobs-1000"] if "jobs_jobhistory" in q)
        small_prefetch_plan, small_prefetch_ms = explain(small_prefetch_sql)
        lateral_plan, lateral_ms = explain(lateral_sql(deep.pk))
        _, small_lateral_ms = explain(lateral_sql(instances["bench-jobs-1000"].pk))
        breakdown = {name: jobs_breakdown(inprocess, instances[name].pk) for name in ("bench-jobs-1000", "bench-deep")}
    finally:
        if gunicorn is not None:
            gunicorn.terminate()
            gunicorn.wait(timeout=30)
        Application.objects.filter(client_id=api.client_id).delete()

    report = render(
        specs=specs,
        machine=machine(),
        seeding=seeding,
        query_rows=query_rows,
        deep_queries=queries_seen["bench-deep"],
        history_page_queries=history_page_queries,
        cases=cases,
        keepalive=sorted(http.connection_headers),
        plans={
            "page": (page_sql, page_plan, page_ms),
            "prefetch": (prefetch_sql, prefetch_plan, prefetch_ms),
            "small_prefetch": (small_prefetch_sql, small_prefetch_plan, small_prefetch_ms),
            "lateral": (lateral_sql(deep.pk), lateral_plan, lateral_ms),
            "small_lateral_ms": small_lateral_ms,
        },
        breakdown=breakdown,
        load=load,
        args=args,
        runtime=time.perf_counter() - began,
    )
    report += "\n\n" + api_lists.render(extra) + "\n"
    print(report)
    if not args.no_doc:
        write_doc(SECTION, report, args.doc)
        log(f"wrote the section {SECTION!r} of {args.doc}")
