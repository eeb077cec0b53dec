"""Readiness: can this deployment run jobs right now? Each check answers in well under a second and says why
it failed, for /readyz (load balancers and operators; compose's healthchecks probe /healthz). Also who may read
the operator's views (/metrics, /readyz's details)."""

import hmac
import ipaddress
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.db import connection
from django.http import HttpRequest

from jobs.scheduling.reconcile import reconciled_at
from pointscene.celery import app
from pointscene.core.connections import redis_client


@dataclass
class Check:
    name: str
    ok: bool
    detail: str

    def as_dict(self) -> dict:
        return {"ok": self.ok, "detail": self.detail}


def _timed(name: str, probe) -> Check:
    started = time.monotonic()
    try:
        ok, detail = probe()
    except Exception as exc:  # noqa: BLE001 - any failure makes the service not ready; say which
        ok, detail = False, f"{type(exc).__name__}: {str(exc)[:200]}"
    return Check(name, ok, f"{detail} ({(time.monotonic() - started) * 1000:.0f} ms)")


def database() -> Check:
    def probe():
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return True, connection.vendor

    return _timed("database", probe)


def redis() -> Check:
    return _timed("redis", lambda: (bool(redis_client().ping()), "ping"))


def reconciled() -> Check:
    """Beat rebuilds the schedule from the database on start and every JOBS_RECONCILE_SECONDS; a stale mark
    means no beat is running (or it is stuck), so no job fires."""
    def probe():
        at = reconciled_at()
        if at is None:
            return False, "no beat has reconciled the schedule yet"
        age = (datetime.now(UTC) - at).total_seconds()
        limit = 2 * settings.JOBS_RECONCILE_SECONDS + 60
        return age <= limit, f"last reconciled {age:.0f} s ago (limit {limit} s)"

    return _timed("schedule", probe)


def workers() -> Check:
    """At least one worker answered a ping within the last WORKER_PING_CACHE seconds. Pings are broadcast over
    the broker and cost up to a second, so an answer is kept in Redis and shared by every web process."""
    key = f"{settings.JOBS_REDIS_PREFIX}workers-seen"

    def probe():
        client = redis_client()
        seen = client.get(key)
        if seen:
            return True, f"{int(seen)} worker(s) answered recently"
        answers = app.control.ping(timeout=settings.HEALTH_WORKER_PING_TIMEOUT) or []
        if answers:
            client.set(key, len(answers), ex=settings.HEALTH_WORKER_PING_CACHE)
            return True, f"{len(answers)} worker(s) answered"
        return False, "no worker answered a ping"

    return _timed("workers", probe)


def readiness() -> list[Check]:
    return [database(), redis(), reconciled(), workers()]


# --- Who may read the operator's views (/metrics, /readyz's details)

# Headers a proxy adds when it forwards a request: their presence means REMOTE_ADDR is the proxy's, not the client's.
_FORWARDING_HEADERS = ("HTTP_FORWARDED", "HTTP_X_REAL_IP", "HTTP_VIA", "HTTP_X_CLIENT_IP", "HTTP_TRUE_CLIENT_IP")


def has_operator_token(request: HttpRequest) -> bool:
    """The request carries METRICS_TOKEN as a bearer token (never true while no token is configured)."""
    return _token_in(request.META)


def _token_in(environ: Mapping[str, object]) -> bool:
    token = settings.METRICS_TOKEN
    scheme, _, presented = str(environ.get("HTTP_AUTHORIZATION", "")).partition(" ")
    if not token or scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(presented.strip().encode(), token.encode())


def from_allowed_network(request: HttpRequest) -> bool:
    """The peer is in METRICS_ALLOWED_NETWORKS and the request came through no proxy. Behind a same-host reverse
    proxy every client's REMOTE_ADDR is the proxy's loopback address, so a forwarded request never counts."""
    return _network_in(request.META)


def _network_in(environ: Mapping[str, object]) -> bool:
    if not settings.METRICS_ALLOWED_NETWORKS:
        return False
    forwarded = [name for name in environ if name.startswith("HTTP_X_FORWARDED_") or name in _FORWARDING_HEADERS]
    if forwarded:
        return False
    try:
        address = ipaddress.ip_address(str(environ.get("REMOTE_ADDR", "")))
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(network) for network in settings.METRICS_ALLOWED_NETWORKS)


def may_scrape(request: HttpRequest) -> bool:
    return may_scrape_environ(request.META)


def may_scrape_environ(environ: Mapping[str, object]) -> bool:
    """The rule of may_scrape for a bare WSGI environ (a worker's own metrics port, jobs.metrics_port): the
    same token, the same networks."""
    return _token_in(environ) or _network_in(environ)
