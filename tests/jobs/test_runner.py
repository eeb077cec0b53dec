"""The run side, in process: jobs.running.runner called directly (no worker), with real PostgreSQL (or SQLite), the test
session's private Redis (the run lock) and a real HTTP server on loopback for http.request steps.
"""

import re
import shutil
import threading
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
from django.utils import timezone

from jobs import services, tasktypes
from jobs.models import FrequencyType, JobHistory, RunStatus, RunTrigger, ScheduledJob
from jobs.running import engine, runner
from jobs.running.locks import RunLock
from jobs.steps import StepResult
from jobs.tasktypes import TaskType
from pointscene.core import errors
from pointscene.core.storage import resource_area, run_log_path

SLOT = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)
STAMPED = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \S")


# Run locks live in the private test Redis; ids repeat across tests on SQLite, so each test starts empty.
pytestmark = pytest.mark.usefixtures("clean_redis", "loopback_allowed", "any_lateness_runs")


def ping(name: str, url: str, inputs=None, **args) -> dict:
    task = {"name": name, "type": "http.request", "args": {"url": url, **args}}
    if inputs is not None:
        task["inputs"] = inputs
    return task


def make_job(instance, tasks: list[dict], cron: str = "* * * * *", **kwargs) -> ScheduledJob:
    return services.create_job(
        instance=instance,
        workflow={"tasks": tasks},
        frequency_type=FrequencyType.CRON_BASED,
        cron_expression=cron,
        **kwargs,
    )


def row(run_id: int) -> JobHistory:
    return JobHistory.objects.get(pk=run_id)


def read_log(run: JobHistory) -> str:
    with default_storage.open(run.log_path, "rb") as f:
        return f.read().decode()


