"""One rclone sync step on a worker: the resource's remotes in (configs.runtime.RunRemotes: loaded, checked,
secrets known), ACC remotes served through a loopback bridge, every connection through the step's egress proxy,
rclone run, its log and stats out, refreshed tokens stored back.

Credentials reach rclone as an rclone config file that is encrypted before it is written (configs.rclone),
in a private temporary folder that is removed when the step ends. rclone gets the one-time password in its
environment, and writes any OAuth token it refreshes back into that file, still encrypted; we read those
back and store them (encrypted, with Fernet) before the step returns, whatever its outcome, because some
providers' refresh tokens are single-use.
"""

import contextlib
import json
import logging
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings

from configs import rclone, remotes
from configs.runtime import RemoteNotRunnable, RunRemotes, redactor
from jobs.ops.outbound import tenant_policy
from jobs.steps import RunCancelled, StepContext, StepFailed, StepResult
from jobs.sync.acc.bridge import AccProject, Bridge
from jobs.sync.acc.client import ApsClient
from jobs.sync.acc.tokens import StoredToken
from pointscene import logconfig
from pointscene.core.egress import EgressProxy, proxy_environment, upstream_from_environment

log = logging.getLogger(__name__)

# rclone's documented exit codes: https://rclone.org/docs/#exit-code
EXIT_CODES = {
    1: ("syntax or usage error", False),
    2: ("error not otherwise categorised", True),
    3: ("directory not found", False),
    4: ("file not found", False),
    5: ("temporary error (more retries might fix it)", True),
    6: ("less serious errors (files that could not be transferred)", False),
    7: ("fatal error (retries will not fix it: account suspended, quota, ...)", False),
    8: ("transfer limit exceeded", False),
    9: ("operation successful but no files transferred", False),
    10: ("duration limit exceeded", True),
}
# Environment the worker passes on to rclone: operator tuning (RCLONE_* flags) and CA bundles. Never the worker's
# own secrets (database URL, encryption keys), an rclone config of its own, or a proxy: rclone's every connection
# goes through the step's egress proxy, which itself goes through the worker's HTTPS_PROXY when one is set.
_PASS_ENV = re.compile(r"^(RCLONE_(?!CONFIG|PASSWORD_COMMAND|HTTP_PROXY|BIND|\w*_PROXY$).+|SSL_CERT_\w+)$")
# Backends whose connections are not made by rclone's HTTP client: the step sets their own proxy option.
_DIAL_PROXY_OPTION = "socks_proxy"
_STATS_KEYS = {
    "transfers": "filesTransferred",
    "bytes": "bytesTransferred",
    "checks": "checks",
    "deletes": "deletes",
    "deletedDirs": "deletedDirs",
    "renames": "renames",
    "errors": "errors",
    "serverSideCopies": "serverSideCopies",
}


@dataclass
class SyncSpec:
    resource_id: int
    source: str
    destination: str
    mode: str = "sync"
    include: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    dry_run: bool = False
    checksum: bool = False
    transfers: int | None = None
    checkers: int | None = None
    verbose: bool = False
    # Where bisync keeps its listings between runs (None: not bisync).
    state_dir: Path | None = None


