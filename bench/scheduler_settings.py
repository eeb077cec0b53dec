"""Settings for bench/scheduler.py only: the service's settings plus django-celery-beat (a reference scheduler).

Never used by the service; migrate it into the benchmark's own database only (bench/scheduler.py does).
"""

from pointscene.settings import *  # noqa: F403
from pointscene.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "django_celery_beat"]
