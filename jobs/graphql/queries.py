import graphene
from django.utils import timezone
from graphql import FieldNode, FragmentSpreadNode, InlineFragmentNode

from jobs import history, job_list
from jobs.graphql import listing
from jobs.graphql.types import (
    FrequencyType,
    JobHistory,
    JobHistoryFilter,
    JobHistoryPage,
    PageInput,
    ScheduledJob,
    ScheduledJobFilter,
    ScheduledJobPage,
    SchedulePreview,
    WorkflowProblem,
    enum_value,
)
from jobs.models import JobHistory as JobHistoryModel
from jobs.models import ScheduledJob as ScheduledJobModel
from jobs.preview import MAX_NEXT_RUNS, preview_schedule
from jobs.workflow import check_workflow
from pointscene.core.access import Need, NotFound, require_instance
from pointscene.graphql.base import id_arg, principal
from pointscene.graphql.errors import coded_errors
from pointscene.graphql.scalars import JSON


def visible_job(info, job_id: object, need: Need = Need.READ, field: str = "jobId") -> ScheduledJobModel:
    """The job if the caller may `need` it, else NotFound/Forbidden; used by every job operation."""
    job = ScheduledJobModel.objects.filter(pk=id_arg(job_id, field, "job")).first()
    if job is None:
        raise NotFound(field, "job")
    require_instance(principal(info), job.instance_id, need, field, "job")
    return job


