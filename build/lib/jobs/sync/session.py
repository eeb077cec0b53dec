"""What every rclone process a worker starts for a tenant runs inside: the resource's remotes loaded and checked
(configs.runtime.RunRemotes), ACC remotes served through a loopback bridge, every connection through an egress proxy
of its own, the remotes in an rclone config file encrypted before it is written, the process in its own group, and
refreshed tokens stored back at the end. A sync step (jobs.sync.rclone) and a connection test
(jobs.sync.remote_check) differ only in the rclone command they run inside it.

Credentials reach rclone as an rclone config file that is encrypted before it is written (configs.rclone), in a
private temporary folder that is removed when the session ends. rclone gets the one-time password in its
environment, and writes any OAuth token it refreshes back into that file, still encrypted; we read those back and
store them (encrypted, with Fernet) before the session ends, whatever the outcome, because some providers' refresh
tokens are single-use.
"""

import contextlib
import logging
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings

from configs import remotes
from configs.runtime import RunRemotes, redactor
from jobs.ops.outbound import tenant_policy
from jobs.steps import StepContext
from jobs.sync.acc.bridge import AccProject, Bridge
from jobs.sync.acc.client import ApsClient
from jobs.sync.acc.tokens import StoredToken
from pointscene import logconfig
from pointscene.core.egress import EgressProxy, proxy_environment, upstream_from_environment

log = logging.getLogger(__name__)

# Environment the worker passes on to rclone: operator tuning (RCLONE_* flags) and CA bundles. Never the worker's
# own secrets (database URL, encryption keys), an rclone config of its own, or a proxy: rclone's every connection
# goes through the session's egress proxy, which itself goes through the worker's HTTPS_PROXY when one is set.
_PASS_ENV = re.compile(r"^(RCLONE_(?!CONFIG|PASSWORD_COMMAND|HTTP_PROXY|BIND|\w*_PROXY$).+|SSL_CERT_\w+)$")
# Backends whose connections are not made by rclone's HTTP client: the session sets their own proxy option.
_DIAL_PROXY_OPTION = "socks_proxy"


@dataclass
class RcloneSession:
    """An rclone config and environment ready for one process; `proxy.refused` counts refused connections."""

    config_path: Path
    workdir: Path
    env: dict[str, str]
    redact: Callable[[str], str]
    proxy: EgressProxy
    bridges: dict[str, Bridge]

    def refusals(self) -> str:
        """What to add to a failure when the proxy refused connections: rclone's own words for one vary by backend,
        this says why and names the switch (the same text whatever was refused)."""
        refused = self.proxy.refused
        return f"; {refused} connection(s) refused: {remotes.DESTINATION_NOT_ALLOWED}" if refused else ""

    def flags(self) -> list[str]:
        """What every rclone command of the session carries: its config, no prompt, its cache, its proxy."""
        return config_flags(self.config_path, self.workdir) + ["--http-proxy", self.proxy.url]


def config_flags(config_path: Path, workdir: Path) -> list[str]:
    return ["--config", str(config_path), "--ask-password=false", "--cache-dir", str(workdir / "cache")]


@contextlib.contextmanager
def rclone_session(ctx: StepContext, remotes_: RunRemotes) -> Iterator[RcloneSession]:
    """The session for the remotes in `remotes_` (RunRemotes.load raises RemoteNotRunnable before any of this)."""
    with contextlib.ExitStack() as stack:
        workdir = Path(tempfile.mkdtemp(prefix="rclone-step-"))  # mode 0700: only the worker's user
        stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        sections, bridges = {}, {}
        for name, settings_ in remotes_.stored.items():
            if settings_["type"] == "acc":
                # rclone reaches ACC through a WebDAV bridge the worker serves on loopback for this session.
                bridges[name] = stack.enter_context(acc_bridge(ctx, remotes_.resource_id, name, settings_))
                sections[name] = bridges[name].rclone_remote()
            else:
                sections[name] = settings_
        # Every connection rclone makes goes through this session's egress proxy, which checks the address it
        # resolved and connects to that address; the bridges and the service's own storage are the only private
        # exceptions.
        policy = tenant_policy(
            allow_private=settings.CONFIGS_ALLOW_LOCAL_REMOTES, upstream=upstream_from_environment()
        ).with_allowed(_service_allowances(remotes_, bridges))
        proxy = stack.enter_context(EgressProxy(policy))
        for name, section in sections.items():
            if remotes.transport(section["type"]) == "dial":
                sections[name] = section | {_DIAL_PROXY_OPTION: proxy.hostport}
        secret_list = remotes_.secret_values() + [b.password for b in bridges.values()]
        # Whatever else logs meanwhile (the bridge, the APS client, an exception) is scrubbed of them too.
        stack.enter_context(logconfig.secret_values(secret_list))
        password = secrets.token_urlsafe(32)
        config_path = workdir / "rclone.conf"
        try:
            remotes_.write_config(config_path, sections, password)
            env = step_environment(workdir, password) | proxy_environment(proxy)
            yield RcloneSession(config_path, workdir, env, redactor(secret_list), proxy, bridges)
        finally:
            remotes_.store_refreshed_tokens(config_path, password, ctx.log)


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




def run_rclone(ctx: StepContext, command: list[str], env: dict[str, str], on_line: Callable[[str], None]) -> int:
    """Runs rclone in its own process group (the run's watch kills the group on cancel or time limit), each line of
    its output to `on_line`."""
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
                on_line(line)
        return process.wait()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        end_group(process.pid)
        process.stdout.close()
        ctx.processes.remove(process)


def end_group(pgid: int, timeout: float = 5.0) -> None:
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


