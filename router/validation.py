"""Request shape validation, in DynamoDB's order.

DynamoDB checks a request in three steps, and so does ``validate_request``:

1. **JSON types** (``SerializationException``): a string where a map is
   expected, a number where a string is, malformed base64.  The first
   mismatch in document order is reported, with DynamoDB's (Java
   deserializer's) wording.  Inside items and keys only the JSON types of
   ``AttributeValue`` members are checked here; empty sets, numbers and the
   like are ``meridian.model.values``'s business.  The body is left as
   DynamoDB reads it: null structure members removed, integer members
   rounded down.
2. **Constraints** (``ValidationException``): required members, lengths,
   ranges, enums, patterns, map keys and values, collected in DynamoDB's
   member order and reported together, at most ten of them:
   ``2 validation errors detected: Value 'x' at 'tableName' failed to
   satisfy constraint: ...; Value null at 'key' failed to satisfy ...``.
3. **Request-only rules** of an action that DynamoDB runs with its shape
   checks and before anything that needs the attribute values, expressions
   or a table (CreateTable's key schema rules, UpdateTable's "At least one
   of ...", the tag actions' ARN and tag checks, ...).  The item actions'
   rules start with expression and attribute-value checks, so they live with
   those actions.

What each request may hold is data, ``router/schema/dynamodb.json``, made by
``router/schema/generate.py`` from botocore's model and DynamoDB's observed
behaviour.  It is compiled once, at import, into one closure tree per action
so that checking a typical GetItem costs a few microseconds.
"""

from __future__ import annotations

import json
import math
import re
from importlib import resources
from typing import Any, Iterable, Callable

from meridian.model import limits
from meridian.model.errors import SerializationException, ValidationException

__all__ = ["validate_request", "VALIDATED_ACTIONS"]

_MAX_ERRORS = 10  # DynamoDB lists at most ten constraint failures
_PARAM = "One or more parameter values were invalid: "
_JAVA_PACKAGE = "com.amazonaws.dynamodb.v20120810."

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


def _container_error(value: Any, expected: str, in_collection: bool, java_class: str) -> SerializationException:
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
        return _JAVA_PACKAGE + node["class"]
    if kind == "attribute_value":
        return _JAVA_PACKAGE + "AttributeValue"
    if kind == "list":
        return f"java.util.List<{_java_type(node['member'])}>"
    if kind == "map":
        return f"java.util.Map<java.lang.String, {_java_type(node['value'])}>"
    return _JAVA_SCALARS[kind]


# --- step 1: JSON types --------------------------------------------------------
TypeCheck = Callable[[Any], None]

# AttributeValue members whose JSON type is one Python type: the hot path.
_SCALAR_MEMBERS = {"S": str, "N": str, "BOOL": bool, "NULL": bool}


def _check_attribute_value(av: Any, in_collection: bool) -> None:
    """JSON types of one AttributeValue, recursively (depth is bounded by the JSON parser's limit)."""
    if type(av) is not dict:
        raise _container_error(av, "structure", in_collection, _JAVA_PACKAGE + "AttributeValue")
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
            raise _container_error(x, "map", False, _JAVA_PACKAGE + "AttributeValue")
        for y in x.values():
            if y is not None:
                _check_attribute_value(y, True)
    elif kind == "L":
        if type(x) is not list:
            raise _container_error(x, "list", False, "")
        for y in x:
            if y is not None:
                _check_attribute_value(y, True)
    elif kind == "B":
        err = _blob_error(x)
        if err is not None:
            raise err
    elif kind == "SS" or kind == "NS" or kind == "BS":
        if type(x) is not list:
            raise _container_error(x, "list", False, "")
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


