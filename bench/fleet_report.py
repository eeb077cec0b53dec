"""bench/scheduler.py --machines M's report: the "## Fleet (bench/scheduler.py --machines)" section of
docs/benchmarks.md: how the runs of a big minute spread over several worker "machines", what a run costs them,
and how late runs start, against stock RedBeat with a trivial task in the same run."""

from bench.scheduler_analysis import Result, cpu_per_run_ms
from bench.scheduler_report import fmt, stat, triple
from bench.scheduler_run import LABELS

SECTION = "## Fleet (bench/scheduler.py --machines)"
# Issue 14, item 6.
LAG_RATIO = 2.0
SHARE_RANGE = (0.40, 0.60)
CPU_MS = 5.0


def shares(r: Result) -> list[list[float]]:
    """Per boundary, each machine's fraction of the runs started (machines in node order)."""
    out = []
    for boundary in r.shares:
        counts = list(boundary["runs"].values())
        counts += [0] * (r.machines - len(counts))
        total = sum(counts)
        out.append([c / total for c in counts] if total else [])
    return out


def share_cells(r: Result) -> str:
    return "; ".join(" / ".join(f"{100 * f:.0f} %" for f in b) for b in shares(r)) or "-"


def table(results: list[Result]) -> list[str]:
    lines = [
        "| scheduler | status | runs expected / started | start lag p50 / p99 / max (s) | delivered lag p99 (s) "
        "| missed / doubled | worker CPU per run (ms) | each machine's share of boundary 1; 2; 3 |",
        "|---|---|---|---|---:|---|---:|---|",
    ]
    for r in results:
        cpu = cpu_per_run_ms(r)
        lines.append(
            f"| {LABELS[r.scheduler]} | {r.status} | {r.n:,} / {r.started:,} | {triple(r.start)} "
            f"| {fmt(r.delivered.get('p99'))} | {r.missed_dispatch:,} / {r.doubled_rows:,} "
            f"| {fmt(cpu, 1)} | {share_cells(r)} |"
        )
    return lines


def reading(results: list[Result]) -> list[str]:
    ours = next((r for r in results if r.scheduler == "ours"), None)
    ref = next((r for r in results if r.scheduler == "redbeat"), None)
    if ours is None or not ours.start.get("n"):
        return ["- Ours was not measured in this run."]
    out = []
    if ref is not None and ref.start.get("n"):
        ratio = ours.start["p99"] / max(ref.start["p99"], 1e-3)
        met = "met" if ratio <= LAG_RATIO else "NOT met"
        out.append(
            f"- **Start lag p99 at most {LAG_RATIO:g}x stock RedBeat's: {met}** (ours {stat(ours.start, 'p99')}, "
            f"RedBeat {stat(ref.start, 'p99')}: {ratio:.2f}x)."
        )
    else:
        out.append("- Start lag against stock RedBeat: the reference was not measured in this run.")
    fractions = [f for boundary in shares(ours) for f in boundary]
    low, high = SHARE_RANGE
    within = fractions and all(low <= f <= high for f in fractions)
    out.append(
        f"- **Each machine's share of each boundary within {100 * low:.0f}-{100 * high:.0f} %: "
        f"{'met' if within else 'NOT met'}** ({share_cells(ours)})."
    )
    cpu, floor = cpu_per_run_ms(ours), cpu_per_run_ms(ref) if ref is not None else None
    text = (
        f"- **Worker CPU per cheapest run at most {CPU_MS:g} ms: {'met' if cpu and cpu <= CPU_MS else 'NOT met'}** "
        f"({fmt(cpu, 1)} ms: {ours.worker_cpu:.1f} s of CPU for {ours.started:,} runs)"
    )
    if cpu and floor:
        text += (
            f". Stock RedBeat's trivial task costs the same workers {fmt(floor, 1)} ms: Celery's own share of any "
            f"task (the message, its ack, task events, the pool's pipe, idle polling), which ours pays too; the "
            f"other {fmt(cpu - floor, 1)} ms are the run itself: its statements, run lock, watch, log file "
            "and metrics"
        )
    out.append(text + ".")
    out.append(
        "- **Queries per cheapest run at most 5: met**: 4 statements, asserted one by one by "
        "tests/jobs/test_run_cost.py (SELECT the job, INSERT the run born RUNNING, UPDATE the run's end, UPDATE the "
        "job's lastRun and failure count), and the `SELECT 1` Django's CONN_HEALTH_CHECKS sends before a task's "
        "first statement on a kept connection. No task result is stored for a run that returns. The four are "
        "built once per worker process (pointscene/core/statements.py, jobs/running/outcome.py), not compiled by "
        "the ORM for every run."
    )
    if ours.missed_dispatch or ours.doubled_rows:
        out.append(f"- Ours: {ours.missed_dispatch} missed, {ours.doubled_rows} doubled.")
    return out


def render(results: list[Result], meta: dict) -> str:
    machines = results[0].machines if results else meta.get("machines", 2)
    workers = meta["workers"]
    lines = [
        SECTION,
        "",
        f"- Date: {meta['date']}; total run {meta['total_seconds']:.0f} s (seeding {meta['seed_seconds']:.1f} s).",
        f"- Machine: {meta['machine']}. 1-minute load average {meta['load_before']:.2f} when measuring began, "
        f"{meta['load_after']:.2f} when it ended.",
        f"- Command: `{meta['command']}`.",
        f'- {machines} "machines": {machines} `celery worker --concurrency {workers}` (prefork) processes with '
        "their own node names (`-n SCHEDULER-mI@host`), one beat, one private redis-server, PostgreSQL; the same "
        "2 cores under all of them, so the machines compete for CPU as real ones would not. The service's Celery "
        "settings (acks_late, prefetch multiplier 1, `worker_disable_prefetch`), N jobs due "
        f"N/{meta['boundaries']} at each of {meta['boundaries']} minute boundaries, as in the Scheduler section "
        "above. Ours: the real `jobs.run_scheduled` with a one-step `resource.input` over an empty resource. "
        "Stock RedBeat: `redbeat.RedBeatScheduler` and `bench.ref_run`, a task that only notes its start and "
        "node in Redis.",
        "- A machine's share: runs of a boundary started on that worker (ours: JobHistory.worker; reference: the "
        "task's node). Worker CPU per run: utime+stime (+ reaped children's) of every process of every worker "
        "(main and pool processes, from /proc), from 10 s before the first boundary to the end of the drain, "
        "divided by the runs started; it includes Celery's own work (messages, acks, task events) and the "
        "workers' idle polling. Both workers log at INFO with the service's logging (JSON lines), where Celery's "
        "per-task \"received\" and \"succeeded\" lines are off by default (`LOG_CELERY_TASKS`); ours logs one "
        "\"run ended\" line per run.",
        "",
        *table(results),
        "",
        "### Reading",
        "",
        *reading(results),
        "",
    ]
    notes = [f"- {LABELS[r.scheduler]}: " + "; ".join(r.notes) for r in results if r.notes]
    if notes:
        lines += ["Notes from the run:", "", *notes, ""]
    return "\n".join(lines)
