"""``compile_expressions``: one request's expressions, validated and bound.

The router calls it to validate a request before touching data; the storage
node calls it again (parses are cached by text, binding is cheap) to get the
evaluators it runs inside the write's critical section.

DynamoDB's order, kept here: the placeholder maps (empty, bad keys, bad
values), then each expression in turn (update, condition, key condition,
filter, projection), each one fully: empty, size, syntax, the checks that
need only its text, the checks that need the maps.  Then unused names,
unused values, the key condition's shape and, last, updates of key
attributes (DynamoDB makes that check once it has the table).
"""

from __future__ import annotations

import functools
import re
from typing import Any, Callable, Sequence

from .. import limits
from ..errors import ValidationException
from ..values import (
    ATTRIBUTE_NAME_TOO_LARGE_MESSAGE,
    EMPTY_ATTRIBUTE_NAME,
    EMPTY_ATTRIBUTE_NAME_MESSAGE,
    check_attribute_name,
    validate_attribute_value,
)
from .evaluate import compile_condition
from .key_condition import KeyCondition, KeyConditions, bind_key_conditions, extract_key_conditions
from .parser import ParsedUpdate, parse_condition, parse_projection, parse_update
from .projection import project_paths
from .semantics import Binder, bind_condition, bind_projection, bind_update, top_level_names
from .tokens import ExpressionError
from .update import apply_actions

__all__ = ["Compiled", "UpdatedNames", "compile_expressions", "updated_attributes", "parse_cached"]

Value = dict[str, Any]
Item = dict[str, Value]

_NAME_KEY = re.compile(r"#[0-9a-zA-Z_]+")
_VALUE_KEY = re.compile(r":[0-9a-zA-Z_]+")
_EMPTY_ITEM: Item = {}
_PARSERS: dict[str, Callable[[str], Any]] = {
    "condition": parse_condition,
    "update": parse_update,
    "projection": parse_projection,
}


@functools.lru_cache(maxsize=limits.EXPRESSION_CACHE_ENTRIES_MAX)
def parse_cached(grammar: str, text: str) -> Any:
    """Parse with a bounded LRU cache; syntax errors are not cached."""
    return _PARSERS[grammar](text)


class UpdatedNames(frozenset):
    """The top-level attributes an update touched, plus the exact paths.

    It is the set of names the API promises; ``paths`` lets
    ``updated_attributes`` return nested values the way DynamoDB's
    ``UPDATED_OLD`` / ``UPDATED_NEW`` do (``SET a.b = :v`` returns
    ``{"a": {"M": {"b": ...}}}``, not all of ``a``).
    """

    paths: tuple[tuple[str | int, ...], ...]

    def __new__(cls, paths: Sequence[tuple[str | int, ...]]) -> "UpdatedNames":
        names = super().__new__(cls, (path[0] for path in paths))
        names.paths = tuple(paths)
        return names


def updated_attributes(item: Item, names: frozenset[str]) -> Item:
    """What ``UPDATED_OLD`` / ``UPDATED_NEW`` return from ``item``."""
    paths = getattr(names, "paths", None)
    if paths is None:
        return {name: item[name] for name in names if name in item}
    return project_paths(item, paths)


