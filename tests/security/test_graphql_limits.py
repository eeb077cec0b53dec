"""Cost limits of /graphql: bombs are refused with QUERY_TOO_COMPLEX before anything runs, oversize bodies with 413
before they are read, introspection and GraphiQL only when switched on, and the largest legitimate documents pass.

"Before anything runs" is checked as: the refused request makes exactly the SQL queries of a request refused for
a syntax error (authentication's own), none of the document's.
"""

import json
import socket
import time
from urllib.parse import urlsplit

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from graphql import get_introspection_query

from jobs.models import ScheduledJob
from pointscene.graphql.limits import Limits, check
from pointscene.graphql.schema import schema
from tests.fixtures.api import error_codes

HISTORY = "history { id jobId success logPath createdAt }"
JOB_FIELDS = f"id active {HISTORY} instanceId workflow frequencyType cronExpression intervalMinutes nextRun lastRun"


def post(client, token: str, query: str) -> tuple[int, dict, int, float]:
    """Status, body, SQL queries made and seconds taken, for `query` sent as a client sends it."""
    body = json.dumps({"query": query})
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        response = client.post("/graphql", body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}")
        elapsed = time.perf_counter() - started
    return response.status_code, response.json(), len(queries), elapsed


@pytest.fixture
def auth_queries(client, acme_token) -> int:
    """SQL queries of a request refused before its document runs: authentication's and nothing else."""
    status, body, queries, _ = post(client, acme_token, "{ not a document")
    assert (status, error_codes(body)) == (400, ["GRAPHQL_PARSE_FAILED"])
    return queries


def assert_too_complex(status: int, body: dict, limit: str) -> dict:
    assert status == 400, body
    assert error_codes(body) == ["QUERY_TOO_COMPLEX"], body
    error = body["errors"][0]
    assert error["extensions"]["limit"] == limit
    assert limit in error["message"]
    assert "data" not in body
    return error


def test_it_refuses_a_thousand_aliases_before_any_query_runs(client, acme_token, instance, job, auth_queries):
    aliases = " ".join(f'j{i}: getScheduledJobs(instanceId: "{instance.pk}") {{ {JOB_FIELDS} }}' for i in range(1000))

    status, body, queries, elapsed = post(client, acme_token, f"{{ {aliases} }}")

    error = assert_too_complex(status, body, "aliases")
    assert error["extensions"]["max"] == 50
    assert queries == auth_queries
    # Measured about 10 ms on the request path (authentication included); the bound only catches a regression
    # to parsing the whole document (about 250 ms) or running it (16 s), on a busy shared machine.
    print(f"1,000-alias bomb refused in {elapsed * 1000:.1f} ms")
    assert elapsed < 1.0


def test_it_checks_the_bomb_in_milliseconds_without_the_database(db, django_assert_num_queries):
    aliases = " ".join(f'j{i}: getScheduledJobs(instanceId: "1") {{ {JOB_FIELDS} }}' for i in range(1000))

    with django_assert_num_queries(0):
        started = time.perf_counter()
        error = check(schema.graphql_schema, f"{{ {aliases} }}")
        elapsed = time.perf_counter() - started

    assert error.extensions["code"] == "QUERY_TOO_COMPLEX"
    print(f"1,000-alias bomb checked in {elapsed * 1000:.1f} ms")
    assert elapsed < 0.5


def test_it_refuses_fields_nested_too_deeply(client, acme_token, auth_queries):
    nested = "{ a " * 30 + "}" * 30

    status, body, queries, _ = post(client, acme_token, f'{{ getScheduledJobs(instanceId: "1") {nested} }}')

    assert_too_complex(status, body, "depth")
    assert queries == auth_queries


def test_it_refuses_nesting_through_fragments(client, acme_token, auth_queries):
    fragments = " ".join(
        f'fragment F{i} on Query {{ getScheduledJobs(instanceId: "1") {{ x {{ ...F{i + 1} }} }} }}' for i in range(12)
    )
    document = f"{{ ...F0 }} {fragments} fragment F12 on Query {{ __typename }}"

    status, body, queries, _ = post(client, acme_token, document)

    assert_too_complex(status, body, "depth")
    assert queries == auth_queries


