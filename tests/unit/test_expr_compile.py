"""compile_expressions: placeholder maps, DynamoDB's order across expressions, caching."""

from __future__ import annotations

import pytest

from meridian.model.errors import ValidationException
from meridian.model.expressions import compile_expressions
from meridian.model.expressions.compile import parse_cached


def _error(**request) -> str:
    with pytest.raises(ValidationException) as caught:
        compile_expressions(**request)
    return caught.value.message


def test_names_map_checks():
    assert _error(condition="a = b", names={}) == "ExpressionAttributeNames must not be empty"
    assert _error(condition="a = b", names={"a": "a"}) == 'ExpressionAttributeNames contains invalid key: Syntax error; key: "a"'
    assert _error(condition="a = b", names={"#a-b": "a"}) == 'ExpressionAttributeNames contains invalid key: Syntax error; key: "#a-b"'


def test_values_map_checks():
    assert _error(condition="a = b", values={}) == "ExpressionAttributeValues must not be empty"
    assert _error(condition="a = b", values={":b": {"S": "a"}, "b": {"S": "a"}}) == (
        'ExpressionAttributeValues contains invalid key: Syntax error; key: "b"'
    )
    assert _error(condition="a = :b", values={":b": {}}) == (
        "ExpressionAttributeValues contains invalid value: "
        "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes for key :b"
    )
    assert _error(condition="a = :b", values={":b": {"SS": ["a", "a"]}}) == (
        "ExpressionAttributeValues contains invalid value: "
        "One or more parameter values were invalid: Input collection [a, a] contains duplicates. for key :b"
    )
    assert _error(condition="a = :b", values={":b": {"N": "b"}}) == (
        "ExpressionAttributeValues contains invalid value: The parameter cannot be converted to a numeric value: b for key :b"
    )


def test_values_are_normalised():
    compiled = compile_expressions(condition="a = :b", values={":b": {"N": "1.50"}})
    assert compiled.condition_matches({"a": {"N": "1.5"}})


def test_maps_are_checked_before_expressions():
    assert _error(update="", condition="a = ", names={}) == "ExpressionAttributeNames must not be empty"
    assert _error(update="SET a = ", values={":x": {}}).startswith("ExpressionAttributeValues contains invalid value")


def test_expressions_are_checked_in_dynamodbs_order():
    # update, condition, key condition, filter, projection: each one fully.
    request = dict(
        update="SET #u = :u",
        condition="#c = :c",
        key_condition="#k = :k",
        filter="#f = :f",
        projection="#p",
    )
    assert _error(**request).startswith("Invalid UpdateExpression: An expression attribute name")
    names = {"#u": "u"}
    assert _error(**request, names=names).startswith("Invalid UpdateExpression: An expression attribute value")
    values = {":u": {"S": "u"}}
    assert _error(**request, names=names, values=values).startswith("Invalid ConditionExpression:")
    names["#c"], values[":c"] = "c", {"S": "c"}
    assert _error(**request, names=names, values=values).startswith("Invalid KeyConditionExpression:")
    names["#k"], values[":k"] = "k", {"S": "k"}
    assert _error(**request, names=names, values=values).startswith("Invalid FilterExpression:")
    names["#f"], values[":f"] = "f", {"S": "f"}
    assert _error(**request, names=names, values=values).startswith("Invalid ProjectionExpression:")
    names["#p"] = "p"
    compiled = compile_expressions(**request, names=names, values=values)
    assert compiled.key_conditions == {"k": ("EQ", ({"S": "k"},))}
    # A later expression's text-only error loses to an earlier one's binding error.
    assert _error(update="SET a = :nope", condition="((a = b))").startswith("Invalid UpdateExpression:")


