"""Redis behind Sentinel (pointscene/core/sentinel.py): the primary is SIGKILLed while jobs fire every minute.
The sentinels promote the replica; the broker, RedBeat and the run locks follow it. Afterwards every slot has
exactly one row, a run or a MISSED, none doubled, and runs go on within a bounded time (printed)."""

from datetime import timedelta

import pytest

from jobs.models import JobHistory, RunStatus
from tests.faults.cluster import (
    assert_nothing_in_flight,
    assert_one_row_per_slot,
    clear_of_boundary,
    create_job,
    describe_rows,
    distribution,
    next_boundary,
    now,
    sleep_until,
)
from tests.faults.sentinels import SentinelSet, sentinel_env

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

JOBS = 4
# Runs must start again this soon after the primary dies (failover ~2-5 s, then each client's reconnect).
RESUME_WITHIN = timedelta(seconds=75)


@pytest.fixture
def sentinels():
    found = SentinelSet()
    try:
        found.start()
        yield found
    finally:
        found.stop()


def test_it_runs_every_slot_once_when_the_redis_primary_dies(cluster, sentinels, endpoints, api, acme_token, instance):
    clear_of_boundary(25)
    job_ids = [create_job(api, acme_token, instance, endpoints.url("/ok"), name=f"job-{i}") for i in range(JOBS)]
    # The cluster's processes use the Sentinel set for everything; beat builds the schedule from the database.
    cluster.env.update(sentinel_env(sentinels))
    cluster.start_worker("w1")
    cluster.start_worker("w2")
    cluster.start_beat("beat-a")
    first = next_boundary(now())
    b1 = first + timedelta(minutes=1)
    b3 = first + timedelta(minutes=3)

    # The primary dies 2 s before the second slot, while beat publishes that slot's messages.
    sleep_until(b1 - timedelta(seconds=2))
    killed_at = now()
    sentinels.kill_primary()
    cluster.note("primary SIGKILLed")
    old = sentinels.primary_port
    cluster.wait_until(lambda: sentinels.current_primary_port() != old, 30, "the sentinels to promote the replica")
    promoted_at = now()
    cluster.note(f"replica promoted after {(promoted_at - killed_at).total_seconds():.1f} s")

    sleep_until(b3 + timedelta(seconds=3))

    def settled() -> bool:
        rows = JobHistory.objects.filter(job_id__in=job_ids, scheduled_for__gte=first, scheduled_for__lte=b3)
        return rows.count() == JOBS * 4 and not rows.filter(status__in=[RunStatus.QUEUED, RunStatus.RUNNING]).exists()

    cluster.wait_until(settled, 120, "a finished row for every slot")
    rows = assert_one_row_per_slot(job_ids, first, b3)
    assert_nothing_in_flight(job_ids)
    print("outcomes:", dict(distribution(rows.values())))

    # Every row is a run that succeeded or a slot recorded MISSED: nothing failed for want of Redis.
    unexplained = [
        r
        for r in rows.values()
        if r.status not in (RunStatus.SUCCEEDED, RunStatus.MISSED)
        or (
            r.status == RunStatus.MISSED
            and "missed" not in (r.error or "").lower()
            and "coalesced" not in (r.error or "").lower()
        )
    ]
    assert not unexplained, describe_rows(unexplained)
    # Runs went on: the first run to start after the failure, and the slots after it all ran.
    resumed = JobHistory.objects.filter(job_id__in=job_ids, started_at__gt=killed_at).order_by("started_at").first()
    assert resumed is not None
    print(f"first run started {(resumed.started_at - killed_at).total_seconds():.1f} s after the primary died")
    assert resumed.started_at - killed_at < RESUME_WITHIN
    for slot in (first + timedelta(minutes=2), b3):
        assert all(rows[(j, slot)].status == RunStatus.SUCCEEDED for j in job_ids), describe_rows(
            [rows[(j, slot)] for j in job_ids]
        )
    assert not cluster.unexpected_exits()
