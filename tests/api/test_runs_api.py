"""runScheduledJob, cancelJobRun and the run fields of JobHistory, through POST /graphql with real tokens.

No worker runs here: runScheduledJob's message is read off the private test Redis, and the run is then executed
by calling jobs.running.runner.run_queued directly, as a worker would.
"""

import base64
import json
import threading
import time

import pytest
import redis
from django.conf import settings as django_settings
from django.db import connection

from jobs import services
from jobs.models import FrequencyType, JobHistory, RunStatus
from jobs.running import runner
from tests.fixtures.api import error_codes, row_snapshot

RUN_FIELDS = "id jobId success status trigger scheduledFor startedAt finishedAt error steps logPath signedLogUrl"
RUN_NOW = f"mutation($id: ID!) {{ runScheduledJob(jobId: $id) {{ {RUN_FIELDS} }} }}"
CANCEL = f"mutation($id: ID!) {{ cancelJobRun(jobHistoryId: $id) {{ {RUN_FIELDS} }} }}"
GET_RUN = f"query($id: ID!) {{ getScheduledJobHistory(jobHistoryId: $id) {{ {RUN_FIELDS} }} }}"
SECRET = "sekret-123"


# The private test Redis, emptied: it is the Celery broker and holds the run locks.
pytestmark = [pytest.mark.smoke, pytest.mark.usefixtures("clean_redis", "loopback_allowed")]


@pytest.fixture
def broker(clean_redis) -> redis.Redis:
    """The broker's raw bytes, as kombu wrote them."""
    return redis.Redis.from_url(django_settings.REDIS_URL)


def queued_messages(client: redis.Redis) -> list[dict]:
    """The messages waiting on the default Celery queue, decoded (kombu's Redis transport: a list per queue)."""
    raw = client.lrange(django_settings.CELERY_TASK_DEFAULT_QUEUE, 0, -1)
    messages = []
    for item in raw:
        message = json.loads(item)
        body = message["body"]
        if message["properties"].get("body_encoding") == "base64":
            body = base64.b64decode(body)
        messages.append({"raw": item.decode(), "headers": message["headers"], "body": json.loads(body)})
    return messages


def all_queued_bytes(client: redis.Redis) -> bytes:
    return b"".join(b"".join(client.lrange(key, 0, -1)) for key in client.scan_iter() if client.type(key) == b"list")


@pytest.fixture
def http_job(instance, http_server):
    """An Acme job whose one step calls the local server with a secret header."""
    return services.create_job(
        instance=instance,
        workflow={
            "tasks": [
                {
                    "name": "hook",
                    "type": "http.request",
                    "args": {"url": http_server.url("/ok"), "secretHeaders": {"Authorization": f"Bearer {SECRET}"}},
                }
            ]
        },
        frequency_type=FrequencyType.CRON_BASED,
        cron_expression="0 3 * * *",
        name="Hook",
    )


def run_now(api, token, job_id, capture):
    with capture(execute=True):
        status, body = api.gql(RUN_NOW, {"id": str(job_id)}, token)
    assert status == 200
    return body


# --------------------------------------------------------------------------- run now


def test_it_queues_a_manual_run_and_publishes_only_its_id(
    api, acme_token, http_job, broker, django_capture_on_commit_callbacks
):
    body = run_now(api, acme_token, http_job.pk, django_capture_on_commit_callbacks)

    assert "errors" not in body, body
    data = body["data"]["runScheduledJob"]
    assert data["status"] == "QUEUED"
    assert data["trigger"] == "MANUAL"
    assert data["jobId"] == str(http_job.pk)
    assert data["success"] is None
    assert data["scheduledFor"] is None
    assert data["startedAt"] is None
    assert data["signedLogUrl"] is None
    run = JobHistory.objects.get(pk=data["id"])
    assert (run.status, run.trigger, run.job_id) == (RunStatus.QUEUED, "MANUAL", http_job.pk)

    [message] = queued_messages(broker)
    assert message["headers"]["task"] == "jobs.run_queued"
    args, kwargs, _ = message["body"]
    assert args == [run.pk]
    assert kwargs == {}
    assert SECRET not in message["raw"]
    assert SECRET.encode() not in all_queued_bytes(broker)