def _compile_types(node: dict[str, Any], in_collection: bool) -> TypeCheck:
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
    if kind in ("integer", "long", "double", "timestamp"):
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
        element = _compile_types(node["member"], True)

        def check_list(v: Any) -> None:
            if type(v) is not list:
                raise _container_error(v, "list", in_collection, "")
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
                    raise _container_error(v, "map", in_collection, java_value)
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
        value = _compile_types(value_node, True)

        def check_map(v: Any) -> None:
            if type(v) is not dict:
                raise _container_error(v, "map", in_collection, java_value)
            for x in v.values():
                if x is not None:
                    value(x)
        return check_map
    if kind == "structure":
        members = {name: _compile_types(child, False) for name, child in node["members"]}
        java_class = _JAVA_PACKAGE + node["class"]
        integral = frozenset(name for name, child in node["members"] if child["type"] in ("integer", "long"))

        def check_structure(v: Any) -> None:
            if type(v) is not dict:
                raise _container_error(v, "structure", in_collection, java_class)
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


# --- step 2: constraints -------------------------------------------------------
class _Enough(Exception):
    """Ten constraint failures collected: DynamoDB reports no more."""


Errors = list[str]
ConstraintCheck = Callable[[Any, str, Errors], None]


def _fail(errors: Errors, value: Any, path: str, constraint: str) -> None:
    rendered = "null" if value is None else f"'{_render(value)}'"
    errors.append(f"Value {rendered} at '{path}' failed to satisfy constraint: {constraint}")
    if len(errors) >= _MAX_ERRORS:
        raise _Enough


def _render(value: Any) -> str:
    """A value as DynamoDB (Java) prints it in a constraint message."""
    t = type(value)
    if t is str:
        return value
    if t is bool:
        return "true" if value else "false"
    if t is list:
        return "[" + ", ".join(_render(x) for x in value) + "]"
    if t is dict:
        return "{" + ", ".join(f"{k}={_render(x)}" for k, x in value.items()) + "}"
    if value is None:
        return "null"
    return str(value)


def _java_length(value: Any) -> int:
    """Java counts string length in UTF-16 code units."""
    if type(value) is str and not value.isascii():
        return len(value.encode("utf-16-le")) // 2
    return len(value)


def _lower_first(name: str) -> str:
    return name[:1].lower() + name[1:]


def _constraint_message(check: list[Any]) -> str:
    kind = check[0]
    if kind == "pattern":
        return f"Member must satisfy regular expression pattern: {check[1]}"
    if kind == "minLength":
        return f"Member must have length greater than or equal to {check[1]}"
    if kind == "maxLength":
        return f"Member must have length less than or equal to {check[1]}"
    if kind == "min":
        return f"Member must have value greater than or equal to {check[1]}"
    if kind == "max":
        return f"Member must have value less than or equal to {check[1]}"
    if kind == "enum":
        return f"Member must satisfy enum value set: [{', '.join(check[1])}]"
    raise ValueError(f"no message for check {kind!r}")


def _compile_predicate(check: list[Any]) -> Callable[[Any], bool]:
    """True when a (non-null) value satisfies one check."""
    kind, arg = check[0], check[1]
    if kind == "pattern":
        match = re.compile(check[2] if len(check) > 2 else check[1]).fullmatch  # [2]: a Python rewrite
        return lambda v: match(v) is not None
    if kind == "minLength":
        return lambda v: _java_length(v) >= arg
    if kind == "maxLength":
        return lambda v: _java_length(v) <= arg
    if kind == "min":
        return lambda v: v >= arg
    if kind == "max":
        return lambda v: v <= arg
    if kind == "enum":
        allowed = frozenset(arg)
        return lambda v: v in allowed
    raise ValueError(f"unknown check {kind!r}")


def _compile_entry_checks(kind: str, sub_checks: list[list[Any]]) -> ConstraintCheck:
    """A map's "keys"/"values" checks: one failure per offending entry, naming every sub-constraint."""
    predicates = [_compile_predicate(c) for c in sub_checks]
    what = "Map keys" if kind == "keys" else "Map value"
    constraint = f"{what} must satisfy constraint: [{', '.join(_constraint_message(c) for c in sub_checks)}]"

    def check_entries(v: Any, path: str, errors: Errors) -> None:
        for entry in (v if kind == "keys" else v.values()):
            if entry is not None and not all(p(entry) for p in predicates):
                _fail(errors, v, path, constraint)
    return check_entries


