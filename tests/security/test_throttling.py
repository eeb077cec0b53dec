"""Rate limits: /oauth2/token per client and per address, the admin login per username and per address, /graphql
per token principal and per address. Over a limit: 429 with Retry-After (and a GraphQL- or OAuth-shaped body), and
the caller is served again once the window ends. X-Forwarded-For counts only behind a trusted proxy.

Every test counts under its own cache key prefix and its own client addresses, so counters never carry over."""

import base64
import copy
import itertools
import json
import time
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.test import Client as HttpClient

from tests.environment import free_port
from tests.fixtures.api import Api, error_codes
from tests.fixtures.cast import ALICE_PASSWORD, Client

TYPENAME = json.dumps({"query": "{ __typename }"})
HOUR = 3600
_addresses = itertools.count(1)


def new_address() -> str:
    n = next(_addresses)
    return f"198.18.{n // 250}.{n % 250 + 1}"  # RFC 2544 benchmarking range: never a real caller


def http(address: str | None = None) -> HttpClient:
    return HttpClient(REMOTE_ADDR=address or new_address())


@pytest.fixture(autouse=True)
def own_counters(settings):
    """A fresh key prefix per test: counters of earlier tests (same ids on SQLite, same addresses) never count."""
    caches = copy.deepcopy(settings.CACHES)
    caches["ratelimit"]["KEY_PREFIX"] = f"pointscene-test:ratelimit-{uuid.uuid4().hex}"
    settings.CACHES = caches
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def retry_after(response) -> int:
    value = int(response["Retry-After"])
    assert value >= 1, value
    return value


def token_request(client: HttpClient, api_client: Client, **headers):
    data = {"grant_type": "client_credentials", "client_id": api_client.client_id, "scope": "instance-*"}
    if api_client.client_secret:
        data["client_secret"] = api_client.client_secret
    return client.post("/oauth2/token", data, **headers)


def gql(client: HttpClient, token: str | None, **headers):
    if token:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return client.post("/graphql", TYPENAME, content_type="application/json", **headers)


def admin_login(client: HttpClient, username: str, password: str = "wrong password", **headers):
    return client.post("/admin/login/", {"username": username, "password": password}, **headers)


def assert_token_limited(response, period: int) -> None:
    assert response.status_code == 429, response.content
    body = response.json()
    assert body["error"] == "slow_down", body
    seconds = retry_after(response)
    assert seconds <= period, seconds
    assert f"retry in {seconds} seconds" in body["error_description"], body


def assert_graphql_limited(response, period: int) -> None:
    assert response.status_code == 429, response.content
    body = response.json()
    assert error_codes(body) == ["RATE_LIMITED"], body
    seconds = retry_after(response)
    assert seconds <= period, seconds
    assert body["errors"][0]["extensions"]["retryAfter"] == seconds, body


def assert_admin_limited(response, period: int) -> None:
    assert response.status_code == 429, response.content
    assert retry_after(response) <= period
    assert b"Too many login attempts" in response.content


def until_limited(send, attempts: int = 6):
    """Sends until a 429: a window may end between two requests, so the first 429 can come one request late."""
    for _ in range(attempts):
        response = send()
        if response.status_code == 429:
            return response
    raise AssertionError(f"no 429 after {attempts} requests; last: {response.status_code} {response.content[:300]}")


def recovers(send, response) -> None:
    """Waits out the Retry-After the server gave (the window's end, rounded up) and is served again."""
    time.sleep(retry_after(response))
    again = send()
    assert again.status_code != 429, again.content


# --------------------------------------------------------------------------- /oauth2/token


