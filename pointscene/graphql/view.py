"""/graphql: bearer-token authentication, then graphene; every error leaves with a stable code."""

import json
import logging

from django.http import HttpRequest, HttpResponse, JsonResponse
from graphene_django.views import GraphQLView, HttpError
from graphql import GraphQLError, GraphQLSyntaxError
from oauth2_provider.oauth2_backends import get_oauthlib_core

from jobs.access import principal_for_token
from pointscene.graphql import errors
from pointscene.graphql.errors import translate

log = logging.getLogger(__name__)


def error_response(status: int, code: str, message: str, **headers: str) -> JsonResponse:
    response = JsonResponse({"errors": [{"message": message, "extensions": {"code": code}}]}, status=status)
    for name, value in headers.items():
        response[name] = value
    return response


class ApiGraphQLView(GraphQLView):
    def dispatch(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if request.method not in ("GET", "POST"):
            return error_response(
                405, errors.BAD_REQUEST, "GraphQL only supports GET and POST requests.", Allow="GET, POST"
            )
        wants_graphiql = request.method == "GET" and self.request_wants_html(request) and "raw" not in request.GET
        if not wants_graphiql:
            valid, oauth_request = get_oauthlib_core().verify_request(request, scopes=[])
            if not valid:
                return error_response(
                    401,
                    errors.UNAUTHENTICATED,
                    "A valid bearer token is required (Authorization: Bearer <token> from /oauth2/token).",
                    **{"WWW-Authenticate": 'Bearer realm="graphql", error="invalid_token"'},
                )
            request.principal = principal_for_token(oauth_request.access_token)
        try:
            return super().dispatch(request, *args, **kwargs)
        except Exception:
            # graphene-django turns most bad requests into HttpError; anything else must still not be a 500.
            log.exception("unhandled error in /graphql")
            return error_response(400, errors.BAD_REQUEST, "The request could not be processed.")

    def parse_body(self, request: HttpRequest) -> dict:
        data = super().parse_body(request)
        if not isinstance(data, dict):
            raise HttpError(HttpResponse(status=400, content="The body must be a JSON object with a query."))
        return data

    @staticmethod
    def get_graphql_params(request, data):
        query, variables, operation_name, id_ = GraphQLView.get_graphql_params(request, data)
        if query is not None and not isinstance(query, str):
            raise HttpError(HttpResponse(status=400, content="query must be a string."))
        if variables is not None and not isinstance(variables, dict):
            raise HttpError(HttpResponse(status=400, content="variables must be a JSON object."))
        if operation_name is not None and not isinstance(operation_name, str):
            raise HttpError(HttpResponse(status=400, content="operationName must be a string."))
        return query, variables, operation_name, id_

    @staticmethod
    def format_error(error: Exception) -> dict:
        if isinstance(error, HttpError):
            message = error.response.content.decode(errors="replace") or "Bad request."
            return {"message": message, "extensions": {"code": errors.BAD_REQUEST}}
        if not isinstance(error, GraphQLError):
            log.error("unexpected error outside GraphQL execution", exc_info=error)
            return {"message": "Internal server error.", "extensions": {"code": errors.INTERNAL_ERROR}}

        original = error.original_error
        if original is not None and not isinstance(original, GraphQLError):
            translated = translate(original)
            if translated is None:
                log.error("unhandled error in resolver %s", error.path, exc_info=original)
                formatted = {"message": "Internal server error.", "extensions": {"code": errors.INTERNAL_ERROR}}
                if error.path:
                    formatted["path"] = error.path
                return formatted
            error = GraphQLError(
                translated.message, error.nodes, error.source, error.positions, error.path, None, translated.extensions
            )
        formatted = error.formatted
        extensions = formatted.setdefault("extensions", {})
        if "code" not in extensions:
            if isinstance(error, GraphQLSyntaxError):
                extensions["code"] = errors.GRAPHQL_PARSE_FAILED
            elif not error.path:
                extensions["code"] = errors.GRAPHQL_VALIDATION_FAILED
            else:
                # Raised while executing (e.g. a value our schema cannot serialize): our fault, not the client's.
                log.error("error in %s: %s", error.path, error.message)
                extensions["code"] = errors.INTERNAL_ERROR
        return formatted

    def json_encode(self, request, d, pretty=False):
        return json.dumps(d, separators=(",", ":"), default=str)
