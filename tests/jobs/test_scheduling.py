"""Keeping Redis in step with the database (jobs/scheduling.py): one RedBeat entry per active job, written after
commit by the services (API and admin alike), rebuilt by reconcile() and `manage.py sync_schedules`.

In-process, against the session's private Redis, which every test starts with empty.
"""

import json
from datetime import UTC, datetime, time, timedelta
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from redbeat.decoder import to_timestamp

from jobs import services
from jobs.models import FrequencyType, ScheduledJob
from jobs.scheduling import reconcile
from jobs.scheduling.entries import JobEntry
from jobs.scheduling.slots import JobSchedule
from tests import environment
from tests.fixtures.api import error_codes
from tests.fixtures.cast import sync_workflow
from tests.fixtures.redbeat import (
    assert_entry_matches,
    assert_no_entry,
    entry_job_ids,
    entry_key,
    redis_client,
    schedule_key,
    stored_entry,
)

pytestmark = pytest.mark.django_db

CRON = FrequencyType.CRON_BASED
INTERVAL = FrequencyType.INTERVAL_BASED


@pytest.fixture(autouse=True)
def _empty_redis(clean_redis):
    return clean_redis


JOB_FIELDS = "id active frequencyType cronExpression intervalMinutes timezone nextRun"

CREATE = f"""
mutation Create($instanceId: ID!, $workflow: JSON!, $frequencyType: FrequencyType!, $cronExpression: String,
                $intervalMinutes: Int, $timezone: String, $active: Boolean, $name: String) {{
  createScheduledJob(instanceId: $instanceId, workflow: $workflow, frequencyType: $frequencyType,
                     cronExpression: $cronExpression, intervalMinutes: $intervalMinutes, timezone: $timezone,
                     active: $active, name: $name) {{ {JOB_FIELDS} }}
}}
"""

UPDATE = f"""
mutation Update($jobId: ID!, $workflow: JSON, $frequencyType: FrequencyType, $cronExpression: String,
                $intervalMinutes: Int, $timezone: String, $active: Boolean, $name: String, $description: String) {{
  updateScheduledJob(jobId: $jobId, workflow: $workflow, frequencyType: $frequencyType,
                     cronExpression: $cronExpression, intervalMinutes: $intervalMinutes, timezone: $timezone,
                     active: $active, name: $name, description: $description) {{ {JOB_FIELDS} }}
}}
"""

DELETE = "mutation Delete($id: ID!) { deleteScheduledJob(id: $id) { success } }"


@pytest.fixture
def gql(api, acme_token, django_capture_on_commit_callbacks):
    """Runs a GraphQL document as Acme's client, then its on-commit hooks (as a real commit would)."""

    def run(query: str, **variables) -> tuple[int, dict]:
        with django_capture_on_commit_callbacks(execute=True):
            return api.gql(query, variables, token=acme_token)

    return run


@pytest.fixture
def create(gql, instance, workflow):
    """createScheduledJob with the fixture workflow; returns the new job row."""

    def run(**arguments) -> ScheduledJob:
        status, body = gql(CREATE, instanceId=str(instance.pk), workflow=workflow, **arguments)
        assert status == 200, body
        assert "errors" not in body, body
        return ScheduledJob.objects.get(pk=body["data"]["createScheduledJob"]["id"])

    return run


@pytest.fixture
def update(gql):
    def run(job: ScheduledJob, **arguments) -> tuple[int, dict]:
        return gql(UPDATE, jobId=str(job.pk), **arguments)

    return run


def now() -> datetime:
    return datetime.now(UTC)


def snapshot(job_id: int) -> tuple:
    """Everything RedBeat holds for the job: hash fields and score."""
    client = redis_client()
    return (client.hgetall(entry_key(job_id)), client.zscore(schedule_key(), entry_key(job_id)))


def synced_job(instance, workflow, django_capture_on_commit_callbacks, **fields) -> ScheduledJob:
    with django_capture_on_commit_callbacks(execute=True):
        return services.create_job(instance=instance, workflow=workflow, **fields)


# --------------------------------------------------------------------------- create


