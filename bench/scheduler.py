#!/usr/bin/env python
"""Scheduler benchmark (not a test): N cron jobs due at the next three minute boundaries, real beat and workers.

    .venv/bin/python bench/scheduler.py [--n 1000,10000,100000] [--schedulers ours,redbeat,dcb] [--workers 4]
    make bench-scheduler

For each N and scheduler, N jobs are due at three consecutive minute boundaries (N/3 each, cron "M H * * *" in
UTC), one real `celery beat` and one real `celery worker` (K prefork processes) run against PostgreSQL
(database `pointscene_schedbench`, created and owned by this benchmark) and a private redis-server on a free port
(started here, stopped on exit). Schedulers:

- ours: `jobs.scheduling.beat.JobsScheduler`, unchanged, with the service's settings; entries made by
  `jobs.scheduling.reconcile()` from N active `ScheduledJob` rows whose workflow is one `resource.input` step on an
  empty resource (the cheapest real workflow). Each run writes a JobHistory row with scheduled_for, published_at
  (beat's send time, passed in the message) and started_at.
- redbeat: stock `redbeat.RedBeatScheduler`, N `RedBeatSchedulerEntry(name, task, crontab(M, H)).save()` entries for
  the plain task `bench.ref_run` (bench/refs.py), which notes its start time in Redis.
- dcb: django-celery-beat's `DatabaseScheduler`, N PeriodicTask rows with `CrontabSchedule(M, H, UTC)`, same task.
  Both references run as bench-only subclasses (bench/refs.py) that only note the time each publish returned.

Reported per N and scheduler: dispatch lag (publish time minus slot; ours publishes up to
JOBS_SCHEDULE_LOOKAHEAD_SECONDS early with the slot as ETA, so it can be negative), delivered lag (the later of
publish time and slot, minus slot: when the run became runnable), start lag (worker start minus slot), each
p50/p99/max; runs missed / doubled; beat CPU seconds and peak RSS from /proc. Results go to var/ (JSON, process logs)
and the "## Scheduler (bench/scheduler.py)" section of docs/benchmarks.md. Application code is only called.
"""

import argparse
import atexit
import base64
import json
import math
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DOC = ROOT / "docs" / "benchmarks.md"
SECTION = "## Scheduler (bench/scheduler.py)"
OUT_DIR = ROOT / "var" / "bench-scheduler"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/pointscene_schedbench"
CELERY = str(Path(sys.executable).parent / "celery")
SCHEDULERS = ("ours", "ours-tuned", "redbeat", "dcb")
DEFAULT_SCHEDULERS = "ours,redbeat,dcb"
# Opt-in variant: ours, unchanged code, two settings changed (see TUNED).
TUNED = {"REDBEAT_LOCK_TIMEOUT": "300", "JOBS_SCHEDULE_LOOKAHEAD_SECONDS": "40"}
LABELS = {
    "ours": "ours (JobsScheduler)",
    "ours-tuned": "ours, settings: beat lock 300 s, look-ahead 40 s",
    "redbeat": "stock RedBeat",
    "dcb": "django-celery-beat DatabaseScheduler",
}
# Seconds of preparation and start-up to allow per job before the first boundary (then rounded up to a minute).
LEAD_PER_JOB = {"ours": 0.0008, "ours-tuned": 0.0008, "redbeat": 0.0006, "dcb": 0.0008}
LEAD_BASE = 35.0
CLK_TCK = os.sysconf("SC_CLK_TCK")

PROCESSES: list["Process"] = []


# --------------------------------------------------------------------------------------------- processes


class Process:
    """A child process in its own session (so its whole group can be ended), output to a log file."""

    def __init__(self, name: str, args: list[str], env: dict, logdir: Path) -> None:
        self.name = name
        self.log_path = logdir / f"{name}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.pid = self.popen.pid
        PROCESSES.append(self)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM to the process itself (a celery worker then finishes its running tasks and gives back the
        messages it holds), SIGKILL to its whole group after `timeout` or if anything of the group is left."""
        if self.popen.poll() is None:
            try:
                os.kill(self.pid, signal.SIGTERM)
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
            except ProcessLookupError:
                pass
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self.popen.poll() is None:
            self.popen.wait()
        if not self._log.closed:
            self._log.close()
        if self in PROCESSES:
            PROCESSES.remove(self)


def stop_all() -> None:
    for process in list(reversed(PROCESSES)):
        try:
            process.stop(timeout=10)
        except Exception as exc:  # noqa: BLE001 - best effort on the way out
            print(f"could not stop {process.name} ({process.pid}): {exc}", file=sys.stderr)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_redis(logdir: Path) -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="schedbench-redis-")
    atexit.register(shutil.rmtree, workdir, True)
    Process(
        "redis",
        [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no", "--dir", workdir],
        dict(os.environ),
        logdir,
    )
    import redis

    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    for _ in range(200):
        try:
            client.ping()
            return url
        except redis.ConnectionError:
            time.sleep(0.025)
    sys.exit(f"redis-server did not start on port {port}")


class ProcSampler(threading.Thread):
    """Samples a process's CPU (utime+stime+cutime+cstime) and VmHWM/VmRSS from /proc every 0.25 s."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.cpu = 0.0
        self.hwm_kb = 0
        self.rss_kb = 0
        self.marks: dict[str, float] = {}
        self._stop = threading.Event()

    def sample(self) -> None:
        try:
            stat = Path(f"/proc/{self.pid}/stat").read_text()
            status = Path(f"/proc/{self.pid}/status").read_text()
        except (FileNotFoundError, ProcessLookupError):
            return
        fields = stat.rsplit(")", 1)[1].split()
        # Fields 14-17 of stat (utime, stime, cutime, cstime); after the ")" the list starts at field 3.
        self.cpu = sum(int(v) for v in fields[11:15]) / CLK_TCK
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                self.hwm_kb = int(line.split()[1])
            elif line.startswith("VmRSS:"):
                self.rss_kb = int(line.split()[1])

    def mark(self, name: str) -> None:
        self.sample()
        self.marks[name] = self.cpu

    def run(self) -> None:
        while not self._stop.wait(0.25):
            self.sample()

    def stop(self) -> None:
        self._stop.set()
        self.sample()


