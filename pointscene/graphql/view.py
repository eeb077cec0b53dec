"""/graphql: bearer-token authentication, then graphene; every error leaves with a stable code."""

import json
import logging

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from graphene_django.views import GraphQLView, HttpError
from graphql import ExecutionResult, GraphQLError, GraphQLSyntaxError
from oauth2_provider.oauth2_backends import get_oauthlib_core

from pointscene import ratelimit
from pointscene.core.access import principal_for_token
from pointscene.graphql import errors, graphiql
from pointscene.graphql import limits as graphql_limits
from pointscene.graphql.errors import translate
from pointscene.graphql.execution import SyncExecutionContext

log = logging.getLogger(__name__)


def error_response(status: int, code: str, message: str, **headers: str) -> JsonResponse:
    response = JsonResponse({"errors": [{"message": message, "extensions": {"code": code}}]}, status=status)
    for name, value in headers.items():
        response[name] = value
    return response


def rate_limited_response(seconds: int) -> JsonResponse:
    error = {
        "message": f"Too many requests; retry in {seconds} seconds.",
        "extensions": {"code": errors.RATE_LIMITED, "retryAfter": seconds},
    }
    response = JsonResponse({"errors": [error]}, status=429)
    response["Retry-After"] = str(seconds)
    return response


class ApiGraphQLView(GraphQLView):
    graphiql_template = graphiql.TEMPLATE
    execution_context_class = SyncExecutionContext

    def dispatch(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if request.method not in ("GET", "POST"):
            return error_response(
                405, errors.BAD_REQUEST, "GraphQL only supports GET and POST requests.", Allow="GET, POST"
            )
        if seconds := ratelimit.retry_after(request, ratelimit.graphql_address_limits(request)):
            return rate_limited_response(seconds)
        if too_large := graphql_limits.body_too_large(request):
            return error_response(413, errors.REQUEST_TOO_LARGE, too_large)
        # Read per request (not at import), so each deployment and each test decides.
        self.graphiql = settings.GRAPHQL_GRAPHIQL
        self.validation_rules = graphql_limits.validation_rules()
        wants_graphiql = (
            self.graphiql and request.method == "GET" and self.request_wants_html(request) and "raw" not in request.GET
        )
        if not wants_graphiql:
            if "access_token" in request.GET:
                # RFC 6750 5.3 / RFC 9700: URLs end up in logs and Referer headers (also refused by
                # COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT; this says why).
                return error_response(
                    401,
                    errors.UNAUTHENTICATED,
                    "Access tokens are not accepted in the URL; send Authorization: Bearer <token> instead.",
                    **{"WWW-Authenticate": 'Bearer realm="graphql", error="invalid_request"'},
                )
            valid, oauth_request = False, None
            if request.META.get("HTTP_AUTHORIZATION"):
                # Only the header may carry the token: oauthlib would also take a form body's access_token.
                valid, oauth_request = get_oauthlib_core().verify_request(request, scopes=[])
            if not valid:
                return error_response(
                    401,
                    errors.UNAUTHENTICATED,
                    "A valid bearer token is required (Authorization: Bearer <token> from /oauth2/token).",
                    **{"WWW-Authenticate": 'Bearer realm="graphql", error="invalid_token"'},
                )
            token = oauth_request.access_token
            limits = ratelimit.graphql_principal_limits(request, token.user_id, token.application_id)
            if seconds := ratelimit.retry_after(request, limits):
                return rate_limited_response(seconds)
            request.principal = principal_for_token(token)
        try:
            return super().dispatch(request, *args, **kwargs)
        except Exception:
            # graphene-django turns most bad requests into HttpError; anything else must still not be a 500.
            log.exception("unhandled error in /graphql")
            return error_response(400, errors.BAD_REQUEST, "The request could not be processed.")

    def render_graphiql(self, request: HttpRequest, **data) -> HttpResponse:
        return render(request, self.graphiql_template, {**data, "graphiql_installed": graphiql.installed()})

    def parse_body(self, request: HttpRequest) -> dict:
        try:
            data = super().parse_body(request)
        except RequestDataTooBig:
            # Django's DATA_UPLOAD_MAX_MEMORY_SIZE, when it is below GRAPHQL_MAX_BODY_BYTES or the length was unstated.
            raise HttpError(HttpResponse(status=413, content="The request body is too large.")) from None
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
            code = errors.REQUEST_TOO_LARGE if error.response.status_code == 413 else errors.BAD_REQUEST
            return {"message": message, "extensions": {"code": code}}
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

    def execute_graphql_request(self, request, data, query, variables, operation_name, show_graphiql=False):
        # Limits first: the document is parsed with them, so a bomb is refused before it is even read whole.
        if query:
            refused = graphql_limits.check(self.schema.graphql_schema, query)
            if refused is not None:
                return ExecutionResult(errors=[refused])
        return super().execute_graphql_request(request, data, query, variables, operation_name, show_graphiql)

    def json_encode(self, request, d, pretty=False):
        return json.dumps(d, separators=(",", ":"), default=str)
