"""The one place that decides who may read or write what.

A bearer token carries scopes (see docs/contract/examples/token.http); it reaches only instances its client (or, for a
password-grant token, its user) is linked to *now*, so unlinking an instance takes effect at once, before
the token expires. Anything the caller may not read is reported exactly like something that does not exist.
"""

import enum
import re
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from oauth2_provider.models import AccessToken

from pointscene.core.models import ApiClient, Instance, Resource

INSTANCE_ALL = "instance-*"
INSTANCE_CREATE = "instance-create"
_SCOPED = re.compile(r"^(instance|resource)-(read|write)-([1-9][0-9]{0,17})$")


class Need(enum.Enum):
    READ = "read"
    WRITE = "write"


class NotFound(Exception):
    """The object does not exist, or the caller may not know that it does."""

    def __init__(self, field: str, what: str = "object") -> None:
        super().__init__(f"{what} not found")
        self.field = field


class Forbidden(Exception):
    """The caller may see the object but not change it."""

    def __init__(self, field: str, message: str = "this token may read but not change it") -> None:
        super().__init__(message)
        self.field = field


def parse_scope(scope: str) -> tuple[str, str, int] | None:
    """('instance'|'resource', 'read'|'write', id) for an id-scoped scope, else None."""
    match = _SCOPED.match(scope)
    if not match:
        return None
    return match[1], match[2], int(match[3])


def is_known_scope(scope: str) -> bool:
    return scope in (INSTANCE_ALL, INSTANCE_CREATE) or parse_scope(scope) is not None


@dataclass(frozen=True)
class Principal:
    """What one request may do, derived from its token's scopes and the links in force now."""

    linked_instances: frozenset[int]
    scopes: frozenset[str]
    user_id: int | None = None
    application_id: int | None = None
    instance_write: frozenset[int] = field(init=False)
    instance_read: frozenset[int] = field(init=False)
    resource_write: frozenset[int] = field(init=False)
    resource_read: frozenset[int] = field(init=False)

    def __post_init__(self) -> None:
        parsed = [p for p in map(parse_scope, self.scopes) if p]
        if INSTANCE_ALL in self.scopes:
            write = set(self.linked_instances)
        else:
            write = {i for kind, need, i in parsed if kind == "instance" and need == "write"}
        read = write | {i for kind, need, i in parsed if kind == "instance" and need == "read"}
        res_write = {i for kind, need, i in parsed if kind == "resource" and need == "write"}
        res_read = res_write | {i for kind, need, i in parsed if kind == "resource" and need == "read"}
        object.__setattr__(self, "instance_write", frozenset(write) & self.linked_instances)
        object.__setattr__(self, "instance_read", frozenset(read) & self.linked_instances)
        object.__setattr__(self, "resource_write", frozenset(res_write))
        object.__setattr__(self, "resource_read", frozenset(res_read))

    @property
    def can_create_instances(self) -> bool:
        return INSTANCE_CREATE in self.scopes

    def can_instance(self, instance_id: int, need: Need) -> bool:
        pool = self.instance_write if need is Need.WRITE else self.instance_read
        return instance_id in pool

    def can_resource(self, resource_id: int, instance_id: int, need: Need) -> bool:
        """Instance scopes cover all of an instance's resources; resource scopes cover one each."""
        if self.can_instance(instance_id, need):
            return True
        if instance_id not in self.linked_instances:
            return False
        pool = self.resource_write if need is Need.WRITE else self.resource_read
        return resource_id in pool


def linked_instance_ids(*, user_id: int | None, application_id: int | None) -> frozenset[int]:
    if user_id is not None:
        rows = Instance.objects.filter(members__id=user_id)
    elif application_id is not None:
        rows = Instance.objects.filter(api_clients__application_id=application_id)
    else:
        return frozenset()
    return frozenset(rows.values_list("id", flat=True))


def principal_for_token(token: AccessToken) -> Principal:
    linked = linked_instance_ids(user_id=token.user_id, application_id=token.application_id)
    return Principal(
        linked_instances=linked,
        scopes=frozenset(token.scope.split()),
        user_id=token.user_id,
        application_id=token.application_id,
    )


def may_request_scope(scope: str, *, user_id: int | None, application_id: int | None) -> bool:
    """Whether a client (or a user through it) may be granted `scope` now."""
    if scope == INSTANCE_ALL:
        return True
    if scope == INSTANCE_CREATE:
        if user_id is not None:
            user = get_user_model().objects.filter(pk=user_id).first()
            return bool(user and user.has_perm("core.add_instance"))
        return ApiClient.objects.filter(application_id=application_id, can_create_instances=True).exists()
    parsed = parse_scope(scope)
    if parsed is None:
        return False
    kind, _need, object_id = parsed
    linked = linked_instance_ids(user_id=user_id, application_id=application_id)
    if kind == "instance":
        return object_id in linked
    return Resource.objects.filter(pk=object_id, instance_id__in=linked).exists()


def require_instance(
    principal: Principal, instance_id: int | None, need: Need, field: str, what: str = "instance"
) -> int:
    """The instance id if the caller may `need` it; NotFound/Forbidden otherwise.

    `what` names the object the caller asked for (a job, a run) so that "not visible" reads exactly like
    "does not exist" for it.
    """
    if instance_id is None or not principal.can_instance(instance_id, Need.READ):
        raise NotFound(field, what)
    if need is Need.WRITE and not principal.can_instance(instance_id, Need.WRITE):
        raise Forbidden(field)
    return instance_id


def require_resource(principal: Principal, resource: Resource | None, need: Need, field: str) -> Resource:
    if resource is None or not principal.can_resource(resource.pk, resource.instance_id, Need.READ):
        raise NotFound(field, "resource")
    if need is Need.WRITE and not principal.can_resource(resource.pk, resource.instance_id, Need.WRITE):
        raise Forbidden(field)
    return resource
