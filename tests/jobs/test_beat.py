"""The beat side (jobs/scheduling/): JobSchedule's arithmetic and JSON form, and JobsScheduler firing job entries.

In-process, no beat or worker processes: the scheduler is built lazily (no setup_schedule, no HA lock) and
fire_jobs/tick are called with entries written by jobs.scheduling. Runs land as kombu messages in the Celery
queue on the session's private Redis, which every test starts with empty; they are read back from there.
"""

import json
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import redis
from django.conf import settings
from redbeat.decoder import to_timestamp

from jobs import services
from jobs.models import FrequencyType, ScheduledJob
from jobs.scheduling import reconcile
from jobs.scheduling.beat import JobsScheduler
from jobs.scheduling.entries import RUN_TASK, Decoder, Encoder, JobEntry
from jobs.scheduling.slots import MAX_CATCHUP, JobSchedule
from pointscene.celery import app
from tests.fixtures.redbeat import (
    assert_entry_matches,
    entry_job_ids,
    entry_key,
    queued_messages,
    redis_client,
    schedule_key,
    set_last_run,
    stored_entry,
)

pytestmark = pytest.mark.django_db

CRON = FrequencyType.CRON_BASED
INTERVAL = FrequencyType.INTERVAL_BASED
HELSINKI = ZoneInfo("Europe/Helsinki")


@pytest.fixture(autouse=True)
def _empty_redis(clean_redis):
    return clean_redis


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def now() -> datetime:
    return datetime.now(UTC)


# --------------------------------------------------------------------------- JobSchedule

ANCHOR = datetime(2025, 1, 1, 0, 0, 10, 500_000, tzinfo=UTC)

SCHEDULES = [
    pytest.param(JobSchedule("cron", cron="30 2 * * *", tz="UTC"), id="cron-utc"),
    pytest.param(JobSchedule("cron", cron="0 9 * * 1-5", tz="Europe/Helsinki"), id="cron-helsinki"),
    pytest.param(JobSchedule("cron", cron="@yearly", tz="America/New_York"), id="cron-nickname"),
    pytest.param(JobSchedule("interval", every_minutes=15, anchor=ANCHOR), id="interval"),
    pytest.param(
        JobSchedule("interval", every_minutes=7, anchor=datetime(2025, 6, 1, 12, 0, tzinfo=HELSINKI)),
        id="interval-local-anchor",
    ),
]


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_job_schedule_round_trips_through_json(schedule):
    data = schedule.to_json()
    text = json.dumps({"schedule": schedule}, cls=Encoder)

    assert json.loads(json.dumps(data)) == data
    again = JobSchedule.from_json(json.loads(json.dumps(data)))
    decoded = json.loads(text, cls=Decoder)["schedule"]
    for copy in (again, decoded):
        assert copy == schedule
        assert (copy.kind, copy.cron, copy.tz, copy.every_minutes, copy.anchor) == (
            schedule.kind,
            schedule.cron,
            schedule.tz,
            schedule.every_minutes,
            schedule.anchor,
        )
        start = utc(2025, 3, 29, 23, 59)
        assert [copy.next_after(start + timedelta(days=i)) for i in range(5)] == [
            schedule.next_after(start + timedelta(days=i)) for i in range(5)
        ]


def test_job_schedules_differ_when_any_part_differs():
    base = JobSchedule("cron", cron="30 2 * * *", tz="UTC")

    assert base == JobSchedule("cron", cron="30 2 * * *", tz="UTC")
    assert base != JobSchedule("cron", cron="30 2 * * *", tz="Europe/Helsinki")
    assert base != JobSchedule("cron", cron="31 2 * * *", tz="UTC")
    interval = JobSchedule("interval", every_minutes=15, anchor=ANCHOR)
    assert interval != JobSchedule("interval", every_minutes=16, anchor=ANCHOR)
    assert interval != JobSchedule("interval", every_minutes=15, anchor=ANCHOR + timedelta(seconds=1))


HOURLY = JobSchedule("cron", cron="0 * * * *", tz="UTC")
# Helsinki: the clock jumps 03:00 -> 04:00 on 2025-03-30 and repeats 03:00-04:00 on 2025-10-26.
HELSINKI_0330 = JobSchedule("cron", cron="30 3 * * *", tz="Europe/Helsinki")
EVERY_15 = JobSchedule("interval", every_minutes=15, anchor=ANCHOR)


