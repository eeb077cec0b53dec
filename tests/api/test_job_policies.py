"""A job's reliability policies over the API (issue 6): overlapPolicy, catchupWindowMinutes, jitterSeconds,
maxRetries, retryBackoffSeconds, pauseAfterFailures, webhookUrl and the write-only webhookSecret.

Every request goes through /graphql with a bearer token, as a client sends it. Accepted values are read back from
the mutation's answer, from getScheduledJob, from getScheduledJobs and from the row; refused ones answer a coded
error (never a 500) and change no row at all. The webhook secret is never returned, is stored Fernet-encrypted,
and is forgotten with the URL. The RedBeat entry of a jittered job fires at its slot plus the job's fixed offset.
"""

import json
import secrets
from datetime import UTC, datetime
from typing import Any

import pytest
from redbeat.decoder import to_timestamp

from configs.crypto import fernet
from jobs.models import ScheduledJob
from jobs.running import outcome
from jobs.scheduling.slots import JobSchedule
from tests.fixtures.api import error_codes, row_snapshot
from tests.fixtures.leaks import Scanner, register_secret
from tests.fixtures.redbeat import assert_no_entry, stored_entry

pytestmark = pytest.mark.smoke

MISSING_ID = 987_654_321
V = "GRAPHQL_VALIDATION_FAILED"
OK = "ok"


@pytest.fixture(autouse=True)
def fast_secret_hashing(settings):
    """Client secrets are hashed with PBKDF2 (about half a second each); these tests are not about hashing."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# --------------------------------------------------------------------------- documents

POLICY_FIELDS = (
    "overlapPolicy catchupWindowMinutes jitterSeconds maxRetries retryBackoffSeconds pauseAfterFailures "
    "consecutiveFailures pausedReason webhookUrl webhookSecretSet"
)
JOB_FIELDS = f"id name active {POLICY_FIELDS}"

POLICY_VARIABLES = """$overlapPolicy: OverlapPolicy, $catchupWindowMinutes: Int, $jitterSeconds: Int,
  $maxRetries: Int, $retryBackoffSeconds: Int, $pauseAfterFailures: Int, $webhookUrl: String,
  $webhookSecret: String"""
POLICY_ARGUMENTS = """overlapPolicy: $overlapPolicy, catchupWindowMinutes: $catchupWindowMinutes,
  jitterSeconds: $jitterSeconds, maxRetries: $maxRetries, retryBackoffSeconds: $retryBackoffSeconds,
  pauseAfterFailures: $pauseAfterFailures, webhookUrl: $webhookUrl, webhookSecret: $webhookSecret"""

CREATE = f"""
mutation Create($instanceId: ID!, $workflow: JSON!, $frequencyType: FrequencyType!, $cronExpression: String,
  $intervalMinutes: Int, $active: Boolean, $name: String, {POLICY_VARIABLES}) {{
  createScheduledJob(instanceId: $instanceId, workflow: $workflow, frequencyType: $frequencyType,
    cronExpression: $cronExpression, intervalMinutes: $intervalMinutes, active: $active, name: $name,
    {POLICY_ARGUMENTS}) {{ {JOB_FIELDS} }}
}}
"""

UPDATE = f"""
mutation Update($jobId: ID!, $active: Boolean, $name: String, {POLICY_VARIABLES}) {{
  updateScheduledJob(jobId: $jobId, active: $active, name: $name, {POLICY_ARGUMENTS}) {{ {JOB_FIELDS} }}
}}
"""

GET_JOB = f"query Job($jobId: ID!) {{ getScheduledJob(jobId: $jobId) {{ {JOB_FIELDS} }} }}"
GET_JOBS = f"query Jobs($instanceId: ID!) {{ getScheduledJobs(instanceId: $instanceId) {{ {JOB_FIELDS} }} }}"

# GraphQL name -> the ScheduledJob column it reads.
COLUMNS = {
    "overlapPolicy": "overlap_policy",
    "catchupWindowMinutes": "catchup_window_minutes",
    "jitterSeconds": "jitter_seconds",
    "maxRetries": "max_retries",
    "retryBackoffSeconds": "retry_backoff_seconds",
    "pauseAfterFailures": "pause_after_failures",
    "consecutiveFailures": "consecutive_failures",
    "pausedReason": "paused_reason",
    "webhookUrl": "webhook_url",
}

DEFAULTS = {
    "overlapPolicy": "SKIP",
    "catchupWindowMinutes": 0,
    "jitterSeconds": 0,
    "maxRetries": 0,
    "retryBackoffSeconds": 30,
    "pauseAfterFailures": None,
    "consecutiveFailures": 0,
    "pausedReason": None,
    "webhookUrl": None,
    "webhookSecretSet": False,
}

NEW_ARGUMENTS = [
    "overlapPolicy",
    "catchupWindowMinutes",
    "jitterSeconds",
    "maxRetries",
    "retryBackoffSeconds",
    "pauseAfterFailures",
    "webhookUrl",
    "webhookSecret",
]
NEW_FIELDS = list(DEFAULTS)

HOOK = "https://hooks.example.test/pointscene"


def make_secret() -> str:
    """A fresh webhook secret, registered with the session's leak sweep (logs, run logs, process output)."""
    return register_secret("whsec-" + secrets.token_urlsafe(24))


# --------------------------------------------------------------------------- calling the API


