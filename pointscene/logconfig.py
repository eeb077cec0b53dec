"""Structured logs for web, worker and beat: one JSON object per line (LOG_FORMAT=text for development), each
carrying the request id, job id, run id and instance id of what it is about, and never a secret.

The ids travel in context variables: the request-id middleware sets request_id, the runner sets job, run and
instance ids for the length of a run. Redaction is the last line of defence, not the first: the code does not
log secrets, and this filter scrubs what looks like one anyway (bearer tokens, token/secret/password fields,
passwords in URLs) and every value a running step registered as secret.
"""

import contextlib
import contextvars
import logging
import re
import uuid
from collections.abc import Iterator

from django.core.signals import request_finished
from pythonjsonlogger.json import JsonFormatter

CONTEXT_FIELDS = ("request_id", "job_id", "run_id", "instance_id")
_context: dict[str, contextvars.ContextVar] = {f: contextvars.ContextVar(f, default=None) for f in CONTEXT_FIELDS}
_secrets: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("log_secrets", default=())

# Each pattern with words of which any text it matches holds one (lowercased): a pattern none of whose words is in
# a line cannot match it, and is not run. Most lines (a task received, a run ended) then cost no regex at all.
_PATTERNS = [
    # Authorization: Bearer <token>, Basic <credentials>
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 ***", ("bearer", "basic")),
    # "access_token": "...", client_secret=..., password: ...
    (
        re.compile(
            r"(?i)(\b(?:[\w-]*(?:token|secret|passw(?:or)?d|api[_-]?key|credentials?)[\w-]*|pass)\b[\"']?\s*[:=]\s*[\"']?)"
            r"([^\"'\s,&}]{3,})"
        ),
        r"\1***",
        ("token", "secret", "pass", "api", "credential"),
    ),
    # scheme://user:password@host
    (re.compile(r"(\b[a-z][a-z0-9+.-]*://[^/\s:@]+:)[^/\s@]+@"), r"\1***@", ("://",)),
    # A signed log link, /logs/<token>: it opens the log without a bearer token. Request lines, "Not Found: <path>",
    # URLs. Tokens are Django signed values, "<payload>:<time>:<signature>", and a client may send ":" as %3A.
    (re.compile(r"(/logs/)(?=[^\s\"'<>?#&/]*(?::|%3[aA]))[^\s\"'<>?#&/]+"), r"\1***", ("/logs/",)),
]


def redact(text: str) -> str:
    for value in _secrets.get():
        text = text.replace(value, "***")
    # Only ASCII text is looked at lowercased: a case-insensitive pattern also matches letters whose lowercase is
    # not ASCII ("ſ" matches "s"), so other text goes through every pattern.
    lowered = text.lower() if text.isascii() else None
    for pattern, replacement, words in _PATTERNS:
        if lowered is None or any(word in lowered for word in words):
            text = pattern.sub(replacement, text)
    return text


@contextlib.contextmanager
def log_context(**fields) -> Iterator[None]:
    """Adds ids (job_id, run_id, instance_id, request_id) to every log line emitted inside the block."""
    tokens = [(_context[name], _context[name].set(value)) for name, value in fields.items()]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


@contextlib.contextmanager
def secret_values(values: list[str]) -> Iterator[None]:
    """Values that must not appear in any log line emitted inside the block (a step's credentials)."""
    token = _secrets.set(tuple(v for v in values if len(v) >= 4) + _secrets.get())
    try:
        yield
    finally:
        _secrets.reset(token)


class ContextFilter(logging.Filter):
    """Puts the context ids on each record and scrubs its message and traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in _context.items():
            if getattr(record, name, None) is None:
                setattr(record, name, var.get())
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


# Fields JsonLines writes itself: the message and traceback are scrubbed already, the rest are ours.
_KEPT_AS_IS = frozenset({"message", "exc_info", "time", "level", "logger", *CONTEXT_FIELDS})


class JsonLines(JsonFormatter):
    """{"time", "level", "logger", "message", ids..., "exc_info"} with the ids left out when unknown."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("timestamp", "time")
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger"})
        super().__init__("%(levelname)s %(name)s %(message)s", *args, **kwargs)

    def formatException(self, ei) -> str:  # noqa: N802 - logging's name
        return redact(super().formatException(ei))

    def add_fields(self, log_record: dict, record: logging.LogRecord, message_dict: dict) -> None:
        super().add_fields(log_record, record, message_dict)
        # Django passes the request object along (django.request, django.server): its text is the request line
        # again, or a socket's addresses. Other extras are scrubbed like the message.
        log_record.pop("request", None)
        for name, value in log_record.items():
            if name not in _KEPT_AS_IS and not isinstance(value, int | float | bool | type(None)):
                log_record[name] = redact(value if isinstance(value, str) else str(value))
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is None:
                log_record.pop(name, None)
            else:
                log_record[name] = value


