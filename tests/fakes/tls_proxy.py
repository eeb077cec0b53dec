"""An HTTPS-intercepting CONNECT proxy that answers Google's hosts with a `FakeDrive`, in-process.

Why: rclone's drive backend has its endpoints (www.googleapis.com, oauth2.googleapis.com) compiled in, and speaks
only HTTPS. Pointing HTTPS_PROXY at this proxy and passing `--ca-cert <ca_path>` makes the real binary talk to the
fake unchanged. mitmproxy would do this, but it pins an older `cryptography` than the project, so this is the
stdlib (socketserver, http.server, ssl) plus `cryptography` for a throwaway CA and per-host leaf certificates.

Behaviour: CONNECT to a Google host on port 443 -> 200, then TLS with a leaf for that host, then HTTP/1.1 requests
(keep-alive) are answered by `FakeDrive.handle`. CONNECT elsewhere -> 403. A plain (non-CONNECT) request -> 400.
"""

from __future__ import annotations

import socket
import socketserver
import ssl
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from types import TracebackType

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.fakes.drive import ApiError, FakeDrive

INTERCEPTED_HOSTS = frozenset(
    {"www.googleapis.com", "oauth2.googleapis.com", "accounts.google.com", "content.googleapis.com"}
)
# Seconds an idle tunnel may wait for its next request; rclone closes its pool on exit, so this only bounds leaks.
IDLE_TIMEOUT = 60


def intercepts(host: str) -> bool:
    """Whether CONNECT to this host is answered by the fake (Google's API and OAuth hosts only)."""
    host = host.lower()
    return host in INTERCEPTED_HOSTS or host.endswith(".googleapis.com")


