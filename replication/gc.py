"""When change-log entries and tombstones may be garbage-collected.

**Change log.**  A node's log entry may go once every peer region has
acknowledged the node's log past it (and every other consumer of the log,
such as a stream reader, is past it too): a replicator restarted from its
durable cursors never reads below the smallest of them.

**Tombstones.**  Acknowledgements alone are not enough.  Suppose region A
deletes item k at stamp 10 while B's older write of k (stamp 5) is still
on its way to A, held up by a cut link.  If A dropped its tombstone as soon
as B had acknowledged the delete, the late write would find no version at A,
be applied, and A would show an item that B (holding the tombstone) does
not, forever.  A tombstone is there to beat older writes still in transit,
so it may go only once none can arrive: once every peer has promised that
everything it will ever send from now on has a larger clock reading.

Each replicator makes that promise in every batch (``stamp_floor_hlc``;
a quiet one sends empty batches every ``REPLICATION_FLOOR_INTERVAL_S`` when
its floor rose):
for each of its nodes, the clock reading of the last change the peer has
acknowledged *durably* (changes of one node are stamped in increasing order,
so all later ones are larger, resends after a restart included), or, when
the peer has everything, the node's own floor (``LogPosition``).  The
smallest over its nodes is the batch's floor.  A receiving region keeps the
largest floor each peer has sent; a tombstone whose clock reading is at or
below the smallest of them over all peers can never be beaten by a late
arrival, and neither by a later local write (the node's clock has observed
it), so dropping it changes nothing anyone can see.

All of this is pure: callers supply cursors and floors, and act on the
answers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

NO_PEERS_FLOOR_HLC = (1 << 64) - 1  # with no peer, nothing can arrive late


def log_truncation_sequence(
    last_sequence: int,
    acked_by_peer: Mapping[str, int],
    peers: Iterable[str],
    holds: Iterable[int] = (),
) -> int:
    """Through which sequence one node's change log may be deleted.

    ``acked_by_peer``: each peer's durable cursor for this node (a peer
    missing from it has acknowledged nothing); ``holds``: sequences other
    readers of the log still need to read after.
    """
    through = last_sequence
    for peer in peers:
        through = min(through, acked_by_peer.get(peer, 0))
    for hold in holds:
        through = min(through, hold)
    return max(through, 0)


def node_stamp_floor_hlc(
    acked_sequence: int,
    acked_stamp_hlc: int,
    position_sequence: int,
    position_floor_hlc: int,
) -> int:
    """The floor one node's changes give a peer: see the module docstring.

    ``acked_sequence`` / ``acked_stamp_hlc``: the peer's durable cursor for
    the node and the clock reading of the last shipped change at or before
    it (0: none known); ``position_*``: a ``LogPosition`` of the node.
    """
    if acked_sequence >= position_sequence:
        return max(acked_stamp_hlc, position_floor_hlc)
    return acked_stamp_hlc


def tombstone_floor_hlc(floor_by_peer: Mapping[str, int], peers: Iterable[str]) -> int:
    """The clock reading at or below which this region's tombstones may be dropped.

    ``floor_by_peer``: the largest ``stamp_floor_hlc`` received from each
    peer (a peer that sent none yet holds everything back).
    """
    floor = NO_PEERS_FLOOR_HLC
    for peer in peers:
        floor = min(floor, floor_by_peer.get(peer, 0))
    return floor


def may_drop_tombstone(tombstone_hlc: int, floor_hlc: int) -> bool:
    """Whether a tombstone stamped ``tombstone_hlc`` may go, given the region's floor."""
    return tombstone_hlc <= floor_hlc
