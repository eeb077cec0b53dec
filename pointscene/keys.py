"""Where the Fernet keys for remote configs come from."""

from pathlib import Path

from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

DEV_KEY_FILE = "config-encryption.dev-key"


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
        var_dir.mkdir(parents=True, exist_ok=True)
        key = Fernet.generate_key()
        # O_EXCL: two processes starting at once must not write two different keys.
        try:
            with path.open("xb") as fh:
                path.chmod(0o600)
                fh.write(key)
        except FileExistsError:
            pass
    return [path.read_text().strip()]
