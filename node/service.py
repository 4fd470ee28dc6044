"""The ``meridian.v1.Storage`` gRPC service over one ``Engine``.

Routers call it (items, ranges, catalog, statistics, stream shards and
records, transactions); so do the other nodes of the region, whose GSI
maintainers send ``ApplyIndex`` batches of global index entries owned here
and whose transaction resolvers ask this node for the decisions it
coordinates (``TxnDecide``).

``Execute`` is the hot path: a router keeps one bidirectional stream open and
sends one ``OpBatch`` per event-loop tick.  Each batch runs through
``Engine.execute_many`` at once (so its ops join the current group commit);
a writer task answers batches in arrival order as each becomes durable, so
the stream keeps being read while an fsync is in progress.  At most
``NODE_STREAM_ANSWERS_MAX`` batches wait for their answer: with that many
waiting, the stream is not read until the writer catches up, and HTTP/2
flow control slows the sender (a router never gets there: it keeps fewer
operations in flight, ``STORAGE_INFLIGHT_OPS_MAX``).

While the node's client writes are held (``hold_writes``, a backup's cut
across nodes, ``node/checkpoints.py``), a batch's reads run at once and its
writes are queued (``defer_writes``); their answers follow the release, in
a result batch of their own (results are matched by op id).

Errors: an operation's error is its result; a unary call that fails ends
with the error's status (``proto/errors.py``), its type kept.
"""

from __future__ import annotations

import asyncio
import logging

import grpc

from meridian.model import limits
from meridian.model.errors import DynamoError, InternalServerError
from meridian.model.ops import ItemResult
from meridian.node.budget import BudgetHolder
from meridian.node.engine import Engine
from meridian.proto import storage_pb2 as pb
from meridian.proto import storage_pb2_grpc
from meridian.proto.errors import abort
from meridian.proto.storage_codec import (
    catalog_from_pb,
    checkpoint_info_to_pb,
    restore_request_from_pb,
    restore_result_to_pb,
    catalog_to_pb,
    index_entries_from_pb,
    op_from_pb,
    range_read_from_pb,
    range_result_to_pb,
    result_to_pb,
    stats_to_pb,
    stream_page_to_pb,
    stream_read_from_pb,
    stream_shards_to_pb,
    lease_from_pb,
    txn_read_from_pb,
    txn_reply_to_pb,
    txn_request_from_pb,
)
from meridian.model.transactions import TxnOutcome

log = logging.getLogger(__name__)

_EMPTY = pb.Empty()


