"""http.request's secretHeaders: stored encrypted (one Fernet token per value), sent by the worker, shown to every
reader (GraphQL, validateWorkflow, the admin, run history and logs) only by name; {"keep": true} keeps a stored
value on update; credentials in the plain headers map are refused; rotate_config_keys re-encrypts them."""

import json
import secrets
from datetime import UTC, datetime

import pytest
from cryptography.fernet import Fernet
from django.contrib.auth import get_user_model
from django.core.files.storage import default_storage

from configs.crypto import fernet
from jobs import secret_args, services
from jobs.models import FrequencyType, JobHistory, RunStatus, ScheduledJob
from jobs.running import runner
from tests.fixtures.api import row_snapshot
from tests.fixtures.http import LocalServer
from tests.fixtures.leaks import register_secret

SLOT = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)
JOB_FIELDS = "id workflow"
CREATE = f"""
mutation Create($instanceId: ID!, $workflow: JSON!) {{
  createScheduledJob(instanceId: $instanceId, workflow: $workflow, frequencyType: CRON_BASED,
    cronExpression: "0 12 * * *") {{ {JOB_FIELDS} }}
}}"""
UPDATE = f"""
mutation Update($jobId: ID!, $workflow: JSON) {{
  updateScheduledJob(jobId: $jobId, workflow: $workflow) {{ {JOB_FIELDS} }}
}}"""
GET_JOB = f"query Job($jobId: ID!) {{ getScheduledJob(jobId: $jobId) {{ {JOB_FIELDS} }} }}"
VALIDATE = """
query Validate($instanceId: ID!, $workflow: JSON!) {
  validateWorkflow(instanceId: $instanceId, workflow: $workflow) { field code message }
}"""

pytestmark = pytest.mark.usefixtures("any_lateness_runs")


@pytest.fixture(autouse=True)
def loopback_allowed(settings):
    """The http server of these tests is on loopback (tests/fixtures/http.py)."""
    settings.JOBS_HTTP_ALLOW_PRIVATE = True


def make_secret() -> str:
    return register_secret("hdr-" + secrets.token_urlsafe(24))


def hook(url: str, secret: dict | None = None, **args) -> dict:
    task_args = {"url": url, "method": "POST", **args}
    if secret is not None:
        task_args["secretHeaders"] = secret
    return {"tasks": [{"name": "hook", "type": "http.request", "args": task_args}]}


def create(instance, workflow: dict) -> ScheduledJob:
    return services.create_job(
        instance=instance, workflow=workflow, frequency_type=FrequencyType.CRON_BASED, cron_expression="0 12 * * *"
    )


def stored_values(job: ScheduledJob) -> dict:
    row = ScheduledJob.objects.filter(pk=job.pk).values_list("workflow", flat=True).get()
    return row["tasks"][0]["args"]["secretHeaders"]


def run(job: ScheduledJob) -> JobHistory:
    run_id = runner.run_scheduled(job.pk, SLOT)
    return JobHistory.objects.get(pk=run_id)


def stored_log(row: JobHistory) -> str:
    with default_storage.open(row.log_path, "rb") as handle:
        return handle.read().decode()


def errors_of(body: dict) -> list[tuple[str, str]]:
    return [(e["extensions"].get("field"), e["extensions"]["code"]) for e in body.get("errors", [])]


# --------------------------------------------------------------------------- stored encrypted, sent by the worker


def test_it_stores_each_secret_header_as_its_own_fernet_token(instance, http_server):
    token, key = make_secret(), make_secret()

    job = create(instance, hook(http_server.url("/ok"), {"Authorization": f"Bearer {token}", "X-Api-Key": key}))

    stored = stored_values(job)
    assert set(stored) == {"Authorization", "X-Api-Key"}
    assert fernet().decrypt(stored["Authorization"]["sealed"].encode()).decode() == f"Bearer {token}"
    assert fernet().decrypt(stored["X-Api-Key"]["sealed"].encode()).decode() == key
    raw = json.dumps(ScheduledJob.objects.filter(pk=job.pk).values().get(), default=str)
    assert token not in raw
    assert key not in raw


