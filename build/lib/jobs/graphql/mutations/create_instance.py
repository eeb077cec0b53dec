import graphene

from jobs import services
from pointscene.core.access import Forbidden
from pointscene.core.models import ApiClient, Instance
from pointscene.graphql.base import BaseMutation


class InstanceType(graphene.ObjectType):
    """A tenant: everything else belongs to one."""

    id = graphene.ID(required=True, description="The instance's id.")
    name = graphene.String(required=True, description="The instance's name.")
    created_at = graphene.DateTime(required=True, description="When the instance was created (UTC).")

    class Meta:
        name = "Instance"


class CreateInstance(BaseMutation):
    """Creates an instance linked to the caller (its client, or its user for password tokens). Needs instance-create."""

    class Arguments:
        name = graphene.String(required=True, description="The new instance's name.")

    Output = InstanceType

    @classmethod
    def perform(cls, info, principal, name):
        if not principal.can_create_instances:
            raise Forbidden("name", "this token lacks the instance-create scope")
        instance: Instance = services.create_instance(name)
        if principal.user_id is not None:
            instance.members.add(principal.user_id)
        else:
            ApiClient.objects.get(application_id=principal.application_id).instances.add(instance)
        return instance