# --------------------------------------------------------------------------------------------- setup


def database_url() -> str:
    return os.environ.get("BENCH_DATABASE_URL") or DEFAULT_DATABASE_URL


def ensure_database(url: str) -> None:
    """Creates the benchmark's own PostgreSQL database if it does not exist yet."""
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
            print(f"created database {name}")


def configure_environment(redis_url: str, media_root: str) -> None:
    os.environ.update(
        DATABASE_URL=database_url(),
        DJANGO_SETTINGS_MODULE="bench.scheduler_settings",
        REDIS_URL=redis_url,
        MEDIA_ROOT=media_root,
        JOBS_REDIS_PREFIX="schedbench:",
        REDBEAT_KEY_PREFIX="schedbench:ours:",
        CELERY_QUEUE="schedbench-ours",
        LOG_LEVEL="INFO",
        PYTHONUNBUFFERED="1",
        PYTHONPATH=str(ROOT),
    )


def is_ours(scheduler: str) -> bool:
    return scheduler.startswith("ours")


def child_env(scheduler: str) -> dict:
    env = dict(os.environ)
    # Ours' entries are made by reconcile() in this process, under this process's key prefix.
    name = "ours" if is_ours(scheduler) else scheduler
    env.update(
        CELERY_QUEUE=f"schedbench-{name}",
        REDBEAT_KEY_PREFIX=f"schedbench:{name}:",
        BENCH_REF_KEY=f"schedbench:{name}:bench:",
        # Ours runs with the service's own settings; the references need django_celery_beat installed.
        DJANGO_SETTINGS_MODULE="pointscene.settings" if is_ours(scheduler) else "bench.scheduler_settings",
    )
    if scheduler == "ours-tuned":
        env.update(TUNED)
    return env


def seed(total: int) -> tuple[int, list[int], float]:
    """An instance with an empty resource and `total` (inactive) cron jobs running resource.input on it."""
    from jobs.models import ScheduledJob
    from jobs.workflow import validate_workflow
    from pointscene.core.models import Instance, Resource

    started = time.monotonic()
    instance, _ = Instance.objects.get_or_create(name="schedbench")
    resource, _ = Resource.objects.get_or_create(instance=instance, name="schedbench-empty")
    workflow = {"tasks": [{"name": "files", "type": "resource.input", "args": {"resourceId": str(resource.pk)}}]}
    validate_workflow(workflow, instance.pk)  # the service would accept it
    have = ScheduledJob.objects.filter(instance=instance).count()
    batch = 5000
    for start in range(have, total, batch):
        ScheduledJob.objects.bulk_create(
            [
                ScheduledJob(
                    instance=instance,
                    name=f"schedbench-{i}",
                    workflow=workflow,
                    frequency_type="CRON_BASED",
                    cron_expression="0 0 1 1 *",
                    timezone="UTC",
                    active=False,
                )
                for i in range(start, min(total, start + batch))
            ]
        )
    ids = list(ScheduledJob.objects.filter(instance=instance).order_by("pk").values_list("pk", flat=True)[:total])
    return instance.pk, ids, time.monotonic() - started


# --------------------------------------------------------------------------------------------- one run


@dataclass
class Result:
    scheduler: str
    n: int
    workers: int
    boundaries: list[str] = field(default_factory=list)
    status: str = "ok"
    prep_seconds: float = 0.0
    reconcile_seconds: float | None = None
    ready_after: float | None = None  # beat spawn -> ready (ours: lock acquired after the start reconcile)
    ready_before_first: float | None = None  # seconds between ready and the first boundary
    dispatched: int = 0
    recorded: int = 0
    started: int = 0
    missed_dispatch: int = 0
    missed_start: int = 0
    not_run_at_cutoff: int = 0
    doubled_rows: int = 0
    duplicate_deliveries: int = 0
    unexpected: int = 0
    statuses: dict = field(default_factory=dict)
    dispatch: dict = field(default_factory=dict)
    delivered: dict = field(default_factory=dict)
    start: dict = field(default_factory=dict)
    per_boundary: list = field(default_factory=list)
    dispatch_done_after_last: float | None = None  # last publish minus the last boundary
    drain_seconds: float | None = None
    throughput: float | None = None  # runs started per second while the backlog lasted
    late40: int = 0  # expected runs not published within 40 s of their slot (never published included)
    beat_stopped_at: float | None = None  # epoch
    beat_cpu_total: float = 0.0
    beat_cpu_window: float = 0.0
    beat_hwm_mb: float = 0.0
    beat_log_lines: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    logdir: str = ""


def pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def summary(values: list[float], missing: int = 0, floor: float | None = None) -> dict:
    """p50/p99/max of `values`; `missing` values that are known only to exceed `floor` count as infinite."""
    if not values and not missing:
        return {"n": 0}
    both = values + [math.inf] * missing
    return {
        "n": len(values),
        "missing": missing,
        "floor": floor,
        "p50": pct(both, 50),
        "p99": pct(both, 99),
        "max": max(both),
    }


def choose_boundaries(scheduler: str, n: int, count: int) -> list[datetime]:
    lead = LEAD_BASE + n * LEAD_PER_JOB[scheduler]
    if scheduler == "ours-tuned":
        lead += float(TUNED["JOBS_SCHEDULE_LOOKAHEAD_SECONDS"])
    earliest = datetime.now(UTC) + timedelta(seconds=lead)
    first = earliest.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return [first + timedelta(minutes=i) for i in range(count)]


def sleep_until(moment: datetime) -> None:
    while (left := (moment - datetime.now(UTC)).total_seconds()) > 0:
        time.sleep(min(left, 1.0))


