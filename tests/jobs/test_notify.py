"""The failure webhook (jobs.ops.notify) against a real HTTP receiver on loopback: what it sends and signs, when it
retries and when it gives up, that it refuses private targets by default, and that the secret stays out of bodies,
logs and exception text. The Celery task runs locally with `apply` (eager: its retries run at once, no countdown).
"""

import hashlib
import hmac
import json
import logging
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from configs.crypto import fernet
from jobs.models import JobHistory, RunStatus, RunTrigger, ScheduledJob
from jobs.ops.notify import WebhookRetry, backoff_seconds, deliver, notify_webhook, payload, sign
from pointscene.core.models import Instance

pytestmark = pytest.mark.django_db

SECRET = "whsec-0123456789-abcdefghij-shared"
WORKFLOW = {"tasks": [{"name": "a", "type": "http.request", "args": {"url": "https://example.com"}}]}


@dataclass(frozen=True)
class Delivery:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


class Receiver:
    """Answers each POST with the next status of `statuses` (200 once they run out) and records it."""

    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
        self.statuses: list[int] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class names it so
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with receiver._lock:
                    receiver.deliveries.append(Delivery(self.path, dict(self.headers.items()), body))
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/hook"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.stop()


@pytest.fixture
def allow_loopback(settings):
    settings.JOBS_HTTP_ALLOW_PRIVATE = True


@pytest.fixture
def instance() -> Instance:
    return Instance.objects.create(name="Acme")


def make_job(instance: Instance, url: str | None, secret: str | None = SECRET, **fields) -> ScheduledJob:
    return ScheduledJob.objects.create(
        instance=instance,
        name="nightly sync",
        workflow=WORKFLOW,
        frequency_type="CRON_BASED",
        cron_expression="* * * * *",
        webhook_url=url,
        webhook_secret=fernet().encrypt(secret.encode()).decode() if secret else None,
        **fields,
    )


def make_run(job: ScheduledJob) -> JobHistory:
    slot = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    return JobHistory.objects.create(
        job=job,
        instance=job.instance,
        status=RunStatus.FAILED,
        trigger=RunTrigger.SCHEDULE,
        scheduled_for=slot,
        started_at=slot + timedelta(seconds=1),
        finished_at=slot + timedelta(seconds=3),
        error="[a] GET https://example.com answered 500, expected 2xx",
    )


def verify(secret: str, delivery: Delivery) -> bool:
    """What a receiver does: recompute the signature over the timestamp header and the raw body."""
    timestamp = delivery.headers["X-Pointscene-Timestamp"]
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + delivery.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(delivery.headers["X-Pointscene-Signature"], "sha256=" + expected)


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


def test_it_signs_the_timestamp_a_dot_and_the_body():
    body = b'{"event":"run.failed"}'
    expected = hmac.new(SECRET.encode(), b"1700000000." + body, hashlib.sha256).hexdigest()

    assert sign(SECRET, 1700000000, body) == "sha256=" + expected
    assert sign(SECRET, 1700000001, body) != sign(SECRET, 1700000000, body)
    assert sign(SECRET, 1700000000, body + b" ") != sign(SECRET, 1700000000, body)
    assert sign(SECRET + "x", 1700000000, body) != sign(SECRET, 1700000000, body)


