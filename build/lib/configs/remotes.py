"""The rules for one remote's settings: which types and options a tenant may use, which are required, which are
secret, and which would let a remote reach the server itself (its disk, its network, its cloud identity).

Types and option names come from the installed rclone, so a config is checked against the engine that will run it;
what each option may do comes from the reviewed allowlist (configs/allowlist.py, configs/rclone_options.toml):
an option nobody classified is refused. `acc` is ours (served to rclone by the worker) and is described here.
These rules run when a config is stored and again on the worker before each run (jobs.sync.rclone), so a config stored
under looser settings, or before an option was reclassified, cannot run.
"""

import json
import re
from datetime import datetime
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError

from configs import allowlist, rclone
from pointscene.core import errors
from pointscene.core.addresses import NotAllowed, check_public, is_host_part, parse_endpoint
from pointscene.core.egress import parse_allowances

# Our own remote type: an Autodesk Construction Cloud project, served to rclone by the worker.
ACC_OPTIONS = {
    "token": rclone.Option("token", True, False, False, ""),
    "hub_id": rclone.Option("hub_id", True, False, False, ""),
    "project_id": rclone.Option("project_id", True, False, False, ""),
    "client_id": rclone.Option("client_id", False, False, False, ""),
    "client_secret": rclone.Option("client_secret", False, False, False, ""),
    "description": rclone.Option("description", False, False, True, ""),
}
ACC_CLASSES = {
    "token": "secret",
    "hub_id": "safe",
    "project_id": "safe",
    "client_id": "safe",
    "client_secret": "secret",
    "description": "safe",
}
# Names clients use for an option that rclone names differently (the contract's dropbox example).
ALIASES = {"dropbox": {"app_key": "client_id", "app_secret": "client_secret"}}
# Options a tenant must set to exactly these values: oracle's every other auth provider (and its default, env_auth)
# signs in with the worker's own environment, config files or instance metadata.
REQUIRED_VALUES = {("oracleobjectstorage", "provider"): ("no_auth",)}
_FALSE = {"", "0", "f", "false", "n", "no", "off"}  # rclone's ParseBool falsy values, and unset
# Words of option names that hold secrets; the fallback for options the allowlist does not (yet) classify.
_SECRET_WORDS = {"secret", "token", "password", "pass", "credentials", "cookie", "cookies", "session", "pem"}
_OPTION_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
MAX_VALUE_CHARS = 16 * 1024
# Types whose options have a token but that can sign in without one.
TOKEN_ALTERNATIVES = {
    "drive": ("service_account_credentials", "service_account_file"),
    "google cloud storage": ("service_account_credentials", "service_account_file"),
}
# The oauth2 expiry as Go writes and reads it (RFC 3339, with an offset).
_RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$")
# What a tenant is told when a setting would reach the server itself; the same for every such setting.
NOT_ALLOWED = "not allowed on this server"
# Every refused destination of a remote reads the same (whatever the reason, so it maps nothing) and names the switch.
DESTINATION_NOT_ALLOWED = (
    "destination not allowed (public addresses only; CONFIGS_ALLOW_LOCAL_REMOTES=1 allows private and loopback ones "
    "on single-tenant installs)"
)

# rclone: letters, digits, _ - . + @ and space; not starting with - or space, not ending with space.
REMOTE_NAME = re.compile(r"^[\w.+@][\w.+@ -]{0,62}(?<! )$")


def options_for(remote_type: str) -> dict[str, rclone.Option] | None:
    if remote_type == "acc":
        return ACC_OPTIONS
    backend = rclone.backends().get(remote_type)
    return backend.options if backend else None


def option_class(remote_type: str, option: str) -> str | None:
    """The option's class in the reviewed allowlist (None: not classified, so not accepted)."""
    if remote_type == "acc":
        return ACC_CLASSES.get(option)
    return allowlist.option_class(remote_type, option)


def transport(remote_type: str) -> str | None:
    if remote_type == "acc":
        return "http"
    found = allowlist.backend(remote_type)
    return found.transport if found else None


def is_secret(remote_type: str, option: str) -> bool:
    """Secret options are stored like the rest but never shown again: passwords, keys, tokens, signed URLs."""
    known = options_for(remote_type) or {}
    if option in known and known[option].is_password:
        return True
    kind = option_class(remote_type, option)
    if kind is not None and kind != "unreviewed":
        return kind in allowlist.SECRET_CLASSES
    words = option.split("_")
    if words[-1] in ("url", "id", "file", "path"):
        return False
    return words[-1] == "key" or bool(_SECRET_WORDS.intersection(words))


def canonical(remote_type: str, option: str) -> str:
    return ALIASES.get(remote_type, {}).get(option, option)