def test_it_sends_secret_headers_and_keeps_them_out_of_log_steps_and_errors(instance, http_server):
    token = make_secret()
    for path in ("/ok", "/fail"):
        job = create(instance, hook(http_server.url(path), {"Authorization": f"Bearer {token}"}))

        row = run(job)

        assert http_server.requests[-1].headers["Authorization"] == f"Bearer {token}"
        assert row.status == (RunStatus.SUCCEEDED if path == "/ok" else RunStatus.FAILED)
        assert token not in stored_log(row)
        assert token not in json.dumps(row.steps)
        assert token not in (row.error or "")


def test_it_drops_secret_headers_on_a_redirect_to_another_origin(instance, http_server):
    other = LocalServer()
    other.start()
    try:
        token = make_secret()
        target = other.url("/ok")
        job = create(instance, hook(http_server.url(f"/redirect?to={target}"), {"X-Api-Key": token}))

        assert run(job).status == RunStatus.SUCCEEDED

        assert http_server.requests[0].headers["X-Api-Key"] == token
        [arrived] = other.requests
        assert "X-Api-Key" not in arrived.headers
    finally:
        other.stop()


def test_it_refuses_to_send_a_value_that_was_not_stored_encrypted(instance, http_server):
    job = create(instance, hook(http_server.url("/ok")))
    workflow = hook(http_server.url("/ok"), {"X-Api-Key": "plain-value-123"})
    ScheduledJob.objects.filter(pk=job.pk).update(workflow=workflow)  # as a bug or a hand edit would leave it

    row = run(job)

    assert row.status == RunStatus.FAILED
    assert "not stored encrypted" in row.error
    assert http_server.requests == []


# --------------------------------------------------------------------------- readers see names only


def test_it_shows_only_name_and_is_set_to_every_reader(api, acme_token, token_for, instance, http_server):
    token = make_secret()
    workflow = hook(http_server.url("/ok"), {"X-Api-Key": token}, headers={"Accept": "application/json"})

    _, created = api.gql(CREATE, {"instanceId": str(instance.pk), "workflow": workflow}, acme_token)
    job_id = created["data"]["createScheduledJob"]["id"]
    read_token = token_for(f"instance-read-{instance.pk}")
    answers = [created] + [api.gql(GET_JOB, {"jobId": job_id}, t)[1] for t in (acme_token, read_token)]

    sealed = stored_values(ScheduledJob.objects.get(pk=job_id))["X-Api-Key"]["sealed"]
    for body in answers:
        text = json.dumps(body)
        assert token not in text
        assert sealed not in text
        assert "sealed" not in text
        shown = json.loads(text)["data"]
        args = next(iter(shown.values()))["workflow"]["tasks"][0]["args"]
        assert args["secretHeaders"] == [{"name": "X-Api-Key", "isSet": True}]
        assert args["headers"] == {"Accept": "application/json"}


def test_it_never_echoes_a_secret_value_from_validate_workflow(api, acme_token, instance):
    token = make_secret()
    workflow = hook("ftp://nope", {"X-Api-Key": token, "Bad Name": token, "X-Two": f"{token}\r\nX-Evil: 1"})

    _, body = api.gql(VALIDATE, {"instanceId": str(instance.pk), "workflow": workflow}, acme_token)

    fields = {problem["field"] for problem in body["data"]["validateWorkflow"]}
    assert fields == {
        "workflow.tasks[0].args.url",
        "workflow.tasks[0].args.secretHeaders.Bad Name",
        "workflow.tasks[0].args.secretHeaders.X-Two",
    }
    assert token not in json.dumps(body)


@pytest.fixture
def admin_client(client, db):
    operator = get_user_model().objects.create_superuser("operator", "op@example.com", "operator-password-1")
    client.force_login(operator)
    return client


