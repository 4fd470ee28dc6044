"""The replicator of one region: ship local changes to every peer, apply theirs.

Outgoing, per (peer region, local node), one shipping task:

    durable cursor --read--> change log --filter--> batch --Link--> peer
          ^                                                          |
          +------ advanced in order, saved, only after the ack <-----+

* It reads the node's log after what it already sent, keeps the changes
  worth shipping (this region's own writes - replicated ones are logged
  too but never re-shipped, see ``interfaces.py`` - to tables that
  replicate to that peer), and sends them as one batch, bounded by
  ``REPLICATION_BATCH_CHANGES_MAX`` and ``REPLICATION_BATCH_BYTES_MAX``
  (``model/limits.py``; overridable per replicator).
* Up to ``REPLICATION_INFLIGHT_BATCHES_MAX`` batches per peer await their
  ack (shared by the peer's shipping tasks).  With the window full, nothing
  more is read: a slow or cut link leaves its backlog in the change log on
  disk, never in memory.
* Acks may come back in any order; the cursor moves only over an unbroken
  run of acked batches and is saved after that, so a restarted replicator
  resends at most what was in flight, which idempotent apply discards.
  Saves of one cursor (a file rewrite and two fsyncs each) start at least
  ``REPLICATION_CURSOR_SAVE_INTERVAL_S`` apart; acks meanwhile fold into the
  next save, and a restart resends at most what was acked since.
* A shipping task that read its node's log less than ``REPLICATION_LINGER_S``
  ago waits out the rest before reading a batch that would not be full, so
  changes arriving meanwhile travel together: a busy link carries fewer,
  larger batches (the receiving region applies them one at a time, in
  order, and each costs a fixed few RPCs).  The first change after a quiet
  spell is read at once.

Incoming, ``receive`` (called by the transport) applies a batch through the
region's ``ChangeSink`` (last-writer-wins per item), records replication
latency for every change that took effect, notes the sender's stamp floor
(for tombstone garbage collection, ``gc.py``), and acks.

Every ``REPLICATION_FLOOR_INTERVAL_S`` a quiet replicator also tells each
peer how far its stamps moved on (an empty batch), so peers can drop
tombstones; ``gc_horizon`` says what this region's nodes may collect.

``pause(peer)`` stops replication to and from one peer region (nothing is
read for it, its batches wait unapplied and unacknowledged) until
``resume(peer)``, as AWS's fault-injection action for global tables does.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from meridian.model import limits
from meridian.model.stamps import physical_ms
from meridian.replication.gc import (
    log_truncation_sequence,
    node_stamp_floor_hlc,
    tombstone_floor_hlc,
)
from meridian.model.changes import Ack, LogPosition, ReplicationBatch, change_size_bytes
from meridian.replication.interfaces import (
    ChangeSink,
    ChangeSource,
    Clock,
    CursorStore,
    Link,
    PeerUnavailable,
)
from meridian.replication.latency import LatencyRecorder

#: Which tables replicate where: ``replicates(table_id, peer)``.
ReplicationScope = Callable[[int, str], bool]


def replicate_everything(table_id: int, peer: str) -> bool:
    """The default scope: every table has a replica in every peer region."""
    return True


@dataclass(frozen=True, slots=True)
class ReplicatorStatistics:
    """Live counters of one replicator (for tests, ``meridian lag`` and ``/metrics``)."""

    region: str
    batches_sent: int  # acknowledged by a peer
    changes_sent: int
    batches_received: int
    changes_received: int
    changes_applied: int  # received changes that won last-writer-wins
    in_flight: dict[str, int]  # peer -> batches awaiting an ack
    paused: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class GcHorizon:
    """What garbage collection may delete in this region now (``gc.py``)."""

    truncate_through: dict[str, int]  # node id -> log sequence
    tombstone_floor_hlc: int


class _Shipment:
    """A log range sent (or skipped) and not yet folded into the cursor."""

    __slots__ = ("last_sequence", "last_hlc", "acked")

    def __init__(self, last_sequence: int, last_hlc: int) -> None:
        self.last_sequence = last_sequence
        self.last_hlc = last_hlc  # clock reading of its last shipped change (0: none shipped)
        self.acked = False


class _Cursor:
    """Where one peer stands in one node's change log."""

    __slots__ = (
        "acked", "acked_hlc", "persisted", "persisted_hlc", "persisting", "saved_at_s", "shipments", "position",
    )  # fmt: skip

    def __init__(self, persisted: int) -> None:
        self.acked = persisted  # through here the peer acked, in order
        self.acked_hlc = 0  # clock reading of the last shipped change at or before ``acked``
        self.persisted = persisted  # through here the cursor store holds it
        self.persisted_hlc = 0
        self.persisting = False
        self.saved_at_s = float("-inf")  # clock reading when the last save started
        self.shipments: deque[_Shipment] = deque()
        self.position: LogPosition | None = None  # the node's log end, as last read


