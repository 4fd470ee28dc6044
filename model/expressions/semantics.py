"""The checks DynamoDB makes after parsing, in DynamoDB's order.

Two stages.  *Static* checks need only the text; the parser runs them once
and caches the first failure with the tree.  *Binding* resolves the
request's placeholders and runs the checks that need them.  DynamoDB
reports only the first problem it finds, in this order of kinds:

condition (and filter, key condition)
    redundant parentheses, unknown function, function used where it may not
    be, reserved word; then, for the first leaf condition (a comparison,
    BETWEEN, IN or function call) that has any problem: undefined
    placeholder, operand count, non-distinct operands, operand type.
update
    reserved word, unknown function, misused function, repeated section;
    undefined name, undefined value, overlapping paths, conflicting paths,
    ADD/DELETE operand type, function operand count and type.
projection
    reserved word; undefined name, overlapping paths, conflicting paths.

"First" means in the order DynamoDB's parser meets them: text order for
names and paths, completion order (innermost call first) for functions.
"""

from __future__ import annotations

from typing import Any, Iterator

from .ast import (
    AddAction,
    And,
    Arith,
    AttrPath,
    Between,
    Call,
    Clause,
    Compare,
    DeleteAction,
    In,
    Literal,
    Not,
    Or,
    Path,
    ProjectionExpr,
    RemoveAction,
    SetAction,
    UpdateExpr,
    ValueRef,
)
from .evaluate import compare_scalars, type_of
from .reserved import RESERVED_WORDS
from .tokens import ExpressionError

__all__ = [
    "CONDITION_FUNCTIONS",
    "UPDATE_FUNCTIONS",
    "Binder",
    "condition_static_error",
    "update_static_error",
    "projection_static_error",
    "operator_count",
    "bind_condition",
    "bind_update",
    "bind_projection",
    "path_text",
    "top_level_names",
]

# Function name -> number of operands.
CONDITION_FUNCTIONS = {
    "attribute_exists": 1,
    "attribute_not_exists": 1,
    "attribute_type": 2,
    "begins_with": 2,
    "contains": 2,
    "size": 1,
}
UPDATE_FUNCTIONS = {"if_not_exists": 2, "list_append": 2}

_ATTRIBUTE_TYPES = frozenset({"S", "N", "B", "NULL", "SS", "BOOL", "L", "BS", "NS", "M"})
_ORDERABLE = frozenset({"S", "N", "B"})
_LONG_TYPE_NAMES = {
    "S": "STRING",
    "N": "NUMBER",
    "B": "BINARY",
    "NULL": "NULL",
    "BOOL": "BOOLEAN",
    "L": "LIST",
    "M": "MAP",
}
_ADD_TYPES = frozenset({"N", "SS", "NS", "BS"})
_DELETE_TYPES = frozenset({"SS", "NS", "BS"})


# --- tree walking ------------------------------------------------------------


def _children(node: Any) -> tuple[Any, ...]:
    kind = type(node)
    if kind is Compare or kind is Arith:
        return (node.left, node.right)
    if kind is Call:
        return node.args
    if kind is And or kind is Or:
        return node.items
    if kind is Not:
        return (node.item,)
    if kind is Between:
        return (node.operand, node.low, node.high)
    if kind is In:
        return (node.operand, *node.options)
    if kind is SetAction or kind is AddAction or kind is DeleteAction:
        return (node.path, node.value)
    if kind is RemoveAction:
        return (node.path,)
    if kind is Clause:
        return node.actions
    if kind is UpdateExpr:
        return node.clauses
    if kind is ProjectionExpr:
        return node.paths
    return ()


def _postorder(node: Any, kinds: tuple[type, ...]) -> Iterator[Any]:
    """Nodes of the given types, children before parents, left to right."""
    for child in _children(node):
        yield from _postorder(child, kinds)
    if isinstance(node, kinds):
        yield node


