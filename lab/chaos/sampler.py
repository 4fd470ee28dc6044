"""Replication lag and backlog, sampled once a second into ``lag.jsonl``.

Each sample asks every region's replicator for ``show`` (cumulative latency
summaries per origin -> receiver, and its own pending changes per peer) and
for ``metrics`` (the same latencies as Prometheus histogram buckets).  From
the difference of two consecutive bucket snapshots the sampler gets the
latency of the changes applied *in that window*, which is what a chaos run
needs: after a partition heals, cumulative percentiles stay dominated by the
backlog for minutes, while the window's show the lag of today's writes.

One line per ordered region pair and sample::

    {"t": unix_s, "source": "us-east-1", "target": "eu-west-1", "table": "t",
     "p50_ms": 12.0, "p99_ms": 75.0, "max_ms": 80.3, "count": 42, "pending": 0,
     "window": "delta"}

``window`` is ``delta`` (percentiles and ``count`` over the changes applied
since the previous sample) or ``total`` (cumulative: the first sample, or a
replicator that serves no metrics).  Windowed percentiles are bucket upper
bounds (``LATENCY_BUCKETS_MS``); ``max_ms`` is exact when the cumulative
maximum grew during the window, otherwise its bucket's upper bound.  With no
change applied in the window the latency fields are null.  ``pending`` is
the source's count of changes the target has not acknowledged.  A region
whose replicator does not answer is left out of that sample.
"""

from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson
from prometheus_client.parser import text_string_to_metric_families

from meridian.cluster import limits
from meridian.cluster.control_client import ControlClient, ControlError

LATENCY_METRIC = "meridian_replication_latency_ms"


@dataclass
class _Snapshot:
    buckets: list[tuple[float, float]]  # (upper bound, cumulative count), ascending, +Inf last
    count: int
    max_ms: float


class LagSampler:
    """Samples one table's replication lag for every ordered pair of ``regions``."""

    def __init__(self, control_for: Callable[[str], ControlClient], regions: list[str], table: str,
                 path: Path | None = None) -> None:  # fmt: skip
        self._control_for = control_for
        self.regions = list(regions)
        self.table = table
        self.path = path
        self.samples: list[dict] = []
        self.unanswered = 0  # region looks that failed
        self._previous: dict[tuple[str, str], _Snapshot] = {}

    def sample(self) -> list[dict]:
        """Take one sample of every pair (blocking); append it to the file and to ``samples``.

        The regions are asked at once, each call bounded by ``limits.CHAOS_SAMPLE_CALL_TIMEOUT_S``, so
        a region that answers slowly (a replicator waiting on a dead node) delays no other.
        ``t`` is when the answers were in.
        """
        with ThreadPoolExecutor(len(self.regions), thread_name_prefix="lag-sample") as pool:
            answers = dict(zip(self.regions, pool.map(self._ask, self.regions)))
        t = time.time()
        shows = {region: a[0] for region, a in answers.items() if a is not None}
        histograms = {region: a[1] for region, a in answers.items() if a is not None}
        self.unanswered += sum(1 for a in answers.values() if a is None)
        lines = []
        for target in self.regions:
            # The target measures the lag, the source its backlog: a pair is sampled when either answered
            # (a dead replicator's peers still report what waits for it).
            show = shows.get(target)
            cumulative = {} if show is None else {
                s["origin"]: s for s in show["latency"] if (s.get("table") or str(s.get("table_id"))) == self.table
            }  # fmt: skip
            for source in self.regions:
                if source == target or (show is None and source not in shows):
                    continue
                pending = shows[source]["pending"].get(target) if source in shows else None
                line = self._line(t, source, target, cumulative.get(source), histograms.get(target), pending)
                lines.append(line)
        if self.path is not None and lines:
            with open(self.path, "ab") as out:
                out.write(b"".join(orjson.dumps(line) + b"\n" for line in lines))
        room = limits.CHAOS_SAMPLES_MAX - len(self.samples)
        self.samples += lines[: max(0, room)]
        return lines

    def _ask(self, region: str) -> tuple[dict, dict | None] | None:
        """(show, buckets by origin or None without metrics) of one region; None if it does not answer."""
        try:
            control = self._control_for(region)
            show = control.call(region, {"command": "show"}, timeout_s=limits.CHAOS_SAMPLE_CALL_TIMEOUT_S)
        except ControlError:
            return None
        try:
            text = control.call(region, {"command": "metrics"}, timeout_s=limits.CHAOS_SAMPLE_CALL_TIMEOUT_S)["text"]
        except ControlError:
            return show, None  # no metrics served: cumulative figures only
        return show, _buckets(text, self.table)

    def _line(self, t: float, source: str, target: str, summary: dict | None,
              histograms: dict | None, pending: int | None) -> dict:  # fmt: skip
        line = {"t": t, "source": source, "target": target, "table": self.table,
                "p50_ms": None, "p99_ms": None, "max_ms": None, "count": 0,
                "pending": None if pending is None else int(pending), "window": "total"}  # fmt: skip
        buckets = histograms.get(source) if histograms is not None else None
        if summary is None and buckets is None:
            return line  # nothing applied on this pair yet
        count = int(summary["count"]) if summary else int(buckets[-1][1])
        max_ms = float(summary["max_ms"]) if summary else 0.0
        now = _Snapshot(buckets or [], count, max_ms)
        before = self._previous.get((source, target))
        self._previous[(source, target)] = now
        if buckets is None or before is None or not before.buckets or not _grew(before.buckets, buckets):
            # First look, no metrics, or the replicator restarted (counts start over): cumulative.
            if summary:
                line.update(p50_ms=summary["p50_ms"], p99_ms=summary["p99_ms"], max_ms=max_ms, count=count)
            return line
        line["window"] = "delta"
        window = window_figures(before.buckets, now.buckets, before.max_ms, now.max_ms)
        line.update(window)
        return line


