"""The lexer shared by every expression grammar, and DynamoDB's syntax errors.

DynamoDB splits an expression into tokens before parsing it, and a syntax
error names the offending token and the text around it::

    Syntax error; token: "_", near: "SET _123"

``near`` runs from the start of the token before the offending one to the
end of the token after it (only what exists of the two).  At the end of the
input the token is ``<EOF>`` and ``near`` runs to the end of the text.

Token kinds:

    id      a bare name, ``[A-Za-z][A-Za-z0-9_]*`` (attribute, function, keyword)
    name    an attribute-name placeholder, ``#[A-Za-z0-9_]+``
    value   an attribute-value placeholder, ``:[A-Za-z0-9_]+``
    int     a run of digits (only valid as a list index)
    ( ) [ ] , . = <> < <= > >= + -   punctuation, the kind is the text itself
    other   any other single character (always a syntax error)
    eof     the end of the input

Whitespace is space, tab, CR and LF only, as in DynamoDB.
"""

from __future__ import annotations

import re

__all__ = ["ExpressionError", "Tokens", "tokenize", "syntax_error_message"]

_TOKEN_RE = re.compile(
    r"[ \t\r\n]*(?:"
    r"([A-Za-z][A-Za-z0-9_]*)"  # 1 id
    r"|(\#[A-Za-z0-9_]+)"  # 2 name placeholder
    r"|(:[A-Za-z0-9_]+)"  # 3 value placeholder
    r"|([0-9]+)"  # 4 int
    r"|(<>|<=|>=|[=<>()\[\],.+\-])"  # 5 punctuation
    r"|([^ \t\r\n]))",  # 6 anything else
    re.S,
)
_KIND_BY_GROUP = (None, "id", "name", "value", "int", None, "other")


class ExpressionError(Exception):
    """A problem with one expression, worded as DynamoDB words it.

    The message lacks the ``Invalid <Parameter>:`` prefix: the same grammar
    serves several parameters, so the caller that knows which one adds it.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Tokens:
    """An expression split into tokens: parallel lists, cheap to index.

    ``kinds[i]`` is the kind, ``texts[i]`` the source text, ``starts[i]`` and
    ``ends[i]`` its span in ``source``.  The last token is always ``eof``.
    ``upper[i]`` is the upper-cased text of ``id`` tokens (for keywords).
    """

    __slots__ = ("source", "kinds", "texts", "starts", "ends", "upper")

    def __init__(self, source: str) -> None:
        self.source = source
        kinds: list[str] = []
        texts: list[str] = []
        starts: list[int] = []
        ends: list[int] = []
        for match in _TOKEN_RE.finditer(source):
            group = match.lastindex
            text = match.group(group)
            kinds.append(_KIND_BY_GROUP[group] or text)
            texts.append(text)
            starts.append(match.start(group))
            ends.append(match.end())
        end = len(source)
        kinds.append("eof")
        texts.append("")
        starts.append(end)
        ends.append(end)
        self.kinds = kinds
        self.texts = texts
        self.starts = starts
        self.ends = ends
        self.upper = [text.upper() if kind == "id" else "" for kind, text in zip(kinds, texts)]

    def __len__(self) -> int:
        return len(self.kinds)


def tokenize(source: str) -> Tokens:
    return Tokens(source)


def syntax_error_message(tokens: Tokens, index: int) -> str:
    """DynamoDB's message for a syntax error at token ``index``."""
    last = len(tokens.kinds) - 1
    index = min(index, last)
    start = tokens.starts[index - 1] if index > 0 else tokens.starts[index]
    if index == last:
        token = "<EOF>"
        end = len(tokens.source)
    else:
        token = tokens.texts[index]
        end = tokens.ends[index + 1] if index + 1 < last else tokens.ends[index]
    near = tokens.source[start:end]
    return f'Syntax error; token: "{token}", near: "{near}"'
