"""The job services (jobs/services.py), called directly: defaults, conditional rules, partial updates, deletes."""

from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.core.exceptions import ValidationError
from django.utils import timezone

from configs.models import RemoteConfig
from jobs import services
from jobs.models import FrequencyType, JobHistory, RunStatus, ScheduledJob
from pointscene.core import errors
from tests.fixtures.api import row_snapshot
from tests.fixtures.cast import sync_workflow

pytestmark = pytest.mark.django_db

CRON = FrequencyType.CRON_BASED
INTERVAL = FrequencyType.INTERVAL_BASED
LONG_AGO = timezone.now() - timedelta(days=30)


def codes(exc: ValidationError) -> dict[str, list[str]]:
    return {field: [e.code for e in errs] for field, errs in exc.error_dict.items()}


def add_history(job: ScheduledJob, n: int = 3) -> list[JobHistory]:
    return [
        JobHistory.objects.create(job=job, instance_id=job.instance_id, status=RunStatus.SUCCEEDED) for _ in range(n)
    ]


def age_anchor(job: ScheduledJob) -> None:
    ScheduledJob.objects.filter(pk=job.pk).update(schedule_anchor=LONG_AGO)
    job.refresh_from_db()


def stored(job: ScheduledJob) -> ScheduledJob:
    return ScheduledJob.objects.get(pk=job.pk)


# --- create


def test_it_creates_a_job_with_defaults(instance, workflow):
    before = timezone.now()

    job = services.create_job(instance=instance, workflow=workflow, frequency_type=CRON, cron_expression="30 2 * * *")

    job = stored(job)
    assert job.instance == instance
    assert job.active is True
    assert job.timezone == "UTC"
    assert job.name is None
    assert job.description is None
    assert job.cron_expression == "30 2 * * *"
    assert job.interval_minutes is None
    assert job.workflow == workflow
    assert job.last_run_at is None
    assert before <= job.schedule_anchor <= timezone.now()


def test_it_creates_an_interval_job_with_everything_given(instance, workflow):
    job = services.create_job(
        instance=instance,
        workflow=workflow,
        frequency_type=INTERVAL,
        interval_minutes=15,
        active=False,
        name="Every quarter hour",
        description="Copies things.",
        tz="Europe/Helsinki",
    )

    job = stored(job)
    assert (job.frequency_type, job.cron_expression, job.interval_minutes) == (INTERVAL, None, 15)
    assert (job.active, job.name, job.description, job.timezone) == (
        False,
        "Every quarter hour",
        "Copies things.",
        "Europe/Helsinki",
    )


def test_it_stores_the_cron_expression_without_extra_whitespace(instance, workflow):
    job = services.create_job(
        instance=instance, workflow=workflow, frequency_type=CRON, cron_expression="  30   2 * *\t* "
    )

    assert stored(job).cron_expression == "30 2 * * *"


@pytest.mark.parametrize("expression", ["@daily", "@hourly", "0 9 * * MON-FRI"])
def test_it_accepts_nicknames_and_names(expression, instance, workflow):
    job = services.create_job(instance=instance, workflow=workflow, frequency_type=CRON, cron_expression=expression)

    assert stored(job).next_run() is not None


@pytest.mark.parametrize("minutes", [1, django_settings.JOBS_MAX_INTERVAL_MINUTES])
def test_it_accepts_intervals_at_the_bounds(minutes, instance, workflow):
    job = services.create_job(instance=instance, workflow=workflow, frequency_type=INTERVAL, interval_minutes=minutes)

    assert stored(job).interval_minutes == minutes


