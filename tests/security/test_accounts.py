"""Accounts and tokens: a deactivated user's tokens stop working at once, deactivating revokes them, and access
tokens travel only in the Authorization header (never in the URL, never in a form body)."""

import json
from io import StringIO
from urllib.parse import urlencode

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from oauth2_provider.models import AccessToken, RefreshToken

from tests.fixtures.api import error_codes

JOBS = "query Q($id: ID!) { getScheduledJobs(instanceId: $id) { id } }"


@pytest.fixture(autouse=True)
def fast_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def alice_tokens(api, public_client, alice) -> dict:
    answer = api.password_token(public_client)
    assert answer["status"] == 200, answer
    return answer


@pytest.fixture
def operator(db):
    return get_user_model().objects.create_superuser("operator", "op@example.com", "operator-password-1")


def refresh(client, public_client, refresh_token: str):
    return client.post(
        "/oauth2/token",
        {"grant_type": "refresh_token", "client_id": public_client.client_id, "refresh_token": refresh_token},
    )


def live_tokens(user) -> tuple[int, int]:
    return (
        AccessToken.objects.filter(user=user).count(),
        RefreshToken.objects.filter(user=user, revoked__isnull=True).count(),
    )


def assert_refused(api, instance, token: str) -> None:
    status, body = api.gql(JOBS, {"id": str(instance.pk)}, token)
    assert status == 401, body
    assert error_codes(body) == ["UNAUTHENTICATED"], body


# --------------------------------------------------------------------------- the per-request check


def test_it_refuses_a_deactivated_users_access_token_even_when_nothing_revoked_it(api, instance, alice, alice_tokens):
    status, body = api.gql(JOBS, {"id": str(instance.pk)}, alice_tokens["access_token"])
    assert status == 200, body
    assert body["data"]["getScheduledJobs"] == [], body

    # A raw UPDATE: no admin, no command, so no revocation; the token rows are still there.
    get_user_model().objects.filter(pk=alice.pk).update(is_active=False)
    assert live_tokens(alice) == (1, 1)

    assert_refused(api, instance, alice_tokens["access_token"])


def test_it_refuses_a_deactivated_users_refresh_token(api, client, public_client, alice, alice_tokens):
    get_user_model().objects.filter(pk=alice.pk).update(is_active=False)

    response = refresh(client, public_client, alice_tokens["refresh_token"])

    assert response.status_code == 400, response.content
    assert response.json()["error"] == "invalid_grant"
    assert "access_token" not in response.json()


def test_it_lets_a_reactivated_users_unrevoked_tokens_work_again(api, instance, alice, alice_tokens):
    # The check reads the user's state now; it does not remember a past deactivation (revocation does that).
    get_user_model().objects.filter(pk=alice.pk).update(is_active=False)
    assert_refused(api, instance, alice_tokens["access_token"])
    get_user_model().objects.filter(pk=alice.pk).update(is_active=True)

    status, body = api.gql(JOBS, {"id": str(instance.pk)}, alice_tokens["access_token"])
    assert status == 200, body


def test_it_refuses_a_password_grant_for_a_deactivated_user(api, public_client, alice):
    get_user_model().objects.filter(pk=alice.pk).update(is_active=False)

    answer = api.password_token(public_client)

    assert answer["status"] == 400, answer
    assert answer["error"] == "invalid_grant"


# --------------------------------------------------------------------------- deactivation revokes


def test_it_revokes_every_token_after_commit_when_the_command_deactivates_a_user(
    api, client, instance, public_client, alice, alice_tokens, django_capture_on_commit_callbacks
):
    second = api.password_token(public_client)
    assert live_tokens(alice) == (2, 2)

    out = StringIO()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        call_command("deactivate_user", "alice", stdout=out)
    assert json.loads(out.getvalue()) == {"username": "alice", "active": False}
    # Nothing is revoked before the deactivation is committed.
    assert live_tokens(alice) == (2, 2)
    for callback in callbacks:
        callback()

    alice.refresh_from_db()
    assert alice.is_active is False
    assert live_tokens(alice) == (0, 0)
    # Revoked, not merely refused: reactivating the account does not bring the old tokens back.
    get_user_model().objects.filter(pk=alice.pk).update(is_active=True)
    for tokens in (alice_tokens, second):
        assert_refused(api, instance, tokens["access_token"])
        response = refresh(client, public_client, tokens["refresh_token"])
        assert response.status_code == 400, response.content
        assert response.json()["error"] == "invalid_grant"


