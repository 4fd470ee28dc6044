"""PartiQL literals and parameters as DynamoDB attribute values (wire JSON).

DynamoDB names the place of a bad literal inside the value it belongs to:
``root`` is the value itself (an attribute's value in an INSERT, the right
side of a comparison), ``root.x`` a map member, ``root[1]`` a list element.
"""

from __future__ import annotations

from typing import Any, Sequence

from .. import limits
from ..errors import ValidationException
from ..numbers import NOT_NUMERIC_MESSAGE, UNDERFLOW_MESSAGE, normalize_number
from ..values import nesting_message
from . import ast
from .errors import PartiQLSyntaxError, refused

__all__ = ["is_value", "to_value", "insert_item", "check_parameter"]

Value = dict[str, Any]

EMPTY_BAG = "Empty bags are not supported"
BAG_TYPES = "Unsupported data type in Bag. DynamoDB only supports either numbers or strings in bags"
MISSING_LITERAL = "MISSING must be compared using IS operator"
ITEM_FORMAT = ("Unsupported format in item expression. Please use struct format {...} to express item values for "
               "insert statement.")
_INT32_MAX = 2**31 - 1  # the exponent and scale Java's BigDecimal holds; beyond, DynamoDB cannot read the literal
_VALUE_NODES = (ast.Lit, ast.Param, ast.ListLit, ast.StructLit, ast.BagLit)


def is_value(node: Any) -> bool:
    """Whether ``node`` denotes a value (a literal, a parameter, a collection of them)."""
    return isinstance(node, _VALUE_NODES)


def to_value(node: Any, params: Sequence[Value], where: str = "root") -> Value:
    """The attribute value ``node`` denotes; refusals name ``where``."""
    kind = type(node)
    if kind is ast.Param:
        return params[node.index]
    if kind is ast.Lit:
        return _literal(node, where)
    if kind is ast.ListLit:
        return {"L": [to_value(item, params, f"{where}[{i}]") for i, item in enumerate(node.items)]}
    if kind is ast.StructLit:
        return {"M": _struct(node, params, where)}
    if kind is ast.BagLit:
        return _bag(node, params, where)
    raise refused(f"Unsupported data type: {_describe(node)} under key {where}", node.where)


def insert_item(node: Any, params: Sequence[Value]) -> dict[str, Value]:
    """The item of ``INSERT INTO t VALUE <node>``."""
    if isinstance(node, ast.Param):
        value = params[node.index]
        if "M" not in value:
            raise ValidationException(ITEM_FORMAT)
        return dict(value["M"])
    if not isinstance(node, ast.StructLit):
        raise ValidationException(ITEM_FORMAT)
    return _struct(node, params, None)


def _struct(node: ast.StructLit, params: Sequence[Value], where: str | None) -> dict[str, Value]:
    out: dict[str, Value] = {}
    under = where if where is not None else "root"
    for key_node, value_node in node.fields:
        key = key_node.value if isinstance(key_node, ast.Lit) and key_node.kind == "string" else None
        if key is None and isinstance(key_node, ast.Param) and "S" in params[key_node.index]:
            key = params[key_node.index]["S"]
        if key is None:
            raise refused(f"Tuple keys must be of type String. Actual type: {_describe(key_node)} under {under}")
        if key in out:
            raise refused(f"Duplicate keys in tuple. Key: {key} under {under}")
        out[key] = to_value(value_node, params, "root" if where is None else f"{where}.{key}")
    return out


def _literal(node: ast.Lit, where: str) -> Value:
    kind = node.kind
    if kind == "value":  # an attribute value already (a member of a list parameter)
        return node.value
    if kind == "string":
        return {"S": node.value}
    if kind == "number":
        return {"N": number(node.value, where)}
    if kind == "bool":
        return {"BOOL": node.value}
    if kind == "null":
        return {"NULL": True}
    if kind == "missing":
        raise refused(MISSING_LITERAL)
    raise refused(f"Ion Literals are not supported: {node.value} under key {where}", node.where)


def number(text: str, where: str) -> str:
    """A number literal, normalised as DynamoDB stores it."""
    mantissa, _, exponent = text.lower().partition("e")
    fraction_digits = len(mantissa.partition(".")[2])
    try:
        exponent_value = int(exponent) if exponent else 0
    except ValueError:
        raise PartiQLSyntaxError("") from None
    if abs(exponent_value) > _INT32_MAX or abs(fraction_digits - exponent_value) > _INT32_MAX:
        raise PartiQLSyntaxError("")
    try:
        return normalize_number(text)
    except ValidationException as error:
        raise ValidationException(f"{error.message} under {where}") from None


def _bag(node: ast.BagLit, params: Sequence[Value], where: str) -> Value:
    if not node.items:
        raise ValidationException(EMPTY_BAG)
    members = [to_value(item, params, f"{where}[{i}]") for i, item in enumerate(node.items)]
    kinds = {next(iter(member)) for member in members}
    if kinds == {"S"}:
        return {"SS": [member["S"] for member in members]}
    if kinds == {"N"}:
        return {"NS": [member["N"] for member in members]}
    raise ValidationException(BAG_TYPES)


def _describe(node: Any) -> str:
    if isinstance(node, ast.Call):
        return node.name
    if isinstance(node, ast.Path):
        return ".".join(str(step) for step in node.steps)
    if isinstance(node, ast.Lit):
        return node.kind.upper()
    return type(node).__name__.upper()


def check_parameter(value: Any, depth: int = 1) -> None:
    """A parameter's numbers as DynamoDB's PartiQL reads them, in document order, before the usual
    attribute value checks: it converts each with Java's BigDecimal, whose exponent is a 32-bit
    integer (beyond it: "cannot be converted"), and checks the magnitude in 32-bit arithmetic,
    which wraps (``1e2147483647`` underflows)."""
    if type(value) is not dict:
        return
    if depth > limits.DOCUMENT_DEPTH_MAX and ("M" in value or "L" in value):
        raise ValidationException(nesting_message("item"))
    for tag, inner in value.items():
        if tag == "N" and type(inner) is str:
            _check_parameter_number(inner)
        elif tag == "NS" and type(inner) is list:
            for member in inner:
                if type(member) is str:
                    _check_parameter_number(member)
        elif tag == "L" and type(inner) is list:
            for member in inner:
                check_parameter(member, depth + 1)
        elif tag == "M" and type(inner) is dict:
            for member in inner.values():
                check_parameter(member, depth + 1)


def _check_parameter_number(text: str) -> None:
    mantissa, marker, exponent = text.lower().partition("e")
    if not marker or not exponent.lstrip("+-").isdigit():
        return
    exponent_value = int(exponent)
    if abs(exponent_value) > _INT32_MAX:
        raise ValidationException(f"{NOT_NUMERIC_MESSAGE}: {text}")
    digits = mantissa.lstrip("+-").replace(".", "").lstrip("0") or "0"
    scale = len(mantissa.partition(".")[2]) - exponent_value
    if len(digits) - scale > _INT32_MAX:  # wraps negative in DynamoDB's 32-bit arithmetic
        raise ValidationException(UNDERFLOW_MESSAGE)
