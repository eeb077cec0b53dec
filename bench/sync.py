#!/usr/bin/env python
"""Sync benchmark (not a test): a scheduled rclone.sync job run against bare `rclone sync`, same tree, same server.

    .venv/bin/python bench/sync.py [--reps 5] [--trigger schedule|now] [--variants bare,job-cmd,job]
    make bench-sync

The tree: 10,000 files of 1-64 KiB (sizes uniform, content from random.Random(seed), 100 folders of 100) plus 20
files of 50 MiB, generated once under a private work folder and removed at the end. The destination: `rclone serve
s3` (the pinned binary, default server options, --auth-key) over a fresh folder with one bucket. Each variant syncs
the tree into an empty prefix of that bucket (full), then runs again with nothing changed (incremental):

- bare: `rclone sync here:TREE bench:bucket/bare-N` with the job's own flags minus its log flags (--use-json-log
  --log-level --stats --stats-log-level), the same two remotes in a plain (unencrypted) config file, output to a
  file.
- job-cmd: the exact argv and environment a job's step builds (jobs.sync.rclone.step_command/_env: encrypted config,
  RCLONE_CONFIG_PASS, JSON log), run directly with its output going to a file: rclone's own cost of the job's
  flags, without the service.
- pipe (opt-in): the same, its output read through a pipe line by line by this process as session.run_rclone does
  (parse, format, redact, RunLog): the log streaming without Celery, Django or the database.
- pipe-batched (opt-in): as pipe, but reading whatever piled up every --batch-seconds (a suggested change).

--verbose sets the task's args.verbose (a log line per file) for the job and the job's command alike.
- job: a ScheduledJob whose one task is `rclone.sync` [here:TREE, bench:bucket/job-N], its cron set to the next
  minute boundary, fired by a real `celery beat` (jobs.scheduling.beat.JobsScheduler) and run by a real `celery worker`
  (--trigger now: runScheduledJob's run_now instead). Time = JobHistory finished_at - started_at.

Variants alternate their order across repetitions (rotation), with a sync(2) and a pause before each measurement.
PostgreSQL database `pointscene_syncbench` (created here), a private redis-server on a free port. Results go to
var/bench-sync/ (JSON, logs) and the "## Sync (bench/sync.py)" section of docs/benchmarks.md. Application code is
only called, never changed.
"""

import argparse
import atexit
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (  # noqa: E402
    DOC,
    ROOT,
    ensure_database,
    machine,
    postgres_version,
    private_database,
    smoke_doc,
    start_redis,
    stop_all,
    stop_on_exit,
    write_doc,
)
from bench.sync_fixtures import (  # noqa: E402
    FULL,
    SMOKE,
    first_call_cost,  # noqa: E402
    generate_tree,
    log_flags_of,
    serve_s3,
    streaming_cost,
)
from bench.sync_report import render, section_for  # noqa: E402
from bench.sync_runs import DEFAULT_VARIANTS, VARIANTS, Bench, Measurement  # noqa: E402

OUT_DIR = ROOT / "var" / "bench-sync"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/pointscene_syncbench"


def configure_environment(database_url: str, redis_url: str, workdir: Path) -> None:
    """The settings the benchmark, the worker and beat share (the children inherit os.environ)."""
    from cryptography.fernet import Fernet

    os.environ.update(
        DATABASE_URL=database_url,
        DJANGO_SETTINGS_MODULE="pointscene.settings",
        REDIS_URL=redis_url,
        VAR_DIR=str(workdir / "var"),
        MEDIA_ROOT=str(workdir / "media"),
        CONFIG_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        CONFIGS_DEV_KEY="0",
        # The tenant rules as in production: the loopback S3 server is let through by an explicit exception
        # (JOBS_EGRESS_ALLOW, set once the server has its port), so every byte still crosses the egress proxy.
        CONFIGS_ALLOW_LOCAL_REMOTES="0",
        JOBS_REDIS_PREFIX="syncbench:",
        REDBEAT_KEY_PREFIX="syncbench:redbeat:",
        CELERY_QUEUE="syncbench",
        LOG_LEVEL="INFO",
        PYTHONUNBUFFERED="1",
        PYTHONPATH=str(ROOT),
    )


def describe_machine(database_url: str) -> str:
    from configs import rclone

    version = subprocess.run([rclone.binary(), "version"], capture_output=True, text=True).stdout.split()[1]
    disk = subprocess.run(["df", "-h", "--output=source,fstype", "/tmp"], capture_output=True, text=True).stdout
    return machine(
        [f"rclone {version}", f"PostgreSQL {postgres_version(database_url).split()[0]}"],
        ["Django", "Celery"],
        where=f"work folder on {' '.join(disk.split()[2:])}",
    )


