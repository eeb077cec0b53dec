"""django-oauth-toolkit hooks: our scopes are per object (instance-write-7), not a fixed list; a deactivated
user's tokens stop working at once, and deactivating a user revokes them."""

import functools
import logging

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from oauth2_provider.models import get_access_token_model, get_grant_model, get_id_token_model, get_refresh_token_model
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauth2_provider.scopes import BaseScopes

from pointscene.core.access import INSTANCE_ALL, INSTANCE_CREATE, is_known_scope, may_request_scope

log = logging.getLogger(__name__)

SCOPE_DESCRIPTIONS = {
    INSTANCE_ALL: "write access to every instance linked to the client",
    "instance-write-{instanceId}": "write access to one instance and everything in it",
    "instance-read-{instanceId}": "read access to one instance and everything in it",
    INSTANCE_CREATE: "may create instances",
    "resource-write-{resourceId}": "write access to one resource",
    "resource-read-{resourceId}": "read access to one resource",
}


class InstanceScopes(BaseScopes):
    def get_all_scopes(self) -> dict[str, str]:
        return dict(SCOPE_DESCRIPTIONS)

    def get_available_scopes(self, application=None, request=None, *args, **kwargs) -> list[str]:
        # Per-object scopes are checked one by one in Validator.validate_scopes; listing every resource
        # of every linked instance here would be unbounded.
        return [INSTANCE_ALL]

    def get_default_scopes(self, application=None, request=None, *args, **kwargs) -> list[str]:
        return [INSTANCE_ALL]


class Validator(OAuth2Validator):
    def validate_scopes(self, client_id, scopes, client, request, *args, **kwargs) -> bool:
        user = getattr(request, "user", None)
        user_id = user.pk if user is not None and getattr(user, "is_authenticated", False) else None
        application_id = client.pk if client is not None else None
        return all(
            is_known_scope(scope) and may_request_scope(scope, user_id=user_id, application_id=application_id)
            for scope in scopes
        )

    def validate_bearer_token(self, token, scopes, request) -> bool:
        # Revocation on deactivation runs after commit and can be skipped (a raw UPDATE, a crash in between):
        # the user's state at the time of the request is what counts. The user row comes with the token's
        # query (select_related), so this costs nothing.
        if not super().validate_bearer_token(token, scopes, request):
            return False
        if not _is_active(request.user):
            request.user = request.client = request.access_token = None
            request.oauth2_error = {"error": "invalid_token", "error_description": "The access token is invalid."}
            return False
        return True

    def validate_refresh_token(self, refresh_token, client, request, *args, **kwargs) -> bool:
        # False makes oauthlib answer invalid_grant, exactly as for an unknown or revoked refresh token.
        if not super().validate_refresh_token(refresh_token, client, request, *args, **kwargs):
            return False
        return _is_active(request.user)


def _is_active(user: AbstractBaseUser | None) -> bool:
    """Client-credentials tokens have no user; a user's token is good only while the user is active."""
    return user is None or bool(user.is_active)


def revoke_user_tokens(user_id: int) -> int:
    """Revokes every token, grant and ID token of a user now; returns how many refresh/access tokens it ended."""
    refresh_model, access_model = get_refresh_token_model(), get_access_token_model()
    ended = 0
    # Row by row, through the library's own revoke(): it keeps the (checksum, revoked) uniqueness and the
    # lock order of a concurrent rotation; a user has a handful of live refresh tokens.
    for refresh_token in refresh_model.objects.filter(user_id=user_id, revoked__isnull=True):
        refresh_token.revoke()
        ended += 1
    ended += access_model.objects.filter(user_id=user_id).delete()[1].get(access_model._meta.label, 0)
    get_grant_model().objects.filter(user_id=user_id).delete()
    get_id_token_model().objects.filter(user_id=user_id).delete()
    log.info("revoked the tokens of a deactivated user", extra={"user_id": user_id, "tokens": ended})
    return ended


def revoke_user_tokens_after_commit(user_id: int) -> None:
    """Revokes the user's tokens once the deactivation is committed (at once outside a transaction)."""
    transaction.on_commit(functools.partial(revoke_user_tokens, user_id))


def deactivate_user(user: AbstractBaseUser) -> None:
    """The one way code deactivates a user: is_active=False, then every token of theirs revoked after commit."""
    with transaction.atomic():
        get_user_model().objects.filter(pk=user.pk).update(is_active=False)
        user.is_active = False
        revoke_user_tokens_after_commit(user.pk)
