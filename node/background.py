"""The lifecycle every background task of a node shares.

A storage node runs a few tasks beside its requests, each on the engine's
event loop: the TTL sweeper (``node/ttl.py``), the stream trimmer
(``node/stream_retention.py``), the change-log compactor
(``node/log_compaction.py``) and the PITR checkpointer (``node/pitr.py``).
Each one decides what a pass does and how often; this base class gives
them one way to start, stop and say whether they run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any


class BackgroundTask:
    """``start`` / ``stop`` / ``running`` around a subclass's ``_run`` coroutine."""

    #: The task's name is this prefix and the engine's node id.
    task_prefix = "background"

    _task: asyncio.Task[None] | None = None

    def _run(self) -> Coroutine[Any, Any, None]:
        raise NotImplementedError

    def _node_id(self) -> str:
        return self._engine.node_id  # type: ignore[attr-defined]  # every subclass keeps its engine

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def _state(self) -> str:
        return "running" if self.running else "stopped"

    def start(self) -> None:
        """Start on the running loop, which must be the engine's."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"{self.task_prefix}-{self._node_id()}")

    async def stop(self) -> None:
        """Cancel the task and wait until it ended (a pass cut short starts over at the next start)."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
