"""Where the keys come from: Django's SECRET_KEY (and its fallbacks), and the Fernet keys for remote configs.

Nothing here has a default key. Development keys are generated once per checkout into VAR_DIR (git-ignored,
owner-only), and only `make run`/`make setup` (`python -m pointscene.keys`) make them for SECRET_KEY: settings
never generate one, so a deployment that forgets SECRET_KEY stops instead of running with a throwaway key.
"""

import os
import secrets
import sys
from pathlib import Path

from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

DEV_KEY_FILE = "config-encryption.dev-key"
DEV_SECRET_KEY_FILE = "secret-key"
SECRET_KEY_MIN_LENGTH = 50
# Every SECRET_KEY value ever published with this code (old defaults, build-step placeholders, documentation
# examples): anyone can sign with them, so they are refused as keys and as fallbacks.
# tests/security/test_secret_key.py greps the repository for SECRET_KEY values to keep this list complete.
KNOWN_PUBLISHED_SECRET_KEYS = frozenset(
    {
        "dev-only-insecure-secret-key-set-SECRET_KEY-in-production",
        "collectstatic-build-step-only",
        "changeme",
        "change-me",
        "secret",
        "s3cret",
    }
)
HOW_TO_MAKE_ONE = (
    "Generate one with: python -c 'import secrets; print(secrets.token_urlsafe(50))' and set SECRET_KEY "
    "(or SECRET_KEY_FILE, a file holding it). For local development, `make run` and `make setup` keep one in "
    "var/secret-key (use it with SECRET_KEY_FILE=var/secret-key or DEBUG=1)."
)


def check_secret_key(value: str, name: str = "SECRET_KEY") -> str:
    """The key if it is long, varied and not published; ImproperlyConfigured (never quoting it) otherwise."""
    key = value.strip()
    if not key:
        raise ImproperlyConfigured(f"{name} is empty. {HOW_TO_MAKE_ONE}")
    if key in KNOWN_PUBLISHED_SECRET_KEYS or key.startswith("django-insecure-"):
        raise ImproperlyConfigured(f"{name} is a value published in source code or docs. {HOW_TO_MAKE_ONE}")
    # Django's own deployment check (security.W009) asks for the same length and variety.
    if len(key) < SECRET_KEY_MIN_LENGTH or len(set(key)) < 5:
        raise ImproperlyConfigured(
            f"{name} is too weak: it needs {SECRET_KEY_MIN_LENGTH}+ characters, not all alike. {HOW_TO_MAKE_ONE}"
        )
    return key


def load_secret_key(from_env: str, key_file: str, var_dir: Path, debug: bool) -> str:
    """SECRET_KEY from the environment, else from SECRET_KEY_FILE, else (DEBUG only) the checkout's var/secret-key.

    A missing key is an error: the development key is read only if it already exists, never made here.
    """
    if from_env.strip():
        return check_secret_key(from_env)
    if key_file:
        try:
            return check_secret_key(Path(key_file).read_text(), "SECRET_KEY_FILE")
        except OSError as exc:
            raise ImproperlyConfigured(
                f"SECRET_KEY_FILE cannot be read ({type(exc).__name__}). {HOW_TO_MAKE_ONE}"
            ) from None
    dev_file = var_dir / DEV_SECRET_KEY_FILE
    if debug and dev_file.is_file():
        return check_secret_key(dev_file.read_text(), str(dev_file))
    raise ImproperlyConfigured(f"SECRET_KEY is not set. {HOW_TO_MAKE_ONE}")


def load_secret_key_fallbacks(from_env: list[str]) -> list[str]:
    """Older keys that still verify signatures (rotation); held to the same rules as the key itself."""
    return [check_secret_key(key, "SECRET_KEY_FALLBACKS") for key in from_env]


def _create_private(path: Path, content: bytes) -> None:
    """Writes `content` to a new owner-only file; if another process made it first, theirs stays.

    O_EXCL: two processes starting at once must not write two different keys.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "wb") as fh:
        fh.write(content)


def ensure_dev_secret_key(var_dir: Path) -> Path:
    """The checkout's development SECRET_KEY file (var/secret-key), made on first use; returns its path."""
    path = var_dir / DEV_SECRET_KEY_FILE
    if not path.exists():
        # URL-safe (no `$` or quotes to trip a shell or compose file), 64 characters: above the 50 Django asks for.
        _create_private(path, secrets.token_urlsafe(48).encode())
    return path


def load_config_keys(from_env: list[str], var_dir: Path, allow_dev_key: bool) -> list[str]:
    """Keys from the environment (newest first); otherwise a local development key kept in var/.

    The development key is generated once with owner-only permissions, and var/ is git-ignored, so a
    checkout never carries a key.
    """
    if from_env:
        for key in from_env:
            try:
                Fernet(key)
            except (ValueError, TypeError):
                raise ImproperlyConfigured("CONFIG_ENCRYPTION_KEYS holds a value that is not a Fernet key") from None
        return from_env
    if not allow_dev_key:
        raise ImproperlyConfigured("CONFIG_ENCRYPTION_KEYS is not set")
    path = var_dir / DEV_KEY_FILE
    if not path.exists():
        _create_private(path, Fernet.generate_key())
    return [path.read_text().strip()]


def main() -> None:
    """`python -m pointscene.keys`: makes the checkout's development SECRET_KEY file and prints its path."""
    var_dir = Path(os.environ.get("VAR_DIR") or Path(__file__).resolve().parent.parent / "var")
    sys.stdout.write(f"{ensure_dev_secret_key(var_dir)}\n")


if __name__ == "__main__":
    main()
