"""Three simulated machines (tests/fixtures/machines.py): A runs web and beat, B and C each run a worker. They
share only PostgreSQL, Redis and an S3 server on loopback; each has its own disk. Twenty jobs fire every minute
(http.request, resource.input, rclone.sync from a `resource:` area, one bisync with changes on both sides between
runs). Both workers run them, every run's log downloads from A through signedLogUrl, bisync never resyncs after its
first run, and when B is SIGKILLed mid-run its runs end FAILED (worker lost) and the next slots run on C."""

import time
from datetime import datetime, timedelta

import pytest
import requests
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from configs import services as configs
from jobs import services
from jobs.models import FrequencyType, JobHistory, RunStatus, RunTrigger
from pointscene.core.storage import resource_area
from tests.faults.cluster import LEASE, SWEEP, clear_of_boundary, next_boundary, now, sleep_until
from tests.fixtures.machines import Machine, s3_environment
from tests.fixtures.processes import process_env
from tests.fixtures.rclone import read_tree, write_tree
from tests.jobs.test_metrics import sample

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

RESYNC = "--resync merges both sides"
SLOTS_BEFORE_KILL = 2


@pytest.fixture
def machines(s3_storage, moto_s3, tmp_path, settings):
    settings.CONFIGS_ALLOW_LOCAL_REMOTES = True
    settings.JOBS_HTTP_ALLOW_PRIVATE = True
    shared = {**process_env(), **s3_environment(moto_s3.endpoint), "CONFIGS_ALLOW_LOCAL_REMOTES": "1"}
    a, b, c = (Machine(name, shared, tmp_path / "machines") for name in ("a", "b", "c"))
    try:
        a.web()
        b.worker()
        c.worker()
        a.beat()
        yield a, b, c
    except BaseException:
        for machine in (a, b, c):
            print(machine.logs())
        raise
    finally:
        for machine in (a, b, c):
            machine.stop()


def every_minute(instance, name: str, task: dict):
    return services.create_job(
        instance=instance,
        workflow={"tasks": [{"name": name, **task}]},
        frequency_type=FrequencyType.CRON_BASED,
        cron_expression="* * * * *",
        name=name,
    )


def put_in_area(resource, files: dict[str, bytes]) -> None:
    for name, content in files.items():
        default_storage.save(resource_area(resource.pk) + name, ContentFile(content))


def area_tree(resource, folder: str) -> dict[str, bytes]:
    prefix = resource_area(resource.pk) + folder
    found: dict[str, bytes] = {}

    def walk(path: str) -> None:
        folders, files = default_storage.listdir(path)
        for name in files:
            with default_storage.open(path + name, "rb") as f:
                found[(path + name)[len(prefix) :]] = f.read()
        for sub in folders:
            walk(path + sub + "/")

    walk(prefix)
    return found


def wait_for_slot(job_ids: list[int], slot: datetime, timeout: float = 90) -> list[JobHistory]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = list(JobHistory.objects.filter(job_id__in=job_ids, scheduled_for=slot))
        if len(runs) >= len(job_ids) and all(r.status not in (RunStatus.QUEUED, RunStatus.RUNNING) for r in runs):
            return runs
        time.sleep(0.5)
    raise AssertionError(f"the runs of slot {slot} did not all finish within {timeout} s")


def scraped_count(machine: Machine, expected: int, settle: float = 10) -> int:
    """The machine's count of succeeded scheduled runs, once it reaches `expected` or `settle` s have passed (a
    run's row is written a moment before its counter moves)."""
    deadline = time.monotonic() + settle
    while True:
        metrics = machine.scrape()
        found = int(sample(metrics, "pointscene_runs_total", status="succeeded", trigger=RunTrigger.SCHEDULE.lower()))
        if found == expected or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def machine_of(run: JobHistory) -> str:
    return (run.worker or "").split("@", 1)[0]


