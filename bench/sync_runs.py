"""bench/sync.py's measuring: one variant's full and incremental runs (bare rclone, the job's command, a scheduled
job run by a real worker), each with its CPU accounting; the results as Measurement rows.

Bench is one class of about 330 lines because its methods share one state (worker, beat, server, the resource
and the CPU snapshots) and follow one run from start to its log; splitting it would only pass that state around.
"""

import os
import re
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.harness import (
    CELERY,
    Others,
    Process,
    children_of,
    cpu_of,
    machine_busy,
    voluntary_switches,
    wait_until_quiet,
)
from bench.sync_fixtures import Server, final_stats, stream_like_a_job, strip_log_flags, tree_size

VARIANTS = ("bare", "job-cmd", "job-proxy", "pipe", "pipe-batched", "job")
DEFAULT_VARIANTS = "bare,job-cmd,job-proxy,job"
LABELS = {
    "bare": "bare rclone",
    "job-cmd": "job's rclone command, run directly",
    "job-proxy": "job's command through the egress proxy, run directly",
    "pipe": "job's command, log read like the worker",
    "pipe-batched": "job's command, log read in batches",
    "job": "scheduled job run (worker)",
}
TARGET = 0.05
QUIET_CORES = 0.25  # a run is "quiet" when the rest of the machine used less than this meanwhile


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


def next_slot(margin: float) -> datetime:
    """The next minute boundary at least `margin` seconds away: beat publishes up to 5 s early and ticks every 5 s."""
    earliest = datetime.now(UTC) + timedelta(seconds=margin)
    return earliest.replace(second=0, microsecond=0) + timedelta(minutes=1)


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
        from configs.runtime import rclone_options
        from jobs.sync.rclone import SyncSpec, step_command
        from jobs.sync.session import config_flags, step_environment

        spec = SyncSpec(resource_id=self.resource.pk, source=f"here:{self.tree}", destination=destination)
        if self.args.verbose:
            spec.verbose = True  # as the task's args.verbose sets it
        options = {name: rclone_options(s) for name, s in self.sections.items()}
        password = secrets.token_urlsafe(32)
        config = runs / "rclone.conf"
        rclone.write_encrypted_config(config, options, password)
        command, env = step_command(spec, config_flags(config, runs)), step_environment(runs, password)
        if variant in ("job-cmd", "job-proxy", "pipe", "pipe-batched"):
            return command, env
        plain = runs / "plain.conf"
        sections = (f"[{name}]\n" + "".join(f"{k} = {v}\n" for k, v in o.items()) for name, o in options.items())
        plain.write_text("\n".join(sections))
        command = strip_log_flags(command)
        command[command.index("--config") + 1] = str(plain)
        env.pop("RCLONE_CONFIG_PASS")
        return command, env

    def run_proxied(self, command: list[str], env: dict, out_path: Path) -> int:
        """The job's command through an egress proxy as a step builds it (jobs.sync.session), in this process: the
        worker's policy, whose only private exception is the bench server (JOBS_EGRESS_ALLOW, prepare_service)."""
        from jobs.ops.outbound import tenant_policy
        from pointscene.core.egress import EgressProxy, proxy_environment

        with EgressProxy(tenant_policy(allow_private=False)) as proxy, out_path.open("wb") as out:
            proxied = command + ["--http-proxy", proxy.url]
            code = subprocess.run(
                proxied, env=env | proxy_environment(proxy), stdin=subprocess.DEVNULL, stdout=out, stderr=out
            ).returncode
            if proxy.refused:
                raise RuntimeError(f"the egress proxy refused {proxy.refused} of the bench's connections")
        return code

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
            server_before = self.server.cpu()
            usage_before = resource.getrusage(resource.RUSAGE_CHILDREN)
            self_before = resource.getrusage(resource.RUSAGE_SELF)
            others = Others()
            started = time.monotonic()
            if variant.startswith("pipe"):
                batch = self.args.batch_seconds if variant == "pipe-batched" else None
                code, stats, lines, size = stream_like_a_job(command, env, self.sections, batch)
            elif variant == "job-proxy":
                code = self.run_proxied(command, env, out_path)
                text = out_path.read_text(errors="replace")
                stats, lines, size = final_stats(text), text.count("\n"), len(text.encode())
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
                server_cpu=self.server.cpu() - server_before,
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
        server = self.server.cpu()
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