def check_remote(name: str, value: object, field: str) -> dict | None:
    """The remote's settings as they will be stored (aliases resolved), or None for "remove it".
    Raises a coded ValidationError naming the offending setting."""
    if not REMOTE_NAME.match(name):
        raise errors.invalid(
            field,
            errors.INVALID_CONFIG,
            "remote names are 1-64 letters, digits, _ - . + @ or spaces, not starting with - or space",
        )
    if value is None:
        return None
    if not isinstance(value, dict):
        raise errors.invalid(field, errors.INVALID_CONFIG, "must be an object of settings with a type, or null")
    remote_type = value.get("type")
    if not isinstance(remote_type, str) or not remote_type:
        raise errors.invalid(f"{field}.type", errors.INVALID_CONFIG, "a remote type is required, such as drive or s3")
    try:
        known = options_for(remote_type)
    except rclone.RcloneMissing as exc:
        raise ValidationError(str(exc), code=errors.INVALID_CONFIG) from None
    if known is None:
        raise errors.invalid(
            f"{field}.type", errors.INVALID_CONFIG, f"{remote_type!r} is not a remote type rclone knows"
        )
    allow_local = settings.CONFIGS_ALLOW_LOCAL_REMOTES
    kind = transport(remote_type)
    if kind is None or (kind not in allowlist.OPEN_TRANSPORTS and not allow_local):
        raise errors.invalid(
            f"{field}.type",
            errors.INVALID_CONFIG,
            f"{remote_type} remotes are {NOT_ALLOWED} (they would reach this server's own disk or network "
            "outside its egress checks; CONFIGS_ALLOW_LOCAL_REMOTES=1 allows them on single-tenant installs)",
        )

    settings_ = {"type": remote_type}
    for key, option_value in value.items():
        if key == "type":
            continue
        path = f"{field}.{key}"
        if not isinstance(key, str) or not _OPTION_NAME.match(key):
            raise errors.invalid(path, errors.INVALID_CONFIG, "setting names are rclone option names (snake_case)")
        option = canonical(remote_type, key)
        if option not in known:
            raise errors.invalid(path, errors.INVALID_CONFIG, f"{remote_type} remotes have no setting {key!r}")
        if option in settings_:
            raise errors.invalid(path, errors.INVALID_CONFIG, f"{key!r} is given twice (as {option!r} too)")
        settings_[option] = _check_value(option_value, path)
        _check_allowed(remote_type, option, settings_[option], path, allow_local)

    for option in known.values():
        if option.required and not settings_.get(option.name):
            raise errors.invalid(f"{field}.{option.name}", errors.REQUIRED, f"{remote_type} remotes need {option.name}")
    for (kind_, option), values in REQUIRED_VALUES.items():
        if kind_ == remote_type and settings_.get(option) not in values and not allow_local:
            raise errors.invalid(
                f"{field}.{option}",
                errors.INVALID_CONFIG,
                f"must be {' or '.join(values)} on this server (CONFIGS_ALLOW_LOCAL_REMOTES=1 allows the others)",
            )
    _check_type_rules(remote_type, settings_, known, field)
    return settings_


def _check_value(value: object, path: str) -> str:
    # rclone's config holds strings; numbers and booleans are written the way rclone parses them.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if not isinstance(value, str):
        raise errors.invalid(path, errors.INVALID_CONFIG, "must be a string, number or boolean")
    if len(value) > MAX_VALUE_CHARS:
        raise errors.invalid(path, errors.INVALID_CONFIG, f"at most {MAX_VALUE_CHARS} characters")
    if any(ord(c) < 32 for c in value):
        raise errors.invalid(path, errors.INVALID_CONFIG, "must not contain line breaks or control characters")
    if "%(" in value:
        # rclone's config reader expands %(name)s references to other settings.
        raise errors.invalid(path, errors.INVALID_CONFIG, "must not contain %( (rclone would expand it)")
    if value != value.strip():
        # rclone's config file trims them; the remote would get a different value than the one given.
        raise errors.invalid(path, errors.INVALID_CONFIG, "must not start or end with spaces")
    return value


