"""Storing remotes (configs/services.py add_job_config): encrypted at rest, merged by name, validated without leaks."""

import json
from pathlib import Path

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.core.exceptions import ValidationError
from django.db import connection
from graphql import parse
from graphql.utilities import value_from_ast_untyped

from configs.crypto import DecryptionFailed, decrypt_json
from configs.models import RemoteConfig
from configs.services import add_job_config
from pointscene.core import errors
from tests.fixtures.api import row_snapshot

pytestmark = pytest.mark.django_db

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "contract" / "examples" / "add_job_config.graphql"


def contract_config() -> dict:
    """The `config` argument of the contract's addJobConfig example, as a client sends it."""
    document = parse(EXAMPLE.read_text())
    field = document.definitions[0].selection_set.selections[0]
    arguments = {argument.name.value: value_from_ast_untyped(argument.value) for argument in field.arguments}
    return arguments["config"]


CONFIG = contract_config()
# How the service stores it: rclone's names for the options (dropbox's app_key/app_secret are rclone's
# client_id/client_secret), every value a string.
STORED = {
    **CONFIG,
    "box": {
        "type": "dropbox",
        "client_id": CONFIG["box"]["app_key"],
        "client_secret": CONFIG["box"]["app_secret"],
        "token": CONFIG["box"]["token"],
    },
}
# A token in rclone's form, for remotes the tests make up.
TOKEN = json.dumps(
    {
        "access_token": "ya29.other",
        "token_type": "Bearer",
        "refresh_token": "1//0other",
        "expiry": "2026-12-01T09:30:00Z",
    }
)

# Every value of the example that is a credential or identifies one, plus the tokens inside the token fields.
SECRETS = [
    "my-client-id.apps.example",
    "my-client-secret",
    "app-key",
    "app-secret",
    "AKIAEXAMPLE",
    "secret-example",
    "ya29.a0Af...",
    "1//0g...",
    "sl.B...",
    "eyJ...",
    "abc...",
    "b.11111111-2222-3333-4444-555555555555",
    *(remote["token"] for remote in CONFIG.values() if "token" in remote),
]


def stored_settings(resource) -> dict[str, dict]:
    return {row.name: decrypt_json(row.settings_encrypted) for row in RemoteConfig.objects.filter(resource=resource)}


def raw_rows(table: str) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
        return cursor.fetchall()


def codes(exc: ValidationError) -> dict[str, list[str]]:
    return {field: [e.code for e in errs] for field, errs in exc.error_dict.items()}


def remote(type_: str = "s3", **settings) -> dict:
    """A remote that passes the rules: s3 with keys, OAuth types with a token, others as given."""
    base = {"type": type_}
    if type_ == "s3":
        base |= {"provider": "AWS", "access_key_id": "AKIAOTHER", "secret_access_key": "other-secret"}
    elif type_ in ("drive", "dropbox"):
        base["token"] = TOKEN
    return base | settings


def test_it_reads_the_contract_example():
    assert set(CONFIG) == {"gdrive", "box", "bucket", "acc"}
    assert CONFIG["gdrive"]["client_secret"] == "my-client-secret"
    assert CONFIG["box"]["app_key"] == "app-key"


def test_it_stores_the_dropbox_app_key_and_secret_under_rclones_names(resource):
    add_job_config(resource, {"box": CONFIG["box"]})

    stored = stored_settings(resource)["box"]
    assert stored == STORED["box"]
    assert stored["client_id"] == "app-key"
    assert stored["client_secret"] == "app-secret"
    assert "app_key" not in stored
    assert "app_secret" not in stored


def test_it_stores_every_value_as_a_string(resource):
    add_job_config(resource, {"bucket": remote(upload_concurrency=8, force_path_style=False, v2_auth=True)})

    stored = stored_settings(resource)["bucket"]
    assert (stored["upload_concurrency"], stored["force_path_style"], stored["v2_auth"]) == ("8", "false", "true")
    assert all(isinstance(value, str) for value in stored.values())


def test_it_stores_the_contract_remotes_one_row_each(resource):
    add_job_config(resource, CONFIG)

    rows = RemoteConfig.objects.filter(resource=resource).order_by("name")
    assert [(row.name, row.type) for row in rows] == [
        ("acc", "acc"),
        ("box", "dropbox"),
        ("bucket", "s3"),
        ("gdrive", "drive"),
    ]
    assert stored_settings(resource) == STORED
    assert all(isinstance(value, str) for settings in STORED.values() for value in settings.values())


