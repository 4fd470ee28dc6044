"""Live counters of a running workload and the summary it returns.

Everything here is updated on the workload's event loop and read by the
progress display on the same loop, so no locks.  Latencies go into
log-bucket histograms (bounded memory whatever the rate or duration).

Throttles (answers whose ``__type`` is in ``THROTTLE_ERRORS``) are errors
like any other and are also counted apart: per region, and per second of
the wall clock (the busiest second so far, with O(1) memory).
"""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

#: Histogram resolution: bucket i holds latencies up to FLOOR_MS * GROWTH ** i,
#: so a percentile is within 5 % of the true value.
HISTOGRAM_FLOOR_MS = 0.01
HISTOGRAM_GROWTH = 1.05
_LOG_GROWTH = math.log(HISTOGRAM_GROWTH)


class Histogram:
    """Latencies in milliseconds, in logarithmic buckets."""

    __slots__ = ("_buckets", "count", "max_ms", "sum_ms")

    def __init__(self) -> None:
        self._buckets: dict[int, int] = {}
        self.count = 0
        self.max_ms = 0.0
        self.sum_ms = 0.0

    def record(self, value_ms: float) -> None:
        index = 0 if value_ms <= HISTOGRAM_FLOOR_MS else math.ceil(math.log(value_ms / HISTOGRAM_FLOOR_MS) / _LOG_GROWTH)
        self._buckets[index] = self._buckets.get(index, 0) + 1
        self.count += 1
        self.sum_ms += value_ms
        if value_ms > self.max_ms:
            self.max_ms = value_ms

    def percentile(self, p: float) -> float | None:
        """Nearest-rank percentile (top of its bucket, at most the max); None when empty."""
        if not 0 < p <= 100:
            raise ValueError("a percentile is in (0, 100]")
        if not self.count:
            return None
        rank = math.ceil(p / 100 * self.count)
        seen = 0
        for index in sorted(self._buckets):
            seen += self._buckets[index]
            if seen >= rank:
                return min(HISTOGRAM_FLOOR_MS * HISTOGRAM_GROWTH**index, self.max_ms)
        raise AssertionError("bucket counts do not add up to the count")

    def summary(self) -> dict[str, float | int | None]:
        return {
            "count": self.count,
            "p50_ms": _round(self.percentile(50)),
            "p99_ms": _round(self.percentile(99)),
            "max_ms": _round(self.max_ms) if self.count else None,
        }

    def __repr__(self) -> str:
        return f"<Histogram count={self.count} max={self.max_ms:.2f}ms>"


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


#: The ``__type`` names of DynamoDB's throttling answers: a provisioned or
#: partition limit (``ProvisionedThroughputExceededException``), an
#: on-demand maximum (``ThrottlingException``), the account's request rate
#: (``RequestLimitExceeded``).  Each is a 400: the request was not applied.
THROTTLE_ERRORS = frozenset({"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"})


class PeakPerSecond:
    """Events per whole second of the clock, keeping only the current second and the busiest."""

    __slots__ = ("_second", "_count", "peak")

    def __init__(self) -> None:
        self._second = -1
        self._count = 0
        self.peak = 0

    def add(self, second: int) -> None:
        if second != self._second:
            self._second, self._count = second, 0
        self._count += 1
        if self._count > self.peak:
            self.peak = self._count


@dataclass
class RegionCounts:
    requests: int = 0  # sent
    ok: int = 0
    errors: int = 0  # throttled ones included
    behind: int = 0  # due but not sent (see Workload)
    throttled: int = 0  # errors that were throttles (THROTTLE_ERRORS)
    throttled_peak_per_s: int = 0  # the most throttles answered in one second


