"""PartiQL's errors: all of them are DynamoDB ValidationExceptions.

Two forms, as DynamoDB words them:

* a statement its parser cannot read: ``Statement wasn't well formed, can't
  be processed: <detail>`` (the detail may be empty: an unterminated
  comment, a ``#``);
* a statement it reads but refuses: the refusal alone, followed by
  `` at <line>:<column>:<length>`` when it is about one token.
"""

from __future__ import annotations

from ..errors import ValidationException

__all__ = ["NOT_WELL_FORMED", "PartiQLSyntaxError", "refused"]

NOT_WELL_FORMED = "Statement wasn't well formed, can't be processed: "

# The parser's details, in DynamoDB's (partiql-lang's) words.
LEFTOVER = "Unexpected token after expression"
EXPECTED_DML = "Expected data manipulation"
UNEXPECTED_TERM = "Unexpected term"
INVALID_PATH_DOT = "Invalid path dot component"


class PartiQLSyntaxError(ValidationException):
    """A statement DynamoDB's parser cannot read."""

    def __init__(self, detail: str) -> None:
        super().__init__(NOT_WELL_FORMED + detail)
        self.detail = detail


def refused(message: str, token: object | None = None) -> ValidationException:
    """A refusal, positioned at ``token`` (anything with ``where()``) when given."""
    if token is not None:
        message = f"{message} at {token.where()}"  # type: ignore[attr-defined]
    return ValidationException(message)
