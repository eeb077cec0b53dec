"""Who may do what: every operation against every scope kind, on Acme's ids and on Globex's.

The rules (pointscene/core/access.py): instance scopes cover everything in the instance (write implies read);
resource scopes cover only addJobConfig on that one resource; a token reaches only the instances its client
(or user) is linked to now; another tenant's ids answer NOT_FOUND with the very words a nonexistent id gets;
what the caller may read but not write answers FORBIDDEN. A refused request changes nothing.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest
from django.conf import global_settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import identify_hasher
from oauth2_provider.models import AccessToken, Application, RefreshToken

from configs.models import RemoteConfig
from jobs.models import JobHistory, ScheduledJob
from pointscene.core.clients import create_api_client
from pointscene.core.models import ApiClient
from tests.fixtures.api import error_codes, row_snapshot
from tests.fixtures.cast import sync_workflow

pytestmark = pytest.mark.smoke

MISSING_ID = 987_654_321


@pytest.fixture(autouse=True)
def fast_secret_hashing(settings):
    """Client secrets are hashed with PBKDF2 (about half a second each); only one test here is about hashing."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# --------------------------------------------------------------------------- the two sides


@dataclass(frozen=True)
class Side:
    """The ids an operation is aimed at: all Acme's, all Globex's, or ids that exist nowhere."""

    instance_id: int
    resource_id: int
    job_id: int
    history_id: int


@pytest.fixture
def acme(instance, resource, job) -> Side:
    run = JobHistory.objects.create(job=job, instance=instance)
    return Side(instance.pk, resource.pk, job.pk, run.pk)


@pytest.fixture
def globex(other_instance, other_resource, other_job) -> Side:
    run = JobHistory.objects.create(job=other_job, instance=other_instance)
    return Side(other_instance.pk, other_resource.pk, other_job.pk, run.pk)


NOWHERE = Side(MISSING_ID, MISSING_ID, MISSING_ID, MISSING_ID)


def workflow_for(side: Side) -> dict:
    """The contract's workflow for a side's instance and resource (ids only, so it works for NOWHERE too)."""
    return sync_workflow(SimpleNamespace(pk=side.instance_id), SimpleNamespace(pk=side.resource_id))


# --------------------------------------------------------------------------- the operations


@dataclass(frozen=True)
class Op:
    name: str
    document: str
    variables: Callable[[Side], dict]
    field: str  # the argument a refusal names
    writes: bool
    accepted: Callable[[Side, Any], None]  # asserts the data of an allowed call


def _jobs_listed(side: Side, data: Any) -> None:
    assert [j["id"] for j in data] == [str(side.job_id)]


def _job_read(side: Side, data: Any) -> None:
    assert data["id"] == str(side.job_id)
    assert data["instanceId"] == str(side.instance_id)


def _history_page(side: Side, data: Any) -> None:
    assert [row["id"] for row in data["items"]] == [str(side.history_id)]
    assert data["hasNextPage"] is False


def _run_read(side: Side, data: Any) -> None:
    assert data["id"] == str(side.history_id)
    assert data["jobId"] == str(side.job_id)


def _created(side: Side, data: Any) -> None:
    made = ScheduledJob.objects.get(pk=data["id"])
    assert made.instance_id == side.instance_id
    assert made.name == "made by the matrix"


def _updated(side: Side, data: Any) -> None:
    assert data["id"] == str(side.job_id)
    assert ScheduledJob.objects.get(pk=side.job_id).name == "renamed by the matrix"


def _deleted(side: Side, data: Any) -> None:
    assert data == {"success": True}
    assert not ScheduledJob.objects.filter(pk=side.job_id).exists()
    assert not JobHistory.objects.filter(pk=side.history_id).exists()


def _configured(side: Side, data: Any) -> None:
    assert data == {"success": True}
    assert RemoteConfig.objects.filter(resource_id=side.resource_id, name="matrix").exists()


