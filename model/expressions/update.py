"""Applying a bound UpdateExpression to an item, as DynamoDB does.

DynamoDB's rules, all followed here:

* Every SET value is computed from the item *before* the update: in
  ``SET a = :v, b = a`` the new ``b`` is the old ``a``, and
  ``REMOVE a SET b = a`` works.
* List indexes refer to the list before the update.  ``REMOVE a[1], a[3]``
  removes the old second and fourth elements; ``SET a[7] = :v`` on a
  three-element list appends (several appends go in index order); removing
  an index past the end does nothing.
* Setting or removing below a path whose parent is missing or of the wrong
  type is an error; ``REMOVE`` is silently ignored when the item itself
  does not exist.
* ADD to a missing attribute creates it (a number or a set); DELETE of set
  members that empties the set removes the attribute.

The old item is never modified: containers are copied along the paths that
change, so the new item shares every untouched value with the old one.
Treat both as immutable.
"""

from __future__ import annotations

from typing import Any

from ..errors import ValidationException
from ..numbers import add_numbers, compare_numbers, subtract_numbers
from .ast import AddAction, Arith, AttrPath, Call, Literal, RemoveAction, SetAction
from .evaluate import resolve_path, type_of

__all__ = ["apply_actions", "MISSING_ATTRIBUTE", "WRONG_OPERAND_TYPE", "INVALID_PATH", "LEGACY_TYPE_MISMATCH"]

Value = dict[str, Any]
Item = dict[str, Value]

MISSING_ATTRIBUTE = "The provided expression refers to an attribute that does not exist in the item"
WRONG_OPERAND_TYPE = "An operand in the update expression has an incorrect data type"
INVALID_PATH = "The document path provided in the update expression is invalid for update"
LEGACY_TYPE_MISMATCH = "Type mismatch for attribute to update"

_SETS = ("SS", "NS", "BS")


class _TypeMismatch(Exception):
    """An operand of the wrong type; reported with the caller's wording."""


def _value(node: Any, item: Item) -> Value:
    kind = type(node)
    if kind is Literal:
        return node.value
    if kind is AttrPath:
        found = resolve_path(item, node.elements)
        if found is None:
            raise ValidationException(MISSING_ATTRIBUTE)
        return found
    if kind is Arith:
        left = _value(node.left, item)
        if "N" not in left:
            raise _TypeMismatch
        right = _value(node.right, item)
        if "N" not in right:
            raise _TypeMismatch
        if node.op == "+":
            return {"N": add_numbers(left["N"], right["N"])}
        return {"N": subtract_numbers(left["N"], right["N"])}
    if kind is Call:
        if node.name == "if_not_exists":
            found = resolve_path(item, node.args[0].elements)
            return found if found is not None else _value(node.args[1], item)
        left = _value(node.args[0], item)
        if "L" not in left:
            raise _TypeMismatch
        right = _value(node.args[1], item)
        if "L" not in right:
            raise _TypeMismatch
        return {"L": left["L"] + right["L"]}
    raise TypeError(f"not an update value: {node!r}")


