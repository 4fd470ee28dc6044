"""DynamoDB's errors, one class per ``__type``.

Every error Meridian returns to a client is one of these; each subclass maps
one-to-one onto a DynamoDB error type.  Lower-layer failures (gRPC, RocksDB)
are translated into them once, where they enter; only the HTTP layer formats
them (``__type`` + ``message`` + status).

    DynamoError                         (base: __type, message, status)
    ├── SerializationException          wrong JSON types in the request
    ├── ValidationException             constraint and semantic checks
    ├── UnknownOperationException       unknown X-Amz-Target action
    ├── MissingAuthenticationTokenException
    ├── IncompleteSignatureException
    ├── UnrecognizedClientException     unknown access key or session token (--credentials)
    ├── InvalidSignatureException       wrong or expired SigV4 signature (--credentials)
    ├── AccessDeniedException           another account's resource
    ├── ResourceNotFoundException
    ├── PolicyNotFoundException         no resource-based policy (or another revision)
    ├── ResourceInUseException
    ├── ConditionalCheckFailedException (optionally carries the old item)
    ├── DuplicateItemException          (PartiQL INSERT of an existing key)
    ├── ItemCollectionSizeLimitExceededException
    ├── ProvisionedThroughputExceededException
    ├── RequestLimitExceeded
    ├── ThrottlingException
    ├── LimitExceededException
    ├── TransactionConflictException
    ├── TransactionCanceledException    (carries CancellationReasons)
    ├── TransactionInProgressException / IdempotentParameterMismatchException (ClientRequestToken)
    ├── ReplicatedWriteConflictException
    ├── TableNotFoundException / TableAlreadyExistsException / ...
    ├── BackupNotFoundException / PointInTimeRecoveryUnavailableException / ... (backups, PITR)
    ├── TrimmedDataAccessException / ExpiredIteratorException (DynamoDB Streams)
    ├── InternalServerError             (HTTP 500)
    └── ServiceUnavailable              (HTTP 503)
"""

from __future__ import annotations

from typing import Any

_DYNAMO_NS = "com.amazonaws.dynamodb.v20120810#"
_COYOTE_NS = "com.amazon.coral.validate#"
_CORAL_SERVICE_NS = "com.amazon.coral.service#"


class DynamoError(Exception):
    """Base of every error returned to a DynamoDB client."""

    type_name: str = "InternalServerError"
    namespace: str = _DYNAMO_NS
    status: int = 400
    #: the body's key for the message: DynamoDB spells it ``Message`` for a few types
    message_key: str = "message"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message)
        self.message = message

    @property
    def full_type(self) -> str:
        return self.namespace + self.type_name

    def body(self) -> dict[str, Any]:
        """The JSON body DynamoDB sends for this error."""
        out: dict[str, Any] = {"__type": self.full_type}
        if self.message is not None:
            out[self.message_key] = self.message
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class SerializationException(DynamoError):
    """Wrong JSON types.  DynamoDB spells this body's key ``Message`` (capital M)."""

    type_name = "SerializationException"
    namespace = _CORAL_SERVICE_NS
    message_key = "Message"


class ValidationException(DynamoError):
    type_name = "ValidationException"
    namespace = _COYOTE_NS


class UnknownOperationException(DynamoError):
    type_name = "UnknownOperationException"
    namespace = _CORAL_SERVICE_NS


class MissingAuthenticationTokenException(DynamoError):
    type_name = "MissingAuthenticationTokenException"
    namespace = _CORAL_SERVICE_NS


class IncompleteSignatureException(DynamoError):
    """An ``Authorization`` header that does not look signed."""

    type_name = "IncompleteSignatureException"
    namespace = _CORAL_SERVICE_NS


class UnrecognizedClientException(DynamoError):
    """An access key, or a session token, the router was not given (``--credentials``)."""

    type_name = "UnrecognizedClientException"
    namespace = _CORAL_SERVICE_NS


class InvalidSignatureException(DynamoError):
    """A SigV4 signature that does not match, is out of its time window, or is badly scoped."""

    type_name = "InvalidSignatureException"
    namespace = _CORAL_SERVICE_NS


