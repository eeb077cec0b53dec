"""No default SECRET_KEY: settings refuse to load without a strong, unpublished key, and development keys are
per checkout, made only by `make run`/`make setup` (python -m pointscene.keys), never by settings.

Each case imports the settings in a fresh interpreter with a clean environment, as a deployment would start.
"""

import os
import re
import secrets
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from pointscene.keys import KNOWN_PUBLISHED_SECRET_KEYS

ROOT = Path(__file__).resolve().parent.parent.parent
SETUP = "import django; django.setup(); from django.conf import settings; print(len(settings.SECRET_KEY))"
OLD_DEFAULT = "dev-only-insecure-secret-key-set-SECRET_KEY-in-production"


def strong_key() -> str:
    return secrets.token_urlsafe(50)


def start(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    """Imports the settings with only `env` (plus what any process needs) set; VAR_DIR is a private folder."""
    clean = {"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "pointscene.settings", "DEBUG": "0"}
    clean |= {"VAR_DIR": str(tmp_path / "var"), "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}
    clean |= env
    return subprocess.run(
        [sys.executable, "-c", SETUP], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60
    )


def refused(done: subprocess.CompletedProcess) -> str:
    """The ImproperlyConfigured line of a failed start."""
    assert done.returncode != 0, done.stdout
    [line] = [line for line in done.stderr.splitlines() if line.startswith("django.core.exceptions.Improperly")]
    assert "SECRET_KEY" in line
    assert "secrets.token_urlsafe(50)" in line  # says how to make one
    return line


def env_example_placeholder() -> str:
    [value] = re.findall(r"^SECRET_KEY=(.*)$", (ROOT / ".env.example").read_text(), re.MULTILINE)
    return value


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "   ",
        OLD_DEFAULT,
        "collectstatic-build-step-only",
        "x" * 60,
        "django-insecure-" + secrets.token_urlsafe(50),
        secrets.token_urlsafe(30),  # 40 characters
    ],
    ids=["unset", "empty", "blank", "old-default", "dockerfile-build-value", "one-char", "django-insecure", "short"],
)
def test_it_refuses_to_start_without_a_strong_unpublished_key(tmp_path, value):
    env = {} if value is None else {"SECRET_KEY": value}

    line = refused(start(tmp_path, **env))

    if value and value.strip():
        assert value not in line


def test_it_refuses_the_env_example_placeholder(tmp_path):
    refused(start(tmp_path, SECRET_KEY=env_example_placeholder()))


def test_it_starts_with_a_strong_key(tmp_path):
    done = start(tmp_path, SECRET_KEY=strong_key())

    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "var" / "secret-key").exists()


def test_it_refuses_a_published_or_weak_fallback_key(tmp_path):
    line = refused(start(tmp_path, SECRET_KEY=strong_key(), SECRET_KEY_FALLBACKS=f"{strong_key()},{OLD_DEFAULT}"))

    assert "SECRET_KEY_FALLBACKS" in line
    assert start(tmp_path, SECRET_KEY=strong_key(), SECRET_KEY_FALLBACKS=strong_key()).returncode == 0