def test_two_worker_machines_share_the_jobs_and_the_one_left_carries_on(
    machines, instance, resource, acme_client, api, http_server, webdav_server
):
    a, b, c = machines
    configs.add_job_config(resource, {"dav": webdav_server.remote()})
    put_in_area(resource, {"src/one.txt": b"one", "src/deep/two.txt": b"two" * 1000})
    put_in_area(resource, {"bi/base.txt": b"base", "bi/gone-on-dav.txt": b"soon deleted on the dav side"})
    (webdav_server.root / "bi").mkdir()
    rid = str(resource.pk)

    clear_of_boundary(20)
    jobs = []
    for i in range(8):
        jobs.append(
            every_minute(instance, f"ping-{i}", {"type": "http.request", "args": {"url": http_server.url("/ok")}})
        )
    for i in range(4):
        jobs.append(every_minute(instance, f"list-{i}", {"type": "resource.input", "args": {"resourceId": rid}}))
    for i in range(7):
        args = {"resourceId": rid, "remotes": ["resource:src", f"dav:copy-{i}"]}
        jobs.append(every_minute(instance, f"copy-{i}", {"type": "rclone.sync", "args": args}))
    bisync = every_minute(
        instance,
        "both-ways",
        {"type": "rclone.sync", "args": {"resourceId": rid, "remotes": ["resource:bi", "dav:bi"], "mode": "bisync"}},
    )
    jobs.append(bisync)
    assert len(jobs) == 20
    ids = [job.pk for job in jobs]
    first = next_boundary(now())

    # Slots 1 and 2: both workers take runs; bisync sides change between them.
    slot = first
    slot_runs: dict[datetime, list[JobHistory]] = {}
    for n in range(SLOTS_BEFORE_KILL):
        slot_runs[slot] = wait_for_slot(ids, slot)
        if n == 0:
            put_in_area(resource, {"bi/from-area.txt": b"A"})
            (webdav_server.root / "bi" / "gone-on-dav.txt").unlink()
            write_tree(webdav_server.root / "bi", {"from-dav.txt": b"D"})
        else:
            default_storage.delete(resource_area(resource.pk) + "bi/base.txt")
            write_tree(webdav_server.root / "bi", {"from-dav.txt": b"D2"})
        slot += timedelta(minutes=1)
    earlier = [run for runs in slot_runs.values() for run in runs]
    assert {machine_of(run) for run in earlier} == {"b", "c"}, [r.worker for r in earlier]
    assert all(run.status == RunStatus.SUCCEEDED for run in earlier), [(r.pk, r.error) for r in earlier if r.error]

    # Each worker machine's own metrics count exactly the runs it did.
    for machine in (b, c):
        done = JobHistory.objects.filter(
            job_id__in=ids, status=RunStatus.SUCCEEDED, worker__startswith=f"{machine.name}@"
        )
        assert done.count() > 0
        assert scraped_count(machine, done.count()) == done.count(), machine.name

    # Mid-run, B is SIGKILLed: slow manual runs occupy both machines' processes, B's are lost.
    slow = every_minute(instance, "slow", {"type": "http.request", "args": {"url": http_server.url("/slow")}})
    services.update_job(slow, active=False, overlap_policy="ALLOW")
    manual = [services.run_now(slow).pk for _ in range(4)]
    deadline = time.monotonic() + 30
    while JobHistory.objects.filter(pk__in=manual, status=RunStatus.RUNNING).count() < 4:
        assert time.monotonic() < deadline, "the slow runs did not all start"
        time.sleep(0.2)
    assert slot - now() > timedelta(seconds=LEASE + 3 * SWEEP), "too close to the next slot to see B's runs lost"
    on_b = [r.pk for r in JobHistory.objects.filter(pk__in=manual) if machine_of(r) == "b"]
    assert on_b, "no slow run landed on B"
    b.kill("worker")
    deadline = time.monotonic() + LEASE + 6 * SWEEP
    while JobHistory.objects.filter(pk__in=on_b, status=RunStatus.RUNNING).exists():
        assert time.monotonic() < deadline, "B's runs were not found lost"
        time.sleep(0.5)
    http_server.release.set()
    for run in JobHistory.objects.filter(pk__in=on_b):
        assert run.status == RunStatus.FAILED
        assert run.error.startswith("worker lost"), run.error

    # The next slot: every job runs once, on C.
    sleep_until(slot)
    after_kill = wait_for_slot(ids, slot, timeout=120)
    assert {machine_of(run) for run in after_kill} == {"c"}
    assert all(run.status == RunStatus.SUCCEEDED for run in after_kill), [r.error for r in after_kill if r.error]
    scheduled = JobHistory.objects.filter(job_id__in=ids, trigger=RunTrigger.SCHEDULE, scheduled_for__lte=slot)
    # One run per job and slot, none doubled, none lost.
    assert scheduled.count() == 20 * (SLOTS_BEFORE_KILL + 1)
    assert len({(run.job_id, run.scheduled_for) for run in scheduled}) == scheduled.count()

    # The machine left counts all it did; with what B counted before it died, the fleet's scrapes add up to the rows.
    on_c = JobHistory.objects.filter(job_id__in=ids, status=RunStatus.SUCCEEDED, worker__startswith="c@").count()
    assert scraped_count(c, on_c) == on_c
    assert on_c + sum(1 for r in earlier if machine_of(r) == "b") == scheduled.count()

    # bisync: the area and the dav side agree, the deletion on dav held, and only the first run resynced.
    expected = {"from-area.txt": b"A", "from-dav.txt": b"D2"}
    assert area_tree(resource, "bi/") == expected
    assert read_tree(webdav_server.root / "bi") == expected

    # Every run's log, written by B or C into the shared storage, downloads from A through signedLogUrl.
    token = api.token(acme_client, "instance-*")["access_token"]
    query = (
        f'query {{ getInstanceJobHistory(instanceId: "{instance.pk}", page: {{ first: 100 }}) '
        "{ items { id jobId signedLogUrl } } }"
    )
    answer = requests.post(
        f"{a.url}/graphql", json={"query": query}, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    assert answer.status_code == 200, answer.text
    items = {int(item["id"]): item for item in answer.json()["data"]["getInstanceJobHistory"]["items"]}
    bisync_logs = []
    for run in scheduled:
        url = items[run.pk]["signedLogUrl"]
        assert url.startswith(a.url), url
        log = requests.get(url, timeout=30)
        assert log.status_code == 200, (run.pk, log.status_code)
        assert f"Run {run.pk} of job {run.job_id}" in log.text
        assert f"on {machine_of(run)}@" in log.text
        if run.job_id == bisync.pk:
            bisync_logs.append((run.scheduled_for, log.text))
    resyncs = [RESYNC in text for _, text in sorted(bisync_logs)]
    assert resyncs == [True] + [False] * SLOTS_BEFORE_KILL

    # Nothing went to a machine's own disk: logs and areas are in the shared storage.
    for machine in (a, b, c):
        assert machine.files_on_disk() == [], machine.name
