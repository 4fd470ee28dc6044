"""The report's PNG plots, drawn with matplotlib's Agg backend (no display needed).

Figures are built with ``matplotlib.figure.Figure`` and an explicit Agg
canvas, never through ``pyplot``'s global state. Each function returns
None when the run dir holds nothing it could plot; the report then says
what was not recorded.
"""

from __future__ import annotations

import math
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from meridian.cluster import limits

from .figures import latency_samples, pairs_of, pending_series, percentile, time_bins
from .rundir import RunData

#: Pixel density of every PNG.
PLOT_DPI = 110
#: Bin width of the read-latency-over-time panel.
READ_LATENCY_BIN_S = 5.0
#: A latency axis turns logarithmic when its largest value exceeds the median by this factor.
LOG_SCALE_RATIO = 20.0

_GAP = math.nan

_FAULT_COLOURS = ("#d62728", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")


def _value(v: float | None) -> float:
    return _GAP if v is None else v


def _colours(names: list[str]) -> dict[str, str]:
    palette = [f"C{i}" for i in range(10)]
    return {name: palette[i % len(palette)] for i, name in enumerate(names)}


def _pair_name(pair: tuple[str, str]) -> str:
    return f"{pair[0]} → {pair[1]}"


def _mark_faults(axes, data: RunData, *, label: bool) -> None:
    """Shade each fault window on every axis; name them on the first axis."""
    kinds = sorted({w.fault for w in data.faults})
    colour = {kind: _FAULT_COLOURS[i % len(_FAULT_COLOURS)] for i, kind in enumerate(kinds)}
    legend_done: set[str] = set()
    for i, ax in enumerate(axes):
        for w in data.faults:
            start, end = w.start - data.t0, w.end - data.t0
            name = w.fault if (i == 0 and w.fault not in legend_done) else None
            if name:
                legend_done.add(w.fault)
            if end - start < 0.05:
                ax.axvline(start, color=colour[w.fault], alpha=0.6, linewidth=1.5, label=name)
            else:
                ax.axvspan(start, end, color=colour[w.fault], alpha=0.13, label=name,
                           hatch=None if w.reverted else "//", linewidth=0)
                ax.axvline(start, color=colour[w.fault], alpha=0.5, linewidth=0.8)
                if w.reverted:
                    ax.axvline(end, color=colour[w.fault], alpha=0.5, linewidth=0.8, linestyle=":")
        if i == 0 and label and len(data.faults) <= limits.FAULT_LABELS_MAX:
            for n, w in enumerate(data.faults):
                # Staggered down the axis so neighbouring labels do not overlap.
                ax.text(w.start - data.t0, 0.98 - 0.07 * (n % 4), f" {w.fault} {w.target}", va="top", ha="left",
                        fontsize=7, color=colour[w.fault], transform=ax.get_xaxis_transform(),
                        bbox={"facecolor": "white", "alpha": 0.7, "edgecolor": "none", "pad": 1})


def _save(figure: Figure, path: Path) -> Path:
    FigureCanvasAgg(figure)
    figure.savefig(path, dpi=PLOT_DPI)
    return path


def _maybe_log(ax, values: list[float]) -> None:
    positive = [v for v in values if v > 0]
    median = percentile(positive, 50)
    if median and max(positive) > LOG_SCALE_RATIO * median:
        ax.set_yscale("log")


def plot_lag(data: RunData, path: Path) -> Path | None:
    """Replication latency p50/p99 per pair over time, pending changes below, faults shaded."""
    if not data.lag:
        return None
    pairs = pairs_of(data.lag)
    colours = _colours([_pair_name(p) for p in pairs])
    figure = Figure(figsize=(10, 6.2), layout="constrained")
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=(3, 2))
    plotted: list[float] = []
    for pair in pairs:
        # A sample without changes (a cut link) is a gap in the line, not a slope across it.
        samples = latency_samples(data.lag, pair)
        xs = [s.t - data.t0 for s in samples]
        name = _pair_name(pair)
        p50 = [_value(s.p50_ms) if s.count else _GAP for s in samples]
        p99 = [_value(s.p99_ms) if s.count else _GAP for s in samples]
        top.plot(xs, p50, color=colours[name], linewidth=1.6, marker=".", markersize=3, label=f"{name} p50")
        top.plot(xs, p99, color=colours[name], linewidth=1.0, linestyle="--", label=f"{name} p99")
        plotted += [v for v in p50 + p99 if not math.isnan(v)]
        pending = pending_series(data.lag, pair)
        if pending:
            bottom.step([t - data.t0 for t, _ in pending], [n for _, n in pending], where="post",
                        color=colours[name], label=name)
    _maybe_log(top, plotted)
    window = "windowed" if any(s.window == "delta" for s in data.lag) else "cumulative since start"
    top.set_title(f"Replication latency per region pair ({window})")
    top.set_ylabel("latency (ms)")
    top.grid(True, alpha=0.3)
    bottom.set_ylabel("pending changes")
    bottom.set_xlabel("seconds since start")
    bottom.grid(True, alpha=0.3)
    _mark_faults((top, bottom), data, label=True)
    top.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    if any(pending_series(data.lag, p) for p in pairs):
        bottom.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _save(figure, path)


