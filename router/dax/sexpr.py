"""DAX's pre-compiled expressions back into DynamoDB expression strings.

The DAX clients never send an expression's text: they parse it themselves
and send a CBOR S-expression (``CborSExprGenerator`` in both clients)::

    condition, key condition, filter, update:  [1, spec, [value, ...]]
    projection:                                [1, [path, ...]]

    spec := [code, arg, ...]          a function or operator (codes below)
    path := [18, name, element, ...]  element: a name (text) or
                                      tag 3324(list index)
    value reference := [17, i]        i indexes this expression's values

``#name`` placeholders are already substituted by the client, and values are
numbered per expression, so one request's expressions cannot share the
client's placeholders.  This module turns a spec into Meridian's own
expression tree (``model/expressions/ast.py``) with fresh placeholders
(``#n0``, ``:v0``...) added to the request's ``names``/``values`` maps and
prints it with ``model/expressions/printer.py``.  The router then compiles
the text like any HTTP request's: one parser, one validator, one evaluator,
the same error messages.  Every attribute name goes through a placeholder,
so reserved words and names with dots, spaces or brackets survive.

Only the shape is checked here (what the printer could not express, such as
a comparison used as an operand); everything DynamoDB itself validates (a
function's arity, ``size`` at the top of a condition, ``if_not_exists`` in
a condition...) is left to the compiler, which words it as DynamoDB does.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any, Callable

from meridian.model.errors import DynamoError, ValidationException
from meridian.model.expressions.ast import (
    AddAction,
    And,
    Arith,
    Between,
    Call,
    Clause,
    Compare,
    DeleteAction,
    In,
    Not,
    Or,
    Path,
    ProjectionExpr,
    RemoveAction,
    SetAction,
    UpdateExpr,
    ValueRef,
)
from meridian.model.expressions.printer import to_text

from .cbor import CborError, NeedMore, Tagged, decode_item
from .values import av_from_cbor

__all__ = ["Code", "to_condition", "to_update", "to_projection"]

Value = dict[str, Any]

# Function codes, shared by both clients (an enum built by call: these are
# wire codes, not bounds).
Code = IntEnum(
    "Code",
    {
        "EQUAL": 0, "NOT_EQUAL": 1, "LESS": 2, "GREATER_EQUAL": 3, "GREATER": 4, "LESS_EQUAL": 5,
        "AND": 6, "OR": 7, "NOT": 8, "BETWEEN": 9, "IN": 10,
        "ATTRIBUTE_EXISTS": 11, "ATTRIBUTE_NOT_EXISTS": 12, "ATTRIBUTE_TYPE": 13,
        "BEGINS_WITH": 14, "CONTAINS": 15, "SIZE": 16,
        "VARIABLE": 17, "DOCUMENT_PATH": 18,
        "SET": 19, "ADD": 20, "DELETE": 21, "REMOVE": 22,
        "IF_NOT_EXISTS": 23, "LIST_APPEND": 24, "PLUS": 25, "MINUS": 26,
    },
)
_Wire = IntEnum("_Wire", {"FORMAT": 1, "PATH_ORDINAL_TAG": 3324})

_COMPARATORS = {
    Code.EQUAL: "=", Code.NOT_EQUAL: "<>", Code.LESS: "<",
    Code.GREATER_EQUAL: ">=", Code.GREATER: ">", Code.LESS_EQUAL: "<=",
}
_FUNCTIONS = {
    Code.ATTRIBUTE_EXISTS: "attribute_exists",
    Code.ATTRIBUTE_NOT_EXISTS: "attribute_not_exists",
    Code.ATTRIBUTE_TYPE: "attribute_type",
    Code.BEGINS_WITH: "begins_with",
    Code.CONTAINS: "contains",
    Code.SIZE: "size",
    Code.IF_NOT_EXISTS: "if_not_exists",
    Code.LIST_APPEND: "list_append",
}
_ARITHMETIC = {Code.PLUS: "+", Code.MINUS: "-"}
_CLAUSES = {Code.SET: "SET", Code.ADD: "ADD", Code.DELETE: "DELETE", Code.REMOVE: "REMOVE"}


class _Malformed(Exception):
    """The S-expression does not have a shape any client sends."""


def to_condition(
    expr_bytes: bytes, names: dict[str, str], values: dict[str, Value], *, label: str = "ConditionExpression"
) -> str:
    """A ConditionExpression/FilterExpression/KeyConditionExpression's text.

    ``label`` is the parameter named in error messages.
    """
    return _translate(expr_bytes, names, values, label, _Translator.condition)


def to_update(expr_bytes: bytes, names: dict[str, str], values: dict[str, Value]) -> str:
    """An UpdateExpression's text."""
    return _translate(expr_bytes, names, values, "UpdateExpression", _Translator.update)


