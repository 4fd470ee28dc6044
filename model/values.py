"""Attribute values and items: validation, normalisation, sizes, keys.

Items travel as DynamoDB wire JSON: ``{"id": {"S": "a"}, "n": {"N": "1"}}``.
Binary values stay base64 text inside items; they are decoded only to be
measured or encoded into storage keys.

Validation mirrors DynamoDB's two stages.  Wrong JSON types (a number where a
string belongs, bad base64) are ``SerializationException``s, which DynamoDB
reports before any ``ValidationException``; the semantic checks (empty sets,
duplicates, number limits, nesting depth) follow.  Both happen in one walk
here, and only when that walk finds a semantic error is the item walked again
for types, so that the happy path pays for one walk while the error reported
is still the one DynamoDB would pick.

Normalisation (numbers rendered DynamoDB's way, ``"TRUE"`` booleans made
``true``) copies only what changes: a validated item shares every unchanged
value with its input.
"""

from __future__ import annotations

import binascii
import re
from typing import Any

from . import limits
from .errors import SerializationException, ValidationException
from .numbers import NOT_NUMERIC_MESSAGE, normalize_number, number_parts

AttributeValue = dict[str, Any]
Item = dict[str, AttributeValue]
KeySchema = list[tuple[str, str]]  # [(partition key name, type), (sort key name, type)?]

_INVALID = "One or more parameter values were invalid: "
EMPTY_VALUE_MESSAGE = "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes"
MANY_TYPES_MESSAGE = (
    "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes"
)
NULL_FALSE_MESSAGE = _INVALID + "Null attribute value types must have the value of true"
# DynamoDB's own wording, odd spacing and articles included.
EMPTY_SS_MESSAGE = _INVALID + "An string set  may not be empty"
EMPTY_NS_MESSAGE = _INVALID + "An number set  may not be empty"
EMPTY_BS_MESSAGE = _INVALID + "Binary sets should not be empty"
NULL_IN_SS_MESSAGE = _INVALID + "An string set may not have a empty string as a member"
NULL_IN_BS_MESSAGE = _INVALID + "Binary sets may not contain null or empty values"
NS_DUPLICATES_MESSAGE = "Input collection contains duplicates"
KEY_SCHEMA_MISMATCH_MESSAGE = "The provided key element does not match the schema"
ITEM_TOO_LARGE_MESSAGE = "Item size has exceeded the maximum allowed size"
UPDATED_ITEM_TOO_LARGE_MESSAGE = "Item size to update has exceeded the maximum allowed size"
HASH_KEY_TOO_LARGE_MESSAGE = (
    _INVALID + f"Size of hashkey has exceeded the maximum size limit of{limits.PARTITION_KEY_BYTES_MAX} bytes"
)
RANGE_KEY_TOO_LARGE_MESSAGE = (
    _INVALID + f"Aggregated size of all range keys has exceeded the size limit of {limits.SORT_KEY_BYTES_MAX} bytes"
)

# A non-key attribute name (at any depth): a live reply for the long one (2026, one
# byte past limits.ATTRIBUTE_NAME_BYTES_MAX); the empty one's wording is DynamoDB
# Local's, its prefix a guess after the long one's.
ATTRIBUTE_NAME_TOO_LARGE_MESSAGE = (
    "1 validation error detected: Attribute name is too large, must be less than "
    f"{limits.ATTRIBUTE_NAME_BYTES_MAX + 1} bytes"
)
EMPTY_ATTRIBUTE_NAME = "Empty attribute name"
EMPTY_ATTRIBUTE_NAME_MESSAGE = "1 validation error detected: " + EMPTY_ATTRIBUTE_NAME
_NAME_CHARS_SAFE = limits.ATTRIBUTE_NAME_BYTES_MAX // 4  # no name this long can pass the byte limit

_NUMBER_CLASS = "com.amazon.coral.value.json.numbers.TruncatingBigNumber"
_MAP_FOUND = "Start of structure or map found where not expected."
_LIST_FOUND = "Start of list found where not expected"
_TRUE_WORDS = frozenset({"TRUE", "1", "YES"})
_FALSE_WORDS = frozenset({"FALSE", "0", "NO"})
_BASE64_BAD_CHARACTER = re.compile(r"[^A-Za-z0-9+/=]|=[^=]")


