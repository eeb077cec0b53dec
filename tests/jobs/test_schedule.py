"""When jobs run: cron and interval arithmetic (jobs/timing.py) and ScheduledJob.next_runs/next_run. Clock
changes (DST) have their own file, tests/jobs/test_dst.py.

Time is injected through `after=`; nothing here sleeps or reads the clock.
"""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from jobs.models import FrequencyType, ScheduledJob
from jobs.timing import InvalidCron, normalize_cron

HELSINKI = ZoneInfo("Europe/Helsinki")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def cron_job(expression: str, tz: str = "UTC", active: bool = True) -> ScheduledJob:
    return ScheduledJob(frequency_type=FrequencyType.CRON_BASED, cron_expression=expression, timezone=tz, active=active)


def interval_job(minutes: int, anchor: datetime, active: bool = True) -> ScheduledJob:
    return ScheduledJob(
        frequency_type=FrequencyType.INTERVAL_BASED, interval_minutes=minutes, schedule_anchor=anchor, active=active
    )


def assert_utc(runs: list[datetime]) -> None:
    for run in runs:
        assert run.tzinfo is not None, run
        assert run.utcoffset() == timedelta(0), run
        assert run.tzinfo == UTC, run


def test_it_runs_strictly_after_the_given_instant():
    job = cron_job("30 2 * * *")

    assert job.next_run(after=utc(2026, 5, 1, 2, 30)) == utc(2026, 5, 2, 2, 30)
    assert job.next_run(after=utc(2026, 5, 1, 2, 29, 59, 999999)) == utc(2026, 5, 1, 2, 30)


# --- calendar edges


def test_it_skips_months_without_a_31st():
    runs = cron_job("0 0 31 * *").next_runs(8, after=utc(2026, 1, 2))

    assert runs == [
        utc(2026, 1, 31),
        utc(2026, 3, 31),
        utc(2026, 5, 31),
        utc(2026, 7, 31),
        utc(2026, 8, 31),
        utc(2026, 10, 31),
        utc(2026, 12, 31),
        utc(2027, 1, 31),
    ]


def test_it_lands_february_29th_on_leap_years():
    runs = cron_job("0 0 29 2 *").next_runs(3, after=utc(2026, 1, 1))

    assert runs == [utc(2028, 2, 29), utc(2032, 2, 29), utc(2036, 2, 29)]
    assert_utc(runs)


def test_it_understands_day_of_week_names():
    runs = cron_job("0 9 * * MON-FRI").next_runs(6, after=utc(2026, 1, 2, 10))  # a Friday, after 09:00

    assert runs == [
        utc(2026, 1, 5, 9),
        utc(2026, 1, 6, 9),
        utc(2026, 1, 7, 9),
        utc(2026, 1, 8, 9),
        utc(2026, 1, 9, 9),
        utc(2026, 1, 12, 9),
    ]
    assert all(run.weekday() < 5 for run in runs)


def test_it_runs_weekday_names_on_the_local_day():
    runs = cron_job("0 9 * * MON-FRI", "Europe/Helsinki").next_runs(2, after=utc(2026, 1, 2, 10))

    assert runs == [utc(2026, 1, 5, 7), utc(2026, 1, 6, 7)]


@pytest.mark.parametrize(
    ("nickname", "expression"),
    [
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@monthly", "0 0 1 * *"),
        ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"),
        ("@hourly", "0 * * * *"),
    ],
)
def test_it_treats_nicknames_as_their_expressions(nickname, expression):
    after = utc(2026, 2, 27, 13, 17)

    assert normalize_cron(nickname) == expression
    assert cron_job(nickname).next_runs(5, after=after) == cron_job(expression).next_runs(5, after=after)
    assert cron_job(nickname, "Europe/Helsinki").next_runs(5, after=after) == cron_job(
        expression, "Europe/Helsinki"
    ).next_runs(5, after=after)


@pytest.mark.parametrize(
    ("nickname", "first"),
    [
        ("@yearly", utc(2027, 1, 1)),
        ("@annually", utc(2027, 1, 1)),
        ("@monthly", utc(2026, 3, 1)),
        ("@weekly", utc(2026, 3, 1)),  # 2026-03-01 is a Sunday
        ("@daily", utc(2026, 2, 28)),
        ("@hourly", utc(2026, 2, 27, 14)),
    ],
)
def test_it_runs_nicknames_at_the_first_expected_instant(nickname, first):
    assert cron_job(nickname).next_run(after=utc(2026, 2, 27, 13, 17)) == first


# --- interval jobs: anchor + k*N, k >= 1, strictly after now

ANCHOR = utc(2026, 4, 1, 12, 0)