def flush_redis() -> None:
    import redis
    from django.conf import settings

    redis.Redis.from_url(settings.REDIS_URL).flushdb()


def prepare_ours(instance_id: int, ids: list[int], slots: dict[int, datetime], result: Result) -> None:
    from django.db import connection

    from jobs.models import JobHistory
    from jobs.scheduling import reconcile

    JobHistory.objects.filter(instance_id=instance_id).delete()
    crons = {slot: f"{slot.minute} {slot.hour} * * *" for slot in set(slots.values())}
    with connection.cursor() as cursor:
        cursor.execute("UPDATE jobs_scheduledjob SET active = false WHERE instance_id = %s AND active", [instance_id])
        for slot, cron in crons.items():
            chosen = [job_id for job_id, s in slots.items() if s == slot]
            for start in range(0, len(chosen), 10000):
                cursor.execute(
                    "UPDATE jobs_scheduledjob SET active = true, cron_expression = %s, last_run_at = NULL"
                    " WHERE id = ANY(%s)",
                    [cron, chosen[start : start + 10000]],
                )
    started = time.monotonic()
    changes = reconcile.reconcile()
    result.reconcile_seconds = time.monotonic() - started
    if len(changes["added"]) != len(ids):
        result.notes.append(f"reconcile added {len(changes['added'])} entries, expected {len(ids)}")


def ref_app(scheduler: str):
    from celery import Celery
    from django.conf import settings
    from redbeat.schedulers import ensure_conf

    app = Celery(f"schedbench-{scheduler}", set_as_current=False)
    app.conf.update(
        broker_url=settings.REDIS_URL,
        redbeat_redis_url=settings.REDIS_URL,
        redbeat_key_prefix=f"schedbench:{scheduler}:",
        timezone="UTC",
        enable_utc=True,
    )
    ensure_conf(app)
    return app


def prepare_redbeat(slots: dict[int, datetime]) -> None:
    from celery.schedules import crontab
    from redbeat import RedBeatSchedulerEntry

    app = ref_app("redbeat")
    for job_id, slot in slots.items():
        RedBeatSchedulerEntry(
            f"ref-{job_id}",
            "bench.ref_run",
            crontab(minute=slot.minute, hour=slot.hour, app=app),
            args=[job_id, slot.isoformat()],
            app=app,
        ).save()


def prepare_dcb(slots: dict[int, datetime]) -> None:
    from django_celery_beat.models import CrontabSchedule, PeriodicTask, PeriodicTasks

    PeriodicTask.objects.all().delete()  # the benchmark's own database: only ours are there
    crontabs = {}
    for slot in sorted(set(slots.values())):
        crontabs[slot], _ = CrontabSchedule.objects.get_or_create(
            minute=str(slot.minute),
            hour=str(slot.hour),
            day_of_week="*",
            day_of_month="*",
            month_of_year="*",
            timezone="UTC",
        )
    items = list(slots.items())
    for start in range(0, len(items), 5000):
        PeriodicTask.objects.bulk_create(
            [
                PeriodicTask(
                    name=f"ref-{job_id}",
                    task="bench.ref_run",
                    crontab=crontabs[slot],
                    args=json.dumps([job_id, slot.isoformat()]),
                    enabled=True,
                )
                for job_id, slot in items[start : start + 5000]
            ]
        )
    PeriodicTasks.update_changed()


def beat_failure(log_text: str) -> str:
    """When and why beat died, from its log (the CRITICAL line, else the last line)."""
    lines = [line for line in log_text.splitlines() if line.strip()]
    critical = [line for line in lines if "CRITICAL" in line]
    line = (critical or lines or ["(no output)"])[-1]
    match = re.match(r"\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)", line)
    moment = f"at {match.group(1)[11:]} UTC, " if match else ""
    reason = line.split("exception", 1)[-1].strip() if critical else line.strip()
    return moment + reason[:160]


def beat_published(log_text: str) -> int:
    return sum(int(m) for m in re.findall(r"beat: published (\d+) job runs", log_text))


