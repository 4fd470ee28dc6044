"""DynamoDB's PartiQL statements, parsed into ``ast`` trees (no I/O).

    statement := select | insert | update | delete | from-update | exists
    select    := SELECT ( '*' | path {',' path} ) FROM source [WHERE expr]
                 [ORDER BY path [ASC|DESC] {',' path [ASC|DESC]}]
    insert    := INSERT INTO table VALUE expr
    update    := UPDATE source clause {clause} [WHERE expr] [returning]
    from-update := FROM source WHERE expr clause {clause} [returning]
    delete    := DELETE FROM source [WHERE expr] [returning]
    exists    := EXISTS '(' select ')'
    clause    := SET path '=' expr {',' path '=' expr} | REMOVE path {',' path}
    returning := RETURNING (ALL | MODIFIED) (OLD | NEW) '*'
    source    := name ['.' name]          name: "quoted" or bare

Expressions, loosest first: OR, AND, NOT, then comparison / IS / IN /
BETWEEN, then + and -, unary minus, and primaries (literals, ``?``, paths,
calls, ``[...]``, ``{...}``, ``<<...>>``, parentheses).  Keywords are
case-insensitive; ``?`` parameters are numbered left to right.
"""

from __future__ import annotations

from typing import Any

from . import ast
from .errors import EXPECTED_DML, INVALID_PATH_DOT, LEFTOVER, UNEXPECTED_TERM, PartiQLSyntaxError, refused
from .lexer import Token, tokenize

__all__ = ["parse", "parse_statement"]

ALIASING = "Aliasing is not supported"
FROM_PATH = "A path may contain at most 2 components in the FROM clause"
STAR_AND_OTHERS = "Other attributes should not be present in the projection when '*' is used."
VALUE_PROJECTION = "Select projection doesn't support value or pivot keywords"
UNEXPECTED_PATH_COMPONENT = "Unexpected path component"
RETURNING_SYNTAX = "Expected '*' after ( MODIFIED | ALL ) ( NEW | OLD ) in RETURNING clause"
RETURNING_MULTIPLE = "Invalid syntax with multiple returning elements in RETURNING clause"
INSERT_RETURNING = "RETURNING is not supported in INSERT"
INSERT_MANY = ('Unsupported operation: Inserting multiple items in a single statement is not supported, use '
               '"INSERT INTO tableName VALUE item" instead')
WILDCARD_PATH = "Wildcard path component like a[*].b are not supported"
UNPIVOT_PATH = "Unpivot path component like a.*.b are not supported"

