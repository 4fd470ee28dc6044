"""The seam between a router and its storage.

One interface, two implementations:

* ``EmbeddedStorage`` (``router/storage_embedded.py``): the storage engine
  lives in the router's process; ops are handed over as Python objects, no
  serialization, no network (``meridian serve``).
* ``GrpcStorage`` (``router/storage_grpc.py``): one long-lived bidirectional
  gRPC stream per storage node; ops gathered during one event-loop tick
  travel together in one ``OpBatch`` (cluster mode).

Actions never know which one they talk to.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from meridian.model.backups import CheckpointInfo, RestoreRequest, RestoreResult
from meridian.model.ops import CatalogEntry, ItemOp, ItemResult, RangeRead, RangeResult, TableStats
from meridian.model.streams import StreamPage, StreamRead, StreamShards
from meridian.model.transactions import TxnOutcome, TxnRequest
from meridian.model.throughput import LeaseRequest


class Storage(ABC):
    """What the router needs from the storage layer of its region."""

    #: Ids of the storage nodes, in the order the ring was built from.
    node_ids: list[str]

    @abstractmethod
    async def call(self, node_id: str, op: ItemOp) -> ItemResult:
        """Execute one item operation atomically on the node that owns it.

        Raises ``DynamoError`` only for failures of the storage layer itself
        (node unreachable -> ``InternalServerError``/``ServiceUnavailable``);
        errors of the operation (failed condition, invalid update) come back
        in ``ItemResult.error``.
        """

    @abstractmethod
    async def read_range(self, node_id: str, read: RangeRead) -> RangeResult:
        """Read one page of a key range on one node (a Query's partition, or
        that node's share of a Scan).

        Raises ``DynamoError``: failures of the storage layer, as ``call``
        does, and errors of the read itself.
        """

    @abstractmethod
    async def catalog_put(self, entry: CatalogEntry) -> None:
        """Store a catalog entry on every node."""

    @abstractmethod
    async def catalog_list(self) -> list[CatalogEntry]:
        """Every catalog entry, newest revision per table name across nodes."""

    @abstractmethod
    async def drop_table(self, table_id: int) -> None:
        """Delete every item (and change-log interest) of a table on every node."""

    @abstractmethod
    async def table_stats(self, table_id: int) -> TableStats:
        """Item count and size of a table and of each of its secondary
        indexes, and the items Time to Live deleted, summed over the nodes
        (an index is backfilling while any node still is)."""

    @abstractmethod
    async def stream_shards(self, node_id: str, table_id: int, stream_id: int) -> StreamShards:
        """One node's shards of a DynamoDB stream (``node/streams.py``), oldest
        first, and its durable change-log end (where LATEST starts).

        Raises ``DynamoError`` for failures of the storage layer, as ``call``.
        """

    @abstractmethod
    async def read_stream(self, node_id: str, read: StreamRead) -> StreamPage:
        """One page of durable records of one node's shard.

        Raises ``TrimmedDataAccessException`` for a trimmed period, and
        ``DynamoError`` for failures of the storage layer, as ``call``.
        """

    # --- backups and point-in-time recovery (node/checkpoints.py, node/restore.py) ---

    @abstractmethod
    async def create_checkpoint(self, node_id: str, name: str) -> CheckpointInfo:
        """Checkpoint one node's whole database as ``name``: every write it
        applied before the call, none after.  Raises ``ResourceInUseException``
        if the name is taken, ``DynamoError`` for failures of the storage layer."""

    @abstractmethod
    async def delete_checkpoint(self, node_id: str, name: str) -> None:
        """Delete one node's checkpoint ``name`` (nothing if there is none);
        ``BackupInUseException`` while a restore reads it."""

    @abstractmethod
    async def hold_writes(self, node_id: str, token: str, timeout_s: float) -> None:
        """Queue one node's client writes (reads go on) until ``release_writes``
        with the same token, or ``timeout_s`` (at most ``WRITE_HOLD_TIMEOUT_S_MAX``)."""

    @abstractmethod
    async def release_writes(self, node_id: str, token: str) -> None:
        """End a hold; the queued writes then run in arrival order."""

    @abstractmethod
    async def restore_table(self, node_id: str, request: RestoreRequest) -> RestoreResult:
        """Copy one node's share of a table, at a checkpoint or a point in
        time, into a new table id already in the catalog.  Raises
        ``BackupNotFoundException``, ``PointInTimeRecoveryUnavailableException``."""

    @abstractmethod
    async def pitr_window(self, node_id: str) -> int:
        """The creation time (epoch ms) of the node's oldest periodic checkpoint
        a restore can start from; 0 if none."""

    # --- transactions (model/transactions.py, node/transactions.py) ---

    @abstractmethod
    async def transact(self, node_id: str, request: TxnRequest) -> list[ItemResult]:
        """One node's share of a write transaction, applied at once or prepared
        (``request.prepare``); one result per op, and nothing written or
        locked if any carries an error.  Raises ``DynamoError`` for failures
        of the storage layer, as ``call``."""

    @abstractmethod
    async def txn_decide(self, node_id: str, txn_id: bytes, outcome: TxnOutcome,
                         forget: list[bytes] | None = None) -> TxnOutcome:
        """Record ``outcome`` on the coordinator ``node_id`` unless a decision
        is recorded already; returns the recorded decision (durable).
        ``forget``: finished transactions' decisions to drop in passing."""

    @abstractmethod
    async def txn_finish(self, node_id: str, txn_id: bytes, commit: bool) -> None:
        """Commit or abort a participant's prepared share (harmless twice)."""

    @abstractmethod
    async def txn_forget(self, node_id: str, txn_ids: list[bytes]) -> None:
        """Drop the coordinator's decisions of finished transactions."""

    @abstractmethod
    async def txn_read(self, node_id: str, ops: list[ItemOp]) -> list[ItemResult]:
        """TransactGetItems' reads on one node: committed items with their
        versions, ``TransactionConflictException`` for locked keys."""

    # --- throughput (node/budget.py) ---

    @abstractmethod
    async def lease_capacity(self, node_id: str, request: LeaseRequest) -> float:
        """Units of a table's capacity granted by its budget node (0: none left)."""

    @abstractmethod
    async def close(self) -> None:
        """Release channels / close the engine."""
