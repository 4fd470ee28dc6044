"""Clocks: the system's, and a virtual one for deterministic simulation.

``VirtualTimeLoop`` is an asyncio event loop whose time stands still while
any callback is ready and jumps straight to the next timer once every task
waits (as Trio's ``MockClock`` with ``autojump_threshold=0`` does).  Hours of
simulated replication then run in milliseconds, and since asyncio runs ready
callbacks in FIFO order and nothing real (sockets, threads, wall time) takes
part, a run is a pure function of its seed.  A run in which every task waits
on something no timer will ever wake is a deadlock, and says so.
"""

from __future__ import annotations

import asyncio
import selectors
import time
from collections.abc import Mapping

# 2024-01-01T00:00:00Z: virtual wall time starts here, so stamps look real.
VIRTUAL_EPOCH_MS = 1_704_067_200_000


class SimulationDeadlock(RuntimeError):
    """Every task waits and no timer is set: the simulation can never move again."""


class SystemClock:
    """The process's real clocks."""

    def wall_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def monotonic_s(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def __repr__(self) -> str:
        return "<SystemClock>"


class _VirtualSelector(selectors.BaseSelector):
    """A selector that never waits: it moves the loop's virtual time instead."""

    def __init__(self, loop: VirtualTimeLoop) -> None:
        self._loop = loop
        self._keys: dict[object, selectors.SelectorKey] = {}

    def register(self, fileobj, events, data=None) -> selectors.SelectorKey:
        fd = fileobj if isinstance(fileobj, int) else fileobj.fileno()
        key = selectors.SelectorKey(fileobj, fd, events, data)
        self._keys[fileobj] = key
        return key

    def unregister(self, fileobj) -> selectors.SelectorKey:
        return self._keys.pop(fileobj)

    def select(self, timeout: float | None = None) -> list:
        if timeout is None:
            raise SimulationDeadlock("every task is waiting and no timer is set")
        if timeout > 0:
            self._loop.advance(timeout)
        return []

    def get_map(self) -> Mapping[object, selectors.SelectorKey]:
        return self._keys

    def close(self) -> None:
        self._keys.clear()


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop on virtual time (seconds since the loop was made)."""

    def __init__(self) -> None:
        self._virtual_s = 0.0
        super().__init__(selector=_VirtualSelector(self))

    def time(self) -> float:
        return self._virtual_s

    def advance(self, seconds: float) -> None:
        """Move virtual time forward (only the idle loop itself does this)."""
        self._virtual_s += seconds


class VirtualClock:
    """Time read from a ``VirtualTimeLoop``: wall time starts at ``VIRTUAL_EPOCH_MS``."""

    def __init__(self, loop: VirtualTimeLoop, epoch_ms: int = VIRTUAL_EPOCH_MS) -> None:
        self._loop = loop
        self._epoch_ms = epoch_ms

    def wall_ms(self) -> int:
        return self._epoch_ms + int(self._loop.time() * 1000)

    def monotonic_s(self) -> float:
        return self._loop.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def __repr__(self) -> str:
        return f"<VirtualClock t={self._loop.time():.3f}s>"
