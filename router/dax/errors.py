"""DynamoDB errors in DAX's reply encoding: the one place a ``DynamoError`` becomes DAX bytes.

An error reply is three top-level CBOR items (a success starts with ``0x80``,
the empty array, instead)::

    [4, 37, 38, 39, 43]                       codes: the clients pick the exception from them
    "The conditional request failed"          message (text, never null: both clients read a string)
    [requestId, "ConditionalCheck...", 400]   or, for TransactionCanceledException, a 4th element:
    [... , 400, [code, message|null, item|null, code, message|null, item|null, ...]]

The codes are a path in the clients' lookup trees (Python ``DaxError.ERROR_MAP``,
JS ``DaxServiceError._pickError``, Go ``convertDaxError``); an error without a
DAX code gets a path that ends in no entry (``_UNMAPPED``), so every client
falls back to the ``__type`` short name sent beside it.  Such a path must
*end* in a miss: the Python client walks the whole array through nested
dicts, so a path that stops on an inner dict (``[4, 37, 38, 39]``) or goes past
a leaf would give it a dict, or a crash, for an error code.

``[4, 23, 31, 33]`` is the authentication failure: Python then aborts its
start-up (``auth_error``), JS drops the connection and retries.  The first
code says how to retry: 4 is a client error (Python retries it anyway, JS
only for 40, 47, 49, 58, 61); 1 is a retryable server error.
"""

from __future__ import annotations

from typing import Any, Callable

from meridian.model.errors import (
    AccessDeniedException,
    ConditionalCheckFailedException,
    DynamoError,
    IdempotentParameterMismatchException,
    IncompleteSignatureException,
    InternalServerError,
    InvalidSignatureException,
    ItemCollectionSizeLimitExceededException,
    LimitExceededException,
    MissingAuthenticationTokenException,
    ProvisionedThroughputExceededException,
    RequestLimitExceeded,
    ResourceInUseException,
    ResourceNotFoundException,
    ServiceUnavailable,
    ThrottlingException,
    TransactionCanceledException,
    TransactionConflictException,
    TransactionInProgressException,
    UnrecognizedClientException,
    ValidationException,
)

from .cbor import Encoder

_DATA = (4, 37, 38, 39)  # "a DynamoDB error" in the clients' trees
_AUTH = (4, 23, 31, 33)

#: error class -> the codes DAX sends for it (the three clients agree on these)
CODES: dict[type[DynamoError], tuple[int, ...]] = {
    ProvisionedThroughputExceededException: (*_DATA, 40),
    ResourceNotFoundException: (*_DATA, 41),
    ConditionalCheckFailedException: (*_DATA, 43),
    ResourceInUseException: (*_DATA, 45),
    ValidationException: (*_DATA, 46),
    InternalServerError: (*_DATA, 47),
    ItemCollectionSizeLimitExceededException: (*_DATA, 48),
    LimitExceededException: (*_DATA, 49),
    ThrottlingException: (*_DATA, 50),
    # 57, 59, 60: only the Go client names them; Python and JS use the __type text.
    TransactionConflictException: (*_DATA, 57),
    TransactionCanceledException: (*_DATA, 58),
    TransactionInProgressException: (*_DATA, 59),
    IdempotentParameterMismatchException: (*_DATA, 60),
    RequestLimitExceeded: (*_DATA, 61),
    AccessDeniedException: (4, 37, 38, 42),
    UnrecognizedClientException: _AUTH,
    InvalidSignatureException: _AUTH,
    MissingAuthenticationTokenException: _AUTH,
    IncompleteSignatureException: _AUTH,
    # A server error worth retrying; the clients retry on its 503 as well.
    ServiceUnavailable: (1, 0),
}
#: any other DynamoDB error: a path no client knows, so each uses the __type text
_UNMAPPED = (*_DATA, 0)

#: (reason index, the old item) -> the item's values bytes (attribute-list id
#: then values), or None to send null; the caller knows the table's key and the
#: attribute lists, this module does not.
ReasonItemEncoder = Callable[[int, dict[str, Any]], "bytes | None"]


def codes_for(err: DynamoError) -> tuple[int, ...]:
    """The DAX codes of ``err``: its class's, else its nearest mapped base's, else ``_UNMAPPED``."""
    for cls in type(err).__mro__:
        codes = CODES.get(cls)  # type: ignore[call-overload]
        if codes is not None:
            return codes
        if cls is DynamoError:
            break
    return _UNMAPPED


def encode_error(err: DynamoError, request_id: str, reason_item: ReasonItemEncoder | None = None) -> bytes:
    """The whole DAX error reply for ``err`` (the three top-level items)."""
    enc = Encoder()
    codes = codes_for(err)
    enc.array_header(len(codes))
    for code in codes:
        enc.int(code)
    enc.text(err.message or "")
    reasons = err.reasons if isinstance(err, TransactionCanceledException) else None
    enc.array_header(3 if reasons is None else 4)
    enc.text(request_id)
    enc.text(err.type_name)
    enc.int(err.status)
    if reasons is not None:
        _cancellation_reasons(enc, reasons, reason_item)
    return enc.getvalue()


def _cancellation_reasons(enc: Encoder, reasons: list[dict[str, Any]], reason_item: ReasonItemEncoder | None) -> None:
    """DAX's flat array: code, message or null, item bytes or null, for each action in order."""
    enc.array_header(3 * len(reasons))
    for index, reason in enumerate(reasons):
        enc.text(str(reason.get("Code", "None")))
        message = reason.get("Message")
        if message is None:
            enc.null()
        else:
            enc.text(str(message))
        item = reason.get("Item")
        values = reason_item(index, item) if item is not None and reason_item is not None else None
        if values is None:
            enc.null()
        else:
            enc.bytes_(values)
