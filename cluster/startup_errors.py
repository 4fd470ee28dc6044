"""Start-up failures a person can act on: one line on stderr, one exit code each.

A server command (``serve``, ``node``, ``router``, ``replicator``, ``up``;
``lab`` for Docker; a future ``dax`` front gets the same by being wrapped in
``cli/main.py``'s ``_guarded``) that cannot start says what happened and
what to do in one line, and exits with the code of its kind (``FailureKind``,
listed by ``meridian --help``).  The traceback is printed only with
``--log-level debug``.  Anything not recognised here keeps Python's
traceback: it is a bug to report, not a mistake to fix.

Two halves:

* ``preflight``, before anything starts: every port the command will bind is
  free, every host it binds resolves, and the addresses of the processes it
  needs resolve (waiting ``--resolve-wait-s`` for them: in Docker a name
  resolves only once its container runs).
* ``diagnose``, after a failure: reads the exception and its causes
  (``FolderInUse`` and ``DataFormatError`` from ``model/folders.py``, an
  ``OSError``'s errno, RocksDB's words) against what the command was asked
  to use (``StartContext``).

This module imports only the standard library (and ``cluster/holders.py``),
so that ``meridian serve``'s start-up stays as fast as it is.
"""

from __future__ import annotations

import argparse
import enum
import errno
import os
import socket
import sys
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field

from meridian.cluster import holders, limits
from meridian.model.folders import DataFormatError, FolderInUse


class FailureKind(enum.Enum):
    """A kind of start-up failure: (exit code, what ``--help`` calls it)."""

    PORT_IN_USE = (10, "a port to listen on is taken by another process")
    FOLDER_IN_USE = (11, "the data folder is used by another Meridian process")
    NOT_WRITABLE = (12, "the data folder cannot be written (permissions, read-only file system)")
    DISK_FULL = (13, "no space left on the device holding the data folder")
    UNRESOLVED = (14, "a host name (to listen on, or of a node or peer) does not resolve")
    DOCKER_UNUSABLE = (15, "Docker is missing or not running (meridian lab)")
    FORMAT_TOO_NEW = (16, "the data folder was written by a newer Meridian")
    FORMAT_TOO_OLD = (17, "the data folder's format is older than this Meridian migrates")

    @property
    def exit_code(self) -> int:
        return self.value[0]


EXIT_CODES = {kind.exit_code: kind for kind in FailureKind}


def exit_codes_help() -> str:
    """The table ``meridian --help`` ends with."""
    rows = ["   1  any other failure", "   2  a mistake on the command line"]
    rows += [f"  {kind.exit_code}  {kind.value[1]}" for kind in FailureKind]
    return "exit codes when a command cannot start (one line on stderr says why and what to do):\n" + "\n".join(rows)