def run_one(scheduler: str, n: int, instance_id: int, all_ids: list[int], args) -> Result:
    import redis
    from django.conf import settings

    result = Result(scheduler=scheduler, n=n, workers=args.workers)
    logdir = OUT_DIR / f"{scheduler}-{n}"
    shutil.rmtree(logdir, ignore_errors=True)
    logdir.mkdir(parents=True)
    result.logdir = str(logdir.relative_to(ROOT))
    client = redis.Redis.from_url(settings.REDIS_URL, decode_responses=True)
    env = child_env(scheduler)
    ref_key = env["BENCH_REF_KEY"]
    queue = env["CELERY_QUEUE"]

    boundaries = choose_boundaries(scheduler, n, args.boundaries)
    result.boundaries = [b.isoformat() for b in boundaries]
    ids = all_ids[:n]
    slots = {job_id: boundaries[i % len(boundaries)] for i, job_id in enumerate(ids)}
    print(f"\n== {scheduler} N={n}: boundaries {', '.join(b.strftime('%H:%M') for b in boundaries)} UTC", flush=True)

    flush_redis()
    started = time.monotonic()
    if is_ours(scheduler):
        prepare_ours(instance_id, ids, slots, result)
    elif scheduler == "redbeat":
        prepare_redbeat(slots)
    else:
        prepare_dcb(slots)
    result.prep_seconds = time.monotonic() - started
    print(f"   prepared in {result.prep_seconds:.1f} s (reconcile {result.reconcile_seconds or 0:.1f} s)", flush=True)
    if datetime.now(UTC) > boundaries[0] - timedelta(seconds=10):
        result.notes.append("preparation ran into the first boundary's last 10 s")

    worker_args = [CELERY, "-A", "pointscene", "worker", "--loglevel", "INFO", "--concurrency", str(args.workers)]
    worker_args += ["--pool", "prefork", "-Q", queue, "--without-mingle", "--without-gossip", "-n", f"{scheduler}@%h"]
    beat_args = [CELERY, "-A", "pointscene", "beat", "--loglevel", "INFO"]
    if is_ours(scheduler):
        beat_args += ["-S", "jobs.scheduling.beat.JobsScheduler"]
    else:
        worker_args += ["-I", "bench.refs"]
        beat_args += [
            "-S",
            "bench.refs.NotingRedBeatScheduler" if scheduler == "redbeat" else "bench.refs.NotingDatabaseScheduler",
        ]

    worker = Process("worker", worker_args, env, logdir)
    beat = None
    sampler = None
    expected = len(ids)
    try:
        spawned = time.monotonic()
        beat = Process("beat", beat_args, env, logdir)
        sampler = ProcSampler(beat.pid)
        sampler.start()
        ready = False
        while time.monotonic() - spawned < args.start_timeout:
            if not beat.alive():
                result.status = "beat exited before it was ready: " + beat_failure(beat.output())
                print(f"   {result.status}", flush=True)
                return result
            ready = (
                "beat: Acquired lock" in beat.output() if is_ours(scheduler) else bool(client.get(ref_key + "ready"))
            )
            if ready:
                break
            time.sleep(0.2)
        if not ready:
            result.status = f"did not start within {args.start_timeout:.0f} s"
            print(f"   {result.status}", flush=True)
            return result
        result.ready_after = time.monotonic() - spawned
        result.ready_before_first = (boundaries[0] - datetime.now(UTC)).total_seconds()
        print(
            f"   beat ready after {result.ready_after:.1f} s, {result.ready_before_first:.1f} s before the first"
            " boundary",
            flush=True,
        )

        early = float(TUNED["JOBS_SCHEDULE_LOOKAHEAD_SECONDS"]) if scheduler == "ours-tuned" else 0.0
        sleep_until(boundaries[0] - timedelta(seconds=10 + early))
        sampler.mark("window")
        while datetime.now(UTC) < boundaries[-1] + timedelta(seconds=5) and beat.alive():
            time.sleep(0.5)
        deadline = boundaries[-1] + timedelta(seconds=args.tail)
        while True:
            done = beat_published(beat.output()) if is_ours(scheduler) else client.llen(ref_key + "sent")
            if done >= expected:
                break
            if datetime.now(UTC) >= deadline:
                result.status = f"did not finish dispatching in {args.tail:.0f} s after the last boundary"
                result.notes.append(f"published {done} of {expected} by then")
                break
            if not beat.alive():
                result.status = "beat exited: " + beat_failure(beat.output())
                result.notes.append(f"published {done} of {expected} before beat exited")
                print(f"   {result.status}", flush=True)
                break
            time.sleep(0.5)
        time.sleep(1.0)  # a last flush of the references' notes
        sampler.stop()
        result.beat_cpu_total = sampler.cpu
        result.beat_cpu_window = sampler.cpu - sampler.marks.get("window", 0.0)
        result.beat_hwm_mb = sampler.hwm_kb / 1024
        beat.stop()
        result.beat_stopped_at = time.time()
        print(
            f"   beat stopped: CPU {result.beat_cpu_total:.1f} s total, {result.beat_cpu_window:.1f} s in the window,"
            f" peak RSS {result.beat_hwm_mb:.0f} MB",
            flush=True,
        )

        # Let the workers finish what was published.
        drain_started = time.monotonic()
        last_count, last_progress = -1, time.monotonic()
        while True:
            if is_ours(scheduler):
                done, target = finished_runs(instance_id), beat_published(beat.output())
            else:
                done, target = client.llen(ref_key + "started"), client.llen(ref_key + "sent")
            if done >= target:
                break
            if done != last_count:
                last_count, last_progress = done, time.monotonic()
            if time.monotonic() - last_progress > 30 or time.monotonic() - drain_started > args.drain:
                result.notes.append(f"workers stopped with {target - done} of {target} published runs not finished")
                break
            time.sleep(1.0)
        result.drain_seconds = time.monotonic() - drain_started
    finally:
        if sampler is not None:
            sampler.stop()
        if beat is not None:
            beat.stop()
        worker.stop(timeout=60)
    cutoff = time.time()
    queued = queued_runs(client, queue)
    result.not_run_at_cutoff = len(queued)
    if is_ours(scheduler):
        analyse_ours(result, instance_id, slots, queued, cutoff, beat.output(), worker.output())
    else:
        analyse_ref(result, slots, queued, cutoff, client, ref_key, beat.output())
    return result


def queued_runs(client, queue: str) -> dict[tuple[int, datetime], float | None]:
    """(job id, slot) -> published_at (ours; None for the references) of the messages left in the queue (or
    unacked) after the workers stopped: published, never run."""
    raw = client.lrange(queue, 0, -1) + [json.dumps(json.loads(v)[0]) for v in client.hvals("unacked")]
    out = {}
    for item in raw:
        message = json.loads(item)
        args, kwargs, _ = json.loads(base64.b64decode(message["body"]))
        published = kwargs.get("published_at")
        out[(int(args[0]), datetime.fromisoformat(args[1]))] = (
            datetime.fromisoformat(published).timestamp() if published else None
        )
    return out


def finished_runs(instance_id: int) -> int:
    from jobs.models import JobHistory

    return JobHistory.objects.filter(instance_id=instance_id).exclude(status__in=["QUEUED", "RUNNING"]).count()


def beat_batches(log_text: str) -> list[str]:
    """Ours' beat log lines that report a published batch, for evidence."""
    return [line.strip() for line in log_text.splitlines() if "beat: published" in line][:20]


