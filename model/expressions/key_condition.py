"""KeyConditionExpression: its shape, then its fit to a key schema.

A key condition parses like any condition, then must have this shape: an
``AND`` of one or two simple conditions, each comparing one top-level key
attribute with values (``=``, ``<``, ``<=``, ``>``, ``>=``, ``BETWEEN``,
``begins_with``).  That shape is checked with the request (before the table
is looked up, as DynamoDB does); the fit to the table's or index's key
schema is checked by ``bind_key_conditions`` once the schema is known.
Both report DynamoDB's messages, which here carry no ``Invalid
KeyConditionExpression:`` prefix.

A global index's key may hold several HASH and several RANGE attributes
(multi-attribute keys).  A Query of one then gives every HASH attribute an
equality, and conditions on a leading run of its RANGE attributes, in key
schema order with no gap, where only the last one named may be a range
condition (``<``, ``BETWEEN``, ``begins_with`` ...); the clauses may be
written in any order.  The number of conditions is therefore only known to
be too large once the key schema is (``bind_key_conditions``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from .. import limits
from ..errors import ValidationException
from ..values import decode_binary
from .ast import And, AttrPath, Between, Call, Compare, In, Literal, Not, Or
from .evaluate import compare_scalars, resolve_path, type_of, values_equal

__all__ = ["KeyCondition", "extract_key_conditions", "bind_key_conditions", "INDEXABLE_OPERATORS"]

Value = dict[str, Any]
# attribute name -> (operator, values), the operator being a legacy
# ComparisonOperator name: EQ, LT, LE, GT, GE, BETWEEN, BEGINS_WITH (and, from
# legacy KeyConditions only, the non-indexable ones).
KeyConditions = dict[str, tuple[str, tuple[Value, ...]]]

INDEXABLE_OPERATORS = frozenset({"EQ", "LT", "LE", "GT", "GE", "BETWEEN", "BEGINS_WITH"})
_OPERATOR_NAMES = {"=": "EQ", "<": "LT", "<=": "LE", ">": "GT", ">=": "GE"}
_FLIPPED = {"EQ": "EQ", "LT": "GT", "LE": "GE", "GT": "LT", "GE": "LE"}
_NOT_KEY_FUNCTIONS = frozenset({"attribute_exists", "attribute_not_exists", "attribute_type", "contains"})
TOO_MANY_CONDITIONS = "Conditions can be of length 1 or 2 only"
NOT_SUPPORTED = "Query key condition not supported"
TYPE_MISMATCH = "One or more parameter values were invalid: Condition parameter type does not match schema type"
NOT_INDEXABLE = "Attempted conditional constraint is not an indexable operation"


@dataclass(frozen=True, slots=True)
class KeyCondition:
    """A Query's key condition bound to a key schema.

    ``sk_op`` is one of EQ, LT, LE, GT, GE, BETWEEN, BEGINS_WITH (``None``
    with ``sk_name`` when only the partition key is constrained).
    A multi-attribute key's other HASH attributes are ``pk_more`` and the
    equalities on the RANGE attributes before ``sk_name`` are ``sk_equal``,
    each ``((name, value), ...)`` in key schema order.
    """

    pk_name: str
    pk_value: Value
    sk_name: str | None
    sk_op: str | None
    sk_values: tuple[Value, ...]
    pk_more: tuple[tuple[str, Value], ...] = ()
    sk_equal: tuple[tuple[str, Value], ...] = ()

    @property
    def partition(self) -> tuple[tuple[str, Value], ...]:
        """Every HASH attribute's ``(name, value)``, in key schema order."""
        return ((self.pk_name, self.pk_value), *self.pk_more)

    def sort_key_matches(self, value: Value | None) -> bool:
        """Whether a sort key value satisfies the sort key condition."""
        op = self.sk_op
        if op is None:
            return True
        if value is None:
            return False
        first = self.sk_values[0]
        if op == "EQ":
            return values_equal(value, first)
        if op == "BEGINS_WITH":
            value_type = type_of(value)
            if value_type != type_of(first) or value_type not in ("S", "B"):
                return False
            if value_type == "S":
                return value["S"].startswith(first["S"])
            return decode_binary(value["B"]).startswith(decode_binary(first["B"]))
        order = compare_scalars(value, first)
        if order is None:
            return False
        if op == "LT":
            return order < 0
        if op == "LE":
            return order <= 0
        if op == "GT":
            return order > 0
        if op == "GE":
            return order >= 0
        high = compare_scalars(value, self.sk_values[1])
        return order >= 0 and high is not None and high <= 0

    def matches(self, item: dict[str, Value]) -> bool:
        """Whether an item (or key) satisfies the whole key condition."""
        for name, value in (*self.partition, *self.sk_equal):
            if not values_equal(item.get(name), value):
                return False
        return self.sk_name is None or self.sort_key_matches(resolve_path(item, (self.sk_name,)))


