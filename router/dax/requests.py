"""DAX request arguments, turned into the DynamoDB JSON request the action layer takes.

A data call's last argument is its ``kwargs``: a map from DAX's parameter
numbers to values (``Param``).  Expressions arrive compiled into CBOR
S-expressions; ``router/dax/sexpr.py`` writes them back as expression
strings with placeholders, so the request goes through the same validation
and evaluator as one made over HTTP.  The Python client sends a condition
twice (its text, then its S-expression): the map keeps the last, the
S-expression.  Expression attribute names and values are not read from the
kwargs: the S-expressions carry them inline.

Anything of the wrong shape is the client's error: ``BadArgument`` becomes a
``ValidationException`` in ``router/dax/methods.py``.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any

from meridian.model.errors import ValidationException
from meridian.model.expressions.compile import compile_expressions

from . import sexpr
from .cbor import Tagged, decode_item
from .values import decode_index_key, decode_key


class Param(IntEnum):
    """DAX's request parameter numbers (the kwargs keys)."""

    PROJECTION = 0
    NAMES = 1
    CONSISTENT_READ = 2
    RETURN_CONSUMED_CAPACITY = 3
    CONDITION = 4
    VALUES = 5
    RETURN_ITEM_COLLECTION_METRICS = 6
    RETURN_VALUES = 7
    UPDATE = 8
    EXCLUSIVE_START_KEY = 9
    FILTER = 10
    INDEX_NAME = 11
    KEY_CONDITION = 12
    LIMIT = 13
    SCAN_INDEX_FORWARD = 14
    SELECT = 15
    SEGMENT = 16
    TOTAL_SEGMENTS = 17
    CLIENT_REQUEST_TOKEN = 19


RETURN_VALUES = {1: "NONE", 2: "ALL_OLD", 3: "UPDATED_OLD", 4: "ALL_NEW", 5: "UPDATED_NEW"}
RETURN_CONSUMED_CAPACITY = {0: "NONE", 1: "TOTAL", 2: "INDEXES"}
RETURN_ITEM_COLLECTION_METRICS = {0: "NONE", 1: "SIZE"}
SELECT = {1: "ALL_ATTRIBUTES", 2: "ALL_PROJECTED_ATTRIBUTES", 3: "COUNT", 4: "SPECIFIC_ATTRIBUTES"}
#: TransactWriteItems' operation codes
TRANSACT_PUT, TRANSACT_DELETE, TRANSACT_UPDATE, TRANSACT_CHECK = 2, 7, 9, 12
#: ReturnValuesOnConditionCheckFailure in TransactWriteItems
RETURN_ON_FAILURE = {1: "NONE", 2: "ALL_OLD"}
_PATH = 18
_LIST_INDEX_TAG = 3324


class BadArgument(ValueError):
    """A DAX argument of the wrong shape."""


