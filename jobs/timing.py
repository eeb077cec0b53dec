"""Cron and interval arithmetic: the one place that says when a job runs.

Occurrences are computed on the job's local wall clock and returned as aware UTC datetimes. On a day the
clock skips an hour, a time inside the gap runs once, shifted forward by the gap (Helsinki's 03:30 on the spring
day runs at 04:30 EEST, as if the clock had not jumped yet); on a day the clock repeats an hour, a time inside it
runs once, on its first pass.
"""

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import cache
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


def _to_utc(wall: datetime, tz: ZoneInfo) -> datetime:
    # fold=0: in a repeated hour this is the first pass; in a skipped hour zoneinfo applies the offset from
    # before the jump, which lands on the instant the clock jumps to (02:30 -> 03:30 on the spring day).
    return wall.replace(tzinfo=tz, fold=0).astimezone(UTC)


def cron_occurrences(expression: str, tz_name: str, after: datetime) -> Iterator[datetime]:
    """Occurrences strictly after `after` (aware), ascending, as aware UTC datetimes."""
    tz = ZoneInfo(tz_name)
    local_after = after.astimezone(tz).replace(tzinfo=None)
    # Start an hour back in wall-clock time so that a time squeezed by a DST gap is not stepped over.
    it = croniter(normalize_cron(expression), local_after - timedelta(hours=1))
    last = after
    while True:
        wall = it.get_next(datetime)
        instant = _to_utc(wall, tz)
        if instant > last:
            last = instant
            yield instant


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
