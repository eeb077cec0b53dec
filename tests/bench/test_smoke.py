"""Each benchmark's --smoke mode, run as `make test` runs it: tiny sizes, a private database and Redis, the report
in a temporary file. Benchmarks are code too; these keep them from rotting between real runs."""

import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def run_bench(name: str, *args: str, timeout: float) -> str:
    """Runs `bench/<name>.py --smoke ARGS` and returns its output; fails on a non-zero exit."""
    if connection.vendor != "postgresql":
        pytest.skip("the benchmarks measure PostgreSQL (each makes a private database beside the test database)")
    db = connection.settings_dict
    password = f":{quote(db['PASSWORD'])}" if db.get("PASSWORD") else ""
    host = f"{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
    # The smoke database is named smoke<random>_<this name>, created and dropped by the benchmark itself.
    url = f"postgres://{db['USER']}{password}@{host}/{db['NAME']}"
    env = {**os.environ, "BENCH_DATABASE_URL": url, "DATABASE_URL": url, "PYTHONUNBUFFERED": "1"}
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / f"{name}.py"), "--smoke", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert "dropped database smoke" in output or name == "acc", output[-2000:]
    return output


@pytest.mark.slow
def test_it_smokes_the_api_bench(tmp_path):
    doc = tmp_path / "benchmarks.md"
    run_bench("api", "--doc", str(doc), timeout=120)
    text = doc.read_text()
    assert "## API (bench/api.py)" in text
    deep_page = r"\| getInstanceJobHistory, first 100 \(default\), after 2,000 rows \| 5 \| [\d.]+ \| [\d.]+ \|"
    assert re.search(deep_page, text), text
    assert re.search(r"\| bench-jobs-1000 \| 50 \| 20 \| \d+ \| \d+ \| \d+ \|", text), text
    assert "Query count constant: met" in text


@pytest.mark.slow
def test_it_smokes_the_scheduler_bench(tmp_path):
    doc = tmp_path / "benchmarks.md"
    # Up to a minute of it is waiting for the next minute boundary with 12 s to spare.
    run_bench("scheduler", "--doc", str(doc), timeout=180)
    text = doc.read_text()
    assert "## Scheduler (bench/scheduler.py)" in text
    assert re.search(r"\| 9 \| ours \(JobsScheduler\) \| ok \| -?[\d.]+ / -?[\d.]+ / -?[\d.]+ \|", text), text
    assert "| 9 / 9 / 9 | 0 | 0 |" in text


@pytest.mark.slow
def test_it_smokes_the_scheduler_bench_with_two_machines(tmp_path):
    doc = tmp_path / "benchmarks.md"
    run_bench("scheduler", "--machines", "2", "--doc", str(doc), timeout=180)
    text = doc.read_text()
    assert "## Fleet (bench/scheduler.py --machines)" in text
    row = re.search(
        r"\| ours \(JobsScheduler\) \| ok \| 9 / 9 \| .* \| 0 / 0 \| ([\d.]+) \| (\d+) % / (\d+) % \|", text
    )
    assert row, text
    assert float(row.group(1)) > 0  # worker CPU per run, measured
    assert int(row.group(2)) + int(row.group(3)) in (99, 100, 101)  # two machines' shares of the one boundary


@pytest.mark.slow
def test_it_smokes_the_sync_bench(tmp_path):
    doc = tmp_path / "benchmarks.md"
    run_bench("sync", "--doc", str(doc), timeout=180)
    text = doc.read_text()
    assert "## Sync (bench/sync.py)" in text
    for label in (
        "bare rclone",
        "job's rclone command, run directly",
        "job's command through the egress proxy, run directly",
        "scheduled job run \\(worker\\)",
    ):
        assert re.search(rf"\| {label} \| full \| 1 \| [\d.]+ \| [\d.]+ \|", text), label
    assert "NOT in every run" not in text  # every full run left the whole tree at the destination


def test_it_smokes_the_sweep_bench():
    output = run_bench("sweep", timeout=60)
    assert re.search(r"\| 50 \| steady \(30 s since the last\) \| [\d.]+ \| \d+ \| ~1 per job \|", output), output
    assert re.search(r"\| 50 \| lost-run check, 1,000 RUNNING \| [\d.]+ \| \d+ \|", output), output


def test_it_smokes_the_acc_bench():
    output = run_bench("acc", timeout=60)
    assert re.search(r"rep 1 bridge +[\d.]+ s +[\d.]+ files/s", output), output
    assert re.search(r"throughput ratio bridge/plain [\d.]+", output), output


@pytest.mark.slow
def test_it_smokes_the_prune_bench(tmp_path):
    doc = tmp_path / "benchmarks.md"
    run_bench("prune", "--doc", str(doc), timeout=180)
    text = doc.read_text()
    assert "## Prune (bench/prune.py)" in text
    rows = r"\| rows: 3,000 runs deleted, \d+ batches \| [\d.]+ \| 3,000 runs \| \*\*[\d,]+ runs/s\*\* \|"
    assert re.search(rows, text), text
    assert re.search(r"\| log drain: files deleted from storage \| [\d.]+ \| 2,970 files \(0 failed\) \|", text), text
    for phase in ("before", "during rows", "after", "after VACUUM"):
        assert re.search(rf"\| {phase} \| \d+ \| [\d.]+ \| [\d.]+ \|", text), phase
    assert "Left afterwards: 600 runs (the recent ones), 0 queued deletions, 0 log files." in text
    assert "Reader errors: 0." in text
