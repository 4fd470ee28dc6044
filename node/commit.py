"""Making writes durable: write batches, group commit, the pending overlay.

A mutation is staged (``node/write_path.py``) into a ``Batch``: one RocksDB
write batch holding everything the mutation changes, plus what the engine
must do once it is durable.  Sealing a batch adds the counters as they stand
after its mutations (last sequence, last clock reading, table and index
statistics), so a restart resumes exactly where the durable state ends.

Without ``sync`` a batch is written before the call returns (into RocksDB's
WAL, not fsynced).  With ``sync=True`` each write must be fsynced before it
is acknowledged, and ``Engine.execute_many`` does **group commit**: writes
arriving while the previous fsync is in progress (at least those of one
loop tick) share one batch and one fsync, written by a dedicated thread (the
engine's one-thread executor).  Until a batch is durable its records stay in
an overlay (``Engine._pending``, ``_pending_meta``) that reads and condition
checks consult, and whoever read from it waits for that durability before
answering.  Groups are written in the order they were applied; a write that
bypasses the group (``_commit_now``, ``_write_behind_groups``) queues behind
the groups already handed over.

A failed RocksDB write leaves memory ahead of disk, so the engine stops
(every later op gets InternalServerError); a restart recovers from disk.

A transaction alone on a node commits as one ``Batch``; a prepared one's
record, its decision and its release travel in batches too
(``node/transactions.py``).  Wave 2: a partition's replica set
acknowledges a batch once a majority holds it, which is where
``_retire`` (durable: acknowledge, wake log readers) will then wait.
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial

from rocksdict import WriteBatch

from meridian.model.errors import DynamoError, InternalServerError
from meridian.model.records import pack_u64
from meridian.node.database import META_HLC, META_SEQUENCE, STATS, index_stats_key, stats_key

log = logging.getLogger("meridian.node.engine")

INTERNAL = "Internal server error"  # the message of every InternalServerError the engine returns


class Batch:
    """Mutations that become durable together (one RocksDB write batch)."""

    __slots__ = ("wb", "writes", "meta_writes", "tables", "indexes", "last_sequence", "last_hlc", "done", "other_writes")

    def __init__(self, done: asyncio.Future[None] | None = None) -> None:
        self.wb = WriteBatch(raw_mode=True)
        self.writes: list[tuple[bytes, bytes]] = []  # (item key, record) put in the overlay
        self.meta_writes: list[tuple[bytes, int]] = []  # (collection key, size) put in the meta overlay
        self.tables: set[int] = set()
        self.indexes: set[int] = set()  # local indexes whose statistics changed
        self.last_sequence = 0
        self.last_hlc = 0  # the clock's last reading when the batch was sealed
        self.done = done  # resolves once the batch is durable (group commit only)
        #: writes of neither items nor collections (a transaction's prepared
        #: record or decision), which a group must not drop as empty
        self.other_writes = 0


def resolve(fut: asyncio.Future[None], error: DynamoError | None) -> None:
    """Settle a group's durability future, which waiters only ever shield."""
    if fut.done():
        return
    if error is None:
        fut.set_result(None)
    else:
        fut.set_exception(error)
        fut.exception()  # marks it retrieved: nobody may be waiting any more


class CommitMixin:
    """Durability methods of ``Engine`` (its state is set up in ``Engine.__init__``)."""

    def _seal(self, batch: Batch) -> None:
        """Add the counters as they stand after this batch's mutations."""
        wb = batch.wb
        meta = self._meta_cf
        wb.put(META_SEQUENCE, pack_u64(self._sequence), meta)
        wb.put(META_HLC, pack_u64(self._last_hlc), meta)
        for table_id in batch.tables:
            count, size = self._stats[table_id]
            wb.put(stats_key(table_id), STATS.pack(count, size), meta)
        for index_id in batch.indexes:
            count, size = self._index_stats[index_id]
            wb.put(index_stats_key(index_id), STATS.pack(count, size), meta)
        batch.last_sequence = self._sequence
        batch.last_hlc = self._last_hlc

    def _write(self, wb: WriteBatch) -> None:
        """Write one batch (any thread); a failure stops the engine."""
        if self._failure is not None:
            raise self._failure
        try:
            self._db.write(wb, self._write_options)
        except Exception as exc:
            log.error("RocksDB write failed on node %s, stopping the engine: %s", self.node_id, exc)
            self._failure = InternalServerError(INTERNAL)
            raise self._failure from exc

    def _commit_now(self, batch: Batch) -> None:
        """Write ``batch`` before returning, after any group already queued."""
        self._seal(batch)
        try:
            if self._inflight:
                self._executor.submit(self._write, batch.wb).result()
            else:
                self._write(batch.wb)
        except InternalServerError:
            return
        self._retire(batch)

    def _write_behind_groups(self, wb: WriteBatch) -> None:
        """Write ``wb`` after every batch already applied, open group included."""
        if self._group is not None:
            self._submit(self._group)
        if self._inflight:
            self._executor.submit(self._write, wb).result()
        else:
            self._write(wb)

    def _retire(self, batch: Batch) -> None:
        """A batch is durable: drop its records from the overlay."""
        pending = self._pending
        for key, record in batch.writes:
            if pending.get(key) is record:
                del pending[key]
        pending_meta = self._pending_meta
        for key, size in batch.meta_writes:
            if pending_meta.get(key) == size:
                del pending_meta[key]
        self._commits += 1
        if len(batch.writes) > self._commit_writes_max:
            self._commit_writes_max = len(batch.writes)
        # Group callbacks may run after a later, directly written batch retired.
        if batch.last_sequence > self._durable_sequence:
            self._durable_sequence = batch.last_sequence
            self._durable_hlc = batch.last_hlc
            if self._log_waiters:
                self._wake_log_waiters()
        if self.gsi_wakeup is not None and not self.indexes.global_tables.isdisjoint(batch.tables):
            self.gsi_wakeup()

    # --- group commit (sync mode) ----------------------------------------------

    def _open_group(self) -> Batch:
        loop = asyncio.get_running_loop()
        group = self._group = Batch(loop.create_future())
        loop.call_soon(self._on_tick_end, group)
        return group

    def _on_tick_end(self, group: Batch) -> None:
        # While an fsync is in progress the group keeps gathering writes;
        # that fsync's completion submits it.
        if self._group is group and not self._inflight:
            self._submit(group)

    def _submit(self, group: Batch) -> None:
        """Hand the open group to the commit thread."""
        self._group = None
        if not group.writes and not group.other_writes:
            resolve(group.done, None)
            return
        self._seal(group)
        self._inflight.append(group)
        loop = group.done.get_loop()
        fut = loop.run_in_executor(self._executor, self._write, group.wb)
        fut.add_done_callback(partial(self._on_flushed, group))

    def _on_flushed(self, group: Batch, fut: asyncio.Future[None]) -> None:
        assert self._inflight and self._inflight[0] is group
        self._inflight.popleft()
        exc = fut.exception()
        if exc is None:
            self._retire(group)
            resolve(group.done, None)
        else:
            resolve(group.done, self._failure or InternalServerError(INTERNAL))
        if self._group is not None and not self._inflight and not self._closed:
            self._submit(self._group)

    async def wait_durable(self) -> None:
        """Wait until every write applied so far is durable."""
        if self._group is not None:
            self._submit(self._group)
        while self._inflight:
            try:
                await asyncio.shield(self._inflight[-1].done)
            except DynamoError:
                return