CREATE_ERRORS = [
    pytest.param({"frequency_type": CRON}, "cronExpression", errors.REQUIRED, id="cron-missing"),
    pytest.param(
        {"frequency_type": CRON, "cron_expression": "30 2 * * *", "interval_minutes": 15},
        "intervalMinutes",
        errors.NOT_ALLOWED,
        id="cron-with-interval",
    ),
    pytest.param({"frequency_type": INTERVAL}, "intervalMinutes", errors.REQUIRED, id="interval-missing"),
    pytest.param(
        {"frequency_type": INTERVAL, "interval_minutes": 15, "cron_expression": "30 2 * * *"},
        "cronExpression",
        errors.NOT_ALLOWED,
        id="interval-with-cron",
    ),
    pytest.param(
        {"frequency_type": CRON, "cron_expression": "61 * * * *"}, "cronExpression", errors.INVALID_CRON, id="cron-61"
    ),
    pytest.param(
        {"frequency_type": CRON, "cron_expression": "* * * *"}, "cronExpression", errors.INVALID_CRON, id="cron-4"
    ),
    pytest.param(
        {"frequency_type": CRON, "cron_expression": ""}, "cronExpression", errors.INVALID_CRON, id="cron-empty"
    ),
    pytest.param(
        {"frequency_type": CRON, "cron_expression": "@reboot"}, "cronExpression", errors.INVALID_CRON, id="cron-reboot"
    ),
    pytest.param({"frequency_type": CRON, "cron_expression": 5}, "cronExpression", errors.INVALID_CRON, id="cron-int"),
    pytest.param(
        {"frequency_type": INTERVAL, "interval_minutes": 0}, "intervalMinutes", errors.INVALID_INTERVAL, id="interval-0"
    ),
    pytest.param(
        {"frequency_type": INTERVAL, "interval_minutes": -5},
        "intervalMinutes",
        errors.INVALID_INTERVAL,
        id="interval-negative",
    ),
    pytest.param(
        {"frequency_type": INTERVAL, "interval_minutes": django_settings.JOBS_MAX_INTERVAL_MINUTES + 1},
        "intervalMinutes",
        errors.INVALID_INTERVAL,
        id="interval-over-max",
    ),
    pytest.param(
        {"frequency_type": INTERVAL, "interval_minutes": 10**12},
        "intervalMinutes",
        errors.INVALID_INTERVAL,
        id="interval-huge",
    ),
    pytest.param(
        {"frequency_type": INTERVAL, "interval_minutes": True},
        "intervalMinutes",
        errors.INVALID_INTERVAL,
        id="interval-bool",
    ),
    pytest.param(
        {"frequency_type": INTERVAL, "interval_minutes": "15"},
        "intervalMinutes",
        errors.INVALID_INTERVAL,
        id="interval-string",
    ),
    pytest.param(
        {"frequency_type": INTERVAL, "interval_minutes": 1.5},
        "intervalMinutes",
        errors.INVALID_INTERVAL,
        id="interval-float",
    ),
    pytest.param(
        {"frequency_type": CRON, "cron_expression": "30 2 * * *", "tz": "Mars/Olympus_Mons"},
        "timezone",
        errors.INVALID_TIMEZONE,
        id="tz-unknown",
    ),
    pytest.param(
        {"frequency_type": CRON, "cron_expression": "30 2 * * *", "tz": ""},
        "timezone",
        errors.INVALID_TIMEZONE,
        id="tz-empty",
    ),
    pytest.param(
        {"frequency_type": CRON, "cron_expression": "30 2 * * *", "tz": "../../etc/passwd"},
        "timezone",
        errors.INVALID_TIMEZONE,
        id="tz-path",
    ),
    pytest.param(
        {"frequency_type": CRON, "cron_expression": "30 2 * * *", "tz": "+02:00"},
        "timezone",
        errors.INVALID_TIMEZONE,
        id="tz-offset",
    ),
    pytest.param(
        {"frequency_type": CRON, "cron_expression": "30 2 * * *", "tz": 3},
        "timezone",
        errors.INVALID_TIMEZONE,
        id="tz-int",
    ),
    pytest.param({"frequency_type": "DAILY"}, "frequencyType", errors.INVALID_VALUE, id="frequency-unknown"),
    pytest.param({"frequency_type": ""}, "frequencyType", errors.INVALID_VALUE, id="frequency-empty"),
    pytest.param(
        {"frequency_type": CRON, "cron_expression": "30 2 * * *", "name": "x" * 201},
        "name",
        errors.INVALID_VALUE,
        id="name-long",
    ),
    pytest.param(
        {"frequency_type": CRON, "cron_expression": "30 2 * * *", "name": 5},
        "name",
        errors.INVALID_VALUE,
        id="name-int",
    ),
    pytest.param(
        {"frequency_type": CRON, "cron_expression": "30 2 * * *", "description": "x" * 10_001},
        "description",
        errors.INVALID_VALUE,
        id="description-long",
    ),
]


