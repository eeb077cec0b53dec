"""The reviewed allowlist of rclone backends and options a tenant's remote may use: `configs/rclone_options.toml`.

Every option of every backend the pinned rclone knows is classified there by a person, from `rclone config
providers` (what it is, and what rclone does with it). What a class means, and who may use it:

    safe        a plain value that does not decide where rclone connects or what it reads (sizes, flags, names)
    secret      a credential: stored encrypted, never shown again
    address     a URL or host rclone connects to: parsed strictly; literal addresses must be public, names are
                checked where they are resolved, at connect time (pointscene.core.egress)
    secret_address  both (an SAS URL)
    hostpart    a value rclone pastes into a host name (a region, an account, a site): DNS-label characters only
    remote      names another remote of the same resource (crypt's `remote`)
    local       reads or writes the worker's disk or sockets              refused unless CONFIGS_ALLOW_LOCAL_REMOTES
    identity    uses the worker's own cloud identity or credentials      refused unless CONFIGS_ALLOW_LOCAL_REMOTES
    program     starts a program on the worker                           always refused
    internal    set by the service itself (the egress proxy)             always refused
    unreviewed  added by `manage.py rclone_options --write` from a newer rclone: refused until a person classifies it

Backends have a transport: `http` (all connections through rclone's HTTP client, which the step points at the
egress proxy), `dial` (sftp, ftp: their own TCP connections, through their socks_proxy option, which the step sets),
`wrapper` (over another remote of the resource), `local` (the worker's disk or memory) and `other` (their own
network stack, which no proxy setting reaches: smb, hdfs, storj). `local` and `other` types are refused unless
CONFIGS_ALLOW_LOCAL_REMOTES is on. A type the file does not list is refused.
"""

import re
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

DATA_FILE = Path(__file__).with_name("rclone_options.toml")
CLASSES = (
    "safe",
    "secret",
    "secret_address",
    "address",
    "hostpart",
    "remote",
    "local",
    "identity",
    "program",
    "internal",
    "unreviewed",
)
TRANSPORTS = ("http", "dial", "wrapper", "local", "other")
# Classes a tenant may always use, and those the single-tenant switch opens.
TENANT_CLASSES = frozenset({"safe", "secret", "secret_address", "address", "hostpart", "remote"})
SECRET_CLASSES = frozenset({"secret", "secret_address"})
ADDRESS_CLASSES = frozenset({"address", "secret_address"})
LOCAL_CLASSES = frozenset({"local", "identity"})
OPEN_TRANSPORTS = frozenset({"http", "dial", "wrapper"})


@dataclass(frozen=True)
class BackendRules:
    name: str
    transport: str
    options: dict[str, str]


@cache
def rules() -> dict[str, BackendRules]:
    """The reviewed file, parsed once per process."""
    data = tomllib.loads(DATA_FILE.read_text())
    found = {}
    for name, table in data.items():
        transport = table.get("transport")
        if transport not in TRANSPORTS:
            raise ValueError(f"{DATA_FILE.name}: [{name}] has transport {transport!r}, not one of {TRANSPORTS}")
        options = table.get("options", {})
        for option, kind in options.items():
            if kind not in CLASSES:
                raise ValueError(f"{DATA_FILE.name}: {name}.{option} has class {kind!r}, not one of {CLASSES}")
        found[name] = BackendRules(name=name, transport=transport, options=dict(options))
    return found


def backend(remote_type: str) -> BackendRules | None:
    return rules().get(remote_type)


def option_class(remote_type: str, option: str) -> str | None:
    found = rules().get(remote_type)
    return found.options.get(option) if found else None


# --- Drafting the file from a newer rclone (manage.py rclone_options --write). A draft is only a suggestion:
# new options are written as "unreviewed", with the suggested class in a comment for the reviewer.

