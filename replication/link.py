"""A simulated network path between two regions: latency, jitter, loss, cut.

The machine Meridian runs on has no traffic shaping, so every inter-region
link is shaped here, in front of a ``Transport`` (a gRPC stream in a
cluster, a direct call in the simulation).  A link behaves like one TCP
stream over a bad network:

* each transmission takes ``latency_ms`` plus a uniform jitter in
  ``[-jitter_ms, +jitter_ms]`` one way, and the ack the same on the way back;
* a transmission is lost with probability ``loss``; the sender notices after
  a retransmission timeout and sends again, so loss costs time, never data;
* a cut link drops everything on it, and nothing gets through until it is
  healed: then the senders retransmit;
* batches are handed to the peer in the order they were sent (a batch that
  arrives early waits for the ones before it: head-of-line blocking).

Conditions change at run time (``set``, ``cut``, ``heal``).  Randomness
comes from an injected ``random.Random`` and time from the injected
``Clock``, so the simulation replays exactly from a seed.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, replace

from meridian.model import limits
from meridian.model.changes import Ack, ReplicationBatch
from meridian.replication.interfaces import Clock, PeerUnavailable, Transport


@dataclass(frozen=True, slots=True)
class LinkConditions:
    """How one direction of a link between regions behaves."""

    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    loss: float = 0.0  # probability that one transmission is lost
    cut: bool = False

    def __post_init__(self) -> None:
        if self.latency_ms < 0 or self.jitter_ms < 0:
            raise ValueError("latency and jitter must not be negative")
        if not 0.0 <= self.loss <= limits.LINK_LOSS_MAX:
            raise ValueError(f"loss must be within [0, {limits.LINK_LOSS_MAX}]")

    @property
    def retransmit_timeout_s(self) -> float:
        """When a sender gives a transmission up for lost, as TCP's RTO would."""
        round_trip_s = 2 * (self.latency_ms + self.jitter_ms) / 1000
        return max(limits.LINK_RETRANSMIT_TIMEOUT_MIN_S, 2 * round_trip_s)


@dataclass(frozen=True, slots=True)
class LinkStatistics:
    source: str
    target: str
    conditions: LinkConditions
    batches_sent: int  # send() calls
    batches_delivered: int  # handed to the peer and acknowledged
    transmissions: int  # one-way attempts, acks included
    retransmissions: int  # attempts lost, dropped by a cut, or refused by the peer
    in_flight: int  # send() calls not yet returned


class SimulatedLink:
    """One direction of a link (``source`` -> ``target``) with shaped conditions."""

    def __init__(
        self,
        source: str,
        target: str,
        transport: Transport,
        clock: Clock,
        rng: random.Random,
        conditions: LinkConditions | None = None,
    ) -> None:
        self._source = source
        self._target = target
        self._transport = transport
        self._clock = clock
        self._rng = rng
        self._conditions = conditions or LinkConditions()
        self._healed = asyncio.Event()
        self._cuts = 0  # how many times the link was cut: a cut drops what is on the wire
        if not self._conditions.cut:
            self._healed.set()
        # In-order hand-over: tickets in send order; a ticket is "finished"
        # once delivered or abandoned (its sender was cancelled).
        self._next_ticket = 0
        self._turn = 0  # the oldest ticket not finished: the only one that may deliver
        self._finished: set[int] = set()
        self._turn_waiters: dict[int, asyncio.Future[None]] = {}
        self._sent = 0
        self._delivered = 0
        self._transmissions = 0
        self._retransmissions = 0
        self._in_flight = 0

    @property
    def source(self) -> str:
        return self._source

    @property
    def target(self) -> str:
        return self._target

    @property
    def conditions(self) -> LinkConditions:
        return self._conditions

    def set(self, **changes: float | bool) -> LinkConditions:
        """Change some conditions (``latency_ms``, ``jitter_ms``, ``loss``, ``cut``)."""
        was_cut = self._conditions.cut
        self._conditions = replace(self._conditions, **changes)
        if self._conditions.cut:
            if not was_cut:
                self._cuts += 1
            self._healed.clear()
        else:
            self._healed.set()
        return self._conditions

    def cut(self) -> None:
        self.set(cut=True)

    def heal(self) -> None:
        self.set(cut=False)

    def statistics(self) -> LinkStatistics:
        return LinkStatistics(
            source=self._source,
            target=self._target,
            conditions=self._conditions,
            batches_sent=self._sent,
            batches_delivered=self._delivered,
            transmissions=self._transmissions,
            retransmissions=self._retransmissions,
            in_flight=self._in_flight,
        )

    def __repr__(self) -> str:
        c = self._conditions
        return (
            f"<SimulatedLink {self._source}->{self._target} latency={c.latency_ms}ms "
            f"jitter={c.jitter_ms}ms loss={c.loss}{' CUT' if c.cut else ''} in_flight={self._in_flight}>"
        )

    async def send(self, batch: ReplicationBatch) -> Ack:
        ticket = self._next_ticket
        self._next_ticket += 1
        self._sent += 1
        self._in_flight += 1
        try:
            ack = await self._deliver_in_order(ticket, batch)
            await self._cross()  # the ack's way back
            self._delivered += 1
            return ack
        finally:
            self._in_flight -= 1

    async def _deliver_in_order(self, ticket: int, batch: ReplicationBatch) -> Ack:
        try:
            await self._cross()
            await self._wait_turn(ticket)
            while True:
                try:
                    return await self._transport.deliver(batch)
                except PeerUnavailable:
                    self._retransmissions += 1
                    await self._clock.sleep(self._conditions.retransmit_timeout_s)
                    await self._cross()
        finally:
            self._finish(ticket)

    async def _cross(self) -> None:
        """One transmission that gets through, however many attempts it takes.

        A lost transmission, or one on the wire when the link is cut, is
        sent again a retransmission timeout after it left; while the link
        is cut, the next attempt waits for the heal.
        """
        while True:
            await self._healed.wait()
            conditions = self._conditions
            cuts = self._cuts
            timeout_s = conditions.retransmit_timeout_s
            self._transmissions += 1
            if self._rng.random() < conditions.loss:
                self._retransmissions += 1
                await self._clock.sleep(timeout_s)
                continue
            delay_s = conditions.latency_ms / 1000
            if conditions.jitter_ms:
                jitter_s = self._rng.uniform(-conditions.jitter_ms, conditions.jitter_ms) / 1000
                delay_s = max(0.0, delay_s + jitter_s)
            if delay_s:
                await self._clock.sleep(delay_s)
            if self._cuts != cuts:  # cut while on the wire: dropped
                self._retransmissions += 1
                await self._clock.sleep(max(0.0, timeout_s - delay_s))
                continue
            return

    async def _wait_turn(self, ticket: int) -> None:
        if ticket == self._turn:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._turn_waiters[ticket] = waiter
        try:
            await waiter
        finally:
            self._turn_waiters.pop(ticket, None)

    def _finish(self, ticket: int) -> None:
        self._finished.add(ticket)
        while self._turn in self._finished:
            self._finished.discard(self._turn)
            self._turn += 1
        waiter = self._turn_waiters.get(self._turn)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
