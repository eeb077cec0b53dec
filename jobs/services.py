"""Everything that changes jobs goes through here: the API, the admin and commands alike.

These functions know nothing of GraphQL or tokens; callers decide permissions first (pointscene.core.access).
"""

import copy
import logging
from typing import Any

from django.db import transaction
from django.utils import timezone

from configs.crypto import fernet
from jobs import dispatch, rules
from jobs.models import JobHistory, RunStatus, RunTrigger, ScheduledJob
from jobs.rules import POLICY_FIELDS, UNSET, Problems
from jobs.running import purge
from jobs.running.locks import request_cancel
from jobs.scheduling.reconcile import schedule_after_commit, unschedule_after_commit
from jobs.secret_args import check_keeps, editable_workflow, seal_workflow
from jobs.workflow import validate_workflow
from pointscene.core import errors
from pointscene.core.models import Instance, Resource
from pointscene.core.storage import instance_log_folder, job_log_folder

log = logging.getLogger(__name__)


def _apply_policies(job: ScheduledJob, policies: dict[str, Any], problems: Problems) -> None:
    """Sets the reliability policies given (UNSET: unchanged; see rules.clean_policies). A null webhookUrl also
    forgets the secret."""
    clean = rules.clean_policies(policies, problems)
    secret = clean.pop("webhook_secret", None)
    for keyword, value in clean.items():
        setattr(job, keyword, value)
    if secret is not None:
        job.webhook_secret = fernet().encrypt(secret.encode()).decode()
    if "webhook_url" in clean and clean["webhook_url"] is None:
        job.webhook_secret = None
    if "webhookUrl" not in problems and "webhookSecret" not in problems:
        problems.check(rules.check_webhook_signed, job.webhook_url, job.webhook_secret)


def _sealed_workflow(workflow: object, instance_id: int, previous: object = None) -> object:
    """The workflow, checked, as it is stored: secret arguments are encrypted here, before anything stores or
    shows them, and kept ones are taken from `previous` (jobs.secret_args)."""
    validate_workflow(workflow, instance_id)
    return seal_workflow(workflow, previous)


def _settle_edit(job: ScheduledJob, old: ScheduledJob) -> None:
    """What an edit implies beyond its fields, whoever made it (API or admin)."""
    if job.active and not old.active:
        job.consecutive_failures, job.paused_reason = 0, None
    job.restart_anchor_if_schedule_changed(old)


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
    retry_backoff_seconds, pause_after_failures, webhook_url, webhook_secret (all optional). Every problem of the
    arguments is reported at once."""
    rules.check_policy_keywords(policies)
    problems = Problems()
    fields = problems.check(rules.schedule_fields, frequency_type, cron_expression, interval_minutes)
    cron, interval = fields or (None, None)
    job = ScheduledJob(
        instance=instance,
        frequency_type=frequency_type,
        cron_expression=cron,
        interval_minutes=interval,
        active=True if active is None else bool(active),
        name=problems.check(rules.check_text, name, "name", rules.MAX_NAME),
        description=problems.check(rules.check_text, description, "description", rules.MAX_DESCRIPTION),
        timezone=problems.check(rules.check_timezone, tz) if tz is not None else "UTC",
        time_limit_seconds=problems.check(rules.check_time_limit, time_limit_seconds),
    )
    _apply_policies(job, {k: v for k, v in policies.items() if v is not None}, problems)
    job.workflow = problems.check(_sealed_workflow, workflow, instance.pk)
    problems.raise_any()
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
    goes back to its default. Reactivating a job clears its failure count and why it was paused. Every problem
    of the arguments is reported at once."""
    rules.check_policy_keywords(policies)
    job = ScheduledJob.objects.select_for_update().get(pk=job.pk)
    old = copy.copy(job)
    problems = Problems()

    cron = None if cron_expression is UNSET else cron_expression
    interval = None if interval_minutes is UNSET else interval_minutes
    if frequency_type is not UNSET and frequency_type is not None and frequency_type != job.frequency_type:
        fields = problems.check(rules.schedule_fields, frequency_type, cron, interval)
        if fields is not None:
            job.cron_expression, job.interval_minutes = fields
        job.frequency_type = frequency_type
    else:
        fields = problems.check(rules.same_frequency_fields, job.frequency_type, cron, interval)
        if fields is not None:
            job.cron_expression = fields[0] or job.cron_expression
            job.interval_minutes = fields[1] or job.interval_minutes

    if active is not UNSET and active is not None:
        job.active = bool(active)
    if name is not UNSET:
        job.name = problems.check(rules.check_text, name, "name", rules.MAX_NAME)
    if description is not UNSET:
        job.description = problems.check(rules.check_text, description, "description", rules.MAX_DESCRIPTION)
    if tz is not UNSET and tz is not None:
        job.timezone = problems.check(rules.check_timezone, tz)
    if time_limit_seconds is not UNSET:
        job.time_limit_seconds = problems.check(rules.check_time_limit, time_limit_seconds)
    if workflow is not UNSET:
        if workflow is None:
            problems.add("workflow", errors.INVALID_WORKFLOW, "must be an object with a tasks list")
        else:
            job.workflow = problems.check(_sealed_workflow, workflow, job.instance_id, job.workflow)
    _apply_policies(job, policies, problems)
    problems.raise_any()

    _settle_edit(job, old)
    job.save()
    schedule_after_commit(job.pk)
    return job