def test_unused_names_then_values_then_key_shape():
    assert _error(filter="a = :a", names={"#x": "x"}, values={":a": {"S": "a"}, ":z": {"S": "z"}}) == (
        "Value provided in ExpressionAttributeNames unused in expressions: keys: {#x}"
    )
    assert _error(key_condition="a = :a OR b = :a", values={":a": {"S": "a"}, ":z": {"S": "z"}}) == (
        "Value provided in ExpressionAttributeValues unused in expressions: keys: {:z}"
    )
    assert _error(key_condition="a = :a OR b = :a", values={":a": {"S": "a"}}) == (
        "Invalid operator used in KeyConditionExpression: OR"
    )


def test_names_used_by_any_expression_count():
    compile_expressions(projection="#a", filter="#b = :v", names={"#a": "a", "#b": "b"}, values={":v": {"N": "1"}})


def test_empty_expressions():
    for parameter, label in [
        ("condition", "ConditionExpression"),
        ("key_condition", "KeyConditionExpression"),
        ("filter", "FilterExpression"),
        ("projection", "ProjectionExpression"),
    ]:
        assert _error(**{parameter: ""}) == f"Invalid {label}: The expression can not be empty;"


def test_size_limit_counts_utf8_bytes_and_legacy_is_exempt():
    wide = "ü" * 2100  # 2100 characters, 4200 bytes: too big, checked before the syntax
    assert _error(condition=wide) == (
        "Invalid ConditionExpression: Expression size has exceeded the maximum allowed size; expression size: 4200"
    )
    long_names = ", ".join(f"#p{i}" for i in range(1000))
    names = {f"#p{i}": f"attribute{i}" for i in range(1000)}
    assert _error(projection=long_names, names=names).startswith(
        "Invalid ProjectionExpression: Expression size has exceeded the maximum allowed size; expression size: "
    )
    compiled = compile_expressions(projection=long_names, names=names, legacy=True)
    assert compiled.project({"attribute7": {"S": "x"}, "other": {"S": "y"}}) == {"attribute7": {"S": "x"}}


def test_parses_are_cached_by_text():
    parse_cached.cache_clear()
    for n in range(3):
        compile_expressions(condition="a = :v", values={":v": {"N": str(n)}})
    info = parse_cached.cache_info()
    assert info.misses == 1 and info.hits == 2


def test_requests_without_values_are_compiled_once():
    first = compile_expressions(projection="#a, b.c", names={"#a": "a"})
    assert compile_expressions(projection="#a, b.c", names={"#a": "a"}) is first
    assert compile_expressions(projection="#a, b.c", names={"#a": "z"}) is not first
    with pytest.raises(ValidationException):
        compile_expressions(projection="#a", names={})


def test_map_key_length_and_empty_names():
    long_key = "#" + "k" * 255
    assert _error(condition="attribute_exists(#k)", names={long_key: "a"}) == (
        "ExpressionAttributeNames contains invalid key: The expression attribute map contains a key that is too long"
    )
    assert _error(condition="attribute_exists(#k)", names={"#k": ""}) == (
        "ExpressionAttributeNames contains invalid value: Empty attribute name for key #k"
    )
    compile_expressions(condition="attribute_exists(#" + "k" * 254 + ")", names={"#" + "k" * 254: "a"})


def test_query_filters_may_not_use_the_key():
    compiled = compile_expressions(filter="size(#n) > :v AND attribute_exists(pk)", names={"#n": "n"}, values={":v": {"N": "1"}})
    compiled.check_filter_keys(("other",))
    with pytest.raises(ValidationException) as caught:
        compiled.check_filter_keys(("pk", "sk"))
    assert caught.value.message == "Filter Expression can only contain non-primary key attributes: Primary key attribute: pk"
    legacy = compile_expressions(filter="attribute_exists(#f0)", names={"#f0": "sk"}, legacy=True)
    with pytest.raises(ValidationException) as caught:
        legacy.check_filter_keys(("pk", "sk"))
    assert caught.value.message == "QueryFilter can only contain non-primary key attributes: Primary key attribute: sk"