def test_it_delivers_a_signed_run_failed_body(receiver, allow_loopback, instance):
    job = make_job(instance, receiver.url, consecutive_failures=2)
    run = make_run(job)

    assert deliver(job.pk, "run.failed", run.pk) == 200

    [delivery] = receiver.deliveries
    assert delivery.path == "/hook"
    assert delivery.headers["Content-Type"] == "application/json"
    assert delivery.headers["X-Pointscene-Event"] == "run.failed"
    assert delivery.headers["X-Pointscene-Delivery"] == f"run.failed:{job.pk}:{run.pk}"
    assert delivery.headers["X-Pointscene-Timestamp"].isdigit()
    assert verify(SECRET, delivery)
    assert not verify("another-secret-of-some-length", delivery)
    body = delivery.json()
    assert body["event"] == "run.failed"
    assert body["deliveryId"] == f"run.failed:{job.pk}:{run.pk}"
    assert body["job"] == {
        "id": str(job.pk),
        "name": "nightly sync",
        "instanceId": str(instance.pk),
        "active": True,
        "consecutiveFailures": 2,
        "pausedReason": None,
    }
    assert body["run"] == {
        "id": str(run.pk),
        "status": "FAILED",
        "trigger": "SCHEDULE",
        "scheduledFor": "2025-03-01T12:00:00+00:00",
        "startedAt": "2025-03-01T12:00:01+00:00",
        "finishedAt": "2025-03-01T12:00:03+00:00",
        "error": "[a] GET https://example.com answered 500, expected 2xx",
    }
    assert datetime.fromisoformat(body["sentAt"]).utcoffset() == timedelta(0)
    assert SECRET not in delivery.body.decode()
    assert job.webhook_secret not in delivery.body.decode()


def test_it_sends_job_paused_without_a_run(receiver, allow_loopback, instance):
    job = make_job(instance, receiver.url, active=False, consecutive_failures=3, paused_reason="3 failed runs")

    assert deliver(job.pk, "job.paused", None) == 200

    [delivery] = receiver.deliveries
    assert verify(SECRET, delivery)
    assert delivery.headers["X-Pointscene-Event"] == "job.paused"
    body = delivery.json()
    assert body["run"] is None
    assert body["deliveryId"] == delivery.headers["X-Pointscene-Delivery"]
    assert body["job"]["active"] is False
    assert body["job"]["pausedReason"] == "3 failed runs"


def test_it_keeps_the_delivery_id_stable(receiver, allow_loopback, instance):
    job = make_job(instance, receiver.url)
    run = make_run(job)

    deliver(job.pk, "run.failed", run.pk)
    deliver(job.pk, "run.failed", run.pk)

    first, second = receiver.deliveries
    assert first.headers["X-Pointscene-Delivery"] == second.headers["X-Pointscene-Delivery"]
    assert first.json()["deliveryId"] == second.json()["deliveryId"] == f"run.failed:{job.pk}:{run.pk}"
    assert payload(job, "run.failed", run)["deliveryId"] == first.json()["deliveryId"]


def test_its_payload_holds_no_secret(instance):
    job = make_job(instance, "https://hooks.example.com/x")
    run = make_run(job)

    text = json.dumps(payload(job, "run.failed", run))

    assert SECRET not in text
    assert job.webhook_secret not in text
    assert "secret" not in text.lower()


def test_it_sends_nothing_without_a_webhook_url(receiver, allow_loopback, instance):
    job = make_job(instance, None, secret=None)
    run = make_run(job)

    assert deliver(job.pk, "run.failed", run.pk) is None
    assert receiver.deliveries == []


def test_it_sends_nothing_for_a_deleted_job(receiver, allow_loopback, instance):
    job = make_job(instance, receiver.url)
    job_id = job.pk
    job.delete()

    assert deliver(job_id, "job.paused", None) is None
    assert receiver.deliveries == []


def test_it_gives_up_on_a_secret_it_cannot_decrypt(receiver, allow_loopback, instance, caplog):
    job = make_job(instance, receiver.url)
    ScheduledJob.objects.filter(pk=job.pk).update(webhook_secret="gAAAAAnot-a-valid-token")

    with caplog.at_level(logging.DEBUG):
        assert deliver(job.pk, "run.failed", None) is None

    assert receiver.deliveries == []
    assert "cannot be decrypted" in caplog.text
    assert "not-a-valid-token" not in caplog.text


