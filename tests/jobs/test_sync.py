"""rclone.sync / sync.files steps, run by jobs.running.runner in process, with the real rclone binary against real
servers on loopback (rclone serve s3/sftp/webdav) and local folders, real PostgreSQL (or SQLite) and the
session's private Redis."""

import os
import tempfile
import time
from pathlib import Path

import pytest
from django.core.files.storage import default_storage

from configs import services as configs
from configs.crypto import decrypt_json
from configs.models import RemoteConfig
from jobs import services
from jobs.models import FrequencyType, JobHistory, RunStatus
from jobs.running import runner
from tests.fixtures.rclone import read_tree, write_tree
from tests.jobs.test_runner import in_thread, wait_until

pytestmark = pytest.mark.usefixtures("clean_redis", "local_remotes_allowed")

FILES = {"a.txt": b"alpha\n", "docs/b.txt": b"bravo" * 100, "docs/deep/c.bin": os.urandom(70_000)}


def make_job(instance, resource, source: str, destination: str, task_type: str = "rclone.sync", **args):
    task = {
        "name": "sync",
        "type": task_type,
        "args": {"resourceId": str(resource.pk), "remotes": [source, destination]},
    }
    task["args"].update(args)
    return services.create_job(
        instance=instance,
        workflow={"tasks": [task]},
        frequency_type=FrequencyType.CRON_BASED,
        cron_expression="0 3 * * *",
        name="sync test",
    )


def run(job) -> JobHistory:
    queued = services.run_now(job)
    runner.run_queued(queued.pk)
    return JobHistory.objects.get(pk=queued.pk)


def log_of(run_: JobHistory) -> str:
    with default_storage.open(run_.log_path, "rb") as f:
        return f.read().decode()


def counters(run_: JobHistory) -> dict:
    return run_.steps[0]["counters"]


@pytest.fixture
def src(tmp_path) -> Path:
    folder = tmp_path / "src"
    write_tree(folder, FILES)
    return folder


def test_it_syncs_a_folder_to_s3_then_transfers_nothing_the_second_time(instance, resource, src, s3_server):
    configs.add_job_config(resource, {"here": {"type": "local"}, "bucket": s3_server.remote()})
    (s3_server.root / "backup").mkdir()
    job = make_job(instance, resource, f"here:{src}", "bucket:backup/project", verbose=True)

    first = run(job)

    assert first.status == RunStatus.SUCCEEDED, first.error
    assert read_tree(s3_server.root / "backup" / "project") == FILES
    assert counters(first)["filesTransferred"] == 3
    assert counters(first)["bytesTransferred"] == sum(map(len, FILES.values()))
    assert counters(first)["exitCode"] == 0
    text = log_of(first)
    assert "rclone info: docs/deep/c.bin: Copied (new)" in text
    assert "rclone stats: 3 files" in text
    assert s3_server.password not in text

    second = run(job)

    assert second.status == RunStatus.SUCCEEDED, second.error
    assert counters(second)["filesTransferred"] == 0
    assert counters(second)["checks"] == 3


def test_it_propagates_changes_and_deletions(instance, resource, src, tmp_path):
    dst = tmp_path / "dst"
    configs.add_job_config(resource, {"here": {"type": "local"}})
    job = make_job(instance, resource, f"here:{src}", f"here:{dst}")
    assert run(job).status == RunStatus.SUCCEEDED
    (src / "a.txt").write_bytes(b"changed, and longer\n")
    (src / "docs" / "b.txt").unlink()

    again = run(job)

    assert again.status == RunStatus.SUCCEEDED, again.error
    assert read_tree(dst) == read_tree(src)
    assert counters(again)["filesTransferred"] == 1
    assert counters(again)["deletes"] == 1
    # Without `verbose`, the log has what a bare rclone prints (stats, warnings, errors), not a line per file.
    text = log_of(again)
    assert "rclone stats: 1 files" in text
    assert "Copied" not in text


def test_it_applies_excludes_includes_and_the_inputs_excludes(instance, resource, src, tmp_path):
    write_tree(src, {".log/job-1/run-1.log": b"log", "pics/x.jpg": b"jpg", "pics/y.png": b"png"})
    dst = tmp_path / "dst"
    configs.add_job_config(resource, {"here": {"type": "local"}})
    job = services.create_job(
        instance=instance,
        workflow={
            "tasks": [
                {"name": "input", "type": "resource.input", "args": {"id": str(resource.pk), "exclude": [".log/**"]}},
                {
                    "name": "sync",
                    "type": "sync.files",
                    "inputs": "input",
                    "args": {
                        "id": str(resource.pk),
                        "remotes": [f"here:{src}", f"here:{dst}"],
                        "include": ["*.jpg", "*.txt", "*.log"],
                        "exclude": ["docs/**"],
                    },
                },
            ]
        },
        frequency_type=FrequencyType.INTERVAL_BASED,
        interval_minutes=60,
    )

    result = run(job)

    assert result.status == RunStatus.SUCCEEDED, result.error
    assert sorted(read_tree(dst)) == ["a.txt", "pics/x.jpg"]