def _compile_own_checks(checks: list[list[Any]]) -> ConstraintCheck | None:
    """The checks of one node, except the top-level-only required/tableName."""
    steps: list[ConstraintCheck] = []
    for check in checks:
        kind = check[0]
        if kind in ("required", "tableName"):
            continue
        if kind == "notNull":
            def not_null(v: Any, path: str, errors: Errors) -> None:
                if v is None:
                    _fail(errors, None, path, "Member must not be null")
            steps.append(not_null)
        elif kind in ("keys", "values"):
            entries = _compile_entry_checks(kind, check[1])

            def entries_if_present(v: Any, path: str, errors: Errors, entries: ConstraintCheck = entries) -> None:
                if v is not None:
                    entries(v, path, errors)
            steps.append(entries_if_present)
        else:
            predicate = _compile_predicate(check)
            message = _constraint_message(check)

            def constraint(v: Any, path: str, errors: Errors, ok: Callable[[Any], bool] = predicate,
                           message: str = message) -> None:
                if v is not None and not ok(v):
                    _fail(errors, v, path, message)
            steps.append(constraint)
    if not steps:
        return None
    if len(steps) == 1:
        return steps[0]

    def all_steps(v: Any, path: str, errors: Errors) -> None:
        for step in steps:
            step(v, path, errors)
    return all_steps


def _compile_constraints(node: dict[str, Any]) -> ConstraintCheck | None:
    """A function appending this subtree's constraint failures; None when it has none."""
    own = _compile_own_checks(node.get("checks", []))
    kind = node["type"]
    children: ConstraintCheck | None = None
    if kind == "structure":
        members = [(name, _lower_first(name), _compile_constraints(child)) for name, child in node["members"]]
        members = [m for m in members if m[2] is not None]
        if members:
            def structure_members(v: Any, path: str, errors: Errors) -> None:
                for name, lower, check in members:
                    check(v.get(name), f"{path}.{lower}", errors)
            children = structure_members
    elif kind == "list":
        element = _compile_constraints(node["member"])
        if element is not None:
            def list_elements(v: Any, path: str, errors: Errors) -> None:
                for i, x in enumerate(v, 1):
                    element(x, f"{path}.{i}.member", errors)
            children = list_elements
    elif kind == "map":
        value = _compile_constraints(node["value"])
        if value is not None:
            def map_values(v: Any, path: str, errors: Errors) -> None:
                for key in reversed(list(v)):  # DynamoDB walks map entries last to first
                    value(v[key], f"{path}.{key}.member", errors)
            children = map_values
    if children is None:
        return own
    if own is None:
        def only_children(v: Any, path: str, errors: Errors) -> None:
            if v is not None:
                children(v, path, errors)
        return only_children

    def own_then_children(v: Any, path: str, errors: Errors) -> None:
        own(v, path, errors)
        if v is not None:
            children(v, path, errors)
    return own_then_children


FastCheck = Callable[[Any], bool]


