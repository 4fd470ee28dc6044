"""Single-item operations: the critical section and the staging of a write.

GetItem, PutItem, UpdateItem and DeleteItem run here, one at a time: every
call happens on the node's event-loop thread, so a condition check and its
write form one critical section without locks.  ``_apply`` reads the current
record (the group-commit overlay first, ``node/commit.py``), evaluates the
condition and the update (``model/expressions``), and ``_stage`` puts
everything one mutation changes into one write batch:

* the item record (stamped by the hybrid clock; a delete is a tombstone),
* the scan entry, when the item appears or goes (``node/database.py``),
* the change-log record, under the next sequence number,
* the table statistics (item count and size, ``node/statistics.py``),
* the local secondary index entries and the item collection's size, so an
  acknowledged write is in its local indexes (global ones follow from the
  change log: ``node/gsi.py``).

An UpdateItem that would leave a missing item with its key alone (it only
removes attributes) stages nothing, as DynamoDB creates no item then; nor
does a DeleteItem of a missing item (no tombstone, no change-log record, no
stream record), as DynamoDB writes nothing then.  A replicated tombstone is
still stored (last-writer-wins needs it).

For a table whose stream is enabled on this node (one dict lookup per
write, ``stream_tables``), ``_stage`` also puts the change's stream record
into the same batch (``node/streams.py``).

Replicated changes (``node/replica.py``) go through ``_stage`` too, keeping
the stamp they were written with.  So do Time to Live expiries
(``expire_many``, called by the sweeper of ``node/ttl.py``): a delete
stamped by the hybrid clock like a client's, its tombstone marked as the
service's, staged only if the item still holds the version the sweep judged.

A key locked by a prepared transaction (``node/transactions.py``) refuses
client writes with ``TransactionConflictException`` before anything is
judged, and Time to Live leaves it for a later sweep.  ``_evaluate`` judges
a write without staging it, so a transaction judges every action first and
stages all of them or none.  Capacity is charged from the ``size_bytes``
each result carries, computed here once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence

import orjson

from meridian.model import limits
from meridian.model.errors import (
    ConditionalCheckFailedException,
    DynamoError,
    InternalServerError,
    ItemCollectionSizeLimitExceededException,
    TransactionConflictException,
)
from meridian.model.expressions import compile_expressions, updated_attributes
from meridian.model.keycodec import decode_item_key, partition_hash
from meridian.model.ops import Item, ItemOp, ItemResult, OpKind, ReturnValues, scan_position
from meridian.model.records import (
    is_tombstone,
    pack_log_record,
    pack_record,
    pack_u64,
    record_item_json,
    record_size,
    record_stamp,
    unpack_u64,
)
from meridian.model.stamps import VersionStamp
from meridian.model.transactions import TRANSACTION_ONGOING
from meridian.model.values import check_item_size, item_size
from meridian.node.commit import INTERNAL, Batch
from meridian.node.database import collection_meta_key
from meridian.node.indexes import IndexPlan, TableIndexes

log = logging.getLogger("meridian.node.engine")

_COLLECTION_LIMIT_MESSAGE = "Collection size exceeded."

_dumps = orjson.dumps
_loads = orjson.loads
_GET = OpKind.GET
_PUT = OpKind.PUT
_DELETE = OpKind.DELETE
_CHECK = OpKind.CHECK


def _non_empty(attrs: dict) -> bytes | None:
    return _dumps(attrs) if attrs else None


def _scan_position(key: bytes, key_item: Item) -> bytes:
    """An item's scan position, from its key attributes (partition key first)."""
    for value in key_item.values():
        for tag in value:
            return scan_position(key, partition_hash(tag, value))
    raise ValueError("an item op without key attributes")


