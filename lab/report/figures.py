"""The numbers of a report, computed from a ``RunData`` (pure: no files, no plotting).

How each figure is defined (the report repeats these definitions):

* **replication lag per pair** from ``lag.jsonl``. With ``window: delta``
  each sample summarises the changes applied since the previous one, so the
  run's p50 is the median of the per-sample p50s weighted by their change
  counts, and its p99 the weighted 99th percentile of the per-sample p99s;
  with ``window: total`` the last sample already covers the whole run.
* **max pending**: the largest pending-change count a pair reported.
* **errors during faults**: failed requests whose start lies inside any
  fault window (injection to revert).
* **throttles**: requests answered with a throttling error
  (``ProvisionedThroughputExceededException``, ``ThrottlingException``,
  ``RequestLimitExceeded``), per region; the peak is the busiest 1-second
  bin by request start.
* **catch-up after the last heal**: from the last revert to the first
  sample at which every pair's pending count was back at or below its
  level before the first fault (0 when no sample precedes it).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from .rundir import FaultWindow, LagSample, RunData


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank ``p``-th percentile of ``values`` (sorted or not); None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def weighted_percentile(pairs: Iterable[tuple[float, float]], p: float) -> float | None:
    """The smallest value whose cumulative weight reaches ``p`` % of the total; None without weight."""
    ordered = sorted((v, w) for v, w in pairs if w > 0)
    total = sum(w for _, w in ordered)
    if not total:
        return None
    seen = 0.0
    for value, weight in ordered:
        seen += weight
        if seen >= p / 100 * total - 1e-9:
            return value
    return ordered[-1][0]


@dataclass(frozen=True, slots=True)
class PairLag:
    source: str
    target: str
    changes: int
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    max_pending: int | None
    window: str


@dataclass(frozen=True, slots=True)
class CatchUp:
    last_heal_t: float | None  # None: nothing was reverted
    caught_up_t: float | None  # None: not caught up by the end of the run (or no pending recorded)
    pending_at_end: dict[tuple[str, str], int]

    @property
    def seconds(self) -> float | None:
        if self.last_heal_t is None or self.caught_up_t is None:
            return None
        return self.caught_up_t - self.last_heal_t


@dataclass(frozen=True, slots=True)
class RegionFigures:
    region: str
    requests: int
    errors: int
    requests_in_faults: int
    errors_in_faults: int
    get_p50_ms: float | None
    get_p99_ms: float | None
    gets: int

    @property
    def error_rate_in_faults(self) -> float | None:
        return self.errors_in_faults / self.requests_in_faults if self.requests_in_faults else None


@dataclass(frozen=True, slots=True)
class PairVisibilityFigures:
    source: str
    target: str
    probes: int
    not_seen: int
    p50_ms: float | None
    p99_ms: float | None


def pairs_of(lag: list[LagSample]) -> list[tuple[str, str]]:
    return sorted({(s.source, s.target) for s in lag})


def pending_series(lag: list[LagSample], pair: tuple[str, str]) -> list[tuple[float, int]]:
    """``(t, pending)`` of a pair, one point per sample time (the largest when several tables report)."""
    by_t: dict[float, int] = {}
    for s in lag:
        if (s.source, s.target) == pair and s.pending is not None:
            by_t[s.t] = max(by_t.get(s.t, 0), s.pending)
    return sorted(by_t.items())


def latency_samples(lag: list[LagSample], pair: tuple[str, str]) -> list[LagSample]:
    """A pair's samples to take latency from: the windowed (delta) ones when there are any.

    A run dir may hold both kinds for one pair (a workload's cumulative
    sampler beside a windowed one); mixing them would count changes twice.
    """
    samples = [s for s in lag if (s.source, s.target) == pair]
    delta = [s for s in samples if s.window == "delta"]
    return delta or samples


def lag_figures(lag: list[LagSample]) -> list[PairLag]:
    out = []
    for pair in pairs_of(lag):
        samples = latency_samples(lag, pair)
        pending = [n for _, n in pending_series(lag, pair)]
        max_pending = max(pending) if pending else None
        maxima = [s.max_ms for s in samples if s.max_ms is not None and s.count > 0]
        if all(s.window == "total" for s in samples):
            # Cumulative samples: the last one of each table covers the run.
            last = {}
            for s in samples:
                last[s.table] = s
            finals = [s for s in last.values() if s.count > 0]
            changes = sum(s.count for s in finals)
            p50 = weighted_percentile(((s.p50_ms, s.count) for s in finals if s.p50_ms is not None), 50)
            p99 = max((s.p99_ms for s in finals if s.p99_ms is not None), default=None)
            window = "total"
        else:
            counted = [s for s in samples if s.count > 0]
            changes = sum(s.count for s in counted)
            p50 = weighted_percentile(((s.p50_ms, s.count) for s in counted if s.p50_ms is not None), 50)
            p99 = weighted_percentile(((s.p99_ms, s.count) for s in counted if s.p99_ms is not None), 99)
            window = "delta"
        out.append(PairLag(pair[0], pair[1], changes, p50, p99, max(maxima, default=None), max_pending, window))
    return out


def _caught_up_at(data: RunData, healed_at: float) -> float | None:
    """First sample time from ``healed_at`` on at which every pair's pending count was back at or
    below its level before the first fault; None if that never happened (or nothing was recorded)."""
    lag = data.lag or []
    first_fault = min(w.start for w in data.faults)
    caught_up = []
    for pair in pairs_of(lag):
        series = pending_series(lag, pair)
        if not series:
            continue
        baseline = max((n for t, n in series if t < first_fault), default=0)
        back = next((t for t, n in series if t >= healed_at and n <= baseline), None)
        if back is None:
            return None
        caught_up.append(back)
    return max(caught_up, default=None)


def catch_up(data: RunData) -> CatchUp:
    lag = data.lag or []
    reverts = [w.end for w in data.faults if w.reverted]
    last_heal = max(reverts) if reverts else None
    pairs = [pair for pair in pairs_of(lag) if pending_series(lag, pair)]
    at_end = {pair: pending_series(lag, pair)[-1][1] for pair in pairs}
    if last_heal is None or not pairs:
        return CatchUp(last_heal, None, at_end)
    return CatchUp(last_heal, _caught_up_at(data, last_heal), at_end)


def catch_up_per_fault(data: RunData) -> list[tuple[FaultWindow, float | None]]:
    """Each reverted fault and how long after its revert every pair had caught up (None: never)."""
    if not any(pending_series(data.lag or [], pair) for pair in pairs_of(data.lag or [])):
        return []
    out = []
    for w in data.faults:
        if w.reverted:
            at = _caught_up_at(data, w.end)
            out.append((w, None if at is None else at - w.end))
    return out


def region_figures(data: RunData) -> list[RegionFigures]:
    out = []
    for region, traffic in sorted((data.history or {}).items()):
        latencies = [ms for _, ms in traffic.get_latency.items]
        out.append(RegionFigures(
            region=region, requests=traffic.requests, errors=traffic.errors,
            requests_in_faults=traffic.requests_in_faults, errors_in_faults=traffic.errors_in_faults,
            get_p50_ms=percentile(latencies, 50), get_p99_ms=percentile(latencies, 99),
            gets=traffic.get_latency.seen,
        ))  # fmt: skip
    return out


@dataclass(frozen=True, slots=True)
class RegionThrottles:
    region: str
    requests: int
    throttled: int
    peak_per_s: int
    first_s: float | None  # seconds since t0 of the first and last bins with a throttle
    last_s: float | None

    @property
    def share(self) -> float | None:
        return self.throttled / self.requests if self.requests else None


def throttle_figures(data: RunData) -> list[RegionThrottles]:
    out = []
    for region, traffic in sorted((data.history or {}).items()):
        seconds = sorted(s for s, n in traffic.throttled_by_second.items() if n)
        out.append(RegionThrottles(
            region, traffic.requests, traffic.throttled, max(traffic.throttled_by_second.values(), default=0),
            float(seconds[0]) if seconds else None, float(seconds[-1]) if seconds else None,
        ))  # fmt: skip
    return out


def visibility_figures(data: RunData) -> list[PairVisibilityFigures]:
    out = []
    for (source, target), pair in sorted((data.visibility or {}).items()):
        seen = [ms for _, ms in pair.visible.items]
        out.append(PairVisibilityFigures(
            source, target, pair.probes, pair.not_seen, percentile(seen, 50), percentile(seen, 99)
        ))  # fmt: skip
    return out


def time_bins(samples: list[tuple[float, float]], t0: float, bin_s: float) -> list[tuple[float, list[float]]]:
    """Group ``(t, value)`` into bins of ``bin_s`` seconds from ``t0``: ``(bin start - t0, values)``."""
    bins: dict[int, list[float]] = {}
    for t, value in samples:
        bins.setdefault(math.floor((t - t0) / bin_s), []).append(value)
    return [(index * bin_s, values) for index, values in sorted(bins.items())]
