"""Secrets stay secret end to end: remotes stored over the real GraphQL API, synced by the real worker process (real
rclone against `rclone serve s3/sftp` and the fake Drive), and then none of the secret values is anywhere it could
be read back: a pg_dump of the database, the files under MEDIA_ROOT, the worker's and beat's output, every key and
value in Redis and every command sent to it while the runs went, every API response, the worker's temp folder.

Each place is also checked to hold what it should (the encrypted rows, the run logs, the queued messages), so an
empty or wrongly aimed scan cannot pass for a clean one. The scanner itself is proven to find planted secrets in
the tests at the end, which need no database.
"""

import base64
import json
import logging
import os
import secrets
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
import requests
from django.conf import settings as django_settings
from django.db import connection
from django_celery_results.models import TaskResult

from configs.crypto import decrypt_json
from configs.models import RemoteConfig
from jobs.models import JobHistory, RunStatus
from tests.fakes.drive import FakeDrive
from tests.fakes.tls_proxy import InterceptingProxy
from tests.fixtures.leaks import KeptRecord, LogKeeper, Scanner, hint, needles
from tests.fixtures.rclone import write_tree

FILES = {"a.txt": b"alpha\n", "docs/b.txt": b"bravo" * 100}


# ----- what the scenario needs around it -----


@dataclass
class Stack:
    drive: FakeDrive
    processes: dict
    worker_tmp: Path


@pytest.fixture(scope="module")
def stack(request, tmp_path_factory, django_db_setup, django_db_blocker):
    """The fake Drive behind its intercepting proxy, and the module's real worker and beat, started with the
    proxy, rclone's CA, loopback remotes and a private temp folder in their environment.

    processes.process_env() copies os.environ when the module's processes start, so they are started here, inside
    the patched environment, rather than declared as an argument."""
    drive = FakeDrive(page_size_cap=2)
    worker_tmp = tmp_path_factory.mktemp("worker-tmp")
    with (
        InterceptingProxy(drive, workdir=tmp_path_factory.mktemp("proxy")) as proxy,
        pytest.MonkeyPatch.context() as env,
    ):
        env.setenv("HTTPS_PROXY", proxy.url)
        env.setenv("RCLONE_CA_CERT", str(proxy.ca_path))
        env.setenv("RCLONE_DRIVE_PACER_MIN_SLEEP", "1ms")
        env.setenv("CONFIGS_ALLOW_LOCAL_REMOTES", "1")
        # The worker's tempfile.gettempdir(): rclone's step folders appear (and must disappear) here alone.
        env.setenv("TMPDIR", str(worker_tmp))
        # Celery's per-task lines too (off by default): they print each task's arguments, which the sweep reads.
        env.setenv("LOG_CELERY_TASKS", "INFO")
        processes = request.getfixturevalue("processes")
        yield Stack(drive, processes, worker_tmp)
    assert drive.unhandled == []
    assert proxy.errors == []


class Api:
    """GraphQL over HTTP, keeping every response body for the scan."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.token = ""
        self.bodies: list[tuple[str, bytes]] = []

    def sign_in(self, client) -> None:
        data = {"grant_type": "client_credentials", "client_id": client.client_id, "scope": "instance-*"}
        response = requests.post(
            f"{self.base}/oauth2/token", data | {"client_secret": client.client_secret}, timeout=10
        )
        assert response.status_code == 200, response.text
        # The token response holds the API token itself: that one is expected there, so it is not scanned.
        self.token = response.json()["access_token"]

    def gql(self, query: str, variables: dict | None = None) -> dict:
        response = requests.post(
            f"{self.base}/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=30,
        )
        self.bodies.append((f"response to {query.split('(')[0].split('{')[0].strip() or query[:40]}", response.content))
        return response.json()

    def download(self, url: str) -> bytes:
        response = requests.get(url, timeout=30)
        assert response.status_code == 200, url
        self.bodies.append((f"download of {url.split('?')[0]}", response.content))
        return response.content


class RedisMonitor(threading.Thread):
    """Every command any client sends to the session's Redis while it runs (MONITOR), kept as received."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True, name="redis-monitor")
        self.url = url
        self.connection = redis.Redis.from_url(url).connection_pool.get_connection()
        self.connection.send_command("MONITOR")
        assert self.connection.read_response() in (b"OK", "OK")
        self.lines: list[bytes] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        try:
            while not self._stop_event.is_set():
                if self.connection.can_read(timeout=0.1):
                    self.lines.append(self.connection.read_response())
        except redis.ConnectionError:
            pass  # the session's Redis went away (the session is ending); stop() then finds the marker missing

    def stop(self) -> None:
        if self._stop_event.is_set():
            return
        # A marker through another connection: once it is seen, everything sent before it has been seen too.
        marker = f"end-of-monitor-{secrets.token_hex(4)}"
        redis.Redis.from_url(self.url).echo(marker)
        deadline = time.monotonic() + 10
        while not any(marker.encode() in line for line in list(self.lines)) and time.monotonic() < deadline:
            time.sleep(0.05)
        self._stop_event.set()
        self.join(5)
        self.connection.disconnect()


