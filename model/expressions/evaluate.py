"""Evaluating bound conditions against items.

A bound condition tree (placeholders resolved, see ``semantics.py``) is
compiled once per request into nested closures: ``compile_condition`` gives
``item -> bool``, ``compile_operand`` gives ``item -> value | None``.  Items
and values are wire JSON (``{"S": "x"}``); ``None`` means "no such
attribute".

DynamoDB's comparison rules, which these follow exactly:

* ``=`` is true only for two present values of the same type and equal
  value: numbers numerically, sets regardless of order, lists and maps
  element by element.  A missing attribute equals nothing, not even
  another missing attribute; ``<>`` is the negation of ``=``.
* ``<``, ``<=``, ``>``, ``>=`` and ``BETWEEN`` compare two present values of
  the same type among N (numerically), S (by code point, which is UTF-8
  byte order) and B (by unsigned byte); anything else is simply false.
* ``size`` of a string is its UTF-8 length in bytes, of a binary its byte
  length, of a set, list or map its element count; of anything else it
  has no value, so comparisons with it are false.
"""

from __future__ import annotations

from typing import Any, Callable

from ..numbers import compare_numbers, parse_number
from ..values import binary_length, decode_binary
from .ast import And, AttrPath, Between, Call, Compare, In, Literal, Not, Or

__all__ = [
    "type_of",
    "resolve_path",
    "values_equal",
    "compare_scalars",
    "size_value",
    "compile_condition",
    "compile_operand",
]

Value = dict[str, Any]
Item = dict[str, Value]


def type_of(value: Value) -> str:
    for tag in value:
        return tag
    return ""


def resolve_path(item: Item, elements: tuple[str | int, ...]) -> Value | None:
    """The value at a document path, or ``None`` if any step is missing."""
    value = item.get(elements[0])  # type: ignore[arg-type]
    for index in range(1, len(elements)):
        if value is None:
            return None
        element = elements[index]
        if type(element) is int:
            inner = value.get("L")
            if inner is None or element >= len(inner):
                return None
            value = inner[element]
        else:
            inner = value.get("M")
            if inner is None:
                return None
            value = inner.get(element)
    return value


def values_equal(a: Value | None, b: Value | None) -> bool:
    if a is None or b is None:
        return False
    if a is b:
        return True
    for a_type, a_inner in a.items():
        break
    for b_type, b_inner in b.items():
        break
    if a_type != b_type:
        return False
    if a_type == "N":
        return a_inner == b_inner or compare_numbers(a_inner, b_inner) == 0
    if a_type in ("S", "B", "BOOL", "NULL"):  # B is canonical base64: equal text <=> equal bytes
        return a_inner == b_inner
    if a_type == "SS" or a_type == "BS":
        return len(a_inner) == len(b_inner) and set(a_inner) == set(b_inner)
    if a_type == "NS":
        if len(a_inner) != len(b_inner):
            return False
        return set(a_inner) == set(b_inner) or set(map(parse_number, a_inner)) == set(map(parse_number, b_inner))
    if a_type == "L":
        return len(a_inner) == len(b_inner) and all(map(values_equal, a_inner, b_inner))
    if a_type == "M":
        return a_inner.keys() == b_inner.keys() and all(values_equal(v, b_inner[k]) for k, v in a_inner.items())
    return False


def compare_scalars(a: Value | None, b: Value | None) -> int | None:
    """-1, 0 or 1 for two N, S or B values of one type; ``None`` otherwise."""
    if a is None or b is None:
        return None
    for a_type, a_inner in a.items():
        break
    for b_type, b_inner in b.items():
        break
    if a_type != b_type:
        return None
    if a_type == "N":
        return compare_numbers(a_inner, b_inner)
    if a_type == "S":
        return (a_inner > b_inner) - (a_inner < b_inner)
    if a_type == "B":
        a_bytes, b_bytes = decode_binary(a_inner), decode_binary(b_inner)
        return (a_bytes > b_bytes) - (a_bytes < b_bytes)
    return None


def size_value(value: Value | None) -> Value | None:
    if value is None:
        return None
    for tag, inner in value.items():
        if tag == "S":
            return {"N": str(len(inner.encode("utf-8")))}
        if tag == "B":
            return {"N": str(binary_length(inner))}
        if tag in ("L", "M", "SS", "NS", "BS"):
            return {"N": str(len(inner))}
    return None


