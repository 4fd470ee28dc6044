"""Waiting on real state in tests, never on a bare ``sleep``.

``wait_until(predicate, timeout_s, interval_s, what)`` calls ``predicate``
until it returns something true and returns that value; past ``timeout_s`` it
fails the test with a message naming ``what`` it waited for and the last value
seen.  Exceptions of the types in ``ignoring`` count as "not yet" (a process
still starting, a node still down); the last one is chained to the failure.

A ``time.sleep`` left in a test is the point of that test (nothing may happen
during N seconds, time must pass for a timeout) and says so in a comment.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

#: Pause between two looks, unless a test says otherwise.
WAIT_INTERVAL_S = 0.05


def wait_until(
    predicate: Callable[[], T],
    timeout_s: float,
    interval_s: float = WAIT_INTERVAL_S,
    what: str = "the condition",
    *,
    ignoring: tuple[type[BaseException], ...] = (),
) -> T:
    """Return ``predicate()``'s first true value; fail after ``timeout_s`` naming ``what``."""
    deadline = time.monotonic() + timeout_s
    last: object = None
    error: BaseException | None = None
    while True:
        try:
            last = predicate()
            error = None
        except ignoring as exc:
            last, error = None, exc
        if last:
            return last  # type: ignore[return-value]
        if time.monotonic() >= deadline:
            detail = f"last error: {error!r}" if error is not None else f"last value: {last!r}"
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what} ({detail})") from error
        time.sleep(interval_s)

