"""Deleting a job (API, admin) or an instance deletes its runs' logs from storage after commit (jobs/running/purge.py),
in a local folder and in S3 (moto's server on loopback), and a purge that storage refused, or whose message was
lost, is done later by the sweeper rather than forgotten. Pruned runs' log files share the queue (and its retries)
with deleted jobs' folders.

The purge message is the real one from the session's Redis; the test runs it as a worker would, in this process.
"""

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from jobs import services, tasks
from jobs.models import FrequencyType, JobHistory, LogDeletion, RunStatus, ScheduledJob
from jobs.running import purge, runner, sweeper
from pointscene.core.storage import instance_log_folder, job_log_folder
from tests.fixtures.redbeat import queued_messages, redis_client
from tests.fixtures.s3 import object_keys

pytestmark = pytest.mark.usefixtures("clean_redis", "any_lateness_runs")

# The jobs run once a year; this slot is one of theirs, long past, so no sweep finds slots of theirs to record.
SLOT = datetime(2025, 1, 1, tzinfo=UTC)
DELETE = "mutation($id: ID!) { deleteScheduledJob(id: $id) { success } }"


def logged_job(instance, resource) -> ScheduledJob:
    """A job with one finished run whose log is in storage."""
    job = services.create_job(
        instance=instance,
        workflow={"tasks": [{"name": "list", "type": "resource.input", "args": {"id": str(resource.pk)}}]},
        frequency_type=FrequencyType.CRON_BASED,
        cron_expression="0 0 1 1 *",
    )
    run = JobHistory.objects.get(pk=runner.run_scheduled(job.pk, SLOT))
    assert run.status == RunStatus.SUCCEEDED
    assert default_storage.exists(run.log_path)
    return job


def log_paths(job: ScheduledJob) -> list[str]:
    return list(JobHistory.objects.filter(job=job).values_list("log_path", flat=True))


def purge_messages() -> list[list]:
    return [message.args for message in queued_messages() if message.task == "jobs.purge_logs"]


def work_off_purges() -> int:
    """What a worker does with the queued purge messages, taking them off the queue; returns how many there were."""
    sent = purge_messages()
    redis_client().delete(django_settings.CELERY_TASK_DEFAULT_QUEUE)
    for args in sent:
        tasks.purge_logs.apply(args=args).get()
    return len(sent)


@pytest.fixture
def jobs_with_logs(instance, resource, other_instance, other_resource):
    """Two Acme jobs and a Globex job, each with a stored run log."""
    return (
        logged_job(instance, resource),
        logged_job(instance, resource),
        logged_job(other_instance, other_resource),
    )


@pytest.fixture
def admin_client(client, db):
    client.force_login(get_user_model().objects.create_superuser("ops", "ops@example.com", "ops-password-123"))
    return client


def test_deleting_a_job_through_the_api_deletes_its_logs_after_commit_and_no_others(
    api, acme_token, jobs_with_logs, django_capture_on_commit_callbacks
):
    job, sibling, neighbour = jobs_with_logs
    gone, kept = log_paths(job), log_paths(sibling) + log_paths(neighbour)

    with django_capture_on_commit_callbacks() as after_commit:
        status, body = api.gql(DELETE, {"id": str(job.pk)}, acme_token)
    assert body == {"data": {"deleteScheduledJob": {"success": True}}}
    # Not committed yet: nothing is deleted nor sent; the purge is a row of the same transaction.
    assert all(default_storage.exists(path) for path in gone)
    assert purge_messages() == []
    (row,) = LogDeletion.objects.all()
    assert row.path == job_log_folder(job.instance_id, job.pk)

    for callback in after_commit:
        callback()

    assert purge_messages() == [[row.pk]]  # an id, never a storage key or anything else
    assert work_off_purges() == 1
    assert not any(default_storage.exists(path) for path in gone)
    assert all(default_storage.exists(path) for path in kept)
    assert not Path(django_settings.MEDIA_ROOT, row.path).exists()
    assert not LogDeletion.objects.exists()


