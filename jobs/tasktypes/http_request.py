"""http.request: webhooks and health pings. Refuses private, loopback and link-local targets (after DNS
resolution, redirects included) unless JOBS_HTTP_ALLOW_PRIVATE is set, so workers are no way into the network."""

import requests
import requests_hardened
from django.conf import settings

from jobs.tasktypes import ArgsCheck, StepContext, StepFailed, StepResult, TaskType, register
from jobs.tasktypes.args import check_int

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
MAX_BODY_KEPT = 2048
MAX_REDIRECTS = 5


def check_args(args: dict, check: ArgsCheck) -> None:
    url = args.get("url")
    if not isinstance(url, str) or not url.lower().startswith(("http://", "https://")) or len(url) > 2048:
        check.error("args.url", "must be an http:// or https:// URL")
    method = args.get("method", "GET")
    if not isinstance(method, str) or method.upper() not in METHODS:
        check.error("args.method", f"must be one of {', '.join(METHODS)}")
    headers = args.get("headers")
    if headers is not None and not (
        isinstance(headers, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items())
    ):
        check.error("args.headers", "must be an object of header name -> string value")
    expect = args.get("expectStatus")
    codes = expect if isinstance(expect, list) else [expect]
    if expect is not None and not all(
        isinstance(c, int) and not isinstance(c, bool) and 100 <= c <= 599 for c in codes
    ):
        check.error("args.expectStatus", "must be an HTTP status code or a list of them")
    check_int(args, check, "timeoutSeconds", 1, 300)


def _session() -> requests.Session:
    allow_private = settings.JOBS_HTTP_ALLOW_PRIVATE
    manager = requests_hardened.Manager(
        requests_hardened.Config(
            ip_filter_enable=not allow_private,
            ip_filter_allow_loopback_ips=allow_private,
            never_redirect=False,
            default_timeout=(10, 30),
            user_agent_override="pointscene-scheduled-jobs",
        )
    )
    session = manager.get_session()
    # Environment proxies would carry the request past the address filter.
    session.trust_env = False
    session.max_redirects = MAX_REDIRECTS
    return session


def run(ctx: StepContext) -> StepResult:
    args = ctx.args
    method = args.get("method", "GET").upper()
    url = args["url"]
    timeout = args.get("timeoutSeconds", 30)
    expect = args.get("expectStatus")
    expected = None if expect is None else set(expect if isinstance(expect, list) else [expect])
    ctx.log(f"{method} {url}")
    try:
        with _session() as session:
            response = session.request(
                method,
                url,
                headers=args.get("headers") or {},
                json=args.get("json"),
                timeout=(min(timeout, 10), timeout),
            )
    except requests_hardened.ip_filter.InvalidIPAddress:
        raise StepFailed(f"{url} resolves to a private or loopback address, which this server does not call") from None
    except requests.TooManyRedirects:
        raise StepFailed(f"{url} redirected more than {MAX_REDIRECTS} times") from None
    except requests.Timeout:
        raise StepFailed(f"{method} {url} timed out after {timeout} s", retryable=True) from None
    except requests.ConnectionError as exc:
        raise StepFailed(f"{method} {url} could not connect: {type(exc).__name__}", retryable=True) from None
    except requests.RequestException as exc:
        raise StepFailed(f"{method} {url} failed: {type(exc).__name__}") from None
    ok = response.status_code in expected if expected else 200 <= response.status_code < 300
    body = response.content[:MAX_BODY_KEPT].decode(errors="replace")
    ctx.log(f"{method} {url} -> {response.status_code} ({len(response.content)} bytes)")
    if not ok:
        wanted = sorted(expected) if expected else "2xx"
        raise StepFailed(
            f"{method} {url} answered {response.status_code}, expected {wanted}",
            retryable=response.status_code == 429 or response.status_code >= 500,
        )
    return StepResult(
        outputs={"status": response.status_code, "body": body},
        counters={"httpStatus": response.status_code, "bytes": len(response.content)},
    )


http_request = register(
    TaskType(name="http.request", check_args=check_args, run=run, description="Calls a URL (webhooks, pings).")
)