_LOCAL_TRANSPORT = {"alias", "local", "union", "combine", "chunker", "hasher", "compress", "cache", "archive", "memory"}
_OTHER_TRANSPORT = {"smb", "hdfs", "storj", "tardigrade"}
_PROGRAM = {"ssh", "bearer_token_command", "password_command", "use_az"}
_INTERNAL = {"socks_proxy", "http_proxy"}
_IDENTITY = {
    "env_auth",
    "use_msi",
    "msi_object_id",
    "msi_client_id",
    "msi_mi_res_id",
    "use_emulator",
    "use_kerberos",
    "key_use_agent",
    "profile",
    "config_profile",
}
_LOCAL = {"unix_socket", "kerberos_ccache", "upstreams", "db_path", "chunk_path", "tmp_upload_path"}
_ADDRESS = {"host", "hostname", "namenode", "satellite_address", "auth", "proxy", "endpoint", "url"}
_HOSTPART = {"region", "account", "site", "zone"}
_SECRET_WORDS = {"secret", "token", "password", "pass", "credentials", "cookie", "cookies", "session", "pem"}
_SECRET_WORDS |= {"mnemonic", "passphrase", "otp", "2fa"}


def suggest_transport(remote_type: str) -> str:
    if remote_type in _LOCAL_TRANSPORT:
        return "local"
    if remote_type in _OTHER_TRANSPORT:
        return "other"
    if remote_type in ("sftp", "ftp"):
        return "dial"
    if remote_type == "crypt":
        return "wrapper"
    return "http"


def suggest_class(remote_type: str, option: str, is_password: bool) -> str:
    """A first guess from the option's name, for the reviewer; never used to accept anything."""
    words = option.split("_")
    if option in _PROGRAM or (option.endswith("_command") and remote_type != "sftp"):
        return "program"
    if option in _INTERNAL:
        return "internal"
    if option in _IDENTITY:
        return "identity"
    if option == "remote":
        return "remote" if remote_type == "crypt" else "local"
    if option in _LOCAL or (option.endswith(("_file", "_path")) and not is_password and option != "path_override"):
        return "local"
    if option == "sas_url":
        return "secret_address"
    if is_password or "customer_key" in option or "private_key" in option:
        return "secret"
    if option in _ADDRESS or (option.endswith(("_url", "_endpoint")) and not option.startswith("use_")):
        return "address"
    if option in _HOSTPART or (option == "tenant" and remote_type != "swift"):
        return "hostpart"
    if words[-1] not in ("url", "id", "file", "path") and (words[-1] == "key" or _SECRET_WORDS.intersection(words)):
        return "secret"
    return "safe"


_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(name: str) -> str:
    return name if _BARE_KEY.match(name) else f'"{name}"'


def _reviewed_lines() -> dict[tuple[str, str], str]:
    """The file's option lines as a person left them (with their `# why` comments), by (backend, option)."""
    found, table, options = {}, "", False
    for line in DATA_FILE.read_text().splitlines():
        if line.startswith("[") and line.endswith(".options]"):
            table, options = tomllib.loads(f"{line[:-9]}]\n").popitem()[0], True
        elif line.startswith("["):
            table, options = tomllib.loads(f"{line}\n").popitem()[0], False
        elif table and "=" in line and not line.startswith("#"):
            key = next(iter(tomllib.loads(line.split("#")[0])))
            if options or key == "transport":
                found[(table, key)] = line
    return found


def draft(providers: list[dict], current: dict[str, BackendRules]) -> tuple[str, list[str]]:
    """The data file for these `rclone config providers` backends: reviewed classes kept, new options added as
    unreviewed. Returns the text and the list of `type.option` that need a reviewer."""
    exists = DATA_FILE.exists()
    header = [line for line in DATA_FILE.read_text().splitlines()[:20] if line.startswith("#")] if exists else []
    reviewed_lines = _reviewed_lines() if exists else {}
    lines = list(header)
    new: list[str] = []
    for provider in sorted(providers, key=lambda p: p["Name"]):
        name = provider["Name"]
        known = current.get(name)
        transport = known.transport if known else suggest_transport(name)
        transport_line = reviewed_lines.get((name, "transport"), f'transport = "{transport}"')
        lines += ["", f"[{_key(name)}]", transport_line, "", f"[{_key(name)}.options]"]
        for option in sorted({o["Name"]: o for o in provider["Options"]}.values(), key=lambda o: o["Name"]):
            reviewed = known.options.get(option["Name"]) if known else None
            if reviewed and reviewed != "unreviewed":
                lines.append(reviewed_lines.get((name, option["Name"]), f'{_key(option["Name"])} = "{reviewed}"'))
            else:
                new.append(f"{name}.{option['Name']}")
                guess = suggest_class(name, option["Name"], bool(option.get("IsPassword")))
                lines.append(f'{_key(option["Name"])} = "unreviewed"  # suggested: {guess}')
    return "\n".join(lines) + "\n", new