class Compiled:
    """A request's expressions, ready to run against items."""

    __slots__ = (
        "_condition",
        "_filter",
        "_filter_names",
        "_actions",
        "_paths",
        "key_conditions",
        "key_condition",
        "legacy",
    )

    def __init__(self, legacy: bool) -> None:
        self._condition: Callable[[Item], bool] | None = None
        self._filter: Callable[[Item], bool] | None = None
        self._filter_names: list[str] = []
        self._actions: list[Any] | None = None
        self._paths: list[tuple[str | int, ...]] | None = None
        self.key_conditions: KeyConditions | None = None
        self.key_condition: KeyCondition | None = None
        self.legacy = legacy

    @property
    def has_update(self) -> bool:
        return self._actions is not None

    @property
    def projection_paths(self) -> list[tuple[str | int, ...]] | None:
        return self._paths

    def condition_matches(self, item: Item | None) -> bool:
        """ConditionExpression against the stored item (``None``: no item)."""
        if self._condition is None:
            return True
        return self._condition(_EMPTY_ITEM if item is None else item)

    def filter_matches(self, item: Item) -> bool:
        if self._filter is None:
            return True
        return self._filter(item)

    def apply_update(self, item: Item | None, key_item: Item) -> tuple[Item, UpdatedNames]:
        """The new item and what the update touched; raises ValidationException."""
        if self._actions is None:
            return dict(item if item is not None else key_item), UpdatedNames(())
        new_item = apply_actions(self._actions, item, key_item, self.legacy)
        return new_item, UpdatedNames([action.path.elements for action in self._actions])

    def project(self, item: Item) -> Item:
        if self._paths is None:
            return item
        return project_paths(item, self._paths)

    def bind_key_condition(self, key_schema: Sequence[tuple[str, str]], hash_count: int = 1) -> KeyCondition:
        """Fit the key condition to ``[(partition key, type), (sort key, type)?]``
        (a multi-attribute GSI's: its ``hash_count`` HASH attributes, then its RANGE ones)."""
        if self.key_conditions is None:
            raise ValueError("no KeyConditionExpression was compiled")
        self.key_condition = bind_key_conditions(self.key_conditions, key_schema, hash_count)
        return self.key_condition

    def check_filter_keys(self, key_attributes: Sequence[str]) -> None:
        """A Query's filter may not use the key being queried (DynamoDB's wording)."""
        for name in self._filter_names:
            if name in key_attributes:
                parameter = "QueryFilter" if self.legacy else "Filter Expression"
                raise ValidationException(
                    f"{parameter} can only contain non-primary key attributes: Primary key attribute: {name}"
                )

    def check_key_attributes(self, key_attributes: Sequence[str]) -> None:
        """Reject an update that writes a key attribute (DynamoDB's wording)."""
        if self._actions is None or not key_attributes:
            return
        for action in self._actions:
            name = action.path.elements[0]
            if name in key_attributes:
                raise ValidationException(
                    f"One or more parameter values were invalid: Cannot update attribute {name}. "
                    "This attribute is part of the key"
                )


def _check_key(parameter: str, key: str, pattern: re.Pattern[str]) -> None:
    if not pattern.fullmatch(key):
        raise ValidationException(f'{parameter} contains invalid key: Syntax error; key: "{key}"')
    if len(key) > limits.EXPRESSION_ATTRIBUTE_NAME_BYTES_MAX:
        raise ValidationException(
            f"{parameter} contains invalid key: The expression attribute map contains a key that is too long"
        )


def _checked_names(names: dict[str, str] | None) -> dict[str, str] | None:
    if names is None:
        return None
    if not names:
        raise ValidationException("ExpressionAttributeNames must not be empty")
    for key, name in names.items():
        _check_key("ExpressionAttributeNames", key, _NAME_KEY)
        if name == "":
            raise ValidationException(
                f"ExpressionAttributeNames contains invalid value: {EMPTY_ATTRIBUTE_NAME} for key {key}"
            )
        check_attribute_name(name)
    return names


def _checked_values(values: dict[str, Value] | None) -> dict[str, Value] | None:
    if values is None:
        return None
    if not values:
        raise ValidationException("ExpressionAttributeValues must not be empty")
    for key in values:
        _check_key("ExpressionAttributeValues", key, _VALUE_KEY)
    checked = values
    for key, value in values.items():
        try:
            normal = validate_attribute_value(value)
        except ValidationException as error:
            if error.message in (ATTRIBUTE_NAME_TOO_LARGE_MESSAGE, EMPTY_ATTRIBUTE_NAME_MESSAGE):
                raise  # a map key inside a value: DynamoDB answers the name's own message (a live reply)
            raise ValidationException(
                f"ExpressionAttributeValues contains invalid value: {error.message} for key {key}"
            ) from None
        if normal is not value:
            if checked is values:
                checked = dict(values)
            checked[key] = normal
    return checked