def fill_lags(
    result: Result, rows: list[tuple[int, datetime, float | None, float | None]], slots, cutoff: float
) -> None:
    """rows: (job_id, slot, published epoch or None, started epoch or None); cutoff: when the workers stopped.

    Expected runs that were never started count as infinite start lag (shown as "> the smallest lag they
    could have had", i.e. cutoff minus the last boundary), so percentiles are not flattered by leaving them out.
    """
    dispatch, delivered, start = [], [], []
    by_boundary: dict[datetime, list[float]] = {}
    last_publish = None
    for _job_id, slot, published, started_at in rows:
        s = slot.timestamp()
        if published is not None:
            dispatch.append(published - s)
            delivered.append(max(published, s) - s)
            by_boundary.setdefault(slot, []).append(published - s)
            last_publish = published if last_publish is None else max(last_publish, published)
        if started_at is not None:
            start.append(started_at - s)
    last_slot = max(slots.values()).timestamp()
    unpublished = len(slots) - len(dispatch)
    beat_floor = (result.beat_stopped_at or cutoff) - last_slot
    result.dispatch = summary(dispatch, unpublished, beat_floor)
    result.delivered = summary(delivered, unpublished, beat_floor)
    result.start = summary(start, len(slots) - len(start), cutoff - last_slot)
    result.late40 = len(slots) - sum(1 for d in dispatch if d <= 40)
    result.per_boundary = [{"boundary": b.isoformat(), "dispatch": summary(v)} for b, v in sorted(by_boundary.items())]
    last = max(slots.values())
    if last_publish is not None:
        result.dispatch_done_after_last = last_publish - last.timestamp()
    starts = sorted(r[3] for r in rows if r[3] is not None)
    if len(starts) > 1 and result.start.get("max", 0) > 10:
        # Backlog throughput: started runs per second between the first boundary and the last start.
        result.throughput = len(starts) / max(1e-6, starts[-1] - min(slots.values()).timestamp())


def analyse_ours(
    result: Result, instance_id: int, slots, queued: dict, cutoff: float, beat_log: str, worker_log: str
) -> None:
    from jobs.models import JobHistory

    rows = list(
        JobHistory.objects.filter(instance_id=instance_id).values_list(
            "job_id", "scheduled_for", "published_at", "started_at", "status"
        )
    )
    result.dispatched = beat_published(beat_log)
    result.recorded = len(rows)
    result.statuses = dict(Counter(r[4] for r in rows))
    keys = Counter((r[0], r[1]) for r in rows)
    expected = {(job_id, slot) for job_id, slot in slots.items()}
    result.unexpected = sum(c for k, c in keys.items() if k not in expected)
    result.doubled_rows = sum(c - 1 for c in keys.values() if c > 1)
    result.duplicate_deliveries = worker_log.count("duplicate delivery ignored")
    dropped = worker_log.count("dropped (")
    if dropped:
        result.notes.append(f"worker dropped {dropped} slots (job paused/deleted or slot not in schedule)")
    no_row = [k for k in expected if k not in keys]
    result.missed_start = len(no_row)
    # A run with no row may still be waiting in the queue when the workers were stopped: not a miss by beat.
    result.missed_dispatch = sum(1 for k in no_row if k not in queued)
    result.started = sum(1 for r in rows if r[3] is not None)
    lag_rows = [
        (r[0], r[1], r[2].timestamp() if r[2] else None, r[3].timestamp() if r[3] else None)
        for r in rows
        if (r[0], r[1]) in expected
    ]
    # Runs still queued carry their published_at in the message: their dispatch lag is known too.
    lag_rows += [(k[0], k[1], queued[k], None) for k in no_row if k in queued]
    fill_lags(result, lag_rows, slots, cutoff)
    result.beat_log_lines = beat_batches(beat_log)


def analyse_ref(result: Result, slots, queued: dict, cutoff: float, client, ref_key: str, beat_log: str) -> None:
    def parse(name: str) -> list[tuple[int, datetime, float]]:
        out = []
        for raw in client.lrange(ref_key + name, 0, -1):
            job_id, slot, moment = raw.split(" ")
            out.append((int(job_id), datetime.fromisoformat(slot), float(moment)))
        return out

    sent, started = parse("sent"), parse("started")
    sent_by: dict[tuple[int, datetime], list[float]] = {}
    for job_id, slot, moment in sent:
        sent_by.setdefault((job_id, slot), []).append(moment)
    started_by: dict[tuple[int, datetime], list[float]] = {}
    for job_id, slot, moment in started:
        started_by.setdefault((job_id, slot), []).append(moment)
    expected = {(job_id, slot) for job_id, slot in slots.items()}
    result.dispatched = len(sent)
    result.recorded = len(started)
    result.started = len(started)
    result.unexpected = sum(len(v) for k, v in sent_by.items() if k not in expected)
    result.missed_dispatch = sum(1 for k in expected if k not in sent_by)
    result.missed_start = sum(1 for k in expected if k not in started_by)
    result.doubled_rows = sum(len(v) - 1 for v in started_by.values() if len(v) > 1)
    result.duplicate_deliveries = sum(len(v) - 1 for v in sent_by.values() if len(v) > 1)
    rows = []
    for key in expected:
        published = min(sent_by[key]) if key in sent_by else None
        began = min(started_by[key]) if key in started_by else None
        if published is not None or began is not None:
            rows.append((key[0], key[1], published, began))
    fill_lags(result, rows, slots, cutoff)
    errors = [line for line in beat_log.splitlines() if "ERROR" in line or "Traceback" in line]
    if errors:
        result.notes.append(f"beat logged {len(errors)} error lines, first: {errors[0][:200]}")


# --------------------------------------------------------------------------------------------- report


def machine() -> str:
    from django.db import connection

    cpus = os.cpu_count()
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = 0.0
    try:
        mem = int(Path("/proc/meminfo").read_text().split()[1]) / 1024 / 1024
    except (OSError, ValueError, IndexError):
        pass
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        pg = cursor.fetchone()[0]
    redis_version = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.split()[2]
    from importlib.metadata import version

    import celery
    import django

    return (
        f"{cpus} CPUs ({model}), {mem:.1f} GiB RAM; PostgreSQL {pg}; Redis {redis_version.removeprefix('v=')}; "
        f"Python {platform.python_version()}, Django {django.get_version()}, Celery {celery.__version__}, "
        f"celery-redbeat {version('celery-redbeat')}, django-celery-beat {version('django-celery-beat')}"
    )


