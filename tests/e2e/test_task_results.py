"""What the real worker leaves behind besides runs: each run task's Celery result (state, worker, times, a crash's
traceback with secrets masked), linked from the run's page in the console; the daily cleanup of old results that
beat schedules; and a deleted job's logs, deleted from storage by the worker after commit.

Real worker and beat processes, PostgreSQL, Redis; the crash is a real one, raised by PostgreSQL in the worker.
"""

import json
import secrets
import time

import pytest
from celery.schedules import crontab
from django.contrib.auth import get_user_model
from django.core.files.storage import default_storage
from django.db import connection
from django_celery_results.models import TaskResult

from jobs import services
from jobs.models import FrequencyType, JobHistory, LogDeletion, RunStatus, ScheduledJob
from jobs.scheduling.entries import JobEntry
from pointscene.celery import app
from tests.fixtures.leaks import Scanner, all_secrets, register_secret

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module", autouse=True)
def celery_task_lines():
    """Celery's per-task lines, off by default, for this module's worker (autouse: set before `processes` starts
    it): a test below waits for a task's "succeeded" line, which Celery writes once its tracer would have stored
    the task's result."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("LOG_CELERY_TASKS", "INFO")
        yield


@pytest.fixture
def admin_client(client):
    client.force_login(get_user_model().objects.create_superuser("ops", "ops@example.com", "ops-password-123"))
    return client


def listing_job(instance, resource) -> ScheduledJob:
    return services.create_job(
        instance=instance,
        workflow={"tasks": [{"name": "list", "type": "resource.input", "args": {"id": str(resource.pk)}}]},
        frequency_type=FrequencyType.CRON_BASED,
        cron_expression="0 0 1 1 *",
    )


def wait_for(predicate, what: str, processes: dict, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}\n" + processes["worker"].output()[-5000:])


def task_result_of(run_id: int, processes: dict) -> TaskResult:
    """The result of the task that ran `run_id`, once that task has ended."""
    run = wait_for(
        lambda: JobHistory.objects.filter(pk=run_id, task_id__isnull=False).first(), "the run's task", processes
    )
    return wait_for(
        lambda: TaskResult.objects.filter(task_id=run.task_id, status__in=["SUCCESS", "FAILURE"]).first(),
        "the task's result",
        processes,
    )


def ended_run(run_id: int, processes: dict) -> JobHistory:
    return wait_for(
        lambda: JobHistory.objects.filter(pk=run_id, finished_at__isnull=False, log_path__isnull=False).first(),
        "the run's end",
        processes,
    )


def result_link_on_run_page(admin_client, run_id: int, result: TaskResult) -> str:
    page = admin_client.get(f"/admin/jobs/jobhistory/{run_id}/change/").content.decode()
    link = f"/admin/django_celery_results/taskresult/{result.pk}/change/"
    assert f'<a href="{link}">' in page
    return link


def test_a_run_that_ends_stores_no_task_result_and_its_page_says_why(processes, instance, resource, admin_client):
    run = ended_run(services.run_now(listing_job(instance, resource)).pk, processes)
    assert run.status == RunStatus.SUCCEEDED
    # The worker logs a task's success after its tracer would have stored the result.
    wait_for(
        lambda: f"Task jobs.run_queued[{run.task_id}] succeeded" in processes["worker"].output(),
        "the task's end",
        processes,
    )

    assert run.task_id
    assert not TaskResult.objects.filter(task_id=run.task_id).exists()
    page = admin_client.get(f"/admin/jobs/jobhistory/{run.pk}/change/").content.decode()
    assert f"<code>{run.task_id}</code> · no result stored: a run task stores one only when it crashes" in page


@pytest.fixture
def run_end_refused():
    """refuse(job_id, text): PostgreSQL raises `text` (an error) when the job's run is recorded as SUCCEEDED."""
    installed = []

    def refuse(job_id: int, text: str) -> None:
        assert not {"'", "$"} & set(text)  # a literal in the function's body
        with connection.cursor() as cursor:
            cursor.execute(
                "CREATE FUNCTION e2e_refuse_run_end() RETURNS trigger LANGUAGE plpgsql AS "
                f"$$ BEGIN RAISE EXCEPTION '%', '{text}'; END $$"
            )
            cursor.execute(
                "CREATE TRIGGER e2e_refuse_run_end BEFORE UPDATE ON jobs_jobhistory FOR EACH ROW "
                f"WHEN (NEW.status = 'SUCCEEDED' AND NEW.job_id = {int(job_id)}) EXECUTE FUNCTION e2e_refuse_run_end()"
            )
        installed.append(True)

    yield refuse
    if installed:
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER IF EXISTS e2e_refuse_run_end ON jobs_jobhistory")
            cursor.execute("DROP FUNCTION IF EXISTS e2e_refuse_run_end()")


def test_a_crashed_run_task_stores_its_traceback_without_the_secret_and_the_run_page_links_to_it(
    processes, instance, resource, admin_client, run_end_refused
):
    secret = register_secret(f"pw-{secrets.token_hex(12)}")
    job = listing_job(instance, resource)
    # The run's final write fails in the worker: nothing in the runner catches it, so the task crashes with a
    # database error that carries a credential, as a server's message or a DSN can.
    run_end_refused(job.pk, f"run end refused: password={secret}")

    run = services.run_now(job)
    result = task_result_of(run.pk, processes)

    assert result.status == "FAILURE"
    assert result.worker.startswith("e2e@")
    assert "Traceback (most recent call last)" in result.traceback
    assert "in _finish" in result.traceback
    assert "ProgrammingError: run end refused: password=***" in result.traceback
    assert json.loads(result.result)["exc_type"] == "ProgrammingError"
    columns = [str(value) for row in TaskResult.objects.values() for value in row.values()]
    assert Scanner(all_secrets() | {secret}).scan("\n".join(columns), "a TaskResult column") == []
    page = admin_client.get(result_link_on_run_page(admin_client, run.pk, result)).content.decode()
    assert "run end refused: password=***" in page
    assert secret not in page


def test_beat_schedules_the_daily_cleanup_of_expired_results(processes):
    key = JobEntry.generate_key(app, "celery.backend_cleanup")

    def stored_entry():
        try:
            return JobEntry.from_key(key, app=app)
        except KeyError:
            return None

    entry = wait_for(stored_entry, "beat's result-cleanup entry", processes)
    assert entry.task == "celery.backend_cleanup"
    assert entry.schedule == crontab(minute="0", hour="4")


def test_deleting_a_job_in_the_admin_has_the_worker_delete_its_logs(processes, instance, resource, admin_client):
    job, sibling = listing_job(instance, resource), listing_job(instance, resource)
    runs = [services.run_now(job), services.run_now(sibling)]
    for run in runs:
        ended_run(run.pk, processes)
    gone, kept = (JobHistory.objects.get(pk=run.pk).log_path for run in runs)
    assert default_storage.exists(gone)

    response = admin_client.post(f"/admin/jobs/scheduledjob/{job.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    wait_for(lambda: not LogDeletion.objects.exists(), "the worker to purge the deleted job's logs", processes)
    assert not default_storage.exists(gone)
    assert default_storage.exists(kept)
