"""One run at a time per job: a Redis lock with a lease, renewed while the run is alive.

A worker that dies stops renewing, so its lease runs out and the job's next slot can run; nothing needs to
clean up after it. The lock is redis-py's (a token compared atomically on release and extend).
"""


import redis
from django.conf import settings
from redis.lock import Lock

from pointscene.core.connections import redis_client


class RunLock:
    def __init__(self, job_id: int, lease_seconds: int | None = None, client: redis.Redis | None = None) -> None:
        self.lease = lease_seconds or settings.JOBS_RUN_LOCK_LEASE
        self.client = client or redis_client()
        # Not thread-local: the worker's watcher thread renews the lease that the run's own thread took.
        self.lock = Lock(
            self.client, f"{settings.JOBS_REDIS_PREFIX}run-lock:job:{job_id}", timeout=self.lease, thread_local=False
        )

    def acquire(self) -> bool:
        return self.lock.acquire(blocking=False)

    def renew(self) -> bool:
        """Restarts the lease; False if the lock was lost (the lease ran out while this process stalled)."""
        try:
            return self.lock.reacquire()
        except redis.exceptions.LockError:
            return False

    def release(self) -> None:
        try:
            self.lock.release()
        except redis.exceptions.LockError:
            pass


def cancel_key(run_id: int) -> str:
    return f"{settings.JOBS_REDIS_PREFIX}cancel:run:{run_id}"


def request_cancel(run_id: int, client: redis.Redis | None = None) -> None:
    """Tells whichever worker runs `run_id` to stop it. A signal, not state: the worker records the outcome."""
    (client or redis_client()).set(cancel_key(run_id), "1", ex=24 * 3600)


def cancel_requested(run_id: int, client: redis.Redis | None = None) -> bool:
    return bool((client or redis_client()).exists(cancel_key(run_id)))