OPS = {
    op.name: op
    for op in [
        Op(
            "getScheduledJobs",
            "query Q($id: ID!) { getScheduledJobs(instanceId: $id) { id } }",
            lambda s: {"id": str(s.instance_id)},
            "instanceId",
            False,
            _jobs_listed,
        ),
        Op(
            "getScheduledJob",
            "query Q($id: ID!) { getScheduledJob(jobId: $id) { id instanceId } }",
            lambda s: {"id": str(s.job_id)},
            "jobId",
            False,
            _job_read,
        ),
        Op(
            "getInstanceJobHistory",
            "query Q($id: ID!) { getInstanceJobHistory(instanceId: $id, page: {first: 10}) "
            "{ items { id } hasNextPage } }",
            lambda s: {"id": str(s.instance_id)},
            "instanceId",
            False,
            _history_page,
        ),
        Op(
            "getScheduledJobHistory",
            "query Q($id: ID!) { getScheduledJobHistory(jobHistoryId: $id) { id jobId } }",
            lambda s: {"id": str(s.history_id)},
            "jobHistoryId",
            False,
            _run_read,
        ),
        Op(
            "createScheduledJob",
            """mutation M($id: ID!, $workflow: JSON!) {
                 createScheduledJob(instanceId: $id, workflow: $workflow, frequencyType: INTERVAL_BASED,
                                    intervalMinutes: 30, name: "made by the matrix") { id }
               }""",
            lambda s: {"id": str(s.instance_id), "workflow": workflow_for(s)},
            "instanceId",
            True,
            _created,
        ),
        Op(
            "updateScheduledJob",
            'mutation M($id: ID!) { updateScheduledJob(jobId: $id, name: "renamed by the matrix") { id } }',
            lambda s: {"id": str(s.job_id)},
            "jobId",
            True,
            _updated,
        ),
        Op(
            "deleteScheduledJob",
            "mutation M($id: ID!) { deleteScheduledJob(id: $id) { success } }",
            lambda s: {"id": str(s.job_id)},
            "id",
            True,
            _deleted,
        ),
        Op(
            "addJobConfig",
            "mutation M($id: ID!) { addJobConfig(resourceId: $id, "
            'config: {matrix: {type: "s3", access_key_id: "k", secret_access_key: "s"}}) { success } }',
            lambda s: {"id": str(s.resource_id)},
            "resourceId",
            True,
            _configured,
        ),
    ]
}

# --------------------------------------------------------------------------- the scope kinds

SCOPES: dict[str, Callable[[Side], str]] = {
    "instance-*": lambda acme: "instance-*",
    "instance-write": lambda acme: f"instance-write-{acme.instance_id}",
    "instance-read": lambda acme: f"instance-read-{acme.instance_id}",
    "resource-write": lambda acme: f"resource-write-{acme.resource_id}",
    "resource-read": lambda acme: f"resource-read-{acme.resource_id}",
    "instance-create": lambda acme: "instance-create",
    "instance-read+resource-write": lambda acme: f"instance-read-{acme.instance_id} resource-write-{acme.resource_id}",
}

OK, NF, FB = "ok", "NOT_FOUND", "FORBIDDEN"
# What each scope kind gets on Acme's ids. On Globex's ids every cell is NOT_FOUND.
ON_ACME = {
    #                         i-*  i-write i-read r-write r-read i-create i-read+r-write
    "getScheduledJobs": (OK, OK, OK, NF, NF, NF, OK),
    "getScheduledJob": (OK, OK, OK, NF, NF, NF, OK),
    "getInstanceJobHistory": (OK, OK, OK, NF, NF, NF, OK),
    "getScheduledJobHistory": (OK, OK, OK, NF, NF, NF, OK),
    "createScheduledJob": (OK, OK, FB, NF, NF, NF, FB),
    "updateScheduledJob": (OK, OK, FB, NF, NF, NF, FB),
    "deleteScheduledJob": (OK, OK, FB, NF, NF, NF, FB),
    "addJobConfig": (OK, OK, FB, OK, FB, NF, OK),
}

MATRIX = [
    pytest.param(op, kind, target, ON_ACME[op][i] if target == "acme" else NF, id=f"{op}-{kind}-{target}")
    for op in OPS
    for i, kind in enumerate(SCOPES)
    for target in ("acme", "globex")
]


def strip_locations(body: dict) -> dict:
    return {**body, "errors": [{k: v for k, v in e.items() if k != "locations"} for e in body.get("errors", [])]}


@pytest.mark.parametrize(("op_name", "kind", "target", "expected"), MATRIX)
def test_it_enforces_each_scope_kind_on_each_operation(op_name, kind, target, expected, acme, globex, api, token_for):
    op = OPS[op_name]
    side = acme if target == "acme" else globex
    token = token_for(SCOPES[kind](acme))
    before = row_snapshot()

    status, body = api.gql(op.document, op.variables(side), token)

    assert status == 200, body
    assert "INTERNAL_ERROR" not in error_codes(body), body
    if expected == OK:
        assert "errors" not in body, body
        op.accepted(side, body["data"][op.name])
        assert (row_snapshot() != before) is op.writes
        return

    assert error_codes(body) == [expected], body
    error = body["errors"][0]
    assert error["extensions"]["field"] == op.field, body
    assert error["path"] == [op.name], body
    assert not (body.get("data") or {}).get(op.name), body
    assert row_snapshot() == before
    if expected == NF:
        # Indistinguishable from an id that exists nowhere, asked with the same token.
        _, missing = api.gql(op.document, op.variables(NOWHERE), token)
        assert strip_locations(body) == strip_locations(missing)
        assert row_snapshot() == before


