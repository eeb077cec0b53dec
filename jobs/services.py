"""Everything that changes jobs goes through here: the API, the admin and commands alike.

These functions know nothing of GraphQL or tokens; callers decide permissions first (pointscene.core.access).
"""

import logging
import unicodedata
from typing import Any
from urllib.parse import urlsplit

from cryptography.fernet import InvalidToken
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from configs.crypto import DecryptionFailed, fernet
from jobs import dispatch
from jobs.models import (
    FrequencyType,
    JobHistory,
    OverlapPolicy,
    RunStatus,
    RunTrigger,
    ScheduledJob,
)
from jobs.running.locks import request_cancel
from jobs.scheduling.reconcile import schedule_after_commit, unschedule_after_commit
from jobs.secret_args import check_keeps, editable_workflow, seal_workflow
from jobs.timing import InvalidCron, normalize_cron, validate_timezone
from jobs.workflow import validate_workflow
from pointscene.core import errors
from pointscene.core.models import Instance, Resource

log = logging.getLogger(__name__)

UNSET: Any = object()
MAX_NAME = 200
MAX_DESCRIPTION = 10_000
# Beat looks back at most two days for a late slot (jobs.scheduling.beat.MAX_CATCHUP).
MAX_CATCHUP_WINDOW_MINUTES = 2 * 24 * 60
MAX_JITTER_SECONDS = 3600
MAX_RETRIES = 10
MAX_RETRY_BACKOFF_SECONDS = 3600
MAX_PAUSE_AFTER_FAILURES = 1000
MIN_WEBHOOK_SECRET, MAX_WEBHOOK_SECRET = 16, 256
MAX_URL = 2048

# keyword -> (GraphQL argument name, lowest, highest) for the plain whole-number policies of a job.
_POLICY_NUMBERS = {
    "catchup_window_minutes": ("catchupWindowMinutes", 0, MAX_CATCHUP_WINDOW_MINUTES),
    "jitter_seconds": ("jitterSeconds", 0, MAX_JITTER_SECONDS),
    "max_retries": ("maxRetries", 0, MAX_RETRIES),
    "retry_backoff_seconds": ("retryBackoffSeconds", 1, MAX_RETRY_BACKOFF_SECONDS),
}
# Every reliability policy a job carries, by model field (= keyword of create_job/update_job).
POLICY_FIELDS = (*_POLICY_NUMBERS, "overlap_policy", "pause_after_failures", "webhook_url", "webhook_secret")


def _check_cron(value: object, field: str = "cronExpression") -> str:
    if not isinstance(value, str):
        raise errors.invalid(field, errors.INVALID_CRON, "must be a cron expression string")
    try:
        normalize_cron(value)
    except InvalidCron as exc:
        raise errors.invalid(field, errors.INVALID_CRON, str(exc)) from None
    return " ".join(value.split())


def _check_interval(value: object, field: str = "intervalMinutes") -> int:
    limit = settings.JOBS_MAX_INTERVAL_MINUTES
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= limit:
        raise errors.invalid(field, errors.INVALID_INTERVAL, f"must be a whole number of minutes from 1 to {limit}")
    return value


def _check_timezone(value: object, field: str = "timezone") -> str:
    if not isinstance(value, str):
        raise errors.invalid(field, errors.INVALID_TIMEZONE, "must be an IANA time zone name")
    try:
        validate_timezone(value)
    except (KeyError, ValueError):
        raise errors.invalid(field, errors.INVALID_TIMEZONE, f"{value!r} is not an IANA time zone name") from None
    return value


def _check_time_limit(value: object, field: str = "timeLimitSeconds") -> int | None:
    if value is None:
        return None
    limit = settings.JOBS_RUN_TIME_LIMIT
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= limit:
        raise errors.invalid(field, errors.INVALID_VALUE, f"must be from 1 to {limit} seconds (the server's limit)")
    return value


