#!/usr/bin/env python
"""Sync benchmark (not a test): a scheduled rclone.sync job run against bare `rclone sync`, same tree, same server.

    .venv/bin/python bench/sync.py [--reps 5] [--trigger schedule|now] [--variants bare,job-cmd,job]
    make bench-sync

The tree: 10,000 files of 1-64 KiB (sizes uniform, content from random.Random(seed), 100 folders of 100) plus 20
files of 50 MiB, generated once under a private work folder and removed at the end. The destination: `rclone serve
s3` (the pinned binary, default server options, --auth-key) over a fresh folder with one bucket. Each variant syncs
the tree into an empty prefix of that bucket (full), then runs again with nothing changed (incremental):

- bare: `rclone sync here:TREE bench:bucket/bare-N` with the job's own flags minus its log flags (--use-json-log
  --log-level --stats --stats-log-level), the same two remotes in a plain (unencrypted) config file, output to a
  file.
- job-cmd: the exact argv and environment a job's step builds (jobs.sync.rclone._command/_env: encrypted config,
  RCLONE_CONFIG_PASS, JSON log), run directly with its output going to a file: rclone's own cost of the job's
  flags, without the service.
- pipe (opt-in): the same, its output read through a pipe line by line by this process as jobs.sync.rclone._run does
  (parse, format, redact, RunLog): the log streaming without Celery, Django or the database.
- pipe-batched (opt-in): as pipe, but reading whatever piled up every --batch-seconds (a suggested change).

--verbose sets the task's args.verbose (a log line per file) for the job and the job's command alike.
- job: a ScheduledJob whose one task is `rclone.sync` [here:TREE, bench:bucket/job-N], its cron set to the next
  minute boundary, fired by a real `celery beat` (jobs.scheduling.beat.JobsScheduler) and run by a real `celery worker`
  (--trigger now: runScheduledJob's run_now instead). Time = JobHistory finished_at - started_at.

Variants alternate their order across repetitions (rotation), with a sync(2) and a pause before each measurement.
PostgreSQL database `pointscene_syncbench` (created here), a private redis-server on a free port. Results go to
var/bench-sync/ (JSON, logs) and the "## Sync (bench/sync.py)" section of docs/benchmarks.md. Application code is
only called, never changed.
"""

import argparse
import atexit
import fcntl
import json
import os
import platform
import random
import re
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DOC = ROOT / "docs" / "benchmarks.md"
SECTION = "## Sync (bench/sync.py)"
OUT_DIR = ROOT / "var" / "bench-sync"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/pointscene_syncbench"
CELERY = str(Path(sys.executable).parent / "celery")
CLK_TCK = os.sysconf("SC_CLK_TCK")

SMALL_FILES, SMALL_MIN, SMALL_MAX, PER_FOLDER = 10_000, 1024, 64 * 1024, 100
BIG_FILES, BIG_SIZE = 20, 50 * 1024 * 1024
MTIME = 1_767_225_600  # 2026-01-01 UTC: fixed, so every generated tree is the same
VARIANTS = ("bare", "job-cmd", "pipe", "pipe-batched", "job")
DEFAULT_VARIANTS = "bare,job-cmd,job"
LABELS = {
    "bare": "bare rclone",
    "job-cmd": "job's rclone command, run directly",
    "pipe": "job's command, log read like the worker",
    "pipe-batched": "job's command, log read in batches",
    "job": "scheduled job run (worker)",
}
TARGET = 0.05
QUIET_CORES = 0.25  # a run is "quiet" when the rest of the machine used less than this meanwhile
LOG_FLAGS = {"--use-json-log": 0, "--log-level": 1, "--stats": 1, "--stats-log-level": 1}  # flag -> values after it

PROCESSES: list["Process"] = []


# --------------------------------------------------------------------------------------------- processes


class Process:
    """A child process in its own session (so its whole group can be ended), output to a log file."""

    def __init__(self, name: str, args: list[str], env: dict, logdir: Path) -> None:
        self.name = name
        self.log_path = logdir / f"{name}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.pid = self.popen.pid
        PROCESSES.append(self)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output():
            if self.popen.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"{self.name} did not print {text!r}:\n{self.output()[-3000:]}")
            time.sleep(0.2)

    def stop(self, timeout: float = 20) -> None:
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
        self.popen.wait()
        self._log.close()
        PROCESSES.remove(self)


def stop_all() -> None:
    for process in list(reversed(PROCESSES)):
        try:
            process.stop(timeout=10)
        except Exception as exc:  # noqa: BLE001 - best effort on the way out
            print(f"could not stop {process.name} ({process.pid}): {exc}", file=sys.stderr)


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


def cpu_of(pid: int) -> tuple[float, float]:
    """(own, reaped children's) CPU seconds of a process, from /proc/PID/stat; (0, 0) once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0, 0.0
    # After the ")" the list starts at field 3: utime, stime, cutime, cstime are fields 14-17.
    own = (int(fields[11]) + int(fields[12])) / CLK_TCK
    children = (int(fields[13]) + int(fields[14])) / CLK_TCK
    return own, children


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
    loopback networking of our own syncs run there)."""

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


