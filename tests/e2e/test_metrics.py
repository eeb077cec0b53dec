"""/metrics after runs by a real worker process: its counters reach the web process's scrape through the shared
PROMETHEUS_MULTIPROC_DIR, as in a deployment."""

import json
import time

import pytest

from jobs import services
from jobs.models import FrequencyType, JobHistory, RunStatus
from tests.jobs.test_metrics import TOKEN, sample, scrape

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_a_workers_runs_show_in_the_scrape(processes, client, instance, http_server, settings):
    settings.JOBS_HTTP_ALLOW_PRIVATE = True
    settings.METRICS_TOKEN = TOKEN
    job = services.create_job(
        instance=instance,
        workflow={"tasks": [{"name": "ping", "type": "http.request", "args": {"url": http_server.url("/ok")}}]},
        frequency_type=FrequencyType.INTERVAL_BASED,
        interval_minutes=60,
        active=False,
    )
    before = scrape(client)

    runs = [services.run_now(job).pk for _ in range(3)]
    deadline = time.monotonic() + 60
    while JobHistory.objects.filter(pk__in=runs, status__in=[RunStatus.QUEUED, RunStatus.RUNNING]).exists():
        assert time.monotonic() < deadline, "the worker did not finish the runs"
        time.sleep(0.2)
    after = scrape(client)

    finished = JobHistory.objects.filter(pk__in=runs)
    succeeded = finished.filter(status=RunStatus.SUCCEEDED).count()
    skipped = finished.filter(status=RunStatus.SKIPPED).count()  # runs of one job may overlap
    assert succeeded >= 1
    assert (
        sample(after, "pointscene_runs_total", status="succeeded", trigger="manual")
        - sample(before, "pointscene_runs_total", status="succeeded", trigger="manual")
        == succeeded
    )
    assert (
        sample(after, "pointscene_runs_total", status="skipped", trigger="manual")
        - sample(before, "pointscene_runs_total", status="skipped", trigger="manual")
        == skipped
    )
    assert sample(after, "pointscene_steps_total", task_type="http.request", status="succeeded") >= succeeded

    # The worker logs JSON lines, and those about a run carry its job, run and instance ids.
    lines = [json.loads(line) for line in processes["worker"].output().splitlines() if line.startswith("{")]
    ended = [line for line in lines if line["message"].startswith("run ended") and line.get("run_id") in runs]
    assert len(ended) == len(runs)
    assert {(line["job_id"], line["instance_id"]) for line in ended} == {(job.pk, instance.pk)}
