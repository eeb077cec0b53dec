import graphene
from graphql.language import ast


class JSON(graphene.Scalar):
    """Any JSON value. Objects may be written inline as GraphQL object literals or passed as variables."""

    @staticmethod
    def serialize(value):
        return value

    @staticmethod
    def parse_value(value):
        return value

    @classmethod
    def parse_literal(cls, node, variables=None):
        if isinstance(node, ast.NullValueNode):
            return None
        if isinstance(node, ast.StringValueNode | ast.BooleanValueNode | ast.EnumValueNode):
            return node.value
        if isinstance(node, ast.IntValueNode):
            return int(node.value)
        if isinstance(node, ast.FloatValueNode):
            return float(node.value)
        if isinstance(node, ast.ListValueNode):
            return [cls.parse_literal(v, variables) for v in node.values]
        if isinstance(node, ast.ObjectValueNode):
            return {f.name.value: cls.parse_literal(f.value, variables) for f in node.fields}
        if isinstance(node, ast.VariableNode):
            return (variables or {}).get(node.name.value)
        raise ValueError("not a JSON value")
