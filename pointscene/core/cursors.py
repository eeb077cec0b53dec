"""The API's page cursors: opaque to clients, a version tag and whole numbers ("h1:<micros>:<id>") in URL-safe
base64 without padding. Each list owns its tag and what its numbers mean (jobs.history, jobs.job_list); this module
owns the format and its checks, so every list refuses a cursor it did not hand out in the same way."""

import base64
import binascii

from django.core.exceptions import ValidationError

from pointscene.core import errors

MAX_LENGTH = 100
_MAX_ID = 2**63 - 1  # a bigint primary key


def encode(version: str, *numbers: int) -> str:
    raw = ":".join([version, *map(str, numbers)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def refused(field: str) -> ValidationError:
    """The error of a cursor the API did not hand out, naming the argument it came in (`field`)."""
    return errors.invalid(field, errors.INVALID_CURSOR, "is not a cursor this API returned")


def decode(cursor: object, version: str, count: int, field: str) -> tuple[int, ...]:
    """The `count` numbers of a cursor handed out with `version`, the last a row id (1 to 2**63 - 1); anything else
    raises refused(field)."""
    if not isinstance(cursor, str) or len(cursor) > MAX_LENGTH:
        raise refused(field)
    try:
        tag, *parts = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii").split(":")
        numbers = tuple(int(part) for part in parts)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise refused(field) from None
    if tag != version or len(numbers) != count or not 0 < numbers[-1] <= _MAX_ID:
        raise refused(field)
    return numbers
