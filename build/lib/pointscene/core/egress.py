"""Where tenant-steered connections are made: one policy, checked after DNS at connect time, for every connection.

`EgressPolicy.connect(host, port)` resolves a name once, refuses unless every address is public
(pointscene.core.addresses), and connects to the address it checked, so a name cannot resolve to a public address
for the check and to loopback for the connection (DNS rebinding). Two ways in, one decision:

- in this process (http.request steps, webhooks): `hardened_session()` in jobs/ops/outbound.py connects through
  `EgressPolicy.connect`;
- for rclone, which is another process, `EgressProxy` serves SOCKS5 (RFC 1928, CONNECT only, no auth) on loopback
  for the length of one step. rclone's HTTP client is pointed at it with `--http-proxy socks5://...` (every
  connection, redirects, retries, multipart parts and token refreshes included; Go then never resolves the name
  itself), clients built on Go's default transport through ALL_PROXY/HTTPS_PROXY, and sftp/ftp through their
  `socks_proxy` option.

Every refusal reads "destination not allowed", whether the name did not resolve or resolved to a private address,
and it comes before any connection is tried, so an open and a closed private port read alike: a tenant learns
nothing about the worker's network from a failed run. Only a destination that passed the check (public) can fail
as "connection refused".
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import logging
import os
import socket
import struct
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import dns.resolver

from pointscene.core.addresses import Address, NotAllowed, is_public, parse_host

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 15.0
_BUFFER = 256 * 1024
Resolver = Callable[[str, int], list[Address]]


def parse_host_or_none(host: str):
    try:
        return parse_host(host)
    except NotAllowed:
        return None


def system_resolver(host: str, port: int) -> list[Address]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]


def dns_resolver(servers: list[str]) -> Resolver:
    """Resolution through the given DNS servers (host or host:port), A and AAAA, for operators who point
    workers' tenant traffic at a resolver of their own (JOBS_EGRESS_DNS_SERVERS)."""
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [s.rsplit(":", 1)[0] if s.count(":") == 1 else s for s in servers]
    ports = {int(s.rsplit(":", 1)[1]) for s in servers if s.count(":") == 1}
    if ports:
        resolver.port = ports.pop()
    resolver.lifetime = 5.0

    def resolve(host: str, port: int) -> list[Address]:
        found: list[Address] = []
        for kind in ("A", "AAAA"):
            try:
                found += [ipaddress.ip_address(r.to_text()) for r in resolver.resolve(host, kind, search=False)]
            except (dns.resolver.NoAnswer, dns.resolver.NXDOMAIN):
                continue
        if not found:
            raise OSError(f"{host} does not resolve")
        return found

    return resolve


