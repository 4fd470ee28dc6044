"""``EmbeddedStorage``: the router's storage seam in-process (``meridian serve``).

The engine runs on the router's own event loop: ops are handed over as the
same Python objects, with no serialization and no network.  In sync mode
writes are group-committed, so concurrent requests share fsyncs.  The one
node owns every index entry, so its GSI maintainer sends nothing anywhere:
it applies what it derives from the change log to the same engine.  Its
Time to Live sweeper (``node/ttl.py``), its stream trimmer
(``node/stream_retention.py``) and its point-in-time recovery checkpoints
(``node/pitr.py``) run on the same loop.  While writes are held (a backup's
cut, ``node/checkpoints.py``) a client write waits for the release, on the
fast path too (``execute_now`` hands ``settle`` the queued write).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from meridian.model import limits
from meridian.model.errors import DynamoError
from meridian.model.backups import CheckpointInfo, RestoreRequest, RestoreResult
from meridian.model.ops import CatalogEntry, ItemOp, ItemResult, OpKind, RangeRead, RangeResult, TableStats
from meridian.model.streams import StreamPage, StreamRead, StreamShards
from meridian.node.engine import Engine
from meridian.node.gsi import GsiMaintainer
from meridian.node.log_compaction import LogCompactor
from meridian.node.pitr import PitrCheckpointer
from meridian.node.stream_retention import StreamTrimmer
from meridian.node.ttl import TtlSweeper
from meridian.node.txn_recovery import TxnResolver
from meridian.node.budget import BudgetHolder
from meridian.model.throughput import LeaseRequest
from meridian.model.transactions import TxnOutcome, TxnRequest
from meridian.router.storage import Storage


#: ``execute_now``'s result for a write queued while writes are held.
_HELD = ItemResult()


class EmbeddedStorage(Storage):
    """One engine in this process; its node id is the only node id.

    Construct it on the loop that serves requests: global secondary index
    maintenance, TTL sweeps (every ``ttl_interval_s``) and stream trims
    (after the engine's ``stream_retention_s``) start there at once.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        ttl_interval_s: float = limits.TTL_SWEEP_INTERVAL_S_DEFAULT,
        pitr_checkpoint_interval_s: float = limits.PITR_CHECKPOINT_INTERVAL_S_DEFAULT,
    ) -> None:
        self.engine = engine
        self.node_ids = [engine.node_id]
        node_id = engine.node_id
        self.indexer = GsiMaintainer(engine, owner=lambda partition_hash: node_id)
        self.indexer.start()
        self.sweeper = TtlSweeper(engine, interval_s=ttl_interval_s)
        self.sweeper.start()
        self.trimmer = StreamTrimmer(engine)
        self.trimmer.start()
        # An engine no replicator reads trims its own change log.
        self.compactor = None if engine.replicated else LogCompactor(engine)
        if self.compactor is not None:
            self.compactor.start()
        self.pitr = PitrCheckpointer(engine, interval_s=pitr_checkpoint_interval_s)
        self.pitr.start()
        # Only a prepared transaction needs resolving; one node never prepares
        # one, but a data folder from a cluster node may hold some.
        self.resolver = TxnResolver(engine)
        self.resolver.start()
        #: every table's throughput budget (the one node is every table's budget node)
        self.budget = BudgetHolder()

    def __repr__(self) -> str:
        return f"<EmbeddedStorage {self.engine!r} {self.indexer!r} {self.sweeper!r} {self.trimmer!r}>"

    async def call(self, node_id: str, op: ItemOp) -> ItemResult:
        if self.engine.sync:
            return await self.engine.execute_async(op)  # waits while writes are held
        if self.engine.writes_held and op.kind is not OpKind.GET:
            return await self.engine.execute_released(op)
        return self.engine.execute(op)

    def execute_now(self, op: ItemOp) -> tuple[ItemResult, asyncio.Future[None] | None]:
        """Run ``op`` at once, without a coroutine (the router's fast path, ``router/fast_path.py``).

        Returns its result and what to await before the result is final:
        None (always without ``sync``, and for a read of durable data), or
        the durability of the group commit its result is part of, to be
        awaited through ``settle``.  The same as ``call``, in two halves.
        """
        engine = self.engine
        if engine.writes_held and op.kind is not OpKind.GET:
            return _HELD, engine.defer_writes((op,))  # settle runs it at the release
        if not engine.sync:
            return engine.execute(op), None
        results, durable = engine.execute_many((op,))
        return results[0], durable

    def immediate(self) -> tuple[Callable[[ItemOp], tuple[ItemResult, asyncio.Future[None] | None]],
                                 Callable[[ItemResult, asyncio.Future[None]], Awaitable[ItemResult]]] | None:
        """``(execute_now, settle)`` for the router's fast path; None when a
        subclass replaced ``call`` (a test's gate), which the fast path would bypass."""
        if type(self).call is not EmbeddedStorage.call:
            return None
        return self.execute_now, self.settle

    @staticmethod
    async def settle(result: ItemResult, durable: asyncio.Future[None]) -> ItemResult:
        """``result`` once ``durable`` (from ``execute_now``) resolves; its error if the commit failed."""
        if result is _HELD:  # a held write: ``durable`` is its place in the queue
            results, durable = await durable
            result = results[0]
            if durable is None:
                return result
        try:
            await asyncio.shield(durable)  # a cancelled caller must not cancel the group
        except DynamoError as err:
            return ItemResult(error=err)
        return result

    async def read_range(self, node_id: str, read: RangeRead) -> RangeResult:
        return self.engine.read_range(read)

    async def catalog_put(self, entry: CatalogEntry) -> None:
        self.engine.catalog_put(entry)

    async def catalog_list(self) -> list[CatalogEntry]:
        return self.engine.catalog_list()

    async def drop_table(self, table_id: int) -> None:
        self.engine.drop_table(table_id)

    async def table_stats(self, table_id: int) -> TableStats:
        return self.engine.table_stats(table_id)

    async def stream_shards(self, node_id: str, table_id: int, stream_id: int) -> StreamShards:
        return self.engine.stream_shards(table_id, stream_id)

    async def read_stream(self, node_id: str, read: StreamRead) -> StreamPage:
        return self.engine.read_stream(read)

    # --- backups and point-in-time recovery ------------------------------------------

    async def create_checkpoint(self, node_id: str, name: str) -> CheckpointInfo:
        return await self.engine.create_checkpoint(name)

    async def delete_checkpoint(self, node_id: str, name: str) -> None:
        self.engine.delete_checkpoint(name)

    async def hold_writes(self, node_id: str, token: str, timeout_s: float) -> None:
        self.engine.hold_writes(token, timeout_s)

    async def release_writes(self, node_id: str, token: str) -> None:
        self.engine.release_writes(token)

    async def restore_table(self, node_id: str, request: RestoreRequest) -> RestoreResult:
        return await self.engine.restore_table(request)

    async def pitr_window(self, node_id: str) -> int:
        return self.engine.pitr_window()

    # --- transactions: every action is this one node's, so a transaction is applied at once

    async def transact(self, node_id: str, request: TxnRequest) -> list[ItemResult]:
        return await self.engine.transact_async(request)

    async def txn_decide(self, node_id: str, txn_id: bytes, outcome: TxnOutcome,
                         forget: list[bytes] | None = None) -> TxnOutcome:
        if forget:
            self.engine.txn_forget(forget)
        return await self.engine.txn_decide_async(txn_id, outcome)

    async def txn_finish(self, node_id: str, txn_id: bytes, commit: bool) -> None:
        await self.engine.txn_finish_async(txn_id, commit)

    async def txn_forget(self, node_id: str, txn_ids: list[bytes]) -> None:
        await self.engine.txn_forget_async(txn_ids)

    async def txn_read(self, node_id: str, ops: list[ItemOp]) -> list[ItemResult]:
        return await self.engine.txn_read_async(ops)

    async def lease_capacity(self, node_id: str, request: LeaseRequest) -> float:
        return self.budget.lease(request)

    async def close(self) -> None:
        await self.resolver.stop()
        await self.pitr.stop()
        if self.compactor is not None:
            await self.compactor.stop()
        await self.trimmer.stop()
        await self.sweeper.stop()
        await self.indexer.stop()
        await self.engine.aclose()
