"""Runs (JobHistory) in the console: the list, a run's page (timings, steps, the end of its log) and cancelling.

Runs are records: made by the schedule or by "run now", never typed in or edited here. Cancelling goes through
jobs.services.cancel_run, as the API's does.
"""

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.storage import default_storage
from django.db.models import QuerySet
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from jobs import services
from jobs.admin.display import (
    job_url,
    log_link,
    plural,
    run_url,
    schedule_description,
    seconds_between,
    status_badge,
    table,
    when,
)
from jobs.admin.filters import InstanceFilter, JobFilter
from jobs.admin.site import site
from jobs.admin.task_results import task_result_link
from jobs.models import JobHistory, RunStatus
from jobs.running.logs import signed_log_url

# The run page embeds the end of the log; the whole file is one click away (the signed link).
LOG_TAIL_BYTES = 200 * 1024
ACTIVE_RUN_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING)


class RunChangeList(ChangeList):
    def get_queryset(self, request, exclude_parameters=None):
        # Steps, errors and the job's workflow are for the run's own page, not for a page of 100 runs.
        queryset = super().get_queryset(request, exclude_parameters)
        return queryset.defer("steps", "error", "job__workflow", "job__description")


def cancel_runs(runs: QuerySet) -> tuple[str, str]:
    """Cancels queued runs and asks workers to stop running ones; the operator's message and its level."""
    cancelled = signalled = ended = 0
    for run in runs.select_related(None).only("pk", "status"):
        try:
            result = services.cancel_run(run)
        except ValidationError:
            ended += 1  # it ended between the listing and the click
            continue
        if result.status == RunStatus.CANCELLED:
            cancelled += 1
        else:
            signalled += 1
    if not (cancelled or signalled or ended):
        return "Nothing to cancel: no queued or running runs.", messages.INFO
    parts = []
    if cancelled:
        parts.append(f"{plural(cancelled, 'queued run')} cancelled")
    if signalled:
        parts.append(f"{plural(signalled, 'running run')} asked to stop (its worker marks it CANCELLED)")
    if ended:
        parts.append(f"{plural(ended, 'run')} had already ended")
    return "; ".join(parts).capitalize() + ".", messages.SUCCESS if cancelled or signalled else messages.WARNING


