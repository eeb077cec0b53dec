"""scheduledJobs: an instance's jobs a page at a time, oldest first, by keyset cursor; each filter and their
combinations; coded errors for bad pages, cursors and filter values; another instance's jobs never listed."""

import base64
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from jobs.models import JobHistory, RunStatus, ScheduledJob
from tests.fixtures.api import error_codes
from tests.fixtures.cast import sync_workflow

QUERY = """query ($instanceId: ID!, $first: Int, $after: String, $filter: ScheduledJobFilter) {
  scheduledJobs(instanceId: $instanceId, first: $first, after: $after, filter: $filter) {
    items { id name active history { id status } }
    cursor
    hasNextPage
  }
}"""
T0 = datetime(2026, 5, 1, tzinfo=UTC)
HTTP_TASK = {"name": "ping", "type": "http.request", "args": {"url": "https://example.com/ping"}}


def make_jobs(instance, resource, count: int) -> list[ScheduledJob]:
    """`count` jobs: every 3rd inactive, names "Nightly N" / "Hourly N", every 4th with an http.request task too;
    job k's runs: none for k % 5 == 0, else k % 3 + 1 runs, the latest FAILED when k % 2, else SUCCEEDED."""
    jobs = []
    for k in range(count):
        workflow = sync_workflow(instance, resource)
        if k % 4 == 0:
            workflow["tasks"].append(HTTP_TASK)
        job = ScheduledJob.objects.create(
            instance=instance,
            workflow=workflow,
            name=f"Nightly {k}" if k % 2 == 0 else f"Hourly {k}",
            frequency_type="INTERVAL_BASED",
            interval_minutes=60,
            active=k % 3 != 0,
        )
        if k % 5:
            runs = k % 3 + 1
            JobHistory.objects.bulk_create(
                JobHistory(
                    job=job,
                    instance=instance,
                    status=(RunStatus.FAILED if k % 2 else RunStatus.SUCCEEDED) if n == runs - 1 else RunStatus.SKIPPED,
                    created_at=T0 + timedelta(hours=n),
                )
                for n in range(runs)
            )
        job.latest = None if k % 5 == 0 else (RunStatus.FAILED if k % 2 else RunStatus.SUCCEEDED)
        job.k = k
        jobs.append(job)
    return jobs


@pytest.fixture
def jobs(instance, resource, other_instance, other_resource) -> list[ScheduledJob]:
    make_jobs(other_instance, other_resource, 12)  # match every filter too: must never show
    return make_jobs(instance, resource, 30)


def page(api, token, instance, **variables) -> dict:
    status, body = api.gql(QUERY, {"instanceId": str(instance.pk), **variables}, token=token)
    assert status == 200, body
    assert "errors" not in body, body
    return body["data"]["scheduledJobs"]


def all_pages(api, token, instance, first: int, filter: dict | None = None) -> list[int]:  # noqa: A002
    seen, after = [], None
    while True:
        got = page(api, token, instance, first=first, after=after, filter=filter)
        seen += [int(item["id"]) for item in got["items"]]
        if not got["hasNextPage"]:
            return seen
        after = got["cursor"]


CASES = {
    "none": ({}, lambda j: True),
    "active": ({"active": True}, lambda j: j.k % 3 != 0),
    "inactive": ({"active": False}, lambda j: j.k % 3 == 0),
    "name": ({"nameContains": "nIGHTLY"}, lambda j: j.k % 2 == 0),
    "name-digits": ({"nameContains": "1"}, lambda j: "1" in str(j.k)),
    "last-run-failed": ({"lastRunStatus": "FAILED"}, lambda j: j.latest == RunStatus.FAILED),
    "last-run-skipped": ({"lastRunStatus": "SKIPPED"}, lambda j: False),
    "task-type": ({"taskType": "http.request"}, lambda j: j.k % 4 == 0),
    "task-type-common": ({"taskType": "rclone.sync"}, lambda j: True),
    "all": (
        {"active": True, "nameContains": "hourly", "lastRunStatus": "FAILED", "taskType": "rclone.sync"},
        lambda j: j.k % 3 != 0 and j.k % 2 == 1 and j.latest == RunStatus.FAILED,
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_it_pages_through_the_instances_matching_jobs_oldest_first(api, acme_token, instance, jobs, name):
    given, keep = CASES[name]

    assert all_pages(api, acme_token, instance, 4, given) == [j.pk for j in jobs if keep(j)]


def test_it_lists_each_jobs_latest_runs_on_a_page(api, acme_token, instance, jobs):
    got = page(api, acme_token, instance, first=5)

    assert [len(item["history"]) for item in got["items"]] == [0 if j.k % 5 == 0 else j.k % 3 + 1 for j in jobs[:5]]
    assert got["hasNextPage"] is True


def test_it_costs_the_same_queries_for_any_page_and_filter(api, acme_token, instance, jobs):
    counts = []
    for variables in ({"first": 2}, {"first": 20, "filter": {"active": True, "lastRunStatus": "FAILED"}}):
        with CaptureQueriesContext(connection) as queries:
            page(api, acme_token, instance, **variables)
        counts.append(len(queries))

    # token, linked instances, the page of jobs, their latest runs.
    assert counts[0] == counts[1] <= 4


def test_it_lists_no_job_of_an_instance_the_token_cannot_read(api, acme_token, other_instance, jobs):
    status, body = api.gql(QUERY, {"instanceId": str(other_instance.pk)}, token=acme_token)

    assert body["data"] is None
    assert error_codes(body) in (["NOT_FOUND"], ["FORBIDDEN"])


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("variables", "code", "field"),
    [
        ({"first": 0}, "INVALID_PAGE", "first"),
        ({"first": 501}, "INVALID_PAGE", "first"),
        ({"after": "garbage!!"}, "INVALID_CURSOR", "after"),
        ({"after": b64("h1:1:2")}, "INVALID_CURSOR", "after"),
        ({"after": b64("j1:x")}, "INVALID_CURSOR", "after"),
        ({"after": b64("j1:0")}, "INVALID_CURSOR", "after"),
        ({"filter": {"nameContains": ""}}, "INVALID_VALUE", "filter.nameContains"),
        ({"filter": {"nameContains": "x" * 201}}, "INVALID_VALUE", "filter.nameContains"),
        ({"filter": {"taskType": ""}}, "INVALID_VALUE", "filter.taskType"),
    ],
)
def test_it_refuses_a_bad_page_cursor_or_filter_with_a_code(api, acme_token, instance, variables, code, field):
    status, body = api.gql(QUERY, {"instanceId": str(instance.pk), **variables}, token=acme_token)

    assert error_codes(body) == [code], body
    assert body["errors"][0]["extensions"]["field"] == field
    assert body["data"] is None
