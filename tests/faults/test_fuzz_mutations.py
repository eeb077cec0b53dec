"""Bad input never hurts: property-based fuzzing (hypothesis) of every mutation's arguments and of workflow JSON.

Every example goes through the real HTTP layer (POST /graphql with a bearer token, as clients send it), against
the real database and the session's private Redis; the schedule's side effects run on commit, so with
transaction=True they really happen. After each example:

- the status is 200, or 400 for a malformed request, never 500; the body is JSON with data or errors; every error
  carries a non-empty upper-case extensions.code that is not INTERNAL_ERROR; nothing looks like a traceback;
- an answer with errors wrote nothing: every watched row is as it was (no partial row);
- the schedule is in step with the database: the set of active job ids equals the set of job ids with a RedBeat
  hash and the set with a zset member (no entry without its job, no job without its entry, none for inactive or
  deleted jobs), and each entry's schedule is its job's;
- no secret given (webhookSecret, a config's secret values) appears in any answer.

Values come from two kinds of strategy: arbitrary JSON (none, booleans, integers up to huge, floats, text with
control characters, lone surrogates and NUL, nested lists and objects) for every argument, and near-valid values:
a valid request with one to three arguments changed (a workflow with a duplicated name, an unknown type, an inputs
cycle, huge args, wrong nesting; cron strings from a grammar of fields with junk; real and fake time zones;
integers at and just beyond their bounds). Arguments go as variables, and some inline as GraphQL literals. Apart
from those: hostile strings (NUL, lone surrogates, escapes) in each text argument of each mutation with the rest
valid, NaN and Infinity (which Python's JSON parser reads), documents of several mutations that fail part way,
malformed request bodies, and issue 6's rules for out-of-range reliability settings (INVALID_VALUE naming the
argument; REQUIRED webhookSecret).

Examples are derandomized, so a run is reproducible (and CI sees the same examples every time); the explain phase
is off, so a failure costs its shrinking only. The schema is read at import: arguments the running schema lacks
are left out of the documents, and test_it_fuzzes_every_argument_of_the_reliability_settings fails until they
exist. `--hypothesis-show-statistics` shows which codes refused how many examples.
"""

import json
import math
import re
import zoneinfo
from dataclasses import dataclass
from typing import Any

import pytest
from graphql import GraphQLEnumType, get_named_type, is_leaf_type, is_non_null_type
from graphql.pyutils import Undefined
from hypothesis import HealthCheck, Phase, currently_in_test_context, event, given, settings
from hypothesis import strategies as st

from configs.models import RemoteConfig
from configs.services import add_job_config
from jobs import services
from jobs.models import FrequencyType, JobHistory, RunStatus, ScheduledJob
from jobs.scheduling.slots import JobSchedule
from pointscene.core.models import Instance, Resource
from pointscene.graphql.schema import schema
from tests.fixtures.api import row_snapshot
from tests.fixtures.cast import sync_workflow
from tests.fixtures.leaks import register_secret
from tests.fixtures.redbeat import entry_job_ids, stored_entry

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    # No explain phase: on a failure it reruns the example hundreds of times (minutes) to annotate it.
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
# Fewer examples for the tests whose every example is a document of several mutations.
FUZZ_SMALL = settings(FUZZ, max_examples=80)

MISSING_ID = 987_654_321
CODE = re.compile(r"[A-Z][A-Z0-9_]*")
DROP: Any = object()  # "leave this argument out"

# --------------------------------------------------------------------------- the schema, as the server has it

GRAPHQL = schema.graphql_schema
MUTATIONS = GRAPHQL.mutation_type.fields


def arg_types(mutation: str) -> dict[str, str]:
    """Argument name -> its GraphQL type as written in a variable definition ("ID!", "Int", "OverlapPolicy")."""
    return {name: str(arg.type) for name, arg in MUTATIONS[mutation].args.items()}


# The reliability settings of issue 6, on createScheduledJob and updateScheduledJob.
RELIABILITY_ARGS = (
    "overlapPolicy",
    "catchupWindowMinutes",
    "jitterSeconds",
    "maxRetries",
    "retryBackoffSeconds",
    "pauseAfterFailures",
    "webhookUrl",
    "webhookSecret",
)
RELIABILITY_BOUNDS = {
    "catchupWindowMinutes": (0, 2880),
    "jitterSeconds": (0, 3600),
    "maxRetries": (0, 10),
    "retryBackoffSeconds": (1, 3600),
    "pauseAfterFailures": (1, 1000),
}


def selection(type_, depth: int = 0) -> str:
    """Every field of an output type that needs no argument: leaves, and the leaves of object fields one level down."""
    named = get_named_type(type_)
    if is_leaf_type(named):
        return ""
    parts = []
    for name, field in named.fields.items():
        if any(is_non_null_type(a.type) and a.default_value is Undefined for a in field.args.values()):
            continue
        sub = get_named_type(field.type)
        if is_leaf_type(sub):
            parts.append(name)
        elif depth == 0:
            parts.append(f"{name} {selection(field.type, 1)}")
    return "{ " + " ".join(parts) + " }"


# --------------------------------------------------------------------------- documents

GRAPHQL_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]*")


class Unrepresentable(Exception):
    """A value that has no GraphQL literal (NaN, an object key that is not a GraphQL name)."""


def literal(value: Any, enum: bool = False) -> str:
    """`value` written inline as a GraphQL literal."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise Unrepresentable(value)
        return repr(value)
    if isinstance(value, str):
        if enum and GRAPHQL_NAME.fullmatch(value) and value not in ("true", "false", "null"):
            return value
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    if isinstance(value, dict):
        if not all(GRAPHQL_NAME.fullmatch(k) for k in value):
            raise Unrepresentable(value)
        return "{" + ", ".join(f"{k}: {literal(v)}" for k, v in value.items()) + "}"
    raise Unrepresentable(value)


@dataclass(frozen=True)
class Call:
    mutation: str
    args: dict[str, Any]  # DROP values are left out
    inline: frozenset[str] = frozenset()  # arguments written as literals instead of variables


def document(*calls: Call) -> tuple[str, dict]:
    """One mutation document with the calls in order (aliased m0, m1, ...), and its variables."""
    declarations, fields, variables = [], [], {}
    for i, call in enumerate(calls):
        types = arg_types(call.mutation)
        written = []
        for name, value in call.args.items():
            if value is DROP:
                continue
            type_ = types.get(name, "JSON")
            if name in call.inline:
                named = get_named_type(MUTATIONS[call.mutation].args[name].type) if name in types else None
                try:
                    written.append(f"{name}: {literal(value, enum=isinstance(named, GraphQLEnumType))}")
                    continue
                except (Unrepresentable, RecursionError):
                    pass  # no literal for it (or too deep for this renderer): sent as a variable instead
            variable = f"v{i}_{name}"
            declarations.append(f"${variable}: {type_}")
            variables[variable] = value
            written.append(f"{name}: ${variable}")
        arguments = f"({', '.join(written)})" if written else ""
        fields.append(f"m{i}: {call.mutation}{arguments} {selection(MUTATIONS[call.mutation].type)}")
    header = f"({', '.join(declarations)})" if declarations else ""
    return f"mutation Fuzz{header} {{ {' '.join(fields)} }}", variables


# --------------------------------------------------------------------------- the world each test runs in


@pytest.fixture(autouse=True)
def fast_secret_hashing(settings):
    """Client secrets are hashed with PBKDF2 (about half a second each); these tests are not about hashing."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def no_cancel_wait(settings):
    """cancelJobRun would wait seconds for a worker (there is none here) to confirm a RUNNING run's end."""
    settings.JOBS_CANCEL_WAIT_SECONDS = 0


