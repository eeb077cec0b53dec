import graphene

from jobs import services
from jobs.graphql.queries import visible_job
from jobs.graphql.types import JobHistory
from pointscene.core.access import Need
from pointscene.graphql.base import BaseMutation


class RunScheduledJob(BaseMutation):
    """Queues a run now, outside the schedule (trigger MANUAL), and returns it; paused jobs can be run too."""

    class Arguments:
        job_id = graphene.ID(required=True, description="The job to run.")

    Output = JobHistory

    @classmethod
    def perform(cls, info, principal, job_id):
        return services.run_now(visible_job(info, job_id, Need.WRITE))
