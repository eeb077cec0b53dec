"""The operator's dashboard (/admin/dashboard/, wired in site.py): how runs went over the last day, which jobs are
failing, how much work is waiting, and which workers are about. One page, a handful of aggregate queries, no
JavaScript. The queue depth is /metrics' own (jobs.ops.metrics.queue_depth), so the two never disagree.
"""

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.core.exceptions import PermissionDenied
from django.db.models import Count, Max, Min, Q
from django.db.models.functions import TruncHour
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from jobs import health
from jobs.admin.queries import latest_run
from jobs.models import JobHistory, RunStatus, ScheduledJob
from jobs.ops.metrics import queue_depth

HOURS = 24
FAILING_LISTED = 50
# Bottom to top in each bar: outcomes first, then what is still going.
CHART_ORDER = (
    RunStatus.SUCCEEDED,
    RunStatus.FAILED,
    RunStatus.CANCELLED,
    RunStatus.SKIPPED,
    RunStatus.MISSED,
    RunStatus.RUNNING,
    RunStatus.QUEUED,
)
COLORS = {
    RunStatus.SUCCEEDED: "#2e7d32",
    RunStatus.FAILED: "#c62828",
    RunStatus.CANCELLED: "#8a8a8a",
    RunStatus.SKIPPED: "#e0a100",
    RunStatus.MISSED: "#8e24aa",
    RunStatus.RUNNING: "#1565c0",
    RunStatus.QUEUED: "#90b8e8",
}
# The chart's geometry, in SVG user units.
BAR_WIDTH, BAR_GAP, PLOT_HEIGHT, LEFT, TOP, BOTTOM = 24, 6, 180, 40, 10, 28


@dataclass
class Segment:
    status: str
    count: int
    color: str
    y: float = 0
    height: float = 0


@dataclass
class HourBar:
    hour: datetime
    segments: list[Segment] = field(default_factory=list)
    x: float = 0
    label: str = ""

    @property
    def total(self) -> int:
        return sum(s.count for s in self.segments)


def dashboard(request: HttpRequest, site_context: dict) -> HttpResponse:
    """Staff only (the site's admin_view); and only for those who may see jobs, since it names them.
    `site_context` is the admin site's each_context: title, header and the navigation."""
    if not can_see_jobs(request.user):
        raise PermissionDenied
    now = timezone.now()
    bars, since = runs_per_hour(now)
    totals = Counter()
    for bar in bars:
        for segment in bar.segments:
            totals[segment.status] += segment.count
    chart = layout_chart(bars)
    failing, failing_count = failing_jobs()
    context = {
        **site_context,
        "title": "Jobs dashboard",
        "now": now,
        "since": since,
        "chart": chart,
        "bars": bars,
        "legend": [(s, COLORS[s], totals.get(s, 0)) for s in CHART_ORDER],
        "total_runs": sum(totals.values()),
        "failing": failing,
        "failing_count": failing_count,
        "failing_listed": FAILING_LISTED,
        "jobs": job_counts(),
        "in_flight": in_flight_runs(),
        "queue": queue_depth(),
        "workers_check": health.workers(),
        "schedule_check": health.reconciled(),
        "recent_workers": recent_workers(since),
    }
    return TemplateResponse(request, "admin/jobs/dashboard.html", context)


def can_see_jobs(user) -> bool:
    # As the admin itself reckons it: whoever may change jobs may see them.
    return user.has_perm("jobs.view_scheduledjob") or user.has_perm("jobs.change_scheduledjob")


def runs_per_hour(now: datetime) -> tuple[list[HourBar], datetime]:
    """Runs created in each of the last 24 hours (the current one included), by their status now: one query."""
    since = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=HOURS - 1)
    rows = (
        JobHistory.objects.filter(created_at__gte=since)
        .annotate(hour=TruncHour("created_at", tzinfo=UTC))
        .values("hour", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    counts: dict[tuple[datetime, str], int] = {}
    for row in rows:
        counts[(row["hour"].astimezone(UTC), row["status"])] = row["n"]
    bars = []
    for i in range(HOURS):
        hour = since + timedelta(hours=i)
        segments = [Segment(s, counts.get((hour, s), 0), COLORS[s]) for s in CHART_ORDER]
        bars.append(HourBar(hour, [s for s in segments if s.count]))
    return bars, since


def layout_chart(bars: list[HourBar]) -> dict:
    """Stacked bars on a 0..max axis, laid out here so the template only draws rectangles."""
    peak = max((bar.total for bar in bars), default=0)
    top = _nice_ceiling(peak)
    scale = PLOT_HEIGHT / top
    for i, bar in enumerate(bars):
        bar.x = LEFT + i * (BAR_WIDTH + BAR_GAP)
        bar.label = bar.hour.strftime("%H:00") if i % 3 == 0 or i == len(bars) - 1 else ""
        y = TOP + PLOT_HEIGHT
        for segment in bar.segments:
            segment.height = segment.count * scale
            y -= segment.height
            segment.y = y
    ticks = [(TOP + PLOT_HEIGHT - value * scale, value) for value in (0, top // 2, top)] if top > 1 else []
    width = LEFT + len(bars) * (BAR_WIDTH + BAR_GAP)
    return {
        "width": width,
        "height": TOP + PLOT_HEIGHT + BOTTOM,
        "bar_width": BAR_WIDTH,
        "baseline": TOP + PLOT_HEIGHT,
        "label_y": TOP + PLOT_HEIGHT + 16,
        "left": LEFT,
        "ticks": ticks,
        "peak": peak,
    }


def _nice_ceiling(value: int) -> int:
    """The smallest of 2, 4, 10, 20, 40, 100, ... at or above `value`: even, so the middle tick is whole."""
    step = 1
    while True:
        for factor in (2, 4, 10):
            if step * factor >= value:
                return step * factor
        step *= 10


def failing_jobs() -> tuple[list[ScheduledJob], int]:
    """Jobs whose latest run failed, the most recent failure first, and how many there are."""
    failing = ScheduledJob.objects.annotate(last_status=latest_run("status")).filter(last_status=RunStatus.FAILED)
    listed = list(
        failing.annotate(
            last_run_id=latest_run("id"), last_finished_at=latest_run("finished_at"), last_error=latest_run("error")
        )
        .select_related("instance")
        .defer("workflow", "description")
        .order_by("-last_finished_at", "-id")[:FAILING_LISTED]
    )
    return listed, failing.count()


def job_counts() -> dict:
    counts = ScheduledJob.objects.aggregate(total=Count("id"), active=Count("id", filter=Q(active=True)))
    return {**counts, "paused": counts["total"] - counts["active"]}


def in_flight_runs() -> dict:
    """Queued and running runs according to the database, and how long the oldest queued one has waited."""
    found = JobHistory.objects.filter(status__in=(RunStatus.QUEUED, RunStatus.RUNNING)).aggregate(
        queued=Count("id", filter=Q(status=RunStatus.QUEUED)),
        running=Count("id", filter=Q(status=RunStatus.RUNNING)),
        oldest_queued=Min("created_at", filter=Q(status=RunStatus.QUEUED)),
    )
    return found


def recent_workers(since: datetime) -> list[dict]:
    """The workers that started runs since `since`, from the runs themselves: who has been doing the work."""
    return list(
        # Bounded by created_at like the chart's query, so one index on it would serve both.
        JobHistory.objects.filter(created_at__gte=since, started_at__gte=since, worker__isnull=False)
        .values("worker")
        .annotate(runs=Count("id"), last_started=Max("started_at"))
        .order_by("-last_started")[:20]
    )
