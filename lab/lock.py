"""One user of the lab at a time, for tools that own it for a while (tests, scenarios).

The lab has fixed container names and host ports, so two test runs (or a
test and a chaos scenario) on one machine would tear down each other's lab.
``exclusive_lab`` holds an advisory lock (``flock``) on a file in the lab
folder for as long as the ``with`` block runs; the kernel releases it if the
holder dies.  ``meridian lab up``/``down`` themselves do not take it.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from meridian.cluster import limits

LOCK_FILE = "lab.lock"


class LabBusy(TimeoutError):
    """Another process held the lab for longer than we were willing to wait."""


@contextmanager
def exclusive_lab(lab_dir: Path, timeout_s: float) -> Iterator[None]:
    """Hold the lab for the ``with`` block; raise ``LabBusy`` after ``timeout_s`` of waiting."""
    lab_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(lab_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LabBusy(f"the lab in {lab_dir} was held by another process for over {timeout_s:g} s") from None
                time.sleep(limits.LAB_LOCK_POLL_INTERVAL_S)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)  # releases the lock
