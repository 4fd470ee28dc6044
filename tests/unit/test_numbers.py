"""DynamoDB numbers: accepted forms, rendering, limits, arithmetic."""

from __future__ import annotations

from decimal import Context, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meridian.model.errors import ValidationException
from meridian.model.numbers import (
    add_numbers,
    compare_numbers,
    format_decimal,
    normalize_number,
    number_parts,
    parse_number,
    subtract_numbers,
)

NOT_NUMERIC = "The parameter cannot be converted to a numeric value"
PRECISION = "Attempting to store more than 38 significant digits in a Number"
OVERFLOW = "Number overflow. Attempting to store a number with magnitude larger than supported range"
UNDERFLOW = "Number underflow. Attempting to store a number with magnitude smaller than supported range"

# Forms DynamoDB accepts and what it answers with (see Alternator's
# test_number.py and dynoxide #109, both captured against DynamoDB).
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", "0"),
        ("-0", "0"),
        ("+0", "0"),
        ("0.000", "0"),
        ("0e1000", "0"),
        ("123", "123"),
        ("-123", "-123"),
        ("+5", "5"),
        ("+1.5", "1.5"),
        ("+1e2", "100"),
        ("1E+2", "100"),
        ("1e+2", "100"),
        ("1.5E+3", "1500"),
        ("0.50", "0.5"),
        ("1.0", "1"),
        ("00042", "42"),
        ("0001.23", "1.23"),
        (".123", "0.123"),
        ("5.", "5"),
        ("-7.1234", "-7.1234"),
        ("-17e5", "-1700000"),
        ("-17.4E37", "-174" + "0" * 36),
        ("1e-130", "0." + "0" * 129 + "1"),
        ("1e125", "1" + "0" * 125),
        ("9.99999999e125", "999999999" + "0" * 117),
        ("1e0000000000000000000005", "100000"),
        ("12345678901234567890123456789012345678", "12345678901234567890123456789012345678"),
        ("1234567890123456789012345678901234567800000", "1234567890123456789012345678901234567800000"),
        ("3.1415926535897932384626433832795028841", "3.1415926535897932384626433832795028841"),
    ],
)
def test_normalize_accepted_forms(text: str, expected: str) -> None:
    assert normalize_number(text) == expected
    assert parse_number(text) == Decimal(expected)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", NOT_NUMERIC),
        ("b", NOT_NUMERIC + ": b"),
        ("dog", NOT_NUMERIC + ": dog"),
        ("NaN", NOT_NUMERIC + ": NaN"),
        ("-NaN", NOT_NUMERIC + ": -NaN"),
        ("Infinity", NOT_NUMERIC + ": Infinity"),
        ("-Infinity", NOT_NUMERIC + ": -Infinity"),
        (" 1", NOT_NUMERIC + ":  1"),
        ("1 ", NOT_NUMERIC + ": 1 "),
        ("+", NOT_NUMERIC + ": +"),
        ("-", NOT_NUMERIC + ": -"),
        (".", NOT_NUMERIC + ": ."),
        ("+e2", NOT_NUMERIC + ": +e2"),
        ("1e", NOT_NUMERIC + ": 1e"),
        ("1+2", NOT_NUMERIC + ": 1+2"),
        ("1.2.3", NOT_NUMERIC + ": 1.2.3"),
        ("1_000", NOT_NUMERIC + ": 1_000"),
        ("0x10", NOT_NUMERIC + ": 0x10"),
        ("\u0661", NOT_NUMERIC + ": \u0661"),  # an Arabic-Indic digit: Python's Decimal would take it
        ("123456789012345678901234567890123456789", PRECISION),
        ("-1.23456789012345678901234567890123456789", PRECISION),
        ("3.14159265358979323846264338327950288419", PRECISION),
        ("314159265358979323846264338327950288419e30", PRECISION),
        ("1e126", OVERFLOW),
        ("-1e126", OVERFLOW),
        ("11e125", OVERFLOW),
        ("1e99999999999999999999999", OVERFLOW),
        ("1e-131", UNDERFLOW),
        ("-1e-131", UNDERFLOW),
        ("0.9e-130", UNDERFLOW),
        ("1e-99999999999999999999999", UNDERFLOW),
        # range is checked before precision, as DynamoDB does
        ("1234567890123456789012345678901234567891e200", OVERFLOW),
    ],
)
def test_invalid_numbers(text: str, message: str) -> None:
    with pytest.raises(ValidationException) as caught:
        normalize_number(text)
    assert caught.value.message == message


def test_plain_integers_come_back_as_the_same_object() -> None:
    text = "".join(["12", "345"])  # not interned
    assert normalize_number(text) is text
    negative = "-" + text
    assert normalize_number(negative) is negative


def test_number_parts() -> None:
    assert number_parts("12.5") == (False, "125", 1)
    assert number_parts("-0.001") == (True, "1", -3)
    assert number_parts("1.2e-5") == (False, "12", -5)
    assert number_parts("1200") == (False, "12", 3)
    assert number_parts("-0") == (False, "", 0)


