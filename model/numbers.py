"""DynamoDB numbers: validation, DynamoDB's rendering, 38-digit arithmetic.

A DynamoDB number is a decimal with at most 38 significant digits whose
magnitude is 0 or lies in [1E-130, 1E+126).  Clients send it as a string in
any of the forms Java's BigDecimal reads (``+5``, ``.5``, ``5.``, ``0001.2``,
``1.5E+3``, ``0e1000``), never with spaces, ``NaN`` or ``Infinity``; DynamoDB
stores it and answers with it rendered plainly: no exponent, no leading
zeros, no trailing fractional zeros, no ``+``, and ``-0`` as ``0``.

Most of the work here is string work on the text itself (``number_parts``):
it is several times faster than going through ``Decimal`` and never depends on
a decimal context.  ``Decimal`` is used only for arithmetic and comparison,
always through this module's own context, never the global one.
"""

from __future__ import annotations

import decimal
import re
from decimal import Decimal

from . import limits
from .errors import ValidationException

NOT_NUMERIC_MESSAGE = "The parameter cannot be converted to a numeric value"
PRECISION_MESSAGE = "Attempting to store more than 38 significant digits in a Number"
OVERFLOW_MESSAGE = "Number overflow. Attempting to store a number with magnitude larger than supported range"
UNDERFLOW_MESSAGE = "Number underflow. Attempting to store a number with magnitude smaller than supported range"

# sign, integer digits, fraction digits, exponent; at least one mantissa digit
# is checked separately (the pattern alone would accept "." and "+").
_SYNTAX = re.compile(r"([+-]?)([0-9]*)(?:\.([0-9]*))?(?:[eE]([+-]?[0-9]+))?")

# An exponent this long (after its leading zeros) is far outside any range a
# mantissa of a request-sized string could bring back; clamping it keeps
# int() away from Python's 4300-digit conversion limit.
_EXPONENT_DIGITS_MAX = 12
_EXPONENT_CLAMP = 10**_EXPONENT_DIGITS_MAX

# The exact sum or difference of two valid numbers has its digits between
# 10**126 (a carry out of 10**125) and 10**(-130 - 37), so this precision
# never rounds; Inexact is trapped so that a flaw in that reasoning fails
# loudly instead of silently.
_EXACT_DIGITS = limits.NUMBER_EXPONENT_MAX + 1 - limits.NUMBER_EXPONENT_MIN + limits.NUMBER_PRECISION_DIGITS_MAX
_CONTEXT = decimal.Context(
    prec=_EXACT_DIGITS,
    Emax=decimal.MAX_EMAX,
    Emin=decimal.MIN_EMIN,
    traps=[decimal.InvalidOperation, decimal.Inexact, decimal.Overflow, decimal.DivisionByZero],
)


NumberParts = tuple[bool, str, int]
"""A valid number taken apart: ``(negative, digits, exponent)``.

``digits`` are the significant digits (no leading or trailing zeros, empty
for zero); ``exponent`` is the power of ten of the first one, so ``12.5`` is
``(False, "125", 1)`` and ``0.001`` is ``(False, "1", -3)``.  Zero is always
``(False, "", 0)``.  A plain tuple: these are made on every request, and a
named tuple costs several times more to build.
"""

ZERO: NumberParts = (False, "", 0)


def number_parts(text: str) -> NumberParts:
    """Validate a DynamoDB number string and take it apart.

    Raises ``ValidationException`` with DynamoDB's messages, checking in its
    order: syntax, overflow, underflow, then the 38-digit precision.
    """
    return _rendered_parts(text) or _parse(text)


def _rendered_parts(text: str) -> NumberParts | None:
    """The parts of a number already in DynamoDB's rendering, else ``None``.

    Every stored number, and nearly every number clients send, is in that
    form; recognising it costs a fraction of the general parse.
    """
    negative = text[:1] == "-"
    body = text[1:] if negative else text
    if body.isdigit():  # an integer: the commonest case, decided without splitting
        if body[0] == "0" or len(body) > limits.NUMBER_PRECISION_DIGITS_MAX or not body.isascii():
            return None
        return negative, body.rstrip("0"), len(body) - 1
    integer, dot, fraction = body.partition(".")
    if not (dot and integer.isdigit() and integer.isascii()):
        return None
    if not (fraction.isdigit() and fraction.isascii()) or fraction[-1] == "0":
        return None
    if integer == "0":
        digits = fraction.lstrip("0")
        exponent = len(digits) - len(fraction) - 1
        if exponent < limits.NUMBER_EXPONENT_MIN or len(digits) > limits.NUMBER_PRECISION_DIGITS_MAX:
            return None
        return negative, digits, exponent
    if integer[0] == "0" or len(integer) + len(fraction) > limits.NUMBER_PRECISION_DIGITS_MAX:
        return None
    return negative, integer + fraction, len(integer) - 1


