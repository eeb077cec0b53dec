"""The one owner of the RedBeat entry format for jobs: names, definition and meta encoding, the write of one entry
(JobEntry.save) and the scripts beat advances and drops entries with. reconcile.py removes entries, and rewrites
them in bulk pipelines, with these names and encodings.

An entry is a hash (definition, meta) plus its score in the schedule zset, as RedBeat keeps them; a job entry's
schedule is a JobSchedule (encoded as "pointscene.job").
"""

import json
from datetime import UTC, datetime

from redbeat.decoder import RedBeatJSONDecoder, RedBeatJSONEncoder
from redbeat.schedulers import RedBeatSchedulerEntry, get_redis

from jobs.models import ScheduledJob
from jobs.scheduling.slots import JobSchedule
from pointscene.celery import app

RUN_TASK = "jobs.run_scheduled"
MISSED_TASK = "jobs.record_missed"
ENTRY_PREFIX = "job-"
# The API may change or remove an entry between the tick's read and its write: only the entry that was read is
# advanced, and only an entry that is really gone leaves the schedule.
ADVANCE_IF_UNCHANGED = """
if redis.call('HGET', KEYS[1], 'definition') == ARGV[1] then
  redis.call('HSET', KEYS[1], 'meta', ARGV[2])
  redis.call('ZADD', KEYS[2], ARGV[3], KEYS[1])
end
"""
DROP_IF_GONE = """
if redis.call('HEXISTS', KEYS[1], 'definition') == 0 then
  redis.call('ZREM', KEYS[2], KEYS[1])
end
"""


class Encoder(RedBeatJSONEncoder):
    def default(self, obj):
        if isinstance(obj, JobSchedule):
            return obj.to_json()
        return super().default(obj)


class Decoder(RedBeatJSONDecoder):
    def dict_to_object(self, d):
        if d.get("__type__") == "pointscene.job":
            return JobSchedule.from_json(d)
        return super().dict_to_object(d)


def encode_meta(last_run_at: datetime | None) -> str:
    """An entry's meta as RedBeat stores it: when it last fired (for a job entry, the slot it last fired)."""
    return json.dumps({"last_run_at": last_run_at}, cls=Encoder)


def entry_name(job_id: int) -> str:
    return f"{ENTRY_PREFIX}{job_id}"


def job_id_of(entry_name_: str) -> int | None:
    if not entry_name_.startswith(ENTRY_PREFIX):
        return None
    rest = entry_name_[len(ENTRY_PREFIX) :]
    return int(rest) if rest.isdigit() else None


class JobEntry(RedBeatSchedulerEntry):
    """A RedBeat entry whose schedule may be a JobSchedule."""

    @staticmethod
    def decode_definition(definition):
        return json.loads(definition, cls=Decoder)

    @staticmethod
    def decode_meta(meta, app=None):
        if not meta:
            return {"last_run_at": None}
        return json.loads(meta, cls=Decoder)

    def definition(self) -> dict:
        return {
            "name": self.name,
            "task": self.task,
            "args": self.args,
            "kwargs": self.kwargs,
            "options": self.options,
            "schedule": self.schedule,
            "enabled": self.enabled,
        }

    def encoded_definition(self) -> str:
        return json.dumps(self.definition(), cls=Encoder, sort_keys=True)

    @property
    def due_at(self):
        if isinstance(self.schedule, JobSchedule):
            return self.schedule.next_fire_after(self.last_run_at or datetime.now(UTC))
        return super().due_at

    def save(self):
        """Writes definition, meta and score together. Unlike stock RedBeat, meta is overwritten."""
        with get_redis(self.app).pipeline() as pipe:
            pipe.hset(self.key, "definition", self.encoded_definition())
            pipe.hset(self.key, "meta", encode_meta(self.last_run_at))
            pipe.zadd(self.app.redbeat_conf.schedule_key, {self.key: self.score})
            pipe.execute()
        return self


def build_entry(job: ScheduledJob, last_run_at: datetime) -> JobEntry:
    return JobEntry(
        name=entry_name(job.pk),
        task=RUN_TASK,
        schedule=JobSchedule.for_job(job),
        args=[job.pk],
        kwargs={},
        options={},
        app=app,
        last_run_at=last_run_at,
    )
