"""Storage seams for the backup action tests (tests/unit/test_backup_actions.py).

``ThreeNodes``: three engines in one process behind the ``Storage``
interface, item operations placed by the ring and GSI entries sent between
them as a cluster's maintainers do, so a backup's cut and a restore span
several nodes without gRPC.  It counts write holds and can fail one node's
checkpoint, or one node's transaction calls (tests/unit/test_txn_coordinator.py).
"""

from __future__ import annotations

import asyncio

from meridian.model.backups import CheckpointInfo, RestoreRequest, RestoreResult
from meridian.model.errors import InternalServerError, ServiceUnavailable
from meridian.model.ops import CatalogEntry, IndexStats, TableStats
from meridian.model.ring import Ring
from meridian.node.budget import BudgetHolder
from meridian.node.engine import Engine
from meridian.node.gsi import GsiMaintainer
from meridian.router.storage import Storage


class ThreeNodes(Storage):
    def __init__(self, tmp_path) -> None:
        self.engines = [Engine(str(tmp_path / f"n{i}"), node_id=f"n{i}", region="us-east-1") for i in range(3)]
        self.node_ids = [engine.node_id for engine in self.engines]
        self._by_id = {engine.node_id: engine for engine in self.engines}
        ring = Ring(self.node_ids)
        self.maintainers = [GsiMaintainer(engine, owner=ring.owner, remote_send=self._send) for engine in self.engines]
        for maintainer in self.maintainers:
            maintainer.start()
        self.holds = 0
        self.released = 0
        self.fail_checkpoint_on: str | None = None
        self.budget = BudgetHolder()  # every table's throughput budget, as one budget node would hold it

    async def _send(self, node_id: str, entries) -> None:
        self._by_id[node_id].apply_index_entries(entries)

    async def call(self, node_id, op):
        engine = self._by_id[node_id]
        return await engine.execute_async(op) if engine.sync else engine.execute(op)

    async def read_range(self, node_id, read):
        return self._by_id[node_id].read_range(read)

    async def catalog_put(self, entry: CatalogEntry) -> None:
        for engine in self.engines:
            engine.catalog_put(entry)

    async def catalog_list(self) -> list[CatalogEntry]:
        newest: dict[str, CatalogEntry] = {}
        for engine in self.engines:
            for entry in engine.catalog_list():
                if entry.name not in newest or newest[entry.name].revision < entry.revision:
                    newest[entry.name] = entry
        return list(newest.values())

    async def drop_table(self, table_id: int) -> None:
        for engine in self.engines:
            engine.drop_table(table_id)

    async def table_stats(self, table_id: int) -> TableStats:
        total = TableStats()
        for engine in self.engines:
            stats = engine.table_stats(table_id)
            total.item_count += stats.item_count
            total.size_bytes += stats.size_bytes
            for index_id, index in stats.indexes.items():
                summed = total.indexes.setdefault(index_id, IndexStats())
                summed.item_count += index.item_count
                summed.size_bytes += index.size_bytes
                summed.backfilling = summed.backfilling or index.backfilling
        return total

    async def stream_shards(self, node_id, table_id, stream_id):
        return self._by_id[node_id].stream_shards(table_id, stream_id)

    async def read_stream(self, node_id, read):
        return self._by_id[node_id].read_stream(read)

    # --- checkpoints, the write pause, restores ------------------------------------
    async def create_checkpoint(self, node_id: str, name: str) -> CheckpointInfo:
        if node_id == self.fail_checkpoint_on:
            raise InternalServerError("disk full")
        return await self._by_id[node_id].create_checkpoint(name)

    async def delete_checkpoint(self, node_id: str, name: str) -> None:
        self._by_id[node_id].delete_checkpoint(name)

    async def hold_writes(self, node_id: str, token: str, timeout_s: float) -> None:
        self._by_id[node_id].hold_writes(token, timeout_s)
        self.holds += 1

    async def release_writes(self, node_id: str, token: str) -> None:
        self._by_id[node_id].release_writes(token)
        self.released += 1

    async def restore_table(self, node_id: str, request: RestoreRequest) -> RestoreResult:
        return await self._by_id[node_id].restore_table(request)

    async def pitr_window(self, node_id: str) -> int:
        return self._by_id[node_id].pitr_window()

    # --- transactions (a test may fail a node's calls: ``fail_txn_on``) --------------------
    fail_txn_on: str | None = None

    def _txn_engine(self, node_id: str) -> Engine:
        if node_id == self.fail_txn_on:
            raise ServiceUnavailable(f"storage node {node_id} is unreachable")
        return self._by_id[node_id]

    async def transact(self, node_id, request):
        return await self._txn_engine(node_id).transact_async(request)

    async def txn_decide(self, node_id, txn_id, outcome, forget=None):
        if forget:
            self._txn_engine(node_id).txn_forget(forget)
        return await self._txn_engine(node_id).txn_decide_async(txn_id, outcome)

    async def txn_finish(self, node_id, txn_id, commit):
        await self._txn_engine(node_id).txn_finish_async(txn_id, commit)

    async def txn_forget(self, node_id, txn_ids):
        await self._txn_engine(node_id).txn_forget_async(txn_ids)

    async def txn_read(self, node_id, ops):
        return await self._txn_engine(node_id).txn_read_async(ops)

    async def lease_capacity(self, node_id, request):
        return self.budget.lease(request)

    async def close(self) -> None:
        await asyncio.gather(*(maintainer.stop() for maintainer in self.maintainers))
        for engine in self.engines:
            await engine.aclose()
