"""The deployment files (compose.yaml, Dockerfile, .dockerignore, .env.example), checked against the code.

No Docker engine runs here, so these check what can be checked without one: the files parse, name every service the
code expects, run commands that resolve to real modules, set only settings the code reads, and keep secrets out of the
image. No database is needed.
"""

import importlib
import importlib.metadata
import inspect
import json
import os
import re
import secrets
import shlex
import subprocess
import sys
import tomllib
from fnmatch import fnmatchcase
from pathlib import Path
from urllib.parse import urlsplit

import gunicorn.config
import pytest
import yaml
from celery import Celery
from celery.app.utils import find_app
from cryptography.fernet import Fernet
from django.conf import settings
from django.core.management import get_commands
from django.utils.module_loading import import_string
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from redbeat.schedulers import RedBeatScheduler

import jobs.ops.metrics
import pointscene

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
ENV_EXAMPLE = ROOT / ".env.example"
SETTINGS = ROOT / "pointscene" / "settings.py"

SERVICES = ["postgres", "redis", "migrate", "web", "worker", "beat"]
APP_SERVICES = ["migrate", "web", "worker", "beat"]
REQUIRED_SECRETS = [
    "SECRET_KEY",
    "CONFIG_ENCRYPTION_KEYS",
    "POSTGRES_PASSWORD",
    "STORAGE_S3_ACCESS_KEY_ID",
    "STORAGE_S3_SECRET_ACCESS_KEY",
]
# Variables the compose file may set that a tool reads rather than our settings, with where the tool reads them.
# PROMETHEUS_MULTIPROC_DIR belongs to prometheus_client; jobs.ops.metrics reads it to choose how to collect.
TOOL_VARIABLES = {"WEB_CONCURRENCY": gunicorn.config, "PROMETHEUS_MULTIPROC_DIR": jobs.ops.metrics}
# Variables of the Dockerfile's ENV lines that belong to Python, pip or the shell, not to our settings.
IMAGE_TOOL_VARIABLES = {"PATH", "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED", "PIP_NO_CACHE_DIR"}
IMAGE_TOOL_VARIABLES |= {"PIP_DISABLE_PIP_VERSION_CHECK", *TOOL_VARIABLES}

# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?message}, ${NAME?message}; "$$" is a literal "$".
INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


# --- reading the files


def load_compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def compose() -> dict:
    return load_compose()


def settings_reads() -> set[str]:
    """Names pointscene/settings.py reads from the environment (through the env_* readers, its only way in)."""
    source = SETTINGS.read_text()
    names = set(re.findall(r"\benv_(?:str|bool|int|list)\(\s*\"([A-Z][A-Z0-9_]*)\"", source))
    assert names, "found no env_* reads in settings.py: the pattern above no longer matches the code"
    return names


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return {name: (None if value is None else str(value)) for name, value in env.items()}


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, comments dropped and continuation lines joined."""
    instructions, pending = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        text = (pending + stripped).strip()
        pending = ""
        if text:
            keyword, _, args = text.partition(" ")
            instructions.append((keyword.upper(), args.strip()))
    return instructions


def instructions(keyword: str) -> list[str]:
    return [args for kw, args in dockerfile() if kw == keyword]


def image_command() -> list[str]:
    """The image's CMD (exec form): the command a container without a command override runs, through the image's
    ENTRYPOINT (pointscene.entrypoint, which prepares the container and then execs it)."""
    argv = []
    for keyword in ("CMD",):
        found = instructions(keyword)
        if found:
            value = found[-1]
            argv += json.loads(value) if value.startswith("[") else shlex.split(value)
    return argv


def command(service: dict) -> list[str]:
    value = service.get("command")
    if value is None:
        return image_command()
    return shlex.split(value) if isinstance(value, str) else [str(part) for part in value]


def option(argv: list[str], *names: str) -> str | None:
    for index, arg in enumerate(argv):
        for name in names:
            if arg == name and index + 1 < len(argv):
                return argv[index + 1]
            if name.startswith("--") and arg.startswith(name + "="):
                return arg.split("=", 1)[1]
    return None


def image_env() -> dict[str, str]:
    values = {}
    for args in instructions("ENV"):
        parts = shlex.split(args)
        if len(parts) >= 2 and "=" not in parts[0]:  # legacy "ENV NAME value"
            values[parts[0]] = " ".join(parts[1:])
        else:
            values.update(part.split("=", 1) for part in parts)
    return values


def env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, sep, value = line.partition("=")
            assert sep, f".env.example line is not NAME=value: {line!r}"
            values[name.strip()] = value.strip()
    return values


class MissingVariable(Exception):
    pass


def interpolate(value, env: dict[str, str]):
    """Compose's variable interpolation over a parsed compose document, for the forms this project uses."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        current = env.get(name)
        missing = current is None or (op is not None and op.startswith(":") and current == "")
        if op in (":?", "?") and missing:
            raise MissingVariable(name)
        if op in (":-", "-") and missing:
            return arg
        return current or ""

    pieces = value.split("$$")
    return "$".join(INTERPOLATION.sub(replace, piece) for piece in pieces)


