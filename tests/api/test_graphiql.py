"""GraphiQL's page (GRAPHQL_GRAPHIQL on) loads everything from this server: its files come from npm at the versions
graphene-django's page is written for (package.json, `make graphiql`), and without them the page says how to get them.
tests/browser/test_graphiql.py runs it in a browser with every other host blocked."""

import json
import re
from pathlib import Path

import pytest
from django.templatetags.static import static
from graphene_django.views import GraphQLView

from pointscene.graphql import graphiql

pytestmark = pytest.mark.smoke

ROOT = Path(__file__).resolve().parents[2]
ABSOLUTE_URL = re.compile(r"(?:https?:)?//[^\s\"'<>]+", re.IGNORECASE)
# src= and href= values, the URLs a browser would fetch on its own.
FETCHED = re.compile(r"""\b(?:src|href)\s*=\s*["']([^"']*)["']""", re.IGNORECASE)
# graphene-django's own script, which starts GraphiQL on the page (it comes with the Python package).
GRAPHENE_SCRIPT = "/static/graphene_django/graphiql.js"
# package.json's packages and the GraphQLView attributes naming the versions graphene-django's page loads.
GRAPHENE_PINS = {
    "graphiql": "graphiql_version",
    "react": "react_version",
    "react-dom": "react_version",
    "graphql-ws": "subscriptions_transport_ws_version",
    "@graphiql/plugin-explorer": "graphiql_plugin_explorer_version",
}


def graphiql_page(client) -> str:
    response = client.get("/graphql", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    return response.content.decode()


@pytest.fixture
def installed(settings):
    settings.GRAPHQL_GRAPHIQL = True
    if not graphiql.installed():
        pytest.skip("GraphiQL's files are not installed (make graphiql; needs npm)")


@pytest.fixture
def not_installed(settings):
    # Only the finder of STATICFILES_DIRS (none): the apps' static folders, where make graphiql puts the files, are
    # not searched, as in a checkout where npm never ran.
    settings.GRAPHQL_GRAPHIQL = True
    settings.STATICFILES_FINDERS = ["django.contrib.staticfiles.finders.FileSystemFinder"]


def test_it_loads_every_file_of_the_page_from_this_server(client, installed):
    page = graphiql_page(client)

    assert ABSOLUTE_URL.findall(page) == []
    fetched = FETCHED.findall(page)
    assert all(url.startswith("/static/") for url in fetched), fetched
    assert sorted(fetched) == sorted([static(f"graphiql/{name}") for name in graphiql.FILES] + [GRAPHENE_SCRIPT])
    for url in fetched:
        assert client.get(url).status_code == 200, url


def test_it_keeps_the_headers_editor_for_bearer_tokens(client, installed):
    page = graphiql_page(client)

    assert "graphiqlHeaderEditorEnabled: true" in page
    # A token typed there must not outlive the tab in localStorage.
    assert "graphiqlShouldPersistHeaders: false" in page


def test_it_says_how_to_install_the_files_when_they_are_missing(client, not_installed):
    page = graphiql_page(client)

    assert not graphiql.installed()
    assert "GraphiQL is not installed here" in page
    assert "make graphiql" in page
    assert FETCHED.findall(page) == []
    assert ABSOLUTE_URL.findall(page) == []


def test_it_pins_the_versions_graphene_django_page_is_written_for():
    package = json.loads((ROOT / "package.json").read_text())
    lock = json.loads((ROOT / "package-lock.json").read_text())

    for name, attribute in GRAPHENE_PINS.items():
        assert package["dependencies"][name] == getattr(GraphQLView, attribute), name
        assert lock["packages"][f"node_modules/{name}"]["version"] == getattr(GraphQLView, attribute), name
    # Exact versions only: no ranges in what the page is built from.
    assert all(re.fullmatch(r"\d+\.\d+\.\d+", version) for version in package["dependencies"].values())
