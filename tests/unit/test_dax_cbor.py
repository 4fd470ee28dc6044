"""router/dax/cbor.py: round trips, agreement with cbor2, truncation, malformed input."""

from __future__ import annotations

import math
import struct

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meridian.model import limits
from meridian.router.dax.cbor import CborError, Encoder, NeedMore, Tagged, decode_item, dumps

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False)
    | st.text(max_size=40)
    | st.binary(max_size=40)
)
_keys = st.integers(min_value=-(2**70), max_value=2**70) | st.text(max_size=10) | st.binary(max_size=10)
values = st.recursive(
    _scalars,
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(_keys, children, max_size=5)
        # DAX's tags, and tags cbor2 gives no meaning to
        | st.builds(Tagged, st.integers(3321, 3324) | st.integers(min_value=60000, max_value=2**40), children)
    ),
    max_leaves=30,
)


def _from_cbor2(value):
    """cbor2's decoding in our terms: CBORTag -> Tagged, tuples (cbor2's
    arrays inside tags and map keys) -> lists."""
    if isinstance(value, cbor2.CBORTag):
        return Tagged(value.tag, _from_cbor2(value.value))
    if isinstance(value, (list, tuple)):
        return [_from_cbor2(v) for v in value]
    if hasattr(value, "items"):  # dict, or cbor2's frozendict inside a tag
        return {_from_cbor2(k): _from_cbor2(v) for k, v in value.items()}
    return value


def _to_cbor2(value):
    if isinstance(value, Tagged):
        return cbor2.CBORTag(value.tag, _to_cbor2(value.value))
    if isinstance(value, list):
        return [_to_cbor2(v) for v in value]
    if isinstance(value, dict):
        return {k: _to_cbor2(v) for k, v in value.items()}
    return value


def _decode_all(data: bytes):
    value, end = decode_item(data, 0)
    assert end == len(data)
    return value


@given(values)
def test_round_trip(value) -> None:
    data = dumps(value)
    assert _decode_all(data) == value
    assert dumps(_decode_all(data)) == data


@given(values, st.booleans())
def test_decodes_what_cbor2_encodes(value, canonical: bool) -> None:
    data = cbor2.dumps(_to_cbor2(value), canonical=canonical)
    assert _decode_all(data) == value


@given(values)
def test_cbor2_decodes_what_we_encode(value) -> None:
    assert _from_cbor2(cbor2.loads(dumps(value))) == value


def _indefinite(value, enc: Encoder) -> None:
    """Like Encoder.value, but every container and string as indefinite length."""
    if isinstance(value, list):
        enc.array_stream_header()
        for v in value:
            _indefinite(v, enc)
        enc.break_()
    elif isinstance(value, dict):
        enc.map_stream_header()
        for k, v in value.items():
            _indefinite(k, enc)
            _indefinite(v, enc)
        enc.break_()
    elif isinstance(value, (str, bytes)) and not isinstance(value, bool):
        enc.raw(b"\x7f" if isinstance(value, str) else b"\x5f")
        for i in range(0, len(value), 3):
            enc.value(value[i : i + 3])
        enc.break_()
    elif isinstance(value, Tagged):
        enc.tag(value.tag)
        _indefinite(value.value, enc)
    else:
        enc.value(value)


@given(values)
def test_indefinite_lengths_agree_with_cbor2(value) -> None:
    enc = Encoder()
    _indefinite(value, enc)
    data = enc.getvalue()
    assert _decode_all(data) == value
    assert _from_cbor2(cbor2.loads(data)) == value


@given(values)
@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=50)
def test_every_truncation_needs_more(value) -> None:
    for data in (dumps(value), _indefinite_bytes(value)):
        for cut in range(len(data)):
            with pytest.raises(NeedMore) as caught:
                decode_item(data[:cut], 0)
            assert cut < caught.value.total_bytes <= len(data)


def _indefinite_bytes(value) -> bytes:
    enc = Encoder()
    _indefinite(value, enc)
    return enc.getvalue()


