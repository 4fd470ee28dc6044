"""The replicator, region by region, on virtual time: shipping, acks, cursors, bounds, pause."""

from __future__ import annotations

import asyncio
import random

import orjson
import pytest
from sim.virtual import run_virtual

from meridian.model import limits
from meridian.model.keycodec import table_prefix
from meridian.replication.clock import VirtualClock
from meridian.replication.cursors import MemoryCursorStore
from meridian.model.changes import Ack, ReplicationBatch
from meridian.replication.interfaces import PeerUnavailable
from meridian.replication.link import LinkConditions, SimulatedLink
from meridian.replication.replicator import Replicator
from meridian.replication.sim_store import SimNodeStore, SimRegionStorage


class _RecordingCursors(MemoryCursorStore):
    def __init__(self) -> None:
        super().__init__()
        self.history: list[tuple[str, str, int]] = []

    async def save(self, peer: str, node_id: str, sequence: int) -> None:
        self.history.append((peer, node_id, sequence))
        await super().save(peer, node_id, sequence)


class _Cluster:
    """Regions of sim nodes with replicators, joined by links; batches are recorded."""

    def __init__(self, clock: VirtualClock, regions=("a", "b"), nodes=1, bounds=None, **link):
        self.clock = clock
        self.storage = {r: SimRegionStorage([SimNodeStore(f"{r}{i}", r, clock) for i in range(nodes)]) for r in regions}
        self.cursors = {r: _RecordingCursors() for r in regions}
        self.batches: list[ReplicationBatch] = []
        self.links = {
            (a, b): SimulatedLink(a, b, self._transport(b), clock, random.Random(f"{a}{b}"), LinkConditions(**link))
            for a in regions
            for b in regions
            if a != b
        }
        self.replicators: dict[str, Replicator] = {}
        self.tasks: dict[str, asyncio.Task] = {}
        self._bounds = bounds or {}  # Replicator keyword arguments
        for r in regions:
            self.start(r)

    def _transport(self, target: str):
        cluster = self

        class _Transport:
            async def deliver(self, batch: ReplicationBatch) -> Ack:
                replicator = cluster.replicators.get(target)
                if replicator is None:
                    raise PeerUnavailable(target)
                cluster.batches.append(batch)
                return await replicator.receive(batch)

        return _Transport()

    def start(self, region: str) -> Replicator:
        links = {b: link for (a, b), link in self.links.items() if a == region}
        storage = self.storage[region]
        replicator = Replicator(
            region, storage.nodes, storage, self.cursors[region], links, self.clock, **self._bounds
        )
        self.replicators[region] = replicator
        self.tasks[region] = asyncio.ensure_future(replicator.run())
        return replicator

    async def crash(self, region: str) -> None:
        replicator = self.replicators.pop(region)
        replicator.close()
        task = self.tasks.pop(region)
        try:
            await task
        except asyncio.CancelledError:
            pass

    def put(self, region: str, key: bytes, n: int = 0, table_id: int = 1):
        key = table_prefix(table_id) + key
        item = orjson.dumps({"pk": {"S": key.hex()}, "n": {"N": str(n)}})
        return self.storage[region].owner(key).put(table_id, key, item)

    def get(self, region: str, key: bytes, table_id: int = 1):
        key = table_prefix(table_id) + key
        return self.storage[region].owner(key).get(key)

    async def pending(self, region: str) -> dict[str, int]:
        return await self.replicators[region].pending_changes()


def test_a_write_reaches_the_peer_after_the_link_latency_and_is_measured() -> None:
    async def main(clock: VirtualClock) -> None:
        c = _Cluster(clock, latency_ms=150)
        await clock.sleep(0.01)
        stamp = c.put("a", b"k")
        assert await c.pending("a") == {"b": 1}
        await clock.sleep(0.149)
        assert c.get("b", b"k") is None
        await clock.sleep(0.002)
        assert c.get("b", b"k")[0] == stamp
        summary = c.replicators["b"].latency.histogram(1, "a", "b").summary()
        assert summary.count == 1 and 150 <= summary.max_ms <= 151
        await clock.sleep(0.2)  # the ack's way back
        assert await c.pending("a") == {"b": 0}
        stats = c.replicators["a"].statistics()
        assert (stats.batches_sent, stats.changes_sent, stats.in_flight) == (1, 1, {"b": 0})
        assert c.cursors["a"].snapshot() == {("b", "a0"): 1}

    run_virtual(main)


