"""query_scan's report: medians over the rounds, the Markdown tables, and the goals of issue 5."""

from __future__ import annotations

import argparse
from statistics import median

import report  # bench/ is on sys.path (query_scan.py puts it there)
from query_scan_measure import LoadRun, QueryRun, ScanRun
from query_scan_profile import PROFILED_TARGET

#: Throughput goal of issue 5: Meridian embedded vs dynalite.
GOAL_RATIO = 2.0
#: Scan memory counts as flat if what a scan adds to the server's RSS (its
#: peak during the scan minus its RSS just before) grows, from the smallest
#: table to the largest, by less than this fraction of the data added to the
#: table: a scan holding the table, or any share of it, would add at least
#: that much. (RSS before the scan grows too, while loading: memtables and
#: the block cache fill up; the tables show it separately.)
FLAT_RISE_OF_DATA_MAX = 0.10


def _by(runs: list, *keys: str) -> dict[tuple, list]:
    grouped: dict[tuple, list] = {}
    for run in runs:
        grouped.setdefault(tuple(getattr(run, k) for k in keys), []).append(run)
    return grouped


def _median(values) -> float | None:
    """The median, or None for no values (every run of a target read nothing)."""
    values = list(values)
    return median(values) if values else None


def _num(value: float | None, spec: str = ",.0f") -> str:
    return "—" if value is None else format(value, spec)


def query_summary(runs: list[QueryRun]) -> dict[str, dict]:
    out = {}
    for (target,), group in _by(runs, "target").items():
        out[target] = {
            "rounds": len(group),
            "pages_per_s": median(r.pages / r.seconds for r in group),
            "items_per_s": median(r.items / r.seconds for r in group),
            "latency_p50_ms": median(r.latency_p50_ms for r in group),
            "latency_p99_ms": median(r.latency_p99_ms for r in group),
            "server_cpu_us_per_page": _median(r.server_cpu_s / r.pages * 1e6 for r in group if r.pages),
            "server_cores": median(r.server_cpu_s / r.seconds for r in group),
            "client_cores": median(r.client_cpu_s / r.seconds for r in group),
            "client_cpu_us_per_page": _median(r.client_cpu_s / r.pages * 1e6 for r in group if r.pages),
            "errors": sum(r.errors for r in group),
            "pages_per_s_by_round": [r.pages / r.seconds for r in sorted(group, key=lambda r: r.round)],
        }
    return out


def scan_summary(runs: list[ScanRun]) -> dict[tuple[int, str], dict]:
    out = {}
    for (table_items, target), group in _by(runs, "table_items", "target").items():
        out[(table_items, target)] = {
            "rounds": len(group),
            "items_per_s": median(r.items / r.seconds for r in group),
            "seconds": median(r.seconds for r in group),
            "pages": median(r.pages for r in group),
            "server_cpu_us_per_1k_items": _median(r.server_cpu_s / r.items * 1e9 for r in group if r.items),
            "server_cores": median(r.server_cpu_s / r.seconds for r in group),
            "client_cores": median(r.client_cpu_s / r.seconds for r in group),
            "rss_before_mb": median(r.rss_before_kb for r in group) / 1024,
            "rss_max_mb": max(r.rss_max_kb for r in group) / 1024,
            "rss_rise_mb": max(r.rss_max_kb - r.rss_before_kb for r in group) / 1024,
            "incomplete": sum(r.items != table_items for r in group),
            "timed_out": sum(not r.finished for r in group),
            "items_per_s_by_round": [r.items / r.seconds for r in sorted(group, key=lambda r: r.round)],
        }
    return out


def _times(mine: float | None, theirs: float | None) -> str:
    return f"{mine / theirs:.2f}×" if mine is not None and theirs else "—"


def _header(cells: list[str], left: int) -> list[str]:
    return ["| " + " | ".join(cells) + " |", "|" + "|".join(["---"] * left + ["---:"] * (len(cells) - left)) + "|"]


