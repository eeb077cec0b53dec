"""/healthz and /readyz in process: the real database and the session's Redis, no worker or beat running (so
readiness says exactly what is missing). tests/e2e/test_health.py checks the ready answer with real processes."""

from datetime import UTC, datetime, timedelta

import pytest

from jobs.scheduling.reconcile import marker_key, reconcile
from pointscene.core.connections import redis_client
from tests.fixtures.redbeat import redis_client as redbeat_client

pytestmark = pytest.mark.usefixtures("clean_redis")


@pytest.fixture(autouse=True)
def _quick_ping(settings):
    settings.HEALTH_WORKER_PING_TIMEOUT = 0.2
    # The per-check details are for the operator's token (tests/security/test_ops_endpoints.py).
    settings.METRICS_TOKEN = "operator-0123456789"


def readyz(client):
    return client.get("/readyz", HTTP_AUTHORIZATION="Bearer operator-0123456789")


def test_it_answers_healthz_without_asking_anything(client, db, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_it_is_not_ready_without_a_beat_or_a_worker_and_says_why(client, db):
    response = readyz(client)

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["redis"]["ok"] is True
    assert body["checks"]["schedule"]["ok"] is False
    assert "no beat has reconciled" in body["checks"]["schedule"]["detail"]
    assert body["checks"]["workers"]["ok"] is False
    assert "no worker answered" in body["checks"]["workers"]["detail"]


def test_it_counts_a_reconcile_older_than_twice_the_period_as_stale(client, db, settings):
    settings.JOBS_RECONCILE_SECONDS = 60
    stale = datetime.now(UTC) - timedelta(seconds=200)
    redbeat_client().set(marker_key(), stale.isoformat())

    body = readyz(client).json()

    assert body["checks"]["schedule"]["ok"] is False
    assert "limit 180 s" in body["checks"]["schedule"]["detail"]

    redbeat_client().set(marker_key(), datetime.now(UTC).isoformat())
    assert readyz(client).json()["checks"]["schedule"]["ok"] is True


@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_it_only_answers_get(client, method):
    assert getattr(client, method)("/healthz").status_code == 405
    assert getattr(client, method)("/readyz").status_code == 405


def test_it_reads_the_reconcile_marker_where_beat_writes_it_when_redbeat_has_its_own_redis(
    client, db, separate_redbeat_redis
):
    reconcile()

    body = readyz(client).json()

    assert separate_redbeat_redis.get(marker_key()) is not None
    assert redis_client().get(marker_key()) is None
    assert body["checks"]["schedule"]["ok"] is True, body["checks"]["schedule"]
