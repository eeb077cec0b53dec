"""The rules for one remote's settings (configs/remotes.py), each refusal next to the acceptance it guards.

A refusal names the setting (its dotted path becomes the GraphQL error's extensions.field), carries a stable
code, and writes nothing: every watched row is as it was. Types and option names come from the installed
rclone, so these configs are real rclone configs.
"""

import json

import pytest
from django.core.exceptions import ValidationError

from configs import allowlist, remotes
from configs.crypto import decrypt_json
from configs.models import RemoteConfig
from configs.services import add_job_config
from pointscene.core import errors
from tests.fixtures.api import row_snapshot

pytestmark = pytest.mark.django_db

INVALID, REQUIRED = errors.INVALID_CONFIG, errors.REQUIRED

TOKEN = json.dumps(
    {
        "access_token": "ya29.rules-access",
        "token_type": "Bearer",
        "refresh_token": "1//rules-refresh",
        "expiry": "2026-12-01T09:30:00.123456789Z",
    }
)
S3 = {
    "type": "s3",
    "provider": "AWS",
    "access_key_id": "AKIARULES",
    "secret_access_key": "rules-s3-secret",
    "region": "eu-north-1",
}
DRIVE = {"type": "drive", "scope": "drive", "token": TOKEN}
SFTP = {"type": "sftp", "host": "sftp.example.com", "user": "backup", "pass": "rules-sftp-pass"}
WEBDAV = {"type": "webdav", "url": "https://dav.example.com/remote.php/webdav", "vendor": "nextcloud"}
ACC = {
    "type": "acc",
    "token": TOKEN,
    "hub_id": "b.11111111-2222-3333-4444-555555555555",
    "project_id": "b.66666666-7777-8888-9999-000000000000",
}
SECRETS = ["ya29.rules-access", "1//rules-refresh", "rules-s3-secret", "rules-sftp-pass", TOKEN]


def with_(base: dict, **changes) -> dict:
    return {**base, **changes}


def without(base: dict, *keys: str) -> dict:
    return {k: v for k, v in base.items() if k not in keys}


@pytest.fixture
def existing(resource):
    """A remote stored before each refusal, so "nothing written" also covers "nothing replaced or removed"."""
    add_job_config(resource, {"existing": S3})
    return RemoteConfig.objects.get(resource=resource, name="existing")


def refuse(resource, config: dict) -> dict[str, list[str]]:
    """The refusal's {field: [codes]}, after checking that nothing changed and no secret was echoed."""
    before = row_snapshot()
    with pytest.raises(ValidationError) as raised:
        add_job_config(resource, config)
    assert row_snapshot() == before
    said = " ".join([*raised.value.error_dict, *(str(m) for m in raised.value.messages)])
    for secret in SECRETS:
        assert secret not in said
    return {field: [e.code for e in errs] for field, errs in raised.value.error_dict.items()}


def accept(resource, config: dict) -> dict[str, dict]:
    """The named remotes as stored."""
    add_job_config(resource, config)
    rows = RemoteConfig.objects.filter(resource=resource, name__in=list(config))
    return {row.name: decrypt_json(row.settings_encrypted) for row in rows}


# --------------------------------------------------------------------------- types and option names


@pytest.mark.parametrize(
    ("settings_", "field"),
    [
        pytest.param({"type": "nosuchcloud"}, "type", id="unknown-type"),
        pytest.param({"type": "S3"}, "type", id="type-case"),
        pytest.param({"type": ""}, "type", id="type-empty"),
        pytest.param(with_(S3, regin="eu-north-1"), "regin", id="typo-regin"),
        pytest.param(with_(DRIVE, client_key="x"), "client_key", id="option-of-no-type"),
        pytest.param(with_(S3, Region="eu-north-1"), "Region", id="option-case"),
        pytest.param(with_(S3, **{"region-name": "x"}), "region-name", id="option-dash"),
        pytest.param(with_(ACC, scope="x"), "scope", id="acc-unknown-option"),
    ],
)
def test_it_refuses_unknown_types_and_options(settings_, field, resource, existing):
    assert refuse(resource, {"bucket": settings_}) == {f"config.bucket.{field}": [INVALID]}


