"""The legacy parameters, validated and translated into expressions.

``Expected``, ``AttributeUpdates``, ``AttributesToGet``, ``KeyConditions``,
``QueryFilter`` / ``ScanFilter`` and ``ConditionalOperator`` predate
expressions.  The router validates them here with DynamoDB's legacy messages
and turns them into expression text plus generated placeholder maps, so that
storage nodes only ever see expressions.  Compile the result with
``compile_expressions(..., legacy=True)``: generated text is exempt from the
expression limits, and update type errors then read as AttributeUpdates'.

Each translation uses its own placeholder prefix (``#e0``/``:e0`` for
Expected, ``#u``/``:u`` for AttributeUpdates, ``#f``/``:f`` for filters,
``#k``/``:k`` for key conditions, ``#p`` for AttributesToGet), so the maps of
one request merge without clashes.

Semantics that differ from the obvious expression are spelled out:
``NOT_CONTAINS`` is false for a missing attribute (``contains`` alone would
be true), ``IN`` with 100 or more values is split into ORed groups (one
``IN`` takes at most 99), and AttributeUpdates' ``ADD`` of a list, which
expressions cannot say directly, becomes
``SET #a = list_append(if_not_exists(#a, :empty), :v)``.
"""

from __future__ import annotations

from typing import Any, Sequence

from .. import limits
from ..errors import ValidationException
from ..values import check_attribute_name, validate_attribute_value
from .evaluate import compare_scalars, type_of
from .key_condition import KeyCondition, bind_key_conditions

__all__ = [
    "translate_expected",
    "translate_attribute_updates",
    "translate_attributes_to_get",
    "translate_key_conditions",
    "translate_filter",
    "bind_legacy_key_conditions",
    "check_not_mixed",
]

Value = dict[str, Any]
Translation = tuple[str | None, dict[str, str], dict[str, Value]]

_INVALID = "One or more parameter values were invalid: "
_BETWEEN_ORDER = "The BETWEEN condition was provided a range where the lower bound is greater than the upper bound"
_SCALARS = frozenset({"S", "N", "B"})
_SETS = frozenset({"SS", "NS", "BS"})
# Operator -> the attribute value types it accepts (None: any type).
_ACCEPTED_TYPES: dict[str, frozenset[str] | None] = {
    "EQ": None,
    "NE": None,
    "LE": _SCALARS,
    "LT": _SCALARS,
    "GE": _SCALARS,
    "GT": _SCALARS,
    "CONTAINS": _SCALARS,
    "NOT_CONTAINS": _SCALARS,
    "BEGINS_WITH": frozenset({"S", "B"}),
    "IN": _SCALARS,
    "BETWEEN": _SCALARS,
    "NULL": None,
    "NOT_NULL": None,
}
_COMPARATORS = {"EQ": "=", "NE": "<>", "LE": "<=", "LT": "<", "GE": ">=", "GT": ">"}
_IN_GROUP_MAX = limits.EXPRESSION_IN_OPERANDS_MAX - 1

# Request action -> (expression parameters, legacy parameters), in the order
# DynamoDB lists them in its "Can not use both" message.
_PARAMETERS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "GetItem": (("ProjectionExpression",), ("AttributesToGet",)),
    "BatchGetItem": (("ProjectionExpression",), ("AttributesToGet",)),
    "PutItem": (("ConditionExpression",), ("Expected", "ConditionalOperator")),
    "DeleteItem": (("ConditionExpression",), ("Expected", "ConditionalOperator")),
    "UpdateItem": (
        ("UpdateExpression", "ConditionExpression"),
        ("AttributeUpdates", "Expected", "ConditionalOperator"),
    ),
    "Scan": (("ProjectionExpression", "FilterExpression"), ("AttributesToGet", "ScanFilter", "ConditionalOperator")),
    "Query": (
        ("ProjectionExpression", "FilterExpression", "KeyConditionExpression"),
        ("AttributesToGet", "QueryFilter", "ConditionalOperator", "KeyConditions"),
    ),
}