def test_it_keeps_no_secret_in_any_column(resource):
    add_job_config(resource, CONFIG)

    rows = raw_rows(RemoteConfig._meta.db_table)
    assert len(rows) == 4
    for row in rows:
        text = " ".join(map(str, row))
        for secret in SECRETS:
            assert secret not in text
        for settings in CONFIG.values():
            for key, value in settings.items():
                if key != "type" and isinstance(value, str) and len(value) >= 8:
                    assert value not in text
    ciphertexts = list(RemoteConfig.objects.filter(resource=resource).values_list("settings_encrypted", flat=True))
    assert all(token.startswith("gAAAAA") for token in ciphertexts)  # Fernet tokens
    assert len(set(ciphertexts)) == 4


def test_it_keeps_no_secret_in_any_table(resource):
    add_job_config(resource, CONFIG)

    for table in connection.introspection.table_names():
        text = " ".join(" ".join(map(str, row)) for row in raw_rows(table))
        for secret in SECRETS:
            assert secret not in text, table


def test_it_round_trips_the_settings(resource):
    add_job_config(resource, CONFIG)

    for name, settings in STORED.items():
        row = RemoteConfig.objects.get(resource=resource, name=name)
        assert decrypt_json(row.settings_encrypted) == settings


def test_it_encrypts_the_same_settings_differently_each_time(resource, other_resource):
    add_job_config(resource, {"bucket": CONFIG["bucket"]})
    add_job_config(other_resource, {"bucket": CONFIG["bucket"]})

    first, second = RemoteConfig.objects.filter(name="bucket").values_list("settings_encrypted", flat=True)
    assert first != second
    assert decrypt_json(first) == decrypt_json(second) == CONFIG["bucket"]


@pytest.mark.parametrize(
    ("option", "value", "stored"),
    [
        ("upload_concurrency", 1, "1"),
        ("chunk_size", 2.5, "2.5"),
        ("force_path_style", True, "true"),
        ("no_check_bucket", False, "false"),
        ("location_constraint", "", ""),
        ("description", "x" * 5000, "x" * 5000),
    ],
)
def test_it_accepts_scalar_setting_values(option, value, stored, resource):
    add_job_config(resource, {"bucket": remote(**{option: value})})

    assert stored_settings(resource) == {"bucket": {**remote(), option: stored}}


# --- merging


def test_it_merges_by_name(resource):
    add_job_config(resource, CONFIG)
    box_before = RemoteConfig.objects.get(resource=resource, name="box")
    new_gdrive = remote("drive", client_id="other-id", client_secret="rotated-secret")

    add_job_config(resource, {"gdrive": new_gdrive, "bucket": None, "extra": remote("s3", region="eu-west-1")})

    assert stored_settings(resource) == {
        "gdrive": new_gdrive,
        "box": STORED["box"],
        "acc": CONFIG["acc"],
        "extra": remote("s3", region="eu-west-1"),
    }
    box_after = RemoteConfig.objects.get(resource=resource, name="box")
    assert (box_after.pk, box_after.settings_encrypted) == (box_before.pk, box_before.settings_encrypted)


def test_it_replaces_a_remote_whole_not_key_by_key(resource):
    add_job_config(resource, {"gdrive": CONFIG["gdrive"]})

    add_job_config(resource, {"gdrive": remote("drive", scope="drive.readonly")})

    assert stored_settings(resource) == {"gdrive": {"type": "drive", "token": TOKEN, "scope": "drive.readonly"}}
    assert RemoteConfig.objects.filter(resource=resource).count() == 1


def test_it_changes_the_type_with_the_settings(resource):
    add_job_config(resource, {"store": remote("s3")})

    add_job_config(resource, {"store": remote("drive")})

    assert RemoteConfig.objects.get(resource=resource, name="store").type == "drive"
    assert stored_settings(resource) == {"store": remote("drive")}


def test_it_removes_with_null_and_ignores_removing_a_missing_name(resource):
    add_job_config(resource, CONFIG)

    add_job_config(resource, {"box": None, "never-there": None})

    assert set(stored_settings(resource)) == {"gdrive", "bucket", "acc"}