@pytest.mark.parametrize(
    "arguments",
    [
        pytest.param({"frequencyType": "CRON_BASED", "cronExpression": "30 2 * * *"}, id="cron-utc"),
        pytest.param(
            {"frequencyType": "CRON_BASED", "cronExpression": "0 6 * * 1-5", "timezone": "Europe/Helsinki"},
            id="cron-helsinki",
        ),
        pytest.param({"frequencyType": "CRON_BASED", "cronExpression": "@yearly"}, id="cron-nickname"),
        pytest.param({"frequencyType": "INTERVAL_BASED", "intervalMinutes": 15}, id="interval"),
    ],
)
def test_it_adds_one_entry_when_a_job_is_created(create, arguments):
    before = now()

    job = create(**arguments)

    entry = assert_entry_matches(job, synced_between=(before, now()))
    assert entry.score == to_timestamp(job.next_run())
    assert entry_job_ids() == {"hashes": {job.pk}, "members": {job.pk}}


def test_it_reads_the_cron_in_the_jobs_time_zone(create):
    job = create(frequencyType="CRON_BASED", cronExpression="0 6 * * *", timezone="America/New_York")

    entry = stored_entry(job.pk)

    assert entry.schedule == JobSchedule("cron", cron="0 6 * * *", tz="America/New_York")
    due = datetime.fromtimestamp(entry.score, UTC)
    assert due == job.next_run()
    assert due.astimezone(ZoneInfo("America/New_York")).time() == time(6, 0)


def test_it_adds_no_entry_for_a_job_created_paused(create):
    job = create(frequencyType="CRON_BASED", cronExpression="30 2 * * *", active=False)

    assert_no_entry(job.pk)
    assert entry_job_ids() == {"hashes": set(), "members": set()}


def test_it_keeps_exactly_one_entry_per_active_job(create, update):
    jobs = [
        create(frequencyType="CRON_BASED", cronExpression="*/5 * * * *"),
        create(frequencyType="INTERVAL_BASED", intervalMinutes=60),
        create(frequencyType="CRON_BASED", cronExpression="0 0 1 * *", timezone="Asia/Tokyo"),
        create(frequencyType="INTERVAL_BASED", intervalMinutes=5, active=False),
    ]
    update(jobs[0], active=False)
    update(jobs[1], intervalMinutes=30)

    active = {job.pk for job in ScheduledJob.objects.filter(active=True)}
    assert active == {jobs[1].pk, jobs[2].pk}
    assert entry_job_ids() == {"hashes": active, "members": active}
    for job in ScheduledJob.objects.filter(active=True):
        assert_entry_matches(job)


def test_it_writes_nothing_to_redis_before_the_commit(
    api, acme_token, instance, workflow, django_capture_on_commit_callbacks
):
    variables = {"instanceId": str(instance.pk), "workflow": workflow, "frequencyType": "CRON_BASED"}
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        status, body = api.gql(CREATE, {**variables, "cronExpression": "30 2 * * *"}, token=acme_token)
    job = ScheduledJob.objects.get(pk=body["data"]["createScheduledJob"]["id"])

    assert status == 200
    assert callbacks, "the create registered no on-commit hook"
    assert_no_entry(job.pk)
    assert redis_client().dbsize() == 0

    for callback in callbacks:
        callback()

    assert_entry_matches(job)


@pytest.mark.parametrize(
    "mutation",
    [
        pytest.param(lambda job: (UPDATE, {"jobId": str(job.pk), "cronExpression": "0 4 * * *"}), id="update"),
        pytest.param(lambda job: (UPDATE, {"jobId": str(job.pk), "active": False}), id="pause"),
        pytest.param(lambda job: (DELETE, {"id": str(job.pk)}), id="delete"),
    ],
)
def test_it_changes_nothing_in_redis_before_the_commit(
    api, acme_token, job, django_capture_on_commit_callbacks, mutation
):
    reconcile.sync_job(job.pk)
    before = snapshot(job.pk)
    query, variables = mutation(job)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        status, body = api.gql(query, variables, token=acme_token)

    assert status == 200
    assert "errors" not in body, body
    assert callbacks
    assert snapshot(job.pk) == before


# --------------------------------------------------------------------------- pause, resume, change, rename, delete


@pytest.mark.parametrize(
    "arguments",
    [
        pytest.param({"frequencyType": "CRON_BASED", "cronExpression": "30 2 * * *"}, id="cron"),
        pytest.param({"frequencyType": "INTERVAL_BASED", "intervalMinutes": 15}, id="interval"),
    ],
)
def test_it_removes_the_entry_on_pause_and_adds_it_back_on_resume(create, update, arguments):
    job = create(**arguments)

    status, body = update(job, active=False)

    assert status == 200
    assert "errors" not in body, body
    assert_no_entry(job.pk)
    assert entry_job_ids() == {"hashes": set(), "members": set()}

    before = now()
    status, body = update(job, active=True)

    assert status == 200
    assert "errors" not in body, body
    entry = assert_entry_matches(job, synced_between=(before, now()))
    job.refresh_from_db()
    if job.frequency_type == INTERVAL:
        # Interval jobs count from the reactivation.
        assert before <= job.schedule_anchor <= now()
        assert entry.schedule.anchor == job.schedule_anchor
        assert entry.score == to_timestamp(job.schedule_anchor + timedelta(minutes=15))


