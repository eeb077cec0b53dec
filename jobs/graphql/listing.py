"""Reading many jobs for the API at once: what a list computes once per request rather than once per field."""

from datetime import datetime

from jobs import history, job_list
from jobs.graphql.types import enum_value
from jobs.models import ScheduledJob
from pointscene.core import errors
from pointscene.core.ids import parse_id


def attach_next_runs(jobs: list[ScheduledJob], at: datetime) -> None:
    """Sets `job.listed_next_run` (its next run after `at`, None while inactive) on every job, computing it once
    per distinct schedule: jobs that share a cron expression and zone (or an interval and anchor) share the answer."""
    known: dict[tuple, datetime | None] = {}
    for job in jobs:
        key = (*job.schedule_key(), job.schedule_anchor if job.interval_minutes else None)
        if key not in known:
            known[key] = job.next_run(at)
        job.listed_next_run = known[key]


def prepare(jobs: list[ScheduledJob], selected: dict[str, set[str]], at: datetime) -> list[ScheduledJob]:
    """`jobs` with what the selected fields (name: the names selected under it) read prepared in bulk: the latest
    runs (one query for all jobs, only the columns their selected fields read) and the next run (once per
    schedule)."""
    if "history" in selected:
        history.attach_recent_history(jobs, selected["history"])
    if "nextRun" in selected:
        attach_next_runs(jobs, at)
    return jobs


def history_filter(given: dict) -> history.HistoryFilter:
    """getInstanceJobHistory's `filter` argument, checked (coded INVALID_VALUE errors naming filter.<field>)."""
    job_id = None
    if given.get("job_id") is not None:
        job_id = parse_id(given["job_id"])
        if job_id is None:
            raise errors.invalid("filter.jobId", errors.INVALID_VALUE, "is not a job id")
    return history.HistoryFilter(
        job_id=job_id,
        status=enum_value(given.get("status")),
        trigger=given.get("trigger"),
        created_from=given.get("created_from"),
        created_to=given.get("created_to"),
    )


def job_filter(given: dict) -> job_list.JobFilter:
    """scheduledJobs' `filter` argument, checked (coded INVALID_VALUE errors naming filter.<field>)."""
    return job_list.JobFilter(
        active=given.get("active"),
        name_contains=given.get("name_contains"),
        last_run_status=enum_value(given.get("last_run_status")),
        task_type=given.get("task_type"),
    )
