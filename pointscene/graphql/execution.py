"""graphql-core's execution, lighter for large lists of plain values.

Listing 1,000 jobs with their runs executes ~61,000 fields; nearly all are leaves (strings, ids, times) read
straight off an attribute by graphene's default resolver. graphql-core still builds a resolve info, a path,
argument values and a completion for each. SyncExecutionContext reads such a field directly and serializes it with
its type; anything else (a field with its own resolver, an object or list, a null for a non-null field, a value
the type refuses, middleware) goes the ordinary way, so results and errors are exactly graphql-core's.
"""

from functools import partial
from typing import Any

from graphene.types.resolver import dict_or_attr_resolver
from graphql import ExecutionContext, GraphQLNonNull, GraphQLObjectType, is_leaf_type
from graphql.execution.execute import get_field_def
from graphql.pyutils import Path, Undefined

_ORDINARY = object()


class SyncExecutionContext(ExecutionContext):
    """Every resolver here is synchronous (Django under WSGI): no check for awaitable values (made three or four
    times per field), and default-resolved leaf fields read and serialized in place."""

    is_awaitable = staticmethod(lambda value: False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._leaves: dict[tuple[str, int], Any] = {}

    def _leaf(self, parent_type: GraphQLObjectType, field_nodes: list) -> Any:
        """(attribute, default, nullable, serialize) when the field is a leaf read by graphene's default
        resolver; otherwise _ORDINARY. Worked out once per field of the document."""
        key = (parent_type.name, id(field_nodes[0]))
        found = self._leaves.get(key)
        if found is None:
            found = _ORDINARY
            field_def = get_field_def(self.schema, parent_type, field_nodes[0])
            resolve = field_def.resolve if field_def else None
            # graphene-django always passes a middleware list, so graphql-core always has a manager: an empty one
            # changes no resolver.
            middleware = self.middleware_manager.middlewares if self.middleware_manager else ()
            if (
                not middleware
                and isinstance(resolve, partial)
                and resolve.func is dict_or_attr_resolver
                and len(resolve.args) == 2
                and not resolve.keywords
            ):
                nullable = not isinstance(field_def.type, GraphQLNonNull)
                named = field_def.type if nullable else field_def.type.of_type
                if is_leaf_type(named):
                    found = (*resolve.args, nullable, named.serialize)
            self._leaves[key] = found
        return found

    def execute_fields(
        self, parent_type: GraphQLObjectType, source_value: Any, path: Path | None, fields: dict[str, list]
    ) -> dict[str, Any]:
        results = {}
        for response_name, field_nodes in fields.items():
            leaf = self._leaf(parent_type, field_nodes)
            if leaf is not _ORDINARY:
                attname, default, nullable, serialize = leaf
                try:
                    if isinstance(source_value, dict):
                        value = source_value.get(attname, default)
                    else:
                        value = getattr(source_value, attname, default)
                    if value is None:
                        if nullable:
                            results[response_name] = None
                            continue
                    else:
                        serialized = serialize(value)
                        if serialized is not Undefined and serialized is not None:
                            results[response_name] = serialized
                            continue
                except Exception:  # noqa: S110 - graphql-core's own path below reports it as it always does
                    pass
            result = self.execute_field(
                parent_type, source_value, field_nodes, Path(path, response_name, parent_type.name)
            )
            if result is not Undefined:
                results[response_name] = result
        return results
