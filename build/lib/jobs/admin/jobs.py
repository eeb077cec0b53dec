"""Scheduled jobs in the console: the list (next and last run, last outcome), a job's page (its next runs, its
recent runs), and pause, resume, run now and cancel, as list actions and as buttons on the job's page.

Every change goes through jobs.services, as the API's do, so that validation is the same and the schedule
entries in Redis follow after commit. Next runs are computed in Python from the row itself, and the latest run
is a subquery (queries.with_latest_run): a page of jobs costs the same queries however many jobs there are.
"""

from datetime import UTC, tzinfo
from zoneinfo import ZoneInfo

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.timesince import timeuntil

from jobs import rules, secret_args, services
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
from jobs.admin.filters import InstanceFilter, LastOutcomeFilter
from jobs.admin.preview import preview_response
from jobs.admin.queries import search_by_name_or_id, with_latest_run
from jobs.admin.runs import ACTIVE_RUN_STATUSES, cancel_runs
from jobs.admin.site import site
from jobs.models import JobHistory, RunStatus, ScheduledJob

NEWEST_FIRST = ("-created_at", "-id")
UPCOMING_RUNS = 10
RECENT_RUNS = 20
# "Run now" on more jobs than this at once is more likely a slip of "select all" than an intention.
MAX_RUN_NOW = 100


class JobChangeList(ChangeList):
    def get_queryset(self, request, exclude_parameters=None):
        # A workflow may be 64 KB; a page of 100 jobs needs none of them.
        return super().get_queryset(request, exclude_parameters).defer("workflow", "description")


