"""Celery task results in the database (django-celery-results), with what a crash says passed through the log
redactor first.

The run tasks (jobs.run_scheduled, jobs.run_queued) store a result only when they crash (jobs/tasks.py): the
exception and its traceback, with the worker and the task's arguments; the operator's console links the run to it.

What reaches a stored result: the task's arguments are ids and slot times (jobs.dispatch, jobs.scheduling.beat),
its return value is the run id. A crash's text is the one part no code chose. Steps cannot crash a run task (the
engine turns every step exception into the step's error, and the runner turns an engine exception into "internal
error: <type>"), so what escapes is the runner's own bookkeeping failing: database, Redis or storage errors and bugs,
whose messages carry ids, hosts and SQL details, not the decrypted secrets that exist only inside a step. Such text
can still carry credentials (a DSN with its password, a token echoed by a server), so the exception's arguments and
the traceback go through pointscene.logconfig.redact, the same rules as every log line, before they are stored.
"""

from celery import states
from django_celery_results.backends.database import DatabaseBackend

from pointscene.logconfig import redact

_PLAIN = (int, float, bool, type(None))


def _redacted_argument(value: object) -> object:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, _PLAIN):
        return value
    return redact(repr(value))


class RedactedDatabaseBackend(DatabaseBackend):
    """django-celery-results' "django-db" backend; failures are stored redacted."""

    def _store_result(self, task_id, result, status, traceback=None, request=None, using=None):
        if status in states.EXCEPTION_STATES and isinstance(result, dict) and "exc_message" in result:
            message = result["exc_message"]
            if isinstance(message, list | tuple):
                message = [_redacted_argument(part) for part in message]
            else:
                message = _redacted_argument(message)
            result = {**result, "exc_message": message}
        if traceback:
            traceback = redact(traceback)
        return super()._store_result(task_id, result, status, traceback=traceback, request=request, using=using)
