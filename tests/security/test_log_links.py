"""Signed log links (/logs/<token>) cannot be made from SECRET_KEY and a run id, name the holder they were issued
to, and stop working once the run (or its job) is gone, the holder loses the instance, or a few minutes pass.

Links come from the API (signedLogUrl) with real tokens and are opened by a client that sends no token. Every
refusal is the same 404 as a run without a log: the answer never says which check failed.
"""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core import signing
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import Client as HttpClient
from django.utils.crypto import salted_hmac

from jobs import services
from jobs.models import JobHistory, RunStatus
from jobs.running.logs import SALT, signed_log_url
from pointscene.core.models import ApiClient

LOG_TEXT = b"2026-01-01T00:00:00.000Z [ping] succeeded\n"
GET_RUN = "query($id: ID!) { getScheduledJobHistory(jobHistoryId: $id) { id signedLogUrl } }"
OLD_SALT = "pointscene.jobs.run-log"
ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture
def logged_run(job) -> JobHistory:
    """A finished Acme run with a stored log."""
    run = JobHistory.objects.create(job=job, instance_id=job.instance_id, status=RunStatus.SUCCEEDED)
    path = default_storage.save(
        f"instances/{job.instance_id}/.log/job-{job.pk}/run-{run.pk}.log", ContentFile(LOG_TEXT)
    )
    JobHistory.objects.filter(pk=run.pk).update(log_path=path)
    run.refresh_from_db()
    yield run
    default_storage.delete(path)


@pytest.fixture
def anonymous() -> HttpClient:
    """A browser with no token and no session: what a link alone opens."""
    return HttpClient()


def link_from_api(api, token: str, run: JobHistory) -> str:
    status, body = api.gql(GET_RUN, {"id": str(run.pk)}, token)
    assert status == 200
    assert "errors" not in body, body
    url = body["data"]["getScheduledJobHistory"]["signedLogUrl"]
    assert "/logs/" in (url or "")
    return "/logs/" + url.rsplit("/logs/", 1)[1]


def download(client: HttpClient, path: str) -> tuple[int, bytes]:
    response = client.get(path)
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return response.status_code, body


def not_found_body(client: HttpClient) -> bytes:
    """What a link to nothing answers: every refusal must read exactly like it."""
    status, body = download(client, "/logs/no-such-link")
    assert status == 404
    assert json.loads(body)["error"]["code"] == "NOT_FOUND"
    return body


def app_id(client) -> int:
    return ApiClient.objects.get(application__client_id=client.client_id).application_id


def test_it_opens_the_log_through_the_link_the_api_gave_without_a_token(api, acme_token, logged_run, anonymous):
    path = link_from_api(api, acme_token, logged_run)

    assert download(anonymous, path) == (200, LOG_TEXT)


def test_it_refuses_links_forged_from_the_secret_key_and_the_run_id(
    api, acme_client, acme_token, logged_run, anonymous
):
    holder = f"a{app_id(acme_client)}"
    forged = [
        signing.dumps({"run": logged_run.pk}, salt=OLD_SALT, compress=True),  # the old link format
        signing.dumps({"run": logged_run.pk}, salt=SALT, compress=True),
        signing.dumps({"r": logged_run.pk, "h": holder, "m": "0" * 32}, salt=SALT, compress=True),
        # The MAC as it would be if the run's log_key were empty or the SECRET_KEY itself.
        signing.dumps(
            {"r": logged_run.pk, "h": holder, "m": salted_hmac(SALT, f"{logged_run.pk}:{holder}").hexdigest()[:32]},
            salt=SALT,
            compress=True,
        ),
    ]
    missing = not_found_body(anonymous)

    for token in forged:
        assert download(anonymous, f"/logs/{token}") == (404, missing), token
    assert download(anonymous, link_from_api(api, acme_token, logged_run))[0] == 200


def test_it_refuses_a_leaked_link_re_signed_for_another_holder(api, acme_client, acme_token, logged_run, anonymous):
    """Someone holding SECRET_KEY and one link still cannot make a link for a holder it was not issued to."""
    token = link_from_api(api, acme_token, logged_run).rsplit("/", 1)[1]
    data = signing.loads(token, salt=SALT)
    assert data["h"] == f"a{app_id(acme_client)}"
    resigned = signing.dumps({**data, "h": f"a{app_id(acme_client) + 1}"}, salt=SALT, compress=True)

    assert download(anonymous, f"/logs/{resigned}") == (404, not_found_body(anonymous))


