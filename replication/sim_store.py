"""The simulation's storage: in-memory nodes with the engine's replication semantics.

Not a mock of ``node/engine.py``, but a small model of exactly what
replication relies on, to run replicators against without RocksDB:

* items stored as the engine stores them: key -> record bytes
  (``model/records.pack_record``: stamp, tombstone flag, size, item JSON);
  a delete leaves a stamped tombstone;
* every local write stamped by a per-node hybrid logical clock (with the
  region's run-time skew) and logged, in the engine's change-log format,
  under the next sequence number;
* ``apply_replicated``: last-writer-wins per item by the production rule
  (``model.stamps.lww_wins``, as ``node/replica.py``), tombstones included;
  an applied change keeps its stamp, is logged like a local write, and the
  node's clock observes it, so a later local write to the item beats it;
* garbage collection: log truncation and tombstone dropping, as
  ``replication/gc.py`` decides.

A real node gets the same behaviour from the engine; these classes are what
the deterministic simulation (``tests/sim``) mostly runs on, because they
cost no RocksDB.  Every write is durable at once (no group commit here).
``tests/sim/engine_store.py`` runs the same worlds on real engines, and the
simulation demands the same trace from both, byte for byte.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Iterator, Sequence

import orjson

from meridian.model.stamps import HybridLogicalClock, VersionStamp, lww_wins
from meridian.model.values import item_size
from meridian.model.changes import Change, LogTruncated
from meridian.model.records import (
    is_tombstone,
    pack_log_record,
    pack_record,
    record_item_json,
    record_stamp,
    unpack_log_record,
)
from meridian.model.changes import LogPosition, change_size_bytes
from meridian.replication.interfaces import Clock


class SimNodeStore:
    """One simulated storage node of a region: items, change log, hybrid clock."""

    def __init__(self, node_id: str, region: str, clock: Clock, skew_ms: int = 0) -> None:
        self._node_id = node_id
        self.region = region
        self._hlc = HybridLogicalClock(clock.wall_ms, skew_ms)
        self._region_stamp_tail = VersionStamp(0, region).pack()[8:]
        self._items: dict[bytes, bytes] = {}
        self._log: list[bytes] = []  # packed change records; _log[i] has sequence _log_base + i + 1
        self._log_base = 0  # sequences up to this one were truncated
        self._waiters: list[asyncio.Future[None]] = []
        self.replicated_applied = 0
        self.replicated_discarded = 0

    @property
    def node_id(self) -> str:
        return self._node_id

    @property
    def skew_ms(self) -> int:
        return self._hlc.skew_ms

    @skew_ms.setter
    def skew_ms(self, value: int) -> None:
        self._hlc.skew_ms = value

    @property
    def last_sequence(self) -> int:
        return self._log_base + len(self._log)

    def __repr__(self) -> str:
        return (
            f"<SimNodeStore {self._node_id}@{self.region} items={len(self._items)} "
            f"log=({self._log_base}, {self.last_sequence}] skew={self.skew_ms}ms>"
        )

    # --- local writes (what the engine's PutItem / DeleteItem do) -----------

    def put(self, table_id: int, key: bytes, item_json: bytes) -> VersionStamp:
        """Store a new item version stamped now; return the stamp."""
        return self._write_local(table_id, key, item_json)

    def delete(self, table_id: int, key: bytes) -> VersionStamp | None:
        """Leave a tombstone stamped now and return the stamp; None, writing
        nothing (not even a clock tick), when there is no live item, as the
        engine's DeleteItem does (DynamoDB writes nothing then)."""
        stored = self._items.get(key)
        if stored is None or is_tombstone(stored):
            return None
        return self._write_local(table_id, key, None)

    def _write_local(self, table_id: int, key: bytes, item_json: bytes | None) -> VersionStamp:
        hlc = self._hlc.tick()
        stamp = VersionStamp(hlc, self.region)
        self._store(table_id, key, stamp.pack(), item_json)
        return stamp

    def _store(self, table_id: int, key: bytes, packed_stamp: bytes, item_json: bytes | None) -> None:
        size = item_size(orjson.loads(item_json)) if item_json is not None else 0
        record = pack_record(packed_stamp, item_json, size)
        self._items[key] = record
        self._log.append(pack_log_record(table_id, key, record))
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    # --- replicated writes --------------------------------------------------

    def apply_replicated(self, changes: Sequence[Change]) -> list[bool]:
        """Last-writer-wins apply; per change, whether it was stored."""
        applied = []
        for change in changes:
            stored = self._items.get(change.key)
            if stored is not None and not lww_wins(change.stamp, record_stamp(stored)):
                self.replicated_discarded += 1
                applied.append(False)
                continue
            self._hlc.observe(change.stamp.hlc)
            self._store(change.table_id, change.key, change.stamp.pack(), change.item_json)
            self.replicated_applied += 1
            applied.append(True)
        return applied

    # --- reading ------------------------------------------------------------

    def get(self, key: bytes) -> tuple[VersionStamp, bytes | None] | None:
        """``(stamp, item JSON or None for a tombstone)``, or None if nothing is stored."""
        record = self._items.get(key)
        if record is None:
            return None
        return record_stamp(record), None if is_tombstone(record) else record_item_json(record)

    def records(self) -> Iterator[tuple[bytes, bytes]]:
        """Every stored ``(key, record)``, tombstones included, as a digest takes them."""
        return iter(self._items.items())

    # --- ChangeSource -------------------------------------------------------

    async def read(self, after_seq: int, changes_max: int, bytes_max: int) -> list[Change]:
        if after_seq < self._log_base:
            raise LogTruncated(f"{self._node_id}: read after {after_seq}, log starts after {self._log_base}")
        out: list[Change] = []
        size = 0
        start = after_seq - self._log_base
        for offset, packed in enumerate(self._log[start : start + changes_max]):
            change = unpack_log_record(after_seq + offset + 1, packed)
            size += change_size_bytes(change)
            if out and size > bytes_max:
                break
            out.append(change)
        return out

    async def log_position(self) -> LogPosition:
        return LogPosition(self.last_sequence, self._hlc.last)

    async def wait_beyond(self, sequence: int) -> None:
        while self.last_sequence <= sequence:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter

    # --- garbage collection -------------------------------------------------

    def truncate_log(self, through_sequence: int) -> int:
        """Delete log entries up to ``through_sequence``; return how many went."""
        n = min(through_sequence, self.last_sequence) - self._log_base
        if n <= 0:
            return 0
        del self._log[:n]
        self._log_base += n
        return n

    def drop_tombstones(self, floor_hlc: int) -> int:
        """Drop tombstones stamped at or below ``floor_hlc``; return how many went."""
        doomed = [
            key
            for key, record in self._items.items()
            if is_tombstone(record) and record_stamp(record).hlc <= floor_hlc
        ]
        for key in doomed:
            del self._items[key]
        return len(doomed)


