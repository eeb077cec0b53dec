"""Storing a resource's remotes. Secrets go in encrypted and never come back out through here."""

import json
import re

from django.conf import settings
from django.db import transaction

from configs.crypto import encrypt_json
from configs.models import RemoteConfig
from jobs import errors
from jobs.models import Resource
from jobs.tasktypes.args import REMOTE_NAME

# rclone backend names are lower-case words ("drive", "s3", "azureblob"); ours adds "acc".
REMOTE_TYPE = re.compile(r"^[a-z][a-z0-9]{0,31}$")
# The task's own storage area is addressed as "resource:" in workflows.
RESERVED_NAMES = {"resource"}
MAX_FIELD_NAME = 64
MAX_REMOTES = 50


def _check_remote(name: str, settings_: object) -> dict | None:
    field = f"config.{name}"
    if not REMOTE_NAME.match(name):
        raise errors.invalid(
            field,
            errors.INVALID_CONFIG,
            "remote names are 1-64 letters, digits, _ - . + @ or spaces, not starting with - or space",
        )
    if name in RESERVED_NAMES:
        raise errors.invalid(field, errors.INVALID_CONFIG, f"{name!r} is reserved for the resource's own storage")
    if settings_ is None:
        return None
    if not isinstance(settings_, dict):
        raise errors.invalid(field, errors.INVALID_CONFIG, "must be an object of settings with a type, or null")
    remote_type = settings_.get("type")
    if not isinstance(remote_type, str) or not REMOTE_TYPE.match(remote_type):
        raise errors.invalid(f"{field}.type", errors.INVALID_CONFIG, "must be a remote type such as drive or s3")
    if remote_type == "local" and not settings.CONFIGS_ALLOW_LOCAL_REMOTES:
        raise errors.invalid(f"{field}.type", errors.INVALID_CONFIG, "local remotes are disabled on this server")
    for key, value in settings_.items():
        if not isinstance(key, str) or not re.match(r"^[a-z][a-z0-9_]*$", key) or len(key) > MAX_FIELD_NAME:
            raise errors.invalid(f"{field}.{key}", errors.INVALID_CONFIG, "setting names are rclone option names")
        if not isinstance(value, str | int | float | bool) or value is None:
            raise errors.invalid(f"{field}.{key}", errors.INVALID_CONFIG, "must be a string, number or boolean")
    return settings_


@transaction.atomic
def add_job_config(resource: Resource, config: object) -> None:
    """Merge remotes into a resource's config: same name replaces, null removes."""
    if not isinstance(config, dict) or not config:
        raise errors.invalid("config", errors.INVALID_CONFIG, "must be a non-empty object of remote name -> settings")
    size = len(json.dumps(config, separators=(",", ":")))
    if size > settings.CONFIGS_MAX_BYTES:
        raise errors.invalid("config", errors.INVALID_CONFIG, f"at most {settings.CONFIGS_MAX_BYTES} bytes")
    checked = {name: _check_remote(name, value) for name, value in config.items()}

    # Lock the resource row so that two merges of the same resource apply one after the other.
    Resource.objects.select_for_update().filter(pk=resource.pk).first()
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