def fmt(value: float | None, digits: int = 2, floor: float | None = None) -> str:
    if value is None:
        return "-"
    if math.isinf(value):
        # Never happened; when it could have happened for a while before the cut-off, say for how long at least.
        return "never" if floor is None or floor <= 0 else f"> {floor:.0f}"
    return f"{value:.{digits}f}"


def triple(stats: dict) -> str:
    if not stats.get("n") and not stats.get("missing"):
        return "-"
    floor = stats.get("floor")
    cells = " / ".join(fmt(stats[k], floor=floor) for k in ("p50", "p99", "max"))
    if stats.get("missing"):
        cells += f" ({stats['missing']:,} never)"
    return cells


def table(results: list[Result]) -> list[str]:
    lines = [
        "| N | scheduler | status | dispatch lag p50 / p99 / max (s) | delivered lag p50 / p99 / max (s) "
        "| start lag p50 / p99 / max (s) | runs expected / published / started | missed (never published) | doubled "
        "| duplicate deliveries dropped | beat CPU s (total / in window) | beat peak RSS MB | beat ready after s |",
        "|---:|---|---|---|---|---|---|---:|---:|---:|---|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.n:,} | {LABELS[r.scheduler]} | {r.status} | {triple(r.dispatch)} | {triple(r.delivered)} "
            f"| {triple(r.start)} | {r.n:,} / {r.dispatched:,} / {r.started:,} | {r.missed_dispatch:,} "
            f"| {r.doubled_rows:,} | {r.duplicate_deliveries:,} | {r.beat_cpu_total:.1f} / {r.beat_cpu_window:.1f} "
            f"| {r.beat_hwm_mb:.0f} | {fmt(r.ready_after, 1)} |"
        )
    return lines


def stat(stats: dict, key: str) -> str:
    text = fmt(stats.get(key), floor=stats.get("floor"))
    return text if text == "never" else text + " s"


def reading(results: list[Result]) -> list[str]:
    out = []
    ours = {r.n: r for r in results if r.scheduler == "ours"}
    tuned = [r for r in results if r.scheduler == "ours-tuned"]
    for n, target in ((10_000, 1.0), (100_000, 5.0)):
        r = ours.get(n)
        if r is None or not r.dispatch.get("n"):
            out.append(f"- **Ours at N = {n:,}, dispatch p99 < {target:g} s: not measured in this run.**")
            continue
        met = "met" if r.dispatch["p99"] < target and r.status == "ok" else "NOT met"
        last = (
            f"the last run of the last boundary was published {fmt(r.dispatch_done_after_last)} s after it"
            if not r.dispatch.get("missing")
            else f"{r.dispatch['missing']:,} runs were never published"
        )
        out.append(
            f"- **Ours at N = {n:,}, dispatch p99 < {target:g} s: {met}** (p99 {stat(r.dispatch, 'p99')}, max "
            f"{stat(r.dispatch, 'max')}; delivered p99 {stat(r.delivered, 'p99')}, max {stat(r.delivered, 'max')}; "
            f"{last}; {r.status})."
        )
    bad = [r for r in ours.values() if r.missed_dispatch or r.doubled_rows or r.unexpected]
    if ours:
        if bad:
            detail = "; ".join(
                f"N={r.n:,}: missed {r.missed_dispatch}, doubled {r.doubled_rows}, unexpected {r.unexpected}"
                for r in bad
            )
            out.append(f"- **Ours, nothing missed or doubled: NOT met** ({detail}).")
        else:
            dups = ", ".join(f"N={r.n:,}: {r.duplicate_deliveries}" for r in ours.values())
            out.append(
                "- **Ours, nothing missed or doubled: met** at every N measured (every expected (job, slot) was "
                "published once and has at most one JobHistory row; duplicate deliveries dropped by the unique "
                f"(job, slot) key: {dups})."
            )
        for r in ours.values():
            if r.not_run_at_cutoff:
                out.append(
                    f"- Ours at N = {r.n:,}: {r.not_run_at_cutoff:,} published runs were still queued when the "
                    f"workers were stopped ({fmt(r.drain_seconds, 0)} s after beat): not misses by beat, but their "
                    "start lag is unknown beyond that cut-off (shown as > cut-off)."
                )
    for r in ours.values():
        if r.throughput:
            verdict = "more than" if r.throughput * 60 < r.n / 3 else "within"
            out.append(
                f"- Ours at N = {r.n:,}: start lag is the workers' backlog: {r.workers} prefork processes started "
                f"about {r.throughput:.0f} runs/s (each run: a JobHistory insert, the run lock, the resource "
                f"listing, a log file, three updates), so the {r.n // 3:,} runs of a minute are {verdict} what they "
                "start in a minute. Start lag falls with more workers (or machines); dispatch lag does not depend "
                "on them."
            )
    for r in tuned:
        settings_text = ", ".join(f"{k}={v}" for k, v in TUNED.items())
        out.append(
            f"- Ours with only settings changed ({settings_text}) at N = {r.n:,}: {r.status}; dispatch p99 "
            f"{stat(r.dispatch, 'p99')}, max {stat(r.dispatch, 'max')}; delivered p99 {stat(r.delivered, 'p99')}, "
            f"max {stat(r.delivered, 'max')}; missed {r.missed_dispatch:,}, doubled {r.doubled_rows:,}."
        )
    elsewhere = {"redbeat": "about 4 s", "dcb": "about 60 s, over half not fired within 40 s"}
    for scheduler in ("redbeat", "dcb"):
        for r in [x for x in results if x.scheduler == scheduler]:
            if not r.dispatch.get("n"):
                out.append(f"- {LABELS[scheduler]} at N = {r.n:,}: {r.status}; " + "; ".join(r.notes))
                continue
            status = "" if r.status == "ok" else f"{r.status}; "
            text = (
                f"- {LABELS[scheduler]} at N = {r.n:,}: {status}dispatch p50 {stat(r.dispatch, 'p50')}, p99 "
                f"{stat(r.dispatch, 'p99')}, max {stat(r.dispatch, 'max')}; {r.late40:,} of {r.n:,} not fired "
                f"within 40 s of their minute; beat CPU {r.beat_cpu_window:.1f} s in the window"
            )
            if r.n == 10_000:
                text += f" (the issue's figure for N = 10,000, measured on a stock setup: p99 {elsewhere[scheduler]})"
            mine = ours.get(r.n)
            if mine is not None and mine.delivered.get("n"):
                text += (
                    f"; ours at the same N: delivered p99 {stat(mine.delivered, 'p99')}, beat CPU "
                    f"{mine.beat_cpu_window:.1f} s in the window"
                )
            out.append(text + ".")
    return out


