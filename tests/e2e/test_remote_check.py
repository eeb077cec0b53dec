"""testJobConfig end to end: the API asks, a real worker process lists the remote (rclone serve s3 on loopback, let
through as an operator's own S3 by JOBS_EGRESS_ALLOW), and the answer comes back through django-celery-results."""

import json
from collections.abc import Iterator

import pytest
from django_celery_results.models import TaskResult

from configs import services as configs
from configs.models import RemoteConfig
from tests.fixtures.leaks import register_secret
from tests.fixtures.rclone import RcloneServer, serve, write_tree

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

QUERY = """query($r: ID!, $n: String!) {
  testJobConfig(resourceId: $r, remote: $n) { ok message entries durationMs }
}"""
WRONG = "definitely-not-the-secret-9012"


@pytest.fixture(scope="module")
def s3(tmp_path_factory) -> Iterator[RcloneServer]:
    server = serve("s3", tmp_path_factory.mktemp("s3"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def worker(s3, request):
    """The module's worker, started with the S3 server as the operator's exception (process_env copies os.environ)."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("JOBS_EGRESS_ALLOW", f"127.0.0.1:{s3.port}")
        env.setenv("CONFIGS_ALLOW_LOCAL_REMOTES", "0")
        yield request.getfixturevalue("processes")


def test_a_worker_checks_a_good_and_a_bad_remote_for_the_api(worker, s3, api, acme_token, resource, settings):
    settings.JOBS_EGRESS_ALLOW = [f"127.0.0.1:{s3.port}"]
    settings.CONFIGS_ALLOW_LOCAL_REMOTES = False
    register_secret(WRONG)
    write_tree(s3.root / "site-a", {"a.txt": b"a"})
    configs.add_job_config(resource, {"good": s3.remote(), "bad": s3.remote(secret_access_key=WRONG)})

    _, good = api.gql(QUERY, {"r": str(resource.pk), "n": "good"}, token=acme_token)
    _, bad = api.gql(QUERY, {"r": str(resource.pk), "n": "bad"}, token=acme_token)

    assert good["data"]["testJobConfig"]["ok"] is True, good
    assert good["data"]["testJobConfig"]["entries"] == 1
    assert good["data"]["testJobConfig"]["durationMs"] > 0
    assert bad["data"]["testJobConfig"]["ok"] is False, bad
    assert "403" in bad["data"]["testJobConfig"]["message"] or "Signature" in bad["data"]["testJobConfig"]["message"]
    assert WRONG not in json.dumps(bad)
    assert s3.password not in json.dumps(good)
    # Read and forgotten: no result of a check stays behind in the results table.
    assert not TaskResult.objects.filter(task_name="jobs.check_remote").exists()


def test_the_admins_test_connection_action_shows_the_workers_answer(worker, s3, admin_client, resource, settings):
    settings.JOBS_EGRESS_ALLOW = [f"127.0.0.1:{s3.port}"]
    settings.CONFIGS_ALLOW_LOCAL_REMOTES = False
    write_tree(s3.root / "site-b", {"b.txt": b"b"})
    configs.add_job_config(resource, {"store": s3.remote()})
    remote = RemoteConfig.objects.get(resource=resource, name="store")

    response = admin_client.post(
        "/admin/configs/remoteconfig/",
        {"action": "test_connection", "_selected_action": [remote.pk]},
        follow=True,
    )

    shown = [str(m) for m in response.context["messages"]]
    assert shown == [f"store (resource {resource.pk}): ok: {len(list(s3.root.iterdir()))} entries at the top of store:"]
    assert s3.password not in response.content.decode()
