"""Turn the raw wrk runs into medians, ratios and Markdown tables.

Ratios are throughput ratios computed from per-target medians of one run:
``target req/s / peer req/s`` (above 1 means the target is faster). They are
meaningful only within one run, where every target met the same machine
state; absolute numbers drift on a shared machine.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from statistics import median

#: The peers every target is compared against, with their display names.
PEERS = {"dynalite": "dynalite", "dynoxide": "Dynoxide", "moto": "moto"}


@dataclass(frozen=True)
class Run:
    """One wrk run against one target."""

    round: int
    op: str
    target: str
    requests: int
    duration_s: float
    requests_per_s: float
    latency_p50_us: float
    latency_p99_us: float
    errors: int
    server_cpu_s: float
    wrk_cpu_s: float

    @property
    def server_cpu_us_per_request(self) -> float | None:
        return self.server_cpu_s / self.requests * 1e6 if self.requests else None

    def to_json(self) -> dict:
        return {**asdict(self), "server_cpu_us_per_request": self.server_cpu_us_per_request}


@dataclass(frozen=True)
class Summary:
    """Medians over the rounds of one (target, op)."""

    target: str
    op: str
    rounds: int
    requests_per_s: float
    latency_p50_us: float
    latency_p99_us: float
    server_cpu_us_per_request: float | None
    server_cores: float
    wrk_cores: float
    errors: int
    requests_per_s_by_round: tuple[float, ...]


def summarize(runs: Iterable[Run]) -> list[Summary]:
    grouped: dict[tuple[str, str], list[Run]] = {}
    for run in runs:
        grouped.setdefault((run.target, run.op), []).append(run)
    summaries = []
    for (target, op), group in grouped.items():
        group.sort(key=lambda r: r.round)
        cpu = [r.server_cpu_us_per_request for r in group if r.server_cpu_us_per_request is not None]
        summaries.append(
            Summary(
                target=target,
                op=op,
                rounds=len(group),
                requests_per_s=median(r.requests_per_s for r in group),
                latency_p50_us=median(r.latency_p50_us for r in group),
                latency_p99_us=median(r.latency_p99_us for r in group),
                server_cpu_us_per_request=median(cpu) if cpu else None,
                server_cores=median(r.server_cpu_s / r.duration_s for r in group),
                wrk_cores=median(r.wrk_cpu_s / r.duration_s for r in group),
                errors=sum(r.errors for r in group),
                requests_per_s_by_round=tuple(r.requests_per_s for r in group),
            )
        )
    return summaries


def ratio(summaries: Sequence[Summary], target: str, op: str, peer: str) -> float | None:
    by_key = {(s.target, s.op): s for s in summaries}
    mine, theirs = by_key.get((target, op)), by_key.get((peer, op))
    if mine is None or theirs is None or theirs.requests_per_s == 0:
        return None
    return mine.requests_per_s / theirs.requests_per_s


def _ms(us: float) -> str:
    return f"{us / 1000:.2f}"


def _times(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}×"


def markdown_table(summaries: Sequence[Summary], target_order: Sequence[str], op_order: Sequence[str]) -> str:
    """The headline table: one row per (op, target), ratios against each peer present."""
    peers = [p for p in PEERS if any(s.target == p for s in summaries)]
    header = ["Op", "Target", "req/s (median)", "p50 ms", "p99 ms", "server CPU µs/req", "server cores"]
    header += [f"vs {PEERS[p]}" for p in peers] + ["errors"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * (len(header) - 2)) + "|"]
    by_key = {(s.target, s.op): s for s in summaries}
    for op in op_order:
        for target in target_order:
            s = by_key.get((target, op))
            if s is None:
                continue
            cpu = "—" if s.server_cpu_us_per_request is None else f"{s.server_cpu_us_per_request:.0f}"
            row = [op, target, f"{s.requests_per_s:,.0f}", _ms(s.latency_p50_us), _ms(s.latency_p99_us), cpu]
            row.append(f"{s.server_cores:.2f}")
            row += [_times(ratio(summaries, target, op, p)) for p in peers]
            row.append(str(s.errors))
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def rounds_table(summaries: Sequence[Summary], target_order: Sequence[str], op_order: Sequence[str]) -> str:
    """req/s of every round, to show how much the machine drifted."""
    rounds = max((s.rounds for s in summaries), default=0)
    header = ["Op", "Target"] + [f"round {i + 1}" for i in range(rounds)] + ["wrk cores"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * (len(header) - 2)) + "|"]
    by_key = {(s.target, s.op): s for s in summaries}
    for op in op_order:
        for target in target_order:
            s = by_key.get((target, op))
            if s is not None:
                cells = [f"{v:,.0f}" for v in s.requests_per_s_by_round] + [""] * (rounds - s.rounds)
                lines.append("| " + " | ".join([op, target, *cells, f"{s.wrk_cores:.2f}"]) + " |")
    return "\n".join(lines)