def nesting_message(context: str) -> str:
    """DynamoDB's nesting error; ``context`` names what was being validated."""
    return (
        "Nesting Levels have exceeded supported limits: "
        f"Attributes in the {context} have nested levels beyond supported limit"
    )


def empty_key_message(name: str, key_type: str) -> str:
    kind = "string" if key_type == "S" else "binary"
    return (
        "One or more parameter values are not valid. The AttributeValue for a key attribute "
        f"cannot contain an empty {kind} value. Key: {name}"
    )


def attribute_type(value: AttributeValue) -> str:
    """The type tag of a validated attribute value (``"S"``, ``"M"``...)."""
    for tag in value:
        return tag
    raise ValidationException(EMPTY_VALUE_MESSAGE)


# --- JSON type errors (SerializationException) --------------------------------


def _json_class(value: Any) -> str:
    return "java.lang.Boolean" if isinstance(value, bool) else _NUMBER_CLASS


def _not_string(value: Any) -> SerializationException:
    if isinstance(value, dict):
        return SerializationException(_MAP_FOUND)
    if isinstance(value, list):
        return SerializationException(_LIST_FOUND)
    return SerializationException(f"class {_json_class(value)} can not be converted to an String")


def _not_blob(value: Any) -> SerializationException:
    if isinstance(value, dict):
        return SerializationException(_MAP_FOUND)
    if isinstance(value, list):
        return SerializationException(_LIST_FOUND)
    return SerializationException(f"class {_json_class(value)} can not be converted to a Blob")


def _not_list(value: Any) -> SerializationException:
    return SerializationException(_MAP_FOUND if isinstance(value, dict) else "Expected list or null")


def _not_map(value: Any) -> SerializationException:
    return SerializationException(_LIST_FOUND if isinstance(value, list) else "Expected map or null")


def _not_structure(value: Any) -> SerializationException:
    return SerializationException(_LIST_FOUND if isinstance(value, list) else "Expected null")


def _boolean(value: Any) -> bool:
    """Read a JSON Boolean the way DynamoDB's parser does (it takes "yes")."""
    if value is True or value is False:
        return value
    if isinstance(value, str):
        word = value.upper()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
        raise SerializationException(f"'{word}' can not be converted to an Boolean")
    if isinstance(value, dict):
        raise SerializationException(_MAP_FOUND)
    if isinstance(value, list):
        raise SerializationException(_LIST_FOUND)
    raise SerializationException(f"class {_NUMBER_CLASS} can not be converted to an Boolean")


def decode_binary(text: str) -> bytes:
    """Decode a B value, accepting only canonical base64 as DynamoDB does."""
    if len(text) % 4:
        raise SerializationException(
            f"'{text}' can not be converted to a Blob: "
            f"Base64 encoded length is expected a multiple of 4 bytes but found: {len(text)}"
        )
    try:
        raw = binascii.a2b_base64(text)
        if binascii.b2a_base64(raw, newline=False).decode("ascii") == text:
            return raw
    except ValueError:
        pass
    bad = _BASE64_BAD_CHARACTER.search(text)
    if bad is not None:
        raise SerializationException(f"'{text}' can not be converted to a Blob: Invalid Base64 character: '{bad[0][0]}'")
    raise SerializationException(f"'{text}' can not be converted to a Blob: Invalid last non-pad Base64 character dectected")


def binary_length(text: str) -> int:
    """Decoded length of a canonical base64 string, without decoding it."""
    return len(text) // 4 * 3 - (text[-1:] == "=") - (text[-2:] == "==")


# --- validation ----------------------------------------------------------------


def check_attribute_name(name: str) -> None:
    """An attribute name is 1 to ``ATTRIBUTE_NAME_BYTES_MAX`` UTF-8 bytes, at any depth."""
    if not name:
        raise ValidationException(EMPTY_ATTRIBUTE_NAME_MESSAGE)
    if len(name) > _NAME_CHARS_SAFE and _text_size(name) > limits.ATTRIBUTE_NAME_BYTES_MAX:
        raise ValidationException(ATTRIBUTE_NAME_TOO_LARGE_MESSAGE)


