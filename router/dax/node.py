"""One DAX node's state: where it sends requests, its registries and its caches."""

from __future__ import annotations

from dataclasses import dataclass, field

from .attribute_lists import AttributeListRegistry
from .cache import DaxCaches
from .key_schemas import KeySchemas
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

    def __repr__(self) -> str:
        return f"<DaxNode {self.node_id} {self.caches!r}>"

    @classmethod
    def create(cls, node_id: str, upstream: Upstream, registry: AttributeListRegistry | None = None,
               caches: DaxCaches | None = None) -> DaxNode:
        return cls(node_id=node_id, upstream=upstream, registry=registry or AttributeListRegistry(),
                   caches=caches or DaxCaches(), key_schemas=KeySchemas(upstream))
