"""Run a coroutine on virtual time (for tests that drive replication pieces directly)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from meridian.replication.clock import VirtualClock, VirtualTimeLoop

T = TypeVar("T")


def run_virtual(main: Callable[[VirtualClock], Awaitable[T]]) -> T:
    """``main(clock)`` on a fresh ``VirtualTimeLoop``; tasks it leaves behind are cancelled."""
    loop = VirtualTimeLoop()
    try:
        return loop.run_until_complete(main(VirtualClock(loop)))
    finally:
        leftover = asyncio.all_tasks(loop)
        for task in leftover:
            task.cancel()
        if leftover:
            loop.run_until_complete(asyncio.gather(*leftover, return_exceptions=True))
        loop.close()