def owner_index(key: bytes, node_count: int) -> int:
    """Which node of a simulated region owns a key (stable across processes)."""
    return zlib.crc32(key) % node_count


class SimRegionStorage:
    """The nodes of one simulated region, and the region's ``ChangeSink``."""

    def __init__(self, nodes: Sequence[SimNodeStore]) -> None:
        if not nodes:
            raise ValueError("a region needs at least one node")
        self.nodes = tuple(nodes)

    def owner(self, key: bytes) -> SimNodeStore:
        return self.nodes[owner_index(key, len(self.nodes))]

    async def apply(self, changes: Sequence[Change]) -> list[bool]:
        if len(self.nodes) == 1:
            return self.nodes[0].apply_replicated(changes)
        by_node: dict[int, list[int]] = {}
        for i, change in enumerate(changes):
            by_node.setdefault(owner_index(change.key, len(self.nodes)), []).append(i)
        applied = [False] * len(changes)
        for node_index, positions in by_node.items():
            results = self.nodes[node_index].apply_replicated([changes[i] for i in positions])
            for i, ok in zip(positions, results):
                applied[i] = ok
        return applied

    def records(self) -> Iterator[tuple[bytes, bytes]]:
        for node in self.nodes:
            yield from node.records()

    def __repr__(self) -> str:
        return f"<SimRegionStorage nodes={len(self.nodes)}>"
