"""Everything that changes jobs goes through here: the API, the admin and commands alike.

These functions know nothing of GraphQL or tokens; callers decide permissions first (jobs.access).
"""

from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from jobs import errors
from jobs.locks import request_cancel
from jobs.models import FrequencyType, Instance, JobHistory, Resource, RunStatus, RunTrigger, ScheduledJob
from jobs.schedule import InvalidCron, normalize_cron, validate_timezone
from jobs.scheduling import schedule_after_commit, unschedule_after_commit
from jobs.workflow import validate_workflow

UNSET: Any = object()
MAX_NAME = 200
MAX_DESCRIPTION = 10_000


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
) -> ScheduledJob:
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
    validate_workflow(workflow, instance.pk)
    job.workflow = workflow
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
) -> ScheduledJob:
    """Change only what is given. A null schedule field counts as absent; a null name clears it."""
    job = ScheduledJob.objects.select_for_update().get(pk=job.pk)
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
        job.workflow = workflow

    new_schedule = (job.frequency_type, job.cron_expression, job.interval_minutes, job.active)
    if new_schedule != old_schedule and job.active:
        # Interval jobs count from a reactivation or a schedule change, not from a stale anchor.
        job.schedule_anchor = timezone.now()
    job.save()
    schedule_after_commit(job.pk)
    return job


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
    validate_workflow(job.workflow, job.instance_id)


@transaction.atomic
def save_job(job: ScheduledJob) -> ScheduledJob:
    """Saves a job an operator edited as a whole (the admin), with the API's rules."""
    validate_job(job)
    if job.pk is not None:
        old = ScheduledJob.objects.select_for_update().get(pk=job.pk)
        if job.active and (old.active, old.frequency_type, old.interval_minutes) != (
            job.active,
            job.frequency_type,
            job.interval_minutes,
        ):
            job.schedule_anchor = timezone.now()
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

    def enqueue() -> None:
        from jobs.tasks import run_queued

        run_queued.delay(run_id)

    transaction.on_commit(enqueue)
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
