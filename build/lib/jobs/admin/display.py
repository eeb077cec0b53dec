"""How the operator console shows things: status badges, times, durations, links to jobs and runs, plain tables.

Every function returns escaped text or safe HTML built with format_html, never a string with markup in it."""

from datetime import UTC, datetime, timedelta

from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.timesince import timesince, timeuntil

from jobs.models import JobHistory, RunStatus, ScheduledJob
from jobs.running.logs import signed_log_url

# Badge backgrounds, dark enough for white text (the dashboard's chart has its own, dashboard.COLORS).
STATUS_COLORS = {
    RunStatus.SUCCEEDED: "#2e7d32",
    RunStatus.FAILED: "#c62828",
    RunStatus.CANCELLED: "#6d6d6d",
    RunStatus.SKIPPED: "#b26a00",
    RunStatus.MISSED: "#6a1b9a",
    RunStatus.RUNNING: "#1565c0",
    RunStatus.QUEUED: "#5c8fc8",
}


def schedule_description(job: ScheduledJob) -> str:
    """The API's scheduleDescription ("At 02:30", "Every 15 minutes")."""
    try:
        return job.schedule_description
    except Exception:  # noqa: BLE001 - a row that breaks the describer must not break the list page
        return job.cron_expression or f"every {job.interval_minutes} min"


def status_badge(status: str | None, url: str | None = None) -> SafeString | str:
    if not status:
        return "—"
    color = STATUS_COLORS.get(status, "#555")
    badge = format_html(
        '<span style="display:inline-block;padding:1px 7px;border-radius:9px;color:#fff;background:{};'
        'font-size:11px;font-weight:600;letter-spacing:.02em">{}</span>',
        color,
        status,
    )
    return format_html('<a href="{}">{}</a>', url, badge) if url else badge


def when(value: datetime | None, relative: bool = True, extra: str = "") -> SafeString | str:
    """A UTC time to the minute, and under it "in 3 hours" / "5 minutes ago" (plus `extra`); exact on hover."""
    if value is None:
        return "—"
    value = value.astimezone(UTC)
    stamp = format_html(
        '<span title="{}" style="white-space:nowrap">{}</span>', value.isoformat(), value.strftime("%Y-%m-%d %H:%M UTC")
    )
    if not relative:
        return stamp
    now = timezone.now()
    span = f"{timesince(value, now, depth=1)} ago" if value <= now else f"in {timeuntil(value, now, depth=1)}"
    return format_html('{}<br><small class="quiet">{}{}</small>', stamp, span, extra)


def seconds_between(start: datetime | None, end: datetime | None) -> str:
    if start is None or end is None:
        return "—"
    seconds = (end - start).total_seconds()
    if seconds < 120:
        return f"{seconds:.1f} s"
    return str(timedelta(seconds=round(seconds)))


def run_url(run_id: int) -> str:
    return reverse("admin:jobs_jobhistory_change", args=[run_id])


def job_url(job_id: int) -> str:
    return reverse("admin:jobs_scheduledjob_change", args=[job_id])


def log_link(run: JobHistory) -> SafeString | str:
    if not run.log_path:
        return "—"
    return format_html('<a href="{}" target="_blank" rel="noopener">log</a>', signed_log_url(run))


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def table(headers: list[str], rows: list[list], empty: str) -> SafeString:
    """A plain admin-styled table; every cell is escaped unless it is already safe HTML."""
    if not rows:
        return format_html("<p>{}</p>", empty)
    head = format_html_join("", "<th>{}</th>", ((h,) for h in headers))
    body = format_html_join(
        "", "<tr>{}</tr>", ((format_html_join("", "<td>{}</td>", ((cell,) for cell in row)),) for row in rows)
    )
    return format_html("<table><thead><tr>{}</tr></thead><tbody>{}</tbody></table>", head, body)