_COMPARISONS = {"=": "=", "<>": "<>", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_CLAUSE_WORDS = frozenset({"WHERE", "ORDER", "SET", "REMOVE", "RETURNING", "VALUE", "VALUES"})
# partiql-lang's reserved words that most often meet a path: after a dot they end it (quote them to use them).
_DOT_RESERVED = frozenset({"INNER", "OUTER", "LEFT", "RIGHT", "FULL", "CROSS", "JOIN", "ON", "SELECT", "FROM",
                           "WHERE", "AND", "OR", "NOT", "IN", "IS", "AS", "AT", "BY", "ORDER", "GROUP", "HAVING",
                           "LIMIT", "OFFSET", "VALUE", "VALUES", "SET", "NULL", "MISSING", "TRUE", "FALSE"})
_LITERAL_WORDS = {"TRUE": ("bool", True), "FALSE": ("bool", False), "NULL": ("null", None),
                  "MISSING": ("missing", None)}


def parse_statement(text: str) -> ast.Statement:
    """Parse one statement; raises ``PartiQLSyntaxError`` or a refusal (ValidationException)."""
    return parse(text)[0]


def parse(text: str) -> tuple[ast.Statement, int]:
    """The statement and how many ``?`` parameters it has."""
    parser = _Parser(tokenize(text))
    statement = parser.statement()
    return statement, parser.params


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.params = 0

    # --- token helpers ---------------------------------------------------------------

    @property
    def tok(self) -> Token:
        return self.tokens[self.pos]

    def peek(self, ahead: int = 1) -> Token:
        return self.tokens[min(self.pos + ahead, len(self.tokens) - 1)]

    def take(self) -> Token:
        token = self.tokens[self.pos]
        if token.kind != "EOF":
            self.pos += 1
        return token

    def is_word(self, *words: str) -> bool:
        return self.tok.kind == "IDENT" and self.tok.upper in words

    def is_op(self, *ops: str) -> bool:
        return self.tok.kind == "OP" and self.tok.text in ops

    def word(self, *words: str) -> Token:
        if not self.is_word(*words):
            raise PartiQLSyntaxError(f"Expected {words[0]}" if self.tok.kind != "EOF" else UNEXPECTED_TERM)
        return self.take()

    def op(self, op: str, name: str) -> Token:
        if not self.is_op(op):
            raise PartiQLSyntaxError(f"Expected {name}")
        return self.take()

    def end(self) -> None:
        if self.is_op(";"):
            self.take()
        if self.tok.kind != "EOF":
            raise PartiQLSyntaxError(LEFTOVER)

    # --- statements ------------------------------------------------------------------

    def statement(self) -> ast.Statement:
        if self.is_word("SELECT"):
            stmt: ast.Statement = self.select()
        elif self.is_word("INSERT"):
            stmt = self.insert()
        elif self.is_word("UPDATE"):
            self.take()
            source = self.source(alias_allowed=False)
            actions = self.clauses()
            condition = self.where()
            stmt = ast.Update(source, actions, condition, self.returning())
        elif self.is_word("DELETE"):
            self.take()
            self.word("FROM")
            source = self.source(alias_allowed=False)
            condition = self.where()
            stmt = ast.Delete(source, condition, self.returning())
        elif self.is_word("FROM"):
            self.take()
            source = self.source(alias_allowed=False)
            condition = self.where()
            if not self.is_word("SET", "REMOVE"):
                raise PartiQLSyntaxError(EXPECTED_DML)
            actions = self.clauses()
            stmt = ast.Update(source, actions, condition, self.returning())
        elif self.is_word("EXISTS") and self.peek().kind == "OP" and self.peek().text == "(":
            start = self.take()
            self.take()
            if not self.is_word("SELECT"):
                raise PartiQLSyntaxError(UNEXPECTED_TERM)
            select = self.select(nested=True)
            self.op(")", "RIGHT_PAREN")
            stmt = ast.Exists(select, start)
        else:
            raise PartiQLSyntaxError(EXPECTED_DML)
        self.end()
        return stmt

    def select(self, nested: bool = False) -> ast.Select:
        self.take()
        if self.is_word("VALUE", "PIVOT"):
            raise refused(VALUE_PROJECTION)
        projection: list[ast.Path] | None = []
        star = False
        while True:
            if self.is_op("*"):
                self.take()
                star = True
            else:
                item = self.expr()
                if self.is_word("AS") or (self.tok.kind in ("IDENT", "QIDENT") and not self.is_word("FROM")):
                    raise refused(ALIASING)
                if not isinstance(item, ast.Path):
                    raise refused(UNEXPECTED_PATH_COMPONENT, item.where)
                projection.append(item)  # type: ignore[union-attr]
            if not self.is_op(","):
                break
            self.take()
        if star:
            if projection:
                raise refused(STAR_AND_OTHERS)
            projection = None
        self.word("FROM")
        source = self.source(alias_allowed=False)
        condition = self.where()
        order: list[ast.OrderItem] = []
        if self.is_word("ORDER"):
            self.take()
            self.word("BY")
            while True:
                path = self.path_only()
                descending = False
                if self.is_word("ASC", "DESC"):
                    descending = self.take().upper == "DESC"
                order.append(ast.OrderItem(path, descending))
                if not self.is_op(","):
                    break
                self.take()
        return ast.Select(tuple(projection) if projection is not None else None, source, condition, tuple(order))

    def insert(self) -> ast.Insert:
        self.take()
        self.word("INTO")
        source = self.source(alias_allowed=True)
        if self.is_word("VALUES"):
            raise refused(INSERT_MANY)
        if not self.is_word("VALUE"):
            raise PartiQLSyntaxError(LEFTOVER if self.tok.kind != "EOF" else UNEXPECTED_TERM)
        self.take()
        value = self.expr()
        if self.is_word("RETURNING"):
            raise refused(INSERT_RETURNING)
        return ast.Insert(source, value)

    def source(self, alias_allowed: bool) -> ast.Source:
        start = self.tok
        names = [self.name()]
        while self.is_op("."):
            self.take()
            names.append(self.name())
        if len(names) > 2:
            raise refused(FROM_PATH)
        if self.is_word("AS") or (self.tok.kind in ("IDENT", "QIDENT") and self.tok.upper not in _CLAUSE_WORDS):
            if not alias_allowed:
                raise refused(ALIASING)
        return ast.Source(names[0], names[1] if len(names) > 1 else None, start)

    def name(self) -> str:
        token = self.tok
        if token.kind not in ("IDENT", "QIDENT"):
            raise PartiQLSyntaxError(UNEXPECTED_TERM)
        self.take()
        return token.text

    def where(self) -> Any | None:
        if not self.is_word("WHERE"):
            return None
        self.take()
        if self.tok.kind == "EOF":
            raise PartiQLSyntaxError(UNEXPECTED_TERM)
        return self.expr()

    def clauses(self) -> tuple[Any, ...]:
        actions: list[Any] = []
        while self.is_word("SET", "REMOVE"):
            keyword = self.take().upper
            while True:
                path = self.path_only()
                if keyword == "SET":
                    self.op("=", "EQ")
                    actions.append(ast.SetAction(path, self.expr()))
                else:
                    actions.append(ast.RemoveAction(path))
                if not self.is_op(","):
                    break
                self.take()
        if not actions:
            raise PartiQLSyntaxError(EXPECTED_DML)
        return tuple(actions)

    def returning(self) -> str | None:
        if not self.is_word("RETURNING"):
            return None
        self.take()
        if not self.is_word("ALL", "MODIFIED"):
            raise refused(RETURNING_SYNTAX)
        first = self.take().upper
        if not self.is_word("OLD", "NEW"):
            raise refused(RETURNING_SYNTAX)
        second = self.take().upper
        if not self.is_op("*"):
            raise refused(RETURNING_SYNTAX)
        self.take()
        if self.is_op(","):
            raise refused(RETURNING_MULTIPLE)
        return f"{first} {second}"

    def path_only(self) -> ast.Path:
        item = self.primary()
        if not isinstance(item, ast.Path):
            raise refused(UNEXPECTED_PATH_COMPONENT, item.where)
        return item

    # --- expressions -----------------------------------------------------------------

    def expr(self) -> Any:
        return self.disjunction()

    def disjunction(self) -> Any:
        start = self.tok
        items = [self.conjunction()]
        while self.is_word("OR"):
            self.take()
            items.append(self.conjunction())
        return items[0] if len(items) == 1 else ast.Or(tuple(items), start)

    def conjunction(self) -> Any:
        start = self.tok
        items = [self.negation()]
        while self.is_word("AND"):
            self.take()
            items.append(self.negation())
        return items[0] if len(items) == 1 else ast.And(tuple(items), start)

    def negation(self) -> Any:
        if self.is_word("NOT"):
            start = self.take()
            return ast.Not(self.negation(), start)
        return self.predicate()

    def predicate(self) -> Any:
        start = self.tok
        left = self.additive()
        if self.tok.kind == "OP" and self.tok.text in _COMPARISONS:
            op = _COMPARISONS[self.take().text]
            return ast.Compare(op, left, self.additive(), start)
        if self.is_word("IS"):
            self.take()
            negated = False
            if self.is_word("NOT"):
                self.take()
                negated = True
            if self.tok.kind != "IDENT":
                raise PartiQLSyntaxError(UNEXPECTED_TERM)
            return ast.Is(left, self.take().upper, negated, start)
        negated = False
        if self.is_word("NOT") and self.peek().kind == "IDENT" and self.peek().upper in ("IN", "BETWEEN"):
            self.take()
            negated = True
        if self.is_word("IN"):
            self.take()
            node: Any = ast.In(left, self.in_options(), start)
        elif self.is_word("BETWEEN"):
            self.take()
            low = self.additive()
            self.word("AND")
            node = ast.Between(left, low, self.additive(), start)
        else:
            return left
        return ast.Not(node, start) if negated else node

    def in_options(self) -> Any:
        if self.is_op("[", "("):
            opener = self.take()
            closer, name = ("]", "RIGHT_BRACKET") if opener.text == "[" else (")", "RIGHT_PAREN")
            items = [] if self.is_op(closer) else self.expr_list()
            self.op(closer, name)
            return tuple(items)
        if self.tok.kind == "PARAM":
            return self.primary()
        raise PartiQLSyntaxError(UNEXPECTED_TERM)

    def expr_list(self) -> list[Any]:
        items = [self.expr()]
        while self.is_op(","):
            self.take()
            items.append(self.expr())
        return items

    def additive(self) -> Any:
        left = self.unary()
        while self.is_op("+", "-"):
            token = self.take()
            left = ast.Arith(token.text, left, self.unary(), token)
        return left

    def unary(self) -> Any:
        if self.is_op("-", "+"):
            token = self.take()
            operand = self.unary()
            if token.text == "+":
                return operand
            if isinstance(operand, ast.Lit) and operand.kind == "number":
                text = operand.value[1:] if operand.value.startswith("-") else "-" + operand.value
                return ast.Lit("number", text, token)
            return ast.Neg(operand, token)
        return self.primary()

    def primary(self) -> Any:
        token = self.tok
        kind = token.kind
        if kind == "STRING":
            self.take()
            return ast.Lit("string", token.text, token)
        if kind == "NUMBER":
            self.take()
            return ast.Lit("number", token.text, token)
        if kind == "ION":
            self.take()
            return ast.Lit("ion", token.text, token)
        if kind == "PARAM":
            self.take()
            self.params += 1
            return ast.Param(self.params - 1, token)
        if kind == "QIDENT":
            self.take()
            return self.path_steps(token.text, token)
        if kind == "IDENT":
            upper = token.upper
            if upper in _LITERAL_WORDS:
                self.take()
                lit_kind, value = _LITERAL_WORDS[upper]
                return ast.Lit(lit_kind, value, token)
            self.take()
            if self.is_op("("):
                return self.call(token)
            return self.path_steps(token.text, token)
        if kind == "OP":
            if token.text == "(":
                self.take()
                inner = self.expr()
                self.op(")", "RIGHT_PAREN")
                return inner
            if token.text == "[":
                self.take()
                items = [] if self.is_op("]") else self.expr_list()
                self.op("]", "RIGHT_BRACKET")
                return ast.ListLit(tuple(items), token)
            if token.text == "{":
                return self.struct(token)
            if token.text == "<<":
                self.take()
                items = [] if self.is_op(">>") else self.expr_list()
                self.op(">>", "RIGHT_ANGLE_DOUBLE_BRACKET")
                return ast.BagLit(tuple(items), token)
        raise PartiQLSyntaxError(UNEXPECTED_TERM)

    def struct(self, start: Token) -> ast.StructLit:
        self.take()
        fields: list[tuple[Any, Any]] = []
        if not self.is_op("}"):
            while True:
                key = self.expr()
                self.op(":", "COLON")
                fields.append((key, self.expr()))
                if not self.is_op(","):
                    break
                self.take()
        self.op("}", "RIGHT_CURLY")
        return ast.StructLit(tuple(fields), start)

    def call(self, name: Token) -> ast.Call:
        self.take()
        args = [] if self.is_op(")") else self.expr_list()
        self.op(")", "RIGHT_PAREN")
        return ast.Call(name.text.lower(), tuple(args), name)

    def path_steps(self, head: str, start: Token) -> ast.Path:
        steps: list[str | int] = [head]
        while True:
            if self.is_op("."):
                self.take()
                if self.is_op("*"):
                    raise refused(UNPIVOT_PATH)
                if self.tok.kind not in ("IDENT", "QIDENT") or self.tok.upper in _DOT_RESERVED:
                    raise PartiQLSyntaxError(INVALID_PATH_DOT)
                steps.append(self.take().text)
            elif self.is_op("["):
                self.take()
                if self.is_op("*"):
                    raise refused(WILDCARD_PATH)
                index = self.expr()
                self.op("]", "RIGHT_BRACKET")
                steps.append(_index_step(index))
            else:
                return ast.Path(tuple(steps), start)


def _index_step(index: Any) -> str | int:
    if isinstance(index, ast.Lit) and index.kind == "string":
        return index.value
    if isinstance(index, ast.Lit) and index.kind == "number" and index.value.lstrip("-").isdigit():
        value = int(index.value)
        if value < 0:
            raise refused(f"List index is not within the allowable range; index: [{value}]")
        return value
    raise refused(UNEXPECTED_PATH_COMPONENT, index.where)