# Planted secrets: distinctive, so that finding one in an answer is a leak and not a coincidence.
CONFIG_SECRETS = {
    "client_secret": "fz-client-secret-71c9e0a4d2",
    "app_secret": "fz-app-secret-5b8f3e19c7",
    "secret_access_key": "fz-secret-access-key-0d4a9c62",
    "access_token": "fz-access-token-3e7b1f08a5",
    "refresh_token": "fz-refresh-token-9a2c6d4e17",
}
for _secret in CONFIG_SECRETS.values():
    register_secret(_secret)


def token_json(access: str = CONFIG_SECRETS["access_token"], refresh: str = CONFIG_SECRETS["refresh_token"]) -> str:
    return json.dumps(
        {"access_token": access, "token_type": "Bearer", "refresh_token": refresh, "expiry": "2026-12-01T09:30:00Z"}
    )


def valid_config() -> dict:
    """The contract example's remotes (drive, dropbox, s3), with planted secrets."""
    return {
        "gdrive": {
            "type": "drive",
            "client_id": "fuzz-client.apps.example",
            "client_secret": CONFIG_SECRETS["client_secret"],
            "scope": "drive",
            "token": token_json(),
        },
        "box": {
            "type": "dropbox",
            "app_key": "fuzz-app-key",
            "app_secret": CONFIG_SECRETS["app_secret"],
            "token": token_json(),
        },
        "bucket": {
            "type": "s3",
            "provider": "AWS",
            "access_key_id": "AKIAFUZZEXAMPLE",
            "secret_access_key": CONFIG_SECRETS["secret_access_key"],
            "region": "eu-north-1",
        },
    }


@dataclass
class World:
    http: Any
    token: str  # instance-* of Acme
    creator_token: str  # instance-* and instance-create
    instance: Instance
    other_instance: Instance
    resource: Resource
    other_resource: Resource
    job: ScheduledJob
    other_job: ScheduledJob
    runs: list[JobHistory]  # Acme's: QUEUED, RUNNING, SUCCEEDED
    other_run: JobHistory

    def post(self, body: Any, token: str | None = None, content_type: str = "application/json") -> tuple[int, str]:
        raw = body if isinstance(body, str | bytes) else json.dumps(body)
        response = self.http.post(
            "/graphql", raw, content_type=content_type, HTTP_AUTHORIZATION=f"Bearer {token or self.token}"
        )
        return response.status_code, response.content.decode("utf-8", errors="replace")

    def send(self, *calls: Call, token: str | None = None) -> tuple[int, str]:
        query, variables = document(*calls)
        return self.post({"query": query, "variables": variables}, token)

    def fresh_job(self) -> ScheduledJob:
        """One of Acme's jobs, created if an earlier example deleted them all."""
        job = ScheduledJob.objects.filter(instance=self.instance).order_by("pk").first()
        if job is None:
            job = services.create_job(
                instance=self.instance,
                workflow=sync_workflow(self.instance, self.resource),
                frequency_type=FrequencyType.CRON_BASED,
                cron_expression="*/5 * * * *",
            )
        return job


@pytest.fixture
def world(clean_redis, client, acme_client, token_for, instance, other_instance, resource, other_resource) -> World:
    # clean_redis comes first: the jobs below get their entries on commit, in the Redis this test starts with.
    job = services.create_job(
        instance=instance,
        workflow=sync_workflow(instance, resource),
        frequency_type=FrequencyType.CRON_BASED,
        cron_expression="30 2 * * *",
        name="ACC to Drive, nightly",
    )
    other_job = services.create_job(
        instance=other_instance,
        workflow=sync_workflow(other_instance, other_resource),
        frequency_type=FrequencyType.INTERVAL_BASED,
        interval_minutes=15,
    )
    add_job_config(resource, valid_config())
    add_job_config(other_resource, valid_config())
    runs = [
        JobHistory.objects.create(job=job, instance=instance, status=status)
        for status in (RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.SUCCEEDED)
    ]
    return World(
        http=client,
        token=token_for("instance-*"),
        creator_token=token_for("instance-* instance-create"),
        instance=instance,
        other_instance=other_instance,
        resource=resource,
        other_resource=other_resource,
        job=job,
        other_job=other_job,
        runs=runs,
        other_run=JobHistory.objects.create(job=other_job, instance=other_instance),
    )


# --------------------------------------------------------------------------- the properties


def assert_schedule_in_step() -> None:
    """Active jobs and RedBeat entries are the same set of ids, and each entry holds its job's schedule."""
    active = {job.pk: job for job in ScheduledJob.objects.filter(active=True)}
    ids = entry_job_ids()
    assert ids["hashes"] == set(active), f"RedBeat hashes {sorted(ids['hashes'])} != active jobs {sorted(active)}"
    assert ids["members"] == set(active), f"schedule zset {sorted(ids['members'])} != active jobs {sorted(active)}"
    for job in active.values():
        assert stored_entry(job.pk).schedule == JobSchedule.for_job(job), f"job {job.pk}'s entry has drifted"


def leaked_forms(secret: str) -> list[str]:
    return [secret, json.dumps(secret)[1:-1]]


def check(outcome: tuple[int, str], before: dict, secrets: Any = (), label: str = "answer") -> dict:
    """The properties every answer has, whatever was sent. Returns the parsed body."""
    status, text = outcome
    assert status in (200, 400), f"status {status}: {text[:2000]}"
    assert "Traceback" not in text, text[:2000]
    assert 'File "' not in text, text[:2000]
    body = json.loads(text)
    assert isinstance(body, dict), text[:2000]
    assert "data" in body or "errors" in body, text[:2000]
    errors = body.get("errors") or []
    for error in errors:
        code = (error.get("extensions") or {}).get("code")
        assert isinstance(code, str), f"uncoded error: {error}"
        assert CODE.fullmatch(code), f"uncoded error: {error}"
        assert code != "INTERNAL_ERROR", f"internal error: {error}"
    if status == 400:
        assert errors, f"400 without a coded error: {text[:2000]}"
    if currently_in_test_context():
        # Shown by --hypothesis-show-statistics: how often examples got through, and which codes refused them.
        event(label, ",".join(sorted({(e.get("extensions") or {}).get("code") for e in errors})) or "ok")
    if errors:
        after = row_snapshot()
        changed = {model: (before[model], after[model]) for model in before if before[model] != after[model]}
        assert not changed, f"an answer with errors wrote rows: {changed}\nanswer: {text[:2000]}"
    assert_schedule_in_step()
    for secret in secrets:
        for form in leaked_forms(secret):
            assert form not in text, f"a secret ({secret[:4]}..., {len(secret)} chars) is in the answer"
    return body


# --------------------------------------------------------------------------- strategies: arbitrary values