def _invalid(message: str) -> ValidationException:
    return ValidationException(message)


def _collect(node: Any, conditions: KeyConditions) -> None:
    kind = type(node)
    if kind is Or:
        raise _invalid("Invalid operator used in KeyConditionExpression: OR")
    if kind is Not:
        raise _invalid("Invalid operator used in KeyConditionExpression: NOT")
    if kind is In:
        raise _invalid("Invalid operator used in KeyConditionExpression: IN")
    if kind is Compare and node.op == "<>":
        raise _invalid("Invalid operator used in KeyConditionExpression: <>")
    if kind is Call:
        if node.name in _NOT_KEY_FUNCTIONS:
            raise _invalid(f"Invalid operator used in KeyConditionExpression: {node.name}")
        if node.name == "size":
            raise _invalid("KeyConditionExpressions cannot contain nested operations")
        if type(node.args[0]) is not AttrPath:
            raise _invalid(
                "Invalid condition in KeyConditionExpression: "
                "begins_with operator must have the key attribute as its first operand"
            )
        operands: tuple[Any, ...] = node.args
    elif kind is Between:
        if type(node.operand) is not AttrPath:
            raise _invalid(
                "Invalid condition in KeyConditionExpression: "
                "BETWEEN operator must have the key attribute as its first operand"
            )
        operands = (node.operand, node.low, node.high)
    elif kind is Compare:
        operands = (node.left, node.right)
    else:  # And
        operands = node.items
    name = None
    position = 0
    for index, operand in enumerate(operands):
        operand_kind = type(operand)
        if operand_kind is AttrPath:
            if name is not None:
                raise _invalid(
                    "Invalid condition in KeyConditionExpression: Multiple attribute names used in one condition"
                )
            if len(operand.elements) > 1:
                raise _invalid("KeyConditionExpressions cannot have conditions on nested attributes")
            name = operand.elements[0]
            position = index
        elif operand_kind is not Literal:
            _collect(operand, conditions)
    if kind is And:
        return
    if name is None:
        raise _invalid("Invalid condition in KeyConditionExpression: No key attribute specified")
    if name in conditions:
        raise _invalid("KeyConditionExpressions must only contain one condition per key")
    values = tuple(operand.value for operand in operands if type(operand) is Literal)
    if kind is Compare:
        op = _OPERATOR_NAMES[node.op]
        conditions[name] = (_FLIPPED[op] if position else op, values)
    elif kind is Between:
        conditions[name] = ("BETWEEN", values)
    else:
        conditions[name] = ("BEGINS_WITH", values)


def extract_key_conditions(tree: Any) -> KeyConditions:
    """The per-attribute conditions of a bound key condition tree.

    Raises ValidationException when the tree does not have a key
    condition's shape.
    """
    conditions: KeyConditions = {}
    _collect(tree, conditions)
    if len(conditions) > limits.KEY_CONDITIONS_MAX:  # no key schema has more attributes
        raise _invalid(TOO_MANY_CONDITIONS)
    return conditions


