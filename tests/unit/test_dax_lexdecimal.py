"""router/dax/lexdecimal.py: order, round trip, and agreement with the Python DAX client."""

from __future__ import annotations

from decimal import Context, Decimal

import pytest
from amazondax import LexDecimal as client_lexdecimal
from hypothesis import given
from hypothesis import strategies as st

from meridian.model import limits
from meridian.model.errors import ValidationException
from meridian.model.numbers import format_parts
from meridian.router.dax import lexdecimal
from meridian.router.dax.lexdecimal import LexDecimalError


@st.composite
def numbers(draw) -> str:
    """Any valid DynamoDB number, in its canonical rendering."""
    if draw(st.integers(0, 20)) == 0:
        return "0"
    digits = draw(st.from_regex(r"[1-9]([0-9]{0,36}[1-9])?", fullmatch=True))
    exponent = draw(
        st.integers(limits.NUMBER_EXPONENT_MIN, limits.NUMBER_EXPONENT_MAX) | st.integers(-8, 40)
    )
    return format_parts((draw(st.booleans()), digits, exponent))


@given(numbers())
def test_round_trip(number: str) -> None:
    data = lexdecimal.encode(number)
    assert lexdecimal.decode(data) == (number, len(data))
    assert lexdecimal.decode(b"xy" + data + b"tail", 2) == (number, 2 + len(data))


@given(numbers(), numbers())
def test_order_preserving(a: str, b: str) -> None:
    da, db = Decimal(a), Decimal(b)
    ea, eb = lexdecimal.encode(a), lexdecimal.encode(b)
    assert (ea < eb) == (da < db)
    assert (ea == eb) == (da == db)


@given(numbers())
def test_same_bytes_as_the_python_client(number: str) -> None:
    ours = lexdecimal.encode(number)
    value = Decimal(number)
    if len(value.as_tuple().digits) > limits.NUMBER_PRECISION_DIGITS_MAX:
        value = value.normalize(Context(prec=200))  # how a client user must write it: 1E+38
    assert ours == client_lexdecimal.encode(value)
    assert Decimal(lexdecimal.decode(client_lexdecimal.encode(value))[0]) == value
    assert client_lexdecimal.decode_all(ours) == value


def test_non_canonical_input_is_normalised() -> None:
    assert lexdecimal.encode("1E+2") == lexdecimal.encode("100") == lexdecimal.encode("0100.00")
    assert lexdecimal.encode("-0") == b"\x80"
    with pytest.raises(ValidationException):
        lexdecimal.encode("1E+126")
    with pytest.raises(ValidationException):
        lexdecimal.encode("abc")


def test_reads_non_canonical_client_bytes() -> None:
    # The client writes "1E+2" with one digit: same value, other bytes.
    assert lexdecimal.decode(client_lexdecimal.encode(Decimal("1E+2")))[0] == "100"
    assert lexdecimal.decode(client_lexdecimal.encode(Decimal("-2.50")))[0] == "-2.5"


def test_out_of_range_comes_back_in_exponent_form() -> None:
    data = lexdecimal._header(False, 301) + lexdecimal._pack([150 + 12, 1])  # 0.15 x 10**301
    assert lexdecimal.decode(data)[0] == "1.5E+300"


@pytest.mark.parametrize("data", [b"", b"\x00", b"\xff", b"\xc1", b"\xc1\x08", b"\xfe\x00", b"\xc1\x00\x00"])
def test_malformed_bytes(data: bytes) -> None:
    with pytest.raises(LexDecimalError):
        lexdecimal.decode(data)