def children_of(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


# --------------------------------------------------------------------------------------------- setup


def database_url() -> str:
    return os.environ.get("BENCH_DATABASE_URL") or DEFAULT_DATABASE_URL


def ensure_database(url: str) -> None:
    """Creates the benchmark's own PostgreSQL database if it does not exist yet."""
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
            print(f"created database {name}")


def start_redis(workdir: Path, logdir: Path) -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    (workdir / "redis").mkdir()
    args = [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"]
    process = Process("redis", [*args, "--dir", str(workdir / "redis")], dict(os.environ), logdir)
    wait_for_port(port, process)
    return f"redis://127.0.0.1:{port}/0"


def configure_environment(redis_url: str, workdir: Path) -> None:
    """The settings the benchmark, the worker and beat share (the children inherit os.environ)."""
    from cryptography.fernet import Fernet

    os.environ.update(
        DATABASE_URL=database_url(),
        DJANGO_SETTINGS_MODULE="pointscene.settings",
        REDIS_URL=redis_url,
        VAR_DIR=str(workdir / "var"),
        MEDIA_ROOT=str(workdir / "media"),
        CONFIG_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        CONFIGS_DEV_KEY="0",
        # The tenant rules as in production: the loopback S3 server is let through by an explicit exception
        # (JOBS_EGRESS_ALLOW, set once the server has its port), so every byte still crosses the egress proxy.
        CONFIGS_ALLOW_LOCAL_REMOTES="0",
        JOBS_REDIS_PREFIX="syncbench:",
        REDBEAT_KEY_PREFIX="syncbench:redbeat:",
        CELERY_QUEUE="syncbench",
        LOG_LEVEL="INFO",
        PYTHONUNBUFFERED="1",
        PYTHONPATH=str(ROOT),
    )


def generate_tree(root: Path, seed: int) -> tuple[int, int]:
    """The benchmark's tree; returns (files, bytes). Same seed, same tree (content, sizes, names, mtimes)."""
    rng = random.Random(seed)
    files = total = 0
    for i in range(SMALL_FILES):
        folder = root / "small" / f"d{i // PER_FOLDER:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        size = rng.randint(SMALL_MIN, SMALL_MAX)
        path = folder / f"f{i:05d}.bin"
        path.write_bytes(rng.randbytes(size))
        os.utime(path, (MTIME, MTIME))
        files, total = files + 1, total + size
    (root / "big").mkdir()
    for i in range(BIG_FILES):
        path = root / "big" / f"b{i:02d}.bin"
        path.write_bytes(rng.randbytes(BIG_SIZE))
        os.utime(path, (MTIME, MTIME))
        files, total = files + 1, total + BIG_SIZE
    return files, total


def tree_size(root: Path) -> tuple[int, int]:
    files = total = 0
    for folder, _, names in os.walk(root):
        for name in names:
            files += 1
            total += os.stat(os.path.join(folder, name)).st_size
    return files, total


@dataclass
class Server:
    process: Process
    root: Path
    port: int
    user: str
    password: str

    def remote(self) -> dict:
        """addJobConfig settings for it (tests/fixtures/rclone.py's)."""
        return {
            "type": "s3",
            "provider": "Rclone",
            "endpoint": f"http://127.0.0.1:{self.port}",
            "access_key_id": self.user,
            "secret_access_key": self.password,
        }


def serve_s3(root: Path, logdir: Path) -> Server:
    from configs import rclone

    (root / "bucket").mkdir(parents=True)
    port = free_port()
    user, password = f"user-{secrets.token_hex(4)}", f"pw-{secrets.token_hex(12)}"
    command = [rclone.binary(), "serve", "s3", str(root), "--addr", f"127.0.0.1:{port}", "--config", os.devnull]
    process = Process("serve-s3", [*command, "--auth-key", f"{user},{password}"], dict(os.environ), logdir)
    wait_for_port(port, process)
    return Server(process=process, root=root, port=port, user=user, password=password)


# --------------------------------------------------------------------------------------------- measuring


@dataclass
class Measurement:
    variant: str
    rep: int
    phase: str  # full | incremental
    position: int  # place of the variant within its repetition (0 first)
    seconds: float  # bare, job-cmd: the rclone process, wall clock; job: finished_at - started_at
    load: float  # 1-minute load average just before
    others_cores: float = 0.0  # cores other processes (not this benchmark's, not the kernel's) used meanwhile
    idle_before: float = 0.0  # cores the machine used in the 2 s before the measurement (wait_until_quiet)
    rclone_cpu: float = 0.0  # the rclone client process, user + system
    server_cpu: float = 0.0  # `rclone serve s3`
    python_cpu: float = 0.0  # job: the worker process that ran it (its own CPU: Celery, Django, log streaming)
    python_switches: int | None = None  # voluntary context switches of that Python process: its wake-ups
    service_cpu: float = 0.0  # job: worker main process and beat
    rclone_elapsed: float | None = None  # rclone's own elapsedTime (final stats), when it logs them
    transfers: int | None = None
    checks: int | None = None
    bytes: int | None = None
    log_lines: int = 0
    log_bytes: int = 0
    verified: bool | None = None  # full: the destination holds the whole tree
    # job only
    run_id: int | None = None
    worker: str = ""
    first_on_worker: bool = False  # the first run this worker process took
    step_seconds: float | None = None
    start_lag: float | None = None  # started_at - slot (schedule) or - created_at (now)
    end_to_end: float | None = None  # finished_at - slot (schedule) or - created_at (now)
    published_to_finish: float | None = None
    breakdown: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)


def settle(args) -> tuple[float, float]:
    """Flushes dirty pages of the previous measurement and lets the machine quieten; returns the load average and
    the cores in use just before."""
    os.sync()
    time.sleep(args.settle)
    cores = wait_until_quiet(args.quiet, args.quiet_wait)
    return os.getloadavg()[0], cores


def strip_log_flags(command: list[str]) -> list[str]:
    out, skip = [], 0
    for arg in command:
        if skip:
            skip -= 1
            continue
        if arg in LOG_FLAGS:
            skip = LOG_FLAGS[arg]
            continue
        out.append(arg)
    return out


def log_flags_of(command: list[str]) -> list[str]:
    """The log flags (with their values) that strip_log_flags takes out."""
    kept = strip_log_flags(command)
    out, i = [], 0
    for arg in command:
        if i < len(kept) and arg == kept[i]:
            i += 1
        else:
            out.append(arg)
    return out


def final_stats(text: str) -> dict:
    """rclone's last stats block in a JSON log."""
    stats: dict = {}
    for line in text.splitlines():
        if '"stats"' in line:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry.get("stats"), dict):
                stats = entry["stats"]
    return stats


