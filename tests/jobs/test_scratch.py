"""Scratch folders of steps (jobs.sync.scratch): those of killed workers are removed by the next step on the
machine, a live process's never."""

import os
import subprocess
import sys
import tempfile

import pytest

from jobs.sync.scratch import remove_abandoned, scratch_folder


@pytest.fixture
def machine_tmp(monkeypatch, tmp_path):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_it_names_a_folder_for_its_process_and_only_its_user_enters_it(machine_tmp):
    folder = scratch_folder("rclone-step")

    assert folder.parent == machine_tmp
    assert folder.name.startswith(f"rclone-step-{os.getpid()}-")
    assert folder.stat().st_mode & 0o777 == 0o700


def test_it_removes_what_killed_processes_left_and_keeps_the_rest(machine_tmp):
    gone = dead_pid()
    for name in (f"rclone-step-{gone}-abc", f"bisync-{gone}-def"):
        (machine_tmp / name).mkdir()
        (machine_tmp / name / "rclone.conf").write_text("# Encrypted rclone configuration File")
    live = scratch_folder("rclone-step")
    unrelated = machine_tmp / f"something-{gone}-else"
    unrelated.mkdir()

    removed = remove_abandoned()

    assert sorted(p.name for p in removed) == [f"bisync-{gone}-def", f"rclone-step-{gone}-abc"]
    assert sorted(p.name for p in machine_tmp.iterdir()) == sorted([live.name, unrelated.name])
