"""The demo's terminal parts: key decoding, the key reader on a real pty, the dashboard's drawing."""

from __future__ import annotations

import asyncio
import io
import os
import pty
import termios

from rich.console import Console

from meridian.lab.demo.keys import DOWN, UP, KeyReader, decode_keys
from meridian.lab.demo.sampler import PairView
from meridian.lab.demo.stats import RegionRates
from meridian.lab.demo.view import DashboardState, render
from meridian.lab.demo.window import WindowFigures


def test_keys_are_decoded_with_arrows_and_unknown_sequences_skipped():
    assert decode_keys(b"1c\x1b[Ah\x1b[B\x1b[5~q") == ["1", "c", UP, "h", DOWN, "q"]
    assert decode_keys(b"\x1bOA\x1bOB\x03\x7f") == [UP, DOWN]  # application-mode arrows; control bytes dropped


async def test_the_key_reader_sets_cbreak_hands_keys_to_the_loop_and_restores_the_terminal():
    master, slave = pty.openpty()
    try:
        before = termios.tcgetattr(slave)
        assert before[3] & termios.ICANON
        reader = KeyReader(asyncio.get_running_loop(), fd=slave)
        try:
            mode = termios.tcgetattr(slave)
            assert not mode[3] & termios.ICANON and not mode[3] & termios.ECHO
            assert mode[1] & termios.OPOST  # output processing kept: newlines still return the carriage
            os.write(master, b"c\x1b[B")
            keys = [await asyncio.wait_for(reader.queue.get(), 5), await asyncio.wait_for(reader.queue.get(), 5)]
            assert keys == ["c", DOWN]
        finally:
            reader.close()
        assert termios.tcgetattr(slave) == before
    finally:
        os.close(master)
        os.close(slave)


def _state() -> DashboardState:
    state = DashboardState(table="orders", regions=["us-east-1", "eu-west-1"], window_s=10.0, duration_s=60.0,
                           run_dir="runs/demo-1", keys=True, elapsed_s=42.0)  # fmt: skip
    state.pairs = [
        PairView("eu-west-1", "us-east-1", 38.0, False, False, 3, WindowFigures(120, 41.25, 77.5, 40.5, 10.0)),
        PairView("us-east-1", "eu-west-1", 38.0, True, False, 812, WindowFigures(0, None, None, None, 10.0)),
    ]
    state.rates = [RegionRates("us-east-1", 20.0, 8.5, 0.0, 0, 1.8, 1.2), RegionRates("eu-west-1", 19.0, 9.0, 0.5, 3, 2.1, None)]
    state.select(1)
    state.note("12:00:01 cut us-east-1->eu-west-1")
    return state


def _cells(line: str) -> list[str]:
    """The cells of one table row inside the panel: ``│ │ a │ b │ │`` -> ``["a", "b"]``."""
    return [cell.strip() for cell in line.strip("│ ").split("│")]


def test_the_dashboard_shows_every_pair_its_figures_and_the_selection():
    console = Console(width=140, record=True, color_system=None, file=io.StringIO())
    console.print(render(_state()))
    text = console.export_text()
    rows = {cells[1]: cells for cells in map(_cells, text.splitlines()) if len(cells) > 5 and "->" in cells[1]}
    assert rows["eu-west-1 -> us-east-1"] == ["1", "eu-west-1 -> us-east-1", "up", "38", "40.5", "41.2", "77.5", "12.0", "3"]
    assert rows["us-east-1 -> eu-west-1"] == ["2", "us-east-1 -> eu-west-1", "CUT", "38", "-", "-", "-", "0.0", "812"]
    assert "00:42 of 01:00" in text
    assert "select (us-east-1 -> eu-west-1)" in text  # the second row is selected
    assert "12:00:01 cut us-east-1->eu-west-1" in text
    workload = {cells[0]: cells for cells in map(_cells, text.splitlines()) if len(cells) == 7}
    assert workload["eu-west-1"] == ["eu-west-1", "19.0", "9.0", "2.1", "-", "0.5", "3"]


def test_selection_wraps_around_the_pairs():
    state = _state()
    state.select(2)
    assert state.selected == 0
    state.select(-1)
    assert state.selected_pair.source == "us-east-1"
