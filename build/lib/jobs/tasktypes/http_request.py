"""http.request: webhooks and health pings. Refuses private, loopback and link-local targets (after DNS
resolution, redirects included) unless JOBS_HTTP_ALLOW_PRIVATE is set, so workers are no way into the network.

Arguments: url, method, headers, secretHeaders, json, expectStatus, timeoutSeconds, maxResponseBytes.

- headers: only common headers that carry no credential (PLAIN_HEADERS), since workflows are shown to every
  reader of the job. Everything else goes in secretHeaders: an allowlist, because credential header names have no
  pattern (Authorization, Private-Token, DD-API-KEY, X-Vault-Token, Ocp-Apim-Subscription-Key, ...), and a header
  that is not secret loses nothing in secretHeaders but being shown.
- secretHeaders: name -> value, stored encrypted (jobs.secret_args), shown as [{name, isSet}], sent only to the
  URL's own scheme, host and port (dropped on a redirect elsewhere). On update, {"keep": true} keeps a stored value.
- maxResponseBytes: the answer is streamed and at most this many bytes are read (default 4 MiB, at most
  JOBS_HTTP_MAX_RESPONSE_BYTES); a bigger answer, or a redirect with a bigger body, fails the step, not retried.
  The first 2 KiB of the body are the step's `body` output.
"""

import re
import threading
import time
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests
from django.conf import settings

from configs.crypto import DecryptionFailed
from jobs import secret_args
from jobs.ops.outbound import NOT_ALLOWED, RefusedAddress, hardened_session, refused_before_connect
from jobs.steps import StepContext, StepFailed, StepResult
from jobs.tasktypes import ArgsCheck, TaskType, register
from jobs.tasktypes.args import check_int

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
MAX_BODY_KEPT = 2048
MAX_REDIRECTS = 5
DEFAULT_MAX_RESPONSE_BYTES = 4 * 1024 * 1024
READ_CHUNK = 64 * 1024
MAX_HEADERS = 20
MAX_HEADER_NAME = 128
MAX_HEADER_VALUE = 8192
# RFC 9110 token: what a header name may be.
HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
# Field values: visible characters, spaces and tabs; no CR/LF (header injection) and no other controls.
HEADER_VALUE = re.compile(r"^[^\x00-\x08\x0a-\x1f\x7f]*$")
PLAIN_HEADERS = (
    "Accept",
    "Accept-Charset",
    "Accept-Encoding",
    "Accept-Language",
    "Cache-Control",
    "Content-Language",
    "Content-Type",
    "If-Match",
    "If-Modified-Since",
    "If-None-Match",
    "If-Unmodified-Since",
    "Pragma",
    "Prefer",
    "X-Correlation-Id",
    "X-Request-Id",
)
_PLAIN = {name.lower() for name in PLAIN_HEADERS}
# Framing and routing belong to the HTTP client: set by a workflow they could desynchronize a proxy on the way.
_RESERVED = {
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
    "proxy-connection",
    "expect",
}


class ResponseTooLarge(Exception):
    """The answer (or a redirect's body) is bigger than the step may read."""


def max_response_bytes(args: dict) -> int:
    ceiling = settings.JOBS_HTTP_MAX_RESPONSE_BYTES
    return args.get("maxResponseBytes") or min(DEFAULT_MAX_RESPONSE_BYTES, ceiling)


def _check_value(value: object, path: str, check: ArgsCheck) -> None:
    if not isinstance(value, str) or len(value) > MAX_HEADER_VALUE or not HEADER_VALUE.match(value):
        check.error(path, f"must be a string of at most {MAX_HEADER_VALUE} characters, without line breaks")


def _check_headers(args: dict, check: ArgsCheck) -> set[str]:
    headers = args.get("headers")
    if headers is None:
        return set()
    if not isinstance(headers, dict) or len(headers) > MAX_HEADERS:
        check.error("args.headers", f"must be an object of at most {MAX_HEADERS} header name -> string value")
        return set()
    for name, value in headers.items():
        if name.lower() not in _PLAIN:
            check.error(
                f"args.headers.{name}",
                "is not sent in the clear: put credentials and any other header in secretHeaders (stored "
                f"encrypted, never shown); headers may only be {', '.join(PLAIN_HEADERS)}",
            )
        else:
            _check_value(value, f"args.headers.{name}", check)
    return {name.lower() for name in headers}


