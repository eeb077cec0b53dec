import json

from django.core.management.base import BaseCommand, CommandError


class JsonCommand(BaseCommand):
    """A command whose stdout is one JSON object, so scripts can read it."""

    def handle(self, *args, **options):
        try:
            result = self.run(*args, **options)
        except CommandError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure becomes a clean CommandError on stderr
            raise CommandError(str(exc)) from None
        self.stdout.write(json.dumps(result))

    def run(self, *args, **options) -> dict:
        raise NotImplementedError
