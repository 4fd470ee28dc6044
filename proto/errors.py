"""Errors across gRPC: the one place an error becomes wire fields and back.

Three kinds of error cross Meridian's gRPC hops, and each has one encoding:

* a ``DynamoError`` (``model/errors.py``) of one item operation on the
  ``Execute`` stream travels *in the result* (``OpResult.error_type`` /
  ``error_message`` / ``error_item``): the stream goes on serving the other
  operations.  ``error_to_fields`` / ``error_from_fields``.
* anything that fails a *whole call* (a ``DynamoError`` of a unary call,
  ``LogTruncated`` of ``ReadChanges``, a refused control command) ends the
  call with a status code, the message as the status details, and the
  error's type name in the trailing metadata (``ERROR_TYPE_KEY``), so the
  client rebuilds the same class: ``abort`` on the server, ``error_from_rpc``
  on the client.  The code is chosen for gRPC's sake (tools, logs, retry
  decisions of callers that only look at the code); the type is what counts.
* a failure of gRPC itself (no server, deadline, broken connection) carries
  no type: ``error_from_rpc`` makes it ``ServiceUnavailable`` when the peer
  could not be reached and ``InternalServerError`` otherwise, the shapes
  DynamoDB clients retry.

Status codes, by error::

    ServiceUnavailable                           UNAVAILABLE
    InternalServerError                          INTERNAL
    ThrottlingException, RequestLimitExceeded,
      ProvisionedThroughputExceededException     RESOURCE_EXHAUSTED
    any other DynamoError (a client error)       FAILED_PRECONDITION
    LogTruncated                                 OUT_OF_RANGE
    ControlError (a refused control command)     INVALID_ARGUMENT
    ControlUnreachable                           UNAVAILABLE
"""

from __future__ import annotations

from typing import NoReturn

import grpc
import orjson

from meridian.model.changes import LogTruncated
from meridian.model.errors import (
    ConditionalCheckFailedException,
    DynamoError,
    InternalServerError,
    ProvisionedThroughputExceededException,
    RequestLimitExceeded,
    ServiceUnavailable,
    ThrottlingException,
    error_from_type,
)

#: Trailing-metadata key naming the error class of a failed call.
ERROR_TYPE_KEY = "meridian-error-type"
#: Type names of the errors that are not DynamoDB's.
LOG_TRUNCATED = "LogTruncated"
CONTROL_ERROR = "ControlError"
CONTROL_UNREACHABLE = "ControlUnreachable"

#: What an untyped failure that is not UNAVAILABLE tells a DynamoDB client.
INTERNAL_MESSAGE = "Internal server error"


class ControlError(ValueError):
    """A request a replicator refuses as the caller's mistake: a control
    command it cannot carry out (unknown peer, region or command, bad
    value; HTTP 400 at a router), or a batch from a region not its peer."""


class ControlUnreachable(Exception):
    """The region a control command names did not answer: HTTP 503 at a router."""


#: Everything ``error_from_rpc`` may return: what a caller of a Meridian gRPC
#: service catches to handle any failed call.
RPC_FAILURES = (DynamoError, LogTruncated, ControlError, ControlUnreachable)

_THROTTLES = (ThrottlingException, RequestLimitExceeded, ProvisionedThroughputExceededException)


def status_of(exc: DynamoError | LogTruncated | ControlError | ControlUnreachable) -> grpc.StatusCode:
    """The status code a call failing with ``exc`` ends with."""
    if isinstance(exc, LogTruncated):
        return grpc.StatusCode.OUT_OF_RANGE
    if isinstance(exc, ControlError):
        return grpc.StatusCode.INVALID_ARGUMENT
    if isinstance(exc, (ControlUnreachable, ServiceUnavailable)):
        return grpc.StatusCode.UNAVAILABLE
    if isinstance(exc, _THROTTLES):
        return grpc.StatusCode.RESOURCE_EXHAUSTED
    if isinstance(exc, DynamoError) and exc.status < 500:
        return grpc.StatusCode.FAILED_PRECONDITION
    return grpc.StatusCode.INTERNAL


