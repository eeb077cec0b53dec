"""Rate limits (django-ratelimit on a Redis cache): the token endpoint, the admin login and /graphql.

Each limit is a fixed window counted in the `ratelimit` cache (settings.CACHES), keyed by what it limits (a
client id, a username, a token's principal, a client address). A request over a limit gets 429 with Retry-After:
the seconds until its window ends. Limits come from settings (`RATELIMIT_*`, "count/period" as django-ratelimit
reads them, e.g. "30/m"; empty disables one). The client address is REMOTE_ADDR unless the peer is one of
RATELIMIT_TRUSTED_PROXIES, so X-Forwarded-For cannot be spoofed by default.

If Redis cannot be reached, requests pass (logged): the limits protect the service, they must not take it down.
"""

import base64
import binascii
import ipaddress
import logging
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote_plus

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django_ratelimit.core import get_usage
from oauth2_provider.views import TokenView

log = logging.getLogger(__name__)

# Keys are hashed by django-ratelimit; a client id or username longer than this is not a real one.
MAX_KEY_CHARS = 200


@dataclass(frozen=True)
class Limit:
    group: str  # what is limited, e.g. "token-client"; part of the cache key
    setting: str  # the settings name holding the rate
    value: str  # the key: a client id, a username, an address


def _trusted_proxies() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(net, strict=False) for net in getattr(settings, "RATELIMIT_TRUSTED_PROXIES", [])]


def _parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def client_address(request: HttpRequest) -> str:
    """The caller's address: REMOTE_ADDR, or the nearest X-Forwarded-For hop not a trusted proxy behind one."""
    remote = request.META.get("REMOTE_ADDR", "") or ""
    trusted = _trusted_proxies()
    peer = _parse_ip(remote)
    if not remote:
        # A unix socket: only a local process (the proxy) can be on the other end.
        peer_is_proxy = bool(trusted)
    else:
        peer_is_proxy = peer is not None and _within(peer, trusted)
    if peer_is_proxy:
        hops = [hop for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
        for hop in reversed(hops):
            address = _parse_ip(hop)
            if address is None:
                break  # a garbled hop: what lies before it cannot be trusted either
            if not _within(address, trusted):
                return str(address)
    # Everything that comes without an address shares one bucket rather than escaping the limit.
    return str(peer) if peer is not None else "0.0.0.0"


def _within(address, networks) -> bool:
    return any(address.version == net.version and address in net for net in networks)


def retry_after(request: HttpRequest, limits: list[Limit]) -> int | None:
    """Counts this request against each limit; the seconds to wait if any is exceeded, else None."""
    wait = None
    for limit in limits:
        rate = getattr(settings, limit.setting, "")
        if not rate or not limit.value:
            continue
        value = limit.value[:MAX_KEY_CHARS]
        try:
            usage = get_usage(
                request, group=limit.group, key=_constant(value), rate=rate, method=get_usage.ALL, increment=True
            )
        except Exception:  # noqa: BLE001 - Redis down or flushed mid-count: let the request through
            log.warning("rate limit %s not checked: the ratelimit cache failed", limit.group, exc_info=True)
            continue
        if usage and usage["should_limit"]:
            # The window ends at the start of second `window`, time_left counts whole seconds to it: +1 rounds up.
            seconds = max(1, usage["time_left"] + 1)
            wait = max(wait or 0, seconds)
    return wait


def _constant(value: str) -> Callable[[str, HttpRequest], str]:
    return lambda _group, _request: value


# --------------------------------------------------------------------------- /oauth2/token and the admin login


def token_client_id(request: HttpRequest) -> str:
    """The client_id a token request names: HTTP Basic credentials (RFC 6749 2.3.1) or the form body."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "basic" and credentials:
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            decoded = ""
        if ":" in decoded:
            return unquote_plus(decoded.split(":", 1)[0])
    return request.POST.get("client_id", "")


def token_limits(request: HttpRequest) -> list[Limit]:
    return [
        Limit("token-client", "RATELIMIT_TOKEN_PER_CLIENT", token_client_id(request)),
        Limit("token-address", "RATELIMIT_TOKEN_PER_ADDRESS", client_address(request)),
    ]


def admin_login_limits(request: HttpRequest) -> list[Limit]:
    # Case-folded: the same account under another spelling must not get a fresh allowance.
    username = request.POST.get("username", "").strip().casefold()
    return [
        Limit("admin-login-username", "RATELIMIT_ADMIN_LOGIN_PER_USERNAME", username),
        Limit("admin-login-address", "RATELIMIT_ADMIN_LOGIN_PER_ADDRESS", client_address(request)),
    ]


def token_rate_limited(seconds: int) -> JsonResponse:
    """RFC 6749 5.2's error shape; slow_down is the registered OAuth error for "poll less often" (RFC 8628)."""
    body = {"error": "slow_down", "error_description": f"Too many token requests; retry in {seconds} seconds."}
    response = JsonResponse(body, status=429)
    response["Retry-After"] = str(seconds)
    response["Cache-Control"] = "no-store"
    return response


def admin_rate_limited(seconds: int) -> HttpResponse:
    response = HttpResponse(
        f"Too many login attempts; retry in {seconds} seconds.", status=429, content_type="text/plain; charset=utf-8"
    )
    response["Retry-After"] = str(seconds)
    return response


class RateLimitMiddleware:
    """Limits the token endpoint and admin login POSTs, before CSRF checks and before any password hashing."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs) -> HttpResponse | None:
        if request.method != "POST":
            return None
        view_class = getattr(view_func, "view_class", None)
        if isinstance(view_class, type) and issubclass(view_class, TokenView):
            seconds = retry_after(request, token_limits(request))
            return token_rate_limited(seconds) if seconds else None
        match = getattr(request, "resolver_match", None)
        if match is not None and match.view_name == "admin:login":
            seconds = retry_after(request, admin_login_limits(request))
            return admin_rate_limited(seconds) if seconds else None
        return None


# --------------------------------------------------------------------------- /graphql


def graphql_address_limits(request: HttpRequest) -> list[Limit]:
    return [Limit("graphql-address", "RATELIMIT_GRAPHQL_PER_ADDRESS", client_address(request))]


def graphql_principal_limits(request: HttpRequest, user_id: int | None, application_id: int | None) -> list[Limit]:
    """A password-grant token counts against its user, a client-credentials token against its client."""
    if user_id is not None:
        principal = f"user:{user_id}"
    elif application_id is not None:
        principal = f"client:{application_id}"
    else:
        principal = ""
    return [Limit("graphql-principal", "RATELIMIT_GRAPHQL_PER_PRINCIPAL", principal)]