def window_figures(before: list[tuple[float, float]], now: list[tuple[float, float]],
                   max_before_ms: float, max_now_ms: float) -> dict:  # fmt: skip
    """p50, p99, max and count of the samples recorded between two cumulative bucket snapshots."""
    previous = dict(before)
    delta = [(bound, count - previous.get(bound, 0.0)) for bound, count in now]
    n = int(round(delta[-1][1])) if delta else 0
    if n <= 0:
        return {"count": 0, "p50_ms": None, "p99_ms": None, "max_ms": None}
    grew = max_now_ms > max_before_ms

    def value(bound: float) -> float:
        if math.isinf(bound) or grew and bound > max_now_ms:
            return max_now_ms  # beyond the last finite bucket: the maximum is the best bound known
        return bound

    def percentile(p: float) -> float:
        rank = math.ceil(p / 100 * n)
        for bound, seen in delta:
            if seen >= rank:
                return value(bound)
        return max_now_ms

    highest = next(bound for bound, seen in delta if seen >= n)
    return {
        "count": n, "p50_ms": percentile(50), "p99_ms": percentile(99),
        "max_ms": max_now_ms if grew else value(highest),
    }  # fmt: skip


def _grew(before: list[tuple[float, float]], now: list[tuple[float, float]]) -> bool:
    """Whether ``now`` can follow ``before`` (no bucket count went down: the same process's histogram)."""
    previous = dict(before)
    return all(count >= previous.get(bound, 0.0) for bound, count in now) and len(now) >= len(before)


def _buckets(text: str, table: str) -> dict[str, list[tuple[float, float]]]:
    """origin -> cumulative (upper bound, count) of ``table``'s latency histogram, from metrics text."""
    out: dict[str, list[tuple[float, float]]] = {}
    for family in text_string_to_metric_families(text):
        if family.name != LATENCY_METRIC:
            continue
        for sample in family.samples:
            if sample.name.endswith("_bucket") and sample.labels.get("TableName") == table:
                bound = float(sample.labels["le"])
                out.setdefault(sample.labels["SendingRegion"], []).append((bound, sample.value))
    for series in out.values():
        series.sort()
    return out