def test_it_changes_nothing_on_a_dry_run_but_reports_what_it_would_do(instance, resource, src, tmp_path):
    dst = tmp_path / "dst"
    dst.mkdir()
    write_tree(dst, {"stale.txt": b"old"})
    configs.add_job_config(resource, {"here": {"type": "local"}})
    job = make_job(instance, resource, f"here:{src}", f"here:{dst}", dryRun=True)

    result = run(job)

    assert result.status == RunStatus.SUCCEEDED, result.error
    assert read_tree(dst) == {"stale.txt": b"old"}
    assert "(dry run)" in log_of(result)
    assert "Skipped copy as --dry-run is set" in log_of(result)


def test_it_copies_without_deleting_and_moves_by_removing_the_source(instance, resource, src, tmp_path):
    dst = tmp_path / "dst"
    write_tree(dst, {"keep.txt": b"keep"})
    configs.add_job_config(resource, {"here": {"type": "local"}})

    assert run(make_job(instance, resource, f"here:{src}", f"here:{dst}", mode="copy")).status == RunStatus.SUCCEEDED
    assert read_tree(dst) == {**FILES, "keep.txt": b"keep"}

    moved = tmp_path / "moved"
    assert run(make_job(instance, resource, f"here:{src}", f"here:{moved}", mode="move")).status == RunStatus.SUCCEEDED
    assert read_tree(moved) == FILES
    assert read_tree(src) == {}


def test_it_syncs_from_sftp_with_the_password_obscured_for_rclone(instance, resource, sftp_server, tmp_path):
    write_tree(sftp_server.root, FILES)
    dst = tmp_path / "dst"
    configs.add_job_config(resource, {"box": sftp_server.remote(), "here": {"type": "local"}})

    result = run(make_job(instance, resource, "box:", f"here:{dst}", checksum=True, transfers=2, checkers=2))

    assert result.status == RunStatus.SUCCEEDED, result.error
    assert read_tree(dst) == FILES
    assert sftp_server.password not in log_of(result)


def test_it_syncs_both_ways_with_bisync(instance, resource, src, webdav_server):
    configs.add_job_config(resource, {"here": {"type": "local"}, "dav": webdav_server.remote()})
    (webdav_server.root / "shared").mkdir()
    job = make_job(instance, resource, f"here:{src}", "dav:shared", mode="bisync")

    first = run(job)
    assert first.status == RunStatus.SUCCEEDED, first.error
    assert read_tree(webdav_server.root / "shared") == FILES
    assert "--resync merges both sides" in log_of(first)

    (src / "from-local.txt").write_bytes(b"L")
    write_tree(webdav_server.root / "shared", {"from-dav.txt": b"D"})
    (webdav_server.root / "shared" / "a.txt").unlink()
    second = run(job)

    assert second.status == RunStatus.SUCCEEDED, second.error
    expected = {k: v for k, v in FILES.items() if k != "a.txt"} | {"from-local.txt": b"L", "from-dav.txt": b"D"}
    assert read_tree(src) == expected
    assert read_tree(webdav_server.root / "shared") == expected


def test_it_fails_clearly_on_wrong_credentials_without_logging_them(instance, resource, src, s3_server):
    wrong = "definitely-not-the-secret-1234"
    configs.add_job_config(resource, {"here": {"type": "local"}, "bucket": s3_server.remote(secret_access_key=wrong)})
    (s3_server.root / "backup").mkdir()

    result = run(make_job(instance, resource, f"here:{src}", "bucket:backup"))

    assert result.status == RunStatus.FAILED
    assert result.error.startswith("step 'sync' failed: rclone exited with code")
    assert result.steps[0]["counters"]["exitCode"] != 0
    assert result.steps[0]["counters"]["errors"] >= 1
    text = log_of(result)
    assert "SignatureDoesNotMatch" in text or "AccessDenied" in text or "403" in text
    assert wrong not in text
    assert wrong not in result.error
    assert read_tree(s3_server.root / "backup") == {}


def test_it_fails_when_the_workflow_names_a_remote_the_resource_does_not_have(instance, resource, src):
    configs.add_job_config(resource, {"here": {"type": "local"}})

    result = run(make_job(instance, resource, f"here:{src}", "nowhere:backup"))

    assert result.status == RunStatus.FAILED
    assert "has no remote named 'nowhere'" in result.error


