"""rclone.sync with Google Drive, the most requested target, proven on loopback: the real rclone drive backend
talks HTTPS to the fake Drive v3 (tests/fakes/drive.py) through the intercepting proxy (tests/fakes/tls_proxy.py),
which rclone reaches the way an operator would configure one: HTTPS_PROXY and RCLONE_CA_CERT in the worker's
environment, passed on to rclone."""

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.files.storage import default_storage

from configs import services as configs
from configs.crypto import decrypt_json
from configs.models import RemoteConfig
from jobs.models import RunStatus
from tests.fakes.drive import FakeDrive
from tests.fakes.tls_proxy import InterceptingProxy
from tests.fixtures.rclone import read_tree, write_tree
from tests.jobs.test_sync import FILES, counters, log_of, make_job, run

pytestmark = pytest.mark.usefixtures("clean_redis", "local_remotes_allowed")


@pytest.fixture
def drive(tmp_path, monkeypatch) -> Iterator[FakeDrive]:
    fake = FakeDrive(page_size_cap=2)  # several pages even for a small tree
    with InterceptingProxy(fake, workdir=tmp_path / "proxy") as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        monkeypatch.setenv("RCLONE_CA_CERT", str(proxy.ca_path))
        # The fake answers at once; rclone's pacer need not wait between calls.
        monkeypatch.setenv("RCLONE_DRIVE_PACER_MIN_SLEEP", "1ms")
        yield fake
    assert fake.unhandled == []


def stored_token(resource) -> dict:
    row = RemoteConfig.objects.get(resource=resource, name="gdrive")
    return json.loads(decrypt_json(row.settings_encrypted)["token"])


def test_it_syncs_to_drive_refreshing_an_expired_token_and_storing_the_new_one_encrypted(
    instance, resource, tmp_path, drive
):
    src = tmp_path / "src"
    write_tree(src, FILES)
    old = drive.issue_token(expired=True)
    configs.add_job_config(
        resource,
        {
            "here": {"type": "local"},
            "gdrive": {"type": "drive", "client_id": "cid", "client_secret": "csecret", "token": json.dumps(old)},
        },
    )
    job = make_job(instance, resource, f"here:{src}", "gdrive:backup/site-a")

    first = run(job)

    assert first.status == RunStatus.SUCCEEDED, first.error
    assert {p: drive.read_file(p) for p in drive.list_paths()} == {f"backup/site-a/{k}": v for k, v in FILES.items()}
    assert counters(first)["filesTransferred"] == len(FILES)
    new = stored_token(resource)
    assert new["access_token"] == drive.access_token != old["access_token"]
    assert new["refresh_token"] == drive.refresh_token != old["refresh_token"]
    row = RemoteConfig.objects.get(resource=resource, name="gdrive")
    for secret in (new["access_token"], new["refresh_token"], "csecret"):
        assert secret not in row.settings_encrypted
    text = log_of(first)
    assert "refreshed its token; the new one is stored (encrypted)" in text
    for secret in (old["access_token"], old["refresh_token"], new["access_token"], new["refresh_token"], "csecret"):
        assert secret not in text

    # The next run starts from the stored token: no refresh, no reuse of the spent refresh token, nothing to copy.
    second = run(job)

    assert second.status == RunStatus.SUCCEEDED, second.error
    assert counters(second)["filesTransferred"] == 0
    assert drive.refresh_reuse_attempts == 0
    assert stored_token(resource) == new


def test_it_downloads_a_drive_folder_across_result_pages(instance, resource, tmp_path, drive):
    for name, content in FILES.items():
        drive.put_file(f"Projects/{name}", content)
    configs.add_job_config(resource, {"gdrive": {"type": "drive", "token": json.dumps(drive.issue_token())}})
    job = make_job(instance, resource, "gdrive:Projects", "resource:from-drive")

    result = run(job)

    assert result.status == RunStatus.SUCCEEDED, result.error
    assert read_tree(Path(default_storage.path(f"resources/{resource.pk}/from-drive"))) == FILES
