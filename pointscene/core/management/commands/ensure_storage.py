from pointscene.core.commands import JsonCommand
from pointscene.core.storage import ensure_storage


class Command(JsonCommand):
    help = (
        "Makes the service's storage ready: creates the S3 bucket (STORAGE_S3_BUCKET) if it does not exist, or the "
        'local folder. Prints {"storage": "s3", "bucket": ..., "created": true|false} (or the folder).'
    )

    def run(self, **options):
        return ensure_storage()