class Bench:
    def __init__(self, args, workdir: Path, logdir: Path, tree: Path, expected: tuple[int, int], server: Server):
        self.args = args
        self.workdir = workdir
        self.logdir = logdir
        self.tree = tree
        self.expected = expected
        self.server = server
        self.worker: Process | None = None
        self.beat: Process | None = None
        self.workers_seen: set[str] = set()
        self.others: Others | None = None
        self.sections: dict[str, dict] = {}
        self.resource = None
        self.instance = None

    # ------------------------------------------------------------------ setup

    def prepare_service(self) -> None:
        from configs import services as configs
        from jobs import services
        from pointscene.core.models import Instance

        for old in Instance.objects.filter(name="syncbench"):
            services.delete_instance(old)  # left by an earlier run (the lock in main() rules out a running one)
        self.instance = services.create_instance("syncbench")
        self.resource = services.create_resource(self.instance, "syncbench")
        from django.conf import settings
        from django.core.files.storage import default_storage

        from pointscene.core.storage import resource_area

        exception = f"127.0.0.1:{self.server.port}"
        os.environ["JOBS_EGRESS_ALLOW"] = exception  # the worker and beat, started after this
        settings.JOBS_EGRESS_ALLOW = [exception]
        configs.add_job_config(self.resource, {"bench": self.server.remote()})
        from configs.services import remotes_for_run

        # The job reads the tree from the resource's own area (`resource:tree`); bare rclone reads the same folder.
        area = Path(default_storage.path(resource_area(self.resource.pk))) / "tree"
        area.parent.mkdir(parents=True, exist_ok=True)
        self.tree.rename(area)
        self.tree = area
        self.sections = remotes_for_run(self.resource.pk, {"bench"}) | {"here": {"type": "local"}}

    def start_celery(self) -> None:
        env = dict(os.environ)
        self.worker = Process(
            "worker",
            [CELERY, "-A", "pointscene", "worker", "--loglevel", "INFO", "--concurrency", str(self.args.workers)]
            + ["--without-mingle", "--without-gossip", "-n", "syncbench@%h"],
            env,
            self.logdir,
        )
        self.worker.wait_for("ready.", 120)
        if self.args.trigger == "schedule":
            self.beat = Process("beat", [CELERY, "-A", "pointscene", "beat", "--loglevel", "INFO"], env, self.logdir)
            self.beat.wait_for("beat: Acquired lock", 120)

    def command(self, variant: str, destination: str, runs: Path) -> tuple[list[str], dict]:
        """The argv and environment of a run of `variant` (bare, job-cmd or pipe), its config written in `runs`."""
        from configs import rclone
        from jobs.sync.rclone import SyncSpec, _command, _env, _rclone_options

        spec = SyncSpec(resource_id=self.resource.pk, source=f"here:{self.tree}", destination=destination)
        if self.args.verbose:
            spec.verbose = True  # as the task's args.verbose sets it
        options = {name: _rclone_options(s) for name, s in self.sections.items()}
        password = secrets.token_urlsafe(32)
        config = runs / "rclone.conf"
        rclone.write_encrypted_config(config, options, password)
        command, env = _command(spec, config, runs), _env(runs, password)
        if variant in ("job-cmd", "pipe", "pipe-batched"):
            return command, env
        plain = runs / "plain.conf"
        sections = (f"[{name}]\n" + "".join(f"{k} = {v}\n" for k, v in o.items()) for name, o in options.items())
        plain.write_text("\n".join(sections))
        command = strip_log_flags(command)
        command[command.index("--config") + 1] = str(plain)
        env.pop("RCLONE_CONFIG_PASS")
        return command, env

    # ------------------------------------------------------------------ one variant

    def destination(self, variant: str, rep: int) -> tuple[str, Path]:
        prefix = f"{variant}-{rep}"
        return f"bench:bucket/{prefix}", self.server.root / "bucket" / prefix

    def phases(self) -> list[tuple[str, str]]:
        """(phase, name for files) of one variant's runs: a full one, then --incrementals incremental ones."""
        k = self.args.incrementals
        return [("full", "full")] + [("incremental", f"incremental{i + 1 if k > 1 else ''}") for i in range(k)]

    def run_direct(self, variant: str, rep: int, position: int) -> list[Measurement]:
        destination, on_disk = self.destination(variant, rep)
        found = []
        for phase, name in self.phases():
            runs = Path(tempfile.mkdtemp(prefix=f"{variant}-", dir=self.workdir))
            command, env = self.command(variant, destination, runs)
            out_path = self.logdir / f"{variant}-{rep}-{name}.log"
            load, cores = settle(self.args)
            server_before = cpu_of(self.server.process.pid)[0]
            usage_before = resource.getrusage(resource.RUSAGE_CHILDREN)
            self_before = resource.getrusage(resource.RUSAGE_SELF)
            others = Others()
            started = time.monotonic()
            if variant.startswith("pipe"):
                batch = self.args.batch_seconds if variant == "pipe-batched" else None
                code, stats, lines, size = stream_like_a_job(command, env, self.sections, batch)
            else:
                with out_path.open("wb") as out:
                    code = subprocess.run(command, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out).returncode
                text = out_path.read_text(errors="replace")
                stats, lines, size = final_stats(text), text.count("\n"), len(text.encode())
            seconds = time.monotonic() - started
            others_cores = others.cores()
            usage = resource.getrusage(resource.RUSAGE_CHILDREN)
            own = resource.getrusage(resource.RUSAGE_SELF)
            shutil.rmtree(runs, ignore_errors=True)
            m = Measurement(
                variant=variant,
                rep=rep,
                phase=phase,
                position=position,
                seconds=seconds,
                load=load,
                idle_before=cores,
                rclone_cpu=(usage.ru_utime + usage.ru_stime) - (usage_before.ru_utime + usage_before.ru_stime),
                server_cpu=cpu_of(self.server.process.pid)[0] - server_before,
                rclone_elapsed=stats.get("elapsedTime"),
                transfers=stats.get("transfers"),
                checks=stats.get("checks"),
                bytes=stats.get("bytes"),
                log_lines=lines,
                log_bytes=size,
            )
            if variant.startswith("pipe"):
                m.python_cpu = (own.ru_utime + own.ru_stime) - (self_before.ru_utime + self_before.ru_stime)
                m.python_switches = own.ru_nvcsw - self_before.ru_nvcsw
            m.others_cores = others_cores
            if code != 0:
                m.notes.append(f"rclone exited with {code}")
            if phase == "full":
                m.verified = tree_size(on_disk) == self.expected
            found.append(m)
            print(
                f"  {variant:7} {name:12} {seconds:7.2f} s (load {load:.2f}, others {m.others_cores:.2f})", flush=True
            )
        shutil.rmtree(on_disk, ignore_errors=True)
        return found

    def run_job(self, rep: int, position: int) -> list[Measurement]:
        from jobs import services
        from jobs.models import FrequencyType

        destination, on_disk = self.destination("job", rep)
        task = {
            "name": "sync",
            "type": "rclone.sync",
            "args": {"resourceId": str(self.resource.pk), "remotes": ["resource:tree", destination]},
        }
        if self.args.verbose:
            task["args"]["verbose"] = True
        job = services.create_job(
            instance=self.instance,
            workflow={"tasks": [task]},
            frequency_type=FrequencyType.CRON_BASED,
            cron_expression="0 0 1 1 *",
            active=False,
            name=f"syncbench {rep}",
        )
        found = []
        for phase, name in self.phases():
            found.append(self.one_job_run(job, rep, position, phase, name))
            m = found[-1]
            if phase == "full":
                m.verified = tree_size(on_disk) == self.expected
            print(
                f"  job     {name:12} {m.seconds:7.2f} s (load {m.load:.2f}; start lag {m.start_lag:.2f} s, "
                f"end to end {m.end_to_end:.2f} s)",
                flush=True,
            )
        services.update_job(job, active=False)
        shutil.rmtree(on_disk, ignore_errors=True)
        return found

    def one_job_run(self, job, rep: int, position: int, phase: str, name: str) -> Measurement:
        from jobs import services
        from jobs.models import JobHistory

        load, cores = settle(self.args)
        before = self.cpu_snapshot(start=True)
        if self.args.trigger == "schedule":
            waiting_since = time.monotonic()
            while True:
                slot = next_slot(self.args.slot_margin)
                services.update_job(job, cron_expression=f"{slot.minute} {slot.hour} * * *", active=True)
                # Before beat's look-ahead (5 s): if the machine is busy then, the run moves to the next minute
                # (a run already published for a slot the schedule no longer has is dropped by the worker).
                time.sleep(max(0.0, (slot - datetime.now(UTC)).total_seconds() - 10))
                busy = machine_busy()
                time.sleep(2)
                cores = (machine_busy() - busy) / 2
                if cores < self.args.quiet or time.monotonic() - waiting_since > self.args.quiet_wait:
                    break
                print(f"  (machine busy, {cores:.2f} cores: the job's slot moves a minute on)", flush=True)
            runs = JobHistory.objects.filter(job=job, scheduled_for=slot)
            # The snapshot is taken again just before the slot: waiting for it is idle time, not the run's.
            time.sleep(max(0.0, (slot - datetime.now(UTC)).total_seconds() - 2))
            before = self.cpu_snapshot(start=True)
            load = os.getloadavg()[0]
        else:
            queued = services.run_now(job)
            runs = JobHistory.objects.filter(pk=queued.pk)
        deadline = time.monotonic() + self.args.timeout
        while True:
            run = runs.first()
            if run is not None and run.finished_at is not None:
                break
            if time.monotonic() > deadline:
                sys.exit(f"job {job.pk}: no finished {phase} run within {self.args.timeout} s")
            # Seldom: the times come from the run's row, and polling costs CPU the run competes with.
            time.sleep(1.0)
        after = self.cpu_snapshot()
        since = run.scheduled_for if self.args.trigger == "schedule" else run.created_at
        counters = (run.steps[0].get("counters") or {}) if run.steps else {}
        m = Measurement(
            variant="job",
            rep=rep,
            phase=phase,
            position=position,
            seconds=(run.finished_at - run.started_at).total_seconds(),
            load=load,
            idle_before=cores,
            run_id=run.pk,
            worker=run.worker or "",
            first_on_worker=(run.worker or "") not in self.workers_seen,
            step_seconds=run.steps[0].get("seconds") if run.steps else None,
            start_lag=(run.started_at - since).total_seconds(),
            end_to_end=(run.finished_at - since).total_seconds(),
            published_to_finish=(run.finished_at - run.published_at).total_seconds() if run.published_at else None,
            transfers=counters.get("filesTransferred"),
            checks=counters.get("checks"),
            bytes=counters.get("bytesTransferred"),
        )
        self.workers_seen.add(m.worker)
        if run.status != "SUCCEEDED":
            m.notes.append(f"run {run.pk} {run.status}: {run.error}")
        pid = int(m.worker.rsplit(":", 1)[1]) if ":" in m.worker else None
        if pid in before["children"] and pid in after["children"]:
            m.python_cpu = after["children"][pid][0] - before["children"][pid][0]
            m.rclone_cpu = after["children"][pid][1] - before["children"][pid][1]
            m.python_switches = after["switches"][pid] - before["switches"][pid]
        else:
            m.notes.append("worker process not found for CPU accounting")
        m.server_cpu = after["server"] - before["server"]
        m.service_cpu = after["service"] - before["service"]
        # From just before the slot to the poll that saw the run finished: a little longer than the run.
        m.others_cores = after["others"]
        self.read_run_log(run, m, name)
        return m

    def cpu_snapshot(self, start: bool = False) -> dict:
        if start:
            self.others = Others()
        pids = children_of(self.worker.pid)
        children = {pid: cpu_of(pid) for pid in pids}
        switches = {pid: voluntary_switches(pid) for pid in pids}
        service = cpu_of(self.worker.pid)[0] + (cpu_of(self.beat.pid)[0] if self.beat else 0.0)
        server = cpu_of(self.server.process.pid)[0]
        return {
            "children": children,
            "switches": switches,
            "server": server,
            "service": service,
            "others": self.others.cores() if self.others else 0.0,
        }

    def read_run_log(self, run, m: Measurement, name: str) -> None:
        """Where the run's time went, from the millisecond stamps of its log (and rclone's final stats)."""
        from django.core.files.storage import default_storage

        if not run.log_path:
            m.notes.append("run has no log")
            return
        with default_storage.open(run.log_path, "rb") as f:
            raw = f.read()
        (self.logdir / f"job-{m.rep}-{name}.runlog").write_bytes(raw)
        lines = raw.decode(errors="replace").splitlines()
        m.log_lines, m.log_bytes = len(lines), len(raw)
        stamps: dict[str, datetime] = {}
        last_rclone = None
        for line in lines:
            stamp, _, text = line.partition(" ")
            when = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
            if text.startswith("Run ") and " of job " in text:
                stamps["run"] = when
            elif text.startswith("[sync] rclone.sync started"):
                stamps["step"] = when
            elif text.startswith("[sync] rclone sync "):
                stamps["command"] = when
            elif text.startswith(("[sync] rclone info", "[sync] rclone stats", "[sync] rclone notice")):
                last_rclone = when
                found = re.search(r"rclone stats: .* ([\d.]+) s$", text)
                if found:
                    m.rclone_elapsed = float(found.group(1))
            elif text.startswith("[sync] succeeded in"):
                stamps["succeeded"] = when
            elif text.startswith(f"Run {run.pk} "):
                stamps["end"] = when
        if last_rclone:
            stamps["rclone"] = last_rclone
        order = [
            ("claim and step start", run.started_at, stamps.get("step")),
            ("remotes, config, before rclone", stamps.get("step"), stamps.get("command")),
            ("rclone (to its last log line)", stamps.get("command"), stamps.get("rclone")),
            ("after rclone (exit, token read-back)", stamps.get("rclone"), stamps.get("succeeded")),
            ("log stored, row finished", stamps.get("succeeded"), run.finished_at),
        ]
        m.breakdown = {name: (b - a).total_seconds() for name, a, b in order if a and b}


