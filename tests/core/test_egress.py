"""The egress policy and its SOCKS5 proxy (pointscene/core/egress.py), with real sockets on loopback."""

import ipaddress
import socket
import struct
import threading

import pytest

from pointscene.core.addresses import NotAllowed
from pointscene.core.egress import EgressPolicy, EgressProxy, dns_resolver

REFUSED = b"\x05\x02"


class Echo:
    """A TCP server on loopback that sends back what it receives, and counts its connections."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    @staticmethod
    def _echo(conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(65536):
                conn.sendall(data)


@pytest.fixture
def echo():
    server = Echo()
    yield server
    server.sock.close()


def socks_connect(proxy: EgressProxy, host: str, port: int) -> tuple[bytes, socket.socket]:
    """A SOCKS5 CONNECT by name, as Go's client sends it: the reply's version and status bytes, and the socket."""
    sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
    sock.sendall(b"\x05\x01\x00")
    assert sock.recv(2) == b"\x05\x00"
    name = host.encode()
    sock.sendall(b"\x05\x01\x00\x03" + bytes([len(name)]) + name + struct.pack("!H", port))
    reply = sock.recv(10)
    return reply[:2], sock


def test_it_relays_both_ways_to_a_destination_it_allows(echo):
    with EgressProxy(EgressPolicy(allowed=frozenset({("127.0.0.1", echo.port)}))) as proxy:
        reply, sock = socks_connect(proxy, "127.0.0.1", echo.port)
        payload = bytes(range(256)) * 4096  # 1 MiB
        sender = threading.Thread(target=sock.sendall, args=(payload,))
        sender.start()
        received = b""
        while len(received) < len(payload):
            received += sock.recv(1 << 20)
        sender.join()
        sock.close()

    assert reply == b"\x05\x00"
    assert received == payload


def test_it_refuses_loopback_without_connecting(canary):
    with EgressProxy(EgressPolicy()) as proxy:
        reply, sock = socks_connect(proxy, "127.0.0.1", canary.port)
        sock.close()

    assert reply == REFUSED
    assert proxy.refused == 1


def test_it_answers_an_open_port_a_closed_port_and_an_unknown_name_alike(canary, fake_dns, settings):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]  # bound, not listening: connections are refused
    fake_dns.set("open.example.com", "127.0.0.1")
    policy = EgressPolicy(resolver=dns_resolver([fake_dns.server]))
    answers = []
    with EgressProxy(policy) as proxy:
        for host, port in [
            ("open.example.com", canary.port),
            ("open.example.com", closed_port),
            ("nothing-here.example.com", 443),
            ("127.0.0.1", canary.port),
        ]:
            sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
            sock.sendall(b"\x05\x01\x00")
            sock.recv(2)
            sock.sendall(b"\x05\x01\x00\x03" + bytes([len(host)]) + host.encode() + struct.pack("!H", port))
            answers.append(sock.recv(64) + sock.recv(64))  # the whole reply, then the close
            sock.close()
    closed.close()

    assert answers == [REFUSED + b"\x00\x01\x00\x00\x00\x00\x00\x00"] * 4
    assert proxy.refused == 4


def test_it_connects_to_the_address_it_checked_so_a_rebinding_name_cannot_reach_loopback(canary, fake_dns):
    fake_dns.set("rebind.example.com", "93.184.215.14", "127.0.0.1")
    resolve = dns_resolver([fake_dns.server])
    policy = EgressPolicy(resolver=resolve)

    # What a check before the connection would have seen: a public address.
    assert [str(a) for a in resolve("rebind.example.com", 443)] == ["93.184.215.14"]
    with pytest.raises(NotAllowed, match="^destination not allowed$"):
        policy.connect("rebind.example.com", canary.port)


def test_it_refuses_a_name_with_any_private_address_among_public_ones(canary):
    answers = [ipaddress.ip_address("93.184.215.14"), ipaddress.ip_address("127.0.0.1")]
    policy = EgressPolicy(resolver=lambda host, port: answers)

    with pytest.raises(NotAllowed):
        policy.connect("mixed.example.com", canary.port)


def test_it_lets_the_single_tenant_switch_reach_private_addresses(echo):
    with EgressProxy(EgressPolicy(allow_private=True)) as proxy:
        reply, sock = socks_connect(proxy, "localhost", echo.port)
        sock.sendall(b"ping")
        answer = sock.recv(4)
        sock.close()

    assert (reply, answer) == (b"\x05\x00", b"ping")


def test_it_asks_an_upstream_proxy_for_the_checked_address_and_goes_direct_to_allowed_private_ones(
    canary, echo, fake_dns
):
    asked = []
    upstream = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = upstream.accept()
        with conn:
            asked.append(conn.recv(4096).split(b"\r\n")[0])
            conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            conn.sendall(conn.recv(4))

    threading.Thread(target=serve, daemon=True).start()
    fake_dns.set("www.example.com", "93.184.215.14")
    fake_dns.set("inside.example.com", "127.0.0.1")
    policy = EgressPolicy(
        upstream=f"http://127.0.0.1:{upstream.getsockname()[1]}",
        allowed=frozenset({("127.0.0.1", echo.port)}),
        resolver=dns_resolver([fake_dns.server]),
    )

    sock = policy.connect("www.example.com", 443)
    sock.sendall(b"tick")
    assert sock.recv(4) == b"tick"
    sock.close()
    direct = policy.connect("127.0.0.1", echo.port)  # the service's own private destination: not via the proxy
    direct.sendall(b"tock")
    assert direct.recv(4) == b"tock"
    direct.close()
    for host in ("127.0.0.1", "inside.example.com"):
        with pytest.raises(NotAllowed):
            policy.connect(host, canary.port)
    upstream.close()

    # The address checked here, never the name, which the upstream would resolve again (rebinding).
    assert asked == [b"CONNECT 93.184.215.14:443 HTTP/1.1"]


def test_it_refuses_commands_other_than_connect(echo):
    with EgressProxy(EgressPolicy(allow_private=True)) as proxy:
        sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        sock.sendall(b"\x05\x01\x00")
        sock.recv(2)
        sock.sendall(b"\x05\x02\x00\x01\x7f\x00\x00\x01" + struct.pack("!H", echo.port))  # BIND
        reply = sock.recv(2)
        sock.close()

    assert reply == b"\x05\x07"
    assert echo.connections == 0
