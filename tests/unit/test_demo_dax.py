"""``meridian demo dax``'s figures and view (``lab/demo/dax_stats.py``, ``dax_view.py``), with made-up times."""

from __future__ import annotations

from rich.console import Console

from meridian.lab.demo.dax import item_cache_counters
from meridian.lab.demo.dax_stats import HitRate, LatencyFigures, PathLatency
from meridian.lab.demo.dax_view import DaxDemoState, plain_line, render, speedup, summary_record, summary_table


def test_path_latency_window_and_total():
    path = PathLatency(window_s=5.0)
    for i in range(100):  # second 0..9, ten reads each: 1 ms early, 10 ms late
        path.record(100.0 + i / 10, 1.0 if i < 50 else 10.0)
    path.record_error()
    figures = path.figures(110.0)
    assert figures.reads == 100 and figures.errors == 1
    assert figures.p50_ms == figures.p99_ms == 10.0  # the window holds only the late reads
    assert figures.reads_per_s == 50 / 5.0
    assert figures.total_p50_ms is not None and figures.total_p50_ms < 1.1  # within the histogram's 5 %
    assert 9.5 < figures.total_p99_ms <= 10.0 and figures.mean_ms == 5.5
    empty = PathLatency().figures(0.0)
    assert (empty.reads, empty.p50_ms, empty.total_p99_ms, empty.mean_ms, empty.reads_per_s) == (0, None, None, None, 0)


def test_hit_rate_window_since_start_and_restart():
    rate = HitRate(window_s=5.0)
    assert rate.window() is None and rate.since_start() == (None, 0, 0)
    rate.add(0.0, 100, 50)  # before the demo: not counted
    rate.add(1.0, 100, 60)  # ten misses
    assert rate.window() == 0.0 and rate.since_start() == (0.0, 0, 10)
    for t in range(2, 12):
        rate.add(float(t), 100 + 30 * (t - 1), 60)  # thirty hits a second
    assert rate.window() == 1.0  # the last five seconds: hits only
    assert rate.since_start() == (300 / 310, 300, 10)
    rate.add(12.0, 3, 1)  # the node restarted: counting begins again
    assert rate.since_start() == (None, 0, 0)
    rate.add(13.0, 6, 1)
    assert rate.window() == 1.0 and rate.since_start() == (1.0, 3, 0)


def _node(url: str, hits: int, misses: int) -> dict:
    return {"url": url, "item_cache": {"hits": hits, "misses": misses}}


def test_item_cache_counters_of_the_clients_cluster():
    node = _node
    answer = {"clusters": [
        {"name": "a", "nodes": [node("dax://h:1", 5, 1), node("dax://h:2", 7, 2)]},
        {"name": "b", "nodes": [node("dax://h:3", 100, 100)]},
    ]}  # fmt: skip
    assert item_cache_counters(answer, "dax://h:2") == (12, 3)  # the whole cluster the client reads from
    assert item_cache_counters(answer, "dax://elsewhere:1") == (112, 103)  # unknown: every node
    assert item_cache_counters({"clusters": []}, "dax://h:1") == (0, 0)


def _figures(p50_ms: float) -> LatencyFigures:
    return LatencyFigures(reads=10, reads_per_s=5.0, errors=0, p50_ms=p50_ms, p99_ms=p50_ms * 3,
                          total_p50_ms=p50_ms, total_p99_ms=p50_ms * 3, mean_ms=p50_ms)  # fmt: skip


def _text(renderable) -> str:
    console = Console(width=160, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_view_before_and_after_reads():
    state = DaxDemoState(table="t", items=50, dax_url="dax://h:1", http_url="http://h:2", duration_s=30.0)
    assert "waiting for reads on both paths" in _text(render(state))
    assert speedup(state.dax, state.direct) is None and summary_record(state)["speedup_p50"] is None
    state.dax, state.direct, state.elapsed_s = _figures(0.5), _figures(2.0), 12.0
    state.hit_rate_window, state.hit_rate_total, state.hits, state.misses = 0.99, 0.9, 90, 10
    text = _text(render(state))
    assert "DAX p50 is 4.0x faster" in text and "00:12 of 00:30" in text and "99.0 % now" in text
    assert "dax://h:1" in text and "http://h:2" in text
    assert plain_line(state).startswith("[00:12] dax 10 reads p50 0.500 ms")
    assert summary_record(state)["speedup_p50"] == 4.0
    assert "4.00x" in _text(summary_table(state))
    state.dax = _figures(4.0)
    assert "DAX p50 is 2.0x slower" in _text(render(state))
    state.hit_rate_unavailable = "no DAX panel"
    assert "unknown (no DAX panel)" in _text(render(state)) and plain_line(state).endswith("hit rate unknown")
