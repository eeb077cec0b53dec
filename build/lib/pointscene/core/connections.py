"""The service's own Redis (REDIS_URL): locks, cancel signals, token refresh locks, health and metrics."""

import os

import redis
from django.conf import settings

_clients: dict[tuple[int, str], redis.Redis] = {}


def redis_client() -> redis.Redis:
    """One connection pool per process (prefork children included) instead of a new connection per run."""
    key = (os.getpid(), settings.REDIS_URL)
    client = _clients.get(key)
    if client is None:
        client = _clients[key] = redis.Redis.from_url(settings.REDIS_URL)
    return client
