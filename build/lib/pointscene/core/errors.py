"""Stable error codes. Clients branch on these; never rename one."""

from django.core.exceptions import ValidationError

REQUIRED = "REQUIRED"
NOT_ALLOWED = "NOT_ALLOWED"
INVALID_CRON = "INVALID_CRON"
INVALID_INTERVAL = "INVALID_INTERVAL"
INVALID_TIMEZONE = "INVALID_TIMEZONE"
INVALID_WORKFLOW = "INVALID_WORKFLOW"
INVALID_CONFIG = "INVALID_CONFIG"
INVALID_VALUE = "INVALID_VALUE"
INVALID_PAGE = "INVALID_PAGE"
INVALID_CURSOR = "INVALID_CURSOR"
NOT_FOUND = "NOT_FOUND"
FORBIDDEN = "FORBIDDEN"
NOT_CANCELLABLE = "NOT_CANCELLABLE"


def invalid(field: str, code: str, message: str) -> ValidationError:
    """A ValidationError that names the offending argument (dotted path) and its stable code."""
    return ValidationError({field: [ValidationError(message, code=code)]})