def test_it_names_a_missing_user_in_the_command(db):
    with pytest.raises(CommandError, match="no user named 'nobody'"):
        call_command("deactivate_user", "nobody", stdout=StringIO())


def test_it_revokes_tokens_when_the_admin_form_deactivates_a_user(
    client, operator, alice, alice_tokens, django_capture_on_commit_callbacks
):
    client.force_login(operator)
    form = {
        "username": "alice",
        "first_name": "",
        "last_name": "",
        "email": "",
        # is_active left out: the checkbox is unticked.
        "date_joined_0": "2024-01-01",
        "date_joined_1": "00:00:00",
        "last_login_0": "",
        "last_login_1": "",
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/admin/auth/user/{alice.pk}/change/", form)

    assert response.status_code == 302, response.content.decode()[:2000]
    alice.refresh_from_db()
    assert alice.is_active is False
    assert live_tokens(alice) == (0, 0)


def test_it_leaves_tokens_alone_when_the_admin_form_saves_an_active_user(
    client, operator, alice, alice_tokens, django_capture_on_commit_callbacks
):
    client.force_login(operator)
    form = {
        "username": "alice",
        "first_name": "Alice",
        "last_name": "",
        "email": "",
        "is_active": "on",
        "date_joined_0": "2024-01-01",
        "date_joined_1": "00:00:00",
        "last_login_0": "",
        "last_login_1": "",
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/admin/auth/user/{alice.pk}/change/", form)

    assert response.status_code == 302, response.content.decode()[:2000]
    assert live_tokens(alice) == (1, 1)


def test_it_revokes_tokens_when_the_admin_action_deactivates_users_but_not_the_operator(
    client, operator, alice, alice_tokens, django_capture_on_commit_callbacks
):
    client.force_login(operator)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/admin/auth/user/",
            {"action": "deactivate_users", "_selected_action": [alice.pk, operator.pk]},
            follow=True,
        )

    assert response.status_code == 200
    messages = [str(m) for m in response.context["messages"]]
    assert "Deactivated 1 user; their tokens are revoked." in messages, messages
    assert "You cannot deactivate yourself." in messages, messages
    alice.refresh_from_db()
    operator.refresh_from_db()
    assert alice.is_active is False
    assert operator.is_active is True
    assert live_tokens(alice) == (0, 0)


# --------------------------------------------------------------------------- token transport


def test_it_refuses_an_access_token_in_the_url_query(client, instance, acme_token):
    query = urlencode({"query": "{ __typename }", "access_token": acme_token})

    for response in (
        client.get(f"/graphql?{query}", HTTP_ACCEPT="application/json"),
        client.post(f"/graphql?{query}", json.dumps({"query": "{ __typename }"}), content_type="application/json"),
        # Sending the header as well does not make the URL's copy acceptable.
        client.post(
            f"/graphql?{urlencode({'access_token': acme_token})}",
            json.dumps({"query": "{ __typename }"}),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {acme_token}",
        ),
    ):
        assert response.status_code == 401, response.content
        body = response.json()
        assert error_codes(body) == ["UNAUTHENTICATED"], body
        assert "not accepted in the URL" in body["errors"][0]["message"], body
        assert acme_token not in response.content.decode()
        assert response["WWW-Authenticate"].startswith("Bearer ")


def test_it_refuses_an_access_token_in_a_form_body(client, acme_token):
    response = client.post("/graphql", {"query": "{ __typename }", "access_token": acme_token})

    assert response.status_code == 401, response.content
    assert error_codes(response.json()) == ["UNAUTHENTICATED"]


def test_it_accepts_the_same_token_in_the_authorization_header(client, acme_token):
    response = client.post(
        "/graphql",
        json.dumps({"query": "{ __typename }"}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {acme_token}",
    )

    assert response.status_code == 200, response.content
    assert response.json() == {"data": {"__typename": "Query"}}
