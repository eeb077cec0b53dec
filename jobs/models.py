import hashlib
import secrets
from datetime import datetime, timedelta
from itertools import islice

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.timezone import now

from jobs.timing import cron_occurrences, describe, interval_occurrences
from pointscene.core.models import Instance


class FrequencyType(models.TextChoices):
    CRON_BASED = "CRON_BASED", "Cron expression"
    INTERVAL_BASED = "INTERVAL_BASED", "Every N minutes"


class OverlapPolicy(models.TextChoices):
    SKIP = "SKIP", "Skip a slot while the previous run is going"
    BUFFER_ONE = "BUFFER_ONE", "Keep one slot waiting for the previous run; skip the rest"
    ALLOW = "ALLOW", "Run slots side by side"


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
    # When the latest run started; written by the worker (with the outcome when the run ends, or by its watcher
    # once it has gone on for a second), so that listing jobs needs no aggregate.
    last_run_at = models.DateTimeField(null=True, blank=True)
    time_limit_seconds = models.PositiveIntegerField(
        null=True, blank=True, help_text="Overrides JOBS_RUN_TIME_LIMIT for this job's runs."
    )
    overlap_policy = models.CharField(
        max_length=16,
        choices=OverlapPolicy.choices,
        default=OverlapPolicy.SKIP,
        help_text="What a slot does while the job's previous run is still going.",
    )
    catchup_window_minutes = models.PositiveIntegerField(
        default=0,
        help_text="Slots missed (nothing was up to start them) within this many minutes still run, once, "
        "coalesced; older ones are recorded as MISSED. 0: every missed slot is recorded as MISSED.",
    )
    jitter_seconds = models.PositiveIntegerField(
        default=0, help_text="Runs start up to this many seconds after their slot (a fixed offset per job)."
    )
    max_retries = models.PositiveIntegerField(
        default=0, help_text="Extra attempts of a step that failed in a retryable way (network, 429, 5xx)."
    )
    retry_backoff_seconds = models.PositiveIntegerField(
        default=30, help_text="Wait before the first retry; it doubles with every further attempt."
    )
    pause_after_failures = models.PositiveIntegerField(
        null=True, blank=True, help_text="Deactivate the job after this many consecutive failed runs; empty: never."
    )
    consecutive_failures = models.PositiveIntegerField(default=0)
    # Why the service itself deactivated the job (pauseAfterFailures); cleared when the job is reactivated.
    paused_reason = models.CharField(max_length=500, null=True, blank=True)
    webhook_url = models.CharField(max_length=2048, null=True, blank=True)
    # Fernet-encrypted (configs.crypto), never shown: the key that signs webhook bodies.
    webhook_secret = models.TextField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["instance", "id"], name="job_instance_id"),
            # scheduledJobs(filter: {active}) in page order (jobs.job_list).
            models.Index(fields=["instance", "active", "id"], name="job_instance_active_id"),
        ]
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
    def runs_one_at_a_time(self) -> bool:
        """Whether a run takes the job's run lock: under every overlap policy but ALLOW, and always when a step is a
        bisync, whose listings carry from one run to the next (jobs.sync.state), so two runs must never interleave."""
        if self.overlap_policy != OverlapPolicy.ALLOW:
            return True
        tasks = self.workflow.get("tasks") if isinstance(self.workflow, dict) else None
        return any(isinstance(t, dict) and (t.get("args") or {}).get("mode") == "bisync" for t in tasks or [])

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

    def schedule_key(self) -> tuple:
        """Everything that decides which slots the job has: a change to any of it makes a new schedule. The time
        zone is part of it for cron jobs only: an interval counts in plain minutes from its anchor in any zone."""
        zone = self.timezone if self.frequency_type == FrequencyType.CRON_BASED else None
        return (self.frequency_type, self.cron_expression, self.interval_minutes, zone, self.active)

    def restart_anchor_if_schedule_changed(self, old: "ScheduledJob", at: datetime | None = None) -> bool:
        """After `old` was edited into this job: an active job whose schedule changed (cron, interval, frequency
        type, a cron job's time zone) or that was reactivated counts its slots from `at` (default now). The slots
        of the old schedule, or of the pause, were never this schedule's: an interval must not count from them,
        nor the sweeper record them MISSED (it only looks at slots after the anchor). True if the anchor moved."""
        if not self.active or self.schedule_key() == old.schedule_key():
            return False
        self.schedule_anchor = at or now()
        return True

    @property
    def jitter_offset(self) -> int:
        """Seconds after each slot that this job's runs start: fixed per job, so its period stays even."""
        if not self.jitter_seconds or self.pk is None:
            return 0
        digest = hashlib.sha256(f"job-{self.pk}".encode()).digest()
        return int.from_bytes(digest[:8], "big") % (self.jitter_seconds + 1)

    def fire_time(self, slot: datetime) -> datetime:
        return slot + timedelta(seconds=self.jitter_offset)

    def late_slot_fate(self, slot: datetime, at: datetime) -> str | None:
        """For a slot starting at `at`: None if it should run, else why it is MISSED.

        On time means within JOBS_MISFIRE_GRACE_SECONDS of its fire time. A late slot runs only inside the
        catch-up window, and only if it is the job's latest slot to have come due: earlier ones are coalesced
        into that one."""
        fire = self.fire_time(slot)
        grace = timedelta(seconds=settings.JOBS_MISFIRE_GRACE_SECONDS)
        if at - fire <= grace:
            return None
        late = int((at - fire).total_seconds())
        window = timedelta(minutes=self.catchup_window_minutes)
        if self.catchup_window_minutes and at - fire <= window:
            later = self.next_run(after=slot) if self.active else None
            if later is None or self.fire_time(later) > at - grace:
                return None
            return self.coalesced_reason(later)
        return self.missed_reason(late)

    @staticmethod
    def coalesced_reason(into: datetime) -> str:
        return f"coalesced into the run for {into.isoformat()} (the catch-up window runs missed slots once)"

    def missed_reason(self, late_seconds: int | None = None) -> str:
        window = self.catchup_window_minutes
        when = f" ({late_seconds} s late)" if late_seconds is not None else ""
        return f"missed: nothing started this slot in time{when}; " + (
            f"older than the catch-up window of {window} min" if window else "the job has no catch-up window"
        )


