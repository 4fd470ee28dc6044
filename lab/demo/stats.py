"""The workload's live counters, split per region and operation for the dashboard.

``meridian.lab.load``'s ``LiveStats`` counts requests per region and latencies
per operation; the dashboard wants writes and reads per region and each
region's own latency (local latency is the point of the demo: a few
milliseconds in every region, against tens to hundreds for replication).
``RegionStats`` is a ``LiveStats`` that also keeps those, and
``RateMeter`` turns its counters into per-second rates between ticks.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from meridian.lab.load.stats import Histogram, LiveStats

OPS = ("put", "get")


class RegionStats(LiveStats):
    """``LiveStats`` plus per-(region, op) counts, errors and windowed latency."""

    def __init__(self, regions: list[str]) -> None:
        super().__init__(regions)
        self.ops: Counter[tuple[str, str]] = Counter()
        self.region_errors: Counter[str] = Counter()
        self._recent = {(r, op): Histogram() for r in regions for op in OPS}

    def record(self, region: str, op: str, ok: bool, error: str | None, latency_ms: float) -> None:
        super().record(region, op, ok, error, latency_ms)
        self.ops[(region, op)] += 1
        if ok:
            recent = self._recent.get((region, op))
            if recent is not None:
                recent.record(latency_ms)
        else:
            self.region_errors[region] += 1

    def take_recent(self) -> dict[tuple[str, str], Histogram]:
        """Latency per (region, op) since the previous call, replaced by empty histograms."""
        recent, self._recent = self._recent, {key: Histogram() for key in self._recent}
        return recent


@dataclass(frozen=True, slots=True)
class RegionRates:
    region: str
    writes_per_s: float
    reads_per_s: float
    errors_per_s: float
    errors: int
    put_p50_ms: float | None
    get_p50_ms: float | None


class RateMeter:
    """Per-second rates of a ``RegionStats`` between two ``tick`` calls."""

    def __init__(self, stats: RegionStats, regions: list[str]) -> None:
        self._stats = stats
        self._regions = list(regions)
        self._previous: tuple[float, Counter, Counter] | None = None
        self.latest: list[RegionRates] = [RegionRates(r, 0.0, 0.0, 0.0, 0, None, None) for r in regions]

    def tick(self, now_s: float) -> list[RegionRates]:
        ops, errors = Counter(self._stats.ops), Counter(self._stats.region_errors)
        recent = self._stats.take_recent()
        if self._previous is not None and now_s > self._previous[0]:
            then, ops_before, errors_before = self._previous
            span = now_s - then
            self.latest = [
                RegionRates(
                    region=r,
                    writes_per_s=(ops[(r, "put")] - ops_before[(r, "put")]) / span,
                    reads_per_s=(ops[(r, "get")] - ops_before[(r, "get")]) / span,
                    errors_per_s=(errors[r] - errors_before[r]) / span,
                    errors=errors[r],
                    put_p50_ms=recent[(r, "put")].percentile(50),
                    get_p50_ms=recent[(r, "get")].percentile(50),
                )
                for r in self._regions
            ]
        self._previous = (now_s, ops, errors)
        return self.latest
