"""Attribute values and items: DynamoDB's checks, normalisation, sizes, keys."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meridian.model import limits
from meridian.model.errors import SerializationException, ValidationException
from meridian.model.values import (
    attribute_type,
    attribute_value_size,
    check_item_shape,
    check_item_size,
    decode_binary,
    extract_key,
    item_size,
    number_size,
    validate_attribute_value,
    validate_item,
    validate_key,
)

INVALID = "One or more parameter values were invalid: "
EMPTY = "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes"
MANY = "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes"
NOT_NUMERIC = "The parameter cannot be converted to a numeric value"
NESTING = ("Nesting Levels have exceeded supported limits: "
           "Attributes in the item have nested levels beyond supported limit")


def _validation_message(value: Any) -> str:
    with pytest.raises(ValidationException) as caught:
        validate_item({"a": value})
    return caught.value.message


def _serialization_message(value: Any) -> str:
    with pytest.raises(SerializationException) as caught:
        validate_item({"a": value})
    return caught.value.message


# Expected texts are DynamoDB's, as dynalite's test suite (run against
# DynamoDB) records them.
@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({}, EMPTY),
        ({"M": {"a": {}}}, EMPTY),
        ({"L": [{}]}, EMPTY),
        ({"L": [{"a": {}}]}, EMPTY),
        ({"S": None}, EMPTY),
        ({"Q": "a"}, EMPTY),
        ({"NULL": False}, INVALID + "Null attribute value types must have the value of true"),
        ({"NULL": "no"}, INVALID + "Null attribute value types must have the value of true"),
        ({"SS": []}, INVALID + "An string set  may not be empty"),
        ({"NS": []}, INVALID + "An number set  may not be empty"),
        ({"BS": []}, INVALID + "Binary sets should not be empty"),
        ({"SS": ["a", "a"]}, INVALID + "Input collection [a, a] contains duplicates."),
        ({"BS": ["Yg==", "Yg=="]}, INVALID + "Input collection [Yg==, Yg==]of type BS contains duplicates."),
        ({"S": "", "N": ""}, NOT_NUMERIC),
        ({"S": "a", "N": ""}, NOT_NUMERIC),
        ({"S": "a", "N": "b"}, NOT_NUMERIC + ": b"),
        ({"NS": ["1", ""]}, NOT_NUMERIC),
        ({"NS": ["b", ""]}, NOT_NUMERIC),
        ({"NS": ["1", "b"]}, NOT_NUMERIC + ": b"),
        ({"NS": ["1", "1"]}, "Input collection contains duplicates"),
        ({"NS": ["1", "1.0"]}, "Input collection contains duplicates"),
        ({"N": "123456789012345678901234567890123456789"}, "Attempting to store more than 38 significant digits in a Number"),
        ({"N": "1e126"}, "Number overflow. Attempting to store a number with magnitude larger than supported range"),
        ({"N": "-1e-131"}, "Number underflow. Attempting to store a number with magnitude smaller than supported range"),
        ({"S": "a", "N": "1"}, MANY),
        ({"S": "a", "BOOL": True}, MANY),
        ({"M": {"x": {"NS": []}}}, INVALID + "An number set  may not be empty"),
        ({"L": [{"S": "ok"}, {"SS": ["a", "a"]}]}, INVALID + "Input collection [a, a] contains duplicates."),
    ],
)
def test_validation_errors(value: Any, message: str) -> None:
    assert _validation_message(value) == message


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"S": 5}, "class com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be converted to an String"),
        ({"S": 1.5}, "class com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be converted to an String"),
        ({"S": True}, "class java.lang.Boolean can not be converted to an String"),
        ({"S": {}}, "Start of structure or map found where not expected."),
        ({"S": []}, "Start of list found where not expected"),
        ({"N": 123}, "class com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be converted to an String"),
        ({"B": True}, "class java.lang.Boolean can not be converted to a Blob"),
        ({"B": "abc"}, "'abc' can not be converted to a Blob: Base64 encoded length is expected a multiple of 4 bytes but found: 3"),
        ({"B": "ab!d"}, "'ab!d' can not be converted to a Blob: Invalid Base64 character: '!'"),
        ({"B": "a=bc"}, "'a=bc' can not be converted to a Blob: Invalid Base64 character: '='"),
        ({"B": "YR=="}, "'YR==' can not be converted to a Blob: Invalid last non-pad Base64 character dectected"),
        ({"BOOL": "maybe"}, "'MAYBE' can not be converted to an Boolean"),
        ({"BOOL": 1}, "class com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be converted to an Boolean"),
        ({"BOOL": []}, "Start of list found where not expected"),
        ({"SS": "a"}, "Expected list or null"),
        ({"SS": {}}, "Start of structure or map found where not expected."),
        ({"SS": [1]}, "class com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be converted to an String"),
        ({"BS": ["abc"]}, "'abc' can not be converted to a Blob: Base64 encoded length is expected a multiple of 4 bytes but found: 3"),
        ({"L": {}}, "Start of structure or map found where not expected."),
        ({"L": "x"}, "Expected list or null"),
        ({"M": []}, "Start of list found where not expected"),
        ({"M": 1}, "Expected map or null"),
        ("a", "Expected null"),
        ([], "Start of list found where not expected"),
        ({"L": ["a"]}, "Expected null"),
        ({"M": {"k": {"S": 1}}}, "class com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be converted to an String"),
        # a type error anywhere outranks a semantic error found earlier in the walk
        ({"N": "x", "S": 5}, "class com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be converted to an String"),
    ],
)
def test_serialization_errors(value: Any, message: str) -> None:
    assert _serialization_message(value) == message


def test_type_errors_outrank_earlier_validation_errors_across_attributes() -> None:
    with pytest.raises(SerializationException):
        validate_item({"a": {"SS": []}, "b": {"S": 5}})
    with pytest.raises(SerializationException):
        check_item_shape({"a": {"L": [{"M": {"b": {"BS": ["***="]}}}]}})


def test_item_itself_must_be_a_map() -> None:
    with pytest.raises(SerializationException) as caught:
        validate_item([])
    assert caught.value.message == "Start of list found where not expected"


@pytest.mark.parametrize(
    ("value", "normal"),
    [
        ({"N": "1.0"}, {"N": "1"}),
        ({"N": "+1e2"}, {"N": "100"}),
        ({"NS": ["1.50", "2"]}, {"NS": ["1.5", "2"]}),
        ({"BOOL": "yes"}, {"BOOL": True}),
        ({"BOOL": "False"}, {"BOOL": False}),
        ({"NULL": "1"}, {"NULL": True}),
        ({"S": ""}, {"S": ""}),
        ({"B": ""}, {"B": ""}),
        ({"SS": ["", "a"]}, {"SS": ["", "a"]}),
        ({"BS": ["", "YQ=="]}, {"BS": ["", "YQ=="]}),
        ({"L": []}, {"L": []}),
        ({"M": {}}, {"M": {}}),
        ({"L": [{"N": "01"}, {"S": "x"}]}, {"L": [{"N": "1"}, {"S": "x"}]}),
        ({"M": {"a": {"M": {"b": {"N": "2.0"}}}}}, {"M": {"a": {"M": {"b": {"N": "2"}}}}}),
        ({"S": "a", "Junk": 1}, {"S": "a"}),
        ({"S": "a", "N": None}, {"S": "a"}),
    ],
)
def test_normalisation(value: Any, normal: Any) -> None:
    assert validate_item({"a": value}) == {"a": normal}
    assert validate_attribute_value(value) == normal


def test_unchanged_values_are_shared_not_copied() -> None:
    inner = {"M": {"x": {"S": "a"}}}
    item = {"a": {"S": "b"}, "m": inner}
    assert validate_item(item) is item
    changed = validate_item({"a": {"N": "1.0"}, "m": inner})
    assert changed["m"] is inner


def _nested(wraps: int) -> dict:
    value: dict = {"S": "leaf"}
    for _ in range(wraps):
        value = {"M": {"n": value}}
    return value


def test_nesting_depth_limit() -> None:
    # The attribute is level 1: 31 wraps put the leaf at level 32 (allowed),
    # 32 wraps put it at level 33 (rejected).
    validate_item({"a": _nested(limits.DOCUMENT_DEPTH_MAX - 1)})
    assert _validation_message(_nested(limits.DOCUMENT_DEPTH_MAX)) == NESTING
    deep_list: dict = {"N": "1"}
    for _ in range(limits.DOCUMENT_DEPTH_MAX):
        deep_list = {"L": [deep_list]}
    assert _validation_message(deep_list) == NESTING
    with pytest.raises(ValidationException) as caught:
        validate_item({"k": _nested(40)}, context="key")
    assert "Attributes in the key have" in caught.value.message


def test_attribute_type() -> None:
    assert attribute_type({"SS": ["a"]}) == "SS"


def test_decode_binary() -> None:
    assert decode_binary("AAE=") == b"\x00\x01"
    assert decode_binary("") == b""


# --- sizes ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "size"),
    [
        ("0", 1),
        ("1", 2),
        ("12", 2),
        ("1.2", 3),  # digits 01.20 in base 100
        ("123", 3),
        ("-1", 3),
        ("12345", 4),
        ("1" + "0" * 125, 2),
        ("11" + "0" * 124, 2),
        ("11111" + "0" * 121, 4),
        ("111111" + "0" * 120, 4),
        ("1111111" + "0" * 119, 5),
        ("1" * 38 + "0" * 88, 20),
        ("1e2", 2),
        ("0.001", 2),
    ],
)
def test_number_size(number: str, size: int) -> None:
    assert number_size(number) == size


def test_attribute_value_sizes() -> None:
    assert attribute_value_size({"S": "héllo"}) == 6
    assert attribute_value_size({"B": "AAEC"}) == 3
    assert attribute_value_size({"BOOL": False}) == 1
    assert attribute_value_size({"NULL": True}) == 1
    assert attribute_value_size({"SS": ["ab", "c"]}) == 3
    assert attribute_value_size({"BS": ["YQ==", "YWI="]}) == 3
    assert attribute_value_size({"NS": ["1", "12345"]}) == 6
    assert attribute_value_size({"L": []}) == 3
    assert attribute_value_size({"M": {}}) == 3
    assert attribute_value_size({"L": [{"S": "ab"}, {"BOOL": True}]}) == 3 + 2 + 2 + 1
    assert attribute_value_size({"M": {"ké": {"S": "ab"}}}) == 3 + 1 + 3 + 2


def test_item_size_counts_names_in_utf8() -> None:
    assert item_size({"ü": {"S": "x"}, "id": {"N": "12"}}) == 2 + 1 + 2 + 2


# dynalite's boundary tests, run against DynamoDB: a key string plus a string
# attribute filling the item to exactly the limit is accepted, one more byte
# is not; the same with big numbers taking their exact share.
@pytest.mark.parametrize(
    ("others", "name", "overhead"),
    [
        ({}, "b", 0),
        ({}, "bbbbbbbbbbbbbbbbbbbbbbbbbbb", 0),
        ({"ccc": {"S": "cc"}}, "bb", 5),
        ({"c": {"N": "1111111" + "0" * 119}, "d": {"N": "1111111" + "0" * 119}}, "b", 12),
    ],
)
def test_item_size_limit_boundary(others: dict, name: str, overhead: int) -> None:
    key = "k3y"
    filler = limits.ITEM_SIZE_BYTES_MAX - 1 - len(key) - len(name) - overhead
    item = {"a": {"S": key}, name: {"S": "a" * filler}, **others}
    assert check_item_size(item) == limits.ITEM_SIZE_BYTES_MAX
    item[name] = {"S": "a" * (filler + 1)}
    with pytest.raises(ValidationException) as caught:
        check_item_size(item)
    assert caught.value.message == "Item size has exceeded the maximum allowed size"
    with pytest.raises(ValidationException) as caught:
        check_item_size(item, updating=True)
    assert caught.value.message == "Item size to update has exceeded the maximum allowed size"


# --- keys ----------------------------------------------------------------------

SCHEMA = [("p_key", "S"), ("s_key", "S")]
NOT_VALID = "One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain "


@pytest.mark.parametrize(
    ("item", "schema", "message"),
    [
        ({"p_key_xx": {"S": "foo"}, "s_key": {"S": "bar"}}, SCHEMA, INVALID + "Missing the key p_key in the item"),
        ({"p_key": {"S": "foo"}, "s_key_xx": {"S": "bar"}}, SCHEMA, INVALID + "Missing the key s_key in the item"),
        ({"p_key": {"N": "1"}, "s_key": {"S": "bar"}}, SCHEMA,
         INVALID + "Type mismatch for key p_key expected: S actual: N"),
        ({"p_key": {"S": "foo"}, "s_key": {"N": "1"}}, SCHEMA,
         INVALID + "Type mismatch for key s_key expected: S actual: N"),
        ({"p_key": {"S": ""}, "s_key": {"S": "bar"}}, SCHEMA, NOT_VALID + "an empty string value. Key: p_key"),
        ({"p_key": {"S": "foo"}, "s_key": {"S": ""}}, SCHEMA, NOT_VALID + "an empty string value. Key: s_key"),
        ({"b": {"B": ""}}, [("b", "B")], NOT_VALID + "an empty binary value. Key: b"),
        ({"p_key": {"S": "a" * 2049}, "s_key": {"S": "bar"}}, SCHEMA,
         INVALID + "Size of hashkey has exceeded the maximum size limit of2048 bytes"),
        ({"p_key": {"S": "é" * 1025}, "s_key": {"S": "bar"}}, SCHEMA,
         INVALID + "Size of hashkey has exceeded the maximum size limit of2048 bytes"),
        ({"p_key": {"S": "foo"}, "s_key": {"S": "a" * 1025}}, SCHEMA,
         INVALID + "Aggregated size of all range keys has exceeded the size limit of 1024 bytes"),
        ({"p": {"S": "x"}, "s": {"B": base64.b64encode(b"z" * 1025).decode()}}, [("p", "S"), ("s", "B")],
         INVALID + "Aggregated size of all range keys has exceeded the size limit of 1024 bytes"),
    ],
)
def test_extract_key_errors(item: dict, schema: list, message: str) -> None:
    with pytest.raises(ValidationException) as caught:
        extract_key(item, schema)
    assert caught.value.message == message


def test_extract_key() -> None:
    item = {"p_key": {"S": "a" * 2048}, "s_key": {"S": "a" * 1024}, "other": {"N": "1"}}
    assert extract_key(item, SCHEMA) == {"p_key": item["p_key"], "s_key": item["s_key"]}
    assert extract_key({"n": {"N": "1" + "0" * 125}}, [("n", "N")]) == {"n": {"N": "1" + "0" * 125}}


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ({"p_key": {"S": "foo"}}, "The provided key element does not match the schema"),
        ({"p_key": {"S": "foo"}, "s_key": {"N": "1"}}, "The provided key element does not match the schema"),
        ({"p_key": {"S": "foo"}, "other": {"S": "1"}}, "The provided key element does not match the schema"),
        ({"p_key": {"S": "f"}, "s_key": {"S": "b"}, "x": {"S": "c"}}, "The provided key element does not match the schema"),
        ({"p_key": {"S": ""}, "s_key": {"S": "bar"}}, NOT_VALID + "an empty string value. Key: p_key"),
        ({"p_key": {"S": "foo"}, "s_key": {"S": "a" * 1025}},
         INVALID + "Aggregated size of all range keys has exceeded the size limit of 1024 bytes"),
    ],
)
def test_validate_key_errors(key: dict, message: str) -> None:
    with pytest.raises(ValidationException) as caught:
        validate_key(key, SCHEMA)
    assert caught.value.message == message


def test_validate_key_orders_and_normalises() -> None:
    schema = [("p", "S"), ("n", "N")]
    key = validate_key({"n": {"N": "1.50"}, "p": {"S": "x"}}, schema)
    assert key == {"p": {"S": "x"}, "n": {"N": "1.5"}}
    assert list(key) == ["p", "n"]


# --- properties --------------------------------------------------------------------

_names = st.text(min_size=1, max_size=8)
_scalars = st.one_of(
    st.builds(lambda s: {"S": s}, st.text(max_size=20)),
    st.builds(lambda n: {"N": n}, st.decimals(allow_nan=False, allow_infinity=False, places=3,
                                             min_value=-10**30, max_value=10**30).map(str)),
    st.builds(lambda b: {"B": base64.b64encode(b).decode()}, st.binary(max_size=20)),
    st.builds(lambda b: {"BOOL": b}, st.booleans()),
    st.just({"NULL": True}),
    st.builds(lambda s: {"SS": sorted(s)}, st.sets(st.text(max_size=5), min_size=1, max_size=4)),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.builds(lambda xs: {"L": xs}, st.lists(inner, max_size=4)),
        st.builds(lambda m: {"M": m}, st.dictionaries(_names, inner, max_size=4)),
    ),
    max_leaves=20,
)


@given(st.dictionaries(_names, _values, max_size=6))
def test_validation_is_idempotent_and_size_is_stable(item: dict) -> None:
    once = validate_item(item)
    assert validate_item(once) == once
    assert item_size(once) == item_size(validate_item(once))
    assert item_size(once) >= sum(len(name.encode("utf-8", "surrogatepass")) for name in once)