def render(results: list[Result], meta: dict) -> str:
    lines = [
        SECTION,
        "",
        f"- Date: {meta['date']}; total run {meta['total_seconds']:.0f} s (seeding {meta['seed_seconds']:.1f} s).",
        f"- Machine: {meta['machine']}. Beat, workers, Redis, PostgreSQL and the benchmark share it; "
        f"1-minute load average {meta['load_before']:.2f} when measuring began, {meta['load_after']:.2f} when it "
        "ended.",
        f"- Command: `{meta['command']}` (or `make bench-scheduler`).",
        f"- Each scheduler: one `celery beat` and one `celery worker --concurrency {meta['workers']}` (prefork), "
        "`--loglevel INFO`, the service's Celery settings (acks_late, prefetch 1, beat max loop interval 5 s), a "
        "private redis-server started by the benchmark, database `pointscene_schedbench`. Schedulers run one after "
        "another on the same jobs (same ids, same slot per job), never at the same time.",
        "",
        f"What is measured. N jobs, N/{meta['boundaries']} due at each of {meta['boundaries']} consecutive minute "
        "boundaries (cron `M H * * *`, UTC).",
        "",
        "- **ours**: `jobs.scheduling.beat.JobsScheduler` as the service runs it; entries made from N active "
        "`ScheduledJob` rows (bulk_create, then `jobs.scheduling.reconcile.reconcile()`, timed below); each "
        "run is the real `jobs.run_scheduled` task with a one-step `resource.input` workflow on an empty "
        "resource (the cheapest real workflow: JobHistory row, run lock, listing, log file, status updates). "
        "Dispatch lag = `published_at` - `scheduled_for` (published_at is stamped by beat as it builds each "
        "message; kombu sends them in pipelined batches of up to 1,000, so the message reaches Redis a few "
        "milliseconds later). Beat publishes up to JOBS_SCHEDULE_LOOKAHEAD_SECONDS (5 s) early with the slot "
        "as ETA, so dispatch lag is often negative; **delivered lag** = max(published_at, scheduled_for) - "
        "scheduled_for is when the run became runnable. Start lag = `started_at` - `scheduled_for`.",
        "- **stock RedBeat**: `redbeat.RedBeatScheduler` with N `RedBeatSchedulerEntry(name, 'bench.ref_run', "
        "crontab(minute=M, hour=H), args=[job id, slot]).save()` entries. **django-celery-beat**: `DatabaseScheduler` "
        "with N `PeriodicTask` rows on `CrontabSchedule(minute=M, hour=H, timezone='UTC')` (bulk_create). Both run "
        "as bench-only subclasses (bench/refs.py) whose only change is to note `time.time()` after each publish "
        "returns (buffered, written to Redis every 0.5 s); that is their dispatch time. They publish when due, never "
        "early, so delivered lag = dispatch lag. Their task `bench.ref_run` only notes its start time in Redis, so "
        "their start lag reflects a far cheaper task than ours.",
        "- Missed = an expected (job, slot) that beat never published (ours: no JobHistory row and not left in the "
        "queue; references: no publish noted). Doubled = more than one run of a (job, slot) (ours: rows, which the "
        "unique (job, scheduled_for) constraint forbids; references: task starts). Duplicate deliveries dropped = "
        "ours' worker log lines `duplicate delivery ignored`; references: more than one publish of an entry. Beat "
        "CPU = utime+stime+cutime+cstime of the beat process from /proc (total: its whole life, start-up included; "
        "in window: from 10 s before the first boundary (before the look-ahead, for the tuned variant) to the "
        "last publish); peak RSS = VmHWM.",
        "",
        *table(results),
        "",
        "Preparation and start-up (seconds):",
        "",
        "| N | scheduler | preparation | of it reconcile() | beat ready after | ready before 1st boundary "
        "| last publish after last boundary | drain after beat stopped |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.n:,} | {LABELS[r.scheduler]} | {r.prep_seconds:.1f} | {fmt(r.reconcile_seconds, 1)} "
            f"| {fmt(r.ready_after, 1)} | {fmt(r.ready_before_first, 1)} "
            f"| {'-' if r.dispatch.get('missing') else fmt(r.dispatch_done_after_last)} "
            f"| {fmt(r.drain_seconds, 1)} |"
        )
    lines += [
        "",
        "Per boundary, dispatch lag p50 / p99 / max (s):",
        "",
        "| N | scheduler | 1st | 2nd | 3rd |",
        "|---:|---|---|---|---|",
    ]
    for r in results:
        cells = [triple(b["dispatch"]) for b in r.per_boundary] + ["-"] * (3 - len(r.per_boundary))
        lines.append(f"| {r.n:,} | {LABELS[r.scheduler]} | " + " | ".join(cells[:3]) + " |")
    lines += ["", "### Reading", "", *reading(results), ""]
    notes = [f"- {LABELS[r.scheduler]}, N = {r.n:,}: " + "; ".join(r.notes) for r in results if r.notes]
    if notes:
        lines += ["Notes from the run:", "", *notes, ""]
    if meta.get("extra"):
        lines += [meta["extra"], ""]
    return "\n".join(lines)


