"""DynamoDB Streams retention: the task that trims a node's expired periods.

A stream record is kept ``stream_retention_s`` (DynamoDB's 24 hours).  A
period that ended longer ago than that already reads as trimmed
(``Engine.read_stream`` raises ``TrimmedDataAccessException`` at once);
this task only reclaims its space: every ``interval_s`` it calls
``Engine.trim_streams``, which deletes whole periods with one range delete
per stream.  Started beside the TTL sweeper by ``node/server.py`` and
``EmbeddedStorage``.
"""

from __future__ import annotations

import asyncio
import logging

from meridian.model import limits
from meridian.model.errors import DynamoError
from meridian.node.background import BackgroundTask
from meridian.node.engine import Engine

log = logging.getLogger(__name__)


def trim_interval_s(retention_s: float) -> float:
    """How often to trim: ``STREAM_TRIM_INTERVAL_S``, or more often for a
    short retention (a lab's), so records outlive it by little."""
    return min(limits.STREAM_TRIM_INTERVAL_S, retention_s * limits.STREAM_TRIM_INTERVAL_FRACTION)


class StreamTrimmer(BackgroundTask):
    """Trims one node's expired stream periods, periodically."""

    task_prefix = "stream-trim"

    def __init__(self, engine: Engine, *, interval_s: float | None = None) -> None:
        """``interval_s``: between trims (default: ``trim_interval_s`` of the
        engine's retention)."""
        if interval_s is None:
            interval_s = trim_interval_s(engine.stream_retention_s)
        if interval_s <= 0:
            raise ValueError(f"the stream trim interval must be positive, got {interval_s}")
        self._engine = engine
        self._interval_s = interval_s
        self.passes = 0
        self.streams_trimmed = 0
        self.failures = 0

    def __repr__(self) -> str:
        state = self._state()
        return f"<StreamTrimmer {self._engine.node_id} {state} every {self._interval_s}s passes={self.passes}>"

    async def _run(self) -> None:
        while True:
            try:
                self.streams_trimmed += self._engine.trim_streams()
                self.passes += 1
            except DynamoError as err:  # the engine failed: every later write fails too
                self.failures += 1
                log.warning("node %s: stream trim failed: %s", self._engine.node_id, err)
            except Exception:  # noqa: BLE001 - the next pass tries again
                self.failures += 1
                log.exception("node %s: stream trim failed", self._engine.node_id)
            await asyncio.sleep(self._interval_s)
