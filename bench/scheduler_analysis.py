"""bench/scheduler.py's results: what one (scheduler, N) run found (Result), from the run rows (ours), the
references' notes in Redis and the messages left in the queue; lags as percentiles."""

import base64
import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime


@dataclass
class Result:
    scheduler: str
    n: int
    workers: int
    machines: int = 1  # worker processes ("machines"), each with `workers` pool processes
    boundaries: list[str] = field(default_factory=list)
    status: str = "ok"
    prep_seconds: float = 0.0
    reconcile_seconds: float | None = None
    ready_after: float | None = None  # beat spawn -> ready (ours: lock acquired after the start reconcile)
    ready_before_first: float | None = None  # seconds between ready and the first boundary
    dispatched: int = 0
    recorded: int = 0
    started: int = 0
    missed_dispatch: int = 0
    missed_start: int = 0
    not_run_at_cutoff: int = 0
    doubled_rows: int = 0
    duplicate_deliveries: int = 0
    unexpected: int = 0
    statuses: dict = field(default_factory=dict)
    dispatch: dict = field(default_factory=dict)
    delivered: dict = field(default_factory=dict)
    start: dict = field(default_factory=dict)
    per_boundary: list = field(default_factory=list)
    dispatch_done_after_last: float | None = None  # last publish minus the last boundary
    drain_seconds: float | None = None
    throughput: float | None = None  # runs started per second while the backlog lasted
    late40: int = 0  # expected runs not published within 40 s of their slot (never published included)
    beat_stopped_at: float | None = None  # epoch
    beat_cpu_total: float = 0.0
    beat_cpu_window: float = 0.0
    beat_hwm_mb: float = 0.0
    worker_cpu: float = 0.0  # CPU seconds of every worker process, from before the 1st boundary to the drain's end
    shares: list = field(default_factory=list)  # per boundary: {node: runs started there}
    beat_log_lines: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    logdir: str = ""


def pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def summary(values: list[float], missing: int = 0, floor: float | None = None) -> dict:
    """p50/p99/max of `values`; `missing` values that are known only to exceed `floor` count as infinite."""
    if not values and not missing:
        return {"n": 0}
    both = values + [math.inf] * missing
    return {
        "n": len(values),
        "missing": missing,
        "floor": floor,
        "p50": pct(both, 50),
        "p99": pct(both, 99),
        "max": max(both),
    }


def beat_published(log_text: str) -> int:
    return sum(int(m) for m in re.findall(r"beat: published (\d+) job runs", log_text))


def queued_runs(client, queue: str) -> dict[tuple[int, datetime], float | None]:
    """(job id, slot) -> published_at (ours; None for the references) of the messages left in the queue (or
    unacked) after the workers stopped: published, never run."""
    raw = client.lrange(queue, 0, -1) + [json.dumps(json.loads(v)[0]) for v in client.hvals("unacked")]
    out = {}
    for item in raw:
        message = json.loads(item)
        args, kwargs, _ = json.loads(base64.b64decode(message["body"]))
        published = kwargs.get("published_at")
        out[(int(args[0]), datetime.fromisoformat(args[1]))] = (
            datetime.fromisoformat(published).timestamp() if published else None
        )
    return out


def finished_runs(instance_id: int) -> int:
    from jobs.models import JobHistory

    return JobHistory.objects.filter(instance_id=instance_id).exclude(status__in=["QUEUED", "RUNNING"]).count()


def fill_shares(result: Result, started_on: list[tuple[datetime, str]]) -> None:
    """started_on: (slot, worker node) of each run started; the count per node, per boundary."""
    by_slot: dict[datetime, Counter] = {}
    for slot, node in started_on:
        by_slot.setdefault(slot, Counter())[node] += 1
    result.shares = [
        {"boundary": slot.isoformat(), "runs": dict(sorted(c.items()))} for slot, c in sorted(by_slot.items())
    ]


def cpu_per_run_ms(result: Result) -> float | None:
    return 1000 * result.worker_cpu / result.started if result.started and result.worker_cpu else None


def beat_batches(log_text: str) -> list[str]:
    """Ours' beat log lines that report a published batch, for evidence."""
    return [line.strip() for line in log_text.splitlines() if "beat: published" in line][:20]