def stream_like_a_job(
    command: list[str], env: dict, sections: dict, batch_seconds: float | None = None
) -> tuple[int, dict, int, int]:
    """Runs rclone and reads its output the way jobs.sync.rclone._run does (same parsing, redaction and RunLog), here in
    the benchmark process: the pipe and the Python reader without Celery, Django or the database.

    batch_seconds=None reads line by line, as _run does: the reader wakes for nearly every line rclone writes.
    With batch_seconds, it sleeps that long between reads and takes whatever piled up in the pipe (up to 1 MiB):
    a suggested change to _run, measured here. Returns (exit code, final stats, lines, characters of the messages).
    """
    from jobs.running.logs import RunLog
    from jobs.sync.rclone import _format, _redactor, _secret_values

    redact = _redactor(_secret_values(sections))
    run_log, stats, lines, size = RunLog(), {}, 0, 0

    def take(line: str) -> None:
        nonlocal lines, size
        if line:
            message = redact(_format(line, stats))
            run_log.line(message)
            lines, size = lines + 1, size + len(message)

    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    if batch_seconds is None:
        for raw in process.stdout:
            take(raw.decode(errors="replace").rstrip("\n"))
    else:
        fd, rest = process.stdout.fileno(), b""
        while True:
            time.sleep(batch_seconds)
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            *complete, rest = (rest + chunk).split(b"\n")
            for raw in complete:
                take(raw.decode(errors="replace"))
        take(rest.decode(errors="replace"))
    code = process.wait()
    process.stdout.close()
    run_log.close()
    return code, stats, lines, size


