"""The engine's side of Global Tables replication.

``ReplicaMixin`` is part of ``Engine`` (``node/engine.py``), kept in its own
module because it is one concern: what a region's replicator needs from a
storage node besides reading the log (which is ``node/change_log.py``:
``ChangeSource``): applying other regions' changes (through the region's
nodes, ``ChangeSink``), the records a convergence digest covers, the clock
skew of chaos experiments, and the tombstones garbage collection
(``replication/gc.py``) may delete.

**Apply.**  ``apply_replicated`` runs in the same critical section and the
same group commit as local writes (every call happens on the engine's
event-loop thread): per change, the stored version - tombstones included,
pending overlay first - is compared with the change's stamp; a change that
wins goes through ``Engine._stage`` like a local write, keeping its own
stamp (the clock observes it, so a later local write beats it), with its
scan entry, local secondary index entries, statistics and change-log entry
in the same write batch; global indexes follow from the log as always.  A
change is acknowledged (the call returns) only once durable - and so is a
change that lost, since the version it lost to may still be pending.

**Table ids.**  A change names its table by id (its key starts with it), so
the replicas of a table share one table id in every region; a change for a
table this node's catalog copy does not know is discarded (False).

Wave 2: log shipping within a region's replica set (a partition's leader
to its followers) applies through the same ``_stage``, keeping stamps and
sequence order; multi-Region strong consistency adds its conflict check
beside ``_stage_replicated``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import orjson
from rocksdict import ReadOptions, WriteBatch

from meridian.model import limits
from meridian.model.changes import Change
from meridian.model.keycodec import decode_item_key, prefix_end, table_prefix
from meridian.model.ops import ItemOp, OpKind
from meridian.model.records import HEADER_BYTES, is_tombstone, record_stamp, unpack_u64
from meridian.model.stamps import lww_wins
from meridian.model.values import item_size
from meridian.node.commit import Batch

_loads = orjson.loads


class ReplicaMixin:
    """Replication methods of ``Engine`` (its state is set up in ``Engine.__init__``)."""

    # --- apply (ChangeSink, per node) ---------------------------------------

    async def apply_replicated(self, changes: Sequence[Change]) -> list[bool]:
        """Apply changes from other regions last-writer-wins; per change,
        whether it was stored.  Returns once every one is durable (raises
        ``InternalServerError`` if the engine failed)."""
        applied, durable = self.apply_replicated_many(changes)
        if durable is not None:
            await asyncio.shield(durable)  # a cancelled caller must not cancel the group
        return applied

    def apply_replicated_many(self, changes: Sequence[Change]) -> tuple[list[bool], asyncio.Future[None] | None]:
        """``apply_replicated`` without waiting: results and what to await."""
        if self._failure is not None:
            raise self._failure
        if not self.sync:
            batch = Batch()
            applied = [self._stage_replicated(change, batch) for change in changes]
            if batch.writes:
                self._commit_now(batch)
                if self._failure is not None:
                    raise self._failure
            return applied, None
        applied = []
        for change in changes:
            group = self._group or self._open_group()
            applied.append(self._stage_replicated(change, group))
            if len(group.writes) >= limits.GROUP_COMMIT_WRITES_MAX:
                self._submit(group)
        # Even a change that lost waits: what it lost to may not be durable yet.
        if self._group is not None:
            return applied, self._group.done
        return applied, self._inflight[-1].done if self._inflight else None

    def _stage_replicated(self, change: Change, batch: Batch) -> bool:
        key_schema = self._replica_key_schema(change.table_id)
        if key_schema is None:
            self.replicated_discarded += 1
            return False
        key = change.key
        stored = self._pending.get(key) if self._pending else None
        if stored is None:
            stored = self._items.get(key)
        if stored is not None and not lww_wins(change.stamp, record_stamp(stored)):
            self.replicated_discarded += 1
            return False
        old_record = None if stored is None or is_tombstone(stored) else stored
        table_id = change.table_id
        indexes = self.indexes.tables.get(table_id) if self.indexes.tables else None
        item_json = change.item_json
        item = None
        size_bytes = 0
        if item_json is not None:
            size_bytes = change.size_bytes
            if size_bytes < 0 or (indexes is not None and indexes.local):
                item = _loads(item_json)
                if size_bytes < 0:
                    size_bytes = item_size(item)
        kind = OpKind.DELETE if item_json is None else OpKind.PUT
        op = ItemOp(kind, table_id, key, decode_item_key(key, key_schema))
        # A TTL expiry stays the service's here too (stream records, digests).
        by_service = change.by_service and item_json is None
        self._stage(
            batch, op, item, item_json, size_bytes, old_record, indexes, stamp=change.stamp.pack(), by_service=by_service
        )
        self.replicated_applied += 1
        return True

    def _replica_key_schema(self, table_id: int) -> list | None:
        """The key schema of a table in this node's catalog copy (None: unknown)."""
        tables = self._replica_tables
        if tables is None:
            tables = self._replica_tables = {
                entry.description["table_id"]: entry.description["key_schema"]
                for entry in self.catalog_list()
                if not entry.deleted and "table_id" in entry.description
            }
        return tables.get(table_id)

    # --- convergence digests, clock skew ---------------------------------------------

    def table_records(self, table_id: int, after: bytes, limit: int, bytes_max: int) -> list[tuple[bytes, bytes]]:
        """Durable ``(item key, record)`` of a table in key order after the key
        ``after`` (empty: from the first), tombstones included - what a
        convergence digest (``replication/digest.py``) is computed over: at
        most ``limit``, and none past the one whose record reaches ``bytes_max``."""
        start = table_prefix(table_id)
        read_options = ReadOptions()
        read_options.set_iterate_upper_bound(prefix_end(start))
        out = []
        total = 0
        for item_key, record in self._items.items(from_key=after + b"\x00" if after else start, read_opt=read_options):
            out.append((item_key, record))
            total += len(record)
            if len(out) == limit or total >= bytes_max:
                break
        return out

    def set_clock_skew(self, skew_ms: int) -> None:
        """Offset the hybrid clock's physical readings (``meridian clock skew``):
        local writes are then stamped as if the clock ran ``skew_ms`` fast
        (slow if negative).  The clock never goes back, whatever the skew."""
        self._clock.skew_ms = skew_ms

    # --- garbage collection (replication/gc.py decides) -----------------------

    def drop_tombstones(self, floor_hlc: int) -> int:
        """Delete durable tombstones stamped at or below ``floor_hlc``;
        return how many went.  Keys with a write still pending are left."""
        pending = self._pending
        dropped = 0
        wb = WriteBatch(raw_mode=True)
        queued = 0
        for key, record in self._items.items():
            if not is_tombstone(record) or key in pending:
                continue
            if unpack_u64(record[HEADER_BYTES : HEADER_BYTES + 8]) > floor_hlc:
                continue
            wb.delete(key, self._items_cf)
            queued += 1
            if queued == limits.TOMBSTONE_DELETES_PER_WRITE_MAX:
                self._write(wb)
                dropped += queued
                wb = WriteBatch(raw_mode=True)
                queued = 0
        if queued:
            self._write(wb)
            dropped += queued
        return dropped