def kwargs_of(value: Any) -> dict[int, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadArgument("kwargs must be a map")
    return value


def text_of(value: Any, what: str) -> str:
    """Table and index names travel as bytes (UTF-8); tolerate text."""
    if isinstance(value, (bytes, bytearray)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadArgument(f"{what} is not UTF-8") from exc
    if isinstance(value, str):
        return value
    raise BadArgument(f"{what} must be bytes")


def bytes_of(value: Any, what: str) -> bytes:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    raise BadArgument(f"{what} must be bytes")


def int_of(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadArgument(f"{what} must be an integer")
    return value


def enum_of(table: dict[int, str], value: Any, what: str) -> str:
    name = table.get(int_of(value, what))
    if name is None:
        raise BadArgument(f"{what}: unknown value {value}")
    return name


def flag_of(value: Any) -> bool:
    """ConsistentRead and ScanIndexForward: a bool (GetItem) or 0/1 (Query, Scan)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value != 0
    raise BadArgument("a flag must be a boolean or an integer")


class Expressions:
    """The placeholders shared by one request's expressions."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, dict] = {}

    def apply(self, body: dict[str, Any]) -> None:
        if self.names:
            body["ExpressionAttributeNames"] = self.names
        if self.values:
            body["ExpressionAttributeValues"] = self.values


def add_common(body: dict[str, Any], kwargs: dict[int, Any], exprs: Expressions) -> None:
    """The parameters every data call may carry, when present."""
    value = kwargs.get(Param.RETURN_CONSUMED_CAPACITY)
    if value is not None:
        body["ReturnConsumedCapacity"] = enum_of(RETURN_CONSUMED_CAPACITY, value, "ReturnConsumedCapacity")
    value = kwargs.get(Param.RETURN_ITEM_COLLECTION_METRICS)
    if value is not None:
        body["ReturnItemCollectionMetrics"] = enum_of(RETURN_ITEM_COLLECTION_METRICS, value, "ReturnItemCollectionMetrics")
    value = kwargs.get(Param.RETURN_VALUES)
    if value is not None:
        body["ReturnValues"] = enum_of(RETURN_VALUES, value, "ReturnValues")
    value = kwargs.get(Param.CONDITION)
    if value is not None:
        body["ConditionExpression"] = sexpr.to_condition(bytes_of(value, "ConditionExpression"), exprs.names, exprs.values)
    value = kwargs.get(Param.UPDATE)
    if value is not None:
        body["UpdateExpression"] = sexpr.to_update(bytes_of(value, "UpdateExpression"), exprs.names, exprs.values)
    value = kwargs.get(Param.FILTER)
    if value is not None:
        body["FilterExpression"] = sexpr.to_condition(bytes_of(value, "FilterExpression"), exprs.names, exprs.values,
                                                      label="FilterExpression")
    value = kwargs.get(Param.PROJECTION)
    if value is not None:
        body["ProjectionExpression"] = sexpr.to_projection(bytes_of(value, "ProjectionExpression"), exprs.names)


def projection_paths(expr_bytes: bytes) -> list[list[str | int]]:
    """The paths of a projection S-expression ``[1, [[18, name, ...], ...]]``,
    in order: an answer's projected values are keyed by their ordinal here.

    A read answered from the item cache never sends its projection upstream,
    so it is validated here as the action layer would (overlapping or
    conflicting paths, size...), with DynamoDB's messages: the clients
    cannot rebuild an item from overlapping paths.
    """
    names: dict[str, str] = {}
    compile_expressions(projection=sexpr.to_projection(expr_bytes, names), names=names)
    try:
        decoded, _end = decode_item(expr_bytes, 0)
    except Exception as exc:  # noqa: BLE001 - NeedMore or CborError: malformed either way
        raise BadArgument("malformed ProjectionExpression") from exc
    if not (isinstance(decoded, list) and len(decoded) == 2 and isinstance(decoded[1], list)):
        raise BadArgument("malformed ProjectionExpression")
    paths = []
    for path in decoded[1]:
        if not (isinstance(path, list) and len(path) >= 2 and path[0] == _PATH):
            raise BadArgument("malformed ProjectionExpression")
        steps: list[str | int] = []
        for step in path[1:]:
            if isinstance(step, str):
                steps.append(step)
            elif isinstance(step, Tagged) and step.tag == _LIST_INDEX_TAG and isinstance(step.value, int):
                steps.append(step.value)
            else:
                raise BadArgument("malformed ProjectionExpression")
        paths.append(steps)
    return paths


def exclusive_start_key(value: Any, key_schema: list[tuple[str, str]], on_index: bool) -> dict[str, dict]:
    """A table's key arrives as key bytes; an index's as bytes holding a CBOR map name -> value."""
    data = bytes_of(value, "ExclusiveStartKey")
    return decode_index_key(data) if on_index else decode_key(data, key_schema)


def validation_error(exc: Exception) -> ValidationException:
    return ValidationException(str(exc) or "Invalid request")
