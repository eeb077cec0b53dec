"""A job's lastRun: when its latest run started. A short run sets it with its outcome, in the one UPDATE of the job
its end makes anyway (tests/jobs/test_run_cost.py); a run that lasts has it set by its watcher while it goes."""

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from jobs import services
from jobs.models import FrequencyType, RunStatus, ScheduledJob
from jobs.running import outcome, runner
from jobs.running.locks import RunLock

SLOT = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)

pytestmark = pytest.mark.usefixtures("clean_redis", "loopback_allowed", "any_lateness_runs")


def pinging_job(instance, url: str) -> ScheduledJob:
    return services.create_job(
        instance=instance,
        workflow={"tasks": [{"name": "ping", "type": "http.request", "args": {"url": url}}]},
        frequency_type=FrequencyType.CRON_BASED,
        cron_expression="* * * * *",
    )


def last_run(job: ScheduledJob) -> datetime | None:
    return ScheduledJob.objects.get(pk=job.pk).last_run_at


# The watcher and the looker are threads with their own connections: they must see committed rows.
@pytest.mark.django_db(transaction=True)
def test_it_shows_a_long_run_as_the_last_run_while_it_goes(instance, http_server):
    job = pinging_job(instance, http_server.url("/slow"))
    seen: list[datetime | None] = []

    def look():
        try:
            http_server.wait_for("/slow")
            deadline = time.monotonic() + 10
            while last_run(job) is None and time.monotonic() < deadline:
                time.sleep(0.05)
            seen.append(last_run(job))
        finally:
            http_server.release.set()
            connection.close()  # this thread's own

    looker = threading.Thread(target=look)
    looker.start()
    run_id = runner.run_scheduled(job.pk, SLOT)
    looker.join(15)

    started = job.history.get(pk=run_id).started_at
    assert seen == [started]  # before the run ended
    assert last_run(job) == started


def test_it_keeps_the_latest_start_when_overlapping_runs_end_out_of_order(job):
    later, earlier = datetime(2025, 6, 2, 12, 5, tzinfo=UTC), datetime(2025, 6, 2, 12, 0, tzinfo=UTC)

    outcome.run_ended(job.pk, 2, RunStatus.SUCCEEDED, later)
    outcome.run_ended(job.pk, 1, RunStatus.SUCCEEDED, earlier)

    assert last_run(job) == later


def test_it_leaves_the_last_run_alone_for_a_slot_that_never_started(instance, http_server):
    job = pinging_job(instance, http_server.url("/ok"))
    first = job.history.get(pk=runner.run_scheduled(job.pk, SLOT))
    holder = RunLock(job.pk)
    assert holder.acquire()
    try:
        skipped = job.history.get(pk=runner.run_scheduled(job.pk, SLOT + timedelta(minutes=1)))
    finally:
        holder.release()

    assert skipped.status == RunStatus.SKIPPED
    assert last_run(job) == first.started_at
