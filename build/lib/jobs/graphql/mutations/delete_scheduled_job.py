import graphene

from jobs import services
from jobs.graphql.queries import visible_job
from pointscene.core.access import Need
from pointscene.graphql.base import BaseMutation, SuccessPayload


class DeleteScheduledJob(BaseMutation):
    """Deletes a job, its schedule and its history."""

    class Arguments:
        id = graphene.ID(required=True, description="The job to delete.")

    Output = SuccessPayload

    @classmethod
    def perform(cls, info, principal, id):
        services.delete_job(visible_job(info, id, Need.WRITE, field="id"))
        return SuccessPayload(success=True)
