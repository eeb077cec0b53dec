#!/usr/bin/env python
"""Scheduler benchmark (not a test): N cron jobs due at the next three minute boundaries, real beat and workers.

    .venv/bin/python bench/scheduler.py [--n 1000,10000,100000] [--schedulers ours,redbeat,dcb] [--workers 4]
    make bench-scheduler

For each N and scheduler, N jobs are due at three consecutive minute boundaries (N/3 each, cron "M H * * *" in
UTC), one real `celery beat` and one real `celery worker` (K prefork processes) run against PostgreSQL
(database `pointscene_schedbench`, created and owned by this benchmark) and a private redis-server on a free port
(started here, stopped on exit). Schedulers:

- ours: `jobs.scheduling.beat.JobsScheduler`, unchanged, with the service's settings; entries made by
  `jobs.scheduling.reconcile.reconcile()` from N active `ScheduledJob` rows whose workflow is one `resource.input`
  step on an empty resource (the cheapest real workflow). Each run writes a JobHistory row with scheduled_for,
  published_at (beat's send time, passed in the message) and started_at.
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
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import fleet_report  # noqa: E402
from bench.harness import (  # noqa: E402
    DOC,
    ROOT,
    ensure_database,
    machine,
    postgres_version,
    private_database,
    redis_version,
    smoke_doc,
    start_redis,
    stop_all,
    stop_on_exit,
    wait_for_idle,
    write_doc,
)
from bench.scheduler_analysis import Result  # noqa: E402
from bench.scheduler_report import SECTION, render  # noqa: E402
from bench.scheduler_run import DEFAULT_SCHEDULERS, LABELS, OUT_DIR, SCHEDULERS, is_ours, run_one  # noqa: E402

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/pointscene_schedbench"


def configure_environment(database_url: str, redis_url: str, media_root: str, references: bool) -> None:
    """references: django-celery-beat's tables are needed (bench.scheduler_settings; `make bench-scheduler`
    installs it), else the service's own settings do."""
    os.environ.update(
        DATABASE_URL=database_url,
        DJANGO_SETTINGS_MODULE="bench.scheduler_settings" if references else "pointscene.settings",
        REDIS_URL=redis_url,
        MEDIA_ROOT=media_root,
        JOBS_REDIS_PREFIX="schedbench:",
        REDBEAT_KEY_PREFIX="schedbench:ours:",
        CELERY_QUEUE="schedbench-ours",
        LOG_LEVEL="INFO",
        PYTHONUNBUFFERED="1",
        PYTHONPATH=str(ROOT),
    )


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


def report(results: list[Result], meta: dict) -> tuple[str, str]:
    """The section the results belong in, and its text: several worker machines have their own."""
    if meta.get("machines", 1) > 1:
        return fleet_report.SECTION, fleet_report.render(results, meta)
    return SECTION, render(results, meta)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", default="1000,10000,100000", help="job counts, comma-separated")
    parser.add_argument(
        "--schedulers", default=DEFAULT_SCHEDULERS, help=f"of {','.join(SCHEDULERS)} (ours-tuned: opt-in variant)"
    )
    parser.add_argument("--workers", type=int, default=4, help="worker processes (prefork concurrency)")
    parser.add_argument(
        "--machines",
        type=int,
        default=1,
        help='worker "machines": this many workers of --workers processes each; above 1, the report is the Fleet '
        "section (bench/fleet_report.py)",
    )
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
    parser.add_argument("--lead", type=float, default=35.0, help="least seconds of start-up before the 1st boundary")
    parser.add_argument("--doc", type=Path, default=DOC, help="the file whose section is written (docs/benchmarks.md)")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="a quick check that the benchmark works: 9 jobs of ours due at one boundary (up to a minute away), "
        "1 worker process, a private database dropped at the end, results and section in a temporary folder",
    )
    args = parser.parse_args()
    if args.render_only:
        data = json.loads(Path(args.render_only).read_text())
        results = [Result(**r) for r in data["results"]]
        write_doc(*report(results, data["meta"]), args.doc)
        print(f"wrote {args.doc} from {args.render_only}")
        return
    if args.smoke:
        args.n, args.schedulers, args.workers, args.boundaries = "9", "ours", 1, 1
        args.lead, args.start_timeout, args.tail, args.drain = 12.0, 60.0, 20.0, 20.0
        args.doc = smoke_doc(None if args.doc == DOC else str(args.doc))
    counts = [int(x) for x in args.n.split(",") if x]
    schedulers = [s for s in args.schedulers.split(",") if s]
    unknown = set(schedulers) - set(SCHEDULERS)
    if unknown:
        parser.error(f"unknown schedulers: {', '.join(sorted(unknown))}")

    stop_on_exit()

    load_before = wait_for_idle(1.0, 20 * 60) if args.wait_idle else os.getloadavg()[0]
    began = time.monotonic()
    # A smoke run keeps out of var/bench-scheduler/ (a real run's results and logs).
    out_dir = Path(tempfile.mkdtemp(prefix="schedbench-smoke-")) if args.smoke else OUT_DIR
    if args.smoke:
        atexit.register(shutil.rmtree, out_dir, True)
    out_dir.mkdir(parents=True, exist_ok=True)
    database_url = os.environ.get("BENCH_DATABASE_URL") or DEFAULT_DATABASE_URL
    if args.smoke:
        database_url = private_database(database_url)
    else:
        ensure_database(database_url)
    redis_url = start_redis(out_dir)
    media_root = tempfile.mkdtemp(prefix="schedbench-media-")
    atexit.register(shutil.rmtree, media_root, True)
    configure_environment(database_url, redis_url, media_root, not all(is_ours(s) for s in schedulers))

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
                result = run_one(scheduler, n, instance_id, ids, args, out_dir)
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
            "machine": machine(
                [f"PostgreSQL {postgres_version(database_url)}", f"Redis {redis_version()}"],
                ["Django", "Celery", "celery-redbeat", "django-celery-beat"][: 4 if "dcb" in schedulers else 3],
            ),
            "load_before": load_before,
            "load_after": os.getloadavg()[0],
            "workers": args.workers,
            "machines": args.machines,
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
        (out_dir / "results.json").write_text(
            json.dumps({"meta": meta, "results": [asdict(r) for r in results]}, indent=1, default=str)
        )
        section, text = report(results, meta)
        print("\n" + text)
        if results and not args.no_doc:
            write_doc(section, text, args.doc)
            print(f"\nwrote {args.doc}")


if __name__ == "__main__":
    main()
