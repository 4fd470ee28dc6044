"""Shaping TransactWriteItems' and TransactGetItems' answers: cancellation reasons, capacity.

**Cancellation reasons** (``TransactionCanceledException``), one per action in
request order, as botocore's ``TransactionCanceledException`` doc lists them:
``{"Code": "None"}`` (no ``Message``) for an action with no problem, else a
code and DynamoDB's message for it; ``ConditionalCheckFailed`` carries the old
item as ``Item`` when the action asked ``ReturnValuesOnConditionCheckFailure``
ALL_OLD and there was one.  The live wording ("The conditional request
failed", no full stop) is from paritysuite/dynamodb-conformance's captures.

**Capacity** (shaped by ``router/capacity.py``: one ``ConsumedCapacity`` per
table, in the order the request first names them, split into
``ReadCapacityUnits`` / ``WriteCapacityUnits``).  Sources: botocore's
``TransactWriteItems`` / ``TransactGetItems`` docs and the aws CLI's examples
of both (``{"TableName": "MusicCollection", "CapacityUnits": 4.0,
"ReadCapacityUnits": 4.0}`` for two gets; ``WriteCapacityUnits`` for writes);
the developer guide's "Capacity management for transactions": every item
costs ``TRANSACT_CAPACITY_FACTOR`` times a plain write of the larger of its
images, or a strongly consistent read, since each is prepared and then
committed.  A ``ConditionCheck`` writes nothing but is billed as a
transactional write of the item it judged (``WriteCapacityUnits``: measured
against live DynamoDB by the conformance suite's author, martinhicks.dev,
"What a conditional DynamoDB transaction actually costs", which also
measured that a passing condition adds nothing and that a replay is billed
as reads).
Secondary indexes are charged what a plain write charges them, not doubled
(a capture against live DynamoDB that nubo-db/dynoxide records: a
transactional put of an indexed item costs the table 2 units and the index
1).  Under INDEXES, ``Table`` and each index carry the same split (moto's
TransactGetItems answer; the write side by analogy, a guess).

A replay of a committed ``ClientRequestToken`` is charged as transactional
reads of the items the first call wrote (``router/transact_tokens.py``).
"""

from __future__ import annotations

from typing import Any

from meridian.model.errors import (
    ConditionalCheckFailedException,
    DynamoError,
    ItemCollectionSizeLimitExceededException,
    ProvisionedThroughputExceededException,
    ThrottlingException,
    TransactionCanceledException,
    TransactionConflictException,
    ValidationException,
)
from meridian.model.ops import ItemResult, OpKind
from meridian.model.transactions import TRANSACTION_ONGOING

from . import capacity
from .table_record import Table

Item = dict[str, Any]

CONDITION_FAILED_MESSAGE = "The conditional request failed"
COLLECTION_SIZE_MESSAGE = "Collection size exceeded"

#: error class -> the reason's Code and its Message when the error has none
_CODES: tuple[tuple[type[DynamoError], str, str], ...] = (
    (ConditionalCheckFailedException, "ConditionalCheckFailed", CONDITION_FAILED_MESSAGE),
    (TransactionConflictException, "TransactionConflict", TRANSACTION_ONGOING),
    (ValidationException, "ValidationError", "One or more parameter values were invalid."),
    (ItemCollectionSizeLimitExceededException, "ItemCollectionSizeLimitExceeded", COLLECTION_SIZE_MESSAGE),
    (ProvisionedThroughputExceededException, "ProvisionedThroughputExceeded",
     "The level of configured provisioned throughput for the table was exceeded. "
     "Consider increasing your provisioning level with the UpdateTable API."),
    (ThrottlingException, "ThrottlingError", "Throughput exceeds the current capacity of your table or index."),
)


def reason_for(error: DynamoError) -> dict[str, Any] | None:
    """The cancellation reason an action's error gives, None when it is no
    reason to cancel but the request's own failure (a node's internal error)."""
    for cls, code, default in _CODES:
        if isinstance(error, cls):
            if cls is ConditionalCheckFailedException:
                reason: dict[str, Any] = {"Code": code, "Message": CONDITION_FAILED_MESSAGE}
                item = error.item  # type: ignore[attr-defined]
                if item is not None:
                    reason["Item"] = item
                return reason
            return {"Code": code, "Message": error.message or default}
    return None


def validation_reason(error: ValidationException) -> dict[str, Any]:
    """An action's key that does not fit its table: a ValidationError reason."""
    return {"Code": "ValidationError", "Message": error.message}


def cancellation(reasons: list[dict[str, Any] | None]) -> TransactionCanceledException:
    """The exception for ``reasons`` (None: the action had no problem)."""
    return TransactionCanceledException([reason if reason is not None else {"Code": "None"} for reason in reasons])


def raise_for_results(results: list[ItemResult]) -> None:
    """Raise what the coordinator's results say went wrong, if anything: an
    error that is no cancellation reason as itself, else the cancellation."""
    if all(result.error is None for result in results):
        return
    reasons: list[dict[str, Any] | None] = []
    for result in results:
        error = result.error
        if error is None:
            reasons.append(None)
            continue
        reason = reason_for(error)
        if reason is None:
            raise error
        reasons.append(reason)
    raise cancellation(reasons)


# --- capacity ---------------------------------------------------------------------------


def action_usage(table: Table, kind: OpKind, size_bytes: int, old: Item | None = None, new: Item | None = None,
                 indexed: bool = False) -> capacity.Usage:
    """What one committed action consumed: a transactional write of the larger
    image (a ConditionCheck: of the item it judged), plus, for a write
    (``indexed``), plain writes of the index entries it changed."""
    if kind is OpKind.CHECK:
        return capacity.item_write(table, size_bytes, transactional=True)
    return capacity.item_write(table, size_bytes, old, new, indexed=indexed, transactional=True)


def read_tally(sizes: list[tuple[str, int]]) -> capacity.Tally:
    """Transactional reads of items of these ``(table name, size)``: a
    TransactGetItems, or the replay of a committed ClientRequestToken."""
    tally = capacity.Tally()
    for name, size in sizes:
        tally.add(name, capacity.item_read(size, capacity.Consistency.TRANSACTIONAL))
    return tally
