"""Windowed replication-latency percentiles from the differences of histogram scrapes.

The scrapes are the replicator's real exposition: its ``LatencyRecorder``
exported by its ``ReplicationCollector`` through prometheus-client, parsed
back by the demo.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
from prometheus_client import generate_latest

from meridian.lab.demo.window import (
    Histogram,
    SlidingWindow,
    delta,
    figures,
    parse_latency,
    quantile,
    window_max,
)
from meridian.replication.latency import LatencyRecorder
from meridian.replication.metrics import ReplicationCollector, registry_of

A, B, C = "us-east-1", "eu-west-1", "ap-southeast-2"
TABLE_ID = 7


class Exporter:
    """B's replicator's latency histograms as Prometheus text, as its /metrics serves them."""

    def __init__(self) -> None:
        self.recorder = LatencyRecorder()
        replicator = SimpleNamespace(latency=self.recorder)  # the collector reads only .latency
        collector = ReplicationCollector(B, replicator, {TABLE_ID: "orders"}.get)  # type: ignore[arg-type]
        self._registry = registry_of(collector)

    def record(self, origin: str, latency_ms: float, times: int) -> None:
        for _ in range(times):
            self.recorder.record(TABLE_ID, origin, B, latency_ms)

    def scrape(self) -> str:
        return generate_latest(self._registry).decode()


def test_the_difference_of_two_scrapes_is_the_window_not_the_whole_run():
    exporter = Exporter()
    exporter.record(A, 30.0, 100)  # before the window: fast
    before = parse_latency(exporter.scrape(), "orders")[("orders", A, B)]
    exporter.record(A, 280.0, 50)  # in the window: a slow link
    now = parse_latency(exporter.scrape(), "orders")[("orders", A, B)]
    assert (before.count, now.count) == (100, 150)

    window = figures(delta(before, now), span_s=2.0)
    # 280 ms samples sit in the (250, 300] bucket: interpolated p50 = 250 + 50 x 0.5, p99 = 250 + 50 x 0.99.
    assert window.count == 50 and window.rate_per_s == 25.0
    assert window.p50_ms == pytest.approx(275.0)
    assert window.p99_ms == pytest.approx(299.5)
    assert window.mean_ms == pytest.approx(280.0)  # from _sum: exact
    # Over the whole run the median is still the fast samples' (25, 50] bucket.
    assert 25.0 < quantile(now, 0.5) <= 50.0


def test_only_the_table_asked_for_is_parsed_and_each_pair_is_its_own_series():
    exporter = Exporter()
    exporter.record(A, 12.0, 3)
    exporter.record(C, 140.0, 2)
    series = parse_latency(exporter.scrape(), "orders")
    assert set(series) == {("orders", A, B), ("orders", C, B)}
    assert series[("orders", C, B)].count == 2
    assert parse_latency(exporter.scrape(), "other-table") == {}


def test_quantile_interpolates_inside_the_bucket_holding_the_rank():
    h = Histogram(((10.0, 0.0), (25.0, 4.0), (50.0, 10.0), (math.inf, 10.0)), 300.0)
    # rank 5 of 10 is the 1st of the 6 samples in (25, 50]: 25 + 25 x 1/6.
    assert quantile(h, 0.5) == pytest.approx(25 + 25 / 6)
    assert quantile(h, 0.99) == pytest.approx(25 + 25 * 5.9 / 6)
    assert quantile(h, 0.2) == pytest.approx(10 + 15 * 2 / 4)  # rank 2 of the 4 in (10, 25]
    # Beyond the last finite bound all that is known is "more than it".
    assert quantile(Histogram(((10.0, 0.0), (math.inf, 5.0)), 100.0), 0.5) == 10.0
    assert quantile(Histogram(((10.0, 0.0), (math.inf, 0.0)), 0.0), 0.5) is None
    with pytest.raises(ValueError):
        quantile(h, 0)


def test_a_known_maximum_closes_the_inf_bucket_and_caps_every_estimate():
    backlog = Histogram(((5000.0, 0.0), (math.inf, 10.0)), 80_000.0)  # a healed partition: all beyond 5 s
    assert quantile(backlog, 0.5) == 5000.0  # without the maximum: "more than 5000"
    assert quantile(backlog, 0.5, max_ms=12_000.0) == pytest.approx(5000 + 7000 * 0.5)
    assert quantile(backlog, 0.99, max_ms=12_000.0) == pytest.approx(5000 + 7000 * 0.99)
    tight = Histogram(((25.0, 0.0), (50.0, 10.0), (math.inf, 10.0)), 280.0)  # ten samples of about 28 ms
    assert quantile(tight, 0.99) == pytest.approx(49.75)
    assert quantile(tight, 0.99, max_ms=30.0) == 30.0


def test_the_window_maximum_is_exact_when_the_cumulative_one_grew_else_bounded():
    window = Histogram(((50.0, 3.0), (75.0, 5.0), (math.inf, 5.0)), 250.0)
    assert window_max(window, 40.0, 70.5) == 70.5  # grew: the new maximum happened in the window
    assert window_max(window, None, 70.5) == 70.5  # a new series: everything is in the window
    assert window_max(window, 900.0, 900.0) == 75.0  # did not grow: the highest bucket bound holds it
    assert window_max(Histogram(((50.0, 0.0), (math.inf, 2.0)), 9e3), 9e3, 9e3) == 9e3
    assert window_max(Histogram(((math.inf, 0.0),), 0.0), 1.0, 2.0) is None  # nothing in the window


def test_the_sliding_window_uses_the_maxima_it_is_given():
    window = SlidingWindow()
    key = ("orders", A, B)
    window.add(0.0, {key: Histogram(((5000.0, 10.0), (math.inf, 10.0)), 300.0)}, {key: 45.0})
    window.add(1.0, {key: Histogram(((5000.0, 10.0), (math.inf, 14.0)), 40_300.0)}, {key: 11_000.0})
    shown = window.last_interval()[key]
    assert (shown.count, shown.max_ms) == (4, 11_000.0)
    assert shown.p50_ms == pytest.approx(5000 + 6000 * 0.5)
    assert shown.mean_ms == pytest.approx(10_000.0)


def test_a_restarted_series_counts_from_zero():
    before = Histogram(((50.0, 100.0), (math.inf, 100.0)), 3000.0)
    now = Histogram(((50.0, 20.0), (math.inf, 20.0)), 600.0)  # the replicator restarted: fewer than before
    assert delta(before, now) == now
    assert delta(None, now) == now


def test_the_sliding_window_spans_the_last_seconds_and_is_bounded():
    window = SlidingWindow(limit=30)
    key = ("orders", A, B)
    for t in range(40):  # 10 changes a second at 40 ms, one scrape a second
        n = 10.0 * t
        window.add(float(t), {key: Histogram(((25.0, 0.0), (50.0, n), (math.inf, n)), 40.0 * n)})
    assert len(window) == 30
    shown = window.figures(10.0)[key]
    assert (shown.count, shown.span_s, shown.rate_per_s) == (100, 10.0, 10.0)
    assert shown.mean_ms == pytest.approx(40.0)
    last = window.last_interval()[key]
    assert (last.count, last.span_s) == (10, 1.0)
    # A window longer than what is remembered covers what is remembered.
    assert window.figures(1000.0)[key].span_s == 29.0
    with pytest.raises(ValueError):
        window.add(5.0, {})


def test_no_figures_before_two_scrapes():
    window = SlidingWindow()
    assert window.figures(10.0) == {} and window.last_interval() == {}
    window.add(0.0, {("orders", A, B): Histogram(((math.inf, 0.0),), 0.0)})
    assert window.figures(10.0) == {}