def _compile_fast(node: dict[str, Any]) -> FastCheck | None:
    """True when the subtree breaks no constraint: the common case, with no paths or messages built.

    Mirrors ``_compile_constraints``, which runs only when this says False.
    """
    checks = [c for c in node.get("checks", ()) if c[0] not in ("required", "tableName")]
    not_null = any(c[0] == "notNull" for c in checks)
    predicates: list[Callable[[Any], bool]] = []
    for check in checks:
        if check[0] in ("keys", "values"):
            entry_predicates = [_compile_predicate(c) for c in check[1]]
            keys = check[0] == "keys"

            def entries_ok(v: Any, preds: list[Callable[[Any], bool]] = entry_predicates, keys: bool = keys) -> bool:
                for entry in (v if keys else v.values()):
                    if entry is not None:
                        for p in preds:
                            if not p(entry):
                                return False
                return True
            predicates.append(entries_ok)
        elif check[0] != "notNull":
            predicates.append(_compile_predicate(check))

    kind = node["type"]
    children: FastCheck | None = None
    if kind == "structure":
        members = [(name, f) for name, child in node["members"] if (f := _compile_fast(child)) is not None]
        if members:
            def members_ok(v: Any) -> bool:
                for name, ok in members:
                    if not ok(v.get(name)):
                        return False
                return True
            children = members_ok
    elif kind in ("list", "map"):
        element = _compile_fast(node["member"] if kind == "list" else node["value"])
        if element is not None:
            def elements_ok(v: Any, is_list: bool = kind == "list") -> bool:
                for x in (v if is_list else v.values()):
                    if not element(x):
                        return False
                return True
            children = elements_ok
    if not not_null and not predicates and children is None:
        return None

    def ok(v: Any) -> bool:
        if v is None:
            return not not_null
        for predicate in predicates:
            if not predicate(v):
                return False
        return children is None or children(v)
    return ok


# --- one action's validator ------------------------------------------------------
Custom = Callable[[dict[str, Any]], None]


def _compile_action(node: dict[str, Any], custom: Custom | None) -> Callable[[Any], None]:
    types = _compile_types(node, False)
    fast = _compile_fast(node)
    input_class = _JAVA_PACKAGE + node["class"]
    first_pass: list[tuple[str, bool, bool]] = []  # (member, required, tableName)
    members: list[tuple[str, str, ConstraintCheck]] = []
    for name, child in node["members"]:
        kinds = {c[0] for c in child.get("checks", ())}
        if "required" in kinds or "tableName" in kinds:
            first_pass.append((name, "required" in kinds, "tableName" in kinds))
        check = _compile_constraints(child)
        if check is not None:
            members.append((name, _lower_first(name), check))

    def validate(body: Any) -> None:
        if type(body) is not dict:
            raise _container_error(body, "structure", True, input_class)
        types(body)
        for name, required, table_name in first_pass:
            v = body.get(name)
            if v is None:
                if required:
                    raise ValidationException(f"The parameter '{name}' is required but was not present in the request")
            elif table_name and not limits.TABLE_NAME_LENGTH_MIN <= _java_length(v) <= limits.TABLE_NAME_LENGTH_MAX:
                raise ValidationException(
                    f"{name} must be at least {limits.TABLE_NAME_LENGTH_MIN} characters long "
                    f"and at most {limits.TABLE_NAME_LENGTH_MAX} characters long"
                )
        if fast is not None and not fast(body):
            errors: Errors = []
            try:
                for name, lower, check in members:
                    check(body.get(name), lower, errors)
            except _Enough:
                pass
            if errors:
                n = len(errors)
                raise ValidationException(f"{n} validation error{'s' if n > 1 else ''} detected: " + "; ".join(errors))
        if custom is not None:
            custom(body)
    return validate


# --- step 3: request-only rules ----------------------------------------------------
# Each runs after the shape checks passed, so required members are present and
# typed.  Order within each follows dynalite's validations/<action>.js
# ``custom`` (recorded against live DynamoDB); additions from later captures of
# live replies are marked.

def _elements(values: list[Any]) -> list[dict[str, Any]]:
    """A list of structures with JSON nulls read as empty structures, so no rule trips over them."""
    return [v if v is not None else {} for v in values]


def _names(elements: list[dict[str, Any]]) -> list[str]:
    return [_render(e.get("AttributeName")) for e in elements]


def _check_throughput_bounds(throughput: dict[str, Any]) -> None:
    for member in ("ReadCapacityUnits", "WriteCapacityUnits"):
        units = throughput.get(member)
        if units is not None and units > limits.CAPACITY_UNITS_VALUE_MAX:
            raise ValidationException(f"Given value {units} for {member} is out of bounds")


