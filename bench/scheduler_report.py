"""bench/scheduler.py's report: the "## Scheduler (bench/scheduler.py)" section of docs/benchmarks.md."""

import math

from bench.scheduler_analysis import Result
from bench.scheduler_run import LABELS, TUNED

SECTION = "## Scheduler (bench/scheduler.py)"


def fmt(value: float | None, digits: int = 2, floor: float | None = None) -> str:
    if value is None:
        return "-"
    if math.isinf(value):
        # Never happened; when it could have happened for a while before the cut-off, say for how long at least.
        return "never" if floor is None or floor <= 0 else f"> {floor:.0f}"
    return f"{value:.{digits}f}"


def triple(stats: dict) -> str:
    if not stats.get("n") and not stats.get("missing"):
        return "-"
    floor = stats.get("floor")
    cells = " / ".join(fmt(stats[k], floor=floor) for k in ("p50", "p99", "max"))
    if stats.get("missing"):
        cells += f" ({stats['missing']:,} never)"
    return cells


def table(results: list[Result]) -> list[str]:
    lines = [
        "| N | scheduler | status | dispatch lag p50 / p99 / max (s) | delivered lag p50 / p99 / max (s) "
        "| start lag p50 / p99 / max (s) | runs expected / published / started | missed (never published) | doubled "
        "| duplicate deliveries dropped | beat CPU s (total / in window) | beat peak RSS MB | beat ready after s |",
        "|---:|---|---|---|---|---|---|---:|---:|---:|---|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.n:,} | {LABELS[r.scheduler]} | {r.status} | {triple(r.dispatch)} | {triple(r.delivered)} "
            f"| {triple(r.start)} | {r.n:,} / {r.dispatched:,} / {r.started:,} | {r.missed_dispatch:,} "
            f"| {r.doubled_rows:,} | {r.duplicate_deliveries:,} | {r.beat_cpu_total:.1f} / {r.beat_cpu_window:.1f} "
            f"| {r.beat_hwm_mb:.0f} | {fmt(r.ready_after, 1)} |"
        )
    return lines


def stat(stats: dict, key: str) -> str:
    text = fmt(stats.get(key), floor=stats.get("floor"))
    return text if text == "never" else text + " s"