class ScheduledJobForm(forms.ModelForm):
    class Meta:
        model = ScheduledJob
        fields = "__all__"

    # Policies with a default: a form that leaves one out (or empty) keeps what the job has.
    KEEP_WHEN_EMPTY = (
        "overlap_policy",
        "catchup_window_minutes",
        "jitter_seconds",
        "max_retries",
        "retry_backoff_seconds",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in self.KEEP_WHEN_EMPTY:
            if name in self.fields:
                self.fields[name].required = False

    def clean(self):
        data = super().clean()
        for name in self.KEEP_WHEN_EMPTY:
            if data.get(name) in (None, ""):
                data[name] = getattr(self.instance, name)
        candidate = ScheduledJob(**{k: v for k, v in data.items() if k in _JOB_FIELDS})
        candidate.instance_id = data["instance"].pk if data.get("instance") else None
        # The job's id: {"keep": true} secret values are checked against what this job has stored.
        candidate.pk = self.instance.pk
        # Not on the form (write-only, set through the API), but a webhook URL needs it.
        candidate.webhook_secret = self.instance.webhook_secret
        try:
            services.validate_job(candidate)
        except ValidationError as exc:
            # The API's argument names are not the form's; show the problems above the form.
            raise ValidationError([f"{field}: {'; '.join(msgs)}" for field, msgs in exc.message_dict.items()]) from None
        return data


_JOB_FIELDS = {
    "frequency_type",
    "cron_expression",
    "interval_minutes",
    "timezone",
    "workflow",
    "name",
    "description",
    "time_limit_seconds",
    *rules.POLICY_FIELDS,
}


@admin.register(ScheduledJob, site=site)
class ScheduledJobAdmin(admin.ModelAdmin):
    form = ScheduledJobForm
    list_display = (
        "id",
        "name",
        "instance",
        "schedule",
        "timezone",
        "next_run",
        "last_run",
        "last_outcome",
        "active",
    )
    list_display_links = ("id", "name")
    list_filter = (InstanceFilter, "active", LastOutcomeFilter, "frequency_type")
    list_select_related = ("instance",)
    search_fields = ("name", "=id")
    search_help_text = "A job's name, or its id (123 or #123)."
    raw_id_fields = ("instance",)
    readonly_fields = (
        "schedule_anchor",
        "last_run_at",
        "created_at",
        "updated_at",
        "schedule_in_words",
        "upcoming_runs",
        "recent_runs",
        "consecutive_failures",
        "paused_reason",
    )
    actions = ("pause", "resume", "run_now", "cancel_running")
    change_form_template = "admin/jobs/scheduledjob/change_form.html"
    change_list_template = "admin/jobs/change_list_with_dashboard.html"

    def get_queryset(self, request):
        return with_latest_run(super().get_queryset(request))

    def get_object(self, request, object_id, from_field=None):
        job = super().get_object(request, object_id, from_field)
        if job is not None:
            # Every view of the job (form, read-only page) shows secret values as {"keep": true}: names only,
            # neither ciphertext nor plaintext; saving the form keeps them (services.save_job).
            job.workflow = secret_args.editable_workflow(job.workflow)
        return job

    def get_changelist(self, request, **kwargs):
        return JobChangeList

    def get_search_results(self, request, queryset, search_term):
        return search_by_name_or_id(queryset, search_term), False

    def get_fieldsets(self, request, obj=None):
        fieldsets = [
            (None, {"fields": ("instance", "name", "description", "active")}),
            (
                "Schedule",
                {
                    "fields": (
                        "frequency_type",
                        "cron_expression",
                        "interval_minutes",
                        "timezone",
                        "schedule_in_words",
                        "time_limit_seconds",
                    )
                },
            ),
            (
                "Workflow",
                {
                    "fields": ("workflow",),
                    "description": 'Secret header values show as {"keep": true}, which keeps them; a string '
                    "replaces one.",
                },
            ),
            (
                "Reliability",
                {
                    "classes": ("collapse",),
                    "description": "The webhook's signing secret is set through the API only.",
                    "fields": (
                        "overlap_policy",
                        "catchup_window_minutes",
                        "jitter_seconds",
                        ("max_retries", "retry_backoff_seconds"),
                        "pause_after_failures",
                        ("consecutive_failures", "paused_reason"),
                        "webhook_url",
                    ),
                },
            ),
            (
                "Bookkeeping",
                {"classes": ("collapse",), "fields": ("schedule_anchor", "last_run_at", "created_at", "updated_at")},
            ),
        ]
        if obj is not None:
            fieldsets.insert(2, ("Runs", {"fields": ("upcoming_runs", "recent_runs")}))
        return fieldsets

    # ---- list columns

    @admin.display(description="schedule")
    def schedule(self, job: ScheduledJob):
        raw = job.cron_expression if job.cron_expression else f"every {job.interval_minutes} min"
        return format_html('<span title="{}">{}</span>', raw, schedule_description(job))

    @admin.display(description="next run")
    def next_run(self, job: ScheduledJob):
        if not job.active:
            return "paused"
        try:
            return when(job.next_run(timezone.now()))
        except Exception:  # noqa: BLE001 - one row the schedule code cannot read must not take the page down
            return "cannot be computed"

    @admin.display(description="last run", ordering="last_run_at")
    def last_run(self, job: ScheduledJob):
        started = getattr(job, "last_started_at", None) or job.last_run_at
        if started is None:
            return "queued" if getattr(job, "last_status", None) == RunStatus.QUEUED else "never"
        finished = getattr(job, "last_finished_at", None)
        return when(started, extra=f" · took {seconds_between(started, finished)}" if finished else "")

    @admin.display(description="outcome", ordering="last_status")
    def last_outcome(self, job: ScheduledJob):
        run_id = getattr(job, "last_run_id", None)
        return status_badge(getattr(job, "last_status", None), run_url(run_id) if run_id else None)

    # ---- change page panels

    @admin.display(description="in words")
    def schedule_in_words(self, job: ScheduledJob):
        if job is None or job.pk is None:
            return "—"
        return schedule_description(job)

    @admin.display(description=f"next {UPCOMING_RUNS} runs")
    def upcoming_runs(self, job: ScheduledJob):
        if not job.active:
            return "Paused: no upcoming runs. Resume the job to schedule it again."
        now = timezone.now()
        tz = _zone(job.timezone)
        try:
            upcoming = job.next_runs(UPCOMING_RUNS, now)
        except Exception as exc:  # noqa: BLE001 - shown to the operator, who can fix the schedule below
            return f"The next runs cannot be computed: {exc}"
        rows = []
        for i, at in enumerate(upcoming, start=1):
            local = at.astimezone(tz)
            rows.append(
                [
                    i,
                    format_html("<code>{}</code>", at.strftime("%Y-%m-%d %H:%M UTC")),
                    format_html("<code>{}</code>", local.strftime(f"%a %Y-%m-%d %H:%M {local.tzname()}")),
                    f"in {timeuntil(at, now, depth=2)}",
                ]
            )
        return table(["#", "UTC", f"local ({job.timezone})", "when"], rows, "No upcoming runs.")

    @admin.display(description=f"last {RECENT_RUNS} runs")
    def recent_runs(self, job: ScheduledJob):
        runs = list(job.history.order_by(*NEWEST_FIRST)[:RECENT_RUNS])
        rows = [
            [
                format_html('<a href="{}">#{}</a>', run_url(run.pk), run.pk),
                run.trigger,
                status_badge(run.status),
                when(run.scheduled_for, relative=False),
                when(run.started_at),
                seconds_between(run.started_at, run.finished_at),
                run.worker or "—",
                log_link(run),
            ]
            for run in runs
        ]
        all_runs = reverse("admin:jobs_jobhistory_changelist") + f"?job={job.pk}"
        return format_html(
            '{}<p><a href="{}">All runs of this job →</a></p>',
            table(
                ["run", "trigger", "status", "scheduled for", "started", "took", "worker", "log"],
                rows,
                "No runs yet.",
            ),
            all_runs,
        )

    # ---- saving goes through the services

    def save_model(self, request, obj, form, change):
        services.save_job(obj)

    def delete_model(self, request, obj):
        services.delete_job(obj)

    def delete_queryset(self, request, queryset):
        for job in queryset:
            services.delete_job(job)

    # ---- actions

    @admin.action(description="Pause selected jobs", permissions=["change"])
    def pause(self, request, queryset):
        self._set_active(request, queryset, False)

    @admin.action(description="Resume selected jobs", permissions=["change"])
    def resume(self, request, queryset):
        self._set_active(request, queryset, True)

    def _set_active(self, request, queryset, active: bool) -> None:
        word = "resumed" if active else "paused"
        changed = 0
        for job in ScheduledJob.objects.filter(pk__in=queryset.values("pk"), active=not active).only("pk"):
            services.update_job(job, active=active)
            changed += 1
        unchanged = queryset.count() - changed
        text = f"{plural(changed, 'job')} {word}"
        if unchanged:
            text += f"; {plural(unchanged, 'job')} already {word}"
        self.message_user(request, text + ".", messages.SUCCESS if changed else messages.INFO)

    @admin.action(description="Run selected jobs now", permissions=["change"])
    def run_now(self, request, queryset):
        count = queryset.count()
        if count > MAX_RUN_NOW:
            self.message_user(
                request,
                f"Not run: {count} jobs selected; run at most {MAX_RUN_NOW} at once.",
                messages.ERROR,
            )
            return
        runs = [services.run_now(job) for job in ScheduledJob.objects.filter(pk__in=queryset.values("pk"))]
        ids = ", ".join(f"#{run.pk}" for run in runs[:20]) + (" …" if len(runs) > 20 else "")
        self.message_user(request, f"Queued {plural(len(runs), 'run')}: {ids}.", messages.SUCCESS)

    @admin.action(description="Cancel running or queued runs of selected jobs", permissions=["change"])
    def cancel_running(self, request, queryset):
        runs = JobHistory.objects.filter(job_id__in=queryset.values("pk"), status__in=ACTIVE_RUN_STATUSES)
        self.message_user(request, *cancel_runs(runs))

    # ---- per-job buttons on the change page (POST only)

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("preview-schedule/", wrap(self.preview_schedule_view), name="jobs_scheduledjob_preview"),
            path("<path:object_id>/run-now/", wrap(self.run_now_view), name="jobs_scheduledjob_run_now"),
            path("<path:object_id>/pause/", wrap(self.pause_view), name="jobs_scheduledjob_pause"),
            path("<path:object_id>/resume/", wrap(self.resume_view), name="jobs_scheduledjob_resume"),
            *super().get_urls(),
        ]

    def preview_schedule_view(self, request):
        return preview_response(request, self.has_view_or_change_permission(request))

    def _job_for_button(self, request: HttpRequest, object_id: str) -> ScheduledJob:
        if not str(object_id).isdigit():
            raise Http404
        job = get_object_or_404(ScheduledJob, pk=object_id)
        if not self.has_change_permission(request, job):
            raise PermissionDenied
        return job

    def run_now_view(self, request, object_id):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        job = self._job_for_button(request, object_id)
        run = services.run_now(job)
        self.message_user(request, format_html('Queued run <a href="{}">#{}</a>.', run_url(run.pk), run.pk))
        return HttpResponseRedirect(job_url(job.pk))

    def pause_view(self, request, object_id):
        return self._active_view(request, object_id, False)

    def resume_view(self, request, object_id):
        return self._active_view(request, object_id, True)

    def _active_view(self, request, object_id, active: bool):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        job = self._job_for_button(request, object_id)
        if job.active != active:
            services.update_job(job, active=active)
        self.message_user(request, f"Job #{job.pk} {'resumed' if active else 'paused'}.")
        return HttpResponseRedirect(job_url(job.pk))


def _zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError):
        return UTC
