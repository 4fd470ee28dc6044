"""Consistent hashing of partition keys onto storage nodes.

Each node owns ``vnodes_per_node`` points on a 64-bit ring (positions are
blake2b hashes of ``"<node id>#<i>"``, identical in every process); a
partition key belongs to the first point at or after its
``keycodec.partition_hash``.  Adding or removing a node moves only the keys
of the arcs it gains or loses.
"""

from __future__ import annotations

import bisect
import hashlib

from meridian.model import limits


def _point(label: str) -> int:
    return int.from_bytes(hashlib.blake2b(label.encode(), digest_size=8).digest(), "big")


class Ring:
    __slots__ = ("node_ids", "_points", "_owners", "single")

    def __init__(self, node_ids: list[str], vnodes_per_node: int = limits.RING_VNODES_PER_NODE) -> None:
        if not node_ids:
            raise ValueError("a ring needs at least one node")
        if len(set(node_ids)) != len(node_ids):
            raise ValueError(f"duplicate node ids: {node_ids}")
        self.node_ids = list(node_ids)
        pairs = sorted((_point(f"{node}#{i}"), node) for node in node_ids for i in range(vnodes_per_node))
        self._points = [p for p, _ in pairs]
        self._owners = [n for _, n in pairs]
        #: the only node, when there is just one (callers may skip hashing)
        self.single = node_ids[0] if len(node_ids) == 1 else None

    def owner(self, partition_hash: int) -> str:
        """The node that owns a partition key with this hash."""
        if self.single is not None:
            return self.single
        i = bisect.bisect_left(self._points, partition_hash)
        return self._owners[i if i < len(self._owners) else 0]

    def __repr__(self) -> str:
        return f"<Ring nodes={len(self.node_ids)} points={len(self._points)}>"
