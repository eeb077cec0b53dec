"""compose's flower service, run for real: its command through the image's entrypoint, with the environment compose
gives it, against the session's Redis. It answers with and without FLOWER_BASIC_AUTH, and needs no secret."""

import base64
import os
import shlex
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.environment import free_port

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def compose_flower() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]["flower"]


def status(url: str, user: str | None = None) -> int:
    headers = {"Authorization": "Basic " + base64.b64encode(user.encode()).decode()} if user else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.fixture
def flower(tmp_path, request):
    """Start compose's flower command with FLOWER_BASIC_AUTH as given (compose turns unset into "")."""

    def start(basic_auth: str) -> str:
        service = compose_flower()
        port = free_port()
        argv = service["command"] if isinstance(service["command"], list) else shlex.split(service["command"])
        argv = [str(BIN / argv[0]), *argv[1:]]
        argv[argv.index("--broker") + 1] = os.environ["REDIS_URL"]  # the session's Redis for compose's redis
        argv = [arg if arg != "--port=5555" else f"--port={port}" for arg in argv]
        # Only what compose gives the container (and what any container has: PATH, HOME), nothing of this session.
        env = {name: basic_auth for name in service["environment"]}
        env |= {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
        log = open(tmp_path / f"flower-{port}.log", "wb")  # noqa: SIM115 - closed by the finalizer
        process = subprocess.Popen(
            [sys.executable, "-m", "pointscene.entrypoint", *argv], cwd=tmp_path, env=env, stdout=log, stderr=log
        )
        request.addfinalizer(lambda: (process.terminate(), process.wait(20), log.close()))
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert process.poll() is None, (tmp_path / f"flower-{port}.log").read_text()
            try:
                status(url)
                return url
            except OSError:
                time.sleep(0.2)
        raise TimeoutError((tmp_path / f"flower-{port}.log").read_text())

    return start


def test_it_serves_flower_without_a_login_when_none_is_set(flower):
    url = flower("")

    assert status(url) == 200


def test_it_asks_for_the_login_when_one_is_set(flower):
    url = flower("ops:s3cret-pass")

    assert status(url) == 401
    assert status(url, "ops:wrong") == 401
    assert status(url, "ops:s3cret-pass") == 200