SPECIAL_CHARS = [*map(chr, range(32)), "\x7f", "\x85", "\u2028", "\u2029", "\u202e", "\ufeff", "\ud800", "\udfff"]
SPECIAL_CHARS += ["\U0001f600", "é", "ß", "İ", "\u0301", "%", "(", "'", '"', "\\", "{", "}", "$", "/", "*", ",", "-"]
chars = st.characters() | st.sampled_from(SPECIAL_CHARS)
short_texts = st.text(chars, max_size=24)
long_texts = st.builds(
    lambda c, n: c * n,
    st.sampled_from(["a", "é", "\x00", " ", "\U0001f600"]),
    st.sampled_from([199, 200, 201, 255, 256, 257, 500, 501, 2048, 2049, 10_000, 10_001, 70_000]),
)
# Strings that PostgreSQL (NUL), UTF-8 (lone surrogates) or terminals and logs (escapes, bidi) may choke on.
hostile_texts = st.sampled_from(
    ["\x00", "a\x00b", "\ud800", "x\udfff", "\udbff\udc00", "\ufeff", "\u202eabc", "\x1b[31m"]
)
texts = (
    short_texts
    | long_texts
    | hostile_texts
    | st.sampled_from(["", " ", "null", "true", "0", "-1", "1e3", "NaN", "%(x)s"])
)

BOUNDARY_INTS = [-(2**63) - 1, -(2**63), -(2**31) - 1, -(2**31), -1, 0, 1, 2, 9, 10, 11, 15, 16, 59, 60, 255]
BOUNDARY_INTS += [256, 257, 999, 1000, 1001, 2879, 2880, 2881, 3599, 3600, 3601, 21_600, 21_601, 527_040, 527_041]
BOUNDARY_INTS += [2**31 - 1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64, 10**30, 10**100]
ints = st.integers() | st.sampled_from(BOUNDARY_INTS)
int32s = st.integers(-(2**31), 2**31 - 1) | st.sampled_from([b for b in BOUNDARY_INTS if -(2**31) <= b < 2**31])
floats = st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from([0.0, -0.0, 0.5, 1.0, 30.0, 1e308])

WORKFLOW_KEYS = ["name", "type", "tasks", "args", "inputs", "id", "resourceId", "instanceId", "remotes", "url"]
keys = short_texts | st.sampled_from(WORKFLOW_KEYS)
leaves = st.none() | st.booleans() | ints | floats | texts
json_values = st.recursive(
    leaves, lambda kids: st.lists(kids, max_size=4) | st.dictionaries(keys, kids, max_size=4), max_leaves=12
)
# Not JSON by the RFC, but Python's json (the server's parser) reads them.
nonstandard_numbers = st.sampled_from([math.nan, math.inf, -math.inf])


def weighted(*choices: tuple[int, st.SearchStrategy]) -> st.SearchStrategy:
    """Like one_of, with weights: one_of gives each distinct branch the same chance (and drops repeated ones)."""
    pool = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.sampled_from(pool).flatmap(lambda strategy: strategy)


def optional(strategy: st.SearchStrategy) -> st.SearchStrategy:
    return st.just(DROP) | strategy


def ids_of(*pks: int) -> st.SearchStrategy:
    """An id as clients send it (string or int) for one of `pks`, or one that names nothing, or junk."""
    good = st.sampled_from(pks).flatmap(lambda pk: st.sampled_from([str(pk), pk]))
    bad = st.sampled_from(
        [str(MISSING_ID), "0", "-1", " 1", "1 ", "1.0", "0x1", "١", "99999999999999999999", "", 2**63, 0, -5, 1.5, True]
    )
    return weighted((2, good), (1, bad), (1, json_values))


# --------------------------------------------------------------------------- strategies: near-valid values

CRON_FIELD_RANGES = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 6)]
CRON_NAMES = ["MON", "sun", "FRI-MON", "JAN", "dec", "JAN-MAR", "L", "W", "15W", "5L", "2#3", "?", "H", "H/5"]


@st.composite
def cron_field(draw, low: int, high: int) -> str:
    number = st.integers(low, high) | st.sampled_from([low - 1, high + 1, 99, -1, 2**40])
    kind = draw(st.integers(0, 7))
    if kind == 0:
        return "*"
    if kind == 1:
        return f"*/{draw(number)}"
    if kind == 2:
        return f"{draw(number)}-{draw(number)}"
    if kind == 3:
        return ",".join(str(draw(number)) for _ in range(draw(st.integers(1, 4))))
    if kind == 4:
        return f"{draw(number)}-{draw(number)}/{draw(number)}"
    if kind == 5:
        return draw(st.sampled_from(CRON_NAMES))
    if kind == 6:
        return draw(short_texts)
    return str(draw(number))


@st.composite
def crons(draw) -> str:
    if draw(st.integers(0, 9)) == 0:
        return draw(
            st.sampled_from(
                [
                    "@daily",
                    "@hourly",
                    "@reboot",
                    "@every 5m",
                    "@yearly",
                    "@annually",
                    "@monthly",
                    "@weekly",
                    "@midnight",
                ]
            )
        )
    count = draw(st.sampled_from([5, 5, 5, 5, 4, 6, 7, 0, 1]))
    fields = [draw(cron_field(*CRON_FIELD_RANGES[i % 5])) for i in range(count)]
    separators = st.sampled_from([" ", " ", " ", "  ", "\t", "\n", "\u00a0", "\u3000", ""])
    out = fields[0] if fields else ""
    for field in fields[1:]:
        out += draw(separators) + field
    return draw(st.sampled_from(["", " ", "\n"])) + out + draw(st.sampled_from(["", " ", "\n", "\x00"]))


VALID_CRONS = ["*/5 * * * *", "0 6 * * 1-5", "30 2 * * *", "0 0 1 1 *", "15,45 */2 * * sun"]
REAL_ZONES = sorted(zoneinfo.available_timezones())
FAKE_ZONES = ["Mars/Olympus_Mons", "UTC+5", "GMT+2", "../../etc/passwd", "/etc/localtime", "Europe/", "Europe"]
FAKE_ZONES += ["utc", " UTC", "UTC\x00", "Europe/Helsinki ", "posixrules", "zone.tab", "tzdata.zi", "Local", ""]
FAKE_ZONES += ["right/UTC", "posix/Europe/Helsinki", "Etc/GMT+14", "Etc/GMT-15", "a" * 300, "Europe/Hel\u0455inki"]
time_zones = st.sampled_from(REAL_ZONES) | st.sampled_from(FAKE_ZONES) | short_texts

URLS = ["https://hooks.example.com/fuzz", "http://example.com", "https://example.com:8443/a?b=c#d"]
BAD_URLS = ["ftp://example.com/x", "javascript:alert(1)", "https://", "http://exa mple.com", "example.com", ""]
BAD_URLS += ["https://example.com/\x00", "https://example.com/\n", "HTTPS://EXAMPLE.COM", "https://[::1", "file:///etc"]
BAD_URLS += ["http://127.0.0.1:6379/", "http://localhost/", "https://\u0435xample.com", "https://a@b@c/"]
urls = st.sampled_from(URLS + BAD_URLS) | st.builds(
    lambda n: "https://example.com/" + "a" * n, st.sampled_from([2000, 2028, 2029, 2030, 2040, 5000])
)

