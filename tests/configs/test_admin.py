"""Remotes in the admin (configs/admin.py): names, types and non-secret settings shown; secrets write-only and never
in any page's HTML, in any encoding; every save through configs.services.add_job_config, with its errors as form
errors."""

import json
import re

import pytest
from django.contrib.auth import get_user_model

from configs.crypto import decrypt_json
from configs.models import RemoteConfig
from configs.services import add_job_config
from jobs.models import JobHistory
from tests.fixtures.leaks import Scanner, register_secret

SECRET_KEY = register_secret("s3-secret-access-key-for-the-admin-tests")
NEW_SECRET_KEY = register_secret("s3-replacement-secret-key-typed-in-admin")
DAV_PASS = register_secret("webdav-pass-for-the-admin-tests")
DAV_TOKEN = register_secret("webdav-bearer-token-for-the-admin-tests")
TYPED_SECRET = register_secret("a-secret-typed-into-a-form-that-fails")
BUCKET = {
    "type": "s3",
    "provider": "AWS",
    "access_key_id": "AKIAADMINTESTS",
    "secret_access_key": SECRET_KEY,
    "region": "eu-north-1",
}
DAV = {"type": "webdav", "url": "https://dav.example.com/remote.php/dav", "user": "ops", "pass": DAV_PASS}


@pytest.fixture
def operator(db):
    return get_user_model().objects.create_superuser("operator", "op@example.com", "operator-password-1")


@pytest.fixture
def admin_client(client, operator):
    client.force_login(operator)
    return client


@pytest.fixture
def bucket(resource) -> RemoteConfig:
    add_job_config(resource, {"bucket": BUCKET})
    return RemoteConfig.objects.get(resource=resource, name="bucket")


@pytest.fixture
def dav(resource) -> RemoteConfig:
    add_job_config(resource, {"dav": DAV})
    return RemoteConfig.objects.get(resource=resource, name="dav")


def stored(remote: RemoteConfig) -> dict:
    return decrypt_json(RemoteConfig.objects.get(pk=remote.pk).settings_encrypted)


def assert_no_secret(response, *extra: str) -> None:
    """No secret of these tests (nor the ciphertext) in the page, as is or encoded (JSON, URL, base64, hex)."""
    secrets = [SECRET_KEY, NEW_SECRET_KEY, DAV_PASS, DAV_TOKEN, TYPED_SECRET, *extra]
    found = Scanner(secrets).find(response.content)
    assert not found, [f"{s[:4]}... ({len(s)} chars)" for s in found]
    for remote in RemoteConfig.objects.all():
        assert remote.settings_encrypted.encode() not in response.content


def change(admin_client, remote: RemoteConfig, settings_: dict | str, **fields):
    body = json.dumps(settings_) if isinstance(settings_, dict) else settings_
    return admin_client.post(
        f"/admin/configs/remoteconfig/{remote.pk}/change/", {"settings_json": body, "secrets_json": "", **fields}
    )


def form_errors(response) -> dict:
    assert response.status_code == 200, response.status_code
    form = response.context["adminform"].form
    return {key: [str(m) for m in value] for key, value in form.errors.items()}


def test_it_lists_remote_names_types_non_secret_settings_and_which_secrets_are_set(admin_client, bucket, dav):
    response = admin_client.get("/admin/configs/remoteconfig/")

    assert response.status_code == 200
    html = response.content.decode()
    for text in ("bucket", "s3", "dav", "webdav", "access_key_id=AKIAADMINTESTS", "region=eu-north-1", "user=ops"):
        assert text in html
    assert re.search(r'title="set">secret_access_key ✓', html)
    assert re.search(r'title="not set">bearer_token ✗', html)
    assert "Acme" in html
    assert_no_secret(response)


def test_it_filters_remotes_by_type_instance_and_resource(admin_client, bucket, dav, other_resource):
    add_job_config(other_resource, {"theirs": BUCKET})
    base = "/admin/configs/remoteconfig/"

    def names(query: str) -> set[str]:
        return {r.name for r in admin_client.get(base + query).context["cl"].result_list}

    assert names("?type=webdav") == {"dav"}
    assert names(f"?instance={other_resource.instance_id}") == {"theirs"}
    assert names(f"?resource={bucket.resource_id}") == {"bucket", "dav"}
    assert names("?q=buck") == {"bucket"}


def test_the_change_page_shows_non_secret_settings_and_write_only_secret_inputs(admin_client, bucket):
    response = admin_client.get(f"/admin/configs/remoteconfig/{bucket.pk}/change/")

    assert response.status_code == 200
    form = response.context["adminform"].form
    assert json.loads(form["settings_json"].value()) == {
        "provider": "AWS",
        "access_key_id": "AKIAADMINTESTS",
        "region": "eu-north-1",
    }
    html = response.content.decode()
    [secret_input] = re.findall(r'<input[^>]*name="secret__secret_access_key"[^>]*>', html)
    assert 'type="password"' in secret_input
    assert "value=" not in secret_input
    assert "set: leave blank to keep it" in html
    assert 'name="clear__secret_access_key"' in html
    assert_no_secret(response)


