"""Cron across clock changes (DST): jobs/timing.py's rule, which is Debian cron's, and nextRuns, beat, the runner
and the sweeper agreeing on every slot of a DST night.

A wildcard schedule (minute or hour field starting with `*`) follows the clock: both passes of a repeated hour, no
run at wall times a skipped hour never had. A fixed-time schedule runs once: on the repeated hour's first pass, or,
inside a skipped hour, as the gap ends. Time is injected (`after=`, fire_jobs' and audit_slots' `now`); nothing
here sleeps or reads the clock.
"""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from jobs import services
from jobs.models import FrequencyType, JobHistory, RunStatus, ScheduledJob
from jobs.running import missed, runner, sweeper
from jobs.scheduling import reconcile
from jobs.scheduling.beat import JobsScheduler
from jobs.scheduling.entries import RUN_TASK
from jobs.scheduling.slots import JobSchedule
from pointscene.celery import app
from tests.fixtures.redbeat import entry_key, queued_messages, redis_client, set_last_run


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def cron_job(expression: str, tz: str = "UTC") -> ScheduledJob:
    return ScheduledJob(frequency_type=FrequencyType.CRON_BASED, cron_expression=expression, timezone=tz, active=True)


def quarters(first: datetime, count: int) -> list[datetime]:
    return [first + timedelta(minutes=15 * k) for k in range(count)]


def assert_strictly_increasing_utc(runs: list[datetime]) -> None:
    assert all(a < b for a, b in zip(runs, runs[1:], strict=False)), runs
    assert all(run.tzinfo == UTC for run in runs), runs


# --------------------------------------------------------------------------- the clock goes back: a repeated hour
# New York 2026-11-01 02:00 EDT -> 01:00 EST (06:00 UTC); London 2026-10-25 02:00 BST -> 01:00 GMT and Berlin
# 03:00 CEST -> 02:00 CET (01:00 UTC); Lord Howe 2026-04-05 02:00 +11 -> 01:30 +10:30 (2026-04-04 15:00 UTC).

REPEATED_HOUR_WILDCARD = [
    pytest.param(
        "*/15 * * * *",
        "America/New_York",
        utc(2026, 11, 1, 4, 50),
        # 01:00 01:15 01:30 01:45 EDT, then 01:00 01:15 01:30 01:45 EST, then 02:00 EST: every 15 minutes.
        quarters(utc(2026, 11, 1, 5, 0), 9),
        id="new-york-every-15",
    ),
    pytest.param(
        "0 * * * *",
        "America/New_York",
        utc(2026, 11, 1, 4, 30),
        [utc(2026, 11, 1, 5), utc(2026, 11, 1, 6), utc(2026, 11, 1, 7)],  # 01:00 EDT, 01:00 EST, 02:00 EST
        id="new-york-hourly",
    ),
    pytest.param(
        "0 * * * *",
        "Europe/London",
        utc(2026, 10, 24, 23, 30),
        [utc(2026, 10, 25, 0), utc(2026, 10, 25, 1), utc(2026, 10, 25, 2)],  # 01:00 BST, 01:00 GMT, 02:00 GMT
        id="london-hourly",
    ),
    pytest.param(
        "@hourly",
        "Europe/Berlin",
        utc(2026, 10, 24, 23, 30),
        [utc(2026, 10, 25, 0), utc(2026, 10, 25, 1), utc(2026, 10, 25, 2)],  # 02:00 CEST, 02:00 CET, 03:00 CET
        id="berlin-hourly-nickname",
    ),
    pytest.param(
        "0 */2 * * *",
        "Europe/Berlin",
        utc(2026, 10, 24, 21, 30),
        # 00:00 CEST, 02:00 CEST, 02:00 CET, 04:00 CET.
        [utc(2026, 10, 24, 22), utc(2026, 10, 25, 0), utc(2026, 10, 25, 1), utc(2026, 10, 25, 3)],
        id="berlin-every-2-hours",
    ),
    pytest.param(
        "30 * * * *",
        "Australia/Lord_Howe",
        utc(2026, 4, 4, 13),
        # 00:30 +11, 01:30 +11, 01:30 +10:30 (half an hour later), 02:30 +10:30.
        [utc(2026, 4, 4, 13, 30), utc(2026, 4, 4, 14, 30), utc(2026, 4, 4, 15), utc(2026, 4, 4, 16)],
        id="lord-howe-minute-fixed-hour-wildcard",
    ),
    pytest.param(
        "*/15 * * * *",
        "Australia/Lord_Howe",
        utc(2026, 4, 4, 14, 10),
        # 01:15 01:30 01:45 +11, then 01:30 01:45 +10:30, then 02:00 +10:30: every 15 minutes.
        quarters(utc(2026, 4, 4, 14, 15), 6),
        id="lord-howe-every-15",
    ),
]


