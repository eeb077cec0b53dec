"""testJobConfig through the API: who may ask, what is not found, and the answer when no worker takes the check.
A worker's real checks are in tests/jobs/test_remote_check.py (in process) and tests/e2e/test_remote_check.py."""

import pytest

from configs import checks
from configs import services as configs

pytestmark = pytest.mark.smoke

QUERY = """query($r: ID!, $n: String!) {
  testJobConfig(resourceId: $r, remote: $n) { ok message entries durationMs }
}"""
BUCKET = {"type": "s3", "provider": "AWS", "access_key_id": "AKIAEXAMPLE", "secret_access_key": "s3cr3t-value-1"}


@pytest.fixture
def remote(resource):
    configs.add_job_config(resource, {"bucket": BUCKET})


def test_it_answers_like_a_missing_remote_for_an_unknown_name(api, acme_token, resource, remote):
    _, body = api.gql(QUERY, {"r": str(resource.pk), "n": "nope"}, token=acme_token)

    assert body["errors"][0]["extensions"] == {"code": "NOT_FOUND", "field": "remote"}


def test_it_answers_like_a_missing_resource_for_another_tenants(api, acme_token, other_resource):
    configs.add_job_config(other_resource, {"bucket": BUCKET})

    _, body = api.gql(QUERY, {"r": str(other_resource.pk), "n": "bucket"}, token=acme_token)

    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert body["errors"][0]["extensions"]["field"] == "resourceId"


def test_it_needs_write_access_to_the_resource(api, token_for, instance, resource, remote):
    _, body = api.gql(QUERY, {"r": str(resource.pk), "n": "bucket"}, token=token_for(f"instance-read-{instance.pk}"))

    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


def test_it_says_so_when_no_worker_answers(api, acme_token, resource, remote, monkeypatch):
    monkeypatch.setattr(checks, "WAIT_SECONDS", 0.5)

    status, body = api.gql(QUERY, {"r": str(resource.pk), "n": "bucket"}, token=acme_token)

    assert status == 200
    assert body["data"]["testJobConfig"] == {
        "ok": False,
        "message": "no worker answered within 0.5 s: is a worker running?",
        "entries": None,
        "durationMs": 0,
    }