class AccessDeniedException(DynamoError):
    """A resource of another account (the tag actions' ARN of a foreign table: "Access is denied")."""

    type_name = "AccessDeniedException"
    namespace = _CORAL_SERVICE_NS


class ResourceNotFoundException(DynamoError):
    type_name = "ResourceNotFoundException"

    def __init__(self, message: str | None = "Requested resource not found") -> None:
        super().__init__(message)


class PolicyNotFoundException(DynamoError):
    """No resource-based policy, or not the revision ``ExpectedRevisionId`` names."""

    type_name = "PolicyNotFoundException"


class ResourceInUseException(DynamoError):
    type_name = "ResourceInUseException"


class ConditionalCheckFailedException(DynamoError):
    """A condition expression evaluated false.

    ``item`` is the old item (wire JSON dict) when the request asked for
    ``ReturnValuesOnConditionCheckFailure=ALL_OLD`` and an item existed.
    """

    type_name = "ConditionalCheckFailedException"

    def __init__(
        self,
        message: str | None = "The conditional request failed",
        item: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.item = item

    def body(self) -> dict[str, Any]:
        out = super().body()
        if self.item is not None:
            out["Item"] = self.item
        return out


class DuplicateItemException(DynamoError):
    """A PartiQL INSERT of a key that exists (INSERT is not an upsert)."""

    type_name = "DuplicateItemException"

    def __init__(self, message: str | None = "Duplicate primary key exists in table") -> None:
        super().__init__(message)


class ItemCollectionSizeLimitExceededException(DynamoError):
    type_name = "ItemCollectionSizeLimitExceededException"


class ProvisionedThroughputExceededException(DynamoError):
    """A throttled request; ``reasons`` is DynamoDB's ``ThrottlingReasons``
    (``{"reason": ..., "resource": <ARN>}`` each), sent when known."""

    type_name = "ProvisionedThroughputExceededException"

    def __init__(self, message: str | None = None, reasons: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.reasons = reasons

    def body(self) -> dict[str, Any]:
        out = super().body()
        if self.reasons:
            out["ThrottlingReasons"] = self.reasons
        return out


class RequestLimitExceeded(DynamoError):
    type_name = "RequestLimitExceeded"


class ThrottlingException(DynamoError):
    """Throttled (an on-demand maximum, a control-plane rate); ``reasons`` as
    ``ProvisionedThroughputExceededException``'s, which botocore spells
    ``throttlingReasons`` here."""

    type_name = "ThrottlingException"
    namespace = _CORAL_SERVICE_NS

    def __init__(self, message: str | None = None, reasons: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.reasons = reasons

    def body(self) -> dict[str, Any]:
        out = super().body()
        if self.reasons:
            out["throttlingReasons"] = self.reasons
        return out


class LimitExceededException(DynamoError):
    type_name = "LimitExceededException"


class TransactionConflictException(DynamoError):
    type_name = "TransactionConflictException"


class TransactionCanceledException(DynamoError):
    """A transaction that applied nothing, with one reason per action in request order.

    Each reason is DynamoDB's ``CancellationReason``: ``{"Code": "None"}`` for
    an action with no problem, else ``Code`` and ``Message`` (and ``Item``, the
    old item, for a ``ConditionalCheckFailed`` asked with ALL_OLD).  The body
    spells ``Message`` with a capital M (botocore's shape, as DynamoDB sends it).
    """

    type_name = "TransactionCanceledException"
    reasons: list[dict[str, Any]] | None = None  # None: rebuilt by error_from_type, reasons unknown
    message_key = "Message"

    def __init__(self, reasons: list[dict[str, Any]]) -> None:
        codes = ", ".join(reason["Code"] for reason in reasons)
        super().__init__(f"Transaction cancelled, please refer cancellation reasons for specific reasons [{codes}]")
        self.reasons = reasons

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"__type": self.full_type}
        if self.reasons is not None:
            out["CancellationReasons"] = self.reasons
        if self.message is not None:
            out[self.message_key] = self.message
        return out


class TransactionInProgressException(DynamoError):
    """A TransactWriteItems whose ClientRequestToken belongs to one still running
    (the SDKs retry it).  ``Message`` with a capital M, as botocore's shape has it."""

    type_name = "TransactionInProgressException"
    message_key = "Message"

    def __init__(self, message: str | None = "Transaction from previous request is still in progress") -> None:
        super().__init__(message)


class IdempotentParameterMismatchException(DynamoError):
    """A ClientRequestToken used again, within its window, with another request.
    ``Message`` with a capital M, as botocore's shape has it."""

    type_name = "IdempotentParameterMismatchException"
    message_key = "Message"


class ReplicatedWriteConflictException(DynamoError):
    type_name = "ReplicatedWriteConflictException"


class TableNotFoundException(DynamoError):
    type_name = "TableNotFoundException"


class TableAlreadyExistsException(DynamoError):
    type_name = "TableAlreadyExistsException"


class TableInUseException(DynamoError):
    """A restore's target table is being created or deleted."""

    type_name = "TableInUseException"


class BackupNotFoundException(DynamoError):
    type_name = "BackupNotFoundException"


class BackupInUseException(DynamoError):
    """Another backup operation on the table (or backup) is in progress."""

    type_name = "BackupInUseException"


class ContinuousBackupsUnavailableException(DynamoError):
    type_name = "ContinuousBackupsUnavailableException"


class PointInTimeRecoveryUnavailableException(DynamoError):
    """Point-in-time recovery is not enabled for the source table, or no
    node checkpoint covers the requested time (``node/restore.py``)."""

    type_name = "PointInTimeRecoveryUnavailableException"


class InvalidRestoreTimeException(DynamoError):
    type_name = "InvalidRestoreTimeException"


class GlobalTableNotFoundException(DynamoError):
    type_name = "GlobalTableNotFoundException"


class GlobalTableAlreadyExistsException(DynamoError):
    type_name = "GlobalTableAlreadyExistsException"


class ReplicaAlreadyExistsException(DynamoError):
    type_name = "ReplicaAlreadyExistsException"


class ReplicaNotFoundException(DynamoError):
    type_name = "ReplicaNotFoundException"


class TrimmedDataAccessException(DynamoError):
    """A DynamoDB Streams read of records already trimmed (older than the
    stream's retention, ``node/stream_retention.py``)."""

    type_name = "TrimmedDataAccessException"

    def __init__(self, message: str | None = "The data you are trying to access has been trimmed.") -> None:
        super().__init__(message)


class ExpiredIteratorException(DynamoError):
    """A DynamoDB Streams shard iterator past its lifetime (15 minutes)."""

    type_name = "ExpiredIteratorException"

    def __init__(self, message: str | None = "The provided iterator exceeds the maximum age allowed.") -> None:
        super().__init__(message)


class InternalServerError(DynamoError):
    type_name = "InternalServerError"
    status = 500


class ServiceUnavailable(DynamoError):
    type_name = "ServiceUnavailable"
    namespace = _CORAL_SERVICE_NS
    status = 503


class ExportNotFoundException(DynamoError):
    type_name = "ExportNotFoundException"


class ExportConflictException(DynamoError):
    type_name = "ExportConflictException"


class InvalidExportTimeException(DynamoError):
    type_name = "InvalidExportTimeException"


class ImportNotFoundException(DynamoError):
    type_name = "ImportNotFoundException"


class ImportConflictException(DynamoError):
    type_name = "ImportConflictException"


_BY_TYPE_NAME: dict[str, type[DynamoError]] = {}


def _register(cls: type[DynamoError]) -> None:
    _BY_TYPE_NAME[cls.type_name] = cls
    for sub in cls.__subclasses__():
        _register(sub)


_register(DynamoError)


def error_from_type(type_name: str, message: str | None, item: dict[str, Any] | None = None) -> DynamoError:
    """Rebuild an error that crossed a process boundary by its type name."""
    cls = _BY_TYPE_NAME.get(type_name, InternalServerError)
    if cls is ConditionalCheckFailedException:
        return ConditionalCheckFailedException(message, item)
    err = cls.__new__(cls)
    DynamoError.__init__(err, message)
    return err
