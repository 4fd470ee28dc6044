"""KeyConditionExpression: its shape, then its fit to a key schema."""

from __future__ import annotations

import pytest

from meridian.model.errors import ValidationException
from meridian.model.expressions import KeyCondition, compile_expressions

HASH = [("a", "S")]
RANGE = [("a", "S"), ("b", "S")]


def _shape_error(expression: str, values=None) -> str:
    with pytest.raises(ValidationException) as caught:
        compile_expressions(key_condition=expression, values=values)
    return caught.value.message


def _bind(expression: str, schema, values=None, names=None) -> KeyCondition:
    return compile_expressions(key_condition=expression, values=values, names=names).bind_key_condition(schema)


def _bind_error(expression: str, schema, values=None) -> str:
    compiled = compile_expressions(key_condition=expression, values=values)
    with pytest.raises(ValidationException) as caught:
        compiled.bind_key_condition(schema)
    return caught.value.message


@pytest.mark.parametrize(
    "expression, operator",
    [
        ("a > b and size(b) > c or a > c", "OR"),
        ("a in (b, size(c), d)", "IN"),
        ("attribute_exists(a)", "attribute_exists"),
        ("attribute_not_exists(a)", "attribute_not_exists"),
        ("contains(a.d, b)", "contains"),
        ("not a > b", "NOT"),
        ("a <> b", "<>"),
    ],
)
def test_invalid_operators(expression, operator):
    assert _shape_error(expression) == f"Invalid operator used in KeyConditionExpression: {operator}"


def test_attribute_type_is_checked_as_a_condition_first():
    assert _shape_error("attribute_type(a, b)").startswith(
        "Invalid KeyConditionExpression: Incorrect operand type for operator or function; "
        "operator or function: attribute_type, operand type:"
    )
    assert _shape_error("attribute_type(a, :a)", {":a": {"S": "S"}}) == (
        "Invalid operator used in KeyConditionExpression: attribute_type"
    )


_FIRST = "Invalid condition in KeyConditionExpression: {} operator must have the key attribute as its first operand"
_MULTIPLE = "Invalid condition in KeyConditionExpression: Multiple attribute names used in one condition"


@pytest.mark.parametrize(
    "expression, problem",
    [
        (":a between size(b) and size(a) and b > :b", _FIRST.format("BETWEEN")),
        ("begins_with(:a, b) and a > :b", _FIRST.format("begins_with")),
        ("size(b) > a AND a.b > b AND b > c", "KeyConditionExpressions cannot contain nested operations"),
        ("a > size(b.d)", "KeyConditionExpressions cannot contain nested operations"),
        ("a between size(b) and size(a)", "KeyConditionExpressions cannot contain nested operations"),
        ("b > a.b", _MULTIPLE),
        ("b between c[1] and d", _MULTIPLE),
        ("a between b and size(a)", _MULTIPLE),
        ("begins_with(a, b)", _MULTIPLE),
        ("b.d > a AND c.d > e.f", "KeyConditionExpressions cannot have conditions on nested attributes"),
        ("a.d > c", "KeyConditionExpressions cannot have conditions on nested attributes"),
        ("b[0] > a", "KeyConditionExpressions cannot have conditions on nested attributes"),
        (":b > :a AND a < :b", "Invalid condition in KeyConditionExpression: No key attribute specified"),
        ("b > :a AND b < :a and c = :a and d = :a", "KeyConditionExpressions must only contain one condition per key"),
        ("(a > :a and b > :a) and (b > :a and c > :a)", "KeyConditionExpressions must only contain one condition per key"),
        ("a = :a and b = :a and c = :a and d = :a and e = :a and f = :a and g = :a and h = :a and i = :a",
         "Conditions can be of length 1 or 2 only"),
    ],
)
def test_shape_errors(expression, problem):
    values = {key: {"S": "1"} for key in (":a", ":b") if key in expression}
    assert _shape_error(expression, values or None) == problem


