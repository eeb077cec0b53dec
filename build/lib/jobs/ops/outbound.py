"""HTTP to the outside world from workers (http.request steps, webhooks).

Every connection, redirects included, is made by `EgressPolicy.connect` (pointscene.core.egress): the name is
resolved once, every address checked, and the socket connected to the address that was checked, so a tenant's URL
cannot reach the worker's own network, not even through DNS rebinding. JOBS_HTTP_ALLOW_PRIVATE opens private
targets for single-tenant installs; JOBS_EGRESS_ALLOW names exact host:port exceptions.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from pointscene.core.addresses import NotAllowed
from pointscene.core.egress import EgressPolicy, dns_resolver, parse_allowances, system_resolver

USER_AGENT = "pointscene-scheduled-jobs"
# What a refused target raises from a request: its text is "destination not allowed", whatever the reason.
RefusedAddress = NotAllowed


def tenant_policy(*, allow_private: bool, upstream: str = "") -> EgressPolicy:
    """The egress policy for connections a tenant steers, from the operator's settings."""
    servers = settings.JOBS_EGRESS_DNS_SERVERS
    return EgressPolicy(
        allow_private=allow_private,
        allowed=parse_allowances(settings.JOBS_EGRESS_ALLOW),
        upstream=upstream,
        resolver=dns_resolver(servers) if servers else system_resolver,
    )


# Said with every refusal of a tenant's HTTP destination, whatever the reason (so it maps nothing), to name the switch.
NOT_ALLOWED = (
    "destination not allowed (public addresses only; JOBS_HTTP_ALLOW_PRIVATE=1 allows private and loopback ones "
    "on single-tenant installs)"
)


def refused_before_connect(url: str) -> bool:
    """Whether every connection to this URL's host would be refused, without asking DNS (a literal private address,
    a local name, a host that does not parse): what validateWorkflow can report before any run."""
    parts = urlsplit(url)
    try:
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme.lower(), 0)
    except ValueError:
        return True
    policy = tenant_policy(allow_private=settings.JOBS_HTTP_ALLOW_PRIVATE)
    return not parts.hostname or policy.refuses_without_dns(parts.hostname, port)


class _PolicyAdapter(HTTPAdapter):
    """Connection pools whose connections are opened by the policy (TLS still verifies the name asked for)."""

    def __init__(self, policy: EgressPolicy) -> None:
        self.policy = policy
        super().__init__()

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        policy = self.policy

        def new_conn(connection: HTTPConnection):
            timeout = connection.timeout if isinstance(connection.timeout, int | float) else None
            try:
                return policy.connect(connection._dns_host, connection.port, timeout=timeout)
            except TimeoutError:
                raise ConnectTimeoutError(connection, "connection timed out") from None
            except NotAllowed:
                raise
            except OSError as exc:
                # As urllib3's own connections report it (requests.ConnectionError, which callers may retry).
                raise NewConnectionError(connection, f"failed to connect: {type(exc).__name__}") from None

        http_conn = type("EgressHTTPConnection", (HTTPConnection,), {"_new_conn": new_conn})
        https_conn = type("EgressHTTPSConnection", (HTTPSConnection,), {"_new_conn": new_conn})
        self.poolmanager.pool_classes_by_scheme = {
            "http": type("EgressHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": http_conn}),
            "https": type("EgressHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": https_conn}),
        }


class _Session(requests.Session):
    def __init__(self, timeout: tuple[float, float], follow_redirects: bool) -> None:
        super().__init__()
        self._timeout = timeout
        self._follow = follow_redirects

    def request(self, method, url, **kwargs):
        kwargs.setdefault("timeout", self._timeout)
        if not self._follow:
            kwargs["allow_redirects"] = False
        return super().request(method, url, **kwargs)


def hardened_session(*, timeout: tuple[float, float], max_redirects: int | None = None) -> requests.Session:
    """A session whose every connection goes through the tenant egress policy; max_redirects None: redirects are
    not followed at all."""
    policy = tenant_policy(allow_private=settings.JOBS_HTTP_ALLOW_PRIVATE)
    session = _Session(timeout, follow_redirects=max_redirects is not None)
    # Environment proxies would carry the request past the policy.
    session.trust_env = False
    session.headers["User-Agent"] = USER_AGENT
    adapter = _PolicyAdapter(policy)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    if max_redirects is not None:
        session.max_redirects = max_redirects
    return session