def _paths(node: Any) -> Iterator[Any]:
    """Document paths in text order."""
    if type(node) is Path or type(node) is AttrPath:
        yield node
        return
    for child in _children(node):
        yield from _paths(child)


def top_level_names(tree: Any) -> list[str]:
    """The attributes a bound tree's paths start from, in text order."""
    names: list[str] = []
    for path in _paths(tree):
        if path.elements[0] not in names:
            names.append(path.elements[0])
    return names


def path_text(elements: tuple[str | int, ...]) -> str:
    """A path as DynamoDB prints it in messages: ``[a, b, [1]]``."""
    return "[" + ", ".join(f"[{e}]" if type(e) is int else e for e in elements) + "]"


# --- static checks -------------------------------------------------------------


def _unknown_function(tree: Any, allowed: dict[str, int], other: dict[str, int], context: str) -> str | None:
    for call in _postorder(tree, (Call,)):
        if call.name in allowed:
            continue
        if call.name in other:
            return f"The function is not allowed in {context}; function: {call.name}"
        return f"Invalid function name; function: {call.name}"
    return None


def _misused(name: str) -> str:
    return f"The function is not allowed to be used this way in an expression; function: {name}"


def _misused_in_condition(node: Any) -> str | None:
    for child in _children(node):
        problem = _misused_in_condition(child)
        if problem:
            return problem
    kind = type(node)
    if kind is Compare or kind is Between or kind is In or kind is Call:
        for operand in _children(node):
            if type(operand) is Call and operand.name != "size":
                return _misused(operand.name)
    elif kind is And or kind is Or or kind is Not:
        for item in _children(node):
            if type(item) is Call and item.name == "size":
                return _misused("size")
    return None


def _reserved(tree: Any) -> str | None:
    for path in _paths(tree):
        for element in path.elements:
            if type(element) is str and element[0] != "#" and element.upper() in RESERVED_WORDS:
                return f"Attribute name is a reserved keyword; reserved keyword: {element}"
    return None


def condition_static_error(tree: Any) -> str | None:
    """The first text-only problem of a condition (parentheses aside)."""
    problem = _unknown_function(tree, CONDITION_FUNCTIONS, UPDATE_FUNCTIONS, "a condition expression")
    if problem:
        return problem
    problem = _misused_in_condition(tree)
    if problem:
        return problem
    if type(tree) is Call and tree.name == "size":
        return _misused("size")
    return _reserved(tree)


def update_static_error(tree: UpdateExpr) -> str | None:
    """The first text-only problem of an update expression."""
    problem = _reserved(tree)
    if problem:
        return problem
    problem = _unknown_function(tree, UPDATE_FUNCTIONS, CONDITION_FUNCTIONS, "an update expression")
    if problem:
        return problem
    # list_append's result may only be assigned or fed to + and -.
    for call in _postorder(tree, (Call,)):
        for arg in call.args:
            if type(arg) is Call and arg.name == "list_append":
                return _misused("list_append")
    seen: set[str] = set()
    for clause in tree.clauses:
        if clause.keyword in seen:
            return f'The "{clause.keyword}" section can only be used once in an update expression;'
        seen.add(clause.keyword)
    return None


def projection_static_error(tree: ProjectionExpr) -> str | None:
    return _reserved(tree)


def operator_count(tree: UpdateExpr) -> int:
    """Operators and functions, as counted against DynamoDB's limit of 300."""
    return sum(1 for _ in _postorder(tree, (Arith, Call)))


# --- binding -------------------------------------------------------------------