SECRET_MARK = "whsec-fz-"


@st.composite
def webhook_secrets(draw) -> str:
    """Secrets marked so that any of them in an answer is a leak; lengths at and beyond 16..256."""
    length = draw(st.sampled_from([len(SECRET_MARK), 15, 16, 17, 64, 255, 256, 257, 1000]))
    filler = draw(st.sampled_from(["x", "é", "\x00", " ", "0"]))
    return SECRET_MARK + filler * max(0, length - len(SECRET_MARK))


def http_workflow(w: World) -> dict:
    return {
        "name": "Ping",
        "tasks": [
            {
                "name": "ping",
                "type": "http.request",
                "args": {"url": "https://example.com/hook", "method": "POST", "expectStatus": [200, 204]},
            }
        ],
    }


def input_only_workflow(w: World) -> dict:
    return {"tasks": [{"name": "in", "type": "resource.input", "args": {"resourceId": w.resource.pk}}]}


def three_step_workflow(w: World) -> dict:
    workflow = sync_workflow(w.instance, w.resource)
    workflow["tasks"].append(
        {"name": "notify", "type": "http.request", "inputs": ["sync"], "args": {"url": "https://example.com/done"}}
    )
    return workflow


BASE_WORKFLOWS = [lambda w: sync_workflow(w.instance, w.resource), http_workflow, input_only_workflow]
BASE_WORKFLOWS.append(three_step_workflow)


def paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path into a JSON value (keys and indexes), the root included."""
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += paths(child, (*prefix, key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            found += paths(child, (*prefix, i))
    return found


def replace_at(value: Any, path: tuple, new: Any) -> Any:
    if not path:
        return new
    parent = value
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = new
    return value


def tasks_of(workflow: Any) -> list[dict]:
    tasks = workflow.get("tasks") if isinstance(workflow, dict) else None
    return [t for t in tasks if isinstance(t, dict)] if isinstance(tasks, list) else []


def nest(value: Any, depth: int) -> Any:
    for _ in range(depth):
        value = [value]
    return value


@st.composite
def workflows(draw, w: World) -> Any:
    """A valid workflow with up to three things changed."""
    workflow = draw(st.sampled_from(BASE_WORKFLOWS))(w)
    for _ in range(draw(st.integers(0, 3))):
        tasks = tasks_of(workflow)
        change = draw(st.integers(0, 16))
        if change == 0 and len(tasks) >= 2:  # names duplicated
            tasks[1]["name"] = tasks[0]["name"]
        elif change == 1 and tasks:  # unknown or malformed type
            tasks[draw(st.integers(0, len(tasks) - 1))]["type"] = draw(
                st.sampled_from(["rclone.Sync", "rclone.sync ", "http.request\x00", "sync.files", "", "shell.exec"])
                | json_values
            )
        elif change == 2 and len(tasks) >= 2:  # an inputs cycle
            tasks[0]["inputs"] = tasks[-1].get("name")
            tasks[-1]["inputs"] = [tasks[0].get("name")]
        elif change == 3 and tasks:  # own input, unknown input, malformed inputs
            task = tasks[draw(st.integers(0, len(tasks) - 1))]
            task["inputs"] = draw(
                st.sampled_from([task.get("name"), "nobody", ["nobody"], [task.get("name")], {"a": 1}, [1], ""])
                | json_values
            )
        elif change == 4 and tasks:  # huge args
            task = tasks[draw(st.integers(0, len(tasks) - 1))]
            args = task.setdefault("args", {})
            if isinstance(args, dict):
                big = draw(st.sampled_from(["exclude", "include", "url", "padding", "remotes", "headers"]))
                args[big] = draw(
                    st.sampled_from(
                        [
                            ["x"] * 201,
                            ["x"] * 200,
                            "https://example.com/" + "a" * 3000,
                            "p" * 70_000,
                            ["acc:/" + "a" * 5000, "gdrive:/b"],
                            {f"X-H{i}": "v" * 100 for i in range(700)},
                        ]
                    )
                )
        elif change == 5:  # wrong nesting
            shape = draw(st.integers(0, 5))
            if shape == 0:
                workflow = [workflow]
            elif shape == 1 and isinstance(workflow, dict):
                workflow["tasks"] = {"0": workflow.get("tasks")}
            elif shape == 2 and tasks:
                workflow["tasks"] = [[t] for t in workflow["tasks"]]
            elif shape == 3 and tasks:
                tasks[0]["args"] = [tasks[0].get("args")]
            elif shape == 4 and isinstance(workflow, dict):
                workflow["tasks"] = []
            elif isinstance(workflow, dict):
                workflow = {"workflow": workflow}
        elif change == 6 and tasks:  # too many tasks
            many = draw(st.sampled_from([100, 101]))
            workflow["tasks"] = [{**tasks[-1], "name": f"t{i}", "inputs": None} for i in range(many)]
        elif change == 7:  # any value anywhere
            where = draw(st.sampled_from(paths(workflow)))
            workflow = replace_at(workflow, where, draw(json_values))
        elif change == 8:  # a key removed
            where = [p for p in paths(workflow) if p]
            if where:
                path = draw(st.sampled_from(where))
                parent = workflow
                for step in path[:-1]:
                    parent = parent[step]
                del parent[path[-1]]
        elif change == 9:  # a key added
            where = [p for p in paths(workflow) if isinstance(_at(workflow, p), dict)]
            if where:
                _at(workflow, draw(st.sampled_from(where)))[draw(keys)] = draw(json_values)
        elif change == 10 and tasks:  # resources of another tenant, missing, malformed, ambiguous
            task = draw(st.sampled_from(tasks))
            args = task.get("args")
            if isinstance(args, dict):
                args[draw(st.sampled_from(["id", "resourceId"]))] = draw(
                    st.sampled_from([w.other_resource.pk, str(w.other_resource.pk), MISSING_ID, "0", -1, True, "1e3"])
                    | st.just(w.resource.pk + 1)
                )
        elif change == 11 and isinstance(workflow, dict):  # another instance
            workflow["instanceId"] = draw(st.sampled_from([str(w.other_instance.pk), MISSING_ID, "x", None, []]))
        elif change == 12:  # deep nesting
            where = draw(st.sampled_from(paths(workflow)))
            workflow = replace_at(workflow, where, nest(draw(leaves), draw(st.sampled_from([50, 300, 900]))))
        elif change == 13 and tasks:  # strings of every kind in names
            draw(st.sampled_from(tasks))["name"] = draw(texts)
        elif change == 14 and tasks:  # task args of the wrong shape for their type
            task = draw(st.sampled_from(tasks))
            task["args"] = draw(
                st.sampled_from(
                    [
                        {"url": "ftp://x"},
                        {"remotes": ["a:/", "b:/", "c:/"]},
                        {"transfers": 65},
                        {"transfers": 2**70},
                        {"timeoutSeconds": 0},
                        {"expectStatus": [99, 600]},
                        {"method": "TRACE"},
                        {"mode": "bisync\x00"},
                        {"dryRun": "yes"},
                        {"headers": {"a": 1}},
                        {},
                    ]
                )
            )
        elif change == 15 and tasks:  # a task duplicated wholesale
            workflow["tasks"] = [*workflow["tasks"], dict(tasks[0])]
        elif change == 16:
            pass
    return workflow


def _at(value: Any, path: tuple) -> Any:
    for step in path:
        value = value[step]
    return value


# --------------------------------------------------------------------------- arguments of the job mutations


def schedule_args(draw, w: World) -> dict:
    """A coherent schedule: CRON_BASED with a cron expression, or INTERVAL_BASED with minutes."""
    if draw(st.booleans()):
        return {"frequencyType": "CRON_BASED", "cronExpression": draw(st.sampled_from(VALID_CRONS))}
    return {"frequencyType": "INTERVAL_BASED", "intervalMinutes": draw(st.sampled_from([1, 15, 60, 1440]))}


def valid_reliability(draw) -> dict:
    args = {
        "overlapPolicy": draw(st.sampled_from(["SKIP", "BUFFER_ONE", "ALLOW"])),
        "catchupWindowMinutes": draw(st.integers(0, 2880)),
        "jitterSeconds": draw(st.integers(0, 3600)),
        "maxRetries": draw(st.integers(0, 10)),
        "retryBackoffSeconds": draw(st.integers(1, 3600)),
        "pauseAfterFailures": draw(st.none() | st.integers(1, 1000)),
    }
    if draw(st.booleans()):
        args["webhookUrl"] = draw(st.sampled_from(URLS))
        args["webhookSecret"] = SECRET_MARK + draw(st.sampled_from(["a" * 10, "b" * 40, "c" * 247]))
    return {k: v if draw(st.booleans()) else DROP for k, v in args.items()}


def fuzz_values(w: World) -> dict[str, st.SearchStrategy]:
    """For each argument of createScheduledJob/updateScheduledJob: values of its type and near-valid ones, and
    now and then an arbitrary JSON value (which GraphQL refuses for every typed argument)."""
    typed = {
        "instanceId": ids_of(w.instance.pk, w.other_instance.pk),
        "jobId": ids_of(w.job.pk, w.other_job.pk),
        "workflow": weighted((2, workflows(w)), (1, json_values)),
        "frequencyType": st.sampled_from(["CRON_BASED", "INTERVAL_BASED"] * 3 + ["cron_based", "MONTHLY"]),
        "cronExpression": weighted((2, crons()), (1, texts)),
        "intervalMinutes": ints | int32s,
        "active": st.booleans() | st.none(),
        "name": texts,
        "description": texts,
        "timezone": time_zones,
        "timeLimitSeconds": ints | int32s | st.none(),
        "overlapPolicy": st.sampled_from(["SKIP", "BUFFER_ONE", "ALLOW", "skip", "BUFFER_TWO", None]),
        "catchupWindowMinutes": int32s | st.none(),
        "jitterSeconds": int32s | st.none(),
        "maxRetries": int32s | st.none(),
        "retryBackoffSeconds": int32s | st.none(),
        "pauseAfterFailures": int32s | st.none(),
        "webhookUrl": weighted((2, urls), (1, st.none()), (1, texts)),
        "webhookSecret": weighted((2, webhook_secrets()), (1, st.none()), (1, texts)),
    }
    return typed


def job_call(data, w: World, mutation: str, base: dict) -> Call:
    """`base` (a valid request) with one to three arguments fuzzed, or now and then every argument fuzzed (with
    values of its type); some arguments written inline."""
    known = arg_types(mutation)
    typed = fuzz_values(w)
    args = dict(base)
    if data.draw(st.integers(1, 6), label="wild") == 3:
        for name in known:
            strategy = typed.get(name, json_values)
            required = is_non_null_type(MUTATIONS[mutation].args[name].type)
            args[name] = data.draw(strategy if required else optional(strategy), label=name)
    else:
        fuzzed = data.draw(
            st.lists(st.sampled_from(sorted(known)), min_size=1, max_size=3, unique=True), label="fuzzed"
        )
        for name in fuzzed:
            # Mostly values of the argument's type; sometimes any JSON value (GraphQL refuses most of those).
            strategy = weighted((4, typed.get(name, json_values)), (1, json_values))
            # Left out now and then (for a required argument, GraphQL refuses the document).
            args[name] = data.draw(weighted((1, st.just(DROP)), (4, strategy)), label=name)
    if data.draw(st.integers(1, 40), label="unknown argument") == 20:
        args["bogus"] = 1
    args = {k: v for k, v in args.items() if k in known or k == "bogus"}
    inline = data.draw(st.sets(st.sampled_from(sorted(args))), label="inline") if args else set()
    return Call(mutation, args, frozenset(inline))


def assert_secrets_encrypted(secrets: list[str]) -> None:
    """A webhook secret is stored Fernet-encrypted: its plain text is in no job row."""
    for secret in secrets:
        if "\x00" not in secret:  # a NUL cannot be part of a PostgreSQL query parameter
            assert not ScheduledJob.objects.filter(webhook_secret__contains=secret).exists(), "plain webhook secret"


def secrets_in(call: Call) -> list[str]:
    """The webhook secrets the call gives (marked ones: see webhook_secrets)."""
    value = call.args.get("webhookSecret")
    return [value] if isinstance(value, str) and value.startswith(SECRET_MARK) else []


# --------------------------------------------------------------------------- the tests


def test_it_fuzzes_every_argument_of_the_reliability_settings():
    """The documents below use every argument the running schema has; this fails until issue 6's exist."""
    for mutation in ("createScheduledJob", "updateScheduledJob"):
        missing = [name for name in RELIABILITY_ARGS if name not in arg_types(mutation)]
        assert not missing, f"{mutation} lacks {missing}: the fuzz tests cannot send them yet"


