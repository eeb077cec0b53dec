#!/usr/bin/env python
"""Prune benchmark (not a test): jobs.retention.prune deleting 1,000,000 old runs and their log files on PostgreSQL
while the newest history page is read over HTTP; page latency by phase, lock waits, runs/s and files/s.

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/pointscene_prunebench .venv/bin/python bench/prune.py
    make bench-prune

Every run seeds afresh (the prune consumes the data): one instance, 1,000 jobs, 1,000,000 runs past retention with
~990,000 small log files in a temporary MEDIA_ROOT (local storage), and 30,000 recent runs that stay. Then the
reader and the lock sampler start, and the prune runs as the jobs.prune_history task runs it. It prints markdown and
rewrites the "## Prune (bench/prune.py)" section of docs/benchmarks.md. Application code is only called.

The work is in bench/prune_seed.py (data), bench/prune_run.py (measuring) and bench/prune_report.py (the section);
this file picks the database, the storage folder and sets Django up before they are imported.
"""

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import DOC, api_environment, smoke_doc, stop_on_exit  # noqa: E402

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/pointscene_prunebench"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--settle", type=float, default=30, help="seconds of reading before and after (default 30)")
    parser.add_argument("--no-doc", action="store_true", help="print only; leave docs/benchmarks.md alone")
    parser.add_argument("--doc", type=Path, default=DOC, help="the file whose section is written (docs/benchmarks.md)")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="a quick check that the benchmark works: 3,000 old runs, 2 s phases, a private database (beside "
        "DATABASE_URL's, dropped at the end) and Redis, the section written to a temporary folder",
    )
    args = parser.parse_args()
    args.gunicorn_log = Path("/tmp/bench-prune-gunicorn.log")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pointscene.settings")
    url = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    os.environ["DATABASE_URL"] = url
    stop_on_exit()
    folder = Path(tempfile.mkdtemp(prefix="prunebench-"))
    if args.smoke:
        args.settle, args.gunicorn_log = 2, folder / "gunicorn.log"
        args.doc = smoke_doc(None if args.doc == DOC else str(args.doc))
    api_environment(args.smoke, folder)
    # Logs on the local storage in a folder of this run's own (gunicorn inherits it); no S3 even if configured.
    os.environ["MEDIA_ROOT"] = str(folder / "media")
    os.environ.pop("STORAGE_S3_BUCKET", None)

    import django

    django.setup()
    from bench import prune_run

    try:
        prune_run.run(args)
    finally:
        shutil.rmtree(folder / "media", ignore_errors=True)


if __name__ == "__main__":
    main()