def check_key_schema(
    key_schema: list[dict[str, Any]], definitions: list[str], known: Iterable[str] | None = None
) -> None:
    """The rules a table's and every secondary index's key schema obey, in DynamoDB's order.

    ``definitions``: the request's attribute definitions (named in the
    message); ``known``: every attribute a key may use, when more than those
    (UpdateTable: the table's own definitions too).
    """
    keys = _names(key_schema)
    usable = set(definitions if known is None else known)
    if any(k not in usable for k in keys):
        raise ValidationException(
            f"{_PARAM}Some index key attributes are not defined in AttributeDefinitions. "
            f"Keys: [{', '.join(keys)}], AttributeDefinitions: [{', '.join(definitions)}]"
        )
    if len(keys) == 2 and keys[0] == keys[1]:
        raise ValidationException("Both the Hash Key and the Range Key element in the KeySchema have the same name")
    if key_schema[0].get("KeyType") != "HASH":
        raise ValidationException("Invalid KeySchema: The first KeySchemaElement is not a HASH key type")
    if len(key_schema) == 2 and key_schema[1].get("KeyType") != "RANGE":
        raise ValidationException("Invalid KeySchema: The second KeySchemaElement is not a RANGE key type")


def _check_projection(projection: dict[str, Any]) -> None:
    projection_type = projection.get("ProjectionType")
    if projection_type is None:
        raise ValidationException(f"{_PARAM}Unknown ProjectionType: null")
    if projection.get("NonKeyAttributes") is not None and projection_type != "INCLUDE":
        raise ValidationException(f"{_PARAM}ProjectionType is {projection_type}, but NonKeyAttributes is specified")
    if projection.get("NonKeyAttributes") is None and projection_type == "INCLUDE":
        # 2026 capture of live CreateTable replies.
        raise ValidationException(f"{_PARAM}ProjectionType is INCLUDE, but NonKeyAttributes is not specified")


def _check_tags(tags: list[dict[str, Any]]) -> None:
    for tag in tags:
        if tag.get("Key") is None:
            raise ValidationException("The Tag Key provided is invalid, Key: null")
        if tag.get("Value") is None:
            raise ValidationException("The Tag Value provided is invalid, Value: null")