class _Writer:
    """Copy-on-write access to the new item's containers.

    List element removals and appends are deferred to ``finish`` so that
    every index in the expression refers to the list as it was.
    """

    __slots__ = ("item", "copied", "removals", "appends")

    def __init__(self, item: Item) -> None:
        self.item = item
        self.copied: set[int] = set()
        self.removals: dict[int, tuple[list[Value], set[int]]] = {}
        self.appends: dict[int, tuple[list[Value], list[tuple[int, Value]]]] = {}

    def _own(self, value: Value) -> Value:
        if id(value) in self.copied:
            return value
        for tag, inner in value.items():
            copy = {tag: dict(inner) if tag == "M" else list(inner)}
            self.copied.add(id(copy))
            return copy
        raise AssertionError("empty attribute value")

    def parent(self, elements: tuple[str | int, ...]) -> dict[str, Value] | list[Value] | None:
        """The writable container holding the path's last element, or None
        when a step is missing or of the wrong type."""
        container: Any = self.item
        for depth in range(len(elements) - 1):
            element = elements[depth]
            if type(container) is dict:
                child = container.get(element)
            elif element < len(container):
                child = container[element]
            else:
                return None
            wanted = "L" if type(elements[depth + 1]) is int else "M"
            if child is None or wanted not in child:
                return None
            owned = self._own(child)
            if owned is not child:
                container[element] = owned
            container = owned[wanted]
        return container

    def remove_index(self, container: list[Value], index: int) -> None:
        self.removals.setdefault(id(container), (container, set()))[1].add(index)

    def append(self, container: list[Value], index: int, value: Value) -> None:
        self.appends.setdefault(id(container), (container, []))[1].append((index, value))

    def finish(self) -> Item:
        for container, indexes in self.removals.values():
            container[:] = [v for i, v in enumerate(container) if i not in indexes]
        for container, added in self.appends.values():
            added.sort(key=lambda pair: pair[0])
            container.extend(value for _, value in added)
        return self.item


def _set_union(kind: str, current: list[str], extra: list[str]) -> list[str]:
    if kind == "NS":
        merged = list(current)
        for member in extra:
            if not any(compare_numbers(member, existing) == 0 for existing in merged):
                merged.append(member)
        return merged
    present = set(current)
    return current + [member for member in extra if member not in present]


def _set_difference(kind: str, current: list[str], removed: list[str]) -> list[str]:
    if kind == "NS":
        return [m for m in current if not any(compare_numbers(m, r) == 0 for r in removed)]
    gone = set(removed)
    return [member for member in current if member not in gone]


def _added(existing: Value | None, operand: Value) -> Value:
    kind = type_of(operand)
    if existing is None:
        return operand
    if kind not in existing:
        raise _TypeMismatch
    if kind == "N":
        return {"N": add_numbers(existing["N"], operand["N"])}
    return {kind: _set_union(kind, existing[kind], operand[kind])}


def _deleted(existing: Value, operand: Value) -> Value | None:
    kind = type_of(operand)
    if kind not in existing:
        raise _TypeMismatch
    remaining = _set_difference(kind, existing[kind], operand[kind])
    return {kind: remaining} if remaining else None


def apply_actions(actions: list[Any], item: Item | None, key_item: Item, legacy: bool) -> Item:
    """The item after the update; raises ValidationException.

    ``legacy`` reports type mismatches as ``AttributeUpdates`` does.
    """
    source = item if item is not None else key_item
    try:
        values = [_value(a.value, source) if type(a) is SetAction else None for a in actions]
        writer = _Writer(dict(source))
        for action, value in zip(actions, values):
            _apply(writer, action, value, item is None)
        return writer.finish()
    except _TypeMismatch:
        raise ValidationException(LEGACY_TYPE_MISMATCH if legacy else WRONG_OPERAND_TYPE) from None


def _apply(writer: _Writer, action: Any, value: Value | None, no_item: bool) -> None:
    elements = action.path.elements
    kind = type(action)
    container = writer.parent(elements)
    if container is None:
        if kind is RemoveAction and no_item:
            return
        raise ValidationException(INVALID_PATH)
    last = elements[-1]
    is_list = type(container) is list
    if is_list != (type(last) is int):
        if kind is RemoveAction and no_item:
            return
        raise ValidationException(INVALID_PATH)
    present = (last < len(container)) if is_list else (last in container)
    existing = container[last] if present else None
    if kind is SetAction:
        new: Value | None = value
    elif kind is RemoveAction:
        new = None
    elif kind is AddAction:
        new = _added(existing, action.value.value)
    else:
        if existing is None:
            return
        new = _deleted(existing, action.value.value)
    if new is None:
        if present:
            if is_list:
                writer.remove_index(container, last)
            else:
                del container[last]
    elif is_list and not present:
        writer.append(container, last, new)
    else:
        container[last] = new