class _Placeholders:
    """Generated ``#<prefix>N`` / ``:<prefix>N`` placeholders and their maps."""

    __slots__ = ("prefix", "names", "values", "_by_name")

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.names: dict[str, str] = {}
        self.values: dict[str, Value] = {}
        self._by_name: dict[str, str] = {}

    def name(self, attribute: str) -> str:
        placeholder = self._by_name.get(attribute)
        if placeholder is None:
            check_attribute_name(attribute)
            placeholder = f"#{self.prefix}{len(self.names)}"
            self.names[placeholder] = attribute
            self._by_name[attribute] = placeholder
        return placeholder

    def value(self, value: Value) -> str:
        placeholder = f":{self.prefix}{len(self.values)}"
        self.values[placeholder] = value
        return placeholder

    def result(self, text: str | None) -> Translation:
        return text, self.names, self.values


def _validated_list(values: Sequence[Value]) -> list[Value]:
    return [validate_attribute_value(value) for value in values]


def _check_operands(operator: str, operands: list[Value]) -> None:
    """Operand count, one type, accepted type, BETWEEN order (DynamoDB's order)."""
    count = len(operands)
    if operator in ("NULL", "NOT_NULL"):
        valid = count == 0
    elif operator == "IN":
        valid = count > 0
    elif operator == "BETWEEN":
        valid = count == 2
    else:
        valid = count == 1
    if not valid:
        raise ValidationException(f"{_INVALID}Invalid number of argument(s) for the {operator} ComparisonOperator")
    if not operands:
        return
    first_type = type_of(operands[0])
    if any(type_of(operand) != first_type for operand in operands):
        raise ValidationException(f"{_INVALID}AttributeValues inside AttributeValueList must be of same type")
    accepted = _ACCEPTED_TYPES[operator]
    if accepted is not None:
        for operand in operands:
            if type_of(operand) not in accepted:
                raise ValidationException(
                    f"{_INVALID}ComparisonOperator {operator} is not valid for {type_of(operand)} AttributeValue type"
                )
    if operator == "BETWEEN" and (compare_scalars(operands[0], operands[1]) or 0) > 0:
        raise ValidationException(_BETWEEN_ORDER)


def _condition_text(marks: _Placeholders, attribute: str, operator: str, operands: list[Value]) -> str:
    """One legacy condition as expression text, parenthesised if compound."""
    name = marks.name(attribute)
    if operator == "NULL":
        return f"attribute_not_exists({name})"
    if operator == "NOT_NULL":
        return f"attribute_exists({name})"
    refs = [marks.value(operand) for operand in operands]
    if operator in _COMPARATORS:
        return f"{name} {_COMPARATORS[operator]} {refs[0]}"
    if operator == "BETWEEN":
        return f"{name} BETWEEN {refs[0]} AND {refs[1]}"
    if operator == "BEGINS_WITH":
        return f"begins_with({name}, {refs[0]})"
    if operator == "CONTAINS":
        return f"contains({name}, {refs[0]})"
    if operator == "NOT_CONTAINS":
        return f"(attribute_exists({name}) AND NOT contains({name}, {refs[0]}))"
    groups = [refs[start : start + _IN_GROUP_MAX] for start in range(0, len(refs), _IN_GROUP_MAX)]
    texts = [f"{name} IN ({', '.join(group)})" for group in groups]
    return texts[0] if len(texts) == 1 else "(" + " OR ".join(texts) + ")"


def _joined(parts: list[str], conditional_operator: str | None) -> str | None:
    if not parts:
        return None
    return f" {conditional_operator or 'AND'} ".join(parts)


def _check_conditional_operator(conditions: dict[str, Any], conditional_operator: str | None) -> None:
    if conditional_operator is not None and len(conditions) <= 1:
        raise ValidationException(
            "ConditionalOperator can only be used when Filter or Expected has two or more elements"
        )