class JobQueries(graphene.ObjectType):
    get_scheduled_jobs = graphene.List(
        graphene.NonNull(ScheduledJob),
        required=True,
        instance_id=graphene.ID(required=True, description="The instance whose jobs to list."),
        description="Every scheduled job of an instance, oldest first.",
    )
    scheduled_jobs = graphene.Field(
        ScheduledJobPage,
        required=True,
        instance_id=graphene.ID(required=True, description="The instance whose jobs to list."),
        first=graphene.Int(description="How many jobs, from 1 to 500; default 100."),
        after=graphene.String(description="The cursor of the previous page, to continue after it."),
        filter=graphene.Argument(ScheduledJobFilter, description="Which jobs to list; all of them when absent."),
        description="An instance's jobs, oldest first, one page at a time.",
    )
    get_scheduled_job = graphene.Field(
        ScheduledJob,
        job_id=graphene.ID(required=True, description="The job's id."),
        description="One job with its latest runs; null (and a NOT_FOUND error) when it is not visible.",
    )
    get_instance_job_history = graphene.Field(
        JobHistoryPage,
        required=True,
        instance_id=graphene.ID(required=True, description="The instance whose runs to list."),
        page=graphene.Argument(PageInput, description="Page size and the cursor to continue after."),
        filter=graphene.Argument(JobHistoryFilter, description="Which runs to list; all of them when absent."),
        description="An instance's runs of all its jobs, newest first, one page at a time.",
    )
    get_scheduled_job_history = graphene.Field(
        JobHistory,
        job_history_id=graphene.ID(required=True, description="The run's id."),
        description="One run; null (and a NOT_FOUND error) when it is not visible.",
    )

    validate_workflow = graphene.List(
        graphene.NonNull(WorkflowProblem),
        required=True,
        instance_id=graphene.ID(required=True, description="The instance the workflow would run in."),
        workflow=JSON(required=True, description="The workflow to check."),
        description="Every problem createScheduledJob would find in a workflow; empty when it is valid.",
    )

    preview_schedule = graphene.Field(
        SchedulePreview,
        required=True,
        frequency_type=FrequencyType(required=True, description="How the schedule is given."),
        cron_expression=graphene.String(description="Standard 5-field cron; required for CRON_BASED only."),
        interval_minutes=graphene.Int(description="Minutes between runs; required for INTERVAL_BASED only."),
        timezone=graphene.String(description="IANA time zone in which cronExpression is read; default UTC."),
        count=graphene.Int(default_value=5, description=f"How many upcoming runs, from 1 to {MAX_NEXT_RUNS}."),
        description=(
            "The schedule a job with these arguments would have, without making one: its next runs and the "
            "schedule in words, or the coded errors createScheduledJob would give for the same arguments."
        ),
    )

    @staticmethod
    @coded_errors
    def resolve_preview_schedule(root, info, frequency_type, count=5, **optional):
        return preview_schedule(
            enum_value(frequency_type),
            optional.get("cron_expression"),
            optional.get("interval_minutes"),
            optional.get("timezone"),
            count,
        )

    @staticmethod
    @coded_errors
    def resolve_validate_workflow(root, info, instance_id, workflow):
        instance = require_instance(
            principal(info), id_arg(instance_id, "instanceId", "instance"), Need.READ, "instanceId"
        )
        return [
            WorkflowProblem(field=field, code="INVALID_WORKFLOW", message=message)
            for field, message in check_workflow(workflow, instance)
        ]

    @staticmethod
    @coded_errors
    def resolve_get_scheduled_jobs(root, info, instance_id):
        instance = require_instance(
            principal(info), id_arg(instance_id, "instanceId", "instance"), Need.READ, "instanceId"
        )
        jobs = list(ScheduledJobModel.objects.filter(instance_id=instance).order_by("id"))
        return listing.prepare(jobs, _selected(info), timezone.now())

    @staticmethod
    @coded_errors
    def resolve_scheduled_jobs(root, info, instance_id, first=None, after=None, filter=None):  # noqa: A002
        instance = require_instance(
            principal(info), id_arg(instance_id, "instanceId", "instance"), Need.READ, "instanceId"
        )
        where = listing.job_filter(filter) if filter else None
        page = job_list.job_page(instance, first, after, where)
        items = listing.prepare(page.items, _selected(info, "items"), timezone.now())
        return ScheduledJobPage(items=items, cursor=page.cursor, has_next_page=page.has_next_page)

    @staticmethod
    @coded_errors
    def resolve_get_scheduled_job(root, info, job_id):
        job = visible_job(info, job_id)
        return listing.prepare([job], _selected(info), timezone.now())[0]

    @staticmethod
    @coded_errors
    def resolve_get_instance_job_history(root, info, instance_id, page=None, filter=None):  # noqa: A002
        instance = require_instance(
            principal(info), id_arg(instance_id, "instanceId", "instance"), Need.READ, "instanceId"
        )
        page = page or {}
        where = listing.history_filter(filter) if filter else None
        result = history.instance_history_page(instance, page.get("first"), page.get("after"), where)
        return JobHistoryPage(items=result.items, cursor=result.cursor, has_next_page=result.has_next_page)

    @staticmethod
    @coded_errors
    def resolve_get_scheduled_job_history(root, info, job_history_id):
        field = "jobHistoryId"
        row = JobHistoryModel.objects.filter(pk=id_arg(job_history_id, field, "run")).first()
        if row is None:
            raise NotFound(field, "run")
        require_instance(principal(info), row.instance_id, Need.READ, field, "run")
        return row


def _selected(info, under: str | None = None) -> dict[str, set[str]]:
    """The fields the query asks for directly under the current field (or under its field `under`), each with the
    names asked for directly under it (fragments included everywhere)."""

    def names(selection_sets: list) -> dict[str, list]:
        found: dict[str, list] = {}
        for selection_set in selection_sets:
            for node in selection_set.selections if selection_set else []:
                if isinstance(node, FieldNode):
                    found.setdefault(node.name.value, []).append(node.selection_set)
                elif isinstance(node, InlineFragmentNode):
                    for name, sets in names([node.selection_set]).items():
                        found.setdefault(name, []).extend(sets)
                elif isinstance(node, FragmentSpreadNode):
                    for name, sets in names([info.fragments[node.name.value].selection_set]).items():
                        found.setdefault(name, []).extend(sets)
        return found

    found = names([f.selection_set for f in info.field_nodes])
    if under is not None:
        found = names(found.get(under, []))
    return {name: set(names(sets)) for name, sets in found.items()}
