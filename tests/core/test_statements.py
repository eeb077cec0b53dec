"""pointscene/core/statements.py: single-row statements built once, which must read and write exactly what the ORM
does (types, JSON, aware datetimes, NULLs, constraint errors), and compile no query."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import IntegrityError, transaction
from django.db.models.sql.compiler import SQLCompiler, SQLInsertCompiler, SQLUpdateCompiler
from django.forms.models import model_to_dict

from jobs.models import JobHistory, RunStatus, RunTrigger, ScheduledJob
from pointscene.core import statements

SLOT = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)


@pytest.fixture
def compiled(monkeypatch) -> list[str]:
    """Every query the ORM compiles meanwhile (a spy: the real compiler still runs)."""
    seen: list[str] = []

    def spy(original):
        def as_sql(self, *args, **kwargs):
            compiled = original(self, *args, **kwargs)
            # An INSERT compiles to a list of (sql, params), the others to one pair.
            seen.extend(sql for sql, _ in (compiled if isinstance(compiled, list) else [compiled]))
            return compiled

        return as_sql

    for compiler in (SQLCompiler, SQLInsertCompiler, SQLUpdateCompiler):
        monkeypatch.setattr(compiler, "as_sql", spy(compiler.as_sql))
    return seen


def fields_of(obj) -> dict:
    return {f.attname: getattr(obj, f.attname) for f in type(obj)._meta.concrete_fields}


def new_run(job: ScheduledJob, **fields) -> JobHistory:
    defaults = {"scheduled_for": SLOT, "status": RunStatus.RUNNING, "started_at": SLOT, "steps": [{"a": [1, None]}]}
    return JobHistory(job=job, instance_id=job.instance_id, trigger=RunTrigger.SCHEDULE, **(defaults | fields))


def test_it_loads_a_row_as_the_orm_does(job, compiled):
    ScheduledJob.objects.filter(pk=job.pk).update(last_run_at=SLOT, interval_minutes=None)
    expected = fields_of(ScheduledJob.objects.get(pk=job.pk))
    compiled.clear()

    loaded = statements.get_by_pk(ScheduledJob, job.pk)

    assert fields_of(loaded) == expected
    assert loaded.workflow == job.workflow  # JSON decoded, not text
    assert loaded.last_run_at.tzinfo is not None
    assert loaded._state.adding is False
    assert compiled == []


def test_it_loads_nothing_for_a_missing_row(db):
    assert statements.get_by_pk(ScheduledJob, 2**31 - 1) is None


def test_it_inserts_what_the_orm_reads_back(job, compiled):
    run = new_run(job, error="x" * 3, worker=None)

    statements.insert(run)

    assert run.pk is not None
    assert run._state.adding is False
    stored = JobHistory.objects.get(pk=run.pk)
    assert model_to_dict(stored) == model_to_dict(run)
    assert stored.steps == [{"a": [1, None]}]
    assert stored.worker is None
    assert stored.log_key == run.log_key != ""
    assert [sql for sql in compiled if "INSERT" in sql] == []


@pytest.mark.django_db(transaction=True)
def test_a_duplicate_insert_raises_and_leaves_the_transaction_usable(job):
    statements.insert(new_run(job))

    with transaction.atomic():
        with pytest.raises(IntegrityError), transaction.atomic():
            statements.insert(new_run(job))  # the same slot: history_one_run_per_slot
        statements.insert(new_run(job, scheduled_for=SLOT + timedelta(minutes=1)))

    assert JobHistory.objects.filter(job=job).count() == 2


def test_it_updates_one_row_with_plain_values(job, compiled):
    run = new_run(job)
    statements.insert(run)
    other = new_run(job, scheduled_for=SLOT + timedelta(minutes=1))
    statements.insert(other)
    finished = SLOT + timedelta(seconds=3)

    updated = statements.update_by_pk(
        JobHistory, run.pk, status=RunStatus.SUCCEEDED, finished_at=finished, steps=[{"b": "c"}], error=None
    )

    assert updated == 1
    stored = JobHistory.objects.get(pk=run.pk)
    assert (stored.status, stored.finished_at, stored.steps, stored.error) == (
        RunStatus.SUCCEEDED,
        finished,
        [{"b": "c"}],
        None,
    )
    assert JobHistory.objects.get(pk=other.pk).status == RunStatus.RUNNING  # only the row named
    assert statements.update_by_pk(JobHistory, 2**31 - 1, status=RunStatus.FAILED) == 0
    assert [sql for sql in compiled if "UPDATE" in sql] == []


def test_it_refuses_to_insert_a_row_that_has_a_primary_key(job):
    run = new_run(job)
    statements.insert(run)

    with pytest.raises(ValueError, match="already has a primary key"):
        statements.insert(run)
