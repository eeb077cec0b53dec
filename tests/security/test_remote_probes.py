"""A hostile tenant's remote configs, aimed at the worker's own sockets and network (issue: a hostile tenant cannot
steer the workers). Each probe is refused where the config is stored, and again where the connection is made: the
worker's egress proxy resolves names itself and connects only to addresses it checked. Nothing reaches the loopback
canary, and every refusal reads the same whatever the port would have answered."""

import re
import socket
import threading

import pytest
from django.core.exceptions import ValidationError

from configs import services as configs
from configs.crypto import encrypt_json
from configs.models import RemoteConfig
from jobs.models import RunStatus
from tests.jobs.test_sync import log_of, make_job, run

pytestmark = pytest.mark.usefixtures("clean_redis", "quick_rclone")


@pytest.fixture
def quick_rclone(monkeypatch):
    """Operator tuning the worker passes on to rclone: a refused connection is not worth ten low-level retries."""
    monkeypatch.setenv("RCLONE_RETRIES", "1")
    monkeypatch.setenv("RCLONE_LOW_LEVEL_RETRIES", "1")


TOKEN = '{"access_token":"at-1","token_type":"Bearer","refresh_token":"rt-1","expiry":"2020-01-01T00:00:00Z"}'


def refused(resource, remote: dict) -> dict:
    with pytest.raises(ValidationError) as failure:
        configs.add_job_config(resource, {"probe": remote})
    assert not RemoteConfig.objects.filter(resource=resource).exists()
    return failure.value.message_dict


def store_as_legacy(resource, name: str, remote: dict) -> None:
    """A row as an older, looser version of the service would have stored it (the rules were a denylist then)."""
    RemoteConfig.objects.create(
        resource=resource, name=name, type=remote["type"], settings_encrypted=encrypt_json(remote)
    )


@pytest.fixture
def unix_server(tmp_path):
    """A unix socket server with a secret file, as a sidecar on a worker might serve."""
    path = tmp_path / "sidecar.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen()
    hits = []

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            hits.append(conn.recv(1024))
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecret")
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    yield path, hits
    server.close()


# --------------------------------------------------------------------------- refused where it is stored


def test_it_refuses_a_webdav_remote_on_a_unix_socket(resource, unix_server):
    path, hits = unix_server
    remote = {"type": "webdav", "url": "https://dav.example.com/", "unix_socket": str(path)}

    assert list(refused(resource, remote)) == ["config.probe.unix_socket"]


@pytest.mark.parametrize(
    "remote",
    [
        pytest.param({"type": "azureblob", "account": "127.0.0.1:{port}/#", "key": "k"}, id="azureblob-account"),
        pytest.param({"type": "azureblob", "account": "169.254.169.254/#", "key": "k"}, id="azureblob-metadata"),
        pytest.param({"type": "filescom", "site": "127.0.0.1:{port}", "api_key": "k"}, id="filescom-site"),
        pytest.param({"type": "zoho", "region": "com@127.0.0.1:{port}/#", "token": TOKEN}, id="zoho-region"),
    ],
)
def test_it_refuses_options_that_become_the_host_rclone_connects_to(remote, resource, canary):
    remote = {k: v.replace("{port}", str(canary.port)) for k, v in remote.items()}

    errors = refused(resource, remote)

    assert list(errors) != ["config.probe.type"]  # refused for the option, not the type


@pytest.mark.parametrize(
    ("remote", "field"),
    [
        ({"type": "sftp", "host": "fd00:ec2::254", "user": "u", "pass": "p"}, "host"),
        ({"type": "sftp", "host": "fe80::1", "user": "u", "pass": "p"}, "host"),
        ({"type": "sftp", "host": "[::1]", "user": "u", "pass": "p"}, "host"),
        ({"type": "ftp", "host": "fd00::5", "user": "u", "pass": "p"}, "host"),
        ({"type": "ftp", "host": "127.1", "user": "u", "pass": "p"}, "host"),
        ({"type": "http", "url": "http://[::127.0.0.1]:{port}/"}, "url"),
        ({"type": "http", "url": "http://[::ffff:7f00:1]:{port}/"}, "url"),
        ({"type": "webdav", "url": "http://0x7f.0.0.1:{port}/"}, "url"),
        ({"type": "webdav", "url": "http://2130706433:{port}/"}, "url"),
        (
            {
                "type": "s3",
                "provider": "Other",
                "endpoint": "http://[64:ff9b::7f00:1]:{port}",
                "access_key_id": "a",
                "secret_access_key": "s",
            },
            "endpoint",
        ),
        ({"type": "smb", "host": "fd00:ec2::254", "user": "u"}, "type"),
        ({"type": "hdfs", "namenode": "127.0.0.1:8020"}, "type"),
    ],
)
def test_it_refuses_ipv6_and_other_spellings_of_private_hosts(remote, field, resource, canary):
    remote = {k: v.replace("{port}", str(canary.port)) for k, v in remote.items()}

    assert list(refused(resource, remote)) == [f"config.probe.{field}"]