def test_it_reads_the_key_from_secret_key_file_and_refuses_a_missing_one(tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text(strong_key() + "\n")

    assert start(tmp_path, SECRET_KEY_FILE=str(key_file)).returncode == 0
    refused(start(tmp_path, SECRET_KEY_FILE=str(tmp_path / "missing")))
    key_file.write_text(OLD_DEFAULT)
    refused(start(tmp_path, SECRET_KEY_FILE=str(key_file)))


def make_dev_key(tmp_path: Path) -> Path:
    done = subprocess.run(
        [sys.executable, "-m", "pointscene.keys"],
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], "VAR_DIR": str(tmp_path / "var")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return Path(done.stdout.strip())


def test_it_makes_one_private_development_key_per_checkout(tmp_path):
    path = make_dev_key(tmp_path)
    key = path.read_text()

    assert path == tmp_path / "var" / "secret-key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(key) >= 50
    assert make_dev_key(tmp_path) == path
    assert path.read_text() == key  # made once, then kept
    other = tmp_path / "other-checkout"
    other.mkdir()
    assert make_dev_key(other).read_text() != key


def test_it_uses_the_development_key_only_when_asked_and_never_makes_one(tmp_path):
    refused(start(tmp_path, DEBUG="1"))
    assert not (tmp_path / "var" / "secret-key").exists()  # settings never generate a key

    path = make_dev_key(tmp_path)

    refused(start(tmp_path))  # DEBUG=0: a production start never picks up a key lying in var/
    assert start(tmp_path, DEBUG="1").returncode == 0
    assert start(tmp_path, SECRET_KEY_FILE=str(path)).returncode == 0


# --- the list of published values stays honest

# SECRET_KEY (or _FALLBACKS) given a literal: `NAME=value` (shell, .env, Dockerfile), `NAME: "value"` and a YAML
# `NAME: value` line, `"NAME": "value"` (dicts, JSON), `NAME = "value"` (Python), `env_str("NAME", "value")`.
_NAME = r"""\bSECRET_KEY(?:_FALLBACKS)?"""
_QUOTED = r"""(?:"(?P<dq>[^"]*)"|'(?P<sq>[^']*)')(?=\s*(?:[,)}\]#\\]|$))"""
ASSIGNMENTS = [
    re.compile(rf"""{_NAME}=(?:{_QUOTED}|(?P<bare>[^\s"'\\()]+)(?=\s|\\|$))"""),
    re.compile(rf"""{_NAME}["']?\s*:\s*{_QUOTED}"""),
    re.compile(rf"""^\s*{_NAME}:\s*(?P<bare>[^\s"'#()]+)\s*(?:#.*)?$"""),
    re.compile(rf"""{_NAME}\s*=\s*{_QUOTED}"""),
    re.compile(rf"""\(\s*["']SECRET_KEY(?:_FALLBACKS)?["']\s*,\s*{_QUOTED}"""),
]
# This file spells the patterns out in its comments.
NOT_SCANNED = {Path(__file__).resolve()}


def tracked_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout.decode()
    return [ROOT / name for name in listed.split("\0") if name and (ROOT / name).is_file()]


def published_values() -> dict[str, str]:
    """Every literal SECRET_KEY value in the repository's files -> where it was found."""
    found = {}
    for path in tracked_files():
        if path.resolve() in NOT_SCANNED:
            continue
        try:
            text = path.read_text()
        except (UnicodeDecodeError, OSError):
            continue
        for number, line in enumerate(text.splitlines(), 1):
            for pattern in ASSIGNMENTS:
                for match in pattern.finditer(line):
                    value = next((v for v in match.groups() if v is not None), "")
                    # Empty placeholders and interpolations (${...}, $(...)) publish nothing.
                    if value.startswith(("$", "{")):
                        continue
                    for part in filter(None, map(str.strip, value.split(","))):  # SECRET_KEY_FALLBACKS lists several
                        found[part] = f"{path.relative_to(ROOT)}:{number}"
    return found


def test_it_knows_every_secret_key_value_published_in_the_repository():
    values = published_values()

    assert OLD_DEFAULT in values or OLD_DEFAULT in KNOWN_PUBLISHED_SECRET_KEYS
    unknown = {value: where for value, where in values.items() if value not in KNOWN_PUBLISHED_SECRET_KEYS}
    assert unknown == {}, "add these to pointscene/keys.py KNOWN_PUBLISHED_SECRET_KEYS (or remove them)"


def test_it_gives_no_secret_a_default_in_settings():
    source = (ROOT / "pointscene" / "settings.py").read_text()

    assert OLD_DEFAULT not in source
    for name in ("SECRET_KEY", "SECRET_KEY_FILE", "SECRET_KEY_FALLBACKS"):
        assert not re.search(rf"""env_\w+\(\s*"{name}"\s*,""", source), f"{name} has a default"
