"""bench/sync.py's fixtures: the generated tree, the `rclone serve s3` it syncs to, rclone's command lines and logs,
and the worker's log handling replayed in-process (the pipe variants, the per-line cost)."""

import json
import os
import random
import secrets
import statistics
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from bench import delayline
from bench.harness import (
    Process,
    cpu_of,
    free_port,
    wait_for_port,
)


@dataclass(frozen=True)
class TreeShape:
    small_files: int
    small_min: int
    small_max: int
    big_files: int
    big_size: int
    per_folder: int = 100

    def bytes_at_most(self) -> int:
        return self.small_files * self.small_max + self.big_files * self.big_size


FULL = TreeShape(10_000, 1024, 64 * 1024, 20, 50 * 1024 * 1024)
SMOKE = TreeShape(200, 1024, 64 * 1024, 1, 4 * 1024 * 1024)  # --smoke: a few seconds per variant
MTIME = 1_767_225_600  # 2026-01-01 UTC: fixed, so every generated tree is the same
LOG_FLAGS = {"--use-json-log": 0, "--log-level": 1, "--stats": 1, "--stats-log-level": 1}  # flag -> values after it


def generate_tree(root: Path, seed: int, shape: TreeShape) -> tuple[int, int]:
    """The benchmark's tree; returns (files, bytes). Same seed, same tree (content, sizes, names, mtimes)."""
    rng = random.Random(seed)
    files = total = 0
    for i in range(shape.small_files):
        folder = root / "small" / f"d{i // shape.per_folder:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        size = rng.randint(shape.small_min, shape.small_max)
        path = folder / f"f{i:05d}.bin"
        path.write_bytes(rng.randbytes(size))
        os.utime(path, (MTIME, MTIME))
        files, total = files + 1, total + size
    (root / "big").mkdir()
    for i in range(shape.big_files):
        path = root / "big" / f"b{i:02d}.bin"
        path.write_bytes(rng.randbytes(shape.big_size))
        os.utime(path, (MTIME, MTIME))
        files, total = files + 1, total + shape.big_size
    return files, total


def tree_size(root: Path) -> tuple[int, int]:
    files = total = 0
    for folder, _, names in os.walk(root):
        for name in names:
            files += 1
            total += os.stat(os.path.join(folder, name)).st_size
    return files, total


@dataclass
class Server:
    process: Process
    root: Path
    port: int
    user: str
    password: str
    delay: Process | None = None  # bench/delayline.py in front of the server (--rtt-ms); `port` is then its port

    def cpu(self) -> float:
        """CPU seconds so far of the server, and of the delay line in front of it if there is one."""
        return sum(cpu_of(p.pid)[0] for p in (self.process, self.delay) if p is not None)

    def remote(self) -> dict:
        """addJobConfig settings for it (tests/fixtures/rclone.py's)."""
        return {
            "type": "s3",
            "provider": "Rclone",
            "endpoint": f"http://127.0.0.1:{self.port}",
            "access_key_id": self.user,
            "secret_access_key": self.password,
        }


def serve_s3(root: Path, logdir: Path, rtt_ms: float = 0.0) -> Server:
    from configs import rclone

    (root / "bucket").mkdir(parents=True)
    port = free_port()
    user, password = f"user-{secrets.token_hex(4)}", f"pw-{secrets.token_hex(12)}"
    command = [rclone.binary(), "serve", "s3", str(root), "--addr", f"127.0.0.1:{port}", "--config", os.devnull]
    process = Process("serve-s3", [*command, "--auth-key", f"{user},{password}"], dict(os.environ), logdir)
    wait_for_port(port, process)
    delay = None
    if rtt_ms:
        delay, port = delayline.start(port, rtt_ms, logdir)
    return Server(process=process, root=root, port=port, user=user, password=password, delay=delay)


def strip_log_flags(command: list[str]) -> list[str]:
    out, skip = [], 0
    for arg in command:
        if skip:
            skip -= 1
            continue
        if arg in LOG_FLAGS:
            skip = LOG_FLAGS[arg]
            continue
        out.append(arg)
    return out


def log_flags_of(command: list[str]) -> list[str]:
    """The log flags (with their values) that strip_log_flags takes out."""
    kept = strip_log_flags(command)
    out, i = [], 0
    for arg in command:
        if i < len(kept) and arg == kept[i]:
            i += 1
        else:
            out.append(arg)
    return out


def final_stats(text: str) -> dict:
    """rclone's last stats block in a JSON log."""
    stats: dict = {}
    for line in text.splitlines():
        if '"stats"' in line:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry.get("stats"), dict):
                stats = entry["stats"]
    return stats


def stream_like_a_job(
    command: list[str], env: dict, sections: dict, batch_seconds: float | None = None
) -> tuple[int, dict, int, int]:
    """Runs rclone and reads its output the way session.run_rclone does (same parsing, redaction and RunLog), here in
    the benchmark process: the pipe and the Python reader without Celery, Django or the database.

    batch_seconds=None reads line by line, as _run does: the reader wakes for nearly every line rclone writes.
    With batch_seconds, it sleeps that long between reads and takes whatever piled up in the pipe (up to 1 MiB):
    a suggested change to _run, measured here. Returns (exit code, final stats, lines, characters of the messages).
    """
    from configs.runtime import redactor, secret_values
    from jobs.running.logs import RunLog
    from jobs.sync.rclone import format_line

    redact = redactor(secret_values(sections))
    run_log, stats, lines, size = RunLog(), {}, 0, 0

    def take(line: str) -> None:
        nonlocal lines, size
        if line:
            message = redact(format_line(line, stats))
            run_log.line(message)
            lines, size = lines + 1, size + len(message)

    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    if batch_seconds is None:
        for raw in process.stdout:
            take(raw.decode(errors="replace").rstrip("\n"))
    else:
        fd, rest = process.stdout.fileno(), b""
        while True:
            time.sleep(batch_seconds)
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            *complete, rest = (rest + chunk).split(b"\n")
            for raw in complete:
                take(raw.decode(errors="replace"))
        take(rest.decode(errors="replace"))
    code = process.wait()
    process.stdout.close()
    run_log.close()
    return code, stats, lines, size


def streaming_cost(log_file: Path, sections: dict, password: str) -> dict:
    """CPU the worker spends per rclone log line (jobs.sync.rclone: parse, format, redact, RunLog.line), replayed here
    from a captured job-cmd log, without rclone or pipes."""
    from configs.runtime import redactor, secret_values
    from jobs.running.logs import RunLog
    from jobs.sync.rclone import format_line

    lines = [line for line in log_file.read_text(errors="replace").splitlines() if line]
    redact = redactor(secret_values(sections))
    best = None
    for _ in range(3):
        run_log, stats = RunLog(), {}
        started = time.process_time()
        for line in lines:
            run_log.line(redact(format_line(line, stats)))
        spent = time.process_time() - started
        run_log.close()
        best = spent if best is None else min(best, spent)
    parse = time.process_time()
    for line in lines:
        json.loads(line)
    parse = time.process_time() - parse
    return {"lines": len(lines), "seconds": best, "json_seconds": parse, "per_line_us": best / len(lines) * 1e6}


def first_call_cost() -> dict:
    """What a worker process pays once: `rclone config providers` (configs.rclone.backends, cached per process)."""
    from configs import rclone

    times = []
    for _ in range(3):
        rclone.backends.cache_clear()
        started = time.monotonic()
        rclone.backends()
        times.append(time.monotonic() - started)
    return {"config_providers_seconds": statistics.median(times)}