@pytest.mark.parametrize(("kwargs", "field", "code"), CREATE_ERRORS)
def test_it_refuses_a_bad_create_and_writes_nothing(kwargs, field, code, instance, workflow, job, other_job):
    before = row_snapshot()

    with pytest.raises(ValidationError) as raised:
        services.create_job(instance=instance, workflow=workflow, **kwargs)

    assert codes(raised.value) == {field: [code]}
    assert row_snapshot() == before


@pytest.mark.parametrize(
    "bad_workflow",
    [
        pytest.param(None, id="null"),
        pytest.param("tasks", id="string"),
        pytest.param({"tasks": []}, id="no-tasks"),
        pytest.param("cycle", id="cycle"),
        pytest.param("foreign", id="foreign-resource"),
    ],
)
def test_it_refuses_a_bad_workflow_on_create_and_writes_nothing(
    bad_workflow, instance, resource, other_resource, job, other_job
):
    if bad_workflow == "cycle":
        bad_workflow = sync_workflow(instance, resource)
        bad_workflow["tasks"][0]["inputs"] = "sync"
    elif bad_workflow == "foreign":
        bad_workflow = sync_workflow(instance, other_resource)
    before = row_snapshot()

    with pytest.raises(ValidationError) as raised:
        services.create_job(instance=instance, workflow=bad_workflow, frequency_type=CRON, cron_expression="@daily")

    found = codes(raised.value)
    assert found
    assert all(field.startswith("workflow") for field in found)
    assert {code for field_codes in found.values() for code in field_codes} == {errors.INVALID_WORKFLOW}
    assert row_snapshot() == before


def test_it_refuses_a_workflow_naming_another_instance(instance, other_instance, workflow):
    workflow["instanceId"] = str(other_instance.pk)
    before = row_snapshot()

    with pytest.raises(ValidationError) as raised:
        services.create_job(instance=instance, workflow=workflow, frequency_type=INTERVAL, interval_minutes=5)

    assert codes(raised.value) == {"workflow.instanceId": [errors.INVALID_WORKFLOW]}
    assert row_snapshot() == before


# --- update: only what is given


def test_it_changes_only_the_given_field(job):
    before = ScheduledJob.objects.filter(pk=job.pk).values().get()

    services.update_job(job, name="Renamed")

    after = ScheduledJob.objects.filter(pk=job.pk).values().get()
    assert after.pop("name") == "Renamed"
    before.pop("name")
    assert after.pop("updated_at") >= before.pop("updated_at")
    assert after == before


def test_it_changes_nothing_when_nothing_is_given(job):
    before = ScheduledJob.objects.filter(pk=job.pk).values().get()

    services.update_job(job)

    after = ScheduledJob.objects.filter(pk=job.pk).values().get()
    before.pop("updated_at")
    after.pop("updated_at")
    assert after == before


@pytest.mark.parametrize("field", ["name", "description"])
def test_it_clears_name_and_description_with_null(field, instance, workflow):
    job = services.create_job(
        instance=instance,
        workflow=workflow,
        frequency_type=CRON,
        cron_expression="@daily",
        name="Named",
        description="Described",
    )

    services.update_job(job, **{field: None})

    job = stored(job)
    expected = {"name": "Named", "description": "Described", field: None}
    assert (job.name, job.description) == (expected["name"], expected["description"])


@pytest.mark.parametrize("field", ["frequency_type", "cron_expression", "interval_minutes", "active", "tz"])
def test_it_treats_a_null_schedule_field_as_absent(field, job):
    before = ScheduledJob.objects.filter(pk=job.pk).values().get()

    services.update_job(job, **{field: None})

    after = ScheduledJob.objects.filter(pk=job.pk).values().get()
    before.pop("updated_at")
    after.pop("updated_at")
    assert after == before


