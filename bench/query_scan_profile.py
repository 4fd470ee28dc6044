"""query_scan's profiling: py-spy on a target while one op runs, and the top functions and lines as Markdown."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from query_scan_data import say  # bench/ is on sys.path (query_scan.py puts it there)
from targets import RunningTarget

PROFILED_TARGET = "meridian-embedded"
PROFILE_RATE_HZ = 200
#: Functions listed by own samples; by inclusive samples, PROFILE_TOP_INCLUSIVE_FUNCTIONS
#: (more, because the outermost frames, event loop and HTTP protocol, come first).
PROFILE_TOP_FUNCTIONS = 12
PROFILE_TOP_INCLUSIVE_FUNCTIONS = 20
#: Source lines listed by own samples (py-spy has no native frames: a line
#: calling into RocksDB or orjson gets their time).
PROFILE_TOP_LINES = 8
#: Time py-spy is given to attach before the work starts.
PY_SPY_ATTACH_S = 1.0
#: Time py-spy is given to write its output after Ctrl-C before it is killed.
PY_SPY_EXIT_TIMEOUT_S = 30
#: How much of py-spy's stderr a failure shows (its end).
PY_SPY_ERROR_SHOWN_CHARS = 500


def profiled(target: RunningTarget, raw_path: Path, work: Callable[[], object]) -> dict | None:
    """Run ``work`` with py-spy sampling ``target`` (raw collapsed stacks); the top functions."""
    py_spy = shutil.which("py-spy", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if py_spy is None:
        say("py-spy not found (bash bench/setup.sh); not profiling")
        return None
    # --nonblocking: sample without pausing the server, so it runs at speed.
    recorder = subprocess.Popen(
        [py_spy, "record", "--pid", str(target.pid), "--rate", str(PROFILE_RATE_HZ), "--format", "raw",
         "--nonblocking", "--output", str(raw_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(PY_SPY_ATTACH_S)  # py-spy attaches before the work starts
    started = time.perf_counter()
    try:
        work()
    finally:
        seconds = time.perf_counter() - started
        recorder.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
        try:
            _, stderr = recorder.communicate(timeout=PY_SPY_EXIT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            recorder.kill()
            _, stderr = recorder.communicate()
    if recorder.returncode != 0 or not raw_path.exists():
        say(f"py-spy failed (exit {recorder.returncode}): {stderr.strip()[-PY_SPY_ERROR_SHOWN_CHARS:]}")
        return None
    return summarize_profile(raw_path.read_text(), seconds)


def _function(frame: str) -> str:
    """``name (path/to/module.py:123)`` -> ``name (to/module.py)``: one entry per function, not per line."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rpartition(":")[0] or where.rstrip(")")
    return f"{name} ({'/'.join(Path(path).parts[-2:])})"


def summarize_profile(raw: str, seconds: float) -> dict:
    """Top functions by own samples (innermost frame) and inclusive samples (anywhere on the stack)."""
    own: Counter[str] = Counter()
    own_lines: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        raw_frames = stack.split(";")
        frames = [_function(f) for f in raw_frames]
        total += count
        own[frames[-1]] += count
        own_lines[raw_frames[-1]] += count
        for name in set(frames):
            inclusive[name] += count
    return {
        "samples": total,
        "seconds": seconds,
        # py-spy leaves out idle samples (waiting in epoll), so this is how busy the server was.
        "busy_fraction": total / (seconds * PROFILE_RATE_HZ) if seconds else 0.0,
        "own": [(name, n / total) for name, n in own.most_common(PROFILE_TOP_FUNCTIONS)] if total else [],
        "own_lines": [(line, n / total) for line, n in own_lines.most_common(PROFILE_TOP_LINES)] if total else [],
        "inclusive": [(name, n / total) for name, n in inclusive.most_common(PROFILE_TOP_INCLUSIVE_FUNCTIONS)] if total else [],
    }


def profile_markdown(op: str, summary: dict) -> str:
    """Where the samples were (own: by function, then by line), and what they were under (inclusive)."""
    lines = [
        f"**{op}** on {PROFILED_TARGET}: {summary['samples']:,} samples in {summary['seconds']:.1f} s "
        f"(server busy {summary['busy_fraction']:.0%} of the time at {PROFILE_RATE_HZ} Hz)",
        "",
        "| own % | function |",
        "|---:|---|",
    ]
    lines += [f"| {share:.1%} | `{name}` |" for name, share in summary["own"]]
    lines += ["", "| own % | line |", "|---:|---|"]
    lines += [f"| {share:.1%} | `{line}` |" for line, share in summary["own_lines"]]
    lines += ["", "| inclusive % | function |", "|---:|---|"]
    lines += [f"| {share:.1%} | `{name}` |" for name, share in summary["inclusive"]]
    return "\n".join(lines)