def test_it_refuses_a_long_chain_of_fragments(client, acme_token, auth_queries):
    # graphql-core's own guard (fragments nested over 200 deep) answers before any rule recurses.
    chain = " ".join(f"fragment F{i} on Query {{ ...F{i + 1} }}" for i in range(3000))
    document = f"{{ ...F0 }} {chain} fragment F3000 on Query {{ __typename }}"

    status, body, queries, _ = post(client, acme_token, document)

    assert (status, error_codes(body)) == (400, ["GRAPHQL_VALIDATION_FAILED"])
    assert "aborted" in body["errors"][0]["message"]
    assert queries == auth_queries


def test_it_refuses_a_document_nested_deeper_than_the_parser_goes(client, acme_token, auth_queries):
    status, body, queries, _ = post(client, acme_token, "{ a " * 300 + "}" * 300)

    assert_too_complex(status, body, "depth")
    assert queries == auth_queries


def test_it_refuses_a_costly_document_without_aliases(client, acme_token, instance, auth_queries):
    # Each selection costs 1 + 10 jobs x (1 + 10 runs x 7 fields) = 711; the fragment is counted at every spread.
    selection = f'getScheduledJobs(instanceId: "{instance.pk}") {{ history {{ ...Run }} }}'
    fragment = "fragment Run on JobHistory { id jobId success logPath createdAt status trigger }"
    document = "{ " + " ".join([selection] * 10) + " } " + fragment

    status, body, queries, _ = post(client, acme_token, document)

    error = assert_too_complex(status, body, "cost")
    assert error["extensions"]["max"] == 5000
    assert queries == auth_queries


def test_it_refuses_a_document_of_too_many_fields_while_parsing():
    error = check(schema.graphql_schema, "{ " + "__typename " * 6000 + "}")

    assert (error.extensions["code"], error.extensions["limit"]) == ("QUERY_TOO_COMPLEX", "cost")


def test_it_stops_parsing_at_the_token_limit(client, acme_token, settings, auth_queries):
    settings.GRAPHQL_MAX_TOKENS = 2000
    numbers = " ".join(["1"] * 5000)

    status, body, queries, _ = post(
        client, acme_token, f'{{ validateWorkflow(instanceId: "1", workflow: {{tasks: [{numbers}]}}) {{ code }} }}'
    )

    error = assert_too_complex(status, body, "tokens")
    assert error["extensions"]["max"] == 2000
    assert queries == auth_queries


def test_it_stops_parsing_at_the_comment_limit(client, acme_token, auth_queries):
    comments = "# padding\n" * 1001

    status, body, queries, _ = post(client, acme_token, f"{comments}{{ __typename }}")

    assert_too_complex(status, body, "comments")
    assert queries == auth_queries


def test_it_leaves_a_fragment_cycle_to_the_specified_rules(client, acme_token):
    status, body, _, _ = post(client, acme_token, "{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }")

    assert status == 400
    assert set(error_codes(body)) == {"GRAPHQL_VALIDATION_FAILED"}


def test_it_refuses_an_oversize_body_with_413(client, acme_token):
    body = json.dumps({"query": "{ __typename }", "variables": {"padding": "x" * 5_000_000}})

    response = client.post("/graphql", body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {acme_token}")

    assert response.status_code == 413
    assert error_codes(response.json()) == ["REQUEST_TOO_LARGE"]
    assert "1048576" in response.json()["errors"][0]["message"]


def test_it_answers_413_without_reading_the_body(live_server):
    """The server answers after the headers and a few bytes: it never waits for the other 5 MB."""
    url = urlsplit(live_server.url)
    head = (
        "POST /graphql HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        "Content-Length: 5000000\r\nConnection: close\r\n\r\n"
    )
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(head.encode() + b'{"query": "{ __typename }", "variables": {"x": "')
        # Read the answer only: the test server drains the rest of a body before it closes the connection.
        answer = sock.recv(65536)
        while b"\r\n\r\n" not in answer or not complete(answer):
            answer += sock.recv(65536)

    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.split()[1] == b"413"
    assert json.loads(rest.partition(b"\r\n\r\n")[2])["errors"][0]["extensions"]["code"] == "REQUEST_TOO_LARGE"


def complete(answer: bytes) -> bool:
    head, _, body = answer.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
    )
    return len(body) >= length


