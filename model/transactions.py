"""Transactions across storage nodes: the records that cross the seam.

``TransactWriteItems`` is coordinated by the router (``router/transactions.py``):

* all its actions on **one node** travel as one ``TxnRequest`` with
  ``prepare=False``: the node checks every lock and condition and stages
  every write in one write batch, or writes nothing (``node/transactions.py``);
* over **several nodes**, two phases.  ``prepare=True`` on every
  participant: locks taken, conditions judged against the committed
  versions, the new versions staged durably in the node's ``meta``; then the
  decision is recorded durably on the **coordinator** node (the node of the
  transaction's first action) with ``txn_decide`` (which also commits or
  aborts the coordinator's own share), then ``txn_finish`` on every other
  participant, then ``txn_forget`` drops the decision record.  A participant
  left prepared (its router died) asks the coordinator for the decision
  after ``TXN_RESOLVE_AFTER_S``; an undecided transaction is then decided
  ABORT, so no lock outlives a dead router.

Locked items refuse single-item writes (``TransactionConflictException``)
and other transactions (a ``TransactionConflict`` cancellation reason);
GetItem reads the last committed version.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from .ops import ItemOp


class TxnOutcome(enum.IntEnum):
    UNDECIDED = 0
    COMMIT = 1
    ABORT = 2


@dataclass(slots=True)
class TxnRequest:
    """One node's share of a write transaction, actions in request order.

    ``ops`` are PUT, UPDATE, DELETE or CHECK ``ItemOp``s.  With ``prepare``
    the node only locks and stages (two-phase; ``coordinator`` names the node
    holding the decision); without, it applies everything at once.
    """

    txn_id: bytes
    ops: list[ItemOp] = field(default_factory=list)
    prepare: bool = False
    coordinator: str = ""


TXN_ID_BYTES = 16

#: DynamoDB's message for an item an in-flight transaction holds, both as a
#: TransactionConflictException and as a TransactionConflict cancellation reason.
TRANSACTION_ONGOING = "Transaction is ongoing for the item"
