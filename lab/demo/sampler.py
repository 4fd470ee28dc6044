"""One look at replication per dashboard tick: links, backlog, latency histograms.

``ReplicationSampler.sample`` (blocking: run it in a thread, one call at a
time) asks ``ControlClient`` for every directed link and its pending
changes, scrapes each region's latency histograms (the router's
``GET /metrics`` when the region's router URL is known, else the
replicator's ``metrics`` command through the control endpoint) and reads
the cumulative maxima (``ControlClient.lag()``), adds all that to a
``SlidingWindow`` and answers a ``ReplicationView``: per directed link,
the window's mean, p50, p99 and applied changes per second.

Each sample also appends one line per pair to ``lag.jsonl`` (the run dir
format): the percentiles of the changes applied since the previous sample
(``"window": "delta"``).

A region that does not answer keeps its previous histograms for the window
(so its series do not look restarted when it comes back) and is named in
``ReplicationView.errors``.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from meridian.cluster import limits
from meridian.cluster.control_client import ControlClient, ControlError

from .window import Histogram, SeriesKey, SlidingWindow, WindowFigures, parse_latency


_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True, slots=True)
class PairView:
    source: str
    target: str
    latency_ms: float  # the link's configured one-way latency
    cut: bool
    paused: bool
    pending: int | None
    window: WindowFigures | None  # None: nothing of the table applied on this pair yet


@dataclass(frozen=True, slots=True)
class ReplicationView:
    t: float
    pairs: list[PairView]
    errors: list[str] = field(default_factory=list)


class ReplicationSampler:
    """Samples one table's replication for the dashboard and ``lag.jsonl``."""

    def __init__(self, control: ControlClient, routers: dict[str, str], table: str, window_s: float,
                 lag_path: Path | None = None) -> None:  # fmt: skip
        self._control = control
        self._routers = dict(routers)  # region -> router URL, where known
        self.table = table
        self.window_s = window_s
        self.lag_path = lag_path
        self.window = SlidingWindow()
        self._last: dict[str, dict[SeriesKey, Histogram]] = {}  # per receiving region, its last good scrape
        self.samples = 0

    def _metrics_text(self, region: str) -> str:
        url = self._routers.get(region)
        if url is None:
            return str(self._control.call(region, {"command": "metrics"})["text"])
        try:
            with _DIRECT.open(url + "/metrics", timeout=limits.DEMO_METRICS_TIMEOUT_S) as answer:
                return answer.read().decode()
        except (urllib.error.URLError, OSError) as exc:
            raise ControlError(f"GET {url}/metrics: {getattr(exc, 'reason', exc)}") from None

    def _scrape(self, regions: list[str], errors: list[str]) -> dict[SeriesKey, Histogram]:
        merged: dict[SeriesKey, Histogram] = {}
        for region in regions:
            try:
                scraped = parse_latency(self._metrics_text(region), self.table)
                # A region reports what it received: keep only those series (a router relays its own replicator).
                self._last[region] = {k: h for k, h in scraped.items() if k[2] == region}
            except (ControlError, ValueError, KeyError) as exc:
                errors.append(f"metrics of {region}: {exc}")
            merged.update(self._last.get(region, {}))
        return merged

    def sample(self) -> ReplicationView:
        t = time.time()
        errors: list[str] = []
        regions = self._control.regions()
        try:
            links = self._control.links()
        except ControlError as exc:
            links, errors = [], [f"links: {exc}"]
        try:
            pending = self._control.pending()
        except ControlError as exc:
            pending = {}
            errors.append(f"pending: {exc}")
        try:
            maxima = {(e["table"], e["source"], e["target"]): float(e["max_ms"])
                      for e in self._control.lag() if e["table"] == self.table}  # fmt: skip
        except ControlError as exc:
            maxima = {}
            errors.append(f"lag: {exc}")
        self.window.add(t, self._scrape(regions, errors), maxima)
        self.samples += 1
        windowed = {(k[1], k[2]): f for k, f in self.window.figures(self.window_s).items()}
        pairs = [
            PairView(link["source"], link["target"], float(link["latency_ms"]), bool(link["cut"]),
                     bool(link["paused"]), pending.get((link["source"], link["target"])),
                     windowed.get((link["source"], link["target"])))
            for link in sorted(links, key=lambda link: (link["source"], link["target"]))
        ]  # fmt: skip
        self._write_lag(t, pending)
        return ReplicationView(t, pairs, errors)

    def _write_lag(self, t: float, pending: dict[tuple[str, str], int]) -> None:
        if self.lag_path is None:
            return
        interval = {(k[1], k[2]): f for k, f in self.window.last_interval().items()}
        lines = []
        for pair in sorted(set(interval) | set(pending)):
            line = {"t": round(t, 3), "source": pair[0], "target": pair[1], "table": self.table,
                    "p50_ms": None, "p99_ms": None, "max_ms": None, "count": 0,
                    "pending": pending.get(pair), "window": "delta"}  # fmt: skip
            if pair in interval:
                figures = interval[pair]
                if figures.count:
                    line.update(p50_ms=_round(figures.p50_ms), p99_ms=_round(figures.p99_ms), count=figures.count,
                                max_ms=_round(figures.max_ms), mean_ms=_round(figures.mean_ms))
            elif len(self.window) < 2:
                continue  # the first scrape: no interval yet
            lines.append(line)
        if lines:
            with open(self.lag_path, "ab") as out:
                out.write(b"".join(orjson.dumps(line) + b"\n" for line in lines))


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
