"""Transactions on a node: locks, staged versions, decisions (``model/transactions.py``).

A node takes part in a ``TransactWriteItems`` in one of two ways:

* **Alone** (every action on this node; always in ``meridian serve``):
  ``transact`` judges every action (locks first, then conditions and
  updates, ``write_path._evaluate``) and, if none fails, stages all of them
  into one write batch: one RocksDB write, so there is no moment at which
  part of it is visible.
* **As a participant of two phases** (``prepare``): the same judgement, then
  the new versions are written, not to the items, but into one *prepared
  record* in ``meta`` (``TXN_PREPARED_PREFIX`` + transaction id), and every
  key the transaction touches (ConditionCheck keys included) is locked.
  ``txn_finish`` later stages the versions (commit) or forgets them
  (abort), releasing the locks in the same batch.  The node of the first
  action is the **coordinator**: ``txn_decide`` records the decision there
  (``TXN_DECISION_PREFIX``), durably, before any participant commits, and
  applies it to the coordinator's own share in the same batch.  The first
  decision wins: a later ``txn_decide`` gets the recorded one back.

Locks live in memory (``_txn_locks``: key -> transaction id), rebuilt from
the prepared records when the node opens, so a restarted node still refuses
writes to what it locked.  A locked key refuses client writes
(``TransactionConflictException``) and other transactions (their action
fails with the same error, the router's ``TransactionConflict`` reason);
plain reads see the committed version.  No one waits for a lock, so there
is no deadlock.  A prepared transaction whose router never finished it is
resolved by ``node/txn_recovery.py`` from the coordinator's decision.

Commit restamps the staged versions with the node's clock at commit time
and stages them through ``_stage``: each is an ordinary change (change log,
stream record, indexes, statistics), replicated as an item write.

``txn_read`` serves ``TransactGetItems``: the items, or a conflict for a
locked key, each with the packed version stamp of its record so a read over
several nodes can check that nothing moved between two rounds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass

import orjson

from meridian.model.errors import DynamoError, InternalServerError, TransactionConflictException
from meridian.model.ops import Item, ItemOp, ItemResult, OpKind
from meridian.model.records import HEADER_BYTES, is_tombstone, pack_u64, record_item_json, record_size, unpack_u64
from meridian.model.transactions import TRANSACTION_ONGOING, TxnOutcome, TxnRequest
from meridian.node.commit import INTERNAL, Batch
from meridian.node.database import TXN_DECISION_PREFIX, TXN_PREPARED_PREFIX

log = logging.getLogger("meridian.node.transactions")

_dumps = orjson.dumps
_loads = orjson.loads
_GET = OpKind.GET
_CHECK = OpKind.CHECK


@dataclass(slots=True)
class StagedWrite:
    """One action of a prepared transaction: its key, and what commit writes
    (``kind`` CHECK writes nothing; ``item_json`` None with DELETE)."""

    kind: OpKind
    table_id: int
    key: bytes
    key_item: Item
    item_json: bytes | None = None
    size_bytes: int = 0

    def to_json(self) -> list:
        return [
            int(self.kind), self.table_id, self.key.hex(), self.key_item,
            None if self.item_json is None else self.item_json.decode(), self.size_bytes,
        ]

    @classmethod
    def from_json(cls, raw: list) -> StagedWrite:
        kind, table_id, key, key_item, item_json, size = raw
        return cls(OpKind(kind), table_id, bytes.fromhex(key), key_item,
                   None if item_json is None else item_json.encode(), size)


@dataclass(slots=True)
class PreparedTxn:
    txn_id: bytes
    coordinator: str
    prepared_ms: int
    writes: list[StagedWrite]

    def pack(self) -> bytes:
        return _dumps({"c": self.coordinator, "t": self.prepared_ms, "w": [w.to_json() for w in self.writes]})

    @classmethod
    def unpack(cls, txn_id: bytes, raw: bytes) -> PreparedTxn:
        body = _loads(raw)
        return cls(txn_id, body["c"], body["t"], [StagedWrite.from_json(w) for w in body["w"]])


def _conflict() -> ItemResult:
    return ItemResult(error=TransactionConflictException(TRANSACTION_ONGOING))


def _record_version(record: bytes | None) -> bytes:
    """The packed version stamp of a record (b"" for none)."""
    if record is None:
        return b""
    return record[HEADER_BYTES : HEADER_BYTES + record[5]]


class TransactionMixin:
    """Transaction methods of ``Engine`` (state set up by ``_open_transactions``)."""

    def _open_transactions(self) -> None:
        self._txn_locks: dict[bytes, bytes] = {}  # item key -> id of the transaction holding it
        self._txn_prepared: dict[bytes, PreparedTxn] = {}
        self._txn_decisions: dict[bytes, tuple[TxnOutcome, int]] = {}  # id -> outcome, when decided (ms)
        self.txn_committed = 0
        self.txn_aborted = 0
        self.txn_conflicts = 0
        for key, raw in self._meta.items(from_key=TXN_PREPARED_PREFIX):
            if not key.startswith(TXN_PREPARED_PREFIX):
                break
            txn = PreparedTxn.unpack(key[len(TXN_PREPARED_PREFIX) :], raw)
            self._lock(txn)
        for key, raw in self._meta.items(from_key=TXN_DECISION_PREFIX):
            if not key.startswith(TXN_DECISION_PREFIX):
                break
            self._txn_decisions[key[len(TXN_DECISION_PREFIX) :]] = (TxnOutcome(raw[0]), unpack_u64(raw[1:9]))
        if self._txn_prepared:
            log.info("node %s: %d prepared transaction(s) awaiting a decision", self.node_id, len(self._txn_prepared))

    def _lock(self, txn: PreparedTxn) -> None:
        self._txn_prepared[txn.txn_id] = txn
        for write in txn.writes:
            self._txn_locks[write.key] = txn.txn_id

    def _unlock(self, txn: PreparedTxn) -> None:
        self._txn_prepared.pop(txn.txn_id, None)
        locks = self._txn_locks
        for write in txn.writes:
            if locks.get(write.key) == txn.txn_id:
                del locks[write.key]

    def _batch_for_write(self) -> tuple[Batch, bool]:
        """The batch a transaction's write goes into: the open group (sync
        mode) or a batch of its own, written at once (the flag)."""
        if self.sync:
            return self._group or self._open_group(), False
        return Batch(), True

    def _done(self, batch: Batch, now: bool) -> asyncio.Future[None] | None:
        """Write ``batch`` now (returns None) or say what to await (its group)."""
        if now:
            self._commit_now(batch)
            if self._failure is not None:
                raise self._failure
            return None
        return batch.done

    def _current(self, key: bytes) -> bytes | None:
        record = self._pending.get(key) if self._pending else None
        if record is None:
            record = self._items.get(key)
        if record is not None and is_tombstone(record):
            return None
        return record

    # --- judging and staging ---------------------------------------------------------

    def _judge(self, request: TxnRequest) -> tuple[list[ItemResult], list[tuple[ItemOp, bytes | None, tuple | None]]]:
        """Every action's answer, and what each would stage (empty if any failed)."""
        results: list[ItemResult] = []
        plans = []
        failed = False
        tables = self.indexes.tables
        locks = self._txn_locks
        for op in request.ops:
            if locks and op.key in locks:
                results.append(_conflict())
                self.txn_conflicts += 1
                failed = True
                continue
            record = self._current(op.key)
            indexes = tables.get(op.table_id) if tables else None
            try:
                result, plan = self._evaluate(op, record, indexes)
                if plan is not None and indexes is not None and indexes.local:
                    item, item_json, size = plan
                    result.collection_size_bytes = self._plan_local_indexes(
                        indexes.local, op, item, item_json, size, record
                    )[2]
            except DynamoError as err:
                result, plan = ItemResult(error=err), None
            except Exception:
                log.exception("transaction action failed on node %s: %r", self.node_id, op)
                result, plan = ItemResult(error=InternalServerError(INTERNAL)), None
            if result.error is not None:
                failed = True
            results.append(result)
            plans.append((op, record, plan))
        return results, ([] if failed else plans)

    def transact(self, request: TxnRequest) -> tuple[list[ItemResult], asyncio.Future[None] | None]:
        """Judge this node's share of a transaction; apply it at once (alone)
        or prepare it (``request.prepare``).  Returns the answers and what to
        await before they are final (as ``execute_many``).  If any answer
        carries an error nothing was written or locked."""
        if self._failure is not None:
            return [ItemResult(error=self._failure) for _ in request.ops], None
        if request.txn_id in self._txn_prepared:  # a repeated prepare
            return [_conflict() for _ in request.ops], None
        results, plans = self._judge(request)
        if not plans:
            return results, None
        batch, now = self._batch_for_write()
        if request.prepare:
            writes = []
            for op, _record, plan in plans:
                if plan is None:
                    writes.append(StagedWrite(_CHECK, op.table_id, op.key, op.key_item))
                else:
                    _item, item_json, size = plan
                    writes.append(StagedWrite(op.kind, op.table_id, op.key, op.key_item, item_json, size))
            txn = PreparedTxn(request.txn_id, request.coordinator, self._now_ms(), writes)
            batch.wb.put(TXN_PREPARED_PREFIX + txn.txn_id, txn.pack(), self._meta_cf)
            batch.other_writes += 1
            self._lock(txn)
        else:
            tables = self.indexes.tables
            for op, record, plan in plans:
                if plan is not None:
                    item, item_json, size = plan
                    indexes = tables.get(op.table_id) if tables else None
                    self._stage(batch, op, item, item_json, size, record, indexes, enforce_limit=False)
            self.txn_committed += 1
        return results, self._done(batch, now)

    def _apply_staged(self, batch: Batch, txn: PreparedTxn) -> None:
        tables = self.indexes.tables
        for write in txn.writes:
            if write.kind is _CHECK or self._replica_key_schema(write.table_id) is None:
                continue  # a ConditionCheck, or the table went meanwhile
            record = self._current(write.key)
            op = ItemOp(write.kind, write.table_id, write.key, write.key_item)
            item = None if write.item_json is None else _loads(write.item_json)
            if item is None and record is None:
                continue  # deleting what is not there (a replicated delete won meanwhile)
            indexes = tables.get(write.table_id) if tables else None
            self._stage(batch, op, item, write.item_json, write.size_bytes, record, indexes, enforce_limit=False)

    def _finish_into(self, batch: Batch, txn: PreparedTxn, commit: bool) -> None:
        if commit:
            self._apply_staged(batch, txn)
            self.txn_committed += 1
        else:
            self.txn_aborted += 1
        batch.wb.delete(TXN_PREPARED_PREFIX + txn.txn_id, self._meta_cf)
        batch.other_writes += 1
        self._unlock(txn)

    # --- the second phase ---------------------------------------------------------------

    def txn_decide(self, txn_id: bytes, outcome: TxnOutcome) -> tuple[TxnOutcome, asyncio.Future[None] | None]:
        """Record ``outcome`` for a transaction this node coordinates, unless
        one is recorded already (that one is returned); apply it to this
        node's own prepared share in the same batch."""
        if self._failure is not None:
            raise self._failure
        decided = self._txn_decisions.get(txn_id)
        if decided is not None:
            return decided[0], self._durable_future()
        if outcome is TxnOutcome.UNDECIDED:
            raise ValueError("a decision is COMMIT or ABORT")
        batch, now = self._batch_for_write()
        now_ms = self._now_ms()
        self._txn_decisions[txn_id] = (outcome, now_ms)
        batch.wb.put(TXN_DECISION_PREFIX + txn_id, bytes((outcome,)) + pack_u64(now_ms), self._meta_cf)
        batch.other_writes += 1
        txn = self._txn_prepared.get(txn_id)
        if txn is not None:
            self._finish_into(batch, txn, outcome is TxnOutcome.COMMIT)
        return outcome, self._done(batch, now)

    def txn_finish(self, txn_id: bytes, commit: bool) -> asyncio.Future[None] | None:
        """Commit or abort this node's prepared share (nothing if it has none
        any more: finishing twice is harmless)."""
        if self._failure is not None:
            raise self._failure
        txn = self._txn_prepared.get(txn_id)
        if txn is None:
            return self._durable_future()
        batch, now = self._batch_for_write()
        self._finish_into(batch, txn, commit)
        return self._done(batch, now)

    def txn_forget(self, txn_ids: Iterable[bytes]) -> None:
        """Drop decision records nobody will ask for any more."""
        if self._failure is not None:
            raise self._failure
        batch, now = self._batch_for_write()
        for txn_id in txn_ids:
            if self._txn_decisions.pop(txn_id, None) is not None:
                batch.wb.delete(TXN_DECISION_PREFIX + txn_id, self._meta_cf)
                batch.other_writes += 1
        self._done(batch, now)

    def _durable_future(self) -> asyncio.Future[None] | None:
        """What to await for every write applied so far (None: nothing)."""
        if not self.sync:
            return None
        if self._group is not None:
            return self._group.done
        return self._inflight[-1].done if self._inflight else None

    # --- what recovery asks ------------------------------------------------------------

    def txn_stale(self, prepared_before_ms: int) -> list[PreparedTxn]:
        """Prepared transactions older than ``prepared_before_ms``, oldest first."""
        stale = [txn for txn in self._txn_prepared.values() if txn.prepared_ms < prepared_before_ms]
        stale.sort(key=lambda txn: txn.prepared_ms)
        return stale

    def txn_expired_decisions(self, decided_before_ms: int) -> list[bytes]:
        return [txn_id for txn_id, (_o, at_ms) in self._txn_decisions.items() if at_ms < decided_before_ms]

    def txn_locked_keys(self) -> int:
        return len(self._txn_locks)

    # --- TransactGetItems ---------------------------------------------------------------

    def txn_read(self, ops: list[ItemOp]) -> tuple[list[ItemResult], asyncio.Future[None] | None]:
        """Read items as they are committed, each with its version; a key a
        transaction holds answers a conflict.  Returns what to await (sync
        mode: an item read from the overlay is final once durable)."""
        if self._failure is not None:
            return [ItemResult(error=self._failure) for _ in ops], None
        results = []
        depends = False
        locks = self._txn_locks
        pending = self._pending
        for op in ops:
            if locks and op.key in locks:
                results.append(_conflict())
                self.txn_conflicts += 1
                continue
            if pending and op.key in pending:
                depends = True
            record = self._current(op.key)
            if record is None:
                self._reads += 1
                results.append(ItemResult(size_bytes=0))
                continue
            try:
                result = self._apply(op, None)
            except Exception:  # _apply answers errors itself; this is a bug
                log.exception("transactional read failed on node %s: %r", self.node_id, op)
                result = ItemResult(error=InternalServerError(INTERNAL))
            result.version = _record_version(record)
            results.append(result)
        return results, (self._durable_future() if depends else None)

    # --- on the event loop: waiting for durability and for held writes -----------------------

    async def _released(self) -> None:
        """Wait while client writes are held (a backup's cut, ``node/checkpoints.py``):
        a transaction's writes queue like any client write."""
        if self._hold_timers:
            await self.defer_writes(())

    @staticmethod
    async def _durable(durable: asyncio.Future[None] | None) -> None:
        if durable is not None:
            await asyncio.shield(durable)  # a cancelled caller must not cancel the group

    async def transact_async(self, request: TxnRequest) -> list[ItemResult]:
        await self._released()
        results, durable = self.transact(request)
        try:
            await self._durable(durable)
        except DynamoError as err:
            return [ItemResult(error=err) for _ in results]
        return results

    async def txn_decide_async(self, txn_id: bytes, outcome: TxnOutcome) -> TxnOutcome:
        await self._released()
        decided, durable = self.txn_decide(txn_id, outcome)
        await self._durable(durable)
        return decided

    async def txn_finish_async(self, txn_id: bytes, commit: bool) -> None:
        await self._released()
        await self._durable(self.txn_finish(txn_id, commit))

    async def txn_forget_async(self, txn_ids: list[bytes]) -> None:
        self.txn_forget(txn_ids)

    async def txn_read_async(self, ops: list[ItemOp]) -> list[ItemResult]:
        results, durable = self.txn_read(ops)
        try:
            await self._durable(durable)
        except DynamoError as err:
            return [ItemResult(error=err) for _ in results]
        return results
