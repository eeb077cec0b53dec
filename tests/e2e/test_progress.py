"""A long sync seen while it runs: a real worker syncs 24 MiB throttled by rclone's own RCLONE_BWLIMIT, and the API
shows its progress rising and its ETA falling, and its log growing through signedLogUrl, before the run ends with
totals equal to what reached the destination."""

import os
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from configs import services as configs
from jobs import services
from jobs.models import FrequencyType
from tests.fixtures.rclone import read_tree, write_tree

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

FILES = {f"part-{i}.bin": os.urandom(4 << 20) for i in range(6)}  # 24 MiB
RUN = """query($id: ID!) { getScheduledJobHistory(jobHistoryId: $id) {
  status success heartbeatAt signedLogUrl
  progress { step bytesDone bytesTotal filesDone filesTotal etaSeconds speed updatedAt }
} }"""


@pytest.fixture(scope="module")
def worker(request) -> Iterator[dict]:
    """The module's worker: progress every second, rclone held to 3 MiB/s so the sync takes about 8 s."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("JOBS_PROGRESS_SECONDS", "1")
        env.setenv("RCLONE_BWLIMIT", "3M")
        env.setenv("CONFIGS_ALLOW_LOCAL_REMOTES", "1")
        yield request.getfixturevalue("processes")


def test_it_shows_a_running_syncs_progress_eta_and_log_as_it_goes(
    worker, api, acme_token, instance, resource, settings, tmp_path
):
    settings.CONFIGS_ALLOW_LOCAL_REMOTES = True
    src, dst = tmp_path / "src", tmp_path / "dst"
    write_tree(src, FILES)
    configs.add_job_config(resource, {"here": {"type": "local"}})
    task = {
        "name": "sync",
        "type": "rclone.sync",
        "args": {"resourceId": str(resource.pk), "remotes": [f"here:{src}", f"here:{dst}"]},
    }
    job = services.create_job(
        instance=instance,
        workflow={"tasks": [task]},
        frequency_type=FrequencyType.CRON_BASED,
        cron_expression="0 3 * * *",
        active=False,
    )
    run = services.run_now(job)

    seen, log_sizes = [], []
    deadline = time.monotonic() + 120
    while True:
        _, body = api.gql(RUN, {"id": str(run.pk)}, token=acme_token)
        answer = body["data"]["getScheduledJobHistory"]
        if answer["status"] == "RUNNING":
            assert answer["heartbeatAt"]
            if answer["progress"]:
                seen.append(answer["progress"])
            if answer["signedLogUrl"]:
                log_sizes.append(len(api.http.get(urlsplit(answer["signedLogUrl"]).path).getvalue()))
        elif answer["status"] not in ("QUEUED",):
            break
        assert time.monotonic() < deadline, f"run {run.pk} did not end: {answer}"
        time.sleep(0.4)

    assert answer["success"] is True, answer
    done = [p["bytesDone"] for p in seen]
    rising = sorted(set(done))
    assert len(rising) >= 3, seen  # at least three different amounts, each saved while the run was going
    assert done == sorted(done), "progress never goes back"
    etas = [p["etaSeconds"] for p in seen if p["etaSeconds"] is not None]
    assert etas, seen
    assert min(etas) < max(etas), etas
    assert etas.index(min(etas)) > etas.index(max(etas)), etas  # it falls, not rises
    assert len(set(log_sizes)) >= 2, log_sizes  # the log so far, growing, while the run went on
    assert log_sizes == sorted(log_sizes)

    final = answer["progress"]
    copied = read_tree(dst)
    assert copied == FILES
    assert final["filesDone"] == final["filesTotal"] == len(copied)
    assert final["bytesDone"] == final["bytesTotal"] == sum(len(b) for b in copied.values())
    whole = api.http.get(urlsplit(answer["signedLogUrl"]).path).getvalue()
    assert len(whole) >= max(log_sizes)
    assert b"succeeded" in whole