def test_it_runs_the_queued_run_and_reports_it(
    api, acme_token, http_job, http_server, client, django_capture_on_commit_callbacks
):
    run_id = run_now(api, acme_token, http_job.pk, django_capture_on_commit_callbacks)["data"]["runScheduledJob"]["id"]

    runner.run_queued(int(run_id))  # what the worker does with the message

    status, body = api.gql(GET_RUN, {"id": run_id}, acme_token)
    assert status == 200
    data = body["data"]["getScheduledJobHistory"]
    assert data["status"] == "SUCCEEDED"
    assert data["success"] is True
    assert data["trigger"] == "MANUAL"
    assert data["error"] is None
    assert data["startedAt"] is not None
    assert data["finishedAt"] >= data["startedAt"]
    assert [(s["name"], s["status"]) for s in data["steps"]] == [("hook", "SUCCEEDED")]
    assert data["steps"][0]["counters"] == {"httpStatus": 200, "bytes": 2}
    assert data["logPath"]
    assert http_server.paths() == ["/ok"]

    log = client.get(data["signedLogUrl"])  # no Authorization header
    assert log.status_code == 200
    text = b"".join(log.streaming_content).decode()
    assert "[hook] succeeded" in text
    assert SECRET not in text

    status, body = api.gql(
        "query($id: ID!) { getScheduledJob(jobId: $id) { lastRun history { id status } } }",
        {"id": str(http_job.pk)},
        acme_token,
    )
    job = body["data"]["getScheduledJob"]
    assert job["lastRun"] == data["startedAt"]
    assert job["history"] == [{"id": run_id, "status": "SUCCEEDED"}]


def test_it_runs_a_paused_job_by_hand(api, acme_token, http_job, broker, django_capture_on_commit_callbacks):
    services.update_job(http_job, active=False)

    body = run_now(api, acme_token, http_job.pk, django_capture_on_commit_callbacks)

    assert body["data"]["runScheduledJob"]["status"] == "QUEUED"
    assert len(queued_messages(broker)) == 1


# --------------------------------------------------------------------------- cancel


def test_it_cancels_a_queued_run(api, acme_token, http_job, http_server, django_capture_on_commit_callbacks):
    run_id = run_now(api, acme_token, http_job.pk, django_capture_on_commit_callbacks)["data"]["runScheduledJob"]["id"]

    status, body = api.gql(CANCEL, {"id": run_id}, acme_token)

    assert status == 200
    assert "errors" not in body, body
    data = body["data"]["cancelJobRun"]
    assert data["status"] == "CANCELLED"
    assert data["success"] is False
    assert data["finishedAt"] is not None
    assert data["startedAt"] is None

    runner.run_queued(int(run_id))  # the message still arrives; the worker leaves the run alone

    assert JobHistory.objects.get(pk=run_id).status == RunStatus.CANCELLED
    assert http_server.requests == []


@pytest.mark.django_db(transaction=True)
def test_it_cancels_a_running_run_and_answers_once_it_stopped(api, acme_token, instance, http_server):
    job = services.create_job(
        instance=instance,
        workflow={"tasks": [{"name": "slow", "type": "http.request", "args": {"url": http_server.url("/slow")}}]},
        frequency_type=FrequencyType.INTERVAL_BASED,
        interval_minutes=60,
    )
    queued = services.run_now(job)

    def worker():
        try:
            runner.run_queued(queued.pk)
        finally:
            connection.close()

    thread = threading.Thread(target=worker, daemon=True)
    thread.start()
    http_server.wait_for("/slow")
    started = time.monotonic()

    status, body = api.gql(CANCEL, {"id": str(queued.pk)}, acme_token)

    assert status == 200
    if connection.vendor == "sqlite":
        # SQLite answers at once (its locks would stall the worker); the worker then records the outcome.
        assert body["data"]["cancelJobRun"]["status"] == "RUNNING", body
        thread.join(10)
        assert JobHistory.objects.get(pk=queued.pk).status == RunStatus.CANCELLED
    else:
        assert body["data"]["cancelJobRun"]["status"] == "CANCELLED", body
    assert time.monotonic() - started < 5
    thread.join(10)
    assert not thread.is_alive()
    assert not http_server.slow_finished.is_set()