@pytest.mark.parametrize(("expression", "tz", "after", "expected"), REPEATED_HOUR_WILDCARD)
def test_it_runs_wildcard_schedules_on_both_passes_of_a_repeated_hour(expression, tz, after, expected):
    runs = cron_job(expression, tz).next_runs(len(expected), after=after)

    assert runs == expected
    assert_strictly_increasing_utc(runs)


REPEATED_HOUR_FIXED = [
    pytest.param(
        "30 1 * * *",
        "America/New_York",
        utc(2026, 10, 30, 12),
        [
            utc(2026, 10, 31, 5, 30),  # 01:30 EDT
            utc(2026, 11, 1, 5, 30),  # 01:30 EDT, the first pass; 01:30 EST (06:30 UTC) is not a second run
            utc(2026, 11, 2, 6, 30),  # 01:30 EST
            utc(2026, 11, 3, 6, 30),
        ],
        id="new-york",
    ),
    pytest.param(
        "30 1 * * *",
        "Europe/London",
        utc(2026, 10, 24, 12),
        [utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)],  # 01:30 BST (first pass), 01:30 GMT next day
        id="london",
    ),
    pytest.param(
        "30 2 * * *",
        "Europe/Berlin",
        utc(2026, 10, 24, 12),
        [utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)],  # 02:30 CEST (first pass), 02:30 CET next day
        id="berlin",
    ),
    pytest.param(
        "45 1 * * *",
        "Australia/Lord_Howe",
        utc(2026, 4, 3, 12),
        # 01:45 +11 on the 4th and on the 5th (first pass; not again at +10:30), 01:45 +10:30 on the 6th.
        [utc(2026, 4, 3, 14, 45), utc(2026, 4, 4, 14, 45), utc(2026, 4, 5, 15, 15)],
        id="lord-howe",
    ),
    pytest.param(
        "30 3 * * *",
        "Europe/Helsinki",
        utc(2026, 10, 23, 12),
        # 03:30 EEST; on the 25th 03:30 comes twice (EEST, then EET): the first pass only; then 03:30 EET.
        [utc(2026, 10, 24, 0, 30), utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30), utc(2026, 10, 27, 1, 30)],
        id="helsinki",
    ),
]


@pytest.mark.parametrize(("expression", "tz", "after", "expected"), REPEATED_HOUR_FIXED)
def test_it_runs_fixed_time_schedules_once_on_the_first_pass_of_a_repeated_hour(expression, tz, after, expected):
    runs = cron_job(expression, tz).next_runs(len(expected), after=after)

    assert runs == expected
    assert_strictly_increasing_utc(runs)


def test_it_tells_wildcard_from_fixed_time_by_the_first_character_of_the_minute_and_hour_fields():
    # Every minute of 01:00-01:59 in New York on 2026-11-01: `* 1` is a wildcard (its minute field starts with
    # `*`), so both passes; `0-59 1` names the same minutes without `*`, so it is fixed-time: the first pass.
    wildcard = cron_job("* 1 * * *", "America/New_York").next_runs(121, after=utc(2026, 11, 1, 4, 59))
    fixed = cron_job("0-59 1 * * *", "America/New_York").next_runs(61, after=utc(2026, 11, 1, 4, 59))

    both_passes = [utc(2026, 11, 1, 5) + timedelta(minutes=m) for m in range(120)]
    assert wildcard == [*both_passes, utc(2026, 11, 2, 6)]  # then 01:00 EST the next day
    assert fixed == [*both_passes[:60], utc(2026, 11, 2, 6)]