def test_deleting_a_job_in_the_admin_deletes_its_logs(admin_client, jobs_with_logs, django_capture_on_commit_callbacks):
    job, sibling, _ = jobs_with_logs
    gone, kept = log_paths(job), log_paths(sibling)

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(f"/admin/jobs/scheduledjob/{job.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert not ScheduledJob.objects.filter(pk=job.pk).exists()
    assert work_off_purges() == 1
    assert not any(default_storage.exists(path) for path in gone)
    assert all(default_storage.exists(path) for path in kept)


def test_deleting_an_instance_deletes_the_logs_of_all_its_jobs_and_only_theirs(
    jobs_with_logs, instance, django_capture_on_commit_callbacks
):
    job, sibling, neighbour = jobs_with_logs
    gone, kept = log_paths(job) + log_paths(sibling), log_paths(neighbour)

    with django_capture_on_commit_callbacks(execute=True):
        services.delete_instance(instance)

    assert work_off_purges() == 1
    assert not any(default_storage.exists(path) for path in gone)
    assert all(default_storage.exists(path) for path in kept)
    assert not Path(django_settings.MEDIA_ROOT, instance_log_folder(instance.pk)).exists()


def test_a_purge_whose_message_was_lost_is_sent_again_by_the_sweeper(
    jobs_with_logs, django_capture_on_commit_callbacks
):
    job = jobs_with_logs[0]
    gone = log_paths(job)
    with django_capture_on_commit_callbacks(execute=False):  # committed, but the message never left
        services.delete_job(job)
    (row,) = LogDeletion.objects.all()

    assert sweeper.sweep(now=datetime.now(UTC))["purges"] == 0  # still in flight as far as anyone knows
    assert sweeper.sweep(now=row.next_attempt_at)["purges"] == 1

    assert purge_messages() == [[row.pk]]
    assert work_off_purges() == 1
    assert not any(default_storage.exists(path) for path in gone)
    assert not LogDeletion.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_run_that_ends_after_its_job_was_deleted_deletes_the_log_it_stores(instance, settings, http_server):
    settings.JOBS_HTTP_ALLOW_PRIVATE = True
    job = services.create_job(
        instance=instance,
        workflow={"tasks": [{"name": "wait", "type": "http.request", "args": {"url": http_server.url("/slow")}}]},
        frequency_type=FrequencyType.CRON_BASED,
        cron_expression="0 0 1 1 *",
    )
    ran: list[int | None] = []
    worker = threading.Thread(target=lambda: ran.append(runner.run_scheduled(job.pk, SLOT)))
    worker.start()
    http_server.wait_for("/slow")  # the run is going
    folder = Path(django_settings.MEDIA_ROOT, job_log_folder(instance.pk, job.pk))

    services.delete_job(job)  # commits: the purge goes out now, finds an empty folder, and is done
    assert work_off_purges() == 1
    assert not LogDeletion.objects.exists()
    http_server.release.set()
    worker.join(60)

    assert len(ran) == 1
    assert ran[0] is not None
    assert not JobHistory.objects.filter(pk=ran[0]).exists()
    assert not [p for p in folder.rglob("*") if p.is_file()]


def test_it_deletes_the_logs_from_an_s3_bucket(s3_storage, instance, resource, django_capture_on_commit_callbacks):
    job, sibling = logged_job(instance, resource), logged_job(instance, resource)
    assert object_keys(s3_storage, job_log_folder(instance.pk, job.pk)) == log_paths(job)

    with django_capture_on_commit_callbacks(execute=True):
        services.delete_job(job)
    assert work_off_purges() == 1

    assert object_keys(s3_storage, instance_log_folder(instance.pk)) == log_paths(sibling)
    assert not LogDeletion.objects.exists()


def test_a_purge_that_s3_refused_is_retried_by_the_sweeper_until_done(
    s3_storage, moto_s3, instance, resource, settings, admin_client, django_capture_on_commit_callbacks
):
    job = logged_job(instance, resource)
    folder = job_log_folder(instance.pk, job.pk)
    gone = log_paths(job)
    with django_capture_on_commit_callbacks(execute=True):
        services.delete_job(job)

    moto_s3.stop()  # storage is down when the worker gets the purge
    started = datetime.now(UTC)
    assert work_off_purges() == 1
    moto_s3.start()

    (row,) = LogDeletion.objects.all()
    assert row.attempts == 1
    assert row.last_error.startswith("EndpointConnectionError")
    assert row.next_attempt_at >= started + timedelta(seconds=settings.JOBS_LOG_PURGE_RETRY_SECONDS)
    assert object_keys(s3_storage, folder) == gone  # nothing lost, nothing deleted
    console = admin_client.get("/admin/jobs/logdeletion/").content.decode()
    assert folder in console
    assert "EndpointConnectionError" in console
    assert sweeper.sweep(now=row.next_attempt_at - timedelta(seconds=1))["purges"] == 0  # not due yet

    assert sweeper.sweep(now=row.next_attempt_at)["purges"] == 1
    assert work_off_purges() == 1

    assert object_keys(s3_storage, folder) == []
    assert not LogDeletion.objects.exists()


def test_the_wait_between_attempts_doubles_up_to_an_hour(settings):
    settings.JOBS_LOG_PURGE_RETRY_SECONDS = 60

    assert [purge.backoff_seconds(n) for n in (1, 2, 3, 6, 7, 20)] == [60, 120, 240, 1920, 3600, 3600]
    settings.JOBS_LOG_PURGE_RETRY_SECONDS = 0  # never zero: a drain would retry a failure in the same call
    assert purge.backoff_seconds(1) == 1


def test_one_drain_deletes_queued_folders_and_pruned_files_alike(jobs_with_logs, django_capture_on_commit_callbacks):
    job, pruned, neighbour = jobs_with_logs
    newer = JobHistory.objects.get(pk=runner.run_scheduled(pruned.pk, SLOT.replace(year=2026)))
    old_run = JobHistory.objects.filter(job=pruned).exclude(pk=newer.pk).get()
    gone, kept = [*log_paths(job), old_run.log_path], [newer.log_path, *log_paths(neighbour)]
    with django_capture_on_commit_callbacks(execute=False):  # committed, but the folder's message never left
        services.delete_job(job)
    old_run.delete()  # as a prune does, in the transaction that queues its log
    purge.forget_files([old_run.log_path], datetime.now(UTC))

    later = datetime.now(UTC) + timedelta(seconds=purge.IN_FLIGHT_SECONDS)  # the message lost, the prune dead
    assert purge.drain(later) == (2, 0)

    assert not any(default_storage.exists(path) for path in gone)
    assert all(default_storage.exists(path) for path in kept)  # the pruned job's kept run among them
    assert not LogDeletion.objects.exists()


def test_a_drain_tries_a_failing_file_once_however_many_batches_it_takes(db, monkeypatch):
    paths = [default_storage.save(f"instances/1/.log/job-1/run-{n}.log", ContentFile(b"log")) for n in range(5)]
    now = datetime.now(UTC)
    purge.forget_files(paths, now)
    real_delete = default_storage.delete

    def delete(name):
        if name == paths[0]:
            raise OSError("storage unavailable")
        real_delete(name)

    monkeypatch.setattr(default_storage, "delete", delete)

    assert purge.drain(now, limit=2, in_flight=True) == (4, 1)

    (row,) = LogDeletion.objects.all()
    assert (row.path, row.attempts) == (paths[0], 1)
    assert row.next_attempt_at >= now + timedelta(seconds=purge.backoff_seconds(1))


def test_it_refuses_a_folder_without_its_slash_and_a_file_that_is_a_folder(db):
    with pytest.raises(ValueError, match="ends with '/'"):
        purge.forget_folder("instances/1/.log/job-1")
    with pytest.raises(ValueError, match="does not end with '/'"):
        purge.forget_files(["instances/1/.log/job-1/"], datetime.now(UTC))
    assert not LogDeletion.objects.exists()


def test_a_pruned_log_that_storage_refused_is_sent_again_by_the_sweeper(jobs_with_logs, monkeypatch):
    job = jobs_with_logs[0]
    (path,) = log_paths(job)
    JobHistory.objects.filter(job=job).delete()
    now = datetime.now(UTC)
    purge.forget_files([path], now)
    assert sweeper.sweep(now=now)["purges"] == 0  # the prune that queued it is on it

    real_delete, storage_down = default_storage.delete, [True]

    def delete(name):
        if storage_down:
            raise OSError("storage unavailable")
        real_delete(name)

    monkeypatch.setattr(default_storage, "delete", delete)
    assert purge.drain(now, in_flight=True) == (0, 1)
    storage_down.clear()

    (row,) = LogDeletion.objects.all()
    assert (row.attempts, row.last_error) == (1, "OSError: storage unavailable")
    assert default_storage.exists(path)
    assert sweeper.sweep(now=row.next_attempt_at - timedelta(seconds=1))["purges"] == 0  # not due yet
    assert sweeper.sweep(now=row.next_attempt_at)["purges"] == 1
    assert purge_messages() == [[row.pk]]
    assert work_off_purges() == 1
    assert not default_storage.exists(path)
    assert not LogDeletion.objects.exists()
