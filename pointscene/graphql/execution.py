"""graphql-core's execution, lighter for large lists of plain values.

Listing 1,000 jobs with their runs executes ~61,000 fields of ~11,000 objects; nearly all are leaves (strings,
ids, times) read straight off an attribute by graphene's default resolver. graphql-core still builds a resolve
info, a path, argument values and a completion for each. SyncExecutionContext reads such a field directly and
serializes it with its type; anything else (a field with its own resolver, an object or list, a null for a non-null
field, a value the type refuses, middleware) goes the ordinary way, so results and errors are exactly
graphql-core's. Likewise a list of objects of one type (no is_type_of check) reads each item's leaves in place,
without the path and the three-calls-deep dispatch on the item type graphql-core makes per item; only an item with
a field left to execute gets a path, and a null or an error item goes the ordinary way.
"""

from functools import partial
from typing import Any

from graphene.types.resolver import dict_or_attr_resolver
from graphql import ExecutionContext, GraphQLList, GraphQLNonNull, GraphQLObjectType, is_leaf_type, located_error
from graphql.execution.execute import get_field_def
from graphql.pyutils import Path, Undefined

_ORDINARY = object()


class SyncExecutionContext(ExecutionContext):
    """Every resolver here is synchronous (Django under WSGI): no check for awaitable values (made three or four
    times per field), and default-resolved leaf fields read and serialized in place."""

    is_awaitable = staticmethod(lambda value: False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._plans: dict[tuple[str, int], tuple[dict, list]] = {}

    def _plan(self, parent_type: GraphQLObjectType, fields: dict[str, list]) -> list[tuple[str, list, Any]]:
        """(response name, field nodes, _leaf's answer) of each field of a selection. Every item of a list shares
        one selection dict (graphql-core caches each object's sub-fields), so this is worked out once per list, not
        once per item; the dict is kept with its plan so that its id cannot be reused while cached."""
        key = (parent_type.name, id(fields))
        found = self._plans.get(key)
        if found is None or found[0] is not fields:
            plan = [(name, nodes, self._leaf(parent_type, nodes)) for name, nodes in fields.items()]
            found = self._plans[key] = (fields, plan)
        return found[1]

    def _leaf(self, parent_type: GraphQLObjectType, field_nodes: list) -> Any:
        """(attribute, default, nullable, serialize) when the field is a leaf read by graphene's default
        resolver; otherwise _ORDINARY. Worked out once per selection, by _plan."""
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
                return (*resolve.args, nullable, named.serialize)
        return _ORDINARY

    def _read_leaves(self, plan: list[tuple[str, list, Any]], source: Any) -> tuple[dict[str, Any], list | None]:
        """The fields of `source` that can be read in place, read, and those left for graphql-core (None: none).
        A field left holds _ORDINARY in the answer until it is executed, so that the answer keeps the selection's
        order."""
        row: dict[str, Any] = {}
        left = None
        is_dict = isinstance(source, dict)
        for response_name, field_nodes, leaf in plan:
            if leaf is not _ORDINARY:
                attname, default, nullable, serialize = leaf
                try:
                    value = source.get(attname, default) if is_dict else getattr(source, attname, default)
                    if value is None:
                        if nullable:
                            row[response_name] = None
                            continue
                    else:
                        serialized = serialize(value)
                        if serialized is not Undefined and serialized is not None:
                            row[response_name] = serialized
                            continue
                except Exception:  # noqa: S110 - graphql-core's own path reports it as it always does
                    pass
            row[response_name] = _ORDINARY
            left = left or []
            left.append((response_name, field_nodes))
        return row, left

    def _execute_left(
        self, parent_type: GraphQLObjectType, source: Any, path: Path | None, row: dict[str, Any], left: list
    ) -> dict[str, Any]:
        for response_name, field_nodes in left:
            result = self.execute_field(parent_type, source, field_nodes, Path(path, response_name, parent_type.name))
            if result is Undefined:
                del row[response_name]
            else:
                row[response_name] = result
        return row

    def execute_fields(
        self, parent_type: GraphQLObjectType, source_value: Any, path: Path | None, fields: dict[str, list]
    ) -> dict[str, Any]:
        row, left = self._read_leaves(self._plan(parent_type, fields), source_value)
        return row if left is None else self._execute_left(parent_type, source_value, path, row, left)

    def complete_list_value(
        self, return_type: GraphQLList, field_nodes: list, info: Any, path: Path, result: Any
    ) -> list[Any]:
        item_type = return_type.of_type
        object_type = item_type.of_type if isinstance(item_type, GraphQLNonNull) else item_type
        if (
            not isinstance(result, list | tuple)
            or not isinstance(object_type, GraphQLObjectType)
            or object_type.is_type_of is not None
        ):
            return super().complete_list_value(return_type, field_nodes, info, path, result)
        plan = self._plan(object_type, self.collect_subfields(object_type, field_nodes))
        completed = []
        for index, item in enumerate(result):
            ordinary = item is None or item is Undefined or isinstance(item, Exception)
            if not ordinary:
                row, left = self._read_leaves(plan, item)
                if left is None:  # no path needed: nothing here can fail
                    completed.append(row)
                    continue
            item_path = path.add_key(index, None)
            try:
                if ordinary:
                    completed.append(self.complete_value(item_type, field_nodes, info, item_path, item))
                else:
                    completed.append(self._execute_left(object_type, item, item_path, row, left))
            except Exception as raw_error:  # as graphql-core's complete_list_value: null here, or up to the parent
                error = located_error(raw_error, field_nodes, item_path.as_list())
                self.handle_field_error(error, item_type, item_path)
                completed.append(None)
        return completed
