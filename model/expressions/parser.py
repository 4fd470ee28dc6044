"""Recursive-descent parsers for the three expression grammars.

Condition grammar (ConditionExpression, FilterExpression and
KeyConditionExpression), lowest precedence first::

    condition := and (OR and)*
    and       := not (AND not)*
    not       := NOT* primary
    primary   := operand comparator operand
               | operand BETWEEN operand AND operand
               | operand IN '(' operand (',' operand)* ')'
               | function                       -- e.g. attribute_exists(a)
               | '(' condition ')'
    operand   := '(' operand ')' | function | :value | path
    path      := ( name | #name | '(' path ')' ) ( '.' (name | #name) | '[' int ']' )*
    function  := name '(' operand (',' operand)* ')'

Update grammar::

    update    := ( SET set (',' set)* | REMOVE path (',' path)*
                 | ADD path :value (',' ...)* | DELETE path :value (',' ...)* )+
    set       := path '=' value
    value     := term (('+' | '-') term)? | '(' term ('+' | '-') term ')'
    term      := '(' uoperand ')' | uoperand
    uoperand  := function | :value | path      -- paths without grouping here

Projection grammar::  path (',' path)*   -- again without grouping

Keywords (AND, OR, NOT, BETWEEN, IN; SET, REMOVE, ADD, DELETE) are
case-insensitive and cannot be attribute names.  Function names are
case-sensitive and only checked after parsing, so an unknown function is a
semantic error, not a syntax error (as in DynamoDB).

The condition grammar is ambiguous on '(' (a grouped condition, a grouped
operand or a grouped path), so its parser backtracks; paths and operands are
memoised by position so backtracking stays linear.  On failure the error
names the furthest token any alternative reached, like a PEG parser.

Checks that need only the text are done here and cached with the tree (see
``semantics.py``): the parse result carries the first such error instead of
raising it, because DynamoDB reports some binding errors of earlier
expressions before it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from ..limits import (
    CONDITION_NESTING_MAX,
    DOCUMENT_DEPTH_MAX,
    EXPRESSION_IN_OPERANDS_MAX,
    EXPRESSION_NESTING_MAX,
    EXPRESSION_OPERATORS_MAX,
    EXPRESSION_RECURSION_LIMIT,
)
from . import semantics
from .ast import (
    AddAction,
    And,
    Arith,
    Between,
    Call,
    Clause,
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
from .tokens import ExpressionError, Tokens, syntax_error_message, tokenize

__all__ = [
    "ParsedCondition",
    "ParsedUpdate",
    "ParsedProjection",
    "parse_condition",
    "parse_update",
    "parse_projection",
]

_CONDITION_KEYWORDS = frozenset({"AND", "OR", "NOT", "BETWEEN", "IN"})
_UPDATE_KEYWORDS = frozenset({"SET", "REMOVE", "ADD", "DELETE"})
_NO_KEYWORDS: frozenset[str] = frozenset()
_COMPARATORS = frozenset({"=", "<>", "<", "<=", ">", ">="})
_OPERATOR_WORDS = frozenset({"AND", "OR", "NOT", "BETWEEN", "IN"})
_REDUNDANT = "The expression has redundant parentheses;"

# A condition may nest CONDITION_NESTING_MAX deep (DynamoDB's 300 operators allow
# that much); this recursive descent takes about six frames a parenthesis level, and
# the tree walks after it one or two a node, so the interpreter's bound is raised to
# fit.  Calls between Python functions use no C stack (Python 3.11+).
if sys.getrecursionlimit() < EXPRESSION_RECURSION_LIMIT:
    sys.setrecursionlimit(EXPRESSION_RECURSION_LIMIT)


@dataclass(frozen=True, slots=True)
class ParsedCondition:
    tree: Any
    static_error: str | None


@dataclass(frozen=True, slots=True)
class ParsedUpdate:
    tree: UpdateExpr
    static_error: str | None
    operator_count: int


@dataclass(frozen=True, slots=True)
class ParsedProjection:
    tree: ProjectionExpr
    static_error: str | None


class _Parser:
    """Shared machinery: token access, failure tracking, document paths."""

    __slots__ = ("tokens", "kinds", "texts", "upper", "keywords", "grouping", "furthest", "path_memo")

    def __init__(self, tokens: Tokens, keywords: frozenset[str], grouping: bool) -> None:
        self.tokens = tokens
        self.kinds = tokens.kinds
        self.texts = tokens.texts
        self.upper = tokens.upper
        self.keywords = keywords
        self.grouping = grouping
        self.furthest = 0
        self.path_memo: dict[int, tuple[Path, int] | None] = {}

    def fail(self, index: int) -> None:
        if index > self.furthest:
            self.furthest = index

    def syntax_error(self, index: int | None = None) -> ExpressionError:
        if index is not None:
            self.fail(index)
        return ExpressionError(syntax_error_message(self.tokens, self.furthest))

    def is_name(self, i: int) -> bool:
        kind = self.kinds[i]
        return kind == "name" or (kind == "id" and self.upper[i] not in self.keywords)

    def path(self, i: int) -> tuple[Path, int] | None:
        if i in self.path_memo:
            return self.path_memo[i]
        result = self._path(i)
        self.path_memo[i] = result
        return result

    def _path(self, i: int) -> tuple[Path, int] | None:
        kinds = self.kinds
        texts = self.texts
        if self.grouping and kinds[i] == "(":
            inner = self.path(i + 1)
            if inner is None:
                return None
            group, j = inner
            if kinds[j] != ")":
                self.fail(j)
                return None
            elements: list[str | int] = list(group.elements)
            j += 1
        elif self.is_name(i):
            elements = [texts[i]]
            j = i + 1
        else:
            self.fail(i)
            return None
        while True:
            kind = kinds[j]
            if kind == ".":
                if not self.is_name(j + 1):
                    self.fail(j + 1)
                    return None
                elements.append(texts[j + 1])
                j += 2
            elif kind == "[":
                if kinds[j + 1] != "int":
                    self.fail(j + 1)
                    return None
                if kinds[j + 2] != "]":
                    self.fail(j + 2)
                    return None
                elements.append(int(texts[j + 1]))
                j += 3
            else:
                break
        if len(elements) > DOCUMENT_DEPTH_MAX:
            raise ExpressionError(
                f"The document path has too many nesting levels; nesting levels: {len(elements)}"
            )
        return Path(tuple(elements)), j

    def call_args(self, i: int, operand) -> tuple[list[Any], int] | None:
        """``operand (',' operand)*`` starting at ``i``."""
        first = operand(i)
        if first is None:
            return None
        args = [first[0]]
        j = first[1]
        while self.kinds[j] == ",":
            nxt = operand(j + 1)
            if nxt is None:
                return None
            args.append(nxt[0])
            j = nxt[1]
        return args, j


class _ConditionParser(_Parser):
    __slots__ = ("operand_memo", "nesting")

    def __init__(self, tokens: Tokens) -> None:
        super().__init__(tokens, _CONDITION_KEYWORDS, grouping=True)
        self.operand_memo: dict[int, tuple[Any, int] | None] = {}
        self.nesting = 0  # NOTs and grouping parentheses around the current position

    def _nest(self, levels: int, index: int) -> None:
        self.nesting += levels
        if self.nesting > CONDITION_NESTING_MAX:
            raise ExpressionError(syntax_error_message(self.tokens, index))

    def condition(self, i: int) -> tuple[Any, int] | None:
        return self._chain(i, "OR", self.conjunction, Or)

    def conjunction(self, i: int) -> tuple[Any, int] | None:
        return self._chain(i, "AND", self.negation, And)

    def _chain(self, i: int, keyword: str, item, node_type) -> tuple[Any, int] | None:
        first = item(i)
        if first is None:
            return None
        node, j = first
        items = None
        upper = self.upper
        while upper[j] == keyword:
            nxt = item(j + 1)
            if nxt is None:
                return None
            if items is None:
                items = [node]
            items.append(nxt[0])
            j = nxt[1]
        if items is None:
            return node, j
        return node_type(tuple(items)), j

    def negation(self, i: int) -> tuple[Any, int] | None:
        count = 0
        upper = self.upper
        while upper[i] == "NOT":
            count += 1
            i += 1
        if count == 0:
            return self.primary(i)
        self._nest(count, i - 1)
        result = self.primary(i)
        self.nesting -= count
        if result is None:
            return result
        node, j = result
        for _ in range(count):
            node = Not(node)
        return node, j

    def primary(self, i: int) -> tuple[Any, int] | None:
        result = self.leaf(i)
        if result is not None:
            return result
        if self.kinds[i] != "(":
            self.fail(i)
            return None
        self._nest(1, i)
        inner = self.condition(i + 1)
        self.nesting -= 1
        if inner is None:
            return None
        node, j = inner
        if self.kinds[j] != ")":
            self.fail(j)
            return None
        return node, j + 1

    def leaf(self, i: int) -> tuple[Any, int] | None:
        first = self.operand_p(i)
        if first is None:
            return None
        left, j = first
        kind = self.kinds[j]
        if kind in _COMPARATORS:
            right = self.operand_p(j + 1)
            if right is None:
                return None
            return Compare(kind, left, right[0]), right[1]
        keyword = self.upper[j]
        if keyword == "BETWEEN":
            low = self.operand_p(j + 1)
            if low is None:
                return None
            k = low[1]
            if self.upper[k] != "AND":
                self.fail(k)
                return None
            high = self.operand_p(k + 1)
            if high is None:
                return None
            return Between(left, low[0], high[0]), high[1]
        if keyword == "IN":
            if self.kinds[j + 1] != "(":
                self.fail(j + 1)
                return None
            listed = self.call_args(j + 2, self.operand_p)
            if listed is None:
                return None
            options, k = listed
            if self.kinds[k] != ")":
                self.fail(k)
                return None
            if len(options) >= EXPRESSION_IN_OPERANDS_MAX:
                raise ExpressionError(
                    "The IN operator is provided with too many operands; "
                    f"number of operands: {len(options) + 1}"
                )
            return In(left, tuple(options)), k + 1
        if type(left) is Call:
            return left, j
        self.fail(j)
        return None

    def operand_p(self, i: int) -> tuple[Any, int] | None:
        kinds = self.kinds
        if kinds[i] == "(":
            inner = self.operand(i + 1)
            if inner is not None:
                close = inner[1]
                if kinds[close] != ")":
                    self.fail(close)
                elif kinds[close + 1] != "." and kinds[close + 1] != "[":
                    return inner[0], close + 1
                # else "(a.b).c": a grouped path, parsed by operand() below
        return self.operand(i)

    def operand(self, i: int) -> tuple[Any, int] | None:
        if i in self.operand_memo:
            return self.operand_memo[i]
        result = self._operand(i)
        self.operand_memo[i] = result
        return result

    def _operand(self, i: int) -> tuple[Any, int] | None:
        kinds = self.kinds
        kind = kinds[i]
        if kind == "id" and kinds[i + 1] == "(" and self.upper[i] not in self.keywords:
            listed = self.call_args(i + 2, self.operand_p)
            if listed is not None:
                args, j = listed
                if kinds[j] == ")":
                    return Call(self.texts[i], tuple(args)), j + 1
                self.fail(j)
        elif kind == "value":
            return ValueRef(self.texts[i]), i + 1
        return self.path(i)


class _UpdateParser(_Parser):
    __slots__ = ()

    def __init__(self, tokens: Tokens) -> None:
        super().__init__(tokens, _UPDATE_KEYWORDS, grouping=False)

    def update(self) -> UpdateExpr:
        clauses = []
        i = 0
        upper = self.upper
        while True:
            keyword = upper[i]
            if keyword not in _UPDATE_KEYWORDS:
                raise self.syntax_error(i)
            action = _CLAUSE_ACTIONS[keyword](self)
            listed = self.call_args(i + 1, action)
            if listed is None:
                raise self.syntax_error()
            actions, i = listed
            clauses.append(Clause(keyword, tuple(actions)))
            if self.kinds[i] == "eof":
                return UpdateExpr(tuple(clauses))

    def set_action(self, i: int) -> tuple[SetAction, int] | None:
        target = self.path(i)
        if target is None:
            return None
        path, j = target
        if self.kinds[j] != "=":
            self.fail(j)
            return None
        value = self.set_value(j + 1)
        if value is None:
            return None
        return SetAction(path, value[0]), value[1]

    def set_value(self, i: int) -> tuple[Any, int] | None:
        result = self.arithmetic(i)
        if result is not None or self.kinds[i] != "(":
            return result
        inner = self.arithmetic(i + 1)
        if inner is None:
            return None
        node, j = inner
        if self.kinds[j] != ")":
            self.fail(j)
            return None
        return node, j + 1

    def arithmetic(self, i: int) -> tuple[Any, int] | None:
        left = self.term(i)
        if left is None:
            return None
        node, j = left
        op = self.kinds[j]
        if op != "+" and op != "-":
            return left
        right = self.term(j + 1)
        if right is None:
            return None
        return Arith(op, node, right[0]), right[1]

    def term(self, i: int) -> tuple[Any, int] | None:
        if self.kinds[i] == "(":
            inner = self.operand(i + 1)
            if inner is None:
                return None
            if self.kinds[inner[1]] != ")":
                self.fail(inner[1])
                return None
            return inner[0], inner[1] + 1
        return self.operand(i)

    def operand(self, i: int) -> tuple[Any, int] | None:
        kinds = self.kinds
        kind = kinds[i]
        if kind == "id" and kinds[i + 1] == "(" and self.upper[i] not in self.keywords:
            listed = self.call_args(i + 2, self.term)
            if listed is None:
                return None
            args, j = listed
            if kinds[j] != ")":
                self.fail(j)
                return None
            return Call(self.texts[i], tuple(args)), j + 1
        if kind == "value":
            return ValueRef(self.texts[i]), i + 1
        return self.path(i)

    def remove_action(self, i: int) -> tuple[RemoveAction, int] | None:
        target = self.path(i)
        if target is None:
            return None
        return RemoveAction(target[0]), target[1]

    def add_action(self, i: int) -> tuple[AddAction, int] | None:
        return self._path_value(i, AddAction)

    def delete_action(self, i: int) -> tuple[DeleteAction, int] | None:
        return self._path_value(i, DeleteAction)

    def _path_value(self, i: int, node_type) -> tuple[Any, int] | None:
        target = self.path(i)
        if target is None:
            return None
        path, j = target
        if self.kinds[j] != "value":
            self.fail(j)
            return None
        return node_type(path, ValueRef(self.texts[j])), j + 1


_CLAUSE_ACTIONS = {
    "SET": lambda parser: parser.set_action,
    "REMOVE": lambda parser: parser.remove_action,
    "ADD": lambda parser: parser.add_action,
    "DELETE": lambda parser: parser.delete_action,
}


def _check_parens_depth(tokens: Tokens, depth_max: int = EXPRESSION_NESTING_MAX) -> None:
    depth = 0
    for index, kind in enumerate(tokens.kinds):
        if kind == "(":
            depth += 1
            if depth > depth_max:
                if _redundant_parens(tokens):  # the only way this deep within DynamoDB's operators
                    raise ExpressionError(_REDUNDANT)
                raise ExpressionError(syntax_error_message(tokens, index))
        elif kind == ")":
            depth -= 1


def _check_operator_count(tokens: Tokens) -> None:
    """DynamoDB's 300 operators in a condition: comparators, AND, OR, NOT, BETWEEN (its
    AND included) and IN; it reports the count at the first one too many (a live reply:
    "operator count: 301" for an expression of 909).  Parentheses and functions are not
    counted (a guess after ScyllaDB's AWS-run tests); counted before parsing, so before
    syntax errors (a guess)."""
    count = 0
    betweens = 0
    for kind, word in zip(tokens.kinds, tokens.upper):
        if kind in _COMPARATORS:
            count += 1
        elif kind == "id" and word in _OPERATOR_WORDS:
            if word == "AND" and betweens:
                betweens -= 1
                continue
            betweens += word == "BETWEEN"
            count += 1
        else:
            continue
        if count > EXPRESSION_OPERATORS_MAX:
            raise ExpressionError(f"The expression contains too many operators; operator count: {count}")


def _redundant_parens(tokens: Tokens) -> bool:
    """True when a pair of parentheses directly encloses another pair.

    ``((a = b))``, ``a > ((b))`` and ``((a.b)).c`` are redundant; the
    parentheses of a function call or of ``IN (...)`` are not counted as
    the outer pair, so ``contains((a), b)`` is fine.
    """
    kinds = tokens.kinds
    upper = tokens.upper
    closing: dict[int, int] = {}
    stack: list[int] = []
    for index, kind in enumerate(kinds):
        if kind == "(":
            stack.append(index)
        elif kind == ")" and stack:
            closing[stack.pop()] = index
    for opening, close in closing.items():
        if kinds[opening + 1] != "(" or closing.get(opening + 1) != close - 1:
            continue
        before = opening - 1
        if before >= 0 and kinds[before] == "id":
            word = upper[before]
            if word not in _CONDITION_KEYWORDS or word == "IN":
                continue
        return True
    return False


def parse_condition(text: str) -> ParsedCondition:
    """Parse a condition, filter or key condition; raises ExpressionError."""
    tokens = tokenize(text)
    _check_operator_count(tokens)
    _check_parens_depth(tokens, CONDITION_NESTING_MAX)
    parser = _ConditionParser(tokens)
    result = parser.condition(0)
    if result is None or tokens.kinds[result[1]] != "eof":
        raise parser.syntax_error(None if result is None else result[1])
    tree = result[0]
    if _redundant_parens(tokens):
        return ParsedCondition(tree, _REDUNDANT)
    return ParsedCondition(tree, semantics.condition_static_error(tree))


def parse_update(text: str) -> ParsedUpdate:
    """Parse an UpdateExpression; raises ExpressionError."""
    tokens = tokenize(text)
    _check_parens_depth(tokens)
    parser = _UpdateParser(tokens)
    tree = parser.update()
    return ParsedUpdate(tree, semantics.update_static_error(tree), semantics.operator_count(tree))


def parse_projection(text: str) -> ParsedProjection:
    """Parse a ProjectionExpression; raises ExpressionError."""
    tokens = tokenize(text)
    parser = _Parser(tokens, _NO_KEYWORDS, grouping=False)
    listed = parser.call_args(0, parser.path)
    if listed is None or tokens.kinds[listed[1]] != "eof":
        raise parser.syntax_error(None if listed is None else listed[1])
    tree = ProjectionExpr(tuple(listed[0]))
    return ParsedProjection(tree, semantics.projection_static_error(tree))