def _per_second(counts, last_second: int) -> list[int]:
    return [counts.get(s, 0) for s in range(last_second + 1)]


def plot_throughput(data: RunData, path: Path) -> Path | None:
    """Requests and errors per second per region (1 s bins), faults shaded."""
    if not data.history:
        return None
    regions = sorted(data.history)
    colours = _colours(regions)
    last = max((max(t.requests_by_second, default=0) for t in data.history.values()), default=0)
    last = max(last, math.ceil(data.duration_s) - 1)
    seconds = list(range(last + 1))
    figure = Figure(figsize=(10, 5.6), layout="constrained")
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=(3, 2))
    for region in regions:
        traffic = data.history[region]
        top.step(seconds, _per_second(traffic.requests_by_second, last), where="post", color=colours[region],
                 label=f"{region} requests")
        top.step(seconds, _per_second(traffic.writes_by_second, last), where="post", color=colours[region],
                 linestyle=":", linewidth=1.0, label=f"{region} of which writes")
        bottom.step(seconds, _per_second(traffic.errors_by_second, last), where="post", color=colours[region],
                    label=region)
    top.set_title("Client throughput and errors per region (1 s bins)")
    top.set_ylabel("requests / s")
    top.grid(True, alpha=0.3)
    bottom.set_ylabel("errors / s")
    bottom.set_xlabel("seconds since start")
    bottom.grid(True, alpha=0.3)
    top.set_ylim(bottom=0)
    bottom.set_ylim(bottom=0, top=max(1.0, bottom.get_ylim()[1]))
    _mark_faults((top, bottom), data, label=True)
    top.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    bottom.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _save(figure, path)


def plot_throttles(data: RunData, path: Path) -> Path | None:
    """Throttled requests per second per region against the requests sent (1 s bins), faults shaded."""
    if not data.history or not any(t.throttled for t in data.history.values()):
        return None
    regions = sorted(data.history)
    colours = _colours(regions)
    last = max(max(t.requests_by_second, default=0) for t in data.history.values())
    last = max(last, math.ceil(data.duration_s) - 1)
    seconds = list(range(last + 1))
    figure = Figure(figsize=(10, 5.6), layout="constrained")
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=(3, 2))
    for region in regions:
        traffic = data.history[region]
        sent = _per_second(traffic.requests_by_second, last)
        throttled = _per_second(traffic.throttled_by_second, last)
        top.step(seconds, throttled, where="post", color=colours[region], linewidth=1.8, label=f"{region} throttled")
        top.step(seconds, sent, where="post", color=colours[region], linestyle=":", linewidth=1.0,
                 label=f"{region} requests")
        share = [100.0 * n / total if total else _GAP for n, total in zip(throttled, sent)]
        bottom.step(seconds, share, where="post", color=colours[region], label=region)
    top.set_title("Throttled requests per region (1 s bins)")
    top.set_ylabel("requests / s")
    top.grid(True, alpha=0.3)
    top.set_ylim(bottom=0)
    bottom.set_ylabel("throttled (% of requests)")
    bottom.set_xlabel("seconds since start")
    bottom.set_ylim(0, 100)
    bottom.grid(True, alpha=0.3)
    _mark_faults((top, bottom), data, label=True)
    top.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    bottom.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _save(figure, path)


