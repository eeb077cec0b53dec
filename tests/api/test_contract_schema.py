"""Part 1 of docs/contract/schema.graphql must exist in our schema to the letter."""

from pathlib import Path

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLObjectType,
    GraphQLScalarType,
    build_schema,
    print_schema,
)

from pointscene.graphql.schema import schema

pytestmark = pytest.mark.smoke

CONTRACT = Path(__file__).resolve().parents[2] / "docs" / "contract" / "schema.graphql"


def contract_schema():
    if not CONTRACT.exists():
        pytest.fail(f"contract not found at {CONTRACT}")
    return build_schema(CONTRACT.read_text())


def ours():
    return schema.graphql_schema


def contract_types():
    return {name: t for name, t in contract_schema().type_map.items() if not name.startswith("__")}


@pytest.mark.parametrize("name", sorted(contract_types()))
def test_it_has_every_contract_type_with_its_kind(name):
    theirs = contract_types()[name]
    mine = ours().get_type(name)
    assert mine is not None, f"type {name} missing"
    kind = next(
        k
        for k in (GraphQLEnumType, GraphQLInputObjectType, GraphQLObjectType, GraphQLScalarType)
        if isinstance(theirs, k)
    )
    assert isinstance(mine, kind)


@pytest.mark.parametrize("name", sorted(n for n, t in contract_types().items() if isinstance(t, GraphQLObjectType)))
def test_it_matches_every_contract_field_and_argument_exactly(name):
    theirs = contract_types()[name]
    mine = ours().get_type(name)
    for field_name, field in theirs.fields.items():
        assert field_name in mine.fields, f"{name}.{field_name} missing"
        assert str(mine.fields[field_name].type) == str(field.type), f"{name}.{field_name} type differs"
        my_args = mine.fields[field_name].args
        for arg_name, arg in field.args.items():
            assert arg_name in my_args, f"{name}.{field_name}({arg_name}) missing"
            assert str(my_args[arg_name].type) == str(arg.type), f"{name}.{field_name}({arg_name}) type differs"
        # Arguments we added must be optional, or existing clients' documents would stop validating.
        for arg_name, arg in my_args.items():
            if arg_name not in field.args:
                assert not str(arg.type).endswith("!"), f"added argument {name}.{field_name}({arg_name}) is required"


@pytest.mark.parametrize(
    "name", sorted(n for n, t in contract_types().items() if isinstance(t, GraphQLInputObjectType))
)
def test_it_matches_contract_input_types(name):
    theirs = contract_types()[name]
    mine = ours().get_type(name)
    assert {k: str(v.type) for k, v in theirs.fields.items()} == {
        k: str(v.type) for k, v in mine.fields.items() if k in theirs.fields
    }


def test_it_matches_contract_enums():
    for name, theirs in contract_types().items():
        if isinstance(theirs, GraphQLEnumType):
            assert set(ours().get_type(name).values) == set(theirs.values)


def test_it_declares_the_contract_scalars():
    for name, theirs in contract_types().items():
        if isinstance(theirs, GraphQLScalarType):
            assert isinstance(ours().get_type(name), GraphQLScalarType)


def test_it_describes_every_field_and_argument():
    missing = []
    for name, t in ours().type_map.items():
        if name.startswith("__") or not hasattr(t, "fields"):
            continue
        for field_name, field in t.fields.items():
            if not field.description:
                missing.append(f"{name}.{field_name}")
            for arg_name, arg in getattr(field, "args", {}).items():
                if not arg.description:
                    missing.append(f"{name}.{field_name}({arg_name})")
    assert missing == []


SERVED = CONTRACT.with_name("served.graphql")


def test_it_serves_exactly_the_committed_schema_export():
    """docs/contract/served.graphql is the whole served schema (Part 1 and Part 2, with every description), so clients
    generate code from the repository without a token or introspection. `make schema` rewrites it."""
    assert SERVED.read_text() == print_schema(ours()), "the served schema changed: run `make schema` and commit"