def wait_until(condition, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


# --------------------------------------------------------------------------- a scheduled run


def test_it_runs_a_scheduled_slot_and_records_everything(instance, http_server):
    job = make_job(
        instance,
        [ping("ping", http_server.url("/ok")), ping("hook", http_server.url("/status/204"), inputs="ping")],
        name="Pinger",
    )
    before = timezone.now()

    run_id = runner.run_scheduled(job.pk, SLOT)

    after = timezone.now()
    run = row(run_id)
    assert run.status == RunStatus.SUCCEEDED
    assert run.success is True
    assert run.trigger == RunTrigger.SCHEDULE
    assert run.job_id == job.pk
    assert run.instance_id == instance.pk
    assert run.scheduled_for == SLOT
    assert before <= run.started_at <= run.finished_at <= after
    assert run.error is None
    assert run.worker
    assert [(s["name"], s["type"], s["status"]) for s in run.steps] == [
        ("ping", "http.request", "SUCCEEDED"),
        ("hook", "http.request", "SUCCEEDED"),
    ]
    assert run.steps[0]["counters"] == {"httpStatus": 200, "bytes": 2}
    assert run.steps[1]["counters"] == {"httpStatus": 204, "bytes": 0}
    for s in run.steps:
        assert datetime.fromisoformat(s["startedAt"]) <= datetime.fromisoformat(s["finishedAt"])
        assert s["seconds"] >= 0
    assert ScheduledJob.objects.get(pk=job.pk).last_run_at == run.started_at
    assert http_server.paths() == ["/ok", "/status/204"]

    assert run.log_path == run_log_path(instance.pk, job.pk, run.pk)
    text = read_log(run)
    lines = text.splitlines()
    assert lines
    assert all(STAMPED.match(line) for line in lines), text
    assert "Pinger" in lines[0]
    assert SLOT.isoformat() in lines[0]
    for name in ("ping", "hook"):
        started = next(i for i, line in enumerate(lines) if f"[{name}] http.request started" in line)
        ended = next(i for i, line in enumerate(lines) if f"[{name}] succeeded" in line)
        assert started < ended
    assert "succeeded" in lines[-1]


def test_it_runs_a_slot_only_once(instance, http_server):
    job = make_job(instance, [ping("ping", http_server.url("/ok"))])
    first = runner.run_scheduled(job.pk, SLOT)
    log_before = read_log(row(first))
    finished_before = row(first).finished_at

    again = runner.run_scheduled(job.pk, SLOT)
    same_instant = runner.run_scheduled(job.pk, SLOT.astimezone(ZoneInfo("Europe/Helsinki")))

    assert again is None
    assert same_instant is None
    assert JobHistory.objects.filter(job=job).count() == 1
    assert row(first).finished_at == finished_before
    assert read_log(row(first)) == log_before
    assert http_server.paths() == ["/ok"]


def test_it_runs_the_next_slot_as_a_new_run(instance, http_server):
    job = make_job(instance, [ping("ping", http_server.url("/ok"))])

    first = runner.run_scheduled(job.pk, SLOT)
    second = runner.run_scheduled(job.pk, SLOT + timedelta(minutes=1))

    assert first != second
    assert [r.status for r in JobHistory.objects.filter(job=job).order_by("scheduled_for")] == ["SUCCEEDED"] * 2
    assert row(first).log_path != row(second).log_path


def pause(job):
    services.update_job(job, active=False)


def delete(job):
    services.delete_job(job)


@pytest.mark.parametrize(
    ("change", "slot"),
    [
        (None, SLOT + timedelta(seconds=30)),  # 12:00:30 is no slot of "* * * * *"
        (None, SLOT + timedelta(microseconds=1)),
        (pause, SLOT),
        (delete, SLOT),
    ],
    ids=["between-minutes", "off-by-a-microsecond", "paused", "deleted"],
)
def test_it_drops_a_slot_it_must_not_run(instance, http_server, change, slot):
    job = make_job(instance, [ping("ping", http_server.url("/ok"))])
    if change:
        change(job)

    assert runner.run_scheduled(job.pk, slot) is None

    assert JobHistory.objects.count() == 0
    assert http_server.requests == []
    if change is not delete:
        assert ScheduledJob.objects.get(pk=job.pk).last_run_at is None


def test_it_drops_a_slot_of_a_job_that_never_existed(db):
    assert runner.run_scheduled(987_654_321, SLOT) is None
    assert JobHistory.objects.count() == 0


def test_it_drops_a_slot_the_changed_schedule_no_longer_has(instance, http_server):
    job = make_job(instance, [ping("ping", http_server.url("/ok"))], cron="0 * * * *")
    services.update_job(job, cron_expression="30 * * * *")

    assert runner.run_scheduled(job.pk, SLOT) is None  # 12:00 was a slot of the old schedule only
    assert runner.run_scheduled(job.pk, SLOT + timedelta(minutes=30)) is not None


def test_it_reads_cron_slots_in_the_jobs_time_zone(instance, http_server):
    job = make_job(instance, [ping("ping", http_server.url("/ok"))], cron="0 9 * * *", tz="Europe/Helsinki")

    assert runner.run_scheduled(job.pk, datetime(2025, 6, 2, 9, 0, tzinfo=UTC)) is None
    assert runner.run_scheduled(job.pk, datetime(2025, 6, 2, 6, 0, tzinfo=UTC)) is not None  # 09:00 EEST


def test_it_runs_interval_slots_counted_from_the_anchor(instance, http_server):
    job = services.create_job(
        instance=instance,
        workflow={"tasks": [ping("ping", http_server.url("/ok"))]},
        frequency_type=FrequencyType.INTERVAL_BASED,
        interval_minutes=15,
    )
    anchor = datetime(2025, 6, 2, 11, 7, tzinfo=UTC)
    ScheduledJob.objects.filter(pk=job.pk).update(schedule_anchor=anchor)

    assert runner.run_scheduled(job.pk, SLOT) is None
    assert runner.run_scheduled(job.pk, anchor + timedelta(minutes=60)) is not None


# --------------------------------------------------------------------------- failures


def test_it_fails_the_run_at_the_first_failing_step(instance, http_server):
    job = make_job(
        instance,
        [
            ping("first", http_server.url("/ok")),
            ping("bad", http_server.url("/fail"), inputs="first"),
            ping("after", http_server.url("/ok"), inputs="bad"),
            ping("unrelated", http_server.url("/status/201")),
        ],
    )

    run = row(runner.run_scheduled(job.pk, SLOT))

    assert run.status == RunStatus.FAILED
    assert run.success is False
    assert "'bad'" in run.error
    assert "500" in run.error
    assert run.finished_at is not None
    statuses = {s["name"]: s["status"] for s in run.steps}
    assert statuses["first"] == "SUCCEEDED"
    assert statuses["bad"] == "FAILED"
    assert statuses["after"] == "NOT_RUN"
    assert "500" in next(s for s in run.steps if s["name"] == "bad")["error"]
    assert "/fail" in http_server.paths()
    assert http_server.paths().count("/ok") == 1  # "after" never called
    text = read_log(run)
    assert re.search(r"\[bad\] failed .*answered 500", text)
    assert "failed" in text.splitlines()[-1]
    assert run.error in text
    assert RunLock(job.pk).acquire()


def test_it_fails_a_sync_step_clearly_when_the_resource_lacks_the_remote(job):
    run = row(runner.run_scheduled(job.pk, datetime(2025, 6, 2, 2, 30, tzinfo=UTC)))

    assert run.status == RunStatus.FAILED
    assert "'sync'" in run.error
    assert "has no remote named 'acc'" in run.error
    assert [s["status"] for s in run.steps] == ["SUCCEEDED", "FAILED"]
    assert run.error in read_log(run)


# --------------------------------------------------------------------------- dependency order and inputs


@pytest.fixture
def recorder():
    """A test-only task type, "test.record", that records what each step received and hands on its name."""
    calls: list[tuple[str, dict]] = []

    def run(ctx):
        calls.append((ctx.task_name, ctx.inputs))
        ctx.log(f"saw inputs {sorted(ctx.inputs)}")
        return StepResult(outputs={"from": ctx.task_name, "count": len(calls)}, counters={"seen": len(ctx.inputs)})

    tasktypes.register(TaskType(name="test.record", check_args=lambda args, check: None, run=run))
    yield calls
    tasktypes.REGISTRY.pop("test.record", None)


@pytest.fixture
def explode():
    """A test-only task type that crashes with a message that must not reach the run's error."""

    def run(ctx):
        raise RuntimeError("internal detail sekret-999")

    tasktypes.register(TaskType(name="test.explode", check_args=lambda args, check: None, run=run))
    yield
    tasktypes.REGISTRY.pop("test.explode", None)


@pytest.fixture
def broken_type():
    """A test-only task type whose run hands back no StepResult: a bug in the engine's hands, not in a step's."""
    tasktypes.register(TaskType(name="test.broken", check_args=lambda args, check: None, run=lambda ctx: None))
    yield
    tasktypes.REGISTRY.pop("test.broken", None)


@pytest.fixture
def las_files(resource):
    area = resource_area(resource.pk)
    shutil.rmtree(default_storage.path(area), ignore_errors=True)
    for path, content in {"a.las": b"1234", "scans/b.las": b"56", "notes.txt": b"x", ".log/old.log": b"l"}.items():
        default_storage.save(area + path, ContentFile(content))
    yield resource
    shutil.rmtree(default_storage.path(area), ignore_errors=True)


def test_it_runs_tasks_in_dependency_order_and_passes_outputs_on(instance, las_files, recorder, http_server):
    # Listed backwards: each task names the one listed after it.
    job = make_job(
        instance,
        [
            ping("notify", http_server.url("/ok"), inputs="check"),
            {"name": "check", "type": "test.record", "inputs": ["files"]},
            {
                "name": "files",
                "type": "resource.input",
                "args": {"id": str(las_files.pk), "include": ["*.las"], "exclude": [".log/**"]},
            },
        ],
    )

    run = row(runner.run_scheduled(job.pk, SLOT))

    assert run.status == RunStatus.SUCCEEDED, run.error
    [(name, inputs)] = recorder
    assert name == "check"
    assert list(inputs) == ["files"]
    assert inputs["files"]["resourceId"] == las_files.pk
    assert sorted(f["path"] for f in inputs["files"]["files"]) == ["a.las", "scans/b.las"]
    steps = {s["name"]: s for s in run.steps}
    assert steps["files"]["counters"] == {"files": 2, "bytes": 6}
    assert steps["check"]["counters"] == {"seen": 1}
    starts = [datetime.fromisoformat(steps[n]["startedAt"]) for n in ("files", "check", "notify")]
    assert starts == sorted(starts)
    assert steps["files"]["finishedAt"] <= steps["check"]["startedAt"] <= steps["notify"]["startedAt"]
    text = read_log(run)
    assert text.index("[files] resource.input started") < text.index("[check] test.record started")
    assert text.index("[check] test.record started") < text.index("[notify] http.request started")
    assert "[check] saw inputs ['files']" in text
    assert http_server.paths() == ["/ok"]


def test_it_passes_the_outputs_of_every_named_input(instance, recorder):
    job = make_job(
        instance,
        [
            {"name": "join", "type": "test.record", "inputs": ["left", "right"]},
            {"name": "left", "type": "test.record"},
            {"name": "right", "type": "test.record"},
        ],
    )

    run = row(runner.run_scheduled(job.pk, SLOT))

    assert run.status == RunStatus.SUCCEEDED
    assert [name for name, _ in recorder] == ["left", "right", "join"]
    assert recorder[2][1] == {"left": {"from": "left", "count": 1}, "right": {"from": "right", "count": 2}}
    assert recorder[0][1] == {}


def test_it_keeps_what_the_steps_did_when_the_run_ends_in_an_internal_error(instance, recorder, broken_type):
    job = make_job(
        instance,
        [
            {"name": "first", "type": "test.record"},
            {"name": "broken", "type": "test.broken", "inputs": ["first"]},
            {"name": "never", "type": "test.record", "inputs": ["broken"]},
        ],
    )

    run = row(runner.run_scheduled(job.pk, SLOT))

    assert run.status == RunStatus.FAILED
    assert run.error == "internal error: AttributeError"
    assert [(s["name"], s["status"]) for s in run.steps] == [
        ("first", "SUCCEEDED"),
        ("broken", "FAILED"),
        ("never", "NOT_RUN"),
    ]
    assert run.steps[0]["counters"] == {"seen": 0}
    assert run.steps[1]["error"] == "internal error: AttributeError"
    assert RunLock(job.pk).acquire()


def test_it_fails_a_step_whose_type_no_longer_exists_by_its_name(instance, recorder):
    job = make_job(instance, [{"name": "first", "type": "test.record"}, {"name": "second", "type": "test.record"}])
    workflow = job.workflow
    workflow["tasks"][1]["type"] = "retired.type"  # a type a later release dropped; the row predates that
    ScheduledJob.objects.filter(pk=job.pk).update(workflow=workflow)

    run = row(runner.run_scheduled(job.pk, SLOT))

    assert run.status == RunStatus.FAILED
    assert run.error == "step 'second' failed: unknown task type 'retired.type'"
    assert [(s["name"], s["status"]) for s in run.steps] == [("first", "SUCCEEDED"), ("second", "FAILED")]
    assert "[second] failed: unknown task type 'retired.type'" in read_log(run)


def test_it_fails_a_crashing_step_without_leaking_its_exception(instance, explode):
    job = make_job(instance, [{"name": "boom", "type": "test.explode"}])

    run = row(runner.run_scheduled(job.pk, SLOT))

    assert run.status == RunStatus.FAILED
    assert "'boom'" in run.error
    assert "RuntimeError" in run.error
    assert "sekret-999" not in run.error
    assert "sekret-999" not in read_log(run)
    assert RunLock(job.pk).acquire()


@pytest.mark.parametrize(
    ("tasks", "order"),
    [
        ([], []),
        ([{"name": "a"}], [0]),
        ([{"name": "a"}, {"name": "b"}, {"name": "c"}], [0, 1, 2]),
        ([{"name": "c", "inputs": "b"}, {"name": "b", "inputs": ["a"]}, {"name": "a"}], [2, 1, 0]),
        ([{"name": "b", "inputs": "a"}, {"name": "a", "inputs": None}], [1, 0]),
        (
            [
                {"name": "d", "inputs": ["b", "c"]},
                {"name": "b", "inputs": "a"},
                {"name": "c", "inputs": "a"},
                {"name": "a"},
            ],
            [3, 1, 2, 0],
        ),
        ([{"name": "x", "inputs": []}, {"name": "y", "inputs": "x"}], [0, 1]),
    ],
)
def test_it_orders_tasks_after_their_inputs(tasks, order):
    assert engine.dependency_order(tasks) == order


@pytest.mark.parametrize(
    "tasks",
    [
        [{"name": "x"}, {"name": "y", "inputs": "x"}, {"name": "z"}],
        [{"name": "y", "inputs": ["x", "z"]}, {"name": "x"}, {"name": "z", "inputs": "x"}, {"name": "w"}],
        [{"name": f"t{i}", "inputs": [f"t{i + 1}"] if i < 9 else None} for i in range(10)],
    ],
)
def test_it_puts_every_task_once_and_after_its_inputs(tasks):
    order = engine.dependency_order(tasks)

    assert sorted(order) == list(range(len(tasks)))
    position = {tasks[i]["name"]: n for n, i in enumerate(order)}
    for task in tasks:
        named = task.get("inputs") or []
        for source in [named] if isinstance(named, str) else named:
            assert position[source] < position[task["name"]]


@pytest.mark.parametrize(
    "tasks",
    [
        [{"name": "a", "inputs": "b"}, {"name": "b", "inputs": "a"}],
        [{"name": "a", "inputs": "a"}],
        [{"name": "a"}, {"name": "b", "inputs": "c"}, {"name": "c", "inputs": "d"}, {"name": "d", "inputs": "b"}],
    ],
)
def test_it_refuses_to_order_a_cycle(tasks):
    with pytest.raises(ValueError, match="cycle"):
        engine.dependency_order(tasks)


# --------------------------------------------------------------------------- one run at a time


def test_it_skips_a_run_while_the_previous_one_holds_the_lock(instance, http_server):
    job = make_job(instance, [ping("ping", http_server.url("/ok"))])
    held = RunLock(job.pk)
    assert held.acquire()
    try:
        run = row(runner.run_scheduled(job.pk, SLOT))
    finally:
        held.release()

    assert run.status == RunStatus.SKIPPED
    assert run.success is False
    assert "previous run" in run.error
    assert "still going" in run.error
    assert run.scheduled_for == SLOT
    assert run.finished_at is not None
    assert run.started_at is None
    assert http_server.requests == []
    assert ScheduledJob.objects.get(pk=job.pk).last_run_at is None
    text = read_log(run)
    assert all(STAMPED.match(line) for line in text.splitlines())
    assert "skipped" in text
    assert "still going" in text
    # The skipped run did not take the lock away from its holder: the holder's release freed it.
    assert RunLock(job.pk).acquire()


def test_it_does_not_start_a_queued_run_while_the_previous_one_holds_the_lock(instance, http_server):
    job = make_job(instance, [ping("ping", http_server.url("/ok"))])
    queued = services.run_now(job)
    held = RunLock(job.pk)
    assert held.acquire()
    try:
        runner.run_queued(queued.pk)
    finally:
        held.release()

    assert row(queued.pk).status == RunStatus.SKIPPED
    assert http_server.requests == []


@pytest.mark.parametrize("path", ["/ok", "/fail"])
def test_it_releases_the_lock_after_a_run(instance, http_server, path):
    job = make_job(instance, [ping("ping", http_server.url(path))])

    runner.run_scheduled(job.pk, SLOT)

    lock = RunLock(job.pk)
    assert lock.acquire()
    lock.release()
    assert row(runner.run_scheduled(job.pk, SLOT + timedelta(minutes=1))).status != RunStatus.SKIPPED


def test_it_holds_the_lock_while_the_run_is_going(instance, http_server):
    job = make_job(instance, [ping("slow", http_server.url("/slow"))])
    observed: list[bool] = []

    def probe():
        http_server.wait_for("/slow")
        observed.append(RunLock(job.pk).acquire())
        http_server.release.set()

    prober = threading.Thread(target=probe)
    prober.start()
    run = row(runner.run_scheduled(job.pk, SLOT))
    prober.join(10)

    assert observed == [False]
    assert run.status == RunStatus.SUCCEEDED


def test_it_runs_again_once_a_crashed_workers_lease_ran_out(instance, http_server, clean_redis):
    job = make_job(instance, [ping("ping", http_server.url("/ok"))])
    crashed = RunLock(job.pk, lease_seconds=1)
    assert crashed.acquire()  # ...and never released nor renewed
    wait_until(lambda: not clean_redis.exists(crashed.lock.name), timeout=3)

    run = row(runner.run_scheduled(job.pk, SLOT))

    assert run.status == RunStatus.SUCCEEDED


# Committed rows: the run's watcher thread writes heartbeats on its own connection, which on SQLite would wait
# for this test's open transaction (and its lease renewals with it).
@pytest.mark.django_db(transaction=True)
def test_it_renews_the_lease_while_a_run_outlasts_it(settings, instance, http_server):
    settings.JOBS_RUN_LOCK_LEASE = 3
    job = make_job(instance, [ping("slow", http_server.url("/slow"))])
    observed: list[bool] = []

    def probe():
        http_server.wait_for("/slow")
        time.sleep(4)  # past the first lease: only renewals keep the lock
        observed.append(RunLock(job.pk).acquire())
        http_server.release.set()

    prober = threading.Thread(target=probe)
    prober.start()
    run = row(runner.run_scheduled(job.pk, SLOT))
    prober.join(10)

    assert observed == [False]
    assert run.status == RunStatus.SUCCEEDED


def test_it_fails_a_step_whose_type_is_gone_and_frees_the_lock(instance, recorder):
    job = make_job(instance, [{"name": "gone", "type": "test.record"}])
    tasktypes.REGISTRY.pop("test.record")

    run = row(runner.run_scheduled(job.pk, SLOT))

    assert run.status == RunStatus.FAILED
    assert "'gone'" in run.error
    assert RunLock(job.pk).acquire()


# --------------------------------------------------------------------------- time limit and cancel


def test_it_fails_a_run_that_exceeds_the_jobs_time_limit(instance, http_server):
    job = make_job(instance, [ping("slow", http_server.url("/slow")), ping("after", http_server.url("/ok"))])
    ScheduledJob.objects.filter(pk=job.pk).update(time_limit_seconds=1)
    started = time.monotonic()

    run = row(runner.run_scheduled(job.pk, SLOT))

    assert time.monotonic() - started < 5
    assert run.status == RunStatus.FAILED
    assert "time limit" in run.error
    assert [s["status"] for s in run.steps] == ["FAILED", "NOT_RUN"]
    assert "time limit" in read_log(run)
    assert http_server.paths() == ["/slow"]
    assert RunLock(job.pk).acquire()


def test_it_applies_the_time_limit_setting_when_the_job_has_none(settings, instance, http_server):
    settings.JOBS_RUN_TIME_LIMIT = 1
    job = make_job(instance, [ping("slow", http_server.url("/slow"))])
    started = time.monotonic()

    run = row(runner.run_scheduled(job.pk, SLOT))

    assert time.monotonic() - started < 5
    assert run.status == RunStatus.FAILED
    assert "time limit" in run.error


def in_thread(target, *args) -> threading.Thread:
    """Runs `target` the way a worker would: its own thread, its own database connection."""

    def body():
        try:
            target(*args)
        finally:
            connection.close()

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    return thread


@pytest.mark.django_db(transaction=True)
def test_it_cancels_a_running_run_quickly(instance, http_server):
    job = make_job(instance, [ping("slow", http_server.url("/slow")), ping("after", http_server.url("/ok"))])
    queued = services.run_now(job)
    worker = in_thread(runner.run_queued, queued.pk)
    http_server.wait_for("/slow")
    wait_until(lambda: row(queued.pk).status == RunStatus.RUNNING)

    asked = services.cancel_run(row(queued.pk))
    started = time.monotonic()
    worker.join(10)

    assert asked.status == RunStatus.RUNNING  # the request only signals; the worker records the outcome
    assert not worker.is_alive()
    assert time.monotonic() - started < 5
    run = row(queued.pk)
    assert run.cancel_requested_at is not None
    assert run.status == RunStatus.CANCELLED
    assert run.success is False
    assert run.finished_at is not None
    assert "cancel" in run.error
    assert run.steps[0]["status"] != "SUCCEEDED"
    assert run.steps[1]["status"] == "NOT_RUN"
    assert "cancel" in read_log(run)
    assert not http_server.slow_finished.is_set()  # the slow request was abandoned, not waited for
    assert http_server.paths() == ["/slow"]
    assert RunLock(job.pk).acquire()


def test_it_cancels_a_queued_run_so_that_it_never_starts(instance, http_server):
    job = make_job(instance, [ping("ping", http_server.url("/ok"))])
    queued = services.run_now(job)

    cancelled = services.cancel_run(queued)
    runner.run_queued(queued.pk)

    run = row(queued.pk)
    assert cancelled.status == run.status == RunStatus.CANCELLED
    assert run.finished_at is not None
    assert run.started_at is None
    assert run.log_path is None
    assert http_server.requests == []
    assert ScheduledJob.objects.get(pk=job.pk).last_run_at is None


@pytest.mark.parametrize("status", [RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.SKIPPED, RunStatus.CANCELLED])
def test_it_refuses_to_cancel_a_finished_run(job, status):
    done = JobHistory.objects.create(
        job=job, instance_id=job.instance_id, status=status, finished_at=timezone.now(), error="was"
    )
    before = list(JobHistory.objects.filter(pk=done.pk).values())

    with pytest.raises(ValidationError) as refused:
        services.cancel_run(done)

    assert {f: [e.code for e in errs] for f, errs in refused.value.error_dict.items()} == {
        "jobHistoryId": [errors.NOT_CANCELLABLE]
    }
    assert list(JobHistory.objects.filter(pk=done.pk).values()) == before


def test_it_refuses_to_cancel_a_run_that_finished_after_it_was_loaded(instance, http_server):
    job = make_job(instance, [ping("ping", http_server.url("/ok"))])
    queued = services.run_now(job)
    runner.run_queued(queued.pk)  # `queued` still says QUEUED

    with pytest.raises(ValidationError):
        services.cancel_run(queued)

    assert row(queued.pk).status == RunStatus.SUCCEEDED
    assert row(queued.pk).cancel_requested_at is None


# --------------------------------------------------------------------------- manual runs


def test_it_runs_a_queued_manual_run(instance, http_server):
    job = make_job(instance, [ping("ping", http_server.url("/ok"))])
    services.update_job(job, active=False)  # paused jobs can be run by hand
    queued = services.run_now(job)
    assert queued.status == RunStatus.QUEUED

    runner.run_queued(queued.pk)
    runner.run_queued(queued.pk)  # a redelivered message finds the run taken

    run = row(queued.pk)
    assert run.status == RunStatus.SUCCEEDED
    assert run.trigger == RunTrigger.MANUAL
    assert run.scheduled_for is None
    assert run.started_at is not None
    assert "manual" in read_log(run).splitlines()[0]
    assert http_server.paths() == ["/ok"]
    assert ScheduledJob.objects.get(pk=job.pk).last_run_at == run.started_at


def test_it_ignores_a_queued_message_for_a_missing_run(db):
    runner.run_queued(987_654_321)

    assert JobHistory.objects.count() == 0
