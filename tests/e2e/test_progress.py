"""A long sync seen while it runs: a real worker syncs 24 MiB throttled by rclone's own RCLONE_BWLIMIT, and the API
shows its progress rising and its ETA falling, and its log growing through signedLogUrl, before the run ends with
totals equal to what reached the destination."""

import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from jobs import services
from tests.fixtures.long_sync import FILES, local_sync_job, throttled_worker
from tests.fixtures.rclone import read_tree, write_tree

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

RUN = """query($id: ID!) { getScheduledJobHistory(jobHistoryId: $id) {
  status success heartbeatAt signedLogUrl
  progress { step bytesDone bytesTotal filesDone filesTotal etaSeconds speed updatedAt }
} }"""


@pytest.fixture(scope="module")
def worker(request) -> Iterator[dict]:
    yield from throttled_worker(request, "3M")


def test_it_shows_a_running_syncs_progress_eta_and_log_as_it_goes(
    worker, api, acme_token, instance, resource, settings, tmp_path
):
    settings.CONFIGS_ALLOW_LOCAL_REMOTES = True
    src, dst = tmp_path / "src", tmp_path / "dst"
    write_tree(src, FILES)
    job = local_sync_job(instance, resource, src, dst)
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
