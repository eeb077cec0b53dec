"""What every resolver and mutation of the API shares."""

from typing import Any

import graphene
from graphene.utils.str_converters import to_camel_case
from graphene_django.constants import MUTATION_ERRORS_FLAG
from graphql import GraphQLResolveInfo

from pointscene.core import errors
from pointscene.core.access import NotFound, Principal
from pointscene.core.ids import parse_id
from pointscene.graphql.errors import coded_errors
from pointscene.storable import unstorable


def principal(info: GraphQLResolveInfo) -> Principal:
    # Set by ApiGraphQLView after it verified the bearer token; a request without one never gets here.
    return info.context.principal


def id_arg(value: object, field: str, what: str) -> int:
    """A client-sent ID as an int; anything malformed reads as 'not found', like an unknown id."""
    parsed = parse_id(value)
    if parsed is None:
        raise NotFound(field, what)
    return parsed


class BaseMutation(graphene.Mutation):
    """A mutation returning its object directly, with domain errors turned into coded GraphQL errors.

    Subclasses implement `perform(info, principal, **arguments)`; they ask pointscene.core.access before acting.
    """

    class Meta:
        abstract = True

    @classmethod
    def mutate(cls, root: Any, info: GraphQLResolveInfo, **arguments: Any) -> Any:
        try:
            return coded_errors(cls._perform_storable)(info, principal(info), **arguments)
        except Exception:
            # Makes graphene-django roll back the whole document's transaction: nothing partial stays.
            setattr(info.context, MUTATION_ERRORS_FLAG, True)
            raise

    @classmethod
    def _perform_storable(cls, info: GraphQLResolveInfo, principal: Principal, **arguments: Any) -> Any:
        # Checked once for every mutation: no domain rule needs to think about NUL, surrogates or NaN.
        for name, value in arguments.items():
            problem = unstorable(value, to_camel_case(name))
            if problem:
                raise errors.invalid(problem[0], errors.INVALID_VALUE, problem[1])
        return cls.perform(info, principal, **arguments)

    @classmethod
    def perform(cls, info: GraphQLResolveInfo, principal: Principal, **arguments: Any) -> Any:
        raise NotImplementedError


class SuccessPayload(graphene.ObjectType):
    """The answer of a mutation that returns nothing else."""

    success = graphene.Boolean(required=True, description="True when the change was made.")