def test_a_blank_secret_keeps_the_stored_one_while_settings_change(admin_client, bucket):
    response = change(
        admin_client, bucket, {"provider": "AWS", "access_key_id": "AKIAADMINTESTS", "region": "eu-west-1"}
    )

    assert response.status_code == 302, form_errors(response)
    assert stored(bucket) == {**BUCKET, "region": "eu-west-1"}


def test_leaving_an_option_out_of_the_settings_removes_it(admin_client, bucket):
    response = change(admin_client, bucket, {"provider": "AWS", "access_key_id": "AKIAADMINTESTS"})

    assert response.status_code == 302, form_errors(response)
    assert "region" not in stored(bucket)
    assert stored(bucket)["secret_access_key"] == SECRET_KEY


def test_a_secret_typed_in_replaces_the_stored_one_and_is_never_shown(admin_client, bucket):
    response = change(
        admin_client,
        bucket,
        {"provider": "AWS", "access_key_id": "AKIAADMINTESTS", "region": "eu-north-1"},
        secret__secret_access_key=NEW_SECRET_KEY,
    )

    assert response.status_code == 302, form_errors(response)
    assert stored(bucket) == {**BUCKET, "secret_access_key": NEW_SECRET_KEY}
    for url in (
        response["Location"],
        f"/admin/configs/remoteconfig/{bucket.pk}/change/",
        f"/admin/configs/remoteconfig/{bucket.pk}/history/",
    ):
        page = admin_client.get(url)
        assert page.status_code == 200
        assert_no_secret(page)


def test_an_optional_secret_can_be_removed_or_set(admin_client, dav):
    settings_ = {"url": DAV["url"], "user": "ops"}

    response = change(admin_client, dav, settings_, clear__pass="on", secret__bearer_token=DAV_TOKEN)

    assert response.status_code == 302, form_errors(response)
    assert stored(dav) == {"type": "webdav", **settings_, "bearer_token": DAV_TOKEN}


def test_replacing_and_removing_the_same_secret_is_an_error(admin_client, dav):
    response = change(
        admin_client, dav, {"url": DAV["url"], "user": "ops"}, clear__pass="on", secret__pass=TYPED_SECRET
    )

    assert form_errors(response) == {"secret__pass": ["either give a new value or remove it, not both"]}
    assert stored(dav) == DAV
    assert_no_secret(response)


def test_the_services_errors_come_back_on_the_field_they_name_without_the_secret(admin_client, bucket):
    unknown = change(admin_client, bucket, {"provider": "AWS", "access_key_id": "AKIAADMINTESTS", "colour": "blue"})
    cleared = change(
        admin_client, bucket, {"provider": "AWS", "access_key_id": "AKIAADMINTESTS"}, clear__secret_access_key="on"
    )
    spaced = change(
        admin_client,
        bucket,
        {"provider": "AWS", "access_key_id": "AKIAADMINTESTS"},
        secret__secret_access_key=f" {TYPED_SECRET} ",
    )

    assert form_errors(unknown) == {"settings_json": ["colour: s3 remotes have no setting 'colour'"]}
    assert form_errors(cleared) == {"secret__secret_access_key": ["s3 remotes need secret_access_key"]}
    assert form_errors(spaced) == {"secret__secret_access_key": ["must not start or end with spaces"]}
    assert stored(bucket) == BUCKET
    for response in (unknown, cleared, spaced):
        assert_no_secret(response)


def test_a_secret_typed_into_the_settings_box_is_stored_but_never_rendered_back(admin_client, bucket):
    failing = change(
        admin_client,
        bucket,
        {"provider": "AWS", "access_key_id": "AKIAADMINTESTS", "session_token": TYPED_SECRET, "colour": "blue"},
    )
    assert "colour" in str(form_errors(failing))
    assert_no_secret(failing)

    saved = change(
        admin_client, bucket, {"provider": "AWS", "access_key_id": "AKIAADMINTESTS", "session_token": TYPED_SECRET}
    )

    assert saved.status_code == 302, form_errors(saved)
    assert stored(bucket)["session_token"] == TYPED_SECRET
    assert_no_secret(admin_client.get(f"/admin/configs/remoteconfig/{bucket.pk}/change/"))


def test_invalid_json_is_a_form_error(admin_client, bucket):
    assert form_errors(change(admin_client, bucket, "{not json")) == {"settings_json": ["Enter a valid JSON."]}
    assert form_errors(change(admin_client, bucket, "[1, 2]")) == {
        "settings_json": ["must be a JSON object of option name -> value"]
    }
    assert form_errors(change(admin_client, bucket, {"type": "drive"})) == {
        "settings_json": ["give the type in its own field, not here"]
    }


