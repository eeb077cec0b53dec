"""The run tasks' Celery results (django-celery-results, through pointscene/results.py): a crash is stored with its
text redacted, each run's page in the console links to its task's result, and results past CELERY_RESULT_EXPIRES
are deleted by the cleanup that beat schedules.

The backend is called here as a worker's tracer calls it; tests/e2e/test_task_results.py has the real worker.
"""

import json
import secrets
import traceback
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from celery.app.task import Context
from celery.schedules import crontab
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.db import OperationalError
from django_celery_results.models import TaskResult

from jobs.models import JobHistory, RunStatus, RunTrigger
from jobs.scheduling.beat import JobsScheduler
from jobs.scheduling.entries import JobEntry
from pointscene.celery import app
from tests.fixtures.leaks import Scanner, all_secrets, register_secret
from tests.fixtures.redbeat import queued_messages

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(get_user_model().objects.create_superuser("ops", "ops@example.com", "ops-password-123"))
    return client


def task_request(task_id: str, run_id: int, hostname: str = "worker-a@host-1") -> Context:
    """The request a worker's tracer passes the backend for jobs.run_queued(run_id)."""
    return Context(
        id=task_id,
        task="jobs.run_queued",
        args=[run_id],
        kwargs={},
        argsrepr=repr([run_id]),
        kwargsrepr="{}",
        hostname=hostname,
        delivery_info={},
    )


def ran_run(job, task_id: str, status: str = RunStatus.SUCCEEDED) -> JobHistory:
    now = datetime.now(UTC)
    return JobHistory.objects.create(
        job=job, instance_id=job.instance_id, trigger=RunTrigger.MANUAL, status=status, task_id=task_id, finished_at=now
    )


def run_page(admin_client, run: JobHistory) -> str:
    response = admin_client.get(f"/admin/jobs/jobhistory/{run.pk}/change/")
    assert response.status_code == 200
    return response.content.decode()


def result_page_url(task_id: str) -> str:
    return f"/admin/django_celery_results/taskresult/{TaskResult.objects.get(task_id=task_id).pk}/change/"


def test_a_crash_is_stored_with_its_exception_and_traceback_redacted(job, admin_client):
    secret = register_secret(f"pw-{secrets.token_hex(12)}")
    task_id = str(uuid.uuid4())
    run = ran_run(job, task_id, RunStatus.RUNNING)
    try:
        # What a database error can say: the server's words, a DSN.
        raise OperationalError(f"connection failed: password={secret} (postgres://jobs:{secret}@db:5432/jobs)")
    except OperationalError as exc:
        told = traceback.format_exc()
        app.backend.mark_as_failure(task_id, exc, traceback=told, request=task_request(task_id, run.pk))
    assert secret in told  # what the backend was handed

    stored = TaskResult.objects.get(task_id=task_id)
    assert stored.status == "FAILURE"
    assert stored.task_name == "jobs.run_queued"
    assert stored.worker == "worker-a@host-1"
    assert "Traceback (most recent call last)" in stored.traceback
    assert "OperationalError: connection failed: password=*** (postgres://jobs:***@db:5432/jobs)" in stored.traceback
    assert json.loads(stored.result) == {
        "exc_type": "OperationalError",
        "exc_message": ["connection failed: password=*** (postgres://jobs:***@db:5432/jobs)"],
        "exc_module": "django.db.utils",
    }
    columns = [str(value) for row in TaskResult.objects.values() for value in row.values()]
    assert Scanner(all_secrets() | {secret}).scan("\n".join(columns), "TaskResult") == []

    result_page = admin_client.get(result_page_url(task_id)).content.decode()
    assert "password=***" in result_page
    assert secret not in result_page
    assert result_page_url(task_id) in run_page(admin_client, run)


def test_the_run_page_links_to_its_task_result_with_state_worker_and_time(job, admin_client):
    task_id = str(uuid.uuid4())
    run = ran_run(job, task_id, RunStatus.FAILED)
    try:
        raise OperationalError("the database went away")
    except OperationalError as exc:
        app.backend.mark_as_failure(
            task_id, exc, traceback=traceback.format_exc(), request=task_request(task_id, run.pk)
        )

    page = run_page(admin_client, run)

    assert TaskResult.objects.get(task_id=task_id).status == "FAILURE"
    assert f'<a href="{result_page_url(task_id)}"><code>{task_id}</code></a> · FAILURE on worker-a@host-1' in page
    assert admin_client.get(result_page_url(task_id)).status_code == 200


def test_the_run_page_says_why_there_is_no_task_result(job, admin_client):
    queued = JobHistory.objects.create(job=job, instance_id=job.instance_id, trigger=RunTrigger.MANUAL)
    missed = JobHistory.missed(job, datetime(2025, 1, 1, tzinfo=UTC), "missed: test", datetime.now(UTC))
    missed.save()
    expired = ran_run(job, str(uuid.uuid4()))

    assert "None yet: the task that starts this run records itself here." in run_page(admin_client, queued)
    assert "None: this row was recorded without a run task" in run_page(admin_client, missed)
    page = run_page(admin_client, expired)
    assert f"<code>{expired.task_id}</code> · no result stored: a run task stores one only when it crashes" in page
    assert "results are kept 14 days" in page


def test_beat_schedules_the_daily_result_cleanup_and_sends_it_when_due(clean_redis):
    beat = JobsScheduler(app)  # not lazy: it sets its schedule up in Redis, as a starting beat does

    entry = JobEntry.from_key(JobEntry.generate_key(app, "celery.backend_cleanup"), app=app)
    assert entry.task == "celery.backend_cleanup"
    assert entry.schedule == crontab(minute="0", hour="4")
    entry.last_run_at = datetime.now(UTC) - timedelta(days=2)  # last ran two days ago: due
    entry.save()

    beat.tick()

    assert "celery.backend_cleanup" in [message.task for message in queued_messages()]


def test_the_cleanup_deletes_results_past_their_expiry_and_keeps_the_others(job):
    old, recent = str(uuid.uuid4()), str(uuid.uuid4())
    for task_id in (old, recent):
        app.backend.mark_as_done(task_id, 1, request=task_request(task_id, 1))
    expires = timedelta(seconds=django_settings.CELERY_RESULT_EXPIRES)
    TaskResult.objects.filter(task_id=old).update(date_done=datetime.now(UTC) - expires - timedelta(hours=1))

    app.tasks["celery.backend_cleanup"].apply().get()  # what the worker runs when beat sends it

    assert list(TaskResult.objects.values_list("task_id", flat=True)) == [recent]