def run_sync(ctx: StepContext, spec: SyncSpec) -> StepResult:
    names = {location.split(":", 1)[0] for location in (spec.source, spec.destination)}
    try:
        remotes_ = RunRemotes.load(spec.resource_id, names)
    except RemoteNotRunnable as exc:
        raise StepFailed(str(exc)) from None
    stats: dict = {}
    with contextlib.ExitStack() as stack:
        workdir = Path(tempfile.mkdtemp(prefix="rclone-step-"))  # mode 0700: only the worker's user
        stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        sections, bridges = {}, {}
        for name, settings_ in remotes_.stored.items():
            if settings_["type"] == "acc":
                # rclone reaches ACC through a WebDAV bridge the worker serves on loopback for this step.
                bridges[name] = stack.enter_context(acc_bridge(ctx, spec.resource_id, name, settings_))
                sections[name] = bridges[name].rclone_remote()
            else:
                sections[name] = settings_
        # Every connection rclone makes goes through this step's egress proxy, which checks the address it resolved
        # and connects to that address; the bridges and the service's own storage are the only private exceptions.
        policy = tenant_policy(
            allow_private=settings.CONFIGS_ALLOW_LOCAL_REMOTES, upstream=upstream_from_environment()
        ).with_allowed(_service_allowances(remotes_, bridges))
        proxy = stack.enter_context(EgressProxy(policy))
        for name, section in sections.items():
            if remotes.transport(section["type"]) == "dial":
                sections[name] = section | {_DIAL_PROXY_OPTION: proxy.hostport}
        secret_list = remotes_.secret_values() + [b.password for b in bridges.values()]
        redact = redactor(secret_list)
        # Whatever else logs during the step (the bridge, the APS client, an exception) is scrubbed of them too.
        stack.enter_context(logconfig.secret_values(secret_list))
        password = secrets.token_urlsafe(32)
        config_path = workdir / "rclone.conf"
        try:
            remotes_.write_config(config_path, sections, password)
            command = step_command(spec, config_path, workdir) + ["--http-proxy", proxy.url]
            ctx.log(f"rclone {spec.mode} {spec.source} -> {spec.destination}" + (" (dry run)" if spec.dry_run else ""))
            if "--resync" in command:
                ctx.log("bisync has no listings from an earlier run on this worker: --resync merges both sides")
            env = step_environment(workdir, password) | proxy_environment(proxy)
            exit_code = _run(ctx, command, env, redact, stats)
        finally:
            remotes_.store_refreshed_tokens(config_path, password, ctx.log)
        acc_errors = [error for bridge in bridges.values() for error in bridge.project.errors]

    counters = {ours: int(stats.get(theirs, 0)) for theirs, ours in _STATS_KEYS.items()}
    counters["exitCode"] = exit_code
    if ctx.cancelled.is_set():
        raise RunCancelled()
    if exit_code != 0:
        meaning, retryable = EXIT_CODES.get(exit_code, ("unknown exit code", False))
        if acc_errors:
            # What ACC said is clearer than rclone's view of it (a 500 from the bridge).
            last_error = redact(f"ACC: {acc_errors[-1]}")
            retryable = all(error.retryable for error in acc_errors)
        else:
            last_error = redact(stats.get("lastError") or "")
        message = f"rclone exited with code {exit_code}: {meaning}" + (
            f"; last error: {last_error}" if last_error else ""
        )
        if proxy.refused:
            # rclone's own words for a refused connection vary by backend; this says why and names the switch.
            message += f"; {proxy.refused} connection(s) refused: {remotes.DESTINATION_NOT_ALLOWED}"
        raise StepFailed(message, retryable=retryable, counters=counters)
    if spec.state_dir is not None:
        (spec.state_dir / "initialised").touch()
    return StepResult(outputs={"counters": counters}, counters=counters)


@contextlib.contextmanager
def acc_bridge(ctx: StepContext, resource_id: int, name: str, settings_: dict) -> Iterator[Bridge]:
    tokens = StoredToken(
        resource_id,
        name,
        settings_["token"],
        client_id=settings_.get("client_id", ""),
        client_secret=settings_.get("client_secret", ""),
        on_refresh=lambda stored: ctx.log(
            f"remote {name!r}: ACC token refreshed; the new one is "
            + ("stored (encrypted)" if stored else "not stored: the remote was changed meanwhile")
        ),
    )
    client = ApsClient(tokens, cancelled=ctx.cancelled)
    with Bridge(AccProject(client, settings_["hub_id"], settings_["project_id"])) as bridge:
        yield bridge
    if client.retries:
        ctx.log(f"remote {name!r}: {client.retries} APS requests were retried (429, 5xx or connection errors)")


def _service_allowances(remotes_: RunRemotes, bridges: dict[str, Bridge]) -> list[tuple[str, int]]:
    """Destinations the service itself vouches for, which may be private: this step's ACC bridges, the APS host the
    bridges redirect downloads to (APS_BASE_URL, the operator's), and the service's own storage (the `resource:`
    remote on S3, e.g. a MinIO beside it)."""
    urls = [settings.APS_BASE_URL] if bridges else []
    urls += remotes_.service_endpoints()
    found = [("127.0.0.1", bridge.port) for bridge in bridges.values()]
    for url in urls:
        parts = urlsplit(url if "://" in url else f"https://{url}")
        found.append((parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)))
    return found


