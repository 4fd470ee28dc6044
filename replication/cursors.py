"""Where replication cursors live: a file for a replicator process, memory for the simulation.

A cursor only ever needs to be *no later* than what its peer acknowledged:
one that is behind makes the replicator resend changes that idempotent
apply then discards.  So a save may be lost in a crash without harm, as long
as a save that was reported done survives.
"""

from __future__ import annotations

import asyncio
import os

import orjson

from meridian.replication.interfaces import Clock


class MemoryCursorStore:
    """Cursors in a dict: the simulation keeps the store while it kills replicators.

    With a ``clock``, a save takes ``save_delay_s`` (as an fsync would) and
    counts only once that time has passed, so a replicator can die between
    an ack and the save that records it.
    """

    def __init__(self, clock: Clock | None = None, save_delay_s: float = 0.0) -> None:
        self._cursors: dict[tuple[str, str], int] = {}
        self._clock = clock
        self._save_delay_s = save_delay_s
        self.saves = 0

    async def load(self, peer: str, node_id: str) -> int:
        return self._cursors.get((peer, node_id), 0)

    async def save(self, peer: str, node_id: str, sequence: int) -> None:
        if self._clock is not None and self._save_delay_s > 0:
            await self._clock.sleep(self._save_delay_s)
        self._cursors[(peer, node_id)] = sequence
        self.saves += 1

    def snapshot(self) -> dict[tuple[str, str], int]:
        return dict(self._cursors)

    def __repr__(self) -> str:
        return f"<MemoryCursorStore cursors={len(self._cursors)} saves={self.saves}>"


class FileCursorStore:
    """Cursors in one small JSON file, replaced atomically and fsynced on every save.

    The file is rewritten whole (it holds peers x nodes numbers); the write
    runs on a worker thread so fsync never blocks the event loop, and saves
    are serialised so an older snapshot can never overwrite a newer one.
    """

    def __init__(self, path: str) -> None:
        self._path = path
        self._lock = asyncio.Lock()
        self._cursors: dict[str, dict[str, int]] = {}
        try:
            with open(path, "rb") as f:
                self._cursors = orjson.loads(f.read())
        except FileNotFoundError:
            pass

    async def load(self, peer: str, node_id: str) -> int:
        return self._cursors.get(peer, {}).get(node_id, 0)

    async def save(self, peer: str, node_id: str, sequence: int) -> None:
        async with self._lock:
            self._cursors.setdefault(peer, {})[node_id] = sequence
            data = orjson.dumps(self._cursors, option=orjson.OPT_SORT_KEYS)
            await asyncio.to_thread(self._replace, data)

    def _replace(self, data: bytes) -> None:
        tmp = f"{self._path}.tmp"
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self._path)
        directory = os.open(os.path.dirname(os.path.abspath(self._path)), os.O_RDONLY)
        try:
            os.fsync(directory)  # the rename itself must survive a crash
        finally:
            os.close(directory)

    def __repr__(self) -> str:
        return f"<FileCursorStore {self._path!r} peers={len(self._cursors)}>"