def validate_job(job: ScheduledJob) -> None:
    """All the rules for a complete job, for callers that build one whole (the admin). Every problem is reported
    at once."""
    if job.instance_id is None:
        raise errors.invalid("instanceId", errors.REQUIRED, "is required")
    problems = Problems()
    fields = problems.check(
        rules.schedule_fields, job.frequency_type, job.cron_expression or None, job.interval_minutes
    )
    if fields is not None:
        job.cron_expression, job.interval_minutes = fields
    job.timezone = problems.check(rules.check_timezone, job.timezone or "UTC") or job.timezone
    problems.check(rules.check_text, job.name, "name", rules.MAX_NAME)
    problems.check(rules.check_text, job.description, "description", rules.MAX_DESCRIPTION)
    problems.check(rules.check_time_limit, job.time_limit_seconds)
    job.webhook_url = job.webhook_url or None
    _apply_policies(
        job,
        # The secret is not edited this way (the admin cannot see it): what is stored stays.
        {keyword: getattr(job, keyword) for keyword in POLICY_FIELDS if keyword != "webhook_secret"},
        problems,
    )
    # Stored secret values read as {"keep": true}: the admin shows them so, and a job loaded whole saves as it was.
    job.workflow = editable_workflow(job.workflow)
    problems.check(_check_whole_workflow, job)
    problems.raise_any()


def _check_whole_workflow(job: ScheduledJob) -> None:
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
        _settle_edit(job, old)
    job.workflow = seal_workflow(job.workflow, old.workflow if old is not None else None)
    job.save()
    schedule_after_commit(job.pk)
    return job


@transaction.atomic
def delete_job(job: ScheduledJob) -> None:
    """Deletes the job, its schedule entry, its history and, after commit, its runs' logs from storage."""
    job_id, instance_id = job.pk, job.instance_id
    job.delete()
    schedule_after_commit(job_id)
    purge.forget_folder(job_log_folder(instance_id, job_id))


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
    """Deletes an instance with everything in it, its jobs' schedule entries and (after commit) run logs included."""
    job_ids = list(instance.jobs.values_list("pk", flat=True))
    instance_id = instance.pk
    instance.delete()
    unschedule_after_commit(job_ids)
    purge.forget_folder(instance_log_folder(instance_id))


def create_instance(name: str) -> Instance:
    return Instance.objects.create(name=rules.check_name(name))


def create_resource(instance: Instance, name: str) -> Resource:
    return Resource.objects.create(instance=instance, name=rules.check_name(name))