def test_replicated_changes_are_logged_but_never_shipped_back() -> None:
    async def main(clock: VirtualClock) -> None:
        c = _Cluster(clock, regions=("a", "b", "c"), latency_ms=10)
        c.put("a", b"k1")
        c.put("b", b"k2")
        await clock.sleep(1)
        for region in "abc":
            node = c.storage[region].nodes[0]
            assert node.last_sequence == 2  # one local write, one replicated (or two replicated)
            assert await c.pending(region) == {p: 0 for p in "abc" if p != region}
        # Each change went straight from its origin to each peer, once.
        shipped = sorted((b.origin, len(b.changes)) for b in c.batches if b.changes)
        assert shipped == [("a", 1), ("a", 1), ("b", 1), ("b", 1)]
        assert c.replicators["c"].statistics().changes_sent == 0

    run_virtual(main)


def test_a_cut_link_leaves_the_backlog_in_the_log_not_in_memory() -> None:
    async def main(clock: VirtualClock) -> None:
        c = _Cluster(clock, latency_ms=20, cut=True, bounds={"batch_changes_max": 10, "inflight_batches_max": 3})
        node = c.storage["a"].nodes[0]
        reads = []
        real_read = node.read

        async def counting_read(after_seq, changes_max, bytes_max):
            out = await real_read(after_seq, changes_max, bytes_max)
            reads.append(len(out))
            return out

        node.read = counting_read
        for i in range(500):
            c.put("a", b"k%d" % i)
            await clock.sleep(0.001)
        await clock.sleep(60)
        assert sum(reads) <= 3 * 10  # only what fits the in-flight window was ever read
        assert c.replicators["a"].statistics().in_flight == {"b": 3}
        assert await c.pending("a") == {"b": 500}
        for link in c.links.values():
            link.heal()
        await clock.sleep(60)
        assert await c.pending("a") == {"b": 0}
        assert sum(reads) == 500
        assert all(len(b.changes) <= 10 for b in c.batches)
        assert len(list(c.storage["b"].records())) == 500

    run_virtual(main)


def test_batches_are_bounded_by_bytes_too() -> None:
    async def main(clock: VirtualClock) -> None:
        c = _Cluster(clock, latency_ms=5, bounds={"batch_bytes_max": 1000})
        for i in range(100):
            c.put("a", b"k%d" % i)
        await clock.sleep(5)
        assert sum(len(b.changes) for b in c.batches) == 100
        assert len(c.batches) > 1
        assert all(b.size_bytes <= 1000 for b in c.batches)

    run_virtual(main)


def test_the_cursor_is_saved_only_after_the_ack_and_a_restart_resends_harmlessly() -> None:
    async def main(clock: VirtualClock) -> None:
        c = _Cluster(clock, latency_ms=1000)
        c.put("a", b"k")
        await clock.sleep(1.5)  # delivered at 1.0 s, the ack is still on its way back
        assert c.get("b", b"k") is not None
        assert c.cursors["a"].snapshot() == {}
        await c.crash("a")
        c.start("a")
        await clock.sleep(3)
        b = c.replicators["b"].statistics()
        assert (b.changes_received, b.changes_applied) == (2, 1)  # resent, and discarded
        assert c.cursors["a"].snapshot() == {("b", "a0"): 1}

    run_virtual(main)


def test_out_of_order_acks_move_the_cursor_forward_only() -> None:
    async def main(clock: VirtualClock) -> None:
        c = _Cluster(clock, nodes=2, latency_ms=50, jitter_ms=49)
        for i in range(300):
            c.put("a", b"k%d" % i)
            await clock.sleep(0.0005)
        await clock.sleep(10)
        saved: dict[tuple[str, str], int] = {}
        for peer, node, sequence in c.cursors["a"].history:
            assert sequence > saved.get((peer, node), 0)
            saved[(peer, node)] = sequence
        assert sum(saved.values()) == 300
        assert await c.pending("a") == {"b": 0}

    run_virtual(main)


def test_pause_stops_replication_both_ways_until_resume() -> None:
    async def main(clock: VirtualClock) -> None:
        c = _Cluster(clock, latency_ms=10)
        c.replicators["a"].pause("b")
        c.replicators["b"].pause("a")
        assert c.replicators["a"].paused == ("b",)
        c.put("a", b"k1")
        c.put("b", b"k2")
        await clock.sleep(30)
        assert c.get("b", b"k1") is None and c.get("a", b"k2") is None
        assert await c.pending("a") == {"b": 1}
        c.replicators["a"].resume("b")  # a ships again, but b still holds what arrives
        await clock.sleep(30)
        assert c.get("b", b"k1") is None and len(c.batches) == 1
        c.replicators["b"].resume("a")
        await clock.sleep(1)
        assert c.get("b", b"k1") is not None and c.get("a", b"k2") is not None

    run_virtual(main)