class StorageService(storage_pb2_grpc.StorageServicer):
    """Serves one engine to routers and replicators."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        #: the throughput budgets of the tables whose budget node this is
        self.budget = BudgetHolder()
        self.streams_opened = 0
        self.batches_received = 0
        self.ops_received = 0
        self.stalls = 0  # times a stream's reader waited for its answers to drain

    def __repr__(self) -> str:
        return (
            f"<StorageService {self._engine.node_id} streams={self.streams_opened} "
            f"batches={self.batches_received} ops={self.ops_received} stalls={self.stalls}>"
        )

    async def Execute(self, request_iterator, context: grpc.aio.ServicerContext) -> None:
        self.streams_opened += 1
        engine = self._engine
        answers: asyncio.Queue = asyncio.Queue(maxsize=limits.NODE_STREAM_ANSWERS_MAX)
        writer = asyncio.create_task(self._answer(answers, context))
        held: set[asyncio.Task] = set()
        try:
            async for batch in request_iterator:
                ops = batch.ops
                self.batches_received += 1
                self.ops_received += len(ops)
                if engine.writes_held:
                    ops = self._hold(ops, answers, writer, held)
                    if not ops:
                        continue
                results, durable = engine.execute_many([op_from_pb(m) for m in ops])
                entry = (ops, results, durable)
                if not answers.full():
                    answers.put_nowait(entry)
                elif not await self._wait_for_room(answers, writer, entry):
                    break
                if writer.done():
                    break
        finally:
            if held:
                await asyncio.gather(*held, return_exceptions=True)
            if not answers.full():
                answers.put_nowait(None)
            else:
                await self._wait_for_room(answers, writer, None)
            await writer

    def _hold(self, ops, answers: asyncio.Queue, writer: asyncio.Task, held: set[asyncio.Task]) -> list:
        """Queue a batch's writes until the release; return its reads, to run now."""
        reads = [m for m in ops if m.kind == pb.GET]
        writes = [m for m in ops if m.kind != pb.GET]
        if writes:
            deferred = self._engine.defer_writes([op_from_pb(m) for m in writes])
            task = asyncio.ensure_future(self._answer_later(writes, deferred, answers, writer))
            held.add(task)
            task.add_done_callback(held.discard)
        return reads

    async def _answer_later(self, writes, deferred: asyncio.Future, answers: asyncio.Queue, writer) -> None:
        try:
            results, durable = await deferred
        except Exception:  # noqa: BLE001 - every write of the batch fails with it
            log.exception("held writes failed")
            results, durable = [ItemResult(error=InternalServerError("Internal server error"))] * len(writes), None
        entry = (writes, results, durable)
        if not answers.full():
            answers.put_nowait(entry)
        else:
            await self._wait_for_room(answers, writer, entry)

    async def _wait_for_room(self, answers: asyncio.Queue, writer: asyncio.Task, entry) -> bool:
        """Queue ``entry`` once the writer made room (backpressure: the
        stream is not read meanwhile); False if the writer ended first."""
        self.stalls += 1
        put = asyncio.ensure_future(answers.put(entry))
        try:
            await asyncio.wait((put, writer), return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not put.done():
                put.cancel()
        return put.done() and not put.cancelled()

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
            await abort(context, err)
        except Exception as exc:
            log.exception("storage call failed")
            await abort(context, exc)  # an InternalServerError with its text

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

    async def StreamShards(self, request: pb.StreamRef, context) -> pb.StreamShardsReply:
        shards = await self._run(context, self._engine.stream_shards, request.table_id, request.stream_id)
        return stream_shards_to_pb(shards)

    async def ReadStream(self, request: pb.StreamRead, context) -> pb.StreamPage:
        page = await self._run(context, self._engine.read_stream, stream_read_from_pb(request))
        return stream_page_to_pb(page)

    # --- backups and point-in-time recovery (node/checkpoints.py, node/restore.py) ---

    async def _run_async(self, context: grpc.aio.ServicerContext, coro):
        try:
            return await coro
        except DynamoError as err:
            await abort(context, err)
        except Exception as exc:
            log.exception("storage call failed")
            await abort(context, exc)

    async def CreateCheckpoint(self, request: pb.CheckpointRef, context) -> pb.CheckpointInfo:
        info = await self._run_async(context, self._engine.create_checkpoint(request.name))
        return checkpoint_info_to_pb(info)

    async def DeleteCheckpoint(self, request: pb.CheckpointRef, context) -> pb.Empty:
        await self._run(context, self._engine.delete_checkpoint, request.name)
        return _EMPTY

    async def HoldWrites(self, request: pb.WriteHold, context) -> pb.Empty:
        await self._run(context, self._engine.hold_writes, request.token, request.timeout_s)
        return _EMPTY

    async def ReleaseWrites(self, request: pb.WriteHold, context) -> pb.Empty:
        await self._run(context, self._engine.release_writes, request.token)
        return _EMPTY

    async def RestoreTable(self, request: pb.RestoreRequest, context) -> pb.RestoreResult:
        restore = await self._run(context, restore_request_from_pb, request)
        result = await self._run_async(context, self._engine.restore_table(restore))
        return restore_result_to_pb(result)

    async def GetPitrWindow(self, request: pb.Empty, context) -> pb.PitrWindow:
        return pb.PitrWindow(oldest_checkpoint_ms=self._engine.pitr_window())

    # --- transactions (node/transactions.py) ---------------------------------------------

    async def Transact(self, request: pb.TxnRequest, context) -> pb.TxnReply:
        results = await self._run_async(context, self._engine.transact_async(txn_request_from_pb(request)))
        return txn_reply_to_pb(results)

    async def TxnDecide(self, request: pb.TxnDecision, context) -> pb.TxnDecision:
        if request.forget:
            await self._run(context, self._engine.txn_forget, list(request.forget))
        outcome = await self._run_async(
            context, self._engine.txn_decide_async(request.txn_id, TxnOutcome(request.outcome))
        )
        return pb.TxnDecision(txn_id=request.txn_id, outcome=outcome)

    async def TxnFinish(self, request: pb.TxnEnd, context) -> pb.Empty:
        await self._run_async(context, self._engine.txn_finish_async(request.txn_id, request.commit))
        return _EMPTY

    async def TxnForget(self, request: pb.TxnIds, context) -> pb.Empty:
        await self._run_async(context, self._engine.txn_forget_async(list(request.txn_ids)))
        return _EMPTY

    async def TxnReadItems(self, request: pb.TxnRead, context) -> pb.TxnReply:
        results = await self._run_async(context, self._engine.txn_read_async(txn_read_from_pb(request)))
        return txn_reply_to_pb(results)

    # --- throughput (node/budget.py): this node holds some tables' budgets ---------------

    async def LeaseCapacity(self, request: pb.CapacityLease, context) -> pb.CapacityGrant:
        granted = await self._run(context, self.budget.lease, lease_from_pb(request))
        return pb.CapacityGrant(granted=granted)

    async def Info(self, request: pb.Empty, context) -> pb.NodeInfo:
        return pb.NodeInfo(node_id=self._engine.node_id, last_sequence=self._engine.last_sequence())
