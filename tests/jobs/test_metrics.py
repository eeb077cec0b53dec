"""/metrics in process: access rules, and the counters a run moves (the runner called directly, as in
tests/jobs/test_runner.py). tests/e2e/test_metrics.py scrapes after runs by real worker processes."""

import re
from datetime import UTC, datetime

import pytest

from jobs import dispatch, services
from jobs.models import FrequencyType
from jobs.running import runner
from pointscene.celery import app

pytestmark = pytest.mark.usefixtures("clean_redis", "loopback_allowed", "metrics_token")

# The operator's scraper token: /metrics answers no one without it (tests/security/test_ops_endpoints.py).
TOKEN = "scrape-me-0123456789"


@pytest.fixture
def metrics_token(settings):
    settings.METRICS_TOKEN = TOKEN


def sample(text: str, name: str, **labels) -> float:
    """The value of one sample in Prometheus text format (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        match = re.match(r"^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$", line)
        if not match or match[1] != name:
            continue
        got = ",".join(sorted((match[2] or "").split(","))) if match[2] else ""
        if got == wanted:
            return float(match[3])
    return 0.0


def scrape(client, **extra) -> str:
    response = client.get("/metrics", **{"HTTP_AUTHORIZATION": f"Bearer {TOKEN}", **extra})
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    return response.content.decode()


def test_it_moves_the_run_counters_and_histograms(client, instance, http_server):
    job = services.create_job(
        instance=instance,
        workflow={"tasks": [{"name": "ping", "type": "http.request", "args": {"url": http_server.url("/ok")}}]},
        frequency_type=FrequencyType.CRON_BASED,
        cron_expression="* * * * *",
    )
    before = scrape(client)

    runner.run_scheduled(job.pk, datetime.now(UTC).replace(second=0, microsecond=0))
    failing = services.create_job(
        instance=instance,
        workflow={"tasks": [{"name": "bad", "type": "http.request", "args": {"url": http_server.url("/fail")}}]},
        frequency_type=FrequencyType.INTERVAL_BASED,
        interval_minutes=5,
    )
    runner.run_queued(services.run_now(failing).pk)
    after = scrape(client)

    def moved(name, **labels):
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert moved("pointscene_runs_total", status="succeeded", trigger="schedule") == 1
    assert moved("pointscene_runs_total", status="failed", trigger="manual") == 1
    assert moved("pointscene_steps_total", task_type="http.request", status="succeeded") == 1
    assert moved("pointscene_steps_total", task_type="http.request", status="failed") == 1
    assert moved("pointscene_run_duration_seconds_count") == 2
    assert moved("pointscene_firing_lag_seconds_count") == 1
    assert sample(after, "pointscene_active_jobs") == 2
    assert sample(after, "pointscene_runs_in_progress", status="running") == 0
    assert "pointscene_queue_depth" in after
    assert "django_http_requests_total_by_method_total" in after


def test_it_refuses_scrapers_from_elsewhere(client, db):
    response = client.get("/metrics", REMOTE_ADDR="203.0.113.9")

    assert response.status_code == 401
    assert b"pointscene_" not in response.content


def test_it_takes_a_bearer_token_when_one_is_set(client, db, settings):
    settings.METRICS_TOKEN = "scrape-me-0123456789"

    assert client.get("/metrics").status_code == 401  # loopback alone is not enough
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert "pointscene_active_jobs" in scrape(client, HTTP_AUTHORIZATION="Bearer scrape-me-0123456789")


def test_it_reports_the_queue_depth_the_dashboard_shows(client, admin_client, settings):
    settings.HEALTH_WORKER_PING_TIMEOUT = 0.1
    # Three plain messages and two with a priority, which kombu keeps in lists of their own ("<queue>\x06\x16<n>").
    for priority in (None, None, None, 3, 9):
        app.send_task(dispatch.RUN_QUEUED, args=[0], priority=priority)

    metric = sample(scrape(client), "pointscene_queue_depth")
    shown = admin_client.get("/admin/dashboard/").context["queue"]

    assert shown.ok
    assert metric == shown.waiting == 5
