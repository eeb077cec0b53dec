"""Cron and interval arithmetic: the one place that says when a job runs.

Occurrences are computed on the job's local wall clock and returned as aware UTC datetimes; a slot is that UTC
instant, so the two passes of a repeated 01:00 are two different slots. Where the clock changes, the rule is Debian's
(Vixie) cron's, so that a crontab line means here what it means in a crontab:

- A *wildcard* schedule, one whose minute or hour field starts with `*` (`*/15 * * * *`, `0 * * * *`,
  `0 */2 * * *`, `* 1 * * *`, `@hourly`), follows the clock as it reads. In a repeated hour it runs on both passes;
  wall times inside a skipped hour never come, so they do not run. "Every 15 minutes" stays every 15 minutes.
- Every other schedule is *fixed-time* (`30 1 * * *`, `0 9 * * MON-FRI`, `@daily`): each matching wall time runs
  once. In a repeated hour that is its first pass; inside a skipped hour it is as the gap ends, the instant the
  clock jumps (New York's 02:30 on the spring day runs at 03:00 EDT). Fixed times in one gap share that one slot.

Interval schedules are plain minutes in UTC and never see a clock change. docs/reliability.md (section 8) says why.
"""

import heapq
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import cache, lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from cron_descriptor import Options, get_description
from croniter import CroniterBadCronError, CroniterBadDateError, CroniterNotAlphaError, croniter

# The nicknames of standard cron that mean a schedule (not @reboot).
CRON_NICKNAMES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
MAX_CRON_LENGTH = 200
_MONTHS = "JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC"
_DAYS = "SUN|MON|TUE|WED|THU|FRI|SAT"
# Standard cron only: numbers, names for months and weekdays, * , - /. Not croniter's L, W, # or ? extensions.
_FIELD_NAMES = ("minute", "hour", "day of month", "month", "day of week")
_ATOM = {
    0: r"\d{1,2}",
    1: r"\d{1,2}",
    2: r"\d{1,2}",
    3: rf"\d{{1,2}}|{_MONTHS}",
    4: rf"\d|{_DAYS}",
}
_FIELD_RE = {
    i: re.compile(rf"^(\*|(?:{atom})(?:-(?:{atom}))?)(/\d{{1,2}})?$", re.IGNORECASE) for i, atom in _ATOM.items()
}


class InvalidCron(ValueError):
    pass


# Every run checks its slot against its job's cron, and beat reads thousands of them a minute: each distinct
# expression is checked once per process (an invalid one is not kept: exceptions are not cached).
@lru_cache(maxsize=4096)
def normalize_cron(expression: str) -> str:
    """The 5-field form of a cron expression, or InvalidCron saying why not."""
    text = " ".join(expression.split())
    if not text:
        raise InvalidCron("cron expression is empty")
    if len(text) > MAX_CRON_LENGTH:
        raise InvalidCron(f"cron expression is longer than {MAX_CRON_LENGTH} characters")
    if text.startswith("@"):
        try:
            return CRON_NICKNAMES[text.lower()]
        except KeyError:
            allowed = ", ".join(sorted(CRON_NICKNAMES))
            raise InvalidCron(f"unknown cron nickname {text!r}; use one of {allowed}") from None
    fields = text.split(" ")
    if len(fields) != 5:
        raise InvalidCron(
            f"cron expression must have 5 fields (minute hour day-of-month month day-of-week), got {len(fields)}"
        )
    for i, value in enumerate(fields):
        for part in value.split(","):
            match = _FIELD_RE[i].match(part)
            if not match:
                raise InvalidCron(f"invalid {_FIELD_NAMES[i]} field {value!r}")
            low, _, high = match[1].partition("-")
            if high and low.isdigit() and high.isdigit() and int(low) > int(high):
                raise InvalidCron(f"invalid range {match[1]!r} in the {_FIELD_NAMES[i]} field")
    try:
        # Build and step once: croniter accepts some expressions at parse time that can never fire.
        croniter(text, datetime(2000, 1, 1)).get_next(datetime)  # noqa: DTZ001 - wall-clock arithmetic
    except (CroniterBadCronError, CroniterBadDateError, CroniterNotAlphaError, ValueError, KeyError) as exc:
        raise InvalidCron(f"invalid cron expression: {exc}") from None
    return text


def validate_timezone(name: str) -> ZoneInfo:
    if name not in _timezone_names():
        raise ZoneInfoNotFoundError(name)
    return ZoneInfo(name)


_TZ_NAMES: frozenset[str] | None = None


def _timezone_names() -> frozenset[str]:
    global _TZ_NAMES
    if _TZ_NAMES is None:
        _TZ_NAMES = frozenset(available_timezones())
    return _TZ_NAMES


