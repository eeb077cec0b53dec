import secrets

from django.contrib.auth import get_user_model
from django.db import transaction

from pointscene.core.commands import JsonCommand
from pointscene.core.models import Instance


class Command(JsonCommand):
    help = (
        "Creates a user for the password grant, member of the given instances. Prints "
        '{"username": ..., "password": ...}; a generated password is shown only this once.'
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--instance", type=int, action="append", default=[], dest="instances")

    @transaction.atomic
    def run(self, username, instances, **options):
        found = list(Instance.objects.filter(pk__in=instances))
        missing = set(instances) - {i.pk for i in found}
        if missing:
            raise ValueError(f"no instance with id {', '.join(map(str, sorted(missing)))}")
        password = secrets.token_urlsafe(18)
        user = get_user_model().objects.create_user(username=username, password=password)
        user.instances.set(found)
        return {"username": username, "password": password}