def test_it_leaves_other_resources_alone(resource, other_resource):
    add_job_config(resource, CONFIG)
    add_job_config(other_resource, CONFIG)
    before = sorted(RemoteConfig.objects.filter(resource=other_resource).values_list("pk", "settings_encrypted"))

    add_job_config(resource, {"gdrive": None, "box": remote("dropbox")})

    after = sorted(RemoteConfig.objects.filter(resource=other_resource).values_list("pk", "settings_encrypted"))
    assert after == before
    assert stored_settings(other_resource) == STORED


# --- validation: coded, pathed, silent about values, nothing written

BAD_CONFIGS = [
    pytest.param(None, "config", id="null"),
    pytest.param({}, "config", id="empty"),
    pytest.param([CONFIG["gdrive"]], "config", id="list"),
    pytest.param("gdrive", "config", id="string"),
    pytest.param({"gdrive": "my-client-secret"}, "config.gdrive", id="settings-string"),
    pytest.param({"gdrive": ["my-client-secret"]}, "config.gdrive", id="settings-list"),
    pytest.param({"gdrive": {"client_secret": "my-client-secret"}}, "config.gdrive.type", id="type-missing"),
    pytest.param({"gdrive": {"type": None, "client_secret": "my-client-secret"}}, "config.gdrive.type", id="type-null"),
    pytest.param(
        {"gdrive": {"type": "Drive", "client_secret": "my-client-secret"}}, "config.gdrive.type", id="type-case"
    ),
    pytest.param({"gdrive": {"type": "dr ive"}}, "config.gdrive.type", id="type-space"),
    pytest.param({"gdrive": {"type": 5}}, "config.gdrive.type", id="type-int"),
    pytest.param(
        {"gdrive": {"type": "drive", "client_secret": {"value": "my-client-secret"}}},
        "config.gdrive.client_secret",
        id="value-object",
    ),
    pytest.param(
        {"gdrive": {"type": "drive", "client_secret": ["my-client-secret"]}},
        "config.gdrive.client_secret",
        id="value-list",
    ),
    pytest.param({"gdrive": {"type": "drive", "client_secret": None}}, "config.gdrive.client_secret", id="value-null"),
    pytest.param(
        {"gdrive": {"type": "drive", "Client-Secret": "my-client-secret"}}, "config.gdrive.Client-Secret", id="key-case"
    ),
    pytest.param({"-gdrive": remote()}, "config.-gdrive", id="name-dash"),
    pytest.param({" gdrive": remote()}, "config. gdrive", id="name-space"),
    pytest.param({"g/drive": remote()}, "config.g/drive", id="name-slash"),
    pytest.param({"g:drive": remote()}, "config.g:drive", id="name-colon"),
    pytest.param({"": remote()}, "config.", id="name-empty"),
    pytest.param({"x" * 65: remote()}, "config." + "x" * 65, id="name-long"),
    pytest.param({"resource": remote()}, "config.resource", id="reserved"),
    pytest.param({"resource": None}, "config.resource", id="reserved-removal"),
    pytest.param({"disk": remote("local", copy_links=True)}, "config.disk.type", id="local"),
]


@pytest.mark.parametrize(("config", "field"), BAD_CONFIGS)
def test_it_refuses_a_bad_config_and_writes_nothing(config, field, resource):
    add_job_config(resource, {"gdrive": CONFIG["gdrive"], "bucket": CONFIG["bucket"]})
    before = row_snapshot()

    with pytest.raises(ValidationError) as raised:
        add_job_config(resource, config)

    assert codes(raised.value) == {field: [errors.INVALID_CONFIG]}
    assert row_snapshot() == before
    shown = " ".join([*raised.value.error_dict, *(str(m) for m in raised.value.messages)])
    for secret in SECRETS:
        assert secret not in shown


def test_it_refuses_a_whole_config_when_one_remote_is_bad(resource):
    add_job_config(resource, {"bucket": CONFIG["bucket"]})
    before = row_snapshot()

    with pytest.raises(ValidationError) as raised:
        add_job_config(resource, {**CONFIG, "bucket": None, "zzz": remote(secret_access_key=["secret-example"])})

    assert codes(raised.value) == {"config.zzz.secret_access_key": [errors.INVALID_CONFIG]}
    assert row_snapshot() == before


def test_it_allows_local_remotes_only_when_configured(resource, settings):
    settings.CONFIGS_ALLOW_LOCAL_REMOTES = False
    with pytest.raises(ValidationError) as raised:
        add_job_config(resource, {"disk": remote("local", copy_links=True)})
    assert codes(raised.value) == {"config.disk.type": [errors.INVALID_CONFIG]}
    assert not RemoteConfig.objects.exists()

    settings.CONFIGS_ALLOW_LOCAL_REMOTES = True
    add_job_config(resource, {"disk": remote("local", copy_links=True)})
    assert stored_settings(resource) == {"disk": {"type": "local", "copy_links": "true"}}


