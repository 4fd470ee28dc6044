"""The trees the PartiQL parser builds.

Expressions (``where`` of each is the token that starts it, for messages):

    Path(steps)             a.b[1]."c": steps are names (str) and list indexes (int)
    Param(index)            the index-th ``?`` (0-based)
    Lit(kind, value)        kind: string, number, bool, null, missing, ion;
                            value: str for string/number/ion, bool for bool
    ListLit(items)          [a, b]
    StructLit(fields)       {'k': v, ...}: (key expression, value expression) pairs
    BagLit(items)           <<a, b>> (a set)
    Call(name, args)        name lower-cased, as DynamoDB reports it
    Compare(op, l, r)       = <> < <= > >=  (!= is read as <>)
    Between(x, low, high)
    In(x, options)          options: a tuple of expressions, or one ListLit/Param
    Is(x, type_name, negated)   IS [NOT] NULL / MISSING / a type name (upper-cased)
    Arith(op, l, r)         + and -
    Neg(x)                  unary minus
    And(items), Or(items), Not(item)

Statements: Select, Insert, Update, Delete, Exists (ExecuteTransaction only).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .lexer import Token

__all__ = [
    "Path", "Param", "Lit", "ListLit", "StructLit", "BagLit", "Call", "Compare", "Between", "In", "Is",
    "Arith", "Neg", "And", "Or", "Not", "Source", "OrderItem", "Select", "Insert", "SetAction",
    "RemoveAction", "Update", "Delete", "Exists", "Statement",
]


@dataclass(slots=True)
class Path:
    steps: tuple[str | int, ...]
    where: Token = field(compare=False)

    @property
    def head(self) -> str:
        return self.steps[0]  # type: ignore[return-value]


@dataclass(slots=True)
class Param:
    index: int
    where: Token = field(compare=False)


@dataclass(slots=True)
class Lit:
    kind: str
    value: Any
    where: Token = field(compare=False)


@dataclass(slots=True)
class ListLit:
    items: tuple[Any, ...]
    where: Token = field(compare=False)


@dataclass(slots=True)
class StructLit:
    fields: tuple[tuple[Any, Any], ...]
    where: Token = field(compare=False)


@dataclass(slots=True)
class BagLit:
    items: tuple[Any, ...]
    where: Token = field(compare=False)


@dataclass(slots=True)
class Call:
    name: str
    args: tuple[Any, ...]
    where: Token = field(compare=False)


@dataclass(slots=True)
class Compare:
    op: str
    left: Any
    right: Any
    where: Token = field(compare=False)


@dataclass(slots=True)
class Between:
    operand: Any
    low: Any
    high: Any
    where: Token = field(compare=False)


@dataclass(slots=True)
class In:
    operand: Any
    options: Any
    where: Token = field(compare=False)


@dataclass(slots=True)
class Is:
    operand: Any
    type_name: str
    negated: bool
    where: Token = field(compare=False)


@dataclass(slots=True)
class Arith:
    op: str
    left: Any
    right: Any
    where: Token = field(compare=False)


@dataclass(slots=True)
class Neg:
    operand: Any
    where: Token = field(compare=False)


@dataclass(slots=True)
class And:
    items: tuple[Any, ...]
    where: Token = field(compare=False)


@dataclass(slots=True)
class Or:
    items: tuple[Any, ...]
    where: Token = field(compare=False)


@dataclass(slots=True)
class Not:
    item: Any
    where: Token = field(compare=False)


@dataclass(slots=True)
class Source:
    table: str
    index: str | None
    where: Token = field(compare=False)


@dataclass(slots=True)
class OrderItem:
    path: Path
    descending: bool


@dataclass(slots=True)
class Select:
    projection: tuple[Path, ...] | None  # None: *
    source: Source
    condition: Any | None
    order_by: tuple[OrderItem, ...] = ()


@dataclass(slots=True)
class Insert:
    source: Source
    value: Any  # a StructLit or a Param


@dataclass(slots=True)
class SetAction:
    path: Path
    value: Any


@dataclass(slots=True)
class RemoveAction:
    path: Path


@dataclass(slots=True)
class Update:
    source: Source
    actions: tuple[Any, ...]
    condition: Any | None
    returning: str | None  # "ALL OLD", "MODIFIED OLD", "ALL NEW", "MODIFIED NEW"


@dataclass(slots=True)
class Delete:
    source: Source
    condition: Any | None
    returning: str | None


@dataclass(slots=True)
class Exists:
    select: Select
    where: Token = field(compare=False)


Statement = Select | Insert | Update | Delete | Exists