class RunStatus(models.TextChoices):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"
    CANCELLED = "CANCELLED"
    # A slot that nothing started in time (the scheduler or every worker was down), beyond the catch-up window.
    MISSED = "MISSED"


class RunTrigger(models.TextChoices):
    SCHEDULE = "SCHEDULE"
    MANUAL = "MANUAL"


def new_log_key() -> str:
    """A run's log-link key: 32 random URL-safe characters."""
    return secrets.token_urlsafe(24)


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
    # Signs the run's log links (jobs.running.logs) with SECRET_KEY: a link cannot be made from SECRET_KEY and the
    # run id alone, and a reused id (SQLite, restored backups) gets a new key: old links never open another run's log.
    log_key = models.CharField(max_length=32, default=new_log_key, editable=False)
    # Set by cancelJobRun; the worker running it notices within a second or two and stops.
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=200, null=True, blank=True)
    # Written by the worker every lease/3 seconds while the run is going: a RUNNING row whose heartbeat is older
    # than the lease belongs to a worker that died, and the sweeper ends it (jobs.running.sweeper).
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # Set when a BUFFER_ONE slot was parked to wait for the job's running run.
    buffered_at = models.DateTimeField(null=True, blank=True)
    # The Celery task that ran (or skipped, or recorded) this run: its result (django-celery-results' TaskResult,
    # kept CELERY_RESULT_EXPIRES) has the task's state, worker, times and a crash's traceback. None for rows the
    # sweeper or beat recorded, and for queued runs until a worker takes them.
    task_id = models.CharField(max_length=255, null=True, blank=True, editable=False)
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
            # getInstanceJobHistory's filters (jobs.history.HistoryFilter), each a prefix of a key in page order.
            models.Index(fields=["instance", "status", "-created_at", "-id"], name="history_instance_status"),
            models.Index(fields=["instance", "trigger", "-created_at", "-id"], name="history_instance_trigger"),
            models.Index(
                fields=["instance", "status", "trigger", "-created_at", "-id"], name="history_instance_status_trig"
            ),
            # The admin dashboard's last-24-hours chart and its workers list.
            models.Index(fields=["created_at"], name="history_created"),
            # Runs in flight (metrics, dashboard): a few rows among millions.
            models.Index(fields=["status"], condition=Q(status__in=["QUEUED", "RUNNING"]), name="history_in_flight"),
        ]

    def __str__(self) -> str:
        return f"Run #{self.pk} of job #{self.job_id} ({self.status})"

    @classmethod
    def missed(cls, job: ScheduledJob, slot: datetime, error: str, at: datetime) -> "JobHistory":
        """The (unsaved) record of a slot nothing started in time."""
        return cls(
            job_id=job.pk,
            instance_id=job.instance_id,
            trigger=RunTrigger.SCHEDULE,
            scheduled_for=slot,
            status=RunStatus.MISSED,
            finished_at=at,
            error=error,
        )

    @property
    def finished(self) -> bool:
        return self.status not in (RunStatus.QUEUED, RunStatus.RUNNING)

    @property
    def success(self) -> bool | None:
        """None while the run is queued or going; otherwise whether it succeeded."""
        if self.status in (RunStatus.QUEUED, RunStatus.RUNNING):
            return None
        return self.status == RunStatus.SUCCEEDED


class LogDeletion(models.Model):
    """Stored run logs whose rows are gone, waiting to be deleted from storage (jobs.running.purge): one log file (a
    run pruned by jobs/retention.py) or, when `path` ends with "/", a folder of them (a deleted job's or instance's,
    pointscene.core.storage.job_log_folder).

    Written in the transaction that deletes the rows, so a log is queued exactly when its row is gone: no row ever
    points at a deleted log, and no log of a kept row is ever queued. Deleted when storage has deleted what it
    names; a failure stays with its error and the time of its next attempt, and the sweeper sends it again then."""

    path = models.CharField(max_length=500)
    created_at = models.DateTimeField(default=now)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=now, db_index=True)
    last_error = models.CharField(max_length=500, blank=True, default="")

    @property
    def is_folder(self) -> bool:
        return self.path.endswith("/")

    def __str__(self) -> str:
        return self.path


class BisyncListings(models.Model):
    """What rclone bisync keeps between runs of one step of a job (its --workdir: the listings of both sides), stored
    with the job so that any worker can run the next one without a --resync (jobs.sync.state). Deleted with the job."""

    job = models.ForeignKey(ScheduledJob, on_delete=models.CASCADE, related_name="+")
    # The step's task name, hashed (task names are a tenant's free text).
    task = models.CharField(max_length=16)
    # rclone's --workdir as a gzipped tar, written back whenever a bisync step ends.
    archive = models.BinaryField()
    stored_by_run = models.BigIntegerField(help_text="The run whose step stored these listings last.")
    updated_at = models.DateTimeField(default=now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["job", "task"], name="bisync_listings_one_per_step")]
        verbose_name_plural = "bisync listings"

    def __str__(self) -> str:
        return f"job {self.job_id}, task {self.task}"
