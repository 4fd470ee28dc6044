"""The DAX peer channel: batching per tick, bounds, drops and clear-on-reconnect, and a real gRPC round trip.

``PeerLink`` is driven with a fake stream (no sockets) for batching and
bounds; ``PeerReceiver`` with a node whose upstream answers DescribeTable;
then ``GrpcPeers`` and ``serve_peer_channel`` talk over 127.0.0.1, with the
receiving server stopped and started again.
"""

from __future__ import annotations

import asyncio

import orjson
import pytest

from meridian.cluster.procs import free_port
from meridian.model import limits
from meridian.proto import dax_peer_pb2 as pb
from meridian.router.dax.cache import MISS
from meridian.router.dax.membership import endpoints_of, member_of, parse_advertise, parse_members
from meridian.router.dax.node import DaxNode
from meridian.router.dax.peer_channel import GrpcPeers, PeerLink, PeerReceiver, serve_peer_channel
from meridian.router.dax.peers import LocalPeers

WAIT_S = 10.0


class FakeStream:
    """A bidirectional stream that records what is written and acknowledges it (unless
    ``acking`` is off); ``fail()`` ends it as a dead peer would."""

    def __init__(self) -> None:
        self.batches: list[pb.CacheUpdates] = []
        self.acking = True
        self._acks: asyncio.Queue = asyncio.Queue()
        self._done = False

    async def write(self, batch: pb.CacheUpdates) -> None:
        if self._done:
            raise ConnectionError("stream ended")
        self.batches.append(batch)
        if self.acking:
            self._acks.put_nowait(pb.WriteThroughAck(last_seq=batch.last_seq))

    def ack_all(self) -> None:
        self._acks.put_nowait(pb.WriteThroughAck(last_seq=self.batches[-1].last_seq))

    def __aiter__(self):
        return self

    async def __anext__(self) -> pb.WriteThroughAck:
        ack = await self._acks.get()
        if ack is None:
            raise StopAsyncIteration
        return ack

    def fail(self) -> None:
        self._done = True
        self._acks.put_nowait(None)

    def cancel(self) -> None:
        self.fail()

    async def done_writing(self) -> None:
        return None


class FakePeer:
    """Hands out a new ``FakeStream`` per connection."""

    def __init__(self) -> None:
        self.streams: list[FakeStream] = []

    async def ready(self) -> None:
        return None

    def open(self) -> FakeStream:
        self.streams.append(FakeStream())
        return self.streams[-1]


def _update(n: int, item_bytes: int = 0) -> pb.CacheUpdate:
    return pb.CacheUpdate(kind=pb.CACHE_WRITE, table="t", key=b"k%d" % n, item=b"x" * item_bytes)


async def _until(predicate, what: str) -> None:
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0)  # a tick: the link runs between two looks

    try:
        await asyncio.wait_for(poll(), WAIT_S)
    except TimeoutError:
        raise AssertionError(f"timed out after {WAIT_S:g} s waiting for {what}") from None


async def _streaming_link(peer: FakePeer) -> tuple[PeerLink, asyncio.Task]:
    link = PeerLink("b", "fake", "a", stream_factory=peer.open, ready=peer.ready)
    task = asyncio.create_task(link.run())
    await _until(lambda: link.streaming, "the link to stream")
    return link, task


async def _stop(link: PeerLink, task: asyncio.Task) -> None:
    link.close()
    await asyncio.wait_for(task, WAIT_S)


def test_updates_offered_in_one_tick_travel_as_one_batch():
    async def main() -> None:
        peer = FakePeer()
        link, task = await _streaming_link(peer)
        for n in range(5):
            link.offer(_update(n))
        await _until(lambda: link.sent_updates == 5, "five updates sent")
        link.offer(_update(5))
        await _until(lambda: link.sent_updates == 6, "the sixth")
        batches = peer.streams[0].batches
        assert [len(b.updates) for b in batches] == [5, 1]
        assert [b.updates[0].key for b in batches] == [b"k0", b"k5"]
        assert not any(b.clear_first for b in batches) and link.dropped == 0
        await _stop(link, task)

    asyncio.run(main())


def test_a_batch_keeps_to_its_bounds(monkeypatch):
    monkeypatch.setattr(limits, "DAX_PEER_BATCH_UPDATES_MAX", 3)
    link = PeerLink("b", "fake", "a")
    link.streaming = True
    for n in range(7):
        link.offer(_update(n))
    assert [len(link.take_batch().updates) for _ in range(3)] == [3, 3, 1]
    monkeypatch.setattr(limits, "DAX_PEER_BATCH_BYTES_MAX", 250)
    for n in range(3):
        link.offer(_update(n, item_bytes=100))
    assert [len(link.take_batch().updates) for _ in range(2)] == [2, 1]
    link.offer(_update(9, item_bytes=1000))  # one update bigger than a batch still travels, alone
    assert len(link.take_batch().updates) == 1