def _create_table(body: dict[str, Any]) -> None:
    billing = body.get("BillingMode")
    throughput = body.get("ProvisionedThroughput")
    if billing == "PAY_PER_REQUEST":
        if throughput is not None:
            raise ValidationException(
                f"{_PARAM}Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST"
            )
    else:
        if throughput is None:
            raise ValidationException(
                f"{_PARAM}ReadCapacityUnits and WriteCapacityUnits must both be specified when BillingMode is PROVISIONED"
            )
        _check_throughput_bounds(throughput)

    definitions = _names(_elements(body["AttributeDefinitions"]))
    key_schema = _elements(body["KeySchema"])
    keys = _names(key_schema)
    if len(keys) > len(definitions):
        raise ValidationException("Invalid KeySchema: Some index key attribute have no definition")
    check_key_schema(key_schema, definitions)

    local_indexes = body.get("LocalSecondaryIndexes")
    global_indexes = body.get("GlobalSecondaryIndexes")
    if local_indexes is None and global_indexes is None and len(keys) != len(definitions):
        raise ValidationException(
            f"{_PARAM}Number of attributes in KeySchema does not exactly match number of attributes defined in "
            "AttributeDefinitions"
        )

    index_names: set[str] = set()
    used = list(keys)
    if local_indexes is not None:
        if not local_indexes:
            raise ValidationException(f"{_PARAM}List of LocalSecondaryIndexes is empty")
        if len(key_schema) != 2:
            raise ValidationException(
                f"{_PARAM}Table KeySchema does not have a range key, which is required when specifying a LocalSecondaryIndex"
            )
        for index in _elements(local_indexes):
            if not index:
                continue
            name = index["IndexName"]
            index_keys = _names(_elements(index["KeySchema"]))
            check_key_schema(_elements(index["KeySchema"]), definitions)
            if len(index_keys) != 2:
                raise ValidationException(f"{_PARAM}Index KeySchema does not have a range key for index: {name}")
            if index_keys[0] != keys[0]:
                raise ValidationException(
                    f"{_PARAM}Index KeySchema does not have the same leading hash key as table KeySchema for index: "
                    f"{name}. index hash key: {index_keys[0]}, table hash key: {keys[0]}"
                )
            _check_projection(index["Projection"])
            if name in index_names:
                raise ValidationException(f"{_PARAM}Duplicate index name: {name}")
            index_names.add(name)
            used += [k for k in index_keys if k not in used]
        if len(local_indexes) > limits.LOCAL_SECONDARY_INDEXES_MAX:
            raise ValidationException(
                f"{_PARAM}Number of LocalSecondaryIndexes exceeds per-table limit of {limits.LOCAL_SECONDARY_INDEXES_MAX}"
            )

    if global_indexes is not None:
        if not global_indexes:
            raise ValidationException(f"{_PARAM}List of GlobalSecondaryIndexes is empty")
        for index in _elements(global_indexes):
            if not index:
                continue
            name = index["IndexName"]
            index_keys = _names(_elements(index["KeySchema"]))
            check_key_schema(_elements(index["KeySchema"]), definitions)
            _check_projection(index["Projection"])
            if billing == "PAY_PER_REQUEST" and index.get("ProvisionedThroughput") is not None:
                raise ValidationException(
                    f"{_PARAM}ProvisionedThroughput should not be specified for index: {name} when BillingMode is "
                    "PAY_PER_REQUEST"
                )
            if billing != "PAY_PER_REQUEST" and index.get("ProvisionedThroughput") is None:
                # 2026 capture of live CreateTable replies.
                raise ValidationException(f"{_PARAM}ProvisionedThroughput is not specified for index: {name}")
            if name in index_names:
                raise ValidationException(f"{_PARAM}Duplicate index name: {name}")
            index_names.add(name)
            used += [k for k in index_keys if k not in used]
        if len(global_indexes) > limits.GLOBAL_SECONDARY_INDEXES_MAX:
            raise ValidationException(
                f"{_PARAM}GlobalSecondaryIndex count exceeds the per-table limit of {limits.GLOBAL_SECONDARY_INDEXES_MAX}"
            )

    if (local_indexes or global_indexes) and any(d not in used for d in definitions):
        # 2026 capture of live CreateTable replies: with indexes, the count
        # rule above becomes this one.
        raise ValidationException(
            f"{_PARAM}Some AttributeDefinitions are not used. AttributeDefinitions: [{', '.join(definitions)}], "
            f"keys used: [{', '.join(used)}]"
        )
    _check_tags(_elements(body.get("Tags") or []))


# UpdateTable's "nothing to do" message names every member that changes a
# table; MultiRegionConsistency, which changes nothing alone, is left out when
# the request has it (2026 capture of live replies).
_UPDATE_TABLE_CHANGES = ("ProvisionedThroughput", "BillingMode", "UpdateStreamEnabled", "GlobalSecondaryIndexUpdates",
                         "SSESpecification", "ReplicaUpdates", "MultiAccountReplicaReady", "ReplicaTransitRoleArn",
                         "MultiRegionConsistency", "DeletionProtectionEnabled", "OnDemandThroughput",
                         "WarmThroughput", "TableClass")
_UPDATE_TABLE_CHANGING_MEMBERS = ("ProvisionedThroughput", "BillingMode", "StreamSpecification", "SSESpecification",
                                  "ReplicaUpdates", "DeletionProtectionEnabled", "OnDemandThroughput",
                                  "WarmThroughput", "TableClass", "GlobalTableSettingsReplicationMode",
                                  "DisassociationProtectionEnabled", "VectorIndexUpdates")


