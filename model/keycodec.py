"""Order-preserving storage keys for items.

RocksDB orders keys by unsigned bytes, so an item's key is built such that
byte order *is* DynamoDB order: one table is one contiguous key range, one
partition is one contiguous range inside it, and within a partition the items
follow their sort key exactly as a DynamoDB Query returns them.  A Query is
then a single RocksDB range scan.

    item key = table prefix | partition key value | sort key value (if any)

    table prefix     8 bytes, the table id, unsigned big-endian
                     +--+--+--+--+--+--+--+--+
                     |       table_id        |
                     +--+--+--+--+--+--+--+--+

    S value          UTF-8 bytes, every 00 written as 00 FF, then 00 01
    B value          the decoded bytes, escaped the same way, then 00 01
                     +--------------------------+--+--+
                     | bytes (00 -> 00 FF)      |00|01|
                     +--------------------------+--+--+

    N value          zero:      02
                     positive:  03 |  E |  D D D ... | 00
                     negative:  01 | ~E | ~D ~D ... | FF     (~ = 255 - byte)

                     E = exponent of the first significant digit + 130
                         (DynamoDB's range -130..+125 is exactly one byte)
                     D = the significant digits, digit d as the nibble d+1
                         (1..A), two per byte, an odd count padded with the
                         nibble 0; D bytes thus lie in 10..AA, never 00 or FF

      e.g.  12.5  ->  03 83 23 60 00        -12.5  ->  01 7C DC 9F FF
             0.5  ->  03 81 60 00            100   ->  03 84 20 00

Why the order holds:
* Strings and binaries: escaping maps bytes to bytes monotonically and the
  terminator 00 01 sorts below any escaped continuation (00 FF) and below
  every other byte that could follow, so a value sorts before its extensions.
* Numbers: the tag orders the signs; for positive numbers a larger exponent
  means a larger number, then the digits compare as a decimal fraction (a
  missing digit, the pad nibble 0 or the terminator 00, sorts below any real
  digit).  Negative numbers invert every byte, which reverses all of that.
Every value encoding is self-delimiting and prefix-free, so one partition's
key range never contains another partition's keys.
"""

from __future__ import annotations

import binascii
import hashlib
import struct
from typing import Any, Sequence

from . import limits
from .numbers import format_parts, number_parts
from .values import KeySchema

_TABLE_ID = struct.Struct(">Q")
TABLE_PREFIX_BYTES = _TABLE_ID.size

_TERMINATOR = b"\x00\x01"
_ESCAPED_ZERO = b"\x00\xff"

_NEGATIVE = b"\x01"
_ZERO = b"\x02"
_POSITIVE = b"\x03"
_NEGATIVE_TAG, _ZERO_TAG, _POSITIVE_TAG = 1, 2, 3
_POSITIVE_END = 0x00
_NEGATIVE_END = 0xFF
_EXPONENT_BIAS = -limits.NUMBER_EXPONENT_MIN
assert 0 <= limits.NUMBER_EXPONENT_MAX + _EXPONENT_BIAS <= 0xFF  # the exponent fits one byte

_DIGIT_TO_NIBBLE = str.maketrans("0123456789", "123456789a")
_NIBBLE_TO_DIGIT = str.maketrans("123456789a", "0123456789")
_INVERT = bytes(range(255, -1, -1))


def table_prefix(table_id: int) -> bytes:
    """The first bytes of every key of a table, and of nothing else."""
    return _TABLE_ID.pack(table_id)


