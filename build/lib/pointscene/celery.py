import os

from celery import Celery
from celery.signals import setup_logging

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pointscene.settings")

app = Celery("pointscene")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_configure.connect
def _name_redbeat_settings(sender: Celery, **kwargs) -> None:
    # RedBeat looks its settings up by their bare names; Django settings carry them as CELERY_REDBEAT_*.
    conf = sender.conf
    conf.redbeat_redis_url = conf.get("CELERY_REDBEAT_REDIS_URL") or conf.broker_url
    conf.redbeat_key_prefix = conf.get("CELERY_REDBEAT_KEY_PREFIX") or "redbeat:"
    conf.redbeat_lock_timeout = conf.get("CELERY_REDBEAT_LOCK_TIMEOUT")
    conf.redbeat_redis_options = {}


@setup_logging.connect
def _use_django_logging(**kwargs) -> None:
    # Workers and beat log like the web server (settings.LOGGING: JSON lines with ids, redaction), instead of
    # Celery configuring the root logger its own way.
    from logging.config import dictConfig

    from django.conf import settings

    dictConfig(settings.LOGGING)