def code_version() -> str:
    """The commit and a digest of the files whose code the job run goes through (the working tree may differ)."""
    import hashlib

    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout
    files = [
        "jobs/sync/rclone.py",
        "jobs/sync/session.py",
        "jobs/running/runner.py",
        "jobs/running/logs.py",
        "configs/runtime.py",
        "configs/rclone.py",
        "jobs/tasktypes/rclone_sync.py",
    ]
    digest = hashlib.sha256(b"".join((ROOT / f).read_bytes() for f in files)).hexdigest()[:12]
    state = " plus uncommitted changes" if dirty.strip() else ""
    return f"commit {head.stdout.strip()}{state}; sha256 of {', '.join(files)}: {digest}"


# --------------------------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=5, help="repetitions of every variant (full + incremental)")
    parser.add_argument("--variants", default=DEFAULT_VARIANTS, help=f"of {','.join(VARIANTS)} (pipe: opt-in)")
    parser.add_argument("--incrementals", type=int, default=1, help="incremental runs after each full one")
    parser.add_argument("--verbose", action="store_true", help="the job's args.verbose: a log line per file")
    parser.add_argument("--batch-seconds", type=float, default=0.1, help="pipe-batched: seconds between reads")
    parser.add_argument("--results", default="results.json", help="file name under var/bench-sync/ for the results")
    parser.add_argument("--trigger", choices=("schedule", "now"), default="schedule", help="how job runs start")
    parser.add_argument("--workers", type=int, default=2, help="worker prefork processes (Procfile's default: 2)")
    parser.add_argument("--seed", type=int, default=20261128, help="seed of the tree's sizes and content")
    parser.add_argument("--settle", type=float, default=3.0, help="pause (s) before each measurement, after sync(2)")
    parser.add_argument("--quiet", type=float, default=0.3, help="start measuring when others use < this many cores")
    parser.add_argument("--quiet-wait", type=float, default=180, help="... waiting at most this many seconds")
    parser.add_argument("--slot-margin", type=float, default=15.0, help="least seconds between setting and slot")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for one job run")
    parser.add_argument(
        "--rtt-ms",
        type=float,
        default=0.0,
        help="a network round trip to the server: every variant reaches it through bench/delayline.py, which holds "
        "each chunk rtt/2 ms each way; results go to their own section",
    )
    parser.add_argument("--workdir", help="parent of the work folder (default: the system's temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (tree, server data, logs)")
    parser.add_argument("--no-doc", action="store_true", help="do not write the section in docs/benchmarks.md")
    parser.add_argument("--render-only", metavar="RESULTS_JSON", help="only rewrite the doc section from results")
    parser.add_argument("--doc", type=Path, default=DOC, help="the file whose section is written (docs/benchmarks.md)")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="a quick check that the benchmark works: a tree of a few files, 1 repetition, runs started with "
        "run_now, a private database dropped at the end, results and section in a temporary folder",
    )
    args = parser.parse_args()
    if args.render_only:
        data = json.loads(Path(args.render_only).read_text())
        results = [Measurement(**m) for m in data["results"]]
        write_doc(section_for(data["meta"]), render(results, data["meta"]), args.doc)
        print(f"wrote {args.doc} from {args.render_only}")
        return
    if args.smoke:
        args.reps, args.trigger, args.workers, args.settle, args.quiet_wait = 1, "now", 1, 0.0, 0.0
        args.timeout = min(args.timeout, 120.0)
        args.doc = smoke_doc(None if args.doc == DOC else str(args.doc))
    shape = SMOKE if args.smoke else FULL
    variants = [v for v in args.variants.split(",") if v]
    if set(variants) - set(VARIANTS) or not variants:
        parser.error(f"variants are of {', '.join(VARIANTS)}")

    parent = Path(args.workdir or tempfile.gettempdir())
    need = shape.bytes_at_most() * 2 + (2 << 30)
    if shutil.disk_usage(parent).free < need:
        sys.exit(f"{parent} has less than {need / 2**30:.1f} GiB free (tree + one destination + room)")
    workdir = Path(tempfile.mkdtemp(prefix="syncbench-", dir=parent))
    if not args.keep:
        atexit.register(shutil.rmtree, workdir, True)
    stop_on_exit()  # stops them before the removal (atexit is last in, first out)
    # A smoke run keeps out of var/bench-sync/ (a real run's results) and measures nothing worth a lock.
    out_dir = workdir / "out" if args.smoke else OUT_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    if not args.smoke:
        # Two of these at once would share the database and the machine's two cores, and measure each other.
        lock = (out_dir / ".lock").open("w")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            sys.exit("another bench/sync.py is running on this machine; wait for it to end")
    stem = Path(args.results).stem
    logdir = out_dir / ("logs" if stem == "results" else f"logs-{stem}")
    shutil.rmtree(logdir, ignore_errors=True)
    logdir.mkdir()
    began = time.monotonic()

    database_url = os.environ.get("BENCH_DATABASE_URL") or DEFAULT_DATABASE_URL
    if args.smoke:
        database_url = private_database(database_url)
    else:
        ensure_database(database_url)
    redis_url = start_redis(logdir)
    configure_environment(database_url, redis_url, workdir)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    if args.verbose:
        from dataclasses import fields

        from jobs.sync.rclone import SyncSpec

        if "verbose" not in {f.name for f in fields(SyncSpec)}:
            sys.exit("--verbose: this code's rclone.sync has no verbose option")

    print(f"work folder {workdir}; generating the tree", flush=True)
    started = time.monotonic()
    tree = workdir / "tree"
    expected = generate_tree(tree, args.seed, shape)
    generate_seconds = time.monotonic() - started
    print(f"  {expected[0]:,} files, {expected[1]:,} bytes in {generate_seconds:.1f} s", flush=True)
    server = serve_s3(workdir / "s3", logdir, args.rtt_ms)
    bench = Bench(args, workdir, logdir, tree, expected, server)
    bench.prepare_service()
    if "job" in variants:
        bench.start_celery()

    # Untimed: reads the tree into the page cache and warms the server, so the first measurement is not the odd one.
    print("warm-up sync (untimed)", flush=True)
    bench.run_direct("bare", 0, 0)

    load_before = os.getloadavg()[0]
    code_at_start = code_version()
    sample, _ = bench.command("job-cmd", "bench:bucket/sample", Path(tempfile.mkdtemp(dir=workdir)))
    log_flags = " ".join(log_flags_of(sample))
    results: list[Measurement] = []
    for rep in range(1, args.reps + 1):
        shift = (rep - 1) % len(variants)
        order = variants[shift:] + variants[:shift]
        print(f"repetition {rep}: {', '.join(order)}", flush=True)
        for position, variant in enumerate(order):
            if variant == "job":
                results += bench.run_job(rep, position)
            else:
                results += bench.run_direct(variant, rep, position)
    results = [m for m in results if m.rep > 0]

    streaming = None
    captured = logdir / "job-cmd-1-full.log"
    if captured.exists():
        streaming = streaming_cost(captured, bench.sections, server.password)
    meta = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "total_seconds": time.monotonic() - began,
        "generate_seconds": generate_seconds,
        "machine": describe_machine(database_url),
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
        "command": " ".join([".venv/bin/python bench/sync.py", *sys.argv[1:]]),
        "files": expected[0],
        "bytes": expected[1],
        "seed": args.seed,
        "shape": asdict(shape),
        "reps": args.reps,
        "incrementals": args.incrementals,
        "batch_seconds": args.batch_seconds,
        "verbose": args.verbose,
        "log_flags": log_flags,
        "settle": args.settle,
        "slot_margin": args.slot_margin,
        "trigger": args.trigger,
        "workers": args.workers,
        "quiet": args.quiet,
        "quiet_wait": args.quiet_wait,
        "code": code_at_start,
        "rtt_ms": args.rtt_ms,
        "all_verified": all(m.verified for m in results if m.phase == "full"),
        "streaming": streaming,
        "first_call": first_call_cost(),
        "extra": "",
    }
    if code_version().rsplit(": ", 1)[1] != code_at_start.rsplit(": ", 1)[1]:
        meta["extra"] = (
            f"Those files changed during the run (at the end: {code_version()}). The worker, beat and this process "
            "imported the code when they started (jobs.sync.rclone at their first sync), so the runs measured the "
            "code at "
            "the start."
        )
    for m in results:
        if m.phase == "full" and not m.verified:
            m.notes.append("the destination did not hold the whole tree after the full run")
        if m.phase == "incremental" and m.transfers:
            m.notes.append(f"the incremental run transferred {m.transfers} files")
    (out_dir / args.results).write_text(
        json.dumps({"meta": meta, "results": [asdict(m) for m in results]}, indent=1, default=str)
    )
    stop_all()
    text = render(results, meta)
    print("\n" + text)
    if not args.no_doc:
        write_doc(section_for(meta), text, args.doc)
        print(f"\nwrote {args.doc}")


if __name__ == "__main__":
    main()