def validate_item(item: Any, *, context: str = "item") -> Item:
    """Validate every attribute value of an item and return it normalised.

    ``context`` ("item", "key"...) only shapes the nesting-depth message.
    """
    if type(item) is not dict:
        raise _not_map(item)
    try:
        out: Item | None = None
        for name, value in item.items():
            if not name or len(name) > _NAME_CHARS_SAFE:
                check_attribute_name(name)
            checked = _validate(value, 1, context)
            if checked is not value:
                if out is None:
                    out = dict(item)
                out[name] = checked
        return item if out is None else out
    except ValidationException:
        check_item_shape(item)
        raise


def validate_attribute_value(value: Any, *, context: str = "item") -> AttributeValue:
    """Validate and normalise one attribute value (e.g. an ExpressionAttributeValue)."""
    try:
        return _validate(value, 1, context)
    except ValidationException:
        _check_shape(value)
        raise


def _validate(value: Any, depth: int, context: str) -> AttributeValue:
    if type(value) is not dict:
        if value is None:  # a JSON null where a value belongs holds no type
            raise ValidationException(EMPTY_VALUE_MESSAGE)
        raise _not_structure(value)
    if depth > limits.DOCUMENT_DEPTH_MAX:
        raise ValidationException(nesting_message(context))
    if len(value) == 1:
        for tag, inner in value.items():
            check = _CHECKS.get(tag)
            if check is not None and inner is not None:
                return check(value, inner, depth, context)
    return _validate_mixed(value, depth, context)


def _validate_mixed(value: AttributeValue, depth: int, context: str) -> AttributeValue:
    """The rare shapes: no type, several types, unknown members or JSON nulls."""
    present = [(tag, inner) for tag, inner in value.items() if inner is not None and tag in _CHECKS]
    if not present:
        raise ValidationException(EMPTY_VALUE_MESSAGE)
    checked = value
    for tag, inner in present:  # DynamoDB checks each member before counting them
        single = {tag: inner}
        checked = _CHECKS[tag](single, inner, depth, context)
    if len(present) > 1:
        raise ValidationException(MANY_TYPES_MESSAGE)
    return checked


def _check_s(value: AttributeValue, inner: Any, depth: int, context: str) -> AttributeValue:
    if type(inner) is not str:
        raise _not_string(inner)
    return value


def _check_n(value: AttributeValue, inner: Any, depth: int, context: str) -> AttributeValue:
    if type(inner) is not str:
        raise _not_string(inner)
    normal = normalize_number(inner)
    return value if normal is inner else {"N": normal}


def _check_b(value: AttributeValue, inner: Any, depth: int, context: str) -> AttributeValue:
    if type(inner) is not str:
        raise _not_blob(inner)
    decode_binary(inner)
    return value


def _check_bool(value: AttributeValue, inner: Any, depth: int, context: str) -> AttributeValue:
    flag = _boolean(inner)
    return value if flag is inner else {"BOOL": flag}


def _check_null(value: AttributeValue, inner: Any, depth: int, context: str) -> AttributeValue:
    if not _boolean(inner):
        raise ValidationException(NULL_FALSE_MESSAGE)
    return value if inner is True else {"NULL": True}


def _set_text(members: list[str]) -> str:
    return "[" + ", ".join(members) + "]"


def _check_ss(value: AttributeValue, inner: Any, depth: int, context: str) -> AttributeValue:
    if type(inner) is not list:
        raise _not_list(inner)
    for member in inner:
        if type(member) is not str and member is not None:
            raise _not_string(member)
    if not inner:
        raise ValidationException(EMPTY_SS_MESSAGE)
    if None in inner:
        raise ValidationException(NULL_IN_SS_MESSAGE)
    if len(set(inner)) != len(inner):
        raise ValidationException(_INVALID + f"Input collection {_set_text(inner)} contains duplicates.")
    return value


