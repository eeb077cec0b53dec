import graphene

from configs.graphql.mutations.add_job_config import AddJobConfig
from configs.graphql.mutations.remove_job_config import RemoveJobConfig
from configs.graphql.queries import ConfigQueries
from jobs.graphql.mutations.cancel_job_run import CancelJobRun
from jobs.graphql.mutations.create_instance import CreateInstance
from jobs.graphql.mutations.create_scheduled_job import CreateScheduledJob
from jobs.graphql.mutations.delete_scheduled_job import DeleteScheduledJob
from jobs.graphql.mutations.run_scheduled_job import RunScheduledJob
from jobs.graphql.mutations.update_scheduled_job import UpdateScheduledJob
from jobs.graphql.queries import JobQueries
from pointscene.graphql.scalars import JSON


class Query(JobQueries, ConfigQueries, graphene.ObjectType):
    pass


class Mutation(graphene.ObjectType):
    add_job_config = AddJobConfig.Field(description=AddJobConfig.__doc__, required=True)
    remove_job_config = RemoveJobConfig.Field(description=RemoveJobConfig.__doc__, required=True)
    create_scheduled_job = CreateScheduledJob.Field(description=CreateScheduledJob.__doc__, required=True)
    update_scheduled_job = UpdateScheduledJob.Field(description=UpdateScheduledJob.__doc__, required=True)
    delete_scheduled_job = DeleteScheduledJob.Field(description=DeleteScheduledJob.__doc__, required=True)
    create_instance = CreateInstance.Field(description=CreateInstance.__doc__, required=True)
    run_scheduled_job = RunScheduledJob.Field(description=RunScheduledJob.__doc__, required=True)
    cancel_job_run = CancelJobRun.Field(description=CancelJobRun.__doc__, required=True)


schema = graphene.Schema(query=Query, mutation=Mutation, types=[JSON])
