"""pointscene/graphql/execution.py as the served view runs it: leaf fields that graphene's default resolver would read
are read in place, not executed one by one (getScheduledJobs of 1,000 jobs has ~61,000 of them); fields with
resolvers of their own, objects and lists still go graphql-core's way. tests/api/test_golden_answers.py holds the
answers byte for byte."""

import pytest

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
