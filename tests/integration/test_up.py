"""``meridian up`` and the process supervision beneath it (``meridian.cluster.procs``).

The first part checks the supervision mechanics on plain Python children
(``command=`` override), so it needs no Meridian server; the second runs the
real ``meridian up`` and checks what a user relies on: the promised ports
answer, a stop signal stops every child, a SIGKILLed ``up`` leaves no orphan.
Children are found through ``/proc`` (parent PID, command line), and every
check is by PID.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import textwrap
import time
from pathlib import Path

import pytest

from meridian.cluster import limits
from meridian.cluster.procs import (
    LocalCluster,
    ManagedProcess,
    StartupError,
    free_port,
    port_is_free,
    wait_for_http_ok,
    wait_for_port,
)
from tests.conftest import make_client
from tests.waiting import wait_until

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc and PR_SET_PDEATHSIG")

GONE_TIMEOUT_S = 10.0
UP_STARTUP_TIMEOUT_S = 60.0


# --- /proc helpers ------------------------------------------------------------


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (state is [0], ppid [1])."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return text[text.rindex(")") + 2 :].split()


def _running(pid: int) -> bool:
    """Exists and is not a zombie (a reparented zombie may wait long for its reaper)."""
    fields = _stat_fields(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
    except (FileNotFoundError, ProcessLookupError):
        return []


def _all_pids() -> list[int]:
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]


def _children(pid: int) -> list[int]:
    return [p for p in _all_pids() if (f := _stat_fields(p)) is not None and int(f[1]) == pid and _running(p)]


def _processes_mentioning(text: str) -> list[int]:
    """Live processes whose command line contains ``text`` (a test's own tmp dir)."""
    me = os.getpid()
    return [p for p in _all_pids() if p != me and _running(p) and any(text in arg for arg in _cmdline(p))]


def _wait_all_gone(pids: list[int], timeout_s: float = GONE_TIMEOUT_S) -> list[int]:
    """The PIDs still running after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while (left := [p for p in pids if _running(p)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def _output(process: ManagedProcess) -> str:
    """What the process wrote: its log without the supervisor's ``--- start:`` header lines."""
    lines = process.log_path.read_text(errors="replace").splitlines(keepends=True)
    return "".join(line for line in lines if not line.startswith("--- "))


def _wait_for_log(process: ManagedProcess, text: str, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    while True:
        log = _output(process)
        if text in log:
            return log
        if time.monotonic() >= deadline:
            raise AssertionError(f"{text!r} not in the log of {process.name} after {timeout_s:g} s:\n{log}")
        time.sleep(0.05)


def _python(tmp_path: Path, script: str, name: str) -> ManagedProcess:
    """A supervised plain-Python child running ``script``."""
    return ManagedProcess(
        [], log_path=tmp_path / f"{name}.log", name=name, command=(sys.executable, "-c", textwrap.dedent(script))
    )


@pytest.fixture
def supervised():
    """Registers processes to be killed by PID when the test ends, whatever happens."""
    processes: list[ManagedProcess] = []
    yield processes.append
    for process in processes:
        process.kill(signal.SIGKILL)
        process.wait(GONE_TIMEOUT_S)


# --- supervision mechanics, on plain Python children ------------------------------


def test_exit_code_and_log_tail(tmp_path, supervised):
    child = _python(tmp_path, "for i in range(100): print('line', i)\nraise SystemExit(3)", "printer")
    supervised(child)
    assert child.wait(GONE_TIMEOUT_S) == 3
    assert not child.alive
    assert child.log_tail(2).splitlines() == ["line 98", "line 99"]


def test_child_gets_its_own_process_group(tmp_path, supervised):
    child = _python(tmp_path, "import time; time.sleep(60)", "sleeper")
    supervised(child)
    assert os.getpgid(child.pid) == child.pid != os.getpgid(0)


def test_terminate_escalates_to_sigkill(tmp_path, supervised):
    child = _python(
        tmp_path,
        """
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print('ready', flush=True)
        time.sleep(60)
        """,
        "stubborn",
    )
    supervised(child)
    _wait_for_log(child, "ready", 10)
    started = time.monotonic()
    assert child.terminate(timeout_s=0.5) == -signal.SIGKILL
    assert time.monotonic() - started < 5


def test_pause_resume_and_terminate_while_paused(tmp_path, supervised):
    ticker = "import time\nwhile True: print(time.monotonic(), flush=True); time.sleep(0.05)"
    child = _python(tmp_path, ticker, "ticker")
    supervised(child)
    _wait_for_log(child, "\n", 10)
    child.pause()
    # Stopped: a line being written when SIGSTOP came has landed.
    wait_until(lambda: _stat_fields(child.pid)[0] == "T", 5, 0.01, "the ticker to be stopped")
    frozen = child.log_path.stat().st_size
    time.sleep(0.3)  # the point: six ticks' worth of time in which nothing is written
    assert child.log_path.stat().st_size == frozen
    assert _stat_fields(child.pid)[0] == "T"
    child.resume()
    wait_until(lambda: child.log_path.stat().st_size > frozen, 5, 0.05, "the resumed ticker to write again")
    child.pause()
    assert child.terminate(timeout_s=5) == -signal.SIGTERM  # SIGCONT lets the SIGTERM act


def test_restart_runs_same_command_and_appends_log(tmp_path, supervised):
    child = _python(tmp_path, "import os, time; print('pid', os.getpid(), flush=True); time.sleep(60)", "again")
    supervised(child)
    first = child.pid
    _wait_for_log(child, f"pid {first}", 10)
    child.restart()
    assert child.pid != first and child.alive
    log = _wait_for_log(child, f"pid {child.pid}", 10)
    assert f"pid {first}" in log
    assert child.log_path.read_text().count(" start: ") == 2


def test_children_die_with_their_parent(tmp_path, supervised):
    """PR_SET_PDEATHSIG: SIGKILL the supervisor, its supervised child goes too."""
    middle = _python(
        tmp_path,
        f"""
        import sys, time
        from meridian.cluster.procs import ManagedProcess
        child = ManagedProcess([], log_path={str(tmp_path / 'grandchild.log')!r}, name='grandchild',
                               command=(sys.executable, '-c', 'import time; time.sleep(60)'))
        print('grandchild', child.pid, flush=True)
        time.sleep(60)
        """,
        "middle",
    )
    supervised(middle)
    log = _wait_for_log(middle, "grandchild ", 10)
    grandchild = int(log.split("grandchild ")[-1].split()[0])
    assert _running(grandchild)
    middle.kill(signal.SIGKILL)
    assert _wait_all_gone([grandchild], 5) == []


def test_wait_for_port_gives_up_when_the_process_exits(tmp_path, supervised):
    child = _python(tmp_path, "print('cannot bind'); raise SystemExit(2)", "doomed")
    supervised(child)
    started = time.monotonic()
    with pytest.raises(StartupError, match=r"(?s)doomed exited with code 2.*cannot bind"):
        wait_for_port("127.0.0.1", free_port(), 30, process=child)
    assert time.monotonic() - started < 5


def test_wait_for_port_times_out():
    with pytest.raises(StartupError, match="timed out"):
        wait_for_port("127.0.0.1", free_port(), 0.2)


def test_cluster_refuses_a_busy_router_port_before_starting_anything(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        cluster = LocalCluster(["us-east-1"], 3, port, tmp_path, sync=False)
        with pytest.raises(StartupError, match=f"port {port} .* already in use"):
            cluster.start()
    assert cluster.processes() == []


# --- meridian up ---------------------------------------------------------------


def _consecutive_free_ports(count: int) -> int:
    for _ in range(50):
        base = free_port()
        if base + count <= 65536 and all(port_is_free("127.0.0.1", base + i) for i in range(count)):
            return base
    raise AssertionError(f"no {count} consecutive free ports")


@pytest.fixture
def start_up(tmp_path):
    """Factory: run ``meridian up <args>`` with its data under tmp_path; always cleaned up by PID."""
    started: list[ManagedProcess] = []

    def start(*args: str) -> ManagedProcess:
        up = ManagedProcess(
            ["up", "--data-dir", str(tmp_path / "cluster"), *args],
            log_path=tmp_path / f"up-{len(started)}.log",
            name="up",
        )
        started.append(up)
        return up

    yield start
    for up in started:
        children = _children(up.pid) if up.alive else []
        up.terminate()
        for pid in _wait_all_gone(children):
            os.kill(pid, signal.SIGKILL)


def _wait_until_up(up: ManagedProcess, ports: list[int]) -> None:
    for port in ports:
        wait_for_http_ok(f"http://127.0.0.1:{port}/health", UP_STARTUP_TIMEOUT_S, process=up)
    _wait_for_log(up, "try this:", 10)


def _flag(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def _roles(pids: list[int]) -> dict[int, list[str]]:
    """pid -> argv after ``-m meridian.main``."""
    roles = {}
    for pid in pids:
        argv = _cmdline(pid)
        roles[pid] = argv[argv.index("meridian.main") + 1 :]
    return roles


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_up_serves_on_the_promised_ports_and_a_stop_signal_stops_every_child(tmp_path, start_up, stop_signal):
    port = free_port()
    up = start_up("--nodes-per-region", "3", "--port", str(port))
    _wait_until_up(up, [port])

    banner = _output(up)
    assert f"us-east-1  http://127.0.0.1:{port}" in banner
    assert f"aws dynamodb list-tables --endpoint-url http://127.0.0.1:{port}" in banner
    assert make_client(f"http://127.0.0.1:{port}").list_tables()["TableNames"] == []

    roles = _roles(_children(up.pid))
    nodes = [argv for argv in roles.values() if argv[0] == "node"]
    routers = [argv for argv in roles.values() if argv[0] == "router"]
    assert len(nodes) == 3 and len(routers) == 1 and len(roles) == 4
    listen = [_flag(argv, "--listen") for argv in nodes]
    # The router knows each node by its stable id, reached at its listen address.
    expected = [f"{_flag(argv, '--node-id')}={_flag(argv, '--listen')}" for argv in nodes]
    assert sorted(_flag(routers[0], "--nodes").split(",")) == sorted(expected)
    assert _flag(routers[0], "--port") == str(port)
    for address in listen:
        host, node_port = address.rsplit(":", 1)
        wait_for_port(host, int(node_port), 0)  # accepts connections right now
    assert sorted(_flag(argv, "--node-id") for argv in nodes) == [f"us-east-1-node-{i}" for i in range(3)]

    up.kill(stop_signal)
    assert up.wait(30) == 0
    assert _wait_all_gone(list(roles), 0) == [], "up returned before its children were gone"
    assert _processes_mentioning(str(tmp_path)) == []
    assert "stopping" in up.log_tail(5)


def test_sigkill_of_up_takes_every_child_down(tmp_path, start_up):
    port = free_port()
    up = start_up("--nodes-per-region", "3", "--port", str(port))
    _wait_until_up(up, [port])
    children = _children(up.pid)
    assert len(children) == 4

    up.kill(signal.SIGKILL)
    assert up.wait(10) == -signal.SIGKILL
    assert _wait_all_gone(children) == [], f"orphans: {_roles(children)}"
    assert _processes_mentioning(str(tmp_path)) == []


def test_a_dead_child_is_reported_and_the_rest_keep_running(tmp_path, start_up):
    port = free_port()
    up = start_up("--nodes-per-region", "3", "--port", str(port))
    _wait_until_up(up, [port])
    roles = _roles(_children(up.pid))
    victim = next(pid for pid, argv in roles.items() if argv[0] == "node" and _flag(argv, "--node-id").endswith("-1"))

    os.kill(victim, signal.SIGKILL)
    report = _wait_for_log(up, f"us-east-1-node-1 (pid {victim}) exited with code -9", 10)
    assert "us-east-1-node-1.log" in report
    # The point: three supervision rounds pass: reported once, nothing restarted, up still up.
    time.sleep(3 * limits.SUPERVISE_INTERVAL_S)
    assert _output(up).count(f"pid {victim}) exited") == 1
    assert up.alive
    assert sorted(_children(up.pid)) == sorted(p for p in roles if p != victim)
    wait_for_http_ok(f"http://127.0.0.1:{port}/health", 5)

    up.kill(signal.SIGTERM)
    assert up.wait(30) == 0
    assert _processes_mentioning(str(tmp_path)) == []


def test_regions_get_consecutive_router_ports(tmp_path, start_up):
    base = _consecutive_free_ports(2)
    up = start_up("--regions", "us-east-1,eu-west-1", "--nodes-per-region", "1", "--port", str(base))
    _wait_until_up(up, [base, base + 1])
    banner = _output(up)
    assert f"us-east-1  http://127.0.0.1:{base}" in banner
    assert f"eu-west-1  http://127.0.0.1:{base + 1}" in banner
    roles = _roles(_children(up.pid))
    assert sorted((_flag(a, "--region"), a[0]) for a in roles.values()) == [
        ("eu-west-1", "node"), ("eu-west-1", "replicator"), ("eu-west-1", "router"),
        ("us-east-1", "node"), ("us-east-1", "replicator"), ("us-east-1", "router"),
    ]  # fmt: skip

    up.kill(signal.SIGTERM)
    assert up.wait(30) == 0
    assert _processes_mentioning(str(tmp_path)) == []


def test_up_on_a_busy_port_fails_fast_and_starts_nothing(tmp_path, start_up):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        up = start_up("--port", str(port))
        assert up.wait(30) == 10  # a port in use (`meridian --help` lists the exit codes)
    assert f"port {port} for the us-east-1 router is already in use" in up.log_tail(5)
    assert _processes_mentioning(str(tmp_path)) == []


def test_data_survives_restarting_up_on_the_same_data_dir(tmp_path, start_up):
    """Node ports are fresh on every start; the keys must still map to the nodes holding them."""
    keys = [f"k{i}" for i in range(40)]
    for run in range(2):
        port = free_port()
        up = start_up("--nodes-per-region", "3", "--port", str(port))
        _wait_until_up(up, [port])
        ddb = make_client(f"http://127.0.0.1:{port}")
        if run == 0:
            ddb.create_table(
                TableName="survivor",
                AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                BillingMode="PAY_PER_REQUEST",
            )
            ddb.get_waiter("table_exists").wait(TableName="survivor", WaiterConfig={"Delay": 1, "MaxAttempts": 20})
            for key in keys:
                ddb.put_item(TableName="survivor", Item={"id": {"S": key}})
        else:
            missing = [k for k in keys if "Item" not in ddb.get_item(TableName="survivor", Key={"id": {"S": k}})]
            assert missing == [], f"{len(missing)} of {len(keys)} items not found after restarting up"
        up.kill(signal.SIGTERM)
        assert up.wait(30) == 0