def test_it_updates_every_field_at_once(job, instance, resource):
    new_workflow = sync_workflow(instance, resource)
    new_workflow["name"] = "Changed"

    services.update_job(
        job,
        workflow=new_workflow,
        cron_expression="0 9 * * MON-FRI",
        active=False,
        name="n",
        description="d",
        tz="America/New_York",
    )

    job = stored(job)
    assert (job.cron_expression, job.active, job.name, job.description, job.timezone) == (
        "0 9 * * MON-FRI",
        False,
        "n",
        "d",
        "America/New_York",
    )
    assert job.workflow == new_workflow


def test_it_does_not_change_the_callers_object_on_failure(job):
    with pytest.raises(ValidationError):
        services.update_job(job, name="New", cron_expression="nope")

    assert job.name == "ACC to Drive, nightly"
    assert job.cron_expression == "30 2 * * *"


UPDATE_ERRORS_ON_CRON_JOB = [
    pytest.param({"interval_minutes": 15}, "intervalMinutes", errors.NOT_ALLOWED, id="interval-on-cron-job"),
    pytest.param(
        {"frequency_type": CRON, "interval_minutes": 15},
        "intervalMinutes",
        errors.NOT_ALLOWED,
        id="interval-with-same-type",
    ),
    pytest.param({"frequency_type": INTERVAL}, "intervalMinutes", errors.REQUIRED, id="switch-without-interval"),
    pytest.param(
        {"frequency_type": INTERVAL, "interval_minutes": 15, "cron_expression": "@daily"},
        "cronExpression",
        errors.NOT_ALLOWED,
        id="switch-with-both",
    ),
    pytest.param(
        {"frequency_type": INTERVAL, "interval_minutes": 0},
        "intervalMinutes",
        errors.INVALID_INTERVAL,
        id="switch-bad-interval",
    ),
    pytest.param({"cron_expression": "* 24 * * *"}, "cronExpression", errors.INVALID_CRON, id="bad-cron"),
    pytest.param({"cron_expression": "   "}, "cronExpression", errors.INVALID_CRON, id="blank-cron"),
    pytest.param({"tz": "Nowhere/Special"}, "timezone", errors.INVALID_TIMEZONE, id="bad-tz"),
    pytest.param({"frequency_type": "WEEKLY"}, "frequencyType", errors.INVALID_VALUE, id="bad-frequency"),
    pytest.param({"name": "x" * 201}, "name", errors.INVALID_VALUE, id="long-name"),
    pytest.param({"workflow": None}, "workflow", errors.INVALID_WORKFLOW, id="null-workflow"),
    pytest.param({"workflow": {"tasks": []}}, "workflow.tasks", errors.INVALID_WORKFLOW, id="empty-workflow"),
    pytest.param(
        {"name": "Valid", "description": "Valid", "workflow": []}, "workflow", errors.INVALID_WORKFLOW, id="late-error"
    ),
]


@pytest.mark.parametrize(("kwargs", "field", "code"), UPDATE_ERRORS_ON_CRON_JOB)
def test_it_refuses_a_bad_update_of_a_cron_job_and_changes_nothing(kwargs, field, code, job, other_job):
    add_history(job)
    before = row_snapshot()

    with pytest.raises(ValidationError) as raised:
        services.update_job(job, **kwargs)

    assert codes(raised.value) == {field: [code]}
    assert row_snapshot() == before


UPDATE_ERRORS_ON_INTERVAL_JOB = [
    pytest.param({"cron_expression": "@daily"}, "cronExpression", errors.NOT_ALLOWED, id="cron-on-interval-job"),
    pytest.param({"frequency_type": CRON}, "cronExpression", errors.REQUIRED, id="switch-without-cron"),
    pytest.param(
        {"frequency_type": CRON, "cron_expression": "@daily", "interval_minutes": 5},
        "intervalMinutes",
        errors.NOT_ALLOWED,
        id="switch-with-both",
    ),
    pytest.param({"interval_minutes": -5}, "intervalMinutes", errors.INVALID_INTERVAL, id="negative-interval"),
    pytest.param({"interval_minutes": 10**9}, "intervalMinutes", errors.INVALID_INTERVAL, id="huge-interval"),
]


