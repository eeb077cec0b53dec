"""getInstanceJobHistory's filter: each condition, their combinations, paging through a filtered list, coded errors
for bad values; another instance's runs are never listed, whatever matches them."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from jobs.models import JobHistory, RunStatus, RunTrigger, ScheduledJob
from tests.fixtures.api import error_codes

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
QUERY = """query ($instanceId: ID!, $page: PageInput, $filter: JobHistoryFilter) {
  getInstanceJobHistory(instanceId: $instanceId, page: $page, filter: $filter) {
    items { id jobId status trigger createdAt } cursor hasNextPage
  }
}"""
STATUSES = [RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.SKIPPED, RunStatus.SUCCEEDED]


def add_runs(job: ScheduledJob, count: int) -> list[JobHistory]:
    """`count` runs an hour apart from T0, statuses in turn, every third MANUAL."""
    return JobHistory.objects.bulk_create(
        JobHistory(
            job=job,
            instance_id=job.instance_id,
            status=STATUSES[k % len(STATUSES)],
            trigger=RunTrigger.MANUAL if k % 3 == 0 else RunTrigger.SCHEDULE,
            created_at=T0 + timedelta(hours=k),
        )
        for k in range(count)
    )


@pytest.fixture
def runs(instance, workflow, job, other_job) -> dict:
    second = ScheduledJob.objects.create(
        instance=instance, workflow=workflow, frequency_type="INTERVAL_BASED", interval_minutes=5
    )
    # The other tenant's runs match every filter below too, at the same times: they must never show.
    add_runs(other_job, 24)
    return {"job": add_runs(job, 24), "second": add_runs(second, 12), "second_job": second}


def listed(api, token, instance, filter: dict | None, first: int = 500) -> list[int]:  # noqa: A002
    variables = {"instanceId": str(instance.pk), "page": {"first": first}, "filter": filter}
    status, body = api.gql(QUERY, variables, token=token)
    assert status == 200, body
    assert "errors" not in body, body
    return [int(item["id"]) for item in body["data"]["getInstanceJobHistory"]["items"]]


def expected(rows: list[JobHistory], keep) -> list[int]:
    return [r.pk for r in sorted((r for r in rows if keep(r)), key=lambda r: (r.created_at, r.pk), reverse=True)]


def iso(at: datetime) -> str:
    return at.isoformat()


CASES = {
    "none": ({}, lambda r: True),
    "status": ({"status": "FAILED"}, lambda r: r.status == RunStatus.FAILED),
    "trigger": ({"trigger": "MANUAL"}, lambda r: r.trigger == RunTrigger.MANUAL),
    "status-trigger": (
        {"status": "SUCCEEDED", "trigger": "SCHEDULE"},
        lambda r: r.status == RunStatus.SUCCEEDED and r.trigger == RunTrigger.SCHEDULE,
    ),
    "from": ({"from": iso(T0 + timedelta(hours=10))}, lambda r: r.created_at >= T0 + timedelta(hours=10)),
    "to": ({"to": iso(T0 + timedelta(hours=5))}, lambda r: r.created_at < T0 + timedelta(hours=5)),
    "from-to-other-zone": (
        {"from": "2026-05-01T17:00:00+03:00", "to": "2026-05-01T20:00:00+03:00"},
        lambda r: T0 + timedelta(hours=2) <= r.created_at < T0 + timedelta(hours=5),
    ),
    "status-from-to": (
        {"status": "SUCCEEDED", "from": iso(T0 + timedelta(hours=3)), "to": iso(T0 + timedelta(hours=15))},
        lambda r: (
            r.status == RunStatus.SUCCEEDED and T0 + timedelta(hours=3) <= r.created_at < T0 + timedelta(hours=15)
        ),
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_it_lists_only_the_instances_runs_that_match(api, acme_token, instance, runs, name):
    given, keep = CASES[name]
    mine = runs["job"] + runs["second"]

    assert listed(api, acme_token, instance, given) == expected(mine, keep)


@pytest.mark.parametrize("name", sorted(CASES))
def test_it_filters_by_job_together_with_every_other_condition(api, acme_token, instance, runs, name):
    given, keep = CASES[name]

    ids = listed(api, acme_token, instance, {**given, "jobId": str(runs["second_job"].pk)})

    assert ids == expected(runs["second"], keep)


def test_it_lists_nothing_for_another_instances_job(api, acme_token, instance, runs, other_job):
    assert listed(api, acme_token, instance, {"jobId": str(other_job.pk)}) == []
    assert listed(api, acme_token, instance, {"jobId": str(other_job.pk), "status": "FAILED"}) == []


def test_it_pages_through_a_filtered_list_with_its_cursors(api, acme_token, instance, runs):
    variables = {"instanceId": str(instance.pk), "filter": {"trigger": "SCHEDULE"}, "page": {"first": 5}}
    seen = []
    while True:
        status, body = api.gql(QUERY, variables, token=acme_token)
        page = body["data"]["getInstanceJobHistory"]
        seen += [int(item["id"]) for item in page["items"]]
        if not page["hasNextPage"]:
            break
        variables["page"] = {"first": 5, "after": page["cursor"]}

    assert seen == expected(runs["job"] + runs["second"], lambda r: r.trigger == RunTrigger.SCHEDULE)


def test_it_costs_no_more_queries_with_a_filter(api, acme_token, instance, runs):
    counts = []
    for given in ({}, {"status": "FAILED", "trigger": "MANUAL", "from": iso(T0), "jobId": str(runs["job"][0].job_id)}):
        with CaptureQueriesContext(connection) as queries:
            listed(api, acme_token, instance, given)
        counts.append(len(queries))

    assert counts[0] == counts[1] <= 3


@pytest.mark.parametrize(
    ("given", "field"),
    [
        ({"trigger": "CRON"}, "filter.trigger"),
        ({"from": "2026-05-01T12:00:00"}, "filter.from"),
        ({"to": "2026-05-01T12:00:00"}, "filter.to"),
        ({"from": "2026-05-02T00:00:00Z", "to": "2026-05-01T00:00:00Z"}, "filter.to"),
        ({"jobId": "not-an-id"}, "filter.jobId"),
        ({"jobId": "0"}, "filter.jobId"),
    ],
)
def test_it_refuses_a_bad_filter_value_with_a_code(api, acme_token, instance, runs, given, field):
    variables = {"instanceId": str(instance.pk), "filter": given}
    status, body = api.gql(QUERY, variables, token=acme_token)

    assert error_codes(body) == ["INVALID_VALUE"], body
    assert body["errors"][0]["extensions"]["field"] == field
    assert body["data"] is None


def test_it_refuses_an_unknown_status_before_running(api, acme_token, instance):
    status, body = api.gql(QUERY, {"instanceId": str(instance.pk), "filter": {"status": "DONE"}}, token=acme_token)

    assert error_codes(body) == ["GRAPHQL_VALIDATION_FAILED"] or error_codes(body) == ["BAD_USER_INPUT"], body
