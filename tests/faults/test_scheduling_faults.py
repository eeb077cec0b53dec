"""Every slot of every job gets exactly one row, whatever dies on the way: the active beat, a worker, Redis (flushed,
then killed and started empty), or every beat for minutes. Real processes, real PostgreSQL and Redis; the
assertions read JobHistory afterwards.

Each test spans a few minute boundaries (about 3-4 minutes each); run with `pytest -m faults`.
"""

from collections import Counter
from datetime import datetime, timedelta

import pytest

from jobs.models import JobHistory, RunStatus
from tests.faults.cluster import (
    BEAT_ACQUIRED,
    GRACE,
    LOCK_TIMEOUT,
    SWEEP,
    assert_nothing_in_flight,
    assert_one_row_per_slot,
    category,
    clear_of_boundary,
    create_job,
    describe_rows,
    distribution,
    distribution_by_slot,
    minute_slots,
    next_boundary,
    now,
    sleep_until,
    slot_rows,
)
from tests.fixtures.redbeat import entry_job_ids

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

JOBS = 50
# After the last checked slot: a slot whose message was lost is re-sent by the sweeper once it is GRACE late.
SETTLE = GRACE + 3 * SWEEP + 60


def first_slot(not_before: datetime) -> datetime:
    """The first minute boundary at or after `not_before`."""
    boundary = next_boundary(not_before - timedelta(microseconds=1))
    return boundary if boundary >= not_before else boundary + timedelta(minutes=1)


def entries_back(job_ids: set[int]) -> bool:
    found = entry_job_ids()
    return job_ids <= found["hashes"] and job_ids <= found["members"]


def report(cluster, rows) -> None:
    print(f"\nstatus distribution over {len(rows)} (job, slot) rows: {dict(distribution(rows.values()))}")
    print(distribution_by_slot(rows))
    print("timeline:")
    for when, what in cluster.events:
        print(f"  {when.isoformat(timespec='seconds')} {what}")


def slot_rows_first(job_ids, first, last) -> dict:
    return {key: found[0] for key, found in slot_rows(job_ids, first, last).items()}


def test_it_runs_every_slot_once_through_beat_worker_and_redis_faults(cluster, endpoints, api, acme_token, instance):
    cluster.start(workers=3, beats=2)
    clear_of_boundary()
    job_ids = [
        create_job(api, acme_token, instance, endpoints.url("/ok"), name=f"minute-{i}", catchup=5) for i in range(JOBS)
    ]
    assert entries_back(set(job_ids))
    # Every slot from the first one after the jobs exist is checked, the ones during the takeover included.
    first = next_boundary(now())
    # What goes wrong during the faults is collected, so that the rows are still looked at and reported.
    problems: list[str] = []

    # 1. The active beat dies (SIGKILL: it cannot release its lock); the standby takes over once the lock lapses
    # (a slot that came due meanwhile fires late, within the misfire grace, so it still runs).
    active = cluster.active_beat()
    assert active is not None, cluster.logs()
    standby = next(m.name for m in cluster.beats() if m.name != active)
    assert BEAT_ACQUIRED not in cluster.members[standby].output()
    cluster.kill(active)
    taken_over_by = cluster.wait_for_active_beat(other_than=active, timeout=LOCK_TIMEOUT + 30)
    assert taken_over_by == standby
    assert BEAT_ACQUIRED in cluster.members[standby].output()
    cluster.note(f"{standby} took over the lock")
    cluster.restart(active)  # back, as the standby

    b1 = first_slot(now() + timedelta(seconds=10))
    b2, b3 = b1 + timedelta(minutes=1), b1 + timedelta(minutes=2)
    cluster.note(f"{JOBS} jobs; slots checked {first.isoformat()} .. {b3.isoformat()}")

    # 2. A worker dies holding B1's runs (beat publishes a few seconds ahead, with the slot as ETA, and workers
    # reserve ETA messages): those messages stay unacknowledged in a dead consumer; the sweeper re-sends the slots.
    sleep_until(b1 - timedelta(seconds=3))
    doomed = cluster.members["w2"]
    killed_pids = cluster.kill("w2")
    held = cluster.reserved_runs(doomed, b1)
    cluster.note(f"w2 had reserved the B1 runs of {len(held)} jobs")
    sleep_until(b1 + timedelta(seconds=5))
    cluster.restart("w2")

    # 3. Redis loses everything: schedule entries, queued messages, locks, the reconciled marker. Beat notices the
    # vanished marker and rebuilds every active job's entry from the database.
    sleep_until(b1 + timedelta(seconds=40))
    cluster.flushall()
    cluster.try_wait_until(
        lambda: entries_back(set(job_ids)), 60, "every job's RedBeat entry back after the FLUSHALL", problems
    )

    # 4. redis-server itself dies and comes back empty: every connection of every process breaks.
    sleep_until(b2 + timedelta(seconds=30))
    cluster.restart_redis(down_seconds=3)
    cluster.try_wait_until(
        lambda: entries_back(set(job_ids)), 60, "every job's RedBeat entry back after the Redis restart", problems
    )

    # Afterwards: one row per (job, slot), nothing left in flight.
    sleep_until(b3 + timedelta(seconds=3))
    slots = len(minute_slots(first, b3))

    def settled():
        in_flight = JobHistory.objects.filter(job_id__in=job_ids, status__in=[RunStatus.QUEUED, RunStatus.RUNNING])
        rows = JobHistory.objects.filter(job_id__in=job_ids, scheduled_for__gte=first, scheduled_for__lte=b3)
        return not in_flight.exists() and rows.count() == JOBS * slots

    cluster.try_wait_until(settled, SETTLE, "a row for every slot and nothing in flight", problems)
    problems += cluster.unexpected_exits()
    report(cluster, slot_rows_first(job_ids, first, b3))
    assert not problems, "\n".join(problems)

    rows = assert_one_row_per_slot(job_ids, first, b3)
    assert_nothing_in_flight(job_ids)
    # Every row that did not succeed is explained by a fault: a run on the killed worker ended "worker lost", or a
    # slot nothing could start in time was recorded MISSED (saying so).
    unexplained = []
    for row in rows.values():
        if row.status == RunStatus.SUCCEEDED:
            continue
        if row.status == RunStatus.FAILED and (row.error or "").startswith("worker lost"):
            pid = int((row.worker or ":0").rsplit(":", 1)[1])
            if pid in killed_pids:
                continue
        if row.status == RunStatus.MISSED and any(w in (row.error or "").lower() for w in ("missed", "coalesced")):
            continue
        unexplained.append(row)
    assert not unexplained, f"rows no fault explains:\n{describe_rows(unexplained)}"
    # The runs the killed worker had reserved were not lost: each slot has its row (checked above), and it ran
    # (re-sent by the sweeper once late) or is MISSED, not left without an outcome.
    late = {j: rows[(j, b1)] for j in held}
    print(f"B1 runs reserved by the killed worker: {len(held)}; their outcomes: {dict(distribution(late.values()))}")
    assert all(r.status in (RunStatus.SUCCEEDED, RunStatus.MISSED) for r in late.values()), describe_rows(late.values())
    counts = distribution(rows.values())
    # The faults cost at most a few slots, not the schedule: most runs happened.
    assert counts[RunStatus.SUCCEEDED] >= len(rows) * 0.5, dict(counts)
    # After the last fault, every job runs on time again.
    assert {category(rows[(j, b3)]) for j in job_ids} == {RunStatus.SUCCEEDED}, distribution_by_slot(rows)


