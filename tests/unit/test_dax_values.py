"""router/dax/values.py and attribute_lists.py, checked against the Python DAX client's own codec."""

from __future__ import annotations

import base64
from decimal import Context, Decimal

import pytest
from amazondax import AttributeValueDecoder as client_decoder
from amazondax import AttributeValueEncoder as client_encoder
from amazondax.DaxCborDecoder import DaxCborDecoder
from amazondax.DocumentPath import DocumentPath
from hypothesis import given
from hypothesis import strategies as st

from meridian.model.errors import LimitExceededException, ValidationException
from meridian.model.numbers import normalize_number
from meridian.router.dax import values
from meridian.router.dax.attribute_lists import EMPTY_LIST_ID, AttributeListRegistry, derive_id
from meridian.router.dax.cbor import Encoder, Tagged, decode_item, dumps

from .test_dax_lexdecimal import numbers

# --- strategies and conversions -----------------------------------------------------

_b64 = st.binary(max_size=12).map(lambda b: base64.b64encode(b).decode())
_scalar_avs = (
    st.builds(lambda s: {"S": s}, st.text(max_size=12))
    | st.builds(lambda n: {"N": n}, numbers())
    | st.builds(lambda b: {"B": b}, _b64)
    | st.builds(lambda b: {"BOOL": b}, st.booleans())
    | st.just({"NULL": True})
    | st.builds(lambda m: {"SS": m}, st.lists(st.text(max_size=6), min_size=1, max_size=4, unique=True))
    | st.builds(lambda m: {"NS": m}, st.lists(numbers(), min_size=1, max_size=4, unique=True))
    | st.builds(lambda m: {"BS": m}, st.lists(_b64, min_size=1, max_size=4, unique=True))
)
attribute_values = st.recursive(
    _scalar_avs,
    lambda children: (
        st.builds(lambda items: {"L": items}, st.lists(children, max_size=4))
        | st.builds(lambda fields: {"M": fields}, st.dictionaries(st.text(max_size=6), children, max_size=4))
    ),
    max_leaves=12,
)
items = st.dictionaries(st.text(min_size=1, max_size=8), attribute_values, max_size=6)


def to_client(av: dict) -> dict:
    """A JSON attribute value as the Python client holds it (bytes for B)."""
    ((kind, inner),) = av.items()
    if kind == "B":
        return {"B": base64.b64decode(inner)}
    if kind == "BS":
        return {"BS": [base64.b64decode(b) for b in inner]}
    if kind == "L":
        return {"L": [to_client(v) for v in inner]}
    if kind == "M":
        return {"M": {k: to_client(v) for k, v in inner.items()}}
    return av


def from_client(av: dict) -> dict:
    """The client's decoded attribute value as JSON, numbers normalised."""
    ((kind, inner),) = av.items()
    if kind == "B":
        return {"B": base64.b64encode(inner).decode()}
    if kind == "BS":
        return {"BS": [base64.b64encode(b).decode() for b in inner]}
    if kind == "N":
        return {"N": normalize_number(inner)}
    if kind == "NS":
        return {"NS": [normalize_number(n) for n in inner]}
    if kind == "L":
        return {"L": [from_client(v) for v in inner]}
    if kind == "M":
        return {"M": {k: from_client(v) for k, v in inner.items()}}
    return av


def client_reader(data: bytes) -> DaxCborDecoder:
    """The client's decoder over a complete byte string."""

    def more(buf, n):
        if more.pos >= len(data):
            return -1
        buf += data[more.pos : more.pos + n]
        more.pos += n
        return n

    more.pos = 0
    return DaxCborDecoder(more)


def ours(av: dict) -> bytes:
    enc = Encoder()
    values.av_to_cbor(av, enc)
    return enc.getvalue()


def wrapped(data: bytes) -> bytes:
    """Bytes as a CBOR byte string, as answers carry key and values bytes."""
    return Encoder().bytes_(data).getvalue()


# --- attribute values ------------------------------------------------------------------


@given(attribute_values)
def test_round_trip(av: dict) -> None:
    obj, end = decode_item(ours(av), 0)
    assert values.av_from_cbor(obj) == av


@given(attribute_values)
def test_the_client_reads_what_we_write(av: dict) -> None:
    assert from_client(client_decoder._decode_attribute_value(client_reader(ours(av)))) == av


