"""bench/delayline.py, the round trip bench/sync.py --rtt-ms puts in front of its S3 server: it must delay, and it
must carry every byte in order both ways, or the sync bench would measure a broken network."""

import hashlib
import os
import socket
import threading
import time

import pytest

from bench import delayline


@pytest.fixture
def answering_server():
    """A loopback server that answers each connection's bytes with their SHA-256 once the client half-closes,
    after sending back a first byte as soon as anything arrives."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve(conn: socket.socket) -> None:
        with conn:
            digest = hashlib.sha256()
            first = True
            while data := conn.recv(1 << 16):
                if first:
                    conn.sendall(b"!")
                    first = False
                digest.update(data)
            conn.sendall(digest.hexdigest().encode())

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield listener.getsockname()[1]
    listener.close()


@pytest.fixture
def line(answering_server, tmp_path):
    process, port = delayline.start(answering_server, rtt_ms=40, logdir=tmp_path)
    yield port
    process.stop(timeout=5)


def test_it_adds_the_round_trip_to_a_request(line):
    with socket.create_connection(("127.0.0.1", line)) as sock:
        started = time.monotonic()
        sock.sendall(b"x")
        assert sock.recv(1) == b"!"
        elapsed = time.monotonic() - started
    assert elapsed >= 0.040


def test_it_carries_every_byte_in_order_both_ways_and_passes_the_half_close(line):
    body = os.urandom(24 << 20)  # more than the line holds in flight, so its window must make the sender wait
    with socket.create_connection(("127.0.0.1", line)) as sock:
        sender = threading.Thread(target=lambda: (sock.sendall(body), sock.shutdown(socket.SHUT_WR)))
        sender.start()
        answer = b""
        while data := sock.recv(1 << 16):
            answer += data
        sender.join()
    assert answer == b"!" + hashlib.sha256(body).hexdigest().encode()