def _update_table(body: dict[str, Any]) -> None:
    if not body.get("GlobalSecondaryIndexUpdates") and all(body.get(m) is None for m in _UPDATE_TABLE_CHANGING_MEMBERS):
        names = [n for n in _UPDATE_TABLE_CHANGES if n != "MultiRegionConsistency" or body.get(n) is None]
        raise ValidationException(f"At least one of {', '.join(names[:-1])} or {names[-1]} is required")
    throughput = body.get("ProvisionedThroughput")
    if throughput is not None:
        _check_throughput_bounds(throughput)
    index_names: set[str] = set()
    for update in body.get("GlobalSecondaryIndexUpdates") or ():
        if update is None:
            continue
        actions = [update[a] for a in ("Update", "Create", "Delete") if update.get(a) is not None]
        if not actions:
            raise ValidationException(
                f"{_PARAM}One of GlobalSecondaryIndexUpdate.Update, GlobalSecondaryIndexUpdate.Create, "
                "GlobalSecondaryIndexUpdate.Delete must not be null"
            )
        if len(actions) > 1:
            # 2026 capture of live UpdateTable replies.
            raise ValidationException(
                f"{_PARAM}Only one global secondary index action is allowed per GlobalSecondaryIndexUpdate object"
            )
        name = actions[0]["IndexName"]
        if name in index_names:
            raise ValidationException(
                f"{_PARAM}Only one global secondary index update per index is allowed simultaneously. Index: {name}"
            )
        index_names.add(name)


def _batch_write_item(body: dict[str, Any]) -> None:
    # The first of BatchWriteItem's rules, checked for every table before any
    # attribute value: a request naming neither PutRequest nor DeleteRequest.
    for requests in body["RequestItems"].values():
        for request in requests or ():
            if request is None or (request.get("PutRequest") is None and request.get("DeleteRequest") is None):
                raise ValidationException(
                    "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the "
                    "supported datatypes"
                )


def _require_resource_arn(body: dict[str, Any]) -> None:
    if body.get("ResourceArn") is None:
        raise ValidationException("Invalid TableArn")


def _tag_resource(body: dict[str, Any]) -> None:
    _require_resource_arn(body)
    tags = body.get("Tags")
    if not tags:
        raise ValidationException("Atleast one Tag needs to be provided as Input.")
    _check_tags(_elements(tags))


def _untag_resource(body: dict[str, Any]) -> None:
    _require_resource_arn(body)
    keys = body.get("TagKeys")
    if not keys:
        raise ValidationException("Atleast one Tag Key needs to be provided as Input.")
    for key in keys:
        if not key:
            raise ValidationException(f"The Tag Key provided is invalid, Key: {'null' if key is None else key}")


_CUSTOM: dict[str, Custom] = {
    "CreateTable": _create_table,
    "UpdateTable": _update_table,
    "BatchWriteItem": _batch_write_item,
    "TagResource": _tag_resource,
    "UntagResource": _untag_resource,
    "ListTagsOfResource": _require_resource_arn,
}


# --- the schema, compiled once -------------------------------------------------------
def _load_schema() -> dict[str, Any]:
    text = resources.files("meridian.router").joinpath("schema", "dynamodb.json").read_text(encoding="utf-8")
    return json.loads(text)["operations"]


_VALIDATORS: dict[str, Callable[[Any], None]] = {
    action: _compile_action(node, _CUSTOM.get(action)) for action, node in _load_schema().items()
}
VALIDATED_ACTIONS = frozenset(_VALIDATORS)


def validate_request(action: str, body: object) -> None:
    """Check ``body`` (parsed JSON) of a DynamoDB_20120810 ``action`` as DynamoDB does.

    Raises ``SerializationException`` for JSON types, ``ValidationException``
    for constraints and request-only rules; returns None when the action's
    own code may trust the request's shape.  The body is left as DynamoDB
    reads it, in place: structure members that are JSON null are removed,
    and integer members given with a fraction are rounded down.  Actions
    outside the schema (DynamoDB Streams) are not checked here.
    """
    validator = _VALIDATORS.get(action)
    if validator is not None:
        validator(body)
