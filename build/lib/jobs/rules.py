"""The rules a job's arguments follow, shared by the API and the admin (both through jobs.services).

Every check raises a ValidationError naming the offending argument (its GraphQL name) and a stable code
(pointscene.core.errors), or returns the value to store. `Problems` gathers the refusals of a whole document so
that a client hears of all of them at once (extensions.problems).
"""

import unicodedata
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError

from jobs.models import FrequencyType, OverlapPolicy, ScheduledJob
from jobs.timing import InvalidCron, normalize_cron, validate_timezone
from pointscene.core import errors

T = TypeVar("T")

# An argument the caller did not give (None is a value: it clears or resets).
UNSET: Any = object()

MAX_NAME = 200
MAX_DESCRIPTION = 10_000
# Beat looks back at most two days for a late slot (jobs.scheduling.beat.MAX_CATCHUP).
MAX_CATCHUP_WINDOW_MINUTES = 2 * 24 * 60
MAX_JITTER_SECONDS = 3600
MAX_RETRIES = 10
MAX_RETRY_BACKOFF_SECONDS = 3600
MAX_PAUSE_AFTER_FAILURES = 1000
MIN_WEBHOOK_SECRET, MAX_WEBHOOK_SECRET = 16, 256
MAX_URL = 2048

# keyword -> (GraphQL argument name, lowest, highest) for the plain whole-number policies of a job.
POLICY_NUMBERS = {
    "catchup_window_minutes": ("catchupWindowMinutes", 0, MAX_CATCHUP_WINDOW_MINUTES),
    "jitter_seconds": ("jitterSeconds", 0, MAX_JITTER_SECONDS),
    "max_retries": ("maxRetries", 0, MAX_RETRIES),
    "retry_backoff_seconds": ("retryBackoffSeconds", 1, MAX_RETRY_BACKOFF_SECONDS),
}
# Every reliability policy a job carries, by model field (= keyword of create_job/update_job).
POLICY_FIELDS = (*POLICY_NUMBERS, "overlap_policy", "pause_after_failures", "webhook_url", "webhook_secret")