# --- limits


def many(count: int, prefix: str = "r") -> dict:
    return {f"{prefix}{i}": remote(region=f"region-{i}") for i in range(count)}


def test_it_accepts_fifty_remotes(resource):
    add_job_config(resource, many(50))

    assert RemoteConfig.objects.filter(resource=resource).count() == 50


def test_it_refuses_fifty_one_remotes_and_writes_nothing(resource):
    before = row_snapshot()

    with pytest.raises(ValidationError) as raised:
        add_job_config(resource, many(51))

    assert codes(raised.value) == {"config": [errors.INVALID_CONFIG]}
    assert row_snapshot() == before


def test_it_counts_the_remotes_already_stored(resource):
    add_job_config(resource, many(30, "old"))
    before = row_snapshot()

    with pytest.raises(ValidationError) as raised:
        add_job_config(resource, many(21, "new"))

    assert codes(raised.value) == {"config": [errors.INVALID_CONFIG]}
    assert row_snapshot() == before


def test_it_allows_replacing_and_removing_at_the_limit(resource):
    add_job_config(resource, many(50))

    add_job_config(resource, {"r0": remote("drive"), "r1": None, "fresh": remote()})

    assert RemoteConfig.objects.filter(resource=resource).count() == 50
    assert stored_settings(resource)["r0"] == remote("drive")


def test_it_counts_remotes_per_resource(resource, other_resource):
    add_job_config(other_resource, many(50))

    add_job_config(resource, many(50))

    assert RemoteConfig.objects.count() == 100


def test_it_refuses_a_config_over_the_size_limit_and_accepts_one_at_it(resource, settings):
    size = len(json.dumps(CONFIG, separators=(",", ":")))

    settings.CONFIGS_MAX_BYTES = size - 1
    with pytest.raises(ValidationError) as raised:
        add_job_config(resource, CONFIG)
    assert codes(raised.value) == {"config": [errors.INVALID_CONFIG]}
    assert not RemoteConfig.objects.exists()

    settings.CONFIGS_MAX_BYTES = size
    add_job_config(resource, CONFIG)
    assert RemoteConfig.objects.filter(resource=resource).count() == 4


def test_it_refuses_a_huge_config_with_the_default_limit(resource, settings):
    before = row_snapshot()

    with pytest.raises(ValidationError) as raised:
        add_job_config(resource, {"bucket": remote(description="x" * settings.CONFIGS_MAX_BYTES)})

    assert codes(raised.value) == {"config": [errors.INVALID_CONFIG]}
    assert row_snapshot() == before


# --- keys


def test_it_decrypts_values_written_under_an_older_key(resource, settings):
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.CONFIG_ENCRYPTION_KEYS = [old_key]
    add_job_config(resource, {"bucket": CONFIG["bucket"]})
    old_token = RemoteConfig.objects.get(name="bucket").settings_encrypted

    settings.CONFIG_ENCRYPTION_KEYS = [new_key, old_key]
    assert decrypt_json(old_token) == CONFIG["bucket"]

    add_job_config(resource, {"gdrive": CONFIG["gdrive"]})
    new_token = RemoteConfig.objects.get(name="gdrive").settings_encrypted
    assert json.loads(Fernet(new_key).decrypt(new_token.encode())) == CONFIG["gdrive"]
    with pytest.raises(InvalidToken):
        Fernet(old_key).decrypt(new_token.encode())
    assert stored_settings(resource) == {"bucket": CONFIG["bucket"], "gdrive": CONFIG["gdrive"]}


def test_it_fails_cleanly_when_no_key_opens_a_value(resource, settings):
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.CONFIG_ENCRYPTION_KEYS = [old_key]
    add_job_config(resource, {"gdrive": CONFIG["gdrive"]})
    token = RemoteConfig.objects.get(name="gdrive").settings_encrypted

    settings.CONFIG_ENCRYPTION_KEYS = [new_key]
    with pytest.raises(DecryptionFailed) as raised:
        decrypt_json(token)

    said = f"{raised.value!s} {raised.value!r}"
    assert token not in said
    assert old_key not in said
    for secret in SECRETS:
        assert secret not in said