def test_it_stops_a_link_once_the_job_is_deleted(api, acme_token, logged_run, anonymous):
    path = link_from_api(api, acme_token, logged_run)

    services.delete_job(logged_run.job)

    assert download(anonymous, path) == (404, not_found_body(anonymous))


def test_it_stops_a_link_once_the_client_is_unlinked_from_the_instance(
    api, acme_client, acme_token, instance, logged_run, anonymous
):
    path = link_from_api(api, acme_token, logged_run)
    api_client = ApiClient.objects.get(application__client_id=acme_client.client_id)

    api_client.instances.remove(instance)
    assert download(anonymous, path) == (404, not_found_body(anonymous))

    api_client.instances.add(instance)  # the link names the client, not a moment: access back, link back
    assert download(anonymous, path) == (200, LOG_TEXT)


def test_it_stops_a_users_link_once_the_user_leaves_the_instance_or_is_deactivated(
    api, public_client, alice, instance, logged_run, anonymous
):
    token = api.password_token(public_client, scope=f"instance-read-{instance.pk}")["access_token"]
    path = link_from_api(api, token, logged_run)
    assert download(anonymous, path) == (200, LOG_TEXT)

    instance.members.remove(alice)
    assert download(anonymous, path) == (404, not_found_body(anonymous))

    instance.members.add(alice)
    get_user_model().objects.filter(pk=alice.pk).update(is_active=False)
    assert download(anonymous, path) == (404, not_found_body(anonymous))


def test_it_stops_a_link_once_it_is_older_than_the_max_age(settings, api, acme_token, logged_run, anonymous):
    path = link_from_api(api, acme_token, logged_run)
    later = signing.time.time() + settings.JOBS_LOG_URL_MAX_AGE + 1

    with mock.patch("django.core.signing.time.time", return_value=later):
        assert download(anonymous, path) == (404, not_found_body(anonymous))
    assert download(anonymous, path)[0] == 200


def test_it_never_opens_an_old_link_on_a_new_run_that_reuses_the_id(api, acme_token, logged_run, anonymous):
    path = link_from_api(api, acme_token, logged_run)
    pk, job, log_path = logged_run.pk, logged_run.job, logged_run.log_path
    JobHistory.objects.filter(pk=pk).delete()

    JobHistory.objects.create(pk=pk, job=job, instance_id=job.instance_id, log_path=log_path)

    assert download(anonymous, path) == (404, not_found_body(anonymous))


def test_it_keeps_links_working_across_a_key_rotation_only_through_the_fallbacks(
    settings, api, acme_token, logged_run, anonymous
):
    path = link_from_api(api, acme_token, logged_run)
    old_key = settings.SECRET_KEY
    settings.SECRET_KEY = secrets.token_urlsafe(50)

    settings.SECRET_KEY_FALLBACKS = [old_key]
    assert download(anonymous, path) == (200, LOG_TEXT)

    settings.SECRET_KEY_FALLBACKS = []
    assert download(anonymous, path) == (404, not_found_body(anonymous))


def test_it_opens_operator_links_only_in_a_staff_session(logged_run, anonymous):
    path = signed_log_url(logged_run)  # what the admin console shows
    staff = get_user_model().objects.create_user("ops", password="ops-password-123", is_staff=True)
    clerk = get_user_model().objects.create_user("clerk", password="clerk-password-123")

    assert download(anonymous, path) == (404, not_found_body(anonymous))
    anonymous.force_login(clerk)
    assert download(anonymous, path)[0] == 404
    anonymous.force_login(staff)  # staff, but without permission to view runs
    assert download(anonymous, path)[0] == 404
    staff.user_permissions.add(Permission.objects.get(codename="view_jobhistory", content_type__app_label="jobs"))
    anonymous.force_login(staff)
    assert download(anonymous, path) == (200, LOG_TEXT)


def test_it_keeps_the_default_link_life_to_minutes(tmp_path):
    env = {name: value for name, value in os.environ.items() if name != "JOBS_LOG_URL_MAX_AGE"}
    code = "import django; django.setup(); from django.conf import settings; print(settings.JOBS_LOG_URL_MAX_AGE)"

    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "pointscene.settings", "VAR_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr
    assert 0 < int(done.stdout.strip()) <= 900