@pytest.mark.parametrize(
    "settings_",
    [
        pytest.param(S3, id="s3"),
        pytest.param(DRIVE, id="drive"),
        pytest.param(SFTP, id="sftp"),
        pytest.param(WEBDAV, id="webdav"),
        pytest.param(ACC, id="acc"),
    ],
)
def test_it_accepts_real_rclone_remotes(settings_, resource):
    assert accept(resource, {"remote": settings_}) == {"remote": settings_}


def test_it_knows_the_types_of_the_installed_rclone():
    assert {"s3", "drive", "dropbox", "sftp", "webdav", "crypt", "local"} <= set(remotes.rclone.backends())
    assert remotes.options_for("acc") is remotes.ACC_OPTIONS
    assert remotes.options_for("nosuchcloud") is None


# --------------------------------------------------------------------------- dropbox's aliases


def test_it_stores_dropbox_app_key_and_app_secret_under_rclones_names(resource):
    box = {"type": "dropbox", "app_key": "the-app-key", "app_secret": "the-app-secret", "token": TOKEN}

    assert accept(resource, {"box": box}) == {
        "box": {"type": "dropbox", "client_id": "the-app-key", "client_secret": "the-app-secret", "token": TOKEN}
    }


def test_it_accepts_rclones_own_dropbox_names(resource):
    box = {"type": "dropbox", "client_id": "the-app-key", "client_secret": "the-app-secret", "token": TOKEN}

    assert accept(resource, {"box": box}) == {"box": box}


def test_it_refuses_an_alias_given_with_its_rclone_name_too(resource, existing):
    box = {"type": "dropbox", "app_key": "the-app-key", "client_id": "other-key", "token": TOKEN}

    assert refuse(resource, {"box": box}) == {"config.box.client_id": [INVALID]}


def test_it_has_aliases_only_for_dropbox(resource, existing):
    assert refuse(resource, {"gd": with_(DRIVE, app_key="x")}) == {"config.gd.app_key": [INVALID]}


# --------------------------------------------------------------------------- required options


@pytest.mark.parametrize(
    ("settings_", "field"),
    [
        pytest.param(without(SFTP, "host"), "host", id="sftp-host"),
        pytest.param(with_(SFTP, host=""), "host", id="sftp-host-empty"),
        pytest.param(without(WEBDAV, "url"), "url", id="webdav-url"),
        pytest.param({"type": "crypt", "remote": "bucket:secret"}, "password", id="crypt-password"),
        pytest.param(without(DRIVE, "token"), "token", id="drive-token"),
        pytest.param({"type": "dropbox", "app_key": "k", "app_secret": "s"}, "token", id="dropbox-token"),
        pytest.param({"type": "onedrive", "drive_type": "personal"}, "token", id="onedrive-token"),
        pytest.param(without(S3, "access_key_id"), "access_key_id", id="s3-access-key"),
        pytest.param(without(S3, "secret_access_key"), "secret_access_key", id="s3-secret"),
        pytest.param(with_(S3, secret_access_key=""), "secret_access_key", id="s3-secret-empty"),
        pytest.param(without(ACC, "token"), "token", id="acc-token"),
        pytest.param(without(ACC, "hub_id"), "hub_id", id="acc-hub"),
        pytest.param(without(ACC, "project_id"), "project_id", id="acc-project"),
    ],
)
def test_it_refuses_a_remote_without_a_required_option(settings_, field, resource, existing):
    assert refuse(resource, {"gd": settings_}) == {f"config.gd.{field}": [REQUIRED]}


@pytest.mark.parametrize("remote_type", ["drive", "google cloud storage"])
def test_it_accepts_service_account_credentials_instead_of_a_token(remote_type, resource):
    credentials = json.dumps({"type": "service_account", "client_email": "sync@example.iam.gserviceaccount.com"})
    settings_ = {"type": remote_type, "service_account_credentials": credentials}

    assert accept(resource, {"gcp": settings_}) == {"gcp": settings_}


def test_it_still_checks_a_token_given_with_service_account_credentials(resource, existing):
    settings_ = {"type": "drive", "service_account_credentials": "{}", "token": "not json"}

    assert refuse(resource, {"gd": settings_}) == {"config.gd.token": [INVALID]}