def _cdf(ax, values: list[float], total: float, **style) -> None:
    """Fraction of ``total`` at or below each value: unseen probes keep the curve below 1."""
    ordered = sorted(values)
    ax.step(ordered, [(i + 1) / total for i in range(len(ordered))], where="post", **style)


def plot_read_latency(data: RunData, path: Path) -> Path | None:
    """Local get latency per region against cross-region visibility per pair: CDF and over time."""
    local = {r: list(t.get_latency.items) for r, t in (data.history or {}).items() if t.get_latency.items}
    remote = {p: list(v.visible.items) for p, v in (data.visibility or {}).items() if v.visible.items}
    if not local and not remote:
        return None
    names = [f"local {r}" for r in sorted(local)] + [f"{_pair_name(p)} visible" for p in sorted(remote)]
    colours = _colours(names)
    figure = Figure(figsize=(11, 4.8), layout="constrained")
    cdf, over_time = figure.subplots(1, 2, width_ratios=(1, 1.3))
    all_values: list[float] = []
    series = [(f"local {r}", local[r], "-") for r in sorted(local)]
    series += [(f"{_pair_name(p)} visible", remote[p], "--") for p in sorted(remote)]
    unseen = {f"{_pair_name(p)} visible": v.not_seen for p, v in (data.visibility or {}).items()}
    seen_counts = {f"local {r}": t.get_latency.seen for r, t in (data.history or {}).items()}
    seen_counts |= {f"{_pair_name(p)} visible": v.visible.seen for p, v in (data.visibility or {}).items()}
    for name, samples, style in series:
        values = [ms for _, ms in samples]
        all_values += values
        note = f" ({unseen[name]} not seen)" if unseen.get(name) else ""
        # Sampled (reservoir) values stand for every value seen; unseen probes add to the total only.
        seen = seen_counts[name]
        total = len(values) * (seen + unseen.get(name, 0)) / seen
        _cdf(cdf, [max(v, 0.01) for v in values], total, color=colours[name], linestyle=style, label=name + note)
        # Every bin of the run, empty ones as gaps (probes unseen during a cut leave no value).
        held = dict(time_bins(samples, data.t0, READ_LATENCY_BIN_S))
        starts = [i * READ_LATENCY_BIN_S for i in range(math.ceil(data.duration_s / READ_LATENCY_BIN_S) or 1)]
        starts = sorted(set(starts) | set(held))
        xs = [start + READ_LATENCY_BIN_S / 2 for start in starts]
        over_time.plot(xs, [_value(percentile(held.get(x, []), 50)) for x in starts], color=colours[name],
                       linestyle=style, marker=".", label=f"{name} p50")
        over_time.plot(xs, [_value(percentile(held.get(x, []), 99)) for x in starts], color=colours[name],
                       linestyle=style, linewidth=0.8, alpha=0.5)
    cdf.set_xscale("log")
    cdf.set_xlabel("milliseconds (log)")
    cdf.set_ylabel("fraction of requests / probes")
    cdf.set_title("Local read latency vs cross-region visibility (CDF)")
    cdf.grid(True, alpha=0.3, which="both")
    cdf.legend(fontsize=7, loc="upper left")
    _maybe_log(over_time, all_values)
    over_time.set_title(f"Over time: p50 (marked) and p99 (faint), {READ_LATENCY_BIN_S:g} s bins")
    over_time.set_xlabel("seconds since start")
    over_time.set_ylabel("milliseconds")
    over_time.grid(True, alpha=0.3)
    _mark_faults((over_time,), data, label=False)
    over_time.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _save(figure, path)
