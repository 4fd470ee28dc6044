"""Condition and filter expressions: DynamoDB's checks, then evaluation."""

from __future__ import annotations

import base64
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meridian.model.errors import ValidationException
from meridian.model.expressions import compile_expressions


def _error(**request) -> str:
    with pytest.raises(ValidationException) as caught:
        compile_expressions(**request)
    return caught.value.message


def _filter_error(expression: str, names=None, values=None) -> str:
    return _error(filter=expression, names=names, values=values)


_PREFIX = "Invalid FilterExpression: "


# --- static checks, in DynamoDB's order -------------------------------------------


@pytest.mark.parametrize(
    "expression, function",
    [("a=a and whatever((:things)) > a", "whatever"), ("attRIbute_exIsts((views), #a)", "attRIbute_exIsts")],
)
def test_unknown_function(expression, function):
    assert _filter_error(expression) == f"{_PREFIX}Invalid function name; function: {function}"


def test_update_function_in_a_condition():
    assert (
        _filter_error("if_not_exists(a, :v) = :v")
        == f"{_PREFIX}The function is not allowed in a condition expression; function: if_not_exists"
    )


@pytest.mark.parametrize(
    "expression, function",
    [
        ("a=a and attribute_exists((views), (#a)) > b", "attribute_exists"),
        ("attribute_not_exists(things) > b", "attribute_not_exists"),
        ("attribute_type(things, :a) > b", "attribute_type"),
        ("begins_with(things, a) > b", "begins_with"),
        ("contains(:things, c) > b", "contains"),
        ("size(contains(a, b)) > a", "contains"),
        ("size(things)", "size"),
        ("a = :v AND size(things)", "size"),
        ("NOT size(things)", "size"),
        ("a between b and attribute_exists(things)", "attribute_exists"),
        ("a in (b, attribute_exists(things))", "attribute_exists"),
    ],
)
def test_function_used_where_it_may_not_be(expression, function):
    assert _filter_error(expression) == (
        f"{_PREFIX}The function is not allowed to be used this way in an expression; function: {function}"
    )


@pytest.mark.parametrize("expression, word", [("attribute_exists(views, #a)", "views"), (":a < abOrT", "abOrT")])
def test_reserved_words(expression, word):
    assert _filter_error(expression) == f"{_PREFIX}Attribute name is a reserved keyword; reserved keyword: {word}"


def test_static_checks_before_placeholders():
    # Redundant parentheses beat an unknown function, which beats misuse,
    # which beats reserved words, which beat undefined placeholders.
    assert _filter_error("a > whatever((:things), ((a)))") == f"{_PREFIX}The expression has redundant parentheses;"
    assert _filter_error("whatever(a) AND size(b)") == f"{_PREFIX}Invalid function name; function: whatever"
    assert _filter_error("size(b) AND #x = name").endswith("function: size")
    assert _filter_error("#x = name").endswith("reserved keyword: name")


# --- checks per leaf condition -------------------------------------------------


@pytest.mark.parametrize(
    "expression, placeholder",
    [
        ("attribute_exists(#Pictures.RearView, :a) and a=a", "#Pictures"),
        ("begins_with(Pictures.#RearView)", "#RearView"),
        ("(#P between :lo and :hi) and (#PC in (:cat1, :cat2))", "#P"),
        ("#4g > a", "#4g"),
        ("#_ > a", "#_"),
        ("(a)between(b.c[45].#d)and(:a)", "#d"),
    ],
)
def test_undefined_names(expression, placeholder):
    assert _filter_error(expression) == (
        f"{_PREFIX}An expression attribute name used in the document path is not defined; attribute name: {placeholder}"
    )


@pytest.mark.parametrize(
    "expression, placeholder", [("begins_with(:hello, #a, #b)", ":hello"), (":a < :b", ":a"), (":_ > a", ":_")]
)
def test_undefined_values(expression, placeholder):
    assert _filter_error(expression) == (
        f"{_PREFIX}An expression attribute value used in expression is not defined; attribute value: {placeholder}"
    )