@pytest.mark.parametrize(("kwargs", "field", "code"), UPDATE_ERRORS_ON_INTERVAL_JOB)
def test_it_refuses_a_bad_update_of_an_interval_job_and_changes_nothing(kwargs, field, code, job, other_job):
    before = row_snapshot()

    with pytest.raises(ValidationError) as raised:
        services.update_job(other_job, **kwargs)

    assert codes(raised.value) == {field: [code]}
    assert row_snapshot() == before


def test_it_refuses_a_foreign_resource_on_update(job, other_resource, other_instance):
    before = row_snapshot()

    with pytest.raises(ValidationError) as raised:
        services.update_job(job, workflow=sync_workflow(other_instance, other_resource))

    assert set(codes(raised.value)) >= {"workflow.instanceId"}
    assert row_snapshot() == before


def test_it_switches_cron_to_interval_and_clears_the_cron(job):
    services.update_job(job, frequency_type=INTERVAL, interval_minutes=30)

    job = stored(job)
    assert (job.frequency_type, job.cron_expression, job.interval_minutes) == (INTERVAL, None, 30)


def test_it_switches_interval_to_cron_and_clears_the_interval(other_job):
    services.update_job(other_job, frequency_type=CRON, cron_expression="@hourly")

    job = stored(other_job)
    assert (job.frequency_type, job.cron_expression, job.interval_minutes) == (CRON, "@hourly", None)


def test_it_switches_with_a_null_for_the_other_field(job):
    services.update_job(job, frequency_type=INTERVAL, interval_minutes=30, cron_expression=None)

    job = stored(job)
    assert (job.frequency_type, job.cron_expression, job.interval_minutes) == (INTERVAL, None, 30)


def test_it_accepts_the_same_frequency_type_with_its_own_field(job):
    services.update_job(job, frequency_type=CRON, cron_expression="15 4 * * *")

    job = stored(job)
    assert (job.frequency_type, job.cron_expression, job.interval_minutes) == (CRON, "15 4 * * *", None)


# --- the interval anchor


def test_it_resets_the_anchor_on_reactivation(other_job):
    services.update_job(other_job, active=False)
    age_anchor(other_job)

    services.update_job(other_job, active=True)

    assert stored(other_job).schedule_anchor > LONG_AGO + timedelta(days=29)


def test_it_keeps_the_anchor_when_pausing(other_job):
    age_anchor(other_job)

    services.update_job(other_job, active=False)

    assert stored(other_job).schedule_anchor == LONG_AGO


def test_it_resets_the_anchor_on_an_interval_change(other_job):
    age_anchor(other_job)

    services.update_job(other_job, interval_minutes=60)

    assert stored(other_job).schedule_anchor > LONG_AGO + timedelta(days=29)


def test_it_resets_the_anchor_when_a_cron_job_changes_its_timezone(job):
    age_anchor(job)

    services.update_job(job, tz="Europe/Helsinki")

    assert stored(job).schedule_anchor > LONG_AGO + timedelta(days=29)


def test_it_resets_the_anchor_on_a_switch_to_interval(job):
    age_anchor(job)

    services.update_job(job, frequency_type=INTERVAL, interval_minutes=60)

    assert stored(job).schedule_anchor > LONG_AGO + timedelta(days=29)


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"name": "Renamed"}, id="name"),
        pytest.param({"description": "More words"}, id="description"),
        pytest.param({"interval_minutes": 15}, id="same-interval"),
        pytest.param({"active": True}, id="already-active"),
        pytest.param({"frequency_type": INTERVAL}, id="same-type"),
        pytest.param({"tz": "Europe/Helsinki"}, id="timezone"),
    ],
)
def test_it_keeps_the_anchor_when_the_schedule_does_not_change(kwargs, other_job):
    age_anchor(other_job)

    services.update_job(other_job, **kwargs)

    assert stored(other_job).schedule_anchor == LONG_AGO


