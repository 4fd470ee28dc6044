"""The ``meridian.v1.Storage`` gRPC service over one ``Engine``.

Routers call it (items, ranges, catalog, statistics); so do the other nodes
of the region, whose GSI maintainers send ``ApplyIndex`` batches of global
index entries owned here.

``Execute`` is the hot path: a router keeps one bidirectional stream open and
sends one ``OpBatch`` per event-loop tick.  Each batch runs through
``Engine.execute_many`` at once (so its ops join the current group commit);
a writer task answers batches in arrival order as each becomes durable, so
the stream keeps being read while an fsync is in progress.
"""

from __future__ import annotations

import asyncio
import logging

import grpc

from meridian.model.errors import DynamoError, InternalServerError
from meridian.model.ops import ItemResult
from meridian.node.engine import Engine
from meridian.proto import storage_pb2 as pb
from meridian.proto import storage_pb2_grpc
from meridian.proto.storage_codec import (
    catalog_from_pb,
    catalog_to_pb,
    index_entries_from_pb,
    op_from_pb,
    range_read_from_pb,
    range_result_to_pb,
    result_to_pb,
    stats_to_pb,
)

log = logging.getLogger(__name__)

_EMPTY = pb.Empty()


def error_details(err: DynamoError) -> str:
    """gRPC status details carrying a DynamoDB error: ``Type: message``."""
    return f"{err.type_name}: {err.message or ''}"


class StorageService(storage_pb2_grpc.StorageServicer):
    """Serves one engine to routers and replicators."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self.streams_opened = 0
        self.batches_received = 0
        self.ops_received = 0

    def __repr__(self) -> str:
        return (
            f"<StorageService {self._engine.node_id} streams={self.streams_opened} "
            f"batches={self.batches_received} ops={self.ops_received}>"
        )

    async def Execute(self, request_iterator, context: grpc.aio.ServicerContext) -> None:
        self.streams_opened += 1
        engine = self._engine
        answers: asyncio.Queue = asyncio.Queue()
        writer = asyncio.create_task(self._answer(answers, context))
        try:
            async for batch in request_iterator:
                ops = batch.ops
                self.batches_received += 1
                self.ops_received += len(ops)
                results, durable = engine.execute_many([op_from_pb(m) for m in ops])
                answers.put_nowait((ops, results, durable))
                if writer.done():
                    break
        finally:
            answers.put_nowait(None)
            await writer

    @staticmethod
    async def _answer(answers: asyncio.Queue, context: grpc.aio.ServicerContext) -> None:
        """Write result batches in order, each once its writes are durable."""
        while True:
            entry = await answers.get()
            if entry is None:
                return
            ops, results, durable = entry
            if durable is not None:
                try:
                    await asyncio.shield(durable)
                except DynamoError as err:
                    failed = ItemResult(error=err)
                    results = [failed] * len(results)
            try:
                await context.write(
                    pb.ResultBatch(results=[result_to_pb(m.id, r) for m, r in zip(ops, results)])
                )
            except Exception as exc:  # the stream is gone; the router fails its calls
                log.info("Execute stream closed while answering: %s", exc)
                return

    async def _run(self, context: grpc.aio.ServicerContext, fn, *args):
        try:
            return fn(*args)
        except DynamoError as err:
            await context.abort(grpc.StatusCode.INTERNAL, error_details(err))
        except Exception as exc:
            log.exception("storage call failed")
            await context.abort(grpc.StatusCode.INTERNAL, error_details(InternalServerError(str(exc))))

    async def CatalogPut(self, request: pb.CatalogEntry, context) -> pb.Empty:
        await self._run(context, self._engine.catalog_put, catalog_from_pb(request))
        return _EMPTY

    async def CatalogList(self, request: pb.Empty, context) -> pb.CatalogEntries:
        entries = await self._run(context, self._engine.catalog_list)
        return pb.CatalogEntries(entries=[catalog_to_pb(e) for e in entries])

    async def DropTable(self, request: pb.TableRef, context) -> pb.Empty:
        await self._run(context, self._engine.drop_table, request.table_id)
        return _EMPTY

    async def GetTableStats(self, request: pb.TableRef, context) -> pb.TableStats:
        stats = await self._run(context, self._engine.table_stats, request.table_id)
        return stats_to_pb(stats)

    async def ReadRange(self, request: pb.RangeRead, context) -> pb.RangeReply:
        result = await self._run(context, self._engine.read_range, range_read_from_pb(request))
        return range_result_to_pb(result)

    async def ApplyIndex(self, request: pb.IndexEntries, context) -> pb.Empty:
        await self._run(context, self._engine.apply_index_entries, index_entries_from_pb(request))
        return _EMPTY

    async def Info(self, request: pb.Empty, context) -> pb.NodeInfo:
        return pb.NodeInfo(node_id=self._engine.node_id, last_sequence=self._engine.last_sequence())
