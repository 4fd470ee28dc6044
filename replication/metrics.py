"""Prometheus ``/metrics`` of one replicator, modelled on CloudWatch's Global Tables metrics.

``meridian_replication_latency_ms`` is ``ReplicationLatency`` (dimensions
TableName and ReceivingRegion, plus SendingRegion since a region receives
from several), and ``meridian_pending_replication_count`` is the legacy
``PendingReplicationCount`` per ordered region pair.

Nothing is done on the replication path: a collector converts the
replicator's own bounded histograms (``latency.py``) into Prometheus
buckets when scraped, and the pending counts, which need node RPCs, are
refreshed by the replicator's event loop into a snapshot the scraping
thread reads.  The registry is private, so no process-wide metric leaks in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, generate_latest, start_http_server
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from meridian.model import limits
from meridian.model.errors import DynamoError
from meridian.replication.interfaces import Clock
from meridian.replication.replicator import Replicator

log = logging.getLogger(__name__)

#: Histogram upper bounds in ms, dense where link latencies are set (0-5000 ms).
LATENCY_BUCKETS_MS = (
    1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 75.0, 100.0, 125.0, 150.0, 175.0, 200.0, 250.0, 300.0,
    400.0, 500.0, 750.0, 1000.0, 1500.0, 2000.0, 3000.0, 5000.0,
)  # fmt: skip


class ReplicationCollector(Collector):
    """Reads a replicator's histograms and the latest pending snapshot at scrape time."""

    def __init__(self, region: str, replicator: Replicator, table_name: Callable[[int], str | None]) -> None:
        self._region = region
        self._replicator = replicator
        self._table_name = table_name
        self.pending: dict[str, int] = {}  # peer -> changes not yet acked; replaced whole, never mutated

    def collect(self) -> Iterator[Metric]:
        latency = HistogramMetricFamily(
            "meridian_replication_latency_ms",
            "Writer's stamp to applied in the receiving region, in milliseconds (CloudWatch ReplicationLatency).",
            labels=("TableName", "SendingRegion", "ReceivingRegion"),
        )
        for key, histogram in self._replicator.latency.series():
            name = self._table_name(key.table_id) or str(key.table_id)
            counts = histogram.cumulative_counts(LATENCY_BUCKETS_MS)
            buckets = [(repr(bound), n) for bound, n in zip(LATENCY_BUCKETS_MS, counts)]
            buckets.append(("+Inf", histogram.count))
            latency.add_metric((name, key.origin, key.receiver), buckets, histogram.sum_ms)
        yield latency
        pending = GaugeMetricFamily(
            "meridian_pending_replication_count",
            "Changes logged in the sending region not yet acknowledged by the receiving one (PendingReplicationCount).",
            labels=("SendingRegion", "ReceivingRegion"),
        )
        for peer, count in sorted(self.pending.items()):
            pending.add_metric((self._region, peer), count)
        yield pending


async def refresh_pending(collector: ReplicationCollector, replicator: Replicator, clock: Clock) -> None:
    """Keep the collector's pending counts fresh, forever."""
    while True:
        try:
            collector.pending = await replicator.pending_changes()
        except DynamoError as err:
            log.info("pending count refresh failed: %r", err)
        await clock.sleep(limits.REPLICATION_METRICS_REFRESH_S)


def registry_of(collector: ReplicationCollector) -> CollectorRegistry:
    """A private registry holding only the replicator's metrics."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry


def exposition(registry: CollectorRegistry) -> str:
    """The registry in Prometheus text format (what the region's routers relay on ``GET /metrics``)."""
    return generate_latest(registry).decode()


def serve_metrics(registry: CollectorRegistry, host: str, port: int):
    """Serve ``/metrics`` on a daemon thread; returns (server, thread)."""
    return start_http_server(port, addr=host, registry=registry)


