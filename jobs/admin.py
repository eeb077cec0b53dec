"""The operator console: jobs, runs, instances and API clients in Django's admin.

Every change goes through jobs.services, as the API's do, so that validation is the same and the schedule
entries in Redis follow after commit. List pages cost a fixed number of queries however many jobs there are:
the latest run of each job is a correlated subquery on the (job, created_at, id) index, and next runs are
computed in Python from the row itself (tests/jobs/test_admin_queries.py holds the count).
"""

from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.storage import default_storage
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.timesince import timesince, timeuntil

from jobs import admin_views, rules, secret_args, services
from jobs.admin_views import latest_run
from jobs.models import JobHistory, RunStatus, ScheduledJob
from jobs.running.logs import signed_log_url
from pointscene.core import oauth
from pointscene.core.admin import IdFilter
from pointscene.core.models import ApiClient, Instance, Resource

NEWEST_FIRST = ("-created_at", "-id")
UPCOMING_RUNS = 10
RECENT_RUNS = 20
# The run page embeds the end of the log; the whole file is one click away (the signed link).
LOG_TAIL_BYTES = 200 * 1024
# "Run now" on more jobs than this at once is more likely a slip of "select all" than an intention.
MAX_RUN_NOW = 100
ACTIVE_RUN_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING)
# Badge backgrounds, dark enough for white text (the dashboard's chart has its own, admin_views.COLORS).
STATUS_COLORS = {
    RunStatus.SUCCEEDED: "#2e7d32",
    RunStatus.FAILED: "#c62828",
    RunStatus.CANCELLED: "#6d6d6d",
    RunStatus.SKIPPED: "#b26a00",
    RunStatus.MISSED: "#6a1b9a",
    RunStatus.RUNNING: "#1565c0",
    RunStatus.QUEUED: "#5c8fc8",
}


# --------------------------------------------------------------------------- small helpers


def with_latest_run(queryset: QuerySet) -> QuerySet:
    return queryset.annotate(
        last_run_id=latest_run("id"),
        last_status=latest_run("status"),
        last_started_at=latest_run("started_at"),
        last_finished_at=latest_run("finished_at"),
    )


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


# --------------------------------------------------------------------------- filters


class InstanceFilter(IdFilter):
    title = "instance"
    parameter_name = "instance"
    field_path = "instance_id"
    listed = 15

    def lookups(self, request, model_admin):
        selected = self.selected_id()
        rows = Instance.objects.order_by("name", "id")
        if selected is not None:
            rows = rows.filter(Q(pk__in=rows.values("pk")[: self.listed]) | Q(pk=selected))
        else:
            rows = rows[: self.listed]
        return [(str(pk), f"{name} (#{pk})") for pk, name in rows.values_list("pk", "name")]


class JobFilter(IdFilter):
    title = "job"
    parameter_name = "job"
    field_path = "job_id"


class LastOutcomeFilter(admin.SimpleListFilter):
    title = "last outcome"
    parameter_name = "last_outcome"
    NEVER = "NEVER"

    def lookups(self, request, model_admin):
        return [*RunStatus.choices, (self.NEVER, "Never run")]

    def queryset(self, request, queryset):
        value = self.value()
        if value == self.NEVER:
            return queryset.filter(last_status__isnull=True)
        if value in RunStatus.values:
            return queryset.filter(last_status=value)
        return queryset


# --------------------------------------------------------------------------- instances, resources, clients


@admin.register(Instance)
class InstanceAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "created_at")
    search_fields = ("name", "=id")
    filter_horizontal = ("members",)

    def get_search_results(self, request, queryset, search_term):
        return search_by_name_or_id(queryset, search_term), False

    def delete_model(self, request, obj):
        services.delete_instance(obj)

    def delete_queryset(self, request, queryset):
        for instance in queryset:
            services.delete_instance(instance)


@admin.register(Resource)
class ResourceAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "instance", "created_at")
    list_select_related = ("instance",)
    list_filter = (InstanceFilter,)
    search_fields = ("name", "=id")
    raw_id_fields = ("instance",)

    def get_search_results(self, request, queryset, search_term):
        return search_by_name_or_id(queryset, search_term), False