def test_it_covers_every_operation_and_scope_kind():
    assert set(OPS) == set(ON_ACME)
    assert all(len(row) == len(SCOPES) for row in ON_ACME.values())
    assert len(MATRIX) == len(OPS) * len(SCOPES) * 2


# --------------------------------------------------------------------------- scopes a client may not ask for


REFUSED_SCOPES = [
    pytest.param(
        "acme_client", lambda acme, globex: f"instance-write-{globex.instance_id}", id="acme-asks-globex-write"
    ),
    pytest.param("acme_client", lambda acme, globex: f"instance-read-{globex.instance_id}", id="acme-asks-globex-read"),
    pytest.param(
        "acme_client", lambda acme, globex: f"resource-write-{globex.resource_id}", id="acme-asks-globex-resource"
    ),
    pytest.param(
        "acme_client",
        lambda acme, globex: f"instance-read-{acme.instance_id} instance-write-{globex.instance_id}",
        id="acme-asks-own-and-globex",
    ),
    pytest.param("acme_client", lambda acme, globex: f"instance-write-{MISSING_ID}", id="acme-asks-missing-instance"),
    pytest.param("globex_client", lambda acme, globex: f"instance-write-{acme.instance_id}", id="globex-asks-acme"),
    pytest.param("globex_client", lambda acme, globex: "instance-create", id="globex-asks-instance-create"),
]


@pytest.mark.parametrize(("who", "scope"), REFUSED_SCOPES)
def test_it_refuses_scopes_outside_the_client_at_the_token_endpoint(who, scope, acme, globex, api, request):
    requester = request.getfixturevalue(who)
    tokens_before = AccessToken.objects.count()
    before = row_snapshot()

    answer = api.token(requester, scope(acme, globex))

    assert answer["status"] == 400, answer
    assert answer["error"] == "invalid_scope", answer
    assert "access_token" not in answer
    assert AccessToken.objects.count() == tokens_before
    assert row_snapshot() == before


# --------------------------------------------------------------------------- grants

JOBS = "query Q($id: ID!) { getScheduledJobs(instanceId: $id) { id } }"


def test_it_lets_alices_password_token_reach_acme_and_only_acme(api, public_client, alice, acme, globex):
    answer = api.password_token(public_client)
    assert answer["status"] == 200, answer
    token = answer["access_token"]

    status, body = api.gql(JOBS, {"id": str(acme.instance_id)}, token)
    assert status == 200, body
    assert body["data"]["getScheduledJobs"] == [{"id": str(acme.job_id)}]

    status, body = api.gql(
        'mutation M($id: ID!) { updateScheduledJob(jobId: $id, name: "by alice") { id } }',
        {"id": str(acme.job_id)},
        token,
    )
    assert "errors" not in body, body
    assert ScheduledJob.objects.get(pk=acme.job_id).name == "by alice"

    before = row_snapshot()
    status, body = api.gql(JOBS, {"id": str(globex.instance_id)}, token)
    assert error_codes(body) == ["NOT_FOUND"], body
    assert row_snapshot() == before


def test_it_gives_a_user_of_no_instance_a_token_that_reaches_nothing(api, public_client, acme):
    get_user_model().objects.create_user(username="bob", password="another long passphrase 7")
    answer = api.password_token(public_client, username="bob", password="another long passphrase 7")
    assert answer["status"] == 200, answer

    status, body = api.gql(JOBS, {"id": str(acme.instance_id)}, answer["access_token"])
    assert error_codes(body) == ["NOT_FOUND"], body


def test_it_refuses_a_wrong_password(api, public_client, alice):
    answer = api.password_token(public_client, password="not the password")
    assert answer["status"] == 400, answer
    assert answer["error"] == "invalid_grant"
    assert "access_token" not in answer


