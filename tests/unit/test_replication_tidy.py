"""Replication code takes time and randomness only from what it is given.

The simulation replays a run from its seed only if nothing in
``replication/`` reads a real clock or the global random generator: time
comes from an injected ``Clock`` (``replication/clock.py`` holds the only
real one) and randomness from an injected ``random.Random``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPLICATION = Path(__file__).resolve().parents[2] / "replication"
ALLOWED = {"clock.py"}  # SystemClock wraps the real clocks
BANNED = re.compile(
    r"\btime\.(time|time_ns|monotonic|monotonic_ns|perf_counter|sleep)\("
    r"|\basyncio\.sleep\("
    r"|\brandom\.(random|uniform|randint|randrange|choice|choices|shuffle|sample|seed|gauss|expovariate)\("
    r"|\bdatetime\.now\("
)


@pytest.mark.parametrize("path", sorted(REPLICATION.glob("*.py")), ids=lambda p: p.name)
def test_no_raw_clock_or_global_random(path: Path) -> None:
    if path.name in ALLOWED:
        return
    offending = [
        f"{path.name}:{n}: {line.strip()}"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if BANNED.search(line)
    ]
    assert not offending, "use the injected Clock / random.Random instead:\n" + "\n".join(offending)


def test_the_check_sees_the_replication_modules() -> None:
    names = {p.name for p in REPLICATION.glob("*.py")}
    assert {"replicator.py", "link.py", "clock.py"} <= names