def _check_ns(value: AttributeValue, inner: Any, depth: int, context: str) -> AttributeValue:
    if type(inner) is not list:
        raise _not_list(inner)
    for member in inner:
        if type(member) is not str and member is not None:
            raise _not_string(member)
    if not inner:
        raise ValidationException(EMPTY_NS_MESSAGE)
    if None in inner or "" in inner:
        raise ValidationException(NOT_NUMERIC_MESSAGE)
    normal = [normalize_number(member) for member in inner]
    if len(set(normal)) != len(normal):
        raise ValidationException(NS_DUPLICATES_MESSAGE)
    if all(n is m for n, m in zip(normal, inner)):
        return value
    return {"NS": normal}


def _check_bs(value: AttributeValue, inner: Any, depth: int, context: str) -> AttributeValue:
    if type(inner) is not list:
        raise _not_list(inner)
    for member in inner:
        if member is not None:
            if type(member) is not str:
                raise _not_blob(member)
            decode_binary(member)
    if not inner:
        raise ValidationException(EMPTY_BS_MESSAGE)
    if None in inner:
        raise ValidationException(NULL_IN_BS_MESSAGE)
    if len(set(inner)) != len(inner):  # canonical base64: equal text <=> equal bytes
        raise ValidationException(_INVALID + f"Input collection {_set_text(inner)}of type BS contains duplicates.")
    return value


def _check_l(value: AttributeValue, inner: Any, depth: int, context: str) -> AttributeValue:
    if type(inner) is not list:
        raise _not_list(inner)
    out: list[AttributeValue] | None = None
    for index, element in enumerate(inner):
        checked = _validate(element, depth + 1, context)
        if checked is not element:
            if out is None:
                out = list(inner)
            out[index] = checked
    return value if out is None else {"L": out}


def _check_m(value: AttributeValue, inner: Any, depth: int, context: str) -> AttributeValue:
    if type(inner) is not dict:
        raise _not_map(inner)
    out: dict[str, AttributeValue] | None = None
    for name, element in inner.items():
        if not name or len(name) > _NAME_CHARS_SAFE:
            check_attribute_name(name)
        checked = _validate(element, depth + 1, context)
        if checked is not element:
            if out is None:
                out = dict(inner)
            out[name] = checked
    return value if out is None else {"M": out}


_CHECKS = {
    "S": _check_s,
    "N": _check_n,
    "B": _check_b,
    "BOOL": _check_bool,
    "NULL": _check_null,
    "M": _check_m,
    "L": _check_l,
    "SS": _check_ss,
    "NS": _check_ns,
    "BS": _check_bs,
}


# --- JSON shapes only (the SerializationException stage) ----------------------


def check_item_shape(item: Any) -> None:
    """Raise the ``SerializationException`` DynamoDB would give for an item's
    JSON types, if any; semantic problems are left to ``validate_item``."""
    if type(item) is not dict:
        raise _not_map(item)
    for value in item.values():
        if value is not None:
            _check_shape(value)


def _check_shape(value: Any) -> None:
    if type(value) is not dict:
        raise _not_structure(value)
    for tag, inner in value.items():
        if inner is None:
            continue
        if tag == "S" or tag == "N":
            if type(inner) is not str:
                raise _not_string(inner)
        elif tag == "B":
            if type(inner) is not str:
                raise _not_blob(inner)
            decode_binary(inner)
        elif tag == "BOOL" or tag == "NULL":
            _boolean(inner)
        elif tag in ("SS", "NS", "BS"):
            if type(inner) is not list:
                raise _not_list(inner)
            for member in inner:
                if member is None:
                    continue
                if tag == "BS":
                    if type(member) is not str:
                        raise _not_blob(member)
                    decode_binary(member)
                elif type(member) is not str:
                    raise _not_string(member)
        elif tag == "L":
            if type(inner) is not list:
                raise _not_list(inner)
            for element in inner:
                if element is not None:
                    _check_shape(element)
        elif tag == "M":
            if type(inner) is not dict:
                raise _not_map(inner)
            for element in inner.values():
                if element is not None:
                    _check_shape(element)


# --- sizes -----------------------------------------------------------------------