def next_slot(margin: float) -> datetime:
    """The next minute boundary at least `margin` seconds away: beat publishes up to 5 s early and ticks every 5 s."""
    earliest = datetime.now(UTC) + timedelta(seconds=margin)
    return earliest.replace(second=0, microsecond=0) + timedelta(minutes=1)


def streaming_cost(log_file: Path, sections: dict, password: str) -> dict:
    """CPU the worker spends per rclone log line (jobs.sync.rclone: parse, format, redact, RunLog.line), replayed here
    from a captured job-cmd log, without rclone or pipes."""
    from jobs.running.logs import RunLog
    from jobs.sync.rclone import _format, _redactor, _secret_values

    lines = [line for line in log_file.read_text(errors="replace").splitlines() if line]
    redact = _redactor(_secret_values(sections))
    best = None
    for _ in range(3):
        run_log, stats = RunLog(), {}
        started = time.process_time()
        for line in lines:
            run_log.line(redact(_format(line, stats)))
        spent = time.process_time() - started
        run_log.close()
        best = spent if best is None else min(best, spent)
    parse = time.process_time()
    for line in lines:
        json.loads(line)
    parse = time.process_time() - parse
    return {"lines": len(lines), "seconds": best, "json_seconds": parse, "per_line_us": best / len(lines) * 1e6}


