"""Step 2 of request validation: the declared constraints of ``router/schema``.

Required members, lengths, ranges, enums, patterns, map keys and values,
collected in DynamoDB's member order and reported together in one
``ValidationException``, at most ``limits.VALIDATION_ERRORS_MAX`` of them::

    2 validation errors detected: Value 'x' at 'tableName' failed to satisfy
    constraint: ...; Value null at 'key' failed to satisfy ...

Two compilations of the same schema node: ``compile_fast`` answers only
"does anything fail?" with no paths or messages built (the common case), and
``compile_constraints``, run only when it says yes, collects the failures
with DynamoDB's paths and wording.
"""

from __future__ import annotations

import re
from typing import Any, Callable

from meridian.model import limits

class Enough(Exception):
    """Ten constraint failures collected: DynamoDB reports no more."""


Errors = list[str]
ConstraintCheck = Callable[[Any, str, Errors], None]


def _fail(errors: Errors, value: Any, path: str, constraint: str) -> None:
    rendered = "null" if value is None else f"'{render(value)}'"
    errors.append(f"Value {rendered} at '{path}' failed to satisfy constraint: {constraint}")
    if len(errors) >= limits.VALIDATION_ERRORS_MAX:
        raise Enough


def _render_scalar(value: Any) -> str:
    t = type(value)
    if t is str:
        return value
    if t is bool:
        return "true" if value else "false"
    if value is None:
        return "null"
    return str(value)


def render(value: Any) -> str:
    """A value as DynamoDB (Java) prints it in a constraint message.

    Iterative: a request may nest as deep as the JSON parser allows, deeper
    than Python's recursion limit.
    """
    t = type(value)
    if t is not list and t is not dict:
        return _render_scalar(value)
    out: list[str] = []
    stack: list[Any] = [value]  # values to print, and closing brackets / separators as str
    while stack:
        x = stack.pop()
        if type(x) is str:
            out.append(x)
            continue
        x = x[0] if type(x) is tuple else x  # a tuple wraps a string value, told apart from the markers
        if type(x) is list:
            parts: list[Any] = ["]"]
            for i in range(len(x) - 1, -1, -1):
                parts.append(_wrap(x[i]))
                if i:
                    parts.append(", ")
            parts.append("[")
            stack.extend(parts)
        elif type(x) is dict:
            parts = ["}"]
            entries = list(x.items())
            for i in range(len(entries) - 1, -1, -1):
                k, v = entries[i]
                parts.append(_wrap(v))
                parts.append(f"{k}=")
                if i:
                    parts.append(", ")
            parts.append("{")
            stack.extend(parts)
        else:
            out.append(_render_scalar(x))
    return "".join(out)


def _wrap(value: Any) -> Any:
    """On ``render``'s stack a bare str is output; values are wrapped unless they are containers."""
    return value if type(value) in (list, dict) else (value,)


def java_length(value: Any) -> int:
    """Java counts string length in UTF-16 code units."""
    if type(value) is str and not value.isascii():
        return len(value.encode("utf-16-le")) // 2
    return len(value)


def lower_first(name: str) -> str:
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
        return lambda v: java_length(v) >= arg
    if kind == "maxLength":
        return lambda v: java_length(v) <= arg
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
    if ["notEmpty"] in checks:
        # An empty string breaks only "length >= 1", reported alone (DynamoDB
        # does not add the name pattern and length rules for '').
        rest = _compile_own_checks([c for c in checks if c != ["notEmpty"]])

        def not_empty_first(v: Any, path: str, errors: Errors) -> None:
            if v == "":
                _fail(errors, v, path, "Member must have length greater than or equal to 1")
            elif rest is not None:
                rest(v, path, errors)
        return not_empty_first
    for check in checks:
        kind = check[0]
        if kind in ("required", "tableName"):
            continue
        if kind == "bareMin":
            # Newer DynamoDB wording for a few members: the value is not
            # echoed and the member keeps its own capitalised name.
            bound, member = check[1], check[2]

            def bare_min(v: Any, path: str, errors: Errors, bound: int = bound, member: str = member) -> None:
                if v is not None and v < bound:
                    errors.append(f"Value at '{member}' failed to satisfy constraint: "
                                  f"Member must have value greater than or equal to {bound}")
                    if len(errors) >= limits.VALIDATION_ERRORS_MAX:
                        raise Enough
            steps.append(bare_min)
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


def compile_constraints(node: dict[str, Any]) -> ConstraintCheck | None:
    """A function appending this subtree's constraint failures; None when it has none."""
    own = _compile_own_checks(node.get("checks", []))
    kind = node["type"]
    children: ConstraintCheck | None = None
    if kind == "structure":
        members = [(name, lower_first(name), compile_constraints(child)) for name, child in node["members"]]
        members = [m for m in members if m[2] is not None]
        if members:
            def structure_members(v: Any, path: str, errors: Errors) -> None:
                for name, lower, check in members:
                    check(v.get(name), f"{path}.{lower}", errors)
            children = structure_members
    elif kind == "list":
        element = compile_constraints(node["member"])
        if element is not None:
            def list_elements(v: Any, path: str, errors: Errors) -> None:
                for i, x in enumerate(v, 1):
                    element(x, f"{path}.{i}.member", errors)
            children = list_elements
    elif kind == "map":
        value = compile_constraints(node["value"])
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


def compile_fast(node: dict[str, Any]) -> FastCheck | None:
    """True when the subtree breaks no constraint: the common case, with no paths or messages built.

    Mirrors ``compile_constraints``, which runs only when this says False.
    """
    checks = [c for c in node.get("checks", ()) if c[0] not in ("required", "tableName")]
    not_null = any(c[0] == "notNull" for c in checks)
    predicates: list[Callable[[Any], bool]] = []
    for check in checks:
        if check[0] == "notEmpty":
            predicates.append(lambda v: v != "")
        elif check[0] == "bareMin":
            predicates.append(lambda v, bound=check[1]: v >= bound)
        elif check[0] in ("keys", "values"):
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
        members = [(name, f) for name, child in node["members"] if (f := compile_fast(child)) is not None]
        if members:
            def members_ok(v: Any) -> bool:
                for name, ok in members:
                    if not ok(v.get(name)):
                        return False
                return True
            children = members_ok
    elif kind in ("list", "map"):
        element = compile_fast(node["member"] if kind == "list" else node["value"])
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
