"""The gRPC peer channel of DAX nodes in separate processes (``peers.py`` says why and what).

``GrpcPeers`` sends: one ``PeerLink`` per peer, a bounded queue drained by
one long-lived ``WriteThrough`` stream, a message per event-loop tick.
``PeerReceiver`` applies what arrives, in order; ``serve_peer_channel``
serves it.  gRPC is imported only here, so a DAX node without peers in
other processes never loads it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING

import grpc
import orjson

from meridian.model import limits
from meridian.model.errors import DynamoError
from meridian.proto import dax_peer_pb2 as pb
from meridian.proto import dax_peer_pb2_grpc
from meridian.proto.channels import SERVER_OPTIONS, channel_options

from .methods import key_names
from .peers import CachedItem
from .values import encode_values

if TYPE_CHECKING:
    from .node import DaxNode

log = logging.getLogger("meridian.dax.peers")


def _update_size_bytes(update: pb.CacheUpdate) -> int:
    return len(update.table) + len(update.key) + len(update.item)


class PeerLink:
    """One peer of a ``GrpcPeers``: its bounded queue and the stream that drains it.

    ``offer`` never blocks and never fails: it queues, or drops (see
    ``peers.py``).  ``run`` connects, streams, and on any failure reconnects
    after a backoff, until ``close``.  The stream is created with
    ``stream_factory`` (the gRPC stub's ``WriteThrough``; tests give a fake).

    Updates are numbered per link from 1 (``queued_seq``: the last queued);
    ``done_seq`` is the last one the peer acknowledged applying, or gave up on
    (dropped: its cache is cleared instead), so ``wait_done`` can hold a
    write's answer until the peer has it.  A peer that does not acknowledge
    within ``DAX_PEER_APPLY_WAIT_S`` is ``lagging``: writes stop waiting for it
    until it has caught up, so a paused peer slows one write, not all."""

    def __init__(self, peer_id: str, address: str, sender_id: str, *, stream_factory=None, ready=None,
                 on_change=None) -> None:  # fmt: skip
        self.peer_id, self.address, self.sender_id = peer_id, address, sender_id
        self._stream_factory = stream_factory
        self._ready = ready  # async () -> None: the channel is connected (raises on timeout)
        self._on_change = on_change  # () -> None: ``streaming`` changed
        self._pending: deque[pb.CacheUpdate] = deque()
        self._pending_bytes = 0
        self._wake = asyncio.Event()
        self._progress = asyncio.Event()
        self._closed = False
        self.streaming = False
        self.lagging = False
        #: the next message must empty the peer's item cache first (something was lost)
        self.clear_next = False
        self.queued_seq = 0
        self.done_seq = 0
        self.dropped = 0
        self.sent_updates = 0
        self.sent_batches = 0
        self.streams_opened = 0

    def __repr__(self) -> str:
        state = "streaming" if self.streaming else "closed" if self._closed else "connecting"
        return (f"<PeerLink {self.peer_id}@{self.address} {state} queued={len(self._pending)} "
                f"sent={self.sent_updates}/{self.sent_batches} done={self.done_seq}/{self.queued_seq} "
                f"dropped={self.dropped}{' lagging' if self.lagging else ''}>")

    @property
    def queued(self) -> int:
        return len(self._pending)

    def offer(self, update: pb.CacheUpdate) -> None:
        if not self.streaming:
            self._drop(1)
            return
        size_bytes = _update_size_bytes(update)
        if (len(self._pending) >= limits.DAX_PEER_QUEUE_UPDATES_MAX
                or self._pending_bytes + size_bytes > limits.DAX_PEER_QUEUE_BYTES_MAX):
            self._drop(len(self._pending) + 1)
            return
        self._pending.append(update)
        self._pending_bytes += size_bytes
        self.queued_seq += 1
        self._wake.set()  # the pump runs at the next tick: everything offered in this one is one batch

    def _drop(self, count: int) -> None:
        """Give up on ``count`` updates (the queued ones too): the peer's item cache must be cleared."""
        self.dropped += count
        self._pending.clear()
        self._pending_bytes = 0
        self.clear_next = True
        self._done(self.queued_seq)

    def _done(self, seq: int) -> None:
        self.done_seq = max(self.done_seq, seq)
        if self.done_seq >= self.queued_seq:
            self.lagging = False
        self._progress.set()

    def take_batch(self) -> pb.CacheUpdates:
        """The next message: queued updates up to the batch bounds, ``clear_first`` if owed."""
        updates = []
        size_bytes = 0
        while self._pending and len(updates) < limits.DAX_PEER_BATCH_UPDATES_MAX:
            update_bytes = _update_size_bytes(self._pending[0])
            if updates and size_bytes + update_bytes > limits.DAX_PEER_BATCH_BYTES_MAX:
                break
            updates.append(self._pending.popleft())
            size_bytes += update_bytes
        self._pending_bytes -= size_bytes
        batch = pb.CacheUpdates(sender_node_id=self.sender_id, clear_first=self.clear_next, updates=updates,
                                last_seq=self.queued_seq - len(self._pending))
        self.clear_next = False
        return batch

    async def wait_done(self, seq: int) -> None:
        """Return once the peer applied (or this link gave up on) update ``seq``, or it is found lagging."""
        try:
            await asyncio.wait_for(self._until_done(seq), limits.DAX_PEER_APPLY_WAIT_S)
        except TimeoutError:
            self.lagging = True

    async def _until_done(self, seq: int) -> None:
        while self.done_seq < seq:
            self._progress.clear()
            await self._progress.wait()

    async def run(self) -> None:
        while not self._closed:
            try:
                await self._ready()
                call = self._stream_factory()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - not connected (a timeout, mostly): try again
                log.debug("DAX peer %s at %s not reachable: %s", self.peer_id, self.address, exc)
                await asyncio.sleep(limits.DAX_PEER_RECONNECT_BACKOFF_S_MIN)
                continue
            self.lagging = False
            self._set_streaming(True)
            self.streams_opened += 1
            acks = asyncio.get_running_loop().create_task(self._read_acks(call))
            try:
                await self._pump(call, acks)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any stream failure: drop, reconnect, clear
                if not self._closed:
                    log.info("DAX peer stream to %s at %s ended: %s", self.peer_id, self.address, exc)
            finally:
                self._set_streaming(False)
                self._drop(len(self._pending))  # and whatever was in flight may be lost: clear next time
                call.cancel()
                acks.cancel()
                await asyncio.gather(acks, return_exceptions=True)
            if not self._closed:
                await asyncio.sleep(limits.DAX_PEER_RECONNECT_BACKOFF_S_MIN)

    async def _read_acks(self, call) -> None:
        try:
            async for ack in call:
                self._done(ack.last_seq)
        finally:
            self._wake.set()  # the stream is over: the pump notices

    def _set_streaming(self, streaming: bool) -> None:
        self.streaming = streaming
        if self._on_change is not None:
            self._on_change()

    async def _pump(self, call, acks: asyncio.Task) -> None:
        if self.clear_next:  # a stream after a broken one (or drops): clear at once, not at the next write
            await self._write(call, self.take_batch())
        while not self._closed:
            await self._wake.wait()
            self._wake.clear()
            if acks.done():
                raise ConnectionError("the peer ended the stream")
            while self._pending and not self._closed:
                await self._write(call, self.take_batch())
        await call.done_writing()

    async def _write(self, call, batch: pb.CacheUpdates) -> None:
        await call.write(batch)
        self.sent_batches += 1
        self.sent_updates += len(batch.updates)

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        self._progress.set()


class GrpcPeers:
    """Peers in other processes, each reached over one ``WriteThrough`` stream (see the module docstring)."""

    def __init__(self, sender_id: str, peers: Sequence[tuple[str, str]], on_change=None) -> None:
        """``peers``: (node id, HOST:PORT of its peer channel) of every other node;
        ``on_change``: called when a link's stream opens or breaks (``unreachable`` changed)."""
        self.sender_id = sender_id
        self.peers = list(peers)
        self._on_change = on_change
        self.links: dict[str, PeerLink] = {}
        self._channels = []
        self._tasks: list[asyncio.Task] = []

    def __repr__(self) -> str:
        return f"<GrpcPeers {list(self.links.values())!r}>"

    def start(self) -> None:
        """Open a channel and a link per peer (inside the running loop)."""
        options = channel_options(backoff_s_min=limits.DAX_PEER_RECONNECT_BACKOFF_S_MIN,
                                  backoff_s_max=limits.DAX_PEER_RECONNECT_BACKOFF_S_MAX, keepalive=True)
        for peer_id, address in self.peers:
            channel = grpc.aio.insecure_channel(address, options=options)
            stub = dax_peer_pb2_grpc.DaxPeerStub(channel)

            async def ready(channel=channel) -> None:
                await asyncio.wait_for(channel.channel_ready(), limits.DAX_PEER_CONNECT_TIMEOUT_S)

            link = PeerLink(peer_id, address, self.sender_id, stream_factory=stub.WriteThrough, ready=ready,
                            on_change=self._on_change)
            self._channels.append(channel)
            self.links[peer_id] = link
            self._tasks.append(asyncio.get_running_loop().create_task(link.run(), name=f"dax-peer-{peer_id}"))

    @property
    def unreachable(self) -> frozenset[str]:
        """Peers whose stream is not up now."""
        return frozenset(peer_id for peer_id, link in self.links.items() if not link.streaming)

    def _offer(self, update: pb.CacheUpdate) -> None:
        for link in self.links.values():
            link.offer(update)

    def write_through(self, table: str, key_bytes: bytes, value: CachedItem | None, size_bytes: int) -> None:
        if value is None:
            self._offer(pb.CacheUpdate(kind=pb.CACHE_DELETE, table=table, key=key_bytes))
        else:
            self._offer(pb.CacheUpdate(kind=pb.CACHE_WRITE, table=table, key=key_bytes, item=orjson.dumps(value[0])))

    def invalidate(self, table: str, key_bytes: bytes) -> None:
        self._offer(pb.CacheUpdate(kind=pb.CACHE_INVALIDATE, table=table, key=key_bytes))

    async def wait_applied(self) -> None:
        """Return once every streaming, not lagging peer applied every update offered so far
        (a write's answer waits for it: then a read through any node sees the write)."""
        waits = [link.wait_done(link.queued_seq) for link in self.links.values()
                 if link.streaming and not link.lagging and link.done_seq < link.queued_seq]
        if waits:
            await asyncio.gather(*waits)

    def statistics(self) -> dict[str, int]:
        """Totals over the links (``/metrics`` of ``meridian dax``)."""
        links = self.links.values()
        return {
            "PeerUpdatesSent": sum(link.sent_updates for link in links),
            "PeerBatchesSent": sum(link.sent_batches for link in links),
            "PeerUpdatesDropped": sum(link.dropped for link in links),
            "PeerUpdatesQueued": sum(link.queued for link in links),
            "PeersConnected": sum(link.streaming for link in links),
            "PeersLagging": sum(link.lagging for link in links),
        }

    async def close(self) -> None:
        for link in self.links.values():
            link.close()
        if self._tasks:
            _done, pending = await asyncio.wait(self._tasks, timeout=limits.DAX_PEER_CLOSE_TIMEOUT_S)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        for channel in self._channels:
            await channel.close()
        self._tasks, self._channels = [], []


class PeerReceiver:
    """Applies the ``CacheUpdates`` other nodes send to this node's item cache, in order.

    A written item arrives as DynamoDB JSON and is cached as a local write
    through would cache it (its values bytes made with this node's attribute
    lists, after the table's key schema); an item of a table whose schema
    cannot be had here is forgotten instead, which is always safe."""

    def __init__(self, node: DaxNode) -> None:
        self.node = node
        self.batches = 0
        self.updates = 0
        self.clears = 0

    def __repr__(self) -> str:
        return f"<PeerReceiver {self.node.node_id} batches={self.batches} updates={self.updates} clears={self.clears}>"

    async def apply(self, batch: pb.CacheUpdates) -> None:
        names: dict[str, tuple[str, ...] | None] = {}
        for table in {u.table for u in batch.updates if u.kind == pb.CACHE_WRITE}:
            try:
                names[table] = key_names(await self.node.key_schemas.of(table))
            except DynamoError:
                names[table] = None
        items = self.node.caches.items  # looked up now: a reboot replaces the caches
        if batch.clear_first:
            items.clear()
            self.clears += 1
        for update in batch.updates:
            if update.kind == pb.CACHE_WRITE and names.get(update.table) is not None:
                item = orjson.loads(update.item)
                try:
                    values = encode_values(item, names[update.table], self.node.registry)
                except DynamoError:  # no room for another attribute list: forget the item instead
                    items.invalidate(update.table, update.key)
                    continue
                items.write_through(update.table, update.key, (item, values), len(values))
            elif update.kind == pb.CACHE_DELETE:
                items.write_through(update.table, update.key, None, 0)
            else:
                items.invalidate(update.table, update.key)
        self.batches += 1
        self.updates += len(batch.updates)

    def statistics(self) -> dict[str, int]:
        return {"PeerUpdatesReceived": self.updates, "PeerBatchesReceived": self.batches, "PeerClears": self.clears}


async def serve_peer_channel(receiver: PeerReceiver, host: str, port: int):
    """Serve ``DaxPeer`` for ``receiver`` on ``host:port``; returns the started ``grpc.aio`` server."""
    class Service(dax_peer_pb2_grpc.DaxPeerServicer):
        async def WriteThrough(self, request_iterator, context):  # noqa: N802 - gRPC's method name
            async for batch in request_iterator:
                await receiver.apply(batch)
                yield pb.WriteThroughAck(last_seq=batch.last_seq)

    server = grpc.aio.server(options=SERVER_OPTIONS)
    dax_peer_pb2_grpc.add_DaxPeerServicer_to_server(Service(), server)
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError:  # grpc's "Failed to bind"
        bound = 0
    if bound == 0:
        raise OSError(f"cannot bind the DAX peer channel to {host}:{port}")
    await server.start()
    return server
