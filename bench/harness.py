"""What every benchmark in bench/ shares: child processes, a private redis-server, the benchmark's own PostgreSQL
database, CPU accounting from /proc, the machine description and the writer of a docs/benchmarks.md section.

Nothing here imports Django: a benchmark picks its database and Redis with these functions before it sets Django
up. Each bench runs as a script (`.venv/bin/python bench/X.py`) that puts the repository on sys.path first.
"""

import atexit
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from importlib.metadata import version
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
CELERY = str(Path(sys.executable).parent / "celery")
CLK_TCK = os.sysconf("SC_CLK_TCK")

PROCESSES: list["Process"] = []


# --------------------------------------------------------------------------------------------- processes


class Process:
    """A child process in its own session (so its whole group can be ended), output to a log file."""

    def __init__(self, name: str, args: list[str], env: dict, logdir: Path) -> None:
        self.name = name
        self.log_path = Path(logdir) / f"{name}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.pid = self.popen.pid
        PROCESSES.append(self)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.popen.poll() is None

    def wait_for(self, text: str, timeout: float = 60) -> None:
        """Until the log shows `text`; exits the benchmark if the process dies or `timeout` passes first."""
        deadline = time.monotonic() + timeout
        while text not in self.output():
            if self.popen.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"{self.name} did not print {text!r}:\n{self.output()[-3000:]}")
            time.sleep(0.2)

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM to the process itself (a celery worker then finishes its running tasks and gives back the
        messages it holds), SIGKILL to its whole group after `timeout` or if anything of the group is left."""
        if self.popen.poll() is None:
            try:
                os.kill(self.pid, signal.SIGTERM)
                self.popen.wait(timeout)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                pass
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self.popen.poll() is None:
            self.popen.wait()
        if not self._log.closed:
            self._log.close()
        if self in PROCESSES:
            PROCESSES.remove(self)


def stop_all() -> None:
    for process in list(reversed(PROCESSES)):
        try:
            process.stop(timeout=10)
        except Exception as exc:  # noqa: BLE001 - best effort on the way out
            print(f"could not stop {process.name} ({process.pid}): {exc}", file=sys.stderr)


def stop_on_exit() -> None:
    """Every process started here is stopped when the benchmark ends, by a signal too (then with 128 + signal)."""
    atexit.register(stop_all)
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: sys.exit(128 + signum))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: Process, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            if process.popen.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"{process.name} did not listen on {port}:\n{process.output()[-3000:]}")
            time.sleep(0.05)


def start_redis(logdir: Path) -> str:
    """A private redis-server on a free port (no persistence, its folder removed at exit); returns its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    folder = tempfile.mkdtemp(prefix="bench-redis-")
    atexit.register(shutil.rmtree, folder, True)
    args = [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"]
    process = Process("redis", [*args, "--dir", folder], dict(os.environ), logdir)
    wait_for_port(port, process)
    return f"redis://127.0.0.1:{port}/0"


# --------------------------------------------------------------------------------------------- database


def database_url(default: str) -> str:
    return os.environ.get("BENCH_DATABASE_URL") or default


def _admin(url: str) -> tuple[str, str]:
    """(URL of the server's `postgres` database, the database name of `url`)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/postgres")), parts.path.lstrip("/")


def ensure_database(url: str) -> bool:
    """Creates the benchmark's own PostgreSQL database if it does not exist yet; True if it did now."""
    admin, name = _admin(url)
    with psycopg.connect(admin, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            return False
        conn.execute(f'CREATE DATABASE "{name}"')
    print(f"created database {name}", flush=True)
    return True


def drop_database(url: str) -> None:
    admin, name = _admin(url)
    with psycopg.connect(admin, autocommit=True) as conn:
        # FORCE: this process's own Django connection may still be open at exit.
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def private_database(url: str) -> str:
    """A new database beside `url`'s, named smoke<random>_<its name> (so a caller's naming suffix is kept and two
    runs never share one), dropped at exit after the benchmark's processes are stopped; returns its URL."""
    parts = urlsplit(url)
    name = f"smoke{secrets.token_hex(4)}_{parts.path.lstrip('/')}"[:63]
    private = urlunsplit(parts._replace(path=f"/{name}"))
    ensure_database(private)

    def drop() -> None:
        stop_all()
        drop_database(private)
        print(f"dropped database {name}", flush=True)

    atexit.register(drop)
    return private


def postgres_version(url: str) -> str:
    with psycopg.connect(url) as conn:
        return conn.execute("SHOW server_version").fetchone()[0]


# --------------------------------------------------------------------------------------------- CPU from /proc


def _stat_fields(stat: Path) -> list[str] | None:
    """A /proc/PID/stat's fields after the command name, i.e. from field 3 (state) on; None once it is gone."""
    try:
        return stat.read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def cpu_of(pid: int) -> tuple[float, float]:
    """(own, reaped children's) CPU seconds of a process, from /proc/PID/stat; (0, 0) once it is gone."""
    fields = _stat_fields(Path(f"/proc/{pid}/stat"))
    if fields is None:
        return 0.0, 0.0
    # After the ")" the list starts at field 3: utime, stime, cutime, cstime are fields 14-17.
    own = (int(fields[11]) + int(fields[12])) / CLK_TCK
    children = (int(fields[13]) + int(fields[14])) / CLK_TCK
    return own, children


def group_cpu(pgid: int) -> float:
    """CPU seconds of every live process in process group `pgid` (a worker and its pool processes, which a
    Process starts in their own session), their reaped children's included."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        fields = _stat_fields(stat)
        if fields is not None and int(fields[2]) == pgid:  # field 5, pgrp
            total += sum(int(v) for v in fields[11:15]) / CLK_TCK
    return total


def voluntary_switches(pid: int) -> int:
    """Voluntary context switches of a process's threads (each time one blocked, e.g. waiting on a pipe)."""
    total = 0
    for status in Path(f"/proc/{pid}/task").glob("*/status"):
        try:
            for line in status.read_text().splitlines():
                if line.startswith("voluntary_ctxt_switches:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


def process_table() -> dict[int, tuple[int, float]]:
    """pid -> (parent pid, CPU seconds of the process and of its reaped children) for every process."""
    table = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        table[int(stat.parent.name)] = (int(fields[1]), sum(int(v) for v in fields[11:15]) / CLK_TCK)
    return table


def children_of(pid: int) -> list[int]:
    return [child for child, (parent, _) in process_table().items() if parent == pid]


def descendants(table: dict[int, tuple[int, float]], root: int) -> set[int]:
    found, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, _) in table.items():
            if ppid == parent and pid not in found:
                found.add(pid)
                frontier.append(pid)
    return found


class Others:
    """CPU used meanwhile by processes that are not this benchmark's (it and everything it started): other
    people's work on the machine, PostgreSQL included. Kernel threads are left out (the page cache writeback and
    loopback networking of our own work run there)."""

    def __init__(self) -> None:
        self.table = process_table()
        self.started = time.monotonic()

    def cores(self) -> float:
        table = process_table()
        ours = descendants(self.table, os.getpid()) | descendants(table, os.getpid())
        spent = 0.0
        for pid, (ppid, cpu) in table.items():
            if pid in ours or pid == 2 or ppid == 2:
                continue
            spent += max(0.0, cpu - self.table.get(pid, (0, 0.0))[1])
        return spent / max(1e-9, time.monotonic() - self.started)


class ProcSampler(threading.Thread):
    """Samples a process's CPU (utime+stime+cutime+cstime) and VmHWM/VmRSS from /proc every 0.25 s."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.cpu = 0.0
        self.hwm_kb = 0
        self.rss_kb = 0
        self.marks: dict[str, float] = {}
        self._stop = threading.Event()

    def sample(self) -> None:
        try:
            status = Path(f"/proc/{self.pid}/status").read_text()
        except (FileNotFoundError, ProcessLookupError):
            return
        self.cpu = sum(cpu_of(self.pid))
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                self.hwm_kb = int(line.split()[1])
            elif line.startswith("VmRSS:"):
                self.rss_kb = int(line.split()[1])

    def mark(self, name: str) -> None:
        self.sample()
        self.marks[name] = self.cpu

    def run(self) -> None:
        while not self._stop.wait(0.25):
            self.sample()

    def stop(self) -> None:
        self._stop.set()
        self.sample()


def machine_busy() -> float:
    """CPU seconds the whole machine has been busy (all cores, /proc/stat), to see what else ran meanwhile."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def wait_until_quiet(limit: float, max_wait: float) -> float:
    """Waits (up to `max_wait` s) until the machine uses under `limit` cores over 2 s; returns the cores last seen.
    The benchmark shares its 2 cores with whatever else runs; a measurement started in the middle of someone
    else's burst measures them too."""
    deadline = time.monotonic() + max_wait
    while True:
        before = machine_busy()
        time.sleep(2)
        cores = (machine_busy() - before) / 2
        if cores < limit or time.monotonic() >= deadline:
            return cores
        time.sleep(3)


def wait_for_idle(limit: float, max_wait: float) -> float:
    """Waits (up to `max_wait` s, checking every 30 s) until the 1-minute load average is under `limit`."""
    deadline = time.monotonic() + max_wait
    while True:
        load = os.getloadavg()[0]
        if load < limit or time.monotonic() >= deadline:
            return load
        print(f"load average {load:.2f} >= {limit}; waiting", flush=True)
        time.sleep(30)


# --------------------------------------------------------------------------------------------- reporting


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def memory_gib() -> float:
    return int(Path("/proc/meminfo").read_text().split()[1]) / 1024 / 1024


def machine(servers: list[str], packages: list[str], where: str = "") -> str:
    """'2 CPUs (model), 23.5 GiB RAM[, where]; server; ...; Python 3.11.7, Django 5.2, <package> <version>, ...'.
    `servers` are shown as given; `packages` are distribution names, shown with their installed version."""
    hardware = f"{os.cpu_count()} CPUs ({cpu_model()}), {memory_gib():.1f} GiB RAM" + (f", {where}" if where else "")
    python = ", ".join([f"Python {platform.python_version()}", *(f"{p} {version(p)}" for p in packages)])
    return "; ".join([hardware, *servers, python])


def redis_version() -> str:
    out = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout
    return out.split()[2].removeprefix("v=")


def write_doc(section: str, text: str, doc: Path = DOC) -> None:
    """Replaces the section headed `section` (up to the next "## " heading) of `doc` with `text`, or appends it;
    other sections stay as they are."""
    current = doc.read_text() if doc.exists() else "# Benchmarks\n\nNumbers measured on this project's machine.\n"
    lines = current.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() == section), None)
    if start is None:
        new = current.rstrip("\n") + "\n\n" + text.rstrip("\n") + "\n"
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        tail = ["", *lines[end:]] if end < len(lines) else []
        new = "\n".join([*lines[:start], *text.rstrip("\n").splitlines(), *tail]) + "\n"
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(new)


def api_environment(smoke: bool, folder: Path) -> None:
    """The environment of a benchmark that serves the API (bench/api.py, bench/prune.py), set before Django is:
    with `smoke`, a private database beside DATABASE_URL's (dropped at exit); otherwise DATABASE_URL's, created if
    missing. A private Redis in `folder` (the rate limiter counts there), and no GraphQL rate limit: the cases send
    requests back to back, well over the service's 600 a minute, and what is measured is the API, not the limiter."""
    if smoke:
        os.environ["DATABASE_URL"] = private_database(os.environ["DATABASE_URL"])
    elif os.environ["DATABASE_URL"].startswith(("postgres://", "postgresql://")):
        ensure_database(os.environ["DATABASE_URL"])
    os.environ["REDIS_URL"] = start_redis(folder)
    os.environ.update(RATELIMIT_GRAPHQL_PER_PRINCIPAL="", RATELIMIT_GRAPHQL_PER_ADDRESS="")


def smoke_doc(given: str | None) -> Path:
    """Where a smoke run writes its section: `given`, else a file in a temporary folder (never docs/)."""
    if given:
        return Path(given)
    folder = tempfile.mkdtemp(prefix="bench-smoke-")
    return Path(folder) / "benchmarks.md"
