"""The legacy parameters: DynamoDB's checks, and translations that behave alike."""

from __future__ import annotations

import pytest

from meridian.model.errors import ValidationException
from meridian.model.expressions import KeyCondition, compile_expressions
from meridian.model.expressions.legacy import (
    bind_legacy_key_conditions,
    check_not_mixed,
    translate_attribute_updates,
    translate_attributes_to_get,
    translate_expected,
    translate_filter,
    translate_key_conditions,
)

_INVALID = "One or more parameter values were invalid: "
KEY = {"pk": {"S": "k"}}
ITEM = {
    "pk": {"S": "k"},
    "n": {"N": "5"},
    "s": {"S": "hello"},
    "ss": {"SS": ["a", "b"]},
    "l": {"L": [{"S": "x"}]},
}


def _op(operator: str, *values: dict) -> dict:
    """A legacy condition: ComparisonOperator and AttributeValueList."""
    condition: dict = {"ComparisonOperator": operator}
    if values:
        condition["AttributeValueList"] = list(values)
    return condition


def _value_op(operator: str, value: dict) -> dict:
    """A legacy condition given with Value rather than AttributeValueList."""
    return {"ComparisonOperator": operator, "Value": value}


S_A, N_1 = {"S": "a"}, {"N": "1"}
_COUNT = _INVALID + "Invalid number of argument(s) for the {} ComparisonOperator"
_NOT_VALID = _INVALID + "ComparisonOperator {} is not valid for {} AttributeValue type"


def _raises(call, *args) -> str:
    with pytest.raises(ValidationException) as caught:
        call(*args)
    return caught.value.message


def _condition(translation) -> bool:
    text, names, values = translation
    compiled = compile_expressions(condition=text, names=names or None, values=values or None, legacy=True)
    return compiled.condition_matches(ITEM)


# --- mixing ------------------------------------------------------------------------


def test_mixing_expression_and_legacy_parameters():
    request = {
        "Expected": {"a": {}},
        "AttributeUpdates": {},
        "ExpressionAttributeNames": {},
        "ExpressionAttributeValues": {},
        "ConditionExpression": "",
        "UpdateExpression": "",
    }
    assert _raises(check_not_mixed, request, "UpdateItem") == (
        "Can not use both expression and non-expression parameters in the same request: "
        "Non-expression parameters: {AttributeUpdates, Expected} Expression parameters: {UpdateExpression, ConditionExpression}"
    )
    assert _raises(check_not_mixed, {"AttributesToGet": ["a"], "ProjectionExpression": "a"}, "GetItem") == (
        "Can not use both expression and non-expression parameters in the same request: "
        "Non-expression parameters: {AttributesToGet} Expression parameters: {ProjectionExpression}"
    )
    assert _raises(check_not_mixed, {"Expected": {"a": {}}, "ExpressionAttributeNames": {}}, "UpdateItem") == (
        "ExpressionAttributeNames can only be specified when using expressions"
    )
    assert _raises(check_not_mixed, {"Expected": {"a": {}}, "ExpressionAttributeValues": {}}, "UpdateItem") == (
        "ExpressionAttributeValues can only be specified when using expressions: "
        "UpdateExpression and ConditionExpression are null"
    )
    assert _raises(check_not_mixed, {"ExpressionAttributeValues": {}}, "Query") == (
        "ExpressionAttributeValues can only be specified when using expressions: "
        "FilterExpression and KeyConditionExpression are null"
    )
    assert _raises(check_not_mixed, {"ExpressionAttributeValues": {}}, "PutItem") == (
        "ExpressionAttributeValues can only be specified when using expressions: ConditionExpression is null"
    )
    assert _raises(check_not_mixed, {"ConditionalOperator": "OR"}, "Scan") == (
        "ConditionalOperator cannot be used without Filter or Expected"
    )


def test_key_conditions_may_go_with_a_filter_expression():
    check_not_mixed({"KeyConditions": {}, "FilterExpression": "a = :v"}, "Query")
    assert "Non-expression parameters: {KeyConditions}" in _raises(
        check_not_mixed, {"KeyConditions": {}, "KeyConditionExpression": "a = :v"}, "Query"
    )