def prefix_end(prefix: bytes) -> bytes:
    """The smallest key greater than every key starting with ``prefix``
    (the exclusive upper bound of a prefix scan)."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        raise ValueError("a prefix of only FF bytes has no end")
    return stripped[:-1] + bytes((stripped[-1] + 1,))


def _scalar(key_type: str, value: Any) -> Any:
    """Accept a wire AttributeValue (``{"S": "a"}``) or its scalar (``"a"``)."""
    return value[key_type] if type(value) is dict else value


def _escape(raw: bytes) -> bytes:
    return raw.replace(b"\x00", _ESCAPED_ZERO) if b"\x00" in raw else raw


def _encode_number(text: str) -> bytes:
    negative, digits, exponent = number_parts(text)
    if not digits:
        return _ZERO
    nibbles = digits.translate(_DIGIT_TO_NIBBLE)
    if len(nibbles) % 2:
        nibbles += "0"
    body = bytes((exponent + _EXPONENT_BIAS,)) + bytes.fromhex(nibbles)
    if negative:
        return _NEGATIVE + body.translate(_INVERT) + b"\xff"
    return _POSITIVE + body + b"\x00"


def encode_value(key_type: str, value: Any) -> bytes:
    """The self-delimiting, order-preserving encoding of one key value."""
    inner = _scalar(key_type, value)
    if key_type == "S":
        return _escape(inner.encode("utf-8", "surrogatepass")) + _TERMINATOR
    if key_type == "N":
        return _encode_number(inner)
    if key_type == "B":
        return _escape(binascii.a2b_base64(inner)) + _TERMINATOR
    raise ValueError(f"not a key type: {key_type!r}")


def encode_sort_value(sk_type: str, value: Any) -> bytes:
    """A sort key value as it appears at the end of item keys (range bounds)."""
    return encode_value(sk_type, value)


def encode_sort_prefix(sk_type: str, value: Any) -> bytes:
    """The bytes every sort key beginning with ``value`` starts with
    (``begins_with`` on S or B): the escaped bytes without the terminator."""
    inner = _scalar(sk_type, value)
    if sk_type == "S":
        return _escape(inner.encode("utf-8", "surrogatepass"))
    if sk_type == "B":
        return _escape(binascii.a2b_base64(inner))
    raise ValueError(f"begins_with needs an S or B sort key, not {sk_type!r}")


def partition_prefix(table_id: int, pk_type: str, pk_value: Any) -> bytes:
    """The first bytes of every key of one partition, and of nothing else."""
    return _TABLE_ID.pack(table_id) + encode_value(pk_type, pk_value)


def encode_item_key(table_id: int, key_schema: KeySchema, key: dict[str, Any]) -> bytes:
    """The storage key of the item whose (validated) key attributes are ``key``."""
    (pk_name, pk_type), *sort = key_schema
    encoded = _TABLE_ID.pack(table_id) + encode_value(pk_type, key[pk_name])
    if sort:
        sk_name, sk_type = sort[0]
        encoded += encode_value(sk_type, key[sk_name])
    return encoded


def partition_hash(pk_type: str, pk_value: Any) -> int:
    """A stable 64-bit hash of a partition key value, for ring placement.

    It hashes the canonical encoding, so equal numbers written differently
    (``1`` and ``1.0``) land together, and it is the same in every process
    and run (unlike ``hash()``, which is salted per process).
    """
    digest = hashlib.blake2b(encode_value(pk_type, pk_value), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def encode_values(parts: Sequence[tuple[str, Any]]) -> bytes:
    """Several key values ``(type, value)`` one after another.

    Each encoding is self-delimiting and prefix-free, so the concatenation
    decodes unambiguously and byte order is the values' order compared one
    after another, the first deciding: a multi-attribute index key sorts as
    DynamoDB sorts it, by its first RANGE attribute, then its second, ...
    """
    return b"".join(encode_value(key_type, value) for key_type, value in parts)


def partition_hash_of(parts: Sequence[tuple[str, Any]]) -> int:
    """``partition_hash`` of a partition key made of several attributes
    (a multi-attribute GSI's HASH attributes, in key schema order), hashed
    together as DynamoDB hashes them; one part hashes as ``partition_hash``."""
    digest = hashlib.blake2b(encode_values(parts), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def _decode_escaped(buf: bytes, pos: int) -> tuple[bytes, int]:
    # Every escaped 00 is followed by FF, so the first 00 01 is the terminator.
    end = buf.index(_TERMINATOR, pos)
    raw = buf[pos:end]
    if b"\x00" in raw:
        raw = raw.replace(_ESCAPED_ZERO, b"\x00")
    return raw, end + 2


def _decode_number(buf: bytes, pos: int) -> tuple[str, int]:
    tag = buf[pos]
    if tag == _ZERO_TAG:
        return "0", pos + 1
    if tag == _POSITIVE_TAG:
        end = buf.index(_POSITIVE_END, pos + 2)
        exponent_byte, body = buf[pos + 1], buf[pos + 2 : end]
    elif tag == _NEGATIVE_TAG:
        end = buf.index(_NEGATIVE_END, pos + 2)
        exponent_byte, body = 0xFF - buf[pos + 1], buf[pos + 2 : end].translate(_INVERT)
    else:
        raise ValueError(f"not a number encoding: tag {tag:#04x} at {pos}")
    nibbles = body.hex()
    if nibbles.endswith("0"):  # the pad nibble; real digits are never nibble 0
        nibbles = nibbles[:-1]
    parts = (tag == _NEGATIVE_TAG, nibbles.translate(_NIBBLE_TO_DIGIT), exponent_byte - _EXPONENT_BIAS)
    return format_parts(parts), end + 1


def decode_value(key_type: str, buf: bytes, pos: int) -> tuple[str, int]:
    """Decode one key value at ``pos``: its wire scalar and the next position."""
    if key_type == "S":
        raw, pos = _decode_escaped(buf, pos)
        return raw.decode("utf-8", "surrogatepass"), pos
    if key_type == "N":
        return _decode_number(buf, pos)
    if key_type == "B":
        raw, pos = _decode_escaped(buf, pos)
        return binascii.b2a_base64(raw, newline=False).decode("ascii"), pos
    raise ValueError(f"not a key type: {key_type!r}")


def decode_item_key(key_bytes: bytes, key_schema: KeySchema) -> dict[str, dict[str, str]]:
    """The wire JSON key (numbers normalised) of a storage key."""
    out: dict[str, dict[str, str]] = {}
    pos = TABLE_PREFIX_BYTES
    for name, key_type in key_schema:
        value, pos = decode_value(key_type, key_bytes, pos)
        out[name] = {key_type: value}
    if pos != len(key_bytes):
        raise ValueError(f"{len(key_bytes) - pos} trailing bytes after the key")
    return out
