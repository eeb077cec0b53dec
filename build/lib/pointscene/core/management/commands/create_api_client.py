from pointscene.core.clients import create_api_client
from pointscene.core.commands import JsonCommand


class Command(JsonCommand):
    help = (
        "Creates an OAuth2 API client linked to instances. Prints "
        '{"client_id": ..., "client_secret": ...}; the secret is shown only this once.'
    )

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument(
            "--instance", type=int, action="append", default=[], dest="instances", help="Repeat for each instance."
        )
        parser.add_argument(
            "--public",
            action="store_true",
            help="A public client (no secret) for the password and refresh_token grants.",
        )
        parser.add_argument("--can-create-instances", action="store_true", help="May ask for instance-create.")

    def run(self, name, instances, public, can_create_instances, **options):
        client = create_api_client(name, instances, public=public, can_create_instances=can_create_instances)
        return {"client_id": client.client_id, "client_secret": client.client_secret}