def test_it_rotates_refresh_tokens_and_retires_the_old_ones(api, client, public_client, alice, acme):
    first = api.password_token(public_client)
    assert first["status"] == 200, first
    assert first.get("refresh_token"), first

    response = client.post(
        "/oauth2/token",
        {"grant_type": "refresh_token", "client_id": public_client.client_id, "refresh_token": first["refresh_token"]},
    )
    assert response.status_code == 200, response.content
    second = response.json()
    assert second["token_type"] == "Bearer"
    assert second["access_token"] != first["access_token"]
    assert second["refresh_token"] != first["refresh_token"]

    status, body = api.gql(JOBS, {"id": str(acme.instance_id)}, second["access_token"])
    assert status == 200, body
    assert body["data"]["getScheduledJobs"] == [{"id": str(acme.job_id)}]

    again = client.post(
        "/oauth2/token",
        {"grant_type": "refresh_token", "client_id": public_client.client_id, "refresh_token": first["refresh_token"]},
    )
    assert again.status_code == 400, again.content
    assert again.json()["error"] == "invalid_grant"
    assert "access_token" not in again.json()

    status, body = api.gql(JOBS, {"id": str(acme.instance_id)}, first["access_token"])
    assert status == 401, body
    assert error_codes(body) == ["UNAUTHENTICATED"]

    # Replaying a used refresh token looks like theft: the tokens issued from it are revoked too.
    status, body = api.gql(JOBS, {"id": str(acme.instance_id)}, second["access_token"])
    assert status == 401, body
    reuse = client.post(
        "/oauth2/token",
        {"grant_type": "refresh_token", "client_id": public_client.client_id, "refresh_token": second["refresh_token"]},
    )
    assert reuse.status_code == 400, reuse.content


@pytest.mark.parametrize("scope", ["instance-*", "instance-read", "resource-write", "instance-create"])
def test_it_issues_client_credentials_tokens_without_a_refresh_token(scope, api, acme_client, acme):
    wanted = SCOPES[scope](acme)
    answer = api.token(acme_client, wanted)

    assert answer["status"] == 200, answer
    assert answer["token_type"] == "Bearer"
    assert answer["access_token"]
    assert set(answer["scope"].split()) == set(wanted.split())
    assert "refresh_token" not in answer
    assert RefreshToken.objects.count() == 0


def test_it_cuts_off_an_existing_token_when_the_instance_is_unlinked(api, acme_client, acme):
    token = api.token(acme_client, "instance-*")["access_token"]
    status, body = api.gql(JOBS, {"id": str(acme.instance_id)}, token)
    assert body["data"]["getScheduledJobs"] == [{"id": str(acme.job_id)}], body

    ApiClient.objects.get(application__client_id=acme_client.client_id).instances.remove(acme.instance_id)
    before = row_snapshot()

    status, body = api.gql(JOBS, {"id": str(acme.instance_id)}, token)
    assert status == 200, body
    assert error_codes(body) == ["NOT_FOUND"], body
    for op in ("updateScheduledJob", "deleteScheduledJob", "addJobConfig", "createScheduledJob"):
        status, body = api.gql(OPS[op].document, OPS[op].variables(acme), token)
        assert error_codes(body) == ["NOT_FOUND"], (op, body)
    assert row_snapshot() == before


def test_it_cuts_off_a_users_token_when_the_membership_ends(api, public_client, alice, acme):
    token = api.password_token(public_client)["access_token"]
    assert "errors" not in api.gql(JOBS, {"id": str(acme.instance_id)}, token)[1]

    alice.instances.remove(acme.instance_id)

    status, body = api.gql(JOBS, {"id": str(acme.instance_id)}, token)
    assert error_codes(body) == ["NOT_FOUND"], body


# --------------------------------------------------------------------------- secrets at rest


def test_it_stores_no_token_or_client_secret_in_plaintext(api, settings, public_client, alice, instance):
    # The real hashers for the new client's secret (MD5 stays last only so that alice, made earlier, can log in).
    settings.PASSWORD_HASHERS = [*global_settings.PASSWORD_HASHERS, "django.contrib.auth.hashers.MD5PasswordHasher"]
    new = create_api_client("storage-check", [instance.pk])
    issued = [api.token(new, "instance-*"), api.password_token(public_client)]
    assert all(answer["status"] == 200 for answer in issued), issued
    access = [answer["access_token"] for answer in issued]
    refresh = [issued[1]["refresh_token"]]

    stored_access = list(AccessToken.objects.values_list("token", "token_checksum"))
    stored_refresh = list(RefreshToken.objects.values_list("token", "token_checksum"))
    assert len(stored_access) == 2
    assert len(stored_refresh) == 1
    every_stored = json.dumps([*stored_access, *stored_refresh])
    for raw in access + refresh:
        assert raw not in every_stored

    application = Application.objects.get(client_id=new.client_id)
    assert application.client_secret != new.client_secret
    assert new.client_secret not in application.client_secret
    assert identify_hasher(application.client_secret).algorithm in {
        "pbkdf2_sha256",
        "argon2",
        "bcrypt_sha256",
        "scrypt",
    }
    # The hashed secret still lets the client in.
    assert api.token(new, "instance-*")["status"] == 200
