"""Cost limits of /graphql: a document too big, too wide or too deep is refused before anything runs.

Three layers, cheapest first, each refusing with `QUERY_TOO_COMPLEX` and naming the limit it hit:

1. the parser (graphql-core's own token and comment limits, plus alias and selection counts kept while parsing),
   so a hostile document is not even parsed whole: a 1,000-alias bomb stops at alias 51;
2. `QueryCostRule`, a validation rule run on its own before the specified rules (whose
   OverlappingFieldsCanBeMerged check is quadratic in repeated fields): depth and a cost budget in which every
   field costs 1 and a list multiplies what is selected under it;
3. graphene's `DisableIntrospection` with the specified rules, when introspection is switched off.

graphene's `depth_limit_validator` is not used: it follows fragment spreads with neither cycle detection nor
memoisation (a self-spreading fragment raises RecursionError, fan-out takes exponential time) and skips
everything under `__schema`/`__type`, where this schema's only cycles are.
"""

from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest
from graphene.validation import DisableIntrospection
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    GraphQLSyntaxError,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    ValidationRule,
    get_named_type,
    is_composite_type,
    is_list_type,
    is_non_null_type,
    specified_rules,
    validate,
)
from graphql.language.parser import Parser
from graphql.type import SchemaMetaFieldDef, TypeMetaFieldDef, TypeNameMetaFieldDef

from pointscene.graphql.errors import QUERY_TOO_COMPLEX


@dataclass(frozen=True)
class Limits:
    max_tokens: int
    max_comments: int
    max_aliases: int
    max_depth: int
    max_cost: int
    list_factor: int

    @classmethod
    def from_settings(cls) -> "Limits":
        return cls(
            max_tokens=settings.GRAPHQL_MAX_TOKENS,
            max_comments=settings.GRAPHQL_MAX_COMMENTS,
            max_aliases=settings.GRAPHQL_MAX_ALIASES,
            max_depth=settings.GRAPHQL_MAX_DEPTH,
            max_cost=settings.GRAPHQL_MAX_COST,
            list_factor=settings.GRAPHQL_LIST_COST_FACTOR,
        )


def too_complex(limit: str, maximum: int, message: str) -> GraphQLError:
    return GraphQLError(
        f"Query too complex: {message} (limit: {limit}, at most {maximum}).",
        extensions={"code": QUERY_TOO_COMPLEX, "limit": limit, "max": maximum},
    )


class _TooComplex(Exception):
    def __init__(self, error: GraphQLError) -> None:
        super().__init__(error.message)
        self.error = error


class _LimitedParser(Parser):
    """graphql-core's parser, giving up as soon as the document has too many aliases or selections.

    Counting while parsing is what keeps a bomb cheap: parsing alone costs about 8 µs a token, and a
    legitimate document may carry a 64 KiB workflow literal of some 30,000 tokens, so the token limit cannot
    be the one that stops 1,000 aliases in time. Every selection costs at least 1 in `QueryCostRule`, so more
    selections than the cost budget can never pass it.
    """

    def __init__(self, source: str, limits: Limits) -> None:
        super().__init__(source, max_lexical_tokens=limits.max_tokens, max_comments=limits.max_comments)
        self._limits = limits
        self._aliases = 0
        self._selections = 0

    def parse_selection(self):  # noqa: ANN201 - graphql-core's own signature
        self._selections += 1
        if self._selections > self._limits.max_cost:
            raise _TooComplex(too_complex("cost", self._limits.max_cost, "the document has too many fields"))
        return super().parse_selection()

    def parse_field(self) -> FieldNode:
        node = super().parse_field()
        if node.alias is not None:
            self._aliases += 1
            if self._aliases > self._limits.max_aliases:
                raise _TooComplex(too_complex("aliases", self._limits.max_aliases, "the document has too many aliases"))
        return node


def parse_limited(query: str, limits: Limits) -> DocumentNode:
    """Parse `query`, raising a GraphQLError: a syntax error as graphql-core words it, a limit as QUERY_TOO_COMPLEX."""
    parser = _LimitedParser(query, limits)
    try:
        return parser.parse_document()
    except _TooComplex as exc:
        raise exc.error from None
    except RecursionError:
        pass
    except GraphQLSyntaxError as exc:
        # graphql-core's own limits end their message so; a plain syntax error is left as it is.
        if exc.message.endswith("Parsing aborted."):
            limit = "comments" if " comments." in exc.message else "tokens"
            maximum = limits.max_comments if limit == "comments" else limits.max_tokens
            raise too_complex(limit, maximum, "the document is too long") from None
        raise
    # Raised outside the except block so the error does not keep the deep traceback alive.
    raise too_complex("depth", limits.max_depth, "the document is nested too deeply")


def _cap(value: int, limits: Limits) -> int:
    # Costs multiply along nested lists; capping just above the budget keeps the numbers small.
    return min(value, limits.max_cost + 1)


# Introspection lists are the schema's own, in memory and a few dozen long: a smaller factor lets GraphiQL's
# introspection query through the budget, while its one cycle (__Type.fields -> type -> fields) still multiplies.
INTROSPECTION_LIST_FACTOR = 3


def _list_factor(field_type, limits: Limits) -> int:  # noqa: ANN001 - any GraphQL output type
    factor = 1
    per_list = INTROSPECTION_LIST_FACTOR if get_named_type(field_type).name.startswith("__") else limits.list_factor
    while True:
        if is_non_null_type(field_type):
            field_type = field_type.of_type
        elif is_list_type(field_type):
            factor *= per_list
            field_type = field_type.of_type
        else:
            return factor


