"""A network round trip in front of the bench's S3 server, for a machine whose kernel has no netem qdisc.

    python bench/delayline.py --port LISTEN --target PORT --one-way-ms D

A TCP relay on 127.0.0.1: every chunk read from one side is written to the other side D ms after it arrived, in
order, in both directions, so a request and its answer take at least 2*D ms more than on plain loopback, as they
would to an object store that far away. What it does not model: bandwidth, loss, and TCP's window over a long path
(each side acknowledges at loopback speed, as over a fat pipe). It costs CPU on this machine, which a real network
would not; bench/sync.py counts it with the server's CPU and the report says so. Timers follow asyncio's, which rounds
a wait up to the millisecond, so a delay is D ms or a little more.

Used by bench/sync.py --rtt-ms through `start`; run on its own, it relays until killed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import sys
from pathlib import Path

if __package__ is None:  # run as a script (by `start`): the repository root, for bench.harness
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import Process, free_port, wait_for_port

CHUNK = 256 * 1024
# Chunks held per direction before reading stops: an in-flight window of at most 16 MiB, so a fast sender cannot
# fill this process's memory while the other side is slower.
WINDOW = 64


async def _carry(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    loop = asyncio.get_running_loop()
    held: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(WINDOW)

    async def deliver() -> None:
        while True:
            due, data = await held.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                with contextlib.suppress(OSError):
                    writer.write_eof()
                return
            writer.write(data)
            await writer.drain()

    delivering = asyncio.create_task(deliver())
    try:
        while data := await reader.read(CHUNK):
            await held.put((loop.time() + delay, data))
    except OSError:
        pass
    await held.put((loop.time() + delay, b""))
    with contextlib.suppress(OSError):
        await delivering


async def _serve(client_r, client_w, target: int, delay: float) -> None:
    try:
        server_r, server_w = await asyncio.open_connection("127.0.0.1", target)
    except OSError:
        client_w.close()
        return
    for writer in (client_w, server_w):
        # Nagle would hold a small request until the peer's delayed ACK, tens of ms, far more than the delay.
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        await asyncio.gather(_carry(client_r, server_w, delay), _carry(server_r, client_w, delay))
    finally:
        for writer in (client_w, server_w):
            writer.close()


async def _main(port: int, target: int, delay: float) -> None:
    server = await asyncio.start_server(lambda r, w: _serve(r, w, target, delay), "127.0.0.1", port, backlog=256)
    async with server:
        await server.serve_forever()


def start(target: int, rtt_ms: float, logdir: Path) -> tuple[Process, int]:
    """A delay line in its own process in front of 127.0.0.1:target: (the Process, the port to connect to)."""
    port = free_port()
    args = [sys.executable, __file__, "--port", str(port), "--target", str(target), "--one-way-ms", str(rtt_ms / 2)]
    process = Process("delay-line", args, {"PATH": "/usr/bin:/bin"}, logdir)
    wait_for_port(port, process)
    return process, port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True, help="port to listen on, on 127.0.0.1")
    parser.add_argument("--target", type=int, required=True, help="port on 127.0.0.1 to relay to")
    parser.add_argument("--one-way-ms", type=float, required=True, help="delay of every chunk, each way")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(args.port, args.target, args.one_way_ms / 1000))


if __name__ == "__main__":
    main()
