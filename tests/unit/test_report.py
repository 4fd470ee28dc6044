"""``meridian report`` on synthetic run dirs whose figures are known by construction.

The full run: regions A and B for 60 s, 10 requests/s each (puts and gets
alternating), the link A -> B cut from 20 s to 35 s. Every expected figure
below is derived by hand in the comment next to it.
"""

from __future__ import annotations

import math
from pathlib import Path

import orjson
import pytest
from PIL import Image

from meridian.main import main
from meridian.lab.report import write_report
from meridian.lab.report.figures import percentile, weighted_percentile
from meridian.lab.report.rundir import Reservoir, read_run_dir

T0 = 1_700_000_000.0
A, B = "us-east-1", "eu-west-1"
DURATION_S = 60
CUT_START_S, CUT_END_S = 20, 35
A_GET_MS = (1.0, 2.0, 3.0, 4.0, 10.0)  # the five gets of each second in A, in order
B_GET_MS = (2.0, 4.0, 6.0, 8.0, 20.0)
B_ERROR_SECONDS = (5, 25, 26, 27, 28, 29, 50)  # B's first put of these seconds fails; 5 lie inside the cut


def _jsonl(path: Path, records: list[dict]) -> None:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))


def _history() -> list[dict]:
    out = []
    for region, gets in ((A, A_GET_MS), (B, B_GET_MS)):
        for s in range(DURATION_S):
            for k in range(10):
                t = T0 + s + k / 10
                if k % 2 == 0:
                    failed = region == B and k == 0 and s in B_ERROR_SECONDS
                    out.append({"t": t, "region": region, "op": "put", "key": f"{region}#{k}", "ok": not failed,
                                "error": "InternalServerError" if failed else None, "latency_ms": 3.0,
                                "version": s})  # fmt: skip
                else:
                    out.append({"t": t, "region": region, "op": "get", "key": f"{region}#{k}", "ok": True,
                                "error": None, "latency_ms": gets[k // 2], "version": None})  # fmt: skip
    return out


def _lag() -> list[dict]:
    out = []
    for s in range(1, DURATION_S + 1):
        if CUT_START_S <= s <= CUT_END_S:  # nothing arrives while cut
            count, p50, p99, top = 0, None, None, None
            pending = 3 + 10 * (s - 19)
        elif s in (36, 37, 38):  # the backlog arrives late
            count, p50, p99, top = 50, 900.0, 1500.0, 1600.0
            pending = {36: 100, 37: 40, 38: 2}[s]
        else:
            count, p50, p99, top, pending = 10, 40.0, 80.0, 95.0, 3
        out.append({"t": T0 + s, "source": A, "target": B, "table": "demo", "p50_ms": p50, "p99_ms": p99,
                    "max_ms": top, "count": count, "pending": pending, "window": "delta"})  # fmt: skip
        out.append({"t": T0 + s, "source": B, "target": A, "table": "demo", "p50_ms": 30.0, "p99_ms": 60.0,
                    "max_ms": 70.0, "count": 10, "pending": 1, "window": "delta"})  # fmt: skip
    return out


def _visibility() -> list[dict]:
    out = []
    for s in range(DURATION_S):
        cut = CUT_START_S <= s < CUT_END_S
        out.append({"t": T0 + s + 0.5, "source": A, "target": B, "key": f"{A}#0", "version": s,
                    "visible_ms": None if cut else 40.0 + s % 10})  # fmt: skip
    return out


@pytest.fixture
def full_run(tmp_path: Path) -> Path:
    run = {"kind": "scenario", "scenario": "region-partition", "seed": 7, "started_at": T0,
           "ended_at": T0 + DURATION_S, "regions": {A: "http://127.0.0.1:8000", B: "http://127.0.0.1:8001"},
           "target": "up", "table": "demo", "args": {}}  # fmt: skip
    (tmp_path / "run.json").write_bytes(orjson.dumps(run))
    _jsonl(tmp_path / "history.jsonl", _history())
    _jsonl(tmp_path / "lag.jsonl", _lag())
    _jsonl(tmp_path / "visibility.jsonl", _visibility())
    _jsonl(tmp_path / "faults.jsonl", [
        {"t": T0 + CUT_START_S, "fault": "link-cut", "target": f"{A}->{B}", "phase": "inject", "args": {}},
        {"t": T0 + CUT_END_S, "fault": "link-cut", "target": f"{A}->{B}", "phase": "revert", "args": {}},
    ])  # fmt: skip
    (tmp_path / "checks.json").write_bytes(orjson.dumps([
        {"name": "convergence", "passed": True, "detail": "identical in 2 regions", "figures": {}},
        {"name": "lag-bound", "passed": False, "detail": "p99 1500 ms above 1000 ms", "figures": {}},
    ]))  # fmt: skip
    return tmp_path


def _assert_png(path: Path) -> tuple[int, int]:
    assert path.stat().st_size > 0
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG"
        width, height = image.size
    assert width > 300 and height > 200
    return width, height


def _row(markdown: str, first_cell: str) -> list[str]:
    """The cells of the Markdown table row starting with ``first_cell``."""
    for line in markdown.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == first_cell:
            return cells
    raise AssertionError(f"no row {first_cell!r} in:\n{markdown}")


def test_a_full_run_dir_gives_plots_html_and_the_figures_of_its_data(full_run: Path):
    files = write_report(full_run)
    assert {p.name for p in files.images} == {"lag.png", "throughput.png", "read_latency.png"}
    for image in files.images:
        _assert_png(image)
    md = files.markdown.read_text()
    page = files.html.read_text()

    # Lag A -> B: 41 ordinary seconds x 10 changes at p50 40 / p99 80 and 3 late seconds x 50 at 900 / 1500:
    # weighted median 40 (410 of 560); weighted 99th percentile needs 554.4 of 560, so 1500; max 1600;
    # pending peaks at 3 + 10 x (35 - 19) = 163.
    assert _row(md, f"{A} → {B}")[:6] == [f"{A} → {B}", "560", "40.0", "1500.0", "1600.0", "163"]
    assert _row(md, f"{B} → {A}")[:6] == [f"{B} → {A}", "600", "30.0", "60.0", "70.0", "1"]
    # Requests inside [20 s, 35 s]: seconds 20..34 (150) plus the one at exactly 35.0 s = 151 per region;
    # B's errors: 7 in all, 5 inside, 5/151 = 3.3 %.
    assert _row(md, B)[:6] == [B, "600", "7", "151", "5", "3.3 %"]
    assert _row(md, A)[:6] == [A, "600", "0", "151", "0", "0.0 %"]
    # Heal at 35 s; A -> B pending is back to its pre-fault 3 at 38 s (2), B -> A never left 1: 3.0 s.
    assert "Caught up 3.0 s after the last heal (heal at 35.0 s" in md
    # Local gets: A's 300 are 1, 2, 3, 4, 10 ms 60 times each: rank 150 is 3.0, rank 297 is 10.0.
    assert _row(md, A)[0:1] == [A]
    assert f"| {A} | 300 | 3.0 | 10.0 |" in md
    assert f"| {B} | 300 | 6.0 | 20.0 |" in md
    # Visibility A -> B: 15 probes inside the cut unseen; the other 45 are 40..49 ms (residues 0-4 four
    # times, 5-9 five times): rank 23 is 45, rank 45 is 49.
    assert f"| {A} → {B} | 60 | 15 | 45.0 | 49.0 |" in md
    assert "| link-cut | us-east-1->eu-west-1 | 20.0 | 35.0 | 15.0 | yes |" in md
    assert "| lag-bound | FAIL | p99 1500 ms above 1000 ms |" in md
    assert "1 of 2 checks passed." in md
    assert "seed: 7" in md and "Not recorded" not in md
    for name in ("lag.png", "throughput.png", "read_latency.png"):
        assert f"]({name})" in md
        assert f'<img src="{name}"' in page
    assert "<td>163</td>" in page and 'class="fail"' in page


def test_a_run_dir_with_only_a_history_says_what_was_not_recorded(tmp_path: Path):
    _jsonl(tmp_path / "history.jsonl", _history())
    files = write_report(tmp_path)
    assert [p.name for p in files.images] == ["throughput.png", "read_latency.png"]
    for image in files.images:
        _assert_png(image)
    md = files.markdown.read_text()
    for absent in ("run.json is absent", "checks.json is absent", "lag.jsonl is absent", "faults.jsonl is absent",
                   "visibility.jsonl is absent"):  # fmt: skip
        assert absent in md
    # No faults: nothing happens "during faults"; the origin is the first request, the end the last (59.9 s).
    assert _row(md, B)[:6] == [B, "600", "7", "0", "0", "n/a"]
    assert "lasted 59.9 s" in md
    assert "Not recorded: the run dir holds no data for this plot." in md  # the lag plot
    assert not (tmp_path / "lag.png").exists()


def test_an_empty_run_dir_still_gives_a_report_and_the_command_exits_0(tmp_path: Path, capsys):
    assert main(["report", str(tmp_path)]) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(tmp_path / "report.md"), str(tmp_path / "report.html")]
    assert (tmp_path / "report.md").read_text().count("Not recorded") >= 5


def test_a_missing_run_dir_is_an_error(tmp_path: Path, capsys):
    assert main(["report", str(tmp_path / "nowhere")]) == 2
    assert "is not a directory" in capsys.readouterr().err


def test_a_truncated_last_line_is_skipped_and_counted(full_run: Path):
    with open(full_run / "history.jsonl", "ab") as f:
        f.write(b'{"t": 1700000059.95, "region": "us-ea')
    data = read_run_dir(full_run)
    assert data.skipped_lines["history.jsonl"] == 1
    assert data.history[A].requests == 600
    assert "Unreadable lines skipped: 1 in history.jsonl." in write_report(full_run).markdown.read_text()


def test_an_unreverted_fault_lasts_to_the_end_and_there_is_no_heal(full_run: Path):
    _jsonl(full_run / "faults.jsonl", [
        {"t": T0 + 50, "fault": "process-kill", "target": f"{B}/node-0", "phase": "inject", "args": {}},
    ])  # fmt: skip
    md = write_report(full_run).markdown.read_text()
    assert "| process-kill | eu-west-1/node-0 | 50.0 | 60.0 | 10.0 | no (lasted to the end) |" in md
    assert "No fault was reverted" in md
    # B's error at 50 s is the only one inside [50, 60]; 100 requests in that range.
    assert _row(md, B)[:6] == [B, "600", "7", "100", "1", "1.0 %"]


def test_percentiles():
    assert percentile([5.0, 1.0, 3.0, 2.0, 4.0], 50) == 3.0
    assert percentile([5.0, 1.0, 3.0, 2.0, 4.0], 99) == 5.0
    assert percentile([], 50) is None
    assert weighted_percentile([(10.0, 1), (20.0, 1), (30.0, 2)], 50) == 20.0
    assert weighted_percentile([(10.0, 1), (20.0, 1), (30.0, 2)], 51) == 30.0
    assert weighted_percentile([(10.0, 0)], 50) is None


def test_the_reservoir_is_bounded_uniform_and_seeded():
    first, second = Reservoir(limit=100), Reservoir(limit=100)
    for i in range(10_000):
        first.add(i)
        second.add(i)
    assert len(first.items) == 100 and first.seen == 10_000 and not first.exact
    assert first.items == second.items  # seeded: one run dir, one report
    mean = sum(first.items) / 100
    assert math.isclose(mean, 5000, rel_tol=0.25)  # a uniform sample, not the first 100


def test_windowed_samples_win_over_cumulative_ones_of_the_same_pair(tmp_path: Path):
    """A workload's cumulative sampler and a windowed one may both write lag.jsonl: count changes once."""
    lines = []
    for s in range(1, 11):
        common = {"t": T0 + s, "source": A, "target": B, "table": "demo", "pending": 2}
        lines.append({**common, "p50_ms": 100.0, "p99_ms": 900.0, "max_ms": 950.0, "count": 10 * s, "window": "total"})
        lines.append({**common, "p50_ms": 40.0, "p99_ms": 60.0, "max_ms": 61.0, "count": 10, "window": "delta"})
    _jsonl(tmp_path / "lag.jsonl", lines)
    md = write_report(tmp_path).markdown.read_text()
    # Ten windows of 10 changes: 100 changes at p50 40 / p99 60, max 61 (not the cumulative 100 / 900 / 950).
    assert _row(md, f"{A} → {B}")[:6] == [f"{A} → {B}", "100", "40.0", "60.0", "61.0", "2"]


def test_cumulative_samples_alone_give_the_last_samples_figures(tmp_path: Path):
    lines = [{"t": T0 + s, "source": A, "target": B, "table": "demo", "p50_ms": 30.0 + s, "p99_ms": 70.0 + s,
              "max_ms": 80.0 + s, "count": 10 * s, "pending": s % 3, "window": "total"} for s in range(1, 6)]
    _jsonl(tmp_path / "lag.jsonl", lines)
    md = write_report(tmp_path).markdown.read_text()
    # The last sample covers the whole run: 50 changes, p50 35, p99 75; max over the samples 85; pending peaked at 2.
    assert _row(md, f"{A} → {B}")[:6] == [f"{A} → {B}", "50", "35.0", "75.0", "85.0", "2"]


def test_with_several_heals_each_gets_its_catch_up_time(full_run: Path):
    with open(full_run / "faults.jsonl", "ab") as f:
        for t, phase in ((45, "inject"), (50, "revert")):
            f.write(orjson.dumps({"t": T0 + t, "fault": "link-cut", "target": f"{B}->{A}", "phase": phase}) + b"\n")
    md = write_report(full_run).markdown.read_text()
    # After 35 s, A -> B is back to its pre-fault 3 at 38 s; at 50 s every pair already is (3 and 1).
    assert "| link-cut | us-east-1->eu-west-1 | 35.0 | 3.0 |" in md
    assert "| link-cut | eu-west-1->us-east-1 | 50.0 | 0.0 |" in md
    assert "Caught up 0.0 s after the last heal (heal at 50.0 s" in md