def reading(results: list[Result]) -> list[str]:
    out = []
    ours = {r.n: r for r in results if r.scheduler == "ours"}
    tuned = [r for r in results if r.scheduler == "ours-tuned"]
    for n, target in ((10_000, 1.0), (100_000, 5.0)):
        r = ours.get(n)
        if r is None or not r.dispatch.get("n"):
            out.append(f"- **Ours at N = {n:,}, dispatch p99 < {target:g} s: not measured in this run.**")
            continue
        met = "met" if r.dispatch["p99"] < target and r.status == "ok" else "NOT met"
        last = (
            f"the last run of the last boundary was published {fmt(r.dispatch_done_after_last)} s after it"
            if not r.dispatch.get("missing")
            else f"{r.dispatch['missing']:,} runs were never published"
        )
        out.append(
            f"- **Ours at N = {n:,}, dispatch p99 < {target:g} s: {met}** (p99 {stat(r.dispatch, 'p99')}, max "
            f"{stat(r.dispatch, 'max')}; delivered p99 {stat(r.delivered, 'p99')}, max {stat(r.delivered, 'max')}; "
            f"{last}; {r.status})."
        )
    bad = [r for r in ours.values() if r.missed_dispatch or r.doubled_rows or r.unexpected]
    if ours:
        if bad:
            detail = "; ".join(
                f"N={r.n:,}: missed {r.missed_dispatch}, doubled {r.doubled_rows}, unexpected {r.unexpected}"
                for r in bad
            )
            out.append(f"- **Ours, nothing missed or doubled: NOT met** ({detail}).")
        else:
            dups = ", ".join(f"N={r.n:,}: {r.duplicate_deliveries}" for r in ours.values())
            out.append(
                "- **Ours, nothing missed or doubled: met** at every N measured (every expected (job, slot) was "
                "published once and has at most one JobHistory row; duplicate deliveries dropped by the unique "
                f"(job, slot) key: {dups})."
            )
        for r in ours.values():
            if r.not_run_at_cutoff:
                out.append(
                    f"- Ours at N = {r.n:,}: {r.not_run_at_cutoff:,} published runs were still queued when the "
                    f"workers were stopped ({fmt(r.drain_seconds, 0)} s after beat): not misses by beat, but their "
                    "start lag is unknown beyond that cut-off (shown as > cut-off)."
                )
    for r in ours.values():
        if r.throughput:
            verdict = "more than" if r.throughput * 60 < r.n / 3 else "within"
            out.append(
                f"- Ours at N = {r.n:,}: start lag is the workers' backlog: {r.workers} prefork processes started "
                f"about {r.throughput:.0f} runs/s (each run: a JobHistory insert, the run lock, the resource "
                f"listing, a log file, three updates), so the {r.n // 3:,} runs of a minute are {verdict} what they "
                "start in a minute. Start lag falls with more workers (or machines); dispatch lag does not depend "
                "on them."
            )
    for r in tuned:
        settings_text = ", ".join(f"{k}={v}" for k, v in TUNED.items())
        out.append(
            f"- Ours with only settings changed ({settings_text}) at N = {r.n:,}: {r.status}; dispatch p99 "
            f"{stat(r.dispatch, 'p99')}, max {stat(r.dispatch, 'max')}; delivered p99 {stat(r.delivered, 'p99')}, "
            f"max {stat(r.delivered, 'max')}; missed {r.missed_dispatch:,}, doubled {r.doubled_rows:,}."
        )
    elsewhere = {"redbeat": "about 4 s", "dcb": "about 60 s, over half not fired within 40 s"}
    for scheduler in ("redbeat", "dcb"):
        for r in [x for x in results if x.scheduler == scheduler]:
            if not r.dispatch.get("n"):
                out.append(f"- {LABELS[scheduler]} at N = {r.n:,}: {r.status}; " + "; ".join(r.notes))
                continue
            status = "" if r.status == "ok" else f"{r.status}; "
            text = (
                f"- {LABELS[scheduler]} at N = {r.n:,}: {status}dispatch p50 {stat(r.dispatch, 'p50')}, p99 "
                f"{stat(r.dispatch, 'p99')}, max {stat(r.dispatch, 'max')}; {r.late40:,} of {r.n:,} not fired "
                f"within 40 s of their minute; beat CPU {r.beat_cpu_window:.1f} s in the window"
            )
            if r.n == 10_000:
                text += f" (the issue's figure for N = 10,000, measured on a stock setup: p99 {elsewhere[scheduler]})"
            mine = ours.get(r.n)
            if mine is not None and mine.delivered.get("n"):
                text += (
                    f"; ours at the same N: delivered p99 {stat(mine.delivered, 'p99')}, beat CPU "
                    f"{mine.beat_cpu_window:.1f} s in the window"
                )
            out.append(text + ".")
    return out


