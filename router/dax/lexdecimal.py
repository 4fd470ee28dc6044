"""LexDecimal: DAX's order-preserving encoding of a number in key bytes.

The DAX clients append a numeric sort key to a key's bytes in this form, so
that comparing the bytes (unsigned, left to right) compares the numbers.  A
DAX server must read it in request keys and write it in answers' keys.

Layout (``e`` is the number of digits before the decimal point, i.e. the
value is ``0.DDD... x 10**e``; the digits ``DDD...`` have no leading zero)::

    zero               0x80
    positive, |e|<62   [e + 0xC0]                        0x82..0xFD
    positive, e>=62    [0xFE] [e ^ 0x80000000, int32 BE]
    positive, e<-62    [0x81] [e ^ 0x80000000, int32 BE] (e as two's complement)
    negative, |e|<62   [0x3F - e]                        0x02..0x7D
    negative, e>=62    [0x01] [e ^ 0x7FFFFFFF, int32 BE]
    negative, e<-62    [0x7E] [e ^ 0x7FFFFFFF, int32 BE]

    then the digits, right-padded with zeros to a multiple of three, as
    base-1000 groups of 10 bits each, big-endian bit order:
        positive group g -> g + 12        negative group g -> 1011 - g
    then one 10-bit terminator saying how many digits of the last group are
    real (1, 2 or 3 -> 0, 1, 2; negative: 1023, 1022, 1021), then zero bits
    to the end of the byte.

The digits written for a value are those of its plain DynamoDB rendering
(``100`` -> ``100``, ``0.05`` -> ``5``), as the clients write them when given
that rendering; an integer whose plain form has more than 38 digits is
written with its trailing zeros dropped instead, since the clients' decimal
context (38 digits) cannot read more.
"""

from __future__ import annotations

from meridian.model import limits
from meridian.model.numbers import format_parts, normalize_number, number_parts

# Encodings, not bounds (so not in limits.py): an exponent with |e| below
# 0x3E fits the header byte; digits go in 10-bit groups; group values 0..999
# are written as 12..1011.
_SHORT_EXPONENT_LIMIT, _GROUP_BITS, _DIGIT_OFFSET = 0x3E, 10, 12
_GROUP_MASK = (1 << _GROUP_BITS) - 1
_NEGATIVE_BASE = 999 + _DIGIT_OFFSET
_CODE_MAX = _GROUP_MASK
_ZERO = b"\x80"


class LexDecimalError(ValueError):
    """Bytes that are not a LexDecimal number."""


def encode(number: str) -> bytes:
    """The LexDecimal bytes of a DynamoDB number string (validated first)."""
    negative, digits, exponent = number_parts(normalize_number(number))
    if not digits:
        return _ZERO
    if exponent >= len(digits) - 1 and exponent < limits.NUMBER_PRECISION_DIGITS_MAX:
        digits += "0" * (exponent + 1 - len(digits))  # an integer: its plain digits
    header = _header(negative, exponent + 1)
    real = len(digits) % 3 or 3
    digits += "0" * (3 - real)
    groups = [int(digits[i : i + 3]) for i in range(0, len(digits), 3)]
    if negative:
        codes = [_NEGATIVE_BASE - g for g in groups] + [_CODE_MAX - (real - 1)]
    else:
        codes = [g + _DIGIT_OFFSET for g in groups] + [real - 1]
    return header + _pack(codes)


def _header(negative: bool, e: int) -> bytes:
    short = -_SHORT_EXPONENT_LIMIT <= e < _SHORT_EXPONENT_LIMIT
    if negative:
        if short:
            return bytes((0x3F - e,))
        return bytes((0x7E if e < 0 else 0x01,)) + ((e & 0xFFFFFFFF) ^ 0x7FFFFFFF).to_bytes(4, "big")
    if short:
        return bytes((e + 0xC0,))
    return bytes((0x81 if e < 0 else 0xFE,)) + ((e & 0xFFFFFFFF) ^ 0x80000000).to_bytes(4, "big")


def _pack(codes: list[int]) -> bytes:
    """10-bit codes, big-endian, zero-padded to a whole byte."""
    bits = len(codes) * _GROUP_BITS
    accumulated = 0
    for code in codes:
        accumulated = (accumulated << _GROUP_BITS) | code
    padding = -bits % 8
    return (accumulated << padding).to_bytes((bits + padding) // 8, "big")


def decode(data: bytes, offset: int = 0) -> tuple[str, int]:
    """Read one number at ``offset``: ``(DynamoDB number string, offset after it)``.

    A value inside DynamoDB's range comes back in its canonical rendering;
    one outside it comes back in exponent form (``1.5E+200``) so that the
    action layer rejects it with DynamoDB's own message.
    """
    if offset >= len(data):
        raise LexDecimalError("no LexDecimal number: the data ends")
    header = data[offset]
    pos = offset + 1
    if header in (0x7F, 0x80):
        return "0", pos
    if header in (0x00, 0xFF):
        raise LexDecimalError("a LexDecimal null marker is not a number")
    if header in (0x01, 0x7E, 0x81, 0xFE):
        if pos + 4 > len(data):
            raise LexDecimalError("a LexDecimal exponent is cut short")
        negative = header < 0x80
        raw = int.from_bytes(data[pos : pos + 4], "big") ^ (0x7FFFFFFF if negative else 0x80000000)
        e = raw - (1 << 32) if raw & 0x80000000 else raw
        pos += 4
    else:
        negative = header < 0x80
        e = 0x3F - header if negative else header - 0xC0
    groups, real, pos = _unpack(data, pos, negative)
    text = "".join(f"{g:03d}" for g in groups)
    text = text[: len(text) - 3 + real]
    significant = text.lstrip("0")
    if not significant:
        return "0", pos
    e -= len(text) - len(significant)
    return _render(negative, significant.rstrip("0"), e - 1), pos


def _unpack(data: bytes, pos: int, negative: bool) -> tuple[list[int], int, int]:
    """The base-1000 groups, how many digits of the last are real, and the end."""
    groups: list[int] = []
    accumulated = 0
    bits = 0
    while True:
        if pos >= len(data):
            raise LexDecimalError("a LexDecimal number has no terminator")
        accumulated = (accumulated << 8) | data[pos]
        pos += 1
        bits += 8
        if bits < _GROUP_BITS:
            continue
        bits -= _GROUP_BITS
        code = (accumulated >> bits) & _GROUP_MASK
        accumulated &= (1 << bits) - 1
        terminator = _CODE_MAX - code if negative else code
        if terminator <= 2:
            if not groups:
                raise LexDecimalError("a LexDecimal number has no digits")
            return groups, terminator + 1, pos
        group = _NEGATIVE_BASE - code if negative else code - _DIGIT_OFFSET
        if not 0 <= group <= 999:
            raise LexDecimalError(f"invalid LexDecimal digit code {code}")
        groups.append(group)


def _render(negative: bool, digits: str, exponent: int) -> str:
    if (
        limits.NUMBER_EXPONENT_MIN <= exponent <= limits.NUMBER_EXPONENT_MAX
        and len(digits) <= limits.NUMBER_PRECISION_DIGITS_MAX
    ):
        return format_parts((negative, digits, exponent))
    sign = "-" if negative else ""
    fraction = f".{digits[1:]}" if len(digits) > 1 else ""
    return f"{sign}{digits[0]}{fraction}E{exponent:+d}"