@pytest.mark.parametrize(
    "expression, function, count",
    [
        ("attribute_exists(things, a) and a=a", "attribute_exists", 2),
        ("attribute_not_exists(things, b)", "attribute_not_exists", 2),
        ("attribute_type(things)", "attribute_type", 1),
        ("begins_with(things)", "begins_with", 1),
        ("begins_with(things, size(a), b)", "begins_with", 3),
        ("contains(things)", "contains", 1),
        ("size(things, a) > b", "size", 2),
    ],
)
def test_operand_counts(expression, function, count):
    assert _filter_error(expression) == (
        f"{_PREFIX}Incorrect number of operands for operator or function; "
        f"operator or function: {function}, number of operands: {count}"
    )


@pytest.mark.parametrize(
    "expression, function, value",
    [
        ("attribute_type(a, size(a)) and a=a and a=:a", "attribute_type", {"N": "1"}),
        ("attribute_type(a, :a)", "attribute_type", {"N": "1"}),
        ("attribute_type(a, :a)", "attribute_type", {"BOOL": True}),
        ("attribute_type(a, :a)", "attribute_type", {"SS": ["1"]}),
        ("begins_with(a, size(a)) and a=:a", "begins_with", {"N": "1"}),
        ("begins_with(a, :a)", "begins_with", {"N": "1"}),
        ("begins_with(a, :a)", "begins_with", {"M": {}}),
        ("begins_with(:a, a)", "begins_with", {"L": []}),
        ("size(size(a)) > :a", "size", {"N": "1"}),
        ("attribute_not_exists(size(:a))", "size", {"N": "1"}),
        ("size(:a) > a", "size", {"BOOL": True}),
        ("size(:a) > a", "size", {"NULL": True}),
    ],
)
def test_operand_types(expression, function, value):
    operand_type = next(iter(value))
    assert _filter_error(expression, values={":a": value}) == (
        f"{_PREFIX}Incorrect operand type for operator or function; "
        f"operator or function: {function}, operand type: {operand_type}"
    )


def test_attribute_type_of_a_path_and_unknown_type_names():
    assert _filter_error("attribute_type(a, b)") == (
        f"{_PREFIX}Incorrect operand type for operator or function; "
        "operator or function: attribute_type, operand type: {NS,SS,L,BS,N,M,B,BOOL,NULL,S}"
    )
    assert _filter_error("attribute_type(a, :a)", values={":a": {"S": "1"}}) == (
        f"{_PREFIX}Invalid attribute type name found; type: 1, valid types: {{B,NULL,SS,BOOL,L,BS,N,NS,S,M}}"
    )


@pytest.mark.parametrize(
    "expression, function",
    [("attribute_exists(:a) and a=a", "attribute_exists"), ("attribute_not_exists(size(:a))", "attribute_not_exists")],
)
def test_functions_that_need_a_path(expression, function):
    assert _filter_error(expression, values={":a": {"S": "1"}}) == (
        f"{_PREFIX}Operator or function requires a document path; operator or function: {function}"
    )


@pytest.mark.parametrize(
    "expression, operator, path",
    [
        ("a = a AND #a = b AND :views > a", "=", "[a]"),
        ("#a <> a", "<>", "[a]"),
        ("a > #a", ">", "[a]"),
        ("((a=a) OR (a=a))", "=", "[a]"),
        ("contains(ab.bc[1].a, ab.bc[1].#a)", "contains", "[ab, bc, [1], a]"),
        ("attribute_type(ab.bc[1].#a, ab.bc[1].a)", "attribute_type", "[ab, bc, [1], a]"),
        ("begins_with(ab.bc[1].a, ab.bc[1].#a)", "begins_with", "[ab, bc, [1], a]"),
        ("a BETWEEN b AND #a", "BETWEEN", "[a]"),
        ("a IN (b, #a)", "IN", "[a]"),
    ],
)
def test_operands_must_be_distinct(expression, operator, path):
    assert _filter_error(expression, names={"#a": "a"}) == (
        f"{_PREFIX}The first operand must be distinct from the remaining operands for this operator or function; "
        f"operator: {operator}, first operand: {path}"
    )


