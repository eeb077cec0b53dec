"""`make run`: web, one worker and beat together (honcho and the Procfile), against the Redis at REDIS_URL.

If nothing answers at REDIS_URL, a private redis-server is started on a free loopback port for this session
(and said so), so a fresh machine needs nothing running beforehand but the redis-server binary.

Without SECRET_KEY (or SECRET_KEY_FILE), the processes sign with the checkout's own random key, var/secret-key,
made on first use (pointscene.keys); settings never make one, so deployments must bring theirs.

Web, worker and beat share this session's own Prometheus multiprocess folder (a fresh temporary one unless
PROMETHEUS_MULTIPROC_DIR is set, emptied either way), so /metrics adds up the runs the worker executed.
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
from django.conf import settings  # lazy: read at first use, after main() has set the environment

from pointscene import procmetrics
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


def banner(env: dict[str, str], port: str) -> str:
    """What a person starting the service needs to know: where it answers, where its data is, how to stop it."""
    os.environ.update({k: v for k, v in env.items() if k in ("SECRET_KEY_FILE", "REDIS_URL")})
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pointscene.settings")
    database = settings.DATABASES["default"]
    where = database["NAME"] if "sqlite" in database["ENGINE"] else f"{database['HOST']}/{database['NAME']}"
    storage = settings.STORAGES["default"]
    if "OPTIONS" in storage and storage["OPTIONS"].get("bucket_name"):
        files = f"s3://{storage['OPTIONS']['bucket_name']}/resources/<resource id>/"
    else:
        files = f"{settings.MEDIA_ROOT}/resources/<resource id>/"
    base = f"http://127.0.0.1:{port}"
    return "\n".join(
        [
            "Scheduled-jobs service (web, worker, beat):",
            f"  API       {base}/graphql   (token: {base}/oauth2/token)",
            f"  admin     {base}/admin/    (manage.py createsuperuser first)",
            f"  health    {base}/healthz",
            f"  database  {where}",
            f"  files     {files}   (each resource's storage area, the `resource:` remote)",
            f"  Redis     {env['REDIS_URL']}",
            f"  metrics   {base}/metrics   (bearer METRICS_TOKEN; web, worker and beat together)",
            "  stop      Ctrl-C (or kill this process: the three processes stop with it)",
        ]
    )


def metrics_folder(env: dict[str, str]) -> Path:
    """This session's metrics folder, set in env and emptied (pointscene.procmetrics): the one given, or a new one."""
    if not env.get(procmetrics.VARIABLE):
        env[procmetrics.VARIABLE] = tempfile.mkdtemp(prefix="pointscene-metrics-")
    return procmetrics.prepare(env)


def main() -> None:
    env = dict(os.environ)
    given = bool(env.get(procmetrics.VARIABLE))
    metrics = metrics_folder(env)
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
    print(banner(env, port), flush=True)
    try:
        code = subprocess.call(
            [sys.executable, "-m", "honcho", "-f", str(ROOT / "Procfile"), "-d", str(ROOT), "start"], env=env
        )
    finally:
        if private is not None:
            private.terminate()
        if not given:
            shutil.rmtree(metrics, ignore_errors=True)
    sys.exit(code)


if __name__ == "__main__":
    main()
