"""Checks a GraphQL response against the contract schema: every selected field present, of its declared type."""

from datetime import datetime

from graphql import (
    FieldNode,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    parse,
)


def _check_scalar(name: str, value: object, path: str) -> None:
    if name == "ID":
        assert isinstance(value, str), f"{path}: ID must be a string, got {value!r}"
        assert value, f"{path}: ID is empty"
    elif name == "String":
        assert isinstance(value, str), f"{path}: expected String, got {value!r}"
    elif name == "Int":
        assert type(value) is int, f"{path}: expected Int, got {value!r}"
    elif name == "Boolean":
        assert isinstance(value, bool), f"{path}: expected Boolean, got {value!r}"
    elif name == "DateTime":
        assert isinstance(value, str), f"{path}: expected DateTime string, got {value!r}"
        parsed = datetime.fromisoformat(value)
        assert parsed.utcoffset() is not None, f"{path}: DateTime without a UTC offset: {value!r}"
    # JSON: any value.


def _check(schema: GraphQLSchema, gql_type, selection, value, path: str) -> None:
    if isinstance(gql_type, GraphQLNonNull):
        assert value is not None, f"{path}: declared non-null, got null"
        _check(schema, gql_type.of_type, selection, value, path)
        return
    if value is None:
        return
    if isinstance(gql_type, GraphQLList):
        assert isinstance(value, list), f"{path}: expected a list, got {value!r}"
        for i, item in enumerate(value):
            _check(schema, gql_type.of_type, selection, item, f"{path}[{i}]")
        return
    if isinstance(gql_type, GraphQLScalarType):
        _check_scalar(gql_type.name, value, path)
        return
    if isinstance(gql_type, GraphQLObjectType):
        assert isinstance(value, dict), f"{path}: expected an object, got {value!r}"
        _check_selection(schema, gql_type, selection, value, path)
        return
    # Enums
    assert value in gql_type.values, f"{path}: {value!r} is not a value of {gql_type.name}"


def _check_selection(schema, parent: GraphQLObjectType, selection_set, value: dict, path: str) -> None:
    for node in selection_set.selections:
        if isinstance(node, InlineFragmentNode):
            _check_selection(schema, parent, node.selection_set, value, path)
            continue
        assert isinstance(node, FieldNode)
        key = node.alias.value if node.alias else node.name.value
        assert key in value, f"{path}.{key}: missing from the response"
        field = parent.fields[node.name.value]
        _check(schema, field.type, node.selection_set, value[key], f"{path}.{key}")


def assert_shape(schema: GraphQLSchema, document: str, data: dict) -> None:
    """`data` answers `document` with the types `schema` declares (the contract's, not ours)."""
    operation = next(d for d in parse(document).definitions if isinstance(d, OperationDefinitionNode))
    root = schema.mutation_type if operation.operation.value == "mutation" else schema.query_type
    _check_selection(schema, root, operation.selection_set, data, "data")