def test_need_more_is_exact_for_strings() -> None:
    data = dumps(["ab", b"x" * 300])
    with pytest.raises(NeedMore) as caught:
        decode_item(data[:10], 0)
    assert caught.value.total_bytes == len(data)


def test_decodes_at_an_offset_in_a_stream() -> None:
    stream = dumps(1) + dumps("two") + dumps([3])
    out, offset = [], 0
    while offset < len(stream):
        value, offset = decode_item(memoryview(stream), offset)
        out.append(value)
    assert out == [1, "two", [3]]
    with pytest.raises(NeedMore):
        decode_item(stream, len(stream))


@given(st.binary(max_size=60))
def test_random_bytes_raise_only_need_more_or_cbor_error(data: bytes) -> None:
    try:
        decode_item(data, 0)
    except (NeedMore, CborError):
        pass


@pytest.mark.parametrize(
    "hex_data",
    [
        "1c",  # reserved additional information
        "3d",
        "ff",  # a break outside an indefinite item
        "81ff",
        "a1ff01",
        "1f",  # integers and tags have no indefinite form
        "df01",
        "7f4161ff",  # a byte chunk inside a text string
        "7f7f6161ffff",  # nested indefinite chunk
        "62c328",  # invalid UTF-8
        "f0",  # unassigned simple value
        "f820",  # one-byte simple value
        "c26161",  # bignum that does not wrap bytes
        "a18001",  # an array as a map key
    ],
)
def test_malformed_input_raises_cbor_error(hex_data: str) -> None:
    with pytest.raises(CborError):
        decode_item(bytes.fromhex(hex_data), 0)


def test_declared_lengths_past_the_request_bound_are_malformed() -> None:
    too_long = limits.DAX_REQUEST_BYTES_MAX + 1
    for major in (2, 3, 4, 5):
        head = bytes([(major << 5) | 26]) + too_long.to_bytes(4, "big")
        with pytest.raises(CborError):
            decode_item(head, 0)


def test_nesting_is_bounded() -> None:
    depth = limits.DAX_CBOR_DEPTH_MAX
    assert _decode_all(b"\x81" * (depth - 1) + b"\x80") is not None
    with pytest.raises(CborError):
        decode_item(b"\x81" * depth + b"\x80", 0)
    with pytest.raises(CborError):
        decode_item(b"\xd8\x30" * (depth + 1) + b"\x00", 0)


def test_special_values() -> None:
    assert _decode_all(b"\xf7") is None  # undefined
    assert _decode_all(b"\xf9\x3e\x00") == 1.5  # half
    assert _decode_all(b"\xfa" + struct.pack(">f", 0.25)) == 0.25  # single
    assert math.isnan(_decode_all(b"\xf9\x7e\x00"))
    assert _decode_all(b"\xa2\x01\x61\x61\x01\x61\x62") == {1: "b"}  # duplicate key: the last wins
    assert _decode_all(bytes.fromhex("c48221196ab3")) == Tagged(4, [-2, 27315])  # RFC 8949's 273.15
    assert _decode_all(bytes.fromhex("3bffffffffffffffff")) == -(2**64)
    assert _decode_all(bytes.fromhex("c349010000000000000000")) == -(2**64) - 1


def test_encoder_methods() -> None:
    enc = Encoder()
    enc.array_header(3).int(-1).text("é").bytes_(b"\x00").map_stream_header().null().bool_(True).break_()
    enc.tag(3324).int(2).float64(0.5).raw(b"\x80")
    data = enc.getvalue()
    value, offset = decode_item(data, 0)
    assert value == [-1, "é", b"\x00"]
    value, offset = decode_item(data, offset)
    assert value == {None: True}
    value, offset = decode_item(data, offset)
    assert value == Tagged(3324, 2)
    assert decode_item(data, offset) == (0.5, offset + 9)
    assert decode_item(data, offset + 9) == ([], len(data))
    assert dumps(2**64) == bytes.fromhex("c249010000000000000000")
    assert dumps((1, 2)) == dumps([1, 2])
    with pytest.raises(TypeError):
        dumps(object())
