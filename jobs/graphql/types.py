from datetime import datetime

import graphene
from django.db.models import TextChoices
from django.utils import timezone

from jobs import history
from jobs.models import FrequencyType as FrequencyTypeChoices
from jobs.models import JobHistory as JobHistoryModel
from jobs.models import OverlapPolicy as OverlapPolicyChoices
from jobs.models import RunStatus as RunStatusChoices
from jobs.models import ScheduledJob as ScheduledJobModel
from jobs.preview import MAX_NEXT_RUNS
from jobs.recent_runs import Run
from jobs.running.logs import signed_log_url
from jobs.secret_args import public_workflow
from pointscene.graphql.scalars import JSON


def model_enum(choices: type[TextChoices], description: str, values: dict[str, str]) -> type[graphene.Enum]:
    """The GraphQL enum of a model's choices, so the API cannot offer a value the database does not know. The
    descriptions are the API's own (the choices' labels are for the admin)."""
    return graphene.Enum.from_enum(
        choices, description=lambda member: description if member is None else values.get(member.name)
    )


FrequencyType = model_enum(
    FrequencyTypeChoices,
    "How a job's schedule is given.",
    {
        "CRON_BASED": "cronExpression (standard 5-field cron) required, intervalMinutes must be absent.",
        "INTERVAL_BASED": "intervalMinutes (positive integer) required, cronExpression must be absent.",
    },
)
RunStatus = model_enum(
    RunStatusChoices,
    "Where a run is in its life.",
    {"MISSED": "Nothing started this slot in time (scheduler or workers down) and the catch-up window let it go."},
)
OverlapPolicy = model_enum(
    OverlapPolicyChoices,
    "What a scheduled slot does while the job's previous run is still going.",
    {
        "SKIP": "The slot is recorded as SKIPPED.",
        "BUFFER_ONE": "One slot waits and runs right after; further ones are SKIPPED.",
        "ALLOW": "The slot runs alongside.",
    },
)


_UNLISTED = object()


def enum_value(value: object) -> object:
    """Graphene and Django hand out enum members; both sides want plain string values."""
    return getattr(value, "value", value)


class StepProgress(graphene.ObjectType):
    """How far a step is, saved while it runs (every JOBS_PROGRESS_SECONDS) and kept when it ends: for a sync step
    from rclone's own stats, for http.request the answer's bytes received (of its Content-Length), for
    resource.input the files listed so far."""

    step = graphene.String(required=True, description="The workflow task the progress is of.")
    bytes_done = graphene.Float(required=True, description="Bytes transferred (or received, or listed) so far.")
    bytes_total = graphene.Float(description="Bytes in all; null until the step knows (rclone has listed enough).")
    files_done = graphene.Int(required=True, description="Files transferred so far.")
    files_total = graphene.Int(description="Files in all; null until the step knows.")
    transferring = graphene.Int(required=True, description="Files being transferred right now.")
    checks = graphene.Int(required=True, description="Files compared so far.")
    errors = graphene.Int(required=True, description="Errors so far.")
    speed = graphene.Float(required=True, description="Bytes per second, lately.")
    eta_seconds = graphene.Int(description="Seconds left, estimated; null while the step cannot tell.")
    updated_at = graphene.DateTime(required=True, description="When this progress was saved (UTC).")

    @staticmethod
    def of(step: dict) -> "StepProgress | None":
        p = step.get("progress")
        if not isinstance(p, dict):
            return None
        return StepProgress(
            step=step.get("name", ""),
            bytes_done=p.get("bytesDone", 0),
            bytes_total=p.get("bytesTotal") or None,
            files_done=p.get("filesDone", 0),
            files_total=p.get("filesTotal") or None,
            transferring=p.get("transferring", 0),
            checks=p.get("checks", 0),
            errors=p.get("errors", 0),
            speed=p.get("speed", 0),
            eta_seconds=p.get("etaSeconds"),
            updated_at=datetime.fromisoformat(p["updatedAt"]),
        )


