import graphene

from configs import services
from pointscene.core.access import Need, require_resource
from pointscene.core.models import Resource
from pointscene.graphql.base import BaseMutation, SuccessPayload, id_arg
from pointscene.graphql.scalars import JSON


class AddJobConfig(BaseMutation):
    """Stores a resource's remotes, encrypted: same name replaces a remote, null removes it."""

    class Arguments:
        resource_id = graphene.ID(required=True, description="The resource whose remotes these are.")
        config = JSON(
            required=True,
            description="Remote name -> settings with a type (drive, dropbox, s3, acc, ...) and rclone's fields.",
        )

    Output = SuccessPayload

    @classmethod
    def perform(cls, info, principal, resource_id, config):
        pk = id_arg(resource_id, "resourceId", "resource")
        resource = require_resource(principal, Resource.objects.filter(pk=pk).first(), Need.WRITE, "resourceId")
        services.add_job_config(resource, config)
        return SuccessPayload(success=True)
