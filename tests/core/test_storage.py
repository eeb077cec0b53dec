"""manage.py ensure_storage (pointscene.core.storage.ensure_storage): an empty object store beside the service
gets its bucket; running it again changes nothing. Against moto's S3 server on loopback."""

import json
from io import StringIO

from django.core.management import call_command

from tests.fixtures.s3 import BUCKET


def test_it_creates_the_bucket_once(s3_storage):
    s3_storage.delete_bucket(Bucket=BUCKET)  # an object store just started, with no bucket yet

    first, second = (json.loads(call_command_output("ensure_storage")) for _ in range(2))

    assert first == {"storage": "s3", "bucket": BUCKET, "created": True}
    assert second == {"storage": "s3", "bucket": BUCKET, "created": False}
    assert BUCKET in [b["Name"] for b in s3_storage.list_buckets()["Buckets"]]


def test_it_makes_the_local_folder(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")

    answer = json.loads(call_command_output("ensure_storage"))

    assert answer == {"storage": "folder", "location": str(tmp_path / "media"), "created": False}
    assert (tmp_path / "media").is_dir()


def call_command_output(name: str) -> str:
    out = StringIO()
    call_command(name, stdout=out)
    return out.getvalue()