def translate_expected(expected: dict[str, Any], conditional_operator: str | None) -> Translation:
    """``Expected`` (+ ``ConditionalOperator``) as a ConditionExpression.

    Returns ``(text, names, values)``; ``text`` is ``None`` for an empty map.
    """
    marks = _Placeholders("e")
    parts: list[str] = []
    for attribute, condition in expected.items():
        if "AttributeValueList" in condition and "Value" in condition:
            raise ValidationException(
                f"{_INVALID}Value and AttributeValueList cannot be used together for Attribute: {attribute}"
            )
        operator = condition.get("ComparisonOperator")
        if operator is not None:
            if "Exists" in condition:
                raise ValidationException(
                    f"{_INVALID}Exists and ComparisonOperator cannot be used together for Attribute: {attribute}"
                )
            listed = condition.get("AttributeValueList")
            value = condition.get("Value")
            if operator not in ("NULL", "NOT_NULL") and listed is None and value is None:
                raise ValidationException(
                    f"{_INVALID}Value or AttributeValueList must be used with ComparisonOperator: {operator} "
                    f"for Attribute: {attribute}"
                )
            operands = _validated_list(listed if listed is not None else ([value] if value is not None else []))
            _check_operands(operator, operands)
            parts.append(_condition_text(marks, attribute, operator, operands))
        elif "AttributeValueList" in condition:
            raise ValidationException(
                f"{_INVALID}AttributeValueList can only be used with a ComparisonOperator for Attribute: {attribute}"
            )
        else:
            exists = condition.get("Exists")
            value = condition.get("Value")
            if exists is not False and value is None:
                shown = "null" if exists is None else "true"
                raise ValidationException(
                    f"{_INVALID}Value must be provided when Exists is {shown} for Attribute: {attribute}"
                )
            if exists is False and value is not None:
                raise ValidationException(
                    f"{_INVALID}Value cannot be used when Exists is false for Attribute: {attribute}"
                )
            if value is None:
                parts.append(f"attribute_not_exists({marks.name(attribute)})")
            else:
                operand = validate_attribute_value(value)
                parts.append(f"{marks.name(attribute)} = {marks.value(operand)}")
    _check_conditional_operator(expected, conditional_operator)
    return marks.result(_joined(parts, conditional_operator))


def _filter_parts(marks: _Placeholders, conditions: dict[str, Any]) -> list[str]:
    parts = []
    for attribute, condition in conditions.items():
        operator = condition.get("ComparisonOperator")
        operands = _validated_list(condition.get("AttributeValueList") or [])
        _check_operands(operator, operands)
        parts.append(_condition_text(marks, attribute, operator, operands))
    return parts


def translate_filter(conditions: dict[str, Any], conditional_operator: str | None) -> Translation:
    """``QueryFilter`` / ``ScanFilter`` (+ ``ConditionalOperator``) as a FilterExpression."""
    marks = _Placeholders("f")
    parts = _filter_parts(marks, conditions)
    _check_conditional_operator(conditions, conditional_operator)
    return marks.result(_joined(parts, conditional_operator))


def translate_key_conditions(conditions: dict[str, Any]) -> Translation:
    """``KeyConditions`` as a KeyConditionExpression.

    Checks what DynamoDB checks with the request; the checks against the key
    schema (after the table lookup) are ``bind_legacy_key_conditions``,
    which must run before the translation is compiled.
    """
    marks = _Placeholders("k")
    parts = _filter_parts(marks, conditions)
    # More than two fit only a multi-attribute GSI: counted again once the key schema is known.
    if not 1 <= len(conditions) <= limits.KEY_CONDITIONS_MAX:
        raise ValidationException("Conditions can be of length 1 or 2 only")
    return marks.result(_joined(parts, "AND"))


def bind_legacy_key_conditions(conditions: dict[str, Any], key_schema: Sequence[tuple[str, str]],
                               hash_count: int = 1) -> KeyCondition:
    """Fit ``KeyConditions`` to ``[(partition key, type), (sort key, type)?]``
    (a multi-attribute GSI's: its ``hash_count`` HASH attributes, then its RANGE ones)."""
    bound = {
        attribute: (
            condition["ComparisonOperator"],
            tuple(validate_attribute_value(v) for v in condition.get("AttributeValueList") or ()),
        )
        for attribute, condition in conditions.items()
    }
    return bind_key_conditions(bound, key_schema, hash_count)


