"""Run logs: stored through Django's storage, downloaded through a signed, expiring link with no token, and
free of secrets. What a link may not do (forged, re-issued, outliving access) is in tests/security/test_log_links.py."""

import json
from datetime import UTC, datetime
from unittest import mock

import pytest
import redis
from django.conf import settings as django_settings
from django.core import signing
from django.core.files.storage import default_storage

from jobs import services
from jobs.models import FrequencyType, JobHistory, RunStatus
from jobs.running import runner
from jobs.running.logs import SALT, RunLog, holder_of, sign_run, signed_log_url, unsign_run
from pointscene.core.access import Principal
from pointscene.core.models import ApiClient

SLOT = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)
SECRET = "sekret-123"


@pytest.fixture(autouse=True)
def clean_redis():
    client = redis.Redis.from_url(django_settings.REDIS_URL)
    client.flushdb()
    yield
    client.flushdb()


pytestmark = pytest.mark.usefixtures("any_lateness_runs")


@pytest.fixture(autouse=True)
def loopback_allowed(settings):
    settings.JOBS_HTTP_ALLOW_PRIVATE = True
    settings.PUBLIC_BASE_URL = ""


def run_job(instance, tasks: list[dict]) -> JobHistory:
    job = services.create_job(
        instance=instance,
        workflow={"tasks": tasks},
        frequency_type=FrequencyType.CRON_BASED,
        cron_expression="0 * * * *",
    )
    return JobHistory.objects.get(pk=runner.run_scheduled(job.pk, SLOT))


@pytest.fixture
def finished_run(instance, http_server) -> JobHistory:
    run = run_job(instance, [{"name": "ping", "type": "http.request", "args": {"url": http_server.url("/ok")}}])
    assert run.status == RunStatus.SUCCEEDED
    return run


@pytest.fixture
def acme(acme_client) -> Principal:
    """The API caller links are issued to: Acme's client, linked to the run's instance."""
    application_id = ApiClient.objects.get(application__client_id=acme_client.client_id).application_id
    return Principal(linked_instances=frozenset(), scopes=frozenset(), application_id=application_id)


def stored_log(run: JobHistory) -> bytes:
    with default_storage.open(run.log_path, "rb") as f:
        return f.read()


def error_of(response) -> tuple[int, str]:
    return response.status_code, json.loads(response.content)["error"]["code"]


# --------------------------------------------------------------------------- signed links


def test_it_downloads_the_log_through_the_signed_link_without_a_token(client, finished_run, acme):
    url = signed_log_url(finished_run, principal=acme)

    response = client.get(url)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert "no-store" in response["Cache-Control"]
    body = b"".join(response.streaming_content)
    assert body == stored_log(finished_run)
    assert b"[ping] succeeded" in body


def test_it_builds_absolute_links_from_the_public_base_url(settings, finished_run, acme):
    settings.PUBLIC_BASE_URL = "https://jobs.example.com/"

    url = signed_log_url(finished_run, principal=acme)

    assert url.startswith("https://jobs.example.com/logs/")
    assert unsign_run(url.rsplit("/", 1)[1]).run_id == finished_run.pk


def tampered_last_char(token: str) -> str:
    return token[:-1] + ("A" if token[-1] != "A" else "B")