# --------------------------------------------------------------------------- the clock jumps: a skipped hour
# New York 2026-03-08 02:00 EST -> 03:00 EDT (07:00 UTC); London 01:00 GMT -> 02:00 BST, Berlin 02:00 CET ->
# 03:00 CEST and Helsinki 03:00 EET -> 04:00 EEST on 2026-03-29 (01:00 UTC); Lord Howe 2026-10-04 02:00 +10:30 ->
# 02:30 +11 (2026-10-03 15:30 UTC); Santiago 2026-09-06 00:00 -04 -> 01:00 -03 (04:00 UTC).

SKIPPED_HOUR = [
    pytest.param(
        "30 2 * * *",
        "America/New_York",
        utc(2026, 3, 6, 12),
        [
            utc(2026, 3, 7, 7, 30),  # 02:30 EST
            utc(2026, 3, 8, 7, 0),  # 02:30 does not exist: once, as the clock jumps to 03:00 EDT
            utc(2026, 3, 9, 6, 30),  # 02:30 EDT
            utc(2026, 3, 10, 6, 30),
        ],
        id="fixed-new-york",
    ),
    pytest.param(
        "30 3 * * *",
        "Europe/Helsinki",
        utc(2026, 3, 26, 12),
        [
            utc(2026, 3, 27, 1, 30),  # 03:30 EET
            utc(2026, 3, 28, 1, 30),
            utc(2026, 3, 29, 1, 0),  # 03:30 does not exist: once, as the clock jumps to 04:00 EEST
            utc(2026, 3, 30, 0, 30),  # 03:30 EEST
            utc(2026, 3, 31, 0, 30),
        ],
        id="fixed-helsinki",
    ),
    pytest.param(
        "30 2 * * *",
        "Europe/Helsinki",
        utc(2026, 3, 27, 12),
        [utc(2026, 3, 28, 0, 30), utc(2026, 3, 29, 0, 30), utc(2026, 3, 29, 23, 30)],  # before the gap: untouched
        id="fixed-helsinki-before-the-gap",
    ),
    pytest.param(
        "15 2 * * *",
        "Australia/Lord_Howe",
        utc(2026, 10, 2),
        # 02:15 +10:30; on the 4th 02:15 does not exist: as the clock jumps to 02:30 +11; then 02:15 +11.
        [utc(2026, 10, 2, 15, 45), utc(2026, 10, 3, 15, 30), utc(2026, 10, 4, 15, 15)],
        id="fixed-lord-howe",
    ),
    pytest.param(
        "0,30 1 * * *",
        "Europe/London",
        utc(2026, 3, 28, 12),
        # 01:00 and 01:30 GMT both fall in the gap: one slot as the clock jumps to 02:00 BST; then 01:00, 01:30 BST.
        [utc(2026, 3, 29, 1), utc(2026, 3, 30, 0), utc(2026, 3, 30, 0, 30)],
        id="fixed-london-two-times-one-slot",
    ),
    pytest.param(
        "@daily",
        "America/Santiago",
        utc(2026, 9, 5, 12),
        [utc(2026, 9, 6, 4), utc(2026, 9, 7, 3)],  # midnight does not exist on the 6th: 01:00 -03; then 00:00 -03
        id="fixed-santiago-midnight",
    ),
    pytest.param(
        "*/15 * * * *",
        "America/New_York",
        utc(2026, 3, 8, 6, 30),
        quarters(utc(2026, 3, 8, 6, 45), 4),  # 01:45 EST, 03:00 03:15 03:30 EDT: every 15 minutes
        id="wildcard-new-york-every-15",
    ),
    pytest.param(
        "30 * * * *",
        "America/New_York",
        utc(2026, 3, 8, 5, 50),
        [utc(2026, 3, 8, 6, 30), utc(2026, 3, 8, 7, 30)],  # 01:30 EST, 03:30 EDT: the 02:30 that never was is not run
        id="wildcard-new-york-minute-fixed",
    ),
    pytest.param(
        "*/10 2 * * *",
        "Europe/Berlin",
        utc(2026, 3, 28, 12),
        [utc(2026, 3, 30, 0), utc(2026, 3, 30, 0, 10)],  # no 02:xx on the 29th at all; 02:00, 02:10 CEST the 30th
        id="wildcard-berlin-hour-fixed",
    ),
    pytest.param(
        "*/15 * * * *",
        "Australia/Lord_Howe",
        utc(2026, 10, 3, 15),
        quarters(utc(2026, 10, 3, 15, 15), 3),  # 01:45 +10:30, 02:30 02:45 +11: every 15 minutes
        id="wildcard-lord-howe-every-15",
    ),
    pytest.param(
        "0 * * * *",
        "Australia/Lord_Howe",
        utc(2026, 10, 3, 14),
        # 01:00 +10:30, then 03:00 +11: the 02:00 that never was is not run, so 90 minutes pass.
        [utc(2026, 10, 3, 14, 30), utc(2026, 10, 3, 16)],
        id="wildcard-lord-howe-hourly",
    ),
]


