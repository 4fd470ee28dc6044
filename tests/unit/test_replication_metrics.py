"""Replication histograms as Prometheus buckets (``latency.py``, ``metrics.py``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from meridian.replication.latency import LatencyHistogram, LatencyRecorder
from meridian.replication.metrics import LATENCY_BUCKETS_MS, ReplicationCollector


def test_cumulative_counts_never_report_a_sample_under_a_bound_it_exceeds():
    histogram = LatencyHistogram()
    for value_ms in (0.5, 9.9, 10.0, 149.0, 151.0, 160.0, 4000.0, 9000.0):
        histogram.record(value_ms)
    counts = dict(zip((1.0, 10.0, 150.0, 200.0, 5000.0), histogram.cumulative_counts((1.0, 10.0, 150.0, 200.0, 5000.0))))
    # 149 ms shares the 148..151 ms bucket with values above 150: it is reported late, under 200.
    assert counts == {1.0: 1, 10.0: 2, 150.0: 3, 200.0: 6, 5000.0: 7}


class _Replicator:
    def __init__(self) -> None:
        self.latency = LatencyRecorder()


def test_the_collector_exports_latency_by_table_and_region_pair_and_pending_counts():
    replicator = _Replicator()
    for value_ms in (100.0, 160.0, 170.0):
        replicator.latency.record(7, "a", "b", value_ms)
    collector = ReplicationCollector("b", replicator, {7: "orders"}.get)
    collector.pending = {"a": 3}
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    text = generate_latest(registry).decode()
    labels = 'ReceivingRegion="b",SendingRegion="a",TableName="orders"'
    assert f'meridian_replication_latency_ms_bucket{{{labels},le="150.0"}} 1.0' in text
    assert f'meridian_replication_latency_ms_bucket{{{labels},le="175.0"}} 3.0' in text
    assert f"meridian_replication_latency_ms_count{{{labels}}} 3.0" in text
    assert f"meridian_replication_latency_ms_sum{{{labels}}} 430.0" in text
    assert 'meridian_pending_replication_count{ReceivingRegion="a",SendingRegion="b"} 3.0' in text
    assert len(LATENCY_BUCKETS_MS) == len(set(LATENCY_BUCKETS_MS)) and LATENCY_BUCKETS_MS[-1] == 5000.0