@pytest.mark.parametrize(("option", "value"), [("hub_id", "11111111-2222"), ("project_id", "a.6666")])
def test_it_refuses_acc_ids_without_the_b_prefix(option, value, resource, existing):
    assert refuse(resource, {"acc": with_(ACC, **{option: value})}) == {f"config.acc.{option}": [INVALID]}


# --------------------------------------------------------------------------- tokens


def token(**fields) -> str:
    return json.dumps({"access_token": "ya29.rules-access", **fields})


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("not json", id="not-json"),
        pytest.param("ya29.rules-access", id="bare-access-token"),
        pytest.param("[]", id="list"),
        pytest.param('"ya29.rules-access"', id="json-string"),
        pytest.param("{}", id="no-access-token"),
        pytest.param(json.dumps({"access_token": ""}), id="empty-access-token"),
        pytest.param(json.dumps({"access_token": 5}), id="access-token-int"),
        pytest.param(token(refresh_token=5), id="refresh-token-int"),
        pytest.param(token(token_type=None), id="token-type-null"),
        pytest.param(token(expiry="tomorrow"), id="expiry-words"),
        pytest.param(token(expiry="2026-13-01T00:00:00Z"), id="expiry-month-13"),
        pytest.param(token(expiry=1764581400), id="expiry-number"),
        pytest.param(1234, id="number"),
    ],
)
def test_it_refuses_a_token_that_is_not_oauth2_json(value, resource, existing):
    assert refuse(resource, {"gd": with_(DRIVE, token=value)}) == {"config.gd.token": [INVALID]}


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(token(), id="access-token-only"),
        pytest.param(token(token_type="Bearer", refresh_token="1//r", expiry="2026-12-01T09:30:00Z"), id="utc"),
        # Go writes nanoseconds; the contract's acc example has them with an offset.
        pytest.param(token(expiry="2026-12-01T10:00:00.000000000+02:00", expires_in=3599), id="nanoseconds-offset"),
        pytest.param(token(expiry="2026-12-01T09:30:00.123456789Z"), id="nanoseconds-utc"),
        pytest.param(token(expiry="2026-12-01T09:30:00-05:30"), id="negative-offset"),
        # rclone's "never expires".
        pytest.param(token(expiry="0001-01-01T00:00:00Z"), id="go-zero-time"),
        pytest.param(token(expiry=""), id="no-expiry"),
    ],
)
def test_it_accepts_oauth2_token_json(value, resource):
    assert accept(resource, {"gd": with_(DRIVE, token=value)})["gd"]["token"] == value


def test_it_accepts_the_contract_acc_token(resource):
    acc = with_(
        ACC,
        token='{"access_token":"eyJ...","token_type":"Bearer","refresh_token":"abc...",'
        '"expiry":"2026-12-01T10:00:00.000000000+02:00","expires_in":3599}',
    )

    assert accept(resource, {"acc": acc}) == {"acc": acc}


def test_it_checks_the_token_of_every_type_that_has_one(resource, existing):
    assert refuse(resource, {"acc": with_(ACC, token="{}")}) == {"config.acc.token": [INVALID]}
    assert refuse(resource, {"box": {"type": "dropbox", "token": "x"}}) == {"config.box.token": [INVALID]}


# --------------------------------------------------------------------------- this server's own disk


LOCAL_OR_OTHER_TYPES = sorted(
    name for name, rules in allowlist.rules().items() if rules.transport not in allowlist.OPEN_TRANSPORTS
)


def test_it_refuses_at_least_the_types_that_read_disk_or_dial_by_themselves():
    assert {"local", "alias", "union", "memory", "smb", "hdfs", "storj"} <= set(LOCAL_OR_OTHER_TYPES)


@pytest.mark.parametrize("remote_type", LOCAL_OR_OTHER_TYPES)
def test_it_refuses_types_that_reach_this_servers_disk(remote_type, resource, existing, settings):
    settings.CONFIGS_ALLOW_LOCAL_REMOTES = False

    assert refuse(resource, {"disk": {"type": remote_type}}) == {"config.disk.type": [INVALID]}