class WritePathMixin:
    """Item operations of ``Engine`` (its state is set up in ``Engine.__init__``)."""

    def execute(self, op: ItemOp) -> ItemResult:
        """Run one operation and make its write durable before returning.

        In sync mode this blocks the calling thread for an fsync of its own;
        a server uses ``execute_many`` / ``execute_async`` instead.
        """
        if self._group is not None:
            self._submit(self._group)  # keep batches in the order they were applied
        if op.kind == _GET:  # a read stages nothing: no batch to build (about 1 µs per GetItem)
            return self._apply(op, None)
        batch = Batch()
        result = self._apply(op, batch)
        if batch.writes:
            self._commit_now(batch)
            if self._failure is not None:
                return ItemResult(error=self._failure)
        return result

    def execute_many(self, ops: Iterable[ItemOp]) -> tuple[list[ItemResult], asyncio.Future[None] | None]:
        """Run operations in order; return their results and what to await.

        The results are final once the returned future (if any) resolves:
        it stands for the durability of every write these results report or
        depend on.  Without ``sync`` the writes are in RocksDB (its WAL)
        already and there is nothing to await.  A future that fails means the
        engine failed: every result is then to be replaced by its error.
        """
        if not self.sync:
            batch = Batch()
            results = [self._apply(op, batch) for op in ops]
            if batch.writes:
                self._commit_now(batch)
                if self._failure is not None:
                    results = [ItemResult(error=self._failure) for _ in results]
            return results, None
        results = []
        append = results.append
        depends = False
        pending = self._pending
        for op in ops:
            if op.kind == _GET:
                if pending and op.key in pending:
                    depends = True
                append(self._apply(op, None))
                continue
            group = self._group or self._open_group()
            n_writes = len(group.writes)
            append(self._apply(op, group))
            if len(group.writes) != n_writes:
                depends = True
                if len(group.writes) >= limits.GROUP_COMMIT_WRITES_MAX:
                    self._submit(group)
            elif op.key in pending:
                depends = True  # e.g. a failed condition judged on a pending item
        if not depends:
            return results, None
        if self._group is not None:
            return results, self._group.done
        return results, self._inflight[-1].done if self._inflight else None

    async def execute_async(self, op: ItemOp) -> ItemResult:
        """``execute`` for callers on the event loop: group-committed in sync mode."""
        results, durable = self.execute_many((op,))
        if durable is not None:
            try:
                await asyncio.shield(durable)  # a cancelled caller must not cancel the group
            except DynamoError as err:
                return ItemResult(error=err)
        return results[0]

    def _apply(self, op: ItemOp, batch: Batch | None) -> ItemResult:
        """Evaluate one op against the current state; stage its write in ``batch``."""
        if self._failure is not None:
            return ItemResult(error=self._failure)
        try:
            key = op.key
            record = self._pending.get(key) if self._pending else None
            if record is None:
                record = self._items.get(key)
            if record is not None and is_tombstone(record):
                record = None
            kind = op.kind
            if kind == _GET:
                self._reads += 1
                if record is None:
                    return ItemResult(size_bytes=0)
                # Reads are charged by the whole stored item, projected or not.
                if op.projection is None:
                    return ItemResult(record_item_json(record), size_bytes=record_size(record))
                compiled = compile_expressions(projection=op.projection, names=op.names, legacy=op.legacy)
                projected = _dumps(compiled.project(_loads(record_item_json(record))))
                return ItemResult(projected, size_bytes=record_size(record))
            assert batch is not None
            if self._txn_locks and key in self._txn_locks:  # an in-flight transaction holds it
                return ItemResult(error=TransactionConflictException(TRANSACTION_ONGOING))
            return self._mutate(op, record, batch)
        except DynamoError as err:
            return ItemResult(error=err)
        except Exception:
            log.exception("operation failed on node %s: %r", self.node_id, op)
            return ItemResult(error=InternalServerError(INTERNAL))

    def _mutate(self, op: ItemOp, record: bytes | None, batch: Batch) -> ItemResult:
        indexes = self.indexes.tables.get(op.table_id) if self.indexes.tables else None
        result, plan = self._evaluate(op, record, indexes)
        if plan is not None:
            item, item_json, size = plan
            result.collection_size_bytes = self._stage(batch, op, item, item_json, size, record, indexes)
        return result

    def _evaluate(
        self, op: ItemOp, record: bytes | None, indexes: TableIndexes | None
    ) -> tuple[ItemResult, tuple[Item | None, bytes | None, int] | None]:
        """Judge one write against the item's live ``record`` without staging it.

        Returns the answer and what to stage: ``(item, item_json, size)``
        (``item`` None: a delete), or None when nothing is to be written (a
        failed condition, whose error the answer carries; a delete or a
        removal on a missing item; a transaction's ConditionCheck).  Raises
        the ``DynamoError`` of an update that cannot apply to this item.
        The collection size is the staging's to report.
        """
        kind = op.kind
        rv = op.return_values
        compiled = None
        if op.condition is not None or op.update is not None:
            compiled = compile_expressions(
                condition=op.condition,
                update=op.update,
                names=op.names,
                values=op.values,
                key_attributes=tuple(op.key_item),
                legacy=op.legacy,
            )
        if indexes is not None and kind == _PUT:
            indexes.check_item(op.item, updating=False)
        old_item = None
        if record is not None and (compiled is not None or rv != ReturnValues.NONE):
            old_item = _loads(record_item_json(record))
        if op.condition is not None and not compiled.condition_matches(old_item):
            return ItemResult(
                error=ConditionalCheckFailedException(
                    item=old_item if op.return_old_on_condition_failure else None
                )
            ), None
        old_json = record_item_json(record) if record is not None else None
        old_size = record_size(record) if record is not None else 0
        if kind == _PUT:
            item = op.item
            size = op.item_size_bytes if op.item_size_bytes >= 0 else item_size(item)
            answer = ItemResult(old_json if rv == ReturnValues.ALL_OLD else None, size_bytes=max(size, old_size))
            return answer, (item, _dumps(item), size)
        if kind == _DELETE:
            if record is None:
                return self._nothing_created(op, indexes), None  # DynamoDB writes nothing
            return ItemResult(old_json if rv == ReturnValues.ALL_OLD else None, size_bytes=old_size), (None, None, 0)
        if kind == _CHECK:
            return ItemResult(size_bytes=old_size), None
        # UPDATE
        if compiled is not None and op.update is not None:
            new_item, touched = compiled.apply_update(old_item, op.key_item)
            if old_item is None and len(new_item) == len(op.key_item):
                return self._nothing_created(op, indexes), None
        else:  # UpdateItem without an update: makes sure the item exists
            new_item, touched = (old_item if old_item is not None else dict(op.key_item)), frozenset()
        if indexes is not None and touched:
            # Only what the update wrote: an item older than an index may
            # hold an attribute that would not fit it (it is then not in it).
            indexes.check_item({name: new_item[name] for name in touched if name in new_item}, updating=True)
        size = check_item_size(new_item, updating=True)
        new_json = _dumps(new_item)
        if rv == ReturnValues.NONE:
            answer = None
        elif rv == ReturnValues.ALL_NEW:
            answer = new_json
        elif rv == ReturnValues.ALL_OLD:
            answer = old_json
        elif rv == ReturnValues.UPDATED_NEW:
            answer = _non_empty(updated_attributes(new_item, touched))
        elif old_item is None:
            answer = None
        else:
            answer = _non_empty(updated_attributes(old_item, touched))
        return ItemResult(answer, size_bytes=max(size, old_size)), (new_item, new_json, size)

    def _nothing_created(self, op: ItemOp, indexes: TableIndexes | None) -> ItemResult:
        """An update of a missing item that only removes, or a delete of a
        missing item: DynamoDB creates (and deletes) nothing.

        ``REMOVE``, ``DELETE`` of set members and the legacy value-less
        ``DELETE`` leave a missing item missing (an update without any
        action still creates the key-only item).  Nothing is staged: no
        record, change, statistics or index entry; no ``ReturnValues``
        answer, ``ALL_NEW`` included.  A table with local indexes still
        reports its item collection's size.
        """
        collection = -1
        if indexes is not None and indexes.local:
            collection = self._collection_size(collection_meta_key(op.table_id, op.key_item))
        return ItemResult(None, size_bytes=0, collection_size_bytes=collection)

    def _stage(
        self,
        batch: Batch,
        op: ItemOp,
        item: Item | None,
        item_json: bytes | None,
        size_bytes: int,
        old_record: bytes | None,
        indexes: TableIndexes | None,
        stamp: bytes | None = None,
        by_service: bool = False,
        enforce_limit: bool = True,
    ) -> int:
        """Stamp, log, index and count one mutation into ``batch``.

        ``item`` (and its ``item_json``) None is a delete; ``old_record`` is
        the live record it replaces (None: there is none).  The scan entry
        changes only when an item appears or goes.  Returns the size of the
        item's collection after the write when the table has local secondary
        indexes (-1 otherwise); raises ``ItemCollectionSizeLimitExceededException``,
        before staging anything, when the write would grow it past the limit.
        ``stamp`` (packed) is given for a replicated change: it keeps the
        stamp it was written with, the clock observes it, and no limit
        applies (the write was accepted in its own region already).
        ``by_service`` marks a delete's tombstone as the service's (TTL).
        ``enforce_limit`` False: a committing transaction, whose collection
        sizes were judged when it prepared.
        """
        table_id = op.table_id
        key = op.key
        local = None
        collection = -1
        if indexes is not None and indexes.local:
            local, collection_key, collection = self._plan_local_indexes(
                indexes.local, op, item, item_json, size_bytes, old_record, enforce_limit and stamp is None
            )
        if stamp is None:
            hlc = self._clock.tick()
            self._last_hlc = hlc
            stamp = pack_u64(hlc) + self._region_tail
        else:
            self._last_hlc = self._clock.observe(unpack_u64(stamp[:8]))
        record = pack_record(stamp, item_json, size_bytes, by_service=by_service)
        self._sequence += 1
        wb = batch.wb
        if item_json is None and not self.replicated:
            wb.delete(key, self._items_cf)  # reads take the pending tombstone for "missing" until then
        else:
            wb.put(key, record, self._items_cf)
        if item_json is None:
            if old_record is not None:
                wb.delete(_scan_position(key, op.key_item), self._scan_cf)
        elif old_record is None:
            wb.put(_scan_position(key, op.key_item), b"", self._scan_cf)
        wb.put(pack_u64(self._sequence), pack_log_record(table_id, key, record), self._log_cf)
        streams = self._stream_tables
        if streams is None:
            streams = self.stream_tables()
        if streams:
            stream_id = streams.get(table_id)
            if stream_id is not None:
                self._stage_stream(batch, table_id, stream_id, op.key_item, item_json, size_bytes, old_record, by_service)
        self._pending[key] = record
        batch.writes.append((key, record))
        batch.tables.add(table_id)
        stats = self._table_counters(table_id)
        if old_record is not None:
            stats[0] -= 1
            stats[1] -= record_size(old_record)
        if item_json is not None:
            stats[0] += 1
            stats[1] += size_bytes
        self._writes += 1
        if local is not None:
            self._stage_local_indexes(batch, stamp, local, collection_key, collection)
        return collection

    # --- Time to Live expiry (node/ttl.py) ------------------------------------

    def expire_many(
        self, expiries: Sequence[tuple[int, bytes, VersionStamp]]
    ) -> tuple[int, asyncio.Future[None] | None]:
        """Delete expired items, each ``(table id, item key, stamp seen)``,
        only if the item still holds the version the sweep judged expired:
        one rewritten (or deleted) since is left alone, so a write racing the
        sweep wins.  Each delete is stamped by the clock like a client's,
        logged, indexed and counted like one, and marked as the service's.
        Returns how many items went and what to await for their durability
        (as ``execute_many``: None when they are durable already).
        """
        if self._failure is not None:
            raise self._failure
        batch = None if self.sync else Batch()
        deleted = 0
        pending = self._pending
        tables = self.indexes.tables
        for table_id, key, seen in expiries:
            record = pending.get(key) if pending else None
            if record is None:
                record = self._items.get(key)
            if record is None or is_tombstone(record) or record_stamp(record) != seen:
                continue
            if self._txn_locks and key in self._txn_locks:
                continue  # a transaction holds it: judged again at the next sweep
            key_schema = self._replica_key_schema(table_id)
            if key_schema is None:
                continue  # the table went meanwhile
            target = batch if batch is not None else (self._group or self._open_group())
            op = ItemOp(_DELETE, table_id, key, decode_item_key(key, key_schema))
            self._stage(target, op, None, None, 0, record, tables.get(table_id) if tables else None, by_service=True)
            self._count_ttl_deleted(target, table_id)
            deleted += 1
            if batch is None and len(target.writes) >= limits.GROUP_COMMIT_WRITES_MAX:
                self._submit(target)
        if batch is not None:
            if batch.writes:
                self._commit_now(batch)
                if self._failure is not None:
                    raise self._failure
            return deleted, None
        if self._group is not None:
            return deleted, self._group.done
        return deleted, self._inflight[-1].done if self._inflight else None

    # --- local secondary indexes ---------------------------------------------

    def _plan_local_indexes(
        self,
        plans: tuple[IndexPlan, ...],
        op: ItemOp,
        item: Item | None,
        item_json: bytes | None,
        size_bytes: int,
        old_record: bytes | None,
        enforce_limit: bool = True,
    ) -> tuple[list, bytes, int]:
        """The LSI entries a write removes and adds, and its collection's new size."""
        key = op.key
        old_item = None
        old_json = b""
        old_size = 0
        if old_record is not None:
            old_json = record_item_json(old_record)
            old_size = record_size(old_record)
            old_item = _loads(old_json)
        growth = size_bytes - old_size
        changes = []
        for plan in plans:
            old = plan.entry(old_item, old_json, old_size, key) if old_item is not None else None
            new = plan.entry(item, item_json, size_bytes, key) if item is not None else None
            if old is not None:
                growth -= old[2]
            if new is not None:
                growth += new[2]
            changes.append((plan.index_id, old, new))
        collection_key = collection_meta_key(op.table_id, op.key_item)
        collection = self._collection_size(collection_key) + growth
        if enforce_limit and growth > 0 and collection > self._collection_bytes_max:
            raise ItemCollectionSizeLimitExceededException(_COLLECTION_LIMIT_MESSAGE)
        return changes, collection_key, collection

    def _stage_local_indexes(
        self, batch: Batch, stamp: bytes, changes: list, collection_key: bytes, collection: int
    ) -> None:
        wb = batch.wb
        index_cf = self._index_cf
        for index_id, old, new in changes:
            stats = self._index_counters(index_id)
            if old is not None:
                stats[0] -= 1
                stats[1] -= old[2]
                if new is None or new[0] != old[0]:
                    wb.delete(old[0], index_cf)
            if new is not None:
                wb.put(new[0], pack_record(stamp, new[1], new[2]), index_cf)
                stats[0] += 1
                stats[1] += new[2]
            batch.indexes.add(index_id)
        if collection:
            wb.put(collection_key, pack_u64(collection), self._meta_cf)
        else:
            wb.delete(collection_key, self._meta_cf)
        self._pending_meta[collection_key] = collection
        batch.meta_writes.append((collection_key, collection))

    def _collection_size(self, collection_key: bytes) -> int:
        size = self._pending_meta.get(collection_key)
        if size is not None:
            return size
        raw = self._meta.get(collection_key)
        return unpack_u64(raw) if raw is not None else 0
