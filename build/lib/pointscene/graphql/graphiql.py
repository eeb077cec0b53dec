"""GraphiQL's page (/graphql in a browser when GRAPHQL_GRAPHIQL is on), from the service's own static files.

graphene-django's page loads React and GraphiQL from a CDN, so it is blank offline. The same files, at the versions
graphene-django's graphiql.js is written for, come from npm (package.json; `make graphiql`) into static/graphiql/
beside this module, git-ignored; templates/graphql/graphiql.html loads them from STATIC_URL."""

from django.contrib.staticfiles import finders

TEMPLATE = "graphql/graphiql.html"
# Every file the page loads from static/graphiql/; package.json's `assets` script copies exactly these.
FILES = [
    "graphiql.min.css",
    "graphiql-plugin-explorer.css",
    "react.production.min.js",
    "react-dom.production.min.js",
    "graphiql.min.js",
    "graphql-ws.min.js",
    "graphiql-plugin-explorer.umd.js",
]


def installed() -> bool:
    """Whether `make graphiql` has put every file in place. Asked per page; WhiteNoise (DEBUG off) serves only files
    that were there when the service started, so after installing, the service is restarted, as the page says."""
    return all(finders.find(f"graphiql/{name}") for name in FILES)
