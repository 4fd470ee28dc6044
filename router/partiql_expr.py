"""PartiQL conditions and update actions as DynamoDB expressions.

A statement's WHERE clause (or SET/REMOVE list) becomes expression text over
placeholders this module makes (``#n0`` for every name, ``:v0`` for every
value), built as ``model/expressions`` trees and printed by its printer, so
the JSON API's expression parser, checks and evaluator do the rest.

The WHERE analysis shared by every statement kind lives here too: the
conjuncts of a condition, an equality or IN on a key attribute, and the full
primary key of a single-item statement.
"""

from __future__ import annotations

from typing import Any, Sequence

import orjson

from meridian.model.errors import ValidationException
from meridian.model.expressions import ast as E
from meridian.model.expressions.printer import to_text
from meridian.model.partiql import ast as P
from meridian.model.partiql import is_value, to_value
from meridian.model.partiql.errors import refused

Value = dict[str, Any]

INCOMPLETE_KEY = "Where clause does not contain a mandatory equality on all key attributes"
KEY_TYPE_MISMATCH = "Key attribute's data type should match its data type in table's schema: Key "
NOT_BOOLEAN = "WHERE clause must contain an expression that resolves to a boolean"
IS_OPERAND = "The left hand side argument to IS must be a Variable Reference, Literal, or Path"
IN_OPERATOR = ("IN operator must have a left hand argument of type Variable Reference and right hand argument of "
               "type Seq with at least one member")
PATH_STARTS_WITH_INDEX = "A path cannot start with a list index"
IS_TYPES = "Supported data types are [MISSING, NULL, BOOLEAN, BLOB, STRING, NUMERIC, STRUCT, TUPLE, LIST]"

_CONDITION_FUNCTIONS = frozenset({"begins_with", "contains", "attribute_type", "attribute_exists",
                                  "attribute_not_exists"})
_IS_TYPES = {"NULL": "NULL", "BOOLEAN": "BOOL", "BOOL": "BOOL", "STRING": "S", "NUMERIC": "N", "DECIMAL": "N",
             "INT": "N", "INTEGER": "N", "FLOAT": "N", "DOUBLE": "N", "BLOB": "B", "STRUCT": "M", "TUPLE": "M",
             "LIST": "L"}


class Expressions:
    """Placeholders for one request, and the trees that use them."""

    def __init__(self, params: Sequence[Value]) -> None:
        self.params = params
        self.names: dict[str, str] = {}
        self.values: dict[str, Value] = {}
        self._by_name: dict[str, str] = {}

    # --- placeholders ----------------------------------------------------------------

    def name(self, name: str) -> str:
        placeholder = self._by_name.get(name)
        if placeholder is None:
            placeholder = f"#n{len(self._by_name)}"
            self._by_name[name] = placeholder
            self.names[placeholder] = name
        return placeholder

    def value(self, value: Value) -> E.ValueRef:
        placeholder = f":v{len(self.values)}"
        self.values[placeholder] = value
        return E.ValueRef(placeholder)

    def path(self, path: P.Path) -> E.Path:
        if not isinstance(path.steps[0], str):
            raise refused(PATH_STARTS_WITH_INDEX)
        return E.Path(tuple(self.name(step) if isinstance(step, str) else step for step in path.steps))

    def request(self, body: dict[str, Any]) -> dict[str, Any]:
        """``body`` with the placeholder maps this request used."""
        if self.names:
            body["ExpressionAttributeNames"] = dict(self.names)
        if self.values:
            body["ExpressionAttributeValues"] = dict(self.values)
        return body

    # --- operands and conditions -----------------------------------------------------

    def operand(self, node: Any) -> Any:
        if isinstance(node, P.Path):
            return self.path(node)
        if is_value(node):
            return self.value(to_value(node, self.params))
        if isinstance(node, P.Call):
            if node.name == "size":
                return E.Call("size", tuple(self.operand(arg) for arg in node.args))
            if node.name in _CONDITION_FUNCTIONS:
                raise refused(NOT_BOOLEAN)
            raise refused(f"Unrecognized function: {node.name}", node.where)
        if isinstance(node, P.Arith):
            return E.Arith(node.op, self.operand(node.left), self.operand(node.right))
        raise refused(f"Unsupported operation: {type(node).__name__}")

    def condition(self, node: Any) -> Any:
        kind = type(node)
        if kind is P.And:
            return E.And(tuple(self.condition(item) for item in node.items))
        if kind is P.Or:
            return E.Or(tuple(self.condition(item) for item in node.items))
        if kind is P.Not:
            return E.Not(self.condition(node.item))
        if kind is P.Compare:
            return self._compare(node)
        if kind is P.Between:
            return E.Between(self.operand(node.operand), self.operand(node.low), self.operand(node.high))
        if kind is P.In:
            return self._in(node)
        if kind is P.Is:
            return self._is(node)
        if kind is P.Call:
            if node.name in _CONDITION_FUNCTIONS:
                return E.Call(node.name, tuple(self.operand(arg) for arg in node.args))
            raise refused(f"Unrecognized function: {node.name}", node.where)
        raise refused(NOT_BOOLEAN)

    def condition_text(self, node: Any) -> str:
        return to_text(self.condition(node))

    def _compare(self, node: P.Compare) -> Any:
        for call, other in ((node.left, node.right), (node.right, node.left)):
            if (isinstance(call, P.Call) and call.name in _CONDITION_FUNCTIONS and isinstance(other, P.Lit)
                    and other.kind == "bool" and node.op in ("=", "<>")):
                tree = self.condition(call)
                return tree if other.value == (node.op == "=") else E.Not(tree)
        return E.Compare(node.op, self.operand(node.left), self.operand(node.right))

    def _in(self, node: P.In) -> Any:
        options = node.options
        if isinstance(options, P.Param):
            listed = self.params[options.index].get("L")
            if not listed:
                raise ValidationException(IN_OPERATOR)
            refs = tuple(self.value(value) for value in listed)
        else:
            if not options:
                raise ValidationException(IN_OPERATOR)
            refs = tuple(self.operand(option) for option in options)
        return E.In(self.operand(node.operand), refs)

    def _is(self, node: P.Is) -> Any:
        if not isinstance(node.operand, P.Path):
            raise ValidationException(IS_OPERAND)
        path = self.path(node.operand)
        if node.type_name == "MISSING":
            return E.Call("attribute_exists" if node.negated else "attribute_not_exists", (path,))
        type_code = _IS_TYPES.get(node.type_name)
        if type_code is None:
            raise ValidationException(f"Unsupported data type for IS operator: {node.type_name}. {IS_TYPES}")
        tree = E.Call("attribute_type", (path, self.value({"S": type_code})))
        return E.Not(tree) if node.negated else tree