def fill_lags(
    result: Result, rows: list[tuple[int, datetime, float | None, float | None]], slots, cutoff: float
) -> None:
    """rows: (job_id, slot, published epoch or None, started epoch or None); cutoff: when the workers stopped.

    Expected runs that were never started count as infinite start lag (shown as "> the smallest lag they
    could have had", i.e. cutoff minus the last boundary), so percentiles are not flattered by leaving them out.
    """
    dispatch, delivered, start = [], [], []
    by_boundary: dict[datetime, list[float]] = {}
    last_publish = None
    for _job_id, slot, published, started_at in rows:
        s = slot.timestamp()
        if published is not None:
            dispatch.append(published - s)
            delivered.append(max(published, s) - s)
            by_boundary.setdefault(slot, []).append(published - s)
            last_publish = published if last_publish is None else max(last_publish, published)
        if started_at is not None:
            start.append(started_at - s)
    last_slot = max(slots.values()).timestamp()
    unpublished = len(slots) - len(dispatch)
    beat_floor = (result.beat_stopped_at or cutoff) - last_slot
    result.dispatch = summary(dispatch, unpublished, beat_floor)
    result.delivered = summary(delivered, unpublished, beat_floor)
    result.start = summary(start, len(slots) - len(start), cutoff - last_slot)
    result.late40 = len(slots) - sum(1 for d in dispatch if d <= 40)
    result.per_boundary = [{"boundary": b.isoformat(), "dispatch": summary(v)} for b, v in sorted(by_boundary.items())]
    last = max(slots.values())
    if last_publish is not None:
        result.dispatch_done_after_last = last_publish - last.timestamp()
    starts = sorted(r[3] for r in rows if r[3] is not None)
    if len(starts) > 1 and result.start.get("max", 0) > 10:
        # Backlog throughput: started runs per second between the first boundary and the last start.
        result.throughput = len(starts) / max(1e-6, starts[-1] - min(slots.values()).timestamp())


def analyse_ours(
    result: Result, instance_id: int, slots, queued: dict, cutoff: float, beat_log: str, worker_log: str
) -> None:
    from jobs.models import JobHistory

    rows = list(
        JobHistory.objects.filter(instance_id=instance_id).values_list(
            "job_id", "scheduled_for", "published_at", "started_at", "status", "worker"
        )
    )
    result.dispatched = beat_published(beat_log)
    result.recorded = len(rows)
    result.statuses = dict(Counter(r[4] for r in rows))
    keys = Counter((r[0], r[1]) for r in rows)
    expected = {(job_id, slot) for job_id, slot in slots.items()}
    result.unexpected = sum(c for k, c in keys.items() if k not in expected)
    result.doubled_rows = sum(c - 1 for c in keys.values() if c > 1)
    result.duplicate_deliveries = worker_log.count("duplicate delivery ignored")
    dropped = worker_log.count("dropped (")
    if dropped:
        result.notes.append(f"worker dropped {dropped} slots (job paused/deleted or slot not in schedule)")
    no_row = [k for k in expected if k not in keys]
    result.missed_start = len(no_row)
    # A run with no row may still be waiting in the queue when the workers were stopped: not a miss by beat.
    result.missed_dispatch = sum(1 for k in no_row if k not in queued)
    result.started = sum(1 for r in rows if r[3] is not None)
    lag_rows = [
        (r[0], r[1], r[2].timestamp() if r[2] else None, r[3].timestamp() if r[3] else None)
        for r in rows
        if (r[0], r[1]) in expected
    ]
    # Runs still queued carry their published_at in the message: their dispatch lag is known too.
    lag_rows += [(k[0], k[1], queued[k], None) for k in no_row if k in queued]
    fill_lags(result, lag_rows, slots, cutoff)
    # A run's worker is "node:pid"; the node names the machine.
    fill_shares(result, [(r[1], r[5].rsplit(":", 1)[0]) for r in rows if r[3] is not None and r[5]])
    result.beat_log_lines = beat_batches(beat_log)


def analyse_ref(result: Result, slots, queued: dict, cutoff: float, client, ref_key: str, beat_log: str) -> None:
    def parse(name: str) -> list[tuple[int, datetime, float, str]]:
        out = []
        for raw in client.lrange(ref_key + name, 0, -1):
            job_id, slot, moment, *node = raw.split(" ")  # a start also names its worker node
            out.append((int(job_id), datetime.fromisoformat(slot), float(moment), "".join(node)))
        return out

    sent, started = parse("sent"), parse("started")
    fill_shares(result, [(slot, node) for _job, slot, _moment, node in started])
    sent_by: dict[tuple[int, datetime], list[float]] = {}
    for job_id, slot, moment, _node in sent:
        sent_by.setdefault((job_id, slot), []).append(moment)
    started_by: dict[tuple[int, datetime], list[float]] = {}
    for job_id, slot, moment, _node in started:
        started_by.setdefault((job_id, slot), []).append(moment)
    expected = {(job_id, slot) for job_id, slot in slots.items()}
    result.dispatched = len(sent)
    result.recorded = len(started)
    result.started = len(started)
    result.unexpected = sum(len(v) for k, v in sent_by.items() if k not in expected)
    result.missed_dispatch = sum(1 for k in expected if k not in sent_by)
    result.missed_start = sum(1 for k in expected if k not in started_by)
    result.doubled_rows = sum(len(v) - 1 for v in started_by.values() if len(v) > 1)
    result.duplicate_deliveries = sum(len(v) - 1 for v in sent_by.values() if len(v) > 1)
    rows = []
    for key in expected:
        published = min(sent_by[key]) if key in sent_by else None
        began = min(started_by[key]) if key in started_by else None
        if published is not None or began is not None:
            rows.append((key[0], key[1], published, began))
    fill_lags(result, rows, slots, cutoff)
    errors = [line for line in beat_log.splitlines() if "ERROR" in line or "Traceback" in line]
    if errors:
        result.notes.append(f"beat logged {len(errors)} error lines, first: {errors[0][:200]}")