def first_call_cost() -> dict:
    """What a worker process pays once: `rclone config providers` (configs.rclone.backends, cached per process)."""
    from configs import rclone

    times = []
    for _ in range(3):
        rclone.backends.cache_clear()
        started = time.monotonic()
        rclone.backends()
        times.append(time.monotonic() - started)
    return {"config_providers_seconds": statistics.median(times)}


# --------------------------------------------------------------------------------------------- report


def machine() -> str:
    from django.db import connection

    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem = int(Path("/proc/meminfo").read_text().split()[1]) / 1024 / 1024
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        pg = cursor.fetchone()[0]
    import celery
    import django

    from configs import rclone

    version = subprocess.run([rclone.binary(), "version"], capture_output=True, text=True).stdout.split()[1]
    disk = subprocess.run(["df", "-h", "--output=source,fstype", "/tmp"], capture_output=True, text=True).stdout
    return (
        f"{os.cpu_count()} CPUs ({model}), {mem:.1f} GiB RAM, work folder on {' '.join(disk.split()[2:])}; "
        f"rclone {version}; PostgreSQL {pg.split()[0]}; Python {platform.python_version()}, "
        f"Django {django.get_version()}, Celery {celery.__version__}"
    )


def code_version() -> str:
    """The commit and a digest of the files whose code the job run goes through (the working tree may differ)."""
    import hashlib

    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout
    files = [
        "jobs/sync/rclone.py",
        "jobs/running/runner.py",
        "jobs/running/logs.py",
        "configs/rclone.py",
        "jobs/tasktypes/rclone_sync.py",
    ]
    digest = hashlib.sha256(b"".join((ROOT / f).read_bytes() for f in files)).hexdigest()[:12]
    state = " plus uncommitted changes" if dirty.strip() else ""
    return f"commit {head.stdout.strip()}{state}; sha256 of {', '.join(files)}: {digest}"


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
    trigger = (
        "its cron set to the next minute boundary (at least "
        f"{meta['slot_margin']:.0f} s ahead), fired by a real `celery beat` (jobs.scheduling.beat.JobsScheduler)"
        if meta["trigger"] == "schedule"
        else "queued with `jobs.services.run_now` (runScheduledJob's path)"
    )
    log_flags = meta.get("log_flags", "--use-json-log --log-level INFO --stats 10s")
    lines = [
        SECTION,
        "",
        f"- Date: {meta['date']}; total run {meta['total_seconds']:.0f} s (tree generated in "
        f"{meta['generate_seconds']:.1f} s).",
        f"- Machine: {meta['machine']}. rclone client, `rclone serve s3`, worker, beat, Redis, PostgreSQL and the "
        f"benchmark share it; other work ran on it too (1-minute load average {meta['load_before']:.2f} when "
        f"measuring began, {meta['load_after']:.2f} at the end; each run's is in the table below).",
        f"- Command: `{meta['command']}` (or `make bench-sync`).",
        f"- Tree: {files:,} files, {total / 1e6:,.0f} MB ({total / 2**30:.2f} GiB): {SMALL_FILES:,} files of "
        f"{SMALL_MIN // 1024}-{SMALL_MAX // 1024} KiB (uniform, `random.Random({meta['seed']})`, 100 folders of "
        f"100) and {BIG_FILES} files of {BIG_SIZE >> 20} MiB, random (incompressible) content, fixed mtimes, on "
        "local disk. Destination: `rclone serve s3 ROOT --addr 127.0.0.1:PORT --auth-key USER,PASS` (default "
        "server options) over an empty folder with one bucket; each variant writes into a fresh prefix, removed "
        "after its incremental run.",
        "",
        "What is measured: a full sync into an empty prefix, then an incremental one (the same command again, "
        "nothing changed: listing and comparing only), for each of:",
        "",
        "- **bare rclone**: `rclone sync here:TREE bench:bucket/bare-N --config PLAIN.conf --ask-password=false "
        "--cache-dir DIR`, i.e. the job's own command line (`jobs.sync.rclone._command`) minus its log flags "
        f"(`{log_flags}`), with the same two remotes (`here`: type local; `bench`: "
        "type s3, provider Rclone, endpoint, keys) in a plain, unencrypted config file; default log level (NOTICE), "
        "output to a file. Time: wall clock of the process, start to exit.",
        "- **job's rclone command, run directly** (`job-cmd`): the exact argv and environment a job step builds "
        f"(`jobs.sync.rclone._command` / `_env`: encrypted config and RCLONE_CONFIG_PASS, `{log_flags}`), output to a "
        "file. Isolates what the job's flags cost rclone itself.",
        *(
            [
                "- **job's command, log read like the worker** (`pipe`): the same, its output read through a pipe "
                "line by line by the benchmark process exactly as `jobs.sync.rclone._run` does (`_format`, the "
                "redactor, `RunLog.line`): the log streaming alone, without Celery, Django or the database."
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
        "Per run (seconds; CPU seconds user+system of the rclone client, of `serve s3`, and Python's: for the job the "
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


def write_doc(text: str) -> None:
    """Replaces this benchmark's section of docs/benchmarks.md, or appends it; other sections stay as they are."""
    current = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    lines = current.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() == SECTION), None)
    if start is None:
        new = current.rstrip("\n") + "\n\n" + text.rstrip("\n") + "\n"
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        tail = ["", *lines[end:]] if end < len(lines) else []
        new = "\n".join([*lines[:start], *text.rstrip("\n").splitlines(), *tail]) + "\n"
    DOC.write_text(new)


# --------------------------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=5, help="repetitions of every variant (full + incremental)")
    parser.add_argument("--variants", default=DEFAULT_VARIANTS, help=f"of {','.join(VARIANTS)} (pipe: opt-in)")
    parser.add_argument("--incrementals", type=int, default=1, help="incremental runs after each full one")
    parser.add_argument("--verbose", action="store_true", help="the job's args.verbose: a log line per file")
    parser.add_argument("--batch-seconds", type=float, default=0.1, help="pipe-batched: seconds between reads")
    parser.add_argument("--results", default="results.json", help="file name under var/bench-sync/ for the results")
    parser.add_argument("--trigger", choices=("schedule", "now"), default="schedule", help="how job runs start")
    parser.add_argument("--workers", type=int, default=2, help="worker prefork processes (Procfile's default: 2)")
    parser.add_argument("--seed", type=int, default=20261128, help="seed of the tree's sizes and content")
    parser.add_argument("--settle", type=float, default=3.0, help="pause (s) before each measurement, after sync(2)")
    parser.add_argument("--quiet", type=float, default=0.3, help="start measuring when others use < this many cores")
    parser.add_argument("--quiet-wait", type=float, default=180, help="... waiting at most this many seconds")
    parser.add_argument("--slot-margin", type=float, default=15.0, help="least seconds between setting and slot")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for one job run")
    parser.add_argument("--workdir", help="parent of the work folder (default: the system's temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (tree, server data, logs)")
    parser.add_argument("--no-doc", action="store_true", help="do not write the section in docs/benchmarks.md")
    parser.add_argument("--render-only", metavar="RESULTS_JSON", help="only rewrite the doc section from results")
    args = parser.parse_args()
    if args.render_only:
        data = json.loads(Path(args.render_only).read_text())
        write_doc(render([Measurement(**m) for m in data["results"]], data["meta"]))
        print(f"wrote {DOC.relative_to(ROOT)} from {args.render_only}")
        return
    variants = [v for v in args.variants.split(",") if v]
    if set(variants) - set(VARIANTS) or not variants:
        parser.error(f"variants are of {', '.join(VARIANTS)}")

    parent = Path(args.workdir or tempfile.gettempdir())
    need = (SMALL_FILES * (SMALL_MIN + SMALL_MAX) // 2 + BIG_FILES * BIG_SIZE) * 2 + (2 << 30)
    if shutil.disk_usage(parent).free < need:
        sys.exit(f"{parent} has less than {need / 2**30:.1f} GiB free (tree + one destination + room)")
    workdir = Path(tempfile.mkdtemp(prefix="syncbench-", dir=parent))
    if not args.keep:
        atexit.register(shutil.rmtree, workdir, True)
    atexit.register(stop_all)  # runs before the removal (atexit is last in, first out)
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: sys.exit(128 + signum))
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    # Two of these at once would share the database and the machine's two cores, and measure each other.
    lock = (OUT_DIR / ".lock").open("w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        sys.exit("another bench/sync.py is running on this machine; wait for it to end")
    stem = Path(args.results).stem
    logdir = OUT_DIR / ("logs" if stem == "results" else f"logs-{stem}")
    shutil.rmtree(logdir, ignore_errors=True)
    logdir.mkdir()
    began = time.monotonic()

    ensure_database(database_url())
    redis_url = start_redis(workdir, logdir)
    configure_environment(redis_url, workdir)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    if args.verbose:
        from dataclasses import fields

        from jobs.sync.rclone import SyncSpec

        if "verbose" not in {f.name for f in fields(SyncSpec)}:
            sys.exit("--verbose: this code's rclone.sync has no verbose option")

    print(f"work folder {workdir}; generating the tree", flush=True)
    started = time.monotonic()
    tree = workdir / "tree"
    expected = generate_tree(tree, args.seed)
    generate_seconds = time.monotonic() - started
    print(f"  {expected[0]:,} files, {expected[1]:,} bytes in {generate_seconds:.1f} s", flush=True)
    server = serve_s3(workdir / "s3", logdir)
    bench = Bench(args, workdir, logdir, tree, expected, server)
    bench.prepare_service()
    if "job" in variants:
        bench.start_celery()

    # Untimed: reads the tree into the page cache and warms the server, so the first measurement is not the odd one.
    print("warm-up sync (untimed)", flush=True)
    bench.run_direct("bare", 0, 0)

    load_before = os.getloadavg()[0]
    code_at_start = code_version()
    sample, _ = bench.command("job-cmd", "bench:bucket/sample", Path(tempfile.mkdtemp(dir=workdir)))
    log_flags = " ".join(log_flags_of(sample))
    results: list[Measurement] = []
    for rep in range(1, args.reps + 1):
        shift = (rep - 1) % len(variants)
        order = variants[shift:] + variants[:shift]
        print(f"repetition {rep}: {', '.join(order)}", flush=True)
        for position, variant in enumerate(order):
            if variant == "job":
                results += bench.run_job(rep, position)
            else:
                results += bench.run_direct(variant, rep, position)
    results = [m for m in results if m.rep > 0]

    streaming = None
    captured = logdir / "job-cmd-1-full.log"
    if captured.exists():
        streaming = streaming_cost(captured, bench.sections, server.password)
    meta = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "total_seconds": time.monotonic() - began,
        "generate_seconds": generate_seconds,
        "machine": machine(),
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
        "command": " ".join([".venv/bin/python bench/sync.py", *sys.argv[1:]]),
        "files": expected[0],
        "bytes": expected[1],
        "seed": args.seed,
        "reps": args.reps,
        "incrementals": args.incrementals,
        "batch_seconds": args.batch_seconds,
        "verbose": args.verbose,
        "log_flags": log_flags,
        "settle": args.settle,
        "slot_margin": args.slot_margin,
        "trigger": args.trigger,
        "workers": args.workers,
        "quiet": args.quiet,
        "quiet_wait": args.quiet_wait,
        "code": code_at_start,
        "all_verified": all(m.verified for m in results if m.phase == "full"),
        "streaming": streaming,
        "first_call": first_call_cost(),
        "extra": "",
    }
    if code_version().rsplit(": ", 1)[1] != code_at_start.rsplit(": ", 1)[1]:
        meta["extra"] = (
            f"Those files changed during the run (at the end: {code_version()}). The worker, beat and this process "
            "imported the code when they started (jobs.sync.rclone at their first sync), so the runs measured the "
            "code at the start."
        )
    for m in results:
        if m.phase == "full" and not m.verified:
            m.notes.append("the destination did not hold the whole tree after the full run")
        if m.phase == "incremental" and m.transfers:
            m.notes.append(f"the incremental run transferred {m.transfers} files")
    (OUT_DIR / args.results).write_text(
        json.dumps({"meta": meta, "results": [asdict(m) for m in results]}, indent=1, default=str)
    )
    stop_all()
    text = render(results, meta)
    print("\n" + text)
    if not args.no_doc:
        write_doc(text)
        print(f"\nwrote {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