@pytest.mark.parametrize(
    ("settings_", "stored"),
    [
        pytest.param({"type": "local", "copy_links": True}, {"type": "local", "copy_links": "true"}, id="local"),
        pytest.param({"type": "alias", "remote": "/data/exports"}, None, id="alias"),
        pytest.param({"type": "union", "upstreams": "/data/a /data/b"}, None, id="union"),
    ],
)
def test_it_accepts_them_when_local_remotes_are_allowed(settings_, stored, resource, settings):
    settings.CONFIGS_ALLOW_LOCAL_REMOTES = True

    assert accept(resource, {"disk": settings_}) == {"disk": stored or settings_}


@pytest.mark.parametrize(
    ("settings_", "field"),
    [
        pytest.param(with_(SFTP, key_file="/root/.ssh/id_ed25519"), "key_file", id="sftp-key-file"),
        pytest.param(with_(SFTP, known_hosts_file="/etc/ssh/known_hosts"), "known_hosts_file", id="known-hosts"),
        pytest.param(with_(S3, shared_credentials_file="/root/.aws/credentials"), "shared_credentials_file", id="s3"),
        pytest.param(with_(DRIVE, service_account_file="/etc/sa.json"), "service_account_file", id="drive-sa-file"),
    ],
)
def test_it_refuses_file_options_unless_local_remotes_are_allowed(settings_, field, resource, existing, settings):
    assert refuse(resource, {"r": settings_}) == {f"config.r.{field}": [INVALID]}

    settings.CONFIGS_ALLOW_LOCAL_REMOTES = True
    assert accept(resource, {"r": settings_}) == {"r": settings_}


def test_it_accepts_an_empty_file_option(resource):
    assert accept(resource, {"r": with_(SFTP, key_file="")}) == {"r": with_(SFTP, key_file="")}


# --------------------------------------------------------------------------- programs and the server's identity


@pytest.mark.parametrize("allow_local", [False, True])
@pytest.mark.parametrize(
    ("settings_", "field"),
    [
        pytest.param(with_(SFTP, ssh="ssh -i /root/.ssh/id_rsa backup@sftp.example.com"), "ssh", id="sftp-ssh"),
        pytest.param(with_(WEBDAV, bearer_token_command="cat /etc/shadow"), "bearer_token_command", id="webdav"),
        pytest.param({"type": "azureblob", "account": "acct", "use_az": True}, "use_az", id="azureblob-use-az"),
    ],
)
def test_it_always_refuses_options_that_run_a_program(settings_, field, allow_local, resource, existing, settings):
    settings.CONFIGS_ALLOW_LOCAL_REMOTES = allow_local

    assert refuse(resource, {"r": settings_}) == {f"config.r.{field}": [INVALID]}


@pytest.mark.parametrize("value", [True, "true", "TRUE", "1", "yes"])
@pytest.mark.parametrize(
    ("settings_", "option"),
    [
        pytest.param(S3, "env_auth", id="s3-env-auth"),
        pytest.param({"type": "swift", "user": "u", "key": "k"}, "env_auth", id="swift-env-auth"),
        pytest.param({"type": "azureblob", "account": "acct"}, "env_auth", id="azureblob-env-auth"),
        pytest.param({"type": "azureblob", "account": "acct"}, "use_msi", id="azureblob-use-msi"),
    ],
)
def test_it_refuses_the_servers_own_cloud_identity(settings_, option, value, resource, existing):
    assert refuse(resource, {"r": with_(settings_, **{option: value})}) == {f"config.r.{option}": [INVALID]}


@pytest.mark.parametrize("value", [False, "false", ""])
def test_it_accepts_env_auth_off(value, resource):
    stored = accept(resource, {"r": with_(S3, env_auth=value)})["r"]

    assert stored["env_auth"] == ("false" if value is False else value)


def test_it_accepts_env_auth_when_local_remotes_are_allowed(resource, settings):
    settings.CONFIGS_ALLOW_LOCAL_REMOTES = True
    s3 = {"type": "s3", "provider": "AWS", "env_auth": True, "region": "eu-north-1"}

    # With the server's identity, s3 needs no keys of its own.
    assert accept(resource, {"r": s3}) == {"r": {**s3, "env_auth": "true"}}


# --------------------------------------------------------------------------- endpoints


