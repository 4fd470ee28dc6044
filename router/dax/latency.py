"""A DAX node's server-side request latency: a bounded log-bucket histogram in nanoseconds.

Why here and not only in a benchmark client: issue 16 sets a goal on the
*server-side* latency of a cached GetItem (p50 under 100 µs), and a client's
round trip also counts the network, its own event loop and the kernel.  The
server (``server.py``) therefore times each request itself, from the moment
its last byte is parsed to the moment its answer is handed to the transport
(``monotonic_ns``), and records it here; ``DaxServer.statistics()`` reports
p50/p99 and ``metrics.py`` writes the buckets to ``/metrics``, so a
benchmark can take differences of the buckets between two scrapes and get
the percentiles of just that interval.

Layout (HdrHistogram's, with ``DAX_LATENCY_SIGNIFICANT_BITS`` = b bits kept
per value, so 2^b buckets per power of two and any bucket at most 1/2^b of
its values wide: ~6 % for b = 4)::

    value v (ns)                bucket index                     width
    0 .. 2^b - 1                v                                1 ns
    2^k .. 2^(k+1) - 1, k >= b  ((k - b) << b) + (v >> (k - b))  2^(k-b) ns

Values above ``DAX_LATENCY_NS_MAX`` are recorded as it, so the histogram is
a fixed list of ``bucket_count()`` integers whatever is recorded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from time import monotonic_ns  # the clock server.py times requests with (re-exported: one seam)

from meridian.model import limits

_BITS = limits.DAX_LATENCY_SIGNIFICANT_BITS
_SUB = 1 << _BITS


def bucket_index(value_ns: int) -> int:
    """The bucket of a whole, non-negative number of nanoseconds (at most ``DAX_LATENCY_NS_MAX``)."""
    shift = value_ns.bit_length() - _BITS - 1
    if shift <= 0:
        return value_ns
    return (shift << _BITS) + (value_ns >> shift)


def bucket_bounds(index: int) -> tuple[int, int]:
    """``(lowest, width)``: the bucket holds whole nanoseconds lowest .. lowest + width - 1."""
    shift = max(0, index // _SUB - 1)
    return (index - (shift << _BITS)) << shift, 1 << shift


def bucket_count() -> int:
    """Buckets needed for every value up to ``DAX_LATENCY_NS_MAX``."""
    return bucket_index(limits.DAX_LATENCY_NS_MAX) + 1


@dataclass(frozen=True, slots=True)
class LatencySummary:
    count: int
    p50_us: float
    p99_us: float
    max_us: float
    mean_us: float


class LatencyHistogram:
    """Request latencies of one DAX node, in nanoseconds, in fixed memory."""

    __slots__ = ("_counts", "count", "sum_ns", "max_ns")

    def __init__(self) -> None:
        self._counts = [0] * bucket_count()
        self.count = 0
        self.sum_ns = 0
        self.max_ns = 0

    def __repr__(self) -> str:
        return f"<LatencyHistogram count={self.count} p50={self.percentile_ns(50) / 1000:.1f}µs max={self.max_ns / 1000:.1f}µs>"

    def record_ns(self, value_ns: int) -> None:
        """One request's time; negative (a clock that stepped back) counts as 0, huge as the maximum."""
        if value_ns < 0:
            value_ns = 0
        elif value_ns > limits.DAX_LATENCY_NS_MAX:
            value_ns = limits.DAX_LATENCY_NS_MAX
        self._counts[bucket_index(value_ns)] += 1
        self.count += 1
        self.sum_ns += value_ns
        if value_ns > self.max_ns:
            self.max_ns = value_ns

    def percentile_ns(self, p: float) -> int:
        """The ``p``-th percentile (nearest rank) as the top of its bucket, at most the maximum; 0 when empty."""
        if not 0 < p <= 100:
            raise ValueError("a percentile is in (0, 100]")
        if self.count == 0:
            return 0
        rank = math.ceil(p / 100 * self.count)
        seen = 0
        for index, n in enumerate(self._counts):
            seen += n
            if seen >= rank:
                lowest, width = bucket_bounds(index)
                return min(lowest + width, self.max_ns)
        raise AssertionError("bucket counts do not add up to the sample count")

    def cumulative_counts(self, upper_bounds_ns: tuple[int, ...]) -> list[int]:
        """Per upper bound (ascending): requests known to have taken at most it (Prometheus ``le``).

        A bucket counts once its whole range lies at or below the bound, so a
        bucket straddling a bound is reported under the next one: at worst one
        bucket width (~6 %) late, never early.
        """
        out, seen, index, counts = [], 0, 0, self._counts
        for bound in upper_bounds_ns:
            while index < len(counts):
                lowest, width = bucket_bounds(index)
                if lowest + width - 1 > bound:
                    break
                seen += counts[index]
                index += 1
            out.append(seen)
        return out

    def summary(self) -> LatencySummary:
        return LatencySummary(
            count=self.count,
            p50_us=self.percentile_ns(50) / 1000,
            p99_us=self.percentile_ns(99) / 1000,
            max_us=self.max_ns / 1000,
            mean_us=self.sum_ns / self.count / 1000 if self.count else 0.0,
        )


__all__ = ["LatencyHistogram", "LatencySummary", "bucket_bounds", "bucket_count", "bucket_index", "monotonic_ns"]