def to_projection(expr_bytes: bytes, names: dict[str, str]) -> str:
    """A ProjectionExpression's text (projections carry no values)."""
    return _translate(expr_bytes, names, None, "ProjectionExpression", _Translator.projection)


def _translate(
    expr_bytes: bytes, names: dict[str, str], values: dict[str, Value] | None, label: str, build: Callable
) -> str:
    """Decode, build the tree with ``build(translator, spec)``, print it."""
    try:
        spec, variables = _envelope(expr_bytes, values is not None)
        return to_text(build(_Translator(names, values, variables), spec))
    except _Malformed as error:
        raise ValidationException(f"Invalid {label}: Malformed DAX expression; {error}") from None
    except DynamoError as error:
        raise ValidationException(f"Invalid {label}: {error.message}") from None


def _envelope(expr_bytes: bytes, has_values: bool) -> tuple[Any, list[Any]]:
    """Split ``[1, spec, [values]]`` (or ``[1, paths]``) into its parts."""
    try:
        outer, end = decode_item(expr_bytes, 0)
    except NeedMore:
        raise _Malformed("truncated") from None
    except CborError as error:
        raise _Malformed(f"bad CBOR: {error}") from None
    if end != len(expr_bytes):
        raise _Malformed("trailing bytes")
    if type(outer) is not list or len(outer) != (3 if has_values else 2):
        raise _Malformed("not an expression envelope")
    if outer[0] != _Wire.FORMAT or type(outer[0]) is not int:
        raise _Malformed(f"unknown encoding format {outer[0]!r}")
    if not has_values:
        return outer[1], []
    if type(outer[2]) is not list:
        raise _Malformed("the values are not an array")
    return outer[1], outer[2]


