"""Text and JSON the database cannot store (NUL, lone surrogates, NaN/Infinity) are refused with a coded error on
the argument, before anything is written. Found by tests/faults/test_fuzz_mutations.py; pinned down here."""

import json
import math

import pytest

from pointscene.storable import unstorable
from tests.fixtures.api import row_snapshot

pytestmark = pytest.mark.smoke

CREATE = """
mutation($instanceId: ID!, $workflow: JSON!, $name: String) {
  createScheduledJob(instanceId: $instanceId, workflow: $workflow, frequencyType: CRON_BASED,
                     cronExpression: "0 3 * * *", name: $name) { id }
}"""


def workflow(**args) -> dict:
    return {"tasks": [{"name": "a", "type": "http.request", "args": {"url": "https://example.com", **args}}]}


@pytest.mark.parametrize(
    ("variables", "field", "says"),
    [
        pytest.param({"name": "a\x00b"}, "name", "NUL", id="nul-in-name"),
        pytest.param({"name": "\ud800"}, "name", "surrogate", id="surrogate-in-name"),
        pytest.param(
            {"workflow": workflow(headers={"X": "\x00"})},
            "workflow.tasks[0].args.headers.X",
            "NUL",
            id="nul-in-workflow",
        ),
        pytest.param({"workflow": {**workflow(), "\x00": 1}}, "workflow", "key", id="nul-in-a-key"),
    ],
)
def test_it_refuses_what_the_database_cannot_store(api, acme_token, instance, variables, field, says):
    before = row_snapshot()
    payload = {"instanceId": str(instance.pk), "workflow": workflow(), **variables}

    status, body = api.gql(CREATE, payload, acme_token)

    assert status == 200
    [error] = body["errors"]
    assert error["extensions"]["code"] == "INVALID_VALUE"
    assert error["extensions"]["field"] == field
    assert says in error["message"]
    assert row_snapshot() == before


def test_it_refuses_nan_in_a_workflow(api, acme_token, instance, client):
    # json.dumps writes NaN, and Python's JSON parser reads it back, though it is not JSON.
    body = json.dumps(
        {"query": CREATE, "variables": {"instanceId": str(instance.pk), "workflow": workflow(json={"x": math.nan})}}
    )
    before = row_snapshot()

    response = client.post("/graphql", body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {acme_token}")

    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "INVALID_VALUE"
    assert error["extensions"]["field"] == "workflow.tasks[0].args.json.x"
    assert row_snapshot() == before


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("fine", None),
        ({"a": [1, 2.5, "ok", None, True]}, None),
        ({"a": ["x", "y\x00"]}, ("v.a[1]", "must not contain NUL characters")),
        ([float("inf")], ("v[0]", "must be a finite number (NaN and Infinity are not JSON)")),
        ({"k\ud800": 1}, ("v", "has a key that be valid Unicode (it holds a lone surrogate)")),
    ],
)
def test_unstorable_names_the_first_problem_and_where(value, expected):
    assert unstorable(value, "v") == expected
