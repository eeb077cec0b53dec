"""The latest runs of many jobs at once, as light rows: what getScheduledJobs shows under each job.

Listing 1,000 jobs shows 10,000 runs; building a JobHistory model instance for each (and decoding every run's
steps, asked for or not) was a third of the request. A Run holds the columns the API shows in slots, and decodes
`steps` only when a field reads it. One query for any number of jobs.
"""

import json
from datetime import datetime

from django.conf import settings
from django.db import connection
from django.db.models import F, Window
from django.db.models.functions import RowNumber

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
    """One run, read for the API: the JobHistory attributes the selected fields read (an attribute that was not
    read raises AttributeError), `steps` decoded when first read."""

    __slots__ = (*(c for c in COLUMNS if c != "steps"), "_steps", "_steps_text")

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

    def __init__(self, columns: tuple[str, ...], values: tuple, steps_text: bool) -> None:
        for name, value in zip(columns, values, strict=True):
            setattr(self, "_steps" if name == "steps" else name, value)
        self._steps_text = steps_text and getattr(self, "_steps", None) is not None

    @property
    def pk(self) -> int:
        return self.id

    @property
    def steps(self) -> object:
        if self._steps_text:
            self._steps, self._steps_text = json.loads(self._steps), False
        return self._steps

    @property
    def success(self) -> bool | None:
        """As JobHistory.success: None while the run is queued or going; otherwise whether it succeeded."""
        if self.status in _UNFINISHED:
            return None
        return self.status == RunStatus.SUCCEEDED.value


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
    for values in rows:
        by_job[values[job_at]].append(Run(columns, values, steps_text))
    return by_job