# --- Expected ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "expected, message",
    [
        ({"a": {}}, "Value must be provided when Exists is null for Attribute: a"),
        ({"a": {"Exists": True}}, "Value must be provided when Exists is true for Attribute: a"),
        ({"a": {"Exists": False, "Value": S_A}}, "Value cannot be used when Exists is false for Attribute: a"),
        (
            {"a": {"Value": S_A, "AttributeValueList": []}},
            "Value and AttributeValueList cannot be used together for Attribute: a",
        ),
        (
            {"a": {"ComparisonOperator": "EQ", "Exists": True}},
            "Exists and ComparisonOperator cannot be used together for Attribute: a",
        ),
        ({"a": _op("EQ")}, "Value or AttributeValueList must be used with ComparisonOperator: EQ for Attribute: a"),
        (
            {"a": {"AttributeValueList": [S_A]}},
            "AttributeValueList can only be used with a ComparisonOperator for Attribute: a",
        ),
        ({"a": _value_op("NULL", S_A)}, "Invalid number of argument(s) for the NULL ComparisonOperator"),
        ({"a": _op("BETWEEN", S_A)}, "Invalid number of argument(s) for the BETWEEN ComparisonOperator"),
        ({"a": _op("IN", S_A, N_1)}, "AttributeValues inside AttributeValueList must be of same type"),
        ({"a": _value_op("LT", {"SS": ["a"]})}, "ComparisonOperator LT is not valid for SS AttributeValue type"),
    ],
)
def test_expected_checks(expected, message):
    assert _raises(translate_expected, expected, None) == _INVALID + message


def test_expected_between_order_and_conditional_operator():
    between = {"a": {"ComparisonOperator": "BETWEEN", "AttributeValueList": [{"S": "b"}, {"S": "a"}]}}
    assert _raises(translate_expected, between, None) == (
        "The BETWEEN condition was provided a range where the lower bound is greater than the upper bound"
    )
    assert _raises(translate_expected, {"a": {"Exists": False}}, "OR") == (
        "ConditionalOperator can only be used when Filter or Expected has two or more elements"
    )


@pytest.mark.parametrize(
    "expected, operator, result",
    [
        ({"n": {"Value": {"N": "5.0"}}}, None, True),
        ({"n": {"Value": {"N": "5"}, "Exists": True}, "gone": {"Exists": False}}, None, True),
        ({"n": {"Exists": False}}, None, False),
        ({"n": _op("GT", {"N": "4"})}, None, True),
        ({"n": _value_op("NE", {"N": "4"}), "gone": _value_op("NE", {"N": "4"})}, None, True),
        ({"s": _value_op("BEGINS_WITH", {"S": "he"})}, None, True),
        ({"ss": _value_op("CONTAINS", S_A)}, None, True),
        ({"ss": _value_op("NOT_CONTAINS", {"S": "z"})}, None, True),
        ({"gone": _value_op("NOT_CONTAINS", {"S": "z"})}, None, False),
        ({"n": _op("IN", *({"N": str(i)} for i in range(250)))}, None, True),
        ({"n": _op("BETWEEN", {"N": "5"}, {"N": "6"})}, None, True),
        ({"gone": _op("NULL"), "n": _op("NOT_NULL")}, "AND", True),
        ({"gone": _op("NOT_NULL"), "n": _op("NOT_NULL")}, "AND", False),
        ({"gone": _op("NOT_NULL"), "n": _op("NOT_NULL")}, "OR", True),
    ],
)
def test_expected_semantics(expected, operator, result):
    assert _condition(translate_expected(expected, operator)) is result


def test_empty_expected_is_no_condition():
    assert translate_expected({}, None) == (None, {}, {})


# --- filters and key conditions ----------------------------------------------------


