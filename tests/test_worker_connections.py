"""A worker process keeps its database connection from task to task (pointscene/celery.py), and still replaces one
that broke: the signals a worker sends around each task are sent here as Celery's tracer sends them, with Celery's
Django fixup hooked in as a worker hooks it."""

import pytest
from celery.fixups.django import DjangoWorkerFixup
from celery.signals import task_postrun, task_prerun
from django.db import connection, connections

from jobs import tasks
from jobs.models import ScheduledJob
from pointscene.celery import app

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def run_task():
    """One task's signals, as a worker sends them: the fixup's own handlers, then ours, before and after."""
    fixup = DjangoWorkerFixup(app)
    task = tasks.run_scheduled

    def run(body) -> None:
        fixup.on_task_prerun(sender=task)
        task_prerun.send(sender=task, task_id="t", task=task, args=(), kwargs={})
        body()
        fixup.on_task_postrun(sender=task)
        task_postrun.send(sender=task, task_id="t", task=task, args=(), kwargs={}, retval=None, state="SUCCESS")

    return run


def backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def test_it_keeps_the_connection_from_task_to_task(run_task):
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's backend pid tells one connection from the next")
    pids = []
    for _ in range(3):
        run_task(lambda: pids.append(backend_pid()))

    assert len(set(pids)) == 1, pids


def test_it_replaces_a_connection_that_broke_between_tasks(run_task):
    if connection.vendor != "postgresql":
        pytest.skip("a PostgreSQL backend is what is terminated")
    pids = []
    run_task(lambda: pids.append(backend_pid()))
    killer = connections.create_connection("default")
    try:
        with killer.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pids[0]])
    finally:
        killer.close()

    run_task(lambda: pids.append(backend_pid()) or ScheduledJob.objects.count())

    assert pids[1] != pids[0]