@FUZZ
@given(data=st.data())
def test_it_survives_fuzzed_create_scheduled_job(world, data):
    w = world
    base = {
        "instanceId": str(w.instance.pk),
        "workflow": data.draw(st.sampled_from(BASE_WORKFLOWS), label="workflow")(w),
        **schedule_args(data.draw, w),
        **valid_reliability(data.draw),
    }
    call = job_call(data, w, "createScheduledJob", base)
    before = row_snapshot()
    body = check(w.send(call), before, secrets_in(call))
    created = (body.get("data") or {}).get("m0")
    if created and not body.get("errors"):
        assert ScheduledJob.objects.get(pk=created["id"]).instance_id == w.instance.pk
        assert_secrets_encrypted(secrets_in(call))


@FUZZ
@given(data=st.data())
def test_it_survives_fuzzed_update_scheduled_job(world, data):
    w = world
    target = w.fresh_job()
    base = {"jobId": data.draw(st.sampled_from([str(target.pk), target.pk]), label="jobId")}
    if data.draw(st.booleans(), label="with a schedule"):
        base.update(schedule_args(data.draw, w))
    if data.draw(st.booleans(), label="with settings"):
        base.update(valid_reliability(data.draw))
    if data.draw(st.booleans(), label="with a workflow"):
        base["workflow"] = data.draw(st.sampled_from(BASE_WORKFLOWS))(w)
    call = job_call(data, w, "updateScheduledJob", base)
    before = row_snapshot()
    check(w.send(call), before, secrets_in(call))
    assert_secrets_encrypted(secrets_in(call))
    assert ScheduledJob.objects.filter(pk=w.other_job.pk, active=True).exists(), "Globex's job was changed"


