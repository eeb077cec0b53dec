"""History retention (jobs.retention): old runs deleted with their logs, per instance, never a job's last runs,
storage failures retried with nothing left dangling, dry runs harmless. (Deleted jobs: tests/jobs/test_log_purge.py.)"""

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.utils import timezone

from jobs import retention, services
from jobs.models import JobHistory, LogDeletion, RunStatus, RunTrigger
from pointscene.core.storage import run_log_path

pytestmark = pytest.mark.usefixtures("clean_redis")

NOW = timezone.now()


@pytest.fixture(autouse=True)
def retention_settings(settings):
    settings.JOBS_HISTORY_RETENTION_DAYS = 30
    settings.JOBS_HISTORY_KEEP_RUNS = 3
    settings.JOBS_PRUNE_BATCH = 4  # several batches even for a handful of rows


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
    assert (queued.path, queued.attempts, queued.last_error) == (old[1].log_path, 1, "OSError")
    assert not any(JobHistory.objects.filter(log_path=q.path).exists() for q in LogDeletion.objects.all())

    failing.clear()
    assert retention.drain(now=NOW) == (0, 0)  # not due yet: it waits before trying again
    assert retention.drain(now=NOW + timedelta(minutes=2)) == (1, 0)
    assert not default_storage.exists(old[1].log_path)
    assert LogDeletion.objects.count() == 0


def test_it_deletes_in_batches_with_a_bounded_number_of_queries(job, django_assert_max_num_queries):
    add_runs(job, [90 + i for i in range(10)] + [3, 2, 1])

    # Per instance: the candidate jobs; per job: its floor, then per batch of 4: select, queue, delete (+ savepoint).
    with django_assert_max_num_queries(30):
        report = retention.prune(now=NOW)

    assert report.runs_deleted == 10
