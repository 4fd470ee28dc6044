"""``GrpcStorage``: the router's storage seam over gRPC (cluster mode).

grpc.aio costs a fraction of a millisecond of CPU per message, so item
operations never travel one per message: each node gets one long-lived
channel and one bidirectional ``Execute`` stream, every ``call`` made during
one event-loop tick is appended to that node's open ``OpBatch``, and one
callback per tick hands the batch to the stream's writer task.  Replies are
matched to calls by op id.

Failures are mapped once, here:

* the stream breaks: calls whose op was already written get
  ``InternalServerError`` (the node may or may not have applied it), calls
  not yet written get ``ServiceUnavailable``; both are retried by SDKs;
* after a break the stream is reopened by the next call, no sooner than a
  backoff that doubles up to ``NODE_RECONNECT_BACKOFF_S_MAX`` (calls in the
  meantime fail fast with ``ServiceUnavailable``);
* a call unanswered for ``STORAGE_CALL_TIMEOUT_S`` gets ``InternalServerError``
  (checked every ``STORAGE_CALL_SWEEP_INTERVAL_S``);
* an operation's own error comes back in its result, and a failed unary call
  as the error the node raised, both decoded by ``proto/errors.py``; a
  throttling error there (``RequestLimitExceeded``, ``ThrottlingException``)
  reaches the client as such, never as a 500.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import deque
from dataclasses import dataclass

import grpc

from meridian.model import limits
from meridian.model.errors import DynamoError, InternalServerError, ServiceUnavailable
from meridian.model.backups import CheckpointInfo, RestoreRequest, RestoreResult
from meridian.model.ops import CatalogEntry, IndexStats, ItemOp, ItemResult, RangeRead, RangeResult, TableStats
from meridian.model.streams import StreamPage, StreamRead, StreamShards
from meridian.model.transactions import TxnOutcome, TxnRequest
from meridian.model.throughput import LeaseRequest
from meridian.proto.channels import channel_options
from meridian.proto import storage_pb2 as pb
from meridian.proto import storage_pb2_grpc
from meridian.proto.errors import INTERNAL_MESSAGE, error_from_rpc
from meridian.proto.storage_codec import (
    catalog_from_pb,
    catalog_to_pb,
    checkpoint_info_from_pb,
    restore_request_to_pb,
    restore_result_from_pb,
    op_to_pb,
    range_read_to_pb,
    range_result_from_pb,
    result_from_pb,
    stats_from_pb,
    stream_page_from_pb,
    stream_read_to_pb,
    stream_shards_from_pb,
    lease_to_pb,
    txn_read_to_pb,
    txn_reply_from_pb,
    txn_request_to_pb,
)
from meridian.router.storage import Storage

log = logging.getLogger(__name__)

_INTERNAL = INTERNAL_MESSAGE

_CHANNEL_OPTIONS = channel_options(
    backoff_s_min=limits.NODE_RECONNECT_BACKOFF_S_MIN,
    backoff_s_max=limits.NODE_RECONNECT_BACKOFF_S_MAX,
    keepalive=True,
)


def _what(address: str) -> str:
    return f"Storage node {address}"


def _unavailable(address: str) -> ServiceUnavailable:
    return ServiceUnavailable(f"{_what(address)} is unavailable")


def _error_from_rpc(address: str, exc: grpc.aio.AioRpcError) -> DynamoError:
    """A failed unary call, as the DynamoDB error a client should see."""
    err = error_from_rpc(exc, _what(address), internal_message=_INTERNAL)
    if not isinstance(err, DynamoError):  # not a storage call's error: a node that misbehaves
        err = InternalServerError(_INTERNAL)
    if isinstance(err, InternalServerError):
        log.warning("storage node %s: %s %s", address, exc.code(), exc.details())
    return err


@dataclass(frozen=True, slots=True)
class LinkStatistics:
    """Counters of the stream to one node."""

    address: str
    connected: bool
    streams_opened: int
    stream_failures: int
    batches_sent: int
    ops_sent: int
    results_received: int
    inflight_ops: int


class _NodeLink:
    """Channel, Execute stream and outstanding calls of one storage node."""

    def __init__(self, address: str) -> None:
        self.address = address
        self._channel: grpc.aio.Channel | None = None
        self._stub: storage_pb2_grpc.StorageStub | None = None
        self._call = None  # the open Execute stream, or None
        self._tasks: tuple[asyncio.Task, ...] = ()
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[ItemResult]] = {}  # op id -> caller, in id order
        self._batch: list[pb.ItemOp] = []  # open batch of this tick
        self._batch_bytes = 0
        self._outbox: deque[list[pb.ItemOp]] = deque()  # closed batches awaiting the writer
        self._flush_scheduled = False
        self._writer_wakeup: asyncio.Future[None] | None = None
        self._last_written_id = 0
        self._deadlines: deque[tuple[int, float]] = deque()  # (last op id of a batch, deadline)
        self._sweep_handle: asyncio.TimerHandle | None = None
        self._room: deque[asyncio.Future[None]] = deque()  # callers waiting under the in-flight cap
        self._backoff_s = limits.NODE_RECONNECT_BACKOFF_S_MIN
        self._retry_at = 0.0
        self._streams_opened = 0
        self._stream_failures = 0
        self._batches_sent = 0
        self._ops_sent = 0
        self._results_received = 0

    def __repr__(self) -> str:
        return (
            f"<_NodeLink {self.address} connected={self._call is not None} "
            f"inflight={len(self._waiting)} batches_sent={self._batches_sent}>"
        )

    def statistics(self) -> LinkStatistics:
        return LinkStatistics(
            address=self.address,
            connected=self._call is not None,
            streams_opened=self._streams_opened,
            stream_failures=self._stream_failures,
            batches_sent=self._batches_sent,
            ops_sent=self._ops_sent,
            results_received=self._results_received,
            inflight_ops=len(self._waiting),
        )

    def stub(self) -> storage_pb2_grpc.StorageStub:
        if self._stub is None:
            self._channel = grpc.aio.insecure_channel(self.address, options=_CHANNEL_OPTIONS)
            self._stub = storage_pb2_grpc.StorageStub(self._channel)
        return self._stub

    # --- the Execute stream ------------------------------------------------

    async def call(self, op: ItemOp) -> ItemResult:
        while len(self._waiting) >= limits.STORAGE_INFLIGHT_OPS_MAX:
            room = asyncio.get_running_loop().create_future()
            self._room.append(room)
            await room
        if self._call is None:
            self._open()
        op_id = next(self._ids)
        message, size = op_to_pb(op_id, op)
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._waiting[op_id] = fut
        batch = self._batch
        batch.append(message)
        self._batch_bytes += size
        if len(batch) >= limits.STORAGE_BATCH_OPS_MAX or self._batch_bytes >= limits.STORAGE_BATCH_BYTES_MAX:
            self._close_batch(loop)
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        return await fut

    def _open(self) -> None:
        loop = asyncio.get_running_loop()
        if loop.time() < self._retry_at:
            raise _unavailable(self.address)
        call = self.stub().Execute()
        self._call = call
        self._streams_opened += 1
        self._tasks = (
            loop.create_task(self._read_loop(call)),
            loop.create_task(self._write_loop(call)),
        )
        if self._sweep_handle is None:
            self._sweep_handle = loop.call_later(limits.STORAGE_CALL_SWEEP_INTERVAL_S, self._sweep)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._batch:
            self._close_batch(asyncio.get_running_loop())

    def _close_batch(self, loop: asyncio.AbstractEventLoop) -> None:
        batch = self._batch
        self._batch = []
        self._batch_bytes = 0
        self._outbox.append(batch)
        self._deadlines.append((batch[-1].id, loop.time() + limits.STORAGE_CALL_TIMEOUT_S))
        wakeup = self._writer_wakeup
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)

    async def _write_loop(self, call) -> None:
        loop = asyncio.get_running_loop()
        outbox = self._outbox
        try:
            while True:
                while outbox:
                    ops = outbox.popleft()
                    await call.write(pb.OpBatch(ops=ops))
                    self._last_written_id = ops[-1].id
                    self._batches_sent += 1
                    self._ops_sent += len(ops)
                self._writer_wakeup = loop.create_future()
                await self._writer_wakeup
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._fail_stream(call, exc)

    async def _read_loop(self, call) -> None:
        waiting = self._waiting
        try:
            async for reply in call:
                for r in reply.results:
                    fut = waiting.pop(r.id, None)
                    if fut is not None and not fut.done():
                        fut.set_result(result_from_pb(r))
                self._results_received += len(reply.results)
                self._backoff_s = limits.NODE_RECONNECT_BACKOFF_S_MIN
                self._make_room()
            self._fail_stream(call, None)  # the node ended the stream
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._fail_stream(call, exc)

    def _make_room(self) -> None:
        room = self._room
        while room and len(self._waiting) < limits.STORAGE_INFLIGHT_OPS_MAX:
            fut = room.popleft()
            if not fut.done():
                fut.set_result(None)

    def _fail_stream(self, call, exc: BaseException | None) -> None:
        """Tear the stream down and fail every call it still owes."""
        if self._call is not call:
            return
        self._stream_failures += 1
        log.warning("stream to storage node %s failed: %s", self.address, exc or "closed by the node")
        loop = asyncio.get_running_loop()
        self._retry_at = loop.time() + self._backoff_s
        self._backoff_s = min(2 * self._backoff_s, limits.NODE_RECONNECT_BACKOFF_S_MAX)
        self._drop_stream(unsent_error=_unavailable(self.address))

    def _drop_stream(self, unsent_error: DynamoError) -> None:
        call = self._call
        self._call = None
        if call is not None:
            call.cancel()
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()
        self._tasks = ()
        self._batch = []
        self._batch_bytes = 0
        self._outbox.clear()
        self._deadlines.clear()
        written = self._last_written_id
        waiting = self._waiting
        self._waiting = {}
        for op_id, fut in waiting.items():
            if not fut.done():
                fut.set_exception(InternalServerError(_INTERNAL) if op_id <= written else unsent_error)
        for fut in self._room:
            if not fut.done():
                fut.set_result(None)
        self._room.clear()

    def _sweep(self) -> None:
        """Fail calls unanswered past the timeout; re-arm while the stream is open."""
        self._sweep_handle = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        deadlines = self._deadlines
        waiting = self._waiting
        while deadlines and (not waiting or deadlines[0][0] < next(iter(waiting))):
            deadlines.popleft()  # every op of that batch is answered
        while deadlines and deadlines[0][1] <= now:
            last_id = deadlines.popleft()[0]
            expired = list(itertools.takewhile(lambda i: i <= last_id, waiting))
            if expired:
                log.warning("storage node %s: %d calls timed out", self.address, len(expired))
            for op_id in expired:
                fut = waiting.pop(op_id)
                if not fut.done():
                    fut.set_exception(InternalServerError(_INTERNAL))
        self._make_room()
        if self._call is not None:
            self._sweep_handle = loop.call_later(limits.STORAGE_CALL_SWEEP_INTERVAL_S, self._sweep)

    async def close(self) -> None:
        if self._sweep_handle is not None:
            self._sweep_handle.cancel()
            self._sweep_handle = None
        self._drop_stream(unsent_error=_unavailable(self.address))
        if self._channel is not None:
            await self._channel.close()
            self._channel = None
            self._stub = None

    # --- unary calls -------------------------------------------------------

    async def unary(self, method: str, request, timeout_s: float = limits.STORAGE_CALL_TIMEOUT_S):
        rpc = getattr(self.stub(), method)
        try:
            return await rpc(request, timeout=timeout_s)
        except grpc.aio.AioRpcError as exc:
            raise _error_from_rpc(self.address, exc) from exc


class GrpcStorage(Storage):
    """Storage nodes reached over gRPC.

    ``nodes`` pairs each node's id with its address.  The ring is built from
    the ids, which stay the same when a node comes back on another port, so
    keys keep mapping to the node that holds them.
    """

    def __init__(self, nodes: list[tuple[str, str]]) -> None:
        if not nodes:
            raise ValueError("GrpcStorage needs at least one node")
        self.node_ids = [node_id for node_id, _ in nodes]
        if len(set(self.node_ids)) != len(self.node_ids):
            raise ValueError(f"duplicate node ids: {self.node_ids}")
        self._links = {node_id: _NodeLink(address) for node_id, address in nodes}

    def __repr__(self) -> str:
        return f"<GrpcStorage {list(self._links.values())!r}>"

    def statistics(self) -> list[LinkStatistics]:
        return [link.statistics() for link in self._links.values()]

    def call(self, node_id: str, op: ItemOp):  # type: ignore[override]
        """Returns the link's coroutine directly: one coroutine frame less per call."""
        return self._links[node_id].call(op)

    async def read_range(self, node_id: str, read: RangeRead) -> RangeResult:
        """One unary ``ReadRange`` call: a page is one message each way."""
        reply = await self._links[node_id].unary("ReadRange", range_read_to_pb(read))
        return range_result_from_pb(reply)

    async def stream_shards(self, node_id: str, table_id: int, stream_id: int) -> StreamShards:
        reply = await self._links[node_id].unary("StreamShards", pb.StreamRef(table_id=table_id, stream_id=stream_id))
        return stream_shards_from_pb(reply)

    async def read_stream(self, node_id: str, read: StreamRead) -> StreamPage:
        """One unary ``ReadStream`` call: a page is one message each way."""
        reply = await self._links[node_id].unary("ReadStream", stream_read_to_pb(read))
        return stream_page_from_pb(reply)

    async def _everywhere(self, method: str, request) -> list:
        return await asyncio.gather(*(link.unary(method, request) for link in self._links.values()))

    async def catalog_put(self, entry: CatalogEntry) -> None:
        await self._everywhere("CatalogPut", catalog_to_pb(entry))

    async def catalog_list(self) -> list[CatalogEntry]:
        replies = await asyncio.gather(
            *(link.unary("CatalogList", pb.Empty()) for link in self._links.values()),
            return_exceptions=True,
        )
        newest: dict[str, CatalogEntry] = {}
        reached = False
        for reply in replies:
            if isinstance(reply, BaseException):
                if not isinstance(reply, DynamoError):
                    raise reply
                continue
            reached = True
            for m in reply.entries:
                current = newest.get(m.name)
                if current is None or m.revision > current.revision:
                    newest[m.name] = catalog_from_pb(m)
        if not reached:
            raise next(r for r in replies if isinstance(r, DynamoError))
        return list(newest.values())

    async def drop_table(self, table_id: int) -> None:
        await self._everywhere("DropTable", pb.TableRef(table_id=table_id))

    async def table_stats(self, table_id: int) -> TableStats:
        replies = await self._everywhere("GetTableStats", pb.TableRef(table_id=table_id))
        total = TableStats()
        for reply in replies:
            stats = stats_from_pb(reply)
            total.item_count += stats.item_count
            total.size_bytes += stats.size_bytes
            total.ttl_deleted_count += stats.ttl_deleted_count  # each expiry is counted by one node only
            for index_id, index in stats.indexes.items():
                summed = total.indexes.setdefault(index_id, IndexStats())
                summed.item_count += index.item_count
                summed.size_bytes += index.size_bytes
                summed.backfilling = summed.backfilling or index.backfilling
        return total

    # --- backups and point-in-time recovery -----------------------------------------

    async def create_checkpoint(self, node_id: str, name: str) -> CheckpointInfo:
        reply = await self._links[node_id].unary("CreateCheckpoint", pb.CheckpointRef(name=name))
        return checkpoint_info_from_pb(reply)

    async def delete_checkpoint(self, node_id: str, name: str) -> None:
        await self._links[node_id].unary("DeleteCheckpoint", pb.CheckpointRef(name=name))

    async def hold_writes(self, node_id: str, token: str, timeout_s: float) -> None:
        await self._links[node_id].unary("HoldWrites", pb.WriteHold(token=token, timeout_s=timeout_s))

    async def release_writes(self, node_id: str, token: str) -> None:
        await self._links[node_id].unary("ReleaseWrites", pb.WriteHold(token=token))

    async def restore_table(self, node_id: str, request: RestoreRequest) -> RestoreResult:
        """A restore copies a node's share of a table: it may take minutes."""
        reply = await self._links[node_id].unary(
            "RestoreTable", restore_request_to_pb(request), timeout_s=limits.RESTORE_CALL_TIMEOUT_S
        )
        return restore_result_from_pb(reply)

    async def pitr_window(self, node_id: str) -> int:
        reply = await self._links[node_id].unary("GetPitrWindow", pb.Empty())
        return reply.oldest_checkpoint_ms

    # --- transactions: unary calls, one per node and phase ---------------------------

    async def transact(self, node_id: str, request: TxnRequest) -> list[ItemResult]:
        reply = await self._links[node_id].unary(
            "Transact", txn_request_to_pb(request), timeout_s=limits.TXN_CALL_TIMEOUT_S
        )
        return txn_reply_from_pb(reply)

    async def txn_decide(self, node_id: str, txn_id: bytes, outcome: TxnOutcome,
                         forget: list[bytes] | None = None) -> TxnOutcome:
        reply = await self._links[node_id].unary(
            "TxnDecide", pb.TxnDecision(txn_id=txn_id, outcome=outcome, forget=forget or ()),
            timeout_s=limits.TXN_CALL_TIMEOUT_S,
        )
        return TxnOutcome(reply.outcome)

    async def txn_finish(self, node_id: str, txn_id: bytes, commit: bool) -> None:
        await self._links[node_id].unary(
            "TxnFinish", pb.TxnEnd(txn_id=txn_id, commit=commit), timeout_s=limits.TXN_CALL_TIMEOUT_S
        )

    async def txn_forget(self, node_id: str, txn_ids: list[bytes]) -> None:
        await self._links[node_id].unary("TxnForget", pb.TxnIds(txn_ids=txn_ids), timeout_s=limits.TXN_CALL_TIMEOUT_S)

    async def txn_read(self, node_id: str, ops: list[ItemOp]) -> list[ItemResult]:
        reply = await self._links[node_id].unary(
            "TxnReadItems", txn_read_to_pb(ops), timeout_s=limits.TXN_CALL_TIMEOUT_S
        )
        return txn_reply_from_pb(reply)

    async def lease_capacity(self, node_id: str, request: LeaseRequest) -> float:
        reply = await self._links[node_id].unary(
            "LeaseCapacity", lease_to_pb(request), timeout_s=limits.THROUGHPUT_LEASE_TIMEOUT_S
        )
        return reply.granted

    async def close(self) -> None:
        await asyncio.gather(*(link.close() for link in self._links.values()))