def _check_allowed(remote_type: str, option: str, value: str, path: str, allow_local: bool) -> None:
    """The option's class decides (configs/allowlist.py); refusals never say more about the server than that."""
    kind = option_class(remote_type, option)
    if kind in ("program", "internal"):
        raise errors.invalid(
            path,
            errors.INVALID_CONFIG,
            f"{option} is {NOT_ALLOWED} (it would run a program or replace a setting the service makes itself)",
        )
    if kind is None or kind == "unreviewed":
        raise errors.invalid(path, errors.INVALID_CONFIG, f"{option} is {NOT_ALLOWED} (not yet reviewed for tenants)")
    known = (options_for(remote_type) or {}).get(option)
    if known is not None and known.exclusive and known.examples and value not in known.examples:
        raise errors.invalid(path, errors.INVALID_CONFIG, f"must be one of {', '.join(map(repr, known.examples))}")
    if kind == "hostpart" and value and not is_host_part(value):
        raise errors.invalid(
            path,
            errors.INVALID_CONFIG,
            "must be letters, digits, hyphens and dots only (it becomes part of a host name)",
        )
    if allow_local:
        return
    if kind in allowlist.LOCAL_CLASSES and value.strip().lower() not in _FALSE:
        raise errors.invalid(
            path,
            errors.INVALID_CONFIG,
            f"{option} is {NOT_ALLOWED} (it would use this server's own disk or identity; "
            "CONFIGS_ALLOW_LOCAL_REMOTES=1 allows it on single-tenant installs)",
        )
    if kind in allowlist.ADDRESS_CLASSES and value:
        try:
            host = parse_endpoint(value) if not _operator_exception(value) else None
            if host is not None:
                check_public(host)
        except NotAllowed:
            raise errors.invalid(
                path,
                errors.INVALID_CONFIG,
                f"{DESTINATION_NOT_ALLOWED}: a public host name or address, written plainly "
                "(scheme://host:port/path or host:port)",
            ) from None


def _operator_exception(value: str) -> bool:
    """Whether an endpoint is one the operator let through by exact host:port (JOBS_EGRESS_ALLOW)."""
    parts = urlsplit(value if "://" in value else f"//{value}")
    try:
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme.lower(), 0)
    except ValueError:
        return False
    return ((parts.hostname or "").lower(), port) in parse_allowances(settings.JOBS_EGRESS_ALLOW)


def _check_type_rules(remote_type: str, settings_: dict, known: dict, field: str) -> None:
    if "token" in settings_:
        check_token(settings_["token"], f"{field}.token")
    elif (
        "token" in known
        and "client_id" in known
        and not any(settings_.get(o) for o in TOKEN_ALTERNATIVES.get(remote_type, ()))
    ):
        # OAuth backends need a token: a server cannot open a browser to sign the user in.
        raise errors.invalid(
            f"{field}.token", errors.REQUIRED, f"{remote_type} remotes need a token (oauth2 token JSON)"
        )
    if remote_type == "s3" and settings_.get("env_auth", "false") != "true":
        for option in ("access_key_id", "secret_access_key"):
            if not settings_.get(option):
                raise errors.invalid(f"{field}.{option}", errors.REQUIRED, f"s3 remotes need {option}")
    if remote_type == "acc":
        for option in ("hub_id", "project_id"):
            if not settings_[option].startswith("b."):
                raise errors.invalid(f"{field}.{option}", errors.INVALID_CONFIG, f"{option} must start with 'b.'")
    if remote_type == "crypt":
        wrapped = settings_.get("remote", "")
        name, _, path = wrapped.partition(":")
        if (
            not wrapped
            or wrapped.startswith(":")
            or ":" not in wrapped
            or not REMOTE_NAME.match(name)
            # The service's own storage and climbing out of a path are for workflows' checked locations only.
            or name in ("resource", "resource-storage")
            or ".." in path.replace("\\", "/").split("/")
        ):
            raise errors.invalid(
                f"{field}.remote", errors.INVALID_CONFIG, "must name another remote of this resource as name:path"
            )


def check_token(value: str, path: str) -> dict:
    """An oauth2 token as rclone keeps it: JSON with access_token, and optionally token_type, refresh_token and
    an RFC 3339 expiry."""
    try:
        token = json.loads(value)
    except ValueError:
        token = None
    if not isinstance(token, dict) or not isinstance(token.get("access_token"), str) or not token["access_token"]:
        raise errors.invalid(path, errors.INVALID_CONFIG, "must be oauth2 token JSON with an access_token")
    for key in ("token_type", "refresh_token", "expiry"):
        if key in token and not isinstance(token[key], str):
            raise errors.invalid(path, errors.INVALID_CONFIG, f"the token's {key} must be a string")
    if token.get("expiry"):
        try:
            if not _RFC3339.match(token["expiry"]):
                raise ValueError
            datetime.fromisoformat(token["expiry"])
        except ValueError:
            raise errors.invalid(
                path, errors.INVALID_CONFIG, "the token's expiry must be an RFC 3339 time, e.g. 2026-12-01T09:30:00Z"
            ) from None
    return token


def public_view(settings_: dict) -> dict:
    """What getJobConfig shows of a remote: type, non-secret settings, and which secrets are set."""
    remote_type = settings_["type"]
    known = options_for(remote_type) or {}
    shown = {k: v for k, v in settings_.items() if k != "type" and not is_secret(remote_type, k)}
    # The type's main secrets, set or not, plus any other secret that is set.
    names = {o.name for o in known.values() if not o.advanced and not o.provider and is_secret(remote_type, o.name)}
    names |= {k for k in settings_ if k != "type" and is_secret(remote_type, k)}
    secrets_ = [{"name": n, "isSet": bool(settings_.get(n))} for n in sorted(names)]
    return {"type": remote_type, "settings": shown, "secrets": secrets_}