class Binder:
    """Resolves one request's placeholders and remembers which were used.

    ``undefined_name`` / ``undefined_value`` hold the message for the first
    placeholder (in resolution order) missing from the request's maps; the
    check that owns the ordering decides when to raise them.
    """

    __slots__ = ("names", "values", "used_names", "used_values", "undefined_name", "undefined_value", "undefined_any")

    def __init__(self, names: dict[str, str] | None, values: dict[str, Any] | None) -> None:
        self.names = names or {}
        self.values = values or {}
        self.used_names: set[str] = set()
        self.used_values: set[str] = set()
        self.reset()

    def reset(self) -> None:
        self.undefined_name: str | None = None
        self.undefined_value: str | None = None
        self.undefined_any: str | None = None

    def _missing(self, message: str, is_name: bool) -> None:
        if is_name:
            if self.undefined_name is None:
                self.undefined_name = message
        elif self.undefined_value is None:
            self.undefined_value = message
        if self.undefined_any is None:
            self.undefined_any = message

    def path(self, path: Path) -> AttrPath:
        elements = path.elements
        for element in elements:
            if type(element) is str and element[0] == "#":
                break
        else:
            return AttrPath(elements)
        resolved: list[str | int] = []
        for element in elements:
            if type(element) is str and element[0] == "#":
                name = self.names.get(element)
                if name is None:
                    self._missing(
                        "An expression attribute name used in the document path is not defined; "
                        f"attribute name: {element}",
                        True,
                    )
                    name = element
                else:
                    self.used_names.add(element)
                resolved.append(name)
            else:
                resolved.append(element)
        return AttrPath(tuple(resolved))

    def value(self, ref: ValueRef) -> Literal:
        value = self.values.get(ref.name)
        if value is None:
            self._missing(
                f"An expression attribute value used in expression is not defined; attribute value: {ref.name}",
                False,
            )
            return Literal(ref.name, {"NULL": True})
        self.used_values.add(ref.name)
        return Literal(ref.name, value)

    def resolve(self, node: Any) -> Any:
        """``node`` with its placeholders resolved, in text order."""
        kind = type(node)
        if kind is Path:
            return self.path(node)
        if kind is ValueRef:
            return self.value(node)
        if kind is Compare:
            return Compare(node.op, self.resolve(node.left), self.resolve(node.right))
        if kind is Call:
            return Call(node.name, tuple(self.resolve(arg) for arg in node.args))
        if kind is Between:
            return Between(self.resolve(node.operand), self.resolve(node.low), self.resolve(node.high))
        if kind is In:
            return In(self.resolve(node.operand), tuple(self.resolve(o) for o in node.options))
        if kind is Arith:
            return Arith(node.op, self.resolve(node.left), self.resolve(node.right))
        raise TypeError(f"cannot resolve {kind.__name__}")


def _static_type(node: Any) -> str | None:
    """The type DynamoDB knows before reading the item (literals, size())."""
    kind = type(node)
    if kind is Literal:
        return type_of(node.value)
    if kind is Call:
        if node.name == "size":
            return "N"
        if node.name in ("begins_with", "attribute_type", "contains"):
            return "BOOL"
    return None


def _operand_type_error(operator: str, operand_type: str) -> str:
    return (
        "Incorrect operand type for operator or function; "
        f"operator or function: {operator}, operand type: {operand_type}"
    )


def _operand_count_error(name: str, count: int) -> str:
    return (
        "Incorrect number of operands for operator or function; "
        f"operator or function: {name}, number of operands: {count}"
    )


def _distinct_error(operator: str, path: AttrPath) -> str:
    return (
        "The first operand must be distinct from the remaining operands for this operator or function; "
        f"operator: {operator}, first operand: {path_text(path.elements)}"
    )


def _same_path(first: Any, other: Any) -> bool:
    return type(first) is AttrPath and type(other) is AttrPath and first.elements == other.elements