def test_it_records_the_slots_of_a_scheduler_outage_as_missed_or_coalesced(
    cluster, endpoints, api, acme_token, instance
):
    cluster.start(workers=2, beats=2)
    # Beat publishes a few seconds ahead: jobs made just before a boundary might get it before the beats die.
    clear_of_boundary(12)
    strict = create_job(api, acme_token, instance, endpoints.url("/ok"), name="no-catchup", catchup=0)
    lenient = create_job(api, acme_token, instance, endpoints.url("/ok"), name="catchup-10", catchup=10)
    jobs = [strict, lenient]

    # Both beats die before the jobs' first slot; nothing fires G1 or G2. They come back when G2 is GRACE + a few
    # seconds late, and fire G3 on time.
    for beat in [m.name for m in cluster.beats()]:
        cluster.kill(beat)
    down_at = now()
    g1 = next_boundary(down_at)
    g2, g3 = g1 + timedelta(minutes=1), g1 + timedelta(minutes=2)
    sleep_until(g2 + timedelta(seconds=GRACE + 5))
    cluster.start_beat("beat-a")
    cluster.start_beat("beat-b")
    cluster.note(f"beats back after {(now() - down_at).total_seconds():.0f} s down; gap {g1.isoformat()}, {g2}")

    sleep_until(g3 + timedelta(seconds=3))
    cluster.wait_until(
        lambda: (
            JobHistory.objects.filter(job_id__in=jobs, scheduled_for__gte=g1, scheduled_for__lte=g3)
            .exclude(status__in=[RunStatus.QUEUED, RunStatus.RUNNING])
            .count()
            == 6
        ),
        SETTLE,
        "a finished row for each of both jobs' 3 slots",
    )
    rows = assert_one_row_per_slot(jobs, g1, g3)
    assert_nothing_in_flight(jobs)
    everything = describe_rows(JobHistory.objects.filter(job_id__in=jobs).order_by("job_id", "scheduled_for"))
    print("\n" + everything)
    assert JobHistory.objects.filter(job_id__in=jobs, scheduled_for__lt=g1).count() == 0, everything

    # catchupWindowMinutes=0: each slot of the gap is one MISSED row that says it was missed.
    for slot in (g1, g2):
        row = rows[(strict, slot)]
        assert row.status == RunStatus.MISSED, everything
        assert "missed" in row.error.lower(), everything
        assert row.started_at is None, everything
    assert rows[(strict, g3)].status == RunStatus.SUCCEEDED, everything

    # catchupWindowMinutes=10: the gap runs once, as its latest slot (late), and the older one is coalesced into it.
    late = rows[(lenient, g2)]
    assert late.status == RunStatus.SUCCEEDED, everything
    assert late.started_at - g2 > timedelta(seconds=GRACE), everything
    older = rows[(lenient, g1)]
    assert older.status == RunStatus.MISSED, everything
    assert "coalesced" in older.error.lower(), everything
    assert older.started_at is None, everything
    assert rows[(lenient, g3)].status == RunStatus.SUCCEEDED, everything
    runs = Counter(r.status for r in rows.values() if r.job_id == lenient)
    assert runs == {RunStatus.SUCCEEDED: 2, RunStatus.MISSED: 1}, everything
