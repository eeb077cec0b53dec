from django.core.management.base import CommandError

from jobs import services
from pointscene.core.commands import JsonCommand
from pointscene.core.models import Instance


class Command(JsonCommand):
    help = 'Creates a resource in an instance. Prints {"id": "..."}.'

    def add_arguments(self, parser):
        parser.add_argument("--instance", type=int, required=True, help="The instance's id.")
        parser.add_argument("name")

    def run(self, name, instance, **options):
        found = Instance.objects.filter(pk=instance).first()
        if found is None:
            raise CommandError(f"no instance with id {instance}")
        return {"id": str(services.create_resource(found, name).pk)}
