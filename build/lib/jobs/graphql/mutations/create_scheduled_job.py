import graphene

from jobs import services
from jobs.graphql.policies import PolicyArguments, policy_changes
from jobs.graphql.types import FrequencyType, ScheduledJob, enum_value
from pointscene.core.access import Need, require_instance
from pointscene.core.models import Instance
from pointscene.graphql.base import BaseMutation, id_arg
from pointscene.graphql.scalars import JSON


class CreateScheduledJob(BaseMutation):
    """Creates a job that runs `workflow` on a cron expression or every N minutes."""

    class Arguments(PolicyArguments):
        instance_id = graphene.ID(required=True, description="The instance the job belongs to.")
        workflow = JSON(required=True, description="The workflow: an object with a non-empty tasks list.")
        frequency_type = FrequencyType(required=True, description="How the schedule is given.")
        cron_expression = graphene.String(description="Standard 5-field cron; required for CRON_BASED only.")
        interval_minutes = graphene.Int(description="Minutes between runs; required for INTERVAL_BASED only.")
        active = graphene.Boolean(description="Whether the job runs on its schedule; default true.")
        name = graphene.String(description="A human-readable name.")
        description = graphene.String(description="What the job does.")
        timezone = graphene.String(description="IANA time zone in which cronExpression is read; default UTC.")
        time_limit_seconds = graphene.Int(
            description="Seconds a run may take before it is stopped and FAILED; default the server's limit."
        )

    Output = ScheduledJob

    @classmethod
    def perform(cls, info, principal, instance_id, workflow, frequency_type, **optional):
        pk = require_instance(principal, id_arg(instance_id, "instanceId", "instance"), Need.WRITE, "instanceId")
        policies = policy_changes(optional)
        return services.create_job(
            instance=Instance.objects.get(pk=pk),
            workflow=workflow,
            frequency_type=enum_value(frequency_type),
            cron_expression=optional.get("cron_expression"),
            interval_minutes=optional.get("interval_minutes"),
            active=optional.get("active"),
            name=optional.get("name"),
            description=optional.get("description"),
            tz=optional.get("timezone"),
            time_limit_seconds=optional.get("time_limit_seconds"),
            **policies,
        )
