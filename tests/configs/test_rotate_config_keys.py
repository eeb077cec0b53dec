"""`manage.py rotate_config_keys`: re-encrypts every stored remote under the newest key, so the old keys can go.

The order an operator follows: put the new key first and keep the old one after it, run the command, then
drop the old key. After that every remote must still read, under the new key alone.
"""

import json
from io import StringIO

import pytest
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.core.management import CommandError, call_command

from configs.crypto import DecryptionFailed, decrypt_json, encrypt_json
from configs.models import RemoteConfig
from configs.services import add_job_config, get_job_config
from tests.configs.test_add_job_config import CONFIG, SECRETS, STORED

pytestmark = pytest.mark.django_db


def new_key() -> str:
    return Fernet.generate_key().decode()


def rotate(*args: str) -> dict:
    out = StringIO()
    call_command("rotate_config_keys", *args, stdout=out)
    return json.loads(out.getvalue())


def ciphertexts() -> dict[int, str]:
    return dict(RemoteConfig.objects.values_list("pk", "settings_encrypted"))


@pytest.fixture
def old_key(settings) -> str:
    key = new_key()
    settings.CONFIG_ENCRYPTION_KEYS = [key]
    return key


@pytest.fixture
def stored(old_key, resource, other_resource) -> dict[int, str]:
    """The contract's remotes on two resources, all encrypted under the old key."""
    add_job_config(resource, CONFIG)
    add_job_config(other_resource, {"bucket": CONFIG["bucket"]})
    return ciphertexts()


def test_it_reencrypts_every_remote_under_the_newest_key(stored, old_key, settings, resource, other_resource):
    key = new_key()
    settings.CONFIG_ENCRYPTION_KEYS = [key, old_key]
    before_settings = {pk: decrypt_json(token) for pk, token in stored.items()}

    assert rotate() == {"rotated": 5, "webhookSecretsRotated": 0, "secretHeadersRotated": 0}

    after = ciphertexts()
    assert set(after) == set(stored)
    only_new = MultiFernet([Fernet(key)])
    for pk, token in after.items():
        assert token != stored[pk]
        assert json.loads(only_new.decrypt(token.encode())) == before_settings[pk]
        with pytest.raises(InvalidToken):
            Fernet(old_key).decrypt(token.encode())


def test_it_leaves_every_remote_readable_with_the_new_key_alone(stored, old_key, settings, resource, other_resource):
    key = new_key()
    settings.CONFIG_ENCRYPTION_KEYS = [key, old_key]
    rotate()

    settings.CONFIG_ENCRYPTION_KEYS = [key]

    listed = get_job_config(resource)
    assert [remote["name"] for remote in listed] == ["acc", "box", "bucket", "gdrive"]
    assert [remote["name"] for remote in get_job_config(other_resource)] == ["bucket"]
    stored_now = {
        row.name: decrypt_json(row.settings_encrypted) for row in RemoteConfig.objects.filter(resource=resource)
    }
    assert stored_now == STORED


def test_it_cannot_read_the_old_rows_with_the_new_key_alone_before_rotating(stored, settings, resource):
    settings.CONFIG_ENCRYPTION_KEYS = [new_key()]

    with pytest.raises(DecryptionFailed):
        get_job_config(resource)


def test_it_rotates_in_batches_of_one(old_key, settings, resource):
    add_job_config(resource, {"a": CONFIG["bucket"], "b": CONFIG["gdrive"], "c": CONFIG["acc"]})
    before = ciphertexts()
    key = new_key()
    settings.CONFIG_ENCRYPTION_KEYS = [key, old_key]

    assert rotate("--batch-size", "1") == {"rotated": 3, "webhookSecretsRotated": 0, "secretHeadersRotated": 0}

    after = ciphertexts()
    assert all(after[pk] != before[pk] for pk in before)
    settings.CONFIG_ENCRYPTION_KEYS = [key]
    assert [remote["name"] for remote in get_job_config(resource)] == ["a", "b", "c"]


def test_it_takes_the_batch_size_as_a_keyword_too(stored, old_key, settings):
    settings.CONFIG_ENCRYPTION_KEYS = [new_key(), old_key]
    out = StringIO()

    call_command("rotate_config_keys", batch_size=2, stdout=out)

    assert json.loads(out.getvalue()) == {"rotated": 5, "webhookSecretsRotated": 0, "secretHeadersRotated": 0}