def test_it_shows_names_only_on_the_admins_job_page_and_keeps_values_on_save(admin_client, instance, http_server):
    token = make_secret()
    job = create(instance, hook(http_server.url("/ok"), {"X-Api-Key": token}))
    sealed = stored_values(job)["X-Api-Key"]["sealed"]

    page = admin_client.get(f"/admin/jobs/scheduledjob/{job.pk}/change/").content.decode()

    assert "X-Api-Key" in page
    assert token not in page
    assert sealed not in page
    shown = hook(http_server.url("/ok"), {"X-Api-Key": {"keep": True}})
    form = {
        "instance": instance.pk,
        "workflow": json.dumps(shown),
        "frequency_type": "CRON_BASED",
        "cron_expression": "0 12 * * *",
        "timezone": "UTC",
        "active": "on",
        "webhook_url": "",
    }
    response = admin_client.post(f"/admin/jobs/scheduledjob/{job.pk}/change/", form)
    assert response.status_code == 302, response.content[:3000]
    assert stored_values(job)["X-Api-Key"]["sealed"] == sealed
    assert run(job).status == RunStatus.SUCCEEDED
    assert http_server.requests[-1].headers["X-Api-Key"] == token


# --------------------------------------------------------------------------- updates: keep, replace, remove


def test_it_keeps_a_stored_value_given_as_keep(api, acme_token, instance, http_server):
    token = make_secret()
    job = create(instance, hook(http_server.url("/ok"), {"X-Api-Key": token, "X-Other": make_secret()}))
    sealed = stored_values(job)["X-Api-Key"]["sealed"]
    # Same origin, new path and method; X-Other is left out, so it goes.
    workflow = hook(http_server.url("/status/204"), {"x-api-key": {"keep": True}}, method="PUT")

    _, body = api.gql(UPDATE, {"jobId": str(job.pk), "workflow": workflow}, acme_token)

    assert "errors" not in body, body
    assert stored_values(job) == {"x-api-key": {"sealed": sealed}}
    assert run(job).status == RunStatus.SUCCEEDED
    assert http_server.requests[-1].headers["x-api-key"] == token  # sent as named now


def test_it_replaces_a_value_given_as_a_string(api, acme_token, instance, http_server):
    job = create(instance, hook(http_server.url("/ok"), {"X-Api-Key": make_secret()}))
    new = make_secret()

    _, body = api.gql(
        UPDATE, {"jobId": str(job.pk), "workflow": hook(http_server.url("/ok"), {"X-Api-Key": new})}, acme_token
    )

    assert "errors" not in body, body
    assert fernet().decrypt(stored_values(job)["X-Api-Key"]["sealed"].encode()).decode() == new


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda url: hook("http://127.0.0.1:1/ok", {"X-Api-Key": {"keep": True}}), id="other-port"),
        pytest.param(lambda url: hook(url.replace("http:", "https:"), {"X-Api-Key": {"keep": True}}), id="https"),
        pytest.param(lambda url: hook(url, {"X-Other": {"keep": True}}), id="other-name"),
        pytest.param(
            lambda url: {"tasks": [{**hook(url, {"X-Api-Key": {"keep": True}})["tasks"][0], "name": "renamed"}]},
            id="other-task",
        ),
    ],
)
def test_it_refuses_a_keep_with_nothing_to_keep(change, api, acme_token, instance, http_server):
    job = create(instance, hook(http_server.url("/ok"), {"X-Api-Key": make_secret()}))
    before = row_snapshot()
    workflow = change(http_server.url("/ok"))

    _, body = api.gql(UPDATE, {"jobId": str(job.pk), "workflow": workflow}, acme_token)

    name = next(iter(workflow["tasks"][0]["args"]["secretHeaders"]))
    assert errors_of(body) == [(f"workflow.tasks[0].args.secretHeaders.{name}", "INVALID_WORKFLOW")]
    assert "nothing stored to keep" in body["errors"][0]["message"]
    assert row_snapshot() == before


def test_it_refuses_a_keep_when_creating(api, acme_token, instance):
    before = row_snapshot()
    workflow = hook("https://example.com/hook", {"X-Api-Key": {"keep": True}})

    _, body = api.gql(CREATE, {"instanceId": str(instance.pk), "workflow": workflow}, acme_token)

    assert errors_of(body) == [("workflow.tasks[0].args.secretHeaders.X-Api-Key", "INVALID_WORKFLOW")]
    assert row_snapshot() == before


