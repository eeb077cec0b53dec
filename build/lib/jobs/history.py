"""Reading run history: newest first, paged by an opaque keyset cursor (never OFFSET)."""

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import F, Q, QuerySet, Window
from django.db.models.functions import RowNumber

from jobs.models import JobHistory
from pointscene.core import errors

NEWEST_FIRST = ("-created_at", "-id")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CURSOR_VERSION = "h1"


@dataclass(frozen=True)
class HistoryPage:
    items: list[JobHistory]
    cursor: str | None
    has_next_page: bool


def encode_cursor(row: JobHistory) -> str:
    micros = (row.created_at - _EPOCH) // timedelta(microseconds=1)
    raw = f"{_CURSOR_VERSION}:{micros}:{row.pk}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    bad = errors.invalid("page.after", errors.INVALID_CURSOR, "is not a cursor this API returned")
    if not isinstance(cursor, str) or len(cursor) > 100:
        raise bad
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        version, micros, pk = raw.split(":")
        if version != _CURSOR_VERSION:
            raise ValueError(version)
        created_at = _EPOCH + timedelta(microseconds=int(micros))
        row_id = int(pk)
    except (binascii.Error, UnicodeDecodeError, ValueError, OverflowError):
        raise bad from None
    if row_id <= 0 or row_id > 2**63 - 1:
        raise bad
    return created_at, row_id


def page_size(first: object) -> int:
    if first is None:
        return settings.JOBS_HISTORY_PAGE_DEFAULT
    limit = settings.JOBS_HISTORY_PAGE_MAX
    if isinstance(first, bool) or not isinstance(first, int) or not 1 <= first <= limit:
        raise errors.invalid("page.first", errors.INVALID_PAGE, f"must be from 1 to {limit}")
    return first


def instance_history_page(instance_id: int, first: object = None, after: str | None = None) -> HistoryPage:
    size = page_size(first)
    rows = JobHistory.objects.filter(instance_id=instance_id)
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


def attach_recent_history(jobs: list) -> None:
    """Sets `job.recent_history` (latest runs, newest first) on every job, in one query for any number of jobs.

    PostgreSQL walks the (job, created_at, id) index once per job (LATERAL ... LIMIT), so the cost follows the
    runs returned, not the runs stored; elsewhere a window function over the jobs' runs does the same job.
    """
    if not jobs:
        return
    limit = settings.JOBS_RECENT_HISTORY
    by_job: dict[int, list[JobHistory]] = {job.pk: [] for job in jobs}
    if connection.vendor == "postgresql":
        table = JobHistory._meta.db_table
        rows = JobHistory.objects.raw(
            f"""SELECT h.* FROM unnest(%s::bigint[]) AS j(id)
                CROSS JOIN LATERAL (
                    SELECT * FROM {table} WHERE job_id = j.id ORDER BY created_at DESC, id DESC LIMIT %s
                ) h""",
            [list(by_job), limit],
        )
    else:
        rows = (
            JobHistory.objects.filter(job_id__in=list(by_job))
            .annotate(
                rank=Window(RowNumber(), partition_by=[F("job_id")], order_by=[F("created_at").desc(), F("id").desc()])
            )
            .filter(rank__lte=limit)
        )
    for row in rows:
        by_job[row.job_id].append(row)
    for job in jobs:
        job.recent_history = sorted(by_job[job.pk], key=lambda r: (r.created_at, r.pk), reverse=True)


def recent_history(job) -> QuerySet | list[JobHistory]:
    cached = getattr(job, "recent_history", None)
    if cached is not None:
        return cached
    return job.history.order_by(*NEWEST_FIRST)[: settings.JOBS_RECENT_HISTORY]
