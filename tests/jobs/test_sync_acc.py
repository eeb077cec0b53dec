"""`acc` remotes in sync steps: the real rclone, through the worker's loopback WebDAV bridge, against the fake
APS server (tests/fakes/aps.py), run by jobs.running.runner in process with real PostgreSQL (or SQLite) and Redis."""

import json
import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from configs import services as configs
from configs.crypto import decrypt_json
from configs.models import RemoteConfig
from jobs.models import RunStatus
from jobs.sync.acc.tokens import StoredToken
from tests.fakes.aps import FakeAps
from tests.fakes.drive import FakeDrive
from tests.fakes.tls_proxy import InterceptingProxy
from tests.fixtures.rclone import read_tree, write_tree
from tests.jobs.test_sync import counters, log_of, make_job, run

pytestmark = pytest.mark.usefixtures("clean_redis", "local_remotes_allowed")

MODIFIED = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
TREE = {
    "Drawings/A-101.pdf": os.urandom(3000),
    "Drawings/A-102.pdf": os.urandom(4000),
    "Drawings/Details/D-1.dwg": os.urandom(5000),
    "Specs/spec.txt": b"concrete: C30/37\n",
}


@pytest.fixture
def aps(settings) -> Iterator[FakeAps]:
    with FakeAps(page_limit_cap=2, min_part_size=1024) as fake:
        settings.APS_BASE_URL = fake.base_url
        settings.APS_CLIENT_ID = fake.client_id
        settings.APS_CLIENT_SECRET = fake.client_secret
        yield fake
        assert fake.unhandled == []
        assert fake.tip_calls == 0  # names, sizes and times come from the listings' included versions


def acc_remote(aps: FakeAps, token: dict) -> dict:
    return {"type": "acc", "token": json.dumps(token), "hub_id": aps.hub_id, "project_id": aps.project_id}


def put_tree(aps: FakeAps, tree: dict[str, bytes], under: str = "Project Files") -> None:
    for path, content in tree.items():
        aps.put_file(f"{under}/{path}", content, modified=MODIFIED)


def stored_token(resource, name: str = "acc") -> dict:
    row = RemoteConfig.objects.get(resource=resource, name=name)
    return json.loads(decrypt_json(row.settings_encrypted)["token"])


def test_it_syncs_an_acc_folder_to_a_local_folder_then_transfers_nothing(instance, resource, aps, tmp_path):
    put_tree(aps, TREE)
    dst = tmp_path / "dst"
    configs.add_job_config(resource, {"acc": acc_remote(aps, aps.issue_token()), "here": {"type": "local"}})
    job = make_job(instance, resource, "acc:/Project Files", f"here:{dst}")

    first = run(job)

    assert first.status == RunStatus.SUCCEEDED, first.error
    assert read_tree(dst) == TREE
    assert counters(first)["filesTransferred"] == len(TREE)
    assert counters(first)["bytesTransferred"] == sum(map(len, TREE.values()))
    second = run(job)
    assert second.status == RunStatus.SUCCEEDED, second.error
    assert counters(second)["filesTransferred"] == 0
    assert counters(second)["checks"] == len(TREE)


def test_it_syncs_local_files_into_acc_as_new_items_new_versions_and_deleted_versions(
    instance, resource, aps, tmp_path
):
    put_tree(aps, {"Upload/old.txt": b"old", "Upload/keep.txt": b"keep"})
    src = tmp_path / "src"
    write_tree(src, {"keep.txt": b"keep, edited", "new/deep/file.bin": os.urandom(2500)})
    configs.add_job_config(resource, {"acc": acc_remote(aps, aps.issue_token()), "here": {"type": "local"}})
    job = make_job(instance, resource, f"here:{src}", "acc:Project Files/Upload")

    result = run(job)

    assert result.status == RunStatus.SUCCEEDED, result.error
    assert aps.list_paths() == ["Project Files/Upload/keep.txt", "Project Files/Upload/new/deep/file.bin"]
    assert aps.read_file("Project Files/Upload/keep.txt") == b"keep, edited"
    assert aps.read_file("Project Files/Upload/new/deep/file.bin") == (src / "new/deep/file.bin").read_bytes()
    assert aps.versions("Project Files/Upload/keep.txt") == ["versions:autodesk.bim360:File"] * 2
    assert aps.versions("Project Files/Upload/old.txt") == [
        "versions:autodesk.bim360:File",
        "versions:autodesk.core:Deleted",
    ]
    assert counters(result)["deletes"] == 1

    # A file deleted in ACC and then added again locally becomes a new version of the same item.
    (src / "old.txt").write_bytes(b"back again")
    again = run(job)
    assert again.status == RunStatus.SUCCEEDED, again.error
    assert aps.read_file("Project Files/Upload/old.txt") == b"back again"
    assert aps.versions("Project Files/Upload/old.txt")[-1] == "versions:autodesk.bim360:File"


