"""Storage keys: byte order is DynamoDB order, partitions are contiguous."""

from __future__ import annotations

import base64
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meridian.model.keycodec import (
    TABLE_PREFIX_BYTES,
    decode_item_key,
    encode_item_key,
    encode_sort_prefix,
    encode_sort_value,
    encode_value,
    partition_hash,
    partition_prefix,
    prefix_end,
    table_prefix,
)
from meridian.model.numbers import normalize_number

# --- value strategies, each with DynamoDB's ordering as a sort key -------------


@st.composite
def numbers(draw: st.DrawFn) -> str:
    """Number strings across DynamoDB's whole range, written in varied forms."""
    if draw(st.integers(0, 12)) == 0:
        return draw(st.sampled_from(["0", "-0", "0.00", "0e5"]))
    count = draw(st.integers(1, 38))
    digits = [draw(st.integers(1, 9))] + draw(st.lists(st.integers(0, 9), min_size=count - 1, max_size=count - 1))
    exponent = draw(st.integers(-130, 125))
    value = Decimal((draw(st.integers(0, 1)), tuple(digits), exponent - (count - 1)))
    return draw(st.sampled_from([str(value), format(value, "f"), format(value, "e")]))


def _number_order(text: str) -> Decimal:
    return Decimal(text)


def _string_order(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def _binary_order(text: str) -> bytes:
    return base64.b64decode(text)


_strings = st.text(alphabet=st.characters(codec="utf-8"), max_size=12) | st.sampled_from(["", "\x00", "a\x00", "a\x00b", "a", "ab", "\x01"])
_binaries = st.binary(max_size=12).map(lambda b: base64.b64encode(b).decode())

CASES = {
    "N": (numbers(), _number_order),
    "S": (_strings, _string_order),
    "B": (_binaries, _binary_order),
}


def _sign(x: int) -> int:
    return (x > 0) - (x < 0)


def _cmp(a, b) -> int:
    return (a > b) - (a < b)


@pytest.mark.parametrize("key_type", ["N", "S", "B"])
@given(data=st.data())
def test_sort_value_order_is_dynamodb_order(key_type: str, data: st.DataObject) -> None:
    values, order = CASES[key_type]
    a, b = data.draw(values), data.draw(values)
    schema = [("pk", "S"), ("sk", key_type)]
    ka = encode_item_key(5, schema, {"pk": {"S": "p"}, "sk": {key_type: a}})
    kb = encode_item_key(5, schema, {"pk": {"S": "p"}, "sk": {key_type: b}})
    assert _cmp(ka, kb) == _cmp(order(a), order(b))
    assert _cmp(encode_sort_value(key_type, a), encode_sort_value(key_type, b)) == _cmp(order(a), order(b))


@pytest.mark.parametrize("key_type", ["N", "S", "B"])
@given(data=st.data())
def test_partition_value_order_and_containment(key_type: str, data: st.DataObject) -> None:
    values, order = CASES[key_type]
    a, b = data.draw(values), data.draw(values)
    sort_a, sort_b = data.draw(numbers()), data.draw(numbers())
    schema = [("pk", key_type), ("sk", "N")]
    ka = encode_item_key(9, schema, {"pk": {key_type: a}, "sk": {"N": sort_a}})
    kb = encode_item_key(9, schema, {"pk": {key_type: b}, "sk": {"N": sort_b}})
    prefix_a = partition_prefix(9, key_type, a)
    assert ka.startswith(prefix_a)
    # a key belongs to a partition's range exactly when its partition key is equal
    same = order(a) == order(b)
    assert kb.startswith(prefix_a) == same
    assert (prefix_a <= kb < prefix_end(prefix_a)) == same
    if not same:
        assert _cmp(ka, kb) == _cmp(order(a), order(b))


@pytest.mark.parametrize("key_type", ["N", "S", "B"])
@given(data=st.data())
def test_round_trip(key_type: str, data: st.DataObject) -> None:
    values, _ = CASES[key_type]
    pk, sk = data.draw(values), data.draw(numbers())
    schema = [("pk", key_type), ("sk", "N")]
    decoded = decode_item_key(encode_item_key(3, schema, {"pk": {key_type: pk}, "sk": {"N": sk}}), schema)
    expected_pk = normalize_number(pk) if key_type == "N" else pk
    assert decoded == {"pk": {key_type: expected_pk}, "sk": {"N": normalize_number(sk)}}


@given(numbers())
def test_equal_numbers_encode_and_hash_alike(text: str) -> None:
    normal = normalize_number(text)
    assert encode_value("N", text) == encode_value("N", normal)
    assert partition_hash("N", {"N": text}) == partition_hash("N", normal)


@given(_strings, _strings)
def test_begins_with_range(prefix: str, value: str) -> None:
    start = encode_sort_prefix("S", prefix)
    encoded = encode_sort_value("S", value)
    inside = start <= encoded < prefix_end(start) if start else True
    assert inside == _string_order(value).startswith(_string_order(prefix))


def test_tables_are_contiguous_and_ordered() -> None:
    schema = [("pk", "S")]
    assert table_prefix(1) == b"\x00" * 7 + b"\x01"
    last_of_1 = encode_item_key(1, schema, {"pk": {"S": "\U0010ffff" * 4}})
    first_of_2 = encode_item_key(2, schema, {"pk": {"S": ""}})
    assert table_prefix(1) <= last_of_1 < table_prefix(2) <= first_of_2
    assert len(table_prefix(7)) == TABLE_PREFIX_BYTES


@pytest.mark.parametrize(
    ("number", "encoded"),
    [
        ("12.5", "03832360" "00"),
        ("-12.5", "017cdc9f" "ff"),
        ("0.5", "038160" "00"),
        ("100", "038420" "00"),
        ("0", "02"),
        ("-0.000", "02"),
    ],
)
def test_number_layout_matches_the_diagram(number: str, encoded: str) -> None:
    assert encode_value("N", number).hex() == encoded


def test_string_layout() -> None:
    assert encode_value("S", "a\x00b") == b"a\x00\xffb\x00\x01"
    assert encode_value("S", {"S": "a"}) == encode_value("S", "a") == b"a\x00\x01"
    assert encode_value("B", "AAE=") == b"\x00\xff\x01\x00\x01"


def test_extreme_numbers_round_trip_and_order() -> None:
    ordered = ["-9.9999999999999999999999999999999999999e125", "-1e-130", "0", "1e-130",
               "1e-129", "1", "1.0000000000000000000000000000000000001", "9.9999999999999999999999999999999999999e125"]
    schema = [("pk", "N")]
    keys = [encode_item_key(0, schema, {"pk": {"N": n}}) for n in ordered]
    assert keys == sorted(keys)
    for n, key in zip(ordered, keys):
        assert decode_item_key(key, schema) == {"pk": {"N": normalize_number(n)}}


def test_partition_hash_is_stable() -> None:
    # Placement must never change between processes, runs or versions.
    assert partition_hash("S", {"S": "user#1"}) == partition_hash("S", "user#1") == 0xC7215C2624B128E0
    assert partition_hash("N", "12.5") == partition_hash("N", "1.25e1") == 0xD4532C52A8E8B490
    assert partition_hash("B", "AAE=") == 0x2008DB09A447B465


def test_prefix_end() -> None:
    assert prefix_end(b"a\x00") == b"a\x01"
    assert prefix_end(b"a\xff\xff") == b"b"
    with pytest.raises(ValueError):
        prefix_end(b"\xff")


def test_decode_rejects_trailing_bytes() -> None:
    key = encode_item_key(1, [("pk", "S")], {"pk": {"S": "x"}})
    with pytest.raises(ValueError):
        decode_item_key(key + b"\x00", [("pk", "S")])
