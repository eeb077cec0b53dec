"""The fake Google Drive (tests/fakes), exercised by the REAL rclone binary through the intercepting proxy.

These tests pin down that the fake answers every call rclone's drive backend makes for listing, downloading,
uploading (multipart and chunked resumable), syncing with deletes, and refreshing its OAuth token, so that sync
tests built on the fake test rclone's real behaviour. Each rclone run also asserts the fake saw nothing it does not
implement (`FakeDrive.unhandled`). No database, no internet: rclone's HTTPS goes to 127.0.0.1 via HTTPS_PROXY.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from configs import rclone
from tests.fakes.drive import FakeDrive, parse_rfc3339, rfc3339
from tests.fakes.tls_proxy import InterceptingProxy

RCLONE = Path(rclone.binary())
REMOTE = "gd"
CHUNKED = ["--drive-upload-cutoff", "256k", "--drive-chunk-size", "256k"]
MTIME = datetime(2024, 3, 4, 5, 6, 7, 891000, tzinfo=UTC)


class Rclone:
    """Runs the real rclone against the fake: its own config file, HOME, and HTTPS_PROXY pointing at the proxy."""

    def __init__(self, drive: FakeDrive, proxy: InterceptingProxy, workdir: Path) -> None:
        self.drive = drive
        self.proxy = proxy
        self.workdir = workdir
        self.config = workdir / "rclone.conf"

    def write_config(self, token: dict) -> None:
        self.config.write_text(
            f"[{REMOTE}]\ntype = drive\nclient_id = fake-client-id\nclient_secret = fake-client-secret\n"
            f"scope = drive\ntoken = {json.dumps(token)}\n"
        )

    def config_token(self) -> dict:
        for line in self.config.read_text().splitlines():
            if line.startswith("token = "):
                return json.loads(line.removeprefix("token = "))
        raise AssertionError(f"no token in {self.config.read_text()}")

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        # The host's proxy and rclone settings must not leak in: only our proxy, only our config.
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy") and not k.startswith("RCLONE")}
        env.update(HTTPS_PROXY=self.proxy.url, HOME=str(self.workdir))
        command = [
            str(RCLONE),
            "--config",
            str(self.config),
            "--ca-cert",
            str(self.proxy.ca_path),
            # Fail fast: a retry against the fake would only hide the first error.
            "--retries",
            "1",
            "--low-level-retries",
            "1",
            "--drive-pacer-min-sleep",
            "1ms",
            *args,
        ]
        # Bytes, not text: `rclone cat` output is binary. Decode stdout where it is JSON or text.
        result = subprocess.run(command, env=env, capture_output=True, timeout=60)
        if check:
            assert result.returncode == 0, f"rclone {' '.join(args)} failed:\n{result.stderr.decode()}"
            assert self.drive.unhandled == [], self.drive.unhandled
            assert self.proxy.errors == [], self.proxy.errors
        return result


@pytest.fixture
def drive() -> FakeDrive:
    # A tiny page cap so that any folder with more than 3 entries is listed over several pages.
    return FakeDrive(page_size_cap=3)


@pytest.fixture
def proxy(drive: FakeDrive, tmp_path: Path):
    with InterceptingProxy(drive, workdir=tmp_path / "proxy") as running:
        yield running


@pytest.fixture
def rclone(drive: FakeDrive, proxy: InterceptingProxy, tmp_path: Path) -> Rclone:
    home = tmp_path / "home"
    home.mkdir()
    runner = Rclone(drive, proxy, home)
    runner.write_config(drive.issue_token())
    return runner


def write_local(path: Path, content: bytes, mtime: datetime = MTIME) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    os.utime(path, (mtime.timestamp(), mtime.timestamp()))
    return path


def calls(drive: FakeDrive, method: str, path_prefix: str, **query: str) -> list:
    return [
        call
        for call in drive.calls
        if call.method == method
        and call.path.startswith(path_prefix)
        and all(call.query.get(key) == value for key, value in query.items())
    ]


def writes(drive: FakeDrive, since: int) -> list:
    """Calls after the first `since` that change something (everything rclone sends but GET)."""
    return [call for call in drive.calls[since:] if call.method != "GET"]


def https_through_proxy(proxy: InterceptingProxy, method: str, host: str, path: str, token: str | None = None):
    """A Python client request through the proxy's tunnel, trusting only the proxy's CA."""
    context = ssl.create_default_context(cafile=str(proxy.ca_path))
    connection = http.client.HTTPSConnection("127.0.0.1", proxy.port, context=context, timeout=10)
    connection.set_tunnel(host, 443)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        connection.request(method, path, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def raw_proxy_request(proxy: InterceptingProxy, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
        sock.sendall(request)
        return sock.recv(4096)


def test_it_lists_a_tree_over_several_pages(drive: FakeDrive, proxy: InterceptingProxy, rclone: Rclone) -> None:
    expected = {}
    for index in range(7):
        content = f"file {index}".encode()
        drive.put_file(f"Top/f{index}.txt", content, modified=MTIME + timedelta(minutes=index))
        expected[f"Top/f{index}.txt"] = content
    drive.put_file("Top/sub/deep.bin", b"\x00" * 1000, modified=MTIME)
    expected["Top/sub/deep.bin"] = b"\x00" * 1000

    listing = json.loads(rclone.run("lsjson", "-R", "--hash", f"{REMOTE}:").stdout)

    files = {entry["Path"]: entry for entry in listing if not entry["IsDir"]}
    assert sorted(files) == sorted(expected)
    assert {entry["Path"] for entry in listing if entry["IsDir"]} == {"Top", "Top/sub"}
    for path, content in expected.items():
        assert files[path]["Size"] == len(content)
        assert files[path]["Hashes"]["md5"] == hashlib.md5(content).hexdigest()
    assert parse_rfc3339(files["Top/f6.txt"]["ModTime"]) == MTIME + timedelta(minutes=6)
    # Top holds 8 entries at 3 a page: the first page plus two follow-ups with nextPageToken.
    follow_ups = [call for call in calls(drive, "GET", "/drive/v3/files") if "pageToken" in call.query]
    assert len(follow_ups) == 2
    assert all("in parents" in call.query["q"] and "trashed=false" in call.query["q"] for call in follow_ups)
    # rclone keeps its TLS connections alive through the tunnel rather than opening one per request.
    assert set(proxy.tunnels) == {"www.googleapis.com"}
    assert len(proxy.tunnels) < len(drive.calls)


def test_it_downloads_files_byte_identical(drive: FakeDrive, rclone: Rclone, tmp_path: Path) -> None:
    small = b"small file\n"
    # Over 8 MiB, so the download streams many TLS records and rclone checks the md5 of a real body.
    big = os.urandom(9 * 1024 * 1024 + 123)
    drive.put_file("Data/small.txt", small, modified=MTIME)
    drive.put_file("Data/nested/big.bin", big, modified=MTIME)
    target = tmp_path / "download"

    rclone.run("copy", f"{REMOTE}:Data", str(target))

    assert (target / "small.txt").read_bytes() == small
    assert (target / "nested" / "big.bin").read_bytes() == big
    assert datetime.fromtimestamp((target / "small.txt").stat().st_mtime, UTC) == MTIME
    assert len(calls(drive, "GET", "/drive/v3/files/", alt="media")) == 2

    # A ranged read (rclone cat --offset/--count) goes out as a Range header and gets just those bytes.
    sliced = rclone.run("cat", "--offset", "5000000", "--count", "1000", f"{REMOTE}:Data/nested/big.bin")
    assert sliced.stdout == big[5000000:5001000]
    ranged = [call for call in calls(drive, "GET", "/drive/v3/files/", alt="media") if "range" in call.headers]
    assert ranged
    assert ranged[-1].headers["range"].startswith("bytes=5000000-")
    assert ranged[-1].status == 206


def test_it_uploads_multipart_and_resumable_then_updates_in_place(
    drive: FakeDrive, rclone: Rclone, tmp_path: Path
) -> None:
    source = tmp_path / "upload"
    small = write_local(source / "small.txt", b"x" * 1000)
    # 1 MiB + 5 bytes at a 256 KiB chunk size: four full chunks and a 5-byte tail.
    big = write_local(source / "dir" / "big.bin", os.urandom(1024 * 1024 + 5))

    rclone.run("copy", str(source), f"{REMOTE}:Up", *CHUNKED)

    assert drive.read_file("Up/small.txt") == small.read_bytes()
    assert drive.read_file("Up/dir/big.bin") == big.read_bytes()
    assert drive.file_info("Up/dir/big.bin")["modifiedTime"] == rfc3339(MTIME)
    assert len(calls(drive, "POST", "/upload/drive/v3/files", uploadType="multipart")) == 1
    resumable = calls(drive, "POST", "/upload/drive/v3/files", uploadType="resumable")
    starts = [call for call in resumable if "upload_id" not in call.query]
    chunks = [call for call in resumable if "upload_id" in call.query]
    assert len(starts) == 1
    assert starts[0].headers["x-upload-content-length"] == str(1024 * 1024 + 5)
    assert [call.status for call in chunks] == [308, 308, 308, 308, 200]
    assert chunks[0].headers["content-range"] == f"bytes 0-262143/{1024 * 1024 + 5}"
    ids = {path: drive.file_info(path)["id"] for path in ("Up/small.txt", "Up/dir/big.bin")}

    # Changed content under the same names: rclone updates the existing files (PATCH), it does not add new ones.
    later = MTIME + timedelta(hours=1)
    write_local(small, b"y" * 2000, later)
    write_local(big, os.urandom(600 * 1024), later)
    rclone.run("copy", str(source), f"{REMOTE}:Up", *CHUNKED)

    assert drive.read_file("Up/small.txt") == small.read_bytes()
    assert drive.read_file("Up/dir/big.bin") == big.read_bytes()
    assert {path: drive.file_info(path)["id"] for path in ids} == ids
    assert drive.file_info("Up/small.txt")["modifiedTime"] == rfc3339(later)
    assert drive.list_paths() == ["Up/dir/big.bin", "Up/small.txt"]
    assert calls(drive, "PATCH", f"/upload/drive/v3/files/{ids['Up/small.txt']}", uploadType="multipart")
    assert calls(drive, "PATCH", f"/upload/drive/v3/files/{ids['Up/dir/big.bin']}", uploadType="resumable")


def test_it_syncs_deletions_to_the_trash_or_for_good(drive: FakeDrive, rclone: Rclone, tmp_path: Path) -> None:
    source = tmp_path / "mirror"
    write_local(source / "keep.txt", b"keep")
    drive.put_file("Mirror/keep.txt", b"keep", modified=MTIME)
    gone_id = drive.put_file("Mirror/gone.txt", b"not in the source", modified=MTIME)

    rclone.run("sync", str(source), f"{REMOTE}:Mirror")

    assert drive.list_paths() == ["Mirror/keep.txt"]
    assert drive.list_paths(trashed=True) == ["Mirror/gone.txt"]
    trash = calls(drive, "PATCH", f"/drive/v3/files/{gone_id}")
    assert len(trash) == 1
    assert not calls(drive, "POST", "/upload/")  # keep.txt already matched: nothing uploaded

    deleted_id = drive.put_file("Mirror/sub/deleted.txt", b"delete me", modified=MTIME)
    rclone.run("sync", str(source), f"{REMOTE}:Mirror", "--drive-use-trash=false")

    assert drive.list_paths() == ["Mirror/keep.txt"]
    assert drive.list_paths(trashed=True) == ["Mirror/gone.txt"]
    assert calls(drive, "DELETE", f"/drive/v3/files/{deleted_id}")
    assert drive.read_file("Mirror/sub/deleted.txt") is None
    # sync also removes the now-empty folder that is not in the source: gone for good, not trashed.
    assert drive.file_info("Mirror/sub") is None
    assert [call.path for call in calls(drive, "DELETE", "/drive/v3/files/")][0] == f"/drive/v3/files/{deleted_id}"


def test_it_transfers_nothing_when_syncing_an_unchanged_tree(drive: FakeDrive, rclone: Rclone, tmp_path: Path) -> None:
    source = tmp_path / "tree"
    for index in range(5):
        write_local(source / f"f{index}.txt", f"content {index}".encode())
    touched = write_local(source / "a" / "b" / "deep.txt", b"deep")
    write_local(source / "a" / "big.bin", os.urandom(300 * 1024))

    rclone.run("sync", str(source), f"{REMOTE}:Tree", *CHUNKED)
    assert len(drive.list_paths()) == 7
    done = len(drive.calls)

    second = rclone.run("sync", str(source), f"{REMOTE}:Tree", *CHUNKED, "--stats-one-line", "-v")
    assert writes(drive, since=done) == [], "an unchanged sync must not write"
    assert b"There was nothing to transfer" in second.stderr

    # Same content, new mtime: rclone compares hashes and only sets modifiedTime via files.update.
    touched_at = MTIME + timedelta(days=1)
    write_local(touched, b"deep", touched_at)
    done = len(drive.calls)
    rclone.run("sync", str(source), f"{REMOTE}:Tree", *CHUNKED)
    assert [(call.method, call.path) for call in writes(drive, since=done)] == [
        ("PATCH", f"/drive/v3/files/{drive.file_info('Tree/a/b/deep.txt')['id']}")
    ]
    assert drive.file_info("Tree/a/b/deep.txt")["modifiedTime"] == rfc3339(touched_at)

    done = len(drive.calls)
    rclone.run("sync", str(source), f"{REMOTE}:Tree", *CHUNKED)
    assert writes(drive, since=done) == []


def test_it_refreshes_an_expired_token_and_rotates_the_refresh_token(
    drive: FakeDrive, proxy: InterceptingProxy, rclone: Rclone, tmp_path: Path
) -> None:
    drive.put_file("Docs/a.txt", b"a")
    old = drive.issue_token(expired=True)
    rclone.write_config(old)
    stale_config = tmp_path / "stale.conf"
    shutil.copy(rclone.config, stale_config)

    listing = json.loads(rclone.run("lsjson", "-R", f"{REMOTE}:").stdout)

    assert [entry["Path"] for entry in listing] == ["Docs", "Docs/a.txt"]
    assert ("POST", "oauth2.googleapis.com", "/token") in drive.requests
    assert drive.token_requests == [
        {
            "grant_type": "refresh_token",
            "refresh_token": old["refresh_token"],
            "client_id": "fake-client-id",
            "client_auth": "basic",
        }
    ]
    # rclone wrote the new pair back into the config file it was given.
    saved = rclone.config_token()
    assert saved["access_token"] == drive.access_token != old["access_token"]
    assert saved["refresh_token"] == drive.refresh_token != old["refresh_token"]
    assert parse_rfc3339(saved["expiry"]) > datetime.now(UTC)
    # Every API call after the refresh used the new access token.
    api_calls = [call for call in drive.calls if call.host == "www.googleapis.com"]
    assert {call.headers["authorization"] for call in api_calls} == {f"Bearer {drive.access_token}"}

    status, body = https_through_proxy(proxy, "GET", "www.googleapis.com", "/drive/v3/about", old["access_token"])
    assert status == 401
    assert json.loads(body)["error"]["errors"][0]["reason"] == "authError"
    assert https_through_proxy(proxy, "GET", "www.googleapis.com", "/drive/v3/about", drive.access_token)[0] == 200

    # The old refresh token is spent: a second rclone holding it is refused, and the reuse is counted.
    shutil.copy(stale_config, rclone.config)
    failed = rclone.run("lsjson", f"{REMOTE}:", check=False)
    assert failed.returncode != 0
    assert b"invalid_grant" in failed.stderr
    # rclone's oauth2 client tries the client credentials as Basic, then in the form: each try is a reuse.
    assert drive.refresh_reuse_attempts >= 1
    assert drive.access_token == saved["access_token"], "a refused refresh must not mint tokens"
    assert rclone.config_token()["refresh_token"] == old["refresh_token"]


def test_it_answers_unknown_or_unauthenticated_api_calls_like_google(
    drive: FakeDrive, proxy: InterceptingProxy
) -> None:
    token = drive.issue_token()["access_token"]

    status, body = https_through_proxy(proxy, "GET", "www.googleapis.com", "/drive/v3/files")
    assert status == 401
    assert json.loads(body)["error"]["code"] == 401

    status, body = https_through_proxy(proxy, "GET", "www.googleapis.com", "/drive/v3/nope", token)
    assert status == 404
    assert json.loads(body)["error"]["errors"][0]["reason"] == "notFound"
    assert drive.unhandled == ["GET /drive/v3/nope"]

    unsupported_query = "/drive/v3/files?q=fullText+contains+'x'"
    status, body = https_through_proxy(proxy, "GET", "www.googleapis.com", unsupported_query, token)
    assert status == 400
    assert "fullText" in drive.unhandled[-1]


def test_it_refuses_other_hosts_and_plain_requests(proxy: InterceptingProxy) -> None:
    refused = raw_proxy_request(proxy, b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
    assert refused.startswith(b"HTTP/1.1 403")
    assert proxy.refused == ["example.com:443"]

    plain = raw_proxy_request(proxy, b"GET http://www.googleapis.com/drive/v3/about HTTP/1.1\r\nHost: x\r\n\r\n")
    assert plain.startswith(b"HTTP/1.1 400")

    # The certificate is for the CONNECTed host only: a client checking another name rejects it.
    context = ssl.create_default_context(cafile=str(proxy.ca_path))
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
        sock.sendall(b"CONNECT oauth2.googleapis.com:443 HTTP/1.1\r\nHost: oauth2.googleapis.com:443\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        with pytest.raises(ssl.SSLCertVerificationError):
            context.wrap_socket(sock, server_hostname="www.googleapis.com")