@pytest.mark.parametrize(
    ("initial", "change"),
    [
        pytest.param(
            {"frequencyType": "CRON_BASED", "cronExpression": "30 2 * * *"}, {"cronExpression": "15 9 * * 1"}, id="cron"
        ),
        pytest.param(
            {"frequencyType": "CRON_BASED", "cronExpression": "30 2 * * *"},
            {"timezone": "Pacific/Auckland"},
            id="timezone",
        ),
        pytest.param(
            {"frequencyType": "CRON_BASED", "cronExpression": "30 2 * * *", "timezone": "Europe/Helsinki"},
            {"timezone": "UTC"},
            id="timezone-back-to-utc",
        ),
        pytest.param(
            {"frequencyType": "INTERVAL_BASED", "intervalMinutes": 15}, {"intervalMinutes": 90}, id="interval"
        ),
        pytest.param(
            {"frequencyType": "CRON_BASED", "cronExpression": "30 2 * * *"},
            {"frequencyType": "INTERVAL_BASED", "intervalMinutes": 7},
            id="cron-to-interval",
        ),
        pytest.param(
            {"frequencyType": "INTERVAL_BASED", "intervalMinutes": 15},
            {"frequencyType": "CRON_BASED", "cronExpression": "0 12 * * *"},
            id="interval-to-cron",
        ),
    ],
)
def test_it_updates_the_entry_when_the_schedule_changes(create, update, initial, change):
    job = create(**initial)
    old = stored_entry(job.pk)

    before = now()
    status, body = update(job, **change)

    assert status == 200
    assert "errors" not in body, body
    entry = assert_entry_matches(job, synced_between=(before, now()))
    assert entry.raw_definition != old.raw_definition
    assert entry.score == to_timestamp(ScheduledJob.objects.get(pk=job.pk).next_run())
    assert entry_job_ids() == {"hashes": {job.pk}, "members": {job.pk}}


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"name": "A new name"}, id="rename"),
        pytest.param({"description": "Now described"}, id="describe"),
        pytest.param({"cronExpression": "30 2 * * *"}, id="same-cron"),
        pytest.param({"timezone": "UTC"}, id="same-timezone"),
        pytest.param({"active": True}, id="already-active"),
    ],
)
def test_it_leaves_the_entry_unchanged_when_the_schedule_does_not_change(create, update, change):
    job = create(frequencyType="CRON_BASED", cronExpression="30 2 * * *", name="Old name")
    before = snapshot(job.pk)

    status, body = update(job, **change)

    assert status == 200
    assert "errors" not in body, body
    assert snapshot(job.pk) == before
    assert reconcile.sync_job(job.pk) == "unchanged"
    assert snapshot(job.pk) == before


def test_it_leaves_an_interval_entry_unchanged_on_rename(create, update):
    job = create(frequencyType="INTERVAL_BASED", intervalMinutes=15)
    before = snapshot(job.pk)

    update(job, name="renamed", workflow=sync_workflow(job.instance, job.instance.resources.get()))

    assert snapshot(job.pk) == before
    assert reconcile.sync_job(job.pk) == "unchanged"


@pytest.mark.parametrize(
    "arguments",
    [
        pytest.param({"frequencyType": "CRON_BASED", "cronExpression": "30 2 * * *"}, id="cron"),
        pytest.param({"frequencyType": "INTERVAL_BASED", "intervalMinutes": 15}, id="interval"),
        pytest.param({"frequencyType": "INTERVAL_BASED", "intervalMinutes": 15, "active": False}, id="paused"),
    ],
)
def test_it_removes_the_entry_when_the_job_is_deleted(create, gql, arguments):
    job = create(**arguments)
    keep = create(frequencyType="CRON_BASED", cronExpression="0 * * * *")

    status, body = gql(DELETE, id=str(job.pk))

    assert (status, body) == (200, {"data": {"deleteScheduledJob": {"success": True}}})
    assert_no_entry(job.pk)
    assert entry_job_ids() == {"hashes": {keep.pk}, "members": {keep.pk}}
    assert_entry_matches(keep)