# --- WHERE analysis ------------------------------------------------------------------------


def conjuncts(condition: Any) -> list[Any]:
    """The AND-ed parts of a condition (one part when it is not an AND)."""
    if condition is None:
        return []
    if isinstance(condition, P.And):
        out: list[Any] = []
        for item in condition.items:
            out.extend(conjuncts(item))
        return out
    return [condition]


def disjuncts(condition: Any) -> list[Any]:
    if isinstance(condition, P.Or):
        out: list[Any] = []
        for item in condition.items:
            out.extend(disjuncts(item))
        return out
    return [condition]


def and_of(parts: Sequence[Any]) -> Any | None:
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else P.And(tuple(parts), parts[0].where)


def names_path(node: Any, name: str) -> bool:
    return isinstance(node, P.Path) and node.steps == (name,)


def key_equality(node: Any, name: str) -> Any | None:
    """The value node of ``name = value`` (either way round, or a one-value IN), else None."""
    if isinstance(node, P.Compare) and node.op == "=":
        if names_path(node.left, name) and is_value(node.right):
            return node.right
        if names_path(node.right, name) and is_value(node.left):
            return node.left
    if isinstance(node, P.In) and names_path(node.operand, name) and isinstance(node.options, tuple):
        if len(node.options) == 1 and is_value(node.options[0]):
            return node.options[0]
    return None


def key_options(node: Any, name: str, params: Sequence[Value]) -> list[Any] | None:
    """The value nodes of ``name IN [...]`` (or one equality), else None."""
    single = key_equality(node, name)
    if single is not None:
        return [single]
    if isinstance(node, P.In) and names_path(node.operand, name):
        if isinstance(node.options, P.Param):
            listed = params[node.options.index].get("L") or []
            return [P.Lit("value", value, node.where) for value in listed]
        if node.options and all(is_value(option) for option in node.options):
            return list(node.options)
    return None


def key_value(node: Any, name: str, key_type: str, params: Sequence[Value]) -> Value:
    """A key attribute's value from the statement, checked against the schema's type."""
    value = node.value if isinstance(node, P.Lit) and node.kind == "value" else to_value(node, params)
    if len(value) != 1 or key_type not in value:
        raise ValidationException(KEY_TYPE_MISMATCH + name)
    return value


def full_key(condition: Any, schema: Sequence[tuple[str, str]],
             params: Sequence[Value]) -> tuple[dict[str, Value], list[Any]] | None:
    """The primary key a WHERE clause fixes by equality, and the rest of it; None when it does not."""
    parts = conjuncts(condition)
    key: dict[str, Value] = {}
    used: set[int] = set()
    for name, key_type in schema:
        for i, part in enumerate(parts):
            if i in used:
                continue
            value = key_equality(part, name)
            if value is not None:
                key[name] = key_value(value, name, key_type, params)
                used.add(i)
                break
        else:
            return None
    return key, [part for i, part in enumerate(parts) if i not in used]


def canonical(value: Value) -> bytes:
    """A key value as bytes that compare equal when the values do."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def references(node: Any, names: set[str]) -> bool:
    """Whether a condition mentions any of ``names`` as the head of a path."""
    if isinstance(node, P.Path):
        return node.head in names
    for attr in ("items", "args", "options"):
        children = getattr(node, attr, None)
        if isinstance(children, tuple) and any(references(child, names) for child in children):
            return True
    for attr in ("item", "left", "right", "operand", "low", "high"):
        child = getattr(node, attr, None)
        if child is not None and references(child, names):
            return True
    return False
