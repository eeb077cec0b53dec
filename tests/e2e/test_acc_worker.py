"""ACC through a real worker process: a run-now job syncs an ACC project (the fake APS server) to a local folder
and back, the worker serving the project to rclone through its WebDAV bridge and refreshing the expired token
in its own process, under the shared lock."""

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from configs import services as configs
from configs.crypto import decrypt_json
from configs.models import RemoteConfig
from jobs import services
from jobs.models import FrequencyType, JobHistory, RunStatus
from tests.fakes.aps import FakeAps
from tests.fixtures.rclone import read_tree, write_tree

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

TREE = {"Drawings/A-101.pdf": os.urandom(30_000), "Drawings/sub/A-102.pdf": os.urandom(9_000), "notes.txt": b"n"}


@dataclass
class Stack:
    aps: FakeAps
    processes: dict


@pytest.fixture(scope="module")
def stack(request) -> Iterator[Stack]:
    """The fake APS, and the module's worker and beat started with it as their APS_BASE_URL (process_env copies
    os.environ when the processes start)."""
    with FakeAps(page_limit_cap=2, min_part_size=1024) as aps, pytest.MonkeyPatch.context() as env:
        env.setenv("APS_BASE_URL", aps.base_url)
        env.setenv("APS_CLIENT_ID", aps.client_id)
        env.setenv("APS_CLIENT_SECRET", aps.client_secret)
        env.setenv("CONFIGS_ALLOW_LOCAL_REMOTES", "1")
        yield Stack(aps, request.getfixturevalue("processes"))
        assert aps.unhandled == []
        assert aps.tip_calls == 0


def run_and_wait(job, timeout: float = 90) -> JobHistory:
    queued = services.run_now(job)
    deadline = time.monotonic() + timeout
    while True:
        run = JobHistory.objects.get(pk=queued.pk)
        if run.status not in (RunStatus.QUEUED, RunStatus.RUNNING):
            return run
        assert time.monotonic() < deadline, f"run {run.pk} still {run.status}"
        time.sleep(0.2)


def sync_job(instance, resource, source: str, destination: str):
    task = {
        "name": "sync",
        "type": "rclone.sync",
        "args": {"resourceId": str(resource.pk), "remotes": [source, destination]},
    }
    return services.create_job(
        instance=instance,
        workflow={"tasks": [task]},
        frequency_type=FrequencyType.CRON_BASED,
        cron_expression="0 3 * * *",
        active=False,
    )


def test_a_worker_syncs_acc_both_ways_refreshing_the_token_once(stack, instance, resource, settings, tmp_path):
    settings.CONFIGS_ALLOW_LOCAL_REMOTES = True
    aps = stack.aps
    for path, content in TREE.items():
        aps.put_file(f"Project Files/{path}", content)
    old = aps.issue_token(expired=True)
    acc = {"type": "acc", "token": json.dumps(old), "hub_id": aps.hub_id, "project_id": aps.project_id}
    configs.add_job_config(resource, {"acc": acc, "here": {"type": "local"}})
    dst = tmp_path / "dst"
    down = sync_job(instance, resource, "acc:Project Files", f"here:{dst}")

    first = run_and_wait(down)
    second = run_and_wait(down)

    assert first.status == RunStatus.SUCCEEDED, first.error
    assert read_tree(dst) == TREE
    assert first.steps[0]["counters"]["filesTransferred"] == len(TREE)
    assert second.status == RunStatus.SUCCEEDED, second.error
    assert second.steps[0]["counters"]["filesTransferred"] == 0
    assert [r["grant_type"] for r in aps.token_requests] == ["refresh_token"]
    assert aps.refresh_reuse_attempts == 0
    stored = json.loads(
        decrypt_json(RemoteConfig.objects.get(resource=resource, name="acc").settings_encrypted)["token"]
    )
    assert stored["refresh_token"] != old["refresh_token"]

    write_tree(dst, {"Drawings/new.pdf": b"new drawing", "notes.txt": b"notes, edited"})
    (dst / "Drawings" / "sub" / "A-102.pdf").unlink()
    up = sync_job(instance, resource, f"here:{dst}", "acc:Project Files")

    third = run_and_wait(up)

    assert third.status == RunStatus.SUCCEEDED, third.error
    assert aps.list_paths() == [
        "Project Files/Drawings/A-101.pdf",
        "Project Files/Drawings/new.pdf",
        "Project Files/notes.txt",
    ]
    assert aps.read_file("Project Files/notes.txt") == b"notes, edited"
    assert aps.versions("Project Files/Drawings/sub/A-102.pdf")[-1] == "versions:autodesk.core:Deleted"
    assert aps.refresh_reuse_attempts == 0
