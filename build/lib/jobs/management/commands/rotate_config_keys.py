from configs import services as config_services
from jobs.key_rotation import rotate_webhook_secrets
from jobs.secret_args import rotate_secret_values
from pointscene.core.commands import JsonCommand


class Command(JsonCommand):
    help = (
        "Re-encrypts every stored remote under the newest key in CONFIG_ENCRYPTION_KEYS, while the service runs. "
        "Put the new key first, keep the old ones after it until this has run on every deployment, then drop them. "
        'Prints {"rotated": <remote rows>, "webhookSecretsRotated": <jobs>, "secretHeadersRotated": <jobs>}.'
    )

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=500, help="Rows re-encrypted per transaction.")

    def run(self, batch_size: int = 500, **options):
        return {
            "rotated": config_services.rotate_keys(batch_size=batch_size),
            "webhookSecretsRotated": rotate_webhook_secrets(batch_size=batch_size),
            "secretHeadersRotated": rotate_secret_values(batch_size=batch_size),
        }
