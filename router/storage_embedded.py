"""``EmbeddedStorage``: the router's storage seam in-process (``meridian serve``).

The engine runs on the router's own event loop: ops are handed over as the
same Python objects, with no serialization and no network.  In sync mode
writes are group-committed, so concurrent requests share fsyncs.  The one
node owns every index entry, so its GSI maintainer sends nothing anywhere:
it applies what it derives from the change log to the same engine.  Its
Time to Live sweeper (``node/ttl.py``) and its stream trimmer
(``node/stream_retention.py``) run on the same loop.
"""

from __future__ import annotations

from meridian.model import limits
from meridian.model.ops import CatalogEntry, ItemOp, ItemResult, RangeRead, RangeResult, TableStats
from meridian.model.streams import StreamPage, StreamRead, StreamShards
from meridian.node.engine import Engine
from meridian.node.gsi import GsiMaintainer
from meridian.node.log_compaction import LogCompactor
from meridian.node.stream_retention import StreamTrimmer
from meridian.node.ttl import TtlSweeper
from meridian.router.storage import Storage


class EmbeddedStorage(Storage):
    """One engine in this process; its node id is the only node id.

    Construct it on the loop that serves requests: global secondary index
    maintenance, TTL sweeps (every ``ttl_interval_s``) and stream trims
    (after the engine's ``stream_retention_s``) start there at once.
    """

    def __init__(self, engine: Engine, *, ttl_interval_s: float = limits.TTL_SWEEP_INTERVAL_S_DEFAULT) -> None:
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

    def __repr__(self) -> str:
        return f"<EmbeddedStorage {self.engine!r} {self.indexer!r} {self.sweeper!r} {self.trimmer!r}>"

    async def call(self, node_id: str, op: ItemOp) -> ItemResult:
        if self.engine.sync:
            return await self.engine.execute_async(op)
        return self.engine.execute(op)

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

    async def close(self) -> None:
        if self.compactor is not None:
            await self.compactor.stop()
        await self.trimmer.stop()
        await self.sweeper.stop()
        await self.indexer.stop()
        await self.engine.aclose()