def _check_secret_headers(args: dict, check: ArgsCheck, plain: set[str]) -> None:
    secret = args.get("secretHeaders")
    if secret is None:
        return
    if not isinstance(secret, dict) or not 1 <= len(secret) <= MAX_HEADERS:
        check.error(
            "args.secretHeaders", f"must be an object of 1 to {MAX_HEADERS} header name -> value (or {{keep: true}})"
        )
        return
    seen: set[str] = set()
    for name, value in secret.items():
        path = f"args.secretHeaders.{name}"
        lowered = name.lower()
        if len(name) > MAX_HEADER_NAME or not HEADER_NAME.match(name):
            check.error(path, f"must be an HTTP header name (letters, digits, !#$%&'*+-.^_`|~), {MAX_HEADER_NAME} max")
        elif lowered in _RESERVED:
            check.error(path, "is set by the HTTP client itself")
        elif lowered in plain:
            check.error(path, "is in headers too; give it in one of them")
        elif lowered in seen:
            check.error(path, "is given twice (header names are case-insensitive)")
        elif not secret_args.is_keep(value):
            if not isinstance(value, str) or not value:
                check.error(path, 'must be the value as a non-empty string, or {"keep": true} for the stored one')
            else:
                _check_value(value, path, check)
        seen.add(lowered)


def check_args(args: dict, check: ArgsCheck) -> None:
    url = args.get("url")
    if not isinstance(url, str) or not url.lower().startswith(("http://", "https://")) or len(url) > 2048:
        check.error("args.url", "must be an http:// or https:// URL")
    elif refused_before_connect(url):
        check.error("args.url", NOT_ALLOWED)
    method = args.get("method", "GET")
    if not isinstance(method, str) or method.upper() not in METHODS:
        check.error("args.method", f"must be one of {', '.join(METHODS)}")
    _check_secret_headers(args, check, _check_headers(args, check))
    expect = args.get("expectStatus")
    codes = expect if isinstance(expect, list) else [expect]
    if expect is not None and not all(
        isinstance(c, int) and not isinstance(c, bool) and 100 <= c <= 599 for c in codes
    ):
        check.error("args.expectStatus", "must be an HTTP status code or a list of them")
    check_int(args, check, "timeoutSeconds", 1, 300)
    check_int(args, check, "maxResponseBytes", 1, settings.JOBS_HTTP_MAX_RESPONSE_BYTES)


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme.lower())
    return parts.scheme.lower(), (parts.hostname or "").lower(), port


def _drain(response: requests.Response, limit: int, deadline: float, stop: threading.Event) -> tuple[bytes, int]:
    """Reads the body as it comes: (its first MAX_BODY_KEPT bytes, its size). Raises ResponseTooLarge past `limit`
    bytes (after decompression), Timeout past `deadline`; returns early once `stop` is set (a cancelled run)."""
    head, size = b"", 0
    for chunk in response.iter_content(READ_CHUNK):
        size += len(chunk)
        if size > limit:
            raise ResponseTooLarge()
        if len(head) < MAX_BODY_KEPT:
            head += chunk[: MAX_BODY_KEPT - len(head)]
        if time.monotonic() > deadline:
            raise requests.Timeout()
        if stop.is_set():
            break
    return head, size