def test_the_add_page_creates_a_remote_through_the_service(admin_client, resource):
    response = admin_client.post(
        "/admin/configs/remoteconfig/add/",
        {
            "resource": resource.pk,
            "name": "dav",
            "type": "webdav",
            "settings_json": json.dumps({"url": DAV["url"], "user": "ops"}),
            "secrets_json": json.dumps({"pass": DAV_PASS}),
        },
    )

    assert response.status_code == 302, form_errors(response)
    remote = RemoteConfig.objects.get(resource=resource, name="dav")
    assert stored(remote) == DAV
    assert_no_secret(admin_client.get("/admin/configs/remoteconfig/add/"))


def test_the_add_page_shows_errors_without_the_secrets_that_were_typed(admin_client, resource, bucket):
    bad_type = admin_client.post(
        "/admin/configs/remoteconfig/add/",
        {
            "resource": resource.pk,
            "name": "other",
            "type": "not-a-backend",
            "settings_json": json.dumps({"user": "ops", "pass": TYPED_SECRET}),
            "secrets_json": json.dumps({"password": TYPED_SECRET}),
        },
    )
    taken = admin_client.post(
        "/admin/configs/remoteconfig/add/",
        {
            "resource": resource.pk,
            "name": "bucket",
            "type": "s3",
            "settings_json": json.dumps({"provider": "AWS", "access_key_id": "AKIAOTHER"}),
            "secrets_json": json.dumps({"secret_access_key": TYPED_SECRET}),
        },
    )
    reserved = admin_client.post(
        "/admin/configs/remoteconfig/add/",
        {"resource": resource.pk, "name": "resource", "type": "s3", "settings_json": "{}", "secrets_json": "{}"},
    )

    assert form_errors(bad_type) == {"type": ["'not-a-backend' is not a remote type rclone knows"]}
    assert "already exists" in str(form_errors(taken))
    assert form_errors(reserved) == {"name": ["'resource' is reserved for the resource's own storage"]}
    for response in (bad_type, taken, reserved):
        assert_no_secret(response)
    assert stored(bucket) == BUCKET
    assert set(RemoteConfig.objects.values_list("name", flat=True)) == {"bucket"}


def test_the_add_page_never_prefills_settings_from_the_query_string(admin_client, resource):
    response = admin_client.get(
        f"/admin/configs/remoteconfig/add/?name=x&settings_json=%7B%22pass%22%3A%22{TYPED_SECRET}%22%7D"
    )

    assert response.status_code == 200
    assert_no_secret(response)


def test_deleting_a_remote_goes_through_the_service(admin_client, bucket, dav):
    response = admin_client.post(f"/admin/configs/remoteconfig/{bucket.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert list(RemoteConfig.objects.values_list("name", flat=True)) == ["dav"]

    response = admin_client.post(
        "/admin/configs/remoteconfig/", {"action": "delete_selected", "_selected_action": [dav.pk], "post": "yes"}
    )
    assert response.status_code == 302
    assert not RemoteConfig.objects.exists()


def test_no_admin_page_shows_a_secret(admin_client, bucket, dav, job, settings):
    settings.HEALTH_WORKER_PING_TIMEOUT = 0.1
    JobHistory.objects.create(job=job, instance=job.instance, status="FAILED", error="boom")
    urls = [
        "/admin/",
        "/admin/dashboard/",
        "/admin/configs/remoteconfig/",
        "/admin/configs/remoteconfig/add/",
        f"/admin/configs/remoteconfig/{bucket.pk}/change/",
        f"/admin/configs/remoteconfig/{dav.pk}/change/",
        f"/admin/configs/remoteconfig/{dav.pk}/delete/",
        f"/admin/configs/remoteconfig/{dav.pk}/history/",
        "/admin/core/resource/",
        f"/admin/core/resource/{bucket.resource_id}/change/",
        "/admin/jobs/scheduledjob/",
        f"/admin/jobs/scheduledjob/{job.pk}/change/",
        "/admin/jobs/jobhistory/",
    ]
    for url in urls:
        response = admin_client.get(url)
        assert response.status_code == 200, url
        assert_no_secret(response)


def test_non_staff_are_sent_to_the_login_page(client, bucket, alice):
    client.force_login(alice)

    for url in ("/admin/configs/remoteconfig/", f"/admin/configs/remoteconfig/{bucket.pk}/change/"):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")
    response = change(client, bucket, {"provider": "AWS"}, secret__secret_access_key=TYPED_SECRET)
    assert response.status_code == 302
    assert stored(bucket) == BUCKET