def step_command(spec: SyncSpec, config_path: Path, workdir: Path) -> list[str]:
    """rclone's argv for the step (without the proxy flag, which run_sync adds)."""
    command = [rclone.binary(), spec.mode, spec.source, spec.destination]
    command += ["--config", str(config_path), "--ask-password=false", "--cache-dir", str(workdir / "cache")]
    # JSON log lines: warnings, errors, and the stats every 10 s and once at the end, as a bare rclone prints
    # them; `verbose` adds a line per file acted on, which costs rclone itself several percent on big trees.
    command += ["--use-json-log", "--log-level", "INFO" if spec.verbose else "NOTICE"]
    command += ["--stats", "10s", "--stats-log-level", "NOTICE"]
    # Excludes first: rclone applies the first matching rule, so an exclude wins over an include.
    for pattern in spec.exclude:
        command += ["--filter", f"- {pattern}"]
    for pattern in spec.include:
        command += ["--filter", f"+ {pattern}"]
    if spec.include:
        command += ["--filter", "- **"]
    if spec.dry_run:
        command.append("--dry-run")
    if spec.checksum:
        command.append("--checksum")
    if spec.transfers:
        command += ["--transfers", str(spec.transfers)]
    if spec.checkers:
        command += ["--checkers", str(spec.checkers)]
    if spec.state_dir is not None:
        spec.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        command += ["--workdir", str(spec.state_dir), "--resilient", "--recover"]
        if not (spec.state_dir / "initialised").exists():
            # bisync's first run (or the first on this worker) builds its listings from both sides.
            command.append("--resync")
    return command


def step_environment(workdir: Path, password: str) -> dict[str, str]:
    """rclone's environment: the operator's RCLONE_* tuning and nothing else of the worker's."""
    env = {k: v for k, v in os.environ.items() if _PASS_ENV.match(k)}
    env.update(
        PATH=os.environ.get("PATH", "/usr/bin:/bin"),
        HOME=str(workdir),
        TMPDIR=str(workdir),
        XDG_CACHE_HOME=str(workdir / "cache"),
        RCLONE_CONFIG_PASS=password,
    )
    return env


def _run(ctx: StepContext, command: list[str], env: dict[str, str], redact, stats: dict) -> int:
    """Runs rclone in its own process group (the run's watch kills the group on cancel or time limit),
    streaming its JSON log into the run's log."""
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    ctx.processes.append(process)
    try:
        for raw in process.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            if line:
                ctx.log(redact(format_line(line, stats)))
        return process.wait()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        _end_group(process.pid)
        process.stdout.close()
        ctx.processes.remove(process)


def _end_group(pgid: int, timeout: float = 5.0) -> None:
    """Kills whatever is left of rclone's process group and waits until it is empty, so that a run reported
    CANCELLED (or ended any other way) has nothing of its step still running. rclone itself is reaped by then;
    anything it started is not our child, so this waits for init to reap it."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            return
        except PermissionError:
            return  # the id was reused by someone else's group: nothing of ours is left in it
        if time.monotonic() > deadline:
            log.warning("rclone's process group %s did not empty in %.0f s", pgid, timeout)
            return
        time.sleep(0.02)


def format_line(line: str, stats: dict) -> str:
    """One rclone JSON log line as a readable line of the run's log; stats are also kept for the counters."""
    try:
        entry = json.loads(line)
    except ValueError:
        return f"rclone: {line}"
    if not isinstance(entry, dict):
        return f"rclone: {line}"
    if isinstance(entry.get("stats"), dict):
        stats.clear()
        stats.update(entry["stats"])
        s = entry["stats"]
        return (
            f"rclone stats: {s.get('transfers', 0)} files, {s.get('bytes', 0)} bytes transferred, "
            f"{s.get('checks', 0)} checks, {s.get('deletes', 0)} deletes, {s.get('errors', 0)} errors, "
            f"{s.get('elapsedTime', 0):.1f} s"
        )
    level = entry.get("level", "info")
    where = f"{entry['object']}: " if entry.get("object") else ""
    return f"rclone {level}: {where}{entry.get('msg', '').strip()}"
