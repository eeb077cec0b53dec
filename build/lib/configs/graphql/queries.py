import graphene

from configs import checks, services
from configs.graphql.types import ConfigCheck, ConfigRemote, ConfigSecret
from configs.models import RemoteConfig
from pointscene.core.access import Need, NotFound, require_resource
from pointscene.core.models import Resource
from pointscene.graphql.base import id_arg, principal
from pointscene.graphql.errors import coded_errors


class ConfigQueries(graphene.ObjectType):
    get_job_config = graphene.List(
        graphene.NonNull(ConfigRemote),
        required=True,
        resource_id=graphene.ID(required=True, description="The resource whose remotes to list."),
        description="A resource's remotes: names, types and non-secret settings; secrets only as set or unset. "
        "Needs write access to the resource.",
    )

    @staticmethod
    @coded_errors
    def resolve_get_job_config(root, info, resource_id):
        pk = id_arg(resource_id, "resourceId", "resource")
        # Configs are credentials: even their shape is for those who may change them.
        resource = require_resource(principal(info), Resource.objects.filter(pk=pk).first(), Need.WRITE, "resourceId")
        return [
            ConfigRemote(
                name=remote["name"],
                type=remote["type"],
                settings=remote["settings"],
                secrets=[ConfigSecret(name=s["name"], is_set=s["isSet"]) for s in remote["secrets"]],
            )
            for remote in services.get_job_config(resource)
        ]

    test_job_config = graphene.Field(
        ConfigCheck,
        required=True,
        resource_id=graphene.ID(required=True, description="The resource the remote belongs to."),
        remote=graphene.String(required=True, description="The remote's name, as in addJobConfig."),
        description="A short, read-only check of one stored remote, made by a worker under a run's rules: a "
        f"listing of its root (an acc remote: the project's top folders), at most {checks.CHECK_SECONDS} s. "
        "Answers ok or the error in words. Needs write access to the resource.",
    )

    @staticmethod
    @coded_errors
    def resolve_test_job_config(root, info, resource_id, remote):
        pk = id_arg(resource_id, "resourceId", "resource")
        resource = require_resource(principal(info), Resource.objects.filter(pk=pk).first(), Need.WRITE, "resourceId")
        stored = RemoteConfig.objects.filter(resource=resource, name=remote).first()
        if stored is None:
            raise NotFound("remote", "remote")
        return ConfigCheck(**checks.check_remote(stored).as_dict())
