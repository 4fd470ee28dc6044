"""Simulated links: latency, loss becomes delay, cuts hold everything until healed, order kept."""

from __future__ import annotations

import asyncio
import random

import pytest
from sim.virtual import run_virtual

from meridian.model import limits
from meridian.replication.clock import VirtualClock
from meridian.model.changes import Ack, ReplicationBatch
from meridian.replication.interfaces import PeerUnavailable
from meridian.replication.link import LinkConditions, SimulatedLink


def _batch(i: int) -> ReplicationBatch:
    return ReplicationBatch(
        origin="a", node_id=f"n{i}", after_sequence=i, last_sequence=i + 1, changes=(), size_bytes=0, stamp_floor_hlc=0
    )


class _Peer:
    """A transport that records what arrives when, and can be down."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.arrivals: list[tuple[float, int]] = []
        self.down = False
        self.refused = 0

    async def deliver(self, batch: ReplicationBatch) -> Ack:
        if self.down:
            self.refused += 1
            raise PeerUnavailable("b")
        self.arrivals.append((self.clock.monotonic_s(), batch.after_sequence))
        return Ack(receiver="b", applied=0)


def _link(clock: VirtualClock, peer: _Peer, seed: int = 1, **conditions) -> SimulatedLink:
    return SimulatedLink("a", "b", peer, clock, random.Random(seed), LinkConditions(**conditions))


def test_latency_each_way() -> None:
    async def main(clock: VirtualClock) -> float:
        peer = _Peer(clock)
        link = _link(clock, peer, latency_ms=80)
        ack = await link.send(_batch(0))
        assert ack.receiver == "b"
        assert peer.arrivals == [(pytest.approx(0.08), 0)]
        return clock.monotonic_s()

    assert run_virtual(main) == pytest.approx(0.16)


def test_loss_is_retransmitted_so_it_costs_time_not_data() -> None:
    async def main(clock: VirtualClock) -> None:
        peer = _Peer(clock)
        link = _link(clock, peer, latency_ms=10, loss=0.5)
        await asyncio.gather(*(link.send(_batch(i)) for i in range(200)))
        assert [i for _, i in peer.arrivals] == list(range(200))  # each once, in order
        stats = link.statistics()
        assert stats.batches_delivered == 200 and stats.in_flight == 0
        assert stats.retransmissions > 100  # ~half of ~400+ transmissions were lost
        assert clock.monotonic_s() >= limits.LINK_RETRANSMIT_TIMEOUT_MIN_S

    run_virtual(main)


def test_a_cut_link_delivers_nothing_until_healed() -> None:
    async def main(clock: VirtualClock) -> None:
        peer = _Peer(clock)
        link = _link(clock, peer, latency_ms=20, cut=True)
        sends = [asyncio.ensure_future(link.send(_batch(i))) for i in range(5)]
        await clock.sleep(3600)
        assert peer.arrivals == [] and not any(s.done() for s in sends)
        link.heal()
        await asyncio.gather(*sends)
        assert [i for _, i in peer.arrivals] == [0, 1, 2, 3, 4]
        assert all(t == pytest.approx(3600.02) for t, _ in peer.arrivals)

    run_virtual(main)


def test_a_cut_drops_what_is_on_the_wire_even_if_healed_before_it_lands() -> None:
    """The sender notices one retransmission timeout (0.4 s here) after sending."""
    async def main(clock: VirtualClock) -> None:
        peer = _Peer(clock)
        link = _link(clock, peer, latency_ms=100)
        send = asyncio.ensure_future(link.send(_batch(0)))
        await clock.sleep(0.05)
        link.cut()
        await clock.sleep(0.01)
        link.heal()
        await send
        assert peer.arrivals == [(pytest.approx(0.5), 0)]
        assert link.statistics().retransmissions == 1

    run_virtual(main)


def test_jitter_never_reorders_batches() -> None:
    async def main(clock: VirtualClock) -> None:
        peer = _Peer(clock)
        link = _link(clock, peer, latency_ms=50, jitter_ms=45)
        sends = []
        for i in range(100):
            sends.append(asyncio.ensure_future(link.send(_batch(i))))
            await clock.sleep(0.001)
        await asyncio.gather(*sends)
        assert [i for _, i in peer.arrivals] == list(range(100))
        times = [t for t, _ in peer.arrivals]
        assert times == sorted(times)
        assert max(b - a for a, b in zip(times, times[1:])) > 0.005  # jitter did spread them

    run_virtual(main)


def test_a_peer_that_is_down_is_retried_until_it_is_back() -> None:
    async def main(clock: VirtualClock) -> None:
        peer = _Peer(clock)
        peer.down = True
        link = _link(clock, peer, latency_ms=5)
        send = asyncio.ensure_future(link.send(_batch(0)))
        await clock.sleep(2.0)
        assert not send.done() and peer.refused >= 5
        peer.down = False
        await send
        assert len(peer.arrivals) == 1

    run_virtual(main)


def test_an_abandoned_send_does_not_block_later_ones() -> None:
    async def main(clock: VirtualClock) -> None:
        peer = _Peer(clock)
        link = _link(clock, peer, latency_ms=100)
        first = asyncio.ensure_future(link.send(_batch(0)))
        await clock.sleep(0.01)
        second = asyncio.ensure_future(link.send(_batch(1)))
        await clock.sleep(0.01)
        first.cancel()
        await second
        assert [i for _, i in peer.arrivals] == [1]

    run_virtual(main)


def test_conditions_change_at_run_time_and_are_validated() -> None:
    async def main(clock: VirtualClock) -> None:
        peer = _Peer(clock)
        link = _link(clock, peer, latency_ms=10)
        await link.send(_batch(0))
        assert link.set(latency_ms=300, jitter_ms=0).latency_ms == 300
        started = clock.monotonic_s()
        await link.send(_batch(1))
        assert clock.monotonic_s() - started == pytest.approx(0.6)
        assert "latency=300" in repr(link)

    run_virtual(main)
    with pytest.raises(ValueError):
        LinkConditions(latency_ms=-1)
    with pytest.raises(ValueError):
        LinkConditions(loss=1.0)
    assert LinkConditions(latency_ms=150, jitter_ms=10).retransmit_timeout_s == pytest.approx(0.64)
    assert LinkConditions().retransmit_timeout_s == limits.LINK_RETRANSMIT_TIMEOUT_MIN_S


def test_the_same_seed_gives_the_same_timings() -> None:
    def timings(seed: int) -> list[float]:
        async def main(clock: VirtualClock) -> list[float]:
            peer = _Peer(clock)
            link = _link(clock, peer, seed=seed, latency_ms=30, jitter_ms=20, loss=0.2)
            await asyncio.gather(*(link.send(_batch(i)) for i in range(50)))
            return [t for t, _ in peer.arrivals]

        return run_virtual(main)

    assert timings(5) == timings(5)
    assert timings(5) != timings(6)