def test_it_accepts_a_workflow_of_the_largest_size_written_inline(client, acme_token, instance, settings):
    """The densest legitimate document: a workflow just under JOBS_MAX_WORKFLOW_BYTES of one-digit numbers, some
    33,000 tokens, written in the document rather than passed as a variable."""
    numbers = [1] * 32_000
    task = {"name": "hook", "type": "http.request", "args": {"url": "https://example.com/hook", "json": numbers}}
    assert len(json.dumps({"tasks": [task]}, separators=(",", ":"))) < settings.JOBS_MAX_WORKFLOW_BYTES
    args = f'{{url: "https://example.com/hook" json: [{" ".join(map(str, numbers))}]}}'
    literal = f'{{tasks: [{{name: "hook" type: "http.request" args: {args}}}]}}'
    document = (
        f'mutation {{ createScheduledJob(instanceId: "{instance.pk}", frequencyType: CRON_BASED, '
        f'cronExpression: "0 3 * * *", name: "Big", workflow: {literal}) {{ id }} }}'
    )

    status, body, _, _ = post(client, acme_token, document)

    assert (status, body.get("errors")) == (200, None)
    assert (
        len(ScheduledJob.objects.get(pk=body["data"]["createScheduledJob"]["id"]).workflow["tasks"][0]["args"]["json"])
        == 32_000
    )


@pytest.mark.parametrize(
    "document",
    [
        pytest.param(f'{{ getScheduledJobs(instanceId: "7") {{ {JOB_FIELDS} createdAt }} }}', id="get_jobs"),
        pytest.param(
            '{ getScheduledJobs(instanceId: "7") { id instanceId name description workflow frequencyType '
            "cronExpression intervalMinutes active nextRun lastRun createdAt timezone nextRuns scheduleDescription "
            "timeLimitSeconds overlapPolicy catchupWindowMinutes jitterSeconds maxRetries retryBackoffSeconds "
            "pauseAfterFailures consecutiveFailures pausedReason webhookUrl webhookSecretSet history { id jobId "
            "success logPath createdAt signedLogUrl status trigger scheduledFor startedAt finishedAt error steps } } "
            'getInstanceJobHistory(instanceId: "7", page: {first: 500}) { items { id jobId success logPath '
            "createdAt signedLogUrl status trigger scheduledFor startedAt finishedAt error steps } cursor "
            "hasNextPage } }",
            id="every-field",
        ),
        pytest.param(
            "{ "
            + " ".join(f'j{i}: getScheduledJob(jobId: "{i}") {{ id name nextRun {HISTORY} }}' for i in range(50))
            + " }",
            id="fifty-aliases",
        ),
        pytest.param(get_introspection_query(descriptions=True, input_value_deprecation=True), id="introspection"),
    ],
)
def test_it_lets_the_largest_legitimate_documents_through(document):
    assert check(schema.graphql_schema, document, Limits.from_settings()) is None


def test_it_refuses_introspection_by_default(client, acme_token, settings):
    assert settings.DEBUG is False
    assert settings.GRAPHQL_INTROSPECTION is False

    status, body, _, _ = post(client, acme_token, "{ __schema { queryType { name } } }")

    assert status == 400
    assert error_codes(body) == ["GRAPHQL_VALIDATION_FAILED"]
    assert "introspection is disabled" in body["errors"][0]["message"]
    assert post(client, acme_token, "{ __typename }")[:2] == (200, {"data": {"__typename": "Query"}})


def test_it_answers_introspection_when_switched_on(client, acme_token, settings):
    settings.GRAPHQL_INTROSPECTION = True

    status, body, _, _ = post(client, acme_token, get_introspection_query(descriptions=True))

    assert (status, body.get("errors")) == (200, None)
    assert body["data"]["__schema"]["queryType"]["name"] == "Query"


def test_it_serves_no_graphiql_by_default(client, settings):
    assert settings.GRAPHQL_GRAPHIQL is False

    response = client.get("/graphql", HTTP_ACCEPT="text/html")

    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert "graphiql" not in response.content.decode().lower()


def test_it_serves_graphiql_when_switched_on(client, settings):
    settings.GRAPHQL_GRAPHIQL = True

    response = client.get("/graphql", HTTP_ACCEPT="text/html")

    assert response.status_code == 200
    assert "graphiql" in response.content.decode().lower()
