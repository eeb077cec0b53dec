"""History retention (jobs.retention): old runs deleted with their logs, per instance, never a job's last runs,
storage failures retried with nothing left dangling, dry runs harmless. (Deleted jobs: tests/jobs/test_log_purge.py.)"""

import json
import time
from datetime import timedelta
from io import StringIO

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from jobs import retention, services
from jobs.models import JobHistory, LogDeletion, RunStatus, RunTrigger, ScheduledJob
from jobs.running import purge
from pointscene.core.storage import run_log_path

pytestmark = pytest.mark.usefixtures("clean_redis")

NOW = timezone.now()


@pytest.fixture(autouse=True)
def retention_settings(settings):
    settings.JOBS_HISTORY_RETENTION_DAYS = 30
    settings.JOBS_HISTORY_KEEP_RUNS = 3
    settings.JOBS_PRUNE_BATCH = 4  # several batches even for a handful of rows
    settings.JOBS_PRUNE_PAUSE_MS = 0


def add_runs(job, days_ago: list[float], status: str = RunStatus.SUCCEEDED) -> list[JobHistory]:
    """Runs of `job` created that many days ago, each with a stored log."""
    runs = []
    for age in days_ago:
        run = JobHistory.objects.create(
            job=job, instance_id=job.instance_id, trigger=RunTrigger.SCHEDULE, status=status
        )
        path = run_log_path(job.instance_id, job.pk, run.pk)
        default_storage.save(path, ContentFile(f"log of run {run.pk}\n".encode()))
        JobHistory.objects.filter(pk=run.pk).update(created_at=NOW - timedelta(days=age), log_path=path)
        runs.append(JobHistory.objects.get(pk=run.pk))
    return runs


def kept(job) -> set[int]:
    return set(JobHistory.objects.filter(job=job).values_list("pk", flat=True))


def test_it_pauses_after_every_batch_worth_of_rows_across_jobs(job, other_job, settings):
    settings.JOBS_PRUNE_PAUSE_MS = 60
    add_runs(job, [90, 80, 70, 60, 50, 40, 5, 4, 3])  # 6 to delete: batches of 4 and 2
    add_runs(other_job, [90, 80, 70, 60, 50, 40, 5, 4, 3])  # 6 more: 12 rows in all, 3 batches' worth

    started = time.monotonic()
    report = retention.prune(now=NOW)

    assert report.runs_deleted == 12
    # Three pauses at least (time.sleep never returns early); without pacing this prune takes a few milliseconds.
    assert time.monotonic() - started >= 3 * 0.060


def test_it_deletes_runs_past_retention_with_their_logs_and_keeps_the_rest(job):
    old = add_runs(job, [90, 80, 70, 60])
    recent = add_runs(job, [5, 4, 3, 2, 1])

    report = retention.prune(now=NOW)

    assert kept(job) == {r.pk for r in recent}
    assert not any(default_storage.exists(r.log_path) for r in old)
    assert all(default_storage.exists(r.log_path) for r in recent)
    assert report.runs_deleted == 4
    assert report.logs_deleted == 4
    assert LogDeletion.objects.count() == 0


def test_it_always_keeps_the_last_runs_of_a_job_however_old(job):
    runs = add_runs(job, [400, 300, 200, 100, 90])

    retention.prune(now=NOW)

    assert kept(job) == {r.pk for r in runs[-3:]}  # the floor: JOBS_HISTORY_KEEP_RUNS = 3


def test_it_honours_an_instances_own_retention(job, other_instance):
    other_job = services.create_job(
        instance=other_instance,
        workflow={"tasks": [{"name": "ping", "type": "http.request", "args": {"url": "https://example.com/"}}]},
        frequency_type="CRON_BASED",
        cron_expression="0 1 * * *",
    )
    other_instance.history_retention_days = 365
    other_instance.save()
    mine = add_runs(job, [100, 50, 40, 5, 4, 3])
    theirs = add_runs(other_job, [100, 50, 40, 5, 4, 3])

    retention.prune(now=NOW)

    assert kept(job) == {r.pk for r in mine[3:]}  # 30 days
    assert kept(other_job) == {r.pk for r in theirs}  # 365 days


def test_it_never_touches_a_run_still_going(job):
    going = add_runs(job, [100], status=RunStatus.RUNNING) + add_runs(job, [99], status=RunStatus.QUEUED)
    add_runs(job, [3, 2, 1])

    retention.prune(now=NOW)

    assert {r.pk for r in going} <= kept(job)