def _send(
    method: str, url: str, headers: dict, secret: dict, body: object, timeout: int, limit: int, stop: threading.Event
) -> tuple[int, bytes, int]:
    """(status, first bytes of the body, body size) of the answer, redirects followed."""
    deadline = time.monotonic() + timeout
    origin = _origin(url)

    def cap_redirect_body(response: requests.Response, *args, **kwargs) -> requests.Response:
        # requests reads a redirect's whole body to reuse the connection: read it here first, within the limit.
        if response.is_redirect:
            _drain(response, limit, deadline, stop)
        return response

    with hardened_session(timeout=(10, 30), max_redirects=MAX_REDIRECTS) as session:
        rebuild_auth = session.rebuild_auth

        def drop_secrets_elsewhere(prepared: requests.PreparedRequest, response: requests.Response) -> None:
            # requests drops Authorization on a redirect to another host, but not the other secret headers.
            rebuild_auth(prepared, response)
            if _origin(prepared.url) != origin:
                for name in secret:
                    prepared.headers.pop(name, None)

        session.rebuild_auth = drop_secrets_elsewhere
        with session.request(
            method,
            url,
            headers={**headers, **secret},
            json=body,
            timeout=(min(timeout, 10), timeout),
            stream=True,
            hooks={"response": [cap_redirect_body]},
        ) as response:
            head, size = _drain(response, limit, deadline, stop)
            return response.status_code, head, size


def _interruptible(ctx: StepContext, call, abandoned: threading.Event):
    """Runs a blocking call in a helper thread so that a cancelled run stops waiting for it at once.

    The abandoned call ends by itself within its own timeout, or at its next read once `abandoned` is set."""
    outcome: dict = {}

    def target() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:  # noqa: BLE001 - handed to the step's thread below
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True, name=f"http-{ctx.run_id}")
    thread.start()
    try:
        while thread.is_alive():
            thread.join(0.2)
            ctx.check_cancelled()
    finally:
        abandoned.set()
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


def _redacting(log, secrets: list[str]):
    """The step's log, with every secret value written as ***, whatever line it turns up in."""

    def line(message: str) -> None:
        for value in secrets:
            message = message.replace(value, "***")
        log(message)

    return line


def run(ctx: StepContext) -> StepResult:
    args = ctx.args
    method = args.get("method", "GET").upper()
    raw_url = args["url"]
    url = redact(raw_url)
    timeout = args.get("timeoutSeconds", 30)
    limit = max_response_bytes(args)
    expect = args.get("expectStatus")
    expected = None if expect is None else set(expect if isinstance(expect, list) else [expect])
    try:
        secret = secret_args.open_values(args.get("secretHeaders"))
    except DecryptionFailed:
        raise StepFailed("secretHeaders cannot be decrypted with the server's keys; give them again") from None
    except ValueError:
        raise StepFailed("secretHeaders are not stored encrypted; save the workflow again to send them") from None
    log = _redacting(ctx.log, sorted((v for v in secret.values() if v), key=len, reverse=True))
    log(f"{method} {url}")
    # Tells the request's thread to stop reading once the run no longer waits for it.
    abandoned = threading.Event()
    try:
        status, head, size = _interruptible(
            ctx,
            lambda: _send(
                method, raw_url, args.get("headers") or {}, secret, args.get("json"), timeout, limit, abandoned
            ),
            abandoned,
        )
    except ResponseTooLarge:
        raise StepFailed(f"{method} {url}: response larger than {limit} bytes") from None
    except RefusedAddress:
        # One message for private, loopback, link-local and unresolvable alike: no map of the network.
        raise StepFailed(f"{method} {url}: {NOT_ALLOWED}") from None
    except requests.TooManyRedirects:
        raise StepFailed(f"{url} redirected more than {MAX_REDIRECTS} times") from None
    except requests.Timeout:
        raise StepFailed(f"{method} {url} timed out after {timeout} s", retryable=True) from None
    except requests.ConnectionError as exc:
        raise StepFailed(f"{method} {url} could not connect: {type(exc).__name__}", retryable=True) from None
    except requests.RequestException as exc:
        raise StepFailed(f"{method} {url} failed: {type(exc).__name__}") from None
    ok = status in expected if expected else 200 <= status < 300
    body = head.decode(errors="replace")
    for value in secret.values():
        if value:
            body = body.replace(value, "***")  # a server that echoes the request's headers
    log(f"{method} {url} -> {status} ({size} bytes)")
    if not ok:
        wanted = sorted(expected) if expected else "2xx"
        raise StepFailed(
            f"{method} {url} answered {status}, expected {wanted}",
            retryable=status == 429 or status >= 500,
        )
    return StepResult(outputs={"status": status, "body": body}, counters={"httpStatus": status, "bytes": size})


http_request = register(TaskType(name="http.request", check_args=check_args, run=run))
