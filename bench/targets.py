"""The servers bench/run.py measures: how to start, watch and stop each one.

Every target is started the same way: on its own free 127.0.0.1 port, in a
new session (so a Ctrl-C in the terminal reaches run.py, which then stops the
servers in order, rather than racing them), with stdout and stderr in a log
file, optionally pinned to a CPU set with ``taskset`` (affinity is inherited,
so a pinned ``meridian up`` keeps its storage nodes on the same cores).
Stopping is by PID: SIGTERM, a grace period, then SIGKILL to the process
group that the target's own PID leads, which catches children a crashed
parent left behind.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
PEERS_DIR = BENCH_DIR / ".peers" / "node_modules"
DYNALITE_CLI = PEERS_DIR / "dynalite" / "cli.js"
DYNOXIDE_BIN = PEERS_DIR / "@dynoxide" / "linux-x64" / "dynoxide"
#: The ``meridian`` console script of the Python environment running us.
MERIDIAN_BIN = Path(sys.executable).parent / "meridian"
#: Another build's ``meridian`` console script (e.g. a clone of the previous
#: commit with its own venv), run as target ``meridian-baseline``: a change's
#: cost is then a ratio within one run, like the peers'.
MERIDIAN_BASELINE_BIN = Path(os.environ.get("MERIDIAN_BASELINE_BIN", "/nonexistent/meridian-baseline"))

#: How long a target may take to accept TCP connections (a 3-node cluster
#: starts four Python processes, on one pinned core).
START_TIMEOUT_S = 60.0
#: Grace between SIGTERM and SIGKILL.
STOP_GRACE_S = 10.0
#: Lines of a target's log shown when it fails.
LOG_TAIL_LINES = 15
_PROBE_INTERVAL_S = 0.1
_CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


class TargetUnavailable(Exception):
    """A target that cannot be installed, started or prepared; the run skips it."""


@dataclass(frozen=True)
class TargetSpec:
    """One kind of server. ``argv(port, data_dir)`` builds its command line."""

    name: str
    description: str
    argv: Callable[[int, Path], list[str]]
    #: What must exist before starting, and the hint when it does not.
    requires: Path
    missing_hint: str
    #: A Python process py-spy can profile.
    is_python: bool = False

    def version(self) -> str:
        """Best-effort version string, recorded with the results."""
        try:
            if self.name == "dynalite":
                return json.loads((DYNALITE_CLI.parent / "package.json").read_text())["version"]
            if self.name == "dynoxide":
                out = subprocess.run([str(DYNOXIDE_BIN), "--version"], capture_output=True, text=True, timeout=10)
                return out.stdout.strip().removeprefix("dynoxide ").strip()
            from importlib.metadata import version

            return version("moto" if self.name == "moto" else "meridian-db")
        except Exception as error:  # a version is a label; never fail a run for it
            return f"unknown ({error.__class__.__name__})"


def _meridian_serve(*extra: str, binary: Path = MERIDIAN_BIN) -> Callable[[int, Path], list[str]]:
    return lambda port, data_dir: [str(binary), "serve", "--port", str(port), "--data-dir", str(data_dir), *extra]


_MERIDIAN_HINT = f"the meridian console script is missing at {MERIDIAN_BIN}: pip install -e . in this environment"
_NPM_HINT = "run bash bench/setup.sh"

TARGETS: dict[str, TargetSpec] = {
    spec.name: spec
    for spec in (
        TargetSpec(
            "meridian-embedded", "meridian serve (router + RocksDB in one process, on disk)",
            _meridian_serve(), MERIDIAN_BIN, _MERIDIAN_HINT, is_python=True,
        ),
        TargetSpec(
            "meridian-no-throttling", "meridian serve --no-throttling (nothing metered: the cost of throttling)",
            _meridian_serve("--no-throttling"), MERIDIAN_BIN, _MERIDIAN_HINT, is_python=True,
        ),
        TargetSpec(
            "meridian-baseline", "meridian serve of the build at $MERIDIAN_BASELINE_BIN (a change's before)",
            _meridian_serve(binary=MERIDIAN_BASELINE_BIN), MERIDIAN_BASELINE_BIN,
            "set MERIDIAN_BASELINE_BIN to another checkout's .venv/bin/meridian", is_python=True,
        ),
        TargetSpec(
            "meridian-baseline-cluster", "meridian up (3 nodes) of the build at $MERIDIAN_BASELINE_BIN",
            lambda port, data_dir: [
                str(MERIDIAN_BASELINE_BIN), "up", "--nodes-per-region", "3", "--port", str(port),
                "--data-dir", str(data_dir),
            ],
            MERIDIAN_BASELINE_BIN, "set MERIDIAN_BASELINE_BIN to another checkout's .venv/bin/meridian", is_python=True,
        ),
        TargetSpec(
            "meridian-sync", "meridian serve --sync (fsync every acknowledged write)",
            _meridian_serve("--sync"), MERIDIAN_BIN, _MERIDIAN_HINT, is_python=True,
        ),
        TargetSpec(
            "meridian-cluster", "meridian up: 3 storage nodes + 1 router, gRPC between them",
            lambda port, data_dir: [
                str(MERIDIAN_BIN), "up", "--nodes-per-region", "3", "--port", str(port), "--data-dir", str(data_dir),
            ],
            MERIDIAN_BIN, _MERIDIAN_HINT, is_python=True,
        ),
        TargetSpec(
            "dynalite", "dynalite (Node.js, LevelDB in memory)",
            lambda port, _data_dir: ["node", str(DYNALITE_CLI), "--host", "127.0.0.1", "--port", str(port)],
            DYNALITE_CLI, _NPM_HINT,
        ),
        TargetSpec(
            "dynoxide", "Dynoxide (Rust, SQLite in memory)",
            lambda port, _data_dir: [str(DYNOXIDE_BIN), "serve", "--host", "127.0.0.1", "--port", str(port)],
            DYNOXIDE_BIN, _NPM_HINT,
        ),
        TargetSpec(
            "moto", "moto server (Python, Werkzeug, in memory)",
            lambda port, _data_dir: [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            Path(sys.executable), "pip install 'moto[server]' (bash bench/setup.sh)",
        ),
    )
}  # fmt: skip


def free_port() -> int:
    """A TCP port the kernel considers free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def taskset_prefix(cpus: str | None) -> list[str]:
    """``taskset -c CPUS`` when pinning, else nothing."""
    return ["taskset", "-c", cpus] if cpus else []


