"""A job's slots: when it fires (cron in its zone, or every N minutes from its anchor) and how far back a late
beat still looks. Celery sees it as a schedule; the maths is jobs.timing's."""

from datetime import UTC, datetime, timedelta
from functools import lru_cache

from celery.schedules import BaseSchedule, schedstate

from jobs.timing import cron_occurrences, interval_occurrences

# How far back a late beat looks for the latest due slot; anything older is simply not run (missed).
MAX_CATCHUP = timedelta(days=2)
# The furthest ahead beat publishes, however crowded the coming minute: ETA messages wait in workers until due.
MAX_LOOKAHEAD = 60


class JobSchedule(BaseSchedule):
    """A job's cron (in its own time zone) or interval schedule, computed by jobs.timing."""

    def __init__(
        self,
        kind: str,
        cron: str | None = None,
        tz: str = "UTC",
        every_minutes: int | None = None,
        anchor: datetime | None = None,
        offset: int = 0,
        app=None,
    ) -> None:
        self.kind = kind
        self.cron = cron
        self.tz = tz
        self.every_minutes = every_minutes
        self.anchor = anchor
        # The job's jitter: its runs start this many seconds after each slot (the slot stays the run's key).
        self.offset = offset
        super().__init__(app=app)

    @classmethod
    def for_job(cls, job) -> "JobSchedule":
        if job.frequency_type == "CRON_BASED":
            return cls("cron", cron=job.cron_expression, tz=job.timezone, offset=job.jitter_offset)
        return cls(
            "interval",
            every_minutes=job.interval_minutes,
            anchor=job.schedule_anchor.astimezone(UTC),
            offset=job.jitter_offset,
        )

    def fire_at(self, slot: datetime) -> datetime:
        return slot + timedelta(seconds=self.offset)

    def next_fire_after(self, after: datetime) -> datetime:
        """When the first slot after `after` fires: an entry's score once `after` was its last slot."""
        return self.fire_at(self.next_after(after))

    def occurrences_after(self, after: datetime):
        if self.kind == "cron":
            return cron_occurrences(self.cron, self.tz, after)
        return interval_occurrences(self.anchor, self.every_minutes, after)

    def next_after(self, after: datetime) -> datetime:
        return next(self.occurrences_after(after))

    def latest_due(self, last: datetime, until: datetime) -> datetime | None:
        """The latest slot in (last, until], or None. Slots older than MAX_CATCHUP are not looked at."""
        latest = None
        for slot in self.occurrences_after(max(last, until - MAX_CATCHUP)):
            if slot > until:
                return latest
            latest = slot
        return latest

    def is_occurrence(self, slot: datetime) -> bool:
        if self.kind == "cron":
            return _is_cron_occurrence(self.cron, self.tz, slot)
        return self.next_after(slot - timedelta(microseconds=1)) == slot

    # celery's BaseSchedule interface, used only if stock code paths look at the entry.
    def remaining_estimate(self, last_run_at: datetime) -> timedelta:
        return self.next_after(last_run_at) - datetime.now(UTC)

    def is_due(self, last_run_at: datetime) -> schedstate:
        now = datetime.now(UTC)
        due = self.latest_due(last_run_at, now) is not None
        return schedstate(due, max(0.0, (self.next_after(now) - now).total_seconds()))

    def to_json(self) -> dict:
        data = {"__type__": "pointscene.job", "kind": self.kind}
        if self.kind == "cron":
            data.update(cron=self.cron, tz=self.tz)
        else:
            data.update(every_minutes=self.every_minutes, anchor=self.anchor.isoformat())
        if self.offset:
            # Only when set, so that entries written before jitter existed still compare equal.
            data["offset"] = self.offset
        return data

    @classmethod
    def from_json(cls, data: dict) -> "JobSchedule":
        offset = data.get("offset", 0)
        if data["kind"] == "cron":
            return cls("cron", cron=data["cron"], tz=data["tz"], offset=offset)
        return cls(
            "interval",
            every_minutes=data["every_minutes"],
            anchor=datetime.fromisoformat(data["anchor"]),
            offset=offset,
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, JobSchedule) and self.to_json() == other.to_json()

    def __repr__(self) -> str:
        return f"<JobSchedule {self.to_json()}>"


@lru_cache(maxsize=4096)
def _is_cron_occurrence(cron: str, tz: str, slot: datetime) -> bool:
    # Every run checks its slot; the jobs of a busy minute mostly share a few crons, and croniter parses each anew.
    return next(cron_occurrences(cron, tz, slot - timedelta(microseconds=1))) == slot