def render(results: list[Result], meta: dict) -> str:
    lines = [
        SECTION,
        "",
        f"- Date: {meta['date']}; total run {meta['total_seconds']:.0f} s (seeding {meta['seed_seconds']:.1f} s).",
        f"- Machine: {meta['machine']}. Beat, workers, Redis, PostgreSQL and the benchmark share it; "
        f"1-minute load average {meta['load_before']:.2f} when measuring began, {meta['load_after']:.2f} when it "
        "ended.",
        f"- Command: `{meta['command']}` (or `make bench-scheduler`).",
        f"- Each scheduler: one `celery beat` and one `celery worker --concurrency {meta['workers']}` (prefork), "
        "`--loglevel INFO`, the service's Celery settings (acks_late, prefetch 1, beat max loop interval 5 s), a "
        "private redis-server started by the benchmark, database `pointscene_schedbench`. Schedulers run one after "
        "another on the same jobs (same ids, same slot per job), never at the same time.",
        "",
        f"What is measured. N jobs, N/{meta['boundaries']} due at each of {meta['boundaries']} consecutive minute "
        "boundaries (cron `M H * * *`, UTC).",
        "",
        "- **ours**: `jobs.scheduling.beat.JobsScheduler` as the service runs it; entries made from N active "
        "`ScheduledJob` rows "
        "(bulk_create, then `jobs.scheduling.reconcile.reconcile()`, timed below); each run is the real "
        "`jobs.run_scheduled` "
        "task with a one-step `resource.input` workflow on an empty resource (the cheapest real workflow: JobHistory "
        "row, run lock, listing, log file, status updates). Dispatch lag = `published_at` - `scheduled_for` "
        "(published_at is stamped by beat as it builds each message; kombu sends them in pipelined batches of up to "
        "1,000, so the message reaches Redis a few milliseconds later). Beat publishes up to "
        "JOBS_SCHEDULE_LOOKAHEAD_SECONDS (5 s) early with the slot as ETA, so dispatch lag is often negative; "
        "**delivered lag** = max(published_at, scheduled_for) - scheduled_for is when the run became runnable. "
        "Start lag = `started_at` - `scheduled_for`.",
        "- **stock RedBeat**: `redbeat.RedBeatScheduler` with N `RedBeatSchedulerEntry(name, 'bench.ref_run', "
        "crontab(minute=M, hour=H), args=[job id, slot]).save()` entries. **django-celery-beat**: `DatabaseScheduler` "
        "with N `PeriodicTask` rows on `CrontabSchedule(minute=M, hour=H, timezone='UTC')` (bulk_create). Both run "
        "as bench-only subclasses (bench/refs.py) whose only change is to note `time.time()` after each publish "
        "returns (buffered, written to Redis every 0.5 s); that is their dispatch time. They publish when due, never "
        "early, so delivered lag = dispatch lag. Their task `bench.ref_run` only notes its start time in Redis, so "
        "their start lag reflects a far cheaper task than ours.",
        "- Missed = an expected (job, slot) that beat never published (ours: no JobHistory row and not left in the "
        "queue; references: no publish noted). Doubled = more than one run of a (job, slot) (ours: rows, which the "
        "unique (job, scheduled_for) constraint forbids; references: task starts). Duplicate deliveries dropped = "
        "ours' worker log lines `duplicate delivery ignored`; references: more than one publish of an entry. Beat "
        "CPU = utime+stime+cutime+cstime of the beat process from /proc (total: its whole life, start-up included; "
        "in window: from 10 s before the first boundary (before the look-ahead, for the tuned variant) to the "
        "last publish); peak RSS = VmHWM.",
        "",
        *table(results),
        "",
        "Preparation and start-up (seconds):",
        "",
        "| N | scheduler | preparation | of it reconcile() | beat ready after | ready before 1st boundary "
        "| last publish after last boundary | drain after beat stopped |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.n:,} | {LABELS[r.scheduler]} | {r.prep_seconds:.1f} | {fmt(r.reconcile_seconds, 1)} "
            f"| {fmt(r.ready_after, 1)} | {fmt(r.ready_before_first, 1)} "
            f"| {'-' if r.dispatch.get('missing') else fmt(r.dispatch_done_after_last)} "
            f"| {fmt(r.drain_seconds, 1)} |"
        )
    lines += [
        "",
        "Per boundary, dispatch lag p50 / p99 / max (s):",
        "",
        "| N | scheduler | 1st | 2nd | 3rd |",
        "|---:|---|---|---|---|",
    ]
    for r in results:
        cells = [triple(b["dispatch"]) for b in r.per_boundary] + ["-"] * (3 - len(r.per_boundary))
        lines.append(f"| {r.n:,} | {LABELS[r.scheduler]} | " + " | ".join(cells[:3]) + " |")
    lines += ["", "### Reading", "", *reading(results), ""]
    notes = [f"- {LABELS[r.scheduler]}, N = {r.n:,}: " + "; ".join(r.notes) for r in results if r.notes]
    if notes:
        lines += ["Notes from the run:", "", *notes, ""]
    if meta.get("extra"):
        lines += [meta["extra"], ""]
    return "\n".join(lines)
