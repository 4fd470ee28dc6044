"""Replication latency histograms: bucket layout, percentiles within ~3 %, bounded memory."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meridian.replication.latency import (
    LatencyHistogram,
    LatencyKey,
    LatencyRecorder,
    bucket_bounds,
    bucket_index,
)


@given(st.integers(0, (1 << 40) - 1))
def test_every_value_falls_in_its_bucket(value_ms: int) -> None:
    lowest, width = bucket_bounds(bucket_index(value_ms))
    assert lowest <= value_ms < lowest + width
    assert width == 1 or width <= lowest / 32


def test_buckets_are_contiguous() -> None:
    for index in range(2000):
        lowest, width = bucket_bounds(index)
        assert bucket_bounds(index + 1)[0] == lowest + width


def _exact(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[math.ceil(p / 100 * len(ordered)) - 1]


@pytest.mark.parametrize("seed", range(5))
def test_percentiles_are_within_three_percent(seed: int) -> None:
    rng = random.Random(seed)
    samples = [rng.lognormvariate(5, 1) for _ in range(5000)]  # median ~150 ms, long tail
    histogram = LatencyHistogram()
    for s in samples:
        histogram.record(s)
    for p in (50, 95, 99, 100):
        exact = _exact(samples, p)
        assert exact <= histogram.percentile(p) <= exact * (1 + 1 / 32) + 1
    summary = histogram.summary()
    assert summary.count == 5000 and summary.max_ms == max(samples)
    assert summary.mean_ms == pytest.approx(sum(samples) / len(samples))
    assert len(histogram._buckets) < 400  # bounded, whatever the sample count


def test_negative_latency_counts_as_zero_and_is_tallied() -> None:
    histogram = LatencyHistogram()
    histogram.record(-250.0)  # the writer's clock ran ahead
    histogram.record(10.0)
    assert histogram.summary().clamped == 1
    assert histogram.percentile(50) == 1.0  # the top of the 0 ms bucket


def test_an_empty_histogram_and_bad_percentiles() -> None:
    assert LatencyHistogram().summary().p99_ms == 0.0
    with pytest.raises(ValueError):
        LatencyHistogram().percentile(0)


def test_the_recorder_keeps_one_series_per_table_and_region_pair() -> None:
    recorder = LatencyRecorder()
    recorder.record(1, "us-east-1", "eu-west-1", 80.0)
    recorder.record(1, "us-east-1", "eu-west-1", 90.0)
    recorder.record(2, "ap-south-1", "eu-west-1", 200.0)
    summaries = recorder.summaries()
    assert list(summaries) == [LatencyKey(1, "us-east-1", "eu-west-1"), LatencyKey(2, "ap-south-1", "eu-west-1")]
    assert summaries[LatencyKey(1, "us-east-1", "eu-west-1")].count == 2
    assert recorder.histogram(2, "ap-south-1", "eu-west-1").max_ms == 200.0
    assert recorder.histogram(3, "x", "y") is None