def test_it_limits_token_requests_per_client_across_addresses(settings, acme_client, globex_client):
    settings.RATELIMIT_TOKEN_PER_CLIENT = "3/h"
    for _ in range(3):
        assert token_request(http(), acme_client).status_code == 200

    assert_token_limited(token_request(http(), acme_client), HOUR)
    # Client credentials in an HTTP Basic header name the same client.
    basic = base64.b64encode(f"{acme_client.client_id}:{acme_client.client_secret}".encode()).decode()
    response = http().post("/oauth2/token", {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=f"Basic {basic}")
    assert_token_limited(response, HOUR)
    # Another client is counted apart.
    assert token_request(http(), globex_client).status_code == 200


def test_it_limits_token_requests_per_address_whatever_the_client(settings, acme_client):
    settings.RATELIMIT_TOKEN_PER_ADDRESS = "3/h"
    address = new_address()
    for n in range(3):
        response = token_request(http(address), Client(f"no-such-client-{n}", "x"))
        assert response.status_code == 401, response.content

    assert_token_limited(token_request(http(address), acme_client), HOUR)
    assert token_request(http(), acme_client).status_code == 200


def test_it_lets_a_client_in_again_after_the_token_window(settings, acme_client):
    settings.RATELIMIT_TOKEN_PER_CLIENT = "1/1s"
    client = http()

    limited = until_limited(lambda: token_request(client, acme_client))

    assert_token_limited(limited, 1)
    recovers(lambda: token_request(client, acme_client), limited)


def test_it_ignores_x_forwarded_for_from_an_untrusted_peer(settings, acme_client):
    settings.RATELIMIT_TOKEN_PER_ADDRESS = "2/h"
    client = http()
    for n in range(2):
        response = token_request(client, acme_client, HTTP_X_FORWARDED_FOR=f"203.0.113.{n}")
        assert response.status_code == 200, response.content

    assert_token_limited(token_request(client, acme_client, HTTP_X_FORWARDED_FOR="203.0.113.99"), HOUR)


def test_it_counts_the_forwarded_address_behind_a_trusted_proxy(settings, acme_client):
    settings.RATELIMIT_TOKEN_PER_ADDRESS = "2/h"
    proxy = new_address()
    settings.RATELIMIT_TRUSTED_PROXIES = [f"{proxy}/32"]
    client = http(proxy)
    # The proxy appends the address it saw; whatever the caller wrote before it is the caller's own invention.
    for n in range(2):
        response = token_request(client, acme_client, HTTP_X_FORWARDED_FOR=f"10.9.9.{n}, 203.0.113.7")
        assert response.status_code == 200, response.content
    assert_token_limited(token_request(client, acme_client, HTTP_X_FORWARDED_FOR="10.9.9.9, 203.0.113.7"), HOUR)

    # Another caller behind the same proxy has its own allowance.
    assert token_request(client, acme_client, HTTP_X_FORWARDED_FOR="203.0.113.8").status_code == 200


# --------------------------------------------------------------------------- the admin login


@pytest.fixture
def staff_name(db) -> str:
    name = f"op-{uuid.uuid4().hex[:8]}"
    get_user_model().objects.create_superuser(name, "op@example.com", "operator-password-1")
    return name


def test_it_limits_admin_logins_per_username_across_addresses(settings, staff_name):
    settings.RATELIMIT_ADMIN_LOGIN_PER_USERNAME = "3/h"
    for _ in range(3):
        response = admin_login(http(), staff_name)
        assert response.status_code == 200, response.status_code  # the form again, with its error

    assert_admin_limited(admin_login(http(), staff_name.upper()), HOUR)
    # The right password does not get through either while the name is limited.
    client = http()
    assert_admin_limited(admin_login(client, staff_name, "operator-password-1"), HOUR)
    assert "_auth_user_id" not in client.session
    # Showing the form is not an attempt; another name is counted apart.
    assert http().get("/admin/login/").status_code == 200
    assert admin_login(http(), "someone-else").status_code == 200


def test_it_limits_admin_logins_per_address_across_usernames(settings, staff_name):
    settings.RATELIMIT_ADMIN_LOGIN_PER_ADDRESS = "3/h"
    address = new_address()
    for n in range(3):
        assert admin_login(http(address), f"guess-{n}").status_code == 200

    assert_admin_limited(admin_login(http(address), staff_name, "operator-password-1"), HOUR)
    client = http()
    response = admin_login(client, staff_name, "operator-password-1")
    assert response.status_code == 302, response.status_code
    assert client.session["_auth_user_id"]


def test_it_lets_an_admin_login_in_again_after_the_window(settings, staff_name):
    settings.RATELIMIT_ADMIN_LOGIN_PER_USERNAME = "1/1s"
    client = http()

    limited = until_limited(lambda: admin_login(client, staff_name))

    assert_admin_limited(limited, 1)
    recovers(lambda: admin_login(client, staff_name, "operator-password-1"), limited)


# --------------------------------------------------------------------------- /graphql


def fresh_token(client: Client) -> str:
    response = token_request(http(), client)
    assert response.status_code == 200, response.content
    return response.json()["access_token"]


def test_it_limits_graphql_per_client_whatever_the_token_or_address(settings, acme_client, globex_client):
    settings.RATELIMIT_GRAPHQL_PER_PRINCIPAL = "3/h"
    token = fresh_token(acme_client)
    for _ in range(3):
        response = gql(http(), token)
        assert response.status_code == 200, response.content

    assert_graphql_limited(gql(http(), token), HOUR)
    # A new token of the same client is the same principal.
    assert_graphql_limited(gql(http(), fresh_token(acme_client)), HOUR)
    assert gql(http(), fresh_token(globex_client)).status_code == 200


def test_it_limits_graphql_per_user_for_password_tokens(settings, public_client, alice):
    settings.RATELIMIT_GRAPHQL_PER_PRINCIPAL = "2/h"
    get_user_model().objects.create_user(username="bob", password=ALICE_PASSWORD)

    def password_token(username: str) -> str:
        answer = Api(http()).password_token(public_client, username=username)
        assert answer["status"] == 200, answer
        return answer["access_token"]

    alice_token = password_token("alice")
    for _ in range(2):
        assert gql(http(), alice_token).status_code == 200

    assert_graphql_limited(gql(http(), password_token("alice")), HOUR)
    # Bob signs in through the same public client, but he is another principal.
    assert gql(http(), password_token("bob")).status_code == 200


def test_it_limits_graphql_per_address_before_authentication(settings, acme_client):
    settings.RATELIMIT_GRAPHQL_PER_ADDRESS = "3/h"
    token = fresh_token(acme_client)
    address = new_address()
    for guess in ("guess-1", "guess-2", None):
        assert gql(http(address), guess).status_code == 401

    assert_graphql_limited(gql(http(address), token), HOUR)
    assert gql(http(), token).status_code == 200


def test_it_serves_graphql_again_after_the_window(settings, acme_client):
    settings.RATELIMIT_GRAPHQL_PER_PRINCIPAL = "1/1s"
    token = fresh_token(acme_client)
    client = http()

    limited = until_limited(lambda: gql(client, token))

    assert_graphql_limited(limited, 1)
    recovers(lambda: gql(client, token), limited)


def test_it_serves_requests_when_the_limit_store_is_down(settings, acme_client):
    caches = copy.deepcopy(settings.CACHES)
    caches["ratelimit"]["LOCATION"] = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    settings.CACHES = caches
    settings.RATELIMIT_TOKEN_PER_CLIENT = "1/h"
    settings.RATELIMIT_GRAPHQL_PER_PRINCIPAL = "1/h"

    token = fresh_token(acme_client)
    assert token_request(http(), acme_client).status_code == 200
    for _ in range(2):
        assert gql(http(), token).status_code == 200