def _call_type_error(call: Call) -> str | None:
    name = call.name
    args = call.args
    if name == "attribute_exists" or name == "attribute_not_exists":
        if type(args[0]) is not AttrPath:
            return f"Operator or function requires a document path; operator or function: {name}"
    elif name == "begins_with":
        for arg in args:
            operand_type = _static_type(arg)
            if operand_type and operand_type != "S" and operand_type != "B":
                return _operand_type_error(name, operand_type)
    elif name == "attribute_type":
        operand_type = _static_type(args[1])
        if operand_type != "S":
            return _operand_type_error(name, operand_type or "{NS,SS,L,BS,N,M,B,BOOL,NULL,S}")
        type_name = args[1].value["S"]
        if type_name not in _ATTRIBUTE_TYPES:
            return (
                f"Invalid attribute type name found; type: {type_name}, "
                "valid types: {B,NULL,SS,BOOL,L,BS,N,NS,S,M}"
            )
    elif name == "size":
        operand_type = _static_type(args[0])
        if operand_type in ("N", "BOOL", "NULL"):
            return _operand_type_error(name, operand_type)
    return None


def _bound_text(value: dict[str, Any]) -> str:
    operand_type = type_of(value)
    return f"AttributeValue: {{{operand_type}:{value[operand_type]}}}"


def _leaf_type_error(leaf: Any) -> str | None:
    kind = type(leaf)
    if kind is Compare:
        if leaf.op in ("<", "<=", ">", ">="):
            for operand in (leaf.left, leaf.right):
                if type(operand) is Literal and type_of(operand.value) not in _ORDERABLE:
                    return _operand_type_error(leaf.op, type_of(operand.value))
    elif kind is Between:
        for operand in (leaf.operand, leaf.low, leaf.high):
            if type(operand) is Literal and type_of(operand.value) not in _ORDERABLE:
                return _operand_type_error("BETWEEN", type_of(operand.value))
        low, high = leaf.low, leaf.high
        if type(low) is Literal and type(high) is Literal:
            low_type, high_type = type_of(low.value), type_of(high.value)
            bounds = f"lower bound operand: {_bound_text(low.value)}, upper bound operand: {_bound_text(high.value)}"
            if low_type != high_type:
                return f"The BETWEEN operator requires same data type for lower and upper bounds; {bounds}"
            if (compare_scalars(low.value, high.value) or 0) > 0:
                return (
                    "The BETWEEN operator requires upper bound to be greater than or equal to lower bound; "
                    f"{bounds}"
                )
    return None


def _calls(node: Any, out: list[Call]) -> list[Call]:
    """The calls in a leaf, innermost first (only calls contain calls)."""
    for operand in _children(node):
        if type(operand) is Call:
            _calls(operand, out)
    if type(node) is Call:
        out.append(node)
    return out


def _leaf_error(leaf: Any) -> str | None:
    calls = _calls(leaf, [])
    for call in calls:
        if len(call.args) != CONDITION_FUNCTIONS[call.name]:
            return _operand_count_error(call.name, len(call.args))
    for call in calls:
        if len(call.args) == 2 and _same_path(call.args[0], call.args[1]):
            return _distinct_error(call.name, call.args[0])
    kind = type(leaf)
    if kind is Compare and _same_path(leaf.left, leaf.right):
        return _distinct_error(leaf.op, leaf.left)
    if kind is Between and (_same_path(leaf.operand, leaf.low) or _same_path(leaf.operand, leaf.high)):
        return _distinct_error("BETWEEN", leaf.operand)
    if kind is In and any(_same_path(leaf.operand, option) for option in leaf.options):
        return _distinct_error("IN", leaf.operand)
    for call in calls:
        problem = _call_type_error(call)
        if problem:
            return problem
    return _leaf_type_error(leaf)


def bind_condition(tree: Any, binder: Binder) -> Any:
    """The condition with placeholders resolved; raises ExpressionError."""
    kind = type(tree)
    if kind is And or kind is Or:
        return kind(tuple(bind_condition(item, binder) for item in tree.items))
    if kind is Not:
        return Not(bind_condition(tree.item, binder))
    binder.reset()
    leaf = binder.resolve(tree)
    if binder.undefined_any:
        raise ExpressionError(binder.undefined_any)
    problem = _leaf_error(leaf)
    if problem:
        raise ExpressionError(problem)
    return leaf


