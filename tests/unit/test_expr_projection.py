"""ProjectionExpression: checks and the shape of projected items."""

from __future__ import annotations

import pytest

from meridian.model.errors import ValidationException
from meridian.model.expressions import compile_expressions

ITEM = {
    "pk": {"S": "p"},
    "a": {"M": {"b": {"N": "1"}, "c": {"N": "2"}, "d": {"L": [{"S": "x"}, {"M": {"e": {"S": "y"}, "f": {"S": "z"}}}]}}},
    "letters": {"L": [{"S": "x"}, {"S": "y"}, {"S": "z"}]},
    "alt": {"S": "o"},
    "weird.name": {"S": "dot"},
}


def _project(expression: str, names=None, item=ITEM):
    return compile_expressions(projection=expression, names=names).project(item)


def _error(expression: str, names=None) -> str:
    with pytest.raises(ValidationException) as caught:
        compile_expressions(projection=expression, names=names)
    return caught.value.message


@pytest.mark.parametrize(
    "expression, names, expected",
    [
        ("pk, alt", None, {"pk": {"S": "p"}, "alt": {"S": "o"}}),
        ("pk, gone", None, {"pk": {"S": "p"}}),
        ("#w", {"#w": "weird.name"}, {"weird.name": {"S": "dot"}}),
        ("a.c, letters[2], letters[0], #o", {"#o": "alt"}, {
            "a": {"M": {"c": {"N": "2"}}},
            "letters": {"L": [{"S": "x"}, {"S": "z"}]},
            "alt": {"S": "o"},
        }),
        ("a.d[1].f, a.b", None, {"a": {"M": {"d": {"L": [{"M": {"f": {"S": "z"}}}]}, "b": {"N": "1"}}}}),
        ("letters[7], a.zz, alt.x, pk[0]", None, {}),
        ("a.d[1]", None, {"a": {"M": {"d": {"L": [{"M": {"e": {"S": "y"}, "f": {"S": "z"}}}]}}}}),
    ],
)
def test_projection_shapes(expression, names, expected):
    assert _project(expression, names) == expected


def test_no_projection_returns_the_item():
    assert compile_expressions().project(ITEM) is ITEM


_OVERLAP = "Two document paths overlap with each other; must remove or rewrite one of these paths; "
_CONFLICT = "Two document paths conflict with each other; must remove or rewrite one of these paths; "


@pytest.mark.parametrize(
    "expression, problem",
    [
        ("", "The expression can not be empty;"),
        ("a, name", "Attribute name is a reserved keyword; reserved keyword: name"),
        ("#x", "An expression attribute name used in the document path is not defined; attribute name: #x"),
        ("a, a", _OVERLAP + "path one: [a], path two: [a]"),
        ("a.b, a", _OVERLAP + "path one: [a, b], path two: [a]"),
        ("a[0], a.b", _CONFLICT + "path one: [a, [0]], path two: [a, b]"),
        ("a" + ".b" * 32, "The document path has too many nesting levels; nesting levels: 33"),
    ],
)
def test_projection_errors(expression, problem):
    assert _error(expression) == f"Invalid ProjectionExpression: {problem}"


def test_placeholders_resolve_before_overlap():
    assert _error("#a, a", {"#a": "a"}).endswith("path one: [a], path two: [a]")
