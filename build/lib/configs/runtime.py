"""Everything a run needs of its resource's remotes, in one place: loading and decrypting them (with the remotes
a crypt wraps), checking them against today's rules, the built-in `resource:` remote, the secret values to scrub
from logs, rclone's config file, and storing back tokens that rclone refreshed while it ran.

The worker's step (jobs.sync.rclone) holds one RunRemotes for the step's duration; plaintext settings live only in
it, in that worker's memory.
"""

import json
import logging
import re
from collections.abc import Callable, Iterable
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import FileSystemStorage, storages

from configs import rclone, remotes
from configs.services import remotes_for_run, store_refreshed_token
from pointscene.core.storage import resource_area

log = logging.getLogger(__name__)

BUILTIN = "resource"


class RemoteNotRunnable(Exception):
    """A remote the run names is missing, or no longer passes the rules; the message is safe to show the tenant."""


class RunRemotes:
    """The decrypted remotes one run uses, by name (the built-in `resource` among them when named)."""

    def __init__(self, resource_id: int, stored: dict[str, dict]) -> None:
        self.resource_id = resource_id
        self.stored = stored

    @classmethod
    def load(cls, resource_id: int, names: Iterable[str]) -> "RunRemotes":
        """The named remotes and the remotes they wrap (crypt over another remote), decrypted and checked."""
        names = set(names)
        # The service's own storage: trusted, so not held to the rules for tenants' remotes below.
        builtin = resource_remote(resource_id) if BUILTIN in names else {}
        wanted, found = names - {BUILTIN}, {}
        while wanted - set(found):
            missing = wanted - set(found)
            loaded = remotes_for_run(resource_id, missing)
            for name in sorted(missing):
                if name not in loaded:
                    raise RemoteNotRunnable(
                        f"resource {resource_id} has no remote named {name!r} (addJobConfig stores them)"
                    )
            found.update(loaded)
            for settings_ in loaded.values():
                if remotes.transport(settings_["type"]) == "wrapper":
                    wanted.add(settings_["remote"].split(":", 1)[0])
        for name, settings_ in found.items():
            check_runnable(name, settings_)
        return cls(resource_id, found | builtin)

    def secret_values(self) -> list[str]:
        """Every secret value and the parts of tokens that must not reach a log, longest first."""
        return secret_values(self.stored)

    def service_endpoints(self) -> list[str]:
        """Endpoints the service itself vouches for among these remotes: its own S3 storage behind `resource:`."""
        endpoint = self.stored.get("resource-storage", {}).get("endpoint")
        return [endpoint] if endpoint else []

    def write_config(self, path: Path, sections: dict[str, dict], password: str) -> None:
        """rclone's config file for `sections` (these remotes as the step adjusted them), encrypted with
        `password`: the settings are never on disk in the clear."""
        rclone.write_encrypted_config(path, {name: rclone_options(s) for name, s in sections.items()}, password)

    def store_refreshed_tokens(self, path: Path, password: str, note: Callable[[str], None]) -> None:
        """Keeps the tokens rclone refreshed during the run (read back from its config file), unless the tenant
        changed the remote meanwhile; `note` gets a line for the run's log about each."""
        if not path.exists():
            return
        try:
            after = rclone.read_encrypted_config(path, password)
        except (ValueError, OSError) as exc:
            log.error("could not read rclone's config back: %s", exc)
            note("could not read rclone's config back; a token it refreshed may be lost")
            return
        for name, settings_ in self.stored.items():
            old, new = settings_.get("token"), after.get(name, {}).get("token")
            if not (old and new and new != old):
                continue
            if store_refreshed_token(self.resource_id, name, old, new):
                note(f"remote {name!r}: rclone refreshed its token; the new one is stored (encrypted)")
            else:
                note(
                    f"remote {name!r}: rclone refreshed its token, but the remote was changed meanwhile; "
                    "kept the newer settings"
                )


def check_runnable(name: str, settings_: dict) -> None:
    """The stored remote still passes the rules as they are now (a config stored under looser settings, or before an
    option was reclassified, does not run); where it connects is checked again at connect time by the egress proxy."""
    try:
        remotes.check_remote(name, settings_, f"remote {name!r}")
    except ValidationError as exc:
        detail = next(iter(exc.message_dict.values()))[0] if hasattr(exc, "error_dict") else exc.messages[0]
        raise RemoteNotRunnable(f"remote {name!r}: {detail}") from None


def resource_remote(resource_id: int) -> dict[str, dict]:
    """The built-in `resource:` remote: the resource's area in the service's own storage (a folder under
    MEDIA_ROOT, or a prefix of the service's S3 bucket). Returned as rclone sections: an alias rooted at the
    area (paths cannot climb out: workflows refuse `..`), plus the S3 remote it points into."""
    storage = storages["default"]
    area = resource_area(resource_id).rstrip("/")
    if isinstance(storage, FileSystemStorage):
        root = Path(storage.location) / area
        root.mkdir(parents=True, exist_ok=True)
        return {BUILTIN: {"type": "alias", "remote": str(root)}}
    options = settings.STORAGES["default"].get("OPTIONS", {})
    s3 = {"type": "s3", "provider": "Other" if options.get("endpoint_url") else "AWS"}
    for ours, theirs in (("endpoint", "endpoint_url"), ("region", "region_name"), ("access_key_id", "access_key")):
        if options.get(theirs):
            s3[ours] = options[theirs]
    if options.get("secret_key"):
        s3["secret_access_key"] = options["secret_key"]
    else:
        s3["env_auth"] = "true"
    prefix = "/".join(p for p in (options["bucket_name"], options.get("location", "").strip("/"), area) if p)
    return {"resource-storage": s3, BUILTIN: {"type": "alias", "remote": f"resource-storage:{prefix}"}}


def rclone_options(settings_: dict) -> dict[str, str]:
    """A remote's settings as rclone's config file holds them: password options obscured, the rest as they are."""
    known = remotes.options_for(settings_["type"]) or {}
    return {
        key: rclone.obscure(value) if key in known and known[key].is_password else value
        for key, value in settings_.items()
    }


def secret_values(stored: dict[str, dict]) -> list[str]:
    """Every secret value of `stored` and the parts of tokens that must not reach a log."""
    values = set()
    for settings_ in stored.values():
        for key, value in settings_.items():
            if not value or not remotes.is_secret(settings_["type"], key):
                continue
            values.add(value)
            if key == "token":
                token = json.loads(value)
                values.update(v for k, v in token.items() if k.endswith("token") and isinstance(v, str) and v)
    # Longest first, so a token is replaced whole before a value it contains.
    return sorted((v for v in values if len(v) >= 4), key=len, reverse=True)


def redactor(values: list[str]) -> Callable[[str], str]:
    """A function that replaces each of `values` in a text with ***."""
    if not values:
        return lambda text: text
    pattern = re.compile("|".join(re.escape(v) for v in values))
    return lambda text: pattern.sub("***", text)