class JobHistory(graphene.ObjectType):
    """One run of a scheduled job."""

    id = graphene.ID(required=True, description="The run's id.")
    job_id = graphene.ID(required=True, description="The id of the job this run belongs to.")
    success = graphene.Boolean(description="Null while the run is queued or going; then whether it succeeded.")
    log_path = graphene.String(description="Where the run's log is stored.")
    created_at = graphene.DateTime(required=True, description="When the run was recorded (UTC).")
    signed_log_url = graphene.String(
        description="Short-lived URL (JOBS_LOG_URL_MAX_AGE, 5 minutes by default) that downloads the log without a "
        "token, for as long as this caller may still read the run's instance; null while there is no log."
    )
    status = graphene.Field(RunStatus, required=True, description="Where the run is in its life.")
    trigger = graphene.String(required=True, description="SCHEDULE or MANUAL.")
    scheduled_for = graphene.DateTime(description="The schedule slot this run is for (UTC); null for manual runs.")
    started_at = graphene.DateTime(description="When a worker started the run (UTC).")
    finished_at = graphene.DateTime(description="When the run ended (UTC).")
    error = graphene.String(description="Why the run failed, when it did.")
    steps = JSON(description="Per workflow task: status, timings, counters, and `progress` while and after it runs.")
    heartbeat_at = graphene.DateTime(
        description="When the worker running it last said it is alive (UTC); a running run silent for longer than "
        "JOBS_RUN_LOCK_LEASE is ended FAILED, worker lost."
    )
    progress = graphene.Field(
        StepProgress,
        description="The progress of the step running now (or, once the run ended, of the last step that reported "
        "any); null when no step reported progress.",
    )

    class Meta:
        name = "JobHistory"

    @staticmethod
    def resolve_progress(row: "JobHistoryModel | Run", info) -> StepProgress | None:
        steps = [s for s in row.steps or [] if isinstance(s, dict) and isinstance(s.get("progress"), dict)]
        running = [s for s in steps if s.get("status") == "RUNNING"]
        chosen = (running or steps[-1:] or [None])[0]
        return StepProgress.of(chosen) if chosen else None

    @staticmethod
    def resolve_signed_log_url(row: "JobHistoryModel | Run", info) -> str | None:
        if not row.log_path:
            return None
        # Issued to this caller: the download checks that it may still read the run's instance.
        return signed_log_url(row, info.context, principal=info.context.principal)

    @staticmethod
    def resolve_status(row: "JobHistoryModel | Run", info) -> str:
        return enum_value(row.status)


class JobHistoryPage(graphene.ObjectType):
    """One page of an instance's run history, newest first."""

    items = graphene.List(graphene.NonNull(JobHistory), required=True, description="The runs on this page.")
    cursor = graphene.String(description="Pass as page.after to get the next page; null when the page is empty.")
    has_next_page = graphene.Boolean(required=True, description="True when older runs follow this page.")

    class Meta:
        name = "JobHistoryPage"


class PageInput(graphene.InputObjectType):
    """Which page of a list to return."""

    first = graphene.Int(description="How many items, from 1 to 500; default 100.")
    after = graphene.String(description="The cursor of the previous page, to continue after it.")

    class Meta:
        name = "PageInput"


class JobHistoryFilter(graphene.InputObjectType):
    """Which of an instance's runs to list; every condition is optional, and they combine with AND."""

    job_id = graphene.ID(description="Only this job's runs; a job of another instance matches nothing.")
    status = RunStatus(description="Only runs with this status.")
    trigger = graphene.String(description="Only runs with this trigger: SCHEDULE or MANUAL.")
    created_from = graphene.DateTime(
        name="from", description="Only runs recorded at or after this time; needs a time zone (Z or +02:00)."
    )
    created_to = graphene.DateTime(
        name="to", description="Only runs recorded before this time; needs a time zone (Z or +02:00)."
    )

    class Meta:
        name = "JobHistoryFilter"


