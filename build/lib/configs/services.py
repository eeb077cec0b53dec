"""A resource's remotes: storing, listing, removing, rotating keys, and taking back refreshed tokens.

Secrets go in encrypted and never come back out through here, except to the worker (remotes_for_run), which
decrypts them in memory for the one step that needs them.
"""

import json
import logging
from collections.abc import Iterable

from cryptography.fernet import InvalidToken
from django.conf import settings
from django.db import transaction

from configs import remotes
from configs.crypto import DecryptionFailed, decrypt_json, encrypt_json, fernet
from configs.models import RemoteConfig
from pointscene.core import errors
from pointscene.core.models import Resource

log = logging.getLogger(__name__)

# The task's own storage area is the built-in remote "resource:" in workflows (jobs.sync.rclone.resource_remote).
RESERVED_NAMES = {"resource", "resource-storage"}
MAX_REMOTES = 50


@transaction.atomic
def add_job_config(resource: Resource, config: object) -> None:
    """Merge remotes into a resource's config: same name replaces, null removes."""
    if not isinstance(config, dict) or not config:
        raise errors.invalid("config", errors.INVALID_CONFIG, "must be a non-empty object of remote name -> settings")
    size = len(json.dumps(config, separators=(",", ":")))
    if size > settings.CONFIGS_MAX_BYTES:
        raise errors.invalid("config", errors.INVALID_CONFIG, f"at most {settings.CONFIGS_MAX_BYTES} bytes")
    checked = {}
    for name, value in config.items():
        if name in RESERVED_NAMES:
            raise errors.invalid(
                f"config.{name}", errors.INVALID_CONFIG, f"{name!r} is reserved for the resource's own storage"
            )
        checked[name] = remotes.check_remote(name, value, f"config.{name}")

    _lock(resource)
    removed = {name for name, value in checked.items() if value is None}
    existing = set(RemoteConfig.objects.filter(resource=resource).values_list("name", flat=True))
    if len((existing - removed) | (set(checked) - removed)) > MAX_REMOTES:
        raise errors.invalid("config", errors.INVALID_CONFIG, f"a resource holds at most {MAX_REMOTES} remotes")
    RemoteConfig.objects.filter(resource=resource, name__in=removed).delete()
    for name, value in checked.items():
        if value is None:
            continue
        RemoteConfig.objects.update_or_create(
            resource=resource,
            name=name,
            defaults={"type": value["type"], "settings_encrypted": encrypt_json(value)},
        )


@transaction.atomic
def remove_job_config(resource: Resource, names: Iterable[str] | None) -> int:
    """Removes the named remotes (all of them when `names` is None); how many there were. Unknown names are
    an error, so a typo does not pass for a removal."""
    _lock(resource)
    rows = RemoteConfig.objects.filter(resource=resource)
    if names is not None:
        names = list(dict.fromkeys(names))
        if not names:
            raise errors.invalid("remotes", errors.INVALID_VALUE, "name at least one remote, or leave remotes out")
        found = set(rows.filter(name__in=names).values_list("name", flat=True))
        missing = [n for n in names if n not in found]
        if missing:
            raise errors.invalid("remotes", errors.NOT_FOUND, f"no remote named {missing[0]!r} in this resource")
        rows = rows.filter(name__in=names)
    deleted, _ = rows.delete()
    return deleted


def get_job_config(resource: Resource) -> list[dict]:
    """Each remote's name, type, non-secret settings and which secrets are set; never a secret's value."""
    return [
        {"name": row.name, **remotes.public_view(decrypt_json(row.settings_encrypted))}
        for row in RemoteConfig.objects.filter(resource=resource).order_by("name")
    ]


def remotes_for_run(resource_id: int, names: Iterable[str]) -> dict[str, dict]:
    """Decrypted settings of the named remotes, for the worker's step that is about to use them."""
    rows = RemoteConfig.objects.filter(resource_id=resource_id, name__in=set(names))
    return {row.name: decrypt_json(row.settings_encrypted) for row in rows}


def store_refreshed_token(resource_id: int, name: str, old_token: str, new_token: str) -> bool:
    """Keeps a token that rclone (or the ACC client) refreshed during a run, encrypted, unless the remote was
    replaced or removed meanwhile: a user's newer settings win over a run's refresh. True when stored."""
    remotes.check_token(new_token, "token")
    with transaction.atomic():
        row = RemoteConfig.objects.select_for_update().filter(resource_id=resource_id, name=name).first()
        if row is None:
            return False
        current = decrypt_json(row.settings_encrypted)
        if current.get("token") != old_token:
            return False
        current["token"] = new_token
        row.settings_encrypted = encrypt_json(current)
        row.save(update_fields=["settings_encrypted", "updated_at"])
    return True


def rotate_keys(batch_size: int = 500) -> int:
    """Re-encrypts every remote under the newest key, in small transactions so the service keeps running
    (a run refreshing a token waits for at most one batch). How many rows were rewritten."""
    if batch_size < 1:
        raise ValueError("the batch size must be at least 1")
    multi = fernet()
    rotated, last_id = 0, 0
    while True:
        with transaction.atomic():
            rows = list(RemoteConfig.objects.select_for_update().filter(pk__gt=last_id).order_by("pk")[:batch_size])
            if not rows:
                return rotated
            for row in rows:
                try:
                    row.settings_encrypted = multi.rotate(row.settings_encrypted.encode()).decode()
                except InvalidToken:
                    raise DecryptionFailed(
                        f"remote config {row.pk} cannot be decrypted with any configured key; nothing after it "
                        "was rotated"
                    ) from None
            RemoteConfig.objects.bulk_update(rows, ["settings_encrypted"])
        rotated += len(rows)
        last_id = rows[-1].pk


def _lock(resource: Resource) -> None:
    # Lock the resource row so that two changes to the same resource's remotes apply one after the other.
    Resource.objects.select_for_update().filter(pk=resource.pk).first()