@pytest.mark.parametrize("status", ["SUCCEEDED", "FAILED", "SKIPPED", "CANCELLED"])
def test_it_refuses_to_cancel_a_finished_run(api, acme_token, job, status):
    done = JobHistory.objects.create(job=job, instance_id=job.instance_id, status=status)
    before = row_snapshot()

    code, body = api.gql(CANCEL, {"id": str(done.pk)}, acme_token)

    assert code == 200
    assert error_codes(body) == ["NOT_CANCELLABLE"]
    assert body["errors"][0]["extensions"]["field"] == "jobHistoryId"
    assert body["data"] is None
    assert row_snapshot() == before


# --------------------------------------------------------------------------- who may


@pytest.fixture
def read_only_token(token_for, instance) -> str:
    return token_for(f"instance-read-{instance.pk}")


def test_it_refuses_run_now_to_a_read_only_token(
    api, read_only_token, http_job, broker, django_capture_on_commit_callbacks
):
    before = row_snapshot()

    body = run_now(api, read_only_token, http_job.pk, django_capture_on_commit_callbacks)

    assert error_codes(body) == ["FORBIDDEN"]
    assert body["errors"][0]["extensions"]["field"] == "jobId"
    assert body["data"] is None
    assert row_snapshot() == before
    assert queued_messages(broker) == []


def test_it_refuses_cancel_to_a_read_only_token(api, read_only_token, job):
    queued = services.run_now(job)
    before = row_snapshot()

    code, body = api.gql(CANCEL, {"id": str(queued.pk)}, read_only_token)

    assert error_codes(body) == ["FORBIDDEN"]
    assert body["errors"][0]["extensions"]["field"] == "jobHistoryId"
    assert row_snapshot() == before
    assert JobHistory.objects.get(pk=queued.pk).status == RunStatus.QUEUED


def test_it_lets_a_read_only_token_read_a_run(api, read_only_token, job):
    queued = services.run_now(job)

    code, body = api.gql(GET_RUN, {"id": str(queued.pk)}, read_only_token)

    assert body["data"]["getScheduledJobHistory"]["status"] == "QUEUED"


MISSING = 987_654_321


def test_it_answers_not_found_for_another_tenants_job_exactly_as_for_a_missing_one(
    api, acme_token, other_job, broker, django_capture_on_commit_callbacks
):
    before = row_snapshot()

    theirs = run_now(api, acme_token, other_job.pk, django_capture_on_commit_callbacks)
    missing = run_now(api, acme_token, MISSING, django_capture_on_commit_callbacks)

    assert error_codes(theirs) == ["NOT_FOUND"]
    assert theirs["errors"][0]["extensions"]["field"] == "jobId"
    assert theirs["errors"][0]["message"] == missing["errors"][0]["message"]
    assert row_snapshot() == before
    assert queued_messages(broker) == []


def test_it_answers_not_found_for_cancelling_another_tenants_run(api, acme_token, other_job):
    theirs = services.run_now(other_job)
    before = row_snapshot()

    _, body = api.gql(CANCEL, {"id": str(theirs.pk)}, acme_token)
    _, missing = api.gql(CANCEL, {"id": str(MISSING)}, acme_token)

    assert error_codes(body) == ["NOT_FOUND"]
    assert body["errors"][0]["extensions"]["field"] == "jobHistoryId"
    assert body["errors"][0]["message"] == missing["errors"][0]["message"]
    assert row_snapshot() == before
    assert JobHistory.objects.get(pk=theirs.pk).cancel_requested_at is None


@pytest.mark.parametrize("document", [RUN_NOW, CANCEL])
def test_it_refuses_run_and_cancel_without_a_token(api, job, document):
    queued = services.run_now(job)
    before = row_snapshot()

    status, body = api.gql(document, {"id": str(job.pk if document is RUN_NOW else queued.pk)})

    assert "UNAUTHENTICATED" in error_codes(body)
    assert status in (200, 401)
    assert row_snapshot() == before