def test_it_rotates_nothing_when_there_is_nothing(settings):
    settings.CONFIG_ENCRYPTION_KEYS = [new_key()]

    assert rotate() == {"rotated": 0, "webhookSecretsRotated": 0, "secretHeadersRotated": 0}


def test_it_can_run_again_under_the_same_keys(stored, old_key, settings, resource):
    key = new_key()
    settings.CONFIG_ENCRYPTION_KEYS = [key, old_key]
    rotate()

    assert rotate() == {"rotated": 5, "webhookSecretsRotated": 0, "secretHeadersRotated": 0}

    settings.CONFIG_ENCRYPTION_KEYS = [key]
    assert len(get_job_config(resource)) == 4


def test_it_refuses_a_row_no_configured_key_opens_and_names_it(stored, old_key, settings, resource):
    stranger = new_key()
    settings.CONFIG_ENCRYPTION_KEYS = [stranger]
    foreign = RemoteConfig.objects.get(resource=resource, name="gdrive")
    foreign.settings_encrypted = encrypt_json(STORED["gdrive"])  # under a key that will not be configured
    foreign.save()
    key = new_key()
    settings.CONFIG_ENCRYPTION_KEYS = [key, old_key]

    with pytest.raises(CommandError) as raised:
        rotate()

    said = f"{raised.value!s} {raised.value!r}"
    assert str(foreign.pk) in said
    assert foreign.settings_encrypted not in said
    for secret in SECRETS:
        assert secret not in said
    for value in (stranger, key, old_key):
        assert value not in said
    # The rows it could read are still readable: under the new key if rotated, under the old one if not.
    for row in RemoteConfig.objects.exclude(pk=foreign.pk):
        assert decrypt_json(row.settings_encrypted)


def test_it_commits_the_batches_before_the_unreadable_row(old_key, settings, resource):
    add_job_config(resource, {"a": CONFIG["bucket"], "b": CONFIG["gdrive"], "c": CONFIG["acc"]})
    rows = list(RemoteConfig.objects.order_by("pk"))
    settings.CONFIG_ENCRYPTION_KEYS = [new_key()]
    rows[2].settings_encrypted = encrypt_json(STORED["acc"])
    rows[2].save()
    key = new_key()
    settings.CONFIG_ENCRYPTION_KEYS = [key, old_key]

    with pytest.raises(CommandError, match=str(rows[2].pk)):
        rotate("--batch-size", "1")

    only_new = MultiFernet([Fernet(key)])
    for row in rows[:2]:
        only_new.decrypt(RemoteConfig.objects.get(pk=row.pk).settings_encrypted.encode())


def test_it_refuses_a_batch_size_of_zero(stored, old_key, settings):
    settings.CONFIG_ENCRYPTION_KEYS = [new_key(), old_key]

    with pytest.raises(CommandError):
        rotate("--batch-size", "0")

    assert ciphertexts() == stored


def test_it_refuses_a_negative_batch_size(stored, old_key, settings):
    settings.CONFIG_ENCRYPTION_KEYS = [new_key(), old_key]

    with pytest.raises(CommandError):
        rotate("--batch-size", "-1")

    assert ciphertexts() == stored


def test_it_reencrypts_webhook_secrets_too(old_key, settings, instance):
    from jobs import services as job_services
    from jobs.models import FrequencyType, ScheduledJob

    job = job_services.create_job(
        instance=instance,
        workflow={"tasks": [{"name": "a", "type": "http.request", "args": {"url": "https://example.com"}}]},
        frequency_type=FrequencyType.CRON_BASED,
        cron_expression="0 3 * * *",
        webhook_url="https://hooks.example.com/p",
        webhook_secret="webhook-secret-0123456789",
    )
    key = new_key()
    settings.CONFIG_ENCRYPTION_KEYS = [key, old_key]

    assert rotate() == {"rotated": 0, "webhookSecretsRotated": 1, "secretHeadersRotated": 0}

    token = ScheduledJob.objects.get(pk=job.pk).webhook_secret
    assert MultiFernet([Fernet(key)]).decrypt(token.encode()) == b"webhook-secret-0123456789"
