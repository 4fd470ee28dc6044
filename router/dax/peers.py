"""How a write through one DAX node reaches the item caches of the others.

DAX writes an item to the table, then through to the item cache; in a
cluster every node's item cache gets the item, so no node serves the older
version after a write (the query caches are never touched: DAX's documented
staleness).  ``DaxNode.write_through``/``invalidate`` update the node's own
cache and hand the same update to its ``Peers``:

* ``LocalPeers``: the nodes share a process (``meridian serve --dax-nodes``,
  ``meridian router --dax-port``, clusters the control plane creates): a
  direct call on each peer's item cache, before the write is answered.
* ``GrpcPeers`` (``peer_channel.py``): each node is its own process
  (``meridian dax --members``, the DAX nodes of ``meridian up``): one
  ``PeerLink`` per peer, each one long-lived client stream (``proto/dax_peer.proto``, ``WriteThrough``) that
  carries, per event-loop tick, one ``CacheUpdates`` message with every
  update gathered in that tick.  The peer applies them in order
  (``PeerReceiver``).  The write is answered without waiting for them:
  a read through another node just after a write can still see the older
  item for the time the update takes to arrive (about a millisecond).

Failures, and why the answer is "clear": an update that cannot be delivered
is dropped and counted (``PeerLink.dropped``): the peer is down or not
connected yet, or its queue is full (``DAX_PEER_QUEUE_UPDATES_MAX`` /
``_BYTES_MAX``: then the whole queue goes, as the peer is not keeping up).
Its item cache may then hold an item older than the table until its TTL,
so the next message that gets through carries ``clear_first``: the peer
empties its item cache before applying it (a restarted peer is empty
anyway).  A new stream after a broken one starts with such a message, as
updates in flight on the broken one may be lost.  What cannot be repaired:
updates a node had queued when it was killed (kill -9) never leave it.

Writes through two nodes to one key can reach a third node in either order;
the clients send every write to the leader, as DAX's do, so they do not.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .node import DaxNode

#: The tuple ``DaxNode.write_through`` caches for an item: (item dict, values bytes).
CachedItem = tuple[dict, bytes]


class Peers(Protocol):
    """The other nodes of a DAX node's cluster, as its writes reach them."""

    def write_through(self, table: str, key_bytes: bytes, value: CachedItem | None, size_bytes: int) -> None:
        """The item as a write left it (``None``: deleted)."""

    def invalidate(self, table: str, key_bytes: bytes) -> None:
        """The item changed into something not known here."""

    async def wait_applied(self) -> None:
        """Return once the peers that can be reached hold every update handed over so far (bounded)."""

    def statistics(self) -> dict[str, int]: ...

    async def close(self) -> None: ...


class LocalPeers:
    """Peers in this process: their item caches are updated before the write is answered."""

    def __init__(self, nodes: Sequence[DaxNode] = ()) -> None:
        self.nodes = list(nodes)

    def __repr__(self) -> str:
        return f"<LocalPeers {[node.node_id for node in self.nodes]}>"

    def write_through(self, table: str, key_bytes: bytes, value: CachedItem | None, size_bytes: int) -> None:
        for peer in self.nodes:
            peer.caches.items.write_through(table, key_bytes, value, size_bytes)

    def invalidate(self, table: str, key_bytes: bytes) -> None:
        for peer in self.nodes:
            peer.caches.items.invalidate(table, key_bytes)

    async def wait_applied(self) -> None:
        return None  # already: the caches were updated in the call

    def statistics(self) -> dict[str, int]:
        return {}

    async def close(self) -> None:
        return None
