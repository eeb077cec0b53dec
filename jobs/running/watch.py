"""The watch beside a running run: renews the job lock's lease, writes the run's heartbeat, notices a cancel
request or the time limit, and then stops the run's steps (their child processes included). One thread per
process keeps every watch of that process."""

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from django.conf import settings
from django.db import connection

from jobs.models import JobHistory, RunStatus
from jobs.running.locks import RunLock, cancel_requested

log = logging.getLogger(__name__)


def _renew_every() -> float:
    return max(1.0, settings.JOBS_RUN_LOCK_LEASE / 3)


def _flush_every() -> float:
    return max(1.0, settings.JOBS_PROGRESS_SECONDS)


class Watch:
    """Beside a running run: renews the job's lock lease, notices cancellation and the time limit, and then
    stops the run's steps (their child processes included).

    A Watch is looked after by its process's one watcher thread (_Watcher), once a second from its start: a thread
    of its own per run cost the cheapest run a tenth of its worker CPU (starting it and joining it), for a run that
    is usually over before its first look (docs/benchmarks.md, Fleet)."""

    POLL_SECONDS = 1.0

    def __init__(
        self,
        run_id: int,
        lock: RunLock | None,
        limit_seconds: int,
        flush: Callable[[], None] | None = None,
        going: Callable[[], None] | None = None,
    ) -> None:
        self.run_id = run_id
        self.lock = lock
        # Stores the log so far, every JOBS_PROGRESS_SECONDS: readers see a long run's log while it goes on.
        self.flush = flush
        # Called once, at the first look, if the run is still going then: what a short run's end does anyway
        # (its job's lastRun) is done early only for runs that last.
        self.going = going
        self.deadline = time.monotonic() + limit_seconds
        self.stop_event = threading.Event()
        self.reason: str | None = None
        self.processes: list = []
        self.next_look = 0.0
        # Held while the watcher looks at this run: stop() waits for a look in progress to end.
        self._looking = threading.Lock()
        self._stopped = False

    def start(self) -> None:
        now = time.monotonic()
        self.next_look = now + self.POLL_SECONDS
        self._next_renew = now + _renew_every()
        self._next_flush = now + _flush_every()
        _watcher().add(self)

    def stop(self) -> None:
        """No look at this run starts after this returns, and one in progress is waited for (5 s at most)."""
        _watcher().remove(self)
        if self._looking.acquire(timeout=5):
            self._stopped = True
            self._looking.release()

    def look(self, now: float) -> None:
        """One look at the run, by the watcher thread."""
        with self._looking:
            if self._stopped:
                return
            try:
                self._look(now)
            finally:
                # Even after a failed look: the next one comes a second later, not at once.
                self.next_look = time.monotonic() + self.POLL_SECONDS

    def _look(self, now: float) -> None:
        # The limit and a cancel first: the writes below may wait on the database.
        if now >= self.deadline:
            self._halt("time limit")
        elif self._cancel_requested():
            self._halt("cancelled")
        if self.going is not None and not self.stop_event.is_set():
            self._call(self.going, "note that it is going")
            self.going = None
        if now >= self._next_renew:
            self._renew()
            self._next_renew = now + _renew_every()
        if self.flush is not None and now >= self._next_flush:
            # The whole log is stored at the end anyway; a storage hiccup now only delays what readers see.
            self._call(self.flush, "store its log so far")
            self._next_flush = time.monotonic() + _flush_every()

    def _renew(self) -> None:
        if self.lock is not None:
            try:
                if not self.lock.renew():
                    log.warning("run %s: its job lock lease ran out; another run may start", self.run_id)
            except Exception:
                log.warning("run %s: could not renew the job lock", self.run_id, exc_info=True)
        # The heartbeat is what tells the sweeper this run still has a worker; it lives in the database,
        # so a Redis flush cannot make a live run look dead.
        try:
            JobHistory.objects.filter(pk=self.run_id, status=RunStatus.RUNNING).update(heartbeat_at=datetime.now(UTC))
        except Exception:
            log.warning("run %s: could not write its heartbeat", self.run_id, exc_info=True)
            connection.close()

    def _call(self, what: Callable[[], None], doing: str) -> None:
        """Best effort: trouble is logged, and this thread's connection dropped in case it was the cause."""
        try:
            what()
        except Exception:
            log.warning("run %s: could not %s", self.run_id, doing, exc_info=True)
            connection.close()

    def _cancel_requested(self) -> bool:
        try:
            return cancel_requested(self.run_id)
        except Exception:
            log.warning("run %s: could not check for cancellation", self.run_id, exc_info=True)
            return False

    def _halt(self, reason: str) -> None:
        if self.stop_event.is_set():
            return
        self.reason = reason
        self.stop_event.set()
        for process in list(self.processes):
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                pass


class _Watcher(threading.Thread):
    """The process's one thread that looks at its running runs, each once a second from its start. A prefork
    worker's process has one run at a time; in a threaded pool the runs of a process take turns, so one run's slow
    write (a log store, a database wait) delays the others' looks by as much."""

    def __init__(self) -> None:
        super().__init__(daemon=True, name="run-watcher")
        self.pid = os.getpid()
        self.watches: list[Watch] = []
        self.guard = threading.Lock()

    # Adding and removing a watch wake nobody (a wake-up costs a short run more than the rest of its watch): the
    # thread sleeps POLL_SECONDS at most, so it still sees a new watch in time for its first look, a second after
    # its start, and lets its database connection go within a second once nothing is left to watch.
    def add(self, watch: Watch) -> None:
        with self.guard:
            self.watches.append(watch)

    def remove(self, watch: Watch) -> None:
        with self.guard:
            if watch in self.watches:
                self.watches.remove(watch)

    def run(self) -> None:
        looked = False
        while True:
            with self.guard:
                now = time.monotonic()
                due = [w for w in self.watches if w.next_look <= now]
                soonest = min((w.next_look for w in self.watches), default=now + Watch.POLL_SECONDS)
                idle = not self.watches
            if due:
                # Retired as Django retires a request's connection: past CONN_MAX_AGE, or found broken (a health
                # check at its next use). A process whose runs follow each other may never leave this thread idle,
                # where its connection is let go (below).
                self._safely(connection.close_if_unusable_or_obsolete, "check its database connection")
                for watch in due:
                    self._safely(lambda watch=watch: watch.look(time.monotonic()), f"look at run {watch.run_id}")
                looked = True
            elif idle and looked:
                # Nobody left to look after: this thread's own database connection is let go until there is.
                self._safely(connection.close, "close its database connection")
                looked = False
            else:
                time.sleep(min(soonest - now, Watch.POLL_SECONDS))

    @staticmethod
    def _safely(what: Callable[[], None], doing: str) -> None:
        # Nothing may end this thread: every run of the process would go unwatched (no heartbeat, no lease
        # renewal, no cancel, no time limit).
        try:
            what()
        except Exception:
            log.exception("run watcher: could not %s; carrying on", doing)
            with contextlib.suppress(Exception):
                connection.close()


_the_watcher: _Watcher | None = None
_starting = threading.Lock()


def _watcher() -> _Watcher:
    global _the_watcher
    with _starting:
        # A forked child (a prefork pool process) does not have its parent's thread. A dead thread is replaced,
        # though nothing should end it (_Watcher._safely).
        if _the_watcher is None or _the_watcher.pid != os.getpid() or not _the_watcher.is_alive():
            _the_watcher = _Watcher()
            _the_watcher.start()
        return _the_watcher