@FUZZ
@given(data=st.data())
def test_it_survives_fuzzed_workflow_json(world, data):
    """The workflow argument alone, near-valid or arbitrary, to createScheduledJob, updateScheduledJob and
    validateWorkflow (which must agree with createScheduledJob on whether it is valid)."""
    w = world
    workflow = data.draw(weighted((3, workflows(w)), (1, json_values)), label="workflow")
    inline = data.draw(st.booleans(), label="inline")
    target = w.fresh_job()
    create = Call(
        "createScheduledJob",
        {"instanceId": w.instance.pk, "workflow": workflow, "frequencyType": "INTERVAL_BASED", "intervalMinutes": 30},
        frozenset({"workflow"} if inline else ()),
    )
    update = Call("updateScheduledJob", {"jobId": target.pk, "workflow": workflow}, create.inline)

    before = row_snapshot()
    created = check(w.send(create), before, label="createScheduledJob")
    before = row_snapshot()
    check(w.send(update), before, label="updateScheduledJob")

    query = "query V($i: ID!, $w: JSON!) { validateWorkflow(instanceId: $i, workflow: $w) { field code message } }"
    before = row_snapshot()
    validated = check(
        w.post({"query": query, "variables": {"i": str(w.instance.pk), "w": workflow}}),
        before,
        label="validateWorkflow",
    )
    if not inline and not validated.get("errors") and not created.get("errors"):
        assert validated["data"]["validateWorkflow"] == [], (
            "createScheduledJob took a workflow validateWorkflow refuses"
        )
    if not inline and created.get("errors") and validated.get("data"):
        codes = {(e.get("extensions") or {}).get("code") for e in created["errors"]}
        if codes == {"INVALID_WORKFLOW"}:
            assert validated["data"]["validateWorkflow"], "validateWorkflow took a workflow createScheduledJob refuses"


@FUZZ
@given(data=st.data(), nonstandard=nonstandard_numbers, where=st.integers(0, 2))
def test_it_survives_nan_and_infinity_in_json_arguments(world, data, nonstandard, where):
    """NaN and Infinity are not JSON, but the server's parser reads them: they must still be refused with a code."""
    w = world
    if where == 0:
        workflow = sync_workflow(w.instance, w.resource)
        workflow["tasks"][0]["args"][data.draw(st.sampled_from(["extra", "transfers", "id"]))] = nonstandard
        call = Call(
            "createScheduledJob",
            {
                "instanceId": w.instance.pk,
                "workflow": workflow,
                "frequencyType": "CRON_BASED",
                "cronExpression": "0 1 * * *",
            },
        )
    elif where == 1:
        call = Call("updateScheduledJob", {"jobId": w.fresh_job().pk, "workflow": {"tasks": [], "x": nonstandard}})
    else:
        config = valid_config()
        config["bucket"]["upload_concurrency"] = nonstandard
        call = Call("addJobConfig", {"resourceId": w.resource.pk, "config": config})
    before = row_snapshot()
    check(w.send(call), before, CONFIG_SECRETS.values())


@FUZZ
@given(data=st.data())
def test_it_survives_fuzzed_delete_run_and_cancel(world, data):
    w = world
    target = w.fresh_job()
    run_ids = [r.pk for r in w.runs if JobHistory.objects.filter(pk=r.pk).exists()]
    mutation, arg, ids = data.draw(
        st.sampled_from(
            [
                ("deleteScheduledJob", "id", (target.pk, w.other_job.pk)),
                ("runScheduledJob", "jobId", (target.pk, w.other_job.pk)),
                ("cancelJobRun", "jobHistoryId", (*run_ids, w.other_run.pk) if run_ids else (w.other_run.pk,)),
            ]
        ),
        label="mutation",
    )
    value = data.draw(ids_of(*ids), label=arg)
    inline = data.draw(st.booleans(), label="inline")
    call = Call(mutation, {arg: value}, frozenset({arg} if inline else ()))
    before = row_snapshot()
    check(w.send(call), before)
    assert ScheduledJob.objects.filter(pk=w.other_job.pk).exists(), "Globex's job was deleted"


@st.composite
def configs(draw, w: World) -> Any:
    """The valid config with up to three things changed."""
    config = valid_config()
    for _ in range(draw(st.integers(0, 3))):
        names = [n for n, v in config.items() if isinstance(v, dict)] if isinstance(config, dict) else []
        change = draw(st.integers(0, 12))
        remote = config[draw(st.sampled_from(names))] if names else None
        if change == 0 and remote is not None:  # types: local ones, unknown ones, junk
            remote["type"] = draw(
                st.sampled_from(["local", "alias", "crypt", "union", "Drive", "drive ", "acc", "", "sftp"])
                | json_values
            )
        elif change == 1 and remote is not None:  # unknown or forbidden options
            remote[
                draw(st.sampled_from(["password_command", "env_auth", "ssh", "Type", "x-y", "a" * 65, "use_msi"]))
            ] = draw(st.sampled_from(["true", True, "ls", 1]) | json_values)
        elif change == 2 and remote is not None:  # values with control characters, expansions, spaces, huge
            option = draw(st.sampled_from(sorted(k for k in remote if k != "type") or ["region"]))
            remote[option] = draw(
                st.sampled_from(["a\nb", "%(home)s", " x", "x ", "a" * 16_385, "\x00", "", 1.5, 2**70]) | texts
            )
        elif change == 3 and remote is not None:  # tokens that are not oauth2 token JSON
            remote["token"] = draw(
                st.sampled_from(
                    [
                        "{}",
                        "not json",
                        json.dumps({"access_token": ""}),
                        json.dumps({"access_token": 5}),
                        token_json() + "x",
                        json.dumps({"access_token": "a", "expiry": "tomorrow"}),
                        json.dumps({"access_token": "a", "expiry": "2026-13-45T99:99:99Z"}),
                        json.dumps({"access_token": "a", "refresh_token": 7}),
                    ]
                )
                | json_values
            )
        elif change == 4 and remote is not None:  # endpoints on this server or its network
            remote["endpoint"] = draw(
                st.sampled_from(
                    ["http://127.0.0.1:9000", "localhost", "[::1]:80", "10.0.0.1", "x.internal", "http://[::"]
                )
            )
        elif change == 5 and isinstance(config, dict):  # remote names
            name = draw(
                st.sampled_from(["-x", " x", "x ", "a" * 65, "resource", "resource-storage", "", "x:y", "über", "a/b"])
                | short_texts
            )
            config[name] = draw(st.sampled_from([valid_config()["bucket"], None, {}, [], "s3"]) | json_values)
        elif change == 6 and names:  # null removes
            config[draw(st.sampled_from(names))] = None
        elif change == 7:  # wrong shapes
            config = draw(st.sampled_from([{}, [], "gdrive", [config], {"gdrive": [config]}]))
        elif change == 8 and isinstance(config, dict):  # too many remotes
            config.update({f"r{i}": valid_config()["bucket"] for i in range(draw(st.sampled_from([48, 51])))})
        elif change == 9 and isinstance(config, dict):  # too big
            config["big"] = {"type": "s3", "access_key_id": "a", "secret_access_key": "b", "region": "r" * 70_000}
        elif change == 10:  # any value anywhere
            where = draw(st.sampled_from(paths(config)))
            config = replace_at(config, where, draw(json_values))
        elif change == 11 and remote is not None:  # crypt wrapping something odd
            remote.clear()
            remote.update(
                {
                    "type": "crypt",
                    "remote": draw(st.sampled_from(["bucket:x", ":s3:x", "x", "", "-a:b"])),
                    "password": "p",
                }
            )
        elif change == 12 and remote is not None:  # aliases given twice
            if remote.get("type") == "dropbox":
                remote["client_secret"] = "other"
    return config