@pytest.mark.parametrize(
    "conditions, message",
    [
        ({"a": _op("EQ")}, _COUNT.format("EQ")),
        ({"a": {"ComparisonOperator": "EQ", "AttributeValueList": []}}, _COUNT.format("EQ")),
        ({"a": _op("IN")}, _COUNT.format("IN")),
        ({"a": _op("NOT_NULL", S_A)}, _COUNT.format("NOT_NULL")),
        (
            {"a": _op("EQ", N_1, {"S": "a", "N": "1"})},
            "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes",
        ),
        ({"a": _op("BEGINS_WITH", N_1)}, _NOT_VALID.format("BEGINS_WITH", "N")),
        ({"a": _op("CONTAINS", {"L": []})}, _NOT_VALID.format("CONTAINS", "L")),
        ({"a": _op("BETWEEN", {"BOOL": True}, {"BOOL": True})}, _NOT_VALID.format("BETWEEN", "BOOL")),
    ],
)
def test_filter_checks(conditions, message):
    assert _raises(translate_filter, conditions, None) == message


def test_filter_translation():
    text, names, values = translate_filter(
        {"n": {"ComparisonOperator": "LE", "AttributeValueList": [{"N": "5"}]}, "s": {"ComparisonOperator": "NULL"}},
        "OR",
    )
    assert text == "#f0 <= :f0 OR attribute_not_exists(#f1)"
    assert names == {"#f0": "n", "#f1": "s"} and values == {":f0": {"N": "5"}}
    compiled = compile_expressions(filter=text, names=names, values=values, legacy=True)
    assert compiled.filter_matches(ITEM)


def test_key_conditions():
    assert _raises(translate_key_conditions, {}) == "Conditions can be of length 1 or 2 only"
    nine = {name: {"ComparisonOperator": "NULL"} for name in "abcdefghi"}  # more than any key schema holds
    assert _raises(translate_key_conditions, nine) == "Conditions can be of length 1 or 2 only"
    three = {name: {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "x"}]} for name in "abc"}
    translate_key_conditions(three)  # a multi-attribute GSI's Query may name more: counted once the schema is known
    assert _raises(bind_legacy_key_conditions, three, [("a", "S"), ("b", "S")]) == (
        "Conditions can be of length 1 or 2 only"
    )
    conditions = {
        "a": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "p"}]},
        "b": {"ComparisonOperator": "BEGINS_WITH", "AttributeValueList": [{"S": "x"}]},
    }
    schema = [("a", "S"), ("b", "S")]
    text, names, values = translate_key_conditions(conditions)
    assert text == "#k0 = :k0 AND begins_with(#k1, :k1)"
    expected = KeyCondition("a", {"S": "p"}, "b", "BEGINS_WITH", ({"S": "x"},))
    assert bind_legacy_key_conditions(conditions, schema) == expected
    compiled = compile_expressions(key_condition=text, names=names, values=values, legacy=True)
    assert compiled.bind_key_condition(schema) == expected


_NOT_INDEXABLE = "Attempted conditional constraint is not an indexable operation"
_NOT_SUPPORTED = "Query key condition not supported"


@pytest.mark.parametrize(
    "conditions, schema, message",
    [
        ({"a": _op("NULL")}, [("a", "S")], _NOT_INDEXABLE),
        ({"a": _op("EQ", S_A), "c": _op("NULL")}, [("a", "S"), ("c", "S")], _NOT_INDEXABLE),
        ({"a": _op("LE", S_A)}, [("a", "S")], _NOT_SUPPORTED),
        ({"a": _op("EQ", S_A), "b": _op("EQ", S_A)}, [("a", "S")], _NOT_SUPPORTED),
        ({"z": _op("NULL")}, [("a", "S"), ("b", "S")], "Query condition missed key schema element: a"),
        ({"a": _op("EQ", N_1)}, [("a", "S")], _INVALID + "Condition parameter type does not match schema type"),
    ],
)
def test_key_conditions_against_the_schema(conditions, schema, message):
    assert _raises(bind_legacy_key_conditions, conditions, schema) == message


# --- AttributeUpdates and AttributesToGet --------------------------------------------