def markdown(args: argparse.Namespace, queries: dict, scans: dict, loads: list[LoadRun]) -> dict[str, str]:
    peers = [p for p in report.PEERS if p in args.targets]
    tables = {}
    lines = _header(["Target", "pages/s", "items/s", "page p50 ms", "page p99 ms", "server CPU µs/page",
                     "server cores", "client cores", "client CPU µs/page"]
                    + [f"vs {report.PEERS[p]}" for p in peers] + ["errors"], 1)  # fmt: skip
    for target in args.targets:
        s = queries.get(target)
        if s is None:
            continue
        row = [target, f"{s['pages_per_s']:,.0f}", f"{s['items_per_s']:,.0f}", f"{s['latency_p50_ms']:.2f}",
               f"{s['latency_p99_ms']:.2f}", _num(s["server_cpu_us_per_page"]), f"{s['server_cores']:.2f}",
               f"{s['client_cores']:.2f}", _num(s["client_cpu_us_per_page"])]  # fmt: skip
        row += [_times(s["pages_per_s"], queries.get(p, {}).get("pages_per_s")) for p in peers]
        lines.append("| " + " | ".join(row + [str(s["errors"])]) + " |")
    tables["query"] = "\n".join(lines)

    lines = _header(["Table items", "Target", "items/s", "scan s", "pages", "server CPU µs/1k items",
                     "server cores", "client cores", "RSS before MB", "max RSS during scan MB", "scan's rise MB"]
                    + [f"vs {report.PEERS[p]}" for p in peers] + ["complete"], 2)  # fmt: skip
    for size in args.scan_sizes:
        for target in args.targets:
            s = scans.get((size, target))
            if s is None:
                continue
            row = [f"{size:,}", target, f"{s['items_per_s']:,.0f}", f"{s['seconds']:.1f}", f"{s['pages']:,.0f}",
                   _num(s["server_cpu_us_per_1k_items"]), f"{s['server_cores']:.2f}", f"{s['client_cores']:.2f}",
                   f"{s['rss_before_mb']:,.0f}", f"{s['rss_max_mb']:,.0f}", f"{s['rss_rise_mb']:,.1f}"]  # fmt: skip
            row += [_times(s["items_per_s"], scans.get((size, p), {}).get("items_per_s")) for p in peers]
            if not s["incomplete"]:
                row.append("yes")
            elif s["timed_out"]:
                row.append(f"no: timed out after {args.scan_timeout_s:g} s ({s['timed_out']} of {s['rounds']} rounds)")
            else:
                row.append(f"no ({s['incomplete']} of {s['rounds']} rounds)")
            lines.append("| " + " | ".join(row) + " |")
    tables["scan"] = "\n".join(lines)

    lines = _header(["Table items", "Target", "items loaded", "load s", "items/s", "server cores", "idle after s"], 2)
    for run in loads:
        lines.append(f"| {run.table_items:,} | {run.target} | {run.items:,} | {run.seconds:.1f} | "
                     f"{run.items / run.seconds:,.0f} | {run.server_cpu_s / run.seconds:.2f} | {run.settle_s:.1f} |")  # fmt: skip
    tables["load"] = "\n".join(lines)

    lines = _header(["Measure", "Target"] + [f"round {i + 1}" for i in range(args.rounds)], 2)
    for target in args.targets:
        if target in queries:
            cells = [f"{v:,.0f}" for v in queries[target]["pages_per_s_by_round"]]
            lines.append("| " + " | ".join(["Query pages/s", target, *cells]) + " |")
    for size in args.scan_sizes:
        for target in args.targets:
            if (size, target) in scans:
                cells = [f"{v:,.0f}" for v in scans[(size, target)]["items_per_s_by_round"]]
                lines.append("| " + " | ".join([f"Scan items/s, {size:,}", target, *cells]) + " |")
    tables["rounds"] = "\n".join(lines)
    return tables


def goals(args: argparse.Namespace, queries: dict, scans: dict) -> tuple[str, dict[str, bool | None]]:
    """The issue's goals against this run; ``met`` is None where the run cannot tell."""
    me, peer, full = PROFILED_TARGET, "dynalite", args.items
    query_ratio = _ratio(queries.get(me, {}).get("pages_per_s"), queries.get(peer, {}).get("pages_per_s"))
    scan_ratio = _ratio(scans.get((full, me), {}).get("items_per_s"), scans.get((full, peer), {}).get("items_per_s"))
    met: dict[str, bool | None] = {
        "Query": None if query_ratio is None else query_ratio >= GOAL_RATIO,
        "Scan": None if scan_ratio is None else scan_ratio >= GOAL_RATIO,
    }
    sizes = [size for size in args.scan_sizes if (size, me) in scans]
    if len(sizes) >= 2:
        first, last = scans[(sizes[0], me)], scans[(sizes[-1], me)]
        data_added_mb = (sizes[-1] - sizes[0]) * args.item_bytes / 2**20
        rise_growth_mb = last["rss_rise_mb"] - first["rss_rise_mb"]
        met["Scan memory"] = rise_growth_mb < FLAT_RISE_OF_DATA_MAX * data_added_mb
        memory = (
            "scan's rise " + " / ".join(f"{scans[(n, me)]['rss_rise_mb']:.1f}" for n in sizes)
            + " MB at " + " / ".join(f"{n:,}" for n in sizes) + f" items ({rise_growth_mb:+.1f} MB while the data grew "
            + f"{data_added_mb:,.0f} MB); max RSS " + " / ".join(f"{scans[(n, me)]['rss_max_mb']:,.0f}" for n in sizes)
            + " MB"
        )
    else:
        met["Scan memory"], memory = None, "needs two table sizes"
    rows = [
        (f"embedded Query ≥ {GOAL_RATIO:g}× dynalite (pages/s)", _ratio_text(query_ratio), met["Query"]),
        (f"embedded Scan ≥ {GOAL_RATIO:g}× dynalite (items/s, {full:,} items)", _ratio_text(scan_ratio), met["Scan"]),
        (f"Scan memory flat (the scan's RSS rise grows < {FLAT_RISE_OF_DATA_MAX:.0%} of the data added)", memory,
         met["Scan memory"]),
    ]  # fmt: skip
    lines = _header(["goal", "measured", "met?"], 2)
    lines += [f"| {goal} | {measured} | {'—' if ok is None else 'yes' if ok else 'no'} |" for goal, measured, ok in rows]
    return "\n".join(lines), met


def _ratio(mine: float | None, theirs: float | None) -> float | None:
    return mine / theirs if mine is not None and theirs else None


def _ratio_text(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}×"
