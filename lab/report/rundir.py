"""Reading a run directory (``run.json``, ``*.jsonl``, ``checks.json``) into a ``RunData``.

Every file is optional: a load run has no faults, a run without probes has
no visibility file, a run cut short may end with half a line. A missing file
is ``None`` (the report then says "not recorded"); an unreadable line is
skipped and counted in ``RunData.skipped_lines``.

``history.jsonl`` can hold one line per request of a long run, so it is
folded while it is read: 1-second bins of requests, errors and throttles
per region, exact counts inside fault windows, and the latencies of gets
kept in a bounded uniform sample (``Reservoir``), never the whole file.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from meridian.cluster import limits
from meridian.lab.load.stats import THROTTLE_ERRORS

#: Seed of the reservoirs' sampling, so one run dir always gives one report.
REPORT_SAMPLE_SEED = 0

RUN_FILE = "run.json"
HISTORY_FILE = "history.jsonl"
VISIBILITY_FILE = "visibility.jsonl"
LAG_FILE = "lag.jsonl"
FAULTS_FILE = "faults.jsonl"
CHECKS_FILE = "checks.json"


class Reservoir:
    """A uniform sample of at most ``limit`` items of a stream (Vitter's algorithm R), seeded."""

    __slots__ = ("limit", "seen", "items", "_random")

    def __init__(self, limit: int = limits.REPORT_SAMPLES_MAX, seed: int = REPORT_SAMPLE_SEED) -> None:
        if limit < 1:
            raise ValueError("a reservoir holds at least one item")
        self.limit = limit
        self.seen = 0
        self.items: list = []
        self._random = random.Random(seed)

    def add(self, item) -> None:
        self.seen += 1
        if len(self.items) < self.limit:
            self.items.append(item)
            return
        slot = self._random.randrange(self.seen)
        if slot < self.limit:
            self.items[slot] = item

    @property
    def exact(self) -> bool:
        """Whether every item seen is held (no sampling happened)."""
        return self.seen == len(self.items)

    def __repr__(self) -> str:
        return f"<Reservoir {len(self.items)}/{self.seen} limit={self.limit}>"


@dataclass(frozen=True, slots=True)
class FaultWindow:
    """One fault from its injection to its revert (``end`` = the run's end when never reverted)."""

    fault: str
    target: str
    start: float
    end: float
    reverted: bool
    args: dict


@dataclass(frozen=True, slots=True)
class LagSample:
    t: float
    source: str
    target: str
    table: str
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    count: int
    pending: int | None
    window: str  # "delta" (since the previous sample) or "total" (since the replicator started)


@dataclass
class RegionTraffic:
    """One region's requests from ``history.jsonl``, folded."""

    requests: int = 0
    errors: int = 0
    requests_by_second: Counter = field(default_factory=Counter)  # whole seconds since t0 -> requests
    errors_by_second: Counter = field(default_factory=Counter)
    writes_by_second: Counter = field(default_factory=Counter)
    error_types: Counter = field(default_factory=Counter)
    requests_in_faults: int = 0
    errors_in_faults: int = 0
    get_latency: Reservoir = field(default_factory=Reservoir)  # (t, latency_ms) of successful gets
    throttled: int = 0  # errors whose type is a throttle (THROTTLE_ERRORS)
    throttled_by_second: Counter = field(default_factory=Counter)
    throttle_reasons: Counter = field(default_factory=Counter)  # ThrottlingReasons' reason -> requests


@dataclass
class PairVisibility:
    """Cross-region visibility probes of one ordered pair."""

    probes: int = 0
    not_seen: int = 0
    visible: Reservoir = field(default_factory=Reservoir)  # (t, visible_ms) of probes that saw the write


@dataclass
class RunData:
    path: Path
    run: dict | None
    t0: float  # time origin of every plot: run.json started_at, else the earliest record
    t_end: float
    history: dict[str, RegionTraffic] | None
    visibility: dict[tuple[str, str], PairVisibility] | None
    lag: list[LagSample] | None
    fault_events: list[dict] | None
    faults: list[FaultWindow]
    checks: list[dict] | None
    skipped_lines: Counter = field(default_factory=Counter)  # file name -> unreadable lines

    @property
    def duration_s(self) -> float:
        return max(0.0, self.t_end - self.t0)


def _lines(path: Path, skipped: Counter) -> Iterator[dict]:
    """Each JSON object line of ``path``; unreadable ones are counted in ``skipped``."""
    with open(path, "rb") as f:
        for raw in f:
            if not raw.strip():
                continue
            try:
                record = orjson.loads(raw)
            except orjson.JSONDecodeError:
                skipped[path.name] += 1
                continue
            if isinstance(record, dict):
                yield record
            else:
                skipped[path.name] += 1


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _read_json(path: Path):
    if not path.exists():
        return None
    try:
        return orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError:
        return None


def _fault_windows(events: list[dict], t_end: float) -> list[FaultWindow]:
    """Pair each injection with the next revert of the same fault and target."""
    open_: dict[tuple[str, str], list[dict]] = {}
    windows = []
    for event in sorted(events, key=lambda e: e["t"]):
        key = (str(event.get("fault")), str(event.get("target")))
        if event.get("phase") == "revert":
            started = open_.get(key)
            if started:
                first = started.pop(0)
                windows.append(FaultWindow(key[0], key[1], first["t"], event["t"], True, first.get("args") or {}))
        else:
            open_.setdefault(key, []).append(event)
    for key, started in open_.items():
        for event in started:
            windows.append(FaultWindow(key[0], key[1], event["t"], max(t_end, event["t"]), False, event.get("args") or {}))
    return sorted(windows, key=lambda w: (w.start, w.fault, w.target))


def _in_any(t: float, windows: list[FaultWindow]) -> bool:
    return any(w.start <= t <= w.end for w in windows)


def _read_lag(path: Path, skipped: Counter) -> list[LagSample]:
    samples = []
    for r in _lines(path, skipped):
        t = _number(r.get("t"))
        if t is None or not r.get("source") or not r.get("target"):
            skipped[path.name] += 1
            continue
        pending = _number(r.get("pending"))
        samples.append(LagSample(
            t=t, source=str(r["source"]), target=str(r["target"]), table=str(r.get("table") or ""),
            p50_ms=_number(r.get("p50_ms")), p99_ms=_number(r.get("p99_ms")), max_ms=_number(r.get("max_ms")),
            count=int(_number(r.get("count")) or 0), pending=None if pending is None else int(pending),
            window=str(r.get("window") or "total"),
        ))  # fmt: skip
    samples.sort(key=lambda s: s.t)
    return samples


def _read_visibility(path: Path, skipped: Counter) -> tuple[dict[tuple[str, str], PairVisibility], list[float]]:
    pairs: dict[tuple[str, str], PairVisibility] = {}
    times = []
    for r in _lines(path, skipped):
        t = _number(r.get("t"))
        if t is None or not r.get("source") or not r.get("target"):
            skipped[path.name] += 1
            continue
        times.append(t)
        pair = pairs.setdefault((str(r["source"]), str(r["target"])), PairVisibility())
        pair.probes += 1
        visible_ms = _number(r.get("visible_ms"))
        if visible_ms is None:
            pair.not_seen += 1
        else:
            pair.visible.add((t, visible_ms))
    return pairs, [min(times), max(times)] if times else []


def _history_span(path: Path) -> list[float]:
    """First and last request time (a first pass, so fault windows can end at the run's end).

    Unreadable lines are counted by the second pass (``_read_history``).
    """
    lo = hi = None
    for r in _lines(path, Counter()):
        t = _number(r.get("t"))
        if t is not None:
            lo = t if lo is None else min(lo, t)
            hi = t if hi is None else max(hi, t)
    return [] if lo is None else [lo, hi]


def _read_history(path: Path, t0: float, faults: list[FaultWindow], skipped: Counter) -> dict[str, RegionTraffic]:
    regions: dict[str, RegionTraffic] = {}
    for r in _lines(path, skipped):
        t = _number(r.get("t"))
        if t is None or not r.get("region"):
            skipped[path.name] += 1
            continue
        traffic = regions.get(r["region"])
        if traffic is None:
            traffic = regions[str(r["region"])] = RegionTraffic()
        second = math.floor(t - t0)
        ok = bool(r.get("ok"))
        traffic.requests += 1
        traffic.requests_by_second[second] += 1
        if r.get("op") in ("put", "delete"):
            traffic.writes_by_second[second] += 1
        if not ok:
            traffic.errors += 1
            traffic.errors_by_second[second] += 1
            traffic.error_types[str(r.get("error") or "unknown")] += 1
            if r.get("error") in THROTTLE_ERRORS:
                traffic.throttled += 1
                traffic.throttled_by_second[second] += 1
                reasons = r.get("throttle")
                for reason in reasons if isinstance(reasons, list) and reasons else ["(none given)"]:
                    traffic.throttle_reasons[str(reason)] += 1
        if faults and _in_any(t, faults):
            traffic.requests_in_faults += 1
            traffic.errors_in_faults += 0 if ok else 1
        latency_ms = _number(r.get("latency_ms"))
        if ok and r.get("op") == "get" and latency_ms is not None:
            traffic.get_latency.add((t, latency_ms))
    return regions


def read_run_dir(path: str | Path) -> RunData:
    """Everything the report needs from ``path``; raises FileNotFoundError if it is not a directory."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path} is not a directory")
    skipped: Counter = Counter()
    run = _read_json(path / RUN_FILE)
    if not isinstance(run, dict):
        run = None
    checks = _read_json(path / CHECKS_FILE)
    if not isinstance(checks, list):
        checks = None
    fault_events = None
    if (path / FAULTS_FILE).exists():
        fault_events = [
            e for e in _lines(path / FAULTS_FILE, skipped) if _number(e.get("t")) is not None and e.get("fault")
        ]
    lag = _read_lag(path / LAG_FILE, skipped) if (path / LAG_FILE).exists() else None
    visibility, visibility_span = None, []
    if (path / VISIBILITY_FILE).exists():
        visibility, visibility_span = _read_visibility(path / VISIBILITY_FILE, skipped)
    history_span = _history_span(path / HISTORY_FILE) if (path / HISTORY_FILE).exists() else []

    times = [*history_span, *visibility_span, *(s.t for s in lag or ()), *(e["t"] for e in fault_events or ())]
    started = _number((run or {}).get("started_at"))
    ended = _number((run or {}).get("ended_at"))
    t0 = started if started is not None else min(times, default=0.0)
    t_end = ended if ended is not None else max(times, default=t0)
    faults = _fault_windows(fault_events or [], t_end)
    history = None
    if (path / HISTORY_FILE).exists():
        history = _read_history(path / HISTORY_FILE, t0, faults, skipped)
    return RunData(
        path=path, run=run, t0=t0, t_end=t_end, history=history, visibility=visibility, lag=lag,
        fault_events=fault_events, faults=faults, checks=checks, skipped_lines=skipped,
    )  # fmt: skip
