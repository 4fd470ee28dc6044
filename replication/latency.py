"""Replication latency: log-linear histograms with percentiles, per table and region pair.

Latency is measured as CloudWatch's ``ReplicationLatency`` is: from the
writer's version stamp (its hybrid clock's physical milliseconds) to the
moment the receiving region applied the change, by the receiver's clock.
A writer whose clock runs ahead (``meridian clock skew``) can make that
negative; such samples count as 0 ms and are tallied in ``clamped``.

Buckets are exact below 64 ms and then 32 per power of two (HdrHistogram's
layout with 5 significant bits), so any percentile is within about 3 % of
the true value, memory is bounded whatever is recorded, and merging or
exporting buckets later (Prometheus) needs no raw samples.

    value n (whole ms)    bucket                          width
    0 .. 63               n                               1 ms
    2^k .. 2^(k+1) - 1    64 + 32 (k - 6) + (n >> (k-5)) - 32   2^(k-5) ms
"""

from __future__ import annotations

import math
from dataclasses import dataclass

_EXACT_MS = 64  # below this, one bucket per millisecond
_SUB_BITS = 5  # 32 buckets per power of two above it
_SUB_COUNT = 1 << _SUB_BITS
_VALUE_MS_MAX = (1 << 40) - 1  # ~35 years: larger samples are recorded as this


def bucket_index(value_ms: int) -> int:
    """The bucket of a whole, non-negative number of milliseconds."""
    if value_ms < _EXACT_MS:
        return value_ms
    shift = value_ms.bit_length() - 1 - _SUB_BITS
    return _EXACT_MS + _SUB_COUNT * (shift - 1) + (value_ms >> shift) - _SUB_COUNT


def bucket_bounds(index: int) -> tuple[int, int]:
    """``(lowest, width)``: the bucket holds whole milliseconds lowest .. lowest + width - 1."""
    if index < _EXACT_MS:
        return index, 1
    shift, sub = divmod(index - _EXACT_MS, _SUB_COUNT)
    shift += 1
    return (sub + _SUB_COUNT) << shift, 1 << shift


@dataclass(frozen=True, slots=True)
class LatencySummary:
    count: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    clamped: int  # negative samples (writer's clock ahead), counted as 0 ms


class LatencyHistogram:
    """A bounded-memory histogram of latencies in milliseconds."""

    __slots__ = ("_buckets", "count", "sum_ms", "max_ms", "clamped")

    def __init__(self) -> None:
        self._buckets: dict[int, int] = {}
        self.count = 0
        self.sum_ms = 0.0
        self.max_ms = 0.0
        self.clamped = 0

    def record(self, latency_ms: float) -> None:
        if latency_ms < 0:
            self.clamped += 1
            latency_ms = 0.0
        latency_ms = min(latency_ms, float(_VALUE_MS_MAX))
        index = bucket_index(int(latency_ms))
        self._buckets[index] = self._buckets.get(index, 0) + 1
        self.count += 1
        self.sum_ms += latency_ms
        if latency_ms > self.max_ms:
            self.max_ms = latency_ms

    def percentile(self, p: float) -> float:
        """The ``p``-th percentile (nearest rank), as the top of its bucket, at most the max.

        0.0 when nothing was recorded.
        """
        if not 0 < p <= 100:
            raise ValueError("a percentile is in (0, 100]")
        if self.count == 0:
            return 0.0
        rank = math.ceil(p / 100 * self.count)
        seen = 0
        for index in sorted(self._buckets):
            seen += self._buckets[index]
            if seen >= rank:
                lowest, width = bucket_bounds(index)
                return min(float(lowest + width), self.max_ms)
        raise AssertionError("bucket counts do not add up to the sample count")

    def cumulative_counts(self, upper_bounds_ms: tuple[float, ...]) -> list[int]:
        """Per upper bound (ascending): samples known to be at most it (Prometheus ``le``).

        A bucket counts once its whole range lies at or below the bound, so a
        bucket straddling a bound is reported under the next one: at worst
        one bucket width (about 3 %) late, never early.
        """
        ranges = sorted((lowest + width, n) for lowest, width, n in (
            (*bucket_bounds(index), n) for index, n in self._buckets.copy().items()
        ))  # fmt: skip
        out, seen, i = [], 0, 0
        for bound in upper_bounds_ms:
            while i < len(ranges) and ranges[i][0] <= bound:
                seen += ranges[i][1]
                i += 1
            out.append(seen)
        return out

    def summary(self) -> LatencySummary:
        return LatencySummary(
            count=self.count,
            p50_ms=self.percentile(50),
            p95_ms=self.percentile(95),
            p99_ms=self.percentile(99),
            max_ms=self.max_ms,
            mean_ms=self.sum_ms / self.count if self.count else 0.0,
            clamped=self.clamped,
        )

    def __repr__(self) -> str:
        return f"<LatencyHistogram count={self.count} max={self.max_ms:.1f}ms buckets={len(self._buckets)}>"


@dataclass(frozen=True, slots=True, order=True)
class LatencyKey:
    """One series: a table's changes from ``origin`` as applied in ``receiver``."""

    table_id: int
    origin: str
    receiver: str


class LatencyRecorder:
    """Replication latency histograms, one per (table, origin -> receiver)."""

    def __init__(self) -> None:
        self._series: dict[LatencyKey, LatencyHistogram] = {}

    def record(self, table_id: int, origin: str, receiver: str, latency_ms: float) -> None:
        key = LatencyKey(table_id, origin, receiver)
        histogram = self._series.get(key)
        if histogram is None:
            histogram = self._series[key] = LatencyHistogram()
        histogram.record(latency_ms)

    def histogram(self, table_id: int, origin: str, receiver: str) -> LatencyHistogram | None:
        return self._series.get(LatencyKey(table_id, origin, receiver))

    def series(self) -> list[tuple[LatencyKey, LatencyHistogram]]:
        """Every series (a snapshot of the list, safe to take from another thread)."""
        return list(self._series.copy().items())

    def summaries(self) -> dict[LatencyKey, LatencySummary]:
        return {key: self._series[key].summary() for key in sorted(self._series)}

    def __repr__(self) -> str:
        return f"<LatencyRecorder series={len(self._series)}>"
