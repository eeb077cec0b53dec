import graphene

from jobs import services
from jobs.graphql.policies import PolicyArguments, policy_changes
from jobs.graphql.queries import visible_job
from jobs.graphql.types import FrequencyType, ScheduledJob, enum_value
from pointscene.core.access import Need, NotFound
from pointscene.graphql.base import BaseMutation, id_arg
from pointscene.graphql.scalars import JSON

# GraphQL argument name -> keyword of services.update_job
_CHANGES = {
    "workflow": "workflow",
    "frequency_type": "frequency_type",
    "cron_expression": "cron_expression",
    "interval_minutes": "interval_minutes",
    "active": "active",
    "name": "name",
    "description": "description",
    "timezone": "tz",
    "time_limit_seconds": "time_limit_seconds",
}


class UpdateScheduledJob(BaseMutation):
    """Changes only the arguments given; a given workflow replaces the whole workflow. History is kept."""

    class Arguments(PolicyArguments):
        job_id = graphene.ID(required=True, description="The job to change.")
        instance_id = graphene.ID(description="When given, must be the job's instance.")
        workflow = JSON(description="A new workflow, replacing the whole old one.")
        frequency_type = FrequencyType(description="A new schedule kind; needs the matching schedule argument.")
        cron_expression = graphene.String(description="A new cron expression (CRON_BASED jobs).")
        interval_minutes = graphene.Int(description="A new interval in minutes (INTERVAL_BASED jobs).")
        active = graphene.Boolean(description="false pauses the job, true resumes it.")
        name = graphene.String(description="A new name; null clears it.")
        description = graphene.String(description="A new description; null clears it.")
        timezone = graphene.String(description="A new IANA time zone for the cron expression.")
        time_limit_seconds = graphene.Int(description="A new per-run time limit in seconds; null: the server's.")

    Output = ScheduledJob

    @classmethod
    def perform(cls, info, principal, job_id, instance_id=None, **given):
        job = visible_job(info, job_id, Need.WRITE)
        if instance_id is not None and id_arg(instance_id, "instanceId", "instance") != job.instance_id:
            # Reads like any other unknown job: "no job with this id in that instance".
            raise NotFound("jobId", "job")
        policies = policy_changes(given)
        changes = {_CHANGES[name]: enum_value(value) for name, value in given.items()}
        return services.update_job(job, **changes, **policies)
