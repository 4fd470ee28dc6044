"""One item per line, in either of DynamoDB's export formats.

DynamoDB JSON: ``{"Item":{"name":{"S":"x"},...}}`` and a newline: the
attribute values exactly as the DynamoDB API writes them (binaries base64),
so a line's ``Item`` goes to BatchWriteItem as it is.

Amazon Ion (text): ``$ion_1_0 {Item:{name:"x",...}}`` and a newline.  The
developer guide's table: S string, BOOL bool, N decimal, B blob, SS / NS /
BS a list annotated ``$dynamodb_SS`` / ``$dynamodb_NS`` / ``$dynamodb_BS``,
L list, M struct, and NULL Ion's null.  Reading also takes an Ion int or
float for a number (DynamoDB writes decimals).  The ``amazon.ion`` package is
needed for Ion only, and imported on first use.

Every problem with a line is a ``BadLine``: the importer reports it with the
file and line number.
"""

from __future__ import annotations

import base64
import decimal
from typing import Any

import orjson

from meridian.model.errors import DynamoError
from meridian.model.values import check_item_size, validate_item

DYNAMODB_JSON = "DYNAMODB_JSON"
ION = "ION"
FORMATS = (DYNAMODB_JSON, ION)
_SUFFIX = {DYNAMODB_JSON: ".json.gz", ION: ".ion.gz"}
_SET_ANNOTATION = {"SS": "$dynamodb_SS", "NS": "$dynamodb_NS", "BS": "$dynamodb_BS"}
_SET_OF_ANNOTATION = {text: kind for kind, text in _SET_ANNOTATION.items()}
ION_MISSING = "the Ion format needs the amazon.ion package: pip install amazon-ion"

Item = dict[str, Any]


class BadLine(ValueError):
    """A line that is not one importable item (why, in DynamoDB's words where it has them)."""


def data_suffix(output_format: str) -> str:
    return _SUFFIX[output_format]


def check_item(item: Item, key_schema: dict[str, str]) -> None:
    """What DynamoDB would refuse in this item: its values, its size, its key
    (``key_schema``: attribute name -> S, N or B)."""
    try:
        validate_item(item)
        check_item_size(item)
    except DynamoError as exc:
        raise BadLine(exc.message or type(exc).__name__) from None
    for name, key_type in key_schema.items():
        value = item.get(name)
        if value is None:
            raise BadLine(f"One or more parameter values were invalid: Missing the key {name} in the item")
        if key_type not in value:
            found = next(iter(value))
            raise BadLine(
                f"One or more parameter values were invalid: Type mismatch for key {name} expected: {key_type} actual: {found}"
            )


# --- DynamoDB JSON ------------------------------------------------------------------------
def encode_json_line(item: Item) -> bytes:
    return orjson.dumps({"Item": item}) + b"\n"


def decode_json_line(line: bytes) -> Item:
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise BadLine(f"not JSON: {exc}") from None
    item = record.get("Item") if isinstance(record, dict) else None
    if not isinstance(item, dict):
        raise BadLine('not a DynamoDB JSON export line: no "Item" object')
    return item


# --- Amazon Ion -------------------------------------------------------------------------------
def _ion() -> Any:
    try:
        from amazon.ion import simpleion
    except ImportError:
        raise RuntimeError(ION_MISSING) from None
    return simpleion


def _to_ion(value: dict[str, Any]) -> Any:
    from amazon.ion.core import IonType
    from amazon.ion.simple_types import IonPyList

    (kind, inner), = value.items()
    if kind == "S":
        return inner
    if kind == "N":
        return decimal.Decimal(inner)
    if kind == "B":
        return base64.b64decode(inner)
    if kind == "BOOL":
        return bool(inner)
    if kind == "NULL":
        return None
    if kind == "L":
        return [_to_ion(member) for member in inner]
    if kind == "M":
        return {name: _to_ion(member) for name, member in inner.items()}
    members = {"SS": list, "NS": lambda ns: [decimal.Decimal(n) for n in ns],
               "BS": lambda bs: [base64.b64decode(b) for b in bs]}[kind](inner)
    return IonPyList.from_value(IonType.LIST, members, annotations=(_SET_ANNOTATION[kind],))


def encode_ion_line(item: Item) -> bytes:
    text = _ion().dumps({"Item": {name: _to_ion(value) for name, value in item.items()}}, binary=False)
    return text.encode() + b"\n"


def _number(value: Any) -> str:
    if isinstance(value, bool):
        raise BadLine("a bool where a number belongs")
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise BadLine(f"not a DynamoDB number: {value}")
        return repr(value)
    if isinstance(value, (int, decimal.Decimal)):
        return str(value)
    raise BadLine(f"not a number in a $dynamodb_NS: {value!r}")


def _from_ion(value: Any) -> dict[str, Any]:
    from amazon.ion.core import IonType

    ion_type = getattr(value, "ion_type", None)
    if value is None or ion_type == IonType.NULL or getattr(value, "is_null", False) and ion_type is None:
        return {"NULL": True}
    annotations = [getattr(a, "text", a) for a in getattr(value, "ion_annotations", ())]
    if ion_type == IonType.BOOL:
        return {"BOOL": bool(value)}
    if ion_type in (IonType.INT, IonType.DECIMAL, IonType.FLOAT):
        return {"N": _number(value)}
    if ion_type in (IonType.STRING, IonType.SYMBOL):
        return {"S": str(getattr(value, "text", value))}
    if ion_type in (IonType.BLOB, IonType.CLOB):
        return {"B": base64.b64encode(bytes(value)).decode()}
    if ion_type == IonType.STRUCT:
        return {"M": {str(name): _from_ion(member) for name, member in value.items()}}
    if ion_type in (IonType.LIST, IonType.SEXP):
        kind = next((_SET_OF_ANNOTATION[a] for a in annotations if a in _SET_OF_ANNOTATION), None)
        if kind == "SS":
            return {"SS": [str(member) for member in value]}
        if kind == "NS":
            return {"NS": [_number(member) for member in value]}
        if kind == "BS":
            return {"BS": [base64.b64encode(bytes(member)).decode() for member in value]}
        return {"L": [_from_ion(member) for member in value]}
    raise BadLine(f"an Ion {ion_type.name if ion_type else type(value).__name__} has no DynamoDB type")


def decode_ion_line(line: bytes) -> Item:
    simpleion = _ion()
    try:
        record = simpleion.loads(line.decode("utf-8"))
    except Exception as exc:  # noqa: BLE001 - amazon.ion raises several types for malformed text
        raise BadLine(f"not Ion: {exc}") from None
    item = record.get("Item") if hasattr(record, "get") else None
    if not hasattr(item, "items"):
        raise BadLine("not an Ion export line: no Item struct")
    return {str(name): _from_ion(value) for name, value in item.items()}


def encoder(output_format: str):
    return encode_ion_line if output_format == ION else encode_json_line


def decoder(output_format: str):
    return decode_ion_line if output_format == ION else decode_json_line
