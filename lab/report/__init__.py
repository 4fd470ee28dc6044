"""``meridian report RUN_DIR``: plots and a summary of a load, scenario or demo run.

Reads the run dir's files (``run.json``, ``history.jsonl``,
``visibility.jsonl``, ``lag.jsonl``, ``faults.jsonl``, ``checks.json``; each
optional) and writes next to them ``lag.png``, ``throughput.png``,
``read_latency.png``, ``throttles.png`` (when a request was throttled),
``report.md`` and ``report.html`` (which shows the PNGs). Needs matplotlib
(``pip install 'meridian-db[report]'``).

Modules: ``rundir`` reads, ``figures`` computes, ``plots`` draws,
``summary`` writes the text, ``document`` renders it as Markdown and HTML.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

REPORT_MD = "report.md"
REPORT_HTML = "report.html"
LAG_PNG = "lag.png"
THROUGHPUT_PNG = "throughput.png"
READ_LATENCY_PNG = "read_latency.png"
THROTTLES_PNG = "throttles.png"


@dataclass(frozen=True, slots=True)
class ReportFiles:
    markdown: Path
    html: Path
    images: list[Path]


def add_arguments(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="plots (PNG, HTML) and a Markdown summary of a run dir")
    p.add_argument("run_dir", metavar="RUN_DIR", help="what a load, chaos or demo run wrote")


def write_report(run_dir: str | Path) -> ReportFiles:
    """Write the report's files into ``run_dir``; raises FileNotFoundError if it is not a directory."""
    from . import plots, summary
    from .document import to_html, to_markdown
    from .rundir import read_run_dir

    data = read_run_dir(run_dir)
    out = data.path
    made = {
        "Replication latency per region pair": plots.plot_lag(data, out / LAG_PNG),
        "Throughput and errors per region": plots.plot_throughput(data, out / THROUGHPUT_PNG),
        "Local vs cross-region read latency": plots.plot_read_latency(data, out / READ_LATENCY_PNG),
    }
    throttles = plots.plot_throttles(data, out / THROTTLES_PNG)
    if throttles is not None:  # a run without throttles has no such plot, and that is not news
        made["Throttled requests per region"] = throttles
    for stale in {LAG_PNG, THROUGHPUT_PNG, READ_LATENCY_PNG, THROTTLES_PNG} - {p.name for p in made.values() if p}:
        (out / stale).unlink(missing_ok=True)  # from an earlier report of a run dir that has changed
    doc = summary.build(data, {title: path.name if path else None for title, path in made.items()})
    (out / REPORT_MD).write_text(to_markdown(doc), encoding="utf-8")
    (out / REPORT_HTML).write_text(to_html(doc), encoding="utf-8")
    return ReportFiles(out / REPORT_MD, out / REPORT_HTML, [p for p in made.values() if p])


def run(ns: argparse.Namespace) -> int:
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        print("meridian report needs matplotlib: pip install 'meridian-db[report]'", file=sys.stderr)
        return 2
    try:
        files = write_report(ns.run_dir)
    except FileNotFoundError as exc:
        print(f"meridian report: {exc}", file=sys.stderr)
        return 2
    for path in [files.markdown, files.html, *files.images]:
        print(path)
    return 0
