import graphene

from configs import services
from pointscene.core.access import Need, require_resource
from pointscene.core.models import Resource
from pointscene.graphql.base import BaseMutation, SuccessPayload, id_arg


class RemoveJobConfig(BaseMutation):
    """Removes remotes of a resource: the named ones, or all of them when remotes is left out."""

    class Arguments:
        resource_id = graphene.ID(required=True, description="The resource whose remotes to remove.")
        remotes = graphene.List(
            graphene.NonNull(graphene.String),
            description="Names of the remotes to remove; every one must exist. Left out: all of the resource's.",
        )

    Output = SuccessPayload

    @classmethod
    def perform(cls, info, principal, resource_id, remotes=None):
        pk = id_arg(resource_id, "resourceId", "resource")
        resource = require_resource(principal, Resource.objects.filter(pk=pk).first(), Need.WRITE, "resourceId")
        services.remove_job_config(resource, remotes)
        return SuccessPayload(success=True)
