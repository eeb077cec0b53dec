import time

from django.conf import settings
from django.core.management.base import CommandError

from jobs.scheduling.beat import beat_health
from pointscene.core.commands import JsonCommand


class Command(JsonCommand):
    help = (
        "compose's beat healthcheck: exits 0 while this container's beat ticks (its heartbeat file is newer than "
        "BEAT_HEARTBEAT_MAX_AGE seconds) or stands by while another beat holds RedBeat's lock; 1 otherwise."
    )

    def run(self, **options):
        found = beat_health(time.time())
        if not found["ok"]:
            raise CommandError(f"beat unhealthy: {found['detail']} (heartbeat {settings.BEAT_HEARTBEAT_FILE})")
        return found
