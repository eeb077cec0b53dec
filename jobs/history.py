"""Reading run history: newest first, paged by an opaque keyset cursor (never OFFSET)."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db.models import Q, QuerySet

from jobs.models import JobHistory, RunStatus, RunTrigger
from jobs.recent_runs import Run, latest_runs
from pointscene.core import cursors, errors

NEWEST_FIRST = ("-created_at", "-id")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CURSOR_VERSION = "h1"


@dataclass(frozen=True)
class HistoryPage:
    items: list[JobHistory]
    cursor: str | None
    has_next_page: bool


def encode_cursor(row: JobHistory) -> str:
    return cursors.encode(_CURSOR_VERSION, (row.created_at - _EPOCH) // timedelta(microseconds=1), row.pk)


def decode_cursor(cursor: object) -> tuple[datetime, int]:
    micros, row_id = cursors.decode(cursor, _CURSOR_VERSION, 2, "page.after")
    try:
        return _EPOCH + timedelta(microseconds=micros), row_id
    except OverflowError:
        raise cursors.refused("page.after") from None


def page_size(first: object, field: str = "page.first") -> int:
    """The page size a client asked for (`field` names the argument in errors); the default when absent."""
    if first is None:
        return settings.JOBS_HISTORY_PAGE_DEFAULT
    limit = settings.JOBS_HISTORY_PAGE_MAX
    if isinstance(first, bool) or not isinstance(first, int) or not 1 <= first <= limit:
        raise errors.invalid(field, errors.INVALID_PAGE, f"must be from 1 to {limit}")
    return first


@dataclass(frozen=True)
class HistoryFilter:
    """Optional conditions on an instance's runs, combined with AND; each is served by an index (see
    JobHistory.Meta.indexes): a job's runs by (job, created_at, id), status and trigger by (instance, status,
    [trigger,] created_at, id) or (instance, trigger, created_at, id), the time range by the key itself."""

    job_id: int | None = None
    status: str | None = None
    trigger: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None

    def __post_init__(self) -> None:
        if self.trigger is not None and self.trigger not in RunTrigger.values:
            raise errors.invalid("filter.trigger", errors.INVALID_VALUE, f"must be one of {', '.join(RunTrigger)}")
        if self.status is not None and self.status not in RunStatus.values:
            raise errors.invalid("filter.status", errors.INVALID_VALUE, f"must be one of {', '.join(RunStatus)}")
        for field, value in (("filter.from", self.created_from), ("filter.to", self.created_to)):
            if value is not None and (value.tzinfo is None or value.utcoffset() is None):
                raise errors.invalid(field, errors.INVALID_VALUE, "must have a time zone (e.g. Z or +02:00)")
        if self.created_from and self.created_to and self.created_from > self.created_to:
            raise errors.invalid("filter.to", errors.INVALID_VALUE, "must not be before filter.from")

    def apply(self, rows: QuerySet) -> QuerySet:
        if self.job_id is not None:
            rows = rows.filter(job_id=self.job_id)
        if self.status is not None:
            rows = rows.filter(status=self.status)
        if self.trigger is not None:
            rows = rows.filter(trigger=self.trigger)
        if self.created_from is not None:
            rows = rows.filter(created_at__gte=self.created_from)
        if self.created_to is not None:
            rows = rows.filter(created_at__lt=self.created_to)
        return rows


def instance_history_page(
    instance_id: int, first: object = None, after: str | None = None, where: HistoryFilter | None = None
) -> HistoryPage:
    """A page of an instance's runs, newest first; `where` narrows them (never to another instance's runs)."""
    size = page_size(first)
    rows = JobHistory.objects.filter(instance_id=instance_id)
    if where is not None:
        rows = where.apply(rows)
    if after is not None:
        created_at, row_id = decode_cursor(after)
        # The redundant `created_at <= c` lets the (instance, created_at, id) index bound the scan.
        rows = rows.filter(created_at__lte=created_at).filter(
            Q(created_at__lt=created_at) | Q(created_at=created_at, id__lt=row_id)
        )
    fetched = list(rows.order_by(*NEWEST_FIRST)[: size + 1])
    items = fetched[:size]
    return HistoryPage(
        items=items,
        cursor=encode_cursor(items[-1]) if items else None,
        has_next_page=len(fetched) > size,
    )


def attach_recent_history(jobs: list, fields: set[str] | None = None) -> None:
    """Sets `job.recent_history` (latest runs, newest first, as jobs.recent_runs.Run rows holding what the
    JobHistory `fields` read; None: everything) on every job, in one query for any number of jobs."""
    by_job = latest_runs([job.pk for job in jobs], fields)
    for job in jobs:
        job.recent_history = by_job[job.pk]


def recent_history(job) -> QuerySet | list[Run]:
    cached = getattr(job, "recent_history", None)
    if cached is not None:
        return cached
    return job.history.order_by(*NEWEST_FIRST)[: settings.JOBS_RECENT_HISTORY]
