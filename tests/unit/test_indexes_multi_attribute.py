"""Multi-attribute GSI keys, the pure parts: the index key's byte order, the
hash of several HASH attributes, the key condition rules and their key
range, the key schema rules of CreateTable/UpdateTable.

DynamoDB's documented semantics (Developer Guide, "Multi-attribute key
schema"): the HASH attributes are hashed together; items sort by the first
RANGE attribute, then the second, ...; a Query gives every HASH attribute an
equality and conditions on a leading run of RANGE attributes, only the last
one named a range condition.
"""

from __future__ import annotations

import base64
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meridian.model.errors import ValidationException
from meridian.model.expressions import KeyCondition, compile_expressions
from meridian.model.keycodec import partition_hash
from meridian.model.ops import (
    IndexSpec,
    decode_index_key,
    encode_index_key,
    index_entry_table_key,
    index_key_hash,
    index_partition_hash,
)
from meridian.node.indexes import IndexPlan
from meridian.router.actions.ranges import index_query_range
from meridian.router.validation_key_schema import check_key_schema

INDEX_ID = 77
TABLE_SCHEMA = (("pk", "S"),)
SPEC = IndexSpec("gsi", INDEX_ID, True, (("h1", "S"), ("h2", "N"), ("r1", "N"), ("r2", "S"), ("r3", "B")), "ALL",
                 hash_count=2)


def _table_suffix(pk: str) -> bytes:
    return pk.encode() + b"\x00\x01"  # keycodec's S encoding of a key without zero bytes


# --- values and their DynamoDB order --------------------------------------------------------------

_numbers = st.decimals(min_value=-10**6, max_value=10**6, places=3, allow_nan=False, allow_infinity=False)
_texts = st.text(alphabet="ab\x00z", min_size=1, max_size=4)
_bytes = st.binary(min_size=1, max_size=4)


def _wire(key_type: str, value) -> dict:
    if key_type == "N":
        return {"N": str(value)}
    if key_type == "B":
        return {"B": base64.b64encode(value).decode()}
    return {"S": value}


def _order(key_type: str, value):
    return value.encode("utf-8") if key_type == "S" else value


_VALUES = {"N": _numbers, "S": _texts, "B": _bytes}


@st.composite
def range_rows(draw: st.DrawFn) -> tuple[list[str], list[list]]:
    """Types of one to four RANGE attributes, and rows of values for them."""
    types = draw(st.lists(st.sampled_from("NSB"), min_size=1, max_size=4))
    rows = draw(st.lists(st.tuples(*(_VALUES[t] for t in types)).map(list), min_size=2, max_size=6))
    return types, rows


@given(range_rows())
def test_index_keys_sort_by_the_range_attributes_in_turn(drawn) -> None:
    types, rows = drawn
    schema = (("h", "S"), *((f"r{i}", t) for i, t in enumerate(types)))

    def key(row: list) -> bytes:
        item = {"h": {"S": "same"}, **{f"r{i}": _wire(t, v) for i, (t, v) in enumerate(zip(types, row))}}
        return encode_index_key(INDEX_ID, schema, _table_suffix("k"), item, hash_count=1)

    by_bytes = sorted(rows, key=key)
    by_order = sorted(rows, key=lambda row: [_order(t, v) for t, v in zip(types, row)])
    assert [[_order(t, v) for t, v in zip(types, row)] for row in by_bytes] == [
        [_order(t, v) for t, v in zip(types, row)] for row in by_order]


@given(st.lists(st.tuples(_texts, _numbers), min_size=2, max_size=5, unique=True))
def test_hash_attributes_are_hashed_together(parts) -> None:
    """Different HASH tuples make different partitions (their prefixes never overlap)."""
    keys = {}
    for text, number in parts:
        item = {"h1": {"S": text}, "h2": {"N": str(number)}, "r1": {"N": "1"}, "r2": {"S": "x"}, "r3": {"B": "AA=="}}
        keys[(text, Decimal(number))] = encode_index_key(INDEX_ID, SPEC.key_schema, _table_suffix("k"), item, 2)
    assert len({index_key_hash(k) for k in keys.values()}) == len(keys)  # blake2b: no collision in practice


def test_one_hash_attribute_hashes_as_a_table_partition_key() -> None:
    assert index_partition_hash([("S", "x")]) == partition_hash("S", "x")
    assert index_partition_hash([("S", "x"), ("N", "1")]) == index_partition_hash([("S", "x"), ("N", "1.0")])
    assert index_partition_hash([("S", "x"), ("N", "1")]) != index_partition_hash([("N", "1"), ("S", "x")])


def test_an_index_key_decodes_to_every_key_attribute() -> None:
    item = {"pk": {"S": "k"}, "h1": {"S": "a"}, "h2": {"N": "2.50"}, "r1": {"N": "-3"}, "r2": {"S": "b"},
            "r3": {"B": "AAE="}}
    key = encode_index_key(INDEX_ID, SPEC.key_schema, _table_suffix("k"), item, 2)
    assert decode_index_key(key, SPEC.key_schema, TABLE_SCHEMA) == {**item, "h2": {"N": "2.5"}}
    assert index_entry_table_key(key, SPEC.key_schema, 5)[8:] == _table_suffix("k")