@pytest.fixture
def call(api, acme_token):
    """Runs a document as Acme's instance-* client; returns (status, body, raw text)."""

    def run(document: str, variables: dict, token: str | None = None) -> tuple[int, dict, str]:
        status, body = api.gql(document, variables, token or acme_token)
        return status, body, json.dumps(body)

    return run


@pytest.fixture
def create_vars(instance, workflow):
    def build(**policies: Any) -> dict:
        return {
            "instanceId": str(instance.pk),
            "workflow": workflow,
            "frequencyType": "CRON_BASED",
            "cronExpression": "30 2 * * *",
            "name": "policies",
            **policies,
        }

    return build


@pytest.fixture
def create(call, create_vars):
    """createScheduledJob that must succeed; returns the job as the mutation answered it."""

    def run(**policies: Any) -> dict:
        status, body, _ = call(CREATE, create_vars(**policies))
        assert status == 200, body
        assert "errors" not in body, body
        return body["data"]["createScheduledJob"]

    return run


@pytest.fixture
def update(call):
    """updateScheduledJob that must succeed; returns the job as the mutation answered it."""

    def run(job_id: int | str, **changes: Any) -> dict:
        status, body, _ = call(UPDATE, {"jobId": str(job_id), **changes})
        assert status == 200, body
        assert "errors" not in body, body
        return body["data"]["updateScheduledJob"]

    return run


@pytest.fixture
def read_back(call, instance):
    """The job as getScheduledJob and getScheduledJobs show it (they must agree), and as its row says."""

    def run(job_id: int | str) -> dict:
        _, one, _ = call(GET_JOB, {"jobId": str(job_id)})
        assert "errors" not in one, one
        _, listed, _ = call(GET_JOBS, {"instanceId": str(instance.pk)})
        assert "errors" not in listed, listed
        [from_list] = [j for j in listed["data"]["getScheduledJobs"] if j["id"] == str(job_id)]
        assert one["data"]["getScheduledJob"] == from_list
        assert row_fields(job_id) == {k: v for k, v in from_list.items() if k in NEW_FIELDS}
        return from_list

    return run


def row_fields(job_id: int | str) -> dict:
    row = ScheduledJob.objects.get(pk=job_id)
    out = {name: getattr(row, column) for name, column in COLUMNS.items()}
    out["webhookSecretSet"] = bool(row.webhook_secret)
    return out


def policies_of(answer: dict) -> dict:
    return {k: v for k, v in answer.items() if k in NEW_FIELDS}


def assert_refused(status: int, body: dict, text: str, code: str, field: str | None, operation: str) -> None:
    assert status != 500, text
    assert "INTERNAL_ERROR" not in error_codes(body), text
    assert body.get("errors"), text
    first = body["errors"][0]
    assert first.get("extensions", {}).get("code") == code, text
    assert first["extensions"].get("field") == field, text
    if code == V:
        assert status == 400, text
        assert body.get("data") is None, text
    else:
        assert status == 200, text
        assert first["path"] == [operation], text
        assert not (body.get("data") or {}).get(operation), text
    for word in ("Traceback", 'File "', "site-packages", "/work/"):
        assert word not in text, text


# --------------------------------------------------------------------------- defaults


def test_it_gives_a_new_job_the_default_policies(create, read_back):
    made = create()

    assert policies_of(made) == DEFAULTS
    assert policies_of(read_back(made["id"])) == DEFAULTS


def test_it_reads_null_policies_on_create_as_their_defaults(create, read_back):
    made = create(**{name: None for name in NEW_ARGUMENTS})

    assert policies_of(made) == DEFAULTS
    assert policies_of(read_back(made["id"])) == DEFAULTS
    assert ScheduledJob.objects.get(pk=made["id"]).webhook_secret is None


def test_it_shows_the_defaults_on_a_job_made_before_any_policy_was_given(job, read_back):
    assert policies_of(read_back(job.pk)) == DEFAULTS


# --------------------------------------------------------------------------- each argument, set and read back

# (arguments given, the fields they change from the defaults)
SETTINGS = [
    pytest.param({"overlapPolicy": "BUFFER_ONE"}, {"overlapPolicy": "BUFFER_ONE"}, id="overlap-buffer-one"),
    pytest.param({"overlapPolicy": "ALLOW"}, {"overlapPolicy": "ALLOW"}, id="overlap-allow"),
    pytest.param({"overlapPolicy": "SKIP"}, {"overlapPolicy": "SKIP"}, id="overlap-skip"),
    pytest.param({"catchupWindowMinutes": 90}, {"catchupWindowMinutes": 90}, id="catchup-window"),
    pytest.param({"jitterSeconds": 45}, {"jitterSeconds": 45}, id="jitter"),
    pytest.param({"maxRetries": 3}, {"maxRetries": 3}, id="max-retries"),
    pytest.param({"retryBackoffSeconds": 5}, {"retryBackoffSeconds": 5}, id="retry-backoff"),
    pytest.param({"pauseAfterFailures": 4}, {"pauseAfterFailures": 4}, id="pause-after-failures"),
    pytest.param(
        {"webhookUrl": HOOK, "webhookSecret": "0123456789abcdef-hook"},
        {"webhookUrl": HOOK, "webhookSecretSet": True},
        id="webhook",
    ),
    pytest.param({"webhookSecret": "0123456789abcdef-only"}, {"webhookSecretSet": True}, id="webhook-secret-alone"),
    pytest.param(
        {
            "overlapPolicy": "ALLOW",
            "catchupWindowMinutes": 2880,
            "jitterSeconds": 3600,
            "maxRetries": 10,
            "retryBackoffSeconds": 3600,
            "pauseAfterFailures": 1000,
            "webhookUrl": HOOK,
            "webhookSecret": "s" * 256,
        },
        {
            "overlapPolicy": "ALLOW",
            "catchupWindowMinutes": 2880,
            "jitterSeconds": 3600,
            "maxRetries": 10,
            "retryBackoffSeconds": 3600,
            "pauseAfterFailures": 1000,
            "webhookUrl": HOOK,
            "webhookSecretSet": True,
        },
        id="all-at-their-highest",
    ),
]


