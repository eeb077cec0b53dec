"""The worker's side of testJobConfig (jobs.sync.remote_check), called in process with the real rclone against the
loopback fakes: rclone serve s3/webdav, the fake Drive (over TLS through the intercepting proxy) and the fake APS.
Loopback servers are let through as an operator would let an own S3 through (JOBS_EGRESS_ALLOW), not by opening
private destinations, except for Drive, whose proxy needs the single-tenant switch as in tests/jobs/test_sync_drive.py.
"""

import json

import pytest

from configs import services as configs
from configs.models import RemoteConfig
from jobs.ops.outbound import tenant_policy
from jobs.sync.remote_check import check_remote
from tests.fakes.aps import TOP_FOLDERS, FakeAps
from tests.fixtures.leaks import register_secret
from tests.fixtures.rclone import write_tree
from tests.jobs.test_sync_drive import drive  # noqa: F401 - the fake Drive behind its TLS proxy

pytestmark = pytest.mark.usefixtures("clean_redis")

WRONG = "definitely-not-the-secret-5678"


@pytest.fixture
def operator_allows(settings):
    """Lets `host:port` pairs through, the operator's exception for private destinations (JOBS_EGRESS_ALLOW)."""
    settings.CONFIGS_ALLOW_LOCAL_REMOTES = False
    settings.JOBS_EGRESS_ALLOW = []

    def allow(port: int) -> None:
        settings.JOBS_EGRESS_ALLOW = [*settings.JOBS_EGRESS_ALLOW, f"127.0.0.1:{port}"]

    return allow


def check(resource, name: str) -> dict:
    return check_remote(RemoteConfig.objects.get(resource=resource, name=name).pk)


def test_it_lists_the_root_of_a_good_s3_remote(resource, s3_server, operator_allows):
    operator_allows(s3_server.port)
    write_tree(s3_server.root / "site-a", {"a.txt": b"a"})
    write_tree(s3_server.root / "site-b", {"b.txt": b"b"})
    configs.add_job_config(resource, {"bucket": s3_server.remote()})

    answer = check(resource, "bucket")

    assert answer["ok"] is True, answer
    assert answer["entries"] == 2  # the two buckets
    assert answer["message"] == "ok: 2 entries at the top of bucket:"
    assert answer["duration_ms"] > 0


def test_it_says_what_s3_said_about_a_wrong_secret_and_not_the_secret(resource, s3_server, operator_allows):
    operator_allows(s3_server.port)
    register_secret(WRONG)
    configs.add_job_config(resource, {"bucket": s3_server.remote(secret_access_key=WRONG)})

    answer = check(resource, "bucket")

    assert answer["ok"] is False
    assert answer["message"].startswith("rclone exited with code")
    assert "403" in answer["message"] or "SignatureDoesNotMatch" in answer["message"]
    assert WRONG not in json.dumps(answer)


def test_it_lists_a_good_webdav_remote_and_refuses_a_wrong_password(resource, webdav_server, operator_allows):
    operator_allows(webdav_server.port)
    register_secret(WRONG)
    write_tree(webdav_server.root, {"one.txt": b"1", "two/three.txt": b"3"})
    configs.add_job_config(resource, {"dav": webdav_server.remote(), "bad": webdav_server.remote(**{"pass": WRONG})})

    good, bad = check(resource, "dav"), check(resource, "bad")

    assert (good["ok"], good["entries"]) == (True, 2)
    assert bad["ok"] is False
    assert "401" in bad["message"] or "Unauthorized" in bad["message"]
    assert WRONG not in json.dumps(bad)


def test_it_lists_the_top_folders_of_an_acc_project_and_names_autodesks_error(resource, settings, operator_allows):
    with FakeAps() as aps:
        settings.APS_BASE_URL = aps.base_url
        aps.put_file("Project Files/Drawings/A-101.pdf", b"pdf")
        aps.put_file("Plans/site.dwg", b"dwg")
        token = aps.issue_token()
        register_secret(token["access_token"])
        good = {"type": "acc", "token": json.dumps(token), "hub_id": aps.hub_id, "project_id": aps.project_id}
        configs.add_job_config(resource, {"acc": good, "gone": good | {"project_id": "b.no-such-project"}})

        found, missing = check(resource, "acc"), check(resource, "gone")

    assert (found["ok"], found["entries"]) == (True, len(TOP_FOLDERS)), found  # "Project Files", "Plans"
    assert missing["ok"] is False
    assert "ACC:" in missing["message"]
    assert token["access_token"] not in json.dumps([found, missing])


def test_it_checks_a_drive_remote_over_tls_and_reports_a_spent_token(resource, drive, settings):  # noqa: F811
    settings.CONFIGS_ALLOW_LOCAL_REMOTES = True  # the fake Drive sits behind the worker's HTTPS_PROXY
    spent = drive.issue_token()
    current = drive.issue_token()  # rotates: the first pair no longer works, as after a revocation
    for token in (spent, current):
        register_secret(token["access_token"])
        register_secret(token["refresh_token"])
    drive.put_file("backup/a.txt", b"a")

    def remote(token: dict) -> dict:
        return {"type": "drive", "client_id": "cid", "client_secret": "csecret", "token": json.dumps(token)}

    configs.add_job_config(resource, {"gdrive": remote(current), "old": remote(spent)})

    good, bad = check(resource, "gdrive"), check(resource, "old")

    assert (good["ok"], good["entries"]) == (True, 1), good  # the folder "backup"
    assert bad["ok"] is False
    assert "invalid_grant" in bad["message"] or "401" in bad["message"], bad
    for token in (spent, current):
        assert token["access_token"] not in json.dumps([good, bad])
        assert token["refresh_token"] not in json.dumps([good, bad])


def test_it_refuses_a_name_that_rebinds_to_loopback_without_connecting(resource, canary, fake_dns, operator_allows):
    fake_dns.set("dav.rebind.example.com", "93.184.215.14", "127.0.0.1")
    # Public for whoever looks first (a check when the config was stored), loopback for the connection.
    assert [str(a) for a in tenant_policy(allow_private=False).resolver("dav.rebind.example.com", 80)] == [
        "93.184.215.14"
    ]
    configs.add_job_config(resource, {"probe": {"type": "webdav", "url": f"http://dav.rebind.example.com:{canary.port}/"}})

    answer = check(resource, "probe")

    assert answer["ok"] is False
    assert "destination not allowed" in answer["message"]
    assert "CONFIGS_ALLOW_LOCAL_REMOTES=1" in answer["message"]


def test_it_answers_for_a_remote_deleted_meanwhile(resource, s3_server, operator_allows):
    operator_allows(s3_server.port)
    configs.add_job_config(resource, {"bucket": s3_server.remote()})
    remote_id = RemoteConfig.objects.get(resource=resource, name="bucket").pk
    configs.remove_job_config(resource, ["bucket"])

    assert check_remote(remote_id) == {
        "ok": False,
        "message": "the remote no longer exists",
        "entries": None,
        "duration_ms": 0,
    }