def _expression_bytes(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8"))


def _parsed(grammar: str, label: str, text: str, legacy: bool) -> Any:
    if text == "":
        raise ValidationException(f"Invalid {label}: The expression can not be empty;")
    if not legacy:
        size = _expression_bytes(text)
        if size > limits.EXPRESSION_BYTES_MAX:
            raise ValidationException(
                f"Invalid {label}: Expression size has exceeded the maximum allowed size; expression size: {size}"
            )
    try:
        parsed = parse_cached(grammar, text)
    except ExpressionError as error:
        raise ValidationException(f"Invalid {label}: {error.message}") from None
    if parsed.static_error:
        raise ValidationException(f"Invalid {label}: {parsed.static_error}")
    if not legacy and type(parsed) is ParsedUpdate and parsed.operator_count > limits.EXPRESSION_OPERATORS_MAX:
        raise ValidationException(
            f"Invalid {label}: The expression contains too many operators; operator count: {parsed.operator_count}"
        )
    return parsed


def _bound_condition(label: str, text: str, binder: Binder, legacy: bool) -> Any:
    parsed = _parsed("condition", label, text, legacy)
    try:
        return bind_condition(parsed.tree, binder)
    except ExpressionError as error:
        raise ValidationException(f"Invalid {label}: {error.message}") from None


def compile_expressions(
    *,
    condition: str | None = None,
    update: str | None = None,
    projection: str | None = None,
    filter: str | None = None,  # noqa: A002  (DynamoDB's own parameter name)
    key_condition: str | None = None,
    names: dict[str, str] | None = None,
    values: dict[str, Value] | None = None,
    key_attributes: Sequence[str] = (),
    legacy: bool = False,
) -> Compiled:
    """Validate a request's expressions as DynamoDB does and bind them.

    Raises ValidationException with DynamoDB's message for the first problem.
    ``key_attributes`` (the table's key attribute names), when given, rejects
    updates of key attributes; ``Compiled.check_key_attributes`` does the
    same later for callers that must look the table up first.
    ``legacy`` marks expressions translated from the legacy parameters (see
    ``legacy.py``): DynamoDB's expression limits do not apply to them and
    update type errors use AttributeUpdates' wording.

    Requests without ExpressionAttributeValues (a ProjectionExpression,
    ``attribute_not_exists(pk)``...) are cached whole: they are the common
    case on the read path and their result depends on nothing else.  The
    returned object is then shared, so it must be treated as immutable.
    """
    if values is None and key_condition is None:
        try:
            return _compile_without_values(
                condition, update, projection, filter, None if names is None else tuple(names.items()),
                tuple(key_attributes), legacy,
            )
        except TypeError:  # an unhashable name: not worth caching, let validation speak
            pass
    return _compile(condition, update, projection, filter, key_condition, names, values, key_attributes, legacy)


@functools.lru_cache(maxsize=limits.EXPRESSION_CACHE_ENTRIES_MAX)
def _compile_without_values(
    condition: str | None,
    update: str | None,
    projection: str | None,
    filter: str | None,  # noqa: A002
    names: tuple[tuple[str, str], ...] | None,
    key_attributes: tuple[str, ...],
    legacy: bool,
) -> Compiled:
    return _compile(
        condition, update, projection, filter, None, None if names is None else dict(names), None, key_attributes, legacy
    )


def _compile(
    condition: str | None,
    update: str | None,
    projection: str | None,
    filter: str | None,  # noqa: A002
    key_condition: str | None,
    names: dict[str, str] | None,
    values: dict[str, Value] | None,
    key_attributes: Sequence[str],
    legacy: bool,
) -> Compiled:
    binder = Binder(_checked_names(names), _checked_values(values))
    compiled = Compiled(legacy)
    if update is not None:
        parsed = _parsed("update", "UpdateExpression", update, legacy)
        try:
            compiled._actions = bind_update(parsed.tree, binder)
        except ExpressionError as error:
            raise ValidationException(f"Invalid UpdateExpression: {error.message}") from None
    if condition is not None:
        compiled._condition = compile_condition(_bound_condition("ConditionExpression", condition, binder, legacy))
    key_tree = None
    if key_condition is not None:
        key_tree = _bound_condition("KeyConditionExpression", key_condition, binder, legacy)
    if filter is not None:
        bound_filter = _bound_condition("FilterExpression", filter, binder, legacy)
        compiled._filter = compile_condition(bound_filter)
        compiled._filter_names = top_level_names(bound_filter)
    if projection is not None:
        parsed = _parsed("projection", "ProjectionExpression", projection, legacy)
        try:
            compiled._paths = bind_projection(parsed.tree, binder)
        except ExpressionError as error:
            raise ValidationException(f"Invalid ProjectionExpression: {error.message}") from None
    if names:
        unused = [key for key in names if key not in binder.used_names]
        if unused:
            raise ValidationException(
                f"Value provided in ExpressionAttributeNames unused in expressions: keys: {{{', '.join(unused)}}}"
            )
    if values:
        unused = [key for key in values if key not in binder.used_values]
        if unused:
            raise ValidationException(
                f"Value provided in ExpressionAttributeValues unused in expressions: keys: {{{', '.join(unused)}}}"
            )
    if key_tree is not None:
        compiled.key_conditions = extract_key_conditions(key_tree)
    compiled.check_key_attributes(key_attributes)
    return compiled

