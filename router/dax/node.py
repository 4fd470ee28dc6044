"""One DAX node's state: where it sends requests, its registries and its caches."""

from __future__ import annotations

from dataclasses import dataclass, field

from .attribute_lists import AttributeListRegistry
from .cache import DaxCaches
from .key_schemas import KeySchemas
from .peers import LocalPeers, Peers
from .upstream import Upstream


@dataclass
class DaxStatistics:
    """Requests this node answered, per DAX method name, and how many went upstream."""

    requests: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    upstream_calls: int = 0
    #: strongly consistent and transactional reads: never cached
    pass_through_reads: int = 0
    write_throughs: int = 0


@dataclass
class DaxNode:
    """What every connection of one DAX node shares."""

    node_id: str
    upstream: Upstream
    registry: AttributeListRegistry
    caches: DaxCaches
    key_schemas: KeySchemas
    statistics: DaxStatistics = field(default_factory=DaxStatistics)
    #: the other nodes of its cluster, whose item caches a write through this node reaches too
    #: (``peers.py``: in this process, or over the gRPC peer channel)
    peers: Peers = field(default_factory=LocalPeers)

    def __repr__(self) -> str:
        return f"<DaxNode {self.node_id} {self.caches!r}>"

    def write_through(self, table: str, key_bytes: bytes, value: object, size_bytes: int) -> None:
        """A write through this node succeeded: every node of the cluster caches the item as it now is
        (DAX: written to the table, then through to the item caches)."""
        self.statistics.write_throughs += 1
        self.caches.items.write_through(table, key_bytes, value, size_bytes)
        self.peers.write_through(table, key_bytes, value, size_bytes)  # type: ignore[arg-type]

    def invalidate(self, table: str, key_bytes: bytes) -> None:
        """A write whose resulting item is not known here: the next read of the key misses, on every node."""
        self.caches.items.invalidate(table, key_bytes)
        self.peers.invalidate(table, key_bytes)

    @classmethod
    def create(cls, node_id: str, upstream: Upstream, registry: AttributeListRegistry | None = None,
               caches: DaxCaches | None = None) -> DaxNode:
        return cls(node_id=node_id, upstream=upstream, registry=registry or AttributeListRegistry(),
                   caches=caches or DaxCaches(), key_schemas=KeySchemas(upstream))
