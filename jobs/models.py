from datetime import datetime
from itertools import islice

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.timezone import now

from jobs.schedule import cron_occurrences, describe, interval_occurrences


class Instance(models.Model):
    """A tenant. Everything an API client reaches belongs to one."""

    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=now)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        related_name="instances",
        help_text="Users who may act on this instance with a password-grant token.",
    )

    def __str__(self) -> str:
        return f"{self.name} (#{self.pk})"


class Resource(models.Model):
    """Something inside an instance that owns remote configs and a storage area."""

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="resources")
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=now)

    def __str__(self) -> str:
        return f"{self.name} (#{self.pk})"


class ApiClient(models.Model):
    """Our side of an OAuth2 application: which instances its tokens may reach."""

    application = models.OneToOneField(
        settings.OAUTH2_PROVIDER_APPLICATION_MODEL, on_delete=models.CASCADE, related_name="api_client"
    )
    instances = models.ManyToManyField(Instance, blank=True, related_name="api_clients")
    can_create_instances = models.BooleanField(default=False, help_text="May ask for the instance-create scope.")

    def __str__(self) -> str:
        return self.application.name or self.application.client_id


class FrequencyType(models.TextChoices):
    CRON_BASED = "CRON_BASED", "Cron expression"
    INTERVAL_BASED = "INTERVAL_BASED", "Every N minutes"


class ScheduledJob(models.Model):
    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="jobs")
    name = models.CharField(max_length=200, null=True, blank=True)
    description = models.TextField(null=True, blank=True)
    workflow = models.JSONField()
    frequency_type = models.CharField(max_length=20, choices=FrequencyType.choices)
    cron_expression = models.CharField(max_length=200, null=True, blank=True)
    interval_minutes = models.PositiveIntegerField(null=True, blank=True)
    timezone = models.CharField(max_length=64, default="UTC")
    active = models.BooleanField(default=True)
    # Interval jobs count their period from here: creation, or the last reactivation or schedule change.
    schedule_anchor = models.DateTimeField(default=now)
    # When the latest run started; written by the worker so that listing jobs needs no aggregate.
    last_run_at = models.DateTimeField(null=True, blank=True)
    time_limit_seconds = models.PositiveIntegerField(
        null=True, blank=True, help_text="Overrides JOBS_RUN_TIME_LIMIT for this job's runs."
    )
    created_at = models.DateTimeField(default=now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["instance", "id"], name="job_instance_id")]
        constraints = [
            models.CheckConstraint(
                name="job_schedule_matches_frequency_type",
                condition=(
                    Q(frequency_type="CRON_BASED", cron_expression__isnull=False, interval_minutes__isnull=True)
                    | Q(
                        frequency_type="INTERVAL_BASED",
                        cron_expression__isnull=True,
                        interval_minutes__gt=0,
                    )
                ),
            )
        ]

    def __str__(self) -> str:
        return self.name or f"Job #{self.pk}"

    @property
    def schedule_description(self) -> str:
        return describe(self.frequency_type, self.cron_expression, self.interval_minutes, self.timezone)

    def next_runs(self, count: int, after: datetime | None = None) -> list[datetime]:
        """The next `count` times this job fires, as aware UTC datetimes; empty while paused."""
        if not self.active or count <= 0:
            return []
        after = after or now()
        if self.frequency_type == FrequencyType.CRON_BASED:
            occurrences = cron_occurrences(self.cron_expression, self.timezone, after)
        else:
            occurrences = interval_occurrences(self.schedule_anchor, self.interval_minutes, after)
        return list(islice(occurrences, count))

    def next_run(self, after: datetime | None = None) -> datetime | None:
        runs = self.next_runs(1, after)
        return runs[0] if runs else None


class RunStatus(models.TextChoices):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"
    CANCELLED = "CANCELLED"


class RunTrigger(models.TextChoices):
    SCHEDULE = "SCHEDULE"
    MANUAL = "MANUAL"


class JobHistory(models.Model):
    """One run of a job."""

    job = models.ForeignKey(ScheduledJob, on_delete=models.CASCADE, related_name="history")
    # Copied from the job so that an instance's history pages from one index, without a join.
    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="history")
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED)
    trigger = models.CharField(max_length=16, choices=RunTrigger.choices, default=RunTrigger.SCHEDULE)
    scheduled_for = models.DateTimeField(null=True, blank=True)
    # When beat published the run (it publishes a few seconds ahead, with the slot as ETA).
    published_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(null=True, blank=True)
    steps = models.JSONField(null=True, blank=True)
    log_path = models.CharField(max_length=500, null=True, blank=True)
    # Set by cancelJobRun; the worker running it notices within a second or two and stops.
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=200, null=True, blank=True)
    created_at = models.DateTimeField(default=now)

    class Meta:
        verbose_name_plural = "job history"
        constraints = [
            # The idempotency key of a scheduled run: one row per (job, slot), however often it is delivered.
            models.UniqueConstraint(
                fields=["job", "scheduled_for"],
                condition=models.Q(scheduled_for__isnull=False),
                name="history_one_run_per_slot",
            )
        ]
        indexes = [
            models.Index(fields=["instance", "-created_at", "-id"], name="history_instance_newest"),
            models.Index(fields=["job", "-created_at", "-id"], name="history_job_newest"),
            # The admin dashboard's last-24-hours chart and its workers list.
            models.Index(fields=["created_at"], name="history_created"),
            # Runs in flight (metrics, dashboard): a few rows among millions.
            models.Index(
                fields=["status"], condition=Q(status__in=["QUEUED", "RUNNING"]), name="history_in_flight"
            ),
        ]

    def __str__(self) -> str:
        return f"Run #{self.pk} of job #{self.job_id} ({self.status})"

    @property
    def finished(self) -> bool:
        return self.status not in (RunStatus.QUEUED, RunStatus.RUNNING)

    @property
    def success(self) -> bool | None:
        """None while the run is queued or going; otherwise whether it succeeded."""
        if self.status in (RunStatus.QUEUED, RunStatus.RUNNING):
            return None
        return self.status == RunStatus.SUCCEEDED