def _type_name(exc: BaseException) -> str:
    if isinstance(exc, DynamoError):
        return exc.type_name
    if isinstance(exc, LogTruncated):
        return LOG_TRUNCATED
    if isinstance(exc, ControlError):
        return CONTROL_ERROR
    if isinstance(exc, ControlUnreachable):
        return CONTROL_UNREACHABLE
    raise TypeError(f"{type(exc).__name__} has no wire form: wrap it in InternalServerError")


def _message(exc: BaseException) -> str:
    if isinstance(exc, DynamoError):
        return exc.message or ""
    return str(exc)


def status_details(exc: DynamoError | LogTruncated | ControlError | ControlUnreachable) -> tuple[
    grpc.StatusCode, str, tuple[tuple[str, str], ...]
]:
    """``(code, details, trailing metadata)`` of a call failing with ``exc``."""
    return status_of(exc), _message(exc), ((ERROR_TYPE_KEY, _type_name(exc)),)


async def abort(context: grpc.aio.ServicerContext, exc: BaseException) -> NoReturn:
    """End the call with ``exc`` in its wire form (any other exception
    becomes an ``InternalServerError`` carrying its text)."""
    if not isinstance(exc, (DynamoError, LogTruncated, ControlError, ControlUnreachable)):
        exc = InternalServerError(str(exc))
    code, details, metadata = status_details(exc)
    await context.abort(code, details, metadata)
    raise AssertionError("unreachable: ServicerContext.abort raises")  # pragma: no cover


def error_type_of(exc: grpc.RpcError) -> str | None:
    """The type name a Meridian server attached to a failed call (None: a gRPC failure)."""
    trailing = exc.trailing_metadata() if hasattr(exc, "trailing_metadata") else None  # type: ignore[attr-defined]
    for key, value in trailing or ():
        if key == ERROR_TYPE_KEY:
            return value.decode() if isinstance(value, bytes) else value
    return None


def error_from_rpc(
    exc: grpc.RpcError, what: str, *, internal_message: str | None = None
) -> DynamoError | LogTruncated | ControlError | ControlUnreachable:
    """The error a failed call stands for.

    ``what`` names the server for the messages of untyped failures
    (``"{what} is unavailable"``); ``internal_message`` replaces the
    description of any other untyped failure (a router answering a client
    passes ``INTERNAL_MESSAGE`` and logs the details itself).
    """
    code = exc.code()  # type: ignore[attr-defined]
    details = exc.details() or ""  # type: ignore[attr-defined]
    type_name = error_type_of(exc)
    if type_name is not None:
        if type_name == LOG_TRUNCATED:
            return LogTruncated(details)
        if type_name == CONTROL_ERROR:
            return ControlError(details)
        if type_name == CONTROL_UNREACHABLE:
            return ControlUnreachable(details)
        return error_from_type(type_name, details or None)
    if code == grpc.StatusCode.UNAVAILABLE:
        return ServiceUnavailable(f"{what} is unavailable")
    if internal_message is not None:
        return InternalServerError(internal_message)
    return InternalServerError(f"{what}: {code.name} {details}".rstrip())


# --- errors of one operation, inside a result ----------------------------------


def error_to_fields(err: DynamoError) -> tuple[str, str, bytes]:
    """``(error_type, error_message, error_item)`` of a failed operation's result;
    the item is the old item a ``ConditionalCheckFailedException`` may carry."""
    item = b""
    if isinstance(err, ConditionalCheckFailedException) and err.item is not None:
        item = orjson.dumps(err.item)
    return err.type_name, err.message or "", item


def error_from_fields(type_name: str, message: str, item: bytes) -> DynamoError:
    """The error a result's fields carry (``type_name`` not empty)."""
    return error_from_type(type_name, message or None, orjson.loads(item) if item else None)