def write_doc(text: str) -> None:
    current = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    lines = current.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() == SECTION), None)
    if start is None:
        new = current.rstrip("\n") + "\n\n" + text.rstrip("\n") + "\n"
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        new = (
            "\n".join(
                [*lines[:start], *text.rstrip("\n").splitlines(), *([""] if end < len(lines) else []), *lines[end:]]
            )
            + "\n"
        )
    DOC.write_text(new)


# --------------------------------------------------------------------------------------------- main


def wait_for_idle(limit: float, max_wait: float) -> float:
    deadline = time.monotonic() + max_wait
    while True:
        load = os.getloadavg()[0]
        if load < limit or time.monotonic() >= deadline:
            return load
        print(f"load average {load:.2f} >= {limit}; waiting", flush=True)
        time.sleep(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", default="1000,10000,100000", help="job counts, comma-separated")
    parser.add_argument(
        "--schedulers", default=DEFAULT_SCHEDULERS, help=f"of {','.join(SCHEDULERS)} (ours-tuned: opt-in variant)"
    )
    parser.add_argument("--workers", type=int, default=4, help="worker processes (prefork concurrency)")
    parser.add_argument("--refs-max-n", type=int, default=None, help="run the references only up to this N")
    parser.add_argument("--boundaries", type=int, default=3, help="minute boundaries (3; fewer for quick tries)")
    parser.add_argument("--start-timeout", type=float, default=120, help="seconds for beat to become ready")
    parser.add_argument("--tail", type=float, default=150, help="seconds after the last boundary to finish publishing")
    parser.add_argument("--drain", type=float, default=180, help="seconds for workers to finish after beat stopped")
    parser.add_argument("--wait-idle", action="store_true", help="first wait (up to 20 min) for load average < 1")
    parser.add_argument("--no-doc", action="store_true", help="do not rewrite the section in docs/benchmarks.md")
    parser.add_argument(
        "--merge", help="results.json of an earlier run: its (scheduler, N) results not measured now go in the doc too"
    )
    parser.add_argument(
        "--render-only", metavar="RESULTS_JSON", help="only rewrite the doc section from a results.json"
    )
    args = parser.parse_args()
    if args.render_only:
        data = json.loads(Path(args.render_only).read_text())
        write_doc(render([Result(**r) for r in data["results"]], data["meta"]))
        print(f"wrote {DOC.relative_to(ROOT)} from {args.render_only}")
        return
    counts = [int(x) for x in args.n.split(",") if x]
    schedulers = [s for s in args.schedulers.split(",") if s]
    unknown = set(schedulers) - set(SCHEDULERS)
    if unknown:
        parser.error(f"unknown schedulers: {', '.join(sorted(unknown))}")

    atexit.register(stop_all)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, frame: sys.exit(128 + signum))

    load_before = wait_for_idle(1.0, 20 * 60) if args.wait_idle else os.getloadavg()[0]
    began = time.monotonic()
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    ensure_database(database_url())
    redis_url = start_redis(OUT_DIR)
    media_root = tempfile.mkdtemp(prefix="schedbench-media-")
    atexit.register(shutil.rmtree, media_root, True)
    configure_environment(redis_url, media_root)

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    instance_id, ids, seed_seconds = seed(max(counts))
    print(f"seeded {len(ids):,} jobs in {seed_seconds:.1f} s; Redis {redis_url}", flush=True)

    results: list[Result] = []
    try:
        for n in counts:
            for scheduler in schedulers:
                if not is_ours(scheduler) and args.refs_max_n is not None and n > args.refs_max_n:
                    continue
                result = run_one(scheduler, n, instance_id, ids, args)
                results.append(result)
                print(
                    json.dumps({k: v for k, v in asdict(result).items() if k != "beat_log_lines"}, default=str),
                    flush=True,
                )
    finally:
        stop_all()
        meta = {
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "total_seconds": time.monotonic() - began,
            "seed_seconds": seed_seconds,
            "machine": machine(),
            "load_before": load_before,
            "load_after": os.getloadavg()[0],
            "workers": args.workers,
            "boundaries": args.boundaries,
            "command": " ".join(["bench/scheduler.py", *sys.argv[1:]]).replace(
                "bench/scheduler.py", ".venv/bin/python bench/scheduler.py", 1
            ),
        }
        extra = []
        if args.refs_max_n is not None:
            extra.append(
                f"References were run up to N = {args.refs_max_n:,} only (time budget of the run); larger N: ours only."
            )
        if args.merge:
            prior = json.loads(Path(args.merge).read_text())
            now = {(r.scheduler, r.n) for r in results}
            kept = [Result(**r) for r in prior["results"] if (r["scheduler"], r["n"]) not in now]
            if kept:
                pm = prior["meta"]
                extra.append(
                    "Rows for "
                    + ", ".join(f"{LABELS[r.scheduler]} N = {r.n:,}" for r in kept)
                    + f" come from an earlier run with the same code and settings ({pm['date']}, `{pm['command']}`, "
                    f"{pm['total_seconds']:.0f} s, load average {pm['load_before']:.2f} -> {pm['load_after']:.2f}); "
                    "the other rows from the run described above."
                )
                results = sorted(kept + results, key=lambda r: (r.n, SCHEDULERS.index(r.scheduler)))
        meta["extra"] = "\n\n".join(extra)
        (OUT_DIR / "results.json").write_text(
            json.dumps({"meta": meta, "results": [asdict(r) for r in results]}, indent=1, default=str)
        )
        text = render(results, meta)
        print("\n" + text)
        if results and not args.no_doc:
            write_doc(text)
            print(f"\nwrote {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