def _text_size(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


text_size = _text_size  # the UTF-8 size of a string or name, for model/index_keys.py


def number_size(text: str) -> int:
    """Stored size of a number: one exponent byte, the significant digits in
    base-100 pairs aligned on the decimal point, one more byte if negative.

    DynamoDB documents this only as "about one byte per two digits plus one";
    this exact form is dynalite's, whose item-size boundary tests pass against
    DynamoDB itself.
    """
    negative, digits, exponent = number_parts(text)
    count = len(digits)
    if not count:
        return 1
    pad = 1 if (count % 2 == 0 and exponent % 2 == 0) else 0
    return 1 + (count + 1) // 2 + pad + (1 if negative else 0)


def attribute_value_size(value: AttributeValue) -> int:
    """Size of a validated attribute value by DynamoDB's item-size rules."""
    for tag, inner in value.items():
        if tag == "S":
            return _text_size(inner)
        if tag == "N":
            return number_size(inner)
        if tag == "B":
            return binary_length(inner)
        if tag == "BOOL" or tag == "NULL":
            return 1
        if tag == "M":
            size = 3 + len(inner)
            for name, element in inner.items():
                size += _text_size(name) + attribute_value_size(element)
            return size
        if tag == "L":
            size = 3 + len(inner)
            for element in inner:
                size += attribute_value_size(element)
            return size
        if tag == "SS":
            return sum(map(_text_size, inner))
        if tag == "NS":
            return sum(map(number_size, inner))
        if tag == "BS":
            return sum(map(binary_length, inner))
    raise ValidationException(EMPTY_VALUE_MESSAGE)


def item_size(item: Item) -> int:
    """Size of an item: attribute names (UTF-8 bytes) plus value sizes."""
    size = 0
    for name, value in item.items():
        size += _text_size(name) + attribute_value_size(value)
    return size


def check_item_size(item: Item, *, updating: bool = False) -> int:
    """Reject an item over DynamoDB's 400 KB limit; return its size.

    UpdateItem words the same failure differently (``updating=True``).
    """
    size = item_size(item)
    if size > limits.ITEM_SIZE_BYTES_MAX:
        raise ValidationException(UPDATED_ITEM_TOO_LARGE_MESSAGE if updating else ITEM_TOO_LARGE_MESSAGE)
    return size


# --- keys ------------------------------------------------------------------------


def _check_key_value(name: str, key_type: str, inner: Any, is_partition: bool) -> None:
    """Empty and oversized key values; numbers have no size limit of their own."""
    if key_type == "N":
        return
    if not inner:
        raise ValidationException(empty_key_message(name, key_type))
    size = _text_size(inner) if key_type == "S" else binary_length(inner)
    if is_partition:
        if size > limits.PARTITION_KEY_BYTES_MAX:
            raise ValidationException(HASH_KEY_TOO_LARGE_MESSAGE)
    elif size > limits.SORT_KEY_BYTES_MAX:
        raise ValidationException(RANGE_KEY_TOO_LARGE_MESSAGE)


def extract_key(item: Item, key_schema: KeySchema) -> Item:
    """The key attributes of a full, validated item (PutItem's checks)."""
    key: Item = {}
    is_partition = True
    for name, key_type in key_schema:
        value = item.get(name)
        if value is None:
            raise ValidationException(_INVALID + f"Missing the key {name} in the item")
        inner = value.get(key_type)
        if inner is None:
            raise ValidationException(
                _INVALID + f"Type mismatch for key {name} expected: {key_type} actual: {attribute_type(value)}"
            )
        _check_key_value(name, key_type, inner, is_partition)
        key[name] = value
        is_partition = False
    return key


def validate_key(key: Item, key_schema: KeySchema) -> Item:
    """Check a request's ``Key`` against the table's schema (Get/Delete/Update).

    Returns the key in schema order, numbers normalised.
    """
    if len(key) != len(key_schema):
        raise ValidationException(KEY_SCHEMA_MISMATCH_MESSAGE)
    out: Item = {}
    is_partition = True
    for name, key_type in key_schema:
        value = key.get(name)
        inner = value.get(key_type) if type(value) is dict and len(value) == 1 else None
        if inner is None:
            raise ValidationException(KEY_SCHEMA_MISMATCH_MESSAGE)
        if key_type == "N":
            normal = normalize_number(inner)
            if normal is not inner:
                value = {"N": normal}
        _check_key_value(name, key_type, inner, is_partition)
        out[name] = value
        is_partition = False
    return out