# --------------------------------------------------------------------------- what may be written


@pytest.mark.parametrize(
    "name",
    [
        "Authorization",
        "proxy-authorization",
        "Cookie",
        "X-Api-Key",
        "X-Auth-Token",
        "Private-Token",
        "X-Password",
        "X-Client-Secret",
        "DD-API-KEY",
        "X-Custom",
    ],
)
def test_it_refuses_headers_outside_the_plain_allowlist(api, acme_token, instance, name):
    token = make_secret()
    before = row_snapshot()

    _, body = api.gql(
        CREATE,
        {"instanceId": str(instance.pk), "workflow": hook("https://example.com/", headers={name: token})},
        acme_token,
    )

    assert errors_of(body) == [(f"workflow.tasks[0].args.headers.{name}", "INVALID_WORKFLOW")]
    assert "secretHeaders" in body["errors"][0]["message"]
    assert token not in json.dumps(body)
    assert row_snapshot() == before


def test_it_accepts_common_plain_headers(instance):
    headers = {"Accept": "application/json", "content-type": "text/plain", "X-Request-Id": "abc", "If-Match": '"1"'}

    job = create(instance, hook("https://example.com/", headers=headers))

    assert job.workflow["tasks"][0]["args"]["headers"] == headers


@pytest.mark.parametrize(
    ("secret", "headers", "field"),
    [
        pytest.param({"Bad Name": "v1234567"}, None, "Bad Name", id="name-not-a-token"),
        pytest.param({"X-A:b": "v1234567"}, None, "X-A:b", id="name-with-colon"),
        pytest.param({"Host": "v1234567"}, None, "Host", id="host"),
        pytest.param({"Content-Length": "5"}, None, "Content-Length", id="content-length"),
        pytest.param({"X-Key": "a\r\nX-Evil: 1"}, None, "X-Key", id="crlf"),
        pytest.param({"X-Key": "a\nb"}, None, "X-Key", id="lf"),
        pytest.param({"X-Key": ""}, None, "X-Key", id="empty"),
        pytest.param({"X-Key": 12345678}, None, "X-Key", id="number"),
        pytest.param({"X-Key": {"keep": False}}, None, "X-Key", id="keep-false"),
        pytest.param({"X-Key": {"sealed": Fernet.generate_key().decode()}}, None, "X-Key", id="a-token-given"),
        pytest.param({"Accept": "v1234567"}, {"accept": "text/plain"}, "Accept", id="in-both"),
        pytest.param({"X-Key": "v1234567", "x-key": "v7654321"}, None, "x-key", id="twice"),
    ],
)
def test_it_refuses_bad_secret_headers(api, acme_token, instance, secret, headers, field):
    before = row_snapshot()
    workflow = hook("https://example.com/", secret, **({"headers": headers} if headers else {}))

    _, body = api.gql(CREATE, {"instanceId": str(instance.pk), "workflow": workflow}, acme_token)

    assert errors_of(body) == [(f"workflow.tasks[0].args.secretHeaders.{field}", "INVALID_WORKFLOW")], body
    assert row_snapshot() == before


# --------------------------------------------------------------------------- key rotation


def test_it_re_encrypts_secret_headers_under_a_new_key(settings, instance, http_server):
    token = make_secret()
    job = create(instance, hook(http_server.url("/ok"), {"X-Api-Key": token}))
    old_keys = list(settings.CONFIG_ENCRYPTION_KEYS)
    new_key = Fernet.generate_key().decode()
    settings.CONFIG_ENCRYPTION_KEYS = [new_key, *old_keys]

    assert secret_args.rotate_secret_values(batch_size=1) == 1

    sealed = stored_values(job)["X-Api-Key"]["sealed"]
    assert Fernet(new_key.encode()).decrypt(sealed.encode()).decode() == token
    settings.CONFIG_ENCRYPTION_KEYS = [new_key]  # the old key dropped: the worker still opens it
    assert run(job).status == RunStatus.SUCCEEDED
    assert http_server.requests[-1].headers["X-Api-Key"] == token