class Replicator:
    """Replicates one region's changes to its peers and applies theirs."""

    def __init__(
        self,
        region: str,
        sources: Sequence[ChangeSource],
        sink: ChangeSink,
        cursors: CursorStore,
        links: Mapping[str, Link],
        clock: Clock,
        *,
        recorder: LatencyRecorder | None = None,
        replicates: ReplicationScope = replicate_everything,
        batch_changes_max: int = limits.REPLICATION_BATCH_CHANGES_MAX,
        batch_bytes_max: int = limits.REPLICATION_BATCH_BYTES_MAX,
        inflight_batches_max: int = limits.REPLICATION_INFLIGHT_BATCHES_MAX,
        floor_interval_s: float = limits.REPLICATION_FLOOR_INTERVAL_S,
        linger_s: float = limits.REPLICATION_LINGER_S,
        cursor_save_interval_s: float = limits.REPLICATION_CURSOR_SAVE_INTERVAL_S,
    ) -> None:
        """The keyword-only bounds default to ``model/limits.py``; the simulation varies them per seed."""
        if region in links:
            raise ValueError(f"region {region!r} cannot be its own peer")
        if not (batch_changes_max >= 1 and batch_bytes_max >= 1 and inflight_batches_max >= 1):
            raise ValueError("replication bounds must be positive")
        self._batch_changes_max = batch_changes_max
        self._batch_bytes_max = batch_bytes_max
        self._inflight_batches_max = inflight_batches_max
        self._floor_interval_s = floor_interval_s
        self._linger_s = linger_s
        self._cursor_save_interval_s = cursor_save_interval_s
        self.region = region
        self._sources = tuple(sources)
        self._sink = sink
        self._cursor_store = cursors
        self._links = dict(links)
        self._clock = clock
        self.latency = recorder if recorder is not None else LatencyRecorder()
        self._replicates = replicates
        self._peers = tuple(links)
        self._resumed = {peer: asyncio.Event() for peer in self._peers}
        for event in self._resumed.values():
            event.set()
        self._windows = {peer: asyncio.Semaphore(inflight_batches_max) for peer in self._peers}
        self._in_flight = dict.fromkeys(self._peers, 0)  # peer -> batches sent, not yet acked
        self._cursors: dict[tuple[str, str], _Cursor] = {}  # (peer, node id) -> cursor, once loaded
        self._received_floors: dict[str, int] = {}  # peer -> largest stamp floor it sent
        self._advertised_floors = dict.fromkeys(self._peers, 0)  # peer -> largest stamp floor sent to it
        self._closed = False
        self._task: asyncio.Task | None = None
        self._tasks: asyncio.TaskGroup | None = None
        self._batches_sent = 0
        self._changes_sent = 0
        self._batches_received = 0
        self._changes_received = 0
        self._changes_applied = 0

    def __repr__(self) -> str:
        paused = ",".join(self.paused)
        return (
            f"<Replicator {self.region} peers={','.join(self._peers)} nodes={len(self._sources)}"
            f"{' paused=' + paused if paused else ''}{' CLOSED' if self._closed else ''}>"
        )

    @property
    def peers(self) -> tuple[str, ...]:
        return self._peers

    # --- lifecycle ------------------------------------------------------------

    async def run(self) -> None:
        """Replicate until closed (or cancelled); a shipping failure propagates."""
        if self._task is not None:
            raise RuntimeError("a replicator runs once")
        self._task = asyncio.current_task()
        if self._closed:  # closed before it ever ran
            return
        for peer in self._peers:
            for source in self._sources:
                persisted = await self._cursor_store.load(peer, source.node_id)
                self._cursors[(peer, source.node_id)] = _Cursor(persisted)
        try:
            async with asyncio.TaskGroup() as tasks:
                self._tasks = tasks
                for peer in self._peers:
                    for source in self._sources:
                        tasks.create_task(self._ship(peer, source, self._cursors[(peer, source.node_id)]))
                    tasks.create_task(self._advertise_floor(peer))
        finally:
            self._tasks = None

    def close(self) -> None:
        """Stop: refuse incoming batches, cancel the running ``run``."""
        self._closed = True
        for event in self._resumed.values():
            event.set()  # wakes held incoming batches, which now see the replicator closed
        if self._task is not None:
            self._task.cancel()

    # --- pause / resume -------------------------------------------------------

    def pause(self, peer: str) -> None:
        """Stop replication to and from ``peer`` until ``resume``."""
        self._resumed[peer].clear()

    def resume(self, peer: str) -> None:
        self._resumed[peer].set()

    @property
    def paused(self) -> tuple[str, ...]:
        return tuple(peer for peer in self._peers if not self._resumed[peer].is_set())

    # --- outgoing -------------------------------------------------------------

    async def _ship(self, peer: str, source: ChangeSource, cursor: _Cursor) -> None:
        resumed = self._resumed[peer]
        window = self._windows[peer]
        replicates = self._replicates
        region = self.region
        node_id = source.node_id
        sent_through = cursor.acked
        clock = self._clock
        linger_s = self._linger_s
        last_read_s = float("-inf")
        while True:
            if not resumed.is_set():
                await resumed.wait()
                continue
            position = cursor.position = await source.log_position()
            if position.last_sequence <= sent_through:
                await source.wait_beyond(sent_through)
                continue
            if linger_s and position.last_sequence - sent_through < self._batch_changes_max:
                wait_s = last_read_s + linger_s - clock.monotonic_s()
                if wait_s > 0:
                    await clock.sleep(wait_s)
            await window.acquire()
            if not resumed.is_set():
                window.release()
                continue
            last_read_s = clock.monotonic_s()
            try:
                changes = await source.read(sent_through, self._batch_changes_max, self._batch_bytes_max)
            except BaseException:
                window.release()
                raise
            assert changes and changes[0].sequence == sent_through + 1, (node_id, sent_through, changes[:1])
            shipped = tuple(c for c in changes if c.stamp.region == region and replicates(c.table_id, peer))
            after, sent_through = sent_through, changes[-1].sequence
            if not shipped:  # nothing of ours in this range: it counts as acknowledged
                window.release()
                self._skip_to(cursor, sent_through)
                await self._advance(peer, node_id, cursor)
                continue
            shipment = _Shipment(sent_through, shipped[-1].stamp.hlc)
            cursor.shipments.append(shipment)
            floor = self._stamp_floor_hlc(peer)
            self._advertised_floors[peer] = max(self._advertised_floors[peer], floor)
            batch = ReplicationBatch(
                origin=region,
                node_id=node_id,
                after_sequence=after,
                last_sequence=sent_through,
                changes=shipped,
                size_bytes=sum(change_size_bytes(c) for c in shipped),
                stamp_floor_hlc=floor,
            )
            self._in_flight[peer] += 1
            self._tasks.create_task(self._send(peer, node_id, cursor, window, batch, shipment))

    @staticmethod
    def _skip_to(cursor: _Cursor, sequence: int) -> None:
        """Count a log range with nothing to ship as acked, in its place in line.

        Consecutive skipped ranges behind a batch still in flight merge into
        one entry, so the line stays as short as the in-flight window.
        """
        tail = cursor.shipments[-1] if cursor.shipments else None
        if tail is not None and tail.acked and not tail.last_hlc:
            tail.last_sequence = sequence
            return
        shipment = _Shipment(sequence, 0)
        shipment.acked = True
        cursor.shipments.append(shipment)

    async def _send(
        self,
        peer: str,
        node_id: str,
        cursor: _Cursor,
        window: asyncio.Semaphore,
        batch: ReplicationBatch,
        shipment: _Shipment,
    ) -> None:
        try:
            await self._links[peer].send(batch)
        finally:
            self._in_flight[peer] -= 1
            window.release()
        self._batches_sent += 1
        self._changes_sent += len(batch.changes)
        shipment.acked = True
        await self._advance(peer, node_id, cursor)

    async def _advance(self, peer: str, node_id: str, cursor: _Cursor) -> None:
        """Fold the acked shipments at the head into the cursor, then save it."""
        shipments = cursor.shipments
        while shipments and shipments[0].acked:
            shipment = shipments.popleft()
            cursor.acked = shipment.last_sequence
            if shipment.last_hlc:
                cursor.acked_hlc = shipment.last_hlc
        await self._persist(peer, node_id, cursor)

    async def _persist(self, peer: str, node_id: str, cursor: _Cursor) -> None:
        """Save the cursor up to what is acked; one save at a time per cursor,
        at most one per ``cursor_save_interval_s``."""
        if cursor.persisting:
            return  # the save in progress loops until it has caught up
        cursor.persisting = True
        try:
            while cursor.persisted < cursor.acked:
                wait_s = cursor.saved_at_s + self._cursor_save_interval_s - self._clock.monotonic_s()
                if wait_s > 0:
                    await self._clock.sleep(wait_s)
                cursor.saved_at_s = self._clock.monotonic_s()
                target, target_hlc = cursor.acked, cursor.acked_hlc
                await self._cursor_store.save(peer, node_id, target)
                cursor.persisted, cursor.persisted_hlc = target, target_hlc
        finally:
            cursor.persisting = False

    async def _advertise_floor(self, peer: str) -> None:
        """Send ``peer`` our stamp floor when it rose and no batch carried it.

        Batches carry the floor, but a quiet region sends none, and peers
        need fresh floors to garbage-collect tombstones.  Every
        ``REPLICATION_FLOOR_INTERVAL_S`` the nodes' log positions are read
        afresh, and a floor higher than the last one sent goes out in an
        empty batch - unless the window is full, i.e. batches are flowing.
        """
        resumed = self._resumed[peer]
        window = self._windows[peer]
        while True:
            await self._clock.sleep(self._floor_interval_s)
            if not resumed.is_set() or window.locked():
                continue
            for source in self._sources:
                self._cursors[(peer, source.node_id)].position = await source.log_position()
            floor = self._stamp_floor_hlc(peer)
            if floor <= self._advertised_floors[peer] or window.locked():
                continue
            self._advertised_floors[peer] = floor
            await window.acquire()
            self._in_flight[peer] += 1
            try:
                await self._links[peer].send(
                    ReplicationBatch(self.region, "", 0, 0, (), size_bytes=0, stamp_floor_hlc=floor)
                )
            finally:
                self._in_flight[peer] -= 1
                window.release()

    def _stamp_floor_hlc(self, peer: str) -> int:
        """The promise sent to ``peer``: nothing we send it from now on is stamped at or below this."""
        floor = None
        for source in self._sources:
            cursor = self._cursors[(peer, source.node_id)]
            position = cursor.position
            if position is None:
                node_floor = cursor.persisted_hlc
            else:
                node_floor = node_stamp_floor_hlc(
                    cursor.persisted, cursor.persisted_hlc, position.last_sequence, position.stamp_floor_hlc
                )
            floor = node_floor if floor is None else min(floor, node_floor)
        return floor or 0

    # --- incoming -------------------------------------------------------------

    async def receive(self, batch: ReplicationBatch) -> Ack:
        """Apply a batch from a peer (the transport calls this) and acknowledge it."""
        origin = batch.origin
        resumed = self._resumed.get(origin)
        if resumed is None:
            raise ValueError(f"{self.region}: batch from {origin!r}, which is not a peer")
        while not self._closed and not resumed.is_set():
            await resumed.wait()
        if self._closed:
            raise PeerUnavailable(f"replicator of {self.region} is closed")
        changes = batch.changes
        applied = await self._sink.apply(changes)
        now_ms = self._clock.wall_ms()
        record = self.latency.record
        region = self.region
        n_applied = 0
        for change, ok in zip(changes, applied):
            assert change.stamp.region == origin, (change, origin)
            if ok:
                n_applied += 1
                record(change.table_id, origin, region, now_ms - physical_ms(change.stamp.hlc))
        if batch.stamp_floor_hlc > self._received_floors.get(origin, 0):
            self._received_floors[origin] = batch.stamp_floor_hlc
        self._batches_received += 1
        self._changes_received += len(changes)
        self._changes_applied += n_applied
        return Ack(receiver=region, applied=n_applied)

    # --- introspection --------------------------------------------------------

    async def pending_changes(self) -> dict[str, int]:
        """Per peer: changes in the local logs past its acked cursor (``PendingReplicationCount``).

        Counts every logged change after the cursor, including replicated
        ones that will be skipped rather than shipped.
        """
        pending = dict.fromkeys(self._peers, 0)
        for source in self._sources:
            last = (await source.log_position()).last_sequence
            for peer in self._peers:
                cursor = self._cursors.get((peer, source.node_id))
                acked = cursor.acked if cursor is not None else await self._cursor_store.load(peer, source.node_id)
                pending[peer] += max(0, last - acked)
        return pending

    def statistics(self) -> ReplicatorStatistics:
        return ReplicatorStatistics(
            region=self.region,
            batches_sent=self._batches_sent,
            changes_sent=self._changes_sent,
            batches_received=self._batches_received,
            changes_received=self._changes_received,
            changes_applied=self._changes_applied,
            in_flight=dict(self._in_flight),
            paused=self.paused,
        )

    def gc_horizon(self) -> GcHorizon:
        """How far this region's logs and tombstones may be garbage-collected now."""
        truncate_through = {}
        for source in self._sources:
            acked = {}
            last = 0
            for peer in self._peers:
                cursor = self._cursors.get((peer, source.node_id))
                if cursor is not None:
                    acked[peer] = cursor.persisted
                    if cursor.position is not None:
                        last = max(last, cursor.position.last_sequence)
            truncate_through[source.node_id] = log_truncation_sequence(last, acked, self._peers)
        return GcHorizon(
            truncate_through=truncate_through,
            tombstone_floor_hlc=tombstone_floor_hlc(self._received_floors, self._peers),
        )
