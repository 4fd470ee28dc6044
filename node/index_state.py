"""Index state on a node: its catalog copy, which indexes exist, and the
global index side (maintainer bookkeeping, entries received).

Every node keeps a copy of the catalog (``catalog_put`` / ``catalog_list``,
in ``meta``); ``IndexRegistry`` (``node/indexes.py``) compiles each table's
indexes from it.  When a catalog entry changes a table's indexes, the same
write deletes the entries and bookkeeping of an index that went and gives a
new global index its change-log cursor (and backfill position).

Local secondary index entries are written with their items
(``node/write_path.py``).  Global ones are produced from the change log by
every node's GSI maintainer (``node/gsi.py``), whose cursors and per-item
bookkeeping live in ``meta`` (``gsi_position`` / ``gsi_sent_keys`` /
``gsi_advance``, backfill reads through ``table_items``), and arrive at the
node owning them through ``apply_index_entries``, which keeps the entry of
the newest base item version under each key.

A table's Time to Live attribute arrives with its catalog entry too
(``ttl_attribute`` in its description, while TTL is enabled):
``ttl_attributes`` lists them for the sweeper (``node/ttl.py``).

So do its DynamoDB Streams settings (``stream`` and ``stream_label``):
``stream_tables`` maps each table with an enabled stream to the stream's id
for the write path (``node/streams.py``), and ``catalog_put`` records, in
the same write, the period in which a stream this node had enabled ended
(disabled, replaced by a new one, or its table deleted or replaced), which
closes its shards here.
"""

from __future__ import annotations

from collections.abc import Iterable

import orjson
from rocksdict import ReadOptions, WriteBatch

from meridian.model.errors import ResourceNotFoundException
from meridian.model.keycodec import prefix_end, table_prefix
from meridian.model.ops import CatalogEntry, IndexEntry
from meridian.model.records import is_tombstone, pack_record, pack_u64, record_size, record_stamp, unpack_u64
from meridian.model.stamps import VersionStamp, lww_wins
from meridian.node.database import (
    CATALOG_END,
    CATALOG_PREFIX,
    GSI_BACKFILL_PREFIX,
    GSI_CURSOR_PREFIX,
    GSI_REVERSE_PREFIX,
    STATS,
    STREAM_END_PREFIX,
    gsi_key,
    index_stats_key,
    stream_meta_key,
)
from meridian.node.indexes import IndexPlan
from meridian.node.streams import enabled_stream_id, latest_stream_id

_dumps = orjson.dumps
_loads = orjson.loads


