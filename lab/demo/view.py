"""What the dashboard shows, drawn with rich from a ``DashboardState`` (no I/O here).

    +- Meridian replication demo ---------------------------------------+
    | table meridian-demo | 2 regions | 00:42 of 01:00 | run dir ...      |
    | Replication, last 10 s                                             |
    |  #  link                    state   link ms  p50 ms  p99 ms  ...   |
    |  1  us-east-1 -> eu-west-1  up         38.0    41.2    74.9  ...   |
    | Workload                                                          |
    |  region     writes/s  reads/s  put p50 ms  get p50 ms  errors ...  |
    | keys: 1-9 / arrows select, c cut, h heal, s slow +100 ms, ...      |
    +--------------------------------------------------------------------+
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from rich.console import Group, RenderableType
from rich.layout import Layout
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from meridian.cluster import limits

from .links import SLOW_STEP_MS
from .sampler import PairView
from .stats import RegionRates

DASH = "-"


@dataclass
class DashboardState:
    table: str
    regions: list[str]
    window_s: float
    duration_s: float | None
    run_dir: str
    keys: bool
    elapsed_s: float = 0.0
    pairs: list[PairView] = field(default_factory=list)
    rates: list[RegionRates] = field(default_factory=list)
    selected: int = 0
    messages: deque[str] = field(default_factory=lambda: deque(maxlen=limits.DEMO_MESSAGES_MAX))
    control_errors: int = 0
    workload_errors: dict[str, int] = field(default_factory=dict)

    def note(self, message: str) -> None:
        self.messages.append(message)

    def select(self, index: int) -> None:
        if self.pairs:
            self.selected = index % len(self.pairs)

    @property
    def selected_pair(self) -> PairView | None:
        return self.pairs[self.selected] if 0 <= self.selected < len(self.pairs) else None


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60:02d}:{seconds % 60:02d}"


def _ms(value: float | None) -> str:
    return DASH if value is None else f"{value:.1f}"


def _state(pair: PairView) -> Text:
    if pair.cut:
        return Text("CUT", style="bold red")
    if pair.paused:
        return Text("paused", style="yellow")
    return Text("up", style="green")


def _replication_table(state: DashboardState) -> Table:
    table = Table(
        title=f"Replication of the changes applied in the last {state.window_s:g} s",
        caption="mean: exact; p50/p99: estimated inside the histogram buckets (25, 50, 75, 100, 125 ... ms)",
        title_justify="left", caption_justify="left", expand=True,
    )  # fmt: skip
    table.add_column("#", justify="right", width=3)
    table.add_column("link")
    table.add_column("state")
    table.add_column("link ms", justify="right")
    table.add_column("mean ms", justify="right")
    table.add_column("p50 ms", justify="right")
    table.add_column("p99 ms", justify="right")
    table.add_column("applied/s", justify="right")
    table.add_column("pending", justify="right")
    for i, pair in enumerate(state.pairs):
        window = pair.window
        has_data = window is not None and window.count > 0
        table.add_row(
            f"{i + 1}",
            f"{pair.source} -> {pair.target}",
            _state(pair),
            f"{pair.latency_ms:g}",
            _ms(window.mean_ms) if has_data else DASH,
            _ms(window.p50_ms) if has_data else DASH,
            _ms(window.p99_ms) if has_data else DASH,
            f"{window.rate_per_s:.1f}" if window is not None else DASH,
            DASH if pair.pending is None else str(pair.pending),
            style="reverse" if state.keys and i == state.selected else None,
        )
    if not state.pairs:
        table.add_row("", "waiting for the replicators...", *[""] * 7)
    return table


def _workload_table(state: DashboardState) -> Table:
    table = Table(title="Workload (this process)", title_justify="left", expand=True)
    for name in ("region", "writes/s", "reads/s", "put p50 ms", "get p50 ms", "errors/s", "errors"):
        table.add_column(name, justify="left" if name == "region" else "right")
    for r in state.rates:
        table.add_row(
            r.region, f"{r.writes_per_s:.1f}", f"{r.reads_per_s:.1f}", _ms(r.put_p50_ms), _ms(r.get_p50_ms),
            f"{r.errors_per_s:.1f}", Text(str(r.errors), style="red" if r.errors else ""),
        )  # fmt: skip
    return table


def _footer(state: DashboardState) -> RenderableType:
    lines = []
    if state.keys:
        selected = state.selected_pair
        chosen = f"{selected.source} -> {selected.target}" if selected else "none"
        lines.append(Text.assemble(
            ("keys: ", "bold"), "1-9 or arrows select (", (chosen, "bold"), "), ",
            ("c", "bold"), " cut, ", ("h", "bold"), " heal, ", ("s", "bold"), f" slow +{SLOW_STEP_MS:g} ms, ",
            ("r", "bold"), " reset, ", ("q", "bold"), " quit",
        ))  # fmt: skip
    else:
        lines.append(Text("keys off (--no-keys): Ctrl-C stops", style="dim"))
    for message in state.messages:
        lines.append(Text(message, style="dim"))
    return Group(*lines)


def render(state: DashboardState) -> RenderableType:
    length = f" of {_clock(state.duration_s)}" if state.duration_s else ""
    header = Text.assemble(
        ("table ", "dim"), state.table, ("  |  regions ", "dim"), ", ".join(state.regions),
        ("  |  ", "dim"), f"{_clock(state.elapsed_s)}{length}", ("  |  run dir ", "dim"), state.run_dir,
    )  # fmt: skip
    # Heights in lines: a table is its title, caption, 3 lines of header, its rows and a bottom border.
    sizes = {
        "header": 1,
        "replication": 6 + max(1, len(state.pairs)),
        "workload": 5 + max(1, len(state.rates)),
        "footer": 1 + limits.DEMO_MESSAGES_MAX,
    }
    layout = Layout()
    layout.split_column(
        Layout(header, name="header", size=sizes["header"]),
        Layout(_replication_table(state), name="replication", size=sizes["replication"]),
        Layout(_workload_table(state), name="workload", size=sizes["workload"]),
        Layout(_footer(state), name="footer", size=sizes["footer"]),
    )
    return Panel(layout, title="Meridian replication demo", height=sum(sizes.values()) + 2)
