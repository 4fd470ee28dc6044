"""The seams of replication: what a replicator needs from the world around it.

A replicator touches four things, each an interface here so the same
replicator code runs against real storage nodes and gRPC streams in a
cluster, and against the simulation's in-memory stores, virtual time and
seeded links in ``tests/sim``:

* ``Clock``: wall time for latency and hybrid clocks, monotonic time and
  sleeping for everything else (``replication/clock.py``: real and virtual).
* ``ChangeSource``: one local storage node's change log, tailed from a
  sequence number.
* ``ChangeSink``: the local region's storage, applying incoming changes
  last-writer-wins.
* ``CursorStore``: where the per-peer, per-node cursors survive a restart.
* ``Link``: the path to one peer region (``replication/link.py`` shapes it
  with latency, jitter, loss and partitions over a ``Transport``).

**Origin, and why replicated writes never echo.**  A change's origin region
is ``change.stamp.region``: a local write is stamped with the node's own
region, and a replicated change keeps the stamp it was written with.  A node
logs replicated changes it applies (streams and indexes need them) exactly as
it logs local ones, and a replicator ships only the changes whose origin is
its own region.  Regions replicate in a full mesh, so every change reaches
every peer straight from its origin, and nothing is ever forwarded twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from meridian.model.changes import Ack, Change, LogPosition, ReplicationBatch


class PeerUnavailable(Exception):
    """The peer region's replicator cannot take a batch now (down, restarting).

    Raised by a ``Transport``; a link treats it like a lost packet and
    retransmits after a timeout, so it never reaches replication logic.
    """


class Clock(Protocol):
    """Time, injected: real in a process, virtual in the simulation."""

    def wall_ms(self) -> int:
        """Milliseconds since the Unix epoch (what hybrid clocks are built on)."""
        ...

    def monotonic_s(self) -> float:
        """Seconds on a clock that never steps back (for timeouts and intervals)."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class ChangeSource(Protocol):
    """One local storage node's change log, as a replicator reads it."""

    @property
    def node_id(self) -> str:
        """Stable id of the node: cursors are kept per node id."""
        ...

    async def read(self, after_seq: int, changes_max: int, bytes_max: int) -> list[Change]:
        """Durable changes after ``after_seq``, in sequence order.

        At most ``changes_max`` changes, and no more than ``bytes_max`` of
        them by ``change_size_bytes`` - except that the first change is
        always returned, however large, so a read always makes progress.
        Empty only when nothing durable follows ``after_seq``.
        """
        ...

    async def log_position(self) -> LogPosition: ...

    async def wait_beyond(self, sequence: int) -> None:
        """Return once the log holds a durable change after ``sequence``."""
        ...


class ChangeSink(Protocol):
    """The local region's storage, as incoming replication sees it."""

    async def apply(self, changes: Sequence[Change]) -> list[bool]:
        """Apply changes from another region, each by last-writer-wins.

        Per item, a change is stored only when its stamp beats the stored
        version's (tombstones included: a delete is a stamped version like
        any other), and the comparison and the write form one critical
        section on the owning node.  A change that does not win is
        discarded, so applying the same change twice is harmless.  Applied
        changes are logged on their node keeping their stamp (their origin),
        and the node's hybrid clock observes every stamp it stores, so a
        later local write to the same item always beats it.  Returns, per
        change in order, whether it was applied.
        """
        ...


class CursorStore(Protocol):
    """Durable per-peer, per-node replication cursors.

    A cursor is the sequence number through which a peer region has
    acknowledged a node's change log.  It is saved only after the
    acknowledgement, so a restarted replicator resends at most what was
    in flight, which idempotent apply makes harmless.
    """

    async def load(self, peer: str, node_id: str) -> int:
        """The saved cursor (0 when none was ever saved)."""
        ...

    async def save(self, peer: str, node_id: str, sequence: int) -> None:
        """Make ``sequence`` the durable cursor; done when it would survive a crash."""
        ...


class Transport(Protocol):
    """Carries a batch to a peer region's replicator and brings its ack back.

    In a cluster, a gRPC stream to the peer's replicator; in the simulation,
    a direct call.  Faults are not its business: a ``Link`` adds them.
    """

    async def deliver(self, batch: ReplicationBatch) -> Ack:
        """Hand ``batch`` to the peer; raise ``PeerUnavailable`` if it cannot take it."""
        ...


class Link(Protocol):
    """The path from this region to one peer region."""

    @property
    def source(self) -> str: ...

    @property
    def target(self) -> str: ...

    async def send(self, batch: ReplicationBatch) -> Ack:
        """Deliver ``batch`` and return the peer's ack.

        Never loses a batch: a lost or refused transmission is retried until
        it gets through, so faults show up only as delay.  Batches are
        delivered in the order ``send`` was called, as on one TCP stream.
        """
        ...
