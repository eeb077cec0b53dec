"""The one owner of the RedBeat entry format for jobs: names, definition and meta encoding, and every read and
write of them in Redis (EntryStore). Beat, reconciliation and the API's after-commit sync all go through it.

An entry is a hash (definition, meta) plus its score in the schedule zset, as RedBeat keeps them; a job entry's
schedule is a JobSchedule (encoded as "pointscene.job").
"""

import json
from datetime import UTC, datetime

from redbeat.decoder import RedBeatJSONDecoder, RedBeatJSONEncoder, to_timestamp
from redbeat.schedulers import RedBeatSchedulerEntry, ensure_conf, get_redis

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
        store = EntryStore(self.app)
        with store.client.pipeline() as pipe:
            store.write(pipe, self.key, self.encoded_definition(), self.last_run_at, self.score)
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


class EntryStore:
    """Job entries in Redis. Writes take a pipeline, so that callers batch thousands of them in a few round trips."""

    def __init__(self, app_=None, client=None) -> None:
        self.app = app_ or app
        self.client = client or get_redis(self.app)
        self.conf = ensure_conf(self.app)
        self.schedule_key = self.conf.schedule_key
        self.prefix = self.conf.key_prefix + ENTRY_PREFIX
        self._advance = self.client.register_script(ADVANCE_IF_UNCHANGED)
        self._drop = self.client.register_script(DROP_IF_GONE)

    def key(self, job_id: int) -> str:
        return self.conf.key_prefix + entry_name(job_id)

    def job_id(self, key: str) -> int | None:
        return job_id_of(key[len(self.conf.key_prefix) :])

    def is_job_key(self, key: str) -> bool:
        return key.startswith(self.prefix)

    def job_ids(self, batch: int = 1000) -> set[int]:
        """Every job with an entry or a score: either half of an entry left alone is an entry to repair."""
        found: set[int] = set()
        for key, _score in self.client.zscan_iter(self.schedule_key, match=self.prefix + "*", count=batch):
            found.add(self.job_id(key))
        for key in self.client.scan_iter(match=self.prefix + "*", count=batch):
            found.add(self.job_id(key))
        return found - {None}

    def read(self, keys: list[str], scores: bool = False) -> list[tuple]:
        """(definition, meta) of each key, plus its score in the schedule when `scores`; None for what is absent."""
        width = 3 if scores else 2
        with self.client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hget(key, "definition")
                pipe.hget(key, "meta")
                if scores:
                    pipe.zscore(self.schedule_key, key)
            raw = pipe.execute()
        return [tuple(raw[width * i : width * i + width]) for i in range(len(keys))]

    def write(self, pipe, key: str, definition: str, last_run_at: datetime | None, score: float) -> None:
        pipe.hset(key, "definition", definition)
        pipe.hset(key, "meta", encode_meta(last_run_at))
        pipe.zadd(self.schedule_key, {key: score})

    def write_next(self, pipe, key: str, entry: "JobEntry", last_run_at: datetime) -> None:
        """Writes `entry` as having last fired `last_run_at`, scored at its next fire time after that."""
        self.write(pipe, key, entry.encoded_definition(), last_run_at, score_of(entry.schedule, last_run_at))

    def remove(self, pipe, key: str) -> None:
        pipe.zrem(self.schedule_key, key)
        pipe.delete(key)

    def advance(self, pipe, key: str, definition: str, last_run_at: datetime, score: float) -> None:
        """Moves a fired entry to its next slot, unless the API changed it since beat read `definition`."""
        self._advance(
            keys=[key, self.schedule_key], args=[definition, encode_meta(last_run_at), score], client=pipe
        )

    def drop_if_gone(self, pipe, key: str) -> None:
        """Takes a score whose entry hash is gone out of the schedule (and leaves one the API just rewrote)."""
        self._drop(keys=[key, self.schedule_key], client=pipe)


def score_of(schedule: JobSchedule, last_run_at: datetime) -> float:
    """An entry's score: when it next fires after the slot it last fired."""
    return to_timestamp(schedule.next_fire_after(last_run_at))

