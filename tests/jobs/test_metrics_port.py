"""A worker's own metrics port (jobs.metrics_port), in process: the same access rule as the web's /metrics, and
off unless configured. tests/e2e/test_worker_metrics.py scrapes a real worker's port after real runs."""

import urllib.error
import urllib.request

import pytest

from jobs import metrics_port
from jobs.ops.metrics import RUNS

TOKEN = "worker-scrape-0123456789"


@pytest.fixture
def port(settings):
    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_ALLOWED_NETWORKS = []
    server = metrics_port.serve("127.0.0.1", 0)
    yield server.server_port
    server.shutdown()
    server.server_close()


def get(port: int, path: str = "/metrics", **headers) -> tuple[int, str, dict]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), dict(error.headers)


def test_it_serves_the_counters_to_the_operators_token(port):
    RUNS.labels(status="succeeded", trigger="manual").inc()

    status, body, headers = get(port, Authorization=f"Bearer {TOKEN}")

    assert status == 200
    assert 'pointscene_runs_total{status="succeeded",trigger="manual"}' in body
    assert headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("authorization", [None, "Bearer wrong", f"Basic {TOKEN}", "Bearer "])
def test_it_refuses_anyone_else(port, authorization):
    headers = {"Authorization": authorization} if authorization else {}

    status, body, answer = get(port, **headers)

    assert status == 401
    assert "pointscene_" not in body
    assert answer["WWW-Authenticate"] == 'Bearer realm="metrics"'


def test_it_refuses_everyone_while_no_token_is_set(port, settings):
    settings.METRICS_TOKEN = ""

    assert get(port, Authorization="Bearer ")[0] == 401
    assert get(port)[0] == 401


def test_it_lets_allowed_networks_scrape_but_never_through_a_proxy(port, settings):
    settings.METRICS_ALLOWED_NETWORKS = ["127.0.0.0/8"]

    assert get(port)[0] == 200
    assert get(port, **{"X-Forwarded-For": "203.0.113.9"})[0] == 401


def test_it_answers_only_its_one_path(port):
    assert get(port, "/", Authorization=f"Bearer {TOKEN}")[0] == 404
    assert get(port, "/metrics/../admin", Authorization=f"Bearer {TOKEN}")[0] == 404


def test_it_opens_no_port_unless_configured(settings):
    settings.METRICS_CELERY_PORT = 0

    assert metrics_port.serve_from_settings() is None


def test_it_binds_loopback_by_default():
    from django.conf import settings

    assert settings.METRICS_CELERY_ADDRESS == "127.0.0.1"
