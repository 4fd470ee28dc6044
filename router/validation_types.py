"""Step 1 of request validation: JSON types, as DynamoDB's deserializer checks them.

A string where a map is expected, a number where a string is, malformed
base64: the first mismatch in document order is a ``SerializationException``
with DynamoDB's (Java deserializer's) wording.  Inside items and keys only
the JSON types of ``AttributeValue`` members are checked here; empty sets,
numbers and the like are ``meridian.model.values``'s business.  The body is
left as DynamoDB reads it: null structure members removed, integer members
rounded down.  ``compile_types`` turns one schema node (``router/schema``)
into a checking closure; ``router/validation.py`` runs it first.
"""

from __future__ import annotations

import math
import re
from typing import Any, Callable

from meridian.model import limits
from meridian.model.errors import SerializationException

JAVA_PACKAGE = "com.amazonaws.dynamodb.v20120810."

# --- SerializationException wording -------------------------------------------
# DynamoDB's JSON deserializer names the token it met (Jackson-style) and the
# Java type it wanted.  Recorded by dynalite's test/helpers.js against live
# DynamoDB.
_START_OF_MAP = "Start of structure or map found where not expected"
_FIELD_TYPE = "Unexpected field type"
_VALUE_TYPE = "Unexpected value type in payload"
_CAST = ("class sun.reflect.generics.reflectiveObjects.ParameterizedTypeImpl cannot be cast to class "
         "java.lang.Class (sun.reflect.generics.reflectiveObjects.ParameterizedTypeImpl and java.lang.Class "
         "are in module java.base of loader 'bootstrap')")
