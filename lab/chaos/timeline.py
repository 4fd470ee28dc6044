"""Carrying out a planned timeline on a clock.

``run_timeline`` waits until each action's time (seconds since the run's
start, by ``clock``), hands it to ``act`` and goes on to the next one, in
order; then it waits out the scenario's duration.  An action that fails is
kept in the answer and the timeline goes on (a restart must still be tried
after a failed pause).  An action that runs late delays the ones after it
but never reorders them; how late each one ran is in the answer.

The clock is ``meridian.replication.clock``'s: ``SystemClock`` for a real
run, ``VirtualClock`` in tests, where a 40 s scenario plays in
milliseconds.  ``act`` does the blocking work in a thread in a real run
(``asyncio.to_thread``), so the event loop keeps driving the workload.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from meridian.lab.chaos.scenario import Action
from meridian.replication.interfaces import Clock


@dataclass(frozen=True)
class Done:
    """One action as it went: when it started (seconds since the start) and its error, if any."""

    action: Action
    started_s: float
    error: str | None = None

    @property
    def late_s(self) -> float:
        return self.started_s - self.action.t_s


async def run_timeline(
    actions: list[Action], act: Callable[[Action], Awaitable[None]], clock: Clock, duration_s: float
) -> list[Done]:
    """Play ``actions`` (sorted by time) through ``act``; return once ``duration_s`` has passed."""
    start_s = clock.monotonic_s()
    done = []
    for action in actions:
        wait_s = start_s + action.t_s - clock.monotonic_s()
        if wait_s > 0:
            await clock.sleep(wait_s)
        started_s = clock.monotonic_s() - start_s
        try:
            await act(action)
        except Exception as error:  # noqa: BLE001 - recorded; the timeline goes on
            done.append(Done(action, started_s, f"{type(error).__name__}: {error}"))
        else:
            done.append(Done(action, started_s))
    rest_s = start_s + duration_s - clock.monotonic_s()
    if rest_s > 0:
        await clock.sleep(rest_s)
    return done