class StartupFailure(Exception):
    """A recognised start-up failure: its kind and the one line to print."""

    def __init__(self, kind: FailureKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass
class StartContext:
    """What a command was asked to use, as its flags say.

    ``binds``: (flag, host, port) it listens on; ``folders``: (flag, path);
    ``needed``: (flag, HOST:PORT) of processes it cannot work without;
    ``optional``: (flag, HOST:PORT) of processes it copes without (another
    region's replicator): an address of theirs that does not resolve is
    only warned about.
    """

    command: str
    binds: list[tuple[str, str, int]] = field(default_factory=list)
    folders: list[tuple[str, str]] = field(default_factory=list)
    needed: list[tuple[str, str]] = field(default_factory=list)
    optional: list[tuple[str, str]] = field(default_factory=list)
    resolve_wait_s: float = limits.ADDRESS_RESOLVE_WAIT_S_DEFAULT


def _addresses(text: str) -> list[str]:
    """``ID=HOST:PORT,HOST:PORT`` -> the HOST:PORT parts."""
    return [entry.partition("=")[2] or entry for entry in (e.strip() for e in text.split(",")) if entry]


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def context_of(ns: argparse.Namespace) -> StartContext:
    """The context of the command ``ns`` parsed, from whichever of the usual flags it has."""
    ctx = StartContext(ns.command, resolve_wait_s=getattr(ns, "resolve_wait_s", limits.ADDRESS_RESOLVE_WAIT_S_DEFAULT))
    if getattr(ns, "port", None) is not None and hasattr(ns, "host"):
        # ``meridian up`` checks each region's router port itself (cluster/procs.py): only its host here.
        ctx.binds.append(("--port", ns.host, 0 if ns.command == "up" else ns.port))
    listen = getattr(ns, "listen", None)
    if listen:
        host, port = _split(listen)
        ctx.binds.append(("--listen", host, port))
        if getattr(ns, "metrics_port", None) is not None:
            ctx.binds.append(("--metrics-port", host, ns.metrics_port))
    if getattr(ns, "data_dir", None) and not getattr(ns, "in_memory", False):
        ctx.folders.append(("--data-dir", ns.data_dir))
    if getattr(ns, "nodes", None) and isinstance(ns.nodes, str):
        ctx.needed += [("--nodes", address) for address in _addresses(ns.nodes)]
    if getattr(ns, "peers", None):
        # A node's peers are its region's nodes (needed); a replicator's, other regions (not).
        peers = [address for address in _addresses(ns.peers) if address != listen]
        (ctx.optional if ns.command == "replicator" else ctx.needed).extend(("--peers", a) for a in peers)
    if getattr(ns, "replicator", None):
        ctx.optional.append(("--replicator", ns.replicator))
    return ctx


# --- before starting -------------------------------------------------------------


def _unresolved(host: str) -> str | None:
    """Why ``host`` does not resolve (None: it does)."""
    if host in ("", "0.0.0.0", "::", "*"):
        return None
    try:
        socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        return exc.strerror or str(exc)
    except UnicodeError:
        return "not a valid host name"
    return None


def _bind_refusal(host: str, port: int) -> OSError | None:
    """What binding ``host:port`` says now (None: it could be bound), with
    SO_REUSEADDR as servers bind."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host or "0.0.0.0", port))
        except OSError as exc:
            return exc
    return None


def port_in_use(flag: str, port: int, *, what: str = "") -> StartupFailure:
    """Port ``port`` (given with ``flag``; ``what`` it was for) is taken: by
    whom, when that can be seen."""
    pid = holders.port_holder(port)
    holder = holders.describe(pid) if pid is not None and pid != os.getpid() else "another process"
    return StartupFailure(
        FailureKind.PORT_IN_USE,
        f"port {port} {what or f'({flag})'} is already in use by {holder}: stop it, or choose another port with {flag}",
    )


def preflight(ctx: StartContext) -> None:
    """Raise ``StartupFailure`` for what would make the command fail to start."""
    for flag, host, _ in ctx.binds:
        why = _unresolved(host)
        if why is not None:
            raise StartupFailure(FailureKind.UNRESOLVED, f"cannot listen on {host!r} ({flag}): {why}; check the host name")
    for flag, host, port in ctx.binds:
        if port:
            refusal = _bind_refusal(host, port)
            if refusal is not None and refusal.errno == errno.EADDRINUSE:
                raise port_in_use(flag, port)
    for flag, address in ctx.optional:
        why = _unresolved(_split(address)[0])
        if why is not None:
            print(f"meridian {ctx.command}: {flag} address {address} does not resolve now ({why}); "
                  "starting anyway, it is tried again when needed", file=sys.stderr, flush=True)  # fmt: skip
    _wait_for_needed(ctx)


def _wait_for_needed(ctx: StartContext) -> None:
    deadline = time.monotonic() + ctx.resolve_wait_s
    said = False
    while True:
        missing = [(flag, address, why) for flag, address in ctx.needed if (why := _unresolved(_split(address)[0]))]
        if not missing:
            return
        flag, address, why = missing[0]
        if time.monotonic() >= deadline:
            raise StartupFailure(
                FailureKind.UNRESOLVED,
                f"{flag} address {address} does not resolve ({why}"
                + (f", still after {ctx.resolve_wait_s:g} s" if ctx.resolve_wait_s > 0 else "")
                + "): check the host name",
            )
        if not said:
            print(f"meridian {ctx.command}: {flag} address {address} does not resolve yet ({why}); "
                  f"waiting up to {ctx.resolve_wait_s:g} s (--resolve-wait-s)", file=sys.stderr, flush=True)  # fmt: skip
            said = True
        time.sleep(min(limits.ADDRESS_RESOLVE_RETRY_INTERVAL_S, max(0.0, deadline - time.monotonic())))


# --- after a failure ---------------------------------------------------------------


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _folder_of(ctx: StartContext, path: str | None = None) -> tuple[str, str]:
    """(flag, path) of the folder a failure is about: ``path`` if given."""
    if ctx.folders:
        flag, folder = ctx.folders[0]
        return flag, path or folder
    return "--data-dir", path or "the data folder"


def _in_use(error: FolderInUse) -> StartupFailure:
    pid = holders.lock_holder(os.path.join(error.path, "LOCK")) or error.pid
    if pid is not None and pid != os.getpid() and os.path.exists(f"/proc/{pid}"):
        described = holders.describe(pid)
        meridian = described == f"pid {pid}" or described.startswith(f"pid {pid} (meridian")
        holder = f"another Meridian, {described}" if meridian else described
    elif pid == os.getpid():
        holder = "this same process"
    else:
        holder = "another process"
    return StartupFailure(
        FailureKind.FOLDER_IN_USE,
        f"data folder {error.path} is in use by {holder}: stop it, or give this one another --data-dir",
    )


def _format(error: DataFormatError) -> StartupFailure:
    from meridian import __version__

    if error.too_new:
        return StartupFailure(
            FailureKind.FORMAT_TOO_NEW,
            f"{error.what} {error.path} was written by a newer Meridian (format {error.found}; Meridian "
            f"{__version__} reads formats up to {error.newest}): upgrade Meridian, or choose another --data-dir",
        )
    return StartupFailure(
        FailureKind.FORMAT_TOO_OLD,
        f"{error.what} {error.path} is in format {error.found}, older than Meridian {__version__} migrates "
        f"(from {error.oldest}): export its tables with the Meridian that wrote it (aws dynamodb scan "
        "--table-name TABLE --endpoint-url URL > TABLE.json), or choose another --data-dir",
    )


def _taken_port(ctx: StartContext) -> tuple[str, str, int] | None:
    for flag, host, port in ctx.binds:
        if port:
            refusal = _bind_refusal(host, port)
            if refusal is not None and refusal.errno == errno.EADDRINUSE:
                return flag, host, port
    return None


def diagnose(exc: BaseException, ctx: StartContext) -> StartupFailure | None:
    """The start-up failure ``exc`` is (None: not one recognised here)."""
    chain = list(_chain(exc))
    for error in chain:
        if isinstance(error, StartupFailure):
            return error
        if isinstance(error, DataFormatError):
            return _format(error)
        if isinstance(error, FolderInUse):
            return _in_use(error)
    text = " | ".join(str(error) for error in chain)
    codes = {error.errno for error in chain if isinstance(error, OSError) and error.errno}
    named = next((e.filename for e in chain if isinstance(e, OSError) and e.filename), None)
    if errno.ENOSPC in codes or "No space left on device" in text:
        flag, folder = _folder_of(ctx, named)
        return StartupFailure(
            FailureKind.DISK_FULL,
            f"no space left on the device holding {folder}: free some space, or choose another folder with {flag}",
        )
    binding = "bind" in text.lower() or "listen" in text.lower()
    if errno.EADDRINUSE in codes or "address already in use" in text.lower() or (binding and ctx.binds):
        taken = _taken_port(ctx)
        if taken is not None:
            return port_in_use(taken[0], taken[2])
        if errno.EADDRINUSE in codes or "address already in use" in text.lower():
            flag, _, port = ctx.binds[0] if ctx.binds else ("--port", "", 0)
            return port_in_use(flag, port)
    refusals = {errno.EACCES: "permission denied", errno.EPERM: "operation not permitted", errno.EROFS: "read-only file system"}
    reason = next((refusals[code] for code in codes if code in refusals), None)
    if reason is None:
        lowered = text.lower()
        reason = next((words for words in ("permission denied", "read-only file system") if words in lowered), None)
    if reason is not None and not binding and (named or ctx.folders):
        flag, folder = _folder_of(ctx, named)
        return StartupFailure(
            FailureKind.NOT_WRITABLE,
            f"cannot write to {folder} ({reason}): fix its permissions, or choose another folder with {flag}",
        )
    resolution = next((error for error in chain if isinstance(error, socket.gaierror)), None)
    if resolution is not None:
        return StartupFailure(FailureKind.UNRESOLVED, f"a host name does not resolve ({resolution.strerror}): check --host and the addresses given")
    return None


def report(failure: StartupFailure, command: str, *, exc: BaseException | None = None, debug: bool = False) -> int:
    """Print the one line (after the traceback, with ``debug``); return the exit code."""
    if debug and exc is not None:
        traceback.print_exception(exc, file=sys.stderr)
    print(f"meridian {command}: {failure.message}", file=sys.stderr, flush=True)
    return failure.kind.exit_code


# --- a child that could not start (meridian up) -------------------------------------


def child_failure(name: str, returncode: int | None, log_tail: str) -> StartupFailure | None:
    """The failure a child process reported (its exit code, its one line), seen by its supervisor."""
    kind = EXIT_CODES.get(returncode) if returncode is not None else None
    if kind is None:
        return None
    lines = [line for line in log_tail.splitlines() if line.startswith("meridian ") and ": " in line]
    said = lines[-1].split(": ", 1)[1] if lines else kind.value[1]
    return StartupFailure(kind, f"{name} could not start: {said}")