@given(attribute_values)
def test_we_read_what_the_client_writes(av: dict) -> None:
    obj, _ = decode_item(client_encoder.encode_attribute_value(to_client(av)), 0)
    assert values.av_from_cbor(obj) == av


@pytest.mark.parametrize(
    "number",
    ["0", "7", "-7", "18446744073709551615", "-18446744073709551616", "18446744073709551616",
     "-99999999999999999999999999999999999999", "1" + "0" * 125, "1.5", "-0.000001", "123.456",
     "0.1000000000000000000000000000000000001"],
)
def test_the_client_renders_our_numbers_plainly(number: str) -> None:
    assert client_decoder._decode_attribute_value(client_reader(ours({"N": number}))) == {"N": number}


@pytest.mark.parametrize(
    ("obj", "number"),
    [
        (2.5, "2.5"),  # the JS client's float64 for "2.5"
        (0.1, "0.1"),
        (1e22, "10000000000000000000000"),
        (Tagged(4, [-2, 27315]), "273.15"),
        (Tagged(4, [3, -12]), "-12000"),
        (Tagged(4, [10**30, 0]), "0"),
        (2**70, str(2**70)),
        (float("nan"), "nan"),  # invalid: left to the action layer
    ],
)
def test_numbers_from_the_wire(obj, number: str) -> None:
    assert values.av_from_cbor(obj) == {"N": number}


def test_huge_exponents_stay_overflows() -> None:
    text = values.av_from_cbor(Tagged(4, [10**30, 5]))["N"]
    assert text.startswith("5E")
    with pytest.raises(ValidationException):
        normalize_number(text)


@pytest.mark.parametrize("obj", [Tagged(4, [1]), Tagged(4, "x"), Tagged(99, 1), Tagged(3321, [1]),
                                 Tagged(3323, ["a"]), Tagged(3321, "a"), {1: "a"}, 1 << 600])
def test_malformed_values_are_validation_errors(obj) -> None:
    with pytest.raises(ValidationException):
        values.av_from_cbor(obj)


def test_maps_are_written_with_sorted_keys() -> None:
    av = {"M": {"b": {"S": "x"}, "a": {"NULL": True}}}
    assert ours(av) == client_encoder.encode_attribute_value(av)


# --- keys ---------------------------------------------------------------------------


def _client_schema(key_schema):
    return [{"AttributeName": name, "AttributeType": kind} for name, kind in key_schema]


_key_values = {
    "S": st.text(min_size=1, max_size=10).map(lambda s: {"S": s}),
    "N": numbers().map(lambda n: {"N": n}),
    "B": st.binary(min_size=1, max_size=10).map(lambda b: {"B": base64.b64encode(b).decode()}),
}


@st.composite
def keys(draw):
    hash_type = draw(st.sampled_from("SNB"))
    schema = [("pk", hash_type)]
    key = {"pk": draw(_key_values[hash_type])}
    if draw(st.booleans()):
        range_type = draw(st.sampled_from("SNB"))
        schema.append(("sk", range_type))
        key["sk"] = draw(_key_values[range_type])
    return key, schema


@given(keys())
def test_keys_agree_with_the_client(case) -> None:
    key, schema = case
    ours_bytes = values.encode_key(key, schema)
    client_key = {k: to_client(v) for k, v in key.items()}
    if "sk" in client_key and "N" in client_key["sk"] and len(client_key["sk"]["N"].lstrip("-")) > 38:
        # past 38 plain digits the client's decimal context wants the exponent form
        client_key["sk"] = {"N": str(Decimal(client_key["sk"]["N"]).normalize(Context(prec=200)))}
    theirs = client_encoder.encode_key(client_key, _client_schema(schema))
    assert ours_bytes == theirs  # same canonical number: same bytes
    assert values.decode_key(theirs, schema) == key
    decoded = client_decoder._decode_key_bytes(client_reader(wrapped(ours_bytes)), _client_schema(schema))
    assert {k: from_client(v) for k, v in decoded.items()} == key


@pytest.mark.parametrize(
    ("key", "schema"),
    [
        ({"pk": {"N": "-1.25"}, "sk": {"N": "100"}}, [("pk", "N"), ("sk", "N")]),
        ({"pk": {"N": "5"}, "sk": {"N": "-0.001"}}, [("pk", "N"), ("sk", "N")]),
        ({"pk": {"N": "-18446744073709551617"}}, [("pk", "N")]),
        ({"pk": {"B": "AAE="}, "sk": {"S": "é"}}, [("pk", "B"), ("sk", "S")]),
    ],
)
def test_key_examples(key, schema) -> None:
    assert values.decode_key(values.encode_key(key, schema), schema) == key
    client_key = client_decoder._decode_key_bytes(
        client_reader(wrapped(values.encode_key(key, schema))), _client_schema(schema)
    )
    assert {k: from_client(v) for k, v in client_key.items()} == key