@pytest.mark.parametrize(
    ("schedule", "last", "until", "expected"),
    [
        pytest.param(HOURLY, utc(2025, 5, 1, 10), utc(2025, 5, 1, 12, 30), utc(2025, 5, 1, 12), id="latest-of-several"),
        pytest.param(HOURLY, utc(2025, 5, 1, 10), utc(2025, 5, 1, 11), utc(2025, 5, 1, 11), id="until-inclusive"),
        pytest.param(HOURLY, utc(2025, 5, 1, 11), utc(2025, 5, 1, 11), None, id="last-exclusive"),
        pytest.param(HOURLY, utc(2025, 5, 1, 10), utc(2025, 5, 1, 10, 59, 59), None, id="none-yet"),
        pytest.param(HOURLY, utc(2025, 5, 1, 10, 0, 1), utc(2025, 5, 1, 11, 0, 1), utc(2025, 5, 1, 11), id="one"),
        pytest.param(
            HOURLY, utc(2025, 4, 1), utc(2025, 5, 1, 12, 30), utc(2025, 5, 1, 12), id="long-down-still-latest"
        ),
        pytest.param(
            HELSINKI_0330,
            utc(2025, 3, 29, 12),
            utc(2025, 3, 30, 2),
            utc(2025, 3, 30, 1, 0),  # 04:00 EEST: the skipped 03:30 runs once, as the clock jumps
            id="dst-gap",
        ),
        pytest.param(
            HELSINKI_0330,
            utc(2025, 10, 26, 0, 30),  # the first 03:30 (EEST) already ran
            utc(2025, 10, 26, 2),  # past the second 03:30 (EET, 01:30 UTC)
            None,
            id="dst-repeat-runs-once",
        ),
        pytest.param(
            HELSINKI_0330, utc(2025, 10, 25, 12), utc(2025, 10, 26, 2), utc(2025, 10, 26, 0, 30), id="dst-repeat-first"
        ),
        pytest.param(EVERY_15, ANCHOR, ANCHOR + timedelta(minutes=44), ANCHOR + timedelta(minutes=30), id="interval"),
        pytest.param(EVERY_15, ANCHOR, ANCHOR + timedelta(minutes=14, seconds=59), None, id="interval-none-yet"),
        pytest.param(EVERY_15, ANCHOR - timedelta(days=1), ANCHOR, None, id="interval-anchor-is-not-a-run"),
        pytest.param(
            EVERY_15,
            ANCHOR + timedelta(minutes=15),
            ANCHOR + timedelta(minutes=15),
            None,
            id="interval-last-exclusive",
        ),
    ],
)
def test_latest_due_picks_the_latest_slot_in_last_until(schedule, last, until, expected):
    assert schedule.latest_due(last, until) == expected


def test_latest_due_looks_back_at_most_max_catchup():
    until = utc(2025, 5, 10, 12, 30)

    assert HOURLY.latest_due(until - 3 * MAX_CATCHUP, until) == utc(2025, 5, 10, 12)
    # Yearly, last ran long ago, the latest slot older than the catch-up window: not run.
    yearly = JobSchedule("cron", cron="0 0 1 1 *", tz="UTC")
    assert yearly.latest_due(utc(2020, 1, 1), utc(2025, 5, 10)) is None
    assert yearly.latest_due(utc(2020, 1, 1), utc(2025, 1, 1, 0, 0, 1)) == utc(2025, 1, 1)