@FUZZ
@given(data=st.data())
def test_it_survives_fuzzed_add_job_config(world, data):
    w = world
    config = data.draw(weighted((2, configs(w)), (1, json_values)), label="config")
    resource = data.draw(ids_of(w.resource.pk, w.other_resource.pk), label="resourceId")
    inline = data.draw(st.sets(st.sampled_from(["config", "resourceId"])), label="inline")
    before = row_snapshot()
    check(
        w.send(Call("addJobConfig", {"resourceId": resource, "config": config}, frozenset(inline))),
        before,
        CONFIG_SECRETS.values(),
    )
    query = "query G($r: ID!) { getJobConfig(resourceId: $r) { name type settings secrets { name isSet } } }"
    check(w.post({"query": query, "variables": {"r": str(w.resource.pk)}}), row_snapshot(), CONFIG_SECRETS.values())


@FUZZ
@given(data=st.data())
def test_it_survives_fuzzed_remove_job_config(world, data):
    w = world
    names = sorted(valid_config())
    if RemoteConfig.objects.filter(resource=w.resource).count() < len(names):
        add_job_config(w.resource, valid_config())  # what earlier examples removed is back
    remotes_arg = data.draw(
        optional(
            st.none()
            | st.lists(
                st.sampled_from([*names, "nope", "", "GDRIVE", "gdrive ", "%", "\x00"]) | short_texts, max_size=5
            )
            | json_values
        ),
        label="remotes",
    )
    resource = data.draw(ids_of(w.resource.pk, w.other_resource.pk), label="resourceId")
    inline = data.draw(st.sets(st.sampled_from(["remotes", "resourceId"])), label="inline")
    before = row_snapshot()
    check(w.send(Call("removeJobConfig", {"resourceId": resource, "remotes": remotes_arg}, frozenset(inline))), before)
    assert RemoteConfig.objects.filter(resource=w.other_resource).count() == 3, "Globex's remotes were removed"


@FUZZ
@given(data=st.data())
def test_it_survives_fuzzed_create_instance(world, data):
    w = world
    name = data.draw(weighted((3, texts), (1, json_values)), label="name")
    token = data.draw(st.sampled_from([w.creator_token, w.token]), label="token")
    inline = data.draw(st.booleans(), label="inline")
    before = row_snapshot()
    body = check(
        w.send(Call("createInstance", {"name": name}, frozenset({"name"} if inline else ())), token=token), before
    )
    if token == w.token:
        assert body.get("errors"), "an instance was created without the instance-create scope"


@FUZZ_SMALL
@given(data=st.data())
def test_it_leaves_nothing_of_a_document_that_fails_part_way(world, data):
    """Several mutations in one document, valid ones first: when any fails, none of them left a row or an entry."""
    w = world
    target = w.fresh_job()
    calls = []
    for _ in range(data.draw(st.integers(1, 3), label="valid first")):
        calls.append(
            Call(
                "createScheduledJob",
                {
                    "instanceId": w.instance.pk,
                    "workflow": data.draw(st.sampled_from(BASE_WORKFLOWS))(w),
                    **schedule_args(data.draw, w),
                    **valid_reliability(data.draw),
                },
            )
        )
    if data.draw(st.booleans(), label="then a pause"):
        calls.append(Call("updateScheduledJob", {"jobId": target.pk, "active": False}))
    if data.draw(st.booleans(), label="then a delete"):
        calls.append(Call("deleteScheduledJob", {"id": target.pk}))
    if data.draw(st.booleans(), label="then a run"):
        calls.append(Call("runScheduledJob", {"jobId": target.pk}))
    last = data.draw(st.sampled_from(["create", "update", "config", "instance", "delete"]), label="then")
    if last == "create":
        calls.append(
            job_call(data, w, "createScheduledJob", {"instanceId": w.instance.pk, **schedule_args(data.draw, w)})
        )
    elif last == "update":
        calls.append(job_call(data, w, "updateScheduledJob", {"jobId": target.pk}))
    elif last == "config":
        calls.append(Call("addJobConfig", {"resourceId": w.resource.pk, "config": data.draw(configs(w))}))
    elif last == "instance":
        calls.append(Call("createInstance", {"name": data.draw(texts)}))
    else:
        calls.append(Call("deleteScheduledJob", {"id": data.draw(ids_of(w.other_job.pk))}))
    secrets = [s for call in calls for s in secrets_in(call)] + list(CONFIG_SECRETS.values())
    before = row_snapshot()
    check(w.send(*calls, token=w.creator_token), before, secrets)


HOSTILE = ["\x00", "\ud800", "\udfff", "\udbff\udc00", "\ufeff", "\u202e", "\x1b[2J", "\r\n", "\u2028", "%(x)s"]
# Each hostile string alone, inside other text, and long enough for length rules (webhookSecret's 16..256).
HOSTILE_VALUES = [value for h in HOSTILE for value in (h, f"a{h}b", SECRET_MARK + h * 8)]


def text_args(mutation: str) -> list[str]:
    """The arguments of `mutation` that carry client text: String, ID and JSON ones, and lists of them."""
    return sorted(
        name
        for name, arg in MUTATIONS[mutation].args.items()
        if get_named_type(arg.type).name in ("String", "ID", "JSON")
    )


def hostile_placements(value: Any, hostile: str) -> list[Any]:
    """`value` (a JSON argument) with `hostile` as a new key, as its deepest string, and as a key of its deepest
    object."""
    placed = []
    added = json.loads(json.dumps(value))
    added[hostile] = "v"
    placed.append(added)
    strings = [p for p in paths(value) if isinstance(_at(value, p), str)]
    placed.append(replace_at(json.loads(json.dumps(value)), max(strings, key=len), hostile))
    renamed = json.loads(json.dumps(value))
    target = _at(renamed, max((p for p in paths(value) if isinstance(_at(value, p), dict) and _at(value, p)), key=len))
    key = sorted(target)[0]
    target[hostile] = target.pop(key)
    placed.append(renamed)
    return placed


def valid_args(w: World, mutation: str) -> dict:
    """A request of `mutation` that succeeds (or would, but for the run having ended), for one argument to spoil."""
    target = w.fresh_job()
    schedule = {"frequencyType": "CRON_BASED", "cronExpression": "0 4 * * *", "timezone": "Europe/Helsinki"}
    text = {"name": "Nightly", "description": "Copies the site", **schedule}
    webhook = {"webhookUrl": "https://hooks.example.com/fuzz", "webhookSecret": SECRET_MARK + "h" * 30}
    return {
        "createScheduledJob": {
            "instanceId": str(w.instance.pk),
            "workflow": sync_workflow(w.instance, w.resource),
            **text,
            **webhook,
        },
        "updateScheduledJob": {"jobId": str(target.pk), "workflow": http_workflow(w), **text, **webhook},
        "deleteScheduledJob": {"id": str(target.pk)},
        "runScheduledJob": {"jobId": str(target.pk)},
        "cancelJobRun": {"jobHistoryId": str(w.runs[0].pk)},
        "addJobConfig": {"resourceId": str(w.resource.pk), "config": valid_config()},
        "removeJobConfig": {"resourceId": str(w.resource.pk), "remotes": ["box"]},
        "createInstance": {"name": "Initech"},
    }[mutation]


