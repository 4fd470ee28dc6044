"""``meridian demo replication`` on a real two-region cluster, in a pseudo-terminal.

The demo runs as a separate process whose stdin/stdout are a pty (as in a
user's terminal: rich draws its dashboard, keys are read in cbreak mode);
the test reads what it drew, types keys, and checks the links through the
replicators themselves (``ControlClient``), then plots the run dir it wrote.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import orjson
import pytest

from meridian.cluster.control_client import ControlClient
from meridian.cluster.procs import MERIDIAN_COMMAND, LocalCluster
from meridian.lab.report import write_report

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs a Linux pty")

A, B = "us-east-1", "eu-west-1"
LINK_LATENCY_MS = 20.0
TERMINAL_ROWS, TERMINAL_COLUMNS = 50, 140
EXIT_TIMEOUT_S = 60.0
OWN_CLUSTER_EXIT_TIMEOUT_S = 180.0  # starting and stopping a meridian up included
SEEN_TIMEOUT_S = 60.0
_ANSI = re.compile(rb"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>78]")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with LocalCluster([A, B], 1, None, tmp_path_factory.mktemp("demo"), sync=False,
                      link_latency_ms=LINK_LATENCY_MS) as c:  # fmt: skip
        yield c


class Terminal:
    """A child process on a pseudo-terminal: what it wrote so far, and keys to type."""

    def __init__(self, args: list[str]) -> None:
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", TERMINAL_ROWS, TERMINAL_COLUMNS, 0, 0))
        env = {**os.environ, "TERM": "xterm-256color", "PYTHONIOENCODING": "utf-8", "COLUMNS": str(TERMINAL_COLUMNS),
               "LINES": str(TERMINAL_ROWS)}  # fmt: skip
        env.pop("NO_COLOR", None)
        try:
            self.process = subprocess.Popen(
                [*MERIDIAN_COMMAND, *args], stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True
            )
        finally:
            os.close(slave)
        self.raw = bytearray()

    def read(self, timeout_s: float = 0.2) -> None:
        """Take what the child wrote, waiting at most ``timeout_s`` for the first byte."""
        while True:
            ready, _, _ = select.select([self.master], [], [], timeout_s)
            if not ready:
                return
            try:
                data = os.read(self.master, 65536)
            except OSError:  # EIO: the child closed the terminal
                return
            if not data:
                return
            self.raw += data
            timeout_s = 0

    @property
    def text(self) -> str:
        return _ANSI.sub(b"", bytes(self.raw)).decode("utf-8", errors="replace").replace("\r", "")

    def wait_for(self, pattern: str, timeout_s: float = SEEN_TIMEOUT_S) -> re.Match:
        deadline = time.monotonic() + timeout_s
        while True:
            self.read()
            found = re.search(pattern, self.text, re.MULTILINE)
            if found:
                return found
            assert self.process.poll() is None, f"demo exited ({self.process.returncode}):\n{self.text[-4000:]}"
            assert time.monotonic() < deadline, f"never saw {pattern!r}:\n{self.text[-4000:]}"

    def type(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def wait_exit(self, timeout_s: float = EXIT_TIMEOUT_S) -> int:
        deadline = time.monotonic() + timeout_s
        while self.process.poll() is None:
            self.read()
            assert time.monotonic() < deadline, f"demo still running:\n{self.text[-4000:]}"
        self.read(0.1)
        return self.process.returncode

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        os.close(self.master)


def _demo_args(cluster: LocalCluster, run_dir: Path, table: str, *extra: str) -> list[str]:
    regions = ",".join(f"{region}={url}" for region, url in cluster.endpoints.items())
    return ["demo", "replication", "--regions", regions, "--rate", "40", "--run-dir", str(run_dir),
            "--table", table, "--seed", "1", *extra]  # fmt: skip


# A dashboard row of a link with measured latency, "1 | eu-west-1 -> us-east-1 | up | 20 | 25.5 | 32.4 | 49.6":
# the link's latency, then the window's mean (exact) and p50 (estimated inside the histogram's buckets).
def _row_with_latency(source: str, target: str) -> str:
    return rf"{re.escape(source)} -> {re.escape(target)}\W+up\W+(\d+(?:\.\d+)?)\W+(\d+\.\d)\W+(\d+\.\d)"


def _refuses(url: str) -> bool:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
    except OSError:
        return True
    return False


def test_on_its_own_cluster_the_dashboard_shows_each_pair_and_the_run_dir_makes_a_report(tmp_path):
    """No endpoint: the demo starts a two-region ``meridian up``, and stops it when done."""
    run_dir = tmp_path / "run"
    terminal = Terminal(["demo", "replication", "--no-keys", "--duration-s", "6", "--run-dir", str(run_dir),
                         "--rate", "40", "--seed", "1"])  # fmt: skip
    try:
        assert terminal.wait_exit(OWN_CLUSTER_EXIT_TIMEOUT_S) == 0, terminal.text[-4000:]
    finally:
        terminal.close()
    shown = terminal.text
    assert "Meridian replication demo" in shown
    for source, target in ((A, B), (B, A)):
        found = re.search(_row_with_latency(source, target), shown)
        assert found, shown[-4000:]
        link_ms, mean_ms, p50_ms = (float(found.group(i)) for i in (1, 2, 3))
        assert link_ms > 0  # --realistic-links
        assert link_ms <= mean_ms < 1000, found.group(0)  # a replicated change cannot beat its link
        assert 0 < p50_ms < 1000, found.group(0)
    assert f"meridian report {run_dir}" in shown

    run = orjson.loads((run_dir / "run.json").read_bytes())
    assert set(run["regions"]) == {A, B} and run["ended_at"] > run["started_at"]
    assert all(_refuses(url) for url in run["regions"].values())  # its meridian up is gone

    files = write_report(run_dir)
    assert {p.name for p in files.images} == {"lag.png", "throughput.png", "read_latency.png"}
    assert all(p.stat().st_size > 0 for p in files.images)
    md = files.markdown.read_text()
    for source, target in ((A, B), (B, A)):
        row = re.search(rf"^\| {source} → {target} \| (\d+) \| (\d+\.\d) \|", md, re.MULTILINE)
        assert row, md
        assert int(row.group(1)) > 0 and float(row.group(2)) > 0  # changes replicated, with a latency
    assert "faults.jsonl is absent" in md  # no key was pressed


def _link(control: ControlClient, source: str, target: str) -> dict:
    return next(link for link in control.links() if (link["source"], link["target"]) == (source, target))


def _wait_link(control: ControlClient, source: str, target: str, cut: bool, terminal: Terminal) -> None:
    deadline = time.monotonic() + SEEN_TIMEOUT_S
    while _link(control, source, target)["cut"] != cut:
        terminal.read()
        assert time.monotonic() < deadline, f"{source}->{target} cut={not cut} still:\n{terminal.text[-3000:]}"


def test_keys_cut_and_heal_the_selected_link(cluster, tmp_path):
    run_dir = tmp_path / "run"
    control = ControlClient(replicators=cluster.replicator_addresses)
    terminal = Terminal(_demo_args(cluster, run_dir, "demo-keys", "--duration-s", "120"))
    try:
        # Rows are sorted: row 1 is eu-west-1 -> us-east-1.
        terminal.wait_for(_row_with_latency(B, A))
        terminal.type("1")
        terminal.type("c")
        _wait_link(control, B, A, True, terminal)
        assert not _link(control, A, B)["cut"]  # one direction only
        terminal.wait_for(rf"{B} -> {A}\W+CUT")
        terminal.type("h")
        _wait_link(control, B, A, False, terminal)
        terminal.wait_for(rf"healed {B}->{A}")
        terminal.type("q")
        assert terminal.wait_exit() == 0, terminal.text[-4000:]
    finally:
        terminal.close()
        control.close()
    commands = [(e["region"], e["command"]) for e in ControlClient(replicators=cluster.replicator_addresses).events()]
    cut_at = commands.index((B, "link-cut"))
    assert (B, "link-heal") in commands[cut_at:]
    faults = [orjson.loads(line) for line in (run_dir / "faults.jsonl").read_bytes().splitlines()]
    assert [(f["fault"], f["target"], f["phase"], f["error"]) for f in faults] == [
        ("link-cut", f"{B}->{A}", "inject", None),
        ("link-cut", f"{B}->{A}", "revert", None),
    ]
    md = write_report(run_dir).markdown.read_text()
    assert f"| link-cut | {B}->{A} |" in md and "| yes |" in md
