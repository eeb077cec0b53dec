"""The test session's own environment, set up before Django reads its settings: a private redis-server, a
private media folder, test-only key prefixes.

Loaded with `-p tests.environment` (pyproject addopts), so it runs before pytest-django imports the settings.
Tests may flush, restart or kill this Redis: it is theirs. Set TEST_REDIS_URL to use another one.
"""

import atexit
import os
import shutil
import socket
import subprocess
import tempfile
import time

import redis


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="pointscene-test-redis-")
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self.process = subprocess.Popen(
            [
                binary,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.dir,
                "--logfile",
                os.path.join(self.dir, "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url)
        for _ in range(200):
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.025)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()


SERVER: RedisServer | None = None

if os.environ.get("TEST_REDIS_URL"):
    os.environ["REDIS_URL"] = os.environ["TEST_REDIS_URL"]
else:
    SERVER = RedisServer()
    SERVER.start()
    atexit.register(SERVER.stop)
    atexit.register(shutil.rmtree, SERVER.dir, True)
    os.environ["REDIS_URL"] = SERVER.url
MEDIA_DIR = tempfile.mkdtemp(prefix="pointscene-test-media-")
atexit.register(shutil.rmtree, MEDIA_DIR, True)
os.environ["MEDIA_ROOT"] = MEDIA_DIR
# Metrics of every process of the session (this one, and real workers and beats started by e2e tests) add up
# in one folder, as in a deployment; prometheus_client reads the variable when it is first imported.
METRICS_DIR = tempfile.mkdtemp(prefix="pointscene-test-metrics-")
atexit.register(shutil.rmtree, METRICS_DIR, True)
os.environ["PROMETHEUS_MULTIPROC_DIR"] = METRICS_DIR
# Tests never share key names with a development service pointed at the same Redis.
os.environ.setdefault("JOBS_REDIS_PREFIX", "pointscene-test:")
os.environ.setdefault("REDBEAT_KEY_PREFIX", "pointscene-test:redbeat:")
os.environ.setdefault("CELERY_QUEUE", "pointscene-test")
# Settings have no default SECRET_KEY: each session (and the workers it starts) signs with its own random one.
os.environ.setdefault("SECRET_KEY", os.urandom(48).hex())
# The whole session talks from 127.0.0.1 with a few clients: production rate limits would throttle it. Tests of
# the limits themselves lower them with the settings fixture.
os.environ.setdefault("RATELIMIT_TOKEN_PER_CLIENT", "1000000/m")
os.environ.setdefault("RATELIMIT_TOKEN_PER_ADDRESS", "1000000/m")
os.environ.setdefault("RATELIMIT_GRAPHQL_PER_PRINCIPAL", "1000000/m")
os.environ.setdefault("RATELIMIT_GRAPHQL_PER_ADDRESS", "1000000/m")
os.environ.setdefault("RATELIMIT_ADMIN_LOGIN_PER_USERNAME", "1000000/m")
os.environ.setdefault("RATELIMIT_ADMIN_LOGIN_PER_ADDRESS", "1000000/m")
# Rate-limit counters live in their own database of the test Redis, so tests that count keys see only the schedule's.
os.environ.setdefault("RATELIMIT_REDIS_URL", os.environ["REDIS_URL"].rsplit("/", 1)[0] + "/1")
