"""What ``meridian demo dax`` shows, drawn with rich from a ``DaxDemoState`` (no I/O here).

    +- Meridian DAX demo: GetItem through DAX vs straight to the table ------+
    | table meridian-demo-dax | 1,000 items | 00:12 of 00:30                  |
    |  path                         reads  reads/s  p50 ms  p99 ms  ...      |
    |  DAX client  dax://...:8111   5,210    430.2   0.41    0.90   ...      |
    |  boto3       http://...:8000  5,210    430.2   1.35    2.80   ...      |
    | DAX p50 is 3.3x the direct path's speed | item cache hit rate 99.8 % |
    +------------------------------------------------------------------------+

The same figures as one plain line (``plain_line``, for logs and tests) and
as the closing summary (``summary_table``, ``summary_record``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from .dax_stats import LatencyFigures

DASH = "-"


@dataclass
class DaxDemoState:
    table: str
    items: int
    dax_url: str
    http_url: str
    duration_s: float | None
    elapsed_s: float = 0.0
    dax: LatencyFigures | None = None
    direct: LatencyFigures | None = None
    hit_rate_window: float | None = None
    hit_rate_total: float | None = None
    hits: int = 0
    misses: int = 0
    hit_rate_unavailable: str | None = None
    notes: list[str] = field(default_factory=list)


def _ms(value: float | None) -> str:
    return DASH if value is None else f"{value:.3f}" if value < 1 else f"{value:.2f}"


def _percent(rate: float | None) -> str:
    return DASH if rate is None else f"{rate * 100:.1f} %"


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60:02d}:{seconds % 60:02d}"


def speedup(dax: LatencyFigures | None, direct: LatencyFigures | None, *, total: bool = False) -> float | None:
    """How many times faster the DAX path's p50 is than the direct path's (below 1: slower)."""
    if dax is None or direct is None:
        return None
    fast, slow = (dax.total_p50_ms, direct.total_p50_ms) if total else (dax.p50_ms, direct.p50_ms)
    return slow / fast if fast and slow else None


def _path_rows(table: Table, state: DaxDemoState) -> None:
    for name, url, figures, style in (("DAX client", state.dax_url, state.dax, "bold green"),
                                      ("boto3 (direct)", state.http_url, state.direct, "bold blue")):  # fmt: skip
        if figures is None:
            table.add_row(Text(name, style=style), url, *[DASH] * 7)
            continue
        table.add_row(
            Text(name, style=style), url, f"{figures.reads:,}", f"{figures.reads_per_s:,.1f}",
            _ms(figures.p50_ms), _ms(figures.p99_ms), _ms(figures.total_p50_ms), _ms(figures.total_p99_ms),
            Text(f"{figures.errors:,}", style="red" if figures.errors else ""),
        )  # fmt: skip


def _verdict(state: DaxDemoState) -> Text:
    times = speedup(state.dax, state.direct)
    line = Text()
    if times is None:
        line.append("waiting for reads on both paths", style="dim")
    elif times >= 1:
        line.append(f"DAX p50 is {times:.1f}x faster", style="bold green")
        line.append(" than GetItem straight to the table (last seconds)")
    else:
        line.append(f"DAX p50 is {1 / times:.1f}x slower", style="bold yellow")
        line.append(" than GetItem straight to the table (last seconds)")
    return line


def _hit_line(state: DaxDemoState) -> Text:
    line = Text("item cache hit rate ")
    if state.hit_rate_unavailable:
        line.append(f"unknown ({state.hit_rate_unavailable})", style="dim")
    else:
        line.append(_percent(state.hit_rate_window), style="bold")
        line.append(f" now, {_percent(state.hit_rate_total)} since start "
                    f"({state.hits:,} hits, {state.misses:,} misses)")  # fmt: skip
    return line


def render(state: DaxDemoState) -> RenderableType:
    head = Text(f"table {state.table} | {state.items:,} items | ")
    head.append(_clock(state.elapsed_s) + (f" of {_clock(state.duration_s)}" if state.duration_s else ""))
    head.append("  (Ctrl-C stops)", style="dim")
    table = Table(expand=True, box=None, header_style="bold")
    for column, justify in (("path", "left"), ("endpoint", "left"), ("reads", "right"), ("reads/s", "right"),
                            ("p50 ms", "right"), ("p99 ms", "right"), ("p50 ms total", "right"),
                            ("p99 ms total", "right"), ("errors", "right")):  # fmt: skip
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    _path_rows(table, state)
    parts: list[RenderableType] = [head, Text(""), table, Text(""), _verdict(state), _hit_line(state)]
    parts += [Text(note, style="dim") for note in state.notes[-3:]]
    return Panel(Group(*parts), title="Meridian DAX demo: GetItem through DAX vs straight to the table",
                 title_align="left")  # fmt: skip


def plain_line(state: DaxDemoState) -> str:
    """One line of the live figures (no terminal: logs, tests)."""
    def path(name: str, f: LatencyFigures | None) -> str:
        if f is None:
            return f"{name} -"
        return f"{name} {f.reads} reads p50 {_ms(f.p50_ms)} ms p99 {_ms(f.p99_ms)} ms"

    hit = "unknown" if state.hit_rate_unavailable else _percent(state.hit_rate_window)
    return (f"[{_clock(state.elapsed_s)}] {path('dax', state.dax)} | {path('direct', state.direct)} | "
            f"item cache hit rate {hit}")  # fmt: skip


def summary_record(state: DaxDemoState) -> dict:
    """The run's closing figures (``--summary-json``)."""
    return {
        "table": state.table, "items": state.items, "dax_url": state.dax_url, "http_url": state.http_url,
        "elapsed_s": round(state.elapsed_s, 3),
        "dax": asdict(state.dax) if state.dax else None,
        "direct": asdict(state.direct) if state.direct else None,
        "speedup_p50": speedup(state.dax, state.direct, total=True),
        "item_cache": {"hit_rate": state.hit_rate_total, "hits": state.hits, "misses": state.misses,
                       "unavailable": state.hit_rate_unavailable},
    }  # fmt: skip


def summary_table(state: DaxDemoState) -> RenderableType:
    """The closing summary: totals per path, side by side."""
    table = Table(title=f"GetItem, {_clock(state.elapsed_s)}, {state.items:,} items", header_style="bold")
    table.add_column("")
    table.add_column("DAX client", justify="right", style="green")
    table.add_column("boto3 (direct)", justify="right", style="blue")
    dax, direct = state.dax, state.direct

    def row(label: str, pick) -> None:
        table.add_row(label, pick(dax) if dax else DASH, pick(direct) if direct else DASH)

    row("reads", lambda f: f"{f.reads:,}")
    row("errors", lambda f: f"{f.errors:,}")
    row("p50 ms", lambda f: _ms(f.total_p50_ms))
    row("p99 ms", lambda f: _ms(f.total_p99_ms))
    row("mean ms", lambda f: _ms(f.mean_ms))
    times = speedup(dax, direct, total=True)
    verdict = DASH if times is None else f"{times:.2f}x" if times >= 1 else f"{times:.2f}x (DAX slower)"
    hit = "unknown" if state.hit_rate_unavailable else (
        f"{_percent(state.hit_rate_total)} ({state.hits:,} hits, {state.misses:,} misses)")
    return Group(table, Text(f"DAX p50 speed-up over the direct path: {verdict}"),
                 Text(f"item cache hit rate: {hit}"))  # fmt: skip
