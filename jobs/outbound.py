"""HTTP to the outside world from workers (http.request steps, webhooks): private, loopback and link-local targets
are refused after DNS resolution, redirects included, unless JOBS_HTTP_ALLOW_PRIVATE is set, so workers are no
way into the network they run in."""

import requests
import requests_hardened
from django.conf import settings

USER_AGENT = "pointscene-scheduled-jobs"
# What a refused target raises from a request.
RefusedAddress = requests_hardened.ip_filter.InvalidIPAddress


def hardened_session(*, timeout: tuple[float, float], max_redirects: int | None = None) -> requests.Session:
    """A session with the address filter on; max_redirects None: redirects are not followed at all."""
    allow_private = settings.JOBS_HTTP_ALLOW_PRIVATE
    manager = requests_hardened.Manager(
        requests_hardened.Config(
            ip_filter_enable=not allow_private,
            ip_filter_allow_loopback_ips=allow_private,
            never_redirect=max_redirects is None,
            default_timeout=timeout,
            user_agent_override=USER_AGENT,
        )
    )
    session = manager.get_session()
    # Environment proxies would carry the request past the address filter.
    session.trust_env = False
    if max_redirects is not None:
        session.max_redirects = max_redirects
    return session