@pytest.mark.parametrize(
    ("schedule", "slot", "expected"),
    [
        (HOURLY, utc(2025, 5, 1, 11), True),
        (HOURLY, utc(2025, 5, 1, 11, 0, 1), False),
        (HOURLY, utc(2025, 5, 1, 11, 0, 0, 1), False),
        (HOURLY, utc(2025, 5, 1, 11, 30), False),
        (JobSchedule("cron", cron="0 9 * * *", tz="Europe/Helsinki"), utc(2025, 7, 1, 6), True),  # 09:00 EEST
        (JobSchedule("cron", cron="0 9 * * *", tz="Europe/Helsinki"), utc(2025, 7, 1, 9), False),
        (JobSchedule("cron", cron="0 9 * * *", tz="Europe/Helsinki"), utc(2025, 1, 15, 7), True),  # 09:00 EET
        (HELSINKI_0330, utc(2025, 3, 30, 1, 0), True),  # the skipped 03:30: as the clock jumps to 04:00 EEST
        (HELSINKI_0330, utc(2025, 3, 30, 1, 30), False),
        (HELSINKI_0330, utc(2025, 10, 26, 0, 30), True),
        (HELSINKI_0330, utc(2025, 10, 26, 1, 30), False),
        (EVERY_15, ANCHOR + timedelta(minutes=15), True),
        (EVERY_15, ANCHOR + timedelta(minutes=150), True),
        (EVERY_15, ANCHOR + timedelta(minutes=16), False),
        (EVERY_15, ANCHOR + timedelta(minutes=15, microseconds=1), False),
        (EVERY_15, ANCHOR, False),
    ],
)
def test_is_occurrence(schedule, slot, expected):
    assert schedule.is_occurrence(slot) is expected


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"frequency_type": CRON, "cron_expression": "30 2 * * *"}, ("cron", "30 2 * * *", "UTC", None)),
        (
            {"frequency_type": CRON, "cron_expression": "0 6 * * *", "tz": "America/New_York"},
            ("cron", "0 6 * * *", "America/New_York", None),
        ),
        ({"frequency_type": INTERVAL, "interval_minutes": 15}, ("interval", None, "UTC", 15)),
    ],
)
def test_job_schedule_for_a_job(instance, workflow, fields, expected):
    job = services.create_job(instance=instance, workflow=workflow, **fields)

    schedule = JobSchedule.for_job(job)

    assert (schedule.kind, schedule.cron, schedule.tz, schedule.every_minutes) == expected
    at = now()
    assert schedule.next_after(at) == job.next_run(after=at)
    assert [schedule.next_after(t) for t in job.next_runs(3, after=at)[:2]] == job.next_runs(3, after=at)[1:]


def test_an_interval_schedule_counts_from_the_jobs_schedule_anchor(instance, workflow):
    job = services.create_job(instance=instance, workflow=workflow, frequency_type=INTERVAL, interval_minutes=15)
    anchor = utc(2025, 2, 3, 4, 5, 6, 789)
    ScheduledJob.objects.filter(pk=job.pk).update(schedule_anchor=anchor)
    job.refresh_from_db()

    schedule = JobSchedule.for_job(job)

    assert schedule.anchor == anchor
    assert schedule.next_after(anchor) == anchor + timedelta(minutes=15)
    assert schedule.next_after(anchor + timedelta(minutes=7)) == anchor + timedelta(minutes=15)
    assert schedule.next_after(anchor + timedelta(minutes=15)) == anchor + timedelta(minutes=30)
    assert schedule.next_after(anchor + timedelta(days=10, minutes=1)) == anchor + timedelta(days=10, minutes=15)
    assert schedule.latest_due(anchor, anchor + timedelta(minutes=61)) == anchor + timedelta(minutes=60)


def test_job_schedule_speaks_celerys_schedule_interface():
    every_minute = JobSchedule("cron", cron="* * * * *", tz="UTC")
    at = now()

    assert every_minute.is_due(at - timedelta(minutes=2)).is_due is True
    state = every_minute.is_due(at)
    assert state.is_due is False
    assert 0 <= state.next <= 60
    assert timedelta(0) < every_minute.remaining_estimate(at) <= timedelta(minutes=1)


# --------------------------------------------------------------------------- JobsScheduler.fire_jobs


@pytest.fixture
def scheduler() -> JobsScheduler:
    beat = JobsScheduler(app, lazy=True)
    # A lazy scheduler has no HA lock; tick() must not try to extend one.
    beat.lock_key = None
    return beat


@pytest.fixture
def make_job(instance, workflow):
    """A job with its entry written by sync_job, as after the service's commit."""

    def make(**fields) -> ScheduledJob:
        fields.setdefault("frequency_type", CRON)
        job = services.create_job(instance=instance, workflow=workflow, **fields)
        assert reconcile.sync_job(job.pk) == "added"
        return job

    return make


def first_slot(job: ScheduledJob) -> datetime:
    return job.next_run(after=stored_entry(job.pk).last_run_at)


def runs(messages) -> list[tuple[int, datetime]]:
    out = []
    for message in messages:
        assert message.task == RUN_TASK
        # Only ids and times travel in a message: the job and slot, and when beat published it.
        assert set(message.kwargs) == {"published_at"}
        assert datetime.fromisoformat(message.kwargs["published_at"]).utcoffset() == timedelta(0)
        job_id, slot = message.args
        parsed = datetime.fromisoformat(slot)
        assert parsed.utcoffset() == timedelta(0), slot
        out.append((job_id, parsed))
    return out


