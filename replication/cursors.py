"""Where replication cursors live: a file for a replicator process, memory for the simulation.

A cursor only ever needs to be *no later* than what its peer acknowledged:
one that is behind makes the replicator resend changes that idempotent
apply then discards.  So a save may be lost in a crash without harm, as long
as a save that was reported done survives.

A replicator's cursor folder is used by one replicator at a time (a lock on
``LOCK`` held while the process lives, its pid in ``meridian.pid``) and
records its on-disk format in ``format`` (``CURSOR_FORMATS``), so that a
later layout is refused by this build instead of misread.  A folder without
that record was written before it existed: format 1, today's layout.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import os

import orjson

from meridian.model.folders import DataFormatError, FolderInUse
from meridian.replication.interfaces import Clock

#: The cursor folder's formats, oldest first; a format's number is its place here.
CURSOR_FORMATS: tuple[str, ...] = (
    "cursors.json: {peer region: {node id: last acknowledged change-log sequence}}",
)
CURSOR_FORMAT_CURRENT = len(CURSOR_FORMATS)
_FORMAT_FILE = "format"
_LOCK_FILE = "LOCK"
_PID_FILE = "meridian.pid"


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
        """Raises ``FolderInUse`` if another process uses the folder, and
        ``DataFormatError`` if a newer Meridian wrote it."""
        self._path = path
        self._folder_lock = _lock_folder(os.path.dirname(os.path.abspath(path)))
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
        _replace_file(self._path, data)

    def __repr__(self) -> str:
        return f"<FileCursorStore {self._path!r} peers={len(self._cursors)}>"


def _lock_folder(folder: str) -> int:
    """Lock ``folder`` for this process (the lock lasts as long as the
    returned descriptor: the process), check and record its format, and
    write the pid file.  A POSIX record lock: this process may open the
    store again (a test does), another process may not."""
    fd = os.open(os.path.join(folder, _LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno not in (errno.EAGAIN, errno.EACCES):
            raise
        raise FolderInUse(folder, _read_pid(folder), "a replicator holds its lock") from exc
    try:
        _settle_format(folder)
    except BaseException:
        os.close(fd)
        raise
    try:
        with open(os.path.join(folder, _PID_FILE), "w", encoding="ascii") as out:
            out.write(f"{os.getpid()}\n")
    except OSError:
        pass  # only ever read to explain a refused lock
    return fd


def _read_pid(folder: str) -> int | None:
    try:
        with open(os.path.join(folder, _PID_FILE), encoding="ascii") as pid_file:
            return int(pid_file.read().strip())
    except (OSError, ValueError):
        return None


def _settle_format(folder: str) -> None:
    """Refuse a format other than this build's; record it in a folder without a record."""
    path = os.path.join(folder, _FORMAT_FILE)
    try:
        with open(path, encoding="ascii") as record:
            found = int(record.read().strip())
    except FileNotFoundError:
        # No cursor migration exists yet: an unrecorded folder is in today's layout.
        _replace_file(path, f"{CURSOR_FORMAT_CURRENT}\n".encode())
        return
    except ValueError:
        found = 0  # not a number: not a record this build (or any) wrote
    if found != CURSOR_FORMAT_CURRENT:
        raise DataFormatError(folder, found, CURSOR_FORMAT_CURRENT, CURSOR_FORMAT_CURRENT, "cursor folder")


def _replace_file(path: str, data: bytes) -> None:
    """Write ``path`` whole, durably: a synced temporary file renamed over it,
    then the folder synced (the rename itself must survive a crash)."""
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    directory = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
