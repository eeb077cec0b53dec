"""A small cluster of real processes for fault injection: celery workers, beats (one active, the others standing by
on RedBeat's lock), the session's private redis-server, and a loopback HTTP server that the jobs call.

Everything is real: processes are started with `celery -A pointscene ...` against the test database, killed with
signals (their whole process group, prefork children included, as when a machine or container dies) and started
again; Redis is flushed or killed and started again on the same port. The assertions read the database afterwards.

The processes run with shorter periods than production, so that each fault plays out in seconds instead of minutes
(ENV_OVERRIDES, one line each on why). The test process itself keeps the defaults: it only writes jobs and reads
rows.
"""

import hashlib
import hmac
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import redis

from jobs.models import JobHistory, RunStatus
from tests.fixtures.processes import CELERY, Process

# The processes' settings (environment variables read by pointscene/settings.py), shortened for the suite:
ENV_OVERRIDES = {
    # Heartbeat / lock renewal every 5 s; a run of a dead worker is stale 15 s after its last heartbeat (prod: 60).
    "JOBS_RUN_LOCK_LEASE": "15",
    # jobs.sweep every 5 s, so a stale run or a lost slot is found within seconds of becoming so (prod: 30).
    "JOBS_SWEEP_SECONDS": "5",
    # A standby beat takes over at most ~20 s (+ its 5 s poll) after the active one dies (prod: 30).
    "REDBEAT_LOCK_TIMEOUT": "20",
    # A slot that starts more than 30 s after its time is late (prod: 60). Still above the lock timeout, as the
    # settings require, so a standby's takeover is late-but-not-missed; and below one minute, so a slot whose
    # message was lost (worker killed, Redis flushed) is re-sent by the sweeper before the job's next minute slot.
    "JOBS_MISFIRE_GRACE_SECONDS": "30",
    # Periodic reconciliation stays off the scenario's clock (prod default): a flushed or restarted Redis is
    # noticed by the vanished marker (checked every 15 s), which is what the scenarios test.
    "JOBS_RECONCILE_SECONDS": "600",
    "LOG_LEVEL": "INFO",
    # Celery's "Task ... received" lines: reserved_runs() reads which worker took which slot from them.
    "LOG_CELERY_TASKS": "INFO",
}
LEASE = int(ENV_OVERRIDES["JOBS_RUN_LOCK_LEASE"])
SWEEP = int(ENV_OVERRIDES["JOBS_SWEEP_SECONDS"])
LOCK_TIMEOUT = int(ENV_OVERRIDES["REDBEAT_LOCK_TIMEOUT"])
GRACE = int(ENV_OVERRIDES["JOBS_MISFIRE_GRACE_SECONDS"])

# RedBeat's and our beat's log texts (redbeat/schedulers.py, jobs/scheduling/beat.py, celery/beat.py).
BEAT_STARTING = "beat: Starting"
BEAT_ACQUIRED = "beat: Acquired lock"
BEAT_TAKEN_BACK = "lock had lapsed; taken back"
BEAT_STANDING_BY = "another beat holds the lock; standing by"
WORKER_READY = "ready."


# ----- time -----


def now() -> datetime:
    return datetime.now(UTC)


def minute_floor(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)


def next_boundary(after: datetime) -> datetime:
    return minute_floor(after) + timedelta(minutes=1)


def sleep_until(at: datetime) -> None:
    left = (at - now()).total_seconds()
    if left > 0:
        time.sleep(left)


def clear_of_boundary(seconds: float = 10) -> None:
    """Waits past the coming minute boundary if it is less than `seconds` away, so that jobs created next all get
    the same first slot (the boundary after their creation)."""
    boundary = next_boundary(now())
    if (boundary - now()).total_seconds() < seconds:
        sleep_until(boundary + timedelta(seconds=1))


def minute_slots(first: datetime, last: datetime) -> list[datetime]:
    """Every minute in [first, last]."""
    out, slot = [], first
    while slot <= last:
        out.append(slot)
        slot += timedelta(minutes=1)
    return out


# ----- processes -----