def test_it_syncs_acc_to_an_s3_bucket(instance, resource, aps, s3_server):
    put_tree(aps, TREE)
    (s3_server.root / "mirror").mkdir()
    configs.add_job_config(resource, {"acc": acc_remote(aps, aps.issue_token()), "bucket": s3_server.remote()})

    result = run(make_job(instance, resource, "acc:Project Files", "bucket:mirror/site-a"))

    assert result.status == RunStatus.SUCCEEDED, result.error
    assert read_tree(s3_server.root / "mirror" / "site-a") == TREE


def test_it_syncs_acc_to_google_drive(instance, resource, aps, tmp_path, monkeypatch):
    put_tree(aps, TREE)
    drive = FakeDrive()
    with InterceptingProxy(drive, workdir=tmp_path / "proxy") as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # the bridge and APS are on loopback
        monkeypatch.setenv("RCLONE_CA_CERT", str(proxy.ca_path))
        monkeypatch.setenv("RCLONE_DRIVE_PACER_MIN_SLEEP", "1ms")
        configs.add_job_config(
            resource,
            {
                "acc": acc_remote(aps, aps.issue_token()),
                "gdrive": {"type": "drive", "token": json.dumps(drive.issue_token())},
            },
        )

        result = run(make_job(instance, resource, "acc:/Project Files", "gdrive:ACC backup"))

    assert result.status == RunStatus.SUCCEEDED, result.error
    assert {p: drive.read_file(p) for p in drive.list_paths()} == {f"ACC backup/{k}": v for k, v in TREE.items()}
    assert drive.unhandled == []


# The bridge refreshes tokens on its own threads, with their own database connections: the data must be committed.
@pytest.mark.django_db(transaction=True)
def test_it_refreshes_an_expired_access_token_once_and_stores_the_new_one(instance, resource, aps, tmp_path):
    put_tree(aps, TREE)
    old = aps.issue_token(expired=True)
    configs.add_job_config(resource, {"acc": acc_remote(aps, old), "here": {"type": "local"}})
    job = make_job(instance, resource, "acc:Project Files", f"here:{tmp_path / 'dst'}")

    first = run(job)

    assert first.status == RunStatus.SUCCEEDED, first.error
    assert [r["grant_type"] for r in aps.token_requests] == ["refresh_token"]
    new = stored_token(resource)
    assert new["refresh_token"] != old["refresh_token"]
    assert new["access_token"] != old["access_token"]
    text = log_of(first)
    assert "ACC token refreshed; the new one is stored (encrypted)" in text
    for secret in (old["access_token"], old["refresh_token"], new["access_token"], new["refresh_token"]):
        assert secret not in text
        assert secret not in RemoteConfig.objects.get(resource=resource, name="acc").settings_encrypted

    # The next run uses the stored token as it is: no second refresh, and never the spent refresh token.
    assert run(job).status == RunStatus.SUCCEEDED
    assert len(aps.token_requests) == 1
    assert aps.refresh_reuse_attempts == 0