@pytest.mark.parametrize(("expression", "tz", "after", "expected"), SKIPPED_HOUR)
def test_it_runs_fixed_times_of_a_skipped_hour_as_the_gap_ends_and_wildcards_on_real_time(
    expression, tz, after, expected
):
    runs = cron_job(expression, tz).next_runs(len(expected), after=after)

    assert runs == expected
    assert_strictly_increasing_utc(runs)


@pytest.mark.parametrize(
    ("expression", "tz", "day"),
    [
        ("30 3 * * *", "Europe/Helsinki", (2026, 3, 29)),
        ("30 3 * * *", "Europe/Helsinki", (2026, 10, 25)),
        ("30 2 * * *", "America/New_York", (2026, 3, 8)),
        ("30 1 * * *", "America/New_York", (2026, 11, 1)),
        ("45 1 * * *", "Australia/Lord_Howe", (2026, 4, 5)),
        ("15 2 * * *", "Australia/Lord_Howe", (2026, 10, 4)),
    ],
)
def test_it_runs_a_fixed_time_exactly_once_on_the_local_dst_day(expression, tz, day):
    zone = ZoneInfo(tz)
    runs = cron_job(expression, tz).next_runs(10, after=utc(*day) - timedelta(days=4))

    local_days = [run.astimezone(zone).date() for run in runs]
    assert local_days.count(datetime(*day).date()) == 1  # noqa: DTZ001 - a calendar date
    assert len(set(local_days)) == len(local_days)
    assert_strictly_increasing_utc(runs)


@pytest.mark.parametrize(
    ("expression", "tz", "after", "expected"),
    [
        # From inside the spring gap's aftermath, and around the jump itself.
        ("30 3 * * *", "Europe/Helsinki", utc(2026, 3, 29, 0, 45), utc(2026, 3, 29, 1, 0)),
        ("30 3 * * *", "Europe/Helsinki", utc(2026, 3, 29, 0, 59, 59, 999999), utc(2026, 3, 29, 1, 0)),
        ("30 3 * * *", "Europe/Helsinki", utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 30)),
        ("30 2 * * *", "America/New_York", utc(2026, 3, 8, 7, 0), utc(2026, 3, 9, 6, 30)),
        # From inside the repeated hour, on either pass.
        ("30 3 * * *", "Europe/Helsinki", utc(2026, 10, 25, 0, 15), utc(2026, 10, 25, 0, 30)),
        ("30 3 * * *", "Europe/Helsinki", utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)),
        ("30 3 * * *", "Europe/Helsinki", utc(2026, 10, 25, 1, 15), utc(2026, 10, 26, 1, 30)),
        ("30 1 * * *", "America/New_York", utc(2026, 11, 1, 5, 29), utc(2026, 11, 1, 5, 30)),
        ("30 1 * * *", "America/New_York", utc(2026, 11, 1, 6, 0), utc(2026, 11, 2, 6, 30)),
        ("*/15 * * * *", "America/New_York", utc(2026, 11, 1, 5, 50), utc(2026, 11, 1, 6, 0)),  # 01:00 EST
        ("*/15 * * * *", "America/New_York", utc(2026, 11, 1, 5, 59, 59, 999999), utc(2026, 11, 1, 6, 0)),
        ("*/15 * * * *", "America/New_York", utc(2026, 11, 1, 6, 20), utc(2026, 11, 1, 6, 30)),  # 01:30 EST
        ("*/15 * * * *", "Australia/Lord_Howe", utc(2026, 4, 4, 14, 50), utc(2026, 4, 4, 15, 0)),  # 01:30 +10:30
    ],
)
def test_it_finds_the_next_run_from_inside_a_dst_transition(expression, tz, after, expected):
    assert cron_job(expression, tz).next_run(after=after) == expected