def next_day_same_wall_time(slot: datetime, tz: ZoneInfo) -> datetime:
    return (slot.astimezone(tz) + timedelta(days=1)).astimezone(UTC)


@pytest.mark.parametrize(
    ("fields", "slot_after"),
    [
        pytest.param(
            {"cron_expression": "0 3 * * *", "tz": "Europe/Helsinki"},
            lambda slot: next_day_same_wall_time(slot, HELSINKI),
            id="cron-helsinki",
        ),
        pytest.param({"cron_expression": "*/5 * * * *"}, lambda slot: slot + timedelta(minutes=5), id="cron-utc"),
        pytest.param(
            {"frequency_type": INTERVAL, "interval_minutes": 15},
            lambda slot: slot + timedelta(minutes=15),
            id="interval",
        ),
    ],
)
def test_fire_jobs_publishes_a_due_job_and_moves_it_to_its_next_slot(scheduler, make_job, fields, slot_after):
    job = make_job(**fields)
    slot = first_slot(job)
    at = slot + timedelta(seconds=1)
    client = redis_client()

    sent = scheduler.fire_jobs(client, [entry_key(job.pk)], at)

    assert sent == 1
    messages = queued_messages()
    assert runs(messages) == [(job.pk, slot)]
    # Late (the slot has passed): no ETA, so a worker runs it at once.
    assert messages[0].eta is None
    entry = stored_entry(job.pk)
    assert entry.last_run_at == slot
    # The following slot, worked out here from the job's own definition rather than by the code under test.
    following = slot_after(slot)
    assert entry.score == to_timestamp(following)

    again = scheduler.fire_jobs(client, [entry_key(job.pk)], at)

    assert again == 0
    assert len(queued_messages()) == 1
    unchanged = stored_entry(job.pk)
    assert (unchanged.last_run_at, unchanged.score, unchanged.schedule) == (slot, entry.score, entry.schedule)

    later = scheduler.fire_jobs(client, [entry_key(job.pk)], following + timedelta(seconds=1))

    assert later == 1
    assert runs(queued_messages()) == [(job.pk, slot), (job.pk, following)]
    assert stored_entry(job.pk).last_run_at == following


def test_fire_jobs_publishes_ahead_with_the_exact_slot_as_eta(scheduler, make_job):
    job = make_job(cron_expression="15 4 * * *", tz="America/New_York")
    slot = first_slot(job)
    client = redis_client()
    assert scheduler.lookahead == settings.JOBS_SCHEDULE_LOOKAHEAD_SECONDS
    ahead = slot - timedelta(seconds=scheduler.lookahead) + timedelta(milliseconds=500)

    sent = scheduler.fire_jobs(client, [entry_key(job.pk)], ahead)

    assert sent == 1
    (message,) = queued_messages()
    assert runs([message]) == [(job.pk, slot)]
    assert message.eta == slot
    assert stored_entry(job.pk).last_run_at == slot

    # The slot itself arriving does not send it a second time.
    assert scheduler.fire_jobs(client, [entry_key(job.pk)], slot + timedelta(seconds=1)) == 0
    assert len(queued_messages()) == 1


def test_fire_jobs_sends_nothing_before_the_lookahead_window(scheduler, make_job):
    job = make_job(cron_expression="0 12 * * *")
    slot = first_slot(job)
    before = stored_entry(job.pk)

    sent = scheduler.fire_jobs(redis_client(), [entry_key(job.pk)], slot - timedelta(seconds=scheduler.lookahead + 1))

    assert sent == 0
    assert queued_messages() == []
    after = stored_entry(job.pk)
    assert (after.last_run_at, after.score, after.schedule) == (before.last_run_at, before.score, before.schedule)