class TextLines(logging.Formatter):
    def formatException(self, ei) -> str:  # noqa: N802 - logging's name
        return redact(super().formatException(ei))

    def format(self, record: logging.LogRecord) -> str:
        ids = " ".join(f"{n}={getattr(record, n)}" for n in CONTEXT_FIELDS if getattr(record, n, None) is not None)
        text = super().format(record)
        return f"{text} [{ids}]" if ids else text


# Celery's own line for each task a worker receives and for each that succeeds. A run says what it did in one line
# of ours ("run ended", with its job, run and instance ids); Celery's two add nothing to it but lines (20,000 a
# minute at 10,000 jobs) and a tenth of the cheapest run's worker CPU (docs/benchmarks.md, Fleet). What else these
# loggers say below WARNING goes too: a task's retry, Ignore and expected (`throws`) failures, none of which the
# service's tasks use (jobs.notify_webhook logs its own WARNING before it retries). Unexpected failures (ERROR),
# rejections (WARNING), and celery.worker.request's lines (revoked, worker lost, time limits) stay.
CELERY_TASK_LOGGERS = ("celery.worker.strategy", "celery.app.trace")


def config(level: str, fmt: str, task_level: str = "WARNING") -> dict:
    """The LOGGING dict for settings.py. `task_level`: of Celery's per-task lines (CELERY_TASK_LOGGERS)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": ContextFilter}},
        "formatters": {
            "json": {"()": JsonLines},
            "text": {"()": TextLines, "format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        },
        "handlers": {
            "console": {"class": "logging.StreamHandler", "filters": ["context"], "formatter": fmt},
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # Django's own handlers (DEFAULT_LOGGING: a console one when DEBUG, runserver's access lines) would
            # print past the filter: a request line or "Not Found: /logs/<token>" as it came. Everything goes
            # through ours instead.
            "django": {"handlers": [], "propagate": True},
            "django.server": {"handlers": [], "level": "INFO", "propagate": True},
            # graphql-core logs every resolver exception with its traceback; ours become coded errors instead.
            "graphql.execution.utils": {"level": "CRITICAL"},
            # The ACC bridge reports APS failures through the run's step; WsgiDAV's own tracebacks add nothing.
            "wsgidav": {"level": "CRITICAL"},
            **{name: {"level": task_level} for name in CELERY_TASK_LOGGERS},
        },
    }


def scrub_server_logs() -> None:
    """Filters gunicorn's access and error lines like ours (its handlers and format stay its own): an access line
    holds the request line, a signed log link included. For the WSGI module, which gunicorn's workers import."""
    for name in ("gunicorn.access", "gunicorn.error"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, ContextFilter) for f in logger.filters):
            logger.addFilter(ContextFilter())


class RequestIdMiddleware:
    """Gives each HTTP request an id (the caller's X-Request-ID when it is sane, else a new one), logs carry it,
    and the response returns it."""

    _SANE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        given = request.headers.get("X-Request-ID", "")
        request_id = given if self._SANE.match(given) else uuid.uuid4().hex
        request.request_id = request_id
        # Set, not scoped to this call: Django logs a failed response ("Not Found: ...") after the middleware
        # chain has returned. request_finished clears it.
        _context["request_id"].set(request_id)
        response = self.get_response(request)
        response["X-Request-ID"] = request_id
        return response


def _clear_request_id(**kwargs) -> None:
    _context["request_id"].set(None)


request_finished.connect(_clear_request_id, dispatch_uid="pointscene.logconfig.clear_request_id")
