"""Simulated regions on real storage engines: the production apply path.

``EngineNodeStore`` gives ``world.py`` a real ``Engine`` (``node/engine.py``,
RocksDB in a temporary folder) where it otherwise uses
``replication/sim_store.SimNodeStore``: local writes go through
``Engine.execute``, replicated changes through ``apply_replicated_many``
(``node/replica.py``: last-writer-wins by ``model.stamps.lww_wins``, staged
like a local write, logged with the change's stamp), and the replicator
tails the engine's own change log.  ``replication/`` never imports
``node/``, so this wiring lives here.

Determinism is kept because, without ``sync``, an engine commits every
write batch inline (its commit thread is waited for before ``execute``
returns), its hybrid clock reads the world's virtual clock, and RocksDB
answers in key order: a run depends on nothing but the seed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import orjson

from meridian.model.changes import Change, LogPosition
from meridian.model.keycodec import decode_item_key
from meridian.model.ops import CatalogEntry, ItemOp, OpKind
from meridian.model.records import is_tombstone, record_item_json, record_stamp
from meridian.model.stamps import VersionStamp
from meridian.node.engine import Engine
from meridian.replication.interfaces import Clock

KEY_SCHEMA = [("pk", "S")]
_PAGE = 1 << 30  # read a simulated table in one page: it holds a few dozen items


class EngineNodeStore:
    """One simulated node backed by a real engine (``SimNodeStore``'s interface)."""

    def __init__(self, node_id: str, region: str, clock: Clock, path: str, table_ids: Sequence[int]) -> None:
        self.region = region
        self._table_ids = tuple(table_ids)
        self._skew_ms = 0
        self.engine = Engine(path, node_id=node_id, region=region, sync=False, now_ms=clock.wall_ms)
        for table_id in self._table_ids:
            description = {"table_id": table_id, "key_schema": [list(k) for k in KEY_SCHEMA]}
            self.engine.catalog_put(CatalogEntry(f"t{table_id}", 1, description))

    @property
    def node_id(self) -> str:
        return self.engine.node_id

    @property
    def skew_ms(self) -> int:
        return self._skew_ms

    @skew_ms.setter
    def skew_ms(self, value: int) -> None:
        self._skew_ms = value
        self.engine.set_clock_skew(value)

    def __repr__(self) -> str:
        return f"<EngineNodeStore {self.node_id}@{self.region} log={self.engine.log_position()}>"

    def close(self) -> None:
        self.engine.close()

    # --- local writes -----------------------------------------------------------

    def put(self, table_id: int, key: bytes, item_json: bytes) -> VersionStamp:
        item = orjson.loads(item_json)
        key_item = {name: item[name] for name, _ in KEY_SCHEMA}
        return self._write(ItemOp(OpKind.PUT, table_id, key, key_item, item=item))

    def delete(self, table_id: int, key: bytes) -> VersionStamp | None:
        """None when there was no live item: the engine then writes nothing."""
        before = self.engine.log_position().last_sequence
        result = self.engine.execute(ItemOp(OpKind.DELETE, table_id, key, self._key_item(key)))
        assert result.error is None, result.error
        last = self.engine.log_position().last_sequence
        if last == before:
            return None
        (change,) = self.engine.read_change_batch(last - 1, 1, _PAGE)
        assert change.key == key, (change, key)
        return change.stamp

    def _key_item(self, key: bytes) -> dict:
        return decode_item_key(key, KEY_SCHEMA)

    def _write(self, op: ItemOp) -> VersionStamp:
        result = self.engine.execute(op)
        assert result.error is None, result.error
        last = self.engine.log_position().last_sequence
        (change,) = self.engine.read_change_batch(last - 1, 1, _PAGE)
        assert change.key == op.key, (change, op)
        return change.stamp

    # --- replicated writes ------------------------------------------------------

    def apply_replicated(self, changes: Sequence[Change]) -> list[bool]:
        applied, durable = self.engine.apply_replicated_many(changes)
        assert durable is None  # without sync every write is committed inline
        return applied

    # --- reading ----------------------------------------------------------------

    def records(self) -> Iterator[tuple[bytes, bytes]]:
        for table_id in self._table_ids:
            yield from self.engine.table_records(table_id, b"", _PAGE, _PAGE)

    def get(self, key: bytes) -> tuple[VersionStamp, bytes | None] | None:
        record = dict(self.records()).get(key)
        if record is None:
            return None
        return record_stamp(record), None if is_tombstone(record) else record_item_json(record)

    # --- ChangeSource -----------------------------------------------------------

    async def read(self, after_seq: int, changes_max: int, bytes_max: int) -> list[Change]:
        return self.engine.read_change_batch(after_seq, changes_max, bytes_max)

    async def log_position(self) -> LogPosition:
        return self.engine.log_position()

    async def wait_beyond(self, sequence: int) -> None:
        await self.engine.wait_beyond(sequence)

    # --- garbage collection -----------------------------------------------------

    def truncate_log(self, through_sequence: int) -> int:
        """Truncate as the engine does; return how many entries went."""
        base = self.engine.log_base()
        return max(0, self.engine.truncate_log(through_sequence) - base)

    def drop_tombstones(self, floor_hlc: int) -> int:
        return self.engine.drop_tombstones(floor_hlc)