@pytest.mark.parametrize(("arguments", "changed"), SETTINGS)
def test_it_sets_each_policy_on_create(arguments, changed, create, read_back):
    made = create(**arguments)

    expected = {**DEFAULTS, **changed}
    assert policies_of(made) == expected
    assert policies_of(read_back(made["id"])) == expected


@pytest.mark.parametrize(("arguments", "changed"), SETTINGS)
def test_it_sets_each_policy_on_update(arguments, changed, job, update, read_back):
    before = ScheduledJob.objects.values().get(pk=job.pk)

    answer = update(job.pk, **arguments)

    expected = {**DEFAULTS, **changed}
    assert policies_of(answer) == expected
    assert policies_of(read_back(job.pk)) == expected
    after = ScheduledJob.objects.values().get(pk=job.pk)
    touched = {COLUMNS[name] for name in changed if name in COLUMNS} | {"webhook_secret", "updated_at"}
    assert {k: v for k, v in after.items() if k not in touched} == {k: v for k, v in before.items() if k not in touched}


def test_it_leaves_every_policy_alone_when_an_update_does_not_name_it(create, update, read_back):
    secret = make_secret()
    made = create(
        overlapPolicy="BUFFER_ONE",
        catchupWindowMinutes=15,
        jitterSeconds=120,
        maxRetries=2,
        retryBackoffSeconds=7,
        pauseAfterFailures=3,
        webhookUrl=HOOK,
        webhookSecret=secret,
    )
    stored = ScheduledJob.objects.get(pk=made["id"]).webhook_secret

    answer = update(made["id"], name="renamed")

    assert answer["name"] == "renamed"
    assert policies_of(answer) == policies_of(made)
    assert policies_of(read_back(made["id"])) == policies_of(made)
    assert ScheduledJob.objects.get(pk=made["id"]).webhook_secret == stored


RESETS = [
    pytest.param("overlapPolicy", "ALLOW", id="overlapPolicy"),
    pytest.param("catchupWindowMinutes", 60, id="catchupWindowMinutes"),
    pytest.param("jitterSeconds", 30, id="jitterSeconds"),
    pytest.param("maxRetries", 5, id="maxRetries"),
    pytest.param("retryBackoffSeconds", 120, id="retryBackoffSeconds"),
    pytest.param("pauseAfterFailures", 9, id="pauseAfterFailures"),
]


@pytest.mark.parametrize(("name", "value"), RESETS)
def test_it_resets_a_policy_to_its_default_when_an_update_gives_null(name, value, create, update, read_back):
    made = create(**{name: value})
    assert made[name] == value

    answer = update(made["id"], **{name: None})

    assert policies_of(answer) == DEFAULTS
    assert policies_of(read_back(made["id"])) == DEFAULTS


# --------------------------------------------------------------------------- bounds and types

# argument -> (lowest, highest)
NUMBER_BOUNDS = {
    "catchupWindowMinutes": (0, 2880),
    "jitterSeconds": (0, 3600),
    "maxRetries": (0, 10),
    "retryBackoffSeconds": (1, 3600),
    "pauseAfterFailures": (1, 1000),
}

INVALID = "INVALID_VALUE"


def number_cases() -> list:
    cases = []
    for name, (low, high) in NUMBER_BOUNDS.items():
        cases += [
            pytest.param(name, {name: low - 1}, INVALID, name, id=f"{name}-lowest-minus-1"),
            pytest.param(name, {name: low}, OK, None, id=f"{name}-lowest"),
            pytest.param(name, {name: high}, OK, None, id=f"{name}-highest"),
            pytest.param(name, {name: high + 1}, INVALID, name, id=f"{name}-highest-plus-1"),
            pytest.param(name, {name: -(2**31)}, INVALID, name, id=f"{name}-most-negative-int32"),
            pytest.param(name, {name: 2**31 - 1}, INVALID, name, id=f"{name}-largest-int32"),
            pytest.param(name, {name: float(high)}, OK, None, id=f"{name}-highest-as-whole-float"),
            pytest.param(name, {name: 2**31}, V, None, id=f"{name}-not-int32"),
            pytest.param(name, {name: str(low + 1)}, V, None, id=f"{name}-string"),
            pytest.param(name, {name: low + 0.5}, V, None, id=f"{name}-fraction"),
            pytest.param(name, {name: True}, V, None, id=f"{name}-boolean"),
            pytest.param(name, {name: [low]}, V, None, id=f"{name}-list"),
        ]
    return cases