class IndexStateMixin:
    """Catalog and index state of ``Engine`` (its state is set up in ``Engine.__init__``)."""

    def catalog_put(self, entry: CatalogEntry) -> None:
        """Store a catalog entry unless a newer revision is already stored.

        The table's secondary indexes follow in the same write: the entries
        and bookkeeping of an index that went are deleted, and a new global
        index gets its change-log cursor (and backfill position).
        """
        key = CATALOG_PREFIX + entry.name.encode()
        current = self._meta.get(key)
        if current is not None and _loads(current)["revision"] > entry.revision:
            return
        self._replica_tables = None
        self._ttl_attributes = None
        self._stream_tables = None
        self._stream_latest = None
        value = _dumps(
            {"revision": entry.revision, "description": entry.description, "deleted": entry.deleted}
        )
        wb = WriteBatch(raw_mode=True)
        wb.put(key, value, self._meta_cf)
        if current is not None:
            self._end_replaced_stream(wb, _loads(current), entry)
        added, removed = self.indexes.apply((entry,))
        for plan in removed:
            self._drop_index(wb, plan)
        for plan in added:
            if plan.is_global and self._meta.get(gsi_key(GSI_CURSOR_PREFIX, plan.index_id)) is None:
                wb.put(gsi_key(GSI_CURSOR_PREFIX, plan.index_id), pack_u64(self._durable_sequence), self._meta_cf)
                if plan.spec.backfill:
                    wb.put(gsi_key(GSI_BACKFILL_PREFIX, plan.index_id), b"", self._meta_cf)
        if removed:
            self._write_behind_groups(wb)
        else:
            self._write(wb)
        if (added or removed) and self.gsi_wakeup is not None:
            self.gsi_wakeup()

    def _end_replaced_stream(self, wb: WriteBatch, stored: dict, entry: CatalogEntry) -> None:
        """If the stored entry had a stream enabled that ``entry`` does not,
        mark the stream ended in the current period (``node/streams.py``)."""
        if stored["deleted"]:
            return
        old = stored["description"]
        old_stream = enabled_stream_id(old)
        if old_stream is None or "table_id" not in old:
            return
        new = entry.description
        if not entry.deleted and new.get("table_id") == old["table_id"] and enabled_stream_id(new) == old_stream:
            return
        period = self._stream_current_period(self.physical_now_ms())
        wb.put(stream_meta_key(STREAM_END_PREFIX, old["table_id"], old_stream), pack_u64(period), self._meta_cf)

    def _drop_index(self, wb: WriteBatch, plan: IndexPlan) -> None:
        index_id = plan.index_id
        start = table_prefix(index_id)
        wb.delete_range(start, prefix_end(start), self._index_cf)
        wb.delete(index_stats_key(index_id), self._meta_cf)
        self._index_stats.pop(index_id, None)
        if plan.is_global:
            wb.delete(gsi_key(GSI_CURSOR_PREFIX, index_id), self._meta_cf)
            wb.delete(gsi_key(GSI_BACKFILL_PREFIX, index_id), self._meta_cf)
            reverse = gsi_key(GSI_REVERSE_PREFIX, index_id)
            wb.delete_range(reverse, prefix_end(reverse), self._meta_cf)

    def catalog_list(self) -> list[CatalogEntry]:
        read_options = ReadOptions()
        read_options.set_iterate_upper_bound(CATALOG_END)
        out = []
        start = len(CATALOG_PREFIX)
        for key, value in self._meta.items(from_key=CATALOG_PREFIX, read_opt=read_options):
            rec = _loads(value)
            out.append(
                CatalogEntry(
                    name=key[start:].decode(),
                    revision=rec["revision"],
                    description=rec["description"],
                    deleted=rec["deleted"],
                )
            )
        return out

    def ttl_attributes(self) -> dict[int, str]:
        """Table id -> Time to Live attribute name, for every live table of
        this node's catalog copy whose description names one."""
        attributes = self._ttl_attributes
        if attributes is None:
            attributes = self._ttl_attributes = {
                entry.description["table_id"]: entry.description["ttl_attribute"]
                for entry in self.catalog_list()
                if not entry.deleted and "table_id" in entry.description and entry.description.get("ttl_attribute")
            }
        return attributes

    def stream_tables(self) -> dict[int, int]:
        """Table id -> id of its enabled stream, for every live table of this
        node's catalog copy with one (the write path's one lookup per write)."""
        tables = self._stream_tables
        if tables is None:
            tables = self._stream_tables = {
                entry.description["table_id"]: stream_id
                for entry in self.catalog_list()
                if not entry.deleted
                and "table_id" in entry.description
                and (stream_id := enabled_stream_id(entry.description)) is not None
            }
        return tables

    def _stream_latest_ids(self) -> dict[int, tuple[int, bool]]:
        """Table id -> (its latest stream's id, enabled or not; whether the
        table is deleted), for every table of the catalog copy."""
        latest = self._stream_latest
        if latest is None:
            latest = self._stream_latest = {
                entry.description["table_id"]: (latest_stream_id(entry.description), entry.deleted)
                for entry in self.catalog_list()
                if "table_id" in entry.description
            }
        return latest

    # --- global secondary indexes: the maintainer's side (node/gsi.py) ------

    def gsi_position(self, index_id: int) -> tuple[int, bytes | None]:
        """``(change-log cursor, backfill position)`` of a global index; the
        position is None once its backfill is done (or if it never had one)."""
        raw = self._meta.get(gsi_key(GSI_CURSOR_PREFIX, index_id))
        if raw is None:
            raise ResourceNotFoundException(f"Index {index_id} is not known on node {self.node_id}")
        return unpack_u64(raw), self._meta.get(gsi_key(GSI_BACKFILL_PREFIX, index_id))

    def gsi_sent_keys(self, index_id: int, table_keys: Iterable[bytes]) -> dict[bytes, bytes]:
        """The index key last sent for each of these items (absent: none)."""
        prefix = gsi_key(GSI_REVERSE_PREFIX, index_id)
        out = {}
        for table_key in table_keys:
            index_key = self._meta.get(prefix + table_key)
            if index_key is not None:
                out[table_key] = index_key
        return out

    def gsi_advance(
        self,
        index_id: int,
        sent: dict[bytes, bytes | None],
        *,
        cursor: int | None = None,
        backfill: bytes | None = None,
        backfill_done: bool = False,
    ) -> None:
        """Record, in one write, that the entries of a batch reached their owners.

        ``sent``: per base item key, the index key now holding its entry
        (None: it has none).  ``cursor``: the last change-log sequence
        covered; ``backfill``: the last item key covered by the backfill.
        An index dropped meanwhile is left alone.
        """
        cursor_key = gsi_key(GSI_CURSOR_PREFIX, index_id)
        if self._meta.get(cursor_key) is None:
            return
        meta = self._meta_cf
        wb = WriteBatch(raw_mode=True)
        prefix = gsi_key(GSI_REVERSE_PREFIX, index_id)
        for table_key, index_key in sent.items():
            if index_key is None:
                wb.delete(prefix + table_key, meta)
            else:
                wb.put(prefix + table_key, index_key, meta)
        if cursor is not None:
            wb.put(cursor_key, pack_u64(cursor), meta)
        if backfill_done:
            wb.delete(gsi_key(GSI_BACKFILL_PREFIX, index_id), meta)
        elif backfill is not None:
            wb.put(gsi_key(GSI_BACKFILL_PREFIX, index_id), backfill, meta)
        self._write(wb)

    def table_items(self, table_id: int, after: bytes, limit: int, bytes_max: int) -> list[tuple[bytes, bytes]]:
        """Live ``(item key, record)`` of a table in key order, after the item
        key ``after`` (empty: from the first): at most ``limit`` of them, and
        none past the one that brings their records to ``bytes_max``."""
        start = table_prefix(table_id)
        read_options = ReadOptions()
        read_options.set_iterate_upper_bound(prefix_end(start))
        out = []
        total = 0
        for key, record in self._items.items(from_key=after + b"\x00" if after else start, read_opt=read_options):
            if is_tombstone(record):
                continue
            out.append((key, record))
            total += len(record)
            if len(out) == limit or total >= bytes_max:
                break
        return out

    def apply_index_entries(self, entries: Iterable[IndexEntry]) -> None:
        """Apply global index entries sent by the nodes' maintainers, durably.

        Last-writer-wins on the base item's version stamp, the rule of
        ``model.stamps.lww_wins``: an entry is ignored when the one held under
        its key would win over it.  An equal stamp is the same base item
        version, hence the same entry: it is written again, which changes
        nothing, so entries sent again change nothing.
        Raises ``ResourceNotFoundException`` for an index this node does not
        know (yet: the catalog reaches nodes one by one), applying nothing.
        """
        if self._failure is not None:
            raise self._failure
        registry = self.indexes.indexes
        wb = WriteBatch(raw_mode=True)
        index_cf = self._index_cf
        staged: dict[bytes, bytes | None] = {}
        changed: set[int] = set()
        entries = list(entries)
        for entry in entries:
            plan = registry.get(entry.index_id)
            if plan is None or not plan.is_global:
                raise ResourceNotFoundException(f"Index {entry.index_id} is not known on node {self.node_id}")
        for entry in entries:
            key = entry.key
            current = staged[key] if key in staged else self._index.get(key)
            if current is not None and lww_wins(record_stamp(current), VersionStamp.unpack(entry.stamp)[0]):
                continue  # the entry held is of a newer version of the base item
            stats = self._index_counters(entry.index_id)
            if current is not None:
                stats[0] -= 1
                stats[1] -= record_size(current)
            if entry.item_json is None:
                if current is not None:
                    wb.delete(key, index_cf)
                staged[key] = None
            else:
                record = pack_record(entry.stamp, entry.item_json, entry.size_bytes)
                wb.put(key, record, index_cf)
                staged[key] = record
                stats[0] += 1
                stats[1] += entry.size_bytes
            changed.add(entry.index_id)
        for index_id in changed:
            wb.put(index_stats_key(index_id), STATS.pack(*self._index_stats[index_id]), self._meta_cf)
        self._write(wb)
        self._index_entries_applied += len(entries)