@admin.register(ApiClient)
class ApiClientAdmin(admin.ModelAdmin):
    list_display = ("application", "can_create_instances")
    list_select_related = ("application",)
    filter_horizontal = ("instances",)
    raw_id_fields = ("application",)


# Deactivating a user revokes their tokens (core.oauth) after commit, from the form and from the list's action.
admin.site.unregister(get_user_model())


@admin.register(get_user_model())
class AccountAdmin(UserAdmin):
    actions = ["deactivate_users"]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if not obj.is_active:
            oauth.revoke_user_tokens_after_commit(obj.pk)

    @admin.action(description="Deactivate selected users and revoke their tokens", permissions=["change"])
    def deactivate_users(self, request, queryset):
        users = [user for user in queryset if user.pk != request.user.pk]
        for user in users:
            oauth.deactivate_user(user)
        if len(users) < len(queryset):
            self.message_user(request, "You cannot deactivate yourself.", messages.WARNING)
        self.message_user(request, f"Deactivated {plural(len(users), 'user')}; their tokens are revoked.")


def search_by_name_or_id(queryset: QuerySet, term: str) -> QuerySet:
    """Every word must match: a number (or #number) matches the id exactly, anything matches the name.

    The stock "=id" search casts the term to a number and fails the whole search for a word like "nightly"."""
    for word in term.split():
        digits = word.lstrip("#")
        match = Q(name__icontains=word)
        if digits.isdigit() and len(digits) < 19:
            match |= Q(pk=int(digits))
        queryset = queryset.filter(match)
    return queryset


# --------------------------------------------------------------------------- jobs


class JobChangeList(ChangeList):
    def get_queryset(self, request, exclude_parameters=None):
        # A workflow may be 64 KB; a page of 100 jobs needs none of them.
        return super().get_queryset(request, exclude_parameters).defer("workflow", "description")


class RunChangeList(ChangeList):
    def get_queryset(self, request, exclude_parameters=None):
        # Steps, errors and the job's workflow are for the run's own page, not for a page of 100 runs.
        queryset = super().get_queryset(request, exclude_parameters)
        return queryset.defer("steps", "error", "job__workflow", "job__description")


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


@admin.register(ScheduledJob)
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
            path("<path:object_id>/run-now/", wrap(self.run_now_view), name="jobs_scheduledjob_run_now"),
            path("<path:object_id>/pause/", wrap(self.pause_view), name="jobs_scheduledjob_pause"),
            path("<path:object_id>/resume/", wrap(self.resume_view), name="jobs_scheduledjob_resume"),
            *super().get_urls(),
        ]

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


def _zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError):
        return UTC


# --------------------------------------------------------------------------- runs


@admin.register(JobHistory)
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
        (None, {"fields": ("job_link", "instance", "status_badge", "trigger", "worker", "error")}),
        ("Timings", {"fields": ("timings",)}),
        ("Steps", {"fields": ("steps_table",)}),
        ("Log", {"fields": ("log_panel",)}),
    )
    readonly_fields = (
        "job_link",
        "instance",
        "status_badge",
        "trigger",
        "worker",
        "error",
        "timings",
        "steps_table",
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

    @admin.display(description="log")
    def log_panel(self, run: JobHistory):
        if not run.log_path:
            if run.finished:
                return "This run has no log."
            return "The log is stored when the run ends; reload this page then."
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


# --------------------------------------------------------------------------- the dashboard, from the admin index


def _with_dashboard(get_urls):
    def urls():
        view = admin.site.admin_view(admin_views.dashboard)
        return [path("dashboard/", view, name="jobs_dashboard"), *get_urls()]

    urls.with_dashboard = True
    return urls


if not getattr(admin.site.get_urls, "with_dashboard", False):
    admin.site.get_urls = _with_dashboard(admin.site.get_urls)
# INSTALLED_APPS puts django.contrib.admin first, so an app's admin/index.html would never be found; name ours.
admin.site.index_template = "admin/jobs/index.html"