def overlap_cases() -> list:
    name = "overlapPolicy"
    return [
        pytest.param(name, {name: "SKIP"}, OK, None, id="overlap-SKIP"),
        pytest.param(name, {name: "BUFFER_ONE"}, OK, None, id="overlap-BUFFER_ONE"),
        pytest.param(name, {name: "ALLOW"}, OK, None, id="overlap-ALLOW"),
        pytest.param(name, {name: "NEVER"}, V, None, id="overlap-unknown"),
        pytest.param(name, {name: "skip"}, V, None, id="overlap-lowercase"),
        pytest.param(name, {name: ""}, V, None, id="overlap-empty"),
        pytest.param(name, {name: 1}, V, None, id="overlap-number"),
        pytest.param(name, {name: True}, V, None, id="overlap-boolean"),
    ]


def url_cases() -> list:
    name = "webhookUrl"
    good_secret = "a-good-secret-0123456789"
    host = "https://hooks.example.test/"

    def case(url: Any, outcome: str, field: str | None, id_: str):
        return pytest.param(name, {name: url, "webhookSecret": good_secret}, outcome, field, id=id_)

    return [
        case("http://hooks.example.test/x", OK, None, "url-http"),
        case(HOOK + "?a=1&b=2#frag", OK, None, "url-https-query-fragment"),
        case("http://127.0.0.1:8080/hook", OK, None, "url-ip-port"),
        case("HTTPS://HOOKS.EXAMPLE.TEST/X", OK, None, "url-uppercase-scheme"),
        case(host + "a" * (2048 - len(host)), OK, None, "url-2048-chars"),
        case(host + "a" * (2049 - len(host)), INVALID, name, "url-2049-chars"),
        case("", INVALID, name, "url-empty"),
        case("hooks.example.test/x", INVALID, name, "url-no-scheme"),
        case("ftp://hooks.example.test/x", INVALID, name, "url-ftp"),
        case("file:///etc/passwd", INVALID, name, "url-file"),
        case("javascript:alert(1)", INVALID, name, "url-javascript"),
        case("http:/hooks.example.test", INVALID, name, "url-one-slash"),
        case("http://", INVALID, name, "url-no-host"),
        case("https:///path", INVALID, name, "url-empty-host"),
        case(" " + HOOK, INVALID, name, "url-leading-space"),
        case(HOOK + " ", INVALID, name, "url-trailing-space"),
        case("https://hooks.example.test/a b", INVALID, name, "url-inner-space"),
        case(HOOK + "\n", INVALID, name, "url-newline"),
        case("https://hooks.example.test/\tx", INVALID, name, "url-tab"),
        case("https://hooks.example.test/\r\nX-Evil: 1", INVALID, name, "url-header-injection"),
        case("https://hooks.example.test/\x00", INVALID, name, "url-nul"),
        case("https://hooks.example.test/\x1b[31m", INVALID, name, "url-escape"),
        case("https://hooks.example.test/\x7f", INVALID, name, "url-del"),
        case("https://hooks.example.test/\x9b", INVALID, name, "url-c1-control"),
        case("https://hooks.example.test/\u2028", INVALID, name, "url-line-separator"),
        case(42, V, None, "url-number"),
        case(True, V, None, "url-boolean"),
        case([HOOK], V, None, "url-list"),
        case({"url": HOOK}, V, None, "url-object"),
    ]


def secret_cases() -> list:
    name = "webhookSecret"

    def case(secret: Any, outcome: str, field: str | None, id_: str):
        return pytest.param(name, {"webhookUrl": HOOK, name: secret}, outcome, field, id=id_)

    return [
        case("k" * 15, INVALID, name, "secret-15-chars"),
        case("k" * 16, OK, None, "secret-16-chars"),
        case("k" * 256, OK, None, "secret-256-chars"),
        case("k" * 257, INVALID, name, "secret-257-chars"),
        case("", INVALID, name, "secret-empty"),
        case("ä" * 16, OK, None, "secret-16-non-ascii-chars"),
        case("ä" * 15, INVALID, name, "secret-15-non-ascii-chars"),
        case(None, "REQUIRED", name, "secret-null-with-url"),
        case(1234567890123456, V, None, "secret-number"),
        case(True, V, None, "secret-boolean"),
        case(["k" * 16], V, None, "secret-list"),
    ]


BOUNDS = number_cases() + overlap_cases() + url_cases() + secret_cases()


def expected_read(name: str, variables: dict) -> dict:
    """What an accepted case reads back as."""
    if name in NUMBER_BOUNDS:
        return {name: int(variables[name])}
    if name == "overlapPolicy":
        return {name: variables[name]}
    return {"webhookUrl": variables["webhookUrl"], "webhookSecretSet": True}


def check_case(name, variables, outcome, field, operation, status, body, text, before, read_back) -> None:
    secret = variables.get("webhookSecret")
    if isinstance(secret, str) and secret:
        assert secret not in text, "the webhook secret came back in the response"
    if outcome == OK:
        assert status == 200, text
        assert "errors" not in body, text
        answer = body["data"][operation]
        expected = {**DEFAULTS, **expected_read(name, variables)}
        assert policies_of(answer) == expected
        assert policies_of(read_back(answer["id"])) == expected
        return
    assert_refused(status, body, text, outcome, field, operation)
    if outcome == V:
        assert f"${name}" in body["errors"][0]["message"], text
    assert row_snapshot() == before


@pytest.mark.parametrize(("name", "variables", "outcome", "field"), BOUNDS)
def test_it_checks_each_bound_on_create(name, variables, outcome, field, call, create_vars, read_back):
    before = row_snapshot()

    status, body, text = call(CREATE, create_vars(**variables))

    check_case(name, variables, outcome, field, "createScheduledJob", status, body, text, before, read_back)


