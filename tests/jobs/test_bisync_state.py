"""bisync's listings kept with the job (jobs.sync.state): any worker continues a bisync job without --resync, and
nothing of it stays on a worker's disk. Real rclone bisync against rclone serve webdav on loopback."""

import tempfile
from pathlib import Path

import pytest

from configs import services as configs
from jobs import services
from jobs.models import BisyncListings, OverlapPolicy, RunStatus
from jobs.running import runner
from jobs.running.locks import RunLock
from jobs.sync.state import pack, task_key, unpack
from tests.fixtures.rclone import read_tree, write_tree
from tests.jobs.test_sync import FILES, log_of, make_job, run

pytestmark = pytest.mark.usefixtures("clean_redis", "local_remotes_allowed")

RESYNC = "--resync merges both sides"


@pytest.fixture
def src(tmp_path) -> Path:
    folder = tmp_path / "src"
    write_tree(folder, FILES)
    return folder


@pytest.fixture
def on_machine(monkeypatch, tmp_path):
    """Runs what follows with `name`'s own temporary folder as the worker's disk (tempfile's default folder)."""

    def switch(name: str) -> Path:
        disk = tmp_path / f"disk-{name}"
        disk.mkdir(exist_ok=True)
        monkeypatch.setattr(tempfile, "tempdir", str(disk))
        return disk

    return switch


def test_it_continues_a_bisync_job_on_another_worker_without_resync(instance, resource, src, webdav_server, on_machine):
    configs.add_job_config(resource, {"here": {"type": "local"}, "dav": webdav_server.remote()})
    shared = webdav_server.root / "shared"
    shared.mkdir()
    job = make_job(instance, resource, f"here:{src}", "dav:shared", mode="bisync")

    disk_b = on_machine("b")
    first = run(job)
    assert first.status == RunStatus.SUCCEEDED, first.error
    assert RESYNC in log_of(first)
    assert list(disk_b.iterdir()) == []  # nothing of the step stays on B's disk

    # A deletion on one side is the change a --resync would undo (it would copy the file back).
    (shared / "a.txt").unlink()
    (src / "from-local.txt").write_bytes(b"L")
    write_tree(shared, {"from-dav.txt": b"D"})
    disk_c = on_machine("c")
    second = run(job)

    assert second.status == RunStatus.SUCCEEDED, second.error
    assert RESYNC not in log_of(second)
    expected = {k: v for k, v in FILES.items() if k != "a.txt"} | {"from-local.txt": b"L", "from-dav.txt": b"D"}
    assert read_tree(src) == expected
    assert read_tree(shared) == expected
    assert list(disk_c.iterdir()) == []
    stored = BisyncListings.objects.get(job=job)
    assert stored.stored_by_run == second.pk
    assert stored.task == task_key("sync")


def test_it_stores_the_listings_of_a_failed_run_and_resyncs_until_one_succeeds(instance, resource, src, webdav_server):
    configs.add_job_config(resource, {"here": {"type": "local"}, "dav": webdav_server.remote()})
    job = make_job(instance, resource, f"here:{src}", "dav:missing-folder/below", mode="bisync")

    failed = run(job)

    assert failed.status == RunStatus.FAILED
    listings = BisyncListings.objects.get(job=job)
    assert listings.stored_by_run == failed.pk
    (webdav_server.root / "missing-folder" / "below").mkdir(parents=True)
    retried = run(job)
    assert retried.status == RunStatus.SUCCEEDED, retried.error
    assert RESYNC in log_of(retried)  # the failed first run left no "initialised" mark
    assert RESYNC not in log_of(run(job))


def test_it_deletes_the_listings_with_the_job(instance, resource, src, webdav_server):
    configs.add_job_config(resource, {"here": {"type": "local"}, "dav": webdav_server.remote()})
    (webdav_server.root / "shared").mkdir()
    job = make_job(instance, resource, f"here:{src}", "dav:shared", mode="bisync")
    assert run(job).status == RunStatus.SUCCEEDED
    assert BisyncListings.objects.filter(job=job).count() == 1

    services.delete_job(job)

    assert BisyncListings.objects.count() == 0


def test_it_runs_a_bisync_job_one_run_at_a_time_even_when_runs_may_overlap(instance, resource, src, webdav_server):
    configs.add_job_config(resource, {"here": {"type": "local"}, "dav": webdav_server.remote()})
    (webdav_server.root / "shared").mkdir()
    job = make_job(instance, resource, f"here:{src}", "dav:shared", mode="bisync")
    services.update_job(job, overlap_policy=OverlapPolicy.ALLOW)
    job.refresh_from_db()
    plain = make_job(instance, resource, f"here:{src}", "dav:shared")
    services.update_job(plain, overlap_policy=OverlapPolicy.ALLOW)
    plain.refresh_from_db()
    assert job.runs_one_at_a_time
    assert not plain.runs_one_at_a_time

    held = RunLock(job.pk)
    assert held.acquire()  # a run of the job going on another worker
    try:
        queued = services.run_now(job)
        runner.run_queued(queued.pk)
        queued.refresh_from_db()
    finally:
        held.release()

    assert queued.status == RunStatus.SKIPPED
    assert "still going" in queued.error


def test_it_unpacks_regular_files_only_below_the_workdir(tmp_path):
    workdir = tmp_path / "workdir"
    (workdir / "sub").mkdir(parents=True)
    (workdir / "sub" / "path1.lst").write_text("listing")
    (workdir / "link").symlink_to("/etc/passwd")

    target = tmp_path / "target"
    target.mkdir()
    unpack(pack(workdir), target)

    assert (target / "sub" / "path1.lst").read_text() == "listing"
    assert not (target / "link").exists()
