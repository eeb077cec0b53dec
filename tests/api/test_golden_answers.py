"""getScheduledJobs answers byte for byte what it answered before it was made faster (tests/api/golden/).

The cast (tests/fixtures/golden.py) has fixed ids and times, and the clock is pinned, so the answer is the same
bytes on every run (per database). After an intended change of an answer, rewrite the files with GOLDEN_WRITE=1
and review the diff.
"""

import json
import os
from pathlib import Path

import pytest
from django.db import connection

from tests.api.test_query_counts import GET_JOBS

GOLDEN = Path(__file__).resolve().parent / "golden"

FULL = """query Full($instanceId: ID!) {
  getScheduledJobs(instanceId: $instanceId) {
    id instanceId name description workflow frequencyType cronExpression intervalMinutes active nextRun lastRun
    createdAt timezone nextRuns(count: 3) scheduleDescription timeLimitSeconds overlapPolicy catchupWindowMinutes
    jitterSeconds maxRetries retryBackoffSeconds pauseAfterFailures consecutiveFailures pausedReason webhookUrl
    webhookSecretSet
    history {
      id jobId success logPath createdAt status trigger scheduledFor startedAt finishedAt error steps heartbeatAt
      progress { step bytesDone bytesTotal filesDone filesTotal transferring checks errors speed etaSeconds updatedAt }
    }
  }
}"""

FRAGMENTS = """query Fragments($instanceId: ID!) {
  getScheduledJobs(instanceId: $instanceId) { ...Job ... on ScheduledJob { nextRuns } }
}
fragment Job on ScheduledJob { id name nextRun history { ...Run } }
fragment Run on JobHistory { id status createdAt }"""


def answer(api, golden_cast, document: str, variables: dict | None) -> bytes:
    token = api.token(golden_cast.client, "instance-*")["access_token"]
    body = {"query": document, **({"variables": variables} if variables else {})}
    response = api.http.post(
        "/graphql", json.dumps(body), content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    assert response.status_code == 200
    return response.content


def check(name: str, content: bytes) -> None:
    # One file per database: PostgreSQL's jsonb orders a workflow's keys its own way; SQLite keeps them as written.
    path = GOLDEN / name.replace(".json", f".{connection.vendor}.json")
    if os.environ.get("GOLDEN_WRITE") == "1":
        path.write_bytes(content)
    assert b'"errors":[' not in content, content[:500]
    assert content == path.read_bytes()


@pytest.mark.parametrize(
    ("name", "document", "with_variables"),
    [("get_jobs.json", None, False), ("get_jobs_full.json", FULL, True), ("get_jobs_fragments.json", FRAGMENTS, True)],
)
def test_it_answers_get_scheduled_jobs_byte_for_byte(api, golden_cast, name, document, with_variables):
    if document is None:
        document = GET_JOBS.replace('"7"', f'"{golden_cast.instance.pk}"')
    variables = {"instanceId": str(golden_cast.instance.pk)} if with_variables else None

    check(name, answer(api, golden_cast, document, variables))
