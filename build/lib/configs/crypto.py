"""Fernet encryption of remote settings at rest. Keys come from settings.CONFIG_ENCRYPTION_KEYS, newest first."""

import json
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


class DecryptionFailed(Exception):
    """No configured key opens this value. Carries no ciphertext and no plaintext."""


@cache
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(k) for k in keys])


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.CONFIG_ENCRYPTION_KEYS))


def encrypt_json(value: object) -> str:
    return fernet().encrypt(json.dumps(value, separators=(",", ":")).encode()).decode()


def decrypt_json(token: str) -> object:
    try:
        return json.loads(fernet().decrypt(token.encode()))
    except InvalidToken:
        raise DecryptionFailed("stored remote settings cannot be decrypted with the configured keys") from None