def redis_contents(url: str) -> tuple[int, bytes]:
    """Every key and value in every database of the Redis at `url`, read by type; and how many keys there were."""
    keys, parts = 0, []
    for name in redis.Redis.from_url(url).info("keyspace"):
        client = redis.Redis.from_url(url, db=int(name.removeprefix("db")))
        for key in client.scan_iter(count=1000):
            keys += 1
            kind = client.type(key).decode()
            if kind == "string":
                values = [client.get(key)]
            elif kind == "hash":
                values = [x for pair in client.hgetall(key).items() for x in pair]
            elif kind == "list":
                values = client.lrange(key, 0, -1)
            elif kind == "set":
                values = list(client.smembers(key))
            elif kind == "zset":
                values = [member for member, _score in client.zrange(key, 0, -1, withscores=True)]
            elif kind == "stream":
                values = [json.dumps(entry, default=repr).encode() for entry in client.xrange(key)]
            else:
                values = [client.dump(key)]
            parts += [key, *[v for v in values if v is not None]]
    return keys, b"\n".join(parts)


def pg_dump() -> bytes:
    db = connection.settings_dict
    command = ["pg_dump", "-h", db["HOST"] or "127.0.0.1", "-p", str(db["PORT"] or 5432), "-U", db["USER"]]
    env = dict(os.environ, PGPASSWORD=db["PASSWORD"] or "")
    return subprocess.run([*command, db["NAME"]], capture_output=True, check=True, timeout=120, env=env).stdout


@pytest.fixture
def redis_monitor():
    monitor = RedisMonitor(django_settings.REDIS_URL)
    monitor.start()
    yield monitor
    monitor.stop()


class TempWatch(threading.Thread):
    """Notes each rclone step folder that appears in the worker's temp folder, with its permissions."""

    def __init__(self, folder: Path) -> None:
        super().__init__(daemon=True, name="temp-watch")
        self.folder = folder
        self.seen: dict[str, int] = {}
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                for entry in os.scandir(self.folder):
                    if entry.name.startswith("rclone-step-") and entry.name not in self.seen:
                        self.seen[entry.name] = entry.stat().st_mode & 0o777
            except OSError:
                pass  # a folder removed between listing and stat
            time.sleep(0.002)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(5)


@dataclass
class Canaries:
    """The secret values of the scenario, by what they are."""

    values: dict[str, str] = field(default_factory=dict)

    def add(self, label: str, value: str, register) -> str:
        self.values[label] = register(value)
        return value

    def add_token(self, label: str, token: dict, register) -> str:
        for piece in ("access_token", "refresh_token"):
            self.add(f"{label}.{piece}", token[piece], register)
        return json.dumps(token)


def canary(what: str) -> str:
    return f"canary-{what}-{secrets.token_urlsafe(12)}"


def sync_job(resource, source: str, destination: str) -> dict:
    return {
        "tasks": [
            {
                "name": "sync",
                "type": "rclone.sync",
                "args": {"resourceId": str(resource.pk), "remotes": [source, destination]},
            }
        ]
    }


