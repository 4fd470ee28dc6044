"""The DAX nodes' counters as Prometheus text, for the router's ``/metrics``.

Each node reports a ``statistics()`` mapping keyed by DAX's CloudWatch metric
names (Developer Guide, "Viewing DAX metrics and dimensions": ItemCacheHits,
QueryCacheMisses, EvictedSize, ...; ``cache.DaxCaches.statistics()`` gives the
cache ones, the node may add its request counts).  Each becomes one family
named ``meridian_dax_...``, labelled with CloudWatch's DAX dimensions
``ClusterId`` and ``NodeId``.  A family is written only when some node reports
it, so a node that does not count requests yet adds no empty families.

Meridian adds one family DAX's CloudWatch lacks: each node's server-side
request time (``latency.py``; last byte of a request parsed -> its answer
written) as a Prometheus histogram on the fixed ``LATENCY_BOUNDS_US`` grid,
plus its p50/p99 since start as gauges.  A benchmark takes differences of
the buckets between two scrapes to get one interval's percentiles
(``bench/dax.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol


class DaxNodeStatistics(Protocol):
    """What ``render`` reads from a DAX node."""

    cluster_id: str
    node_id: str

    def statistics(self) -> Mapping[str, int | float]: ...


#: CloudWatch name -> (Prometheus family, type, help).  Order: the families' order in the text.
FAMILIES: dict[str, tuple[str, str, str]] = {
    "ItemCacheHits": ("meridian_dax_item_cache_hits_total", "counter",
                      "Items this DAX node returned from its item cache (CloudWatch ItemCacheHits)."),
    "ItemCacheMisses": ("meridian_dax_item_cache_misses_total", "counter",
                        "Items not in this DAX node's item cache, read from the table (CloudWatch ItemCacheMisses)."),
    "QueryCacheHits": ("meridian_dax_query_cache_hits_total", "counter",
                       "Query results this DAX node returned from its query cache (CloudWatch QueryCacheHits)."),
    "QueryCacheMisses": ("meridian_dax_query_cache_misses_total", "counter",
                         "Query results not in this DAX node's query cache (CloudWatch QueryCacheMisses)."),
    "ScanCacheHits": ("meridian_dax_scan_cache_hits_total", "counter",
                      "Scan results this DAX node returned from its query cache (CloudWatch ScanCacheHits)."),
    "ScanCacheMisses": ("meridian_dax_scan_cache_misses_total", "counter",
                        "Scan results not in this DAX node's query cache (CloudWatch ScanCacheMisses)."),
    "EvictedSize": ("meridian_dax_evicted_size_bytes_total", "counter",
                    "Bytes this DAX node evicted from its caches to make room (CloudWatch EvictedSize)."),
    "EstimatedDbSize": ("meridian_dax_estimated_db_size_bytes", "gauge",
                        "Bytes cached now in this DAX node's item and query caches (CloudWatch EstimatedDbSize)."),
    "CacheMemoryUtilization": ("meridian_dax_cache_memory_utilization_percent", "gauge",
                               "Percent of this DAX node's cache bytes in use (CloudWatch CacheMemoryUtilization)."),
    "ClientConnections": ("meridian_dax_client_connections", "gauge",
                          "Connections open to this DAX node (CloudWatch ClientConnections)."),
    "TotalRequestCount": ("meridian_dax_requests_total", "counter",
                          "Requests this DAX node handled (CloudWatch TotalRequestCount)."),
    "ErrorRequestCount": ("meridian_dax_error_requests_total", "counter",
                          "Requests answered with a user error, throttling included (CloudWatch ErrorRequestCount)."),
    "ThrottledRequestCount": ("meridian_dax_throttled_requests_total", "counter",
                              "Requests this DAX node throttled itself (CloudWatch ThrottledRequestCount)."),
    "FaultRequestCount": ("meridian_dax_fault_requests_total", "counter",
                          "Requests answered with an internal error (CloudWatch FaultRequestCount)."),
    "FailedRequestCount": ("meridian_dax_failed_requests_total", "counter",
                           "Requests answered with any error (CloudWatch FailedRequestCount)."),
    **{
        name: (f"meridian_dax_{snake}_requests_total", "counter",
               f"{action} requests this DAX node handled (CloudWatch {name}).")
        for name, snake, action in (
            ("GetItemRequestCount", "get_item", "GetItem"),
            ("BatchGetItemRequestCount", "batch_get_item", "BatchGetItem"),
            ("PutItemRequestCount", "put_item", "PutItem"),
            ("UpdateItemRequestCount", "update_item", "UpdateItem"),
            ("DeleteItemRequestCount", "delete_item", "DeleteItem"),
            ("BatchWriteItemRequestCount", "batch_write_item", "BatchWriteItem"),
            ("QueryRequestCount", "query", "Query"),
            ("ScanRequestCount", "scan", "Scan"),
            ("TransactGetItemsCount", "transact_get_items", "TransactGetItems"),
            ("TransactWriteItemsCount", "transact_write_items", "TransactWriteItems"),
        )
    },
}


#: ``le`` bounds (µs) of the request-time histogram: 5 µs steps where a cached
#: GetItem lands, coarser beyond.  A layout, not a bound: every request is counted.
LATENCY_BOUNDS_US: tuple[int, ...] = (
    5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 60, 70, 80, 90, 100, 125, 150, 200, 250, 300, 400, 500,
    750, 1_000, 2_500, 5_000, 10_000, 25_000, 100_000, 1_000_000,
)
_LATENCY_FAMILY = "meridian_dax_request_duration_seconds"
_LATENCY_HELP = ("Time this DAX node spent on each request, from its last byte parsed to its answer written "
                 "(Meridian's; not a CloudWatch metric).")


def _label_value(text: str) -> str:
    """A Prometheus label value, escaped as the text exposition format asks."""
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: int | float) -> str:
    return str(value) if isinstance(value, int) else f"{value:.6g}"


def render(nodes: Iterable[DaxNodeStatistics]) -> list[str]:
    """Prometheus text lines (each ending in a newline: ``"".join`` them) for
    every node's statistics; families in ``FAMILIES`` order, nodes sorted by
    (ClusterId, NodeId).  Names a node reports that ``FAMILIES`` lacks are left out."""
    ordered = sorted(nodes, key=lambda node: (node.cluster_id, node.node_id))
    samples = [(node, node.statistics()) for node in ordered]
    lines: list[str] = []
    for name, (family, kind, text) in FAMILIES.items():
        reporting = [(node, stats[name]) for node, stats in samples if name in stats]
        if not reporting:
            continue
        lines.append(f"# HELP {family} {text}\n")
        lines.append(f"# TYPE {family} {kind}\n")
        lines.extend(
            f'{family}{{ClusterId="{_label_value(node.cluster_id)}",NodeId="{_label_value(node.node_id)}"}} '
            f"{_number(value)}\n"
            for node, value in reporting
        )
    lines.extend(_latency_lines(ordered))
    return lines


def _latency_of(node: Any) -> Any:
    """The node's request-time histogram (``DaxFront.server.stats.latency``), or None for a node without one."""
    return getattr(getattr(getattr(node, "server", None), "stats", None), "latency", None)


