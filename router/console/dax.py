"""``GET /console/api/dax``: every DAX node this router serves, with its caches' counters.

A router's DAX nodes are those of ``ctx.dax_clusters``, its clusters by
name (``router/dax/cluster.py``: each a ``DaxCluster`` whose ``nodes`` are
``router/dax/front.py`` ``DaxFront`` s, leader first): the one ``--dax-port``
starts and those the control plane created.  The answer lists each node once, grouped
by cluster, with the figures DAX publishes to CloudWatch (the node's
``statistics()``, the same counters as ``/metrics``) turned into what a
person reads: hit rates per cache, bytes cached of how many, requests per
method.  Counters are cumulative since the node started (or was rebooted);
``t`` is this router's clock when they were read, so the page divides the
difference between two readings by the time between them, as the capacity
panel does.
"""

from __future__ import annotations

import time
from typing import Any

from meridian.model import limits

from ..context import RouterContext

#: DAX's CloudWatch request-count metric -> the method the page shows it under (DAX's order).
REQUEST_METRICS = {
    "GetItemRequestCount": "GetItem", "BatchGetItemRequestCount": "BatchGetItem",
    "QueryRequestCount": "Query", "ScanRequestCount": "Scan",
    "PutItemRequestCount": "PutItem", "UpdateItemRequestCount": "UpdateItem",
    "DeleteItemRequestCount": "DeleteItem", "BatchWriteItemRequestCount": "BatchWriteItem",
    "TransactGetItemsCount": "TransactGetItems", "TransactWriteItemsCount": "TransactWriteItems",
}  # fmt: skip
#: The cluster name a ``--dax-port`` node goes by when no cluster lists it.
DEFAULT_CLUSTER = "meridian"


def _rate(hits: int, misses: int) -> float | None:
    """Hits over lookups, 0..1; None before the first lookup (a rate of nothing is not 0 %)."""
    total = hits + misses
    return hits / total if total else None


def _cache(hits: int, misses: int) -> dict[str, Any]:
    return {"hits": hits, "misses": misses, "hit_rate": _rate(hits, misses)}


def _capacity_bytes(front: Any) -> int | None:
    """Both caches' byte bounds together; None for a node that does not say."""
    try:
        caches = front.node.caches
        return int(caches.items.capacity_bytes + caches.queries.capacity_bytes)
    except AttributeError:
        return None


def _ttls(front: Any) -> dict[str, int | None]:
    caches = getattr(getattr(front, "node", None), "caches", None)
    return {
        "record_ttl_ms": getattr(getattr(caches, "items", None), "record_ttl_ms", None),
        "query_ttl_ms": getattr(getattr(caches, "queries", None), "query_ttl_ms", None),
    }


def node_view(front: Any, cluster: str, role: str) -> dict[str, Any]:
    """One DAX node as the panel shows it (``statistics`` keeps every CloudWatch figure as is)."""
    stats = dict(front.statistics())

    def count(name: str) -> int:
        return int(stats.get(name, 0))  # a figure a node does not report yet counts none
    query_hits = count("QueryCacheHits") + count("ScanCacheHits")
    query_misses = count("QueryCacheMisses") + count("ScanCacheMisses")
    requests = {method: count(metric) for metric, method in REQUEST_METRICS.items() if count(metric)}
    return {
        "cluster": cluster,
        "node_id": str(front.node_id),
        "role": role,
        "url": front.url,
        "item_cache": _cache(count("ItemCacheHits"), count("ItemCacheMisses")),
        "query_cache": {**_cache(query_hits, query_misses),
                        "query": _cache(count("QueryCacheHits"), count("QueryCacheMisses")),
                        "scan": _cache(count("ScanCacheHits"), count("ScanCacheMisses"))},
        "evicted_bytes": count("EvictedSize"),
        "cached_bytes": count("EstimatedDbSize"),
        "capacity_bytes": _capacity_bytes(front),
        "memory_utilization_percent": float(stats.get("CacheMemoryUtilization", 0.0)),
        "connections": count("ClientConnections"),
        "requests_total": count("TotalRequestCount"),
        "requests": requests,
        "failed_requests": count("FailedRequestCount"),
        **_ttls(front),
        "statistics": stats,
    }  # fmt: skip


def dax_nodes(ctx: RouterContext) -> list[tuple[str, str, Any]]:
    """(cluster, role, DaxFront) for each node this router serves, each once, leader first."""
    out: list[tuple[str, str, Any]] = []
    seen: set[int] = set()
    clusters = getattr(ctx, "dax_clusters", None) or {}
    for name in sorted(clusters):
        for i, front in enumerate(list(getattr(clusters[name], "nodes", ()))):
            if id(front) not in seen:
                seen.add(id(front))
                out.append((name, "leader" if i == 0 else "replica", front))
    return out


def dax_state(ctx: RouterContext) -> dict[str, Any]:
    """Every DAX node of this router (up to ``limits.CONSOLE_DAX_NODES_MAX``), grouped
    by cluster in ``nodes``' order.  ``configured`` is False when the router serves
    no DAX at all (no ``--dax-port``, no cluster created)."""
    found = dax_nodes(ctx)
    shown = found[: limits.CONSOLE_DAX_NODES_MAX]
    nodes = [node_view(front, cluster, role) for cluster, role, front in shown]
    clusters: dict[str, dict[str, Any]] = {}
    for node in nodes:
        cluster = clusters.setdefault(node["cluster"], {"name": node["cluster"], "discovery": node["url"], "nodes": []})
        cluster["nodes"].append(node)
    return {"region": ctx.region, "configured": bool(found), "t": time.time(),
            "clusters": list(clusters.values()), "truncated": len(found) > len(shown)}  # fmt: skip