PRIVATE_ENDPOINTS = [
    "http://127.0.0.1:9000",
    "https://127.0.0.2/",
    "10.0.0.5",
    "http://10.0.0.5:9000",
    "172.16.3.4:443",
    "http://192.168.1.10",
    "http://169.254.169.254/latest/meta-data",
    "http://[::1]:9000",
    "[::1]",
    "http://[fe80::1]",
    "http://[fd00::5]/",
    "http://[::ffff:127.0.0.1]:9000",
    "http://0.0.0.0:9000",
    "localhost:9000",
    "http://LOCALHOST",
    "http://localhost.:9000",
    "http://api.localhost",
    "minio.local",
    "https://minio.local:9000",
    "http://metadata.google.internal",
    "http://user@127.0.0.1",
]


@pytest.mark.parametrize("endpoint", PRIVATE_ENDPOINTS)
def test_it_refuses_an_s3_endpoint_on_this_server_or_its_network(endpoint, resource, existing, settings):
    assert refuse(resource, {"b": with_(S3, provider="Minio", endpoint=endpoint)}) == {"config.b.endpoint": [INVALID]}

    settings.CONFIGS_ALLOW_LOCAL_REMOTES = True
    assert accept(resource, {"b": with_(S3, provider="Minio", endpoint=endpoint)})["b"]["endpoint"] == endpoint


@pytest.mark.parametrize(
    ("settings_", "field"),
    [
        pytest.param(with_(WEBDAV, url="http://127.0.0.1:8080/dav"), "url", id="webdav-url"),
        pytest.param(with_(WEBDAV, url="http://nextcloud.internal/dav"), "url", id="webdav-internal"),
        pytest.param(with_(SFTP, host="192.168.1.10"), "host", id="sftp-host"),
        pytest.param(with_(SFTP, host="localhost"), "host", id="sftp-localhost"),
        pytest.param({"type": "ftp", "host": "10.1.2.3", "user": "u", "pass": "p"}, "host", id="ftp-host"),
        pytest.param({"type": "http", "url": "http://[::1]/files/"}, "url", id="http-url"),
        pytest.param(with_(DRIVE, token_url="http://127.0.0.1/token"), "token_url", id="drive-token-url"),
        pytest.param(with_(DRIVE, auth_url="http://localhost/auth"), "auth_url", id="drive-auth-url"),
    ],
)
def test_it_refuses_every_endpoint_option_on_this_server(settings_, field, resource, existing, settings):
    assert refuse(resource, {"r": settings_}) == {f"config.r.{field}": [INVALID]}

    settings.CONFIGS_ALLOW_LOCAL_REMOTES = True
    assert accept(resource, {"r": settings_}) == {"r": settings_}


@pytest.mark.parametrize(
    "settings_",
    [
        pytest.param(with_(S3, endpoint="https://s3.eu-north-1.amazonaws.com"), id="s3-aws"),
        pytest.param(with_(S3, provider="Other", endpoint="s3.example.com:9000"), id="s3-host-port"),
        pytest.param(with_(S3, provider="Other", endpoint="http://93.184.215.14:9000"), id="s3-public-ip"),
        pytest.param(with_(S3, provider="Other", endpoint="http://[2606:4700::1111]"), id="s3-public-v6"),
        pytest.param(WEBDAV, id="webdav"),
        pytest.param(SFTP, id="sftp"),
        pytest.param(with_(DRIVE, token_url="https://oauth2.googleapis.com/token"), id="drive-token-url"),
        # The worker resolves names at run time and refuses those that resolve to private addresses.
        pytest.param(with_(S3, provider="Other", endpoint="https://minio.example.com"), id="name"),
    ],
)
def test_it_accepts_public_endpoints(settings_, resource):
    assert accept(resource, {"r": settings_}) == {"r": settings_}


# --------------------------------------------------------------------------- values


