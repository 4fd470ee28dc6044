"""Recognising start-up failures (``cluster/startup_errors.py``) and naming
the process behind them (``cluster/holders.py``), without starting servers.

``tests/integration/test_startup_failures.py`` runs each case for real; these
pin the reading of the exceptions themselves, including the words RocksDB,
uvloop and gRPC use for them.
"""

from __future__ import annotations

import argparse
import errno
import io
import os
import socket
import subprocess
import sys
import textwrap

import pytest

from meridian.cluster import holders, migration_display, startup_errors
from meridian.cluster.startup_errors import FailureKind, StartContext, child_failure, context_of, diagnose
from meridian.main import build_parser
from meridian.model.errors import InternalServerError
from meridian.model.folders import DataFormatError, FolderInUse

CTX = StartContext("serve", binds=[("--port", "127.0.0.1", 0)], folders=[("--data-dir", "/srv/data")])


def _wrapped(cause: BaseException) -> InternalServerError:
    """As the engine raises it: the cause chained."""
    try:
        raise InternalServerError(f"cannot open storage at /srv/data: {cause}") from cause
    except InternalServerError as err:
        return err


def test_exit_codes_are_distinct_and_clear_of_1_and_2():
    codes = [kind.exit_code for kind in FailureKind]
    assert len(set(codes)) == len(codes) and not {0, 1, 2} & set(codes)
    assert all(str(code) in startup_errors.exit_codes_help() for code in codes)


@pytest.mark.parametrize(
    "cause",
    [
        Exception("IO error: No space left on device: While appending to file: /srv/data/OPTIONS-000006.dbtmp: "
                  "No space left on device"),
        OSError(errno.ENOSPC, "No space left on device"),
    ],
    ids=["rocksdb", "errno"],
)  # fmt: skip
def test_a_full_disk(cause):
    failure = diagnose(_wrapped(cause), CTX)
    assert failure.kind is FailureKind.DISK_FULL and "device holding /srv/data" in failure.message


@pytest.mark.parametrize(
    ("cause", "path", "reason"),
    [
        (Exception("Permission denied (os error 13)"), "/srv/data", "permission denied"),
        (PermissionError(errno.EACCES, "Permission denied", "/srv/data/sub"), "/srv/data/sub", "permission denied"),
        (OSError(errno.EROFS, "Read-only file system", "/srv/data"), "/srv/data", "read-only file system"),
    ],
)
def test_a_folder_that_cannot_be_written(cause, path, reason):
    failure = diagnose(_wrapped(cause), CTX)
    assert failure.kind is FailureKind.NOT_WRITABLE
    assert failure.message.startswith(f"cannot write to {path} ({reason})")


def test_a_port_below_1024_is_not_a_folder_problem():
    denied = OSError(errno.EACCES, "error while attempting to bind on address ('0.0.0.0', 80): permission denied")
    assert diagnose(denied, StartContext("serve", binds=[("--port", "0.0.0.0", 80)])) is None


@pytest.fixture
def taken_port():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        yield busy.getsockname()[1]


@pytest.mark.parametrize(
    "make",
    [
        lambda port: OSError(errno.EADDRINUSE, f"error while attempting to bind on address ('127.0.0.1', {port}): "
                                               "address already in use"),
        lambda port: OSError(f"cannot listen on 127.0.0.1:{port}"),  # what a gRPC server says
    ],
    ids=["uvloop", "grpc"],
)  # fmt: skip
def test_a_taken_port_after_the_preflight(taken_port, make):
    ctx = StartContext("node", binds=[("--listen", "127.0.0.1", taken_port)])
    failure = diagnose(make(taken_port), ctx)
    assert failure.kind is FailureKind.PORT_IN_USE
    assert failure.message.startswith(f"port {taken_port} (--listen) is already in use by another process")


def test_the_preflight_finds_a_taken_port(taken_port):
    with pytest.raises(startup_errors.StartupFailure) as refused:
        startup_errors.preflight(StartContext("serve", binds=[("--port", "127.0.0.1", taken_port)]))
    assert refused.value.kind is FailureKind.PORT_IN_USE


def test_data_formats():
    newer = diagnose(_wrapped(DataFormatError("/srv/data", 9, 1, 2)), CTX)
    assert newer.kind is FailureKind.FORMAT_TOO_NEW
    assert "written by a newer Meridian (format 9" in newer.message and "reads formats up to 2" in newer.message
    older = diagnose(DataFormatError("/srv/c", 1, 2, 3, "cursor folder"), CTX)
    assert older.kind is FailureKind.FORMAT_TOO_OLD
    assert older.message.startswith("cursor folder /srv/c is in format 1") and "aws dynamodb scan" in older.message


def test_a_folder_in_use_by_a_process_that_is_gone():
    failure = diagnose(_wrapped(FolderInUse("/srv/data", None)), CTX)
    assert failure.kind is FailureKind.FOLDER_IN_USE
    assert failure.message.startswith("data folder /srv/data is in use by another process")