def test_it_keeps_the_anchor_on_a_failed_update(other_job):
    services.update_job(other_job, active=False)
    age_anchor(other_job)

    with pytest.raises(ValidationError):
        services.update_job(other_job, active=True, name="x" * 500)

    assert stored(other_job).schedule_anchor == LONG_AGO
    assert stored(other_job).active is False


def test_it_keeps_the_history_on_update(job):
    runs = add_history(job, 4)

    services.update_job(job, name="Renamed", frequency_type=INTERVAL, interval_minutes=5, active=False)

    assert sorted(JobHistory.objects.filter(job=job).values_list("pk", flat=True)) == sorted(r.pk for r in runs)


# --- delete


def test_it_deletes_the_job_and_its_history_and_nothing_else(job, other_job, instance, resource):
    add_history(job, 3)
    kept_runs = add_history(other_job, 2)
    sibling = services.create_job(
        instance=instance, workflow=sync_workflow(instance, resource), frequency_type=INTERVAL, interval_minutes=10
    )
    sibling_runs = add_history(sibling, 2)
    RemoteConfig.objects.create(resource=resource, name="gdrive", type="drive", settings_encrypted="x")
    before = row_snapshot()

    services.delete_job(job)

    after = row_snapshot()
    assert not ScheduledJob.objects.filter(pk=job.pk).exists()
    assert not JobHistory.objects.filter(job_id=job.pk).exists()
    assert sorted(JobHistory.objects.values_list("pk", flat=True)) == sorted(r.pk for r in kept_runs + sibling_runs)
    assert len(after["jobs.ScheduledJob"]) == len(before["jobs.ScheduledJob"]) - 1
    assert len(after["jobs.JobHistory"]) == len(before["jobs.JobHistory"]) - 3
    assert set(after["jobs.ScheduledJob"]) < set(before["jobs.ScheduledJob"])
    assert set(after["jobs.JobHistory"]) < set(before["jobs.JobHistory"])
    for label in set(before) - {"jobs.ScheduledJob", "jobs.JobHistory"}:
        assert after[label] == before[label], label


# --- save_job / validate_job: whole jobs, as the admin edits them


def whole_job(instance, default_workflow, **fields) -> ScheduledJob:
    values = {"frequency_type": CRON, "cron_expression": "30 2 * * *", "workflow": default_workflow, **fields}
    return ScheduledJob(instance=instance, **values)


def test_it_saves_a_whole_new_job(instance, workflow):
    job = services.save_job(whole_job(instance, workflow, cron_expression="  0  9 * * MON-FRI ", timezone=""))

    job = stored(job)
    assert job.cron_expression == "0 9 * * MON-FRI"
    assert job.timezone == "UTC"
    assert job.active is True


SAVE_ERRORS = [
    pytest.param({"cron_expression": None}, "cronExpression", errors.REQUIRED, id="cron-missing"),
    pytest.param({"cron_expression": ""}, "cronExpression", errors.REQUIRED, id="cron-empty"),
    pytest.param({"interval_minutes": 5}, "intervalMinutes", errors.NOT_ALLOWED, id="cron-with-interval"),
    pytest.param({"cron_expression": "1 2 3"}, "cronExpression", errors.INVALID_CRON, id="bad-cron"),
    pytest.param(
        {"frequency_type": INTERVAL, "cron_expression": None}, "intervalMinutes", errors.REQUIRED, id="no-interval"
    ),
    pytest.param({"frequency_type": INTERVAL, "interval_minutes": 5}, "cronExpression", errors.NOT_ALLOWED, id="both"),
    pytest.param(
        {"frequency_type": INTERVAL, "cron_expression": None, "interval_minutes": 0},
        "intervalMinutes",
        errors.INVALID_INTERVAL,
        id="interval-0",
    ),
    pytest.param({"timezone": "Atlantis/Capital"}, "timezone", errors.INVALID_TIMEZONE, id="tz"),
    pytest.param({"frequency_type": "SOMETIMES"}, "frequencyType", errors.INVALID_VALUE, id="frequency"),
    pytest.param({"name": "x" * 201}, "name", errors.INVALID_VALUE, id="name"),
    pytest.param({"workflow": {"tasks": "x"}}, "workflow.tasks", errors.INVALID_WORKFLOW, id="workflow"),
]


