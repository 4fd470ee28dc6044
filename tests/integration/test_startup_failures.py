"""Every start-up failure is one line on stderr and its own exit code (issue 21).

Real processes: a real ``meridian serve`` (or replicator, or ``up``) holds
the port or the folder, then a second one is started against it.  The
failing command runs under ``subprocess.run`` with a timeout (which kills it
by pid if it unexpectedly starts); every process a test starts is stopped
by its pid in a ``finally``.  A disk that is full and a folder that cannot
be written are made real too: a tiny tmpfs in a private mount namespace
(root only), a folder owned by root while the server runs as ``nobody``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from meridian.cluster.procs import MERIDIAN_COMMAND, ManagedProcess, free_port, wait_for_http_ok, wait_for_port
from meridian.cluster.startup_errors import FailureKind
from tests.waiting import wait_until

RUN_TIMEOUT_S = 120  # one failing command, start to exit (a loaded machine starts Python slowly)
READY_TIMEOUT_S = 60


def _meridian(*args: str, env: dict[str, str] | None = None, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*prefix, *MERIDIAN_COMMAND, *args], capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
        env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def _one_line(done: subprocess.CompletedProcess, command: str, kind: FailureKind) -> str:
    """The failure's line, checked: the kind's exit code, one line, no traceback."""
    lines = done.stderr.strip().splitlines()
    assert done.returncode == kind.exit_code, (done.returncode, done.stdout, done.stderr)
    assert len(lines) == 1 and lines[0].startswith(f"meridian {command}: "), done.stderr
    assert "Traceback" not in done.stderr
    return lines[0]


@pytest.fixture
def serve(tmp_path):
    """A running ``meridian serve`` on a free port and ``tmp_path/data``; stopped by pid."""
    port = free_port()
    proc = ManagedProcess(["serve", "--port", str(port), "--data-dir", str(tmp_path / "data")],
                          log_path=tmp_path / "serve.log", name="serve")  # fmt: skip
    try:
        wait_for_http_ok(f"http://127.0.0.1:{port}/health", READY_TIMEOUT_S, process=proc)
        proc.port = port  # type: ignore[attr-defined]
        yield proc
    finally:
        proc.terminate()


def test_a_taken_port_names_the_process_holding_it(serve, tmp_path):
    done = _meridian("serve", "--port", str(serve.port), "--data-dir", str(tmp_path / "other"))
    line = _one_line(done, "serve", FailureKind.PORT_IN_USE)
    assert f"port {serve.port} (--port) is already in use by pid {serve.pid} (meridian serve)" in line
    assert "choose another port with --port" in line
    assert not (tmp_path / "other").exists()  # refused before anything was created


def test_a_node_on_a_taken_port(serve, tmp_path):
    done = _meridian("node", "--listen", f"127.0.0.1:{serve.port}", "--data-dir", str(tmp_path / "node"))
    assert f"in use by pid {serve.pid}" in _one_line(done, "node", FailureKind.PORT_IN_USE)


def test_a_data_folder_in_use_names_the_meridian_using_it(serve, tmp_path):
    assert (tmp_path / "data" / "meridian.pid").read_text().strip() == str(serve.pid)
    done = _meridian("serve", "--port", str(free_port()), "--data-dir", str(tmp_path / "data"))
    line = _one_line(done, "serve", FailureKind.FOLDER_IN_USE)
    assert f"data folder {tmp_path / 'data'} is in use by another Meridian, pid {serve.pid} (meridian serve)" in line
    assert "give this one another --data-dir" in line


def test_the_traceback_only_with_log_level_debug(serve, tmp_path):
    done = _meridian("--log-level", "debug", "serve", "--port", str(free_port()), "--data-dir", str(tmp_path / "data"))
    assert done.returncode == FailureKind.FOLDER_IN_USE.exit_code
    assert "Traceback (most recent call last)" in done.stderr and "FolderInUse" in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("meridian serve: data folder ")


def test_a_clean_stop_removes_the_pid_file(tmp_path):
    port = free_port()
    proc = ManagedProcess(["serve", "--port", str(port), "--data-dir", str(tmp_path / "data")], log_path=tmp_path / "s.log")
    try:
        wait_for_http_ok(f"http://127.0.0.1:{port}/health", READY_TIMEOUT_S, process=proc)
        assert (tmp_path / "data" / "meridian.pid").exists()
    finally:
        assert proc.terminate() == 0
    assert not (tmp_path / "data" / "meridian.pid").exists()


@pytest.fixture
def shared_folder():
    """A folder anyone may enter (pytest's tmp_path is the owner's alone): for ``nobody``."""
    base = Path(tempfile.mkdtemp(prefix="meridian-startup-"))
    try:
        base.chmod(0o755)
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_a_folder_that_cannot_be_written(shared_folder):
    data = shared_folder / "data"
    data.mkdir(mode=0o755)
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("root ignores permissions, and setpriv is missing to drop them")
        prefix: tuple[str, ...] = ("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups")
    else:
        data.chmod(0o555)
        prefix = ()
    done = _meridian("serve", "--port", str(free_port()), "--data-dir", str(data), prefix=prefix)
    line = _one_line(done, "serve", FailureKind.NOT_WRITABLE)
    assert f"cannot write to {data} (permission denied)" in line and "--data-dir" in line
    # Its parent is not writable either: the folder cannot even be created.
    done = _meridian("serve", "--port", str(free_port()), "--data-dir", str(data / "sub"), prefix=prefix)
    assert f"cannot write to {data / 'sub'}" in _one_line(done, "serve", FailureKind.NOT_WRITABLE)


def _private_tmpfs(mountpoint: Path, options: str) -> tuple[str, ...]:
    """A prefix running the command with a tmpfs mounted at ``mountpoint`` in its
    own mount namespace (nothing changes for the rest of the machine)."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("a private tmpfs needs root and unshare")
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True, timeout=RUN_TIMEOUT_S)
    if probe.returncode != 0:
        pytest.skip(f"no mount namespaces here: {probe.stderr.decode().strip()}")
    script = f'mount -t tmpfs -o {options} tmpfs "{mountpoint}" && exec "$@"'
    return ("unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh")


