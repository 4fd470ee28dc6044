"""The expression trees the parser builds and the printer prints.

Trees compare by value, so ``parse(print(tree)) == tree`` can be tested.
They are shared through the parse cache, so nothing may modify one after
it is built (the classes are not frozen only because frozen dataclasses
are several times slower to construct, and binding builds trees per
request).  They hold the expression
as written: placeholders are not resolved here.

A document path is a ``Path`` of elements, each one of:

    str starting with a letter   a bare attribute name          ``a``
    str starting with '#'        an attribute-name placeholder  ``#n``
    int                          a list index                   ``[3]``

Binding (``compile.py``) turns paths into ``AttrPath`` (names resolved, so a
resolved name may be any string) and value placeholders into ``Literal``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union

__all__ = [
    "Path",
    "ValueRef",
    "Call",
    "Compare",
    "Between",
    "In",
    "And",
    "Or",
    "Not",
    "Arith",
    "SetAction",
    "RemoveAction",
    "AddAction",
    "DeleteAction",
    "Clause",
    "UpdateExpr",
    "ProjectionExpr",
    "AttrPath",
    "Literal",
    "Operand",
    "Condition",
]


@dataclass(slots=True)
class Path:
    elements: tuple[str | int, ...]


@dataclass(slots=True)
class ValueRef:
    name: str  # ":v"


@dataclass(slots=True)
class Call:
    """A function call, as an operand (``size``) or as a condition."""

    name: str
    args: tuple[Any, ...]


@dataclass(slots=True)
class Compare:
    op: str  # one of = <> < <= > >=
    left: Any
    right: Any


@dataclass(slots=True)
class Between:
    operand: Any
    low: Any
    high: Any


@dataclass(slots=True)
class In:
    operand: Any
    options: tuple[Any, ...]


@dataclass(slots=True)
class And:
    items: tuple[Any, ...]  # two or more


@dataclass(slots=True)
class Or:
    items: tuple[Any, ...]  # two or more


@dataclass(slots=True)
class Not:
    item: Any


@dataclass(slots=True)
class Arith:
    """``left + right`` or ``left - right`` on the right of a SET."""

    op: str
    left: Any
    right: Any


@dataclass(slots=True)
class SetAction:
    path: Path
    value: Any  # an operand or an Arith


@dataclass(slots=True)
class RemoveAction:
    path: Path


@dataclass(slots=True)
class AddAction:
    path: Path
    value: ValueRef


@dataclass(slots=True)
class DeleteAction:
    path: Path
    value: ValueRef


@dataclass(slots=True)
class Clause:
    keyword: str  # SET, REMOVE, ADD or DELETE
    actions: tuple[Any, ...]


@dataclass(slots=True)
class UpdateExpr:
    clauses: tuple[Clause, ...]


@dataclass(slots=True)
class ProjectionExpr:
    paths: tuple[Path, ...]


@dataclass(slots=True)
class AttrPath:
    """A document path with its placeholders resolved (binding output)."""

    elements: tuple[str | int, ...]


@dataclass(slots=True)
class Literal:
    """An ``ExpressionAttributeValues`` value (binding output), wire JSON."""

    name: str
    value: dict[str, Any]


Operand = Union[Path, ValueRef, Call]
Condition = Union[Compare, Between, In, Call, And, Or, Not]