@pytest.mark.parametrize(
    "updates, message",
    [
        ({"a": {"x": "whatever"}}, "Only DELETE action is allowed when no attribute value is specified"),
        ({"a": {"Action": "DELETE", "Value": {"S": "1"}}}, "DELETE action with value is not supported for the type S"),
        ({"a": {"Action": "DELETE", "Value": {"L": []}}}, "DELETE action with value is not supported for the type L"),
        ({"a": {"Action": "ADD", "Value": {"B": "Yg=="}}}, "ADD action is not supported for the type B"),
        ({"a": {"Action": "ADD", "Value": {"M": {}}}}, "ADD action is not supported for the type M"),
        ({"a": {"Value": {"SS": []}}}, "An string set  may not be empty"),
    ],
)
def test_attribute_updates_checks(updates, message):
    assert _raises(translate_attribute_updates, updates) == _INVALID + message


def _updated(updates, item=ITEM):
    text, names, values = translate_attribute_updates(updates)
    compiled = compile_expressions(update=text, names=names, values=values or None, key_attributes=("pk",), legacy=True)
    return compiled.apply_update(item, KEY)[0]


def test_attribute_updates_semantics():
    new = _updated(
        {
            "s": {"Action": "DELETE"},
            "n": {"Action": "ADD", "Value": {"N": "2"}},
            "ss": {"Action": "DELETE", "Value": {"SS": ["a"]}},
            "l": {"Action": "ADD", "Value": {"L": [{"N": "1"}]}},
            "fresh": {"Action": "ADD", "Value": {"L": [{"S": "a"}]}},
            "put": {"Value": {"S": "v"}},
            "gone": {"Action": "DELETE"},
        }
    )
    assert new == {
        "pk": {"S": "k"},
        "n": {"N": "7"},
        "ss": {"SS": ["b"]},
        "l": {"L": [{"S": "x"}, {"N": "1"}]},
        "fresh": {"L": [{"S": "a"}]},
        "put": {"S": "v"},
    }
    assert _updated({"a": {"Action": "ADD", "Value": {"SS": ["x"]}}}, None) == {"pk": {"S": "k"}, "a": {"SS": ["x"]}}


def test_attribute_updates_use_legacy_wording():
    for updates in (
        {"s": {"Action": "ADD", "Value": {"N": "1"}}},
        {"s": {"Action": "ADD", "Value": {"L": []}}},
        {"n": {"Action": "DELETE", "Value": {"NS": ["5"]}}},
        {"ss": {"Action": "ADD", "Value": {"NS": ["1"]}}},
    ):
        with pytest.raises(ValidationException, match="^Type mismatch for attribute to update$"):
            _updated(updates)


def test_attribute_updates_of_key_and_empty():
    with pytest.raises(ValidationException) as caught:
        _updated({"pk": {"Value": {"S": "x"}}})
    assert caught.value.message == _INVALID + "Cannot update attribute pk. This attribute is part of the key"
    assert translate_attribute_updates({}) == (None, {}, {})


def test_attributes_to_get():
    text, names = translate_attributes_to_get(["a", "weird.name", "b"])
    assert text == "#p0, #p1, #p2" and names == {"#p0": "a", "#p1": "weird.name", "#p2": "b"}
    assert compile_expressions(projection=text, names=names, legacy=True).project(
        {"weird.name": {"S": "x"}, "c": {"S": "y"}}
    ) == {"weird.name": {"S": "x"}}
    assert _raises(translate_attributes_to_get, ["a", "a"]) == _INVALID + "Duplicate value in attribute name: a"


def test_translations_merge_without_clashes():
    condition, condition_names, condition_values = translate_expected({"n": {"Value": {"N": "5"}}}, None)
    update, update_names, update_values = translate_attribute_updates({"n": {"Action": "ADD", "Value": {"N": "1"}}})
    compiled = compile_expressions(
        condition=condition,
        update=update,
        names={**condition_names, **update_names},
        values={**condition_values, **update_values},
        legacy=True,
    )
    assert compiled.condition_matches(ITEM)
    assert compiled.apply_update(ITEM, KEY)[0]["n"] == {"N": "6"}