@dataclass(frozen=True)
class EgressPolicy:
    """Who may be connected to on a tenant's behalf.

    allow_private: the single-tenant switch (CONFIGS_ALLOW_LOCAL_REMOTES / JOBS_HTTP_ALLOW_PRIVATE): any address.
    allowed: exact (host, port) pairs the service itself vouches for (the ACC bridge of this step, the service's own
        storage, operator exceptions in JOBS_EGRESS_ALLOW), matched against the host as requested.
    upstream: an operator's HTTP CONNECT proxy (the worker's HTTPS_PROXY) to reach the internet through; it is
        asked for the checked address, never the name (allowed pairs go by name).
    """

    allow_private: bool = False
    allowed: frozenset[tuple[str, int]] = frozenset()
    upstream: str = ""
    resolver: Resolver = field(default=system_resolver, compare=False)

    def with_allowed(self, pairs: Iterable[tuple[str, int]]) -> EgressPolicy:
        return EgressPolicy(
            self.allow_private, self.allowed | {(h.lower(), p) for h, p in pairs}, self.upstream, self.resolver
        )

    def addresses(self, host: str, port: int) -> list[Address]:
        """The checked addresses to connect to for host:port, or NotAllowed."""
        allowed = (host.lower().strip("[]"), port) in self.allowed
        try:
            parsed = parse_host(host)
        except NotAllowed:
            if not (allowed or self.allow_private):
                raise
            parsed = None
        if parsed is not None and parsed.address is not None:
            found = [parsed.address]
        else:
            try:
                found = self.resolver(host, port)
            except (OSError, UnicodeError, ValueError):
                raise NotAllowed() from None
        if not found or not (allowed or self.allow_private or all(is_public(a) for a in found)):
            raise NotAllowed()
        return found

    def refuses_without_dns(self, host: str, port: int) -> bool:
        """Whether host:port is refused whatever DNS says: a host that does not parse, a name local by convention,
        or a literal non-public address. What validation can tell a tenant before a run (names are decided at
        connect time, so a name passing here may still be refused then)."""
        if self.allow_private or (host.lower().strip("[]"), port) in self.allowed:
            return False
        try:
            parsed = parse_host(host)
        except NotAllowed:
            return True
        return parsed.address is not None and not is_public(parsed.address)

    def connect(self, host: str, port: int, timeout: float | None = CONNECT_TIMEOUT) -> socket.socket:
        """A connected socket to host:port, to an address this policy checked. NotAllowed when the destination is
        refused (before any connection is tried, so an open and a closed private port read alike); OSError when a
        checked destination does not answer, which says nothing about the worker's own network.

        With an upstream proxy, public destinations go through it, asked for the checked address rather than the
        name (it would resolve the name again, and its own rules may let private destinations through; TLS still
        verifies the name, since the client's handshake runs inside the tunnel). Private destinations this policy
        lets through (the service's own, or any in single-tenant mode) are connected to directly, as NO_PROXY would.
        """
        if not 0 < port < 65536:
            raise NotAllowed()
        try:
            found = self.addresses(host, port)
        except NotAllowed:
            if self.upstream and self.allow_private and parse_host_or_none(host) is not None:
                return self._via_upstream(host, port, timeout)  # single-tenant: the upstream may know the name
            raise
        public = [a for a in found if is_public(a)]
        if self.upstream and public:
            return self._via_upstream(host if self.allow_private else str(public[0]), port, timeout)
        failure: OSError = OSError(f"could not connect to {host}:{port}")
        for address in found:
            try:
                return socket.create_connection((str(address), port), timeout=timeout)
            except OSError as exc:
                failure = exc
        raise failure

    def _via_upstream(self, target_host: str, port: int, timeout: float | None) -> socket.socket:
        proxy = urlsplit(self.upstream)
        sock = socket.create_connection((proxy.hostname, proxy.port or 80), timeout=timeout)
        target = f"[{target_host}]:{port}" if ":" in target_host else f"{target_host}:{port}"
        sock.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
        answer = b""
        while b"\r\n\r\n" not in answer and len(answer) < 16384:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
        if not answer.startswith((b"HTTP/1.1 200", b"HTTP/1.0 200")):
            sock.close()
            raise ConnectionRefusedError(f"the upstream proxy refused {target}")
        return sock


def parse_allowances(entries: Iterable[str]) -> frozenset[tuple[str, int]]:
    """JOBS_EGRESS_ALLOW entries (host:port, [v6]:port) as (host, port) pairs; ValueError for a malformed one."""
    found = set()
    for entry in entries:
        host, _, port = entry.strip().rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"JOBS_EGRESS_ALLOW: {entry!r} is not host:port")
        found.add((host.strip("[]").lower(), int(port)))
    return frozenset(found)