def test_keys_the_js_client_writes() -> None:
    # JS sends "2.5" as a float64 and big integers as bignums.
    schema = [("pk", "N"), ("sk", "S")]
    assert values.decode_key(dumps(2.5) + b"abc", schema) == {"pk": {"N": "2.5"}, "sk": {"S": "abc"}}
    assert values.decode_key(dumps(2**64), [("pk", "N")]) == {"pk": {"N": str(2**64)}}


@pytest.mark.parametrize(
    ("data", "schema"),
    [
        (b"\x61", [("pk", "N")]),  # truncated
        (dumps(1) + b"\x00", [("pk", "N")]),  # trailing bytes
        (dumps("a"), [("pk", "N")]),  # wrong type
        (dumps(b"a") + b"x", [("pk", "S"), ("sk", "S")]),
        (dumps("a") + b"\xff", [("pk", "S"), ("sk", "S")]),  # not UTF-8
        (dumps("a") + b"\xc1", [("pk", "S"), ("sk", "N")]),  # LexDecimal cut short
        (dumps("a") + values.lexdecimal.encode("1") + b"x", [("pk", "S"), ("sk", "N")]),
    ],
)
def test_malformed_key_bytes(data: bytes, schema) -> None:
    with pytest.raises(ValidationException):
        values.decode_key(data, schema)


def test_key_missing_an_attribute() -> None:
    with pytest.raises(ValidationException):
        values.encode_key({"pk": {"S": "a"}}, [("pk", "S"), ("sk", "S")])
    with pytest.raises(ValidationException):
        values.encode_key({"pk": {"N": "1"}}, [("pk", "S")])


# --- values bytes, projections, UPDATED_*, index keys -----------------------------------


@given(items)
def test_values_bytes_agree_with_the_client(item: dict) -> None:
    registry = AttributeListRegistry()
    key_names = sorted(item)[:1]
    data = values.encode_values(item, key_names, registry)
    non_key = {k: v for k, v in item.items() if k not in key_names}
    assert values.decode_values(data, registry) == non_key
    # the client reads ours ...
    streamed = client_decoder._decode_stream_item(client_reader(data))
    names = registry.names_for(streamed["_attr_list_id"])
    client_item = client_decoder.deanonymize_attribute_values(streamed, names)
    assert {k: from_client(v) for k, v in client_item.items()} == non_key
    # ... and we read the client's, once its list is registered
    client_schema = [{"AttributeName": k, "AttributeType": "S"} for k in key_names]
    names = client_encoder._get_canonical_attribute_list(item, client_schema)
    theirs = client_encoder.encode_values(
        {k: to_client(v) for k, v in item.items()}, client_schema, names, registry.id_for(names)
    )
    assert values.decode_values(theirs, registry) == non_key


def test_values_bytes_errors() -> None:
    registry = AttributeListRegistry()
    two = registry.id_for(("a", "b"))
    with pytest.raises(ValidationException, match="unknown attribute list id 12345"):
        values.decode_values(dumps(12345), registry)
    with pytest.raises(ValidationException):
        values.decode_values(dumps(two) + dumps("x"), registry)  # one value short
    with pytest.raises(ValidationException):
        values.decode_values(dumps(EMPTY_LIST_ID) + dumps("x"), registry)  # one too many
    with pytest.raises(ValidationException):
        values.decode_values(dumps("no id"), registry)
    assert values.decode_values(dumps(EMPTY_LIST_ID), registry) == {}


def test_projection_rebuilt_by_the_client() -> None:
    item = {
        "a": {"M": {"b": {"L": [{"S": "x"}, {"N": "1"}, {"N": "2"}]}, "c": {"S": "y"}}},
        "d": {"S": "z"},
        "e": {"L": [{"M": {"f": {"BOOL": True}}}]},
    }
    paths = ["a.b[2]", "d", "missing", "a.c", "e[0].f", "d.x", "e[5]"]
    element_paths = [DocumentPath.from_path(p).elements for p in paths]
    element_paths[4] = ["e", Tagged(3324, 0), "f"]  # S-expression style list index
    data = values.encode_projected(item, element_paths)
    assert decode_item(data, 0)[0].keys() == {0, 1, 3, 4}
    rebuilt = client_decoder._decode_projection(client_reader(data), [DocumentPath.from_path(p) for p in paths])
    assert rebuilt == {
        "a": {"M": {"b": {"L": [{"N": "2"}]}, "c": {"S": "y"}}},
        "d": {"S": "z"},
        "e": {"L": [{"M": {"f": {"BOOL": True}}}]},
    }