ADD_CONFIG = "mutation($r: ID!, $c: JSON!) { addJobConfig(resourceId: $r, config: $c) { success } }"
CREATE = """mutation($i: ID!, $w: JSON!) {
  createScheduledJob(instanceId: $i, workflow: $w, frequencyType: CRON_BASED, cronExpression: "0 3 * * *",
                     active: false) { id }
}"""
RUN = "mutation($j: ID!) { runScheduledJob(jobId: $j) { id status trigger } }"
GET_CONFIG = "query($r: ID!) { getJobConfig(resourceId: $r) { name type settings secrets { name isSet } } }"
GET_JOB = """query($j: ID!) {
  getScheduledJob(jobId: $j) {
    id workflow lastRun
    history { id success status trigger error steps logPath signedLogUrl startedAt finishedAt }
  }
}"""
INSTANCE_HISTORY = """query($i: ID!) {
  getInstanceJobHistory(instanceId: $i) { items { id success status error steps logPath signedLogUrl } }
}"""
ONE_RUN = "query($h: ID!) { getScheduledJobHistory(jobHistoryId: $h) { id status error steps signedLogUrl } }"


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_it_keeps_every_secret_out_of_the_database_logs_redis_api_responses_and_temp_folders(
    stack,
    redis_monitor,
    live_server,
    acme_client,
    instance,
    resource,
    s3_server,
    sftp_server,
    settings,
    tmp_path,
    secret_registry,
):
    settings.CONFIGS_ALLOW_LOCAL_REMOTES = True  # the API side of the loopback servers; the worker has it by env
    timings: dict[str, float] = {}
    started = time.monotonic()
    drive, worker, beat = stack.drive, stack.processes["worker"], stack.processes["beat"]
    monitor = redis_monitor
    api = Api(live_server.url)
    api.sign_in(acme_client)

    # The secrets: the storage servers' real credentials, a wrong one, OAuth client secrets and tokens.
    c = Canaries()
    c.add("s3 secret_access_key", s3_server.password, secret_registry)
    c.add("sftp pass", sftp_server.password, secret_registry)
    wrong = c.add("wrong s3 secret_access_key", canary("wrong-s3"), secret_registry)
    drive_secret = c.add("drive client_secret", canary("drive-client-secret"), secret_registry)
    old = drive.issue_token(expired=True)
    old_token = c.add_token("drive old token", old, secret_registry)
    box_secret = c.add("dropbox app_secret", canary("dropbox-app-secret"), secret_registry)
    box_token = c.add_token(
        "dropbox token", {"access_token": canary("sl.access"), "refresh_token": canary("dbx-refresh")}, secret_registry
    )
    acc_secret = c.add("acc client_secret", canary("acc-client-secret"), secret_registry)
    acc_token = c.add_token(
        "acc token",
        {"access_token": canary("eyJ-access"), "token_type": "Bearer", "refresh_token": canary("acc-refresh")},
        secret_registry,
    )
    c.add("API client secret", acme_client.client_secret, secret_registry)
    c.add("API bearer token", api.token, secret_registry)
    for i, key in enumerate(settings.CONFIG_ENCRYPTION_KEYS):
        c.add(f"Fernet key {i}", key, secret_registry)

    src = tmp_path / "src"
    write_tree(src, FILES)
    write_tree(sftp_server.root / "outbox", FILES)
    (s3_server.root / "backup").mkdir()
    config = {
        "here": {"type": "local"},
        "bucket": s3_server.remote(),
        "wrong": s3_server.remote(secret_access_key=wrong),
        "box": sftp_server.remote(),
        "gdrive": {"type": "drive", "client_id": "canary-client-id", "client_secret": drive_secret, "token": old_token},
        "dropbox": {"type": "dropbox", "app_key": "app-key-1", "app_secret": box_secret, "token": box_token},
        "acc": {
            "type": "acc",
            "token": acc_token,
            "client_id": "acc-client-id",
            "client_secret": acc_secret,
            "hub_id": "b.11111111-2222-3333-4444-555555555555",
            "project_id": "b.66666666-7777-8888-9999-000000000000",
        },
    }
    assert api.gql(ADD_CONFIG, {"r": str(resource.pk), "c": config}) == {"data": {"addJobConfig": {"success": True}}}

    # Refused configs carrying secrets: the errors name the setting, never echo the value.
    refused = {
        "unknown option": {"type": "s3", "provider": "Rclone", "access_key_id": "k", "secret_access_key": "x"}
        | {"no_such_option": c.add("refused option value", canary("refused-1"), secret_registry)},
        "bad token": {
            "type": "drive",
            "token": "not json " + c.add("refused token", canary("refused-2"), secret_registry),
        },
        "line break": {"type": "sftp", "host": "example.com"}
        | {"pass": c.add("refused pass", canary("refused-3"), secret_registry) + "\n"},
        "private endpoint": s3_server.remote(
            secret_access_key=c.add("refused s3", canary("refused-4"), secret_registry)
        ),
    }
    settings.CONFIGS_ALLOW_LOCAL_REMOTES = False  # so that the loopback endpoint is refused too
    for what, remote in refused.items():
        body = api.gql(ADD_CONFIG, {"r": str(resource.pk), "c": {"bad": remote}})
        assert body.get("errors"), (what, body)
        assert body.get("data") is None, (what, body)
    settings.CONFIGS_ALLOW_LOCAL_REMOTES = True

    jobs = {}
    for name, (source, destination) in {
        "to s3": (f"here:{src}", "bucket:backup/site-a"),
        "from sftp": ("box:outbox", f"here:{tmp_path / 'from-sftp'}"),
        "to drive": (f"here:{src}", "gdrive:backup/site-a"),
        "wrong s3": (f"here:{src}", "wrong:backup/denied"),
    }.items():
        body = api.gql(CREATE, {"i": str(instance.pk), "w": sync_job(resource, source, destination)})
        assert "errors" not in body, body
        jobs[name] = int(body["data"]["createScheduledJob"]["id"])
    timings["configs and jobs through the API"] = time.monotonic() - started

    # The real worker runs them all.
    watch = TempWatch(stack.worker_tmp)
    watch.start()
    runs = {}
    for name, job_id in jobs.items():
        body = api.gql(RUN, {"j": str(job_id)})
        assert body["data"]["runScheduledJob"]["status"] == "QUEUED", body
        runs[name] = int(body["data"]["runScheduledJob"]["id"])
    runs_started = time.monotonic()
    deadline = runs_started + 180
    while JobHistory.objects.filter(pk__in=runs.values(), status__in=[RunStatus.QUEUED, RunStatus.RUNNING]).exists():
        assert time.monotonic() < deadline, f"runs did not finish:\n{worker.output()[-5000:]}"
        time.sleep(0.2)
    timings["four runs on the worker"] = time.monotonic() - runs_started
    watch.stop()

    done = {name: JobHistory.objects.get(pk=pk) for name, pk in runs.items()}
    for name in ("to s3", "from sftp", "to drive"):
        assert done[name].status == RunStatus.SUCCEEDED, (name, done[name].error, worker.output()[-5000:])
    assert done["wrong s3"].status == RunStatus.FAILED
    assert done["wrong s3"].error.startswith("step 'sync' failed: rclone exited with code"), done["wrong s3"].error
    assert {p for p in drive.list_paths()} == {f"backup/site-a/{k}" for k in FILES}

    # The refreshed token is stored, encrypted, and is the one the fake Drive accepts now.
    stored = {row.name: decrypt_json(row.settings_encrypted) for row in RemoteConfig.objects.filter(resource=resource)}
    assert set(stored) == set(config)
    new = json.loads(stored["gdrive"]["token"])
    assert (new["access_token"], new["refresh_token"]) == (drive.access_token, drive.refresh_token)
    assert new["access_token"] != old["access_token"]
    assert new["refresh_token"] != old["refresh_token"]
    c.add_token("drive refreshed token", new, secret_registry)
    # Everything else is stored as it was given (decrypted here), so the scans below look for data that is there.
    assert stored["bucket"]["secret_access_key"] == s3_server.password
    assert stored["box"]["pass"] == sftp_server.password
    assert stored["wrong"]["secret_access_key"] == wrong
    assert stored["gdrive"]["client_secret"] == drive_secret
    assert stored["dropbox"]["client_secret"] == box_secret
    assert stored["acc"]["client_secret"] == acc_secret

    # Everything the API shows of it all.
    api_started = time.monotonic()
    shown = api.gql(GET_CONFIG, {"r": str(resource.pk)})  # its shape is checked after the scans
    history = api.gql(INSTANCE_HISTORY, {"i": str(instance.pk)})["data"]["getInstanceJobHistory"]["items"]
    assert {int(item["id"]) for item in history} == set(runs.values())
    logs = {}
    for name, job_id in jobs.items():
        job = api.gql(GET_JOB, {"j": str(job_id)})["data"]["getScheduledJob"]
        (run,) = job["history"]
        api.gql(ONE_RUN, {"h": run["id"]})
        logs[name] = api.download(run["signedLogUrl"]).decode()
    assert "refreshed its token; the new one is stored (encrypted)" in logs["to drive"]
    assert "rclone exited with code" in logs["wrong s3"]
    timings["reading it back through the API"] = time.monotonic() - api_started

    # What each place holds, read now.
    scan_started = time.monotonic()
    monitor.stop()
    redis_keys, redis_data = redis_contents(settings.REDIS_URL)
    dump = pg_dump()
    media = [p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()]
    worker_output, beat_output = worker.output(), beat.output()
    left_in_tmp = sorted(p.relative_to(stack.worker_tmp) for p in stack.worker_tmp.rglob("*"))

    # Each place is the right one and holds the data: the scans below cannot pass on an empty or wrong source.
    for row in RemoteConfig.objects.filter(resource=resource):
        assert row.settings_encrypted.encode() in dump, row.name
    assert b"rclone exited with code" in dump
    assert all(run_.log_path and Path(settings.MEDIA_ROOT, run_.log_path) in media for run_ in done.values())
    assert worker_output.count("Task jobs.run_queued[") >= 2 * len(runs), worker_output[-3000:]  # received, succeeded
    assert "beat: Starting" in beat_output
    monitor_text = b"\n".join(monitor.lines)
    assert b"jobs.run_queued" in monitor_text  # the run messages went through Redis while it was watched
    assert redis_keys > 0
    assert watch.seen, "no rclone step folder was ever seen in the worker's temp folder"
    assert set(watch.seen.values()) == {0o700}, watch.seen

    scanner = Scanner(c.values.values())
    leaks = scanner.scan(dump, "pg_dump of the test database")
    for path in media:
        leaks += scanner.scan_file(path)
    leaks += scanner.scan(worker_output, "the worker's stdout/stderr")
    leaks += scanner.scan(beat_output, "beat's stdout/stderr")
    leaks += scanner.scan(redis_data, "a Redis key or value")
    leaks += scanner.scan(monitor_text, "a command sent to Redis (MONITOR)")
    for where, body in api.bodies:
        leaks += scanner.scan(body, where)
    leaks += [leak for path in stack.worker_tmp.rglob("*") if path.is_file() for leak in scanner.scan_file(path)]
    timings["scanning"] = time.monotonic() - scan_started
    print(
        f"\nscanned for {len(scanner.secrets)} secrets: pg_dump {len(dump)} bytes "
        f"({TaskResult.objects.count()} celery results, {JobHistory.objects.count()} runs, "
        f"{RemoteConfig.objects.count()} remotes); {len(media)} MEDIA_ROOT files; worker output {len(worker_output)} "
        f"and beat output {len(beat_output)} chars; Redis {redis_keys} keys ({len(redis_data)} bytes) and "
        f"{len(monitor.lines)} monitored commands ({len(monitor_text)} bytes); {len(api.bodies)} API responses; "
        f"{len(watch.seen)} rclone step folders seen (mode 0700) and none left, left in the worker's temp "
        f"folder: {[str(p) for p in left_in_tmp]}; {scanner.bytes_scanned} bytes in all.\ntimings: "
        + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items())
    )

    labels = {value: label for label, value in c.values.items()}
    assert not leaks, "secrets leaked:\n" + "\n".join(f"{labels[leak.secret]} {leak}" for leak in leaks)
    assert not [p for p in left_in_tmp if p.parts[0].startswith("rclone-step-")], left_in_tmp
    assert "errors" not in shown, shown
    remotes = shown["data"]["getJobConfig"]
    assert {remote["name"] for remote in remotes} == set(config)
    assert all(s["isSet"] for remote in remotes for s in remote["secrets"] if s["name"] in stored[remote["name"]])


