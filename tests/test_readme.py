"""The README's first session, run as written: its shell block, line by line, in a fresh copy of the checkout.

The copy stands for a fresh clone (tracked files only, no var/, no database), sharing this checkout's .venv so the
test does not reinstall. The shell's PATH holds only the tools the block and `make run` use, and no `sudo`,
`apt-get` or browser: `make run` must start the service on such a machine. `set -m` gives the script the job control
an interactive shell has, so the block's `kill %1` stops `make run` with everything it started, as it would for a
person at a terminal.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# What the block and `make run` call by name (make, the service's processes and rclone come from .venv/bin).
TOOLS = ["bash", "sh", "make", "python3", "curl", "cat", "mkdir", "sleep", "grep", "redis-server", "env", "id", "touch"]

pytestmark = [pytest.mark.slow]


def first_session() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## A first session", 1)[1]
    match = re.search(r"```sh\n(.*?)```", section, re.S)
    assert match, "README's first session has no ```sh block"
    return match.group(1)


def fresh_copy(target: Path) -> None:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)  # keeps times: make sees .venv as newer than pyproject.toml
    (target / ".venv").symlink_to(ROOT / ".venv")


def real_python3() -> str:
    """The interpreter `python3` runs, not a version manager's shim (pyenv's needs its own environment)."""
    return subprocess.run(
        ["python3", "-c", "import sys; print(sys.executable)"], capture_output=True, text=True, check=True
    ).stdout.strip()


def bare_path(bin_dir: Path) -> str:
    bin_dir.mkdir()
    for tool in TOOLS:
        found = real_python3() if tool == "python3" else shutil.which(tool)
        assert found, f"{tool} is not installed"
        (bin_dir / tool).symlink_to(found)
    return str(bin_dir)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def kill_session(session: int) -> None:
    """Everything the script started, whatever process group job control put it in (they share the session)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == session:
            try:
                os.kill(int(stat.parent.name), signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_it_runs_the_readmes_first_session_to_a_successful_run_and_its_log(tmp_path, request):
    if "sqlite" in os.environ.get("DATABASE_URL", ""):
        pytest.skip("runs once, in the PostgreSQL pass (the session itself uses its own SQLite file)")
    clone = tmp_path / "clone"
    clone.mkdir()
    fresh_copy(clone)
    path = bare_path(tmp_path / "bin")
    assert shutil.which("sudo", path=path) is None
    assert shutil.which("apt-get", path=path) is None
    assert shutil.which("chromium", path=path) is None
    env = {
        "PATH": path,
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        # The copy's packages, not the checkout's that .venv's editable install points to.
        "PYTHONPATH": str(clone),
        "PORT": str(free_port()),
        # Nothing answers there, so make run starts (and stops) a private redis-server, as on a bare laptop.
        "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
    }
    script = "set -euo pipefail -m\n" + first_session()
    shell = subprocess.Popen(
        ["bash", "-c", script],
        cwd=clone,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        text=True,
    )
    request.addfinalizer(lambda: kill_session(shell.pid))
    try:
        output, _ = shell.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        kill_session(shell.pid)
        output, _ = shell.communicate()
        pytest.fail(f"the first session did not end:\n{output}")
    log_file = clone / "var" / "run.log"
    run_log = log_file.read_text() if log_file.exists() else "(no var/run.log)"

    assert shell.returncode == 0, f"{output}\n--- var/run.log ---\n{run_log[-4000:]}"
    assert re.search(r'"status": ?"SUCCEEDED", ?"trigger": ?"MANUAL"', output)
    assert "rclone stats: 1 files, 18 bytes transferred" in output  # the log, downloaded through signedLogUrl
    assert re.search(r"Run \d+ succeeded", output)
    assert "hello from site A" in output  # cat of the synced file
    assert f"http://127.0.0.1:{env['PORT']}/graphql" in run_log  # make run's banner names the port it serves
    assert "started a private redis-server" in run_log
    assert (clone / "db.sqlite3").exists()
    assert (clone / "var" / "backup" / "hello.txt").read_text() == "hello from site A\n"
