"""bench/sync.py's report: the "## Sync (bench/sync.py)" section of docs/benchmarks.md from the measurements."""

import random
import statistics

from bench.sync_fixtures import FULL, TreeShape
from bench.sync_runs import LABELS, QUIET_CORES, TARGET, VARIANTS, Measurement

SECTION = "## Sync (bench/sync.py)"


def section_for(meta: dict) -> str:
    """Runs over an emulated round trip (--rtt-ms) have a section of their own beside the loopback one."""
    rtt = meta.get("rtt_ms") or 0
    return f"## Sync, {rtt:g} ms round trip to the server (bench/sync.py --rtt-ms)" if rtt else SECTION


def of(results: list[Measurement], variant: str, phase: str) -> list[Measurement]:
    return [m for m in results if m.variant == variant and m.phase == phase]


def med(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def ratio_interval(a: list[float], b: list[float], level: float = 0.90) -> tuple[float, float]:
    """Bootstrap interval of median(a) / median(b): how far the ratio could move on another day's samples."""
    rng = random.Random(0)
    ratios = sorted(
        statistics.median(rng.choices(a, k=len(a))) / statistics.median(rng.choices(b, k=len(b))) for _ in range(5000)
    )
    tail = int(len(ratios) * (1 - level) / 2)
    return ratios[tail], ratios[-tail - 1]


def ratio_text(job: float | None, bare: float | None) -> str:
    if not job or not bare:
        return "-"
    return f"{job / bare:.3f} ({(job / bare - 1) * 100:+.1f} %)"


def render(results: list[Measurement], meta: dict) -> str:
    variants = [v for v in VARIANTS if any(m.variant == v for m in results)]
    files, total = meta["files"], meta["bytes"]
    shape = TreeShape(**meta["shape"]) if "shape" in meta else FULL  # results of earlier runs have no shape
    trigger = (
        "its cron set to the next minute boundary (at least "
        f"{meta['slot_margin']:.0f} s ahead), fired by a real `celery beat` (jobs.scheduling.beat.JobsScheduler)"
        if meta["trigger"] == "schedule"
        else "queued with `jobs.services.run_now` (runScheduledJob's path)"
    )
    log_flags = meta.get("log_flags", "--use-json-log --log-level INFO --stats 10s")
    rtt = meta.get("rtt_ms") or 0
    network = (
        f" Every variant reaches the server through `bench/delayline.py`, a relay in its own process that holds "
        f"every chunk {rtt / 2:g} ms each way (asyncio timers: that or up to a millisecond more): a round trip of "
        f"at least {rtt:g} ms, like an object store's across a network. This kernel has no netem qdisc, so the "
        "delay is made in user space: it costs CPU on this machine (counted in the server CPU column), and "
        "bandwidth, loss and TCP windows over a long path are not modelled. PostgreSQL, Redis and the egress "
        "proxy's client side are not delayed."
        if rtt
        else ""
    )
    lines = [
        section_for(meta),
        "",
        f"- Date: {meta['date']}; total run {meta['total_seconds']:.0f} s (tree generated in "
        f"{meta['generate_seconds']:.1f} s).",
        f"- Machine: {meta['machine']}. rclone client, `rclone serve s3`, worker, beat, Redis, PostgreSQL and the "
        f"benchmark share it; other work ran on it too (1-minute load average {meta['load_before']:.2f} when "
        f"measuring began, {meta['load_after']:.2f} at the end; each run's is in the table below).",
        f"- Command: `{meta['command']}` (or `make bench-sync`).",
        f"- Tree: {files:,} files, {total / 1e6:,.0f} MB ({total / 2**30:.2f} GiB): {shape.small_files:,} files of "
        f"{shape.small_min // 1024}-{shape.small_max // 1024} KiB (uniform, `random.Random({meta['seed']})`, "
        f"{-(-shape.small_files // shape.per_folder)} folders of {shape.per_folder}) and {shape.big_files} files of "
        f"{shape.big_size >> 20} MiB, random (incompressible) content, fixed mtimes, on "
        "local disk. Destination: `rclone serve s3 ROOT --addr 127.0.0.1:PORT --auth-key USER,PASS` (default "
        "server options) over an empty folder with one bucket; each variant writes into a fresh prefix, removed "
        "after its incremental run." + network,
        "",
        "What is measured: a full sync into an empty prefix, then an incremental one (the same command again, "
        "nothing changed: listing and comparing only), for each of:",
        "",
        "- **bare rclone**: `rclone sync here:TREE bench:bucket/bare-N --config PLAIN.conf --ask-password=false "
        "--cache-dir DIR`, i.e. the job's own command line (`jobs.sync.rclone.step_command`) minus its log flags "
        f"(`{log_flags}`), with the same two remotes (`here`: type local; `bench`: "
        "type s3, provider Rclone, endpoint, keys) in a plain, unencrypted config file; default log level (NOTICE), "
        "output to a file. Time: wall clock of the process, start to exit.",
        "- **job's rclone command, run directly** (`job-cmd`): the exact argv and environment a job step builds "
        f"(`jobs.sync.rclone.step_command` / `step_environment`: encrypted config and RCLONE_CONFIG_PASS, "
        f"`{log_flags}`), output to a "
        "file. Isolates what the job's flags cost rclone itself.",
        *(
            [
                "- **job's command through the egress proxy, run directly** (`job-proxy`): the same, with the step's "
                "egress proxy (`pointscene.core.egress.EgressProxy`, the worker's policy: every connection checked "
                "after DNS, the bench server let through by the explicit `JOBS_EGRESS_ALLOW` allowance) in the "
                "benchmark process and rclone's `--http-proxy` pointed at it: what the connect-time check in the "
                "byte path costs, without Celery, Django or the database."
            ]
            if "job-proxy" in variants
            else []
        ),
        *(
            [
                "- **job's command, log read like the worker** (`pipe`): the same, its output read through a pipe "
                "line by line by the benchmark process exactly as `session.run_rclone` does (`format_line`, the "
                "redactor, "
                "`RunLog.line`): the log streaming alone, without Celery, Django or the database."
            ]
            if "pipe" in variants
            else []
        ),
        *(
            [
                "- **job's command, log read in batches** (`pipe-batched`, a suggested change measured here): as "
                f"`pipe`, but the reader sleeps {meta.get('batch_seconds', 0.1)} s between reads and takes whatever "
                "piled up in the pipe, instead of waking for every line."
            ]
            if "pipe-batched" in variants
            else []
        ),
        f"- **scheduled job run**: a ScheduledJob whose one task is `rclone.sync` with remotes "
        f"`[here:TREE, bench:bucket/job-N]`{', verbose: true' if meta.get('verbose') else ''} (defaults otherwise: "
        f"transfers 4, checkers 8), {trigger}, run by a real "
        f"`celery worker --concurrency {meta['workers']}` (prefork). **Time = JobHistory finished_at - started_at** "
        "(claiming the run, loading and decrypting the remotes, writing the encrypted config, rclone, streaming its "
        "log into the run log, storing the log, finishing the row). Start lag = started_at - slot; end to end = "
        "finished_at - slot (beat publishes up to 5 s early with the slot as ETA, so published_at -> finished_at "
        "is up to 5 s longer and shown separately).",
        "",
        f"{meta['reps']} repetitions, each a full run then {meta.get('incrementals', 1)} incremental run(s) per "
        "variant; the order of the variants rotates from one repetition to the next. Before every measurement: "
        f"`sync(2)`, a {meta['settle']:.0f} s pause, and a wait (at most {meta['quiet_wait']:.0f} s) until the "
        f"machine used under {meta['quiet']} cores over 2 s (for the job, checked 10 s before its slot; if busy, "
        "the slot moves a minute on). Other work can still start during a measurement: the cores used meanwhile "
        "by processes that are not the benchmark's (other people's tests, PostgreSQL; kernel threads left out) "
        f"are in the per-run table; **quiet** runs are those where they stayed under {QUIET_CORES} cores. Full "
        f"runs were checked: the destination held all {files:,} files and {total:,} bytes"
        f"{'' if meta['all_verified'] else ' (NOT in every run, see notes)'}; incremental runs transferred "
        "nothing.",
        f"- Code measured: {meta.get('code', '-')}.",
        "",
        "| variant | phase | n | median s | min s | max s | files/s (median) | MB/s (median) | quiet n "
        "| quiet median s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for variant in variants:
        for phase in ("full", "incremental"):
            ms = of(results, variant, phase)
            secs = [m.seconds for m in ms]
            quiet = [m.seconds for m in ms if m.others_cores < QUIET_CORES]
            median = med(secs)
            rate = f"{files / median:,.0f}" if median else "-"
            speed = f"{total / 1e6 / median:,.1f}" if median and phase == "full" else "-"
            lines.append(
                f"| {LABELS[variant]} | {phase} | {len(ms)} | {fmt(median)} | {fmt(min(secs))} | {fmt(max(secs))} "
                f"| {rate} | {speed} | {len(quiet)} | {fmt(med(quiet))} |"
            )
    lines += [
        "",
        "Ratios to bare rclone: median / median with a 90 % bootstrap interval (both samples resampled, 5,000 times), "
        "min / min, and quiet median / quiet median:",
        "",
    ]
    lines += ["| ratio | phase | median | 90 % interval | min | quiet median |", "|---|---|---:|---:|---:|---:|"]
    for variant in [v for v in variants if v != "bare"]:
        for phase in ("full", "incremental"):
            a = of(results, variant, phase)
            b = of(results, "bare", phase)
            if a and b:
                qa = med([m.seconds for m in a if m.others_cores < QUIET_CORES])
                qb = med([m.seconds for m in b if m.others_cores < QUIET_CORES])
                sa, sb = [m.seconds for m in a], [m.seconds for m in b]
                low, high = ratio_interval(sa, sb)
                lines.append(
                    f"| {LABELS[variant]} / bare | {phase} | {ratio_text(med(sa), med(sb))} | {low:.3f} - {high:.3f} "
                    f"| {ratio_text(min(sa), min(sb))} | {ratio_text(qa, qb)} |"
                )
    lines += [
        "",
        "Per run (seconds; CPU seconds user+system of the rclone client, of `serve s3`"
        + (" and the delay line" if rtt else "")
        + ", and Python's: for the job the "
        "worker process that ran it (rclone excluded), for pipe the benchmark process; Python wake-ups = its "
        "voluntary context switches; others = cores used meanwhile by processes not the benchmark's):",
        "",
        "| rep | place | variant | phase | time | rclone elapsedTime | start lag | end to end | published -> end "
        "| rclone CPU | server CPU | Python CPU | Python wake-ups | log lines | others, cores | load |",
        "|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m in sorted(results, key=lambda m: (m.rep, m.position, m.phase != "full")):
        first = " (worker's 1st run)" if m.first_on_worker else ""
        python = m.python_cpu if m.variant in ("job", "pipe", "pipe-batched") else None
        switches = f"{m.python_switches:,}" if m.python_switches is not None else "-"
        lines.append(
            f"| {m.rep} | {m.position + 1} | {m.variant}{first} | {m.phase} | {m.seconds:.2f} | "
            f"{fmt(m.rclone_elapsed)} | {fmt(m.start_lag)} | {fmt(m.end_to_end)} | {fmt(m.published_to_finish)} "
            f"| {m.rclone_cpu:.2f} | {m.server_cpu:.2f} | {fmt(python)} "
            f"| {switches} | {m.log_lines:,} | {m.others_cores:.2f} | {m.load:.2f} |"
        )
    jobs = [m for m in results if m.variant == "job" and m.breakdown]
    if jobs:
        names = list(jobs[0].breakdown)
        lines += [
            "",
            "Where a job run's time goes (median seconds, from the millisecond stamps of its run log):",
            "",
            "| phase | " + " | ".join(names) + " | total (finished_at - started_at) |",
            "|---|" + "---:|" * (len(names) + 1),
        ]
        for phase in ("full", "incremental"):
            ms = [m for m in jobs if m.phase == phase]
            cells = [fmt(med([m.breakdown.get(n) for m in ms]), 3) for n in names]
            lines.append(f"| {phase} | " + " | ".join(cells) + f" | {fmt(med([m.seconds for m in ms]), 3)} |")
    lines += ["", "### Reading", "", *reading(results, meta), ""]
    notes = [f"- rep {m.rep} {m.variant} {m.phase}: " + "; ".join(m.notes) for m in results if m.notes]
    if notes:
        lines += ["Notes from the run:", "", *notes, ""]
    if meta.get("extra"):
        lines += [meta["extra"], ""]
    return "\n".join(lines)


# Each variant adds one layer to the one before it, so their ratios say what each layer costs.
STEPS = [("job-cmd", "bare"), ("job-proxy", "job-cmd"), ("job", "job-proxy")]
STEP_NAMES = {
    ("job-cmd", "bare"): "the job's flags and encrypted config (job-cmd / bare)",
    ("job-proxy", "job-cmd"): "the egress proxy's connect-time check in the byte path (job-proxy / job-cmd)",
    ("job", "job-proxy"): "the worker: Celery, the database, live progress and log streaming (job / job-proxy)",
}


def reading(results: list[Measurement], meta: dict) -> list[str]:
    out = []
    for phase in ("full", "incremental"):
        job = [m.seconds for m in of(results, "job", phase)]
        bare = [m.seconds for m in of(results, "bare", phase)]
        if not job or not bare:
            continue
        ratio = med(job) / med(bare)
        low, high = ratio_interval(job, bare)
        verdict = "met" if ratio <= 1 + TARGET else "missed"
        if low <= 1 + TARGET < high:
            resolved = "the interval holds 1.05: these samples cannot tell whether the target is met"
        else:
            resolved = f"the whole interval is {'above' if low > 1 + TARGET else 'at or below'} 1.05"
        out.append(
            f"- **{phase.capitalize()}, job within 5 % of bare rclone: {verdict} by the medians** ({med(job):.2f} s vs "
            f"{med(bare):.2f} s, ratio {ratio:.3f}; 90 % interval {low:.3f} - {high:.3f}: {resolved})."
        )
    for phase in ("full", "incremental"):
        medians = {v: med([m.seconds for m in of(results, v, phase)]) for v in VARIANTS}
        steps = [f"{STEP_NAMES[a, b]} {medians[a] / medians[b]:.3f}" for a, b in STEPS if medians[a] and medians[b]]
        if steps:
            out.append(f"- {phase.capitalize()}, the cost layer by layer (median / median): {'; '.join(steps)}.")
    if not meta.get("rtt_ms"):
        out.append(
            "- This server answers on loopback, on the same cores as the client: there is no network round trip, and "
            "every cycle the egress proxy or the worker spends is taken from rclone and the server. What a round "
            "trip changes is in the `--rtt-ms` sections (a delay line in front of the server, e.g. `bench/sync.py "
            "--rtt-ms 10`)."
        )
    for variant in ("job", "pipe", "pipe-batched"):
        full = of(results, variant, "full")
        if full:
            switches = [m.python_switches for m in full if m.python_switches is not None]
            whose = "the worker process that ran it, all of it" if variant == "job" else "the benchmark process"
            out.append(
                f"- Python CPU during a full sync, {LABELS[variant]}, {whose}: median "
                f"{med([m.python_cpu for m in full]):.2f} s"
                + (f", {med(switches):,.0f} wake-ups" if switches else "")
                + f", for {med([m.log_lines for m in full]):,.0f} log lines."
            )
    cost = meta.get("streaming")
    if cost and cost["lines"] >= 100:  # a log of a few lines says nothing per line
        out.append(
            f"- The same lines replayed in-process, without the pipe ({cost['lines']:,} lines of a job-cmd full log): "
            f"{cost['seconds'] * 1000:.0f} ms of CPU ({cost['per_line_us']:.1f} us a line; of it `json.loads` "
            f"{cost['json_seconds'] * 1000:.0f} ms)."
        )
    first = meta.get("first_call")
    if first:
        out.append(
            f"- `rclone config providers` (configs.rclone.backends(), cached once per worker process, first needed "
            f"by the step's `_secret_values`/`_rclone_options`): {first['config_providers_seconds'] * 1000:.0f} ms."
        )
    return out