def test_it_refuses_options_nobody_has_classified(resource, monkeypatch):
    from configs import allowlist

    rules = dict(allowlist.rules())
    webdav = rules["webdav"]
    rules["webdav"] = allowlist.BackendRules("webdav", "http", webdav.options | {"pacer_min_sleep": "unreviewed"})
    monkeypatch.setattr(allowlist, "rules", lambda: rules)

    errors = refused(resource, {"type": "webdav", "url": "https://dav.example.com/", "pacer_min_sleep": "1ms"})

    assert "not yet reviewed" in errors["config.probe.pacer_min_sleep"][0]


# --------------------------------------------------------------------------- refused where the connection is made


def test_it_refuses_at_run_time_a_legacy_unix_socket_remote(instance, resource, unix_server, tmp_path, canary):
    path, hits = unix_server
    store_as_legacy(resource, "dav", {"type": "webdav", "url": "http://dav.example.com/", "unix_socket": str(path)})
    store_as_legacy(resource, "here", {"type": "local"})

    result = run(make_job(instance, resource, "dav:/", f"here:{tmp_path}/loot"))

    assert result.status == RunStatus.FAILED
    assert "not allowed" in result.error
    assert hits == []
    assert not (tmp_path / "loot").exists()


@pytest.mark.parametrize(
    "remote",
    [
        pytest.param({"type": "webdav", "url": "http://dav.rebind.example.com:{port}/"}, id="webdav"),
        pytest.param(
            {
                "type": "s3",
                "provider": "Other",
                "endpoint": "http://s3.rebind.example.com:{port}",
                "access_key_id": "a",
                "secret_access_key": "s",
            },
            id="s3",
        ),
        pytest.param(
            {"type": "drive", "token": TOKEN, "token_url": "http://token.rebind.example.com:{port}/token"},
            id="drive-token-refresh",
        ),
        pytest.param(
            {"type": "sftp", "host": "sftp.rebind.example.com", "port": "{port}", "user": "u", "pass": "p"}, id="sftp"
        ),
        pytest.param(
            {"type": "ftp", "host": "ftp.rebind.example.com", "port": "{port}", "user": "u", "pass": "p"}, id="ftp"
        ),
    ],
)
def test_it_refuses_a_name_that_rebinds_to_loopback_after_it_was_checked(remote, instance, resource, canary, fake_dns):
    remote = {k: v.replace("{port}", str(canary.port)) for k, v in remote.items()}
    for host in ("dav", "s3", "token", "sftp", "ftp"):
        # Public for whoever looks first (a check when the config was stored, or just before rclone started),
        # the worker's loopback for the connection itself.
        fake_dns.set(f"{host}.rebind.example.com", "93.184.215.14", "127.0.0.1")
    configs.add_job_config(resource, {"probe": remote})
    from jobs.ops.outbound import tenant_policy

    resolve = tenant_policy(allow_private=False).resolver
    host = next(v for k, v in remote.items() if k in ("url", "endpoint", "token_url", "host"))
    name = re.sub(r"^\w+://", "", host).split(":")[0].split("/")[0]
    assert [str(a) for a in resolve(name, 443)] == ["93.184.215.14"]

    result = run(make_job(instance, resource, "probe:bucket/dir", "resource:copy"))

    assert result.status == RunStatus.FAILED
    assert "not allowed" in log_of(result)
    assert "CONFIGS_ALLOW_LOCAL_REMOTES=1" in log_of(result)  # the refusal names the switch that opens it


def test_it_answers_an_open_port_a_closed_port_and_a_non_tls_port_alike(instance, resource, canary, fake_dns):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    fake_dns.set("scan.example.com", "127.0.0.1")
    targets = {
        "open": f"http://scan.example.com:{canary.port}/",
        "closed": f"http://scan.example.com:{closed.getsockname()[1]}/",
        "tls": f"https://scan.example.com:{canary.port}/",
        "nxdomain": "https://nothing.example.com/",
    }
    configs.add_job_config(resource, {n: {"type": "webdav", "url": url} for n, url in targets.items()})

    errors = {}
    for name in targets:
        result = run(make_job(instance, resource, f"{name}:/", "resource:copy"))
        assert result.status == RunStatus.FAILED
        # Only what the tenant wrote differs: its host, port and scheme, and the proxy's own port.
        text = re.sub(r"127\.0\.0\.1:\d+->", "PROXY->", result.error)
        text = re.sub(r"(scan|nothing)\.example\.com(:\d+)?", "TARGET", text)
        errors[name] = re.sub(r"https?://", "SCHEME://", text)
    closed.close()

    assert len(set(errors.values())) == 1, errors
    assert "not allowed" in errors["open"]
