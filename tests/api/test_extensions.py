"""Part 2 of the contract (ours): createInstance, validateWorkflow, the extra ScheduledJob/JobHistory fields."""

import pytest
from django.contrib.auth.models import Permission

from jobs.models import JobHistory, RunStatus
from pointscene.core.models import Instance
from tests.fixtures.api import error_codes, row_snapshot

pytestmark = pytest.mark.smoke

CREATE_INSTANCE = 'mutation { createInstance(name: "Initech") { id name createdAt } }'


def test_it_creates_an_instance_the_same_token_can_then_use(api, token_for, acme_client):
    token = token_for("instance-* instance-create")

    status, body = api.gql(CREATE_INSTANCE, token=token)

    assert status == 200, body
    created = Instance.objects.get(pk=int(body["data"]["createInstance"]["id"]))
    assert created.name == "Initech"
    status, body = api.gql(f'{{ getScheduledJobs(instanceId: "{created.pk}") {{ id }} }}', token=token)
    assert body == {"data": {"getScheduledJobs": []}}


def test_it_links_an_instance_created_by_a_password_token_to_its_user(api, public_client, alice):
    alice.user_permissions.add(Permission.objects.get(codename="add_instance"))
    token = api.password_token(public_client, scope="instance-* instance-create")["access_token"]

    status, body = api.gql(CREATE_INSTANCE, token=token)

    assert status == 200, body
    assert alice.instances.filter(pk=int(body["data"]["createInstance"]["id"])).exists()


def test_it_refuses_instance_creation_without_the_scope(api, acme_token):
    before = row_snapshot()

    status, body = api.gql(CREATE_INSTANCE, token=acme_token)

    assert error_codes(body) == ["FORBIDDEN"]
    assert row_snapshot() == before


def test_it_refuses_the_instance_create_scope_to_a_client_not_allowed_it(api, globex_client):
    answer = api.token(globex_client, "instance-create")

    assert answer["status"] == 400
    assert answer["error"] == "invalid_scope"


def test_it_lists_every_workflow_problem(api, acme_token, instance):
    query = """query($wf: JSON!) { validateWorkflow(instanceId: "%s", workflow: $wf) { field code message } }"""
    workflow = {"tasks": [{"name": "a", "type": "nope"}, {"name": "a", "type": "rclone.sync", "args": {}}]}

    status, body = api.gql(query % instance.pk, {"wf": workflow}, token=acme_token)

    assert status == 200, body
    fields = {p["field"] for p in body["data"]["validateWorkflow"]}
    assert {"workflow.tasks[0].type", "workflow.tasks[1].name", "workflow.tasks[1].args.resourceId"} <= fields
    assert {p["code"] for p in body["data"]["validateWorkflow"]} == {"INVALID_WORKFLOW"}


def test_it_finds_nothing_wrong_with_a_valid_workflow(api, acme_token, instance, workflow):
    query = """query($wf: JSON!) { validateWorkflow(instanceId: "%s", workflow: $wf) { field } }"""

    status, body = api.gql(query % instance.pk, {"wf": workflow}, token=acme_token)

    assert body == {"data": {"validateWorkflow": []}}


def test_it_reports_what_every_run_would_refuse(api, acme_token, instance, settings):
    settings.JOBS_HTTP_ALLOW_PRIVATE = False
    query = """query($wf: JSON!) { validateWorkflow(instanceId: "%s", workflow: $wf) { field code message } }"""
    workflow = {"tasks": [{"name": "ping", "type": "http.request", "args": {"url": "http://127.0.0.1:8000/healthz"}}]}

    status, body = api.gql(query % instance.pk, {"wf": workflow}, token=acme_token)

    (problem,) = body["data"]["validateWorkflow"]
    assert problem["field"] == "workflow.tasks[0].args.url"
    assert problem["code"] == "INVALID_WORKFLOW"
    assert "destination not allowed" in problem["message"]
    assert "JOBS_HTTP_ALLOW_PRIVATE=1" in problem["message"]


def test_it_describes_schedules_and_lists_next_runs(api, acme_token, job):
    status, body = api.gql(
        f'{{ getScheduledJob(jobId: "{job.pk}") {{ timezone scheduleDescription nextRun nextRuns(count: 3) }} }}',
        token=acme_token,
    )

    data = body["data"]["getScheduledJob"]
    assert data["timezone"] == "UTC"
    assert data["scheduleDescription"] == "At 02:30"
    assert len(data["nextRuns"]) == 3
    assert data["nextRuns"][0] == data["nextRun"]
    assert all(run.endswith("T02:30:00+00:00") for run in data["nextRuns"])


def test_it_shows_a_runs_status_and_timings(api, acme_token, job):
    run = JobHistory.objects.create(job=job, instance=job.instance, status=RunStatus.FAILED, error="boom")

    status, body = api.gql(
        f'{{ getScheduledJobHistory(jobHistoryId: "{run.pk}") {{ success status trigger error steps startedAt }} }}',
        token=acme_token,
    )

    assert body["data"]["getScheduledJobHistory"] == {
        "success": False,
        "status": "FAILED",
        "trigger": "SCHEDULE",
        "error": "boom",
        "steps": None,
        "startedAt": None,
    }


def test_it_sets_and_clears_a_jobs_time_limit(api, acme_token, job):
    update = "mutation($id: ID!, $t: Int) { updateScheduledJob(jobId: $id, timeLimitSeconds: $t) { timeLimitSeconds } }"

    _, body = api.gql(update, {"id": str(job.pk), "t": 900}, token=acme_token)
    assert body == {"data": {"updateScheduledJob": {"timeLimitSeconds": 900}}}
    _, body = api.gql(update, {"id": str(job.pk), "t": None}, token=acme_token)
    assert body == {"data": {"updateScheduledJob": {"timeLimitSeconds": None}}}


def test_it_refuses_a_time_limit_beyond_the_servers(api, acme_token, job, settings):
    update = "mutation($id: ID!, $t: Int) { updateScheduledJob(jobId: $id, timeLimitSeconds: $t) { id } }"
    before = row_snapshot()

    for bad in (0, -1, settings.JOBS_RUN_TIME_LIMIT + 1):
        _, body = api.gql(update, {"id": str(job.pk), "t": bad}, token=acme_token)
        assert error_codes(body) == ["INVALID_VALUE"], body
        assert body["errors"][0]["extensions"]["field"] == "timeLimitSeconds"
    assert row_snapshot() == before


def test_it_lists_every_problem_of_a_job_document_across_fields(api, acme_token, instance):
    create = """mutation($instanceId: ID!, $workflow: JSON!) {
      createScheduledJob(instanceId: $instanceId, workflow: $workflow, frequencyType: INTERVAL_BASED,
        intervalMinutes: 0) { id } }"""
    before = row_snapshot()

    status, body = api.gql(create, {"instanceId": str(instance.pk), "workflow": {"tasks": []}}, token=acme_token)

    assert status == 200, body
    (error,) = body["errors"]
    assert (error["extensions"]["code"], error["extensions"]["field"]) == ("INVALID_INTERVAL", "intervalMinutes")
    problems = {(p["field"], p["code"]) for p in error["extensions"]["problems"]}
    assert problems == {("intervalMinutes", "INVALID_INTERVAL"), ("workflow.tasks", "INVALID_WORKFLOW")}
    assert row_snapshot() == before