@pytest.mark.parametrize(
    ("option", "value", "stored"),
    [
        ("force_path_style", True, "true"),
        ("force_path_style", False, "false"),
        ("upload_concurrency", 4, "4"),
        ("upload_concurrency", 0, "0"),
        ("max_upload_parts", -1, "-1"),
        ("chunk_size", 2.5, "2.5"),
        ("chunk_size", "5Mi", "5Mi"),
        ("chunk_size", "", ""),
    ],
)
def test_it_stores_scalars_as_the_strings_rclone_parses(option, value, stored, resource):
    assert accept(resource, {"b": with_(S3, **{option: value})})["b"][option] == stored


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("eu\nnorth-1", id="newline"),
        pytest.param("eu-north-1\n[other]\ntype = local", id="section-injection"),
        pytest.param("eu\rnorth", id="carriage-return"),
        pytest.param("eu\tnorth", id="tab"),
        pytest.param("eu\x00north", id="nul"),
        pytest.param("eu\x1bnorth", id="escape"),
        pytest.param(None, id="null"),
        pytest.param(["eu-north-1"], id="list"),
        pytest.param({"name": "eu-north-1"}, id="object"),
    ],
)
def test_it_refuses_values_rclones_config_cannot_hold(value, resource, existing):
    assert refuse(resource, {"b": with_(S3, region=value)}) == {"config.b.region": [INVALID]}


def test_it_refuses_a_value_over_16_kib_and_accepts_one_at_it(resource, existing):
    at_limit = "x" * remotes.MAX_VALUE_CHARS

    assert refuse(resource, {"b": with_(S3, description=at_limit + "x")}) == {"config.b.description": [INVALID]}
    assert accept(resource, {"b": with_(S3, description=at_limit)})["b"]["description"] == at_limit


def test_it_refuses_a_config_over_configs_max_bytes(resource, existing, settings):
    config = {"b": with_(S3, description="x" * 1000)}
    size = len(json.dumps(config, separators=(",", ":")))

    settings.CONFIGS_MAX_BYTES = size - 1
    assert refuse(resource, config) == {"config": [INVALID]}

    settings.CONFIGS_MAX_BYTES = size
    assert accept(resource, config) == {"b": config["b"]}


# --------------------------------------------------------------------------- crypt


CRYPT = {"type": "crypt", "password": "rules-crypt-password"}


@pytest.mark.parametrize("wrapped", ["bucket:backups/encrypted", "bucket:", "my bucket.2:path/with:colon"])
def test_it_accepts_crypt_wrapping_a_named_remote(wrapped, resource):
    config = {"bucket": S3, "c": with_(CRYPT, remote=wrapped)}

    assert accept(resource, config)["c"] == with_(CRYPT, remote=wrapped)


@pytest.mark.parametrize(
    "wrapped",
    [
        pytest.param("/etc", id="absolute-path"),
        pytest.param("etc", id="relative-path"),
        pytest.param(":local:/etc", id="on-the-fly-backend"),
        pytest.param(":s3,env_auth=true:bucket", id="on-the-fly-with-options"),
        pytest.param("-bad:path", id="bad-name"),
        pytest.param("", id="empty"),
    ],
)
def test_it_refuses_crypt_wrapping_anything_but_name_and_path(wrapped, resource, existing):
    config = {"c": with_(CRYPT, remote=wrapped)}

    assert refuse(resource, config) == {"config.c.remote": [REQUIRED if not wrapped else INVALID]}


# --------------------------------------------------------------------------- refusals through the API


@pytest.fixture(autouse=True)
def fast_secret_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


ADD = "mutation M($id: ID!, $config: JSON!) { addJobConfig(resourceId: $id, config: $config) { success } }"


@pytest.mark.parametrize(
    ("config", "field", "code"),
    [
        pytest.param({"gd": with_(DRIVE, token="not json")}, "config.gd.token", INVALID, id="token"),
        pytest.param({"gd": without(DRIVE, "token")}, "config.gd.token", REQUIRED, id="token-missing"),
        pytest.param({"b": with_(S3, regin="x")}, "config.b.regin", INVALID, id="typo"),
        pytest.param({"s": without(SFTP, "host")}, "config.s.host", REQUIRED, id="sftp-host"),
        pytest.param({"b": with_(S3, endpoint="http://127.0.0.1:9000")}, "config.b.endpoint", INVALID, id="endpoint"),
        pytest.param({"d": {"type": "local"}}, "config.d.type", INVALID, id="local"),
    ],
)
def test_it_names_the_setting_in_the_api_error(config, field, code, api, acme_token, resource, existing):
    before = row_snapshot()

    status, body = api.gql(ADD, {"id": str(resource.pk), "config": config}, acme_token)

    assert status == 200
    assert body["data"] is None
    [error] = body["errors"]
    assert (error["extensions"]["code"], error["extensions"]["field"]) == (code, field)
    assert row_snapshot() == before
    for secret in SECRETS:
        assert secret not in json.dumps(body)


