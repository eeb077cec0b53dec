"""The per-job failure webhook: operators hear about failed runs and paused jobs where they already look (chat,
paging, their own service) instead of having to poll the history.

On every FAILED run the job's webhook gets event "run.failed"; when pauseAfterFailures deactivates the job it gets
"job.paused". The body is JSON (see `payload`), sent by the Celery task jobs.notify_webhook, whose arguments are ids
only: the secret and the body are never in the broker. The receiver verifies a delivery with the secret it shares
with the job: X-Pointscene-Signature is "sha256=" + hex HMAC-SHA256(secret, "<timestamp>." + body), and
X-Pointscene-Timestamp lets it refuse old deliveries replayed at it. X-Pointscene-Delivery stays the same across
retries of one delivery, so a receiver can drop duplicates.

Connection errors, timeouts, 429 and 5xx are retried with exponential backoff (10 s doubling, at most 10 min, 5
retries); other answers are final. Targets go through the same address filter as the http.request task type: no
private, loopback or link-local addresses unless JOBS_HTTP_ALLOW_PRIVATE is set, no environment proxies, and no
redirects. Logs name the job, the event and the status, never the secret or the signature.
"""

import hashlib
import hmac
import json
import logging
import time
from datetime import UTC, datetime

import requests
from celery import shared_task
from cryptography.fernet import InvalidToken

from configs.crypto import fernet
from jobs.models import JobHistory, ScheduledJob
from jobs.ops.outbound import RefusedAddress, hardened_session
from pointscene.logconfig import log_context, secret_values

log = logging.getLogger(__name__)

RUN_FAILED = "run.failed"
JOB_PAUSED = "job.paused"
EVENTS = (RUN_FAILED, JOB_PAUSED)
# (connect, read) seconds: a receiver should answer at once and do its work later.
TIMEOUT = (5, 10)
MAX_RETRIES = 5
MAX_BACKOFF_SECONDS = 600


class WebhookRetry(Exception):
    """A delivery that may work later: connection error, timeout, 429 or 5xx. Carries no secret, body or URL."""


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The X-Pointscene-Signature header value: HMAC-SHA256 over the timestamp, a dot and the body."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def delivery_id(event: str, job_id: int, run_id: int | None) -> str:
    """Stable across retries of one delivery: "<event>:<job id>:<run id>" ("-" when there is no run)."""
    return f"{event}:{job_id}:{'-' if run_id is None else run_id}"


def backoff_seconds(retries: int) -> int:
    """Wait before retry number `retries` + 1: 10 s, doubling, at most MAX_BACKOFF_SECONDS."""
    return min(MAX_BACKOFF_SECONDS, 10 * 2**retries)


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value else None


def payload(job: ScheduledJob, event: str, run: JobHistory | None, sent_at: datetime | None = None) -> dict:
    """The JSON body of a delivery. Only what the job's owner sees in the API anyway; never a secret."""
    return {
        "event": event,
        "deliveryId": delivery_id(event, job.pk, run.pk if run else None),
        "job": {
            "id": str(job.pk),
            "name": job.name,
            "instanceId": str(job.instance_id),
            "active": job.active,
            "consecutiveFailures": job.consecutive_failures,
            "pausedReason": job.paused_reason,
        },
        "run": None
        if run is None
        else {
            "id": str(run.pk),
            "status": run.status,
            "trigger": run.trigger,
            "scheduledFor": _iso(run.scheduled_for),
            "startedAt": _iso(run.started_at),
            "finishedAt": _iso(run.finished_at),
            "error": run.error,
        },
        "sentAt": _iso(sent_at or datetime.now(UTC)),
    }


def _secret(job: ScheduledJob) -> str | None:
    if not job.webhook_secret:
        log.error("webhook of job %s: no secret is stored, nothing sent", job.pk)
        return None
    try:
        return fernet().decrypt(job.webhook_secret.encode()).decode()
    except InvalidToken:
        log.error("webhook of job %s: the stored secret cannot be decrypted with the configured keys", job.pk)
        return None


def deliver(job_id: int, event: str, run_id: int | None = None) -> int | None:
    """Sends one delivery now. Returns the HTTP status the receiver answered, or None when nothing was sent (the
    job is gone, has no webhook, its secret cannot be read, or the target is refused).

    Raises WebhookRetry when a later attempt may work; any other answer is final and only logged."""
    if event not in EVENTS:
        raise ValueError(f"unknown webhook event {event!r}")
    job = ScheduledJob.objects.filter(pk=job_id).first()
    if job is None or not job.webhook_url:
        log.info("webhook of job %s (%s): job deleted or no webhook URL, nothing sent", job_id, event)
        return None
    secret = _secret(job)
    if secret is None:
        return None
    with secret_values([secret]):
        return _send(job, event, run_id, secret)


def _send(job: ScheduledJob, event: str, run_id: int | None, secret: str) -> int | None:
    job_id = job.pk
    run = JobHistory.objects.filter(pk=run_id, job_id=job_id).first() if run_id is not None else None
    body = json.dumps(payload(job, event, run), separators=(",", ":")).encode()
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "X-Pointscene-Event": event,
        "X-Pointscene-Delivery": delivery_id(event, job_id, run_id),
        "X-Pointscene-Timestamp": str(timestamp),
        "X-Pointscene-Signature": sign(secret, timestamp, body),
    }
    try:
        with hardened_session(timeout=TIMEOUT) as session:
            response = session.post(job.webhook_url, data=body, headers=headers, timeout=TIMEOUT, allow_redirects=False)
    except RefusedAddress:
        log.warning(
            "webhook of job %s (%s): destination not allowed (a private or unresolvable address; "
            "JOBS_HTTP_ALLOW_PRIVATE=1 allows private ones); nothing sent",
            job_id,
            event,
        )
        return None
    except requests.Timeout:
        raise WebhookRetry(f"webhook of job {job_id} ({event}) timed out") from None
    except requests.ConnectionError as exc:
        raise WebhookRetry(f"webhook of job {job_id} ({event}) could not connect: {type(exc).__name__}") from None
    except requests.RequestException as exc:
        log.warning("webhook of job %s (%s) failed: %s; giving up", job_id, event, type(exc).__name__)
        return None
    status = response.status_code
    response.close()
    if 200 <= status < 300:
        log.info("webhook of job %s (%s) delivered: %s", job_id, event, status)
        return status
    if status == 429 or status >= 500:
        raise WebhookRetry(f"webhook of job {job_id} ({event}) answered {status}")
    log.warning("webhook of job %s (%s) answered %s; giving up", job_id, event, status)
    return status


@shared_task(name="jobs.notify_webhook", bind=True, max_retries=MAX_RETRIES, acks_late=True, ignore_result=True)
def notify_webhook(self, job_id: int, event: str, run_id: int | None = None) -> None:
    """Ids only in the message: the body is built and signed when the delivery is made."""
    with log_context(job_id=job_id, run_id=run_id):
        try:
            deliver(job_id, event, run_id)
        except WebhookRetry as exc:
            retries = self.request.retries or 0
            if retries >= self.max_retries:
                log.error("%s; giving up after %d attempts", exc, retries + 1)
                return
            countdown = backoff_seconds(retries)
            log.warning("%s; retrying in %d s", exc, countdown)
            raise self.retry(exc=exc, countdown=countdown) from None