def test_fire_jobs_drops_a_zset_member_whose_entry_is_gone(scheduler, make_job):
    gone = make_job(cron_expression="0 3 * * *")
    live = make_job(cron_expression="0 3 * * *")
    client = redis_client()
    client.delete(entry_key(gone.pk))
    assert client.zscore(schedule_key(), entry_key(gone.pk)) is not None
    slot = first_slot(live)

    sent = scheduler.fire_jobs(client, [entry_key(gone.pk), entry_key(live.pk)], slot + timedelta(seconds=1))

    assert sent == 1
    assert runs(queued_messages()) == [(live.pk, slot)]
    assert client.zscore(schedule_key(), entry_key(gone.pk)) is None
    assert not client.exists(entry_key(gone.pk))
    assert entry_job_ids() == {"hashes": {live.pk}, "members": {live.pk}}


def test_fire_jobs_sends_each_due_job_once_among_others_not_due(scheduler, make_job):
    due = [make_job(cron_expression="0 3 * * *") for _ in range(3)]
    not_due = make_job(cron_expression="0 3 * * *")
    slot = first_slot(due[0])
    at = slot + timedelta(seconds=2)
    set_last_run(not_due, slot)  # already fired for this slot
    keys = [entry_key(job.pk) for job in [*due, not_due]]

    sent = scheduler.fire_jobs(redis_client(), keys, at)

    assert sent == 3
    assert sorted(runs(queued_messages())) == sorted((job.pk, slot) for job in due)
    assert stored_entry(not_due.pk).last_run_at == slot


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"cron_expression": "* * * * *"}, id="every-minute"),
        pytest.param({"cron_expression": "0 * * * *"}, id="hourly"),
        pytest.param({"frequency_type": INTERVAL, "interval_minutes": 10}, id="interval"),
    ],
)
def test_a_beat_that_was_down_sends_the_latest_slot_and_has_the_others_recorded(scheduler, make_job, fields):
    job = make_job(**fields)
    schedule = JobSchedule.for_job(job)
    last = first_slot(job)  # a slot that did run
    missed = [last]
    for _ in range(3):
        missed.append(schedule.next_after(missed[-1]))
    missed = missed[1:]
    set_last_run(job, last)
    at = missed[-1] + timedelta(seconds=10)  # three slots went by while beat was away
    assert schedule.next_after(missed[-1]) > at + timedelta(seconds=scheduler.lookahead)

    sent = scheduler.fire_jobs(redis_client(), [entry_key(job.pk)], at)

    assert sent == 1
    messages = queued_messages()
    assert runs([m for m in messages if m.task == RUN_TASK]) == [(job.pk, missed[-1])]
    # The two slots between the last fired one and the one sent now are left to jobs.record_missed.
    assert [(m.task, m.args) for m in messages if m.task != RUN_TASK] == [
        ("jobs.record_missed", [job.pk, last.isoformat(), missed[-1].isoformat()])
    ]
    entry = stored_entry(job.pk)
    assert entry.last_run_at == missed[-1]
    assert entry.score == to_timestamp(schedule.next_after(missed[-1]))


def test_fire_jobs_handles_an_entry_without_meta(scheduler, make_job):
    job = make_job(cron_expression="0 3 * * *")
    slot = first_slot(job)
    redis_client().hdel(entry_key(job.pk), "meta")

    # No record of a last run: counts from `now`, so a slot inside the look-ahead is sent, one behind is not.
    assert scheduler.fire_jobs(redis_client(), [entry_key(job.pk)], slot + timedelta(seconds=1)) == 0
    assert stored_entry(job.pk).score == to_timestamp(job.next_run(after=slot + timedelta(seconds=1)))
    redis_client().hdel(entry_key(job.pk), "meta")
    assert scheduler.fire_jobs(redis_client(), [entry_key(job.pk)], slot - timedelta(seconds=2)) == 1
    assert runs(queued_messages()) == [(job.pk, slot)]


# --------------------------------------------------------------------------- many jobs at once

MANY = 2000


@pytest.fixture
def many_due(instance, workflow):
    """MANY every-minute jobs, entries written by reconcile(); returns (keys, a `now` when all are due)."""
    # reconcile() gives each entry the next slot after the clock's now: entries written on both sides of a minute
    # boundary would get different slots, and firing them all at once would find the earlier ones' slot missed.
    # Writing them takes a few seconds at most; start clear of the boundary.
    clock = datetime.now(UTC)
    left = 60 - clock.second - clock.microsecond / 1e6
    if left < 20:
        time.sleep(left + 0.5)
    ScheduledJob.objects.bulk_create(
        ScheduledJob(instance=instance, workflow=workflow, frequency_type=CRON, cron_expression="* * * * *")
        for _ in range(MANY)
    )
    ids = set(ScheduledJob.objects.values_list("pk", flat=True))
    changes = reconcile.reconcile()
    assert sorted(changes["added"]) == sorted(ids)
    client = redis_client()
    keys = client.zrangebyscore(schedule_key(), 0, "+inf")
    assert len(keys) == MANY
    assert len({score for _, score in client.zrange(schedule_key(), 0, -1, withscores=True)}) == 1, "one slot for all"
    latest_score = client.zrange(schedule_key(), -1, -1, withscores=True)[0][1]
    return ids, keys, datetime.fromtimestamp(latest_score, UTC) + timedelta(seconds=1)