# --------------------------------------------------------------------------- gaps (app bugs, see reasons)


@pytest.mark.parametrize(
    "expiry", ["2026-12-01", "2026-12-01T09:30:00", "2026-12-01 09:30:00Z", "20261201T093000Z", "2026-W48-1"]
)
def test_it_refuses_a_token_expiry_rclone_cannot_parse(expiry, resource, existing):
    assert refuse(resource, {"gd": with_(DRIVE, token=token(expiry=expiry))}) == {"config.gd.token": [INVALID]}


@pytest.mark.parametrize(
    ("settings_", "field"),
    [
        pytest.param(
            {"type": "swift", "user": "u", "key": "k", "auth": "http://127.0.0.1:5000/v3"}, "auth", id="swift"
        ),
        pytest.param(
            {"type": "swift", "auth_token": "t", "storage_url": "http://10.0.0.5:8080/v1/AUTH_x"},
            "storage_url",
            id="swift-storage-url",
        ),
        pytest.param(with_(S3, sts_endpoint="http://169.254.169.254"), "sts_endpoint", id="s3-sts-endpoint"),
        pytest.param(with_(SFTP, socks_proxy="127.0.0.1:1080"), "socks_proxy", id="sftp-socks-proxy"),
        pytest.param(
            {"type": "ftp", "host": "ftp.example.com", "http_proxy": "http://10.0.0.5:3128"},
            "http_proxy",
            id="ftp-http-proxy",
        ),
        # hdfs dials by itself, outside the egress proxy: the type is refused before its options are read.
        pytest.param({"type": "hdfs", "namenode": "127.0.0.1:8020"}, "type", id="hdfs-namenode"),
        pytest.param(
            {"type": "b2", "account": "a", "key": "k", "download_url": "http://127.0.0.1:9000"},
            "download_url",
            id="b2-download-url",
        ),
        pytest.param(
            {"type": "azureblob", "sas_url": "http://127.0.0.1:10000/devstoreaccount1/c?sig=x"}, "sas_url", id="sas"
        ),
    ],
)
def test_it_refuses_other_address_options_on_this_server(settings_, field, resource, existing):
    assert refuse(resource, {"r": settings_}) == {f"config.r.{field}": [INVALID]}


def test_it_refuses_a_certificate_path_on_this_servers_disk(resource, existing):
    config = {"r": {"type": "azureblob", "account": "a", "tenant": "t", "client_id": "c"}}
    config["r"]["client_certificate_path"] = "/etc/ssl/private/server.pem"

    assert refuse(resource, config) == {"config.r.client_certificate_path": [INVALID]}


@pytest.mark.parametrize("value", ["t", "T", " true", "true "])
def test_it_refuses_every_spelling_of_true_for_env_auth(value, resource, existing):
    config = {"r": {"type": "azureblob", "account": "acct", "env_auth": value}}

    assert refuse(resource, config) == {"config.r.env_auth": [INVALID]}


@pytest.mark.parametrize(
    ("settings_", "field"),
    [
        pytest.param(
            {"type": "oracleobjectstorage", "provider": "instance_principal_auth", "namespace": "n", "region": "r"},
            "provider",
            id="oracle-instance-principal",
        ),
        pytest.param({"type": "azureblob", "use_emulator": True}, "use_emulator", id="azure-emulator"),
    ],
)
def test_it_refuses_other_ways_to_the_servers_identity(settings_, field, resource, existing):
    assert refuse(resource, {"r": settings_}) == {f"config.r.{field}": [INVALID]}


def test_it_accepts_a_private_endpoint_the_operator_let_through_and_no_other(resource, existing, settings):
    settings.JOBS_EGRESS_ALLOW = ["10.0.0.5:9000"]

    assert accept(resource, {"b": with_(S3, provider="Minio", endpoint="http://10.0.0.5:9000")})
    assert refuse(resource, {"c": with_(S3, provider="Minio", endpoint="http://10.0.0.5:9001")}) == {
        "config.c.endpoint": [INVALID]
    }