def test_a_full_queue_is_dropped_counted_and_the_peer_cleared(monkeypatch):
    monkeypatch.setattr(limits, "DAX_PEER_QUEUE_UPDATES_MAX", 4)
    link = PeerLink("b", "fake", "a")
    link.streaming = True
    for n in range(4):
        link.offer(_update(n))
    assert (link.queued, link.dropped, link.clear_next) == (4, 0, False)
    link.offer(_update(4))  # the peer is not keeping up: all five go
    assert (link.queued, link.dropped, link.clear_next) == (0, 5, True)
    link.offer(_update(5))
    batch = link.take_batch()
    assert batch.clear_first and [u.key for u in batch.updates] == [b"k5"]
    assert not link.clear_next and not link.take_batch().clear_first


def test_the_queue_is_bounded_in_bytes_too(monkeypatch):
    monkeypatch.setattr(limits, "DAX_PEER_QUEUE_BYTES_MAX", 1000)
    link = PeerLink("b", "fake", "a")
    link.streaming = True
    link.offer(_update(0, item_bytes=600))
    link.offer(_update(1, item_bytes=600))
    assert (link.queued, link.dropped, link.clear_next) == (0, 2, True)


def test_updates_for_a_peer_not_connected_are_dropped_and_counted():
    link = PeerLink("b", "fake", "a")
    link.offer(_update(0))
    assert (link.queued, link.dropped, link.clear_next) == (0, 1, True)


def test_a_new_stream_after_a_broken_one_starts_by_clearing():
    async def main() -> None:
        peer = FakePeer()
        link, task = await _streaming_link(peer)
        link.offer(_update(0))
        await _until(lambda: link.sent_updates == 1, "the first update")
        peer.streams[0].fail()  # the peer died: what was in flight may be lost
        await _until(lambda: len(peer.streams) == 2 and link.sent_batches == 2, "a new stream and its first message")
        first = peer.streams[1].batches[0]
        assert first.clear_first and list(first.updates) == []  # at once, not at the next write
        assert link.streams_opened == 2
        link.offer(_update(1))
        await _until(lambda: link.sent_updates == 2, "the next update")
        assert not peer.streams[1].batches[-1].clear_first
        await _stop(link, task)

    asyncio.run(main())


def test_a_write_waits_for_its_peers_acknowledgement_but_not_for_a_lagging_peer(monkeypatch):
    monkeypatch.setattr(limits, "DAX_PEER_APPLY_WAIT_S", 0.2)

    async def main() -> None:
        peer = FakePeer()
        link, task = await _streaming_link(peer)
        link.offer(_update(0))
        await link.wait_done(link.queued_seq)  # acknowledged by the fake at once
        assert (link.done_seq, link.queued_seq, link.lagging) == (1, 1, False)
        peer.streams[0].acking = False  # a paused peer
        link.offer(_update(1))
        started = asyncio.get_running_loop().time()
        await link.wait_done(link.queued_seq)
        assert asyncio.get_running_loop().time() - started >= 0.2 and link.lagging
        peer.streams[0].ack_all()  # caught up: waited for again
        await _until(lambda: not link.lagging, "the lagging peer to catch up")
        assert link.done_seq == 2
        await _stop(link, task)

    asyncio.run(main())


class SchemaUpstream:
    """DescribeTable of table ``t`` (hash key ``pk``); any other table does not exist."""

    async def call(self, action: str, body: dict) -> dict:
        from meridian.model.errors import ResourceNotFoundException

        if body["TableName"] != "t":
            raise ResourceNotFoundException("Requested resource not found")
        return {"Table": {"AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                          "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}]}}

    async def close(self) -> None:
        return None


def _write(key: bytes, item: dict, table: str = "t") -> pb.CacheUpdate:
    return pb.CacheUpdate(kind=pb.CACHE_WRITE, table=table, key=key, item=orjson.dumps(item))