class Counter:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.pipelines_beat = 0
        self.pipelines_all = 0
        self.round_trips = 0


@pytest.fixture
def redis_calls(monkeypatch):
    """Counts pipeline executions (all, and those on RedBeat's client) and round trips (packed sends)."""
    counter = Counter()
    beat_pool = redis_client().connection_pool
    execute = redis.client.Pipeline.execute
    send = redis.connection.AbstractConnection.send_packed_command

    def counting_execute(self, *args, **kwargs):
        counter.pipelines_all += 1
        if self.connection_pool is beat_pool:
            counter.pipelines_beat += 1
        return execute(self, *args, **kwargs)

    def counting_send(self, *args, **kwargs):
        counter.round_trips += 1
        return send(self, *args, **kwargs)

    monkeypatch.setattr(redis.client.Pipeline, "execute", counting_execute)
    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counting_send)
    return counter


def test_fire_jobs_sends_two_thousand_due_jobs_in_a_few_pipelines(scheduler, many_due, redis_calls):
    ids, keys, at = many_due
    with app.producer_or_acquire():
        pass  # a warm broker connection, as a running beat has

    redis_calls.reset()
    sent = scheduler.fire_jobs(redis_client(), keys, at)

    assert sent == MANY
    sent_runs = runs(queued_messages())
    assert len(sent_runs) == MANY
    assert {job_id for job_id, _ in sent_runs} == ids
    assert len({job_id for job_id, _ in sent_runs}) == MANY
    # Loading and advancing the entries does not cost a pipeline per job.
    assert redis_calls.pipelines_beat <= 3, vars(redis_calls)
    # Every entry moved on: nothing is due again at the same moment.
    assert scheduler.fire_jobs(redis_client(), keys, at) == 0
    assert len(queued_messages()) == MANY


def test_fire_jobs_publishes_two_thousand_runs_in_a_bounded_number_of_round_trips(scheduler, many_due, redis_calls):
    """The issue: "improve on it (batched, pipelined publishing ...)": publishing must not cost a round trip per run."""
    ids, keys, at = many_due
    with app.producer_or_acquire():
        pass

    redis_calls.reset()
    sent = scheduler.fire_jobs(redis_client(), keys, at)

    assert sent == MANY
    assert redis_calls.round_trips <= 50, vars(redis_calls)


# --------------------------------------------------------------------------- tick


def test_tick_fires_the_job_entries_that_are_due(scheduler, make_job):
    reconcile.reconcile()  # the marker: tick has nothing to reconcile
    job = make_job(cron_expression="* * * * *")
    idle = make_job(cron_expression="0 0 1 1 *")
    if now().second >= 60 - scheduler.lookahead - 3:
        # Within the look-ahead of the next boundary, beat fires that slot and records `minute` as missed instead.
        time.sleep(61 - now().second)
    minute = now().replace(second=0, microsecond=0)
    set_last_run(job, minute - timedelta(minutes=1))  # due at `minute`, which has passed

    started = now()
    wait = scheduler.tick()
    ended = now()

    ((job_id, slot),) = runs(queued_messages())
    assert job_id == job.pk
    assert JobSchedule.for_job(job).is_occurrence(slot)
    # The latest minute boundary within the look-ahead of the tick: `minute`, or the next one if that is close.
    assert slot in {minute, minute + timedelta(minutes=1)}
    assert started - timedelta(minutes=1) < slot <= ended + timedelta(seconds=scheduler.lookahead)
    entry = stored_entry(job.pk)
    assert entry.last_run_at == slot
    assert entry.score == to_timestamp(slot + timedelta(minutes=1))
    assert 0 < wait <= scheduler.max_interval
    assert stored_entry(idle.pk).score > to_timestamp(ended)