def bind_key_conditions(conditions: KeyConditions, key_schema: Sequence[tuple[str, str]],
                        hash_count: int = 1) -> KeyCondition:
    """Fit conditions to a key schema: ``hash_count`` HASH attributes ``(name,
    type)``, then the RANGE ones (``[(partition key, type), (sort key, type)?]``
    but for a multi-attribute GSI)."""
    if hash_count > 1 or len(key_schema) - hash_count > 1:
        return _bind_multi(conditions, key_schema, hash_count)
    if len(conditions) > 2:
        raise _invalid(TOO_MANY_CONDITIONS)
    if len(key_schema) == 1 and len(conditions) > 1:
        raise _invalid(NOT_SUPPORTED)
    for name, _ in key_schema:
        if name not in conditions:
            raise _invalid(f"Query condition missed key schema element: {name}")
        if len(conditions) <= 1:
            break
    _check_operators_and_types(conditions, key_schema)
    pk_name = key_schema[0][0]
    pk_op, pk_values = conditions[pk_name]
    if pk_op != "EQ":
        raise _invalid(NOT_SUPPORTED)
    if len(key_schema) > 1 and key_schema[1][0] in conditions:
        sk_name = key_schema[1][0]
        sk_op, sk_values = conditions[sk_name]
        return KeyCondition(pk_name, pk_values[0], sk_name, sk_op, sk_values)
    return KeyCondition(pk_name, pk_values[0], None, None, ())


def _check_operators_and_types(conditions: KeyConditions, key_schema: Sequence[tuple[str, str]]) -> None:
    for op, _ in conditions.values():
        if op not in INDEXABLE_OPERATORS:
            raise _invalid(NOT_INDEXABLE)
    for name, key_type in key_schema:
        condition = conditions.get(name)
        if condition is not None and any(type_of(value) != key_type for value in condition[1]):
            raise _invalid(TYPE_MISMATCH)


def _bind_multi(conditions: KeyConditions, key_schema: Sequence[tuple[str, str]], hash_count: int) -> KeyCondition:
    """A multi-attribute key's conditions: every HASH attribute by equality, a
    leading run of RANGE attributes with only the last one a range (live
    DynamoDB's wording: "RANGE key attributes b must have equality conditions
    specified in the query because a condition is present on key attribute c")."""
    hash_schema, range_schema = key_schema[:hash_count], key_schema[hash_count:]
    for name, _ in hash_schema:
        if name not in conditions:
            raise _invalid(f"Query condition missed key schema element: {name}")
    key_names = {name for name, _ in key_schema}
    if any(name not in key_names for name in conditions):
        raise _invalid(NOT_SUPPORTED)
    _check_operators_and_types(conditions, key_schema)
    if any(conditions[name][0] != "EQ" for name, _ in hash_schema):
        raise _invalid(NOT_SUPPORTED)
    range_names = [name for name, _ in range_schema]
    for later, name in enumerate(range_names):
        if name not in conditions:
            continue
        for earlier in range_names[:later]:
            condition = conditions.get(earlier)
            if condition is None or condition[0] != "EQ":
                raise _invalid(
                    f"RANGE key attributes {earlier} must have equality conditions specified in the query because "
                    f"a condition is present on key attribute {name}"
                )
    named = [name for name in range_names if name in conditions]
    pk_more = tuple((name, conditions[name][1][0]) for name, _ in hash_schema[1:])
    (pk_name, _), pk_value = hash_schema[0], conditions[hash_schema[0][0]][1][0]
    if not named:
        return KeyCondition(pk_name, pk_value, None, None, (), pk_more)
    sk_name = named[-1]
    sk_op, sk_values = conditions[sk_name]
    sk_equal = tuple((name, conditions[name][1][0]) for name in named[:-1])
    return KeyCondition(pk_name, pk_value, sk_name, sk_op, sk_values, pk_more, sk_equal)
