"""Malformed requests: each is answered with a coded error, never a 500 or a stack trace, and writes nothing.

Every case is built from the cast (Acme with `resource`, `job` and one run; Globex with `other_resource`,
`other_job` and one run), sent through the Django test client exactly as a client would send it, and then:
the status is the expected one (never 500), the body is JSON with an `errors` list whose first error carries
the expected `extensions.code` and `extensions.field`, nothing in the body looks like a traceback or a path,
and every watched row is unchanged.
"""

import base64
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.utils import timezone
from oauth2_provider.models import AccessToken, RefreshToken

from jobs.models import JobHistory, ScheduledJob
from pointscene.core.models import Instance, Resource
from tests.fixtures.api import Api, error_codes, row_snapshot
from tests.fixtures.cast import Client

pytestmark = pytest.mark.smoke

# --------------------------------------------------------------------------- the world each case runs in


@pytest.fixture(autouse=True)
def fast_secret_hashing(settings):
    """Client secrets are hashed with PBKDF2 (about half a second each); these tests are not about hashing."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


MISSING_ID = 987_654_321


@dataclass(frozen=True)
class Ctx:
    api: Api
    acme_client: Client
    token: str
    instance: Instance
    other_instance: Instance
    resource: Resource
    other_resource: Resource
    job: ScheduledJob
    other_job: ScheduledJob
    history: JobHistory
    other_history: JobHistory


@pytest.fixture
def ctx(api, acme_client, acme_token, instance, other_instance, resource, other_resource, job, other_job) -> Ctx:
    return Ctx(
        api=api,
        acme_client=acme_client,
        token=acme_token,
        instance=instance,
        other_instance=other_instance,
        resource=resource,
        other_resource=other_resource,
        job=job,
        other_job=other_job,
        history=JobHistory.objects.create(job=job, instance=instance),
        other_history=JobHistory.objects.create(job=other_job, instance=other_instance),
    )


# --------------------------------------------------------------------------- requests

BEARER = object()  # "use the Acme instance-* token"
DROP = object()  # "leave this variable out"


@dataclass(frozen=True)
class Req:
    body: Any = None  # a dict/list is JSON-encoded; str/bytes are sent as they are
    method: str = "post"
    path: str = "/graphql"
    content_type: str = "application/json"
    authorization: Any = BEARER
    params: dict | None = None  # query string, for GET


def send(http, ctx: Ctx, req: Req):
    auth = f"Bearer {ctx.token}" if req.authorization is BEARER else req.authorization
    headers = {"HTTP_AUTHORIZATION": auth} if auth is not None else {}
    if req.method == "get":
        return http.get(req.path, req.params or {}, HTTP_ACCEPT="application/json", **headers)
    body = req.body if isinstance(req.body, str | bytes) else json.dumps(req.body)
    return getattr(http, req.method)(req.path, body, content_type=req.content_type, **headers)


def gql(query: str, variables: dict | None = None, **options: Any) -> Req:
    body = {"query": query}
    if variables is not None:
        body["variables"] = {k: v for k, v in variables.items() if v is not DROP}
    return Req(body=body, **options)


# --------------------------------------------------------------------------- documents

CREATE = """
mutation Create($instanceId: ID!, $workflow: JSON!, $frequencyType: FrequencyType!, $cronExpression: String,
                $intervalMinutes: Int, $timezone: String) {
  createScheduledJob(instanceId: $instanceId, workflow: $workflow, frequencyType: $frequencyType,
                     cronExpression: $cronExpression, intervalMinutes: $intervalMinutes, timezone: $timezone) {
    id
  }
}
"""

UPDATE = """
mutation Update($jobId: ID!, $instanceId: ID, $workflow: JSON, $frequencyType: FrequencyType,
                $cronExpression: String, $intervalMinutes: Int) {
  updateScheduledJob(jobId: $jobId, instanceId: $instanceId, workflow: $workflow, frequencyType: $frequencyType,
                     cronExpression: $cronExpression, intervalMinutes: $intervalMinutes) {
    id
  }
}
"""

DELETE = "mutation Delete($id: ID!) { deleteScheduledJob(id: $id) { success } }"
GET_JOB = "query Job($jobId: ID!) { getScheduledJob(jobId: $jobId) { id name } }"
GET_JOBS = "query Jobs($instanceId: ID!) { getScheduledJobs(instanceId: $instanceId) { id } }"
GET_RUN = "query Run($id: ID!) { getScheduledJobHistory(jobHistoryId: $id) { id } }"
PAGE = """
query Page($instanceId: ID!, $page: PageInput) {
  getInstanceJobHistory(instanceId: $instanceId, page: $page) { items { id } cursor hasNextPage }
}
"""
ADD_CONFIG = """
mutation Add($resourceId: ID!, $config: JSON!) { addJobConfig(resourceId: $resourceId, config: $config) { success } }
"""


def task(name: str, *inputs: str, type_: str = "resource.input", args: Any = BEARER) -> dict:
    """A workflow task; args default to {"id": <Acme's resource>} (filled in by `workflow`)."""
    out: dict = {"name": name, "type": type_}
    if inputs:
        out["inputs"] = list(inputs) if len(inputs) > 1 else inputs[0]
    if args is not BEARER:
        out["args"] = args
    return out


def workflow(c: Ctx, *tasks: dict, **top: Any) -> dict:
    filled = [t if not isinstance(t, dict) or "args" in t else {**t, "args": {"id": str(c.resource.pk)}} for t in tasks]
    return {"name": "Bad", "instanceId": str(c.instance.pk), "tasks": filled, **top}


def create(c: Ctx, **variables: Any) -> Req:
    base = {
        "instanceId": str(c.instance.pk),
        "workflow": workflow(c, task("input")),
        "frequencyType": "CRON_BASED",
        "cronExpression": "30 2 * * *",
    }
    return gql(CREATE, {**base, **variables})


def literal(value: Any) -> str:
    """A Python value written as a GraphQL literal, the way clients inline a workflow."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(map(literal, value)) + "]"
    return json.dumps(value)


def inline_create(frequency_type: str) -> Callable[[Ctx], Req]:
    """createScheduledJob with every argument written inline, frequencyType exactly as given."""

    def build(c: Ctx) -> Req:
        inline = literal(workflow(c, task("a")))
        return gql(
            f'mutation {{ createScheduledJob(instanceId: "{c.instance.pk}", workflow: {inline},'
            f' frequencyType: {frequency_type}, cronExpression: "0 * * * *") {{ id }} }}'
        )

    return build


def cron(expression: str) -> Callable[[Ctx], Req]:
    return lambda c: create(c, cronExpression=expression)


def interval(minutes: Any) -> Callable[[Ctx], Req]:
    return lambda c: create(c, frequencyType="INTERVAL_BASED", cronExpression=DROP, intervalMinutes=minutes)


def bad_workflow(make: Callable[[Ctx], Any]) -> Callable[[Ctx], Req]:
    return lambda c: create(c, workflow=make(c))


def update(c: Ctx, **variables: Any) -> Req:
    return gql(UPDATE, {"jobId": str(c.job.pk), **variables})


def page(**page_input: Any) -> Callable[[Ctx], Req]:
    return lambda c: gql(PAGE, {"instanceId": str(c.instance.pk), "page": page_input})


def get_job(job_id: Callable[[Ctx], Any]) -> Callable[[Ctx], Req]:
    return lambda c: gql(GET_JOB, {"jobId": job_id(c)})


def add_config(config: Any, resource: Callable[[Ctx], Resource] = lambda c: c.resource) -> Callable[[Ctx], Req]:
    return lambda c: gql(ADD_CONFIG, {"resourceId": str(resource(c).pk), "config": config})


def jobs_with(authorization: Any) -> Callable[[Ctx], Req]:
    return lambda c: gql(GET_JOBS, {"instanceId": str(c.instance.pk)}, authorization=authorization)


def expired_token(c: Ctx) -> Req:
    """A token that was valid, moved into the past (tokens are stored hashed: find the newest row)."""
    issued = c.api.token(c.acme_client, "instance-*")
    assert issued["status"] == 200, issued
    row = AccessToken.objects.filter(application__client_id=c.acme_client.client_id).order_by("-id").first()
    AccessToken.objects.filter(pk=row.pk).update(expires=timezone.now() - timedelta(hours=1))
    return gql(GET_JOBS, {"instanceId": str(c.instance.pk)}, authorization=f"Bearer {issued['access_token']}")


def basic_auth(c: Ctx) -> Req:
    pair = base64.b64encode(f"{c.acme_client.client_id}:{c.acme_client.client_secret}".encode()).decode()
    return gql(GET_JOBS, {"instanceId": str(c.instance.pk)}, authorization=f"Basic {pair}")


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def oversized(c: Ctx) -> dict:
    big = workflow(c, task("input"))
    big["description"] = "x" * (settings.JOBS_MAX_WORKFLOW_BYTES + 1024)
    return big


# --------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Case:
    build: Callable[[Ctx], Req]
    code: str
    field: str | None = None
    status: int = 200
    says: str | None = None  # a word the message must contain, to pin down why a request was refused


V = "GRAPHQL_VALIDATION_FAILED"
WF = "INVALID_WORKFLOW"

CASES = [
    # --- cron
    pytest.param(Case(cron("* * * * * *"), "INVALID_CRON", "cronExpression"), id="cron-6-fields"),
    pytest.param(Case(cron("* * * *"), "INVALID_CRON", "cronExpression"), id="cron-4-fields"),
    pytest.param(Case(cron("61 * * * *"), "INVALID_CRON", "cronExpression"), id="cron-minute-61"),
    pytest.param(Case(cron("* * 32 * *"), "INVALID_CRON", "cronExpression"), id="cron-day-32"),
    pytest.param(Case(cron("* 24 * * *"), "INVALID_CRON", "cronExpression"), id="cron-hour-24"),
    pytest.param(Case(cron("0 0 30 2 *"), "INVALID_CRON", "cronExpression", says="cron"), id="cron-never-fires-feb-30"),
    pytest.param(Case(cron("@reboot"), "INVALID_CRON", "cronExpression"), id="cron-at-reboot"),
    pytest.param(Case(cron("@every 5m"), "INVALID_CRON", "cronExpression"), id="cron-at-every"),
    pytest.param(Case(cron(""), "INVALID_CRON", "cronExpression"), id="cron-empty"),
    pytest.param(Case(cron("   "), "INVALID_CRON", "cronExpression"), id="cron-blank"),
    pytest.param(Case(cron("every night at two"), "INVALID_CRON", "cronExpression"), id="cron-garbage"),
    pytest.param(Case(cron("* " * 200 + "*"), "INVALID_CRON", "cronExpression"), id="cron-too-long"),
    # --- interval
    pytest.param(Case(interval(0), "INVALID_INTERVAL", "intervalMinutes"), id="interval-0"),
    pytest.param(Case(interval(-5), "INVALID_INTERVAL", "intervalMinutes"), id="interval-negative"),
    pytest.param(Case(interval(10**8), "INVALID_INTERVAL", "intervalMinutes"), id="interval-too-big-32bit"),
    pytest.param(Case(interval(2**40), V, status=400, says="32-bit"), id="interval-not-32bit"),
    pytest.param(Case(interval("5"), V, status=400, says="$intervalMinutes"), id="interval-a-string"),
    # --- frequency type and its conditional fields
    pytest.param(
        Case(lambda c: create(c, frequencyType="WEEKLY"), V, status=400, says="WEEKLY"), id="enum-unknown-value"
    ),
    pytest.param(Case(inline_create("WEEKLY"), V, status=400, says="WEEKLY"), id="enum-inline-unknown"),
    pytest.param(Case(inline_create("cron_based"), V, status=400, says="cron_based"), id="enum-inline-lowercase"),
    pytest.param(Case(inline_create('"CRON_BASED"'), V, status=400, says="FrequencyType"), id="enum-inline-a-string"),
    pytest.param(
        Case(lambda c: create(c, cronExpression=DROP), "REQUIRED", "cronExpression"), id="cron-based-without-cron"
    ),
    pytest.param(
        Case(lambda c: create(c, frequencyType="INTERVAL_BASED", cronExpression=DROP), "REQUIRED", "intervalMinutes"),
        id="interval-based-without-interval",
    ),
    pytest.param(
        Case(lambda c: create(c, intervalMinutes=15), "NOT_ALLOWED", "intervalMinutes"),
        id="cron-based-with-both",
    ),
    pytest.param(
        Case(lambda c: create(c, frequencyType="INTERVAL_BASED", intervalMinutes=15), "NOT_ALLOWED", "cronExpression"),
        id="interval-based-with-both",
    ),
    pytest.param(Case(lambda c: create(c, timezone="Mars/Olympus_Mons"), "INVALID_TIMEZONE", "timezone"), id="bad-tz"),
    # --- workflow shape
    pytest.param(
        Case(bad_workflow(lambda c: workflow(c, task("a", "b"), task("b", "a"))), WF, "workflow.tasks[0].inputs"),
        id="workflow-2-cycle",
    ),
    pytest.param(
        Case(
            bad_workflow(lambda c: workflow(c, task("a", "c"), task("b", "a"), task("c", "b"))),
            WF,
            "workflow.tasks[0].inputs",
        ),
        id="workflow-3-cycle",
    ),
    pytest.param(
        Case(bad_workflow(lambda c: workflow(c, task("a"), task("b", "nope"))), WF, "workflow.tasks[1].inputs[0]"),
        id="workflow-input-missing-task",
    ),
    pytest.param(
        Case(bad_workflow(lambda c: workflow(c, task("a", "a"))), WF, "workflow.tasks[0].inputs[0]"),
        id="workflow-self-input",
    ),
    pytest.param(
        Case(bad_workflow(lambda c: workflow(c, task("a"), task("a"))), WF, "workflow.tasks[1].name"),
        id="workflow-duplicate-names",
    ),
    pytest.param(Case(bad_workflow(lambda c: workflow(c)), WF, "workflow.tasks"), id="workflow-empty-tasks"),
    pytest.param(
        Case(bad_workflow(lambda c: {"instanceId": str(c.instance.pk), "tasks": {"a": {}}}), WF, "workflow.tasks"),
        id="workflow-tasks-not-a-list",
    ),
    pytest.param(Case(bad_workflow(lambda c: {"name": "no tasks"}), WF, "workflow.tasks"), id="workflow-no-tasks"),
    pytest.param(Case(bad_workflow(lambda c: "tasks: []"), WF, "workflow"), id="workflow-a-string"),
    pytest.param(Case(bad_workflow(lambda c: 42), WF, "workflow"), id="workflow-a-number"),
    pytest.param(
        Case(bad_workflow(lambda c: [workflow(c, task("a"))]), WF, "workflow"),
        id="workflow-a-list",
    ),
    pytest.param(Case(bad_workflow(lambda c: None), V, status=400, says="$workflow"), id="workflow-null-variable"),
    pytest.param(
        Case(
            lambda c: gql(
                f'mutation {{ createScheduledJob(instanceId: "{c.instance.pk}", workflow: null,'
                ' frequencyType: CRON_BASED, cronExpression: "0 * * * *") { id } }'
            ),
            V,
            status=400,
            says="JSON!",
        ),
        id="workflow-null-inline",
    ),
    pytest.param(
        Case(bad_workflow(lambda c: workflow(c, task("a", type_="shell.exec"))), WF, "workflow.tasks[0].type"),
        id="workflow-unknown-task-type",
    ),
    pytest.param(
        Case(bad_workflow(lambda c: workflow(c, "just a string")), WF, "workflow.tasks[0]"),
        id="workflow-task-not-an-object",
    ),
    pytest.param(
        Case(
            bad_workflow(lambda c: workflow(c, task("a", args={"id": str(c.other_resource.pk)}))),
            WF,
            "workflow.tasks[0].args.id",
        ),
        id="workflow-foreign-resource",
    ),
    pytest.param(
        Case(
            bad_workflow(lambda c: workflow(c, task("a", args={"id": str(MISSING_ID)}))),
            WF,
            "workflow.tasks[0].args.id",
        ),
        id="workflow-nonexistent-resource",
    ),
    pytest.param(
        Case(
            bad_workflow(lambda c: workflow(c, task("a", args={"exclude": ["*.log"]}))),
            WF,
            "workflow.tasks[0].args.resourceId",
        ),
        id="workflow-resource-id-missing",
    ),
    pytest.param(
        Case(
            bad_workflow(lambda c: workflow(c, task("a"), instanceId=str(c.other_instance.pk))),
            WF,
            "workflow.instanceId",
        ),
        id="workflow-other-instance-id",
    ),
    pytest.param(Case(bad_workflow(oversized), WF, "workflow"), id="workflow-over-64KiB"),
    # --- ids of createScheduledJob
    pytest.param(
        Case(lambda c: create(c, instanceId=str(c.other_instance.pk)), "NOT_FOUND", "instanceId"),
        id="create-in-other-tenant",
    ),
    pytest.param(Case(lambda c: create(c, instanceId="abc"), "NOT_FOUND", "instanceId"), id="create-instance-abc"),
    # --- updateScheduledJob
    pytest.param(
        Case(lambda c: update(c, frequencyType="INTERVAL_BASED"), "REQUIRED", "intervalMinutes"),
        id="update-to-interval-without-interval",
    ),
    pytest.param(
        Case(lambda c: update(c, instanceId=str(c.other_instance.pk)), "NOT_FOUND", "jobId"),
        id="update-with-other-instance-id",
    ),
    pytest.param(
        Case(lambda c: update(c, cronExpression="61 * * * *"), "INVALID_CRON", "cronExpression"), id="update-bad-cron"
    ),
    pytest.param(
        Case(lambda c: update(c, intervalMinutes=5), "NOT_ALLOWED", "intervalMinutes"),
        id="update-interval-on-cron-job",
    ),
    pytest.param(
        Case(lambda c: update(c, workflow=workflow(c, task("a", "a"))), WF, "workflow.tasks[0].inputs[0]"),
        id="update-cyclic-workflow",
    ),
    pytest.param(
        Case(
            lambda c: gql(f'mutation {{ updateScheduledJob(jobId: "{c.job.pk}", workflow: null) {{ id }} }}'),
            WF,
            "workflow",
        ),
        id="update-workflow-null",
    ),
    pytest.param(
        Case(lambda c: update(c, jobId=str(c.other_job.pk), cronExpression="0 1 * * *"), "NOT_FOUND", "jobId"),
        id="update-other-tenant-job",
    ),
    # --- history pages and cursors
    pytest.param(Case(page(first=0), "INVALID_PAGE", "page.first"), id="page-first-0"),
    pytest.param(Case(page(first=-1), "INVALID_PAGE", "page.first"), id="page-first-negative"),
    pytest.param(Case(page(first=10**6), "INVALID_PAGE", "page.first"), id="page-first-million"),
    pytest.param(Case(page(after="garbage!!"), "INVALID_CURSOR", "page.after"), id="cursor-garbage"),
    pytest.param(Case(page(after=b64("garbage")), "INVALID_CURSOR", "page.after"), id="cursor-base64-garbage"),
    pytest.param(Case(page(after=b64("h1:x:y")), "INVALID_CURSOR", "page.after"), id="cursor-base64-bad-numbers"),
    pytest.param(Case(page(after=b64("h1:1:-5")), "INVALID_CURSOR", "page.after"), id="cursor-negative-id"),
    pytest.param(Case(page(after=b64(f"h1:{10**30}:1")), "INVALID_CURSOR", "page.after"), id="cursor-time-overflow"),
    pytest.param(Case(page(after="A" * 5000), "INVALID_CURSOR", "page.after"), id="cursor-huge"),
    pytest.param(
        Case(lambda c: gql(PAGE, {"instanceId": str(c.other_instance.pk)}), "NOT_FOUND", "instanceId"),
        id="page-other-tenant",
    ),
    # --- unknown and foreign ids
    pytest.param(Case(get_job(lambda c: str(MISSING_ID)), "NOT_FOUND", "jobId"), id="job-unknown"),
    pytest.param(Case(get_job(lambda c: "abc"), "NOT_FOUND", "jobId"), id="job-id-abc"),
    pytest.param(Case(get_job(lambda c: "-1"), "NOT_FOUND", "jobId"), id="job-id-minus-1"),
    pytest.param(Case(get_job(lambda c: "0"), "NOT_FOUND", "jobId"), id="job-id-0"),
    pytest.param(Case(get_job(lambda c: "99999999999999999999"), "NOT_FOUND", "jobId"), id="job-id-huge"),
    pytest.param(Case(get_job(lambda c: str(c.other_job.pk)), "NOT_FOUND", "jobId"), id="job-other-tenant"),
    pytest.param(
        Case(lambda c: gql(GET_RUN, {"id": str(c.other_history.pk)}), "NOT_FOUND", "jobHistoryId"),
        id="run-other-tenant",
    ),
    pytest.param(Case(lambda c: gql(GET_RUN, {"id": str(MISSING_ID)}), "NOT_FOUND", "jobHistoryId"), id="run-unknown"),
    pytest.param(
        Case(lambda c: gql(GET_JOBS, {"instanceId": str(c.other_instance.pk)}), "NOT_FOUND", "instanceId"),
        id="jobs-other-tenant",
    ),
    pytest.param(Case(lambda c: gql(DELETE, {"id": str(MISSING_ID)}), "NOT_FOUND", "id"), id="delete-unknown"),
    pytest.param(Case(lambda c: gql(DELETE, {"id": str(c.other_job.pk)}), "NOT_FOUND", "id"), id="delete-other-tenant"),
    # --- addJobConfig
    pytest.param(Case(add_config("drive"), "INVALID_CONFIG", "config"), id="config-a-string"),
    pytest.param(Case(add_config({}), "INVALID_CONFIG", "config"), id="config-empty"),
    pytest.param(Case(add_config({"gd": {"token": "x"}}), "INVALID_CONFIG", "config.gd.type"), id="config-no-type"),
    pytest.param(Case(add_config({"-bad": {"type": "drive"}}), "INVALID_CONFIG", "config.-bad"), id="config-name-dash"),
    pytest.param(
        Case(add_config({"disk": {"type": "local", "root": "/"}}), "INVALID_CONFIG", "config.disk.type"),
        id="config-type-local",
    ),
    pytest.param(
        Case(add_config({"gd": {"type": "drive", "nested": {"a": 1}}}), "INVALID_CONFIG", "config.gd.nested"),
        id="config-nested-value",
    ),
    pytest.param(
        Case(add_config({"gd": {"type": "drive"}}, lambda c: c.other_resource), "NOT_FOUND", "resourceId"),
        id="config-other-tenant-resource",
    ),
    # --- authentication
    pytest.param(Case(jobs_with(None), "UNAUTHENTICATED", status=401), id="token-missing"),
    pytest.param(Case(jobs_with("Bearer not-a-real-token"), "UNAUTHENTICATED", status=401), id="token-garbage"),
    pytest.param(Case(jobs_with("Bearer "), "UNAUTHENTICATED", status=401), id="token-empty"),
    pytest.param(Case(expired_token, "UNAUTHENTICATED", status=401), id="token-expired"),
    pytest.param(Case(basic_auth, "UNAUTHENTICATED", status=401), id="basic-auth-instead-of-bearer"),
    # --- transport
    pytest.param(Case(lambda c: Req(body="{not json"), "BAD_REQUEST", status=400), id="body-not-json"),
    pytest.param(Case(lambda c: Req(body=""), "BAD_REQUEST", status=400), id="body-empty"),
    pytest.param(Case(lambda c: Req(body=[{"query": GET_JOBS}]), "BAD_REQUEST", status=400), id="body-a-list"),
    pytest.param(Case(lambda c: Req(body={"variables": {}}), "BAD_REQUEST", status=400), id="body-no-query"),
    pytest.param(Case(lambda c: Req(body={"query": 5}), "BAD_REQUEST", status=400), id="query-a-number"),
    pytest.param(
        Case(lambda c: Req(body={"query": GET_JOBS, "variables": [1, 2]}), "BAD_REQUEST", status=400),
        id="variables-a-list",
    ),
    pytest.param(
        Case(lambda c: Req(body={"query": GET_JOBS, "variables": "{oops"}), "BAD_REQUEST", status=400),
        id="variables-bad-json-string",
    ),
    pytest.param(
        Case(lambda c: Req(body=json.dumps({"query": GET_JOBS}), content_type="text/plain"), "BAD_REQUEST", status=400),
        id="content-type-text-plain",
    ),
    pytest.param(
        Case(lambda c: gql("query { getScheduledJobs(instanceId: "), "GRAPHQL_PARSE_FAILED", status=400),
        id="query-syntax-error",
    ),
    pytest.param(
        Case(
            lambda c: gql(f'{{ getScheduledJobs(instanceId: "{c.instance.pk}") {{ id secret }} }}'),
            V,
            status=400,
            says="secret",
        ),
        id="query-unknown-field",
    ),
    pytest.param(
        Case(lambda c: gql("{ getScheduledJob { id } }"), V, status=400, says="jobId"), id="query-missing-argument"
    ),
    pytest.param(
        Case(lambda c: gql(GET_JOB, {"jobId": {"nested": 1}}), V, status=400, says="$jobId"), id="variable-wrong-type"
    ),
    pytest.param(
        Case(
            lambda c: Req(
                method="get",
                params={"query": f'mutation {{ deleteScheduledJob(id: "{c.job.pk}") {{ success }} }}'},
            ),
            "BAD_REQUEST",
            status=405,
        ),
        id="get-of-a-mutation",
    ),
    pytest.param(
        Case(lambda c: Req(body={"query": GET_JOBS}, method="put"), "BAD_REQUEST", status=405), id="put-method"
    ),
    pytest.param(
        Case(lambda c: Req(body={"query": GET_JOBS}, method="delete"), "BAD_REQUEST", status=405), id="delete-method"
    ),
]

LEAKS = re.compile(r"Traceback|File \"|site-packages|\.py\b|/work/|/usr/|/home/|line \d+, in")


def assert_no_leak(text: str) -> None:
    found = LEAKS.search(text)
    assert found is None, f"body leaks internals ({found and found.group()!r}): {text[:500]}"
    assert str(settings.BASE_DIR) not in text


def test_it_has_a_table_of_at_least_40_malformed_requests():
    assert len(CASES) >= 40


@pytest.mark.parametrize("case", CASES)
def test_it_answers_malformed_requests_with_a_coded_error_and_writes_nothing(case, ctx, client):
    request = case.build(ctx)
    before = row_snapshot()

    response = send(client, ctx, request)

    text = response.content.decode()
    assert response.status_code != 500, text
    assert response.status_code == case.status, text
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = json.loads(text)
    assert isinstance(body, dict), text
    assert isinstance(body.get("errors"), list), text
    assert body["errors"], text
    first = body["errors"][0]
    assert isinstance(first.get("message"), str), text
    assert first.get("extensions", {}).get("code") == case.code, text
    assert first["extensions"].get("field") == case.field, text
    if case.says is not None:
        assert case.says in first["message"], text
    assert "INTERNAL_ERROR" not in error_codes(body), text
    assert_no_leak(text)
    assert row_snapshot() == before


# --------------------------------------------------------------------------- another tenant's ids read as unknown ones


FOREIGN_VS_MISSING = [
    pytest.param(GET_JOB, "jobId", lambda c: c.other_job.pk, id="getScheduledJob"),
    pytest.param(UPDATE, "jobId", lambda c: c.other_job.pk, id="updateScheduledJob"),
    pytest.param(DELETE, "id", lambda c: c.other_job.pk, id="deleteScheduledJob"),
    pytest.param(GET_RUN, "id", lambda c: c.other_history.pk, id="getScheduledJobHistory"),
    pytest.param(GET_JOBS, "instanceId", lambda c: c.other_instance.pk, id="getScheduledJobs"),
    pytest.param(PAGE, "instanceId", lambda c: c.other_instance.pk, id="getInstanceJobHistory"),
]


@pytest.mark.parametrize(("query", "variable", "foreign"), FOREIGN_VS_MISSING)
def test_it_answers_another_tenants_id_exactly_like_a_missing_one(query, variable, foreign, ctx, api):
    before = row_snapshot()
    status_foreign, foreign_body = api.gql(query, {variable: str(foreign(ctx))}, ctx.token)
    status_missing, missing_body = api.gql(query, {variable: str(MISSING_ID)}, ctx.token)

    assert error_codes(foreign_body) == ["NOT_FOUND"], foreign_body
    assert (status_foreign, foreign_body) == (status_missing, missing_body)
    assert row_snapshot() == before


def test_it_answers_a_foreign_resource_in_a_workflow_like_a_missing_one(ctx, api):
    def attempt(resource_id: int) -> dict:
        req = create(ctx, workflow=workflow(ctx, task("a", args={"id": str(resource_id)})))
        return api.gql(req.body["query"], req.body["variables"], ctx.token)[1]

    before = row_snapshot()
    foreign, missing = attempt(ctx.other_resource.pk), attempt(MISSING_ID)

    assert error_codes(foreign) == error_codes(missing) == ["INVALID_WORKFLOW"]
    assert foreign["errors"][0]["extensions"]["field"] == missing["errors"][0]["extensions"]["field"]

    def scrub(body: dict) -> str:
        return re.sub(r"\d+", "N", body["errors"][0]["message"])

    assert scrub(foreign) == scrub(missing)
    assert row_snapshot() == before


# --------------------------------------------------------------------------- variables behave like inline literals


INLINE_CREATE = """
mutation {{
  createScheduledJob(instanceId: "{instance}", workflow: {workflow}, frequencyType: CRON_BASED,
                     cronExpression: "0 3 * * *", name: "{name}") {{ id workflow }}
}}
"""
VARIABLE_CREATE = """
mutation Create($workflow: JSON!) {{
  createScheduledJob(instanceId: "{instance}", workflow: $workflow, frequencyType: CRON_BASED,
                     cronExpression: "0 3 * * *", name: "{name}") {{ id workflow }}
}}
"""

BAD_WORKFLOWS = [
    pytest.param(lambda c: workflow(c, task("a", "b"), task("b", "a")), id="cycle"),
    pytest.param(lambda c: workflow(c, task("a", type_="nope")), id="unknown-type"),
    pytest.param(lambda c: workflow(c), id="no-tasks"),
    pytest.param(lambda c: workflow(c, task("a", args={"id": str(c.other_resource.pk)})), id="foreign-resource"),
    pytest.param(lambda c: "a string", id="string"),
    pytest.param(lambda c: [1, 2], id="list"),
]


@pytest.mark.parametrize("make", BAD_WORKFLOWS)
def test_it_validates_a_workflow_variable_exactly_like_an_inline_literal(make, ctx, api):
    bad = make(ctx)
    before = row_snapshot()

    inline = api.gql(INLINE_CREATE.format(instance=ctx.instance.pk, workflow=literal(bad), name="x"), None, ctx.token)
    variable = api.gql(VARIABLE_CREATE.format(instance=ctx.instance.pk, name="x"), {"workflow": bad}, ctx.token)

    assert inline[0] == variable[0] == 200
    assert error_codes(inline[1]) == ["INVALID_WORKFLOW"], inline
    strip = [{k: v for k, v in e.items() if k != "locations"} for e in inline[1]["errors"]]
    assert strip == [{k: v for k, v in e.items() if k != "locations"} for e in variable[1]["errors"]]
    assert row_snapshot() == before


def test_it_accepts_the_same_valid_workflow_inline_and_as_a_variable(ctx, api, workflow):
    jobs_before = ScheduledJob.objects.count()

    inline = api.gql(
        INLINE_CREATE.format(instance=ctx.instance.pk, workflow=literal(workflow), name="inline"), None, ctx.token
    )
    variable = api.gql(VARIABLE_CREATE.format(instance=ctx.instance.pk, name="var"), {"workflow": workflow}, ctx.token)

    assert inline[0] == variable[0] == 200, (inline, variable)
    assert "errors" not in inline[1], inline
    assert "errors" not in variable[1], variable
    made_inline = inline[1]["data"]["createScheduledJob"]
    made_variable = variable[1]["data"]["createScheduledJob"]
    assert made_inline["workflow"] == made_variable["workflow"] == workflow
    assert ScheduledJob.objects.count() == jobs_before + 2
    stored = ScheduledJob.objects.filter(pk__in=[made_inline["id"], made_variable["id"]])
    assert [j.workflow for j in stored] == [workflow, workflow]


# --------------------------------------------------------------------------- one document, all or nothing

TWO_MUTATIONS = [
    pytest.param(
        """
        mutation Two($instanceId: ID!, $workflow: JSON!) {
          first: createScheduledJob(instanceId: $instanceId, workflow: $workflow, frequencyType: CRON_BASED,
                                    cronExpression: "0 * * * *", name: "first") { id }
          second: createScheduledJob(instanceId: $instanceId, workflow: $workflow, frequencyType: CRON_BASED,
                                     cronExpression: "61 * * * *") { id }
        }
        """,
        lambda c, wf: {"instanceId": str(c.instance.pk), "workflow": wf},
        "INVALID_CRON",
        id="create-then-bad-create",
    ),
    pytest.param(
        """
        mutation Two($jobId: ID!, $otherJob: ID!) {
          first: updateScheduledJob(jobId: $jobId, name: "renamed", active: false) { id }
          second: deleteScheduledJob(id: $otherJob) { success }
        }
        """,
        lambda c, wf: {"jobId": str(c.job.pk), "otherJob": str(c.other_job.pk)},
        "NOT_FOUND",
        id="update-then-foreign-delete",
    ),
    pytest.param(
        """
        mutation Two($jobId: ID!) {
          first: deleteScheduledJob(id: $jobId) { success }
          second: updateScheduledJob(jobId: $jobId, name: "gone") { id }
        }
        """,
        lambda c, wf: {"jobId": str(c.job.pk)},
        "NOT_FOUND",
        id="delete-then-update-of-deleted",
    ),
    pytest.param(
        """
        mutation Two($resourceId: ID!, $missing: ID!) {
          first: addJobConfig(
            resourceId: $resourceId, config: {gd: {type: "s3", access_key_id: "k", secret_access_key: "s"}}
          ) { success }
          second: deleteScheduledJob(id: $missing) { success }
        }
        """,
        lambda c, wf: {"resourceId": str(c.resource.pk), "missing": str(MISSING_ID)},
        "NOT_FOUND",
        id="config-then-missing-delete",
    ),
]


@pytest.mark.parametrize(("document", "variables", "code"), TWO_MUTATIONS)
def test_it_rolls_back_the_first_mutation_when_the_second_fails(document, variables, code, ctx, api, workflow):
    before = row_snapshot()

    status, body = api.gql(document, variables(ctx, workflow), ctx.token)

    assert status == 200, body
    assert error_codes(body) == [code], body
    assert body["errors"][0]["path"] == ["second"], body
    assert body.get("data") is None, body
    assert_no_leak(json.dumps(body))
    assert row_snapshot() == before


# --------------------------------------------------------------------------- the token endpoint


def creds(c: Ctx, **extra: str) -> dict:
    return {"client_id": c.acme_client.client_id, "client_secret": c.acme_client.client_secret, **extra}


TOKEN_CASES = [
    pytest.param(
        lambda c: creds(c, grant_type="client_credentials", client_secret="wrong"),
        401,
        "invalid_client",
        id="bad-secret",
    ),
    pytest.param(
        lambda c: {"grant_type": "client_credentials", "client_id": "nobody", "client_secret": "x"},
        401,
        "invalid_client",
        id="unknown-client",
    ),
    pytest.param(lambda c: creds(c, grant_type="magic"), 400, "unsupported_grant_type", id="unknown-grant"),
    pytest.param(lambda c: creds(c), 400, "unsupported_grant_type", id="no-grant-type"),
    pytest.param(
        lambda c: creds(c, grant_type="client_credentials", scope=f"instance-write-{c.other_instance.pk}"),
        400,
        "invalid_scope",
        id="scope-other-tenant-instance",
    ),
    pytest.param(
        lambda c: creds(c, grant_type="client_credentials", scope=f"resource-read-{c.other_resource.pk}"),
        400,
        "invalid_scope",
        id="scope-other-tenant-resource",
    ),
    pytest.param(
        lambda c: creds(c, grant_type="client_credentials", scope=f"instance-read-{MISSING_ID}"),
        400,
        "invalid_scope",
        id="scope-missing-instance",
    ),
    pytest.param(
        lambda c: creds(c, grant_type="client_credentials", scope="admin"), 400, "invalid_scope", id="scope-unknown"
    ),
    pytest.param(
        lambda c: creds(c, grant_type="client_credentials", scope="instance-write-abc"),
        400,
        "invalid_scope",
        id="scope-id-not-numeric",
    ),
    pytest.param(
        lambda c: creds(c, grant_type="refresh_token", refresh_token="garbage"),
        400,
        "invalid_grant",
        id="refresh-garbage",
    ),
]


@pytest.mark.parametrize(("data", "status", "error"), TOKEN_CASES)
def test_it_refuses_malformed_token_requests_without_issuing_anything(data, status, error, ctx, client):
    before = (row_snapshot(), AccessToken.objects.count(), RefreshToken.objects.count())

    response = client.post("/oauth2/token", data(ctx))

    text = response.content.decode()
    assert response.status_code == status, text
    body = json.loads(text)
    assert body.get("error") == error, text
    assert "access_token" not in body
    assert_no_leak(text)
    assert (row_snapshot(), AccessToken.objects.count(), RefreshToken.objects.count()) == before


@pytest.mark.parametrize(
    ("method", "status"),
    [pytest.param("get", 405, id="GET"), pytest.param("put", 405, id="PUT")],
)
def test_it_refuses_the_token_endpoint_without_post(method, status, ctx, client):
    before = AccessToken.objects.count()
    response = getattr(client, method)("/oauth2/token")
    assert response.status_code == status
    assert_no_leak(response.content.decode())
    assert AccessToken.objects.count() == before
