"""A run's Celery task result (django-celery-results' TaskResult, stored by pointscene/results.py when the run task
crashed) on its page: state, worker, how long the task took, and a link to the result's own page, which shows the
crash's traceback."""

from django.conf import settings
from django.urls import reverse
from django.utils.html import format_html
from django_celery_results.models import TaskResult

from jobs.admin.display import seconds_between, when
from jobs.models import JobHistory, RunStatus


def task_result_url(result: TaskResult) -> str:
    return reverse("admin:django_celery_results_taskresult_change", args=[result.pk])


def task_result_link(run: JobHistory):
    if not run.task_id:
        if run.status == RunStatus.QUEUED:
            return "None yet: the task that starts this run records itself here."
        return "None: this row was recorded without a run task (a slot the sweeper or beat recorded, or an older run)."
    result = (
        TaskResult.objects.filter(task_id=run.task_id)
        .only("pk", "status", "worker", "date_started", "date_done")
        .first()
    )
    if result is None:
        kept = int(settings.CELERY_RESULT_EXPIRES or 0)
        expiry = f"results are kept {_duration(kept)}" if kept else "results are kept until deleted"
        return format_html(
            "<code>{}</code> · no result stored: a run task stores one only when it crashes (its run's row above"
            " is its record), and crashes' results expire ({})",
            run.task_id,
            expiry,
        )
    took = seconds_between(result.date_started, result.date_done) if result.date_done else "—"
    return format_html(
        '<a href="{}"><code>{}</code></a> · {} on {} · took {} · done {}',
        task_result_url(result),
        run.task_id,
        result.status,
        result.worker or "an unknown worker",
        took,
        when(result.date_done),
    )


def _duration(seconds: int) -> str:
    return f"{seconds // 86400} days" if seconds % 86400 == 0 else f"{seconds} s"