class EgressProxy:
    """A SOCKS5 server on 127.0.0.1 whose every CONNECT goes through `policy.connect`. One per rclone step:
    `with EgressProxy(policy) as proxy: ... proxy.url ...`."""

    def __init__(self, policy: EgressPolicy) -> None:
        self.policy = policy
        self.refused = 0
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port = self._listener.getsockname()[1]
        self._closed = threading.Event()
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, name="egress-proxy", daemon=True)

    @property
    def hostport(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"socks5://{self.hostport}"

    def __enter__(self) -> EgressProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._closed.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self._lock:
            for sock in list(self._open):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(5)

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), name="egress-conn", daemon=True).start()

    def _track(self, sock: socket.socket, add: bool) -> None:
        with self._lock:
            (self._open.add if add else self._open.discard)(sock)

    def _serve(self, client: socket.socket) -> None:
        self._track(client, True)
        upstream = None
        try:
            client.settimeout(30)
            host, port = _socks_request(client)
            try:
                upstream = self.policy.connect(host, port)
            except NotAllowed:
                self.refused += 1
                # 0x02: "connection not allowed by ruleset", the same for every refused destination.
                client.sendall(b"\x05\x02\x00\x01\x00\x00\x00\x00\x00\x00")
                return
            except OSError:
                # 0x05: "connection refused", for a checked destination that did not answer.
                client.sendall(b"\x05\x05\x00\x01\x00\x00\x00\x00\x00\x00")
                return
            self._track(upstream, True)
            for sock in (client, upstream):
                # Without it, Nagle holds a relayed request's small header write until the peer's delayed ACK
                # (40 ms on Linux), once per request: ten thousand small files took six times as long.
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            client.sendall(b"\x05\x00\x00\x01\x00\x00\x00\x00\x00\x00")
            client.settimeout(None)
            upstream.settimeout(None)
            _relay(client, upstream)
        except (OSError, ValueError):
            return
        finally:
            for sock in (client, upstream):
                if sock is not None:
                    self._track(sock, False)
                    sock.close()


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ValueError("client closed")
        data += chunk
    return data


def _socks_request(client: socket.socket) -> tuple[str, int]:
    """Reads a SOCKS5 greeting (answering "no authentication") and a CONNECT request: the requested host, port."""
    version, count = _recv_exact(client, 2)
    methods = _recv_exact(client, count)
    if version != 5 or 0 not in methods:
        client.sendall(b"\x05\xff")
        raise ValueError("not SOCKS5 without authentication")
    client.sendall(b"\x05\x00")
    version, command, _, kind = _recv_exact(client, 4)
    if kind == 1:
        host = str(ipaddress.IPv4Address(_recv_exact(client, 4)))
    elif kind == 4:
        host = str(ipaddress.IPv6Address(_recv_exact(client, 16)))
    elif kind == 3:
        host = _recv_exact(client, _recv_exact(client, 1)[0]).decode("idna")
    else:
        raise ValueError("unknown address type")
    (port,) = struct.unpack("!H", _recv_exact(client, 2))
    if version != 5 or command != 1:
        client.sendall(b"\x05\x07\x00\x01\x00\x00\x00\x00\x00\x00")  # command not supported
        raise ValueError("only CONNECT")
    return host, port


def _relay(a: socket.socket, b: socket.socket) -> None:
    """Copies bytes both ways until both sides are done; half-closes pass through (HTTP/1.0, FTP data)."""
    other = threading.Thread(target=_pump, args=(b, a), name="egress-pump", daemon=True)
    other.start()
    _pump(a, b)
    other.join()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    """Copies one direction until EOF. On Linux the bytes go socket -> pipe -> socket in the kernel (splice), never
    through Python objects, and the GIL is released while they move."""
    try:
        if hasattr(os, "splice"):
            _splice(source, sink)
        else:
            buffer = memoryview(bytearray(_BUFFER))
            while n := source.recv_into(buffer):
                sink.sendall(buffer[:n])
    except OSError:
        pass
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


def _splice(source: socket.socket, sink: socket.socket) -> None:
    read_end, write_end = os.pipe()
    try:
        with contextlib.suppress(OSError):
            fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, _BUFFER)
        while n := os.splice(source.fileno(), write_end, _BUFFER):
            while n:
                n -= os.splice(read_end, sink.fileno(), n)
    finally:
        os.close(read_end)
        os.close(write_end)


def proxy_environment(proxy: EgressProxy) -> dict[str, str]:
    """Environment that sends clients built on Go's default transport through the proxy too (Go reads
    socks5:// in these variables). Loopback literals skip such proxies in Go, which is why literal addresses are
    also refused before rclone starts."""
    return {name: proxy.url for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy")} | {
        "NO_PROXY": "",
        "no_proxy": "",
    }


def upstream_from_environment() -> str:
    """The operator's own proxy for the worker (HTTPS_PROXY), which tenant traffic then goes through."""
    return os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy") or ""