def translate_attribute_updates(updates: dict[str, Any]) -> Translation:
    """``AttributeUpdates`` as an UpdateExpression (``None`` text when empty)."""
    marks = _Placeholders("u")
    clauses: dict[str, list[str]] = {"SET": [], "REMOVE": [], "ADD": [], "DELETE": []}
    for attribute, update in updates.items():
        value = update.get("Value")
        if value is not None:
            value = validate_attribute_value(value)
        action = update.get("Action") or "PUT"
        value_type = type_of(value) if value is not None else None
        if value is None and action != "DELETE":
            raise ValidationException(f"{_INVALID}Only DELETE action is allowed when no attribute value is specified")
        if value is not None and action == "DELETE" and value_type not in _SETS:
            raise ValidationException(f"{_INVALID}DELETE action with value is not supported for the type {value_type}")
        if value is not None and action == "ADD" and value_type not in ("N", "L", "SS", "NS", "BS"):
            raise ValidationException(f"{_INVALID}ADD action is not supported for the type {value_type}")
        name = marks.name(attribute)
        if action == "PUT":
            clauses["SET"].append(f"{name} = {marks.value(value)}")
        elif action == "DELETE" and value is None:
            clauses["REMOVE"].append(name)
        elif action == "DELETE":
            clauses["DELETE"].append(f"{name} {marks.value(value)}")
        elif value_type == "L":
            empty = marks.value({"L": []})
            clauses["SET"].append(f"{name} = list_append(if_not_exists({name}, {empty}), {marks.value(value)})")
        else:
            clauses["ADD"].append(f"{name} {marks.value(value)}")
    text = " ".join(f"{keyword} {', '.join(actions)}" for keyword, actions in clauses.items() if actions)
    return marks.result(text or None)


def translate_attributes_to_get(names: list[str]) -> tuple[str, dict[str, str]]:
    """``AttributesToGet`` as a ProjectionExpression and its names map."""
    marks = _Placeholders("p")
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValidationException(f"{_INVALID}Duplicate value in attribute name: {name}")
        seen.add(name)
        marks.name(name)
    return ", ".join(marks.names), marks.names


def check_not_mixed(request: dict[str, Any], action: str) -> None:
    """DynamoDB's rules on mixing expression and legacy parameters.

    ``action`` is the DynamoDB action name (for BatchGetItem, pass each
    table's entry of ``RequestItems`` as ``request``).  Present means "not
    null": an empty string or map counts.
    """
    expression_names, legacy_names = _PARAMETERS[action]
    used_expressions = [name for name in expression_names if request.get(name) is not None]
    if used_expressions:
        legacy = legacy_names
        if action == "Query" and request.get("KeyConditionExpression") is None:
            legacy = tuple(name for name in legacy if name != "KeyConditions")
        used_legacy = [name for name in legacy if request.get(name) is not None]
        if used_legacy:
            raise ValidationException(
                "Can not use both expression and non-expression parameters in the same request: "
                f"Non-expression parameters: {{{', '.join(used_legacy)}}} "
                f"Expression parameters: {{{', '.join(used_expressions)}}}"
            )
    if request.get("ExpressionAttributeNames") is not None and not used_expressions:
        raise ValidationException("ExpressionAttributeNames can only be specified when using expressions")
    value_expressions = [name for name in expression_names if name != "ProjectionExpression"]
    if (
        value_expressions
        and request.get("ExpressionAttributeValues") is not None
        and all(request.get(name) is None for name in value_expressions)
    ):
        verb = "are" if len(value_expressions) > 1 else "is"
        raise ValidationException(
            "ExpressionAttributeValues can only be specified when using expressions: "
            f"{' and '.join(value_expressions)} {verb} null"
        )
    if request.get("ConditionalOperator") is not None and not any(
        request.get(name) is not None for name in ("Expected", "QueryFilter", "ScanFilter")
    ):
        raise ValidationException("ConditionalOperator cannot be used without Filter or Expected")
