"""bench/scheduler.py's one run: N jobs of one scheduler made due at the next minute boundaries, a real beat and
worker started, the dispatch watched until done, the workers drained, then the results analysed."""

import json
import os
import re
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.harness import CELERY, ROOT, Process, ProcSampler, group_cpu
from bench.scheduler_analysis import Result, analyse_ours, analyse_ref, beat_published, finished_runs, queued_runs

OUT_DIR = ROOT / "var" / "bench-scheduler"
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


def choose_boundaries(scheduler: str, n: int, count: int, lead_base: float = LEAD_BASE) -> list[datetime]:
    lead = lead_base + n * LEAD_PER_JOB[scheduler]
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


def run_one(scheduler: str, n: int, instance_id: int, all_ids: list[int], args, out_dir: Path) -> Result:
    import redis
    from django.conf import settings

    result = Result(scheduler=scheduler, n=n, workers=args.workers, machines=args.machines)
    logdir = out_dir / f"{scheduler}-{n}"
    shutil.rmtree(logdir, ignore_errors=True)
    logdir.mkdir(parents=True)
    result.logdir = str(logdir.relative_to(ROOT) if logdir.is_relative_to(ROOT) else logdir)
    client = redis.Redis.from_url(settings.REDIS_URL, decode_responses=True)
    env = child_env(scheduler)
    ref_key = env["BENCH_REF_KEY"]
    queue = env["CELERY_QUEUE"]

    boundaries = choose_boundaries(scheduler, n, args.boundaries, args.lead)
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
    worker_args += ["--pool", "prefork", "-Q", queue, "--without-mingle", "--without-gossip"]
    beat_args = [CELERY, "-A", "pointscene", "beat", "--loglevel", "INFO"]
    if is_ours(scheduler):
        beat_args += ["-S", "jobs.scheduling.beat.JobsScheduler"]
    else:
        worker_args += ["-I", "bench.refs"]
        beat_args += [
            "-S",
            "bench.refs.NotingRedBeatScheduler" if scheduler == "redbeat" else "bench.refs.NotingDatabaseScheduler",
        ]

    # Each "machine" is a worker of its own (its own node name, consumer and pool) on the shared broker.
    names = [f"{scheduler}@%h"] if args.machines == 1 else [f"{scheduler}-m{i}@%h" for i in range(args.machines)]
    workers = [
        Process("worker" if len(names) == 1 else f"worker-m{i}", [*worker_args, "-n", name], env, logdir)
        for i, name in enumerate(names)
    ]
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
        workers_cpu = sum(group_cpu(w.pid) for w in workers)
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
        result.worker_cpu = sum(group_cpu(w.pid) for w in workers) - workers_cpu
    finally:
        if sampler is not None:
            sampler.stop()
        if beat is not None:
            beat.stop()
        for worker in workers:
            worker.stop(timeout=60)
    cutoff = time.time()
    queued = queued_runs(client, queue)
    result.not_run_at_cutoff = len(queued)
    if is_ours(scheduler):
        analyse_ours(result, instance_id, slots, queued, cutoff, beat.output(), "".join(w.output() for w in workers))
    else:
        analyse_ref(result, slots, queued, cutoff, client, ref_key, beat.output())
    return result
