"""Listing jobs costs a fixed number of SQL queries, however many jobs and runs there are."""

from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from jobs import services
from jobs.models import FrequencyType, JobHistory

pytestmark = pytest.mark.smoke

GET_JOBS = (Path(__file__).resolve().parents[2] / "docs/contract/examples/get_jobs.graphql").read_text()


def add_jobs(instance, workflow, count: int, runs_each: int) -> None:
    for n in range(count):
        job = services.create_job(
            instance=instance, workflow=workflow, frequency_type=FrequencyType.INTERVAL_BASED, interval_minutes=n + 1
        )
        JobHistory.objects.bulk_create(JobHistory(job=job, instance=instance) for _ in range(runs_each))


def queries_for_get_jobs(api, token, instance) -> tuple[int, dict]:
    document = GET_JOBS.replace('"7"', f'"{instance.pk}"')
    with CaptureQueriesContext(connection) as queries:
        status, body = api.gql(document, token=token)
    assert status == 200, body
    return len(queries), body


def test_it_lists_jobs_in_constant_queries(api, acme_token, instance, workflow):
    add_jobs(instance, workflow, 2, runs_each=3)
    few, body = queries_for_get_jobs(api, acme_token, instance)
    assert len(body["data"]["getScheduledJobs"]) == 2

    add_jobs(instance, workflow, 40, runs_each=15)
    many, body = queries_for_get_jobs(api, acme_token, instance)

    jobs = body["data"]["getScheduledJobs"]
    assert len(jobs) == 42
    assert all(len(job["history"]) == (3 if i < 2 else 10) for i, job in enumerate(jobs))
    assert many == few
    # token lookup, linked instances, jobs, latest runs per job: nothing per job.
    assert many <= 5


def test_it_lists_each_jobs_latest_runs_newest_first(api, acme_token, instance, job):
    runs = JobHistory.objects.bulk_create(JobHistory(job=job, instance=instance) for _ in range(12))

    _, body = queries_for_get_jobs(api, acme_token, instance)

    listed = [int(run["id"]) for run in body["data"]["getScheduledJobs"][0]["history"]]
    assert listed == sorted((r.pk for r in runs), reverse=True)[:10]