@pytest.mark.parametrize(
    ("change", "code"),
    [
        pytest.param({"cronExpression": "61 * * * *"}, "INVALID_CRON", id="bad-cron"),
        pytest.param({"cronExpression": "0 4 * * *", "timezone": "Mars/Olympus_Mons"}, "INVALID_TIMEZONE", id="bad-tz"),
        pytest.param({"intervalMinutes": 5}, "NOT_ALLOWED", id="interval-on-cron-job"),
        pytest.param({"frequencyType": "INTERVAL_BASED", "intervalMinutes": 0}, "INVALID_INTERVAL", id="bad-interval"),
        pytest.param({"frequencyType": "INTERVAL_BASED"}, "REQUIRED", id="missing-interval"),
        pytest.param(
            {"cronExpression": "0 4 * * *", "active": False, "workflow": {"tasks": []}},
            "INVALID_WORKFLOW",
            id="bad-workflow",
        ),
    ],
)
def test_it_leaves_the_entry_as_it_was_when_an_update_fails(create, update, change, code):
    job = create(frequencyType="CRON_BASED", cronExpression="30 2 * * *", timezone="Europe/Helsinki")
    before = snapshot(job.pk)
    row = ScheduledJob.objects.filter(pk=job.pk).values().get()

    status, body = update(job, **change)

    assert status == 200
    assert error_codes(body) == [code], body
    assert ScheduledJob.objects.filter(pk=job.pk).values().get() == row
    assert snapshot(job.pk) == before
    assert_entry_matches(job)


def test_it_adds_nothing_when_a_create_fails(gql, instance, workflow):
    status, body = gql(
        CREATE, instanceId=str(instance.pk), workflow=workflow, frequencyType="CRON_BASED", cronExpression="* * *"
    )

    assert status == 200
    assert error_codes(body) == ["INVALID_CRON"]
    assert redis_client().dbsize() == 0


# --------------------------------------------------------------------------- sync_job


def test_sync_job_says_what_it_did(job):
    assert reconcile.sync_job(job.pk) == "added"
    assert reconcile.sync_job(job.pk) == "unchanged"

    ScheduledJob.objects.filter(pk=job.pk).update(cron_expression="0 3 * * *")
    assert reconcile.sync_job(job.pk) == "updated"
    assert_entry_matches(job)

    ScheduledJob.objects.filter(pk=job.pk).update(active=False)
    assert reconcile.sync_job(job.pk) == "removed"
    assert reconcile.sync_job(job.pk) == "unchanged"
    assert_no_entry(job.pk)

    ScheduledJob.objects.filter(pk=job.pk).update(active=True)
    assert reconcile.sync_job(job.pk) == "added"
    job_id = job.pk
    ScheduledJob.objects.filter(pk=job_id).delete()
    assert reconcile.sync_job(job_id) == "removed"
    assert_no_entry(job_id)


def test_sync_job_of_an_unknown_id_removes_nothing_else(job):
    reconcile.sync_job(job.pk)
    before = snapshot(job.pk)

    assert reconcile.sync_job(job.pk + 1000) == "unchanged"
    assert snapshot(job.pk) == before


def test_sync_job_puts_back_an_entry_missing_from_the_schedule_zset(job):
    """A hash without its zset member never fires; sync_job must not call that 'unchanged'."""
    reconcile.sync_job(job.pk)
    redis_client().zrem(schedule_key(), entry_key(job.pk))

    result = reconcile.sync_job(job.pk)

    assert result in {"added", "updated"}
    assert_entry_matches(job)


# --------------------------------------------------------------------------- the admin's path


def test_admin_save_path_adds_updates_and_removes_the_entry(instance, workflow, django_capture_on_commit_callbacks):
    job = ScheduledJob(
        instance=instance, workflow=workflow, frequency_type=CRON, cron_expression="30 2 * * *", timezone="UTC"
    )
    with django_capture_on_commit_callbacks(execute=True):
        services.save_job(job)
    assert_entry_matches(job)
    assert stored_entry(job.pk).schedule == JobSchedule("cron", cron="30 2 * * *", tz="UTC")

    job.cron_expression, job.timezone = "45 23 * * *", "Australia/Sydney"
    with django_capture_on_commit_callbacks(execute=True):
        services.save_job(job)
    assert_entry_matches(job)
    assert stored_entry(job.pk).schedule == JobSchedule("cron", cron="45 23 * * *", tz="Australia/Sydney")

    job.frequency_type, job.cron_expression, job.interval_minutes = INTERVAL, None, 20
    with django_capture_on_commit_callbacks(execute=True):
        services.save_job(job)
    assert_entry_matches(job)

    job.active = False
    with django_capture_on_commit_callbacks(execute=True):
        services.save_job(job)
    assert_no_entry(job.pk)

    job.active = True
    with django_capture_on_commit_callbacks(execute=True):
        services.save_job(job)
    assert_entry_matches(job)