def _path_problems(paths: list[tuple[str | int, ...]]) -> str | None:
    """Overlap (one path a prefix of another) beats conflict (list vs map)."""
    conflict = None
    if all(len(p) == 1 for p in paths):
        seen: set[str | int] = set()
        for p in paths:
            if p[0] in seen:
                return _overlap(p, p)
            seen.add(p[0])
        return None
    for index, path in enumerate(paths):
        for earlier in paths[:index]:
            for mine, theirs in zip(path, earlier):
                if type(mine) is not type(theirs):
                    if conflict is None:
                        conflict = (
                            "Two document paths conflict with each other; must remove or rewrite one of these "
                            f"paths; path one: {path_text(earlier)}, path two: {path_text(path)}"
                        )
                    break
                if mine != theirs:
                    break
            else:
                return _overlap(earlier, path)
    return conflict


def _overlap(earlier: tuple[str | int, ...], path: tuple[str | int, ...]) -> str:
    return (
        "Two document paths overlap with each other; must remove or rewrite one of these paths; "
        f"path one: {path_text(earlier)}, path two: {path_text(path)}"
    )


def bind_update(tree: UpdateExpr, binder: Binder) -> list[Any]:
    """The update's actions, in text order, placeholders resolved."""
    binder.reset()
    actions: list[Any] = []
    for clause in tree.clauses:
        for action in clause.actions:
            kind = type(action)
            path = binder.path(action.path)
            if kind is RemoveAction:
                actions.append(RemoveAction(path))
            elif kind is SetAction:
                actions.append(SetAction(path, binder.resolve(action.value)))
            else:
                actions.append(kind(path, binder.value(action.value)))
    if binder.undefined_name:
        raise ExpressionError(binder.undefined_name)
    if binder.undefined_value:
        raise ExpressionError(binder.undefined_value)
    problem = _path_problems([action.path.elements for action in actions])
    if problem:
        raise ExpressionError(problem)
    for action in actions:
        kind = type(action)
        if kind is AddAction or kind is DeleteAction:
            allowed, operator = (_ADD_TYPES, "ADD") if kind is AddAction else (_DELETE_TYPES, "DELETE")
            operand_type = type_of(action.value.value)
            if operand_type not in allowed:
                raise ExpressionError(
                    "Incorrect operand type for operator or function; "
                    f"operator: {operator}, operand type: {_LONG_TYPE_NAMES[operand_type]}"
                )
    for action in actions:
        if type(action) is SetAction:
            for node in _postorder(action.value, (Call, Arith)):
                problem = _update_function_error(node)
                if problem:
                    raise ExpressionError(problem)
    return actions


def _update_function_error(node: Any) -> str | None:
    if type(node) is Arith:
        for operand in (node.left, node.right):
            if type(operand) is Literal and type_of(operand.value) != "N":
                return _operand_type_error(node.op, type_of(operand.value))
        return None
    if len(node.args) != UPDATE_FUNCTIONS[node.name]:
        return _operand_count_error(node.name, len(node.args))
    if node.name == "if_not_exists":
        if type(node.args[0]) is not AttrPath:
            return "Operator or function requires a document path; operator or function: if_not_exists"
    else:
        for operand in node.args:
            if type(operand) is Literal and type_of(operand.value) != "L":
                return _operand_type_error(node.name, type_of(operand.value))
    return None


def bind_projection(tree: ProjectionExpr, binder: Binder) -> list[tuple[str | int, ...]]:
    """The projection's paths, placeholders resolved."""
    binder.reset()
    paths = [binder.path(path).elements for path in tree.paths]
    if binder.undefined_name:
        raise ExpressionError(binder.undefined_name)
    problem = _path_problems(paths)
    if problem:
        raise ExpressionError(problem)
    return paths
