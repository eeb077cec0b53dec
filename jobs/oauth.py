"""django-oauth-toolkit hooks: our scopes are per object (instance-write-7), not a fixed list."""

from oauth2_provider.oauth2_validators import OAuth2Validator
from oauth2_provider.scopes import BaseScopes

from jobs.access import INSTANCE_ALL, INSTANCE_CREATE, is_known_scope, may_request_scope

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