def test_same_values_are_allowed():
    compile_expressions(filter=":a > :a", values={":a": {"N": "1"}})


def test_between_bounds():
    assert _filter_error("a between :b and :a", values={":a": {"S": "a"}, ":b": {"N": "1"}}) == (
        f"{_PREFIX}The BETWEEN operator requires same data type for lower and upper bounds; "
        "lower bound operand: AttributeValue: {N:1}, upper bound operand: AttributeValue: {S:a}"
    )
    assert _filter_error("a between :b and :a", values={":a": {"S": "a"}, ":b": {"S": "b"}}) == (
        f"{_PREFIX}The BETWEEN operator requires upper bound to be greater than or equal to lower bound; "
        "lower bound operand: AttributeValue: {S:b}, upper bound operand: AttributeValue: {S:a}"
    )
    compile_expressions(filter="a between :a and :a", values={":a": {"N": "5"}})


@pytest.mark.parametrize("expression", ["a < :l", ":l >= a", "a BETWEEN :l AND :l"])
def test_ordering_a_list_literal(expression):
    operator = "BETWEEN" if "BETWEEN" in expression else expression.split()[1]
    assert _filter_error(expression, values={":l": {"L": []}}) == (
        f"{_PREFIX}Incorrect operand type for operator or function; operator or function: {operator}, operand type: L"
    )


def test_first_faulty_leaf_wins_and_its_errors_are_ranked():
    # The first leaf has a type error, the second an undefined name.
    assert _filter_error("begins_with(a, :n) AND #x = :n", values={":n": {"N": "1"}}).endswith("operand type: N")
    # Within one leaf: undefined placeholder, then count, then distinct, then type.
    assert _filter_error("contains(a, a, :zz)").endswith("attribute value: :zz")
    assert _filter_error("contains(a, a, b)").endswith("number of operands: 3")
    assert _filter_error("begins_with(a, a) AND begins_with(b, :n)", values={":n": {"N": "1"}}).endswith(
        "operator: begins_with, first operand: [a]"
    )


# --- evaluation ------------------------------------------------------------------

ITEM = {
    "pk": {"S": "k"},
    "n": {"N": "10"},
    "s": {"S": "hello"},
    "b": {"B": base64.b64encode(b"\x00\xffhi").decode()},
    "t": {"BOOL": True},
    "z": {"NULL": True},
    "ss": {"SS": ["x", "y"]},
    "ns": {"NS": ["1", "2.5"]},
    "bs": {"BS": [base64.b64encode(b"\x01").decode()]},
    "l": {"L": [{"N": "1"}, {"S": "two"}, {"L": [{"N": "3"}]}]},
    "m": {"M": {"k": {"S": "v"}, "deep": {"M": {"x": {"N": "7"}}}}},
    "u": {"S": "ü€"},
    "e": {"S": "\U0001F600"},
}


def _matches(expression: str, names=None, values=None, item=ITEM) -> bool:
    return compile_expressions(condition=expression, names=names, values=values).condition_matches(item)


def _b(raw: bytes) -> dict:
    return {"B": base64.b64encode(raw).decode()}