def test_an_unresolvable_name_and_what_is_not_recognised():
    assert diagnose(socket.gaierror(socket.EAI_NONAME, "Name or service not known"), CTX).kind is FailureKind.UNRESOLVED
    assert diagnose(ValueError("a bug"), CTX) is None
    assert diagnose(InternalServerError("something else"), CTX) is None


def test_a_child_s_line_is_passed_on():
    tail = "--- start: [...]\nmeridian node 0.1.0 (pid 7): starting on x\nmeridian node: data folder /d is in use by pid 3"
    failure = child_failure("us-east-1-node-0", 11, tail)
    assert failure.kind is FailureKind.FOLDER_IN_USE
    assert failure.message == "us-east-1-node-0 could not start: data folder /d is in use by pid 3"
    assert child_failure("n", 1, tail) is None and child_failure("n", None, tail) is None


def _ns(argv: list[str]) -> argparse.Namespace:
    return build_parser(argv[0]).parse_args(argv)


def test_what_each_command_uses():
    node = context_of(_ns(["node", "--listen", "127.0.0.1:7001", "--data-dir", "/d",
                           "--peers", "a=127.0.0.1:7001,b=h2:7002"]))  # fmt: skip
    assert node.binds == [("--listen", "127.0.0.1", 7001)] and node.folders == [("--data-dir", "/d")]
    assert node.needed == [("--peers", "h2:7002")] and node.optional == []
    replicator = context_of(_ns(["replicator", "--region", "r", "--nodes", "n=h1:1", "--peers", "s=h3:3",
                                 "--listen", "0.0.0.0:7100", "--data-dir", "/c", "--metrics-port", "9100"]))  # fmt: skip
    assert replicator.binds == [("--listen", "0.0.0.0", 7100), ("--metrics-port", "0.0.0.0", 9100)]
    assert replicator.needed == [("--nodes", "h1:1")] and replicator.optional == [("--peers", "h3:3")]
    router = context_of(_ns(["router", "--nodes", "h1:1", "--replicator", "h9:9", "--resolve-wait-s", "3"]))
    assert router.needed == [("--nodes", "h1:1")] and router.optional == [("--replicator", "h9:9")]
    assert router.resolve_wait_s == 3 and router.folders == []
    assert context_of(_ns(["serve", "--in-memory"])).folders == []


def test_command_names():
    assert holders.command_name([sys.executable, "-m", "meridian.main", "--log-level", "INFO", "node", "--x"]) == "meridian node"
    assert holders.command_name(["/usr/local/bin/meridian", "serve"]) == "meridian serve"
    assert holders.command_name(["/usr/bin/python3", "app.py"]) == "python3 app.py"
    assert holders.command_name(["nginx:", "master"]) == "nginx:"


def _holding(code: str) -> subprocess.Popen:
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert child.stdout.readline().strip() == "ready"
    return child


def _release(child: subprocess.Popen) -> None:
    child.stdin.close()
    child.wait(30)


def test_who_listens_on_a_port_and_who_locks_a_file(tmp_path):
    lock = tmp_path / "LOCK"
    child = _holding(f"""
        import fcntl, os, socket, sys
        s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
        fd = os.open({str(lock)!r}, os.O_RDWR | os.O_CREAT); fcntl.lockf(fd, fcntl.LOCK_EX)
        print(s.getsockname()[1], file=open({str(tmp_path / "port")!r}, "w"))
        print("ready", flush=True); sys.stdin.read()
    """)
    try:
        port = int((tmp_path / "port").read_text())
        assert holders.port_holder(port) == child.pid
        assert holders.lock_holder(str(lock)) == child.pid
        assert holders.describe(child.pid) == f"pid {child.pid} ({os.path.basename(sys.executable)})"
    finally:
        _release(child)
    assert holders.lock_holder(str(lock)) is None


def test_the_migration_display_prints_on_stderr(capsys):
    display = migration_display.ConsoleMigrationDisplay("serve")
    display.started("/srv/data", 1, 2)
    bar = display.step("dropping the tombstones of deleted items", 30_000)
    bar.advance(10_000)
    bar.advance(20_000)
    bar.close()
    display.finished("/srv/data", 2, 1.25)
    out = capsys.readouterr()
    assert out.out == ""
    assert "meridian serve: migrating data folder /srv/data from format 1 to 2" in out.err
    assert "meridian serve: data folder /srv/data is now in format 2 (1.2 s)" in out.err


def test_the_one_line_and_the_traceback_with_debug():
    failure = startup_errors.StartupFailure(FailureKind.DISK_FULL, "no space")
    err = io.StringIO()
    real, sys.stderr = sys.stderr, err
    try:
        assert startup_errors.report(failure, "serve") == FailureKind.DISK_FULL.exit_code
        try:
            raise failure
        except startup_errors.StartupFailure as exc:
            startup_errors.report(failure, "serve", exc=exc, debug=True)
    finally:
        sys.stderr = real
    lines = err.getvalue().splitlines()
    assert lines[0] == "meridian serve: no space" and lines[1].startswith("Traceback") and lines[-1] == lines[0]
