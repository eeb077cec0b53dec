from jobs import services
from pointscene.core.commands import JsonCommand


class Command(JsonCommand):
    help = 'Creates an instance (tenant). Prints {"id": "..."}.'

    def add_arguments(self, parser):
        parser.add_argument("name")

    def run(self, name, **options):
        return {"id": str(services.create_instance(name).pk)}