def _parse(text: str) -> NumberParts:
    if not text:
        raise ValidationException(NOT_NUMERIC_MESSAGE)
    match = _SYNTAX.fullmatch(text)
    if match is None or not (match[2] or match[3]):
        raise ValidationException(f"{NOT_NUMERIC_MESSAGE}: {text}")
    sign, integer, fraction, exponent_text = match.groups()
    fraction = fraction or ""
    mantissa = (integer + fraction).lstrip("0")
    if not mantissa:
        return ZERO
    digits = mantissa.rstrip("0")
    exponent = len(mantissa) - 1 - len(fraction) + _exponent_value(exponent_text)
    parts = (sign == "-", digits, exponent)
    check_parts(parts)
    return parts


def _exponent_value(text: str | None) -> int:
    if text is None:
        return 0
    negative = text[0] == "-"
    magnitude = text.lstrip("+-").lstrip("0")
    if len(magnitude) > _EXPONENT_DIGITS_MAX:
        return -_EXPONENT_CLAMP if negative else _EXPONENT_CLAMP
    value = int(magnitude or "0")
    return -value if negative else value


def check_parts(parts: NumberParts, precision_message: str = PRECISION_MESSAGE) -> None:
    """Enforce DynamoDB's range, then its precision.

    ``precision_message`` exists because DynamoDB reports a calculation whose
    exact result needs more than 38 digits (``1E+50 + 1``) as an *overflow*,
    not as a precision error.
    """
    _, digits, exponent = parts
    if not digits:
        return
    if exponent > limits.NUMBER_EXPONENT_MAX:
        raise ValidationException(OVERFLOW_MESSAGE)
    if exponent < limits.NUMBER_EXPONENT_MIN:
        raise ValidationException(UNDERFLOW_MESSAGE)
    if len(digits) > limits.NUMBER_PRECISION_DIGITS_MAX:
        raise ValidationException(precision_message)


def format_parts(parts: NumberParts) -> str:
    """Render the way DynamoDB returns numbers: plain, minimal, no exponent."""
    negative, digits, exponent = parts
    if not digits:
        return "0"
    count = len(digits)
    if exponent >= count - 1:
        text = digits + "0" * (exponent - count + 1)
    elif exponent >= 0:
        text = digits[: exponent + 1] + "." + digits[exponent + 1 :]
    else:
        text = "0." + "0" * (-exponent - 1) + digits
    return "-" + text if negative else text


def normalize_number(text: str) -> str:
    """Validate ``text`` and return it as DynamoDB would send it back.

    ``"1E+2"`` -> ``"100"``, ``"0.50"`` -> ``"0.5"``, ``"-0"`` -> ``"0"``.
    A number already in that form is returned as the very same object, so
    callers can test ``result is text`` to skip a copy.
    """
    if text == "0" or _rendered_parts(text) is not None:
        return text
    normal = format_parts(_parse(text))
    return text if normal == text else normal


def parse_number(text: str) -> Decimal:
    """Validate a DynamoDB number string and return its exact value."""
    return _CONTEXT.create_decimal(format_parts(number_parts(text)))


def _decimal_parts(value: Decimal) -> NumberParts:
    sign, digit_tuple, exponent = value.as_tuple()
    if not isinstance(exponent, int):
        raise ValueError(f"not a finite number: {value!r}")
    mantissa = "".join(map(str, digit_tuple)).lstrip("0")
    if not mantissa:
        return ZERO
    digits = mantissa.rstrip("0")
    return bool(sign), digits, exponent + len(mantissa) - 1


def format_decimal(value: Decimal, precision_message: str = PRECISION_MESSAGE) -> str:
    """Check a computed value against DynamoDB's limits and render it."""
    parts = _decimal_parts(value)
    check_parts(parts, precision_message)
    return format_parts(parts)


def add_numbers(a: str, b: str) -> str:
    """``a + b`` as DynamoDB computes it: exactly, or an error if the exact
    result does not fit 38 digits in range (reported as an overflow)."""
    return format_decimal(_CONTEXT.add(parse_number(a), parse_number(b)), OVERFLOW_MESSAGE)


def subtract_numbers(a: str, b: str) -> str:
    """``a - b``; see ``add_numbers``."""
    return format_decimal(_CONTEXT.subtract(parse_number(a), parse_number(b)), OVERFLOW_MESSAGE)


def compare_numbers(a: str, b: str) -> int:
    """Numeric comparison of two valid number strings: -1, 0 or 1."""
    if a == b:
        return 0
    da, db = _CONTEXT.create_decimal(a), _CONTEXT.create_decimal(b)
    return (da > db) - (da < db)