def test_it_refuses_at_run_time_an_endpoint_that_became_private(instance, resource, src, s3_server, settings):
    configs.add_job_config(resource, {"bucket": s3_server.remote(), "here": {"type": "local"}})
    job = make_job(instance, resource, "bucket:backup", f"here:{src}")
    settings.CONFIGS_ALLOW_LOCAL_REMOTES = False

    result = run(job)

    assert result.status == RunStatus.FAILED
    assert "not allowed" in result.error


def rclone_pids_using(config: Path) -> list[int]:
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if str(config).encode() in cmdline.read_bytes():
                pids.append(int(cmdline.parent.name))
        except OSError:
            pass
    return pids


@pytest.mark.django_db(transaction=True)
def test_it_kills_rclone_when_the_run_is_cancelled(instance, resource, tmp_path, monkeypatch):
    big = tmp_path / "big"
    write_tree(big, {"big.bin": os.urandom(4 << 20)})
    configs.add_job_config(resource, {"here": {"type": "local"}})
    # Operators tune rclone with RCLONE_* variables; this one makes the copy take about a minute.
    monkeypatch.setenv("RCLONE_BWLIMIT", "64k")
    job = make_job(instance, resource, f"here:{big}", f"here:{tmp_path / 'out'}")
    # Other processes on the machine (a killed worker, another test session) may have left step folders behind.
    before = set(Path(tempfile.gettempdir()).glob("rclone-step-*/rclone.conf"))
    queued = services.run_now(job)
    worker = in_thread(runner.run_queued, queued.pk)

    # While rclone runs, its config exists only encrypted, in a folder only the worker's user can enter.
    deadline = time.monotonic() + 20
    while not (configs_seen := sorted(set(Path(tempfile.gettempdir()).glob("rclone-step-*/rclone.conf")) - before)):
        assert time.monotonic() < deadline, "rclone did not start"
        time.sleep(0.05)
    config = configs_seen[0]
    text = config.read_text()
    folder_mode = config.parent.stat().st_mode & 0o777
    wait_until(lambda: rclone_pids_using(config))
    pids = rclone_pids_using(config)

    services.cancel_run(JobHistory.objects.get(pk=queued.pk))
    worker.join(timeout=15)

    assert not worker.is_alive()
    result = JobHistory.objects.get(pk=queued.pk)
    assert result.status == RunStatus.CANCELLED
    assert text.startswith("# Encrypted rclone configuration File")
    assert "local" not in text
    assert folder_mode == 0o700
    assert pids
    assert not any(Path(f"/proc/{pid}").exists() for pid in pids)
    assert not config.parent.exists()
    assert not (tmp_path / "out" / "big.bin").exists()


def test_it_stores_back_a_token_rclone_refreshed_unless_the_remote_changed(resource):
    token = '{"access_token":"old-access","token_type":"Bearer","refresh_token":"r1","expiry":"2026-01-01T00:00:00Z"}'
    newer = '{"access_token":"new-access","token_type":"Bearer","refresh_token":"r2","expiry":"2026-01-01T01:00:00Z"}'
    configs.add_job_config(resource, {"gdrive": {"type": "drive", "token": token}})

    assert configs.store_refreshed_token(resource.pk, "gdrive", token, newer) is True
    row = RemoteConfig.objects.get(resource=resource, name="gdrive")
    assert decrypt_json(row.settings_encrypted)["token"] == newer
    assert "new-access" not in row.settings_encrypted
    # A run that started with the old token must not overwrite what is stored now.
    assert configs.store_refreshed_token(resource.pk, "gdrive", token, token) is False
    assert decrypt_json(RemoteConfig.objects.get(pk=row.pk).settings_encrypted)["token"] == newer


def test_it_syncs_into_the_resources_own_storage_area_which_resource_input_then_lists(instance, resource, src):
    configs.add_job_config(resource, {"here": {"type": "local"}})
    job = services.create_job(
        instance=instance,
        workflow={
            "tasks": [
                {
                    "name": "pull",
                    "type": "rclone.sync",
                    "args": {"id": str(resource.pk), "remotes": [f"here:{src}", "resource:incoming"]},
                },
                {"name": "list", "type": "resource.input", "inputs": "pull", "args": {"id": str(resource.pk)}},
            ]
        },
        frequency_type=FrequencyType.INTERVAL_BASED,
        interval_minutes=60,
    )

    result = run(job)

    assert result.status == RunStatus.SUCCEEDED, result.error
    area = Path(default_storage.location) / "resources" / str(resource.pk) / "incoming"
    assert read_tree(area) == FILES
    assert result.steps[1]["counters"]["files"] == len(FILES)


@pytest.mark.parametrize("location", ["resource:../other", "here:/a/../../etc", "here:..", "resource:a/../../b"])
def test_it_refuses_paths_that_climb_out_of_a_remote(instance, resource, location):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="climb out"):
        make_job(instance, resource, location, "here:/x")
