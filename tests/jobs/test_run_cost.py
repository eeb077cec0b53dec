"""What the cheapest run costs the database: a one-step workflow (resource.input over an empty resource) run for a
slot, counted statement by statement as production sends them (a transactional test: no test savepoints).

The bound is issue 14's "at most 5 queries" per cheapest run, every statement the worker sends counted (Django
records BEGIN and COMMIT too); bench/scheduler.py measures the CPU side.
"""

import re
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from jobs import services
from jobs.models import FrequencyType, JobHistory, OverlapPolicy, RunStatus, ScheduledJob
from jobs.running import runner
from jobs.running.locks import RunLock

SLOT = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)
TABLE = re.compile(r'^(\w+) .*?"(\w+)"', re.DOTALL)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("clean_redis", "any_lateness_runs"),
]


def cheapest_job(instance, resource, **kwargs) -> ScheduledJob:
    return services.create_job(
        instance=instance,
        workflow={"tasks": [{"name": "files", "type": "resource.input", "args": {"id": str(resource.pk)}}]},
        frequency_type=FrequencyType.CRON_BASED,
        cron_expression="* * * * *",
        **kwargs,
    )


def statements(queries) -> list[str]:
    """Each statement as its verb and table: what it does, not its literal values."""
    return [" ".join(TABLE.match(query["sql"]).groups()) for query in queries]


@pytest.mark.parametrize("policy", [OverlapPolicy.SKIP, OverlapPolicy.ALLOW, OverlapPolicy.BUFFER_ONE])
def test_it_runs_the_cheapest_slot_in_four_statements(instance, resource, policy):
    job = cheapest_job(instance, resource, overlap_policy=policy)
    runner.run_scheduled(job.pk, SLOT)  # the first run: connection set up, nothing cached
    connection.ensure_connection()

    with CaptureQueriesContext(connection) as queries:
        run_id = runner.run_scheduled(job.pk, SLOT.replace(minute=1))

    run = JobHistory.objects.get(pk=run_id)
    assert run.status == RunStatus.SUCCEEDED
    assert [s["status"] for s in run.steps] == ["SUCCEEDED"]
    assert run.steps[0]["counters"] == {"files": 0, "bytes": 0}
    expected = [
        "SELECT jobs_scheduledjob",  # the job
        "INSERT jobs_jobhistory",  # the slot's row, born RUNNING with its first step started
        "UPDATE jobs_jobhistory",  # the end: status, steps, log
        "UPDATE jobs_scheduledjob",  # lastRun, and consecutive failures back to 0
    ]
    if policy == OverlapPolicy.BUFFER_ONE:
        expected.append("SELECT jobs_jobhistory")  # a parked slot to hand on
    assert statements(queries.captured_queries) == expected


def test_a_slot_that_finds_the_lock_taken_is_queued_and_skipped_without_running(instance, resource):
    job = cheapest_job(instance, resource, overlap_policy=OverlapPolicy.SKIP)
    holder = RunLock(job.pk)
    assert holder.acquire()
    try:
        run_id = runner.run_scheduled(job.pk, SLOT)
    finally:
        holder.release()

    run = JobHistory.objects.get(pk=run_id)
    assert (run.status, run.started_at, run.worker) == (RunStatus.SKIPPED, None, None)
    assert run.error == "skipped: the previous run of this job was still going"
    assert not run.steps


def test_a_duplicate_delivery_is_ignored_and_leaves_the_lock_free(instance, resource):
    job = cheapest_job(instance, resource, overlap_policy=OverlapPolicy.SKIP)
    first = runner.run_scheduled(job.pk, SLOT)

    assert runner.run_scheduled(job.pk, SLOT) is None

    assert list(JobHistory.objects.filter(job=job).values_list("pk", flat=True)) == [first]
    assert RunLock(job.pk).acquire()  # free again