# ----- the scanner itself finds what it should -----


def test_it_finds_a_planted_secret_in_a_file_and_in_a_log_record_and_reports_only_a_hint(tmp_path):
    secret = "planted-" + secrets.token_urlsafe(16)
    (tmp_path / "clean.log").write_text("nothing to see\n")
    (tmp_path / "deep" / "er").mkdir(parents=True)
    (tmp_path / "deep" / "er" / "run-1.log").write_text(f"2026-01-01 rclone error: auth failed for {secret}\n")
    keeper = LogKeeper()
    logger = logging.getLogger("tests.e2e.planted")
    logger.addHandler(keeper)
    logger.propagate = False
    try:
        logger.warning("clean line")
        try:
            raise RuntimeError(f"connect failed with {secret}")
        except RuntimeError:
            logger.exception("step failed")  # the secret is only in the traceback
    finally:
        logger.removeHandler(keeper)
        logger.propagate = True

    scanner = Scanner([secret, "never-used-secret-value"])
    file_leaks = scanner.scan_tree(tmp_path)
    record_leaks = scanner.scan_records(keeper.records)

    assert [leak.where for leak in file_leaks] == [str(tmp_path / "deep" / "er" / "run-1.log")]
    assert len(record_leaks) == 1
    assert "ERROR tests.e2e.planted" in record_leaks[0].where
    assert scanner.files_scanned == 2
    report = "\n".join(map(str, file_leaks + record_leaks))
    assert secret not in report
    assert hint(secret) == f"{secret[:4]}... ({len(secret)} chars)"
    assert hint(secret) in report