def test_a_full_disk(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    prefix = _private_tmpfs(disk, "size=64k")
    done = _meridian("serve", "--port", str(free_port()), "--data-dir", str(disk), prefix=prefix)
    line = _one_line(done, "serve", FailureKind.DISK_FULL)
    assert f"no space left on the device holding {disk}" in line and "free some space" in line


def test_a_read_only_file_system(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    prefix = _private_tmpfs(disk, "ro,size=1m")
    done = _meridian("serve", "--port", str(free_port()), "--data-dir", str(disk / "data"), prefix=prefix)
    assert "(read-only file system)" in _one_line(done, "serve", FailureKind.NOT_WRITABLE)


# A host name glibc refuses without asking any DNS server (tests reach 127.0.0.1 only).
UNRESOLVABLE = "no such host"


def test_a_node_address_that_does_not_resolve():
    done = _meridian("router", "--port", "0", "--nodes", f"n0=127.0.0.1:{free_port()},n1={UNRESOLVABLE}:7000",
                     "--resolve-wait-s", "0")  # fmt: skip
    line = _one_line(done, "router", FailureKind.UNRESOLVED)
    assert f"--nodes address {UNRESOLVABLE}:7000 does not resolve" in line and "check the host name" in line


def test_a_peer_address_that_does_not_resolve_in_time(tmp_path):
    listen = f"127.0.0.1:{free_port()}"
    done = _meridian("node", "--listen", listen, "--data-dir", str(tmp_path / "n"), "--node-id", "a",
                     "--peers", f"a={listen},b={UNRESOLVABLE}:7000", "--resolve-wait-s", "0.5")  # fmt: skip
    assert done.returncode == FailureKind.UNRESOLVED.exit_code, done.stderr
    waiting, failed = done.stderr.strip().splitlines()  # one line while it waits, one when it gives up
    assert "does not resolve yet" in waiting and "waiting up to 0.5 s" in waiting
    assert failed.startswith("meridian node: --peers address") and "still after 0.5 s" in failed
    assert not (tmp_path / "n").exists()


def test_a_host_to_listen_on_that_does_not_resolve(tmp_path):
    done = _meridian("serve", "--host", UNRESOLVABLE, "--port", "0", "--data-dir", str(tmp_path / "d"))
    assert f"cannot listen on '{UNRESOLVABLE}' (--port)" in _one_line(done, "serve", FailureKind.UNRESOLVED)


def test_the_lab_without_docker(tmp_path):
    bare = tmp_path / "bin"  # a PATH with this interpreter and no docker
    bare.mkdir()
    done = _meridian("lab", "--lab-dir", str(tmp_path / "lab"), "status", env={"PATH": str(bare)})
    line = _one_line(done, "lab", FailureKind.DOCKER_UNUSABLE)
    assert "the docker CLI is not installed" in line


def test_a_replicator_cursor_folder_in_use(tmp_path):
    nodes = f"n0=127.0.0.1:{free_port()}"  # never answers: the replicator waits for it, holding its folder
    first_listen = free_port()
    args = ["replicator", "--region", "r1", "--nodes", nodes, "--data-dir", str(tmp_path / "cursors")]
    first = ManagedProcess([*args, "--listen", f"127.0.0.1:{first_listen}"], log_path=tmp_path / "r1.log")
    try:
        wait_for_port("127.0.0.1", first_listen, READY_TIMEOUT_S, process=first)
        assert first.log_tail(5).splitlines()[1].startswith("meridian replicator ")  # its version line
        done = _meridian(*args, "--listen", f"127.0.0.1:{free_port()}")
        line = _one_line(done, "replicator", FailureKind.FOLDER_IN_USE)
        assert f"{tmp_path / 'cursors'} is in use by another Meridian, pid {first.pid} (meridian replicator)" in line
    finally:
        first.terminate()


def test_up_reports_the_node_that_could_not_start(tmp_path):
    """A second ``meridian up`` on the same data folder: its node cannot take
    the folder; up says so in one line, with the node's exit code."""
    data = tmp_path / "cluster"
    first = ManagedProcess(["up", "--port", "0", "--nodes-per-region", "1", "--data-dir", str(data)],
                           log_path=tmp_path / "up1.log", name="up")  # fmt: skip
    try:
        wait_until(lambda: "try this:" in first.log_tail(40), READY_TIMEOUT_S, what="the first up to serve")
        assert first.alive
        done = _meridian("up", "--port", "0", "--nodes-per-region", "1", "--data-dir", str(data))
        line = _one_line(done, "up", FailureKind.FOLDER_IN_USE)
        assert line.startswith("meridian up: us-east-1-node-0 could not start: data folder ")
        assert f"started by meridian up pid {first.pid})" in line
        assert first.alive  # the first cluster is untouched
    finally:
        first.terminate()


def test_meridian_help_lists_the_exit_codes():
    done = _meridian("--help")
    assert done.returncode == 0
    for kind in FailureKind:
        assert f"  {kind.exit_code}  {kind.value[1]}" in done.stdout
