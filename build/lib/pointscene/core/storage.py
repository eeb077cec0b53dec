"""Where things live in the service's own file storage (Django's default storage: a folder, or S3)."""


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