@pytest.mark.parametrize(("name", "variables", "outcome", "field"), BOUNDS)
def test_it_checks_each_bound_on_update(name, variables, outcome, field, call, job, read_back):
    before = row_snapshot()

    status, body, text = call(UPDATE, {"jobId": str(job.pk), **variables})

    check_case(name, variables, outcome, field, "updateScheduledJob", status, body, text, before, read_back)


def test_it_has_both_directions_of_every_bound():
    ids = {p.id for p in BOUNDS}
    for name in NUMBER_BOUNDS:
        assert {f"{name}-lowest-minus-1", f"{name}-lowest", f"{name}-highest", f"{name}-highest-plus-1"} <= ids
    assert {"url-2048-chars", "url-2049-chars", "secret-15-chars", "secret-16-chars", "secret-256-chars"} <= ids
    assert "secret-257-chars" in ids


def test_it_refuses_a_bad_policy_given_with_good_ones_and_writes_none_of_them(call, job, read_back):
    before = row_snapshot()

    status, body, text = call(
        UPDATE,
        {
            "jobId": str(job.pk),
            "name": "should not stick",
            "overlapPolicy": "ALLOW",
            "jitterSeconds": 10,
            "maxRetries": 11,
            "webhookUrl": HOOK,
            "webhookSecret": make_secret(),
        },
    )

    assert_refused(status, body, text, INVALID, "maxRetries", "updateScheduledJob")
    assert row_snapshot() == before
    assert policies_of(read_back(job.pk)) == DEFAULTS


def test_it_refuses_a_bad_policy_on_create_after_a_good_one_in_the_same_document(call, create_vars):
    before = row_snapshot()
    variables = create_vars()
    document = """
    mutation Two($instanceId: ID!, $workflow: JSON!) {
      first: createScheduledJob(instanceId: $instanceId, workflow: $workflow, frequencyType: CRON_BASED,
                                cronExpression: "0 * * * *", jitterSeconds: 10) { id }
      second: createScheduledJob(instanceId: $instanceId, workflow: $workflow, frequencyType: CRON_BASED,
                                 cronExpression: "0 * * * *", jitterSeconds: 3601) { id }
    }
    """

    status, body, text = call(document, {"instanceId": variables["instanceId"], "workflow": variables["workflow"]})

    assert status == 200, text
    assert error_codes(body) == [INVALID], text
    assert body["errors"][0]["extensions"]["field"] == "jitterSeconds", text
    assert body["errors"][0]["path"] == ["second"], text
    assert row_snapshot() == before


@pytest.mark.parametrize(
    ("literal", "says"),
    [
        pytest.param("jitterSeconds: 1.5", "1.5", id="float-literal"),
        pytest.param('maxRetries: "3"', '"3"', id="string-literal"),
        pytest.param("pauseAfterFailures: true", "true", id="boolean-literal"),
        pytest.param('overlapPolicy: "SKIP"', "OverlapPolicy", id="enum-as-string-literal"),
        pytest.param("overlapPolicy: NEVER", "NEVER", id="enum-unknown-literal"),
        pytest.param("webhookUrl: 42", "42", id="url-number-literal"),
        pytest.param("catchupWindowMinutes: 2147483648", "2147483648", id="int-literal-not-int32"),
    ],
)
def test_it_refuses_literals_of_the_wrong_type_without_a_500(literal, says, call, job):
    before = row_snapshot()

    status, body, text = call(f'mutation {{ updateScheduledJob(jobId: "{job.pk}", {literal}) {{ id }} }}', {})

    assert_refused(status, body, text, V, None, "updateScheduledJob")
    assert says in body["errors"][0]["message"], text
    assert row_snapshot() == before


# --------------------------------------------------------------------------- the webhook secret


def test_it_requires_a_secret_with_a_webhook_url_on_create(call, create_vars):
    before = row_snapshot()

    status, body, text = call(CREATE, create_vars(webhookUrl=HOOK))

    assert_refused(status, body, text, "REQUIRED", "webhookSecret", "createScheduledJob")
    assert row_snapshot() == before


def test_it_requires_a_secret_when_an_update_gives_a_job_without_one_a_webhook_url(call, job):
    before = row_snapshot()

    status, body, text = call(UPDATE, {"jobId": str(job.pk), "webhookUrl": HOOK})

    assert_refused(status, body, text, "REQUIRED", "webhookSecret", "updateScheduledJob")
    assert row_snapshot() == before


def test_it_keeps_the_stored_secret_when_an_update_changes_only_the_url(create, update):
    secret = make_secret()
    made = create(webhookUrl=HOOK, webhookSecret=secret)

    answer = update(made["id"], webhookUrl="https://other.example.test/hook")

    assert answer["webhookUrl"] == "https://other.example.test/hook"
    assert answer["webhookSecretSet"] is True
    stored = ScheduledJob.objects.get(pk=made["id"]).webhook_secret
    assert fernet().decrypt(stored.encode()).decode() == secret


