"""The change record and what carries it: the shared vocabulary of the
change log, its consumers (replication, GSI maintenance, TTL, and later
backups; streams keep their own records, ``model/streams.py``) and the wire codecs (``proto/replication_codec.py``).

A node writes one ``Change`` per mutation into its change log, in the same
RocksDB write batch as the item (``model/records.py`` has the byte layout).
A replicator reads them from a ``LogPosition`` on, ships them to a peer region
in ``ReplicationBatch``es, and the peer answers each with an ``Ack``.
"""

from __future__ import annotations

from dataclasses import dataclass

from meridian.model import limits
from meridian.model.stamps import VersionStamp


class LogTruncated(Exception):
    """A read asked for change-log entries that garbage collection deleted.

    A consumer that falls this far behind (a replica added late) must be
    backfilled from the items instead.
    """


@dataclass(frozen=True, slots=True)
class Change:
    """One change-log entry: what a replicator ships to other regions."""

    sequence: int
    table_id: int
    key: bytes
    stamp: VersionStamp
    tombstone: bool
    item_json: bytes | None  # None for a delete
    size_bytes: int = -1  # DynamoDB item size (0 for a delete; -1: not known)
    # A delete issued by the service, not a client: a Time to Live expiry
    # (``node/ttl.py``).  Kept by every region that applies it, so a stream
    # record anywhere names the service (``userIdentity`` type "Service",
    # principal "dynamodb.amazonaws.com").
    by_service: bool = False


@dataclass(frozen=True, slots=True)
class LogPosition:
    """Where a node's change log ends, and a floor under its future stamps.

    ``last_sequence``: the newest durable change (0: empty log).
    ``stamp_floor_hlc``: every change the node will log from a *local* write
    after ``last_sequence`` has a clock reading strictly above this.  The
    node's hybrid clock reading serves (it only grows, and it has observed
    every replicated stamp the node stored); a node with writes applied but
    not yet durable must answer with a reading below the first of them.
    Replicators forward these floors to peers, which need them before they
    may drop a tombstone (``replication/gc.py``).
    """

    last_sequence: int
    stamp_floor_hlc: int


@dataclass(frozen=True, slots=True)
class ReplicationBatch:
    """Changes of one origin node's log, on their way to one peer region.

    The batch covers the log range ``(after_sequence, last_sequence]`` of
    node ``node_id`` in region ``origin``; ``changes`` are the ones in that
    range worth shipping (the origin's own writes to replicated tables).
    ``stamp_floor_hlc``: the sender's promise that every change it will
    send this peer from now on, after any restart, has a larger clock
    reading (``replication/gc.py`` explains what the receiver does with it).
    A quiet sender sends batches with no changes (and no node) just to
    raise its floor.
    """

    origin: str
    node_id: str
    after_sequence: int
    last_sequence: int
    changes: tuple[Change, ...]
    size_bytes: int
    stamp_floor_hlc: int


@dataclass(frozen=True, slots=True)
class Ack:
    """A peer region applied a batch (``applied``: how many changes won)."""

    receiver: str
    applied: int


def change_size_bytes(change: Change) -> int:
    """What a change weighs in a batch: its key, item and stamp, plus framing."""
    item = change.item_json
    return (
        limits.CHANGE_OVERHEAD_BYTES
        + len(change.key)
        + len(change.stamp.region)
        + (len(item) if item is not None else 0)
    )
