"""previewSchedule: a job's schedule without the job; the same answers and the same coded errors as
createScheduledJob."""

from datetime import datetime

import pytest

from jobs.models import ScheduledJob
from tests.fixtures.api import row_snapshot

pytestmark = pytest.mark.smoke

PREVIEW = """query($f: FrequencyType!, $c: String, $i: Int, $tz: String, $n: Int) {
  previewSchedule(frequencyType: $f, cronExpression: $c, intervalMinutes: $i, timezone: $tz, count: $n) {
    nextRuns scheduleDescription timezone
  }
}"""
CREATE = """mutation($inst: ID!, $wf: JSON!, $f: FrequencyType!, $c: String, $i: Int, $tz: String) {
  createScheduledJob(instanceId: $inst, workflow: $wf, frequencyType: $f, cronExpression: $c,
                     intervalMinutes: $i, timezone: $tz) {
    id nextRuns(count: 5) scheduleDescription timezone
  }
}"""


def schedule(frequency: str, cron: str | None = None, interval: int | None = None, tz: str | None = None) -> dict:
    return {"f": frequency, "c": cron, "i": interval, "tz": tz}


@pytest.mark.parametrize(
    "args",
    [
        schedule("CRON_BASED", "30 2 * * *"),
        schedule("CRON_BASED", "*/15 9-17 * * 1-5", tz="Europe/Helsinki"),
        schedule("CRON_BASED", "0 0 1 * *", tz="Australia/Lord_Howe"),
    ],
)
def test_it_previews_what_a_created_cron_job_shows(api, acme_token, instance, workflow, args):
    status, preview = api.gql(PREVIEW, {**args, "n": 5}, token=acme_token)
    _, created = api.gql(CREATE, {**args, "inst": str(instance.pk), "wf": workflow}, token=acme_token)

    assert status == 200, preview
    job = created["data"]["createScheduledJob"]
    assert preview["data"]["previewSchedule"] == {
        "nextRuns": job["nextRuns"],
        "scheduleDescription": job["scheduleDescription"],
        "timezone": job["timezone"],
    }


def test_it_counts_an_interval_from_now(api, acme_token):
    _, body = api.gql(PREVIEW, {**schedule("INTERVAL_BASED", interval=90), "n": 3}, token=acme_token)

    preview = body["data"]["previewSchedule"]
    runs = [datetime.fromisoformat(t) for t in preview["nextRuns"]]
    assert [(b - a).total_seconds() for a, b in zip(runs, runs[1:], strict=False)] == [5400, 5400]
    assert preview["scheduleDescription"] == "Every 90 minutes"


BAD = [
    pytest.param(schedule("CRON_BASED", "61 * * * *"), id="bad-cron"),
    pytest.param(schedule("CRON_BASED", "0 0 30 2 *"), id="cron-never-fires"),
    pytest.param(schedule("CRON_BASED"), id="cron-missing"),
    pytest.param(schedule("CRON_BASED", "* * * * *", interval=5), id="both"),
    pytest.param(schedule("INTERVAL_BASED"), id="interval-missing"),
    pytest.param(schedule("INTERVAL_BASED", interval=0), id="interval-zero"),
    pytest.param(schedule("INTERVAL_BASED", "* * * * *", 5), id="interval-with-cron"),
    pytest.param(schedule("CRON_BASED", "* * * * *", tz="Mars/Olympus_Mons"), id="bad-timezone"),
    pytest.param(schedule("CRON_BASED", "every night", tz="Nowhere"), id="two-problems"),
]


@pytest.mark.parametrize("args", BAD)
def test_it_refuses_exactly_as_createscheduledjob_does(api, acme_token, instance, workflow, args):
    before = row_snapshot()

    _, preview = api.gql(PREVIEW, args, token=acme_token)
    _, created = api.gql(CREATE, {**args, "inst": str(instance.pk), "wf": workflow}, token=acme_token)

    assert preview["data"] is None
    assert created["data"] is None
    assert preview["errors"][0]["extensions"] == created["errors"][0]["extensions"]
    assert preview["errors"][0]["message"] == created["errors"][0]["message"]
    assert row_snapshot() == before


@pytest.mark.parametrize("count", [0, 101, -1])
def test_it_refuses_a_count_out_of_range(api, acme_token, count):
    _, body = api.gql(PREVIEW, {**schedule("CRON_BASED", "* * * * *"), "n": count}, token=acme_token)

    assert body["errors"][0]["extensions"]["code"] == "INVALID_VALUE"
    assert body["errors"][0]["extensions"]["field"] == "count"


def test_it_needs_a_token(api):
    status, body = api.gql(PREVIEW, schedule("CRON_BASED", "* * * * *"))

    assert status == 401
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


def test_it_makes_no_job(api, acme_token):
    count = ScheduledJob.objects.count()

    api.gql(PREVIEW, schedule("CRON_BASED", "* * * * *"), token=acme_token)

    assert ScheduledJob.objects.count() == count
