import time

import graphene
from django.conf import settings
from django.db import connection

from jobs import services
from jobs.graphql.types import JobHistory
from jobs.models import JobHistory as JobHistoryModel
from pointscene.core.access import Need, NotFound, require_instance
from pointscene.graphql.base import BaseMutation, id_arg


class CancelJobRun(BaseMutation):
    """Cancels a queued run, or stops a running one (its child processes included) and marks it CANCELLED.

    Waits a few seconds for the worker to confirm (not on SQLite); a run still RUNNING in the answer is being
    stopped.
    """

    class Arguments:
        job_history_id = graphene.ID(required=True, description="The run to cancel.")

    Output = JobHistory

    @classmethod
    def perform(cls, info, principal, job_history_id):
        field = "jobHistoryId"
        run = JobHistoryModel.objects.filter(pk=id_arg(job_history_id, field, "run")).first()
        if run is None:
            raise NotFound(field, "run")
        require_instance(principal, run.instance_id, Need.WRITE, field, "run")
        run = services.cancel_run(run)
        # SQLite: the mutation's open transaction would keep the worker from writing the outcome, so answer now.
        wait = settings.JOBS_CANCEL_WAIT_SECONDS if connection.vendor != "sqlite" else 0
        deadline = time.monotonic() + wait
        while not run.finished and time.monotonic() < deadline:
            time.sleep(0.2)
            run.refresh_from_db()
        return run