@pytest.mark.parametrize(
    ("a", "b", "total", "difference"),
    [
        ("1", "10000000000000000000000", "10000000000000000000001", "-9999999999999999999999"),
        ("1.5", "-1.5", "0", "3"),
        ("0.1", "0.2", "0.3", "-0.1"),
        ("99999999999999999999999999999999999999", "1", "100000000000000000000000000000000000000",
         "99999999999999999999999999999999999998"),
        ("1e125", "0", "1" + "0" * 125, "1" + "0" * 125),
        ("-5", "3", "-2", "-8"),
    ],
)
def test_arithmetic(a: str, b: str, total: str, difference: str) -> None:
    assert add_numbers(a, b) == total
    assert subtract_numbers(a, b) == difference


@pytest.mark.parametrize(
    ("op", "a", "b", "message"),
    [
        # DynamoDB reports an inexact result as an overflow (Alternator's
        # test_update_expression_plus_imprecise notes the odd wording).
        (add_numbers, "1e50", "1", OVERFLOW),
        (subtract_numbers, "1e50", "1", OVERFLOW),
        (add_numbers, "9e125", "9e125", OVERFLOW),
        (subtract_numbers, "9e125", "-9e125", OVERFLOW),
        # the widest exact result two valid numbers can have (294 digits)
        (add_numbers, "9.9999999999999999999999999999999999999e125", "-1.0000000000000000000000000000000000001e-130",
         OVERFLOW),
        (subtract_numbers, "1e-130", "0.9e-130", UNDERFLOW),
        (add_numbers, "1", "x", NOT_NUMERIC + ": x"),
    ],
)
def test_arithmetic_errors(op, a: str, b: str, message: str) -> None:
    with pytest.raises(ValidationException) as caught:
        op(a, b)
    assert caught.value.message == message


def test_format_decimal() -> None:
    assert format_decimal(Decimal("1.500E+3")) == "1500"
    assert format_decimal(Decimal("-0.0")) == "0"
    with pytest.raises(ValidationException) as caught:
        format_decimal(Decimal("1" * 39))
    assert caught.value.message == PRECISION


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [("1", "2", -1), ("2", "1", 1), ("1.0", "1", 0), ("-10", "-9", -1), ("1e2", "100", 0), ("0.001", "-5", 1)],
)
def test_compare(a: str, b: str, expected: int) -> None:
    assert compare_numbers(a, b) == expected


# --- properties -------------------------------------------------------------------

_ORACLE = Context(prec=400)  # exact for any sum of two valid numbers


@st.composite
def dynamo_decimals(draw: st.DrawFn) -> Decimal:
    """Any number DynamoDB can store: up to 38 digits, exponents -130..125."""
    if draw(st.integers(0, 15)) == 0:
        return Decimal(0)
    count = draw(st.integers(1, 38))
    digits = [draw(st.integers(1, 9))] + draw(st.lists(st.integers(0, 9), min_size=count - 1, max_size=count - 1))
    leading_exponent = draw(st.integers(-130, 125))
    return Decimal((draw(st.integers(0, 1)), tuple(digits), leading_exponent - (count - 1)))


@st.composite
def spellings(draw: st.DrawFn) -> tuple[Decimal, str]:
    """A number and one of the many ways a client may write it."""
    value = draw(dynamo_decimals())
    form = draw(st.sampled_from(["str", "plain", "sci", "SCI"]))
    text = {"str": str, "plain": lambda d: format(d, "f"), "sci": lambda d: format(d, "e"),
            "SCI": lambda d: format(d, "E")}[form](value)
    if form == "plain" and draw(st.booleans()):
        sign = "-" if text.startswith("-") else ""
        text = sign + "000" + text.lstrip("-")
    if not text.startswith("-") and draw(st.booleans()):
        text = "+" + text
    return value, text


def _oracle(value: Decimal) -> str:
    if value.is_zero():
        return "0"
    return format(value.normalize(_ORACLE), "f")


@given(spellings())
def test_normalisation_preserves_value_and_matches_decimal(case: tuple[Decimal, str]) -> None:
    value, text = case
    normal = normalize_number(text)
    assert normal == _oracle(value)
    assert Decimal(normal) == value
    assert parse_number(text) == value


@given(spellings())
def test_normalisation_is_idempotent(case: tuple[Decimal, str]) -> None:
    normal = normalize_number(case[1])
    assert normalize_number(normal) == normal


@given(dynamo_decimals(), dynamo_decimals())
def test_compare_matches_decimal(a: Decimal, b: Decimal) -> None:
    expected = (a > b) - (a < b)
    assert compare_numbers(str(a), str(b)) == expected


@given(dynamo_decimals(), dynamo_decimals())
def test_add_is_exact_or_refused(a: Decimal, b: Decimal) -> None:
    exact = _ORACLE.add(a, b)
    fits = exact.is_zero() or (
        len(exact.normalize(_ORACLE).as_tuple().digits) <= 38 and -130 <= exact.adjusted() <= 125
    )
    if fits:
        assert Decimal(add_numbers(str(a), str(b))) == exact
    else:
        with pytest.raises(ValidationException):
            add_numbers(str(a), str(b))