def test_tick_sends_nothing_when_nothing_is_due(scheduler, make_job):
    reconcile.reconcile()
    make_job(cron_expression="0 0 1 1 *")

    wait = scheduler.tick()

    assert queued_messages() == []
    assert wait == scheduler.max_interval


def test_tick_after_a_flush_rebuilds_the_entries_from_the_database(scheduler, instance, workflow):
    jobs = [
        services.create_job(instance=instance, workflow=workflow, frequency_type=CRON, cron_expression="0 0 1 1 *"),
        services.create_job(instance=instance, workflow=workflow, frequency_type=INTERVAL, interval_minutes=60),
        services.create_job(
            instance=instance, workflow=workflow, frequency_type=INTERVAL, interval_minutes=60, active=False
        ),
    ]
    assert redis_client().dbsize() == 0  # no on-commit hooks ran: Redis knows nothing of these jobs

    scheduler.tick()

    active = {jobs[0].pk, jobs[1].pk}
    assert entry_job_ids() == {"hashes": active, "members": active}
    for job in jobs[:2]:
        assert_entry_matches(job)
    assert reconcile.reconcile_due() is False
    assert queued_messages() == []


def test_a_lazy_scheduler_does_not_set_up_or_reconcile(instance, workflow):
    services.create_job(instance=instance, workflow=workflow, frequency_type=CRON, cron_expression="0 0 1 1 *")

    JobsScheduler(app, lazy=True)

    assert redis_client().dbsize() == 0


def test_an_entry_loads_with_stock_redbeat_code(make_job):
    job = make_job(cron_expression="0 3 * * *", tz="Europe/Helsinki")

    entry = JobEntry.from_key(entry_key(job.pk), app=app)

    assert entry.schedule == JobSchedule.for_job(job)
    assert entry.last_run_at == stored_entry(job.pk).last_run_at
    assert entry.due_at == job.next_run(after=entry.last_run_at)


def ha_scheduler(lock_timeout: int = 30) -> JobsScheduler:
    beat = JobsScheduler(app, lazy=True)
    beat.lock_key = f"{app.redbeat_conf.key_prefix}:test-lock"
    beat.lock_timeout = lock_timeout
    beat.lock = redis_client().lock(beat.lock_key, timeout=lock_timeout)
    assert beat.lock.acquire(blocking=False)
    return beat


def test_a_beat_whose_lock_lapsed_during_a_long_tick_takes_it_back():
    beat = ha_scheduler()
    redis_client().delete(beat.lock_key)  # the lease ran out while one tick published 100,000 runs

    assert beat.hold_lock() is True
    assert redis_client().get(beat.lock_key) is not None


def test_a_beat_whose_lock_a_standby_took_stands_by_and_fires_nothing(make_job):
    job = make_job(cron_expression="* * * * *")
    set_last_run(job, datetime.now(UTC) - timedelta(minutes=3))  # due now
    beat = ha_scheduler()
    redis_client().delete(beat.lock_key)
    standby = redis_client().lock(beat.lock_key, timeout=30)
    assert standby.acquire(blocking=False)

    assert beat.hold_lock() is False
    assert beat.tick() == beat.max_interval
    assert redis_client().llen(settings.CELERY_TASK_DEFAULT_QUEUE) == 0

    standby.release()
    beat.tick()  # the standby is gone: this beat takes the lock back and fires the due run
    # ... and has the two slots that passed while it stood by recorded as missed.
    assert sorted(m.task for m in queued_messages()) == ["jobs.record_missed", "jobs.run_scheduled"]


def test_the_look_ahead_widens_for_a_crowded_minute_and_only_then(scheduler, settings):
    client = redis_client()
    now = datetime.now(UTC)
    soon = to_timestamp(now + timedelta(seconds=40))
    scheduler.publish_rate = 2000.0
    client.zadd(schedule_key(), {f"{app.redbeat_conf.key_prefix}quiet-{i}": soon for i in range(10)})

    assert scheduler.lookahead_for(client, now) == settings.JOBS_SCHEDULE_LOOKAHEAD_SECONDS

    client.zadd(schedule_key(), {f"{app.redbeat_conf.key_prefix}crowd-{i}": soon for i in range(30_000)})
    widened = scheduler.lookahead_for(client, now)

    # 30,010 runs at 2,000/s take 15 s; with margin they are published from ~27 s ahead, never over a minute.
    assert 20 < widened <= 60
