"""A DAX cluster: several DAX nodes in one process, in front of one upstream.

As in DAX, the first node is the leader (primary) and the others are read
replicas: every node lists every node in ``endpoints`` (role 1 for the
leader, 2 for replicas), the clients send writes to the leader and spread
reads over all of them, and each node has its own item and query caches.
A write through any node is written through to every node's item cache
(``DaxNode.write_through``, ``peers.LocalPeers``: a direct call, as the
nodes share a process): after a write, no node of the cluster serves the
item's older version from its item cache.  Query caches stay per node
and are never invalidated by writes (DAX's documented staleness).

Node ids are ``<cluster>-a``, ``<cluster>-b``, ... and zones cycle through
the region's ``a``, ``b``, ``c``.  All nodes share one attribute-list
registry (and its journal) and one key-schema cache.  Rebooting a node
empties its caches and drops its connections; it listens again on its port.

These nodes live in the router's process (``meridian serve``, ``meridian
router --dax-port``, clusters the control plane creates).  ``meridian up``
runs its DAX nodes as processes of their own instead (``meridian dax
--members``, ``cluster/dax_procs.py``), whose write-throughs travel over the
gRPC peer channel (``peers.GrpcPeers``).
"""

from __future__ import annotations

import ssl
import string
from dataclasses import dataclass, field

from meridian.model import limits
from meridian.model.errors import LimitExceededException

from .attribute_lists import AttributeListRegistry
from .cache import DaxCaches
from .endpoints import Node, Role
from .front import DaxFront, start_dax_node
from .peers import LocalPeers
from .upstream import Upstream

_ZONES = "abc"


@dataclass
class DaxCluster:
    """The nodes of one DAX cluster, leader first."""

    name: str
    upstream: Upstream
    host: str
    region: str
    record_ttl_ms: int
    query_ttl_ms: int
    registry: AttributeListRegistry
    credentials: dict | None = None
    base_port: int | None = None
    #: daxs:// (router/dax/tls.py): every node serves TLS with this context
    tls: ssl.SSLContext | None = None
    nodes: list[DaxFront] = field(default_factory=list)
    _letters_used: int = 0

    def __repr__(self) -> str:
        return f"<DaxCluster {self.name} nodes={[front.node_id for front in self.nodes]}>"

    @property
    def discovery(self) -> tuple[str, int]:
        """Where clients start: the leader (any node answers ``endpoints`` with every node)."""
        leader = self.nodes[0]
        return leader.host, leader.port

    @property
    def url(self) -> str:
        host, port = self.discovery
        return f"{self.nodes[0].url.split('://', 1)[0]}://{host}:{port}"

    def zone_of(self, index: int) -> str:
        return f"{self.region}{_ZONES[index % len(_ZONES)]}"

    def _node_id(self) -> str:
        n = self._letters_used
        self._letters_used += 1
        letters = string.ascii_lowercase
        suffix = letters[n % 26] if n < 26 else letters[n // 26 - 1] + letters[n % 26]
        return f"{self.name}-{suffix}"

    def _caches(self) -> DaxCaches:
        return DaxCaches(record_ttl_ms=self.record_ttl_ms, query_ttl_ms=self.query_ttl_ms)

    async def add_nodes(self, count: int, zones: list[str] | None = None) -> list[DaxFront]:
        if len(self.nodes) + count > limits.DAX_CLUSTER_NODES_MAX:
            raise LimitExceededException(f"A DAX cluster has at most {limits.DAX_CLUSTER_NODES_MAX} nodes")
        added = []
        shared = self.nodes[0].node if self.nodes else None
        for i in range(count):
            index = len(self.nodes)
            port = 0 if self.base_port is None else self.base_port + index
            zone = zones[i] if zones and i < len(zones) else self.zone_of(index)
            front = await start_dax_node(self.upstream, host=self.host, port=port, node_id=self._node_id(), az=zone,
                                         caches=self._caches(), credentials=self.credentials, registry=self.registry,
                                         tls=self.tls)
            if shared is not None:
                front.node.key_schemas = shared.key_schemas
            front.cluster_id = self.name
            self.nodes.append(front)
            added.append(front)
        self._relink()
        return added

    async def remove_nodes(self, count: int, node_ids: list[str] | None = None) -> None:
        """Remove the named nodes, or the ``count`` newest replicas; the leader goes last."""
        if node_ids:
            victims = [front for front in self.nodes if front.node_id in node_ids]
        else:
            victims = list(reversed(self.nodes[1:]))[:count]
        for front in victims:
            self.nodes.remove(front)
        self._relink()
        for front in victims:
            await front.server.close()

    async def reboot_node(self, node_id: str) -> None:
        front = self._node(node_id)
        await front.server.close()
        front.node.caches = self._caches()
        await front.server.start(front.host, front.port)

    def set_ttls(self, record_ttl_ms: int, query_ttl_ms: int) -> None:
        """A parameter group change: caches made from now on (new nodes, reboots) use the new TTLs,
        and so do the nodes' current caches for the entries they store next."""
        self.record_ttl_ms, self.query_ttl_ms = record_ttl_ms, query_ttl_ms
        for front in self.nodes:
            front.node.caches.items.set_ttl_ms(record_ttl_ms)
            front.node.caches.queries.set_ttl_ms(query_ttl_ms)

    def _node(self, node_id: str) -> DaxFront:
        for front in self.nodes:
            if front.node_id == node_id:
                return front
        raise KeyError(node_id)

    def _relink(self) -> None:
        """Every node lists every node, the first as the leader, and writes through to every node."""
        listed = tuple(
            Node(node_id=front.node_id, hostname=front.host, az=front.server.node.az,
                 role=Role.leader if i == 0 else Role.replica, port=front.port)
            for i, front in enumerate(self.nodes)
        )
        for front in self.nodes:
            front.server.cluster = listed
            front.node.peers = LocalPeers([other.node for other in self.nodes if other is not front])

    def statistics(self) -> dict[str, dict[str, int | float]]:
        return {front.node_id: front.statistics() for front in self.nodes}

    async def close(self) -> None:
        nodes, self.nodes = self.nodes, []
        for front in nodes:
            await front.server.close()
        await self.upstream.close()


async def start_dax_cluster(
    upstream: Upstream, *, name: str, host: str, node_count: int, base_port: int | None,
    record_ttl_ms: int = limits.DAX_RECORD_TTL_MS_DEFAULT, query_ttl_ms: int = limits.DAX_QUERY_TTL_MS_DEFAULT,
    attribute_lists_path: str | None = None, region: str = "us-east-1", credentials: dict | None = None,
    tls: ssl.SSLContext | None = None,
) -> DaxCluster:  # fmt: skip
    """Start ``node_count`` nodes (``base_port`` + i, or free ports when None)."""
    cluster = DaxCluster(name=name, upstream=upstream, host=host, region=region, record_ttl_ms=record_ttl_ms,
                         query_ttl_ms=query_ttl_ms, registry=AttributeListRegistry(journal_path=attribute_lists_path),
                         credentials=credentials, base_port=base_port, tls=tls)
    try:
        await cluster.add_nodes(node_count)
    except BaseException:
        await cluster.close()
        raise
    return cluster
