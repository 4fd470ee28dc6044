"""PartiQL's tokens, as DynamoDB's PartiQL reads them.

Every token carries where it starts (line and column, both from 1, counted
in characters) and its length, because DynamoDB names positions in some of
its messages as ``at <line>:<column>:<length>``.

Kinds: ``IDENT`` (an unquoted name or keyword; keywords are matched case-
insensitively by the parser), ``QIDENT`` (``"double-quoted"``: always a name,
case kept), ``STRING`` (``'single-quoted'``, ``''`` for a quote), ``NUMBER``
(digits, a point, an exponent; the sign is the parser's), ``ION``
(```backquoted```), ``PARAM`` (``?``), ``OP`` (punctuation) and ``EOF``.
Comments are ``-- to the end of the line`` and ``/* ... */``; a ``#``
comment or an unterminated block comment is a statement DynamoDB cannot
read, reported with nothing after the colon.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import PartiQLSyntaxError

__all__ = ["Token", "tokenize"]

# Longest first: "<<" before "<", "<=" before "<".
_OPERATORS = ("<<", ">>", "<>", "!=", "<=", ">=", "||", "=", "<", ">", "+", "-", "*", "/", "%",
              ".", ",", "(", ")", "[", "]", "{", "}", ":", "?", ";")
_IDENT_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_$")
_IDENT_PART = _IDENT_START | frozenset("0123456789")
_DIGITS = frozenset("0123456789")


@dataclass(frozen=True, slots=True)
class Token:
    kind: str
    text: str  # the value: a name, a string's content, a number's text, an operator
    line: int
    column: int
    length: int

    @property
    def upper(self) -> str:
        return self.text.upper() if self.kind == "IDENT" else ""

    def where(self) -> str:
        return f"{self.line}:{self.column}:{self.length}"


class _Cursor:
    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0
        self.line = 1
        self.line_start = 0

    def column(self, index: int) -> int:
        return index - self.line_start + 1

    def advance_to(self, end: int) -> None:
        """Move to ``end``, counting the line breaks passed."""
        text = self.text
        while self.i < end:
            if text[self.i] == "\n":
                self.line += 1
                self.line_start = self.i + 1
            self.i += 1


def tokenize(text: str) -> list[Token]:
    cur = _Cursor(text)
    out: list[Token] = []
    n = len(text)
    while True:
        _skip_space_and_comments(cur)
        if cur.i >= n:
            out.append(Token("EOF", "", cur.line, cur.column(cur.i), 0))
            return out
        out.append(_next(cur))


def _skip_space_and_comments(cur: _Cursor) -> None:
    text, n = cur.text, len(cur.text)
    while cur.i < n:
        c = text[cur.i]
        if c.isspace():
            cur.advance_to(cur.i + 1)
        elif text.startswith("--", cur.i):
            end = text.find("\n", cur.i)
            cur.advance_to(n if end < 0 else end)
        elif text.startswith("/*", cur.i):
            end = text.find("*/", cur.i + 2)
            if end < 0:
                raise PartiQLSyntaxError("")
            cur.advance_to(end + 2)
        else:
            return


def _next(cur: _Cursor) -> Token:
    text, start = cur.text, cur.i
    line, column = cur.line, cur.column(start)
    c = text[start]
    if c == "'" or c == '"' or c == "`":
        value, end = _quoted(text, start, c)
        cur.advance_to(end)
        kind = {"'": "STRING", '"': "QIDENT", "`": "ION"}[c]
        return Token(kind, value, line, column, end - start)
    if c in _DIGITS or (c == "." and start + 1 < len(text) and text[start + 1] in _DIGITS):
        end = _number_end(text, start)
        cur.advance_to(end)
        return Token("NUMBER", text[start:end], line, column, end - start)
    if c in _IDENT_START:
        end = start + 1
        while end < len(text) and text[end] in _IDENT_PART:
            end += 1
        cur.advance_to(end)
        return Token("IDENT", text[start:end], line, column, end - start)
    for op in _OPERATORS:
        if text.startswith(op, start):
            cur.advance_to(start + len(op))
            return Token("PARAM" if op == "?" else "OP", op, line, column, len(op))
    # '#', '@', '&' and the like: nothing DynamoDB can read.
    raise PartiQLSyntaxError("")


def _quoted(text: str, start: int, quote: str) -> tuple[str, int]:
    """The content of a quoted token (a doubled quote stands for one) and where it ends."""
    parts: list[str] = []
    i = start + 1
    n = len(text)
    while i < n:
        end = text.find(quote, i)
        if end < 0:
            break
        parts.append(text[i:end])
        if end + 1 < n and text[end + 1] == quote:
            parts.append(quote)
            i = end + 2
            continue
        return "".join(parts), end + 1
    raise PartiQLSyntaxError("")


def _number_end(text: str, start: int) -> int:
    n = len(text)
    i = start
    while i < n and text[i] in _DIGITS:
        i += 1
    if i < n and text[i] == "." and (i + 1 >= n or text[i + 1] in _DIGITS or i > start):
        i += 1
        while i < n and text[i] in _DIGITS:
            i += 1
    if i < n and text[i] in "eE":
        j = i + 1
        if j < n and text[j] in "+-":
            j += 1
        if j < n and text[j] in _DIGITS:
            while j < n and text[j] in _DIGITS:
                j += 1
            i = j
    return i
