"""Structured logs (pointscene/logconfig.py): JSON lines with context ids, request ids, and redaction."""

import io
import json
import logging

import pytest

from pointscene import logconfig


@pytest.fixture
def lines(settings):
    """Log records formatted by the configured handler's formatter and filter, as the console would print them."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(logconfig.ContextFilter())
    handler.setFormatter(logconfig.JsonLines())
    logger = logging.getLogger("tests.logconfig")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    logger.removeHandler(handler)


def test_it_writes_one_json_object_per_line_with_the_context_ids(lines):
    log = logging.getLogger("tests.logconfig")
    with logconfig.log_context(job_id=12, run_id=345, instance_id=6):
        log.info("run %s started", 345)
    log.info("outside any run")

    inside, outside = lines()
    assert inside["message"] == "run 345 started"
    assert inside["level"] == "INFO"
    assert inside["logger"] == "tests.logconfig"
    assert (inside["job_id"], inside["run_id"], inside["instance_id"]) == (12, 345, 6)
    assert inside["time"].endswith("+00:00")
    assert "job_id" not in outside
    assert "run_id" not in outside


@pytest.mark.parametrize(
    ("message", "secret"),
    [
        ("Authorization: Bearer eyJhbGciOi.payload.sig", "eyJhbGciOi.payload.sig"),
        ('{"access_token": "ya29.a0AfH6SM", "token_type": "Bearer"}', "ya29.a0AfH6SM"),
        ("client_secret=s3cr3t-value&grant_type=refresh_token", "s3cr3t-value"),
        ("connecting to postgres://app:hunter2@db:5432/app", "hunter2"),
        ("sftp pass: opensesame", "opensesame"),
        ("x-api-key=AKIAEXAMPLEKEY", "AKIAEXAMPLEKEY"),
        ("AUTHORIZATION: BASIC dXNlcjpodW50ZXIy", "dXNlcjpodW50ZXIy"),
        # Letters whose case-insensitive match is ASCII but whose lowercase is not ("ſ" is an "s", "K" a "k").
        ("paſſword=opensesame", "opensesame"),
        ("api_\u212aey=AKIAEXAMPLEKEY", "AKIAEXAMPLEKEY"),
    ],
)
def test_it_scrubs_what_looks_like_a_secret(lines, message, secret):
    logging.getLogger("tests.logconfig").warning(message)

    (line,) = lines()
    assert secret not in json.dumps(line)
    assert "***" in line["message"]


def test_it_scrubs_the_values_a_step_registered_even_inside_tracebacks(lines):
    log = logging.getLogger("tests.logconfig")
    with logconfig.secret_values(["plain-looking-credential"]):
        try:
            raise ValueError("failed with plain-looking-credential")
        except ValueError:
            log.exception("step failed for plain-looking-credential")
    log.info("after the step: plain-looking-credential is just text again")

    failed, after = lines()
    assert "plain-looking-credential" not in json.dumps(failed)
    assert "ValueError" in failed["exc_info"]
    assert "plain-looking-credential" in after["message"]


def test_it_leaves_ordinary_messages_alone(lines):
    logging.getLogger("tests.logconfig").info("passed=3 checks, 12 tokens left, password reset page")

    assert lines()[0]["message"] == "passed=3 checks, 12 tokens left, password reset page"


def test_it_gives_every_request_an_id_and_logs_carry_it(client, db):
    given = client.get("/healthz", HTTP_X_REQUEST_ID="req-abc.123")
    made = client.get("/healthz")
    refused = client.get("/healthz", HTTP_X_REQUEST_ID="bad id with spaces")

    assert given["X-Request-ID"] == "req-abc.123"
    assert len(made["X-Request-ID"]) == 32
    assert refused["X-Request-ID"] != "bad id with spaces"

    # Django logs a 404 after the middleware has returned; the line still carries the request's id.
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(logconfig.ContextFilter())
    handler.setFormatter(logconfig.JsonLines())
    logging.getLogger("django.request").addHandler(handler)
    try:
        client.get("/no-such-page", HTTP_X_REQUEST_ID="req-404")
        client.get("/healthz")  # a later request's lines do not inherit it
        logging.getLogger("django.request").warning("between requests")
    finally:
        logging.getLogger("django.request").removeHandler(handler)
    first, later = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "Not Found: /no-such-page"
    assert first["request_id"] == "req-404"
    assert "request_id" not in later


def test_the_text_format_keeps_the_ids(settings):
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None)
    with logconfig.log_context(run_id=9):
        logconfig.ContextFilter().filter(record)

    assert logconfig.TextLines("%(levelname)s %(message)s").format(record) == "INFO hello [run_id=9]"


TOKEN = ".eJyrVipSslIyVNJRygAyDZV0lEqUrIxqAQBn0gcH:1uXYZq:Sg7xQ2k1JmRy0Y3yQn5cR3b9M8Jt3xZcZpW1bqQvC0E"


@pytest.mark.parametrize(
    "text",
    [
        f'"GET /logs/{TOKEN} HTTP/1.1" 200 42',
        f'"GET /logs/{TOKEN.replace(":", "%3A")} HTTP/1.1" 200 42',
        f'"GET /logs/{TOKEN.replace(":", "%3a")}?download=1 HTTP/1.1" 200 42',
        f"Not Found: /logs/{TOKEN}",
        f"<WSGIRequest: GET '/logs/{TOKEN}'>",
        f"link https://jobs.example.com/prefix/logs/{TOKEN} sent",
    ],
)
def test_it_masks_the_token_of_a_signed_log_link(text):
    cleaned = logconfig.redact(text)

    assert "/logs/***" in cleaned
    assert "1uXYZq" not in cleaned
    assert "eJyrVipSslIyVNJRygAyDZV0lEqUrIxqAQBn0gcH" not in cleaned


def test_it_leaves_other_paths_under_a_logs_folder_alone():
    text = "synced /data/logs/2025-01-01.txt and /logs/app.log"

    assert logconfig.redact(text) == text


def test_json_lines_scrub_extra_fields_and_leave_out_the_request_object(lines):
    class Request:
        def __str__(self) -> str:
            return f"<WSGIRequest: GET '/logs/{TOKEN}'>"

    logging.getLogger("tests.logconfig").warning(
        "Not Found: %s", f"/logs/{TOKEN}", extra={"request": Request(), "path": f"/logs/{TOKEN}", "status_code": 404}
    )

    (line,) = lines()
    assert line["message"] == "Not Found: /logs/***"
    assert line["path"] == "/logs/***"
    assert line["status_code"] == 404
    assert "request" not in line
    assert TOKEN not in json.dumps(line)


def test_gunicorns_access_lines_are_scrubbed_by_the_filter_the_wsgi_module_installs():
    # pointscene/wsgi.py calls it in gunicorn's workers; tests/security/test_log_link_redaction.py runs gunicorn.
    logconfig.scrub_server_logs()

    access = logging.getLogger("gunicorn.access")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)  # gunicorn's own handler: its format, no filter of ours
    access.addHandler(handler)
    access.propagate, was_propagating = False, access.propagate
    access.setLevel(logging.INFO)
    try:
        # As gunicorn.glogging.Logger.access logs: its format, and the atoms as one dict.
        access.info('%(h)s "%(r)s" %(s)s', {"h": "127.0.0.1", "r": f"GET /logs/{TOKEN} HTTP/1.1", "s": "200"})
    finally:
        access.removeHandler(handler)
        access.propagate = was_propagating
    assert stream.getvalue() == '127.0.0.1 "GET /logs/*** HTTP/1.1" 200\n'
