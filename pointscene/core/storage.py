"""Where things live in the service's own file storage (Django's default storage: a folder, or S3)."""

from pathlib import Path

from django.core.files.storage import FileSystemStorage, default_storage


def instance_area(instance_id: int) -> str:
    return f"instances/{instance_id}/"


def resource_area(resource_id: int) -> str:
    return f"resources/{resource_id}/"


def instance_log_folder(instance_id: int) -> str:
    """Every run log of the instance's jobs, and nothing else: deleting the instance empties it."""
    # Under the instance's .log/ folder, which is why clients exclude ".log/**" from their syncs.
    return f"{instance_area(instance_id)}.log/"


def job_log_folder(instance_id: int, job_id: int) -> str:
    """Every run log of the job, and nothing else: deleting the job empties it."""
    return f"{instance_log_folder(instance_id)}job-{job_id}/"


def run_log_path(instance_id: int, job_id: int, run_id: int) -> str:
    return f"{job_log_folder(instance_id, job_id)}run-{run_id}.log"


def ensure_storage() -> dict:
    """Makes the service's storage ready to write to: the S3 bucket created if it does not exist yet (an object
    store started empty beside the service, as compose's), or the local folder. Says what it found and did."""
    storage = default_storage
    if isinstance(storage, FileSystemStorage):
        Path(storage.location).mkdir(parents=True, exist_ok=True)
        return {"storage": "folder", "location": str(storage.location), "created": False}
    # botocore comes with the S3 storage (the optional `s3` extra), so only an S3 storage imports it.
    from botocore.exceptions import ClientError

    client = storage.connection.meta.client
    bucket = storage.bucket_name
    try:
        client.head_bucket(Bucket=bucket)
        created = False
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
            raise
        client.create_bucket(Bucket=bucket)
        created = True
    return {"storage": "s3", "bucket": bucket, "created": created}