@pytest.mark.parametrize(
    "expression, values, expected",
    [
        ("n = :v", {":v": {"N": "10.00"}}, True),
        ("n = :v", {":v": {"S": "10"}}, False),
        ("n <> :v", {":v": {"S": "10"}}, True),
        ("gone = :v", {":v": {"N": "1"}}, False),
        ("gone <> :v", {":v": {"N": "1"}}, True),
        ("n < :v", {":v": {"N": "9.5"}}, False),
        ("n > :v", {":v": {"N": "9.5"}}, True),
        ("n >= :v", {":v": {"N": "10"}}, True),
        ("s < :v", {":v": {"S": "help"}}, True),
        ("s < :v", {":v": {"N": "1"}}, False),
        ("e > :v", {":v": {"S": "\uffff"}}, True),  # code points (UTF-8 order), not UTF-16 units
        ("b > :v", {":v": _b(b"\x00\x7f")}, True),  # unsigned bytes
        ("n BETWEEN :lo AND :hi", {":lo": {"N": "1"}, ":hi": {"N": "10"}}, True),
        ("n BETWEEN :lo AND :hi", {":lo": {"S": "1"}, ":hi": {"S": "9"}}, False),
        ("n IN (:a, :b)", {":a": {"S": "10"}, ":b": {"N": "1E1"}}, True),
        ("ss = :v", {":v": {"SS": ["y", "x"]}}, True),
        ("ns = :v", {":v": {"NS": ["2.50", "1"]}}, True),
        ("l = :v", {":v": {"L": [{"N": "1"}, {"S": "two"}, {"L": [{"N": "3"}]}]}}, True),
        ("m = :v", {":v": {"M": {"k": {"S": "v"}}}}, False),
        ("m.deep.x = :v", {":v": {"N": "7"}}, True),
        ("l[2][0] = :v", {":v": {"N": "3"}}, True),
        ("l[5] = :v", {":v": {"N": "3"}}, False),
        ("m[0] = :v", {":v": {"N": "3"}}, False),
        ("begins_with(s, :v)", {":v": {"S": "he"}}, True),
        ("begins_with(b, :v)", {":v": _b(b"\x00")}, True),
        ("begins_with(s, :v)", {":v": _b(b"he")}, False),
        ("contains(s, :v)", {":v": {"S": "ell"}}, True),
        ("contains(b, :v)", {":v": _b(b"hi")}, True),
        ("contains(ss, :v)", {":v": {"S": "x"}}, True),
        ("contains(ns, :v)", {":v": {"N": "2.50"}}, True),
        ("contains(bs, :v)", {":v": _b(b"\x01")}, True),
        ("contains(l, :v)", {":v": {"L": [{"N": "3"}]}}, True),
        ("contains(l, :v)", {":v": {"S": "tw"}}, False),
        ("contains(n, :v)", {":v": {"N": "1"}}, False),
        ("attribute_type(m, :v)", {":v": {"S": "M"}}, True),
        ("attribute_type(gone, :v)", {":v": {"S": "M"}}, False),
        ("size(s) = :v", {":v": {"N": "5"}}, True),
        ("size(u) = :v", {":v": {"N": "5"}}, True),  # UTF-8 bytes
        ("size(b) = :v", {":v": {"N": "4"}}, True),
        ("size(l) = :v", {":v": {"N": "3"}}, True),
        ("size(m) = :v", {":v": {"N": "2"}}, True),
        ("size(ns) = :v", {":v": {"N": "2"}}, True),
        ("size(n) = :v", {":v": {"N": "2"}}, False),
        ("size(t) <> :v", {":v": {"N": "1"}}, True),
        ("size(s) = :v", {":v": {"S": "5"}}, False),
    ],
)
def test_evaluation(expression, values, expected):
    assert _matches(expression, values=values) is expected


def test_missing_attributes_compare_as_nothing():
    for operator in ("=", "<", "<=", ">", ">="):
        assert not _matches(f"q {operator} z")
    assert _matches("q <> z")
    assert not _matches("q BETWEEN z AND x")


def test_boolean_logic_and_existence():
    assert _matches("attribute_exists(pk) AND NOT attribute_exists(nope)")
    assert _matches("attribute_not_exists(nope) OR n = :v", values={":v": {"N": "1"}})
    assert not _matches("NOT (attribute_exists(pk) AND attribute_exists(n))")
    assert _matches("attribute_exists(#weird)", names={"#weird": "u"})


def test_condition_on_no_item():
    compiled = compile_expressions(condition="attribute_not_exists(pk)")
    assert compiled.condition_matches(None)
    assert compile_expressions().condition_matches(None)


# --- evaluation against a plain reference implementation -------------------------

