"""The DAX node's request-time histogram (router/dax/latency.py) and its /metrics lines."""

from __future__ import annotations

import random
from types import SimpleNamespace

from hypothesis import given
from hypothesis import strategies as st

from meridian.model import limits
from meridian.router.dax.latency import LatencyHistogram, bucket_bounds, bucket_count, bucket_index
from meridian.router.dax.metrics import LATENCY_BOUNDS_US, render


@given(st.integers(min_value=0, max_value=limits.DAX_LATENCY_NS_MAX))
def test_a_value_lies_in_its_bucket_and_the_bucket_is_narrow(value_ns: int) -> None:
    lowest, width = bucket_bounds(bucket_index(value_ns))
    assert lowest <= value_ns < lowest + width
    assert width == 1 or width <= lowest / 2**limits.DAX_LATENCY_SIGNIFICANT_BITS


def test_buckets_are_contiguous_and_fixed_in_number() -> None:
    end = 0
    for index in range(bucket_count()):
        lowest, width = bucket_bounds(index)
        assert lowest == end
        end = lowest + width
    assert end > limits.DAX_LATENCY_NS_MAX
    assert bucket_count() == 544


def test_percentiles_are_within_a_bucket_of_the_truth() -> None:
    rng = random.Random(7)
    values = sorted(int(rng.lognormvariate(10.5, 0.6)) for _ in range(20_000))  # ~36 µs median
    histogram = LatencyHistogram()
    for value in values:
        histogram.record_ns(value)
    for p in (50, 99):
        truth = values[int(p / 100 * len(values)) - 1]
        assert truth <= histogram.percentile_ns(p) <= truth * 1.07
    summary = histogram.summary()
    assert summary.count == len(values) and summary.max_us == values[-1] / 1000


def test_out_of_range_values_are_clamped_and_empty_is_zero() -> None:
    histogram = LatencyHistogram()
    assert histogram.percentile_ns(50) == 0 and histogram.summary().mean_us == 0.0
    histogram.record_ns(-5)
    histogram.record_ns(limits.DAX_LATENCY_NS_MAX * 4)
    assert histogram.count == 2 and histogram.max_ns == limits.DAX_LATENCY_NS_MAX
    assert histogram.percentile_ns(50) == 1  # the top of the 0 ns bucket


def test_cumulative_counts_never_count_early() -> None:
    histogram = LatencyHistogram()
    for value_ns in (4_000, 9_999, 10_000, 10_700, 50_000, 2_000_000):
        histogram.record_ns(value_ns)
    # 9,999 and 10,000 ns share the bucket 9,728..10,239: both are reported under the next bound
    assert histogram.cumulative_counts((5_000, 10_000, 100_000, 10**9)) == [1, 1, 5, 6]


def _front(node_id: str, values_ns: list[int]) -> SimpleNamespace:
    histogram = LatencyHistogram()
    for value in values_ns:
        histogram.record_ns(value)
    return SimpleNamespace(cluster_id="c1", node_id=node_id, statistics=dict,
                           server=SimpleNamespace(stats=SimpleNamespace(latency=histogram)))


def test_metrics_write_a_histogram_and_the_percentiles_per_node() -> None:
    text = "".join(render([_front("c1-b", [30_000] * 3), _front("c1-a", [12_000, 40_000])]))
    family = "meridian_dax_request_duration_seconds"
    assert text.count(f"# TYPE {family} histogram\n") == 1
    assert f'{family}_bucket{{ClusterId="c1",NodeId="c1-a",le="1e-05"}} 0\n' in text
    assert f'{family}_bucket{{ClusterId="c1",NodeId="c1-a",le="1.5e-05"}} 1\n' in text
    assert f'{family}_bucket{{ClusterId="c1",NodeId="c1-b",le="+Inf"}} 3\n' in text
    assert f'{family}_count{{ClusterId="c1",NodeId="c1-a"}} 2\n' in text
    assert text.index('NodeId="c1-a"') < text.index('NodeId="c1-b"')
    assert text.count("_bucket{") == 2 * (len(LATENCY_BOUNDS_US) + 1)
    assert 'meridian_dax_request_duration_p50_seconds{ClusterId="c1",NodeId="c1-b"} 0.000030' in text


def test_metrics_leave_out_nodes_without_a_histogram() -> None:
    bare = SimpleNamespace(cluster_id="c1", node_id="n", statistics=lambda: {"ItemCacheHits": 1})
    assert not any("request_duration" in line for line in render([bare]))