def test_the_receiver_applies_writes_deletes_invalidations_and_clears_in_order():
    async def main() -> None:
        node = DaxNode.create("b", SchemaUpstream())
        receiver = PeerReceiver(node)
        items = node.caches.items
        item = {"pk": {"S": "a"}, "v": {"N": "1"}}
        await receiver.apply(pb.CacheUpdates(updates=[
            _write(b"a", item), pb.CacheUpdate(kind=pb.CACHE_DELETE, table="t", key=b"gone"),
            _write(b"x", {"pk": {"S": "x"}}, table="dropped-table"),
        ]))
        cached_item, values = items.get("t", b"a")
        assert cached_item == item and values  # cached as a local write-through caches it
        assert items.get("t", b"gone") is None  # "no such item"
        assert items.get("dropped-table", b"x") is MISS  # no schema here: forgotten, never guessed
        await receiver.apply(pb.CacheUpdates(updates=[pb.CacheUpdate(kind=pb.CACHE_INVALIDATE, table="t", key=b"a")]))
        assert items.get("t", b"a") is MISS
        await receiver.apply(pb.CacheUpdates(updates=[_write(b"b", item)]))
        await receiver.apply(pb.CacheUpdates(clear_first=True, updates=[_write(b"c", item)]))
        assert items.get("t", b"b") is MISS and items.get("t", b"gone") is MISS  # cleared first ...
        assert items.get("t", b"c") is not MISS  # ... then applied
        assert receiver.statistics() == {"PeerUpdatesReceived": 6, "PeerBatchesReceived": 4, "PeerClears": 1}

    asyncio.run(main())


def test_local_peers_write_through_before_the_answer():
    sender, other = DaxNode.create("a", SchemaUpstream()), DaxNode.create("b", SchemaUpstream())
    sender.peers = LocalPeers([other])
    sender.write_through("t", b"k", ({"pk": {"S": "k"}}, b"\x01"), 1)
    assert other.caches.items.get("t", b"k") == ({"pk": {"S": "k"}}, b"\x01")
    sender.invalidate("t", b"k")
    assert other.caches.items.get("t", b"k") is MISS


def test_write_throughs_cross_processes_over_grpc_and_a_restarted_peer_is_cleared():
    async def main() -> None:
        port = free_port()
        receiving = DaxNode.create("b", SchemaUpstream())
        receiver = PeerReceiver(receiving)
        server = await serve_peer_channel(receiver, "127.0.0.1", port)
        sender = DaxNode.create("a", SchemaUpstream())
        peers = GrpcPeers("a", [("b", f"127.0.0.1:{port}")])
        sender.peers = peers
        peers.start()
        link = peers.links["b"]
        try:
            await _until(lambda: link.streaming, "the stream to b")
            item = {"pk": {"S": "k"}, "v": {"S": "one"}}
            sender.write_through("t", b"k", (item, b""), 0)
            sender.write_through("t", b"gone", None, 0)
            await peers.wait_applied()  # what a write's answer waits for
            assert receiver.updates == 2
            assert receiving.caches.items.get("t", b"k")[0] == item
            assert peers.statistics()["PeerUpdatesSent"] == 2 and peers.unreachable == frozenset()

            await server.stop(grace=None)  # b is down: updates for it are dropped and counted
            await _until(lambda: not link.streaming, "the stream to notice b is gone")
            assert peers.unreachable == {"b"}
            sender.write_through("t", b"k", ({"pk": {"S": "k"}, "v": {"S": "two"}}, b""), 0)
            assert link.dropped >= 1 and link.clear_next

            server = await serve_peer_channel(receiver, "127.0.0.1", port)  # b again (its cache kept, as
            await _until(lambda: receiver.clears == 1, "b cleared on reconnect")  # after a network cut)
            assert receiving.caches.items.get("t", b"k") is MISS  # not the stale "one"
        finally:
            await peers.close()
            await server.stop(grace=None)

    asyncio.run(main())


def test_members_parse_and_every_node_lists_every_node():
    members = parse_members("meridian-a=127.0.0.1:8111/9111, meridian-b=127.0.0.1:8112/9112,meridian-c=10.0.0.3:8113/9113")
    assert [m.node_id for m in members] == ["meridian-a", "meridian-b", "meridian-c"]
    assert member_of(members, "meridian-b").peer_address == "127.0.0.1:9112"
    listed = endpoints_of(members, "meridian-b", "us-east-1")
    assert [(n.node_id, int(n.role), n.az, n.address, n.port) for n in listed] == [
        ("meridian-a", 1, "us-east-1a", "127.0.0.1", 8111),
        ("meridian-b", 2, "us-east-1b", None, None),  # itself: as the client reached it
        ("meridian-c", 2, "us-east-1c", "10.0.0.3", 8113),
    ]
    # a replica this node cannot reach is left out; the leader never is
    left = endpoints_of(members, "meridian-b", "us-east-1", frozenset({"meridian-a", "meridian-c"}))
    assert [n.node_id for n in left] == ["meridian-a", "meridian-b"]
    # behind a published port: the node lists itself where the host publishes it
    shown = endpoints_of(members[:1], "meridian-a", "eu-west-1", advertise=parse_advertise("127.0.0.1:8112"))
    assert [(n.address, n.port) for n in shown] == [("127.0.0.1", 8112)]
    for bad in ("a=h:1", "a=h:1/x", "=h:1/2", "a=h:1/2,a=h:3/4"):
        with pytest.raises(ValueError):
            parse_members(bad)
    with pytest.raises(ValueError):
        member_of(members, "meridian-z")
