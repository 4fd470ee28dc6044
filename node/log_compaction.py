"""Change-log trimming for a node no replicator reads.

Every write appends a change-log record (``node/change_log.py``); in a
region with a replicator, replication's garbage collection decides how far
each node's log may go (``replication/gc.py``).  ``meridian serve`` and the
nodes of a one-region cluster have no replicator, so nothing ever trimmed
their logs: the log grew by a full copy of every write, forever.  This
task trims such a log every ``interval_s`` through its durable end;
``Engine.truncate_log`` keeps whatever a global index maintainer has not
read yet.  DynamoDB Streams keep their own records (``node/streams.py``),
so they lose nothing.  Started beside the TTL sweeper by ``node/server.py``
(``--no-replicator``: an engine built with ``replicated=False``) and ``EmbeddedStorage``.
"""

from __future__ import annotations

import asyncio
import logging

from meridian.model import limits
from meridian.model.errors import DynamoError
from meridian.node.background import BackgroundTask
from meridian.node.engine import Engine

log = logging.getLogger(__name__)


class LogCompactor(BackgroundTask):
    """Trims one node's change log periodically (no replicator needs it)."""

    task_prefix = "log-trim"

    def __init__(self, engine: Engine, *, interval_s: float = limits.LOCAL_LOG_TRIM_INTERVAL_S) -> None:
        if interval_s <= 0:
            raise ValueError(f"the log trim interval must be positive, got {interval_s}")
        self._engine = engine
        self._interval_s = interval_s
        self.passes = 0
        self.failures = 0
        self.trimmed_through = 0

    def __repr__(self) -> str:
        state = self._state()
        return f"<LogCompactor {self._engine.node_id} {state} through {self.trimmed_through}>"

    def trim(self) -> int:
        """One pass: truncate through the durable log end (less what a
        global index maintainer still needs); returns the sequence kept after."""
        self.trimmed_through = self._engine.truncate_log(self._engine.last_sequence())
        self.passes += 1
        return self.trimmed_through

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                self.trim()
            except DynamoError as err:  # the engine failed: every later write fails too
                self.failures += 1
                log.warning("node %s: change-log trim failed: %s", self._engine.node_id, err)
            except Exception:  # noqa: BLE001 - the next pass tries again
                self.failures += 1
                log.exception("node %s: change-log trim failed", self._engine.node_id)
