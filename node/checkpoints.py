"""Checkpoints of a node's database, and the write pause that makes them a cut.

A checkpoint is a RocksDB checkpoint of the whole database (every column
family) under ``<data dir>/checkpoints/<name>/``: hard links to the SST
files, so taking one costs a memtable flush, not a copy.  It records the last
change-log sequence it holds, so a point-in-time restore knows where to
replay the log from (``node/restore.py``).  Each finished checkpoint has a
manifest beside it, ``<name>.json`` (``CheckpointInfo``), written last: a
folder without one is a checkpoint a crash interrupted, removed when the
engine opens.  So checkpoints survive restarts.

**Exactly which writes.**  The checkpoint is taken on the engine's commit
thread, queued behind every group commit already sealed (the open group is
sealed first), and registered as in flight like a group: writes staged
meanwhile wait in the next group, and a direct write queues behind it
(``node/commit.py``).  So it holds every write applied before the call, and
none applied after; ``sequence`` is the last of them.

**The write pause.**  A backup across several nodes must be one cut: every
write acknowledged before CreateBackup is in it, and no writer's later write
without its earlier ones.  A router holds every node (``hold_writes``), then
checkpoints each, then releases them.  While held, client writes are queued,
not refused (``defer_writes``): they run in arrival order at the release
(or when the hold times out, ``WRITE_HOLD_TIMEOUT_S_MAX``, so a router that
died holding a node cannot stall it).  Reads go on.  Writes that are not a
client's (replicated changes, Time to Live expiries, global index entries)
are not held: they are consequences of writes already in the log.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from collections import deque
from collections.abc import Sequence
from functools import partial

import orjson
from rocksdict import Checkpoint

from meridian.model import limits
from meridian.model.backups import CheckpointInfo, check_checkpoint_name, is_pitr_checkpoint
from meridian.model.errors import BackupInUseException, DynamoError, InternalServerError, ResourceInUseException
from meridian.model.ops import ItemOp, ItemResult
from meridian.node.commit import Batch

log = logging.getLogger("meridian.node.engine")

CHECKPOINTS_DIR = "checkpoints"  # under the data folder
_MANIFEST_SUFFIX = ".json"

Deferred = tuple[list[ItemOp], asyncio.Future]


def _folder_bytes(path: str) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def _read_manifest(path: str) -> CheckpointInfo:
    raw = orjson.loads(open(path, "rb").read())
    return CheckpointInfo(raw["name"], raw["sequence"], raw["created_ms"], raw["size_bytes"])


def _write_manifest(path: str, info: CheckpointInfo) -> None:
    """Write the manifest atomically (temporary file, fsync, rename)."""
    body = orjson.dumps(
        {"name": info.name, "sequence": info.sequence, "created_ms": info.created_ms, "size_bytes": info.size_bytes}
    )
    tmp = path + ".tmp"
    with open(tmp, "wb") as out:
        out.write(body)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


class CheckpointMixin:
    """Checkpoint and write-pause methods of ``Engine`` (state set up in ``_open_checkpoints``)."""

    def _open_checkpoints(self) -> None:
        """Load the manifests; remove what an interrupted checkpoint left."""
        folder = self._checkpoints_dir = os.path.join(self._path, CHECKPOINTS_DIR)
        os.makedirs(folder, exist_ok=True)
        self._checkpoints: dict[str, CheckpointInfo] = {}
        self._checkpoints_creating: set[str] = set()
        self._checkpoints_in_use: dict[str, int] = {}  # name -> restores reading it (node/restore.py)
        names = set(os.listdir(folder))
        for entry in names:
            path = os.path.join(folder, entry)
            if entry.endswith(_MANIFEST_SUFFIX):
                name = entry[: -len(_MANIFEST_SUFFIX)]
                if name in names:
                    self._checkpoints[name] = _read_manifest(path)
                else:
                    os.remove(path)
            elif entry.endswith(".tmp"):
                shutil.rmtree(path, ignore_errors=True) if os.path.isdir(path) else os.remove(path)
        for entry in names:
            path = os.path.join(folder, entry)
            if os.path.isdir(path) and not entry.endswith(".tmp") and entry not in self._checkpoints:
                log.warning("node %s: removing interrupted checkpoint %s", self.node_id, entry)
                shutil.rmtree(path, ignore_errors=True)
        self._hold_timers: dict[str, asyncio.TimerHandle] = {}
        self._held: deque[Deferred] = deque()
        self.writes_held_total = 0  # client writes that waited for a release

    # --- checkpoints ---------------------------------------------------------------

    def checkpoints(self) -> list[CheckpointInfo]:
        """Every finished checkpoint, oldest first."""
        return sorted(self._checkpoints.values(), key=lambda info: (info.created_ms, info.name))

    def checkpoint(self, name: str) -> CheckpointInfo | None:
        return self._checkpoints.get(name)

    def checkpoints_in_use(self) -> list[str]:
        """Names of the checkpoints a restore is reading now (``node/restore.py``)."""
        return list(self._checkpoints_in_use)

    def checkpoint_path(self, name: str) -> str:
        return os.path.join(self._checkpoints_dir, check_checkpoint_name(name))

    async def create_checkpoint(self, name: str) -> CheckpointInfo:
        """Checkpoint the whole database as ``name``: every write applied
        before the call, none after (see the module docstring).

        Raises ``ResourceInUseException`` if a checkpoint of that name
        exists (or is being taken), ``InternalServerError`` if RocksDB fails
        (the engine goes on)."""
        path = self.checkpoint_path(name)
        if name in self._checkpoints or name in self._checkpoints_creating:
            raise ResourceInUseException(f"Checkpoint already exists: {name}")
        if self._failure is not None:
            raise self._failure
        self._checkpoints_creating.add(name)
        try:
            if os.path.exists(path):  # a leftover of a failed attempt
                shutil.rmtree(path, ignore_errors=True)
            if self._group is not None:
                self._submit(self._group)
            sequence = self._sequence  # every applied write is sealed into a batch queued before ours
            created_ms = self.physical_now_ms()  # the clock stamps are read against
            loop = asyncio.get_running_loop()
            marker = Batch(loop.create_future())  # in flight like a group: later writes queue behind it
            self._inflight.append(marker)
            work = loop.run_in_executor(self._executor, Checkpoint(self._db).create_checkpoint, path)
            work.add_done_callback(partial(self._on_flushed, marker))
            try:
                await asyncio.shield(work)
            except Exception as exc:  # RocksDB reports every failure as Exception
                log.error("node %s: checkpoint %s failed: %s", self.node_id, name, exc)
                shutil.rmtree(path, ignore_errors=True)
                raise InternalServerError(f"cannot create checkpoint {name}: {exc}") from exc
            size = await loop.run_in_executor(None, _folder_bytes, path)
            info = CheckpointInfo(name, sequence, created_ms, size)
            _write_manifest(path + _MANIFEST_SUFFIX, info)
            self._checkpoints[name] = info
            return info
        finally:
            self._checkpoints_creating.discard(name)

    def delete_checkpoint(self, name: str) -> bool:
        """Delete checkpoint ``name``; False if there was none.  Raises
        ``BackupInUseException`` while a restore reads it."""
        path = self.checkpoint_path(name)
        if name in self._checkpoints_in_use:
            raise BackupInUseException(f"Backup is being restored: {name}")
        info = self._checkpoints.pop(name, None)
        if info is None:
            return False
        try:
            os.remove(path + _MANIFEST_SUFFIX)  # first: a half-deleted folder is then removed on open
        except FileNotFoundError:
            pass
        shutil.rmtree(path, ignore_errors=True)
        return True

    # --- point-in-time recovery's view (node/pitr.py keeps the checkpoints) ---------

    def pitr_tables(self) -> dict[int, int]:
        """Table id -> recovery period in days, for every live table of this
        node's catalog copy with point-in-time recovery enabled."""
        out = {}
        for entry in self.catalog_list():
            description = entry.description
            if entry.deleted or "table_id" not in description or description.get("pitr_enabled_s") is None:
                continue
            days = description.get("pitr_recovery_days") or limits.PITR_RECOVERY_DAYS_DEFAULT
            out[description["table_id"]] = min(max(int(days), limits.PITR_RECOVERY_DAYS_MIN), limits.PITR_RECOVERY_DAYS_MAX)
        return out

    def periodic_checkpoints(self) -> list[CheckpointInfo]:
        """The periodic (``pitr-``) checkpoints, oldest first."""
        return [info for info in self.checkpoints() if is_pitr_checkpoint(info.name)]

    def pitr_log_floor(self) -> int | None:
        """The change log must keep every entry after this sequence: the
        oldest kept periodic checkpoint's (None: no periodic checkpoint).
        Checkpoints exist only while a table has PITR, or for the short grace
        after the router took the first one (``node/pitr.py``)."""
        periodic = self.periodic_checkpoints()
        return min(info.sequence for info in periodic) if periodic else None

    def pitr_window(self) -> int:
        """The creation time (epoch ms) of the oldest periodic checkpoint a
        restore can start from (its log entries all still there); 0 if none."""
        base = self.log_base()
        for info in self.periodic_checkpoints():
            if info.sequence >= base:
                return info.created_ms
        return 0

    # --- the write pause -----------------------------------------------------------

    @property
    def writes_held(self) -> bool:
        """Whether client writes are queued now (some hold is in force)."""
        return bool(self._hold_timers)

    def hold_writes(self, token: str, timeout_s: float) -> None:
        """Queue client writes until ``release_writes(token)`` or ``timeout_s``
        (at most ``WRITE_HOLD_TIMEOUT_S_MAX``) passes.  Holding again with the
        same token restarts its timeout.  Call on the engine's loop."""
        if not timeout_s > 0:
            raise ValueError(f"a write hold needs a positive timeout, got {timeout_s}")
        timeout_s = min(timeout_s, limits.WRITE_HOLD_TIMEOUT_S_MAX)
        old = self._hold_timers.pop(token, None)
        if old is not None:
            old.cancel()
        loop = asyncio.get_running_loop()
        self._hold_timers[token] = loop.call_later(timeout_s, self._hold_expired, token)

    def release_writes(self, token: str) -> bool:
        """End the hold ``token``; once no hold is left, the queued writes
        run in arrival order.  False if the token held nothing (any more)."""
        timer = self._hold_timers.pop(token, None)
        if timer is None:
            return False
        timer.cancel()
        if not self._hold_timers:
            self._run_held()
        return True

    def _hold_expired(self, token: str) -> None:
        if self._hold_timers.pop(token, None) is None:
            return
        log.warning("node %s: write hold %s timed out", self.node_id, token)
        if not self._hold_timers:
            self._run_held()

    def defer_writes(self, ops: Sequence[ItemOp]) -> asyncio.Future:
        """Queue ``ops`` until the writes are released; the future then gets
        what ``execute_many(ops)`` returns (results, what to await)."""
        fut = asyncio.get_running_loop().create_future()
        self._held.append((list(ops), fut))
        self.writes_held_total += len(ops)
        return fut

    async def execute_released(self, op: ItemOp) -> ItemResult:
        """``execute_async(op)``, once the writes are released (``op`` queued meanwhile)."""
        results, durable = await self.defer_writes((op,))
        if durable is not None:
            try:
                await asyncio.shield(durable)  # a cancelled caller must not cancel the group
            except DynamoError as err:
                return ItemResult(error=err)
        return results[0]

    def _run_held(self) -> None:
        """Run the queued writes in order, all in this one callback, so no
        write arriving after the release can pass one queued before it."""
        held = self._held
        while held and not self._hold_timers:
            ops, fut = held.popleft()
            if fut.done():  # its caller went away: nobody is waiting for the answer
                continue
            try:
                fut.set_result(self.execute_many(ops))
            except Exception as exc:  # noqa: BLE001 - the caller gets it
                fut.set_exception(exc)