@pytest.mark.parametrize(
    ("minutes", "now", "expected"),
    [
        (15, ANCHOR, ANCHOR + timedelta(minutes=15)),
        (15, ANCHOR + timedelta(minutes=1), ANCHOR + timedelta(minutes=15)),
        (15, ANCHOR + timedelta(minutes=45), ANCHOR + timedelta(minutes=60)),  # exactly on a slot
        (15, ANCHOR + timedelta(minutes=45, microseconds=-1), ANCHOR + timedelta(minutes=45)),
        (15, ANCHOR + timedelta(minutes=45, microseconds=1), ANCHOR + timedelta(minutes=60)),
        (15, ANCHOR - timedelta(minutes=1), ANCHOR + timedelta(minutes=15)),  # before the anchor
        (15, ANCHOR - timedelta(minutes=15), ANCHOR + timedelta(minutes=15)),  # before the anchor, "on a slot"
        (15, ANCHOR - timedelta(days=3), ANCHOR + timedelta(minutes=15)),
        (7, ANCHOR + timedelta(days=10), ANCHOR + timedelta(minutes=7 * (10 * 24 * 60 // 7 + 1))),
        (1, ANCHOR + timedelta(minutes=59, seconds=30), ANCHOR + timedelta(minutes=60)),
        (527_040, ANCHOR + timedelta(minutes=527_040), ANCHOR + timedelta(minutes=2 * 527_040)),
    ],
)
def test_it_runs_interval_jobs_on_anchor_plus_multiples(minutes, now, expected):
    job = interval_job(minutes, ANCHOR)

    runs = job.next_runs(3, after=now)

    assert runs[0] == expected
    assert job.next_run(after=now) == expected
    assert runs == [expected + timedelta(minutes=minutes * k) for k in range(3)]
    assert runs[0] > now
    assert runs[0] - timedelta(minutes=minutes) <= now or runs[0] - timedelta(minutes=minutes) == ANCHOR
    assert (runs[0] - ANCHOR) % timedelta(minutes=minutes) == timedelta(0)
    assert_utc(runs)


def test_it_keeps_interval_runs_on_utc_when_the_anchor_is_local():
    # An anchor held in a local zone (as a form would give it) still counts absolute minutes, even across DST.
    anchor = utc(2026, 3, 28, 12)
    job = interval_job(60, anchor.astimezone(HELSINKI))

    runs = job.next_runs(2, after=anchor + timedelta(hours=24))

    assert runs == [anchor + timedelta(hours=25), anchor + timedelta(hours=26)]
    assert_utc(runs)


def test_it_ignores_dst_for_interval_jobs():
    anchor = utc(2026, 3, 28, 23, 0)
    runs = interval_job(60, anchor).next_runs(5, after=anchor)

    assert runs == [anchor + timedelta(hours=h) for h in range(1, 6)]


# --- paused jobs and counts


@pytest.mark.parametrize(
    "job",
    [cron_job("30 2 * * *", active=False), interval_job(15, ANCHOR, active=False)],
    ids=["cron", "interval"],
)
def test_it_has_no_next_run_while_paused(job):
    assert job.next_run(after=ANCHOR) is None
    assert job.next_runs(5, after=ANCHOR) == []


@pytest.mark.parametrize("count", [0, -1])
def test_it_returns_nothing_for_a_non_positive_count(count):
    assert cron_job("* * * * *").next_runs(count, after=ANCHOR) == []


@pytest.mark.django_db
def test_it_computes_runs_for_a_stored_job(job):
    job.refresh_from_db()

    runs = job.next_runs(2, after=utc(2026, 6, 1))

    assert runs == [utc(2026, 6, 1, 2, 30), utc(2026, 6, 2, 2, 30)]
    assert_utc(runs)


@pytest.mark.django_db
def test_it_computes_runs_for_a_stored_interval_job(other_job):
    other_job.refresh_from_db()
    anchor = other_job.schedule_anchor

    runs = other_job.next_runs(2, after=anchor + timedelta(minutes=15))

    assert runs == [anchor + timedelta(minutes=30), anchor + timedelta(minutes=45)]
    assert_utc(runs)


# --- normalize_cron


@pytest.mark.parametrize(
    "expression",
    [
        pytest.param("* * * *", id="4-fields"),
        pytest.param("0 * * * * *", id="6-fields"),
        pytest.param("0 0 * * * * 2026", id="7-fields"),
        pytest.param("61 * * * *", id="minute-61"),
        pytest.param("60 * * * *", id="minute-60"),
        pytest.param("* 24 * * *", id="hour-24"),
        pytest.param("* * 0 * *", id="day-0"),
        pytest.param("* * 32 * *", id="day-32"),
        pytest.param("* * * 13 *", id="month-13"),
        pytest.param("* * * 0 *", id="month-0"),
        pytest.param("* * * * 8", id="weekday-8"),
        pytest.param("*/0 * * * *", id="step-0"),
        pytest.param("a b c d e", id="words"),
        pytest.param("0 0 30 2 *", id="never-fires"),
        pytest.param("@reboot", id="reboot"),
        pytest.param("@every 5m", id="every"),
        pytest.param("@fortnightly", id="unknown-nickname"),
        pytest.param("", id="empty"),
        pytest.param("   ", id="blank"),
        pytest.param("\t\n", id="whitespace"),
        pytest.param("0 0 * * " + ",".join(["1"] * 100), id="over-long"),
        pytest.param("0 " * 300, id="over-long-fields"),
        pytest.param("0 0 L * *", id="croniter-last-day"),
        pytest.param("0 0 1W * *", id="croniter-weekday"),
        pytest.param("0 0 * * 1#2", id="croniter-nth-weekday"),
        pytest.param("0 0 ? * *", id="quartz-question-mark"),
        pytest.param("1-0 * * * *", id="reversed-range"),
        pytest.param("0 0 * FOO *", id="unknown-month-name"),
    ],
)
def test_it_rejects_invalid_cron_expressions(expression):
    with pytest.raises(InvalidCron) as raised:
        normalize_cron(expression)

    assert str(raised.value)


@pytest.mark.parametrize(
    ("expression", "normal"),
    [
        ("30 2 * * *", "30 2 * * *"),
        ("  30   2 * *\t* ", "30 2 * * *"),
        ("\n0\t9 * *   MON-FRI\n", "0 9 * * MON-FRI"),
        ("*/15 0-6 1,15 * *", "*/15 0-6 1,15 * *"),
        ("0 0 29 2 *", "0 0 29 2 *"),
        ("0 0 31 * *", "0 0 31 * *"),
        ("  @daily ", "0 0 * * *"),
    ],
)
def test_it_accepts_valid_cron_expressions_with_extra_whitespace(expression, normal):
    assert normalize_cron(expression) == normal


def test_it_accepts_an_expression_of_the_maximum_length_only():
    at_limit = "10," + ",".join(["1"] * 95) + " 0 * * *"
    assert len(at_limit) == 200
    assert normalize_cron(at_limit) == at_limit
    assert normalize_cron(f"  {at_limit}  ") == at_limit  # surrounding whitespace does not count
    with pytest.raises(InvalidCron):
        normalize_cron(at_limit + "1")


# --------------------------------------------------------------------------- the anchor after an edit

EDIT_TIME = utc(2026, 3, 10, 12, 0)
OLD_ANCHOR = utc(2026, 1, 1)


def edited(job: ScheduledJob, **changes: object) -> ScheduledJob:
    copy = ScheduledJob(**{f.attname: getattr(job, f.attname) for f in ScheduledJob._meta.concrete_fields})
    for name, value in changes.items():
        setattr(copy, name, value)
    return copy


@pytest.mark.parametrize(
    ("old", "changes"),
    [
        (cron_job("0 3 * * *"), {"cron_expression": "* * * * *"}),
        (cron_job("0 3 * * *"), {"timezone": "Europe/Helsinki"}),
        (interval_job(15, OLD_ANCHOR), {"interval_minutes": 30}),
        (
            cron_job("0 3 * * *"),
            {"frequency_type": FrequencyType.INTERVAL_BASED, "cron_expression": None, "interval_minutes": 15},
        ),
        (cron_job("0 3 * * *", active=False), {"active": True}),
    ],
)
def test_a_schedule_change_or_a_reactivation_restarts_the_anchor(old, changes):
    old.schedule_anchor = OLD_ANCHOR
    new = edited(old, **changes)

    assert new.restart_anchor_if_schedule_changed(old, at=EDIT_TIME)
    assert new.schedule_anchor == EDIT_TIME


@pytest.mark.parametrize(
    ("old", "changes"),
    [
        (cron_job("0 3 * * *"), {"name": "renamed", "jitter_seconds": 30, "time_limit_seconds": 60}),
        # An interval is the same minutes in any zone: its slots stay where they were.
        (interval_job(15, OLD_ANCHOR), {"timezone": "Europe/Helsinki"}),
        # A paused job has no slots to count; it restarts when it is resumed.
        (cron_job("0 3 * * *"), {"active": False}),
        (cron_job("0 3 * * *", active=False), {"cron_expression": "* * * * *"}),
    ],
)
def test_other_edits_keep_the_anchor(old, changes):
    old.schedule_anchor = OLD_ANCHOR
    new = edited(old, **changes)

    assert not new.restart_anchor_if_schedule_changed(old, at=EDIT_TIME)
    assert new.schedule_anchor == OLD_ANCHOR