def _check_number(value: object, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise errors.invalid(field, errors.INVALID_VALUE, f"must be a whole number from {low} to {high}")
    return value


def _check_overlap(value: object) -> str:
    if value not in OverlapPolicy.values:
        raise errors.invalid("overlapPolicy", errors.INVALID_VALUE, f"must be one of {', '.join(OverlapPolicy.values)}")
    return value


def _check_webhook_url(value: object) -> str:
    message = f"must be an http:// or https:// URL with a host, of at most {MAX_URL} characters"
    if not isinstance(value, str) or len(value) > MAX_URL:
        raise errors.invalid("webhookUrl", errors.INVALID_VALUE, message)
    if any(ch.isspace() or unicodedata.category(ch) == "Cc" for ch in value):
        raise errors.invalid("webhookUrl", errors.INVALID_VALUE, message)
    try:
        parts = urlsplit(value)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise errors.invalid("webhookUrl", errors.INVALID_VALUE, message) from None
    if parts.scheme.lower() not in ("http", "https") or not host:
        raise errors.invalid("webhookUrl", errors.INVALID_VALUE, message)
    return value


def _check_webhook_secret(value: object) -> str:
    if not isinstance(value, str) or not MIN_WEBHOOK_SECRET <= len(value) <= MAX_WEBHOOK_SECRET:
        raise errors.invalid(
            "webhookSecret",
            errors.INVALID_VALUE,
            f"must be a string of {MIN_WEBHOOK_SECRET} to {MAX_WEBHOOK_SECRET} characters",
        )
    return value


def _apply_policies(job: ScheduledJob, policies: dict[str, Any]) -> None:
    """Sets the reliability policies given (UNSET: unchanged). A null number resets it to its default; a null
    webhookUrl turns notifications off and forgets the secret."""
    for keyword, (field, low, high) in _POLICY_NUMBERS.items():
        value = policies.get(keyword, UNSET)
        if value is UNSET:
            continue
        if value is None:
            value = ScheduledJob._meta.get_field(keyword).default
        setattr(job, keyword, _check_number(value, field, low, high))
    overlap = policies.get("overlap_policy", UNSET)
    if overlap is not UNSET:
        job.overlap_policy = OverlapPolicy.SKIP if overlap is None else _check_overlap(overlap)
    pause = policies.get("pause_after_failures", UNSET)
    if pause is not UNSET:
        job.pause_after_failures = (
            None if pause is None else _check_number(pause, "pauseAfterFailures", 1, MAX_PAUSE_AFTER_FAILURES)
        )
    url = policies.get("webhook_url", UNSET)
    secret = policies.get("webhook_secret", UNSET)
    if secret is not UNSET and secret is not None:
        job.webhook_secret = fernet().encrypt(_check_webhook_secret(secret).encode()).decode()
    if url is not UNSET:
        job.webhook_url = None if url is None else _check_webhook_url(url)
        if url is None:
            job.webhook_secret = None
    if job.webhook_url and not job.webhook_secret:
        raise errors.invalid("webhookSecret", errors.REQUIRED, "is required with webhookUrl: it signs every delivery")


def _check_text(value: object, field: str, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise errors.invalid(field, errors.INVALID_VALUE, f"must be a string of at most {limit} characters")
    return value


def _schedule_fields(
    frequency_type: str,
    cron_expression: object,
    interval_minutes: object,
) -> tuple[str | None, int | None]:
    """(cron, interval) for a frequency type, enforcing 'required' and 'must be absent'. None means absent."""
    if frequency_type == FrequencyType.CRON_BASED:
        if cron_expression is None:
            raise errors.invalid("cronExpression", errors.REQUIRED, "is required when frequencyType is CRON_BASED")
        if interval_minutes is not None:
            raise errors.invalid(
                "intervalMinutes", errors.NOT_ALLOWED, "must be absent when frequencyType is CRON_BASED"
            )
        return _check_cron(cron_expression), None
    if frequency_type == FrequencyType.INTERVAL_BASED:
        if interval_minutes is None:
            raise errors.invalid("intervalMinutes", errors.REQUIRED, "is required when frequencyType is INTERVAL_BASED")
        if cron_expression is not None:
            raise errors.invalid(
                "cronExpression", errors.NOT_ALLOWED, "must be absent when frequencyType is INTERVAL_BASED"
            )
        return None, _check_interval(interval_minutes)
    raise errors.invalid("frequencyType", errors.INVALID_VALUE, "must be CRON_BASED or INTERVAL_BASED")


@transaction.atomic
def create_job(
    *,
    instance: Instance,
    workflow: object,
    frequency_type: str,
    cron_expression: str | None = None,
    interval_minutes: int | None = None,
    active: bool | None = None,
    name: str | None = None,
    description: str | None = None,
    tz: str | None = None,
    time_limit_seconds: int | None = None,
    **policies: Any,
) -> ScheduledJob:
    """Creates a job. `policies`: overlap_policy, catchup_window_minutes, jitter_seconds, max_retries,
    retry_backoff_seconds, pause_after_failures, webhook_url, webhook_secret (all optional)."""
    _known_policies(policies)
    cron, interval = _schedule_fields(frequency_type, cron_expression, interval_minutes)
    job = ScheduledJob(
        instance=instance,
        frequency_type=frequency_type,
        cron_expression=cron,
        interval_minutes=interval,
        active=True if active is None else bool(active),
        name=_check_text(name, "name", MAX_NAME),
        description=_check_text(description, "description", MAX_DESCRIPTION),
        timezone=_check_timezone(tz) if tz is not None else "UTC",
        time_limit_seconds=_check_time_limit(time_limit_seconds),
    )
    _apply_policies(job, {k: v for k, v in policies.items() if v is not None})
    validate_workflow(workflow, instance.pk)
    # Secret arguments are encrypted here, before anything stores or shows them (jobs.secret_args).
    job.workflow = seal_workflow(workflow)
    job.save()
    schedule_after_commit(job.pk)
    return job


@transaction.atomic
def update_job(
    job: ScheduledJob,
    *,
    workflow: object = UNSET,
    frequency_type: str | None = UNSET,
    cron_expression: str | None = UNSET,
    interval_minutes: int | None = UNSET,
    active: bool | None = UNSET,
    name: str | None = UNSET,
    description: str | None = UNSET,
    tz: str | None = UNSET,
    time_limit_seconds: int | None = UNSET,
    **policies: Any,
) -> ScheduledJob:
    """Change only what is given. A null schedule field counts as absent; a null name clears it; a null policy
    goes back to its default. Reactivating a job clears its failure count and why it was paused."""
    _known_policies(policies)
    job = ScheduledJob.objects.select_for_update().get(pk=job.pk)
    was_active = job.active
    old_schedule = (job.frequency_type, job.cron_expression, job.interval_minutes, job.active)

    cron = None if cron_expression is UNSET else cron_expression
    interval = None if interval_minutes is UNSET else interval_minutes
    if frequency_type is not UNSET and frequency_type is not None and frequency_type != job.frequency_type:
        job.cron_expression, job.interval_minutes = _schedule_fields(frequency_type, cron, interval)
        job.frequency_type = frequency_type
    else:
        if job.frequency_type == FrequencyType.CRON_BASED:
            if interval is not None:
                raise errors.invalid(
                    "intervalMinutes", errors.NOT_ALLOWED, "this job is CRON_BASED; change frequencyType too"
                )
            if cron is not None:
                job.cron_expression = _check_cron(cron)
        else:
            if cron is not None:
                raise errors.invalid(
                    "cronExpression", errors.NOT_ALLOWED, "this job is INTERVAL_BASED; change frequencyType too"
                )
            if interval is not None:
                job.interval_minutes = _check_interval(interval)

    if active is not UNSET and active is not None:
        job.active = bool(active)
    if name is not UNSET:
        job.name = _check_text(name, "name", MAX_NAME)
    if description is not UNSET:
        job.description = _check_text(description, "description", MAX_DESCRIPTION)
    if tz is not UNSET and tz is not None:
        job.timezone = _check_timezone(tz)
    if time_limit_seconds is not UNSET:
        job.time_limit_seconds = _check_time_limit(time_limit_seconds)
    if workflow is not UNSET:
        if workflow is None:
            raise errors.invalid("workflow", errors.INVALID_WORKFLOW, "must be an object with a tasks list")
        validate_workflow(workflow, job.instance_id)
        job.workflow = seal_workflow(workflow, job.workflow)
    _apply_policies(job, policies)
    if job.active and not was_active:
        job.consecutive_failures, job.paused_reason = 0, None

    new_schedule = (job.frequency_type, job.cron_expression, job.interval_minutes, job.active)
    if new_schedule != old_schedule and job.active:
        # Interval jobs count from a reactivation or a schedule change, not from a stale anchor.
        job.schedule_anchor = timezone.now()
    job.save()
    schedule_after_commit(job.pk)
    return job


def _known_policies(policies: dict[str, Any]) -> None:
    unknown = set(policies) - set(POLICY_FIELDS)
    if unknown:
        raise TypeError(f"unknown job policies: {sorted(unknown)}")


def rotate_webhook_secrets(batch_size: int = 500) -> int:
    """Re-encrypts every job's webhook secret under the newest config key (rotate_config_keys). Rows rewritten."""
    multi = fernet()
    rotated, last_id = 0, 0
    while True:
        with transaction.atomic():
            jobs = list(
                ScheduledJob.objects.select_for_update()
                .filter(pk__gt=last_id, webhook_secret__isnull=False)
                .order_by("pk")
                .only("pk", "webhook_secret")[:batch_size]
            )
            if not jobs:
                return rotated
            for job in jobs:
                try:
                    job.webhook_secret = multi.rotate(job.webhook_secret.encode()).decode()
                except InvalidToken:
                    raise DecryptionFailed(
                        f"the webhook secret of job {job.pk} cannot be decrypted with any configured key"
                    ) from None
            ScheduledJob.objects.bulk_update(jobs, ["webhook_secret"])
        rotated += len(jobs)
        last_id = jobs[-1].pk


def validate_job(job: ScheduledJob) -> None:
    """All the rules for a complete job, for callers that build one whole (the admin)."""
    if job.instance_id is None:
        raise errors.invalid("instanceId", errors.REQUIRED, "is required")
    job.cron_expression, job.interval_minutes = _schedule_fields(
        job.frequency_type, job.cron_expression or None, job.interval_minutes
    )
    job.timezone = _check_timezone(job.timezone or "UTC")
    _check_text(job.name, "name", MAX_NAME)
    _check_text(job.description, "description", MAX_DESCRIPTION)
    _check_time_limit(job.time_limit_seconds)
    job.webhook_url = job.webhook_url or None
    _apply_policies(
        job,
        # The secret is not edited this way (the admin cannot see it): what is stored stays.
        {keyword: getattr(job, keyword) for keyword in POLICY_FIELDS if keyword != "webhook_secret"},
    )
    # Stored secret values read as {"keep": true}: the admin shows them so, and a job loaded whole saves as it was.
    job.workflow = editable_workflow(job.workflow)
    validate_workflow(job.workflow, job.instance_id)
    stored = ScheduledJob.objects.filter(pk=job.pk).values_list("workflow", flat=True).first() if job.pk else None
    check_keeps(job.workflow, stored)


@transaction.atomic
def save_job(job: ScheduledJob) -> ScheduledJob:
    """Saves a job an operator edited as a whole (the admin), with the API's rules."""
    validate_job(job)
    old = None
    if job.pk is not None:
        old = ScheduledJob.objects.select_for_update().get(pk=job.pk)
        if job.active and not old.active:
            job.consecutive_failures, job.paused_reason = 0, None
        if job.active and (old.active, old.frequency_type, old.interval_minutes) != (
            job.active,
            job.frequency_type,
            job.interval_minutes,
        ):
            job.schedule_anchor = timezone.now()
    job.workflow = seal_workflow(job.workflow, old.workflow if old is not None else None)
    job.save()
    schedule_after_commit(job.pk)
    return job


@transaction.atomic
def delete_job(job: ScheduledJob) -> None:
    """Deletes the job, its schedule entry and its history."""
    job_id = job.pk
    job.delete()
    schedule_after_commit(job_id)


@transaction.atomic
def run_now(job: ScheduledJob) -> JobHistory:
    """Queues a run outside the schedule (trigger MANUAL); a worker picks it up once this commits."""
    run = JobHistory.objects.create(job=job, instance_id=job.instance_id, trigger=RunTrigger.MANUAL)
    run_id = run.pk

    transaction.on_commit(lambda: dispatch.run_queued(run_id))
    return run


def cancel_run(run: JobHistory) -> JobHistory:
    """Cancels a queued run at once; tells the worker running a running one to stop it (it marks it CANCELLED).

    The running case only signals through Redis and leaves the row alone: the worker must be free to write the
    row while the caller's transaction is still open (the API waits for it inside one)."""
    now = timezone.now()
    if JobHistory.objects.filter(pk=run.pk, status=RunStatus.QUEUED).update(
        status=RunStatus.CANCELLED, finished_at=now, error="cancelled before it started", cancel_requested_at=now
    ):
        return JobHistory.objects.get(pk=run.pk)
    run.refresh_from_db()
    if run.status == RunStatus.RUNNING:
        request_cancel(run.pk)
        return run
    raise errors.invalid("jobHistoryId", errors.NOT_CANCELLABLE, f"the run has already ended ({run.status})")


@transaction.atomic
def delete_instance(instance: Instance) -> None:
    """Deletes an instance with everything in it, its jobs' schedule entries included."""
    job_ids = list(instance.jobs.values_list("pk", flat=True))
    instance.delete()
    unschedule_after_commit(job_ids)


def _check_name(name: object) -> str:
    name = name.strip() if isinstance(name, str) else ""
    if not name or len(name) > MAX_NAME:
        raise errors.invalid("name", errors.INVALID_VALUE, f"must be 1 to {MAX_NAME} characters")
    return name


def create_instance(name: str) -> Instance:
    return Instance.objects.create(name=_check_name(name))


def create_resource(instance: Instance, name: str) -> Resource:
    return Resource.objects.create(instance=instance, name=_check_name(name))