def test_spec_records_and_key_schema_elements() -> None:
    assert IndexSpec.from_record(SPEC.to_record()) == SPEC
    old = {k: v for k, v in SPEC.to_record().items() if k != "hash_count"}
    assert IndexSpec.from_record(old).hash_count == 1  # records from before multi-attribute keys
    assert [e["KeyType"] for e in SPEC.key_schema_elements()] == ["HASH", "HASH", "RANGE", "RANGE", "RANGE"]
    assert SPEC.multi_attribute and SPEC.hash_schema == (("h1", "S"), ("h2", "N"))
    single = IndexSpec("g", 1, True, (("a", "S"), ("b", "S")), "ALL")
    assert not single.multi_attribute and [e["KeyType"] for e in single.key_schema_elements()] == ["HASH", "RANGE"]


def test_an_item_has_an_entry_only_with_every_key_attribute() -> None:
    plan = IndexPlan(SPEC, 5, list(TABLE_SCHEMA))
    item = {"pk": {"S": "k"}, "h1": {"S": "a"}, "h2": {"N": "2"}, "r1": {"N": "3"}, "r2": {"S": "b"},
            "r3": {"B": "AAE="}}
    assert plan.entry_key(item, b"\x00" * 8 + _table_suffix("k")) is not None
    for name in ("h1", "h2", "r1", "r2", "r3"):
        assert plan.entry_key({k: v for k, v in item.items() if k != name}, b"\x00" * 8 + _table_suffix("k")) is None
    assert plan.entry_key({**item, "r1": {"S": "3"}}, b"\x00" * 8 + _table_suffix("k")) is None


# --- key conditions --------------------------------------------------------------------------------

SCHEMA_1H4R = [("h", "S"), ("a", "S"), ("b", "S"), ("c", "S"), ("d", "S")]
SCHEMA_2H1R = [("h1", "S"), ("h2", "N"), ("r", "S")]
EQUALITIES = ("RANGE key attributes {} must have equality conditions specified in the query because a condition "
              "is present on key attribute {}")


def _bind(expression: str, schema, hash_count: int, values: dict) -> KeyCondition:
    used = {k: v for k, v in values.items() if k in expression}
    return compile_expressions(key_condition=expression, values=used).bind_key_condition(schema, hash_count)


def _bind_error(expression: str, schema, hash_count: int, values: dict) -> str:
    with pytest.raises(ValidationException) as caught:
        _bind(expression, schema, hash_count, values)
    return caught.value.message


V = {f":{c}": {"S": c} for c in "habcdx"} | {":n": {"N": "1"}}


@pytest.mark.parametrize("expression, schema, hash_count, message", [
    ("h = :h AND a = :a AND c = :c", SCHEMA_1H4R, 1, EQUALITIES.format("b", "c")),
    ("h = :h AND a = :a AND b > :b AND c = :c", SCHEMA_1H4R, 1, EQUALITIES.format("b", "c")),
    ("h = :h AND b = :b", SCHEMA_1H4R, 1, EQUALITIES.format("a", "b")),
    ("h = :h AND begins_with(a, :a) AND d = :d", SCHEMA_1H4R, 1, EQUALITIES.format("a", "d")),
    ("a = :a", SCHEMA_1H4R, 1, "Query condition missed key schema element: h"),
    ("h1 = :h", SCHEMA_2H1R, 2, "Query condition missed key schema element: h2"),
    ("h2 = :n AND r = :x", SCHEMA_2H1R, 2, "Query condition missed key schema element: h1"),
    ("h1 = :h AND h2 > :n", SCHEMA_2H1R, 2, "Query key condition not supported"),
    ("h1 = :h AND h2 = :n AND x = :x", SCHEMA_2H1R, 2, "Query key condition not supported"),
    ("h1 = :h AND h2 = :h", SCHEMA_2H1R, 2,
     "One or more parameter values were invalid: Condition parameter type does not match schema type"),
])
def test_multi_attribute_key_condition_errors(expression, schema, hash_count, message) -> None:
    assert _bind_error(expression, schema, hash_count, V) == message


def test_multi_attribute_key_conditions_bind() -> None:
    bound = _bind("c < :c AND b = :b AND a = :a AND h = :h", SCHEMA_1H4R, 1, V)
    assert bound == KeyCondition("h", {"S": "h"}, "c", "LT", ({"S": "c"},), (),
                                 (("a", {"S": "a"}), ("b", {"S": "b"})))
    bound = _bind("h2 = :n AND h1 = :h", SCHEMA_2H1R, 2, V)
    assert bound == KeyCondition("h1", {"S": "h"}, None, None, (), (("h2", {"N": "1"}),))
    assert bound.partition == (("h1", {"S": "h"}), ("h2", {"N": "1"}))
    assert bound.matches({"h1": {"S": "h"}, "h2": {"N": "1"}, "r": {"S": "anything"}})
    assert not bound.matches({"h1": {"S": "h"}, "h2": {"N": "2"}})


