"""The latest runs of many jobs at once, as light rows: what getScheduledJobs shows under each job.

Listing 1,000 jobs shows 10,000 runs; building a JobHistory model instance for each (and decoding every run's
steps, asked for or not) was a third of the request. A Run is a named tuple of the columns the API shows, and
decodes `steps` only when a field reads it. One query for any number of jobs.
"""

import functools
import json
from collections import namedtuple
from datetime import datetime

from django.conf import settings
from django.db import connection
from django.db.models import F, Window
from django.db.models.functions import RowNumber
from psycopg.types.datetime import TimestamptzLoader

from jobs.models import JobHistory, RunStatus

COLUMNS = (
    "id",
    "job_id",
    "instance_id",
    "status",
    "trigger",
    "scheduled_for",
    "started_at",
    "finished_at",
    "error",
    "steps",
    "log_path",
    "log_key",
    "heartbeat_at",
    "created_at",
)
_UNFINISHED = (RunStatus.QUEUED.value, RunStatus.RUNNING.value)
_SUCCEEDED = RunStatus.SUCCEEDED.value


# The columns each JobHistory field reads; a Run holds only those the query selects (and always id and job_id).
FIELD_COLUMNS = {
    "id": ("id",),
    "jobId": ("job_id",),
    "success": ("status",),
    "status": ("status",),
    "trigger": ("trigger",),
    "scheduledFor": ("scheduled_for",),
    "startedAt": ("started_at",),
    "finishedAt": ("finished_at",),
    "error": ("error",),
    "steps": ("steps",),
    "progress": ("steps",),
    "logPath": ("log_path",),
    "signedLogUrl": ("log_path", "log_key", "instance_id"),
    "heartbeatAt": ("heartbeat_at",),
    "createdAt": ("created_at",),
}


def columns_for(fields: set[str] | None) -> tuple[str, ...]:
    """The columns the given JobHistory fields read, in table order; every column when `fields` is None."""
    if fields is None:
        return COLUMNS
    wanted = {"id", "job_id"}.union(*(FIELD_COLUMNS.get(name, ()) for name in fields))
    return tuple(c for c in COLUMNS if c in wanted)


class Run:
    """One run, read for the API: a tuple of the columns the selected fields read, each readable by its name (a
    column that was not read raises AttributeError). `steps` is decoded when read, each time it is read (PostgreSQL
    hands it over as JSON text); a selection that reads it twice, steps and progress, decodes it twice."""

    __slots__ = ()
    _steps_text = False  # set by each row class

    id: int
    job_id: int
    instance_id: int
    status: str
    trigger: str
    scheduled_for: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    log_path: str | None
    log_key: str
    heartbeat_at: datetime | None
    created_at: datetime

    @property
    def pk(self) -> int:
        return self.id

    @property
    def steps(self) -> object:
        value = self.steps_column
        return json.loads(value) if self._steps_text and value is not None else value

    @property
    def success(self) -> bool | None:
        """As JobHistory.success: None while the run is queued or going; otherwise whether it succeeded."""
        if self.status in _UNFINISHED:
            return None
        return self.status == _SUCCEEDED


@functools.cache
def row_class(columns: tuple[str, ...], steps_text: bool) -> type[Run]:
    """The Run class of rows holding `columns` (steps as JSON text or decoded): a named tuple, so that a row is
    made by tuple.__new__ in C (a tenth of setting each column on an object, at 10,000 runs a request)."""
    names = tuple("steps_column" if c == "steps" else c for c in columns)
    return type("Run", (namedtuple("RunColumns", names), Run), {"__slots__": (), "_steps_text": steps_text})


def latest_runs(job_ids: list[int], fields: set[str] | None = None) -> dict[int, list[Run]]:
    """The latest JOBS_RECENT_HISTORY runs of each job, newest first, by job id, holding what the JobHistory
    `fields` read (None: everything); one query.

    PostgreSQL walks the (job, created_at, id) index once per job (LATERAL ... LIMIT), so the cost follows the
    runs returned, not the runs stored; elsewhere a window function over the jobs' runs does the same job.
    """
    by_job: dict[int, list[Run]] = {pk: [] for pk in job_ids}
    if not job_ids:
        return by_job
    limit = settings.JOBS_RECENT_HISTORY
    columns = columns_for(fields)
    job_at = columns.index("job_id")
    if connection.vendor == "postgresql":
        table = JobHistory._meta.db_table
        # steps as text: decoded by Run only when a field asks for it.
        listed = ", ".join(f"h.{c}::text" if c == "steps" else f"h.{c}" for c in columns)
        with connection.cursor() as cursor:
            # psycopg's own timestamptz loader (C, in psycopg[binary]) for this cursor only: Django's (Python,
            # for every connection) parsed each value in Python, a third of this function at 10,000 runs. Both
            # give aware UTC datetimes: Django keeps the session's TimeZone at UTC, which psycopg's converts to.
            cursor.cursor.adapters.register_loader("timestamptz", TimestamptzLoader)
            cursor.execute(
                f"""SELECT {listed} FROM unnest(%s::bigint[]) WITH ORDINALITY AS j(id, n)
                    CROSS JOIN LATERAL (
                        SELECT * FROM {table} WHERE job_id = j.id ORDER BY created_at DESC, id DESC LIMIT %s
                    ) h
                    ORDER BY j.n, h.created_at DESC, h.id DESC""",
                [list(by_job), limit],
            )
            rows, steps_text = cursor.fetchall(), True
    else:
        rows = (
            JobHistory.objects.filter(job_id__in=list(by_job))
            .annotate(
                rank=Window(RowNumber(), partition_by=[F("job_id")], order_by=[F("created_at").desc(), F("id").desc()])
            )
            .filter(rank__lte=limit)
            .order_by("job_id", "-created_at", "-id")
            .values_list(*columns)
        )
        steps_text = False
    make, row = tuple.__new__, row_class(columns, steps_text)
    for values in rows:
        by_job[values[job_at]].append(make(row, values))
    return by_job
