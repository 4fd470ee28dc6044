"""Projecting an item onto document paths, in the shape DynamoDB returns.

``a.b, a.c[2], x`` on an item keeps only those values, nested as they were:
``{"a": {"M": {"b": ..., "c": {"L": [...]}}}, "x": ...}``.  Elements picked
from one list keep their relative order and close up (``l[3], l[0]`` gives a
two-element list ``[l[0], l[3]]``); paths that do not resolve are left out.
The same projection serves ``ProjectionExpression`` and the
``UPDATED_OLD`` / ``UPDATED_NEW`` return values.
"""

from __future__ import annotations

from typing import Any, Sequence

from .evaluate import resolve_path

__all__ = ["project_paths"]

Value = dict[str, Any]
Item = dict[str, Value]
PathElements = tuple[str | int, ...]


def project_paths(item: Item, paths: Sequence[PathElements]) -> Item:
    """The parts of ``item`` at ``paths`` (which must not overlap)."""
    nested = False
    for path in paths:
        if len(path) > 1:
            nested = True
            break
    if not nested:
        out: Item = {}
        for (name,) in paths:
            value = item.get(name)  # type: ignore[arg-type]
            if value is not None:
                out[name] = value  # type: ignore[index]
        return out
    # A tree of {element: ("M" | "L", children) | ("=", value)} built from the
    # paths that resolve, then rendered; the item's own types pick M or L.
    root: dict[Any, Any] = {}
    for path in paths:
        value = resolve_path(item, path)
        if value is None:
            continue
        children = root
        for depth in range(len(path) - 1):
            kind = "L" if type(path[depth + 1]) is int else "M"
            node = children.get(path[depth])
            if node is None:
                node = (kind, {})
                children[path[depth]] = node
            children = node[1]
        children[path[-1]] = ("=", value)
    return {name: _render(node) for name, node in root.items()}


def _render(node: tuple[str, Any]) -> Value:
    kind, content = node
    if kind == "=":
        return content
    if kind == "M":
        return {"M": {name: _render(child) for name, child in content.items()}}
    return {"L": [_render(content[index]) for index in sorted(content)]}