@pytest.mark.parametrize("status", [500, 503, 429])
def test_it_asks_for_a_retry_on_5xx_and_429(receiver, allow_loopback, instance, status):
    job = make_job(instance, receiver.url)
    run = make_run(job)
    receiver.statuses = [status]

    with pytest.raises(WebhookRetry, match=str(status)) as raised:
        deliver(job.pk, "run.failed", run.pk)

    assert len(receiver.deliveries) == 1
    assert SECRET not in str(raised.value)


def test_it_asks_for_a_retry_when_it_cannot_connect(allow_loopback, instance):
    job = make_job(instance, closed_port_url())

    with pytest.raises(WebhookRetry, match="could not connect") as raised:
        deliver(job.pk, "run.failed", None)

    assert SECRET not in str(raised.value)


def test_it_gives_up_on_404(receiver, allow_loopback, instance, caplog):
    job = make_job(instance, receiver.url)
    run = make_run(job)
    receiver.statuses = [404]

    with caplog.at_level(logging.INFO, logger="jobs.ops.notify"):
        assert deliver(job.pk, "run.failed", run.pk) == 404

    assert len(receiver.deliveries) == 1
    [record] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert str(job.pk) in record.getMessage()
    assert "run.failed" in record.getMessage()
    assert "404" in record.getMessage()


def test_it_refuses_a_private_address_unless_allowed(receiver, settings, instance, caplog):
    settings.JOBS_HTTP_ALLOW_PRIVATE = False
    job = make_job(instance, receiver.url)
    run = make_run(job)

    with caplog.at_level(logging.DEBUG):
        assert deliver(job.pk, "run.failed", run.pk) is None
        result = notify_webhook.apply(args=[job.pk, "run.failed", run.pk])

    assert result.successful()
    assert receiver.deliveries == []
    assert "destination not allowed" in caplog.text
    assert SECRET not in caplog.text


def test_the_task_retries_until_delivered(receiver, allow_loopback, instance, caplog):
    job = make_job(instance, receiver.url)
    run = make_run(job)
    receiver.statuses = [500, 503, 200]

    with caplog.at_level(logging.INFO, logger="jobs.ops.notify"):
        result = notify_webhook.apply(args=[job.pk, "run.failed", run.pk])

    assert result.successful()
    assert len(receiver.deliveries) == 3
    assert {d.headers["X-Pointscene-Delivery"] for d in receiver.deliveries} == {f"run.failed:{job.pk}:{run.pk}"}
    assert all(verify(SECRET, d) for d in receiver.deliveries)
    retries = [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]
    assert len(retries) == 2
    assert "answered 500" in retries[0]
    assert "retrying in 10 s" in retries[0]
    assert "retrying in 20 s" in retries[1]


def test_the_task_gives_up_after_five_retries(receiver, allow_loopback, instance, caplog):
    job = make_job(instance, receiver.url)
    receiver.statuses = [500] * 10

    with caplog.at_level(logging.INFO, logger="jobs.ops.notify"):
        result = notify_webhook.apply(args=[job.pk, "job.paused", None])

    assert result.successful()
    assert len(receiver.deliveries) == 6
    assert "giving up after 6 attempts" in caplog.text


def test_the_backoff_doubles_up_to_ten_minutes():
    assert [backoff_seconds(n) for n in range(8)] == [10, 20, 40, 80, 160, 320, 600, 600]


def test_the_secret_and_signature_stay_out_of_the_logs(receiver, allow_loopback, instance, caplog):
    job = make_job(instance, receiver.url)
    run = make_run(job)
    receiver.statuses = [500, 404, 200]

    with caplog.at_level(logging.DEBUG):
        notify_webhook.apply(args=[job.pk, "run.failed", run.pk])
        notify_webhook.apply(args=[job.pk, "run.failed", run.pk])

    assert len(receiver.deliveries) == 3
    assert caplog.records
    assert SECRET not in caplog.text
    assert job.webhook_secret not in caplog.text
    for delivery in receiver.deliveries:
        assert delivery.headers["X-Pointscene-Signature"].removeprefix("sha256=") not in caplog.text