@admin.register(JobHistory, site=site)
class JobHistoryAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "job_col",
        "instance",
        "status_badge",
        "trigger",
        "scheduled",
        "started",
        "took",
        "worker",
        "log",
    )
    list_filter = (
        "status",
        "trigger",
        ("created_at", admin.DateFieldListFilter),
        InstanceFilter,
        JobFilter,
    )
    list_select_related = ("job", "instance")
    search_fields = ("=id",)
    search_help_text = "A run's id (123 or #123)."
    # The primary key follows creation and is indexed; there is no index on created_at alone to sort by.
    ordering = ("-id",)
    # History grows by millions of rows: one COUNT(*) per page is enough, and no counts per filter choice.
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    raw_id_fields = ("job", "instance")
    actions = ("cancel",)
    change_form_template = "admin/jobs/jobhistory/change_form.html"
    change_list_template = "admin/jobs/change_list_with_dashboard.html"
    fieldsets = (
        (None, {"fields": ("job_link", "instance", "status_badge", "trigger", "worker", "celery_task", "error")}),
        ("Timings", {"fields": ("timings",)}),
        ("Progress", {"fields": ("progress_panel",)}),
        ("Steps", {"fields": ("steps_table",)}),
        ("Log", {"fields": ("log_panel",)}),
    )
    readonly_fields = (
        "job_link",
        "instance",
        "status_badge",
        "trigger",
        "worker",
        "celery_task",
        "error",
        "timings",
        "steps_table",
        "progress_panel",
        "log_panel",
    )

    def has_add_permission(self, request):
        # Runs are made by the schedule or by "run now", never typed in.
        return False

    def get_changelist(self, request, **kwargs):
        return RunChangeList

    def get_search_results(self, request, queryset, search_term):
        ids = [int(w.lstrip("#")) for w in search_term.split() if w.lstrip("#").isdigit() and len(w) < 19]
        if search_term.strip() and not ids:
            return queryset.none(), False
        return (queryset.filter(pk__in=ids) if ids else queryset), False

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # A run is a record: nothing on its page is edited, so there is nothing to save.
        extra = {"show_save": False, "show_save_and_continue": False, "show_save_and_add_another": False}
        # A going run's page reloads itself as often as the worker saves its progress (not faster than 2 s).
        extra["refresh_ms"] = max(2, settings.JOBS_PROGRESS_SECONDS) * 1000
        return super().change_view(request, object_id, form_url, {**extra, **(extra_context or {})})

    # ---- columns and panels

    @admin.display(description="status", ordering="status")
    def status_badge(self, run: JobHistory):
        return status_badge(run.status)

    @admin.display(description="job", ordering="job_id")
    def job_col(self, run: JobHistory):
        return format_html('<a href="{}">{}</a>', job_url(run.job_id), run.job)

    @admin.display(description="scheduled for", ordering="scheduled_for")
    def scheduled(self, run: JobHistory):
        return when(run.scheduled_for, relative=False)

    @admin.display(description="started", ordering="started_at")
    def started(self, run: JobHistory):
        return when(run.started_at)

    @admin.display(description="took")
    def took(self, run: JobHistory):
        return seconds_between(run.started_at, run.finished_at)

    @admin.display(description="waited")
    def waited(self, run: JobHistory):
        """From the slot (or the click, for manual runs) to a worker starting it."""
        return seconds_between(run.scheduled_for or run.created_at, run.started_at)

    @admin.display(description="log")
    def log(self, run: JobHistory):
        return log_link(run)

    @admin.display(description="Celery task")
    def celery_task(self, run: JobHistory):
        return task_result_link(run)

    @admin.display(description="timings")
    def timings(self, run: JobHistory):
        rows = [
            ["scheduled for", when(run.scheduled_for), "the schedule slot (manual runs have none)"],
            ["created", when(run.created_at), "recorded: by beat for its slot, or by run now"],
            ["published", when(run.published_at), "sent to the queue by beat"],
            ["started", when(run.started_at), "taken by a worker"],
            ["finished", when(run.finished_at), ""],
            ["cancel requested", when(run.cancel_requested_at), ""],
            ["waited", self.waited(run), "from the slot (or the click) to a worker starting it"],
            ["took", self.took(run), "from start to finish"],
        ]
        return table(["", "time (UTC)", ""], rows, "")

    @admin.display(description="job")
    def job_link(self, run: JobHistory):
        return format_html(
            '<a href="{}">{}</a> · schedule: {}', job_url(run.job_id), run.job, schedule_description(run.job)
        )

    @admin.display(description="steps")
    def steps_table(self, run: JobHistory):
        steps = run.steps if isinstance(run.steps, list) else []
        rows = []
        for step in steps:
            if not isinstance(step, dict):
                continue
            counters = step.get("counters") if isinstance(step.get("counters"), dict) else {}
            seconds = step.get("seconds")
            rows.append(
                [
                    step.get("name", "—"),
                    format_html("<code>{}</code>", step.get("type", "—")),
                    status_badge(step.get("status")),
                    f"{seconds:.3f} s" if isinstance(seconds, int | float) else "—",
                    format_html_join(mark_safe("<br>"), "{}: {}", sorted(counters.items())) if counters else "—",
                    step.get("error") or "",
                ]
            )
        return table(["name", "type", "status", "seconds", "counters", "error"], rows, "No steps recorded yet.")

    @admin.display(description="progress")
    def progress_panel(self, run: JobHistory):
        steps = [s for s in run.steps or [] if isinstance(s, dict) and isinstance(s.get("progress"), dict)]
        if not steps:
            return "No step has reported progress yet." if not run.finished else "No step reported progress."
        step = next((s for s in steps if s.get("status") == "RUNNING"), steps[-1])
        p = step["progress"]
        done, total = p.get("bytesDone", 0), p.get("bytesTotal") or 0
        eta = p.get("etaSeconds")
        facts = [
            f"{_mib(done)} of {_mib(total)} MiB" if total else f"{_mib(done)} MiB so far",
            f"{p.get('filesDone', 0)} of {p.get('filesTotal') or '?'} files",
            f"{_mib(p.get('speed', 0))} MiB/s",
            f"ETA {eta} s" if eta is not None else "ETA unknown",
            f"{p.get('errors', 0)} errors",
        ]
        return format_html(
            '<progress id="run-progress" value="{}" max="{}" style="width:40em"></progress>'
            "<p>step {}: {} · saved {}</p>",
            done,
            total or max(done, 1),
            step.get("name", "—"),
            " · ".join(facts),
            p.get("updatedAt", "—"),
        )

    @admin.display(description="log")
    def log_panel(self, run: JobHistory):
        if not run.log_path:
            if run.finished:
                return "This run has no log."
            return "No log yet: what the run logs appears here as it goes (this page reloads itself)."
        link = format_html(
            '<p><a href="{}" target="_blank" rel="noopener">Open the whole log</a> '
            "(a signed link, valid for a while; it works without signing in).</p>",
            signed_log_url(run),
        )
        try:
            text, truncated, size = read_log_tail(run.log_path)
        except FileNotFoundError:
            return format_html("{}<p>The log file is missing from storage ({}).</p>", link, run.log_path)
        except Exception as exc:  # noqa: BLE001 - storage trouble is shown, not turned into a 500
            return format_html("{}<p>The log could not be read: {}.</p>", link, type(exc).__name__)
        note = (
            format_html("<p>Showing the last {} KB of {} KB.</p>", LOG_TAIL_BYTES // 1024, (size + 1023) // 1024)
            if truncated
            else ""
        )
        return format_html(
            '{}{}<pre style="max-height:40em;min-width:60em;overflow:auto;white-space:pre-wrap;'
            'background:var(--darkened-bg);padding:8px;border:1px solid var(--hairline-color)">{}</pre>',
            link,
            note,
            text,
        )

    # ---- cancelling

    @admin.action(description="Cancel selected runs (queued or running)", permissions=["change"])
    def cancel(self, request, queryset):
        self.message_user(request, *cancel_runs(queryset.filter(status__in=ACTIVE_RUN_STATUSES)))

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("<path:object_id>/cancel/", wrap(self.cancel_view), name="jobs_jobhistory_cancel"),
            *super().get_urls(),
        ]

    def cancel_view(self, request, object_id):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not str(object_id).isdigit():
            raise Http404
        run = get_object_or_404(JobHistory, pk=object_id)
        if not self.has_change_permission(request, run):
            raise PermissionDenied
        self.message_user(request, *cancel_runs(JobHistory.objects.filter(pk=run.pk, status__in=ACTIVE_RUN_STATUSES)))
        return HttpResponseRedirect(run_url(run.pk))


def read_log_tail(path: str, limit: int = LOG_TAIL_BYTES) -> tuple[str, bool, int]:
    """The last `limit` bytes of a stored log as text (from a whole line), whether it was cut, and its size."""
    size = default_storage.size(path)
    with default_storage.open(path, "rb") as handle:
        truncated = size > limit
        if truncated:
            handle.seek(size - limit)
        data = handle.read(limit)
    text = data.decode("utf-8", errors="replace")
    if truncated and "\n" in text:
        text = text.split("\n", 1)[1]
    return text, truncated, size


def _mib(size: float) -> str:
    return f"{size / (1 << 20):.1f}"