@pytest.mark.parametrize("tz", ["Europe/Helsinki", "Europe/London", "America/New_York", "Australia/Sydney"])
@pytest.mark.parametrize("after", [utc(2026, 3, 7, 12), utc(2026, 10, 3, 12)], ids=["march", "october"])
def test_it_runs_hourly_every_real_hour_through_both_changes(tz, after):
    # Zones whose clock moves a whole hour at a whole hour: hourly is then every hour of real time.
    runs = cron_job("0 * * * *", tz).next_runs(24 * 40, after=after)  # 40 days: each zone's change is in them

    assert_strictly_increasing_utc(runs)
    assert {b - a for a, b in zip(runs, runs[1:], strict=False)} == {timedelta(hours=1)}
    assert all(run.astimezone(ZoneInfo(tz)).minute == 0 for run in runs)
    offsets = {run.astimezone(ZoneInfo(tz)).utcoffset() for run in runs}
    assert len(offsets) == 2  # the change is in the range


@pytest.mark.parametrize(
    ("tz", "start"),
    [
        ("America/New_York", utc(2026, 3, 8, 3)),
        ("America/New_York", utc(2026, 11, 1, 3)),
        ("Europe/London", utc(2026, 10, 24, 22)),
        ("Australia/Lord_Howe", utc(2026, 4, 4, 12)),
        ("Australia/Lord_Howe", utc(2026, 10, 3, 12)),
    ],
)
def test_every_15_minutes_by_cron_is_the_same_as_an_interval_of_15_minutes(tz, start):
    # An interval counts plain minutes in UTC; */15 in the job's zone now gives the same instants through a change.
    interval = ScheduledJob(
        frequency_type=FrequencyType.INTERVAL_BASED, interval_minutes=15, schedule_anchor=start, active=True
    )

    by_cron = cron_job("*/15 * * * *", tz).next_runs(40, after=start)

    assert by_cron == interval.next_runs(40, after=start) == quarters(start + timedelta(minutes=15), 40)


# --------------------------------------------------------------------------- nextRuns, beat, runner and sweeper agree
# 2025 nights, long past whatever the clock says: a slot the runner takes is recorded MISSED, never run.

NIGHTS = [
    pytest.param("*/15 * * * *", "America/New_York", utc(2025, 11, 2, 4), utc(2025, 11, 2, 8), 16, id="ny-fall-15"),
    pytest.param("30 1 * * *", "America/New_York", utc(2025, 11, 2, 4), utc(2025, 11, 2, 8), 1, id="ny-fall-fixed"),
    pytest.param("0 * * * *", "Europe/London", utc(2025, 10, 25, 22), utc(2025, 10, 26, 4), 6, id="london-fall-hourly"),
    pytest.param("30 * * * *", "Australia/Lord_Howe", utc(2025, 4, 5, 12), utc(2025, 4, 5, 17), 6, id="lord-howe-fall"),
    pytest.param("0,30 2 * * *", "America/New_York", utc(2025, 3, 9, 5), utc(2025, 3, 9, 9), 1, id="ny-spring-fixed"),
    pytest.param(
        "*/15 * * * *", "Australia/Lord_Howe", utc(2025, 10, 4, 14), utc(2025, 10, 4, 17), 12, id="lord-howe-spring-15"
    ),
]


@pytest.fixture
def night_job(instance, workflow):
    """A cron job whose slots count from a day before `start`, its beat entry last fired at `start`."""

    def make(expression: str, tz: str, start: datetime) -> ScheduledJob:
        job = services.create_job(
            instance=instance,
            workflow=workflow,
            frequency_type=FrequencyType.CRON_BASED,
            cron_expression=expression,
            tz=tz,
        )
        ScheduledJob.objects.filter(pk=job.pk).update(schedule_anchor=start - timedelta(days=1))
        job.refresh_from_db()
        assert reconcile.sync_job(job.pk) == "added"
        set_last_run(job, start)
        return job

    return make


