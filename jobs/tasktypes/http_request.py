"""http.request: webhooks and health pings. Refuses private, loopback and link-local targets (after DNS
resolution, redirects included) unless JOBS_HTTP_ALLOW_PRIVATE is set, so workers are no way into the network."""

import threading
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests

from jobs.outbound import RefusedAddress, hardened_session
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


def _send(method: str, url: str, headers: dict, body: object, timeout: int) -> requests.Response:
    with hardened_session(timeout=(10, 30), max_redirects=MAX_REDIRECTS) as session:
        return session.request(method, url, headers=headers, json=body, timeout=(min(timeout, 10), timeout))


def _interruptible(ctx: StepContext, call):
    """Runs a blocking call in a helper thread so that a cancelled run stops waiting for it at once.

    The abandoned call ends by itself within its own timeout."""
    outcome: dict = {}

    def target() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:  # noqa: BLE001 - handed to the step's thread below
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True, name=f"http-{ctx.run_id}")
    thread.start()
    while thread.is_alive():
        thread.join(0.2)
        ctx.check_cancelled()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


_SECRET_QUERY_KEYS = ("token", "key", "secret", "password", "passwd", "pwd", "sig", "signature", "auth", "code")


def redact(url: str) -> str:
    """The URL as logs and errors may show it: no password, no token-like query values."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        netloc = f"{userinfo.split(':', 1)[0]}:***@{host}" if ":" in userinfo else f"***@{host}"
    query = urlencode(
        [
            (k, "***" if any(word in k.lower() for word in _SECRET_QUERY_KEYS) else v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
        ],
        safe="*",
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def run(ctx: StepContext) -> StepResult:
    args = ctx.args
    method = args.get("method", "GET").upper()
    raw_url = args["url"]
    url = redact(raw_url)
    timeout = args.get("timeoutSeconds", 30)
    expect = args.get("expectStatus")
    expected = None if expect is None else set(expect if isinstance(expect, list) else [expect])
    ctx.log(f"{method} {url}")
    try:
        response = _interruptible(
            ctx, lambda: _send(method, raw_url, args.get("headers") or {}, args.get("json"), timeout)
        )
    except RefusedAddress:
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