@pytest.mark.parametrize(
    "encode",
    [
        lambda s: s,
        lambda s: json.dumps({"token": s}),
        lambda s: quote(s, safe=""),
        lambda s: "x" + base64.b64encode(s.encode()).decode(),
        lambda s: "xy" + base64.urlsafe_b64encode(b"\x01" + s.encode()).decode(),
        lambda s: "\\x" + s.encode().hex(),
    ],
    ids=["plain", "json", "url-quoted", "base64", "urlsafe-base64-shifted", "hex"],
)
def test_it_finds_a_secret_in_its_encoded_forms(encode):
    # Slashes and a quote, which URL-quoting and JSON change.
    secret = '1//0g"' + secrets.token_urlsafe(18)
    scanner = Scanner([secret])

    assert scanner.find(b"before " + encode(secret).encode() + b" after") == [secret]
    assert scanner.find(b"before and after") == []
    assert secret.encode() in needles(secret)


def levels() -> dict[str, int]:
    manager = logging.Logger.manager
    return {"": logging.getLogger().level} | {
        name: logger.level for name, logger in manager.loggerDict.items() if isinstance(logger, logging.Logger)
    }


def test_it_sweeps_the_session_without_changing_any_log_level(tmp_path, caplog):
    from tests.fixtures import leaks

    # The session's own keeper is on the root and lets through what reaches it, at its level.
    assert leaks.SWEEP is not None
    assert leaks.SWEEP.keeper in logging.getLogger().handlers
    assert leaks.SWEEP.keeper.level == logging.NOTSET
    kept = len(leaks.SWEEP.keeper.records)
    logging.getLogger("tests.e2e.levels").warning("seen by caplog and the sweep alike")
    assert [r.getMessage() for r in caplog.records] == ["seen by caplog and the sweep alike"]
    assert [r.text for r in leaks.SWEEP.keeper.records[kept:]] == [
        "WARNING tests.e2e.levels: seen by caplog and the sweep alike"
    ]
    assert isinstance(leaks.SWEEP.keeper.records[-1], KeptRecord)

    # Installing and removing a sweep leaves every logger's level as it was.
    before = levels()
    sweep = leaks.Sweep(tmp_path)
    sweep.install()
    during = levels()
    sweep.uninstall()
    assert before == during == levels()
    assert sweep.keeper not in logging.getLogger().handlers
