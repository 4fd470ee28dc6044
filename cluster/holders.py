"""Who holds a port or a lock, and what that process is, read from ``/proc``.

A start-up failure is easier to act on when it names the other process
("port 8000 is in use by pid 4242 (meridian serve)").  Linux only, and
best effort: another user's open files are visible to root alone, so every
function here answers None (or a bare pid) rather than fail.
"""

from __future__ import annotations

import os

from meridian.cluster import limits

_LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp's "st" column


def _listening_inodes(port: int) -> set[str]:
    """Socket inodes listening on TCP ``port`` (IPv4 and IPv6), in this network namespace."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table, encoding="ascii") as lines:
                next(lines, None)  # the header
                for line in lines:
                    fields = line.split()
                    if len(fields) < 10 or fields[3] != _LISTEN:
                        continue
                    if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[9] != "0":
                        inodes.add(fields[9])
        except (OSError, ValueError, IndexError):
            continue
    return inodes


def _pids() -> list[int]:
    try:
        return sorted(int(name) for name in os.listdir("/proc") if name.isdigit())
    except OSError:
        return []


def port_holder(port: int) -> int | None:
    """The pid of a process listening on TCP ``port``, when it can be seen."""
    targets = {f"socket:[{inode}]" for inode in _listening_inodes(port)}
    if not targets:
        return None
    scanned = 0
    for pid in _pids():
        folder = f"/proc/{pid}/fd"
        try:
            fds = os.listdir(folder)
        except OSError:
            continue
        for fd in fds:
            scanned += 1
            if scanned > limits.PROC_FDS_SCANNED_MAX:
                return None
            try:
                if os.readlink(f"{folder}/{fd}") in targets:
                    return pid
            except OSError:
                continue
    return None


def lock_holder(path: str) -> int | None:
    """The pid holding a POSIX lock on the file ``path`` (``/proc/locks``), if any."""
    try:
        stat = os.stat(path)
        with open("/proc/locks", encoding="ascii") as lines:
            entries = lines.read().splitlines()
    except OSError:
        return None
    wanted = (os.major(stat.st_dev), os.minor(stat.st_dev), stat.st_ino)
    for entry in entries:
        fields = entry.split()
        # "1: POSIX  ADVISORY  WRITE 4242 fd:01:131090 0 EOF" (a blocked waiter has "->" first)
        if "->" in fields or len(fields) < 6 or fields[1] != "POSIX":
            continue
        try:
            major, minor, inode = fields[5].split(":")
            if (int(major, 16), int(minor, 16), int(inode)) == wanted and int(fields[4]) > 0:
                return int(fields[4])
        except ValueError:
            continue
    return None


def _argv(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as raw:
            return [arg.decode(errors="replace") for arg in raw.read().split(b"\0") if arg]
    except OSError:
        return []


def command_name(argv: list[str]) -> str:
    """``meridian serve`` for any way of running Meridian, else the program's name."""
    for i, arg in enumerate(argv):
        if arg == "meridian.main" or os.path.basename(arg) == "meridian":
            words = iter(argv[i + 1 :])
            for word in words:
                if word == "--log-level":
                    next(words, None)
                elif not word.startswith("-"):
                    return f"meridian {word}"
            return "meridian"
    if not argv:
        return ""
    program = os.path.basename(argv[0])
    if program.startswith("python") and len(argv) > 1 and not argv[1].startswith("-"):
        return f"{program} {os.path.basename(argv[1])}"
    return program


def parent_pid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return int(stat.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def describe(pid: int) -> str:
    """``pid 4242 (meridian node, started by meridian up pid 4200)``, as much as can be read."""
    name = command_name(_argv(pid))
    if not name:
        return f"pid {pid}"
    parent = parent_pid(pid)
    if parent is not None and parent > 1 and name.startswith("meridian "):
        parent_name = command_name(_argv(parent))
        if parent_name in ("meridian up", "meridian demo", "meridian chaos"):
            return f"pid {pid} ({name}, started by {parent_name} pid {parent})"
    return f"pid {pid} ({name})"