class RunningTarget:
    """A started server: its port, process, log, and CPU time consumed so far."""

    def __init__(self, spec: TargetSpec, port: int, process: subprocess.Popen, log_path: Path, argv: list[str]):
        self.spec = spec
        self.port = port
        self.process = process
        self.log_path = log_path
        self.argv = argv

    def __repr__(self) -> str:
        state = "running" if self.alive else f"exited {self.process.returncode}"
        return f"<RunningTarget {self.spec.name} pid={self.process.pid} port={self.port} {state}>"

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def cpu_seconds(self) -> float:
        """User + system CPU of the target and all its live descendants."""
        return sum(_process_cpu_ticks(pid) for pid in _process_tree(self.pid)) / _CLOCK_TICKS_PER_S

    def pids(self) -> list[int]:
        """The target's PID and its live descendants' (a walk of all of /proc: not for tight loops)."""
        return _process_tree(self.pid)

    def wait_listening(self, timeout_s: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.alive:
                raise TargetUnavailable(
                    f"{self.spec.name} exited with code {self.process.returncode} while starting; "
                    f"log {self.log_path}:\n{self.log_tail()}"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1.0):
                    return
            except OSError:
                time.sleep(_PROBE_INTERVAL_S)
        raise TargetUnavailable(f"{self.spec.name} did not listen on port {self.port} within {timeout_s:.0f} s")

    def stop(self) -> None:
        """SIGTERM, wait, then SIGKILL the target's process group; idempotent."""
        if self.alive:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.pid, signal.SIGKILL)  # the group this target's PID leads (start_new_session)
        except (ProcessLookupError, PermissionError):
            pass
        self.process.wait()


def start_target(spec: TargetSpec, data_dir: Path, log_dir: Path, cpus: str | None) -> RunningTarget:
    """Start ``spec`` on a free port; raise ``TargetUnavailable`` if it cannot listen."""
    if not spec.requires.exists():
        raise TargetUnavailable(f"{spec.name}: {spec.requires} not found ({spec.missing_hint})")
    port = free_port()
    argv = taskset_prefix(cpus) + spec.argv(port, data_dir)
    log_path = log_dir / f"{spec.name}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    target = RunningTarget(spec, port, process, log_path, argv)
    try:
        target.wait_listening()
    except BaseException:
        target.stop()
        raise
    return target


def _process_tree(root_pid: int) -> list[int]:
    """``root_pid`` and its live descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields:
                children.setdefault(int(fields[1]), []).append(int(entry))
    tree, todo = [], [root_pid]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, ()))
    return tree


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name: [state, ppid, ...]."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode(errors="replace")
    except OSError:
        return None
    return raw[raw.rfind(")") + 2 :].split()


def _process_cpu_ticks(pid: int) -> int:
    fields = _stat_fields(pid)
    # utime and stime are fields 14 and 15 of stat(5), i.e. 11 and 12 here.
    return int(fields[11]) + int(fields[12]) if fields else 0


def rss_kb(pids: list[int]) -> int:
    """Resident memory (VmRSS) of these processes together, in KiB; cheap enough to sample often."""
    return sum(_process_rss_kb(pid) for pid in pids)


def _process_rss_kb(pid: int) -> int:
    """VmRSS from /proc/PID/status; 0 for a process gone (or a zombie, which has none)."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmRSS:"):
                    return int(line.split()[1])  # "VmRSS:  123456 kB"
    except OSError:
        pass
    return 0
