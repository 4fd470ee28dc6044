"""The DAX nodes' counters as Prometheus text, for the router's ``/metrics``.

Each node reports a ``statistics()`` mapping keyed by DAX's CloudWatch metric
names (Developer Guide, "Viewing DAX metrics and dimensions": ItemCacheHits,
QueryCacheMisses, EvictedSize, ...; ``cache.DaxCaches.statistics()`` gives the
cache ones, the node may add its request counts).  Each becomes one family
named ``meridian_dax_...``, labelled with CloudWatch's DAX dimensions
``ClusterId`` and ``NodeId``.  A family is written only when some node reports
it, so a node that does not count requests yet adds no empty families.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol


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
    return lines