class _Translator:
    """One expression's spec -> a Meridian tree, adding placeholders as it goes.

    A name used twice in the expression gets one placeholder; a value gets
    its placeholder the first time it is referenced, so values the spec never
    uses do not show up as "unused" (the JS client lists a value twice when
    its first reference is reused).
    """

    __slots__ = ("names", "values", "variables", "name_keys", "value_keys")

    def __init__(self, names: dict[str, str], values: dict[str, Value] | None, variables: list[Any]) -> None:
        self.names = names
        self.values = values
        self.variables = variables
        self.name_keys: dict[str, str] = {}
        self.value_keys: dict[int, str] = {}

    # --- conditions ---------------------------------------------------------

    def condition(self, spec: Any) -> Any:
        code, args = _call(spec)
        if code in _COMPARATORS:
            _arity(args, 2, code)
            return Compare(_COMPARATORS[code], self.operand(args[0]), self.operand(args[1]))
        if code == Code.AND or code == Code.OR:
            if len(args) < 2:
                raise _Malformed(f"{code.name} needs two or more operands")
            node_type = And if code == Code.AND else Or
            items: list[Any] = []
            for arg in args:
                node = self.condition(arg)
                # the clients nest `a AND b AND c` as And(a, And(b, c)): flatten
                items.extend(node.items if type(node) is node_type else (node,))
            return node_type(tuple(items))
        if code == Code.NOT:
            _arity(args, 1, code)
            return Not(self.condition(args[0]))
        if code == Code.BETWEEN:
            _arity(args, 3, code)
            return Between(*(self.operand(arg) for arg in args))
        if code == Code.IN:
            _arity(args, 2, code)
            if type(args[1]) is not list or not args[1]:
                raise _Malformed("IN needs a non-empty array of operands")
            return In(self.operand(args[0]), tuple(self.operand(arg) for arg in args[1]))
        if code in _FUNCTIONS:
            return self.function(code, args)
        raise _Malformed(f"{code.name} is not a condition")

    # --- operands -----------------------------------------------------------

    def operand(self, spec: Any) -> Any:
        code, args = _call(spec)
        if code == Code.DOCUMENT_PATH:
            return self.path(args)
        if code == Code.VARIABLE:
            return self.variable(args)
        if code in _FUNCTIONS:
            return self.function(code, args)
        raise _Malformed(f"{code.name} is not an operand")

    def function(self, code: Code, args: list[Any]) -> Call:
        return Call(_FUNCTIONS[code], tuple(self.operand(arg) for arg in args))

    def path(self, elements: list[Any]) -> Path:
        if not elements or type(elements[0]) is not str:
            raise _Malformed("a document path starts with an attribute name")
        out: list[str | int] = []
        for element in elements:
            if type(element) is str:
                out.append(self.name_key(element))
            elif type(element) is Tagged and element.tag == _Wire.PATH_ORDINAL_TAG:
                index = element.value
                if type(index) is not int or index < 0:
                    raise _Malformed(f"bad list index {index!r}")
                out.append(index)
            else:
                raise _Malformed(f"bad document path element {element!r}")
        return Path(tuple(out))

    def name_key(self, name: str) -> str:
        key = self.name_keys.get(name)
        if key is None:
            key = _fresh_key(self.names, "#n")
            self.names[key] = name
            self.name_keys[name] = key
        return key

    def variable(self, args: list[Any]) -> ValueRef:
        _arity(args, 1, Code.VARIABLE)
        index = args[0]
        if type(index) is not int or not 0 <= index < len(self.variables) or self.values is None:
            raise _Malformed(f"no value {index!r} among {len(self.variables)}")
        key = self.value_keys.get(index)
        if key is None:
            key = _fresh_key(self.values, ":v")
            try:
                value = av_from_cbor(self.variables[index])
            except (ValueError, TypeError, KeyError) as error:
                raise _Malformed(f"bad value {index}: {error}") from None
            self.values[key] = value
            self.value_keys[index] = key
        return ValueRef(key)

    # --- updates and projections --------------------------------------------

    def update(self, spec: Any) -> UpdateExpr:
        if type(spec) is not list or not spec:
            raise _Malformed("an update is a non-empty array of actions")
        clauses: list[Clause] = []
        run: list[Any] = []
        run_code = None
        for action_spec in spec:
            code, args = _call(action_spec)
            if code not in _CLAUSES:
                raise _Malformed(f"{code.name} is not an update action")
            if code != run_code and run:
                clauses.append(Clause(_CLAUSES[run_code], tuple(run)))
                run = []
            # consecutive actions of one kind are one section (SET a = .., b = ..);
            # a kind coming back is a second section, which DynamoDB rejects
            run_code = code
            run.append(self.action(code, args))
        clauses.append(Clause(_CLAUSES[run_code], tuple(run)))
        return UpdateExpr(tuple(clauses))

    def action(self, code: Code, args: list[Any]) -> Any:
        if code == Code.REMOVE:
            _arity(args, 1, code)
            return RemoveAction(self.target(args[0]))
        _arity(args, 2, code)
        target = self.target(args[0])
        if code == Code.SET:
            return SetAction(target, self.set_value(args[1]))
        value_code, value_args = _call(args[1])
        if value_code != Code.VARIABLE:
            raise _Malformed(f"{code.name} takes a value, not {value_code.name}")
        node_type = AddAction if code == Code.ADD else DeleteAction
        return node_type(target, self.variable(value_args))

    def target(self, spec: Any) -> Path:
        code, args = _call(spec)
        if code != Code.DOCUMENT_PATH:
            raise _Malformed(f"an update action's target is a path, not {code.name}")
        return self.path(args)

    def set_value(self, spec: Any) -> Any:
        code, args = _call(spec)
        if code in _ARITHMETIC:
            _arity(args, 2, code)
            return Arith(_ARITHMETIC[code], self.operand(args[0]), self.operand(args[1]))
        return self.operand(spec)

    def projection(self, spec: Any) -> ProjectionExpr:
        if type(spec) is not list or not spec:
            raise _Malformed("a projection is a non-empty array of paths")
        return ProjectionExpr(tuple(self.target(path) for path in spec))


def _call(spec: Any) -> tuple[Code, list[Any]]:
    """``[code, args...]`` -> (code, args)."""
    if type(spec) is not list or not spec or type(spec[0]) is not int:
        raise _Malformed(f"expected [function code, ...], got {_short(spec)}")
    try:
        code = Code(spec[0])
    except ValueError:
        raise _Malformed(f"unknown function code {spec[0]}") from None
    return code, spec[1:]


def _arity(args: list[Any], count: int, code: Code) -> None:
    if len(args) != count:
        raise _Malformed(f"{code.name} takes {count} operand(s), got {len(args)}")


def _fresh_key(taken: dict[str, Any], prefix: str) -> str:
    """The next unused ``#nK``/``:vK``: numbered from the map's size, never reused."""
    number = len(taken)
    while f"{prefix}{number}" in taken:
        number += 1
    return f"{prefix}{number}"


def _short(obj: Any) -> str:
    text = repr(obj)
    return text if len(text) <= 40 else text[:37] + "..."