def _latency_lines(nodes: list[DaxNodeStatistics]) -> list[str]:
    measured = [(node, histogram) for node in nodes if (histogram := _latency_of(node)) is not None]
    if not measured:
        return []
    lines = [f"# HELP {_LATENCY_FAMILY} {_LATENCY_HELP}\n", f"# TYPE {_LATENCY_FAMILY} histogram\n"]
    quantiles: list[tuple[str, str, str]] = []  # (labels, p50 s, p99 s) per node
    for node, histogram in measured:
        labels = f'ClusterId="{_label_value(node.cluster_id)}",NodeId="{_label_value(node.node_id)}"'
        counts = histogram.cumulative_counts(tuple(bound * 1000 for bound in LATENCY_BOUNDS_US))
        lines.extend(f'{_LATENCY_FAMILY}_bucket{{{labels},le="{bound / 1e6:g}"}} {n}\n'
                     for bound, n in zip(LATENCY_BOUNDS_US, counts))
        lines.append(f'{_LATENCY_FAMILY}_bucket{{{labels},le="+Inf"}} {histogram.count}\n')
        lines.append(f"{_LATENCY_FAMILY}_sum{{{labels}}} {histogram.sum_ns / 1e9:.9f}\n")
        lines.append(f"{_LATENCY_FAMILY}_count{{{labels}}} {histogram.count}\n")
        quantiles.append((labels, f"{histogram.percentile_ns(50) / 1e9:.9f}", f"{histogram.percentile_ns(99) / 1e9:.9f}"))
    for position, name in ((1, "p50"), (2, "p99")):
        family = f"meridian_dax_request_duration_{name}_seconds"
        lines.append(f"# HELP {family} {name} of {_LATENCY_FAMILY} since the node started.\n")
        lines.append(f"# TYPE {family} gauge\n")
        lines.extend(f"{family}{{{entry[0]}}} {entry[position]}\n" for entry in quantiles)
    return lines
