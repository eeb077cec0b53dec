"""Run logs in an S3 bucket (django-storages), against moto's S3 server on loopback speaking the S3 protocol."""

import pytest
from django.contrib.auth import get_user_model
from django.core.files.storage import default_storage

from jobs.models import FrequencyType, JobHistory, RunStatus
from jobs.running import runner
from jobs.running.logs import RunLog, signed_log_url
from jobs.services import create_job
from tests.fixtures.s3 import BUCKET

pytestmark = pytest.mark.usefixtures("clean_redis")


def test_it_writes_run_logs_to_the_bucket_and_serves_them_by_signed_link(s3_storage, instance, resource, client):
    job = create_job(
        instance=instance,
        workflow={"tasks": [{"name": "list", "type": "resource.input", "args": {"id": str(resource.pk)}}]},
        frequency_type=FrequencyType.CRON_BASED,
        cron_expression="* * * * *",
    )
    slot = job.next_run()

    run = JobHistory.objects.get(pk=runner.run_scheduled(job.pk, slot))

    assert run.status == RunStatus.SUCCEEDED
    stored = s3_storage.get_object(Bucket=BUCKET, Key=run.log_path)["Body"].read().decode()
    assert "[list] resource.input started" in stored
    client.force_login(get_user_model().objects.create_superuser("ops", "ops@example.com", "ops-password-123"))
    response = client.get(signed_log_url(run))  # an operator's link: it opens in a staff session
    assert response.status_code == 200
    assert b"".join(response.streaming_content).decode() == stored


@pytest.mark.parametrize("storage", ["local", "s3"])
def test_it_stores_a_running_runs_log_so_far_and_then_the_whole_log_at_the_same_key(storage, request, settings):
    s3 = request.getfixturevalue("s3_storage") if storage == "s3" else None
    path = "logs/9/9/9.log"
    run_log = RunLog()
    run_log.line("first line")

    assert run_log.save_so_far(path) == path
    assert run_log.save_so_far(path) is None  # nothing new: nothing written
    with default_storage.open(path, "rb") as stored:
        assert stored.read().endswith(b" first line\n")

    run_log.line("second line")
    assert run_log.save_so_far(path) == path
    run_log.line("last line")
    assert run_log.save(path) == path

    with default_storage.open(path, "rb") as stored:
        lines = stored.read().decode().splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == ["first line", "second line", "last line"]
    if s3 is not None:
        assert [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]] == [path]  # one object, replaced
    else:
        default_storage.delete(path)
    run_log.close()