def query_cost_rule(limits: Limits) -> type[ValidationRule]:
    class QueryCostRule(ValidationRule):
        """Depth and cost of every operation, fragments expanded (each once, cycles cut: NoFragmentCycles
        reports those); unknown fields and types cost 1 and are left to the specified rules."""

        def enter_document(self, node: DocumentNode, *_args: object) -> object:
            schema = self.context.schema
            fragments = {d.name.value: d for d in node.definitions if isinstance(d, FragmentDefinitionNode)}
            walker = _Walker(schema, fragments, limits)
            total = 0
            for definition in node.definitions:
                if not isinstance(definition, OperationDefinitionNode):
                    continue
                cost, depth = walker.selection_set(definition.selection_set, _root_type(schema, definition.operation))
                if depth > limits.max_depth:
                    self.report_error(too_complex("depth", limits.max_depth, f"fields are nested {depth} deep"))
                    return self.BREAK
                total = _cap(total + cost, limits)
            if total > limits.max_cost:
                self.report_error(too_complex("cost", limits.max_cost, "the document selects too much"))
            return self.BREAK

    return QueryCostRule


def _root_type(schema: GraphQLSchema, operation: OperationType):  # noqa: ANN202 - a GraphQLObjectType or None
    return {
        OperationType.QUERY: schema.query_type,
        OperationType.MUTATION: schema.mutation_type,
        OperationType.SUBSCRIPTION: schema.subscription_type,
    }[operation]


class _Walker:
    def __init__(self, schema: GraphQLSchema, fragments: dict[str, FragmentDefinitionNode], limits: Limits) -> None:
        self.schema = schema
        self.fragments = fragments
        self.limits = limits
        self.done: dict[str, tuple[int, int]] = {}
        self.active: set[str] = set()

    def selection_set(self, node: SelectionSetNode, parent) -> tuple[int, int]:  # noqa: ANN001
        cost = depth = 0
        for selection in node.selections:
            if isinstance(selection, FieldNode):
                c, d = self.field(selection, parent)
            elif isinstance(selection, InlineFragmentNode):
                inner = self._type(selection.type_condition.name.value) if selection.type_condition else parent
                c, d = self.selection_set(selection.selection_set, inner)
            elif isinstance(selection, FragmentSpreadNode):
                c, d = self.fragment(selection.name.value)
            else:  # pragma: no cover - the parser makes no other selection
                c, d = 1, 0
            cost = _cap(cost + c, self.limits)
            depth = max(depth, d)
        return cost, depth

    def field(self, node: FieldNode, parent) -> tuple[int, int]:  # noqa: ANN001
        if node.selection_set is None:
            return 1, 1
        definition = self._field_def(parent, node.name.value)
        if definition is None:
            inner, factor = None, self.limits.list_factor
        else:
            inner, factor = get_named_type(definition.type), _list_factor(definition.type, self.limits)
        cost, depth = self.selection_set(node.selection_set, inner if is_composite_type(inner) else None)
        return _cap(1 + factor * cost, self.limits), 1 + depth

    def fragment(self, name: str) -> tuple[int, int]:
        if name in self.done:
            return self.done[name]
        definition = self.fragments.get(name)
        if definition is None or name in self.active:
            return 1, 0
        self.active.add(name)
        result = self.selection_set(definition.selection_set, self._type(definition.type_condition.name.value))
        self.active.discard(name)
        self.done[name] = result
        return result

    def _type(self, name: str):  # noqa: ANN202
        return self.schema.get_type(name)

    def _field_def(self, parent, name: str):  # noqa: ANN001, ANN202
        if name == "__typename":
            return TypeNameMetaFieldDef
        if parent is not None and parent is self.schema.query_type:
            if name == "__schema":
                return SchemaMetaFieldDef
            if name == "__type":
                return TypeMetaFieldDef
        fields = getattr(parent, "fields", None)
        return fields.get(name) if fields else None


class NoSchemaIntrospection(DisableIntrospection):
    """graphene's rule, but `__typename` stays allowed: clients such as Apollo add it to every selection."""

    def enter_field(self, node: FieldNode, *args: object) -> None:
        if node.name.value != "__typename":
            super().enter_field(node, *args)


def check(schema: GraphQLSchema, query: str, limits: Limits | None = None) -> GraphQLError | None:
    """The first limit `query` breaks, or None; parses it with the limits first so a bomb stops early."""
    limits = limits or Limits.from_settings()
    try:
        document = parse_limited(query, limits)
    except GraphQLError as error:
        return error
    try:
        errors = validate(schema, document, [query_cost_rule(limits)])
    except RecursionError:
        # graphql-core aborts validation of fragments nested over 200 deep itself; this is the last resort.
        return too_complex("depth", limits.max_depth, "fragments are nested too deeply")
    return errors[0] if errors else None


def validation_rules() -> tuple[type[ValidationRule], ...] | None:
    """The rules graphene-django validates with; None means graphql's specified rules."""
    if settings.GRAPHQL_INTROSPECTION:
        return None
    return (*specified_rules, NoSchemaIntrospection)


def body_too_large(request: HttpRequest) -> str | None:
    """Why a body is refused unread (its Content-Length is over GRAPHQL_MAX_BODY_BYTES), or None.

    Django reads no more than Content-Length (none when it is absent), so checking it before anything touches
    request.body is what keeps an oversize body out of memory.
    """
    maximum = settings.GRAPHQL_MAX_BODY_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    if declared <= maximum:
        return None
    return f"The request body is {declared} bytes; at most {maximum} are accepted."
