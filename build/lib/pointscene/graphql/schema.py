import inspect

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


def described(mutation: type[graphene.Mutation]) -> graphene.Field:
    """The mutation's field, described by its docstring with the indentation removed: Python 3.13 strips docstrings'
    indentation when it compiles them and 3.11-3.12 do not, so the served schema must not depend on which one runs."""
    return mutation.Field(description=inspect.cleandoc(mutation.__doc__ or ""), required=True)


class Query(JobQueries, ConfigQueries, graphene.ObjectType):
    pass


class Mutation(graphene.ObjectType):
    add_job_config = described(AddJobConfig)
    remove_job_config = described(RemoveJobConfig)
    create_scheduled_job = described(CreateScheduledJob)
    update_scheduled_job = described(UpdateScheduledJob)
    delete_scheduled_job = described(DeleteScheduledJob)
    create_instance = described(CreateInstance)
    run_scheduled_job = described(RunScheduledJob)
    cancel_job_run = described(CancelJobRun)


schema = graphene.Schema(query=Query, mutation=Mutation, types=[JSON])
