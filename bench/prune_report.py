"""bench/prune.py's section of docs/benchmarks.md, rendered from prune_run's result."""

from datetime import UTC, datetime

SECTION = "## Prune (bench/prune.py)"
PHASES = ["before", "during rows", "during log drain", "after", "during VACUUM", "after VACUUM"]
PAGE_P95_MS = 50
LOCK_WAIT_MS = 100


def n(value: float) -> str:
    return f"{value:,.0f}"


def ms(value: float) -> str:
    return f"{value:.1f}"


def render(r: dict) -> str:
    spec, seeded, pruned, m = r["spec"], r["seeded"], r["pruned"], r["machine"]
    s = r["settings"]
    load_start, load_end = r["load"]
    rows_rate = r["runs_deleted"] / pruned["rows_s"] if pruned["rows_s"] else 0
    files_rate = r["logs_deleted"] / pruned["drain_s"] if pruned["drain_s"] else 0
    batches = pruned["verbs_rows"].get("DELETE", 0)  # one DELETE of runs per batch (a transaction)
    pages = r["pages"]
    during = [p for p in ("during rows", "during log drain") if p in pages]
    worst = max((pages[p]["p95"] for p in pages if p != "during VACUUM"), default=0)
    locks = r["locks"]
    size = r["sizes"]
    lines = [
        SECTION,
        "",
        f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; total run {r['minutes']:.1f} min"
        + (" (**--smoke**: tiny sizes, the numbers mean nothing)." if r["smoke"] else "."),
        f"- Machine: {m['nproc']} CPUs ({m['cpu']}), {m['ram']} RAM; {m['postgres']}; Python "
        f"{m['python']}, Django {m['django']}. Benchmark (prune + reader + lock sampler), gunicorn and PostgreSQL "
        f"share it with other work: 1/5/15-minute load average {load_start[0]:.2f} / {load_start[1]:.2f} / "
        f"{load_start[2]:.2f} when it began, {load_end[0]:.2f} / {load_end[1]:.2f} / {load_end[2]:.2f} when it "
        "ended (2 cores: anything over 2 means processes queued for a CPU).",
        "- Command: `BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/pointscene_prunebench_bench "
        "make bench-prune` "
        "(or `BENCH_DATABASE_URL=... .venv/bin/python bench/prune.py`).",
        f"- Data: one instance, {n(spec.jobs)} jobs; {n(spec.old)} runs past retention (spread evenly from 400 to "
        f"100 days ago), {n(seeded['files'])} of them with a log file on the local storage (~110 bytes each, "
        f"{n(spec.old / spec.jobs)} files per job folder; every {spec.no_log_every}th run has no log), and "
        f"{n(spec.recent)} runs of the last 30 days that stay. Rows seeded in {seeded['rows_s']:.0f} s (INSERT ... "
        f"SELECT generate_series, then VACUUM ANALYZE in {seeded['vacuum_s']:.0f} s), files written in "
        f"{seeded['files_s']:.0f} s.",
        f"- Settings (defaults): JOBS_HISTORY_RETENTION_DAYS={s['retention_days']}, "
        f"JOBS_HISTORY_KEEP_RUNS={s['keep_runs']}, JOBS_PRUNE_BATCH={s['batch']}, "
        f"JOBS_PRUNE_PAUSE_MS={s.get('pause_ms', 0)}; autovacuum on.",
        "",
        "What runs: `jobs.retention.prune()`, the function the `jobs.prune_history` task and `manage.py "
        "prune_history` call, in the benchmark process: rows deleted per job in batches (each batch one transaction "
        "that also queues the batch's logs as LogDeletion rows), then `jobs.running.purge.drain` deletes the files. "
        "The phase switches to *during log drain* when prune calls `drain` (the benchmark wraps it to note the "
        "time; the same code runs). Meanwhile a reader thread fetches the instance's newest "
        "`getInstanceJobHistory` page (the default 100) over HTTP from gunicorn (`--workers 2`), one request at a "
        "time with a 20 ms pause, and a sampler asks `pg_locks` every 50 ms for sessions of this database waiting "
        "on a lock (`clock_timestamp() - waitstart`).",
        "",
        "### Prune",
        "",
        "| step | seconds | done | rate | SQL statements |",
        "|---|---:|---:|---:|---:|",
        f"| dry run (`--dry-run`: counts) | {r['dry']['seconds']:.1f} | {n(r['dry']['runs'])} runs | - | - |",
        f"| rows: {n(r['runs_deleted'])} runs deleted, {n(batches)} batches | {pruned['rows_s']:.1f} | "
        f"{n(r['runs_deleted'])} runs | **{n(rows_rate)} runs/s** | {n(pruned['statements_rows'])} |",
        f"| log drain: files deleted from storage | {pruned['drain_s']:.1f} | {n(r['logs_deleted'])} files "
        f"({r['logs_failed']} failed) | **{n(files_rate)} files/s** | {n(pruned['statements_drain'])} |",
        f"| the next prune (nothing to do) | {r['empty']['seconds']:.2f} | {r['empty']['runs']} runs | - | "
        f"{r['empty']['statements']} |",
        f"| VACUUM ANALYZE jobs_jobhistory afterwards | {r['vacuum_s']:.1f} | - | - | 1 |",
        "",
        "Statements of the rows step by kind: "
        + ", ".join(f"{verb} {n(count)}" for verb, count in sorted(pruned["verbs_rows"].items()))
        + f". Left afterwards: {n(r['after']['runs'])} runs (the recent ones), {n(r['after']['queued_logs'])} "
        f"queued deletions, {n(r['files_left'])} log files.",
        "",
        "### Newest history page while pruning",
        "",
        "Milliseconds per request over HTTP, client side.",
        "",
        "| phase | n | p50 | p95 | p99 | max | p95 < 50 ms |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for phase in PHASES:
        if phase in pages:
            p = pages[phase]
            ok = "-" if phase == "during VACUUM" else ("yes" if p["p95"] < PAGE_P95_MS else "**no**")
            lines.append(
                f"| {phase} | {p['n']} | {ms(p['p50'])} | {ms(p['p95'])} | {ms(p['p99'])} | {ms(p['max'])} | {ok} |"
            )
    lines += [
        "",
        f"Lock waits: {n(locks['samples'])} samples; {locks['waiting_samples']} saw a session waiting on a lock, "
        f"the longest wait seen {locks['max_wait_ms']:.0f} ms; samples with a wait over 100 ms: "
        f"**{locks['over_100ms']}**. Reader errors: {len(r['reader_errors'])}.",
        "",
        "### Table size",
        "",
        "| when | heap MB | indexes MB | dead rows |",
        "|---|---:|---:|---:|",
    ]
    for when, value in size.items():
        lines.append(f"| {when} | {value['table_mb']:.0f} | {value['indexes_mb']:.0f} | {n(value['dead_rows'])} |")
    per_row_us = pruned["rows_s"] / r["runs_deleted"] * 1e6 if r["runs_deleted"] else 0
    # A pause follows every full batch (jobs.retention._Pace); what is left of a batch's time is its transaction.
    pause_s = s.get("pause_ms", 0) / 1000
    batch_s = pruned["rows_s"] / max(batches, 1)
    work_s = max(batch_s - pause_s, 0)
    page_ok = worst < PAGE_P95_MS
    lines += [
        "",
        "### Reading",
        "",
        f"- **Pages keep p95 < 50 ms: {'met' if page_ok else 'missed'}.** Worst p95 outside VACUUM "
        f"{ms(worst)} ms ("
        + ", ".join(f"{p} {ms(pages[p]['p95'])}" for p in ["before", *during, "after"] if p in pages)
        + " ms).",
        f"- **No lock waits over 100 ms: {'met' if locks['over_100ms'] == 0 else 'missed'}** (longest seen "
        f"{locks['max_wait_ms']:.0f} ms, sampled every 50 ms). The prune deletes by primary key rows no reader locks "
        "and no worker writes (finished runs past retention); readers take no row locks, so nothing waits on it.",
        f"- **Rate:** {n(rows_rate)} runs/s ({per_row_us:.0f} us per run, {batch_s:.2f} s per batch of "
        f"{s['batch']}: {work_s * 1000:.0f} ms of work, then the {pause_s * 1000:.0f} ms pause that leaves CPU to "
        f"the API); logs {n(files_rate)} files/s (one unlink per file: the drain is bound by the "
        "file system, not the database).",
        f"- **Partitioning by time: not needed at this size.** Deleting costs {per_row_us:.0f} us per run in "
        f"batches that each hold their locks for about {work_s * 1000:.0f} ms; the "
        f"newest page's p95 went {ms(pages.get('before', {}).get('p95', 0))} ms before -> "
        f"{ms(pages.get('during rows', {}).get('p95', 0))} ms while rows were deleted. After the prune the heap and "
        "indexes "
        f"keep their size ({size['after prune']['table_mb']:.0f} + {size['after prune']['indexes_mb']:.0f} MB) "
        f"until VACUUM ({r['vacuum_s']:.0f} s, autovacuum does it unasked) marks it free for the next inserts, so "
        "steady-state size follows the retained rows, not the total ever written. Partitions by month would turn a "
        "prune into DROP of old partitions, but retention is per instance and every job keeps its last "
        f"{s['keep_runs']} runs whatever their age, so old partitions could not simply be dropped (rows of quiet "
        "jobs and of instances with a longer retention live in them), and every history query would have to name "
        "the partition key to avoid scanning them all. Worth revisiting if an hourly prune had to delete more "
        f"runs than this rate clears in minutes ({n(rows_rate * 60)} a minute) or VACUUM could not keep up.",
    ]
    lines.append(
        f"- **The hourly prune with nothing to do** took {r['empty']['seconds']:.2f} s and {r['empty']['statements']} "
        "statements here. It used to look at every job with a run past retention one by one (its N-th newest run, "
        "then a select of its batch: about 4 statements per job, 168 for 41 jobs in the test), so a fleet whose "
        "old runs are all among their jobs' last runs paid that every hour; `_jobs_to_prune` now finds the jobs "
        "with something to delete in one query per instance (tests/jobs/test_retention.py counts the queries)."
    )
    if r["reader_errors"]:
        lines.append(f"- Reader errors (first 3): {r['reader_errors'][:3]}")
    return "\n".join(lines) + "\n"