@pytest.mark.parametrize(
    "forge",
    [
        tampered_last_char,
        lambda token: token.replace(":", ";", 1),
        lambda token: token[: len(token) // 2],
        lambda token: "not-a-token",
        lambda token: signing.dumps({"run": 1}),  # no salt: a signature made for something else
        lambda token: signing.dumps({"run": 1}, salt=SALT, key="another secret key"),
        lambda token: signing.dumps({"job": 1}, salt=SALT),
        lambda token: signing.dumps({"run": "x"}, salt=SALT),
        lambda token: signing.dumps([1], salt=SALT),
    ],
    ids=[
        "last-char",
        "separator",
        "truncated",
        "garbage",
        "other-salt",
        "other-key",
        "no-run",
        "run-not-a-number",
        "not-an-object",
    ],
)
def test_it_refuses_a_tampered_link(client, finished_run, acme, forge):
    token = forge(sign_run(finished_run, holder_of(acme)))

    response = client.get(f"/logs/{token}")

    assert error_of(response) == (404, "NOT_FOUND")
    assert b"[ping]" not in response.content


def test_it_refuses_a_link_to_another_run_made_by_editing_the_id(client, finished_run, acme):
    token = sign_run(finished_run, holder_of(acme))
    payload, rest = token.split(":", 1)
    data = signing.loads(token, salt=SALT)
    other = signing.dumps({**data, "r": finished_run.pk + 1}, salt=SALT, compress=True).split(":", 1)[0]

    response = client.get(f"/logs/{other}:{rest}")

    assert payload != other
    assert error_of(response) == (404, "NOT_FOUND")


def signed_at(run: JobHistory, holder: Principal, seconds_ago: int) -> str:
    with mock.patch("django.core.signing.time.time", return_value=signing.time.time() - seconds_ago):
        return sign_run(run, holder_of(holder))


def test_it_refuses_an_expired_link(client, finished_run, acme):
    token = signed_at(finished_run, acme, django_settings.JOBS_LOG_URL_MAX_AGE + 60)

    response = client.get(f"/logs/{token}")

    assert error_of(response) == (404, "NOT_FOUND")


def test_it_honours_the_expiry_setting(client, settings, finished_run, acme):
    token = signed_at(finished_run, acme, 120)
    assert client.get(f"/logs/{token}").status_code == 200  # default: five minutes

    settings.JOBS_LOG_URL_MAX_AGE = 60

    assert error_of(client.get(f"/logs/{token}")) == (404, "NOT_FOUND")


def test_it_answers_not_found_for_a_run_without_a_log(client, job, acme):
    queued = JobHistory.objects.create(job=job, instance_id=job.instance_id)

    response = client.get(signed_log_url(queued, principal=acme))

    assert error_of(response) == (404, "NOT_FOUND")


def test_it_answers_not_found_once_the_run_or_its_file_is_gone(client, finished_run, acme):
    url = signed_log_url(finished_run, principal=acme)
    default_storage.delete(finished_run.log_path)
    assert error_of(client.get(url)) == (404, "NOT_FOUND")

    finished_run.delete()
    assert error_of(client.get(url)) == (404, "NOT_FOUND")


def test_it_serves_logs_only_to_get(client, finished_run, acme):
    assert client.post(signed_log_url(finished_run, principal=acme)).status_code == 405


# --------------------------------------------------------------------------- the log itself


def test_it_writes_log_lines_with_timestamps_and_one_line_per_line():
    log = RunLog()
    log.line("first")
    log.line("two\nlines")
    log.line("")
    path = "tests/runlog-unit.log"
    try:
        stored = log.save(path)
        with default_storage.open(stored, "rb") as f:
            lines = f.read().decode().splitlines()
    finally:
        log.close()
        default_storage.delete(path)

    assert stored == path
    assert [line.split(" ", 1)[1] if " " in line else "" for line in lines] == ["first", "two", "lines", ""]
    for line in lines:
        assert datetime.fromisoformat(line.split(" ", 1)[0].replace("Z", "+00:00")).tzinfo is not None


def test_it_replaces_an_older_log_at_the_same_path():
    path = "tests/runlog-replace.log"
    for text in ("old run", "new run"):
        log = RunLog()
        log.line(text)
        log.save(path)
        log.close()
    try:
        with default_storage.open(path, "rb") as f:
            content = f.read().decode()
    finally:
        default_storage.delete(path)

    assert "new run" in content
    assert "old run" not in content


# --------------------------------------------------------------------------- secrets


def secret_tasks(url: str) -> list[dict]:
    return [
        {
            "name": "hook",
            "type": "http.request",
            "args": {"url": url, "method": "POST", "secretHeaders": {"Authorization": f"Bearer {SECRET}"}},
        }
    ]


@pytest.mark.parametrize("path", ["/ok", "/fail", "/redirect?to=/status/204"])
def test_it_keeps_request_headers_out_of_the_log(instance, http_server, path):
    run = run_job(instance, secret_tasks(http_server.url(path)))

    assert http_server.requests[0].headers["Authorization"] == f"Bearer {SECRET}"  # it was sent
    assert SECRET not in stored_log(run).decode()
    assert SECRET not in json.dumps(run.steps)
    assert SECRET not in (run.error or "")


def test_it_keeps_the_password_in_a_urls_userinfo_out_of_the_log(instance, http_server):
    url = http_server.url("/ok").replace("http://", f"http://hook:{SECRET}@")

    run = run_job(instance, [{"name": "hook", "type": "http.request", "args": {"url": url}}])

    assert run.status == RunStatus.SUCCEEDED
    assert "Authorization" in http_server.requests[0].headers  # requests turned the userinfo into basic auth
    assert SECRET not in stored_log(run).decode()
    assert SECRET not in json.dumps(run.steps)


def test_it_keeps_the_password_in_a_urls_userinfo_out_of_a_failure(instance, http_server):
    url = http_server.url("/fail").replace("http://", f"http://hook:{SECRET}@")

    run = run_job(instance, [{"name": "hook", "type": "http.request", "args": {"url": url}}])

    assert run.status == RunStatus.FAILED
    assert SECRET not in (run.error or "")
    assert SECRET not in stored_log(run).decode()
