"""GraphiQL (GRAPHQL_GRAPHIQL on) in a real browser that may reach only this server: every request to another host
is aborted, and the page still loads, takes a bearer token in its headers tab and shows a query's answer."""

import json
from urllib.parse import quote, urlsplit

import pytest
from playwright.sync_api import Request, Response, Route, expect

from pointscene.graphql import graphiql

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
QUERY = "{ __typename }"


def test_it_runs_a_query_with_a_bearer_token_and_nothing_from_outside(page, screenshots, settings, acme_token):
    if not graphiql.installed():
        pytest.skip("GraphiQL's files are not installed (make graphiql; needs npm)")
    settings.GRAPHQL_GRAPHIQL = True
    allowed, aborted, failed = [], [], []

    def only_this_server(route: Route, request: Request) -> None:
        if urlsplit(request.url).hostname in LOOPBACK:
            allowed.append(request.url)
            route.continue_()
        else:
            aborted.append(request.url)
            route.abort()

    def file_failed(response: Response) -> None:
        # The page and its files. Its POSTs are GraphQL: the schema request on load has no token yet and is refused.
        if response.request.method == "GET" and response.status >= 400:
            failed.append(f"{response.status} {response.url}")

    page.route("**/*", only_this_server)
    page.on("requestfailed", lambda request: failed.append(f"{request.failure} {request.url}"))
    page.on("response", file_failed)

    # graphene-django's page takes the query from the URL's fragment.
    page.goto("/graphql#query=" + quote(QUERY))
    expect(page.locator(".graphiql-container")).to_be_visible()
    expect(page.locator(".graphiql-query-editor")).to_contain_text("__typename")
    screenshots.take("graphiql-loaded")

    page.get_by_role("button", name="Headers").click()
    page.locator(".graphiql-editor-tool .CodeMirror").last.click()
    page.keyboard.type(json.dumps({"Authorization": f"Bearer {acme_token}"}))
    screenshots.take("headers-typed")
    with page.expect_request(lambda request: request.method == "POST" and QUERY in (request.post_data or "")) as sent:
        page.locator(".graphiql-execute-button").click()

    # Only a valid bearer token gets an answer from /graphql.
    expect(page.locator(".graphiql-response")).to_contain_text('"__typename": "Query"')
    screenshots.take("answered")
    assert sent.value.headers["authorization"] == f"Bearer {acme_token}"
    assert any("/static/graphiql/graphiql.min.js" in url for url in allowed)
    assert aborted == []
    assert failed == []
    screenshots.assert_saved("graphiql-loaded", "headers-typed", "answered")