_OPS = ["EQ", "LT", "LE", "GT", "GE", "BETWEEN", "BEGINS_WITH", None]
_TEXT = {"EQ": "{n} = :v", "LT": "{n} < :v", "LE": "{n} <= :v", "GT": "{n} > :v", "GE": "{n} >= :v",
         "BETWEEN": "{n} BETWEEN :v AND :w", "BEGINS_WITH": "begins_with({n}, :v)"}


@settings(max_examples=150)
@given(rows=st.lists(st.lists(st.sampled_from(["a", "ab", "b", "ba", "c"]), min_size=3, max_size=3),
                     min_size=1, max_size=8),
       prefix=st.lists(st.sampled_from(["a", "ab", "b"]), max_size=2),
       op=st.sampled_from(_OPS), bounds=st.lists(st.sampled_from(["a", "ab", "b", "c"]), min_size=2, max_size=2))
def test_the_key_range_holds_exactly_the_matching_entries(rows, prefix, op, bounds) -> None:
    """An entry's index key lies in the range a condition folds to iff the condition matches it."""
    schema = [("h1", "S"), ("h2", "S"), ("r0", "S"), ("r1", "S"), ("r2", "S")]
    clauses = ["h1 = :h", "h2 = :h"] + [f"r{i} = :p{i}" for i in range(len(prefix))]
    values = {":h": {"S": "h"}} | {f":p{i}": {"S": v} for i, v in enumerate(prefix)}
    if op is not None:
        clauses.append(_TEXT[op].format(n=f"r{len(prefix)}"))
        low, high = sorted(bounds)
        values |= {":v": {"S": low}} | ({":w": {"S": high}} if op == "BETWEEN" else {})
    condition = _bind(" AND ".join(clauses), schema, 2, values)
    lower, upper = index_query_range(INDEX_ID, schema, condition, 2)
    for number, row in enumerate(rows):
        item = {"h1": {"S": "h"}, "h2": {"S": "h"}, **{f"r{i}": {"S": v} for i, v in enumerate(row)}}
        key = encode_index_key(INDEX_ID, schema, _table_suffix(f"k{number}"), item, 2)
        assert (lower <= key < upper) == condition.matches(item), (row, condition)
    other = {"h1": {"S": "h"}, "h2": {"S": "i"}, "r0": {"S": "a"}, "r1": {"S": "a"}, "r2": {"S": "a"}}
    assert not lower <= encode_index_key(INDEX_ID, schema, _table_suffix("k"), other, 2) < upper


# --- key schema rules (CreateTable, UpdateTable) ------------------------------------------------------

INVALID = "One or more parameter values were invalid: "


def _elements(*pairs: str) -> list[dict]:
    return [{"AttributeName": p.split(":")[0], "KeyType": p.split(":")[1]} for p in pairs]


@pytest.mark.parametrize("pairs, message", [
    (("a:HASH", "b:HASH", "c:HASH", "d:HASH", "e:HASH"),
     INVALID + "The KeySchema exceeds the maximum allowed number of HASH key attributes"),
    (("a:HASH", "b:RANGE", "c:RANGE", "d:RANGE", "e:RANGE", "f:RANGE"),
     INVALID + "The KeySchema exceeds the maximum allowed number of RANGE key attributes"),
    (("a:HASH", "b:RANGE", "c:HASH"), INVALID + "All HASH key attributes must precede RANGE key attributes in the KeySchema"),
    (("a:RANGE", "b:HASH"), "Invalid KeySchema: The first KeySchemaElement is not a HASH key type"),
    (("a:HASH", "a:HASH"), "The KeySchema contains multiple key attributes with the same name"),
    (("a:HASH", "b:HASH", "a:RANGE"), "The KeySchema contains multiple key attributes with the same name"),
    (("a:HASH", "a:RANGE"), "Both the Hash Key and the Range Key element in the KeySchema have the same name"),
    (("a:HASH", "b:FOO"), "Invalid KeySchema: The second KeySchemaElement is not a RANGE key type"),
])
def test_global_index_key_schema_rules(pairs, message) -> None:
    with pytest.raises(ValidationException) as caught:
        check_key_schema(_elements(*pairs), list("abcdef"), multi_attribute=True)
    assert caught.value.message == message


def test_the_largest_global_index_key_schema_passes_and_a_table_key_stays_two() -> None:
    check_key_schema(_elements("a:HASH", "b:HASH", "c:HASH", "d:HASH", "e:RANGE", "f:RANGE", "g:RANGE", "h:RANGE"),
                     list("abcdefgh"), multi_attribute=True)
    with pytest.raises(ValidationException) as caught:
        check_key_schema(_elements("a:HASH", "b:HASH"), list("ab"))
    assert caught.value.message == "Invalid KeySchema: The second KeySchemaElement is not a RANGE key type"