class LiveStats:
    """What the workload has done so far (read by the progress display)."""

    def __init__(self, regions: list[str]) -> None:
        self.scheduled = 0  # requests whose time came
        self.sent = 0
        self.behind = 0  # could not be sent on time (in-flight limit, or the scheduler late): not sent
        self.skipped = 0  # no key free to write (every candidate retired): not sent
        self.in_flight = 0
        self.ok = 0
        self.errors: Counter[str] = Counter()
        self.regions = {region: RegionCounts() for region in regions}
        self.latency = {"put": Histogram(), "get": Histogram()}
        self.window = {"put": Histogram(), "get": Histogram()}  # since the last take_window()
        self.acknowledged_writes = 0
        self.retired_keys = 0  # a write's outcome unknown: the key is not written again
        self.probes_started = 0
        self.probes_seen = 0
        self.probes_timed_out = 0
        self.probes_skipped = 0  # the concurrent-probe limit was reached
        self.visibility = Histogram()
        self.lag_samples = 0
        self.throttled = 0
        self.throttle_reasons: Counter[str] = Counter()  # ThrottlingReasons' reason -> answers naming it
        self.throttle_peak = PeakPerSecond()
        self._region_throttle_peak = {region: PeakPerSecond() for region in regions}

    def record(self, region: str, op: str, ok: bool, error: str | None, latency_ms: float) -> None:
        counts = self.regions[region]
        counts.requests += 1
        if ok:
            counts.ok += 1
            self.ok += 1
            self.latency[op].record(latency_ms)
            self.window[op].record(latency_ms)
        else:
            counts.errors += 1
            self.errors[error or "?"] += 1
            if error in THROTTLE_ERRORS:
                self._throttle(region, counts)

    def _throttle(self, region: str, counts: RegionCounts) -> None:
        second = int(time.time())
        self.throttled += 1
        counts.throttled += 1
        self.throttle_peak.add(second)
        peak = self._region_throttle_peak[region]
        peak.add(second)
        counts.throttled_peak_per_s = peak.peak

    def take_window(self) -> dict[str, Histogram]:
        """The latency histograms since the previous call, replaced by empty ones."""
        window, self.window = self.window, {"put": Histogram(), "get": Histogram()}
        return window


@dataclass(frozen=True)
class WorkloadStats:
    """What one run did, returned by ``Workload.run``."""

    started_at: float
    ended_at: float  # after the requests and probes in flight finished
    schedule_ended_at: float  # when the last request was due (or the run was stopped)
    scheduled: int
    sent: int
    behind: int
    skipped: int
    ok: int
    errors: dict[str, int]
    regions: dict[str, dict[str, int]]
    put_latency: dict[str, Any]
    get_latency: dict[str, Any]
    acknowledged_writes: int
    retired_keys: int
    visibility: dict[str, Any] = field(default_factory=dict)
    lag_samples: int = 0
    history_stalls: int = 0
    throttled: int = 0  # requests answered with a THROTTLE_ERRORS type (part of ``errors``)
    throttled_peak_per_s: int = 0  # the most throttles answered in one second, all regions
    throttle_reasons: dict[str, int] = field(default_factory=dict)  # ThrottlingReasons' reason -> answers

    @property
    def achieved_rate_per_s(self) -> float:
        """Requests sent per second of schedule."""
        elapsed = self.schedule_ended_at - self.started_at
        return self.sent / elapsed if elapsed > 0 else 0.0

    @property
    def throttled_per_s(self) -> float:
        """Throttled requests per second of schedule (on average)."""
        elapsed = self.schedule_ended_at - self.started_at
        return self.throttled / elapsed if elapsed > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self), "achieved_rate_per_s": round(self.achieved_rate_per_s, 1),
            "throttled_per_s": round(self.throttled_per_s, 1),
        }  # fmt: skip

    @classmethod
    def from_live(
        cls, live: LiveStats, started_at: float, schedule_ended_at: float, ended_at: float, history_stalls: int
    ) -> WorkloadStats:
        return cls(
            started_at=started_at,
            ended_at=ended_at,
            schedule_ended_at=schedule_ended_at,
            scheduled=live.scheduled,
            sent=live.sent,
            behind=live.behind,
            skipped=live.skipped,
            ok=live.ok,
            errors=dict(live.errors),
            regions={region: asdict(counts) for region, counts in live.regions.items()},
            put_latency=live.latency["put"].summary(),
            get_latency=live.latency["get"].summary(),
            acknowledged_writes=live.acknowledged_writes,
            retired_keys=live.retired_keys,
            visibility={
                "started": live.probes_started,
                "seen": live.probes_seen,
                "timed_out": live.probes_timed_out,
                "skipped": live.probes_skipped,
                **{k: v for k, v in live.visibility.summary().items() if k != "count"},
            },
            lag_samples=live.lag_samples,
            history_stalls=history_stalls,
            throttled=live.throttled,
            throttled_peak_per_s=live.throttle_peak.peak,
            throttle_reasons=dict(live.throttle_reasons),
        )
