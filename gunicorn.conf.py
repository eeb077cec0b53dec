"""gunicorn reads this file from its working directory (the image's /app, the checkout): server hooks only; options
stay on the command line (Dockerfile's CMD, GUNICORN_CMD_ARGS)."""

import gc

from pointscene import procmetrics


def post_worker_init(worker) -> None:
    # The application is loaded: its URLconf (every view) and the GraphQL schema are imported now rather than at
    # the first request, then everything alive is frozen out of the garbage collector's scans. A request that
    # allocates a lot (getScheduledJobs of 1,000 jobs builds ~10,000 runs) no longer pays for walking ~180,000
    # long-lived objects in its older-generation collections: p50 about a fifth lower (docs/benchmarks.md, API).
    # Imported here: gunicorn's master reads this file before Django is set up; the worker has set it up by now.
    from django.urls import get_resolver
    from graphene_django.settings import graphene_settings

    get_resolver().url_patterns  # noqa: B018 - the imports are the point
    graphene_settings.SCHEMA  # noqa: B018 - imported by its first request otherwise
    gc.freeze()


def child_exit(server, worker) -> None:
    # A worker process has gone (restarted, or the server stops): its live gauges must not stay in the scrape.
    procmetrics.forget_process(worker.pid)
