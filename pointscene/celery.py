import os

from celery import Celery
from celery.signals import setup_logging, task_postrun, task_prerun
from django.db import close_old_connections

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
    # Sentinel: where the sentinels are and the primary's name (pointscene/core/sentinel.py); {} for a plain URL.
    conf.redbeat_redis_options = dict(conf.get("CELERY_REDBEAT_REDIS_OPTIONS") or {})


@setup_logging.connect
def _use_django_logging(**kwargs) -> None:
    # Workers and beat log like the web server (settings.LOGGING: JSON lines with ids, redaction), instead of
    # Celery configuring the root logger its own way.
    from logging.config import dictConfig

    from django.conf import settings

    dictConfig(settings.LOGGING)


@task_prerun.connect
@task_postrun.connect
def _keep_database_connections(sender=None, **kwargs) -> None:
    # Celery's Django fixup closes the database connections around every task unless CELERY_DB_REUSE_MAX is set
    # (settings: it is): each run then paid for a new PostgreSQL connection, a sixth of the cheapest run's worker
    # CPU and a backend process forked on the server (docs/benchmarks.md, Fleet). Kept instead, and retired the
    # way Django does it between web requests: past CONN_MAX_AGE, or when found broken (CONN_HEALTH_CHECKS). Not
    # for a task run eagerly (tests), inside its caller's transaction, as Celery's fixup leaves those alone too.
    if not getattr(getattr(sender, "request", None), "is_eager", False):
        close_old_connections()
