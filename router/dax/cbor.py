"""CBOR (RFC 8949) for DAX's raw item stream: incremental, bounded decoding.

A DAX connection carries CBOR items back to back, with no length prefix, so
the server can only tell that a request is complete by decoding it.
``decode_item`` therefore decodes one item from a buffer that may end too
soon and says so with ``NeedMore`` (carrying how many bytes the buffer must
at least hold, so the caller waits for that much instead of retrying on every
packet), while input that can never become valid raises ``CborError``.

What comes back, by CBOR type::

    unsigned / negative int    int
    byte / text string         bytes / str   (indefinite: chunks joined)
    array / map                list / dict   (duplicate keys: the last wins)
    tag 2 / 3 (bignum)         int; past DAX_CBOR_BIGNUM_BYTES_MAX, Tagged(2|3, bytes)
    any other tag              Tagged(tag, value), tag 4 (decimal) included
    false, true, null          False, True, None   (undefined is None too)
    half / single / double     float

Everything else (unassigned simple values, reserved additional information,
a break outside an indefinite item, invalid UTF-8) is malformed.  Bounds:
no declared length or count may exceed ``DAX_REQUEST_BYTES_MAX``, and
containers and tags nest at most ``DAX_CBOR_DEPTH_MAX`` deep.

``Encoder`` writes the same types; ``dumps`` is its generic form.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, Union

from meridian.model import limits

Buffer = Union[bytes, bytearray, memoryview]

# Wire constants, not bounds.  Major types (RFC 8949 §3.1): the top three bits
# of an item's initial byte.
(
    MAJOR_UNSIGNED,
    MAJOR_NEGATIVE,
    MAJOR_BYTES,
    MAJOR_TEXT,
    MAJOR_ARRAY,
    MAJOR_MAP,
    MAJOR_TAG,
    MAJOR_SIMPLE,
) = range(8)
# Standard tags: positive and negative bignums, decimal fraction [exponent, mantissa].
TAG_POSITIVE_BIGNUM, TAG_NEGATIVE_BIGNUM, TAG_DECIMAL = 2, 3, 4
# DAX's own tags: string, number and binary sets (each wrapping an array) and a
# list index inside a document path.
TAG_STRING_SET, TAG_NUMBER_SET, TAG_BINARY_SET, TAG_PATH_INDEX = range(3321, 3325)

# The break byte ending an indefinite item; the marker ``_head`` returns for an
# indefinite length; the first integer that needs a bignum.  (Grouped in one
# assignment like the rest: encodings, not bounds, so no entry in limits.py.)
_BREAK, _INDEFINITE, _UINT64_LIMIT = 0xFF, -1, 1 << 64
_HALF = struct.Struct(">e")
_SINGLE = struct.Struct(">f")
_DOUBLE = struct.Struct(">d")


class NeedMore(Exception):
    """The buffer ends before the item does.

    ``total_bytes`` is a lower bound of the buffer length (counted from the
    buffer's start, not from the item's) at which the item can be complete:
    exact when the missing part is a string's content.
    """

    def __init__(self, total_bytes: int) -> None:
        super().__init__(f"need at least {total_bytes} bytes")
        self.total_bytes = total_bytes


class CborError(ValueError):
    """Input that no amount of further bytes can make a valid item."""


@dataclass(frozen=True, slots=True)
class Tagged:
    """A tagged item other than a bignum: DAX sets, path indexes, decimals."""

    tag: int
    value: Any


# --- decoding ------------------------------------------------------------------


def decode_item(buf: Buffer, offset: int) -> tuple[Any, int]:
    """Decode the one item starting at ``offset``: ``(value, offset after it)``."""
    return _item(buf, offset, len(buf), 0)


def _head(buf: Buffer, pos: int, end: int, info: int) -> tuple[int, int]:
    """The argument of an item head whose initial byte is at ``pos - 1``.

    Returns ``(argument, position after the head)``; ``_INDEFINITE`` for
    additional information 31 (the caller decides whether that is allowed).
    """
    if info < 24:
        return info, pos
    if info < 28:
        size = 1 << (info - 24)
        stop = pos + size
        if stop > end:
            raise NeedMore(stop)
        return int.from_bytes(buf[pos:stop], "big"), stop
    if info == 31:
        return _INDEFINITE, pos
    raise CborError(f"reserved additional information {info}")


def _item(buf: Buffer, pos: int, end: int, depth: int) -> tuple[Any, int]:
    if pos >= end:
        raise NeedMore(pos + 1)
    initial = buf[pos]
    major = initial >> 5
    info = initial & 0x1F
    pos += 1
    if major == MAJOR_SIMPLE:
        return _simple(buf, pos, end, info)
    arg, pos = _head(buf, pos, end, info)
    if major == MAJOR_UNSIGNED or major == MAJOR_NEGATIVE:
        if arg == _INDEFINITE:
            raise CborError("an integer cannot have an indefinite length")
        return (arg if major == MAJOR_UNSIGNED else -1 - arg), pos
    if major == MAJOR_BYTES or major == MAJOR_TEXT:
        if arg == _INDEFINITE:
            return _chunked(buf, pos, end, major)
        return _string(buf, pos, end, major, arg)
    if depth >= limits.DAX_CBOR_DEPTH_MAX:
        raise CborError(f"CBOR nested deeper than {limits.DAX_CBOR_DEPTH_MAX}")
    if major == MAJOR_ARRAY:
        return _array(buf, pos, end, arg, depth + 1)
    if major == MAJOR_MAP:
        return _map(buf, pos, end, arg, depth + 1)
    if arg == _INDEFINITE:
        raise CborError("a tag cannot have an indefinite length")
    return _tagged(buf, pos, end, arg, depth + 1)


def _string(buf: Buffer, pos: int, end: int, major: int, length: int) -> tuple[Any, int]:
    if length > limits.DAX_REQUEST_BYTES_MAX:
        raise CborError(f"a string of {length} bytes exceeds {limits.DAX_REQUEST_BYTES_MAX}")
    stop = pos + length
    if stop > end:
        raise NeedMore(stop)
    data = bytes(buf[pos:stop])
    if major == MAJOR_BYTES:
        return data, stop
    try:
        return data.decode("utf-8"), stop
    except UnicodeDecodeError as exc:
        raise CborError(f"invalid UTF-8 in a text string: {exc.reason}") from None


def _chunked(buf: Buffer, pos: int, end: int, major: int) -> tuple[Any, int]:
    """An indefinite-length string: definite chunks of the same type, then a break."""
    chunks = []
    while True:
        if pos >= end:
            raise NeedMore(pos + 1)
        initial = buf[pos]
        if initial == _BREAK:
            pos += 1
            break
        if initial >> 5 != major or initial & 0x1F == 31:
            raise CborError("an indefinite-length string holds a chunk of another type")
        length, pos = _head(buf, pos + 1, end, initial & 0x1F)
        chunk, pos = _string(buf, pos, end, major, length)
        chunks.append(chunk)
    return (b"" if major == MAJOR_BYTES else "").join(chunks), pos


def _check_count(count: int, pos: int, end: int, item_bytes_min: int) -> None:
    """Refuse impossible counts, and wait early for ones that cannot fit yet."""
    if count > limits.DAX_REQUEST_BYTES_MAX:
        raise CborError(f"a container of {count} entries exceeds {limits.DAX_REQUEST_BYTES_MAX} bytes")
    if pos + count * item_bytes_min > end:
        raise NeedMore(pos + count * item_bytes_min)


def _array(buf: Buffer, pos: int, end: int, count: int, depth: int) -> tuple[list, int]:
    out = []
    if count != _INDEFINITE:
        _check_count(count, pos, end, 1)
        for _ in range(count):
            value, pos = _item(buf, pos, end, depth)
            out.append(value)
        return out, pos
    while True:
        if pos >= end:
            raise NeedMore(pos + 1)
        if buf[pos] == _BREAK:
            return out, pos + 1
        value, pos = _item(buf, pos, end, depth)
        out.append(value)


def _map(buf: Buffer, pos: int, end: int, count: int, depth: int) -> tuple[dict, int]:
    out: dict = {}
    if count != _INDEFINITE:
        _check_count(count, pos, end, 2)
        for _ in range(count):
            pos = _entry(buf, pos, end, depth, out)
        return out, pos
    while True:
        if pos >= end:
            raise NeedMore(pos + 1)
        if buf[pos] == _BREAK:
            return out, pos + 1
        pos = _entry(buf, pos, end, depth, out)


def _entry(buf: Buffer, pos: int, end: int, depth: int, out: dict) -> int:
    key, pos = _item(buf, pos, end, depth)
    value, pos = _item(buf, pos, end, depth)
    try:
        out[key] = value
    except TypeError:
        raise CborError(f"a map key of type {type(key).__name__} is not supported") from None
    return pos


def _tagged(buf: Buffer, pos: int, end: int, tag: int, depth: int) -> tuple[Any, int]:
    value, pos = _item(buf, pos, end, depth)
    if tag == TAG_POSITIVE_BIGNUM or tag == TAG_NEGATIVE_BIGNUM:
        if not isinstance(value, bytes):
            raise CborError(f"a bignum must wrap a byte string, not {type(value).__name__}")
        if len(value) > limits.DAX_CBOR_BIGNUM_BYTES_MAX and len(value.lstrip(b"\0")) > limits.DAX_CBOR_BIGNUM_BYTES_MAX:
            return Tagged(tag, value), pos  # no number: kept out of int so nothing must print it
        magnitude = int.from_bytes(value, "big")
        return (magnitude if tag == TAG_POSITIVE_BIGNUM else -1 - magnitude), pos
    return Tagged(tag, value), pos


def _simple(buf: Buffer, pos: int, end: int, info: int) -> tuple[Any, int]:
    if info == 20:
        return False, pos
    if info == 21:
        return True, pos
    if info == 22 or info == 23:  # null, undefined
        return None, pos
    if 24 <= info <= 27:
        size = 1 << (info - 24)
        stop = pos + size
        if stop > end:
            raise NeedMore(stop)
        if info == 25:
            return _HALF.unpack_from(buf, pos)[0], stop
        if info == 26:
            return _SINGLE.unpack_from(buf, pos)[0], stop
        if info == 27:
            return _DOUBLE.unpack_from(buf, pos)[0], stop
        raise CborError(f"unsupported simple value {buf[pos]}")
    if info == 31:
        raise CborError("unexpected break")
    raise CborError(f"unsupported simple value {info}" if info < 20 else f"reserved additional information {info}")


# --- encoding ------------------------------------------------------------------


class Encoder:
    """Appends CBOR items to a growing buffer; ``getvalue`` returns them.

    Lengths are always written in their shortest form, as both DAX clients do.
    """

    __slots__ = ("_out",)

    def __init__(self) -> None:
        self._out = bytearray()

    def getvalue(self) -> bytes:
        return bytes(self._out)

    def _head(self, major: int, arg: int) -> None:
        out = self._out
        bits = major << 5
        if arg < 24:
            out.append(bits | arg)
        elif arg < 0x100:
            out.append(bits | 24)
            out.append(arg)
        elif arg < 0x10000:
            out.append(bits | 25)
            out += arg.to_bytes(2, "big")
        elif arg < 0x100000000:
            out.append(bits | 26)
            out += arg.to_bytes(4, "big")
        else:
            out.append(bits | 27)
            out += arg.to_bytes(8, "big")

    def int(self, n: int) -> Encoder:
        """Any integer: past 64 bits as a bignum (tags 2/3)."""
        if n >= 0:
            if n < _UINT64_LIMIT:
                self._head(MAJOR_UNSIGNED, n)
            else:
                self.tag(TAG_POSITIVE_BIGNUM)
                self.bytes_(n.to_bytes((n.bit_length() + 7) // 8, "big"))
        else:
            magnitude = -1 - n
            if magnitude < _UINT64_LIMIT:
                self._head(MAJOR_NEGATIVE, magnitude)
            else:
                self.tag(TAG_NEGATIVE_BIGNUM)
                self.bytes_(magnitude.to_bytes((magnitude.bit_length() + 7) // 8, "big"))
        return self

    def bytes_(self, data: Buffer) -> Encoder:
        self._head(MAJOR_BYTES, len(data))
        self._out += data
        return self

    def text(self, s: str) -> Encoder:
        data = s.encode("utf-8")
        self._head(MAJOR_TEXT, len(data))
        self._out += data
        return self

    def bool_(self, b: bool) -> Encoder:
        self._out.append(0xF5 if b else 0xF4)
        return self

    def null(self) -> Encoder:
        self._out.append(0xF6)
        return self

    def float64(self, x: float) -> Encoder:
        self._out.append(0xFB)
        self._out += _DOUBLE.pack(x)
        return self

    def array_header(self, count: int) -> Encoder:
        self._head(MAJOR_ARRAY, count)
        return self

    def map_header(self, count: int) -> Encoder:
        self._head(MAJOR_MAP, count)
        return self

    def array_stream_header(self) -> Encoder:
        self._out.append((MAJOR_ARRAY << 5) | 31)
        return self

    def map_stream_header(self) -> Encoder:
        self._out.append((MAJOR_MAP << 5) | 31)
        return self

    def break_(self) -> Encoder:
        self._out.append(_BREAK)
        return self

    def tag(self, tag: int) -> Encoder:
        self._head(MAJOR_TAG, tag)
        return self

    def raw(self, data: Buffer) -> Encoder:
        """Already-encoded CBOR, appended as it is."""
        self._out += data
        return self

    def value(self, obj: Any) -> Encoder:
        """Any value ``decode_item`` returns, written back."""
        if obj is None:
            return self.null()
        if obj is True or obj is False:
            return self.bool_(obj)
        if isinstance(obj, int):
            return self.int(obj)
        if isinstance(obj, str):
            return self.text(obj)
        if isinstance(obj, (bytes, bytearray, memoryview)):
            return self.bytes_(obj)
        if isinstance(obj, float):
            return self.float64(obj)
        if isinstance(obj, (list, tuple)):
            self.array_header(len(obj))
            for element in obj:
                self.value(element)
            return self
        if isinstance(obj, dict):
            self.map_header(len(obj))
            for key, element in obj.items():
                self.value(key)
                self.value(element)
            return self
        if isinstance(obj, Tagged):
            self.tag(obj.tag)
            return self.value(obj.value)
        raise TypeError(f"cannot encode {type(obj).__name__} as CBOR")


def dumps(obj: Any) -> bytes:
    """``obj`` as one CBOR item (see ``Encoder.value``)."""
    return Encoder().value(obj).getvalue()