def test_it_never_returns_the_webhook_secret(call, create_vars, instance):
    first, second = make_secret(), make_secret()
    scanner = Scanner([first, second])

    status, body, text = call(CREATE, create_vars(webhookUrl=HOOK, webhookSecret=first))
    assert "errors" not in body, text
    job_id = body["data"]["createScheduledJob"]["id"]
    answers = [text]
    answers.append(call(UPDATE, {"jobId": job_id, "webhookSecret": second})[2])
    answers.append(call(UPDATE, {"jobId": job_id, "name": "x", "webhookUrl": HOOK, "webhookSecret": second})[2])
    answers.append(call(GET_JOB, {"jobId": job_id})[2])
    answers.append(call(GET_JOBS, {"instanceId": str(instance.pk)})[2])
    # Refused requests carrying a secret do not echo it either.
    answers.append(call(UPDATE, {"jobId": job_id, "webhookUrl": "ftp://x", "webhookSecret": first})[2])
    answers.append(call(UPDATE, {"jobId": job_id, "maxRetries": 99, "webhookSecret": first})[2])
    answers.append(call(CREATE, create_vars(webhookUrl=HOOK, webhookSecret=first + "x" * 256))[2])

    stored = ScheduledJob.objects.get(pk=job_id).webhook_secret
    for answer in answers:
        assert scanner.find(answer) == [], answer[:300]
        assert stored not in answer
    assert json.loads(answers[3])["data"]["getScheduledJob"]["webhookSecretSet"] is True


def test_it_has_no_field_that_reads_the_secret(call, job):
    status, body, text = call(f'query {{ getScheduledJob(jobId: "{job.pk}") {{ id webhookSecret }} }}', {})

    assert status == 400, text
    assert error_codes(body) == [V], text
    assert "webhookSecret" in body["errors"][0]["message"]


def test_it_stores_the_secret_encrypted(create, update):
    secret = make_secret()
    made = create(webhookUrl=HOOK, webhookSecret=secret)

    stored = ScheduledJob.objects.values_list("webhook_secret", flat=True).get(pk=made["id"])
    assert stored
    assert secret not in stored
    assert Scanner([secret]).find(stored) == []
    assert fernet().decrypt(stored.encode()).decode() == secret

    replacement = make_secret()
    update(made["id"], webhookSecret=replacement)
    replaced = ScheduledJob.objects.values_list("webhook_secret", flat=True).get(pk=made["id"])
    assert replaced != stored
    assert replacement not in replaced
    assert fernet().decrypt(replaced.encode()).decode() == replacement


def test_it_forgets_the_secret_when_the_webhook_url_is_set_to_null(create, update, read_back, call):
    made = create(webhookUrl=HOOK, webhookSecret=make_secret())
    assert made["webhookSecretSet"] is True

    answer = update(made["id"], webhookUrl=None)

    assert answer["webhookUrl"] is None
    assert answer["webhookSecretSet"] is False
    assert read_back(made["id"])["webhookSecretSet"] is False
    row = ScheduledJob.objects.get(pk=made["id"])
    assert (row.webhook_url, row.webhook_secret) == (None, None)

    # The old secret is gone: a new URL needs a new secret.
    before = row_snapshot()
    status, body, text = call(UPDATE, {"jobId": made["id"], "webhookUrl": HOOK})
    assert_refused(status, body, text, "REQUIRED", "webhookSecret", "updateScheduledJob")
    assert row_snapshot() == before


# --------------------------------------------------------------------------- who may set them

POLICY_CHANGE = {
    "overlapPolicy": "ALLOW",
    "catchupWindowMinutes": 30,
    "jitterSeconds": 60,
    "maxRetries": 2,
    "retryBackoffSeconds": 10,
    "pauseAfterFailures": 5,
    "webhookUrl": HOOK,
    "webhookSecret": "a-secret-of-at-least-16",
}
BAD_POLICY_CHANGE = {**POLICY_CHANGE, "maxRetries": 99, "webhookUrl": "ftp://nope"}

# scope kind -> what createScheduledJob / updateScheduledJob answer on Acme's ids (tests/api/test_permissions.py).
REFUSING_SCOPES = [
    pytest.param(lambda i, r: f"instance-read-{i}", "FORBIDDEN", id="instance-read"),
    pytest.param(lambda i, r: f"instance-read-{i} resource-write-{r}", "FORBIDDEN", id="instance-read+resource-write"),
    pytest.param(lambda i, r: f"resource-write-{r}", "NOT_FOUND", id="resource-write"),
    pytest.param(lambda i, r: f"resource-read-{r}", "NOT_FOUND", id="resource-read"),
    pytest.param(lambda i, r: "instance-create", "NOT_FOUND", id="instance-create"),
]


@pytest.mark.parametrize("change", [POLICY_CHANGE, BAD_POLICY_CHANGE], ids=["valid-values", "invalid-values"])
@pytest.mark.parametrize(("scope", "code"), REFUSING_SCOPES)
def test_it_refuses_policy_changes_to_a_token_that_may_not_write(
    scope, code, change, call, token_for, instance, resource, job, create_vars
):
    token = token_for(scope(instance.pk, resource.pk))
    before = row_snapshot()

    status, body, text = call(UPDATE, {"jobId": str(job.pk), **change}, token)
    assert_refused(status, body, text, code, "jobId", "updateScheduledJob")
    assert row_snapshot() == before

    status, body, text = call(CREATE, create_vars(**change), token)
    assert_refused(status, body, text, code, "instanceId", "createScheduledJob")
    assert row_snapshot() == before
    assert "a-secret-of-at-least-16" not in text