class Problems:
    """The refusals of one document, in the order its checks ran: the first stays the error's own code and
    field, as it was when the first refusal ended the request; the rest ride along."""

    def __init__(self) -> None:
        self._by_field: dict[str, list[ValidationError]] = {}

    def check(self, rule: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
        """What `rule` returns or, when it refuses, None (its problems are noted)."""
        try:
            return rule(*args, **kwargs)
        except ValidationError as exc:
            exc.update_error_dict(self._by_field)
            return None

    def add(self, field: str, code: str, message: str) -> None:
        errors.invalid(field, code, message).update_error_dict(self._by_field)

    def __bool__(self) -> bool:
        return bool(self._by_field)

    def __contains__(self, field: str) -> bool:
        return field in self._by_field

    def raise_any(self) -> None:
        if self._by_field:
            raise ValidationError(self._by_field)


def check_cron(value: object, field: str = "cronExpression") -> str:
    if not isinstance(value, str):
        raise errors.invalid(field, errors.INVALID_CRON, "must be a cron expression string")
    try:
        normalize_cron(value)
    except InvalidCron as exc:
        raise errors.invalid(field, errors.INVALID_CRON, str(exc)) from None
    return " ".join(value.split())


def check_interval(value: object, field: str = "intervalMinutes") -> int:
    limit = settings.JOBS_MAX_INTERVAL_MINUTES
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= limit:
        raise errors.invalid(field, errors.INVALID_INTERVAL, f"must be a whole number of minutes from 1 to {limit}")
    return value


def check_timezone(value: object, field: str = "timezone") -> str:
    if not isinstance(value, str):
        raise errors.invalid(field, errors.INVALID_TIMEZONE, "must be an IANA time zone name")
    try:
        validate_timezone(value)
    except (KeyError, ValueError):
        raise errors.invalid(field, errors.INVALID_TIMEZONE, f"{value!r} is not an IANA time zone name") from None
    return value


def check_time_limit(value: object, field: str = "timeLimitSeconds") -> int | None:
    if value is None:
        return None
    limit = settings.JOBS_RUN_TIME_LIMIT
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= limit:
        raise errors.invalid(field, errors.INVALID_VALUE, f"must be from 1 to {limit} seconds (the server's limit)")
    return value


def check_number(value: object, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise errors.invalid(field, errors.INVALID_VALUE, f"must be a whole number from {low} to {high}")
    return value


def check_overlap(value: object) -> str:
    if value not in OverlapPolicy.values:
        raise errors.invalid("overlapPolicy", errors.INVALID_VALUE, f"must be one of {', '.join(OverlapPolicy.values)}")
    return value


def check_webhook_url(value: object) -> str:
    message = f"must be an http:// or https:// URL with a host, of at most {MAX_URL} characters"
    if not isinstance(value, str) or len(value) > MAX_URL:
        raise errors.invalid("webhookUrl", errors.INVALID_VALUE, message)
    if any(ch.isspace() or unicodedata.category(ch) == "Cc" for ch in value):
        raise errors.invalid("webhookUrl", errors.INVALID_VALUE, message)
    try:
        parts = urlsplit(value)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise errors.invalid("webhookUrl", errors.INVALID_VALUE, message) from None
    if parts.scheme.lower() not in ("http", "https") or not host:
        raise errors.invalid("webhookUrl", errors.INVALID_VALUE, message)
    return value


def check_webhook_secret(value: object) -> str:
    if not isinstance(value, str) or not MIN_WEBHOOK_SECRET <= len(value) <= MAX_WEBHOOK_SECRET:
        raise errors.invalid(
            "webhookSecret",
            errors.INVALID_VALUE,
            f"must be a string of {MIN_WEBHOOK_SECRET} to {MAX_WEBHOOK_SECRET} characters",
        )
    return value


def check_text(value: object, field: str, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise errors.invalid(field, errors.INVALID_VALUE, f"must be a string of at most {limit} characters")
    return value


def check_name(name: object) -> str:
    """The name of an instance or a resource: required, trimmed."""
    name = name.strip() if isinstance(name, str) else ""
    if not name or len(name) > MAX_NAME:
        raise errors.invalid("name", errors.INVALID_VALUE, f"must be 1 to {MAX_NAME} characters")
    return name


def check_policy_keywords(policies: dict[str, Any]) -> None:
    """A keyword that is no policy is the caller's bug, not the client's: TypeError, as for any bad keyword."""
    unknown = set(policies) - set(POLICY_FIELDS)
    if unknown:
        raise TypeError(f"unknown job policies: {sorted(unknown)}")


def clean_policies(policies: dict[str, Any], problems: Problems) -> dict[str, Any]:
    """The given policies (UNSET ones left out) that pass, as model values; the refused ones go to `problems`. A
    null number or overlap policy goes back to its default; a null webhookUrl turns notifications off. The webhook
    secret comes back as plain text: the caller encrypts it."""
    checks: dict[str, tuple[Callable[..., Any], tuple]] = {
        keyword: (check_number, (field, low, high)) for keyword, (field, low, high) in POLICY_NUMBERS.items()
    }
    checks["overlap_policy"] = (check_overlap, ())
    checks["pause_after_failures"] = (check_number, ("pauseAfterFailures", 1, MAX_PAUSE_AFTER_FAILURES))
    checks["webhook_secret"] = (check_webhook_secret, ())
    checks["webhook_url"] = (check_webhook_url, ())
    # What a null means; webhook_secret has none (null leaves the stored secret alone).
    nulls = {keyword: ScheduledJob._meta.get_field(keyword).default for keyword in POLICY_NUMBERS}
    nulls.update(overlap_policy=OverlapPolicy.SKIP, pause_after_failures=None, webhook_url=None)

    clean: dict[str, Any] = {}
    for keyword, (rule, args) in checks.items():
        value = policies.get(keyword, UNSET)
        if value is UNSET or (value is None and keyword not in nulls):
            continue
        if value is None and nulls[keyword] is None:
            clean[keyword] = None
            continue
        # None from a rule that never returns it: the value was refused.
        checked = problems.check(rule, nulls[keyword] if value is None else value, *args)
        if checked is not None:
            clean[keyword] = checked
    return clean


def check_webhook_signed(webhook_url: str | None, webhook_secret: str | None) -> None:
    if webhook_url and not webhook_secret:
        raise errors.invalid("webhookSecret", errors.REQUIRED, "is required with webhookUrl: it signs every delivery")


def schedule_fields(
    frequency_type: object,
    cron_expression: object,
    interval_minutes: object,
) -> tuple[str | None, int | None]:
    """(cron, interval) for a frequency type, enforcing 'required' and 'must be absent'. None means absent."""
    problems = Problems()
    if frequency_type == FrequencyType.CRON_BASED:
        if cron_expression is None:
            problems.add("cronExpression", errors.REQUIRED, "is required when frequencyType is CRON_BASED")
        if interval_minutes is not None:
            problems.add("intervalMinutes", errors.NOT_ALLOWED, "must be absent when frequencyType is CRON_BASED")
        cron = None if cron_expression is None else problems.check(check_cron, cron_expression)
        problems.raise_any()
        return cron, None
    if frequency_type == FrequencyType.INTERVAL_BASED:
        if interval_minutes is None:
            problems.add("intervalMinutes", errors.REQUIRED, "is required when frequencyType is INTERVAL_BASED")
        if cron_expression is not None:
            problems.add("cronExpression", errors.NOT_ALLOWED, "must be absent when frequencyType is INTERVAL_BASED")
        interval = None if interval_minutes is None else problems.check(check_interval, interval_minutes)
        problems.raise_any()
        return None, interval
    raise errors.invalid("frequencyType", errors.INVALID_VALUE, "must be CRON_BASED or INTERVAL_BASED")


def same_frequency_fields(
    frequency_type: str, cron_expression: object, interval_minutes: object
) -> tuple[str | None, int | None]:
    """For an edit that keeps the job's frequency type: the (cron, interval) given, checked; None where not given.
    The other type's field is refused (changing type is said with frequencyType)."""
    problems = Problems()
    if frequency_type == FrequencyType.CRON_BASED:
        if interval_minutes is not None:
            problems.add("intervalMinutes", errors.NOT_ALLOWED, "this job is CRON_BASED; change frequencyType too")
        cron = None if cron_expression is None else problems.check(check_cron, cron_expression)
        problems.raise_any()
        return cron, None
    if cron_expression is not None:
        problems.add("cronExpression", errors.NOT_ALLOWED, "this job is INTERVAL_BASED; change frequencyType too")
    interval = None if interval_minutes is None else problems.check(check_interval, interval_minutes)
    problems.raise_any()
    return None, interval
