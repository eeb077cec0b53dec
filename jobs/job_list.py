"""Listing an instance's jobs one page at a time, filtered: oldest first (by id), paged by an opaque keyset cursor
in the style of jobs.history's (never OFFSET), so a page deep in 100,000 jobs costs what the first one does."""

from dataclasses import dataclass

from django.db import connection
from django.db.models import OuterRef, QuerySet, Subquery

from jobs.history import page_size
from jobs.models import JobHistory, RunStatus, ScheduledJob
from pointscene.core import cursors, errors

_CURSOR_VERSION = "j1"
MAX_FILTER_TEXT = 200


@dataclass(frozen=True)
class JobPage:
    items: list[ScheduledJob]
    cursor: str | None
    has_next_page: bool


def encode_job_cursor(job_id: int) -> str:
    return cursors.encode(_CURSOR_VERSION, job_id)


def decode_job_cursor(cursor: object) -> int:
    (job_id,) = cursors.decode(cursor, _CURSOR_VERSION, 1, "after")
    return job_id


@dataclass(frozen=True)
class JobFilter:
    """Optional conditions on an instance's jobs, combined with AND. `active` is served by the (instance, active,
    id) index; a task type by jsonb containment, which a GIN index on the workflow's tasks serves on PostgreSQL
    (migration 0013) when few jobs match; the others are checked walking the (instance, id) index in page order: the
    latest run's status by one probe of the (job, created_at, id) index per job, the name by ILIKE."""

    active: bool | None = None
    name_contains: str | None = None
    last_run_status: str | None = None
    task_type: str | None = None

    def __post_init__(self) -> None:
        for field, value in (("filter.nameContains", self.name_contains), ("filter.taskType", self.task_type)):
            if value is not None and (not isinstance(value, str) or not value or len(value) > MAX_FILTER_TEXT):
                raise errors.invalid(field, errors.INVALID_VALUE, f"must be 1 to {MAX_FILTER_TEXT} characters")
        if self.last_run_status is not None and self.last_run_status not in RunStatus.values:
            raise errors.invalid("filter.lastRunStatus", errors.INVALID_VALUE, f"must be one of {', '.join(RunStatus)}")

    def apply(self, jobs: QuerySet) -> QuerySet:
        if self.active is not None:
            jobs = jobs.filter(active=self.active)
        if self.name_contains is not None:
            jobs = jobs.filter(name__icontains=self.name_contains)
        if self.task_type is not None:
            if connection.vendor == "postgresql":
                jobs = jobs.filter(workflow__tasks__contains=[{"type": self.task_type}])
            else:
                table = ScheduledJob._meta.db_table
                jobs = jobs.extra(  # noqa: S610 - a parameter, not text, goes into the SQL
                    where=[
                        f"EXISTS (SELECT 1 FROM json_each({table}.workflow, '$.tasks') AS t"
                        " WHERE json_extract(t.value, '$.type') = %s)"
                    ],
                    params=[self.task_type],
                )
        if self.last_run_status is not None:
            latest = JobHistory.objects.filter(job_id=OuterRef("pk")).order_by("-created_at", "-id")
            jobs = jobs.annotate(last_run_status=Subquery(latest.values("status")[:1])).filter(
                last_run_status=self.last_run_status
            )
        return jobs


def job_page(instance_id: int, first: object = None, after: object = None, where: JobFilter | None = None) -> JobPage:
    """A page of an instance's jobs, oldest first; `where` narrows them (never to another instance's jobs)."""
    size = page_size(first, "first")
    jobs = ScheduledJob.objects.filter(instance_id=instance_id)
    if after is not None:
        jobs = jobs.filter(id__gt=decode_job_cursor(after))
    if where is not None:
        jobs = where.apply(jobs)
    fetched = list(jobs.order_by("id")[: size + 1])
    items = fetched[:size]
    return JobPage(
        items=items, cursor=encode_job_cursor(items[-1].pk) if items else None, has_next_page=len(fetched) > size
    )
