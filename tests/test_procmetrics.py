"""Each process group's own metrics folder (pointscene.procmetrics), prepared by the image's entrypoint and by
`make run` (pointscene/run.py); the entrypoint's Flower clean-up."""

import os
import subprocess
import sys
from pathlib import Path

from pointscene import entrypoint, procmetrics, run

ROOT = Path(__file__).resolve().parent.parent

STALE = ["counter_1.db", "gauge_livesum_1.db", "histogram_7.db", "summary_9.db"]


def stale_folder(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for name in STALE:
        (path / name).write_bytes(b"\0" * 16)
    (path / "notes.txt").write_text("not ours")
    return path


def test_it_empties_the_folder_of_metrics_files_only(tmp_path):
    folder = stale_folder(tmp_path / "metrics")

    assert procmetrics.prepare({"PROMETHEUS_MULTIPROC_DIR": str(folder)}) == folder
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]


def test_it_creates_a_missing_folder_and_does_nothing_when_unset(tmp_path):
    folder = tmp_path / "new" / "metrics"

    assert procmetrics.prepare({"PROMETHEUS_MULTIPROC_DIR": str(folder)}) == folder
    assert folder.is_dir()
    assert procmetrics.prepare({}) is None
    assert procmetrics.prepare({"PROMETHEUS_MULTIPROC_DIR": ""}) is None


def test_it_gives_make_run_a_fresh_folder_of_its_own(tmp_path):
    env: dict[str, str] = {}
    first = run.metrics_folder(env)
    second = run.metrics_folder({})
    try:
        assert env["PROMETHEUS_MULTIPROC_DIR"] == str(first)
        assert first.is_dir()
        assert second.is_dir()
        assert first != second
    finally:
        first.rmdir()
        second.rmdir()


def test_it_empties_a_folder_make_run_is_given(tmp_path):
    folder = stale_folder(tmp_path / "given")
    env = {"PROMETHEUS_MULTIPROC_DIR": str(folder)}

    assert run.metrics_folder(env) == folder
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]


def test_it_drops_empty_flower_options_and_keeps_the_rest():
    env = {"FLOWER_BASIC_AUTH": "", "FLOWER_PORT": "5555", "OTHER": "", "PATH": "/bin"}

    assert entrypoint.environment(env) == {"FLOWER_PORT": "5555", "OTHER": "", "PATH": "/bin"}
    assert entrypoint.environment({"FLOWER_BASIC_AUTH": "ops:pw"}) == {"FLOWER_BASIC_AUTH": "ops:pw"}


def test_the_entrypoint_prepares_the_folder_then_becomes_the_command(tmp_path):
    folder = stale_folder(tmp_path / "metrics")
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder), "FLOWER_BASIC_AUTH": ""}
    probe = "import os, sys; print(os.getpid(), 'FLOWER_BASIC_AUTH' in os.environ, sorted(os.listdir(sys.argv[1])))"

    done = subprocess.run(
        [sys.executable, "-m", "pointscene.entrypoint", sys.executable, "-c", probe, str(folder)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr
    _, has_auth, files = done.stdout.split(" ", 2)
    assert has_auth == "False"
    assert files.strip() == "['notes.txt']"


def test_a_dead_processs_live_gauges_leave_the_folder_and_its_counters_stay(tmp_path, monkeypatch):
    folder = tmp_path / "metrics"
    folder.mkdir()
    names = ["gauge_livesum_4321.db", "gauge_liveall_4321.db", "counter_4321.db", "gauge_livesum_99.db"]
    for name in names:
        (folder / name).write_bytes(b"\0" * 16)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(folder))

    procmetrics.forget_process(4321)

    assert sorted(p.name for p in folder.iterdir()) == ["counter_4321.db", "gauge_livesum_99.db"]


def test_gunicorns_child_exit_hook_forgets_the_worker(tmp_path, monkeypatch):
    import runpy
    from types import SimpleNamespace

    folder = tmp_path / "metrics"
    folder.mkdir()
    (folder / "gauge_livesum_777.db").write_bytes(b"\0" * 16)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(folder))
    hooks = runpy.run_path(str(ROOT / "gunicorn.conf.py"))

    hooks["child_exit"](None, SimpleNamespace(pid=777))

    assert list(folder.iterdir()) == []
