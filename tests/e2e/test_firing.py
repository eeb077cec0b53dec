"""Jobs fire on time through real beat and worker processes, PostgreSQL and Redis; nothing here is mocked.

One scenario spans two minute boundaries, so the whole module takes about two minutes.
"""

import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from redbeat.schedulers import get_redis

from jobs.models import JobHistory, RunStatus, RunTrigger
from jobs.scheduling.entries import JobEntry, entry_name
from pointscene.celery import app

pytestmark = [pytest.mark.smoke, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

RELEASE_SLOW = threading.Event()


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's naming
        if self.path == "/slow":
            RELEASE_SLOW.wait(150)
        status = 500 if self.path == "/fail" else 200
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def http_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    RELEASE_SLOW.set()
    server.shutdown()


CREATE = """
mutation($instanceId: ID!, $workflow: JSON!, $ft: FrequencyType!, $cron: String, $every: Int, $active: Boolean) {
  createScheduledJob(instanceId: $instanceId, workflow: $workflow, frequencyType: $ft, cronExpression: $cron,
                     intervalMinutes: $every, active: $active) { id }
}"""


def ping(url: str) -> dict:
    # A long timeout: the /slow endpoint holds its answer for as long as the test needs the run to last.
    return {"tasks": [{"name": "ping", "type": "http.request", "args": {"url": url, "timeoutSeconds": 300}}]}


def create(api, token, instance, url, *, cron="* * * * *", every=None, active=True) -> int:
    variables = {"instanceId": str(instance.pk), "workflow": ping(url), "active": active}
    if every:
        variables.update(ft="INTERVAL_BASED", every=every)
    else:
        variables.update(ft="CRON_BASED", cron=cron)
    status, body = api.gql(CREATE, variables, token=token)
    assert "errors" not in body, body
    return int(body["data"]["createScheduledJob"]["id"])


def set_active(api, token, job_id: int, active: bool) -> None:
    status, body = api.gql(
        "mutation($id: ID!, $a: Boolean) { updateScheduledJob(jobId: $id, active: $a) { active } }",
        {"id": str(job_id), "a": active},
        token=token,
    )
    assert body == {"data": {"updateScheduledJob": {"active": active}}}


def entry_exists(job_id: int) -> bool:
    key = JobEntry.generate_key(app, entry_name(job_id))
    return get_redis(app).zscore(app.redbeat_conf.schedule_key, key) is not None


def next_boundary(after: datetime) -> datetime:
    return after.replace(second=0, microsecond=0) + timedelta(minutes=1)


def wait_until(predicate, timeout: float, what: str, processes=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    logs = "" if processes is None else "\n".join(p.output()[-3000:] for p in processes.values())
    raise AssertionError(f"timed out waiting for {what}\n{logs}")


def finished_run(job_id: int, slot: datetime):
    return (
        JobHistory.objects.filter(job_id=job_id, scheduled_for=slot)
        .exclude(status__in=[RunStatus.QUEUED, RunStatus.RUNNING])
        .first()
    )


def test_it_fires_records_skips_pauses_resumes_cancels_and_deletes(
    processes, http_server, loopback_allowed, api, acme_token, instance, client
):
    if datetime.now(UTC).second >= 50:
        # Too close to a boundary for the jobs below to be in place before it; start cleanly after it.
        time.sleep(61 - datetime.now(UTC).second)
    cron_ok = create(api, acme_token, instance, f"{http_server}/ok")
    interval_ok = create(api, acme_token, instance, f"{http_server}/ok", every=1)
    cron_fail = create(api, acme_token, instance, f"{http_server}/fail")
    busy = create(api, acme_token, instance, f"{http_server}/slow")
    paused_later = create(api, acme_token, instance, f"{http_server}/ok")
    resumed_later = create(api, acme_token, instance, f"{http_server}/ok", active=False)
    created = datetime.now(UTC)
    first, second = next_boundary(created), next_boundary(created) + timedelta(minutes=1)
    assert all(entry_exists(j) for j in (cron_ok, interval_ok, cron_fail, busy, paused_later))
    assert not entry_exists(resumed_later)

    # Run now: starts at once, outside the schedule, and keeps the job busy across the first boundary.
    status, body = api.gql(
        "mutation($id: ID!) { runScheduledJob(jobId: $id) { id status trigger } }", {"id": str(busy)}, acme_token
    )
    assert "errors" not in body, body
    manual = body["data"]["runScheduledJob"]
    assert (manual["status"], manual["trigger"]) == ("QUEUED", "MANUAL")
    started = wait_until(
        lambda: JobHistory.objects.filter(pk=manual["id"], status=RunStatus.RUNNING).first(), 20, "the manual run"
    )
    assert started.trigger == RunTrigger.MANUAL
    assert (started.started_at - created).total_seconds() < 20

    # First boundary: every active job runs once for it.
    ok = wait_until(lambda: finished_run(cron_ok, first), 90, "the cron job's first run")
    assert ok.status == RunStatus.SUCCEEDED
    assert ok.trigger == RunTrigger.SCHEDULE
    assert 0 <= (ok.started_at - first).total_seconds() < 30
    # Beat publishes a few seconds ahead with the slot as ETA, so the run starts on its minute, not after it.
    assert -10 < (ok.published_at - first).total_seconds() < 5
    assert ok.steps[0]["status"] == "SUCCEEDED"
    failed = wait_until(lambda: finished_run(cron_fail, first), 30, "the failing job's run")
    assert failed.status == RunStatus.FAILED
    assert "500" in (failed.error or ""), (failed.error, failed.steps, processes["worker"].output()[-3000:])
    skipped = wait_until(lambda: finished_run(busy, first), 30, "the busy job's slot", processes)
    assert skipped.status == RunStatus.SKIPPED, (
        skipped.error,
        skipped.steps,
        JobHistory.objects.filter(job_id=busy).values_list("id", "status", "error", "trigger"),
    )
    wait_until(lambda: finished_run(paused_later, first), 30, "the to-be-paused job's run")
    interval_slot = JobHistory.objects.none()
    interval_slot = wait_until(
        lambda: JobHistory.objects.filter(job_id=interval_ok, status=RunStatus.SUCCEEDED).first(),
        60,
        "the interval job's run",
    )
    assert abs((interval_slot.scheduled_for - created).total_seconds() - 60) < 5

    # The API serves the history and the logs, downloadable with no token.
    status, body = api.gql(
        "query($id: ID!) { getScheduledJob(jobId: $id) { lastRun history { id success logPath signedLogUrl } } }",
        {"id": str(cron_fail)},
        acme_token,
    )
    job = body["data"]["getScheduledJob"]
    assert job["history"][0]["success"] is False
    assert job["lastRun"] is not None
    log = client.get(job["history"][0]["signedLogUrl"].split("testserver", 1)[-1])
    assert log.status_code == 200
    text = b"".join(log.streaming_content).decode()
    assert "ping" in text
    assert "500" in text

    # Pause one, resume the other, cancel the manual run.
    set_active(api, acme_token, paused_later, False)
    assert not entry_exists(paused_later)
    set_active(api, acme_token, resumed_later, True)
    assert entry_exists(resumed_later)
    status, body = api.gql(
        "mutation($id: ID!) { cancelJobRun(jobHistoryId: $id) { status } }", {"id": manual["id"]}, acme_token
    )
    assert "errors" not in body, body
    assert body["data"]["cancelJobRun"]["status"] == "CANCELLED", (body, processes["worker"].output()[-5000:])

    # Second boundary: the paused job stays quiet, the resumed one runs, nothing runs twice.
    wait_until(lambda: finished_run(resumed_later, second), 90, "the resumed job's run")
    wait_until(lambda: finished_run(cron_ok, second), 30, "the cron job's second run")
    time.sleep(3)
    assert not JobHistory.objects.filter(job_id=paused_later, scheduled_for=second).exists()
    for job_id in (cron_ok, cron_fail, resumed_later):
        assert JobHistory.objects.filter(job_id=job_id, scheduled_for=second).count() == 1
    assert JobHistory.objects.filter(job_id=cron_ok, scheduled_for=first).count() == 1

    # Deleting removes the schedule entry at once.
    status, body = api.gql(
        "mutation($id: ID!) { deleteScheduledJob(id: $id) { success } }", {"id": str(cron_ok)}, acme_token
    )
    assert body == {"data": {"deleteScheduledJob": {"success": True}}}
    assert not entry_exists(cron_ok)
