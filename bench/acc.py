"""ACC -> local through the worker's WebDAV bridge, against the same tree served by a plain `rclone serve webdav`.

The bridge (jobs/sync/acc/bridge.py) serves the fake APS server (tests/fakes/aps.py) to rclone; the reference serves
the same files from a folder with rclone's own WebDAV server. Both are read by the same rclone binary with the
same flags into an empty folder, so the difference is the bridge's own cost: its WebDAV layer, its APS calls
(folder contents pages, a signeds3download per file) and the fake's HTTP serving of the signed URLs.

    .venv/bin/python bench/acc.py [--files 2000] [--folders 100] [--big 10] [--big-mib 20] [--reps 3]

Prints one line per measurement and a summary (median of the repetitions, order alternated); no database needed.
"""

import argparse
import multiprocessing
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pointscene.settings")

import django  # noqa: E402

django.setup()

from bench.harness import Process, free_port, stop_on_exit, wait_for_port  # noqa: E402
from configs import rclone  # noqa: E402
from jobs.sync.acc.bridge import AccProject, Bridge  # noqa: E402
from jobs.sync.acc.client import ApsClient  # noqa: E402
from tests.fakes.aps import FakeAps  # noqa: E402


class StaticToken:
    """The fake's token, valid for the whole benchmark: refreshing is not what is measured."""

    def __init__(self, token: str) -> None:
        self.token = token

    def access_token(self) -> str:
        return self.token

    def refresh(self, rejected: str) -> str:
        raise RuntimeError("the benchmark's token should not expire")


def make_tree(files: int, folders: int, big: int, big_mib: int) -> dict[str, bytes]:
    rng = random.Random(42)
    tree = {f"f{i % folders:03d}/file{i:05d}.bin": rng.randbytes(rng.randint(1024, 64 * 1024)) for i in range(files)}
    tree |= {f"big/model{i:02d}.rvt": rng.randbytes(big_mib * 1024 * 1024) for i in range(big)}
    return tree


def _serve(aps: FakeAps, conn) -> None:
    aps.start()
    conn.send(aps.base_url)
    threading.Event().wait()


def serve_elsewhere(aps: FakeAps) -> tuple[str, multiprocessing.Process]:
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.get_context("fork").Process(target=_serve, args=(aps, child), daemon=True)
    process.start()
    return parent.recv(), process


def sync(config: Path, source: str, destination: Path) -> float:
    shutil.rmtree(destination, ignore_errors=True)
    started = time.perf_counter()
    done = subprocess.run(
        [rclone.binary(), "--config", str(config), "sync", source, str(destination)], capture_output=True, text=True
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"rclone failed ({done.returncode}): {done.stderr[-2000:]}")
    return elapsed


def write_config(path: Path, name: str, url: str, user: str = "", password: str = "", pacer: str = "1ms") -> None:
    # The same pacer on both sides (the bridge's remote uses 1 ms): rclone's 10 ms default would cap both at
    # ~90 files/s and hide the difference being measured.
    lines = [f"[{name}]", "type = webdav", f"url = {url}", "vendor = other", f"pacer_min_sleep = {pacer}"]
    if user:
        lines += [f"user = {user}", f"pass = {rclone.obscure(password)}"]
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--folders", type=int, default=100)
    parser.add_argument("--big", type=int, default=10, help="large files (of --big-mib MiB each)")
    parser.add_argument("--big-mib", type=int, default=20)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="a quick check that it works: 60 files, 1 repetition")
    args = parser.parse_args()
    if args.smoke:
        args.files, args.folders, args.big, args.big_mib, args.reps = 60, 6, 1, 1, 1
    stop_on_exit()

    tree = make_tree(args.files, args.folders, args.big, args.big_mib)
    total_mb = sum(map(len, tree.values())) / 1e6
    work = Path(tempfile.mkdtemp(prefix="accbench-"))
    print(f"tree: {len(tree)} files, {total_mb:.1f} MB; work dir {work}", flush=True)
    plain = work / "plain"
    for path, content in tree.items():
        (plain / path).parent.mkdir(parents=True, exist_ok=True)
        (plain / path).write_bytes(content)

    port = free_port()
    server = Process(
        "serve-webdav",
        [rclone.binary(), "serve", "webdav", str(plain), "--addr", f"127.0.0.1:{port}", "--config", os.devnull],
        dict(os.environ),
        work,
    )
    results: dict[str, list[float]] = {"bridge": [], "plain": []}
    try:
        wait_for_port(port, server)
        write_config(work / "plain.conf", "plain", f"http://127.0.0.1:{port}/")
        aps = FakeAps()
        for path, content in tree.items():
            aps.put_file(f"Project Files/{path}", content)
        token = StaticToken(aps.issue_token()["access_token"])
        # APS is another machine in production: serve the fake from its own process, so that it does not share
        # the bridge's interpreter (and its GIL).
        base_url, fake = serve_elsewhere(aps)
        try:
            for rep in range(args.reps):
                order = ["bridge", "plain"] if rep % 2 == 0 else ["plain", "bridge"]
                for kind in order:
                    if kind == "plain":
                        seconds = sync(work / "plain.conf", "plain:", work / "out")
                    else:
                        # A fresh bridge per run, as each sync step gets: its listing cache starts empty.
                        project = AccProject(ApsClient(token, base_url=base_url), aps.hub_id, aps.project_id)
                        with Bridge(project) as bridge:
                            remote = bridge.rclone_remote()
                            write_config(
                                work / "acc.conf",
                                "acc",
                                remote["url"],
                                remote["user"],
                                remote["pass"],
                                remote["pacer_min_sleep"],
                            )
                            seconds = sync(work / "acc.conf", "acc:Project Files", work / "out")
                        assert not project.errors, project.errors
                    results[kind].append(seconds)
                    print(
                        f"rep {rep + 1} {kind:6s} {seconds:7.2f} s  {len(tree) / seconds:7.1f} files/s  "
                        f"{total_mb / seconds:7.1f} MB/s",
                        flush=True,
                    )
        finally:
            fake.terminate()
            fake.join()
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)

    bridge, plain_s = statistics.median(results["bridge"]), statistics.median(results["plain"])
    n = len(tree)
    print(f"\nmedian of {args.reps}:")
    print(f"  bridge             {bridge:7.2f} s  {n / bridge:7.1f} files/s  {total_mb / bridge:7.1f} MB/s")
    print(f"  rclone serve webdav {plain_s:6.2f} s  {n / plain_s:7.1f} files/s  {total_mb / plain_s:7.1f} MB/s")
    print(f"  throughput ratio bridge/plain {plain_s / bridge:.2f} (target >= 0.8)")


if __name__ == "__main__":
    main()