@pytest.mark.parametrize(("fields", "field", "code"), SAVE_ERRORS)
def test_it_refuses_to_save_a_bad_new_job(fields, field, code, instance, workflow, job):
    before = row_snapshot()

    with pytest.raises(ValidationError) as raised:
        services.save_job(whole_job(instance, workflow, **fields))

    assert codes(raised.value) == {field: [code]}
    assert row_snapshot() == before


@pytest.mark.parametrize(("fields", "field", "code"), SAVE_ERRORS)
def test_it_refuses_to_save_a_bad_edit_of_a_stored_job(fields, field, code, job):
    before = row_snapshot()
    edited = stored(job)
    for name, value in fields.items():
        setattr(edited, name, value)

    with pytest.raises(ValidationError) as raised:
        services.save_job(edited)

    assert codes(raised.value) == {field: [code]}
    assert row_snapshot() == before


def test_it_requires_an_instance_for_a_whole_job(workflow):
    with pytest.raises(ValidationError) as raised:
        services.validate_job(ScheduledJob(frequency_type=CRON, cron_expression="@daily", workflow=workflow))

    assert codes(raised.value) == {"instanceId": [errors.REQUIRED]}


def test_it_validates_a_whole_job_against_its_own_instance(other_instance, workflow):
    with pytest.raises(ValidationError) as raised:
        services.validate_job(whole_job(other_instance, workflow))
    assert codes(raised.value) == {"workflow.instanceId": [errors.INVALID_WORKFLOW]}

    del workflow["instanceId"]
    with pytest.raises(ValidationError) as raised:
        services.validate_job(whole_job(other_instance, workflow))
    assert codes(raised.value) == {
        "workflow.tasks[0].args.id": [errors.INVALID_WORKFLOW],
        "workflow.tasks[1].args.id": [errors.INVALID_WORKFLOW],
    }


def test_it_resets_the_anchor_when_an_edit_changes_the_interval(other_job):
    age_anchor(other_job)
    other_job.interval_minutes = 45

    services.save_job(other_job)

    assert stored(other_job).schedule_anchor > LONG_AGO + timedelta(days=29)
    assert stored(other_job).interval_minutes == 45


def test_it_resets_the_anchor_when_an_edit_reactivates(other_job):
    ScheduledJob.objects.filter(pk=other_job.pk).update(active=False, schedule_anchor=LONG_AGO)
    edited = stored(other_job)
    edited.active = True

    services.save_job(edited)

    assert stored(other_job).schedule_anchor > LONG_AGO + timedelta(days=29)


def test_it_keeps_the_anchor_when_an_edit_renames(other_job):
    age_anchor(other_job)
    other_job.name = "Renamed"

    services.save_job(other_job)

    assert stored(other_job).schedule_anchor == LONG_AGO
    assert stored(other_job).name == "Renamed"


def test_an_update_reports_every_refused_argument_and_changes_nothing(job):
    before = row_snapshot()

    with pytest.raises(ValidationError) as refused:
        services.update_job(
            job, tz="Mars/Olympus", name="x" * 500, jitter_seconds=-1, webhook_url="https://hooks.example.com/p"
        )

    codes = {field: [e.code for e in problems] for field, problems in refused.value.error_dict.items()}
    assert codes == {
        "name": [errors.INVALID_VALUE],
        "timezone": [errors.INVALID_TIMEZONE],
        "jitterSeconds": [errors.INVALID_VALUE],
        "webhookSecret": [errors.REQUIRED],
    }
    assert list(codes)[0] == "name"  # the first check to refuse stays the error's own field
    assert row_snapshot() == before
