"""Expression trees back to canonical text.

The text parses back to the same tree (``parse(to_text(tree)) == tree``):
keywords in upper case, single spaces, and only the parentheses the tree
needs (never doubled, which DynamoDB would reject as redundant).
"""

from __future__ import annotations

from typing import Any

from .ast import (
    AddAction,
    And,
    Arith,
    Between,
    Call,
    Compare,
    DeleteAction,
    In,
    Not,
    Or,
    Path,
    ProjectionExpr,
    RemoveAction,
    SetAction,
    UpdateExpr,
    ValueRef,
)

__all__ = ["to_text", "path_to_text"]


def path_to_text(path: Path) -> str:
    parts: list[str] = []
    for element in path.elements:
        if type(element) is int:
            parts.append(f"[{element}]")
        elif parts:
            parts.append("." + element)
        else:
            parts.append(element)
    return "".join(parts)


def _operand(node: Any) -> str:
    kind = type(node)
    if kind is Path:
        return path_to_text(node)
    if kind is ValueRef:
        return node.name
    if kind is Call:
        return f"{node.name}({', '.join(_operand(arg) for arg in node.args)})"
    if kind is Arith:
        return f"{_operand(node.left)} {node.op} {_operand(node.right)}"
    raise TypeError(f"not an operand: {node!r}")


def _condition(node: Any) -> str:
    kind = type(node)
    if kind is Or:
        return " OR ".join(_grouped(item, (Or,)) for item in node.items)
    if kind is And:
        return " AND ".join(_grouped(item, (And, Or)) for item in node.items)
    if kind is Not:
        return "NOT " + _grouped(node.item, (And, Or))
    if kind is Compare:
        return f"{_operand(node.left)} {node.op} {_operand(node.right)}"
    if kind is Between:
        return f"{_operand(node.operand)} BETWEEN {_operand(node.low)} AND {_operand(node.high)}"
    if kind is In:
        return f"{_operand(node.operand)} IN ({', '.join(_operand(o) for o in node.options)})"
    if kind is Call:
        return _operand(node)
    raise TypeError(f"not a condition: {node!r}")


def _grouped(node: Any, needs_parens: tuple[type, ...]) -> str:
    text = _condition(node)
    return f"({text})" if isinstance(node, needs_parens) else text


def _action(action: Any) -> str:
    kind = type(action)
    if kind is SetAction:
        return f"{path_to_text(action.path)} = {_operand(action.value)}"
    if kind is RemoveAction:
        return path_to_text(action.path)
    if kind is AddAction or kind is DeleteAction:
        return f"{path_to_text(action.path)} {action.value.name}"
    raise TypeError(f"not an update action: {action!r}")


def to_text(tree: Any) -> str:
    """Canonical text for a condition, update or projection tree."""
    if type(tree) is UpdateExpr:
        return " ".join(
            f"{clause.keyword} {', '.join(_action(action) for action in clause.actions)}" for clause in tree.clauses
        )
    if type(tree) is ProjectionExpr:
        return ", ".join(path_to_text(path) for path in tree.paths)
    return _condition(tree)
