"""Statistics: what a table and its indexes hold, and the engine's live counters.

Per table, the item count and total item size (DynamoDB's ``ItemCount`` and
``TableSizeBytes``); per secondary index, its entry count and size.  Both
are kept as running counters: loaded from ``meta`` on first use, changed by
each staged write (``node/write_path.py``), written back in the write's own
batch when it is sealed (``node/commit.py``), so they are exact after any
crash.  ``statistics()`` is the engine's introspection record (tests,
``/metrics``).

Per table also the items Time to Live deleted on this node (CloudWatch's
``TimeToLiveDeletedItemCount``; ``node/ttl.py``): counted where the expiry
was issued, not where it is replicated to, and kept in ``meta`` by the
write batch of the deletes it counts.

Wave 2: per-partition capacity accounting (read and write units, token
buckets on the partition's leader, budgets leased to routers) goes in a
sibling ``node/capacity.py`` and reports through this record.
"""

from __future__ import annotations

from dataclasses import dataclass

from meridian.model.ops import IndexStats, TableStats
from meridian.model.records import pack_u64, unpack_u64
from meridian.node.commit import Batch
from meridian.node.database import GSI_BACKFILL_PREFIX, STATS, gsi_key, index_stats_key, stats_key

# meta key prefix: + table id -> u64, the items Time to Live deleted on this node
TTL_DELETED_PREFIX = b"ttldel/"


def ttl_deleted_key(table_id: int) -> bytes:
    return TTL_DELETED_PREFIX + pack_u64(table_id)


@dataclass(frozen=True, slots=True)
class EngineStatistics:
    """Live counters of one engine (for tests and ``/metrics``)."""

    reads: int  # GET operations executed
    writes: int  # mutations stamped and logged
    commits: int  # RocksDB write batches holding mutations
    commit_writes_max: int  # most mutations carried by one batch
    pending_writes: int  # mutations applied but not yet durable
    last_sequence: int  # newest durable change-log sequence number
    range_reads: int = 0  # Query / Scan pages (or merge chunks) served
    range_items_read: int = 0  # items those range reads evaluated
    index_entries_applied: int = 0  # global index entries received from maintainers
    ttl_deleted: int = 0  # items Time to Live deleted (every table) since the engine opened


class StatisticsMixin:
    """Statistics of ``Engine`` (its state is set up in ``Engine.__init__``)."""

    def _table_counters(self, table_id: int) -> list[int]:
        stats = self._stats.get(table_id)
        if stats is None:
            raw = self._meta.get(stats_key(table_id))
            stats = list(STATS.unpack(raw)) if raw is not None else [0, 0]
            self._stats[table_id] = stats
        return stats

    def _index_counters(self, index_id: int) -> list[int]:
        stats = self._index_stats.get(index_id)
        if stats is None:
            raw = self._meta.get(index_stats_key(index_id))
            stats = list(STATS.unpack(raw)) if raw is not None else [0, 0]
            self._index_stats[index_id] = stats
        return stats

    def _ttl_deleted_count(self, table_id: int) -> int:
        count = self._ttl_deleted.get(table_id)
        if count is None:
            raw = self._meta.get(ttl_deleted_key(table_id))
            count = self._ttl_deleted[table_id] = unpack_u64(raw) if raw is not None else 0
        return count

    def _count_ttl_deleted(self, batch: Batch, table_id: int) -> None:
        """One more item of the table expired, counted in the batch deleting it."""
        count = self._ttl_deleted_count(table_id) + 1
        self._ttl_deleted[table_id] = count
        self._ttl_deleted_total += 1
        batch.wb.put(ttl_deleted_key(table_id), pack_u64(count), self._meta_cf)

    def table_stats(self, table_id: int) -> TableStats:
        count, size = self._table_counters(table_id)
        stats = TableStats(item_count=count, size_bytes=size, ttl_deleted_count=self._ttl_deleted_count(table_id))
        indexes = self.indexes.tables.get(table_id)
        if indexes is not None:
            for plan in (*indexes.local, *indexes.global_):
                entries, entry_bytes = self._index_counters(plan.index_id)
                backfill_key = gsi_key(GSI_BACKFILL_PREFIX, plan.index_id)
                backfilling = plan.is_global and self._meta.get(backfill_key) is not None
                stats.indexes[plan.index_id] = IndexStats(entries, entry_bytes, backfilling)
        return stats

    def statistics(self) -> EngineStatistics:
        return EngineStatistics(
            reads=self._reads,
            writes=self._writes,
            commits=self._commits,
            commit_writes_max=self._commit_writes_max,
            pending_writes=len(self._pending),
            last_sequence=self._durable_sequence,
            range_reads=self._range_reads,
            range_items_read=self._range_items_read,
            index_entries_applied=self._index_entries_applied,
            ttl_deleted=self._ttl_deleted_total,
        )