def test_admin_save_path_writes_nothing_before_the_commit(job, django_capture_on_commit_callbacks):
    job.cron_expression = "0 5 * * *"

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.save_job(job)

    assert callbacks
    assert redis_client().dbsize() == 0


def test_the_admin_change_form_syncs_the_entry(admin_client, job, django_capture_on_commit_callbacks):
    reconcile.sync_job(job.pk)
    form = {
        "instance": job.instance_id,
        "name": job.name,
        "workflow": json.dumps(job.workflow),
        "frequency_type": "CRON_BASED",
        "cron_expression": "0 7 * * *",
        "interval_minutes": "",
        "timezone": "Europe/Helsinki",
        "active": "on",
    }

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(f"/admin/jobs/scheduledjob/{job.pk}/change/", form)

    assert response.status_code == 302, response.content[:2000]
    assert stored_entry(job.pk).schedule == JobSchedule("cron", cron="0 7 * * *", tz="Europe/Helsinki")
    assert_entry_matches(job)


def test_the_admin_delete_removes_the_entry(admin_client, job, django_capture_on_commit_callbacks):
    reconcile.sync_job(job.pk)

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(f"/admin/jobs/scheduledjob/{job.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert not ScheduledJob.objects.filter(pk=job.pk).exists()
    assert_no_entry(job.pk)


# --------------------------------------------------------------------------- reconcile


@pytest.fixture
def fleet(instance, workflow, django_capture_on_commit_callbacks) -> list[ScheduledJob]:
    """Five active jobs whose entries were written as the services write them."""
    specs = [
        {"frequency_type": CRON, "cron_expression": "30 2 * * *"},
        {"frequency_type": CRON, "cron_expression": "0 6 * * *", "tz": "Europe/Helsinki"},
        {"frequency_type": INTERVAL, "interval_minutes": 15},
        {"frequency_type": INTERVAL, "interval_minutes": 60},
        {"frequency_type": CRON, "cron_expression": "*/10 * * * *", "tz": "America/New_York"},
    ]
    return [synced_job(instance, workflow, django_capture_on_commit_callbacks, **spec) for spec in specs]


def write_orphan(job_id: int) -> None:
    """An entry for `job_id` as an older sync would have left it."""
    client = redis_client()
    key = entry_key(job_id)
    client.hset(key, "definition", json.dumps({"name": f"job-{job_id}", "task": "jobs.run_scheduled"}))
    client.hset(key, "meta", json.dumps({"last_run_at": None}))
    client.zadd(schedule_key(), {key: 1})


def tamper(job_id: int, **schedule) -> None:
    client = redis_client()
    key = entry_key(job_id)
    definition = json.loads(client.hget(key, "definition"))
    definition["schedule"].update(schedule)
    client.hset(key, "definition", json.dumps(definition, sort_keys=True))


def test_reconcile_of_a_database_in_step_changes_nothing(fleet):
    before = {job.pk: snapshot(job.pk) for job in fleet}

    assert reconcile.reconcile() == {"added": [], "removed": [], "fixed": []}
    assert {job.pk: snapshot(job.pk) for job in fleet} == before


def test_reconcile_adds_missing_entries(fleet):
    client = redis_client()
    client.delete(entry_key(fleet[0].pk))
    client.zrem(schedule_key(), entry_key(fleet[0].pk))
    client.delete(entry_key(fleet[2].pk))
    client.zrem(schedule_key(), entry_key(fleet[2].pk))

    changes = reconcile.reconcile()

    assert changes == {"added": sorted([fleet[0].pk, fleet[2].pk]), "removed": [], "fixed": []}
    for job in fleet:
        assert_entry_matches(job)


def test_reconcile_restores_everything_after_a_flush(fleet):
    redis_client().flushdb()

    changes = reconcile.reconcile()

    assert changes == {"added": sorted(job.pk for job in fleet), "removed": [], "fixed": []}
    ids = {job.pk for job in fleet}
    assert entry_job_ids() == {"hashes": ids, "members": ids}
    for job in fleet:
        assert_entry_matches(job)


def test_reconcile_removes_orphans(fleet, django_capture_on_commit_callbacks):
    deleted, paused = fleet[0].pk, fleet[1].pk
    ScheduledJob.objects.filter(pk=deleted).delete()
    ScheduledJob.objects.filter(pk=paused).update(active=False)
    never_existed = max(job.pk for job in fleet) + 100
    write_orphan(never_existed)
    # The deleted and the paused job still have the entries written when they were active.
    assert stored_entry(deleted).exists
    assert stored_entry(paused).exists

    changes = reconcile.reconcile()

    assert changes == {"added": [], "removed": sorted([deleted, paused, never_existed]), "fixed": []}
    for job_id in (deleted, paused, never_existed):
        assert_no_entry(job_id)
    remaining = {job.pk for job in fleet[2:]}
    assert entry_job_ids() == {"hashes": remaining, "members": remaining}


def test_reconcile_removes_an_orphan_left_only_in_the_zset_or_only_as_a_hash(fleet):
    client = redis_client()
    only_member, only_hash = 900_001, 900_002
    client.zadd(schedule_key(), {entry_key(only_member): 1})
    write_orphan(only_hash)
    client.zrem(schedule_key(), entry_key(only_hash))

    changes = reconcile.reconcile()

    assert changes["removed"] == [only_member, only_hash]
    assert_no_entry(only_member)
    assert_no_entry(only_hash)


@pytest.mark.parametrize(
    "drift",
    [
        pytest.param({"cron": "0 0 1 1 *"}, id="cron"),
        pytest.param({"tz": "Asia/Kolkata"}, id="timezone"),
        pytest.param({"kind": "interval", "every_minutes": 1, "anchor": "2020-01-01T00:00:00+00:00"}, id="kind"),
    ],
)
def test_reconcile_fixes_a_drifted_definition(fleet, drift):
    drifted = fleet[1]
    tamper(drifted.pk, **drift)
    assert stored_entry(drifted.pk).schedule != JobSchedule.for_job(drifted)

    before = now()
    changes = reconcile.reconcile()

    assert changes == {"added": [], "removed": [], "fixed": [drifted.pk]}
    assert_entry_matches(drifted, synced_between=(before, now()))


def test_reconcile_fixes_an_interval_entry_with_a_stale_anchor(fleet):
    drifted = fleet[2]
    tamper(drifted.pk, anchor="2001-01-01T00:00:00+00:00", every_minutes=15)

    changes = reconcile.reconcile()

    assert changes["fixed"] == [drifted.pk]
    assert stored_entry(drifted.pk).schedule.anchor == ScheduledJob.objects.get(pk=drifted.pk).schedule_anchor


def test_reconcile_fixes_a_definition_that_is_not_json_of_a_schedule(fleet):
    redis_client().hset(entry_key(fleet[3].pk), "definition", json.dumps({"name": "junk"}))

    changes = reconcile.reconcile()

    assert changes == {"added": [], "removed": [], "fixed": [fleet[3].pk]}
    assert_entry_matches(fleet[3])


def test_reconcile_puts_back_an_entry_missing_from_the_zset(fleet):
    redis_client().zrem(schedule_key(), entry_key(fleet[4].pk))

    changes = reconcile.reconcile()

    assert fleet[4].pk in changes["fixed"] + changes["added"]
    assert_entry_matches(fleet[4])


def test_reconcile_fixes_a_score_later_than_the_next_slot(fleet):
    # A score past the job's next slot would silently skip runs.
    redis_client().zadd(schedule_key(), {entry_key(fleet[4].pk): 4102444800})  # 2100-01-01

    changes = reconcile.reconcile()

    assert changes == {"added": [], "removed": [], "fixed": [fleet[4].pk]}
    assert_entry_matches(fleet[4])


def test_reconcile_leaves_a_due_score_for_beat_to_fire(fleet):
    # An earlier score only means "due": beat fires it on its next tick, reconcile must not move it.
    early = redis_client().zscore(schedule_key(), entry_key(fleet[4].pk)) - 30
    redis_client().zadd(schedule_key(), {entry_key(fleet[4].pk): early})

    assert reconcile.reconcile() == {"added": [], "removed": [], "fixed": []}
    assert redis_client().zscore(schedule_key(), entry_key(fleet[4].pk)) == early


def test_reconcile_returns_exactly_what_it_changed_and_is_idempotent(fleet):
    client = redis_client()
    missing, drifted = fleet[0].pk, fleet[1].pk
    client.delete(entry_key(missing))
    client.zrem(schedule_key(), entry_key(missing))
    tamper(drifted, cron="1 1 1 1 *")
    orphan = ScheduledJob.objects.get(pk=fleet[2].pk)
    ScheduledJob.objects.filter(pk=orphan.pk).delete()
    untouched = {job.pk: snapshot(job.pk) for job in fleet[3:]}

    first = reconcile.reconcile()
    second = reconcile.reconcile()

    assert first == {"added": [missing], "removed": [orphan.pk], "fixed": [drifted]}
    assert second == {"added": [], "removed": [], "fixed": []}
    assert {job.pk: snapshot(job.pk) for job in fleet[3:]} == untouched
    alive = {job.pk for job in fleet} - {orphan.pk}
    assert entry_job_ids() == {"hashes": alive, "members": alive}


def test_reconcile_sets_the_marker_and_reconcile_due_follows_it(fleet):
    client = redis_client()
    client.flushdb()
    assert reconcile.reconcile_due() is True

    before = now()
    reconcile.reconcile()

    marker = client.get(reconcile.marker_key())
    assert marker is not None
    assert before <= datetime.fromisoformat(marker) <= now()
    assert reconcile.reconcile_due() is False

    client.flushdb()
    assert reconcile.reconcile_due() is True


def test_reconcile_due_when_the_marker_is_old_or_unreadable(settings, fleet):
    client = redis_client()
    reconcile.reconcile()
    settings.JOBS_RECONCILE_SECONDS = 600
    client.set(reconcile.marker_key(), "2001-01-01T00:00:00+00:00")
    assert reconcile.reconcile_due() is True
    client.set(reconcile.marker_key(), "not a time")
    assert reconcile.reconcile_due() is True
    client.set(reconcile.marker_key(), now().isoformat())
    assert reconcile.reconcile_due() is False


def test_sync_schedules_prints_what_reconcile_changed(fleet):
    client = redis_client()
    missing, drifted, orphan = fleet[0].pk, fleet[1].pk, 777_777
    client.delete(entry_key(missing))
    client.zrem(schedule_key(), entry_key(missing))
    tamper(drifted, tz="Africa/Nairobi")
    write_orphan(orphan)
    out = StringIO()

    call_command("sync_schedules", stdout=out)

    assert json.loads(out.getvalue()) == {"added": [missing], "removed": [orphan], "fixed": [drifted]}
    for job in fleet:
        assert_entry_matches(job)
    assert_no_entry(orphan)
    assert reconcile.reconcile_due() is False

    again = StringIO()
    call_command("sync_schedules", stdout=again)
    assert json.loads(again.getvalue()) == {"added": [], "removed": [], "fixed": []}


def test_reconcile_handles_more_jobs_than_one_batch(instance, workflow):
    ScheduledJob.objects.bulk_create(
        ScheduledJob(instance=instance, workflow=workflow, frequency_type=CRON, cron_expression="0 * * * *")
        for _ in range(reconcile.BATCH * 2 + 5)
    )
    ScheduledJob.objects.bulk_create(
        ScheduledJob(
            instance=instance, workflow=workflow, frequency_type=CRON, cron_expression="0 * * * *", active=False
        )
        for _ in range(7)
    )
    active = set(ScheduledJob.objects.filter(active=True).values_list("pk", flat=True))
    for job_id in ScheduledJob.objects.filter(active=False).values_list("pk", flat=True)[:3]:
        write_orphan(job_id)

    changes = reconcile.reconcile()

    assert set(changes["added"]) == active
    assert len(changes["added"]) == len(active)
    assert len(changes["removed"]) == 3
    assert entry_job_ids() == {"hashes": active, "members": active}
    assert reconcile.reconcile() == {"added": [], "removed": [], "fixed": []}


# --------------------------------------------------------------------------- Redis away at commit time


@pytest.fixture
def redis_down():
    if environment.SERVER is None:
        pytest.skip("TEST_REDIS_URL points at a Redis these tests do not own")

    def stop() -> None:
        environment.SERVER.stop()

    yield stop
    environment.SERVER.restart()
    redis_client().flushdb()


@pytest.mark.parametrize(
    "mutation",
    [
        pytest.param("create", id="create"),
        pytest.param("update", id="update"),
        pytest.param("pause", id="pause"),
        pytest.param("delete", id="delete"),
    ],
)
def test_a_redis_outage_at_commit_does_not_fail_the_mutation(
    gql, create, update, instance, workflow, redis_down, mutation, caplog
):
    existing = create(frequencyType="CRON_BASED", cronExpression="30 2 * * *")
    redis_down()

    if mutation == "create":
        status, body = gql(
            CREATE, instanceId=str(instance.pk), workflow=workflow, frequencyType="INTERVAL_BASED", intervalMinutes=5
        )
        assert (status, "errors" in body) == (200, False), body
        target = ScheduledJob.objects.get(pk=body["data"]["createScheduledJob"]["id"])
    elif mutation == "update":
        status, body = update(existing, cronExpression="0 9 * * *", timezone="Europe/Helsinki")
        assert (status, "errors" in body) == (200, False), body
        target = existing
    elif mutation == "pause":
        status, body = update(existing, active=False)
        assert (status, "errors" in body) == (200, False), body
        target = existing
    else:
        status, body = gql(DELETE, id=str(existing.pk))
        assert (status, body) == (200, {"data": {"deleteScheduledJob": {"success": True}}})
        target = existing

    # The failed sync was logged, not raised; the database has the change.
    assert any("could not sync the schedule" in r.getMessage() for r in caplog.records), caplog.text
    # Redis (back, but empty after the restart) gets it from reconciliation.
    environment.SERVER.restart()
    assert reconcile.reconcile_due() is True
    changes = reconcile.reconcile()

    active = set(ScheduledJob.objects.filter(active=True).values_list("pk", flat=True))
    assert changes == {"added": sorted(active), "removed": [], "fixed": []}
    assert entry_job_ids() == {"hashes": active, "members": active}
    if target.pk in active:
        assert_entry_matches(target)
    else:
        assert_no_entry(target.pk)


def test_a_redis_outage_at_commit_is_repaired_by_reconcile_when_redis_kept_its_data(gql, create, update, redis_down):
    """Redis away for the commit only (its data survives): the stale entry is the drift reconcile fixes."""
    job = create(frequencyType="CRON_BASED", cronExpression="30 2 * * *")
    paused = create(frequencyType="INTERVAL_BASED", intervalMinutes=10)
    client = redis_client()
    saved = {key: client.dump(key) for key in client.keys("*")}
    redis_down()

    status, body = update(job, cronExpression="0 9 * * *")
    assert (status, "errors" in body) == (200, False), body
    status, body = update(paused, active=False)
    assert (status, "errors" in body) == (200, False), body

    environment.SERVER.restart()
    for key, value in saved.items():
        client.restore(key, 0, value, replace=True)
    assert stored_entry(job.pk).schedule == JobSchedule("cron", cron="30 2 * * *", tz="UTC")

    changes = reconcile.reconcile()

    assert changes == {"added": [], "removed": [paused.pk], "fixed": [job.pk]}
    assert_entry_matches(job)
    assert_no_entry(paused.pk)


def test_an_entry_decodes_with_the_redbeat_entry_class(job):
    reconcile.sync_job(job.pk)

    entry = JobEntry.from_key(entry_key(job.pk), app=reconcile.app)

    assert entry.schedule == JobSchedule.for_job(job)
    assert entry.task == "jobs.run_scheduled"
    assert to_timestamp(entry.due_at) == stored_entry(job.pk).score


def test_the_admin_bulk_delete_removes_every_entry(
    admin_client, instance, workflow, django_capture_on_commit_callbacks
):
    jobs = [
        synced_job(
            instance, workflow, django_capture_on_commit_callbacks, frequency_type=CRON, cron_expression="0 1 * * *"
        )
        for _ in range(3)
    ]
    form = {"action": "delete_selected", "_selected_action": [jobs[0].pk, jobs[1].pk], "post": "yes"}

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post("/admin/jobs/scheduledjob/", form)

    assert response.status_code == 302
    assert list(ScheduledJob.objects.values_list("pk", flat=True)) == [jobs[2].pk]
    assert entry_job_ids() == {"hashes": {jobs[2].pk}, "members": {jobs[2].pk}}


def test_deleting_an_instance_in_the_admin_removes_its_jobs_entries(
    admin_client, instance, other_instance, workflow, other_resource, django_capture_on_commit_callbacks
):
    """The instance's jobs go with it (cascade); their entries must too, not linger until a reconcile."""
    doomed = [
        synced_job(
            instance, workflow, django_capture_on_commit_callbacks, frequency_type=CRON, cron_expression="0 1 * * *"
        ),
        synced_job(instance, workflow, django_capture_on_commit_callbacks, frequency_type=INTERVAL, interval_minutes=5),
    ]
    kept = synced_job(
        other_instance,
        sync_workflow(other_instance, other_resource),
        django_capture_on_commit_callbacks,
        frequency_type=INTERVAL,
        interval_minutes=5,
    )

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(f"/admin/core/instance/{instance.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert not ScheduledJob.objects.filter(pk__in=[job.pk for job in doomed]).exists()
    assert entry_job_ids() == {"hashes": {kept.pk}, "members": {kept.pk}}