def test_it_answers_another_tenants_policy_change_like_a_missing_job(call, api, globex_client, job):
    token = api.token(globex_client, "instance-*")["access_token"]
    before = row_snapshot()

    status, foreign, text = call(UPDATE, {"jobId": str(job.pk), **POLICY_CHANGE}, token)
    _, missing, _ = call(UPDATE, {"jobId": str(MISSING_ID), **POLICY_CHANGE}, token)

    assert_refused(status, foreign, text, "NOT_FOUND", "jobId", "updateScheduledJob")
    strip = [{k: v for k, v in e.items() if k != "locations"} for e in foreign["errors"]]
    assert strip == [{k: v for k, v in e.items() if k != "locations"} for e in missing["errors"]]
    assert row_snapshot() == before


# --------------------------------------------------------------------------- pausing and reactivating


def pause_with_orm(job: ScheduledJob) -> None:
    ScheduledJob.objects.filter(pk=job.pk).update(active=False, paused_reason="x", consecutive_failures=3)


def pause_with_service(job: ScheduledJob) -> None:
    ScheduledJob.objects.filter(pk=job.pk).update(pause_after_failures=3, consecutive_failures=3)
    assert outcome.pause_after_failures(job.pk, 3) is True


@pytest.mark.parametrize("pause", [pause_with_orm, pause_with_service], ids=["orm", "service"])
def test_it_clears_the_pause_and_the_failure_count_when_a_paused_job_is_reactivated(pause, job, call, read_back):
    pause(job)
    paused = read_back(job.pk)
    assert paused["active"] is False
    assert paused["pausedReason"]
    assert paused["consecutiveFailures"] == 3

    status, body, text = call(UPDATE, {"jobId": str(job.pk), "active": True})

    assert status == 200, text
    assert "errors" not in body, text
    answer = body["data"]["updateScheduledJob"]
    assert (answer["active"], answer["pausedReason"], answer["consecutiveFailures"]) == (True, None, 0)
    again = read_back(job.pk)
    assert (again["active"], again["pausedReason"], again["consecutiveFailures"]) == (True, None, 0)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"name": "renamed"}, id="rename"),
        pytest.param({"active": False}, id="deactivate-again"),
        pytest.param({"maxRetries": 4}, id="other-policy"),
        pytest.param({"active": None}, id="active-null"),
    ],
)
def test_it_keeps_the_pause_when_an_update_does_not_reactivate(change, job, call, read_back):
    pause_with_orm(job)

    status, body, text = call(UPDATE, {"jobId": str(job.pk), **change})

    assert "errors" not in body, text
    answer = read_back(job.pk)
    assert (answer["active"], answer["pausedReason"], answer["consecutiveFailures"]) == (False, "x", 3)


def test_it_keeps_the_failure_count_of_an_active_job_told_active_again(job, call, read_back):
    ScheduledJob.objects.filter(pk=job.pk).update(consecutive_failures=2)

    status, body, text = call(UPDATE, {"jobId": str(job.pk), "active": True})

    assert "errors" not in body, text
    assert read_back(job.pk)["consecutiveFailures"] == 2


def test_it_does_not_let_a_client_set_the_read_only_fields(call, job):
    before = row_snapshot()
    document = (
        f'mutation {{ updateScheduledJob(jobId: "{job.pk}", consecutiveFailures: 0, pausedReason: null) {{ id }} }}'
    )

    status, body, text = call(document, {})

    assert_refused(status, body, text, V, None, "updateScheduledJob")
    assert row_snapshot() == before


# --------------------------------------------------------------------------- the RedBeat entry of a jittered job


@pytest.fixture
def committing_call(call, clean_redis, django_capture_on_commit_callbacks):
    """`call`, then the on-commit hooks as a real commit would run them (they write the RedBeat entry)."""

    def run(document: str, variables: dict) -> dict:
        with django_capture_on_commit_callbacks(execute=True):
            status, body, text = call(document, variables)
        assert status == 200, text
        assert "errors" not in body, text
        return body

    return run


def assert_jittered_entry(job_id: int | str, synced_between: tuple[datetime, datetime]) -> int:
    """The job's entry exists, carries its offset, and is scored at its next slot plus the offset."""
    job = ScheduledJob.objects.get(pk=job_id)
    schedule = JobSchedule.for_job(job)
    entry = stored_entry(job.pk)
    assert entry.raw_definition is not None, f"no RedBeat entry for job {job.pk}"
    assert entry.schedule == schedule
    assert entry.definition["task"] == "jobs.run_scheduled"
    offset = job.jitter_offset
    assert 0 <= offset <= job.jitter_seconds
    assert schedule.offset == offset
    raw_schedule = json.loads(entry.raw_definition)["schedule"]
    if offset:
        assert raw_schedule["offset"] == offset
    else:
        assert "offset" not in raw_schedule
    last = entry.last_run_at
    assert synced_between[0] <= last <= synced_between[1]
    slot = job.next_run(after=last)
    assert schedule.next_after(last) == slot
    assert entry.score == to_timestamp(schedule.fire_at(slot))
    assert schedule.fire_at(slot).timestamp() - slot.timestamp() == offset
    return offset


@pytest.mark.parametrize(
    "schedule",
    [
        pytest.param({"frequencyType": "CRON_BASED", "cronExpression": "*/5 * * * *"}, id="cron"),
        pytest.param({"frequencyType": "INTERVAL_BASED", "cronExpression": None, "intervalMinutes": 10}, id="interval"),
    ],
)
def test_it_writes_the_entry_of_a_job_created_with_jitter(schedule, committing_call, create_vars):
    started = datetime.now(UTC)

    body = committing_call(CREATE, create_vars(jitterSeconds=3600, **schedule))

    job_id = body["data"]["createScheduledJob"]["id"]
    assert_jittered_entry(job_id, (started, datetime.now(UTC)))