_scalar_values = st.one_of(
    st.integers(-50, 50).map(lambda n: {"N": str(n)}),
    st.sampled_from(["a", "ab", "b", "", "ü", "aa"]).map(lambda s: {"S": s}),
    st.sampled_from([b"", b"\x00", b"\xff", b"a", b"ab"]).map(_b),
    st.booleans().map(lambda v: {"BOOL": v}),
    st.just({"NULL": True}),
    st.sampled_from([["a"], ["a", "b"]]).map(lambda v: {"SS": v}),
    st.sampled_from([["1"], ["1", "2"]]).map(lambda v: {"NS": v}),
)
_any_values = st.recursive(
    _scalar_values,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda v: {"L": v}),
        st.dictionaries(st.sampled_from(["x", "y"]), inner, max_size=2).map(lambda v: {"M": v}),
    ),
    max_leaves=5,
)


def _plain(value):
    """A wire value as plain Python, for the reference implementation."""
    (kind, inner), = value.items()
    if kind == "N":
        return ("N", Decimal(inner))
    if kind == "B":
        return ("B", base64.b64decode(inner))
    if kind in ("SS", "BS"):
        return (kind, frozenset(inner))
    if kind == "NS":
        return (kind, frozenset(Decimal(n) for n in inner))
    if kind == "L":
        return ("L", tuple(_plain(v) for v in inner))
    if kind == "M":
        return ("M", tuple(sorted((k, _plain(v)) for k, v in inner.items())))
    return (kind, inner)


def _reference(operator: str, left, right) -> bool:
    if left is None or right is None:
        return operator == "<>"
    a, b = _plain(left), _plain(right)
    if operator == "=":
        return a == b
    if operator == "<>":
        return a != b
    if a[0] != b[0] or a[0] not in ("N", "S", "B"):
        return False
    x, y = a[1], b[1]
    if a[0] == "S":
        x, y = x.encode("utf-8"), y.encode("utf-8")
    return {"<": x < y, "<=": x <= y, ">": x > y, ">=": x >= y}[operator]


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(["=", "<>", "<", "<=", ">", ">="]), st.one_of(st.none(), _any_values), st.one_of(st.none(), _any_values))
def test_comparisons_agree_with_reference(operator, left, right):
    item = {}
    if left is not None:
        item["x"] = left
    if right is not None:
        item["y"] = right
    assert _matches(f"x {operator} y", item=item) is _reference(operator, left, right)


def _reference_contains(haystack, needle) -> bool:
    if haystack is None or needle is None:
        return False
    h, n = _plain(haystack), _plain(needle)
    if h[0] == "S":
        return n[0] == "S" and n[1] in h[1]
    if h[0] == "B":
        return n[0] == "B" and n[1] in h[1]
    if h[0] in ("SS", "NS", "BS"):
        return n[0] == h[0][0] and n[1] in h[1]
    if h[0] == "L":
        return n in h[1]
    return False


def _reference_size(value):
    if value is None:
        return None
    (kind, inner), = value.items()
    if kind == "S":
        return len(inner.encode("utf-8"))
    if kind == "B":
        return len(base64.b64decode(inner))
    if kind in ("SS", "NS", "BS", "L", "M"):
        return len(inner)
    return None


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.none(), _any_values), st.one_of(st.none(), _any_values))
def test_functions_agree_with_reference(x, y):
    item = {}
    if x is not None:
        item["x"] = x
    if y is not None:
        item["y"] = y
    assert _matches("contains(x, y)", item=item) is _reference_contains(x, y)
    assert _matches("attribute_exists(x)", item=item) is (x is not None)
    size = _reference_size(x)
    compiled = compile_expressions(condition="size(x) = :n", values={":n": {"N": str(size or 0)}})
    assert compiled.condition_matches(item) is (size is not None)
    if x is not None and y is not None:
        a, b = _plain(x), _plain(y)
        starts = a[0] == b[0] and a[0] in ("S", "B") and a[1].startswith(b[1])
    else:
        starts = False
    assert _matches("begins_with(x, y)", item=item) is starts