def _contains(haystack: Value | None, needle: Value | None) -> bool:
    if haystack is None or needle is None:
        return False
    for h_type, h_inner in haystack.items():
        break
    for n_type, n_inner in needle.items():
        break
    if h_type == "S":
        return n_type == "S" and n_inner in h_inner
    if h_type == "SS":
        return n_type == "S" and n_inner in h_inner
    if h_type == "L":
        return any(values_equal(element, needle) for element in h_inner)
    if h_type == "B":
        return n_type == "B" and decode_binary(n_inner) in decode_binary(h_inner)
    if h_type == "BS":
        return n_type == "B" and n_inner in h_inner
    if h_type == "NS":
        return n_type == "N" and any(compare_numbers(member, n_inner) == 0 for member in h_inner)
    return False


def _begins_with(value: Value | None, prefix: Value | None) -> bool:
    if value is None or prefix is None:
        return False
    for v_type, v_inner in value.items():
        break
    for p_type, p_inner in prefix.items():
        break
    if v_type != p_type:
        return False
    if v_type == "S":
        return v_inner.startswith(p_inner)
    if v_type == "B":
        return decode_binary(v_inner).startswith(decode_binary(p_inner))
    return False


# --- compilation ---------------------------------------------------------------

Operand = Callable[[Item], "Value | None"]
Predicate = Callable[[Item], bool]


def compile_operand(node: Any) -> Operand:
    kind = type(node)
    if kind is AttrPath:
        elements = node.elements
        if len(elements) == 1:
            name = elements[0]
            return lambda item: item.get(name)
        return lambda item: resolve_path(item, elements)
    if kind is Literal:
        value = node.value
        return lambda item: value
    if kind is Call and node.name == "size":
        inner = compile_operand(node.args[0])
        return lambda item: size_value(inner(item))
    raise TypeError(f"not an operand: {node!r}")


def _all(predicates: list[Predicate]) -> Predicate:
    def check(item: Item) -> bool:
        for predicate in predicates:
            if not predicate(item):
                return False
        return True

    return check


def _any(predicates: list[Predicate]) -> Predicate:
    def check(item: Item) -> bool:
        for predicate in predicates:
            if predicate(item):
                return True
        return False

    return check


def _compare(op: str, left: Operand, right: Operand) -> Predicate:
    if op == "=":
        return lambda item: values_equal(left(item), right(item))
    if op == "<>":
        return lambda item: not values_equal(left(item), right(item))

    def order(item: Item) -> int | None:
        return compare_scalars(left(item), right(item))

    if op == "<":
        return lambda item: (order(item) or 0) < 0
    if op == "<=":
        return lambda item: order(item) in (-1, 0)
    if op == ">":
        return lambda item: (order(item) or 0) > 0
    return lambda item: order(item) in (0, 1)


def _between(operand: Operand, low: Operand, high: Operand) -> Predicate:
    def check(item: Item) -> bool:
        value = operand(item)
        if value is None:
            return False
        above = compare_scalars(value, low(item))
        if above is None or above < 0:
            return False
        below = compare_scalars(value, high(item))
        return below is not None and below <= 0

    return check


def _in(operand: Operand, options: list[Operand]) -> Predicate:
    def check(item: Item) -> bool:
        value = operand(item)
        if value is None:
            return False
        return any(values_equal(value, option(item)) for option in options)

    return check


def _function(node: Call) -> Predicate:
    name = node.name
    args = [compile_operand(arg) for arg in node.args]
    first = args[0]
    if name == "attribute_exists":
        return lambda item: first(item) is not None
    if name == "attribute_not_exists":
        return lambda item: first(item) is None
    second = args[1]
    if name == "begins_with":
        return lambda item: _begins_with(first(item), second(item))
    if name == "contains":
        return lambda item: _contains(first(item), second(item))
    if name == "attribute_type":

        def check(item: Item) -> bool:
            value = first(item)
            wanted = second(item)
            return value is not None and wanted is not None and type_of(value) == wanted.get("S")

        return check
    raise TypeError(f"not a condition function: {name}")


def compile_condition(node: Any) -> Predicate:
    """``item -> bool`` for a bound condition tree."""
    kind = type(node)
    if kind is And:
        return _all([compile_condition(item) for item in node.items])
    if kind is Or:
        return _any([compile_condition(item) for item in node.items])
    if kind is Not:
        inner = compile_condition(node.item)
        return lambda item: not inner(item)
    if kind is Compare:
        return _compare(node.op, compile_operand(node.left), compile_operand(node.right))
    if kind is Between:
        return _between(compile_operand(node.operand), compile_operand(node.low), compile_operand(node.high))
    if kind is In:
        return _in(compile_operand(node.operand), [compile_operand(option) for option in node.options])
    if kind is Call:
        return _function(node)
    raise TypeError(f"not a condition: {node!r}")
