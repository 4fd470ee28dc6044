"""Windowed replication-latency percentiles from successive Prometheus histogram scrapes.

A replicator exports ``meridian_replication_latency_ms`` as a cumulative
histogram per (TableName, SendingRegion, ReceivingRegion). Two scrapes
``W`` seconds apart differ by exactly the changes applied in those ``W``
seconds, so the difference of their buckets is the histogram of the window,
and its percentiles are the window's (not the whole run's, which after a
partition stay dominated by the backlog for minutes).

Percentiles are estimated as Prometheus' ``histogram_quantile`` does:
linear interpolation inside the bucket holding the rank, the first
bucket starting at 0. Unlike Prometheus, the window's maximum is often
known (``meridian lag``'s cumulative maximum is exact whenever it grew
during the window): a rank in the ``+Inf`` bucket then interpolates up to
it, and no estimate exceeds it. Without it, a rank in the ``+Inf`` bucket
answers the largest finite bound (all that is known is "more than that").
The mean is exact (the histograms' ``_sum``).

``SlidingWindow`` keeps the last scrapes (at most ``limits.DEMO_WINDOW_SNAPSHOTS_MAX``)
and answers the figures of the most recent ``window_s`` seconds.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from meridian.cluster import limits

LATENCY_METRIC = "meridian_replication_latency_ms"

SeriesKey = tuple[str, str, str]  # (table, source region, target region)


@dataclass(frozen=True, slots=True)
class Histogram:
    """Cumulative buckets ``(upper bound ms, count <= bound)``, ascending, ``+Inf`` last; and the sum."""

    buckets: tuple[tuple[float, float], ...]
    sum_ms: float

    @property
    def count(self) -> float:
        return self.buckets[-1][1] if self.buckets else 0.0


@dataclass(frozen=True, slots=True)
class WindowFigures:
    count: int  # changes applied in the window
    p50_ms: float | None  # None: nothing applied in the window
    p99_ms: float | None
    mean_ms: float | None
    span_s: float  # the window's actual length (shorter while the demo is young)
    max_ms: float | None = None  # exact, or an upper bound (see ``window_max``); None when unknown

    @property
    def rate_per_s(self) -> float:
        return self.count / self.span_s if self.span_s > 0 else 0.0


def parse_latency(text: str, table: str | None = None) -> dict[SeriesKey, Histogram]:
    """Every latency histogram in a Prometheus exposition ``text`` (only ``table``'s when given)."""
    buckets: dict[SeriesKey, list[tuple[float, float]]] = {}
    sums: dict[SeriesKey, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name != LATENCY_METRIC:
            continue
        for sample in family.samples:
            labels = sample.labels
            key = (labels.get("TableName", ""), labels.get("SendingRegion", ""), labels.get("ReceivingRegion", ""))
            if table is not None and key[0] != table:
                continue
            if sample.name.endswith("_bucket"):
                buckets.setdefault(key, []).append((float(labels["le"]), float(sample.value)))
            elif sample.name.endswith("_sum"):
                sums[key] = float(sample.value)
    return {key: Histogram(tuple(sorted(b)), sums.get(key, 0.0)) for key, b in buckets.items()}


def delta(before: Histogram | None, now: Histogram) -> Histogram:
    """The histogram of what ``now`` recorded after ``before`` (the same series, scraped earlier).

    A series whose count went down was restarted (a replicator restart
    starts its histograms over): everything in ``now`` is then new.
    """
    if before is None or now.count < before.count:
        return now
    earlier = dict(before.buckets)
    return Histogram(
        tuple((bound, max(0.0, n - earlier.get(bound, 0.0))) for bound, n in now.buckets),
        max(0.0, now.sum_ms - before.sum_ms),
    )


def quantile(histogram: Histogram, q: float, max_ms: float | None = None) -> float | None:
    """The ``q``-quantile (0 < q <= 1) of a cumulative histogram, interpolated; None when empty.

    ``max_ms``, the largest sample when known, caps the estimate and closes the ``+Inf`` bucket.
    """
    value = _quantile(histogram, q, max_ms)
    return value if value is None or max_ms is None else min(value, max_ms)


def _quantile(histogram: Histogram, q: float, max_ms: float | None) -> float | None:
    if not 0 < q <= 1:
        raise ValueError("a quantile is in (0, 1]")
    total = histogram.count
    if total <= 0:
        return None
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    finite = [bound for bound, _ in histogram.buckets if not math.isinf(bound)]
    for bound, cumulative in histogram.buckets:
        if cumulative >= rank:
            if math.isinf(bound):
                if max_ms is not None and max_ms > lower_bound and cumulative > lower_count:
                    return lower_bound + (max_ms - lower_bound) * (rank - lower_count) / (cumulative - lower_count)
                return finite[-1] if finite else None
            in_bucket = cumulative - lower_count
            if in_bucket <= 0:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / in_bucket
        lower_bound, lower_count = bound, cumulative
    return finite[-1] if finite else None


def highest_bound(histogram: Histogram) -> float | None:
    """The upper bound of the highest bucket holding anything (``inf`` for the last one; None if empty)."""
    if histogram.count <= 0:
        return None
    for bound, cumulative in histogram.buckets:
        if cumulative >= histogram.count:  # cumulative counts: the first bucket holding everything
            return bound
    return None


def window_max(window: Histogram, max_before_ms: float | None, max_now_ms: float | None) -> float | None:
    """The largest sample of ``window`` from the cumulative maxima at its two ends.

    Exact when the cumulative maximum grew (or first appeared); otherwise at
    most the smaller of that maximum and the window's highest bucket bound.
    """
    if window.count <= 0:
        return None
    if max_now_ms is not None and (max_before_ms is None or max_now_ms > max_before_ms):
        return max_now_ms
    bound = highest_bound(window)
    candidates = [v for v in (bound, max_now_ms) if v is not None and not math.isinf(v)]
    return min(candidates) if candidates else None


def figures(histogram: Histogram, span_s: float, max_ms: float | None = None) -> WindowFigures:
    n = int(round(histogram.count))
    return WindowFigures(
        count=n,
        p50_ms=quantile(histogram, 0.50, max_ms),
        p99_ms=quantile(histogram, 0.99, max_ms),
        mean_ms=histogram.sum_ms / n if n else None,
        span_s=span_s,
        max_ms=max_ms if n else None,
    )


@dataclass(frozen=True, slots=True)
class Scrape:
    t: float
    histograms: dict[SeriesKey, Histogram]
    maxima: dict[SeriesKey, float]  # cumulative maximum per series, where known


def _between(before: Scrape, now: Scrape) -> dict[SeriesKey, WindowFigures]:
    out = {}
    for key, histogram in now.histograms.items():
        window = delta(before.histograms.get(key), histogram)
        restarted = window is histogram and key in before.histograms
        max_before = None if restarted else before.maxima.get(key)
        out[key] = figures(window, now.t - before.t, window_max(window, max_before, now.maxima.get(key)))
    return out


class SlidingWindow:
    """The latest scrapes, and the figures of the changes applied in the last ``window_s`` seconds."""

    def __init__(self, limit: int = limits.DEMO_WINDOW_SNAPSHOTS_MAX) -> None:
        self._scrapes: deque[Scrape] = deque(maxlen=limit)

    def add(self, t: float, histograms: dict[SeriesKey, Histogram], maxima: dict[SeriesKey, float] | None = None) -> None:
        """Record one scrape of every series (``t`` in seconds, increasing), with their cumulative maxima if known."""
        if self._scrapes and t <= self._scrapes[-1].t:
            raise ValueError("scrapes must be added in time order")
        self._scrapes.append(Scrape(t, histograms, maxima or {}))

    def __len__(self) -> int:
        return len(self._scrapes)

    def _base(self, window_s: float) -> Scrape | None:
        """The newest scrape at least ``window_s`` older than the latest, else the oldest one."""
        if len(self._scrapes) < 2:
            return None
        latest_t = self._scrapes[-1].t
        base = self._scrapes[0]
        for scrape in self._scrapes:
            if scrape.t > latest_t - window_s:
                break
            base = scrape
        return base

    def figures(self, window_s: float) -> dict[SeriesKey, WindowFigures]:
        """Per series seen in the latest scrape: the window's figures (empty before two scrapes)."""
        base = self._base(window_s)
        return {} if base is None else _between(base, self._scrapes[-1])

    def last_interval(self) -> dict[SeriesKey, WindowFigures]:
        """The figures between the two latest scrapes (what ``lag.jsonl`` records)."""
        if len(self._scrapes) < 2:
            return {}
        return _between(self._scrapes[-2], self._scrapes[-1])

    def __repr__(self) -> str:
        span = self._scrapes[-1].t - self._scrapes[0].t if self._scrapes else 0.0
        return f"<SlidingWindow scrapes={len(self._scrapes)} span={span:.1f}s>"
