"""`make run`: web, one worker and beat together (honcho and the Procfile), against the Redis at REDIS_URL.

If nothing answers at REDIS_URL, a private redis-server is started on a free loopback port for this session
(and said so), so a fresh machine needs nothing running beforehand but the redis-server binary.

Without SECRET_KEY (or SECRET_KEY_FILE), the processes sign with the checkout's own random key, var/secret-key,
made on first use (pointscene.keys); settings never make one, so deployments must bring theirs.
"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

from pointscene.keys import ensure_dev_secret_key

ROOT = Path(__file__).resolve().parent.parent


def redis_answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except (redis.ConnectionError, redis.TimeoutError, ValueError):
        return False


def start_private_redis() -> tuple[subprocess.Popen, str]:
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("Nothing answers at REDIS_URL and redis-server is not installed: install Redis or set REDIS_URL.")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    workdir = tempfile.mkdtemp(prefix="pointscene-redis-")
    process = subprocess.Popen(
        [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no", "--dir", workdir],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    for _ in range(100):
        if redis_answers(url):
            return process, url
        time.sleep(0.05)
    process.kill()
    sys.exit("Could not start a private redis-server.")


def main() -> None:
    env = dict(os.environ)
    url = env.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    private = None
    if not redis_answers(url):
        private, url = start_private_redis()
        print(f"Nothing answered at REDIS_URL; started a private redis-server at {url} for this session.")
    env["REDIS_URL"] = url
    if not env.get("SECRET_KEY") and not env.get("SECRET_KEY_FILE"):
        var_dir = Path(env.get("VAR_DIR") or ROOT / "var")
        env["SECRET_KEY_FILE"] = str(ensure_dev_secret_key(var_dir))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    port = env.setdefault("PORT", "8000")
    print(f"Scheduled-jobs service: http://127.0.0.1:{port}/graphql  (admin: http://127.0.0.1:{port}/admin/)")
    try:
        code = subprocess.call(
            [sys.executable, "-m", "honcho", "-f", str(ROOT / "Procfile"), "-d", str(ROOT), "start"], env=env
        )
    finally:
        if private is not None:
            private.terminate()
    sys.exit(code)


if __name__ == "__main__":
    main()
