"""A Celery process's own /metrics port: a worker's serves the counters of its prefork children (runs, steps,
bytes, firing lag), beat's its schedule drift, added up over the container's multiprocess folder, for Prometheus to
scrape from each machine.

Off unless METRICS_CELERY_PORT is set. It binds METRICS_CELERY_ADDRESS (loopback by default) and answers by the
same rule as the web's /metrics (jobs.health.may_scrape_environ): METRICS_TOKEN as a bearer token, or a peer in
METRICS_ALLOWED_NETWORKS that came through no proxy; anyone else gets 401. The state gauges (active jobs, runs in
progress, queue depth) are the web's alone: read from the database, they are the same from any process.
"""

import logging
import os
import threading
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from celery.signals import beat_init, worker_init, worker_process_shutdown
from django.conf import settings
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess

from jobs import health
from pointscene import procmetrics

log = logging.getLogger(__name__)


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass  # one line per scrape is noise; failures show in Prometheus's target page


def exposition() -> bytes:
    """This worker's counters: every process of its folder (multiprocess mode), or this process's own."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def application(environ: dict, start_response) -> list[bytes]:
    """WSGI: GET /metrics only, for those who may scrape."""
    if environ.get("PATH_INFO") != "/metrics" or environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]
    if not health.may_scrape_environ(environ):
        start_response(
            "401 Unauthorized", [("Content-Type", "text/plain"), ("WWW-Authenticate", 'Bearer realm="metrics"')]
        )
        return [b"Metrics need the operator's token (Authorization: Bearer ...).\n"]
    start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST), ("Cache-Control", "no-store")])
    return [exposition()]


def serve(address: str, port: int) -> WSGIServer:
    """Serve application on address:port from a daemon thread; returns the server (its port, to stop it)."""
    server = make_server(address, port, application, server_class=_Server, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="metrics-server", daemon=True).start()
    return server


def serve_from_settings() -> WSGIServer | None:
    """The port as settings say (None while METRICS_CELERY_PORT is 0). Called in a worker's main process before it
    forks its pool, and in beat (worker_init, beat_init below)."""
    if not settings.METRICS_CELERY_PORT:
        return None
    server = serve(settings.METRICS_CELERY_ADDRESS, settings.METRICS_CELERY_PORT)
    log.info("metrics at http://%s:%s/metrics", settings.METRICS_CELERY_ADDRESS, server.server_port)
    return server


# Connected when the worker imports the task modules (jobs.tasks imports this one), before worker_init is sent.


@worker_init.connect(dispatch_uid="jobs.metrics_port.serve")
def _serve_worker_metrics(**kwargs) -> None:
    serve_from_settings()


@beat_init.connect(dispatch_uid="jobs.metrics_port.serve_beat")
def _serve_beat_metrics(**kwargs) -> None:
    serve_from_settings()


@worker_process_shutdown.connect(dispatch_uid="jobs.metrics_port.forget")
def _forget_pool_process(pid: int | None = None, **kwargs) -> None:
    # A prefork child exits (max-tasks-per-child, shutdown): its live gauges leave the folder with it.
    procmetrics.forget_process(pid or os.getpid())