class ScheduledJob(graphene.ObjectType):
    """A workflow that runs on a cron expression or every N minutes."""

    id = graphene.ID(required=True, description="The job's id.")
    instance_id = graphene.ID(required=True, description="The instance the job belongs to.")
    name = graphene.String(description="A human-readable name.")
    description = graphene.String(description="What the job does.")
    workflow = JSON(
        required=True,
        description="The workflow the job runs, as last given, except secret arguments: an http.request task's "
        'secretHeaders show as a list of {"name", "isSet"}, never their values. To keep a stored secret header in a '
        'new workflow (updateScheduledJob), give it as {"keep": true} in place of its value (same task name, type '
        "and URL scheme, host and port); a string replaces it, and a header left out is removed.",
    )
    frequency_type = graphene.Field(FrequencyType, required=True, description="How the schedule is given.")
    cron_expression = graphene.String(description="The cron expression, for CRON_BASED jobs.")
    interval_minutes = graphene.Int(description="Minutes between runs, for INTERVAL_BASED jobs.")
    active = graphene.Boolean(required=True, description="Whether the job runs on its schedule.")
    next_run = graphene.DateTime(description="When the job runs next (UTC); null while inactive.")
    last_run = graphene.DateTime(description="When the latest run started (UTC); null until the first run.")
    created_at = graphene.DateTime(required=True, description="When the job was created (UTC).")
    history = graphene.List(
        graphene.NonNull(JobHistory), required=True, description="The latest runs (up to 10), newest first."
    )
    timezone = graphene.String(
        required=True, description="IANA time zone in which the cron expression is read; default UTC."
    )
    next_runs = graphene.List(
        graphene.NonNull(graphene.DateTime),
        required=True,
        count=graphene.Int(default_value=5, description=f"How many upcoming runs, from 1 to {MAX_NEXT_RUNS}."),
        description="The next runs (UTC), soonest first; empty while inactive.",
    )
    schedule_description = graphene.String(required=True, description='The schedule in words: "At 06:00".')
    time_limit_seconds = graphene.Int(description="Seconds a run may take; null means the server's default.")
    overlap_policy = graphene.Field(
        OverlapPolicy, required=True, description="What a slot does while the previous run is still going."
    )
    catchup_window_minutes = graphene.Int(
        required=True, description="Missed slots within this many minutes run once, coalesced; 0: recorded MISSED."
    )
    jitter_seconds = graphene.Int(required=True, description="Runs start up to this many seconds after their slot.")
    max_retries = graphene.Int(required=True, description="Extra attempts of a step that failed in a retryable way.")
    retry_backoff_seconds = graphene.Int(
        required=True, description="Seconds before the first retry; doubles with each further attempt."
    )
    pause_after_failures = graphene.Int(
        description="The job deactivates itself after this many consecutive failed runs; null: never."
    )
    consecutive_failures = graphene.Int(required=True, description="Failed runs in a row since the last success.")
    paused_reason = graphene.String(description="Why the service deactivated the job itself; null otherwise.")
    webhook_url = graphene.String(description="Where failed runs and the pause are posted; null: nowhere.")
    webhook_secret_set = graphene.Boolean(
        required=True, description="Whether a webhook signing secret is stored (the secret itself is never shown)."
    )

    class Meta:
        name = "ScheduledJob"

    @staticmethod
    def resolve_workflow(job: ScheduledJobModel, info) -> object:
        return public_workflow(job.workflow)

    @staticmethod
    def resolve_webhook_secret_set(job: ScheduledJobModel, info) -> bool:
        return bool(job.webhook_secret)

    @staticmethod
    def resolve_next_run(job: ScheduledJobModel, info):
        listed = getattr(job, "listed_next_run", _UNLISTED)
        return job.next_run(timezone.now()) if listed is _UNLISTED else listed

    @staticmethod
    def resolve_last_run(job: ScheduledJobModel, info):
        return job.last_run_at

    @staticmethod
    def resolve_history(job: ScheduledJobModel, info):
        return history.recent_history(job)

    @staticmethod
    def resolve_next_runs(job: ScheduledJobModel, info, count: int = 5):
        # Out-of-range counts are clamped: this is a convenience view, not a place to fail a whole query.
        return job.next_runs(max(1, min(count, MAX_NEXT_RUNS)), timezone.now())

    @staticmethod
    def resolve_schedule_description(job: ScheduledJobModel, info) -> str:
        return job.schedule_description


class ScheduledJobFilter(graphene.InputObjectType):
    """Which of an instance's jobs to list; every condition is optional, and they combine with AND."""

    active = graphene.Boolean(description="Only active (true) or only inactive (false) jobs.")
    name_contains = graphene.String(description="Only jobs whose name contains this text, ignoring case.")
    last_run_status = RunStatus(description="Only jobs whose latest run has this status; jobs never run never match.")
    task_type = graphene.String(description='Only jobs with a task of this type in their workflow: "rclone.sync".')

    class Meta:
        name = "ScheduledJobFilter"


class ScheduledJobPage(graphene.ObjectType):
    """One page of an instance's jobs, oldest first."""

    items = graphene.List(graphene.NonNull(ScheduledJob), required=True, description="The jobs on this page.")
    cursor = graphene.String(description="Pass as `after` to get the next page; null when the page is empty.")
    has_next_page = graphene.Boolean(required=True, description="True when more jobs follow this page.")

    class Meta:
        name = "ScheduledJobPage"


class WorkflowProblem(graphene.ObjectType):
    """One thing wrong with a workflow."""

    field = graphene.String(required=True, description='Where, as a path: "workflow.tasks[1].inputs[0]".')
    code = graphene.String(required=True, description="A stable code, e.g. INVALID_WORKFLOW.")
    message = graphene.String(required=True, description="What is wrong, for people.")

    class Meta:
        name = "ValidationError"


class SchedulePreview(graphene.ObjectType):
    """The schedule a job with given arguments would have (previewSchedule)."""

    next_runs = graphene.List(
        graphene.NonNull(graphene.DateTime),
        required=True,
        description="The next runs, UTC; an interval schedule counts from now, as a job created now would.",
    )
    schedule_description = graphene.String(required=True, description='The schedule in words, e.g. "At 02:30".')
    timezone = graphene.String(required=True, description="The IANA time zone the cron expression is read in.")

    @staticmethod
    def resolve_schedule_description(preview, info):
        return preview.description
