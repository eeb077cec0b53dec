"""The thread beside a running run: renews the job lock's lease, writes the run's heartbeat, notices a cancel
request or the time limit, and then stops the run's steps (their child processes included)."""

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


class Watch(threading.Thread):
    """Beside a running run: renews the job's lock lease, notices cancellation and the time limit, and then
    stops the run's steps (their child processes included)."""

    POLL_SECONDS = 1.0

    def __init__(
        self,
        run_id: int,
        lock: RunLock | None,
        limit_seconds: int,
        flush: Callable[[], None] | None = None,
        going: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(daemon=True, name=f"watch-run-{run_id}")
        self.run_id = run_id
        self.lock = lock
        # Stores the log so far, every JOBS_PROGRESS_SECONDS: readers see a long run's log while it goes on.
        self.flush = flush
        # Called once, at the first tick, if the run is still going then: what a short run's end does anyway
        # (its job's lastRun) is done early only for runs that last.
        self.going = going
        self.deadline = time.monotonic() + limit_seconds
        self.stop_event = threading.Event()
        self.done = threading.Event()
        self.reason: str | None = None
        self.processes: list = []

    def run(self) -> None:
        renew_every = max(1.0, settings.JOBS_RUN_LOCK_LEASE / 3)
        flush_every = max(1.0, settings.JOBS_PROGRESS_SECONDS)
        next_renew = time.monotonic() + renew_every
        next_flush = time.monotonic() + flush_every
        going = self.going
        try:
            while not self.done.wait(self.POLL_SECONDS):
                now = time.monotonic()
                # The limit and a cancel first: the writes below may wait on the database.
                if now >= self.deadline:
                    self._halt("time limit")
                elif self._cancel_requested():
                    self._halt("cancelled")
                if going is not None and not self.stop_event.is_set():
                    self._call(going, "note that it is going")
                    going = None
                if now >= next_renew:
                    self._renew()
                    next_renew = now + renew_every
                if self.flush is not None and now >= next_flush:
                    # The whole log is stored at the end anyway; a storage hiccup now only delays what readers see.
                    self._call(self.flush, "store its log so far")
                    next_flush = time.monotonic() + flush_every
        finally:
            # This thread's own database connection.
            connection.close()

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

    def stop(self) -> None:
        self.done.set()
        self.join(timeout=5)
