"""A schedule without a job: what createScheduledJob would make of its schedule arguments (previewSchedule, the
admin's live preview). The same rules and the same occurrence code as a saved job, so the answer cannot differ."""

from dataclasses import dataclass
from datetime import datetime

from django.utils.timezone import now

from jobs import rules
from jobs.models import ScheduledJob
from jobs.rules import Problems

MAX_NEXT_RUNS = 100


@dataclass(frozen=True)
class SchedulePreview:
    next_runs: list[datetime]
    description: str
    timezone: str


def preview_schedule(
    frequency_type: object,
    cron_expression: object = None,
    interval_minutes: object = None,
    tz: object = None,
    count: object = 5,
    at: datetime | None = None,
) -> SchedulePreview:
    """The next `count` runs (UTC) and the schedule in words, or a ValidationError with every problem, coded as
    createScheduledJob codes them. An interval counts from `at` (default now), as a job created then would."""
    problems = Problems()
    fields = problems.check(rules.schedule_fields, frequency_type, cron_expression, interval_minutes)
    zone = problems.check(rules.check_timezone, tz) if tz is not None else "UTC"
    count = problems.check(rules.check_number, count, "count", 1, MAX_NEXT_RUNS)
    problems.raise_any()
    cron, interval = fields
    at = at or now()
    job = ScheduledJob(
        frequency_type=frequency_type,
        cron_expression=cron,
        interval_minutes=interval,
        timezone=zone,
        active=True,
        schedule_anchor=at,
    )
    return SchedulePreview(job.next_runs(count, at), job.schedule_description, zone)
