"""/readyz with a real beat and worker (ready once beat has reconciled and a worker answers), and Flower."""

import io
import json
import os
import subprocess
import sys
import time

import pytest
import requests
from django.core.management import call_command

from jobs import services
from jobs.models import FrequencyType, JobHistory, RunStatus
from tests.environment import free_port
from tests.fixtures.processes import CELERY, process_env

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_it_is_ready_with_a_beat_and_a_worker_running(processes, client, settings):
    settings.METRICS_TOKEN = "operator-0123456789"  # the per-check details are the operator's
    deadline = time.monotonic() + 60
    while (response := client.get("/readyz", HTTP_AUTHORIZATION="Bearer operator-0123456789")).status_code != 200:
        assert time.monotonic() < deadline, response.json()
        time.sleep(0.5)

    checks = response.json()["checks"]
    assert all(check["ok"] for check in checks.values()), checks
    assert "answered" in checks["workers"]["detail"]
    # compose's beat healthcheck passes for a real beat: it ticks, touching its heartbeat file.
    out = io.StringIO()
    call_command("beat_health", stdout=out)
    assert json.loads(out.getvalue())["detail"].startswith("ticked")


def test_flower_sees_the_workers_and_their_runs(processes, instance, http_server, settings, tmp_path):
    """Flower against the deployment as it is (events are on in settings): the worker and its tasks show up. As in
    compose.yaml: through the image's entrypoint, the broker only (no app, no settings), no secret in its environment,
    FLOWER_BASIC_AUTH empty."""
    settings.JOBS_HTTP_ALLOW_PRIVATE = True
    port = free_port()
    env = {"PATH": os.environ["PATH"], "FLOWER_BASIC_AUTH": "", "FLOWER_UNAUTHENTICATED_API": "true"}
    flower = subprocess.Popen(
        [sys.executable, "-m", "pointscene.entrypoint", CELERY, "--broker", process_env()["REDIS_URL"], "flower"]
        + [f"--port={port}", "--address=127.0.0.1"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        job = services.create_job(
            instance=instance,
            workflow={"tasks": [{"name": "ping", "type": "http.request", "args": {"url": http_server.url("/ok")}}]},
            frequency_type=FrequencyType.INTERVAL_BASED,
            interval_minutes=60,
            active=False,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                workers = requests.get(f"http://127.0.0.1:{port}/api/workers?refresh=1", timeout=10).json()
                if workers:
                    break
            except (requests.ConnectionError, ValueError):
                pass
            assert time.monotonic() < deadline, "flower did not come up with a worker"
            time.sleep(0.5)
        run = services.run_now(job)
        while JobHistory.objects.get(pk=run.pk).status in (RunStatus.QUEUED, RunStatus.RUNNING):
            assert time.monotonic() < deadline + 60
            time.sleep(0.2)
        while True:
            tasks = requests.get(f"http://127.0.0.1:{port}/api/tasks", timeout=10).json()
            names = {t.get("name") for t in tasks.values()}
            if "jobs.run_queued" in names:
                break
            assert time.monotonic() < deadline + 90, tasks
            time.sleep(0.5)

        assert any(name.startswith("e2e@") for name in workers)
        assert any(t.get("state") == "SUCCESS" and t.get("name") == "jobs.run_queued" for t in tasks.values())
        assert os.environ.get("FLOWER_UNAUTHENTICATED_API") is None  # only the flower process was given it
    finally:
        flower.terminate()
        flower.wait(timeout=20)
