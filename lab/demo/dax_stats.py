"""``meridian demo dax``'s figures: read latency per path and the DAX node's item cache hit rate.

No I/O and no clock of its own: callers pass ``now_s`` (``time.monotonic``),
so the windows are tested with made-up times.

* ``PathLatency``: GetItem latencies of one path (the DAX client, or boto3
  straight to the router): each read of the last ``window_s`` ("now", exact
  percentiles) and a histogram since the start ("total", within 5 %).
* ``HitRate``: the item cache's cumulative hits and misses as the router's
  ``/console/api/dax`` reports them, turned into the hit rate of the last
  ``window_s`` and the rate since the demo's first reading.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass

from meridian.lab.load.stats import Histogram
from meridian.model import limits


@dataclass(frozen=True, slots=True)
class LatencyFigures:
    """One path's figures at one moment (milliseconds; None before any read)."""

    reads: int
    reads_per_s: float
    errors: int
    p50_ms: float | None
    p99_ms: float | None
    total_p50_ms: float | None
    total_p99_ms: float | None
    mean_ms: float | None


class PathLatency:
    """Latencies of one path; ``record`` from the reading thread, ``figures`` from the drawing one."""

    def __init__(self, window_s: float = limits.DEMO_DAX_WINDOW_S) -> None:
        self.window_s = window_s
        self._lock = threading.Lock()
        #: (now_s, latency_ms) of the window's reads, oldest first; past the bound the
        #: oldest go (the window's percentiles are then of its latest reads)
        self._recent: deque[tuple[float, float]] = deque(maxlen=limits.DEMO_DAX_WINDOW_READS_MAX)
        self.total = Histogram()
        self.errors = 0

    def record(self, now_s: float, latency_ms: float) -> None:
        with self._lock:
            self._recent.append((now_s, latency_ms))
            self.total.record(latency_ms)

    def record_error(self) -> None:
        with self._lock:
            self.errors += 1

    def figures(self, now_s: float) -> LatencyFigures:
        with self._lock:
            while self._recent and self._recent[0][0] < now_s - self.window_s:
                self._recent.popleft()
            recent = sorted(ms for _, ms in self._recent)
            span_s = min(self.window_s, max(now_s - self._recent[0][0], 1.0)) if recent else self.window_s
            total = self.total
            return LatencyFigures(
                reads=total.count, reads_per_s=len(recent) / span_s, errors=self.errors,
                p50_ms=_nearest_rank(recent, 50), p99_ms=_nearest_rank(recent, 99),
                total_p50_ms=total.percentile(50), total_p99_ms=total.percentile(99),
                mean_ms=total.sum_ms / total.count if total.count else None,
            )  # fmt: skip


def _nearest_rank(ordered: list[float], p: float) -> float | None:
    """The nearest-rank percentile of sorted values; None for none."""
    if not ordered:
        return None
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


class HitRate:
    """The item cache's hit rate from cumulative (hits, misses) readings."""

    def __init__(self, window_s: float = limits.DEMO_DAX_WINDOW_S) -> None:
        self.window_s = window_s
        self._readings: deque[tuple[float, int, int]] = deque()  # (now_s, hits, misses)
        self._first: tuple[int, int] | None = None
        self.unavailable: str | None = None  # why there are no readings (the router has no DAX panel, ...)

    def add(self, now_s: float, hits: int, misses: int) -> None:
        if self._readings and (hits < self._readings[-1][1] or misses < self._readings[-1][2]):
            self._readings.clear()  # the node restarted: its counters began again
            self._first = None
        if self._first is None:
            self._first = (hits, misses)
        self._readings.append((now_s, hits, misses))
        # keep one reading at or before the window's start, to measure from
        while len(self._readings) > 2 and self._readings[1][0] <= now_s - self.window_s:
            self._readings.popleft()

    @staticmethod
    def _rate(hits: int, misses: int) -> float | None:
        return hits / (hits + misses) if hits + misses > 0 else None

    def window(self) -> float | None:
        """Hits over lookups between the window's first reading and the latest."""
        if len(self._readings) < 2:
            return None
        (_, h0, m0), (_, h1, m1) = self._readings[0], self._readings[-1]
        return self._rate(h1 - h0, m1 - m0)

    def since_start(self) -> tuple[float | None, int, int]:
        """(hit rate, hits, misses) since the first reading."""
        if self._first is None or not self._readings:
            return None, 0, 0
        hits, misses = self._readings[-1][1] - self._first[0], self._readings[-1][2] - self._first[1]
        return self._rate(hits, misses), hits, misses