class CertificateAuthority:
    """A throwaway CA, written as PEM into `workdir`, that signs a leaf per intercepted host on demand.

    EC P-256 keys: generating them is instant, and Go's TLS stack accepts them.
    """

    def __init__(self, workdir: Path) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Fake Google Drive test CA")])
        now = datetime.now(UTC)
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1))
            .not_valid_after(now + timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(cert_sign=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        self.path = self.workdir / "fake-drive-ca.pem"
        self.path.write_bytes(self.certificate.public_bytes(serialization.Encoding.PEM))
        self._contexts: dict[str, ssl.SSLContext] = {}
        self._lock = threading.Lock()

    def context_for(self, host: str) -> ssl.SSLContext:
        """A server-side TLS context presenting a leaf for `host` (SAN = host), cached per host."""
        with self._lock:
            if host not in self._contexts:
                self._contexts[host] = self._make_context(host)
            return self._contexts[host]

    def _make_context(self, host: str) -> ssl.SSLContext:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        leaf = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(cert_sign=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        cert_path = self.workdir / f"leaf-{host}.pem"
        key_path = self.workdir / f"leaf-{host}.key"
        cert_path.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_path, key_path)
        # HTTP/1.1 only: Go would otherwise try h2, which http.server cannot speak.
        context.set_alpn_protocols(["http/1.1"])
        return context


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


class _TunnelHandler(BaseHTTPRequestHandler):
    """Serves the decrypted requests inside one CONNECT tunnel, keep-alive, with the fake Drive."""

    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT

    def __init__(self, request, client_address, server, tunnel_host: str) -> None:
        self.tunnel_host = tunnel_host
        super().__init__(request, client_address, server)

    def _serve(self) -> None:
        body = self._read_body()
        if body is None:
            return
        proxy: InterceptingProxy = self.server.proxy
        try:
            response = proxy.drive.handle(self.command, self.tunnel_host, self.path, dict(self.headers.items()), body)
        except Exception as error:  # a bug in the fake: answer like Google's 500 and make the test see it
            proxy.errors.append(f"{self.command} {self.tunnel_host}{self.path}: {error!r}")
            response = ApiError(500, "backendError", f"fake crashed: {error!r}").response()
        self.send_response(response.status)
        headers = {key.lower(): (key, value) for key, value in response.headers.items()}
        for key, value in headers.values():
            if key.lower() != "content-length":
                self.send_header(key, value)
        payload = b"" if self.command == "HEAD" else response.body
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if payload:
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

    def _read_body(self) -> bytes | None:
        """The request body: Go sends uploads of unknown length chunked, so both framings are needed."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size_line = self.rfile.readline(1024)
                if not size_line:
                    self.close_connection = True
                    return None
                size = int(size_line.split(b";")[0].strip(), 16)
                if size == 0:
                    # Trailers (none expected) end with an empty line.
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline(8)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def log_message(self, format: str, *args) -> None:
        """Silenced: the fake's own request log (FakeDrive.calls) is what tests look at."""


class _ProxyHandler(BaseHTTPRequestHandler):
    """The proxy's front door: CONNECT is intercepted or refused; anything else is a bad request."""

    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT

    def do_CONNECT(self) -> None:
        host, _, port = self.path.rpartition(":")
        proxy: InterceptingProxy = self.server.proxy
        if port != "443" or not intercepts(host):
            proxy.refused.append(self.path)
            self._refuse(403, f"CONNECT to {self.path} is not allowed by the test proxy")
            return
        proxy.tunnels.append(host.lower())
        self.send_response(200, "Connection established")
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True  # whatever happens next, this socket no longer speaks to the proxy
        try:
            tls = proxy.ca.context_for(host.lower()).wrap_socket(self.connection, server_side=True)
        except (ssl.SSLError, OSError) as error:
            proxy.errors.append(f"TLS handshake for {host}: {error}")
            return
        proxy._track(tls)
        try:
            _TunnelHandler(tls, self.client_address, self.server, tunnel_host=host.lower())
        except (ssl.SSLError, OSError) as error:
            proxy.errors.append(f"tunnel to {host}: {error}")
        finally:
            proxy._untrack(tls)
            tls.close()

    def _plain(self) -> None:
        self._refuse(400, "This proxy only accepts CONNECT")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _plain

    def _refuse(self, status: int, message: str) -> None:
        body = message.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def log_message(self, format: str, *args) -> None:
        """Silenced: refusals and TLS errors are collected on the proxy object instead."""


class _ProxyServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    proxy: InterceptingProxy

    def process_request(self, request, client_address) -> None:
        self.proxy._track(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request) -> None:
        self.proxy._untrack(request)
        super().shutdown_request(request)


class InterceptingProxy:
    """The proxy for tests: `with InterceptingProxy(drive, workdir=tmp_path) as proxy:` then give rclone
    `HTTPS_PROXY=proxy.url` and `--ca-cert proxy.ca_path`."""

    def __init__(self, drive: FakeDrive, workdir: Path) -> None:
        self.drive = drive
        self.ca = CertificateAuthority(Path(workdir))
        self.tunnels: list[str] = []  # host of each intercepted CONNECT; fewer than requests = keep-alive works
        self.refused: list[str] = []  # "host:port" of each refused CONNECT
        self.errors: list[str] = []  # TLS failures and fake crashes; tests assert it stays empty
        self._server: _ProxyServer | None = None
        self._thread: threading.Thread | None = None
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    @property
    def ca_path(self) -> Path:
        return self.ca.path

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the proxy is not started")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> InterceptingProxy:
        self._server = _ProxyServer(("127.0.0.1", 0), _ProxyHandler)
        self._server.proxy = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-drive-proxy", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        # Idle keep-alive tunnels would otherwise wait out IDLE_TIMEOUT in their threads.
        with self._open_lock:
            for sock in list(self._open):
                try:
                    # socket.socket's shutdown, not SSLSocket's: that one would tear down TLS state under the
                    # thread still reading from it; this just makes its read return.
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)
                except OSError:
                    pass
        if self._thread is not None:
            self._thread.join(5)
        self._server = None

    def __enter__(self) -> InterceptingProxy:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    def _track(self, sock: socket.socket) -> None:
        with self._open_lock:
            self._open.add(sock)

    def _untrack(self, sock: socket.socket) -> None:
        with self._open_lock:
            self._open.discard(sock)
