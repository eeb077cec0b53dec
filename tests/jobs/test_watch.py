"""jobs/running/watch.py: one watcher thread per process looks after every running run of that process, each a
second after its start and every second after that, and never again once the run stopped its watch."""

import threading
import time

import pytest

from jobs.running.locks import request_cancel
from jobs.running.watch import Watch

pytestmark = pytest.mark.usefixtures("clean_redis")


class Seen:
    """When, and on which thread, a watch's `going` callback ran."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, str]] = []
        self.called = threading.Event()

    def __call__(self) -> None:
        self.calls.append((time.monotonic(), threading.current_thread().name))
        self.called.set()


def watch(run_id: int, seen: Seen | None = None, limit: int = 3600) -> Watch:
    return Watch(run_id, lock=None, limit_seconds=limit, going=seen)


def watchers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "run-watcher"]


def test_it_looks_after_every_run_of_a_process_from_one_thread():
    seen = [Seen(), Seen(), Seen()]
    watches = [watch(900_001 + i, s) for i, s in enumerate(seen)]
    started = time.monotonic()
    for w in watches:
        w.start()
    try:
        assert all(s.called.wait(10) for s in seen)
    finally:
        for w in watches:
            w.stop()

    assert {name for s in seen for _, name in s.calls} == {"run-watcher"}
    assert len(watchers()) == 1
    # The first look comes a second after the start, not at once (a short run never sees its watch act).
    assert min(at for s in seen for at, _ in s.calls) - started >= Watch.POLL_SECONDS * 0.99


def test_a_stopped_watch_is_not_looked_at_again():
    seen = Seen()
    w = watch(900_010, seen)
    w.start()
    w.stop()

    assert not seen.called.wait(Watch.POLL_SECONDS * 2.5)


def test_it_stops_the_run_at_its_time_limit():
    w = watch(900_020, limit=0)
    w.start()
    try:
        assert w.stop_event.wait(10)
    finally:
        w.stop()

    assert w.reason == "time limit"


def test_it_stops_the_run_when_asked_to_cancel():
    w = watch(900_030)
    w.start()
    try:
        request_cancel(900_030)
        assert w.stop_event.wait(10)
    finally:
        w.stop()

    assert w.reason == "cancelled"


class Failing(Watch):
    """A watch whose looks raise (as an unexpected error in a renewal or a kill would)."""

    def _look(self, now: float) -> None:
        self.failed = getattr(self, "failed", 0) + 1
        raise OSError("boom")


def test_a_look_that_raises_leaves_the_thread_watching_the_others():
    failing = Failing(900_040, lock=None, limit_seconds=3600)
    seen = Seen()
    healthy = watch(900_041, seen)
    started = time.monotonic()
    failing.start()
    healthy.start()
    try:
        assert seen.called.wait(10)
        time.sleep(Watch.POLL_SECONDS * 1.5)
    finally:
        failing.stop()
        healthy.stop()
    watched = time.monotonic() - started

    assert len(watchers()) == 1
    # Once a second, not in a loop: a failed look still waits for its next turn.
    assert 1 <= failing.failed <= watched / Watch.POLL_SECONDS + 1
