"""A Redis Sentinel set on loopback for the fault suite: a primary, one replica and three sentinels, each a real
`redis-server` process (the sentinels run with --sentinel) in a private folder. The primary can be SIGKILLed; the
sentinels then promote the replica, as in a deployment that loses its Redis machine."""

import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from tests.environment import free_port

MASTER = "pointscene"
# A primary is down for the sentinels after 1 s without an answer; failover then takes a few seconds.
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 5000


class SentinelSet:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="pointscene-sentinel-"))
        self.primary_port = free_port()
        self.replica_port = free_port()
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.processes: dict[str, subprocess.Popen] = {}

    @property
    def url(self) -> str:
        """The service's REDIS_URL for this set (pointscene/core/sentinel.py)."""
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)
        return f"sentinel://{hosts}/0?master={MASTER}"

    def _server(self, name: str, args: list[str]) -> None:
        folder = self.dir / name
        folder.mkdir()
        log = open(folder / "redis.log", "wb")  # noqa: SIM115 - the process owns it
        self.processes[name] = subprocess.Popen(
            [shutil.which("redis-server"), *args, "--dir", str(folder)], stdout=log, stderr=subprocess.STDOUT
        )

    def start(self) -> None:
        common = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self._server("primary", ["--port", str(self.primary_port), *common])
        self._server(
            "replica", ["--port", str(self.replica_port), *common, "--replicaof", "127.0.0.1", str(self.primary_port)]
        )
        self._wait(lambda: self.replica().info("replication").get("master_link_status") == "up", "replication")
        for i, port in enumerate(self.sentinel_ports):
            config = self.dir / f"sentinel-{i}.conf"  # sentinels rewrite their config: one file each
            config.write_text(
                f"port {port}\nbind 127.0.0.1\n"
                f"sentinel monitor {MASTER} 127.0.0.1 {self.primary_port} 2\n"
                f"sentinel down-after-milliseconds {MASTER} {DOWN_AFTER_MS}\n"
                f"sentinel failover-timeout {MASTER} {FAILOVER_TIMEOUT_MS}\n"
                f"sentinel parallel-syncs {MASTER} 1\n"
            )
            self._server(f"sentinel-{i}", [str(config), "--sentinel"])

        def settled() -> bool:
            for port in self.sentinel_ports:
                state = redis.Redis(port=port, decode_responses=True).sentinel_master(MASTER)
                if int(state["num-slaves"]) < 1 or int(state["num-other-sentinels"]) < 2:
                    return False
            return True

        self._wait(settled, "the sentinels to find the replica and each other")

    def primary(self) -> redis.Redis:
        return redis.Redis(port=self.primary_port)

    def replica(self) -> redis.Redis:
        return redis.Redis(port=self.replica_port, decode_responses=True)

    def current_primary_port(self) -> int:
        host, port = redis.Redis(port=self.sentinel_ports[0]).sentinel_get_master_addr_by_name(MASTER)
        return int(port)

    def kill_primary(self) -> None:
        process = self.processes["primary"]
        process.send_signal(signal.SIGKILL)
        process.wait()

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    @staticmethod
    def _wait(predicate, what: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if predicate():
                    return
            except (redis.RedisError, OSError):
                pass
            time.sleep(0.1)
        raise TimeoutError(f"waited {timeout} s for {what}")


def sentinel_env(sentinels: SentinelSet) -> dict[str, str]:
    """Every Redis client of the processes on the Sentinel set: the broker, RedBeat, locks and rate limits."""
    url = sentinels.url
    return {"REDIS_URL": url, "CELERY_BROKER_URL": url, "REDBEAT_REDIS_URL": url, "RATELIMIT_REDIS_URL": url}
