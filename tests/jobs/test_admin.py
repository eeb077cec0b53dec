import pytest
from django.contrib.auth import get_user_model

from configs.services import add_job_config
from jobs.models import JobHistory, ScheduledJob

ADMIN_PAGES = [
    "/admin/",
    "/admin/jobs/instance/",
    "/admin/jobs/resource/",
    "/admin/jobs/apiclient/",
    "/admin/jobs/scheduledjob/",
    "/admin/jobs/jobhistory/",
    "/admin/configs/remoteconfig/",
]


@pytest.fixture
def operator(db):
    return get_user_model().objects.create_superuser("operator", "op@example.com", "operator-password-1")


@pytest.fixture
def admin_client(client, operator):
    client.force_login(operator)
    return client


@pytest.mark.parametrize("url", ADMIN_PAGES)
def test_it_shows_every_admin_list(admin_client, job, url):
    JobHistory.objects.create(job=job, instance=job.instance)

    assert admin_client.get(url).status_code == 200


def test_it_shows_a_job_page(admin_client, job):
    assert admin_client.get(f"/admin/jobs/scheduledjob/{job.pk}/change/").status_code == 200


def test_it_never_shows_remote_settings(admin_client, resource):
    bucket = {"type": "s3", "access_key_id": "AKIA1", "secret_access_key": "very-secret-value-123"}
    add_job_config(resource, {"bucket": bucket})
    remote = resource.remotes.get()

    listing = admin_client.get("/admin/configs/remoteconfig/")
    page = admin_client.get(f"/admin/configs/remoteconfig/{remote.pk}/change/")

    for response in (listing, page):
        assert response.status_code == 200
        assert b"very-secret-value-123" not in response.content
        assert remote.settings_encrypted.encode() not in response.content


def test_it_validates_a_job_edited_in_the_admin_like_the_api(admin_client, job):
    form = {
        "instance": job.instance_id,
        "name": job.name,
        "workflow": '{"tasks": []}',
        "frequency_type": "CRON_BASED",
        "cron_expression": "61 * * * *",
        "timezone": "UTC",
        "active": "on",
    }

    response = admin_client.post(f"/admin/jobs/scheduledjob/{job.pk}/change/", form)

    assert response.status_code == 200
    assert b"cronExpression" in response.content
    job.refresh_from_db()
    assert job.cron_expression == "30 2 * * *"


def test_it_saves_a_valid_admin_edit_through_the_service(admin_client, job):
    form = {
        "instance": job.instance_id,
        "name": "renamed",
        "workflow": __import__("json").dumps(job.workflow),
        "frequency_type": "INTERVAL_BASED",
        "interval_minutes": "30",
        "cron_expression": "",
        "timezone": "UTC",
        "active": "on",
    }

    response = admin_client.post(f"/admin/jobs/scheduledjob/{job.pk}/change/", form)

    assert response.status_code == 302, response.content[:2000]
    job = ScheduledJob.objects.get(pk=job.pk)
    assert (job.name, job.frequency_type, job.interval_minutes, job.cron_expression) == (
        "renamed",
        "INTERVAL_BASED",
        30,
        None,
    )