def test_it_moves_the_entry_when_an_update_changes_the_jitter(committing_call, create_vars):
    body = committing_call(CREATE, create_vars(jitterSeconds=3600))
    job_id = body["data"]["createScheduledJob"]["id"]

    started = datetime.now(UTC)
    committing_call(UPDATE, {"jobId": job_id, "jitterSeconds": 0})
    assert assert_jittered_entry(job_id, (started, datetime.now(UTC))) == 0
    assert "offset" not in json.loads(stored_entry(int(job_id)).raw_definition)["schedule"]

    started = datetime.now(UTC)
    committing_call(UPDATE, {"jobId": job_id, "jitterSeconds": 3600})
    offset = assert_jittered_entry(job_id, (started, datetime.now(UTC)))

    committing_call(UPDATE, {"jobId": job_id, "name": "renamed"})
    assert assert_jittered_entry(job_id, (started, datetime.now(UTC))) == offset


def test_it_puts_the_entry_back_when_a_paused_job_is_reactivated(committing_call, create_vars):
    body = committing_call(CREATE, create_vars(jitterSeconds=600, pauseAfterFailures=2))
    job_id = int(body["data"]["createScheduledJob"]["id"])
    ScheduledJob.objects.filter(pk=job_id).update(consecutive_failures=2)
    committing_call(UPDATE, {"jobId": str(job_id), "active": False})
    assert_no_entry(job_id)
    ScheduledJob.objects.filter(pk=job_id).update(paused_reason="paused by the service after 2 consecutive failed runs")

    started = datetime.now(UTC)
    answer = committing_call(UPDATE, {"jobId": str(job_id), "active": True})["data"]["updateScheduledJob"]

    assert (answer["active"], answer["pausedReason"], answer["consecutiveFailures"]) == (True, None, 0)
    assert_jittered_entry(job_id, (started, datetime.now(UTC)))


# --------------------------------------------------------------------------- the schema documents them

INTROSPECT = """
query {
  mutation: __type(name: "Mutation") {
    fields { name args { name description type { kind name ofType { kind name } } } }
  }
  job: __type(name: "ScheduledJob") { fields { name description type { kind name ofType { kind name } } } }
  overlap: __type(name: "OverlapPolicy") { kind description enumValues { name description } }
}
"""

ARGUMENT_TYPES = {
    "overlapPolicy": "OverlapPolicy",
    "catchupWindowMinutes": "Int",
    "jitterSeconds": "Int",
    "maxRetries": "Int",
    "retryBackoffSeconds": "Int",
    "pauseAfterFailures": "Int",
    "webhookUrl": "String",
    "webhookSecret": "String",
}
# field -> (type name, non-null)
FIELD_TYPES = {
    "overlapPolicy": ("OverlapPolicy", True),
    "catchupWindowMinutes": ("Int", True),
    "jitterSeconds": ("Int", True),
    "maxRetries": ("Int", True),
    "retryBackoffSeconds": ("Int", True),
    "pauseAfterFailures": ("Int", False),
    "consecutiveFailures": ("Int", True),
    "pausedReason": ("String", False),
    "webhookUrl": ("String", False),
    "webhookSecretSet": ("Boolean", True),
}


def type_of(ref: dict) -> tuple[str, bool]:
    if ref["kind"] == "NON_NULL":
        return ref["ofType"]["name"], True
    return ref["name"], False


@pytest.fixture
def schema(call, settings) -> dict:
    settings.GRAPHQL_INTROSPECTION = True
    status, body, text = call(INTROSPECT, {})
    assert status == 200, text
    assert "errors" not in body, text
    return body["data"]


@pytest.mark.parametrize("mutation", ["createScheduledJob", "updateScheduledJob"])
def test_it_describes_every_new_argument(mutation, schema):
    [field] = [f for f in schema["mutation"]["fields"] if f["name"] == mutation]
    arguments = {a["name"]: a for a in field["args"]}

    for name, type_name in ARGUMENT_TYPES.items():
        assert name in arguments, f"{mutation} has no argument {name}"
        assert (arguments[name]["description"] or "").strip(), f"{mutation}({name}) has no description"
        assert type_of(arguments[name]["type"]) == (type_name, False), (mutation, name, arguments[name]["type"])


def test_it_describes_every_new_field(schema):
    fields = {f["name"]: f for f in schema["job"]["fields"]}

    for name, shape in FIELD_TYPES.items():
        assert name in fields, f"ScheduledJob has no field {name}"
        assert (fields[name]["description"] or "").strip(), f"ScheduledJob.{name} has no description"
        assert type_of(fields[name]["type"]) == shape, (name, fields[name]["type"])
    assert "webhookSecret" not in fields


def test_it_describes_the_overlap_policy_enum(schema):
    overlap = schema["overlap"]

    assert overlap["kind"] == "ENUM"
    assert (overlap["description"] or "").strip()
    assert {v["name"] for v in overlap["enumValues"]} == {"SKIP", "BUFFER_ONE", "ALLOW"}
    for value in overlap["enumValues"]:
        assert (value["description"] or "").strip(), f"OverlapPolicy.{value['name']} has no description"
