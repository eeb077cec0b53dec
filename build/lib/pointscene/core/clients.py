"""Creating API clients: an OAuth2 application plus the instances its tokens may reach."""

from dataclasses import dataclass

from django.db import transaction
from oauth2_provider.generators import generate_client_secret
from oauth2_provider.models import Application

from pointscene.core.models import ApiClient, Instance


@dataclass(frozen=True)
class NewClient:
    client_id: str
    # Shown once, here; the database keeps only its hash.
    client_secret: str | None


@transaction.atomic
def create_api_client(
    name: str, instance_ids: list[int], *, public: bool = False, can_create_instances: bool = False
) -> NewClient:
    """A confidential client uses client_credentials; a public one (no secret) password and refresh_token."""
    instances = list(Instance.objects.filter(pk__in=instance_ids))
    missing = set(instance_ids) - {i.pk for i in instances}
    if missing:
        raise Instance.DoesNotExist(f"no instance with id {', '.join(map(str, sorted(missing)))}")
    secret = None if public else generate_client_secret()
    application = Application.objects.create(
        name=name,
        client_type=Application.CLIENT_PUBLIC if public else Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_PASSWORD if public else Application.GRANT_CLIENT_CREDENTIALS,
        client_secret=secret or "",
        hash_client_secret=not public,
    )
    client = ApiClient.objects.create(application=application, can_create_instances=can_create_instances)
    client.instances.set(instances)
    return NewClient(client_id=application.client_id, client_secret=secret)
