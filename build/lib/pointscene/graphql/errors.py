"""Domain errors become GraphQL errors whose extensions carry a stable `code` and the offending `field`."""

import functools
from collections.abc import Callable
from typing import Any

from django.core.exceptions import ValidationError
from graphql import GraphQLError

from pointscene.core import errors
from pointscene.core.access import Forbidden, NotFound

UNAUTHENTICATED = "UNAUTHENTICATED"
BAD_REQUEST = "BAD_REQUEST"
GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
INTERNAL_ERROR = "INTERNAL_ERROR"
RATE_LIMITED = "RATE_LIMITED"
# A document over a parser, depth, alias or cost limit (HTTP 400); extensions.limit names the limit.
QUERY_TOO_COMPLEX = "QUERY_TOO_COMPLEX"
# A request body over GRAPHQL_MAX_BODY_BYTES (HTTP 413), refused before it is read.
REQUEST_TOO_LARGE = "REQUEST_TOO_LARGE"


class ApiError(GraphQLError):
    def __init__(self, message: str, code: str, field: str | None = None, **extra: Any) -> None:
        extensions = {"code": code, **extra}
        if field is not None:
            extensions["field"] = field
        super().__init__(message, extensions=extensions)


def from_validation_error(exc: ValidationError) -> ApiError:
    """The first problem becomes the error; all of them ride along in extensions.problems."""
    problems = []
    if hasattr(exc, "error_dict"):
        for field, field_errors in exc.error_dict.items():
            for error in field_errors:
                problems.append(
                    {"field": field, "code": error.code or errors.INVALID_VALUE, "message": error.messages[0]}
                )
    else:
        problems = [
            {"field": None, "code": e.code or errors.INVALID_VALUE, "message": e.messages[0]} for e in exc.error_list
        ]
    first = problems[0]
    message = f"{first['field']}: {first['message']}" if first["field"] else first["message"]
    extra = {"problems": problems} if len(problems) > 1 else {}
    return ApiError(message, first["code"], first["field"], **extra)


def translate(exc: Exception) -> ApiError | None:
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, ValidationError):
        return from_validation_error(exc)
    if isinstance(exc, NotFound):
        return ApiError(str(exc), errors.NOT_FOUND, exc.field)
    if isinstance(exc, Forbidden):
        return ApiError(str(exc), errors.FORBIDDEN, exc.field)
    return None


def coded_errors(resolver: Callable) -> Callable:
    """Resolver decorator: domain exceptions leave as coded GraphQL errors."""

    @functools.wraps(resolver)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return resolver(*args, **kwargs)
        except (ValidationError, NotFound, Forbidden) as exc:
            raise translate(exc) from None

    return wrapper
