"""Every document in docs/contract/examples runs unchanged (ids swapped) over real HTTP with a bearer token."""

import re
from pathlib import Path

import pytest
import requests
from graphql import build_schema

from jobs.models import JobHistory, RunStatus
from tests.api.shape import assert_shape

pytestmark = [pytest.mark.smoke, pytest.mark.live, pytest.mark.django_db(transaction=True)]

CONTRACT = Path(__file__).resolve().parents[2] / "docs" / "contract"
EXAMPLES = sorted(p.name for p in (CONTRACT / "examples").glob("*.graphql"))


def contract():
    return build_schema((CONTRACT / "schema.graphql").read_text())


def swap_ids(document: str, ids: dict[str, int]) -> str:
    """The examples use "7" (instance), "42" (resource), "3" (job), "1001" (run): swap in real ones."""
    return re.sub(r'"(\d+)"', lambda m: f'"{ids.get(m[1], m[1])}"', document)


@pytest.fixture
def live_token(live_server, acme_client) -> str:
    response = requests.post(
        f"{live_server.url}/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": acme_client.client_id,
            "client_secret": acme_client.client_secret,
            "scope": "instance-*",
        },
        timeout=10,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] > 0
    assert "refresh_token" not in body
    return body["access_token"]


@pytest.fixture
def ids(instance, resource, job) -> dict[str, int]:
    run = JobHistory.objects.create(job=job, instance=instance, status=RunStatus.SUCCEEDED, log_path="logs/1.log")
    return {"7": instance.pk, "42": resource.pk, "3": job.pk, "1001": run.pk}


def post(live_server, token: str, document: str) -> requests.Response:
    return requests.post(
        f"{live_server.url}/graphql",
        json={"query": document},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )


@pytest.mark.parametrize("example", EXAMPLES)
def test_it_answers_every_contract_example_with_the_declared_shape(live_server, live_token, ids, example):
    document = swap_ids((CONTRACT / "examples" / example).read_text(), ids)

    response = post(live_server, live_token, document)

    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    assert_shape(contract(), document, body["data"])


def test_it_creates_what_the_create_example_describes(live_server, live_token, ids):
    document = swap_ids((CONTRACT / "examples" / "create_cron_job.graphql").read_text(), ids)

    job = post(live_server, live_token, document).json()["data"]["createScheduledJob"]

    assert job["instanceId"] == str(ids["7"])
    assert job["frequencyType"] == "CRON_BASED"
    assert job["cronExpression"] == "30 2 * * *"
    assert job["intervalMinutes"] is None
    assert job["workflow"]["tasks"][1]["args"]["remotes"] == ["acc:/Project Files", "gdrive:/backup"]
    assert job["nextRun"].endswith(":30:00+00:00")
    assert job["lastRun"] is None


def test_it_pauses_with_the_pause_example(live_server, live_token, ids):
    document = swap_ids((CONTRACT / "examples" / "pause_job.graphql").read_text(), ids)

    job = post(live_server, live_token, document).json()["data"]["updateScheduledJob"]

    assert job == {"id": str(ids["3"]), "active": False, "lastRun": None, "nextRun": None}


def test_it_refuses_the_examples_without_a_token(live_server, ids):
    document = swap_ids((CONTRACT / "examples" / "get_jobs.graphql").read_text(), ids)

    response = requests.post(f"{live_server.url}/graphql", json={"query": document}, timeout=10)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


def test_it_serves_graphiql_to_a_browser(live_server, settings):
    settings.GRAPHQL_GRAPHIQL = True
    response = requests.get(f"{live_server.url}/graphql", headers={"Accept": "text/html"}, timeout=10)

    assert response.status_code == 200
    assert "graphiql" in response.text.lower()
