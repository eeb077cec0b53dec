"""A network round trip between a benchmark's client and its server, both on loopback (bench/sync.py --rtt-ms).

Linux's netem (tc-netem(8)) delays the packets to and from one TCP port only: a prio qdisc on `lo` with a fourth
band that the priority map sends nothing to, netem on that band, and two u32 filters (destination port, source
port) that put the server's packets there. PostgreSQL, Redis and the rest of loopback keep their speed. Needs root
and the sch_netem module; an existing root qdisc on `lo` is left alone (the benchmark refuses instead).
"""

import shutil
import subprocess
from collections.abc import Callable

# tc's default priority map (bands 0-2), so that traffic other than the server's is queued as without us.
DEFAULT_PRIOMAP = "1 2 2 2 1 2 0 0 1 1 1 1 1 1 1 1".split()


class NetemUnavailable(RuntimeError):
    pass


def _tc(*args: str) -> None:
    done = subprocess.run(["tc", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise NetemUnavailable(f"tc {' '.join(args)}: {done.stderr.strip() or done.returncode}")


def delay_port(port: int, rtt_ms: float) -> Callable[[], None]:
    """Delays every packet to or from 127.0.0.1:`port` by half of `rtt_ms`; returns what undoes it."""
    if shutil.which("tc") is None:
        raise NetemUnavailable("tc (iproute2) is not installed")
    _tc("qdisc", "add", "dev", "lo", "root", "handle", "1:", "prio", "bands", "4", "priomap", *DEFAULT_PRIOMAP)

    def undo() -> None:
        subprocess.run(["tc", "qdisc", "del", "dev", "lo", "root", "handle", "1:"], capture_output=True)

    try:
        # A big queue: netem's default (1,000 packets) would drop a full sync's packets while they wait.
        _tc(
            "qdisc",
            "add",
            "dev",
            "lo",
            "parent",
            "1:4",
            "handle",
            "40:",
            "netem",
            "limit",
            "100000",
            "delay",
            f"{rtt_ms / 2}ms",
        )
        for field in ("dport", "sport"):
            _tc(
                "filter",
                "add",
                "dev",
                "lo",
                "protocol",
                "ip",
                "parent",
                "1:0",
                "prio",
                "1",
                "u32",
                "match",
                "ip",
                field,
                str(port),
                "0xffff",
                "flowid",
                "1:4",
            )
    except NetemUnavailable:
        undo()
        raise
    return undo
