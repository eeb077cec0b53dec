"""/metrics and /readyz are the operator's: nobody outside reads metrics or per-check details without the operator's
token, including clients that come through a reverse proxy on the same host (their REMOTE_ADDR is 127.0.0.1)."""

import pytest

pytestmark = pytest.mark.usefixtures("clean_redis")

TOKEN = "op-9f1c3a7be2d54c06a8e1f3b27d9c4e5a"
PROXY_HEADERS = [
    {"HTTP_X_FORWARDED_FOR": "203.0.113.9"},
    {"HTTP_X_REAL_IP": "203.0.113.9"},
    {"HTTP_FORWARDED": "for=203.0.113.9;proto=https"},
    {"HTTP_X_FORWARDED_PROTO": "https"},
]


@pytest.fixture(autouse=True)
def _operator(settings):
    settings.METRICS_TOKEN = TOKEN
    settings.HEALTH_WORKER_PING_TIMEOUT = 0.2


def bearer(token: str = TOKEN) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


@pytest.mark.parametrize("headers", PROXY_HEADERS)
def test_it_refuses_metrics_to_a_proxied_loopback_client_without_the_token(client, db, settings, headers):
    settings.METRICS_ALLOWED_NETWORKS = ["127.0.0.0/8", "::1/128"]  # even where loopback is trusted

    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1", **headers)

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert b"pointscene_" not in response.content
    assert TOKEN.encode() not in response.content


def test_it_trusts_no_network_by_default(client, db):
    """The default: the token is the only way in, so a same-host proxy that adds no header cannot leak either."""
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 401
    assert client.get("/metrics", REMOTE_ADDR="::1").status_code == 401


def test_it_lets_an_allowed_network_scrape_directly(client, db, settings):
    settings.METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8"]

    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3", HTTP_X_FORWARDED_FOR="10.1.2.3").status_code == 401
    assert client.get("/metrics", REMOTE_ADDR="192.0.2.1").status_code == 401


def test_it_serves_metrics_to_the_token_through_a_proxy(client, db):
    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.9", **bearer())

    assert response.status_code == 200
    assert b"pointscene_active_jobs" in response.content
    assert response["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    "authorization",
    ["", "Bearer", "Bearer ", "Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", TOKEN],
)
def test_it_refuses_anything_but_the_exact_bearer_token(client, db, authorization):
    assert client.get("/metrics", HTTP_AUTHORIZATION=authorization).status_code == 401


def test_it_accepts_no_token_at_all_while_none_is_configured(client, db, settings):
    settings.METRICS_TOKEN = ""

    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer").status_code == 401


def test_it_answers_readyz_without_the_token_with_the_status_alone(client, db):
    """No beat or worker runs here: not ready. The caller learns that, and nothing of what is missing or why."""
    for extra in [{}, bearer("wrong"), {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "203.0.113.9"}]:
        response = client.get("/readyz", **extra)

        assert response.status_code == 503
        assert response.json() == {"status": "unavailable"}
        assert response["Cache-Control"] == "no-store"


def test_it_answers_readyz_with_the_token_with_every_check(client, db):
    response = client.get("/readyz", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.9", **bearer())

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert set(body["checks"]) == {"database", "redis", "schedule", "workers"}
    assert body["checks"]["database"]["ok"] is True
    assert "no worker answered" in body["checks"]["workers"]["detail"]
    assert response["Cache-Control"] == "no-store"