def slots_of_the_night(job: ScheduledJob, start: datetime, end: datetime, count: int) -> list[datetime]:
    """What nextRuns lists for the night (the API's field is ScheduledJob.next_runs), checked for its length."""
    slots = [slot for slot in job.next_runs(100, after=start) if slot <= end]
    assert len(slots) == count, slots
    return slots


@pytest.mark.usefixtures("clean_redis")
@pytest.mark.parametrize(("expression", "tz", "start", "end", "count"), NIGHTS)
def test_beat_publishes_exactly_the_slots_next_runs_lists_through_a_dst_night(
    night_job, expression, tz, start, end, count
):
    job = night_job(expression, tz, start)
    expected = slots_of_the_night(job, start, end, count)
    scheduler = JobsScheduler(app, lazy=True)
    scheduler.lock_key = None
    client = redis_client()

    # Beat ticking through the night, a minute at a time.
    at = start
    while at < end:
        at += timedelta(minutes=1)
        scheduler.fire_jobs(client, [entry_key(job.pk)], at)

    messages = queued_messages()
    assert [m.task for m in messages] == [RUN_TASK] * count  # no jobs.record_missed: no slot was passed over
    assert [datetime.fromisoformat(m.args[1]) for m in messages] == expected
    assert all(m.args[0] == job.pk for m in messages)


@pytest.mark.usefixtures("clean_redis")
@pytest.mark.parametrize(("expression", "tz", "start", "end", "count"), NIGHTS)
def test_the_runner_takes_exactly_the_slots_next_runs_lists_through_a_dst_night(
    night_job, expression, tz, start, end, count
):
    job = night_job(expression, tz, start)
    expected = slots_of_the_night(job, start, end, count)
    schedule = JobSchedule.for_job(job)
    # Every quarter of an hour of the night: the candidates a stale or wrong message could carry.
    candidates = quarters(start + timedelta(minutes=15), int((end - start) / timedelta(minutes=15)))
    assert set(expected) <= set(candidates)

    taken = [slot for slot in candidates if runner.run_scheduled(job.pk, slot) is not None]

    assert taken == expected
    assert [slot for slot in candidates if schedule.is_occurrence(slot)] == expected
    rows = JobHistory.objects.filter(job=job).order_by("scheduled_for")
    assert [row.scheduled_for for row in rows] == expected
    assert {row.status for row in rows} == {RunStatus.MISSED}  # long past: recorded, never run


@pytest.mark.usefixtures("clean_redis")
@pytest.mark.parametrize(("expression", "tz", "start", "end", "count"), NIGHTS)
def test_the_sweep_finds_exactly_the_slots_next_runs_lists_through_a_dst_night(
    night_job, settings, expression, tz, start, end, count
):
    job = night_job(expression, tz, start)
    expected = slots_of_the_night(job, start, end, count)
    # The sweep looks at slots that came due in (now - lookback, now - grace - 5 s]: exactly the night here.
    now = end + timedelta(seconds=settings.JOBS_MISFIRE_GRACE_SECONDS + 5)
    settings.JOBS_SWEEP_LOOKBACK_SECONDS = int((now - start).total_seconds())

    done = sweeper.audit_slots(now)

    rows = JobHistory.objects.filter(job=job).order_by("scheduled_for")
    assert done == {"missed": count, "resent": 0}
    assert [row.scheduled_for for row in rows] == expected
    assert {row.status for row in rows} == {RunStatus.MISSED}


@pytest.mark.usefixtures("clean_redis")
@pytest.mark.parametrize(("expression", "tz", "start", "end", "count"), NIGHTS)
def test_record_missed_records_exactly_the_slots_next_runs_lists_through_a_dst_night(
    night_job, expression, tz, start, end, count
):
    job = night_job(expression, tz, start)
    expected = slots_of_the_night(job, start, end, count)

    # What beat sends when it comes back after the night: the slots strictly between its last and the one it fires.
    recorded = missed.record_missed(job.pk, start, end + timedelta(seconds=1))

    assert recorded == count
    assert [row.scheduled_for for row in JobHistory.objects.filter(job=job).order_by("scheduled_for")] == expected
