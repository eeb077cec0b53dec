"""Re-encrypting what jobs store under a config key (rotate_config_keys): today, their webhook secrets."""

from cryptography.fernet import InvalidToken
from django.db import transaction

from configs.crypto import DecryptionFailed, fernet
from jobs.models import ScheduledJob


def rotate_webhook_secrets(batch_size: int = 500) -> int:
    """Re-encrypts every job's webhook secret under the newest config key. Rows rewritten."""
    multi = fernet()
    rotated, last_id = 0, 0
    while True:
        with transaction.atomic():
            jobs = list(
                ScheduledJob.objects.select_for_update()
                .filter(pk__gt=last_id, webhook_secret__isnull=False)
                .order_by("pk")
                .only("pk", "webhook_secret")[:batch_size]
            )
            if not jobs:
                return rotated
            for job in jobs:
                try:
                    job.webhook_secret = multi.rotate(job.webhook_secret.encode()).decode()
                except InvalidToken:
                    raise DecryptionFailed(
                        f"the webhook secret of job {job.pk} cannot be decrypted with any configured key"
                    ) from None
            ScheduledJob.objects.bulk_update(jobs, ["webhook_secret"])
        rotated += len(jobs)
        last_id = jobs[-1].pk