def interpolated_names(text: str) -> set[str]:
    return {match["name"] for piece in text.split("$$") for match in INTERPOLATION.finditer(piece)}


def dockerignore_patterns() -> list[str]:
    lines = [line.strip() for line in DOCKERIGNORE.read_text().splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def dockerignored(path: str) -> bool:
    """Whether the build context leaves `path` out: last matching pattern wins, "!" re-includes, a directory's
    exclusion covers everything under it, "**/" matches at any depth, "*" never crosses "/" (as in Docker)."""
    parts = path.split("/")
    ignored = False
    for raw in dockerignore_patterns():
        negate = raw.startswith("!")
        pattern = raw.lstrip("!").strip("/")
        anywhere = pattern.startswith("**/")
        pattern_parts = pattern.removeprefix("**/").split("/")
        starts = range(len(parts)) if anywhere else [0]
        for start in starts:
            candidate = parts[start : start + len(pattern_parts)]
            if len(candidate) == len(pattern_parts) and all(map(fnmatchcase, candidate, pattern_parts)):
                ignored = not negate
                break
    return ignored


def is_fernet_key(value: str) -> bool:
    try:
        Fernet(value)
    except (ValueError, TypeError):
        return False
    return True


# --- compose.yaml: services and how they start


@pytest.mark.parametrize("name", SERVICES)
def test_it_defines_every_service_the_code_expects(compose, name):
    assert name in compose["services"]


def test_it_is_a_valid_compose_document_for_pyyaml():
    document = load_compose()

    assert isinstance(document, dict)
    assert isinstance(document["services"], dict)
    assert all(isinstance(service, dict) for service in document["services"].values())


@pytest.mark.parametrize("name", APP_SERVICES)
def test_it_runs_every_app_service_from_the_project_image(compose, name):
    service = compose["services"][name]
    build = service.get("build")
    context = build if isinstance(build, str) else (build or {}).get("context")

    assert context is not None, f"{name} is not built from the Dockerfile"
    assert (ROOT / context / "Dockerfile").resolve() == DOCKERFILE


def test_it_serves_web_with_gunicorn_on_the_real_wsgi_module(compose):
    argv = command(compose["services"]["web"])
    targets = [arg for arg in argv[1:] if re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", arg)]

    assert argv[0] == "gunicorn"
    assert targets == ["pointscene.wsgi:application"]
    module_name, attribute = targets[0].split(":")
    assert callable(getattr(importlib.import_module(module_name), attribute))
    assert f"{module_name}.{attribute}" == settings.WSGI_APPLICATION
    assert option(argv, "--bind", "-b") == "0.0.0.0:8000"


def test_it_publishes_the_web_port(compose):
    ports = [str(port) for port in compose["services"]["web"]["ports"]]

    assert any(port.rsplit(":", 1)[-1] == "8000" for port in ports)


@pytest.mark.parametrize(("name", "subcommand"), [("worker", "worker"), ("beat", "beat")])
def test_it_runs_celery_on_the_real_app(compose, name, subcommand):
    argv = command(compose["services"][name])
    app_name = option(argv, "-A", "--app")

    assert argv[0] == "celery"
    assert subcommand in argv
    assert app_name == "pointscene"
    # `celery -A pointscene` resolves the app this way: pointscene -> pointscene.celery -> its `app`.
    assert importlib.import_module("pointscene.celery").app is pointscene.celery_app
    assert isinstance(pointscene.celery_app, Celery)
    assert find_app(app_name) is pointscene.celery_app


def test_it_runs_beat_with_our_redbeat_scheduler(compose):
    argv = command(compose["services"]["beat"])
    scheduler = option(argv, "-S", "--scheduler") or settings.CELERY_BEAT_SCHEDULER

    assert scheduler == "jobs.scheduling.beat.JobsScheduler"
    assert issubclass(import_string(scheduler), RedBeatScheduler)


def test_it_migrates_and_makes_the_storage_bucket_once_before_the_app_starts(compose):
    migrate = compose["services"]["migrate"]

    assert command(migrate) == [
        "sh",
        "-c",
        "python manage.py migrate --no-input && python manage.py ensure_storage",
    ]
    assert "ensure_storage" in get_commands()
    assert (ROOT / "manage.py").is_file()
    assert migrate["restart"] == "no"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "objects" in migrate["depends_on"]


@pytest.mark.parametrize("name", ["web", "worker", "beat"])
def test_it_starts_app_processes_after_migrate_and_a_healthy_redis(compose, name):
    depends_on = compose["services"][name]["depends_on"]

    assert depends_on["migrate"]["condition"] == "service_completed_successfully"
    assert depends_on["redis"]["condition"] == "service_healthy"


@pytest.mark.parametrize(
    ("name", "words"),
    [("postgres", ["pg_isready"]), ("redis", ["redis-cli", "ping"]), ("worker", ["celery", "-A pointscene", "ping"])],
)
def test_it_health_checks_the_backing_services(compose, name, words):
    test = compose["services"][name]["healthcheck"]["test"]
    text = test if isinstance(test, str) else " ".join(test)

    assert all(word in text for word in words)


def test_it_health_checks_web_with_a_runnable_http_probe(compose):
    test = compose["services"]["web"]["healthcheck"]["test"]

    assert test[:3] == ["CMD", "python", "-c"]
    compile(test[3], "web-healthcheck", "exec")
    assert "/graphql" in test[3] or "/healthz" in test[3]
    assert "127.0.0.1:8000" in test[3]


# --- compose.yaml: the environment it gives the app


@pytest.mark.parametrize("name", APP_SERVICES)
def test_it_sets_only_variables_the_settings_read(compose, name):
    names = set(environment(compose["services"][name]))

    assert names, f"{name} gets no environment"
    assert names - settings_reads() - set(TOOL_VARIABLES) == set()


@pytest.mark.parametrize(("name", "module"), TOOL_VARIABLES.items())
def test_it_sets_tool_variables_that_the_tool_really_reads(name, module):
    assert f'os.environ.get("{name}"' in inspect.getsource(module)


@pytest.mark.parametrize("name", APP_SERVICES)
def test_it_runs_the_app_in_production_mode(compose, name):
    env = environment(compose["services"][name])

    assert env["DEBUG"] == "0"
    assert env["CONFIGS_DEV_KEY"] == "0"
    for secret in ["SECRET_KEY", "CONFIG_ENCRYPTION_KEYS"]:
        assert re.fullmatch(rf"\$\{{{secret}:\?[^}}]+\}}", env[secret]), f"{secret} must be required (${{{secret}:?}})"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_it_points_the_app_at_the_compose_postgres_and_redis(compose, name):
    filled = {**env_example(), **dict.fromkeys(REQUIRED_SECRETS, "s3cret")}
    env = interpolate(environment(compose["services"][name]), filled)
    database, redis = urlsplit(env["DATABASE_URL"]), urlsplit(env["REDIS_URL"])

    assert (database.scheme, database.hostname, database.port) == ("postgres", "postgres", 5432)
    assert (database.username, database.password) == (filled["POSTGRES_USER"], "s3cret")
    assert database.path == "/" + filled["POSTGRES_DB"]
    assert (redis.scheme, redis.hostname, redis.port) == ("redis", "redis", 6379)
    assert {database.hostname, redis.hostname} <= set(compose["services"])


@pytest.mark.parametrize("secret", REQUIRED_SECRETS)
def test_it_refuses_to_start_without_a_required_secret(compose, secret):
    filled = {**env_example(), **dict.fromkeys(REQUIRED_SECRETS, "s3cret")}
    interpolate(compose, filled)  # complete: no error

    with pytest.raises(MissingVariable) as missing:
        interpolate(compose, {**filled, secret: ""})
    assert str(missing.value) == secret


def test_it_shares_no_volume_between_web_and_the_workers_but_an_object_store(compose):
    app = ["migrate", "web", "worker", "beat"]
    mounts = {name: compose["services"][name].get("volumes", []) for name in app}
    env = interpolate(
        environment(compose["services"]["web"]), {**env_example(), **dict.fromkeys(REQUIRED_SECRETS, "x")}
    )

    assert mounts == dict.fromkeys(app, [])  # nothing on a disk another container (or machine) must see
    assert env["STORAGE_S3_BUCKET"]
    assert env["STORAGE_S3_ENDPOINT_URL"] == "http://objects:8333"
    objects = compose["services"]["objects"]
    assert re.fullmatch(r"chrislusf/seaweedfs:\d+\.\d+", objects["image"])  # a release, not latest
    assert "-s3.port=8333" in command(objects)
    assert [mount.split(":")[0] for mount in objects["volumes"]] == ["objects-data"]
    # Its one identity is the service's keys, which .env must give (no default in the file).
    identities = compose["configs"]["objects-identities"]["content"]
    assert "${STORAGE_S3_ACCESS_KEY_ID:?" in identities
    assert "${STORAGE_S3_SECRET_ACCESS_KEY:?" in identities


def test_the_image_has_the_s3_storage():
    assert any(args.startswith("pip install '.[s3]'") for args in instructions("RUN"))


# --- .env.example


def test_it_documents_every_variable_compose_interpolates():
    used, documented = interpolated_names(COMPOSE.read_text()), set(env_example())

    assert used - documented == set(), "interpolated in compose.yaml but missing from .env.example"
    assert documented - used == set(), "documented in .env.example but never used by compose.yaml"


@pytest.mark.parametrize("secret", REQUIRED_SECRETS)
def test_it_leaves_required_secrets_empty_in_the_example(secret):
    assert env_example()[secret] == ""


def test_it_holds_no_real_key_in_the_example():
    values = [part for value in env_example().values() for part in value.split(",")]

    assert not [value for value in values if is_fernet_key(value)]


# --- Dockerfile


def test_it_builds_on_python_311_slim():
    images = [shlex.split(args)[0] for args in instructions("FROM")]

    assert images
    assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?", images[-1])
    # The one other stage only fetches GraphiQL's browser files with npm (the next test).
    assert {image for image in images if not image.startswith("node:")} == {images[-1]}


def test_it_builds_graphiql_files_from_the_lock_and_carries_only_them():
    stages = {shlex.split(args)[-1]: shlex.split(args)[0] for args in instructions("FROM") if " AS " in args.upper()}
    from_graphiql = [shlex.split(args) for args in instructions("COPY") if "--from=graphiql" in args]
    builds = [args for args in instructions("RUN") if "npm" in args]

    assert stages["graphiql"].startswith("node:")
    assert builds == ["npm ci --ignore-scripts --no-audit --no-fund && npm run assets"]
    assert [parts[-2:] for parts in from_graphiql] == [
        ["/src/pointscene/graphql/static/graphiql", "./pointscene/graphql/static/graphiql"]
    ]
    # Where package.json's script puts them (from the stage's WORKDIR, /src), and where the service looks for them.
    assert "pointscene/graphql/static/graphiql" in json.loads((ROOT / "package.json").read_text())["scripts"]["assets"]


def test_it_runs_the_image_as_a_non_root_user():
    keywords = [keyword for keyword, _ in dockerfile()]
    last_from = max(i for i, keyword in enumerate(keywords) if keyword == "FROM")
    users = [i for i, keyword in enumerate(keywords) if keyword == "USER"]

    assert users, "no USER line"
    assert users[-1] > last_from, "the final stage sets no USER"
    user = dockerfile()[users[-1]][1].split(":")[0]
    assert user not in {"root", "0", ""}


def test_it_starts_gunicorn_on_the_wsgi_module_by_default():
    argv = image_command()

    assert "gunicorn" in argv
    assert any(arg.startswith("pointscene.wsgi") for arg in argv)


def test_it_installs_the_project_without_dev_extras():  # the s3 extra is the storage's, a runtime need
    pip_installs = [args for args in instructions("RUN") if "pip install" in args]

    assert any(re.search(r"pip install (\.|'\.\[s3\]')(\s|$)", args) for args in pip_installs)
    assert not [args for args in pip_installs if "[dev]" in args or re.search(r"\s-e\s|--editable", args)]


def test_it_exposes_port_8000():
    assert "8000" in " ".join(instructions("EXPOSE")).split()


def test_it_collects_static_files_with_a_throwaway_key_in_the_build_step():
    steps = [args for args in instructions("RUN") if "collectstatic" in args]

    assert len(steps) == 1
    assert "CONFIGS_DEV_KEY=0" in steps[0]
    assert "CONFIG_ENCRYPTION_KEYS=" in steps[0]


@pytest.mark.parametrize("name", ["SECRET_KEY", "CONFIG_ENCRYPTION_KEYS", "DATABASE_URL", "POSTGRES_PASSWORD"])
def test_it_bakes_no_secret_into_the_image_environment(name):
    declared = set(image_env()) | {shlex.split(args)[0].split("=")[0] for args in instructions("ARG")}

    assert name not in declared


def test_it_sets_only_image_variables_that_settings_or_tools_read():
    assert set(image_env()) - settings_reads() - IMAGE_TOOL_VARIABLES == set()


def test_it_copies_only_files_that_exist_and_reach_the_build_context():
    sources = []
    for args in instructions("COPY"):
        parts = shlex.split(args)
        if any(part.startswith("--from") for part in parts):
            continue
        sources += [part for part in parts[:-1] if not part.startswith("--")]

    assert sources
    assert [source for source in sources if not (ROOT / source).exists()] == []
    assert [source for source in sources if dockerignored(source.rstrip("/"))] == []


@pytest.mark.parametrize(
    "path",
    [".env", "var/config-encryption.dev-key", ".venv/bin/python", ".git/HEAD", "db.sqlite3", "jobs/__pycache__/x.pyc"],
)
def test_it_keeps_local_secrets_and_state_out_of_the_build_context(path):
    assert dockerignored(path)


BUILD_INPUTS = [
    "pyproject.toml",
    "manage.py",
    "pointscene/settings.py",
    ".env.example",
    "package.json",
    "package-lock.json",
    ".npmrc",
]


@pytest.mark.parametrize("path", BUILD_INPUTS)
def test_it_keeps_what_the_build_needs_in_the_build_context(path):
    assert not dockerignored(path)


@pytest.mark.parametrize("with_key", [True, False])
def test_it_collects_static_files_with_the_build_environment(tmp_path, with_key):
    """The Dockerfile's collectstatic step, run here: settings import only because the step brings its own key."""
    env = {name: value for name, value in os.environ.items() if name != "DATABASE_URL"}
    env |= {"CONFIGS_DEV_KEY": "0", "DEBUG": "0", "SECRET_KEY": secrets.token_urlsafe(50)}
    env |= {"STATIC_ROOT": str(tmp_path / "static"), "VAR_DIR": str(tmp_path / "var")}
    env.pop("CONFIG_ENCRYPTION_KEYS", None)
    if with_key:
        env["CONFIG_ENCRYPTION_KEYS"] = Fernet.generate_key().decode()

    done = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--no-input"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    if with_key:
        assert done.returncode == 0, done.stderr
        assert (tmp_path / "static" / "admin" / "css" / "base.css").is_file()
    else:
        assert done.returncode != 0
        assert "CONFIG_ENCRYPTION_KEYS is not set" in done.stderr
    assert not (tmp_path / "var").exists(), "the build step must not generate a development key"


# --- what `pip install .` (no dev extras) brings into the image


def runtime_closure() -> set[str]:
    """Distribution names that `pip install .` installs: pyproject's dependencies and theirs, markers honoured."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pending = [Requirement(spec) for spec in pyproject["project"]["dependencies"]]
    seen: dict[str, set[str]] = {}
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        if name in seen and set(requirement.extras) <= seen[name]:
            continue
        seen.setdefault(name, set()).update(requirement.extras)
        active = {"", *seen[name]}
        for spec in importlib.metadata.requires(requirement.name) or []:
            dependency = Requirement(spec)
            if dependency.marker is None or any(dependency.marker.evaluate({"extra": extra}) for extra in active):
                pending.append(dependency)
    return set(seen)


def extra_requirements(distribution: str, extra: str) -> set[str]:
    """What `distribution[extra]` adds to a plain install of `distribution`."""
    added = set()
    for spec in importlib.metadata.requires(distribution) or []:
        marker = Requirement(spec).marker
        if marker is not None and marker.evaluate({"extra": extra}) and not marker.evaluate({"extra": ""}):
            added.add(canonicalize_name(Requirement(spec).name))
    return added


def test_it_installs_what_the_redis_broker_needs_without_dev_extras():
    """Worker and beat talk to Redis through kombu's redis transport, which imports what kombu's `redis` extra lists
    (e.g. `packaging`). The dev extras may bring those in by chance; the image has only the runtime dependencies."""
    needed = extra_requirements("kombu", "redis")

    assert needed, "kombu's redis extra lists nothing: this check no longer sees it"
    assert needed - runtime_closure() == set()


# --- compose.yaml against the Compose Specification; pinned images; per-container metrics; beat; Flower

# The Compose Specification's JSON schema, vendored from github.com/compose-spec/compose-spec (schema/compose-spec.json
# at 170098ba07d9f53c383a41bfd4c5166b0a4529a6, 2026-06-23): `docker compose config` needs a Docker engine.
COMPOSE_SCHEMA = ROOT / "tests" / "fixtures" / "compose-spec.json"
# An exact release: a tag with major.minor.patch (and maybe a variant), never a moving one such as 16, 7 or latest.
# PostgreSQL numbers its releases major.minor (16.6 is one release; 16 moves).
# Releases: postgres and SeaweedFS number theirs with two parts (16.6, 3.80), the others with three.
EXACT_TAG = re.compile(
    r"((postgres|chrislusf/seaweedfs):\d+\.\d+|[a-z0-9./-]+:\d+\.\d+\.\d+)(-[a-z0-9.-]+)?(@sha256:[0-9a-f]{64})?"
)
SECRETS = {
    "SECRET_KEY",
    "CONFIG_ENCRYPTION_KEYS",
    "POSTGRES_PASSWORD",
    "DATABASE_URL",
    "APS_CLIENT_SECRET",
    "STORAGE_S3_SECRET_ACCESS_KEY",
}
SECRETS |= {"METRICS_TOKEN"}


def test_it_is_a_valid_compose_document_for_the_compose_specification(compose):
    import jsonschema

    schema = json.loads(COMPOSE_SCHEMA.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    filled = {**env_example(), **dict.fromkeys(REQUIRED_SECRETS, "s3cret")}

    jsonschema.Draft7Validator(schema).validate(compose)  # as written
    jsonschema.Draft7Validator(schema).validate(interpolate(compose, filled))  # as compose reads it


def test_the_schema_check_sees_a_broken_document(compose):
    import jsonschema

    schema = json.loads(COMPOSE_SCHEMA.read_text())
    broken = json.loads(json.dumps(compose))
    broken["services"]["web"]["healthcheck"]["intervall"] = "30s"

    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(schema).validate(broken)


def test_it_pins_every_pulled_image_to_an_exact_release(compose):
    pulled = {name: service["image"] for name, service in compose["services"].items() if "build" not in service}
    stages = [shlex.split(args)[0] for args in instructions("FROM")]

    assert pulled, "compose pulls no image: this check no longer sees them"
    assert {name: image for name, image in pulled.items() if not EXACT_TAG.fullmatch(image)} == {}
    assert [image for image in stages if not EXACT_TAG.fullmatch(image)] == []


def test_it_starts_every_command_through_the_entrypoint_that_prepares_metrics():
    entry = json.loads(instructions("ENTRYPOINT")[-1])

    assert entry == ["python", "-m", "pointscene.entrypoint"]
    assert importlib.import_module("pointscene.entrypoint").main
    assert "gunicorn.conf.py" in " ".join(instructions("COPY"))
    assert not dockerignored("gunicorn.conf.py")


@pytest.mark.parametrize("name", APP_SERVICES)
def test_it_gives_each_container_its_own_metrics_folder(compose, name):
    service = compose["services"][name]
    folder = environment(service)["PROMETHEUS_MULTIPROC_DIR"]
    mounted = [str(mount).split(":")[1] for mount in service.get("volumes", [])]

    assert folder
    assert not [path for path in mounted if folder == path or folder.startswith(path.rstrip("/") + "/")]
    assert "metrics" not in (compose.get("volumes") or {})


@pytest.mark.parametrize("name", ["worker", "beat"])
def test_it_serves_celerys_metrics_on_the_projects_network_only(compose, name):
    worker = compose["services"][name]
    env = environment(worker)

    assert {"METRICS_CELERY_PORT", "METRICS_CELERY_ADDRESS"} <= settings_reads()
    assert env["METRICS_CELERY_ADDRESS"] == "0.0.0.0"
    assert [str(port) for port in worker["expose"]] == [env["METRICS_CELERY_PORT"]]
    assert "ports" not in worker
    assert env["METRICS_TOKEN"] == "${METRICS_TOKEN:-}"


def test_it_health_checks_beat_with_the_heartbeat_command(compose):
    test = compose["services"]["beat"]["healthcheck"]["test"]

    assert test == ["CMD", "env", "-u", "PROMETHEUS_MULTIPROC_DIR", "python", "manage.py", "beat_health"]
    assert importlib.import_module("jobs.management.commands.beat_health").Command


def test_it_gives_flower_the_broker_and_its_login_only(compose):
    flower = compose["services"]["flower"]
    argv = command(flower)
    text = yaml.safe_dump(flower)

    assert set(environment(flower)) == {"FLOWER_BASIC_AUTH"}
    assert interpolated_names(text) & SECRETS == set()
    assert not [name for name in SECRETS if name in text]
    assert option(argv, "-A", "--app") is None  # the app's settings would want the database and the secrets
    assert (
        option(argv, "-b", "--broker")
        == interpolate(
            environment(compose["services"]["worker"]), {**env_example(), **dict.fromkeys(REQUIRED_SECRETS, "s3cret")}
        )["REDIS_URL"]
    )
    assert "flower" in argv