def test_updated_attributes_read_by_the_client() -> None:
    registry = AttributeListRegistry()
    attributes = {"z": {"N": "3"}, "a": {"SS": ["q"]}}
    data = values.encode_updated(attributes, registry)
    streamed = client_decoder._decode_stream_item_projection(client_reader(data))
    names = registry.names_for(streamed["_attr_list_id"])
    assert client_decoder.deanonymize_attribute_values(streamed, names) == attributes
    assert client_decoder._decode_stream_item_projection(client_reader(values.encode_updated({}, registry))) == {}


def test_index_keys_both_ways() -> None:
    key = {"pk": {"S": "a"}, "gsi": {"N": "-4.5"}, "b": {"B": "AQI="}}
    data = values.encode_index_key(key)
    assert values.decode_index_key(data) == key
    client_key = client_decoder._decode_compound_key(client_reader(data))
    assert {k: from_client(v) for k, v in client_key.items()} == key
    assert values.decode_index_key(client_encoder.encode_compound_key({k: to_client(v) for k, v in key.items()})) == key
    with pytest.raises(ValidationException):
        values.decode_index_key(dumps([1]))


# --- attribute lists ------------------------------------------------------------------


def test_registry_ids_are_deterministic_and_safe_for_js() -> None:
    first, second = AttributeListRegistry(), AttributeListRegistry()
    lists = [("a",), ("a", "b"), ("b", "a"), ("é", "x" * 300)]
    ids = [first.id_for(names) for names in lists]
    assert ids == [second.id_for(names) for names in reversed(lists)][::-1]
    assert len(set(ids)) == len(ids)
    assert all(2 <= i <= 2**53 - 1 for i in ids)
    assert first.id_for(()) == EMPTY_LIST_ID and first.names_for(EMPTY_LIST_ID) == ()
    assert first.names_for(ids[1]) == ("a", "b")
    assert first.id_for(["a", "b"]) == ids[1]
    with pytest.raises(KeyError):
        first.names_for(0)


def test_registry_collision_takes_the_next_candidate() -> None:
    registry = AttributeListRegistry()
    registry._names[derive_id(("x",))] = ("taken",)  # force a collision
    assert registry.id_for(("x",)) == derive_id(("x",), 1)
    assert registry.names_for(derive_id(("x",), 1)) == ("x",)


def test_registry_is_bounded() -> None:
    registry = AttributeListRegistry(lists_max=3)
    registry.id_for(("a",))
    registry.id_for(("b",))
    with pytest.raises(LimitExceededException):
        registry.id_for(("c",))
    assert registry.id_for(("a",)) and len(registry) == 3


def test_a_journal_keeps_ids_across_restarts_and_nodes(tmp_path) -> None:
    journal = str(tmp_path / "lists.jsonl")
    first = AttributeListRegistry(journal_path=journal)
    ids = [first.id_for(names) for names in (("a",), ("a", "b"), ("z", "é"))]
    # a restarted node knows every id its clients cached
    again = AttributeListRegistry(journal_path=journal)
    assert [again.names_for(i) for i in ids] == [("a",), ("a", "b"), ("z", "é")]
    # another node sharing the file learns what the first registers later, when asked
    other = AttributeListRegistry(journal_path=journal)
    late = first.id_for(("late",))
    assert other.names_for(late) == ("late",)
    assert other.id_for(("late",)) == late
    with pytest.raises(KeyError):
        other.names_for(12345)


def test_a_torn_journal_line_is_skipped(tmp_path) -> None:
    journal = tmp_path / "lists.jsonl"
    journal.write_bytes(b'["a"]\n["b"\n["c"]\n["d"')  # a torn line, and one still being written
    registry = AttributeListRegistry(journal_path=str(journal))
    assert registry.names_for(registry.id_for(("a",))) == ("a",)
    assert len(registry) == 3  # (), ("a",), ("c",)