def process_group(pgid: int) -> set[int]:
    """Pids of every live process in process group `pgid` (a worker's main process and its prefork children)."""
    pids = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses, so split after its last ')'.
        fields = stat[stat.rindex(")") + 2 :].split()
        # fields[0] is the state: a zombie (Z) or dead (X) process is gone, only not yet reaped.
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            pids.add(int(entry))
    return pids


@dataclass
class Member:
    role: str  # "worker" or "beat"
    name: str  # w1, beat-a, ...
    process: Process
    pids: set[int] = field(default_factory=set)

    @property
    def alive(self) -> bool:
        return self.process.popen.poll() is None

    def output(self) -> str:
        return self.process.output()


class Cluster:
    """Workers and beats of one test. Every generation of a member keeps its own log file (w2.log, w2-2.log)."""

    def __init__(self, env: dict, logdir: str, redis_server) -> None:
        self.env = {**env, **ENV_OVERRIDES}
        self.logdir = logdir
        self.redis_server = redis_server
        self.members: dict[str, Member] = {}
        self.retired: list[Member] = []
        self._generation: Counter[str] = Counter()
        self.events: list[tuple[datetime, str]] = []
        self.concurrency: dict[str, int] = {}

    # --- bookkeeping

    def note(self, what: str) -> None:
        """A timeline of the faults, printed with the results."""
        self.events.append((now(), what))
        print(f"{now().isoformat(timespec='seconds')} {what}", flush=True)

    def _spawn(self, role: str, name: str, args: list[str]) -> Member:
        self._generation[name] += 1
        generation = self._generation[name]
        log_name = name if generation == 1 else f"{name}-{generation}"
        member = Member(role, name, Process(log_name, args, self.env, self.logdir))
        self.members[name] = member
        return member

    # --- starting

    def start_worker(self, name: str, concurrency: int = 2, wait: bool = True) -> Member:
        self.concurrency[name] = concurrency
        member = self._spawn(
            "worker",
            name,
            [
                CELERY,
                "-A",
                "pointscene",
                "worker",
                "--loglevel",
                "INFO",
                "--concurrency",
                str(concurrency),
                "-n",
                f"{name}@%h",
                "--without-mingle",
                "--without-gossip",
            ],
        )
        if wait:
            self.wait_ready(member)
        return member

    def start_beat(self, name: str, wait: bool = True) -> Member:
        member = self._spawn("beat", name, [CELERY, "-A", "pointscene", "beat", "--loglevel", "INFO"])
        if wait:
            self.wait_ready(member)
        return member

    def wait_ready(self, member: Member, timeout: float = 90) -> None:
        member.process.wait_for(WORKER_READY if member.role == "worker" else BEAT_STARTING, timeout)
        member.pids = process_group(member.process.popen.pid)

    def start(self, workers: int = 3, beats: int = 2, concurrency: int = 2) -> None:
        """Starts all at once (they take seconds each to import Django) and waits until each is up."""
        started = [self.start_worker(f"w{i + 1}", concurrency, wait=False) for i in range(workers)]
        for i in range(beats):
            started.append(self.start_beat(f"beat-{'abcdefgh'[i]}", wait=False))
            if i == 0:
                # The first beat takes the lock; the others stand by. Not a race the tests need.
                self.wait_ready(started[-1])
                self.wait_for_log(started[-1], BEAT_ACQUIRED, 60)
        for member in started:
            self.wait_ready(member)
        self.note(f"cluster up: {workers} workers x {concurrency}, {beats} beats; active beat {self.active_beat()}")

    # --- faults

    def kill(self, name: str, sig: int = signal.SIGKILL, timeout: float = 60) -> set[int]:
        """Sends `sig` to the member's whole process group and waits for its main process. Returns the pids it had
        (after a SIGKILL they are all gone, so rows naming them are runs of the killed worker)."""
        member = self.members.pop(name)
        pids = process_group(member.process.popen.pid) | member.pids
        member.pids = pids
        self.note(f"{signal.Signals(sig).name} {name} (pids {sorted(pids)})")
        try:
            os.killpg(member.process.popen.pid, sig)
        except ProcessLookupError:
            pass
        try:
            member.process.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(member.process.popen.pid, signal.SIGKILL)
            member.process.popen.wait()
        if sig == signal.SIGKILL:
            # Prefork children die with the group; make sure none lingers before the test relies on it.
            deadline = time.monotonic() + 10
            while process_group(member.process.popen.pid) and time.monotonic() < deadline:
                time.sleep(0.1)
        member.process.stop()  # closes the log file
        self.retired.append(member)
        return pids

    def restart(self, name: str, sig: int = signal.SIGKILL, wait: bool = True) -> Member:
        role = (self.members.get(name) or next(m for m in reversed(self.retired) if m.name == name)).role
        if name in self.members:
            self.kill(name, sig)
        if role == "worker":
            member = self.start_worker(name, self.concurrency.get(name, 2), wait=wait)
        else:
            member = self.start_beat(name, wait=wait)
        self.note(f"restarted {name}")
        return member

    def owner_of(self, pid: int) -> str | None:
        """The name of the live member whose process group has `pid` (a prefork child running a run)."""
        for name, member in self.members.items():
            if pid in process_group(member.process.popen.pid):
                return name
        return None

    def kill_worker_running(self, run: JobHistory, sig: int = signal.SIGKILL) -> tuple[str, set[int]]:
        """Kills the worker whose prefork child is running `run` (its `worker` field is host:pid)."""
        pid = int(run.worker.rsplit(":", 1)[1])
        name = self.owner_of(pid)
        assert name is not None, f"no live worker has pid {pid} (run {run.pk} on {run.worker})"
        return name, self.kill(name, sig)

    def reserved_runs(self, member: Member, slot: datetime) -> set[int]:
        """Job ids whose run for `slot` the worker had received (from its log: celery logs each message it takes,
        ETA messages reserved ahead of their time included)."""
        pattern = re.compile(r"Task jobs\.run_scheduled\[[^]]+\] received.*?\"args\": \"\[(\d+), '([^']+)'\]")
        return {
            int(m.group(1)) for m in pattern.finditer(member.output()) if datetime.fromisoformat(m.group(2)) == slot
        }

    # --- beats

    def beats(self) -> list[Member]:
        return [m for m in self.members.values() if m.role == "beat" and m.alive]

    def workers(self) -> list[Member]:
        return [m for m in self.members.values() if m.role == "worker" and m.alive]

    @staticmethod
    def _holds_lock(member: Member) -> bool:
        """From the log: the last lock event of this beat says it holds the lock."""
        text = member.output()
        last = max(
            ((text.rfind(marker), marker) for marker in (BEAT_ACQUIRED, BEAT_TAKEN_BACK, BEAT_STANDING_BY)),
            key=lambda hit: hit[0],
        )
        return last[0] >= 0 and last[1] != BEAT_STANDING_BY

    def active_beat(self) -> str | None:
        holders = [m.name for m in self.beats() if self._holds_lock(m)]
        return holders[-1] if len(holders) == 1 else None

    def wait_for_active_beat(self, other_than: str | None = None, timeout: float = 90) -> str:
        def active() -> str | None:
            name = self.active_beat()
            return name if name and name != other_than else None

        return self.wait_until(active, timeout, f"a beat other than {other_than} to hold the lock")

    def wait_for_log(self, member: Member, text: str, timeout: float) -> None:
        self.wait_until(lambda: text in member.output(), timeout, f"{member.name} to log {text!r}")

    # --- Redis

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_server.url)

    def flushall(self) -> None:
        self.note(f"FLUSHALL on the private redis-server :{self.redis_server.port}")
        self.redis().flushall()

    def restart_redis(self, down_seconds: float = 3) -> None:
        """SIGKILL the private redis-server, leave it down a moment, start it again on the same port. It keeps
        nothing (no RDB, no AOF): what comes back is an empty Redis, with every client's connection broken."""
        server = self.redis_server
        self.note(f"SIGKILL redis-server :{server.port}")
        if server.process is not None:
            server.process.kill()
            server.process.wait()
            server.process = None
        time.sleep(down_seconds)
        server.start()
        self.note(f"redis-server :{server.port} started again (empty)")

    # --- waiting and reporting

    def wait_until(self, predicate: Callable[[], object], timeout: float, what: str, every: float = 0.5):
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = predicate()
            except (redis.RedisError, OSError):
                value = None  # Redis down or restarting: not yet
            if value:
                return value
            if time.monotonic() >= deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{self.logs()}")
            time.sleep(every)

    def unexpected_exits(self) -> list[str]:
        """Members that exited although no test killed them: the service's frames of what ended them."""
        out = []
        for m in self.members.values():
            if m.alive:
                continue
            lines = m.output().splitlines()
            ours = [line.strip() for line in lines if re.search(r'File "[^"]*/(jobs|pointscene|configs)/', line)]
            out.append(
                f"{m.process.name} exited with {m.process.popen.returncode} ({m.process.log_path}); "
                f"service frames: {ours[-6:]}; last line: {lines[-1] if lines else ''}"
            )
        return out

    def try_wait_until(self, predicate: Callable[[], object], timeout: float, what: str, problems: list[str]):
        """wait_until, recording a timeout in `problems` instead of raising, so that the test goes on to collect
        the database's side of the story before it fails."""
        started = time.monotonic()
        try:
            value = self.wait_until(predicate, timeout, what)
        except AssertionError:
            problems.append(f"timed out after {timeout} s waiting for {what}")
            self.note(f"NOT within {timeout} s: {what}")
            return None
        self.note(f"{what}: after {time.monotonic() - started:.1f} s")
        return value

    def all_members(self) -> list[Member]:
        return self.retired + list(self.members.values())

    def logs(self, tail: int = 3000, pattern: str | None = None) -> str:
        """Each process's log (or its lines matching `pattern`), last `tail` characters, for failure messages."""
        parts = []
        for member in self.all_members():
            text = member.output()
            if pattern is not None:
                text = "\n".join(line for line in text.splitlines() if re.search(pattern, line))
            parts.append(f"----- {member.process.name} ({member.process.log_path}) -----\n{text[-tail:]}")
        return "\n".join(parts)

    def grep(self, pattern: str, roles: Iterable[str] = ("worker", "beat")) -> list[str]:
        return [
            f"{m.process.name}: {line}"
            for m in self.all_members()
            if m.role in roles
            for line in m.output().splitlines()
            if re.search(pattern, line)
        ]

    def stop_all(self) -> None:
        """SIGKILL everything left: nothing of a test's cluster is worth a graceful shutdown."""
        for member in self.members.values():
            try:
                os.killpg(member.process.popen.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for name in list(self.members):
            self.kill(name, signal.SIGKILL)


def make_logdir() -> str:
    return tempfile.mkdtemp(prefix="pointscene-faults-")


def private_redis_server():
    """The session's own redis-server (tests/environment.py), which these tests may flush, kill and restart."""
    environment = sys.modules.get("tests.environment")
    server = getattr(environment, "SERVER", None)
    if server is None:
        pytest.skip("fault tests need the session's private redis-server (TEST_REDIS_URL is set)")
    return server


# ----- the loopback HTTP server the jobs call -----


@dataclass(frozen=True)
class Hit:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: datetime


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # a client that went away: a killed worker
        super().handle_error(request, client_address)


class Endpoints:
    """Paths (any method):
    /ok                     200 at once
    /fail                   500
    /status/<code>          that status
    /sleep/<seconds>        200 after that many seconds
    /hold/<key>             200 once release(key) is called (or after 300 s); arrivals are counted per key
    /flaky/<key>/<n>/<code> <code> for the first n requests to <key>, then 200
    /hook                   200, recorded (the webhook receiver)
    """

    def __init__(self) -> None:
        self.hits: list[Hit] = []
        self._lock = threading.Lock()
        self._holds: dict[str, threading.Event] = {}
        self._flaky: Counter[str] = Counter()
        self.closing = threading.Event()
        self._httpd = _Server(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base + path

    def hold_event(self, key: str) -> threading.Event:
        with self._lock:
            return self._holds.setdefault(key, threading.Event())

    def release(self, key: str) -> None:
        self.hold_event(key).set()

    def hits_for(self, prefix: str) -> list[Hit]:
        with self._lock:
            return [h for h in self.hits if h.path.startswith(prefix)]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.closing.set()
        with self._lock:
            for event in self._holds.values():
                event.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        endpoints = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class names it so
                pass

            def _answer(self, status: int, body: bytes = b"ok") -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "text/plain")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with endpoints._lock:
                    endpoints.hits.append(Hit(self.command, self.path, dict(self.headers.items()), body, now()))
                url = urlsplit(self.path)
                parts = url.path.strip("/").split("/")
                if url.path in ("/ok", "/hook"):
                    self._answer(200)
                elif url.path == "/fail":
                    self._answer(500, b"boom")
                elif parts[0] == "status" and len(parts) == 2 and parts[1].isdigit():
                    self._answer(int(parts[1]), b"status " + parts[1].encode())
                elif parts[0] == "sleep" and len(parts) == 2:
                    endpoints.closing.wait(float(parts[1]))
                    self._answer(200, b"slept")
                elif parts[0] == "hold" and len(parts) == 2:
                    endpoints.hold_event(parts[1]).wait(300)
                    self._answer(200, b"released")
                elif parts[0] == "flaky" and len(parts) == 4:
                    key, failures, code = parts[1], int(parts[2]), int(parts[3])
                    with endpoints._lock:
                        endpoints._flaky[key] += 1
                        seen = endpoints._flaky[key]
                    self._answer(code if seen <= failures else 200, f"attempt {seen}".encode())
                else:
                    self._answer(404, b"not here " + json.dumps(parse_qs(url.query)).encode())

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle

        return Handler


def signature_ok(secret: str, hit: Hit) -> bool:
    """X-Pointscene-Signature == "sha256=" + hex HMAC-SHA256(secret, f"{timestamp}.".encode() + body)."""
    timestamp = hit.headers.get("X-Pointscene-Timestamp", "")
    expected = "sha256=" + hmac.new(secret.encode(), f"{timestamp}.".encode() + hit.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, hit.headers.get("X-Pointscene-Signature", ""))


# ----- jobs through the API -----

# Only the variables a test sets are sent, so that the common case does not depend on the newer arguments.
_VARIABLE_TYPES = {
    "overlap": "OverlapPolicy",
    "catchup": "Int",
    "retries": "Int",
    "backoff": "Int",
    "pause": "Int",
    "hook": "String",
    "hookSecret": "String",
}
_ARGUMENTS = {
    "overlap": "overlapPolicy",
    "catchup": "catchupWindowMinutes",
    "retries": "maxRetries",
    "backoff": "retryBackoffSeconds",
    "pause": "pauseAfterFailures",
    "hook": "webhookUrl",
    "hookSecret": "webhookSecret",
}


def http_workflow(url: str, timeout: int = 300, name: str = "call") -> dict:
    return {"tasks": [{"name": name, "type": "http.request", "args": {"url": url, "timeoutSeconds": timeout}}]}


def create_job(api, token: str, instance, url: str, *, cron: str = "* * * * *", name: str | None = None, **policy):
    """Creates a cron job calling `url` through createScheduledJob; `policy` keys: see _ARGUMENTS."""
    variables = {"instanceId": str(instance.pk), "workflow": http_workflow(url), "cron": cron, "name": name}
    declared = ["$instanceId: ID!", "$workflow: JSON!", "$cron: String", "$name: String"]
    arguments = [
        "instanceId: $instanceId",
        "workflow: $workflow",
        "frequencyType: CRON_BASED",
        "cronExpression: $cron",
        "name: $name",
    ]
    for key, value in policy.items():
        variables[key] = value
        declared.append(f"${key}: {_VARIABLE_TYPES[key]}")
        arguments.append(f"{_ARGUMENTS[key]}: ${key}")
    query = f"mutation({', '.join(declared)}) {{ createScheduledJob({', '.join(arguments)}) {{ id }} }}"
    status, body = api.gql(query, variables, token=token)
    assert "errors" not in body, body
    return int(body["data"]["createScheduledJob"]["id"])


def run_now(api, token: str, job_id: int) -> int:
    status, body = api.gql(
        "mutation($id: ID!) { runScheduledJob(jobId: $id) { id status } }", {"id": str(job_id)}, token=token
    )
    assert "errors" not in body, body
    return int(body["data"]["runScheduledJob"]["id"])


# ----- assertions on the database -----

IN_FLIGHT = (RunStatus.QUEUED, RunStatus.RUNNING)


def slot_rows(job_ids: Iterable[int], first: datetime, last: datetime) -> dict[tuple[int, datetime], list]:
    rows: dict[tuple[int, datetime], list] = {}
    for row in JobHistory.objects.filter(
        job_id__in=list(job_ids), scheduled_for__gte=first, scheduled_for__lte=last
    ).order_by("job_id", "scheduled_for", "pk"):
        rows.setdefault((row.job_id, row.scheduled_for), []).append(row)
    return rows


def assert_one_row_per_slot(
    job_ids: Iterable[int], first: datetime, last: datetime
) -> dict[tuple[int, datetime], JobHistory]:
    """For each job and each minute slot in [first, last]: exactly one JobHistory row with scheduled_for == slot,
    and no row for anything in between. (The unique constraint history_one_run_per_slot makes a second row for a
    (job, slot) impossible; this checks the other half: that every slot got its row, and no off-slot row exists.)"""
    job_ids = sorted(job_ids)
    slots = minute_slots(first, last)
    rows = slot_rows(job_ids, first, last)
    expected = {(j, s) for j in job_ids for s in slots}
    missing = sorted(expected - set(rows))
    extra = sorted(set(rows) - expected)
    doubled = {key: [r.pk for r in found] for key, found in rows.items() if len(found) != 1}
    problems = []
    if missing:
        by_slot = Counter(s.isoformat() for _, s in missing)
        problems.append(f"{len(missing)} (job, slot) pairs have no row; per slot: {dict(sorted(by_slot.items()))}")
    if extra:
        problems.append(f"rows off the minute slots: {[(j, s.isoformat()) for j, s in extra[:20]]}")
    if doubled:
        problems.append(f"slots with more than one row: {doubled}")
    assert not problems, "\n".join(problems)
    return {key: found[0] for key, found in rows.items()}


def assert_nothing_in_flight(job_ids: Iterable[int]) -> None:
    left = list(
        JobHistory.objects.filter(job_id__in=list(job_ids), status__in=IN_FLIGHT).values_list(
            "pk", "job_id", "scheduled_for", "status", "worker", "heartbeat_at"
        )
    )
    assert not left, f"runs left QUEUED/RUNNING: {left}"


def category(row: JobHistory) -> str:
    """A row's status with the first words of its error: SUCCEEDED, FAILED worker lost, MISSED coalesced..."""
    error = (row.error or "").lower()
    for words in ("worker lost", "coalesced", "missed", "skipped"):
        if words in error:
            return f"{row.status} ({words})"
    return row.status if not error else f"{row.status} ({error[:40]})"


def distribution(rows: Iterable[JobHistory]) -> Counter[str]:
    return Counter(category(r) for r in rows)


def distribution_by_slot(rows: dict[tuple[int, datetime], JobHistory]) -> str:
    per_slot: dict[datetime, Counter[str]] = {}
    for (_, slot), row in rows.items():
        per_slot.setdefault(slot, Counter())[category(row)] += 1
    return "\n".join(f"  {slot.isoformat()}: {dict(c)}" for slot, c in sorted(per_slot.items()))


def describe_rows(rows: Iterable[JobHistory]) -> str:
    return "\n".join(
        f"  run {r.pk} job {r.job_id} slot {r.scheduled_for and r.scheduled_for.isoformat()} {r.status} "
        f"started {r.started_at and r.started_at.isoformat()} finished {r.finished_at and r.finished_at.isoformat()} "
        f"worker {r.worker} buffered {r.buffered_at and r.buffered_at.isoformat()} error {r.error!r}"
        for r in rows
    )