def test_between_bounds_use_the_parameter_name():
    assert _shape_error("a between :b and :a", {":a": {"S": "a"}, ":b": {"N": "1"}}) == (
        "Invalid KeyConditionExpression: The BETWEEN operator requires same data type for lower and upper bounds; "
        "lower bound operand: AttributeValue: {N:1}, upper bound operand: AttributeValue: {S:a}"
    )


@pytest.mark.parametrize(
    "expression, schema, problem",
    [
        ("a > :a", HASH, "Query key condition not supported"),
        (":a <= a", HASH, "Query key condition not supported"),
        ("begins_with(a, :a)", HASH, "Query key condition not supported"),
        ("a between :a and :a", HASH, "Query key condition not supported"),
        ("a = :a AND b = :a", HASH, "Query key condition not supported"),
        ("y = :a and z = :a", HASH, "Query key condition not supported"),
        ("z between :a and :a", RANGE, "Query condition missed key schema element: a"),
        ("a = :a and c = :a", RANGE, "Query condition missed key schema element: b"),
        ("b = :a", RANGE, "Query condition missed key schema element: a"),
        # Three conditions fit only a multi-attribute GSI, so they are counted against the schema.
        (":a = a and b = :a and :a = c", RANGE, "Conditions can be of length 1 or 2 only"),
        (":a = a and b = :a and :a = c", HASH, "Conditions can be of length 1 or 2 only"),
    ],
)
def test_schema_errors(expression, schema, problem):
    assert _bind_error(expression, schema, {":a": {"S": "1"}}) == problem


def test_value_types_must_match_the_schema():
    assert _bind_error(":a > a", HASH, {":a": {"N": "1"}}) == (
        "One or more parameter values were invalid: Condition parameter type does not match schema type"
    )


@pytest.mark.parametrize(
    "expression, op, values",
    [
        ("b = :x", "EQ", ("x",)),
        (":x > b", "LT", ("x",)),
        (":x <= b", "GE", ("x",)),
        ("b >= :x", "GE", ("x",)),
        ("b BETWEEN :x AND :y", "BETWEEN", ("x", "y")),
        ("begins_with(b, :x)", "BEGINS_WITH", ("x",)),
    ],
)
def test_bound_key_conditions(expression, op, values):
    request_values = {":p": {"S": "p"}, ":x": {"S": "x"}}
    if ":y" in expression:
        request_values[":y"] = {"S": "y"}
    bound = _bind(f"#p = :p AND {expression}", RANGE, request_values, {"#p": "a"})
    assert bound == KeyCondition("a", {"S": "p"}, "b", op, tuple({"S": v} for v in values))


def test_partition_key_only_and_matching():
    bound = _bind("a = :p", RANGE, {":p": {"S": "p"}})
    assert bound == KeyCondition("a", {"S": "p"}, None, None, ())
    assert bound.matches({"a": {"S": "p"}, "b": {"S": "anything"}})
    ranged = _bind("a = :p AND b BETWEEN :lo AND :hi", RANGE, {":p": {"S": "p"}, ":lo": {"S": "b"}, ":hi": {"S": "d"}})
    assert [ranged.sort_key_matches({"S": s}) for s in ("a", "b", "c", "d", "e")] == [False, True, True, True, False]
    prefix = _bind("a = :p AND begins_with(b, :x)", RANGE, {":p": {"S": "p"}, ":x": {"S": "ab"}})
    assert prefix.matches({"a": {"S": "p"}, "b": {"S": "abc"}})
    assert not prefix.matches({"a": {"S": "q"}, "b": {"S": "abc"}})
    assert not prefix.sort_key_matches({"S": "b"})
    numeric = _bind("a = :p AND b < :n", [("a", "S"), ("b", "N")], {":p": {"S": "p"}, ":n": {"N": "10"}})
    assert numeric.sort_key_matches({"N": "9.5"}) and not numeric.sort_key_matches({"N": "10"})
