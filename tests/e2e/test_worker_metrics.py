"""A real worker, started through the image's entrypoint with a folder holding an earlier life's counters, serves
its prefork children's counters on its own metrics port: the runs it executed, nothing from before its start, and
only to the operator's token."""

import os
import sys
import time
import urllib.error
import urllib.request

import pytest
from prometheus_client.values import MultiProcessValue

from jobs import services
from jobs.models import FrequencyType, JobHistory, RunStatus
from tests.environment import free_port
from tests.fixtures.processes import CELERY, Process, process_env
from tests.jobs.test_metrics import sample

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

TOKEN = "worker-port-0123456789"


def scrape(port: int, token: str | None = TOKEN) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, ""


def earlier_life(folder) -> None:
    """What a previous container's worker left: 100 succeeded manual runs in a file of a PID that is gone."""
    value = MultiProcessValue(process_identifier=lambda: 999_999)(
        "counter", "pointscene_runs_total", "pointscene_runs_total", ["status", "trigger"], ["succeeded", "manual"], ""
    )
    value.inc(100)


def test_a_workers_own_port_shows_its_runs_and_only_since_its_start(instance, http_server, settings, tmp_path):
    settings.JOBS_HTTP_ALLOW_PRIVATE = True
    folder = tmp_path / "metrics"
    folder.mkdir()
    port = free_port()
    env = process_env() | {
        "PROMETHEUS_MULTIPROC_DIR": str(folder),
        "METRICS_TOKEN": TOKEN,
        "METRICS_CELERY_PORT": str(port),
        "METRICS_CELERY_ADDRESS": "127.0.0.1",
    }
    os.environ["PROMETHEUS_MULTIPROC_DIR"], saved = str(folder), os.environ["PROMETHEUS_MULTIPROC_DIR"]
    try:
        earlier_life(folder)
    finally:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = saved
    assert list(folder.glob("counter_*.db"))
    worker = Process(
        "port-worker",
        [sys.executable, "-m", "pointscene.entrypoint", CELERY, "-A", "pointscene", "worker", "--loglevel", "INFO"]
        + ["--concurrency", "2", "--without-mingle", "--without-gossip", "-n", "port@%h"],
        env,
        str(tmp_path),
    )
    try:
        worker.wait_for("ready.", 120)
        assert scrape(port, token=None)[0] == 401
        assert scrape(port, token="wrong")[0] == 401
        status, before = scrape(port)
        assert status == 200
        assert sample(before, "pointscene_runs_total", status="succeeded", trigger="manual") == 0

        job = services.create_job(
            instance=instance,
            workflow={"tasks": [{"name": "ping", "type": "http.request", "args": {"url": http_server.url("/ok")}}]},
            frequency_type=FrequencyType.INTERVAL_BASED,
            interval_minutes=60,
            active=False,
        )
        runs = []
        for _ in range(2):  # one after the other: runs of one job that overlap are skipped
            runs.append(services.run_now(job).pk)
            deadline = time.monotonic() + 60
            while JobHistory.objects.filter(pk=runs[-1], status__in=[RunStatus.QUEUED, RunStatus.RUNNING]).exists():
                assert time.monotonic() < deadline, f"the worker did not finish the run:\n{worker.output()[-3000:]}"
                time.sleep(0.2)
        status, after = scrape(port)
    finally:
        worker.stop()

    succeeded = JobHistory.objects.filter(pk__in=runs, status=RunStatus.SUCCEEDED).count()
    assert succeeded == 2
    assert sample(after, "pointscene_runs_total", status="succeeded", trigger="manual") == succeeded
    assert sample(after, "pointscene_steps_total", task_type="http.request", status="succeeded") == succeeded


def test_beat_serves_its_own_port_too(instance, http_server, settings, tmp_path):
    settings.JOBS_HTTP_ALLOW_PRIVATE = True
    # An active job its fresh schedule lacks: reconciliation on start adds it, and counts that as drift.
    services.create_job(
        instance=instance,
        workflow={"tasks": [{"name": "ping", "type": "http.request", "args": {"url": http_server.url("/ok")}}]},
        frequency_type=FrequencyType.INTERVAL_BASED,
        interval_minutes=60,
        active=True,
    )
    port = free_port()
    env = process_env() | {
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        "METRICS_TOKEN": TOKEN,
        "METRICS_CELERY_PORT": str(port),
        # Its own schedule keys and lock: it must not wait for, or take over from, another test's beat.
        "REDBEAT_KEY_PREFIX": "pointscene-test:port-beat:",
    }
    beat = Process(
        "port-beat",
        [sys.executable, "-m", "pointscene.entrypoint", CELERY, "-A", "pointscene", "beat", "--loglevel", "INFO"],
        env,
        str(tmp_path),
    )
    try:
        beat.wait_for("metrics at http://127.0.0.1:", 120)
        beat.wait_for("beat: Starting", 120)
        assert scrape(port, token=None)[0] == 401
        status, body = scrape(port)
    finally:
        beat.stop()

    assert status == 200
    assert sample(body, "pointscene_schedule_drift_total", kind="added") >= 1