@pytest.mark.parametrize(
    ("mutation", "name"), [(mutation, name) for mutation in sorted(MUTATIONS) for name in text_args(mutation)]
)
def test_it_survives_hostile_strings_in_every_text_argument(world, mutation, name):
    """NUL, lone surrogates, BOMs, bidi overrides, terminal escapes and rclone expansions, in each text argument of
    each mutation (and inside the JSON ones), the rest of the request valid. A sweep rather than a search: every
    hostile string in every argument, each failing one listed."""
    w = world
    failures = []
    for i, hostile in enumerate(HOSTILE_VALUES):
        if RemoteConfig.objects.filter(resource=w.resource).count() < len(valid_config()):
            add_job_config(w.resource, valid_config())
        args = valid_args(w, mutation)
        if name in ("workflow", "config"):
            values = hostile_placements(args[name], hostile)
        elif name == "remotes":
            values = [[hostile]]
        else:
            values = [hostile]
        for value in values:
            call = Call(mutation, {**args, name: value}, frozenset({name} if i % 2 else ()))
            before = row_snapshot()
            try:
                check(w.send(call, token=w.creator_token), before, [*secrets_in(call), *CONFIG_SECRETS.values()])
            except AssertionError as failure:
                failures.append(f"{name}={value!r}: {str(failure).splitlines()[0][:300]}")
    assert not failures, f"{len(failures)} hostile values hurt {mutation}:\n" + "\n".join(failures)


VALID_CREATE = (
    "mutation C($i: ID!, $w: JSON!) { createScheduledJob(instanceId: $i, workflow: $w, frequencyType: INTERVAL_BASED,"
    " intervalMinutes: 5) { id active } }"
)


@st.composite
def malformed_bodies(draw, w: World) -> tuple[Any, str]:
    """(body, content type): bodies that are not a GraphQL request, or one with a broken part."""
    valid = {"query": VALID_CREATE, "variables": {"i": str(w.instance.pk), "w": sync_workflow(w.instance, w.resource)}}
    kind = draw(st.integers(0, 8))
    if kind == 0:
        return draw(json_values), "application/json"
    if kind == 1:
        return {"query": draw(json_values)}, "application/json"
    if kind == 2:  # junk spliced into a valid document
        query = valid["query"]
        at = draw(st.integers(0, len(query)))
        cut = draw(st.integers(0, 20))
        return {**valid, "query": query[:at] + draw(short_texts) + query[at + cut :]}, "application/json"
    if kind == 3:
        return {**valid, "variables": draw(json_values)}, "application/json"
    if kind == 4:
        return {**valid, "operationName": draw(json_values)}, "application/json"
    if kind == 5:  # truncated
        raw = json.dumps(valid)
        return raw[: draw(st.integers(0, len(raw) - 1))], "application/json"
    if kind == 6:
        return draw(st.binary(max_size=200)), draw(
            st.sampled_from(
                ["application/json", "application/graphql", "text/plain", "application/x-www-form-urlencoded"]
            )
        )
    if kind == 7:  # a document that is valid GraphQL for another content type
        return VALID_CREATE, draw(st.sampled_from(["application/graphql", "application/json", "text/plain"]))
    return {**valid, "variables": {**valid["variables"], draw(keys): draw(json_values)}}, "application/json"


@FUZZ
@given(data=st.data())
def test_it_survives_malformed_requests(world, data):
    w = world
    body, content_type = data.draw(malformed_bodies(w), label="body")
    before = row_snapshot()
    check(w.post(body, content_type=content_type), before)


@FUZZ
@given(data=st.data())
def test_it_refuses_out_of_range_reliability_settings_with_their_field(world, data):
    """A valid request with one reliability setting out of its range: INVALID_VALUE (or REQUIRED) naming it."""
    w = world
    mutation = data.draw(st.sampled_from(["createScheduledJob", "updateScheduledJob"]), label="mutation")
    known = arg_types(mutation)
    candidates = [n for n in (*RELIABILITY_BOUNDS, "webhookUrl", "webhookSecret") if n in known]
    if not candidates:
        pytest.fail("the schema has no reliability settings yet")
    name = data.draw(st.sampled_from(candidates), label="setting")
    if name in RELIABILITY_BOUNDS:
        low, high = RELIABILITY_BOUNDS[name]
        value = data.draw(st.integers(-(2**31), low - 1) | st.integers(high + 1, 2**31 - 1), label="value")
        expected = {"INVALID_VALUE"}
    elif name == "webhookUrl":
        value = data.draw(
            st.sampled_from(["ftp://example.com/x", "javascript:alert(1)", "example.com", "https://" + "a" * 2050]),
            label="value",
        )
        expected = {"INVALID_VALUE"}
    else:
        value = data.draw(st.sampled_from(["short", "x" * 15, "y" * 257, "z" * 5000]), label="value")
        expected = {"INVALID_VALUE"}
    if mutation == "createScheduledJob":
        args = {"instanceId": w.instance.pk, "workflow": http_workflow(w), "frequencyType": "INTERVAL_BASED"}
        args["intervalMinutes"] = 30
    else:
        args = {"jobId": w.fresh_job().pk}
    args[name] = value
    if name == "webhookUrl" and "webhookSecret" in known:
        args["webhookSecret"] = SECRET_MARK + "k" * 30
    inline = data.draw(st.booleans(), label="inline")
    before = row_snapshot()
    body = check(
        w.send(Call(mutation, args, frozenset({name} if inline else ()))), before, secrets_in(Call(mutation, args))
    )
    errors = body.get("errors") or []
    assert errors, f"{name}={value!r} was accepted"
    extensions = errors[0].get("extensions") or {}
    assert extensions.get("code") in expected, errors[0]
    assert extensions.get("field") == name, errors[0]


@pytest.mark.parametrize("url", URLS)
def test_it_requires_a_webhook_secret_for_a_webhook_url(world, url):
    w = world
    if "webhookUrl" not in arg_types("createScheduledJob"):
        pytest.fail("the schema has no webhookUrl yet")
    args = {
        "instanceId": w.instance.pk,
        "workflow": http_workflow(w),
        "frequencyType": "CRON_BASED",
        "cronExpression": "0 3 * * *",
        "webhookUrl": url,
    }
    before = row_snapshot()
    body = check(w.send(Call("createScheduledJob", args)), before)
    errors = body.get("errors") or []
    assert errors, "a webhookUrl without a webhookSecret was accepted"
    assert (errors[0].get("extensions") or {}).get("code") == "REQUIRED", errors[0]
    assert (errors[0].get("extensions") or {}).get("field") == "webhookSecret", errors[0]