def test_only_tables_replicated_to_a_peer_are_shipped_to_it() -> None:
    async def main(clock: VirtualClock) -> None:
        scope = {"replicates": lambda table_id, peer: table_id == 1 or peer == "c"}
        c = _Cluster(clock, regions=("a", "b", "c"), bounds=scope)
        c.put("a", b"x", table_id=1)
        c.put("a", b"y", table_id=2)
        await clock.sleep(1)
        assert c.get("b", b"x") is not None and c.get("b", b"y", table_id=2) is None
        assert c.get("c", b"y", table_id=2) is not None
        assert await c.pending("a") == {"b": 0, "c": 0}

    run_virtual(main)


def test_gc_horizon_follows_durable_cursors_and_peer_floors() -> None:
    async def main(clock: VirtualClock) -> None:
        c = _Cluster(clock, latency_ms=10)
        a = c.replicators["a"]
        c.put("a", b"k1")
        c.put("b", b"k2")
        await clock.sleep(0.05)
        horizon = a.gc_horizon()
        assert horizon.truncate_through == {"a0": 2}  # the local write, and the replicated one
        # b's batch promised nothing above its durable cursor, which was still 0.
        assert horizon.tombstone_floor_hlc == 0
        await clock.sleep(2 * limits.REPLICATION_FLOOR_INTERVAL_S)
        # Now b's cursor is saved and its log quiet: its floor caught up, sent on its own.
        stamp_b = c.get("a", b"k2")[0]
        assert a.gc_horizon().tombstone_floor_hlc >= stamp_b.hlc
        floors_sent = [x for x in c.batches if not x.changes]
        assert floors_sent and all(x.stamp_floor_hlc > 0 for x in floors_sent)
        await clock.sleep(10)
        assert [x for x in c.batches if not x.changes] == floors_sent  # only when the floor rises

    run_virtual(main)


def test_bounds_must_be_positive() -> None:
    async def main(clock: VirtualClock) -> None:
        storage = SimRegionStorage([SimNodeStore("a0", "a", clock)])
        with pytest.raises(ValueError):
            Replicator("a", storage.nodes, storage, MemoryCursorStore(), {}, clock, inflight_batches_max=0)
        with pytest.raises(ValueError):
            Replicator("a", storage.nodes, storage, MemoryCursorStore(), {"a": None}, clock)

    run_virtual(main)


def test_a_closed_replicator_refuses_batches() -> None:
    async def main(clock: VirtualClock) -> None:
        c = _Cluster(clock)
        replicator = c.replicators["b"]
        await c.crash("b")
        batch = ReplicationBatch("a", "a0", 0, 0, (), 0, 0)
        with pytest.raises(PeerUnavailable):
            await replicator.receive(batch)
        with pytest.raises(ValueError):
            await c.replicators["a"].receive(ReplicationBatch("zz", "n", 0, 0, (), 0, 0))
        assert "CLOSED" in repr(replicator)

    run_virtual(main)


def test_skipped_ranges_behind_a_stuck_batch_do_not_pile_up() -> None:
    """a's log fills with c's changes (never shipped by a) while a's own batch to b is stuck."""

    async def main(clock: VirtualClock) -> None:
        c = _Cluster(clock, regions=("a", "b", "c"), latency_ms=5, bounds={"batch_changes_max": 10})
        c.links[("a", "b")].cut()
        c.put("a", b"mine")
        await clock.sleep(0.1)
        for i in range(300):
            c.put("c", b"k%d" % i)
        await clock.sleep(30)
        assert c.storage["a"].nodes[0].last_sequence == 301
        line = c.replicators["a"]._cursors[("b", "a0")].shipments
        assert len(line) == 2 and not line[0].acked and line[1].last_sequence == 301
        assert await c.pending("a") == {"b": 301, "c": 0}
        c.links[("a", "b")].heal()
        await clock.sleep(5)
        assert await c.pending("a") == {"b": 0, "c": 0}
        assert c.get("b", b"mine") is not None

    run_virtual(main)