def test_it_survives_a_storm_of_429s_and_5xx(instance, resource, aps, tmp_path):
    put_tree(aps, TREE)
    configs.add_job_config(resource, {"acc": acc_remote(aps, aps.issue_token()), "here": {"type": "local"}})
    aps.fail_next(6, status=429, retry_after=0)
    aps.fail_next(3, status=503)

    result = run(make_job(instance, resource, "acc:Project Files", f"here:{tmp_path / 'dst'}"))

    assert result.status == RunStatus.SUCCEEDED, result.error
    assert read_tree(tmp_path / "dst") == TREE
    assert len(aps.faults) == 9
    assert "APS requests were retried" in log_of(result)


def test_it_fails_with_autodesks_error_when_aps_refuses(instance, resource, aps, tmp_path):
    put_tree(aps, TREE)
    token = aps.issue_token()
    configs.add_job_config(resource, {"acc": acc_remote(aps, token), "here": {"type": "local"}})
    aps.fail_next(1000, status=403)

    result = run(make_job(instance, resource, "acc:Project Files", f"here:{tmp_path / 'dst'}"))

    assert result.status == RunStatus.FAILED
    assert "ACC: APS answered 403" in result.error
    assert token["access_token"] not in log_of(result)


@pytest.mark.django_db(transaction=True)
def test_two_workers_refreshing_at_once_send_the_refresh_token_once(resource, aps):
    old = aps.issue_token(expired=True)
    configs.add_job_config(resource, {"acc": acc_remote(aps, old)})
    # Two runs of jobs of the same resource, on two workers, read the same stored token.
    sources = [StoredToken(resource.pk, "acc", json.dumps(old)) for _ in range(2)]
    got: list[str] = []
    start = threading.Barrier(2)

    def refresh(source):
        start.wait()
        got.append(source.access_token())

    threads = [threading.Thread(target=refresh, args=(s,)) for s in sources]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len(aps.token_requests) == 1
    assert aps.refresh_reuse_attempts == 0
    assert got[0] == got[1] == stored_token(resource)["access_token"]


def test_it_lists_a_tree_of_two_thousand_files_in_a_hundred_folders_completely(instance, resource, tmp_path, settings):
    with FakeAps(page_limit_cap=200) as aps:
        settings.APS_BASE_URL = aps.base_url
        tree = {f"Big/f{i // 20:03d}/file{i:04d}.txt": f"{i}".encode() for i in range(2000)}
        # One folder with more than a page of files, too.
        tree |= {f"Big/wide/w{i:03d}.txt": b"w" for i in range(450)}
        put_tree(aps, tree)
        configs.add_job_config(resource, {"acc": acc_remote(aps, aps.issue_token()), "here": {"type": "local"}})

        result = run(make_job(instance, resource, "acc:Project Files/Big", f"here:{tmp_path / 'dst'}"))

        assert result.status == RunStatus.SUCCEEDED, result.error
        assert read_tree(tmp_path / "dst") == {k.removeprefix("Big/"): v for k, v in tree.items()}
        pages = [c for c in aps.calls if c.path.endswith("/contents")]
        assert len(pages) > 102  # every folder once, and the wide one over three pages
        assert aps.tip_calls == 0
        assert aps.unhandled == []


def test_it_uploads_a_large_file_in_parts_of_at_least_five_mib(instance, resource, tmp_path, settings):
    settings.APS_UPLOAD_PART_BYTES = 5 * 1024 * 1024
    big = os.urandom(12 * 1024 * 1024)
    write_tree(tmp_path / "src", {"model.rvt": big})
    with FakeAps() as aps:  # the fake enforces S3's 5 MiB minimum for every part but the last
        settings.APS_BASE_URL = aps.base_url
        configs.add_job_config(resource, {"acc": acc_remote(aps, aps.issue_token()), "here": {"type": "local"}})

        result = run(make_job(instance, resource, f"here:{tmp_path / 'src'}", "acc:Project Files/Models"))

        assert result.status == RunStatus.SUCCEEDED, result.error
        assert aps.read_file("Project Files/Models/model.rvt") == big
        part_puts = [c for c in aps.calls if c.method == "PUT"]
        assert len(part_puts) == 3
        assert aps.unhandled == []
