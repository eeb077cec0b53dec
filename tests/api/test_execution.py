"""pointscene/graphql/execution.py as the served view runs it: leaf fields that graphene's default resolver would read
are read in place, not executed one by one (getScheduledJobs of 1,000 jobs has ~61,000 of them); fields with
resolvers of their own, objects and lists still go graphql-core's way. tests/api/test_golden_answers.py holds the
answers byte for byte."""

import graphene
import pytest
from graphql import ExecutionContext, execute, parse

from jobs.models import ScheduledJob
from pointscene.graphql.execution import SyncExecutionContext
from tests.fixtures.cast import sync_workflow

QUERY = """query ($instanceId: ID!) {
  getScheduledJobs(instanceId: $instanceId) { id active cronExpression createdAt history { id success } nextRun }
}"""


@pytest.fixture
def executed(monkeypatch) -> list[str]:
    """Parent.field of every field graphql-core executes the ordinary way."""
    seen: list[str] = []
    ordinary = SyncExecutionContext.execute_field

    def counting(self, parent_type, source, field_nodes, path):
        seen.append(f"{parent_type.name}.{field_nodes[0].name.value}")
        return ordinary(self, parent_type, source, field_nodes, path)

    monkeypatch.setattr(SyncExecutionContext, "execute_field", counting)
    return seen


def test_it_reads_plain_leaves_in_place_and_executes_the_rest(api, acme_token, instance, resource, executed):
    for k in range(3):
        ScheduledJob.objects.create(
            instance=instance,
            workflow=sync_workflow(instance, resource),
            frequency_type="CRON_BASED",
            cron_expression=f"{k} 3 * * *",
        )

    status, body = api.gql(QUERY, {"instanceId": str(instance.pk)}, acme_token)

    assert status == 200
    assert "errors" not in body, body
    jobs = body["data"]["getScheduledJobs"]
    assert [job["cronExpression"] for job in jobs] == ["0 3 * * *", "1 3 * * *", "2 3 * * *"]
    assert all(job["active"] is True and job["history"] == [] and job["nextRun"] for job in jobs)
    # The list itself, and per job its history (a list) and nextRun (a resolver): never id, active, cronExpression
    # or createdAt.
    assert executed == ["Query.getScheduledJobs"] + ["ScheduledJob.history", "ScheduledJob.nextRun"] * 3


class _Item(graphene.ObjectType):
    name = graphene.String(required=True)
    note = graphene.String()

    @staticmethod
    def resolve_note(item, info):
        if item.get("note") == "raise":
            raise ValueError("no note here")
        return item.get("note")


class _Query(graphene.ObjectType):
    items = graphene.List(_Item)
    strict = graphene.List(graphene.NonNull(_Item))
    required = graphene.List(graphene.NonNull(_Item), required=True)

    @staticmethod
    def resolve_items(root, info):
        return [{"name": "a", "note": "x"}, None, {"name": None}, {"name": "d", "note": "raise"}]

    @staticmethod
    def resolve_strict(root, info):
        return [{"name": "a"}, None]

    @staticmethod
    def resolve_required(root, info):
        return [{"name": "a"}, {"name": None}]


@pytest.mark.parametrize("field", ["items", "strict", "required"])
def test_it_completes_lists_of_objects_exactly_as_graphql_core_does(field):
    # Nulls in the list, a null for a non-null field, a resolver that raises: the same data, errors and paths.
    schema = graphene.Schema(query=_Query).graphql_schema
    document = parse(f"{{ {field} {{ name note }} }}")

    ours = execute(schema, document, execution_context_class=SyncExecutionContext)
    theirs = execute(schema, document, execution_context_class=ExecutionContext)

    assert ours.data == theirs.data
    assert [e.formatted for e in ours.errors or []] == [e.formatted for e in theirs.errors or []]
    assert theirs.errors  # every case has an error to compare
