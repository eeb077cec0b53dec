"""gunicorn reads this file from its working directory (the image's /app, the checkout): server hooks only; options
stay on the command line (Dockerfile's CMD, GUNICORN_CMD_ARGS)."""

from pointscene import procmetrics


def child_exit(server, worker) -> None:
    # A worker process has gone (restarted, or the server stops): its live gauges must not stay in the scrape.
    procmetrics.forget_process(worker.pid)
