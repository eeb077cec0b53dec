"""Redis Sentinel behind one URL, for every client of the service's Redis: the broker (kombu's sentinel transport),
RedBeat's schedule, the run locks and signals (pointscene.core.connections) and the rate limits' cache.

    sentinel://[:PASSWORD@]HOST:PORT[,HOST:PORT...][/DB]?master=NAME[&sentinel_password=SECRET]

HOST:PORT are the sentinels; NAME is the monitored primary's name (`sentinel monitor NAME ...`); PASSWORD is the
Redis servers' (primary and replicas), SECRET the sentinels' own when they require one. Each client asks the
sentinels for the current primary when it connects and again after a failover, so a REDIS_URL of this form keeps
the broker, the schedule and the locks working when the primary dies and a replica is promoted.

Kept free of Django so that settings.py can use it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from kombu.transport import redis as kombu_redis
from redis import Redis
from redis.sentinel import Sentinel, SentinelConnectionPool

log = logging.getLogger(__name__)

SCHEME = "sentinel://"
SENTINEL_TIMEOUT = 2.0


class InvalidSentinelUrl(ValueError):
    pass


@dataclass(frozen=True)
class SentinelUrl:
    sentinels: tuple[tuple[str, int], ...]
    master: str
    db: int = 0
    password: str | None = None
    sentinel_password: str | None = None

    @classmethod
    def parse(cls, url: str) -> SentinelUrl | None:
        """The URL's parts; None for a URL that is not sentinel:// (a plain Redis URL) or is already kombu's own
        ';'-joined form (settings.py writes that back for Celery, which reads CELERY_BROKER_URL itself)."""
        if not url.startswith(SCHEME) or ";" in url:
            return None
        parts = urlsplit(url)
        auth, _, hosts = parts.netloc.rpartition("@")
        password = unquote(auth.partition(":")[2]) if auth else None
        sentinels = []
        for entry in filter(None, hosts.split(",")):
            host, _, port = entry.rpartition(":")
            if not host or not port.isdigit():
                raise InvalidSentinelUrl(f"sentinel {entry!r} is not HOST:PORT")
            sentinels.append((host.strip("[]"), int(port)))
        if not sentinels:
            raise InvalidSentinelUrl("a sentinel:// URL names at least one sentinel HOST:PORT")
        query = parse_qs(parts.query)
        master = (query.get("master") or [""])[0]
        if not master:
            raise InvalidSentinelUrl("a sentinel:// URL names the primary: ?master=NAME")
        db = parts.path.strip("/") or "0"
        if not db.isdigit():
            raise InvalidSentinelUrl(f"database {db!r} is not a number")
        sentinel_password = (query.get("sentinel_password") or [None])[0]
        return cls(tuple(sentinels), master, int(db), password or None, sentinel_password)

    def _sentinel_kwargs(self) -> dict[str, Any]:
        return {"password": self.sentinel_password} if self.sentinel_password else {}

    def sentinel(self, options: dict[str, Any] | None = None) -> Sentinel:
        """The sentinels, asked with the same timeouts as Redis itself (2 s when none is given), so a dead sentinel
        costs a client one timeout before it asks the next."""
        options = options or {}
        kwargs = {key: options.get(key, SENTINEL_TIMEOUT) for key in ("socket_timeout", "socket_connect_timeout")}
        return Sentinel(self.sentinels, sentinel_kwargs=kwargs | self._sentinel_kwargs())

    def client(self, **options: Any) -> Redis:
        """A client of the current primary: it asks the sentinels again whenever its connection breaks."""
        return self.sentinel(options).master_for(self.master, db=self.db, password=self.password, **options)

    def broker_url(self) -> str:
        """kombu's form: one sentinel:// URL per sentinel, ';'-joined (the primary's name goes in the options)."""
        auth = f":{quote(self.password, safe='')}@" if self.password else ""
        return ";".join(f"sentinel://{auth}{_host(h)}:{p}/{self.db}" for h, p in self.sentinels)

    def broker_transport(self) -> str:
        return f"{__name__}:SentinelTransport"

    def broker_options(self) -> dict[str, Any]:
        return {"master_name": self.master} | (
            {"sentinel_kwargs": self._sentinel_kwargs()} if self.sentinel_password else {}
        )

    def redbeat_url(self) -> str:
        """RedBeat only looks at the scheme (and shows the URL in beat's banner): the sentinels are in the options."""
        host, port = self.sentinels[0]
        return f"redis-sentinel://{_host(host)}:{port}/{self.db}"

    def redbeat_options(self) -> dict[str, Any]:
        """RedBeat's redbeat_redis_options for it (RedBeat asks the sentinels itself)."""
        options: dict[str, Any] = {"sentinels": list(self.sentinels), "service_name": self.master, "db": self.db}
        if self.password:
            options["password"] = self.password
        if self.sentinel_password:
            options["sentinel_kwargs"] = self._sentinel_kwargs()
        return options


class SentinelPool:
    """A `pool_class` for Django's RedisCache (the rate limits' cache) that understands sentinel:// locations."""

    @classmethod
    def from_url(cls, url: str, **options: Any) -> SentinelConnectionPool:
        parsed = SentinelUrl.parse(url)
        if parsed is None:
            raise InvalidSentinelUrl("SentinelPool needs a sentinel:// URL")
        return SentinelConnectionPool(
            parsed.master, parsed.sentinel(options), db=parsed.db, password=parsed.password, **options
        )


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


class _Channel(kombu_redis.SentinelChannel):
    def close(self) -> None:
        try:
            super().close()
        except AttributeError:
            if self.connection.client is not None:
                raise
            # kombu 5.7: when the primary dies, Celery collects the broken connection (its client is gone) and then
            # closes it; putting this channel's unacknowledged messages back then needs a pool that can no longer
            # be built, and the AttributeError stops the worker. They stay in the unacked set, which workers restore
            # after visibility_timeout; the sweeper re-sends a run whose message was lost long before that.
            log.warning("broker connection lost with unacknowledged messages; they are restored later")


class SentinelTransport(kombu_redis.SentinelTransport):
    """kombu's Sentinel transport, except that losing the primary does not stop the worker (_Channel.close)."""

    Channel = _Channel