# A later clock change that could repeat wall times of the coming hours: how far ahead cron_occurrences looks for one.
_FALL_BACK_LOOKAHEAD = timedelta(days=2)


def _follows_the_clock(normalized: str) -> bool:
    """A wildcard schedule (minute or hour field starting with `*`, as Vixie cron's MIN_STAR/HR_STAR): it runs on
    both passes of a repeated hour and not in a skipped one. Any other schedule is fixed-time."""
    minute, hour = normalized.split(" ")[:2]
    return minute.startswith("*") or hour.startswith("*")


def _instants(wall: datetime, tz: ZoneInfo, wildcard: bool) -> tuple[datetime, ...]:
    """The UTC instants of one matching wall time, ascending: usually one; two for a wildcard schedule in a
    repeated hour; none for a wildcard schedule in a skipped hour."""
    first = wall.replace(tzinfo=tz, fold=0)
    second = wall.replace(tzinfo=tz, fold=1)
    # PEP 495: fold=0 reads a wall time with the offset from before a transition, fold=1 with the one after.
    before, after = first.utcoffset(), second.utcoffset()
    if before == after:
        return (first.astimezone(UTC),)
    if before > after:  # the clock went back: `wall` comes twice
        if wildcard:
            return (first.astimezone(UTC), second.astimezone(UTC))
        return (first.astimezone(UTC),)
    if wildcard:  # the clock jumped over `wall`
        return ()
    return (_jump(wall, tz),)


def _jump(wall: datetime, tz: ZoneInfo) -> datetime:
    """The instant the clock jumped over `wall`, a wall time in a skipped hour: the gap's end."""
    new_offset = wall.replace(tzinfo=tz, fold=1).utcoffset()
    # Read with the new offset, `wall` is an instant before the jump; with the old one, an instant at or after it.
    # tzdata's transitions are whole seconds: bisect to the first second on the new offset.
    low = int(wall.replace(tzinfo=tz, fold=1).timestamp())
    high = int(wall.replace(tzinfo=tz, fold=0).timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, tz).utcoffset() == new_offset:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)


def cron_occurrences(expression: str, tz_name: str, after: datetime) -> Iterator[datetime]:
    """Occurrences strictly after `after` (aware), ascending, as aware UTC datetimes. The only code that turns a
    cron schedule into instants: nextRuns, beat, the runner's slot check and the sweeper all come here."""
    text = normalize_cron(expression)
    wildcard = _follows_the_clock(text)
    tz = ZoneInfo(tz_name)
    after = after.astimezone(UTC)
    # Read `after` with the smallest offset of the coming days: if the clock goes back soon, the second pass of
    # the repeated hour is on wall times before `after`'s own reading, and croniter must start before them.
    offset = min(after.astimezone(tz).utcoffset(), (after + _FALL_BACK_LOOKAHEAD).astimezone(tz).utcoffset())
    walls = croniter(text, (after + offset).replace(tzinfo=None))
    # Second passes come after every first pass of their hour: they wait here until it is their turn.
    second_passes: list[datetime] = []
    last = after
    while True:
        instants = _instants(walls.get_next(datetime), tz, wildcard)
        if not instants:
            continue
        # First passes (and gap ends) ascend with the wall clock; a second pass is due before any later one.
        while second_passes and second_passes[0] <= instants[0]:
            instant = heapq.heappop(second_passes)
            if instant > last:
                last = instant
                yield instant
        if instants[0] > last:
            last = instants[0]
            yield instants[0]
        for instant in instants[1:]:
            heapq.heappush(second_passes, instant)


def interval_occurrences(anchor: datetime, minutes: int, after: datetime) -> Iterator[datetime]:
    """anchor + k*minutes for k >= 1, strictly after `after`."""
    step = timedelta(minutes=minutes)
    # Aware arithmetic in a local zone is wall-clock arithmetic; intervals are exact, so count in UTC.
    anchor = anchor.astimezone(UTC)
    if after < anchor:
        k = 1
    else:
        k = (after - anchor) // step + 1
    while True:
        yield anchor + k * step
        k += 1


@cache
def describe(frequency_type: str, cron_expression: str | None, interval_minutes: int | None, tz_name: str) -> str:
    """A schedule in words ("At 02:30", "Every 15 minutes"), as the API's scheduleDescription and the admin
    show it; remembered per distinct schedule (lists show thousands of jobs sharing a few)."""
    if frequency_type == "INTERVAL_BASED":
        return "Every minute" if interval_minutes == 1 else f"Every {interval_minutes} minutes"
    options = Options()
    options.use_24hour_time_format = True
    text = get_description(normalize_cron(cron_expression), options)
    return text if tz_name == "UTC" else f"{text} ({tz_name})"