def test_a_dry_run_counts_and_changes_nothing(job, capsys):
    add_runs(job, [90, 80, 5, 4, 3])
    before = kept(job)

    out = StringIO()
    call_command("prune_history", "--dry-run", stdout=out)

    report = json.loads(out.getvalue())
    assert report["dry_run"] is True
    assert report["runs_deleted"] == 2
    assert report["instances"] == [{"id": job.instance_id, "retention_days": 30, "runs": 2, "logs": 2}]
    assert kept(job) == before
    assert LogDeletion.objects.count() == 0


def test_the_command_prints_what_it_deleted(job):
    add_runs(job, [90, 80, 5, 4, 3])

    out = StringIO()
    call_command("prune_history", stdout=out)

    report = json.loads(out.getvalue())
    assert (report["runs_deleted"], report["logs_deleted"], report["logs_failed"]) == (2, 2, 0)


def test_a_storage_failure_keeps_the_log_queued_and_a_later_prune_deletes_it(job, monkeypatch):
    old = add_runs(job, [90, 80, 70])
    add_runs(job, [3, 2, 1])
    real_delete = default_storage.delete
    failing = {old[1].log_path}

    def flaky_delete(path):
        if path in failing:
            raise OSError("storage unavailable")
        real_delete(path)

    monkeypatch.setattr(default_storage, "delete", flaky_delete)

    first = retention.prune(now=NOW)

    assert (first.runs_deleted, first.logs_deleted, first.logs_failed) == (3, 2, 1)
    # The rows are gone, the failed log is still stored and still queued: nothing points at a missing file.
    assert not JobHistory.objects.filter(pk__in=[r.pk for r in old]).exists()
    assert default_storage.exists(old[1].log_path)
    (queued,) = LogDeletion.objects.all()
    assert (queued.path, queued.attempts, queued.last_error) == (old[1].log_path, 1, "OSError: storage unavailable")
    assert not any(JobHistory.objects.filter(log_path=q.path).exists() for q in LogDeletion.objects.all())

    failing.clear()
    assert purge.drain(now=queued.next_attempt_at - timedelta(seconds=1)) == (0, 0)  # it waits before trying again
    assert purge.drain(now=queued.next_attempt_at) == (1, 0)
    assert not default_storage.exists(old[1].log_path)
    assert LogDeletion.objects.count() == 0


def test_it_deletes_in_batches_with_a_bounded_number_of_queries(job, django_assert_max_num_queries):
    add_runs(job, [90 + i for i in range(10)] + [3, 2, 1])

    # Per instance: the candidate jobs; per job: its floor, then per batch of 4: select, queue, delete (+ savepoint).
    with django_assert_max_num_queries(30):
        report = retention.prune(now=NOW)

    assert report.runs_deleted == 10


def test_a_prune_with_nothing_to_delete_costs_the_same_queries_for_any_number_of_jobs(job, other_instance):
    # Every job has old runs, but all of them among its last 3: nothing to delete. The candidate jobs are found
    # with one query per instance, not two or three per job.
    fleet = [job]
    for n in range(40):
        fleet.append(
            ScheduledJob.objects.create(
                instance=job.instance,
                name=f"fleet {n}",
                workflow=job.workflow,
                frequency_type=job.frequency_type,
                cron_expression=job.cron_expression,
            )
        )
    JobHistory.objects.bulk_create(
        JobHistory(job=j, instance_id=j.instance_id, status=RunStatus.SUCCEEDED, created_at=NOW - timedelta(days=d))
        for j in fleet
        for d in (90, 80, 70)
    )
    with CaptureQueriesContext(connection) as empty:
        report = retention.prune(now=NOW)
    assert report.runs_deleted == 0
    assert JobHistory.objects.count() == 3 * len(fleet)
    assert len(empty.captured_queries) <= 4  # instances, then per instance (2): its jobs with work; the drain

    add_runs(fleet[7], [60])  # now one job has a 4th old run: only that job is visited
    with CaptureQueriesContext(connection) as one:
        report = retention.prune(now=NOW)
    assert report.runs_deleted == 1
    assert not JobHistory.objects.filter(job=fleet[7], created_at__lt=NOW - timedelta(days=80)).exists()
    assert len(one.captured_queries) <= len(empty.captured_queries) + 8
