"""Red-team probes from the issue-12 review: tenant-controlled values aimed past the egress policy. A test marked
Each failed before the fix it names."""

import socket
import threading
from collections.abc import Iterator

import pytest

from jobs.ops.outbound import tenant_policy
from pointscene.core.addresses import NotAllowed


class ConnectProxy:
    """An operator's forward proxy (the worker's HTTPS_PROXY): it records each CONNECT target and says yes, without
    connecting anywhere (a real one would resolve the name itself and connect to whatever it resolves to)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.targets: list[str] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                line = data.split(b"\r\n", 1)[0].decode(errors="replace")
                self.targets.append(line.split(" ")[1] if " " in line else line)
                conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")


@pytest.fixture
def upstream() -> Iterator[ConnectProxy]:
    proxy = ConnectProxy()
    yield proxy
    proxy.sock.close()


def test_it_refuses_a_name_that_resolves_to_loopback_also_when_an_upstream_proxy_is_set(fake_dns, upstream):
    fake_dns.set("inside.tenant-owned.example.com", "127.0.0.1")
    fake_dns.set("metadata.tenant-owned.example.com", "169.254.169.254")
    policy = tenant_policy(allow_private=False, upstream=f"http://127.0.0.1:{upstream.port}")

    for name in ("inside.tenant-owned.example.com", "metadata.tenant-owned.example.com"):
        with pytest.raises(NotAllowed):
            policy.connect(name, 80, timeout=2).close()

    assert upstream.targets == []


@pytest.mark.usefixtures("clean_redis")
def test_it_does_not_let_a_crypt_remote_climb_out_of_the_resource_area(instance, resource, settings, tmp_path):
    from configs.crypto import encrypt_json
    from configs.models import RemoteConfig
    from jobs.models import RunStatus
    from tests.jobs.test_sync import make_job, run

    settings.MEDIA_ROOT = str(tmp_path / "media")
    outside = tmp_path / "worker-file.txt"
    outside.write_text("the worker's own file")
    # crypt's `remote` is not a workflow path, so the workflow's '..' rule does not see it; with the built-in
    # `resource:` alias in the same step, resource:../../.. would be a folder outside the resource's area. Stored as
    # an older version would have stored it: the worker's own check refuses it before rclone starts.
    remote = {"type": "crypt", "remote": "resource:../../../..", "password": "pw"}
    RemoteConfig.objects.create(resource=resource, name="box", type="crypt", settings_encrypted=encrypt_json(remote))

    result = run(make_job(instance, resource, "resource:in", "box:loot"))

    assert result.status == RunStatus.FAILED
    assert "no remote named 'resource'" in result.error  # crypt may not wrap the service's own storage
    assert outside.read_text() == "the worker's own file"


@pytest.mark.parametrize("wrapped", ["resource:", "resource:../..", "resource-storage:bucket", "bucket:a/../../b"])
def test_it_refuses_crypt_over_the_services_own_storage_or_a_climbing_path(wrapped, resource):
    from django.core.exceptions import ValidationError

    from configs.services import add_job_config

    with pytest.raises(ValidationError) as failure:
        add_job_config(resource, {"vault": {"type": "crypt", "remote": wrapped, "password": "p"}})

    assert list(failure.value.message_dict) == ["config.vault.remote"]