_NOT_BASE64 = "only base-64-encoded strings are convertible to bytes"
_BAD_LAST_BASE64 = "Invalid last non-pad Base64 character dectected"  # sic
_BASE64_ALPHABET = re.compile(r"[A-Za-z0-9+/=]*")
_BASE64_SHAPE = re.compile(r"[A-Za-z0-9+/]*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
_BASE64_VALUES = {c: i for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")}

_JAVA_SCALARS = {
    "string": "java.lang.String",
    "boolean": "java.lang.Boolean",
    "integer": "java.lang.Integer",
    "long": "java.lang.Long",
    "double": "java.lang.Double",
    "blob": "java.nio.ByteBuffer",
    "timestamp": "java.util.Date",
}


def _token(value: Any) -> str:
    """The JSON token DynamoDB names when a scalar has the wrong type."""
    if value is True:
        return "TRUE_VALUE"
    if value is False:
        return "FALSE_VALUE"
    if type(value) is int:
        return "NUMBER_VALUE"
    if type(value) is float:
        return "DECIMAL_VALUE"
    return "STRING_VALUE"


def _scalar_error(value: Any, java_class: str) -> SerializationException:
    """A string, boolean or number member holding the wrong JSON type."""
    if type(value) is dict:
        return SerializationException(_START_OF_MAP)
    if type(value) is list:
        return SerializationException(f"Unrecognized collection type class {java_class}")
    return SerializationException(f"{_token(value)} cannot be converted to {java_class.rsplit('.', 1)[1]}")


# Java's int and long, which DynamoDB reads integer members into.
_JAVA_RANGES = {"integer": (limits.JAVA_INT_MIN, limits.JAVA_INT_MAX),
                "long": (limits.JAVA_LONG_MIN, limits.JAVA_LONG_MAX)}


def _out_of_range(value: Any, kind: str, low: int, high: int) -> SerializationException:
    """An integer member beyond Java's int or long.  The wording is a guess
    (Jackson's overflow message): no capture of DynamoDB's answer is on record."""
    java = "int" if kind == "integer" else "long"
    return SerializationException(f"Numeric value ({value}) out of range of {java} ({low} - {high})")


def _string_error(value: Any) -> SerializationException:
    return _scalar_error(value, "java.lang.String")


def _boolean_error(value: Any) -> SerializationException:
    if type(value) is str:
        return SerializationException("Unexpected token received from parser")
    return _scalar_error(value, "java.lang.Boolean")


def _blob_error(value: Any) -> SerializationException | None:
    """None when ``value`` is a well-formed base64 string."""
    if type(value) is str:
        if _BASE64_SHAPE.fullmatch(value) is not None and len(value) % 4 == 0:
            return None if _base64_tail_is_clean(value) else SerializationException(_BAD_LAST_BASE64)
        if len(value) % 4:
            return SerializationException(f"Base64 encoded length is expected a multiple of 4 bytes but found: {len(value)}")
        if _BASE64_ALPHABET.fullmatch(value) is None:
            char = next(c for c in value if c not in _BASE64_VALUES and c != "=")
            return SerializationException(f"Invalid Base64 character: '{char}'")
        return SerializationException(_BAD_LAST_BASE64)  # padding in the middle
    if type(value) is dict:
        return SerializationException(_START_OF_MAP)
    if type(value) is list:
        return SerializationException("Unrecognized collection type class java.nio.ByteBuffer")
    return SerializationException(_NOT_BASE64)


def _base64_tail_is_clean(value: str) -> bool:
    """The last data character of padded base64 must not carry stray bits."""
    if value.endswith("=="):
        return _BASE64_VALUES[value[-3]] & 0x0F == 0
    if value.endswith("="):
        return _BASE64_VALUES[value[-2]] & 0x03 == 0
    return True


def container_error(value: Any, expected: str, in_collection: bool, java_class: str) -> SerializationException:
    """A list, map or structure member holding the wrong JSON type.

    ``in_collection``: the member is an element of a list or a map value
    (DynamoDB words those errors differently from a structure's fields).
    ``java_class``: a map's value type, a structure's class.
    """
    if expected == "list":
        if type(value) is dict:
            return SerializationException(_START_OF_MAP)
        return SerializationException(_CAST if in_collection else _FIELD_TYPE)
    if expected == "map":
        if type(value) is list:
            return SerializationException(f"Unrecognized collection type java.util.Map<java.lang.String, {java_class}>")
        return SerializationException(_CAST if in_collection else _FIELD_TYPE)
    if type(value) is list:
        return SerializationException(f"Unrecognized collection type class {java_class}")
    return SerializationException(_VALUE_TYPE if in_collection else _FIELD_TYPE)


def _java_type(node: dict[str, Any]) -> str:
    kind = node["type"]
    if kind == "structure":
        return JAVA_PACKAGE + node["class"]
    if kind == "attribute_value":
        return JAVA_PACKAGE + "AttributeValue"
    if kind == "list":
        return f"java.util.List<{_java_type(node['member'])}>"
    if kind == "map":
        return f"java.util.Map<java.lang.String, {_java_type(node['value'])}>"
    return _JAVA_SCALARS[kind]


# --- step 1: JSON types --------------------------------------------------------
TypeCheck = Callable[[Any], None]

# A JSON null where a map's value is a structure, list or map (``Expected: {"a":
# null}``, ``RequestItems: {"T": null}``) is read as that container, empty, so
# the constraint and rule steps word it as a missing member or an empty list
# rather than the action meeting a None.  A guess: no capture of DynamoDB's
# answer to these inputs is on record (its Java deserializer keeps the null).
_EMPTY_CONTAINERS: dict[str, Callable[[], Any]] = {"structure": dict, "list": list, "map": dict}

# AttributeValue members whose JSON type is one Python type: the hot path.
_SCALAR_MEMBERS = {"S": str, "N": str, "BOOL": bool, "NULL": bool}


def _check_attribute_value(av: Any, in_collection: bool) -> None:
    """JSON types of one AttributeValue, recursively (depth is bounded by the JSON parser's limit)."""
    if type(av) is not dict:
        raise container_error(av, "structure", in_collection, JAVA_PACKAGE + "AttributeValue")
    has_null = False
    for kind, x in av.items():
        if _SCALAR_MEMBERS.get(kind) is not type(x):
            has_null |= _check_attribute_member(kind, x)
    if has_null:
        _drop_nulls(av)


def _drop_nulls(structure: dict[str, Any]) -> None:
    """DynamoDB reads a structure's null member as an absent one."""
    for name in [name for name, x in structure.items() if x is None]:
        del structure[name]


def _check_attribute_member(kind: str, x: Any) -> bool:
    """One AttributeValue member that is not a correctly typed S, N, BOOL or NULL; True if it is null."""
    if x is None:
        return True
    if kind == "S" or kind == "N":
        raise _string_error(x)
    if kind == "BOOL" or kind == "NULL":
        raise _boolean_error(x)
    if kind == "M":
        if type(x) is not dict:
            raise container_error(x, "map", False, JAVA_PACKAGE + "AttributeValue")
        for y in x.values():
            if y is not None:
                _check_attribute_value(y, True)
    elif kind == "L":
        if type(x) is not list:
            raise container_error(x, "list", False, "")
        for y in x:
            if y is not None:
                _check_attribute_value(y, True)
    elif kind == "B":
        err = _blob_error(x)
        if err is not None:
            raise err
    elif kind == "SS" or kind == "NS" or kind == "BS":
        if type(x) is not list:
            raise container_error(x, "list", False, "")
        for y in x:
            if y is None:
                continue
            if kind == "BS":
                err = _blob_error(y)
                if err is not None:
                    raise err
            elif type(y) is not str:
                raise _string_error(y)
    return False


def compile_types(node: dict[str, Any], in_collection: bool) -> TypeCheck:
    """A function raising SerializationException for a value of the wrong JSON type."""
    kind = node["type"]
    if kind == "string":
        def check_string(v: Any) -> None:
            if type(v) is not str:
                raise _string_error(v)
        return check_string
    if kind == "boolean":
        def check_boolean(v: Any) -> None:
            if type(v) is not bool:
                raise _boolean_error(v)
        return check_boolean
    if kind in ("integer", "long"):
        java_class = _JAVA_SCALARS[kind]
        low, high = _JAVA_RANGES[kind]

        def check_integral(v: Any) -> None:
            t = type(v)
            if t is int:
                if low <= v <= high:
                    return
            elif t is float:
                if low <= v < high + 1:  # the fraction is read away later
                    return
            else:
                raise _scalar_error(v, java_class)
            raise _out_of_range(v, kind, low, high)
        return check_integral
    if kind in ("double", "timestamp"):
        java_class = _JAVA_SCALARS[kind]

        def check_number(v: Any) -> None:
            t = type(v)
            if t is not int and t is not float:
                raise _scalar_error(v, java_class)
        return check_number
    if kind == "blob":
        def check_blob(v: Any) -> None:
            err = _blob_error(v)
            if err is not None:
                raise err
        return check_blob
    if kind == "attribute_value":
        def check_attribute_value(v: Any) -> None:
            _check_attribute_value(v, in_collection)
        return check_attribute_value
    if kind == "list":
        element = compile_types(node["member"], True)

        def check_list(v: Any) -> None:
            if type(v) is not list:
                raise container_error(v, "list", in_collection, "")
            for x in v:
                if x is not None:
                    element(x)
        return check_list
    if kind == "map":
        value_node = node["value"]
        java_value = _java_type(value_node)
        if value_node["type"] == "attribute_value":
            def check_item(v: Any) -> None:
                if type(v) is not dict:
                    raise container_error(v, "map", in_collection, java_value)
                for x in v.values():  # _check_attribute_value, inlined for items and keys
                    if type(x) is dict:
                        has_null = False
                        for member, y in x.items():
                            if _SCALAR_MEMBERS.get(member) is not type(y):
                                has_null |= _check_attribute_member(member, y)
                        if has_null:
                            _drop_nulls(x)
                    elif x is not None:
                        _check_attribute_value(x, True)
            return check_item
        value = compile_types(value_node, True)
        empty = _EMPTY_CONTAINERS.get(value_node["type"])

        def check_map(v: Any) -> None:
            if type(v) is not dict:
                raise container_error(v, "map", in_collection, java_value)
            has_null = False
            for x in v.values():
                if x is not None:
                    value(x)
                else:
                    has_null = True
            if has_null and empty is not None:
                for key in [key for key, x in v.items() if x is None]:
                    v[key] = empty()
        return check_map
    if kind == "structure":
        members = {name: compile_types(child, False) for name, child in node["members"]}
        java_class = JAVA_PACKAGE + node["class"]
        integral = frozenset(name for name, child in node["members"] if child["type"] in ("integer", "long"))

        def check_structure(v: Any) -> None:
            if type(v) is not dict:
                raise container_error(v, "structure", in_collection, java_class)
            has_null = False
            for name, x in v.items():
                if x is None:
                    has_null = True
                    continue
                check = members.get(name)  # unknown members are ignored, as DynamoDB does
                if check is not None:
                    check(x)
                    if type(x) is float and name in integral:
                        v[name] = math.floor(x)  # DynamoDB reads an integer member's fraction away
            if has_null:
                _drop_nulls(v)
        return check_structure
    raise ValueError(f"unknown schema type {kind!r}")
