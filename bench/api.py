#!/usr/bin/env python
"""API benchmark (not a test): query counts and latency of the read operations on a seeded PostgreSQL database.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/pointscene_bench .venv/bin/python bench/api.py [--reseed]
    make bench-api

Seeds, once, 1,000,000 history rows in four instances (see SEED): "bench-deep" has 1,000 jobs with ~978 runs
each (deep history paging is measured there), "bench-jobs-1000" / "-100" / "-10" have 1,000 / 100 / 10 jobs
with 20 runs each (query counts at several job counts; the issue's literal 1,000 jobs x 20 runs). A database whose
row counts already match is reused; --reseed deletes the bench instances and seeds again. Then it measures
getScheduledJobs and getInstanceJobHistory in-process (django.test.Client) and over real HTTP (gunicorn, two sync
workers), shows EXPLAIN ANALYZE of the SQL Django generates, prints markdown and rewrites the
"## API (bench/api.py)" section of docs/benchmarks.md. Application code is only called, never changed.

The work is in bench/api_seed.py (data), bench/api_run.py (measuring) and bench/api_report.py (the section); this
file picks the database and sets Django up before they are imported.
"""

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import DOC, api_environment, smoke_doc, stop_on_exit  # noqa: E402

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/pointscene_bench"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reseed", action="store_true", help="delete the bench rows and seed them again")
    parser.add_argument("--requests", type=int, default=200, help="timed requests per history case (default 200)")
    parser.add_argument("--no-doc", action="store_true", help="print only; leave docs/benchmarks.md alone")
    parser.add_argument("--doc", type=Path, default=DOC, help="the file whose section is written (docs/benchmarks.md)")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="a quick check that the benchmark works: a few thousand rows, 5 requests a case, a private database "
        "(beside DATABASE_URL's, dropped at the end) and Redis, the section written to a temporary folder",
    )
    args = parser.parse_args()
    args.gunicorn_log = Path("/tmp/bench-api-gunicorn.log")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pointscene.settings")
    os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
    stop_on_exit()
    folder = Path(tempfile.mkdtemp(prefix="apibench-"))
    if args.smoke:
        args.requests, args.gunicorn_log = 5, folder / "gunicorn.log"
        args.doc = smoke_doc(None if args.doc == DOC else str(args.doc))
    api_environment(args.smoke, folder)  # a new database is seeded below

    import django

    django.setup()
    # Imported once Django is set up: they define querysets and read settings at import.
    from bench import api_run

    api_run.run(args)


if __name__ == "__main__":
    main()
