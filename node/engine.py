"""The storage engine of a node: single-item operations on one RocksDB.

One RocksDB database (rocksdict, raw bytes mode) with five column families:

* ``items``: item key -> item record (``model/records.py``): header with the
  version stamp, then the item's wire JSON, returned by GetItem untouched.
  Deletes leave stamped tombstones (needed by last-writer-wins replication).
* ``log``: sequence number -> change record; the change log a replicator
  tails.  Every mutation's log record is in the same write batch as the item
  record, so the log can never miss or invent a change.
* ``meta``: last sequence number, last hybrid-clock value, per-table
  statistics and the catalog copy.  Counters travel in the same batch too, so
  a restart resumes exactly where the durable state ends.
* ``scan``: scan position (``model/ops.py``: table id, partition hash, item
  key) -> empty, one entry per live item, put when an item appears and
  deleted when it goes, in the item's write batch.  A Scan walks it, so a
  table is read in one order on every node and a parallel-scan segment is a
  contiguous range; the items themselves are then point lookups in
  ``items``.
* ``index``: secondary index entries (index key, ``model/ops.py`` -> a
  record as in ``items``: the base item's stamp and its projection).  Local
  secondary index entries are written in their item's write batch, with
  the item collection's size (``meta``), so an acknowledged write is in its
  indexes; global ones arrive from the nodes' GSI maintainers
  (``node/gsi.py``, ``apply_index_entries``), whose cursors and bookkeeping
  live in ``meta`` too.  Which indexes exist comes from the catalog copy
  (``node/indexes.py``).

Range reads (``read_range``: a Query's partition or a Scan's range) read
RocksDB directly, not the group-commit overlay: a write still pending there
is not yet acknowledged, so a read that misses it is simply ordered before
it, and every acknowledged write is in RocksDB.

Every call happens on the node's event-loop thread, so a condition check and
its write form one critical section without locks.  With ``sync=True`` each
write must be fsynced before it is acknowledged; ``execute_many`` then does
**group commit**: writes arriving while the previous fsync is in progress (at
least those of one loop tick) share one batch and one fsync, written by a
dedicated thread.  Until a batch is durable its records stay in an overlay
that reads and condition checks consult, and whoever read from it waits for
that durability before answering.

A failed RocksDB write leaves memory ahead of disk, so the engine stops
(every later op gets InternalServerError); a restart recovers from disk.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial

import orjson
from rocksdict import (
    BlockBasedIndexType,
    BlockBasedOptions,
    Cache,
    DBCompressionType,
    DBRecoveryMode,
    Options,
    ReadOptions,
    Rdict,
    WriteBatch,
    WriteOptions,
)

from meridian.model import limits
from meridian.model.errors import (
    ConditionalCheckFailedException,
    DynamoError,
    InternalServerError,
    ItemCollectionSizeLimitExceededException,
    ResourceNotFoundException,
)
from meridian.model.expressions import compile_expressions, updated_attributes
from meridian.model.keycodec import partition_hash, partition_prefix, prefix_end, table_prefix
from meridian.model.ops import (
    CatalogEntry,
    IndexEntry,
    IndexStats,
    Item,
    ItemOp,
    ItemResult,
    OpKind,
    RangeKind,
    RangeRead,
    RangeResult,
    ReturnValues,
    TableStats,
    index_entry_table_key,
    scan_position,
    scan_position_item_key,
)
from meridian.model.stamps import HybridLogicalClock, VersionStamp, wall_clock_ms
from meridian.model.values import check_item_size, item_size
from meridian.node.indexes import IndexPlan, IndexRegistry, TableIndexes
from meridian.node.replica import ReplicaMixin
from meridian.model.changes import Change
from meridian.model.records import (
    is_tombstone,
    pack_log_record,
    pack_record,
    pack_u64,
    record_item_json,
    record_size,
    record_stamp,
    unpack_log_record,
    unpack_u64,
)

log = logging.getLogger(__name__)

_META_SEQUENCE = b"seq"
_META_HLC = b"hlc"
_STATS_PREFIX = b"stats/"
_CATALOG_PREFIX = b"catalog/"
_CATALOG_END = b"catalog0"  # b"/" + 1: upper bound of the catalog keys
_STATS = struct.Struct(">QQ")  # item count, total item size
_INDEX_STATS_PREFIX = b"istats/"  # + index id: entry count, total entry size
# Item collection sizes (tables with local secondary indexes only): + the
# partition's key prefix (table id, partition key value) -> u64 bytes.
_COLLECTION_PREFIX = b"coll/"
# GSI maintenance, per index id (node/gsi.py): the change-log sequence the
# index entries are sent up to; the backfill position while the index is
# still being built from existing items (absent once done); and, per base
# item, the index key last sent for it (so a change knows the entry it
# replaces).
_GSI_CURSOR_PREFIX = b"gsi/c/"
_GSI_BACKFILL_PREFIX = b"gsi/b/"
_GSI_REVERSE_PREFIX = b"gsi/r/"
_COLLECTION_LIMIT_MESSAGE = "Collection size exceeded."

_BLOCK_CACHE_BYTES = 64 * 1024 * 1024  # shared by every column family
_ITEMS_WRITE_BUFFER_BYTES = 32 * 1024 * 1024
_LOG_WRITE_BUFFER_BYTES = 16 * 1024 * 1024
_SCAN_WRITE_BUFFER_BYTES = 8 * 1024 * 1024
_META_WRITE_BUFFER_BYTES = 4 * 1024 * 1024
_INDEX_WRITE_BUFFER_BYTES = 8 * 1024 * 1024
_BLOOM_BITS_PER_KEY = 10
# Partitioned index/filter pieces are cut at about this size (RocksDB default 4 KB).
_METADATA_BLOCK_BYTES = 4096

_INTERNAL = "Internal server error"

_dumps = orjson.dumps
_loads = orjson.loads
_GET = OpKind.GET
_PUT = OpKind.PUT
_DELETE = OpKind.DELETE


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


class _Batch:
    """Mutations that become durable together (one RocksDB write batch)."""

    __slots__ = ("wb", "writes", "meta_writes", "tables", "indexes", "last_sequence", "last_hlc", "done")

    def __init__(self, done: asyncio.Future[None] | None = None) -> None:
        self.wb = WriteBatch(raw_mode=True)
        self.writes: list[tuple[bytes, bytes]] = []  # (item key, record) put in the overlay
        self.meta_writes: list[tuple[bytes, int]] = []  # (collection key, size) put in the meta overlay
        self.tables: set[int] = set()
        self.indexes: set[int] = set()  # local indexes whose statistics changed
        self.last_sequence = 0
        self.last_hlc = 0  # the clock's last reading when the batch was sealed
        self.done = done  # resolves once the batch is durable (group commit only)


def _column_family_options(cache: Cache, write_buffer_bytes: int, bloom: bool) -> Options:
    opts = Options(raw_mode=True)
    table = BlockBasedOptions()
    table.set_block_cache(cache)
    table.set_cache_index_and_filter_blocks(True)
    table.set_pin_l0_filter_and_index_blocks_in_cache(True)
    # Partitioned index and filters: a large SST file's index and bloom filter
    # are cut into metadata-block-sized pieces, each small enough to live in
    # one shard of the block cache. Unpartitioned, a 1M-key file's ~1.3 MB
    # filter could not stay cached, and every point lookup re-read and
    # decompressed it (Scan of 1M items fell to ~2k items/s in the benchmark).
    table.set_index_type(BlockBasedIndexType.two_level_index_search())
    table.set_partition_filters(True)
    table.set_metadata_block_size(_METADATA_BLOCK_BYTES)
    table.set_pin_top_level_index_and_filter(True)
    if bloom:
        table.set_bloom_filter(_BLOOM_BITS_PER_KEY, False)
    opts.set_block_based_table_factory(table)
    opts.set_write_buffer_size(write_buffer_bytes)
    opts.set_compression_type(DBCompressionType.lz4())
    opts.set_bottommost_compression_type(DBCompressionType.zstd())
    return opts


def _open_db(path: str) -> Rdict:
    cache = Cache(_BLOCK_CACHE_BYTES)
    opts = _column_family_options(cache, _META_WRITE_BUFFER_BYTES, bloom=True)
    opts.create_if_missing(True)
    opts.create_missing_column_families(True)
    opts.set_max_background_jobs(2)
    opts.set_wal_recovery_mode(DBRecoveryMode.point_in_time())
    column_families = {
        # Point lookups dominate: bloom filters skip files without the key.
        "items": _column_family_options(cache, _ITEMS_WRITE_BUFFER_BYTES, bloom=True),
        # Only ever scanned in order from a sequence number: no filter needed.
        "log": _column_family_options(cache, _LOG_WRITE_BUFFER_BYTES, bloom=False),
        "meta": _column_family_options(cache, _META_WRITE_BUFFER_BYTES, bloom=True),
        # Only ever iterated over ranges: no filter needed.
        "scan": _column_family_options(cache, _SCAN_WRITE_BUFFER_BYTES, bloom=False),
        # Ranges for reads, point lookups when a global entry arrives.
        "index": _column_family_options(cache, _INDEX_WRITE_BUFFER_BYTES, bloom=True),
    }
    return Rdict(path, opts, column_families=column_families)


def _stats_key(table_id: int) -> bytes:
    return _STATS_PREFIX + pack_u64(table_id)


def _gsi_key(prefix: bytes, index_id: int) -> bytes:
    return prefix + pack_u64(index_id)


def _index_stats_key(index_id: int) -> bytes:
    return _INDEX_STATS_PREFIX + pack_u64(index_id)


def _collection_key(table_id: int, key_item: Item) -> bytes:
    """The meta key of the size of the item collection ``key_item`` belongs to."""
    for value in key_item.values():
        for tag in value:
            return _COLLECTION_PREFIX + partition_prefix(table_id, tag, value)
    raise ValueError("an item op without key attributes")


def _resolve(fut: asyncio.Future[None], error: DynamoError | None) -> None:
    """Settle a group's durability future, which waiters only ever shield."""
    if fut.done():
        return
    if error is None:
        fut.set_result(None)
    else:
        fut.set_exception(error)
        fut.exception()  # marks it retrieved: nobody may be waiting any more


def _non_empty(attrs: dict) -> bytes | None:
    return _dumps(attrs) if attrs else None


def _scan_position(key: bytes, key_item: Item) -> bytes:
    """An item's scan position, from its key attributes (partition key first)."""
    for value in key_item.values():
        for tag in value:
            return scan_position(key, partition_hash(tag, value))
    raise ValueError("an item op without key attributes")


class Engine(ReplicaMixin):
    """Executes item operations atomically against one RocksDB database.

    Replication's side (last-writer-wins apply, log position, garbage
    collection) is in ``node/replica.py``.
    """

    _batch_type = _Batch  # for the replication mixin, which cannot import this module

    def __init__(
        self,
        path: str,
        *,
        node_id: str,
        region: str = "local",
        sync: bool = False,
        now_ms: Callable[[], int] | None = None,
        item_collection_bytes_max: int = limits.ITEM_COLLECTION_BYTES_MAX,
    ) -> None:
        self.node_id = node_id
        self.region = region
        self.sync = sync
        self._path = path
        # A packed stamp is the clock reading then this constant tail; built
        # once, checked against VersionStamp.pack so the formats cannot drift.
        self._region_tail = VersionStamp(0, region).pack()[8:]
        assert pack_u64(1) + self._region_tail == VersionStamp(1, region).pack()
        try:
            self._db = _open_db(path)
        except Exception as exc:  # RocksDB reports every failure as Exception
            raise InternalServerError(f"cannot open storage at {path}: {exc}") from exc
        db = self._db
        self._items = db.get_column_family("items")
        self._log = db.get_column_family("log")
        self._meta = db.get_column_family("meta")
        self._scan = db.get_column_family("scan")
        self._index = db.get_column_family("index")
        self._items_cf = db.get_column_family_handle("items")
        self._log_cf = db.get_column_family_handle("log")
        self._meta_cf = db.get_column_family_handle("meta")
        self._scan_cf = db.get_column_family_handle("scan")
        self._index_cf = db.get_column_family_handle("index")
        self._write_options = WriteOptions()
        self._write_options.sync = sync
        self._collection_bytes_max = item_collection_bytes_max

        seq = self._meta.get(_META_SEQUENCE)
        self._sequence = unpack_u64(seq) if seq is not None else 0
        self._durable_sequence = self._sequence
        self._clock = HybridLogicalClock(now_ms or wall_clock_ms)
        hlc = self._meta.get(_META_HLC)
        self._last_hlc = self._clock.observe(unpack_u64(hlc)) if hlc is not None else 0
        self._durable_hlc = self._last_hlc  # the clock's last reading as of the durable log end
        self._replica_tables: dict[int, list] | None = None  # table id -> key schema (node/replica.py)
        self._log_waiters: list[asyncio.Future[None]] = []  # ReplicaMixin.wait_beyond
        self.replicated_applied = 0
        self.replicated_discarded = 0

        self._stats: dict[int, list[int]] = {}  # table id -> [item count, size bytes]
        self._index_stats: dict[int, list[int]] = {}  # index id -> [entry count, size bytes]
        self._pending: dict[bytes, bytes] = {}  # overlay: item key -> record not yet durable
        self._pending_meta: dict[bytes, int] = {}  # overlay: collection key -> size not yet durable
        self._group: _Batch | None = None  # open group-commit batch (sync mode)
        self._inflight: deque[_Batch] = deque()  # groups handed to the commit thread, in order
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"commit-{node_id}")
        self._failure: InternalServerError | None = None
        self._closed = False
        self._reads = 0
        self._writes = 0
        self._commits = 0
        self._commit_writes_max = 0
        self._range_reads = 0
        self._range_items_read = 0
        self._index_entries_applied = 0
        self.indexes = IndexRegistry()
        self.indexes.apply(self.catalog_list())
        #: called (on the engine's thread) when global index work may be
        #: waiting: a write to a table with a GSI became durable, or the
        #: set of indexes changed.  Set by the GSI maintainer.
        self.gsi_wakeup: Callable[[], None] | None = None

    def __repr__(self) -> str:
        return (
            f"<Engine {self.node_id} region={self.region} sync={self.sync} path={self._path!r} "
            f"seq={self._sequence} pending={len(self._pending)} inflight_groups={len(self._inflight)}"
            f"{' FAILED' if self._failure else ''}>"
        )

    # --- item operations ---------------------------------------------------

    def execute(self, op: ItemOp) -> ItemResult:
        """Run one operation and make its write durable before returning.

        In sync mode this blocks the calling thread for an fsync of its own;
        a server uses ``execute_many`` / ``execute_async`` instead.
        """
        if self._group is not None:
            self._submit(self._group)  # keep batches in the order they were applied
        batch = _Batch()
        result = self._apply(op, batch)
        if batch.writes:
            self._commit_now(batch)
            if self._failure is not None:
                return ItemResult(error=self._failure)
        return result

    def execute_many(self, ops: Iterable[ItemOp]) -> tuple[list[ItemResult], asyncio.Future[None] | None]:
        """Run operations in order; return their results and what to await.

        The results are final once the returned future (if any) resolves:
        it stands for the durability of every write these results report or
        depend on.  Without ``sync`` the writes are in RocksDB (its WAL)
        already and there is nothing to await.  A future that fails means the
        engine failed: every result is then to be replaced by its error.
        """
        if not self.sync:
            batch = _Batch()
            results = [self._apply(op, batch) for op in ops]
            if batch.writes:
                self._commit_now(batch)
                if self._failure is not None:
                    results = [ItemResult(error=self._failure) for _ in results]
            return results, None
        results = []
        append = results.append
        depends = False
        pending = self._pending
        for op in ops:
            if op.kind == _GET:
                if pending and op.key in pending:
                    depends = True
                append(self._apply(op, None))
                continue
            group = self._group or self._open_group()
            n_writes = len(group.writes)
            append(self._apply(op, group))
            if len(group.writes) != n_writes:
                depends = True
                if len(group.writes) >= limits.GROUP_COMMIT_WRITES_MAX:
                    self._submit(group)
            elif op.key in pending:
                depends = True  # e.g. a failed condition judged on a pending item
        if not depends:
            return results, None
        if self._group is not None:
            return results, self._group.done
        return results, self._inflight[-1].done if self._inflight else None

    async def execute_async(self, op: ItemOp) -> ItemResult:
        """``execute`` for callers on the event loop: group-committed in sync mode."""
        results, durable = self.execute_many((op,))
        if durable is not None:
            try:
                await asyncio.shield(durable)  # a cancelled caller must not cancel the group
            except DynamoError as err:
                return ItemResult(error=err)
        return results[0]

    def _apply(self, op: ItemOp, batch: _Batch | None) -> ItemResult:
        """Evaluate one op against the current state; stage its write in ``batch``."""
        if self._failure is not None:
            return ItemResult(error=self._failure)
        try:
            key = op.key
            record = self._pending.get(key) if self._pending else None
            if record is None:
                record = self._items.get(key)
            if record is not None and is_tombstone(record):
                record = None
            kind = op.kind
            if kind == _GET:
                self._reads += 1
                if record is None:
                    return ItemResult(size_bytes=0)
                # Reads are charged by the whole stored item, projected or not.
                if op.projection is None:
                    return ItemResult(record_item_json(record), size_bytes=record_size(record))
                compiled = compile_expressions(projection=op.projection, names=op.names, legacy=op.legacy)
                projected = _dumps(compiled.project(_loads(record_item_json(record))))
                return ItemResult(projected, size_bytes=record_size(record))
            assert batch is not None
            return self._mutate(op, record, batch)
        except DynamoError as err:
            return ItemResult(error=err)
        except Exception:
            log.exception("operation failed on node %s: %r", self.node_id, op)
            return ItemResult(error=InternalServerError(_INTERNAL))

    def _mutate(self, op: ItemOp, record: bytes | None, batch: _Batch) -> ItemResult:
        kind = op.kind
        rv = op.return_values
        compiled = None
        if op.condition is not None or op.update is not None:
            compiled = compile_expressions(
                condition=op.condition,
                update=op.update,
                names=op.names,
                values=op.values,
                key_attributes=tuple(op.key_item),
                legacy=op.legacy,
            )
        indexes = self.indexes.tables.get(op.table_id) if self.indexes.tables else None
        if indexes is not None and kind == _PUT:
            indexes.check_item(op.item, updating=False)
        old_item = None
        if record is not None and (compiled is not None or rv != ReturnValues.NONE):
            old_item = _loads(record_item_json(record))
        if op.condition is not None and not compiled.condition_matches(old_item):
            return ItemResult(
                error=ConditionalCheckFailedException(
                    item=old_item if op.return_old_on_condition_failure else None
                )
            )
        old_json = record_item_json(record) if record is not None else None
        old_size = record_size(record) if record is not None else 0
        if kind == _PUT:
            item = op.item
            size = op.item_size_bytes if op.item_size_bytes >= 0 else item_size(item)
            collection = self._stage(batch, op, item, _dumps(item), size, record, indexes)
            return ItemResult(
                old_json if rv == ReturnValues.ALL_OLD else None,
                size_bytes=max(size, old_size),
                collection_size_bytes=collection,
            )
        if kind == _DELETE:
            collection = self._stage(batch, op, None, None, 0, record, indexes)
            return ItemResult(
                old_json if rv == ReturnValues.ALL_OLD else None, size_bytes=old_size, collection_size_bytes=collection
            )
        # UPDATE
        if compiled is not None and op.update is not None:
            new_item, touched = compiled.apply_update(old_item, op.key_item)
        else:  # UpdateItem without an update: makes sure the item exists
            new_item, touched = (old_item if old_item is not None else dict(op.key_item)), frozenset()
        if indexes is not None and touched:
            # Only what the update wrote: an item older than an index may
            # hold an attribute that would not fit it (it is then not in it).
            indexes.check_item({name: new_item[name] for name in touched if name in new_item}, updating=True)
        size = check_item_size(new_item, updating=True)
        new_json = _dumps(new_item)
        collection = self._stage(batch, op, new_item, new_json, size, record, indexes)
        if rv == ReturnValues.NONE:
            answer = None
        elif rv == ReturnValues.ALL_NEW:
            answer = new_json
        elif rv == ReturnValues.ALL_OLD:
            answer = old_json
        elif rv == ReturnValues.UPDATED_NEW:
            answer = _non_empty(updated_attributes(new_item, touched))
        elif old_item is None:
            answer = None
        else:
            answer = _non_empty(updated_attributes(old_item, touched))
        return ItemResult(answer, size_bytes=max(size, old_size), collection_size_bytes=collection)

    def _stage(
        self,
        batch: _Batch,
        op: ItemOp,
        item: Item | None,
        item_json: bytes | None,
        size_bytes: int,
        old_record: bytes | None,
        indexes: TableIndexes | None,
        stamp: bytes | None = None,
    ) -> int:
        """Stamp, log, index and count one mutation into ``batch``.

        ``item`` (and its ``item_json``) None is a delete; ``old_record`` is
        the live record it replaces (None: there is none).  The scan entry
        changes only when an item appears or goes.  Returns the size of the
        item's collection after the write when the table has local secondary
        indexes (-1 otherwise); raises ``ItemCollectionSizeLimitExceededException``,
        before staging anything, when the write would grow it past the limit.
        ``stamp`` (packed) is given for a replicated change: it keeps the
        stamp it was written with, the clock observes it, and no limit
        applies (the write was accepted in its own region already).
        """
        table_id = op.table_id
        key = op.key
        local = None
        collection = -1
        if indexes is not None and indexes.local:
            local, collection_key, collection = self._plan_local_indexes(
                indexes.local, op, item, item_json, size_bytes, old_record, stamp is None
            )
        if stamp is None:
            hlc = self._clock.tick()
            self._last_hlc = hlc
            stamp = pack_u64(hlc) + self._region_tail
        else:
            self._last_hlc = self._clock.observe(unpack_u64(stamp[:8]))
        record = pack_record(stamp, item_json, size_bytes)
        self._sequence += 1
        wb = batch.wb
        wb.put(key, record, self._items_cf)
        if item_json is None:
            if old_record is not None:
                wb.delete(_scan_position(key, op.key_item), self._scan_cf)
        elif old_record is None:
            wb.put(_scan_position(key, op.key_item), b"", self._scan_cf)
        wb.put(pack_u64(self._sequence), pack_log_record(table_id, key, record), self._log_cf)
        self._pending[key] = record
        batch.writes.append((key, record))
        batch.tables.add(table_id)
        stats = self._table_counters(table_id)
        if old_record is not None:
            stats[0] -= 1
            stats[1] -= record_size(old_record)
        if item_json is not None:
            stats[0] += 1
            stats[1] += size_bytes
        self._writes += 1
        if local is not None:
            self._stage_local_indexes(batch, stamp, local, collection_key, collection)
        return collection

    # --- local secondary indexes ---------------------------------------------

    def _plan_local_indexes(
        self,
        plans: tuple[IndexPlan, ...],
        op: ItemOp,
        item: Item | None,
        item_json: bytes | None,
        size_bytes: int,
        old_record: bytes | None,
        enforce_limit: bool = True,
    ) -> tuple[list, bytes, int]:
        """The LSI entries a write removes and adds, and its collection's new size."""
        key = op.key
        old_item = None
        old_json = b""
        old_size = 0
        if old_record is not None:
            old_json = record_item_json(old_record)
            old_size = record_size(old_record)
            old_item = _loads(old_json)
        growth = size_bytes - old_size
        changes = []
        for plan in plans:
            old = plan.entry(old_item, old_json, old_size, key) if old_item is not None else None
            new = plan.entry(item, item_json, size_bytes, key) if item is not None else None
            if old is not None:
                growth -= old[2]
            if new is not None:
                growth += new[2]
            changes.append((plan.index_id, old, new))
        collection_key = _collection_key(op.table_id, op.key_item)
        collection = self._collection_size(collection_key) + growth
        if enforce_limit and growth > 0 and collection > self._collection_bytes_max:
            raise ItemCollectionSizeLimitExceededException(_COLLECTION_LIMIT_MESSAGE)
        return changes, collection_key, collection

    def _stage_local_indexes(
        self, batch: _Batch, stamp: bytes, changes: list, collection_key: bytes, collection: int
    ) -> None:
        wb = batch.wb
        index_cf = self._index_cf
        for index_id, old, new in changes:
            stats = self._index_counters(index_id)
            if old is not None:
                stats[0] -= 1
                stats[1] -= old[2]
                if new is None or new[0] != old[0]:
                    wb.delete(old[0], index_cf)
            if new is not None:
                wb.put(new[0], pack_record(stamp, new[1], new[2]), index_cf)
                stats[0] += 1
                stats[1] += new[2]
            batch.indexes.add(index_id)
        if collection:
            wb.put(collection_key, pack_u64(collection), self._meta_cf)
        else:
            wb.delete(collection_key, self._meta_cf)
        self._pending_meta[collection_key] = collection
        batch.meta_writes.append((collection_key, collection))

    def _collection_size(self, collection_key: bytes) -> int:
        size = self._pending_meta.get(collection_key)
        if size is not None:
            return size
        raw = self._meta.get(collection_key)
        return unpack_u64(raw) if raw is not None else 0

    # --- range reads (Query, Scan) -------------------------------------------

    def read_range(self, read: RangeRead) -> RangeResult:
        """Read one page of a key range (``RangeRead`` says what a page is).

        Items are read in key order (QUERY: the ``items`` column family,
        backwards when ``reverse``; INDEX: the ``index`` column family, the
        same way) or in scan order (SCAN: the ``scan`` column family, then
        each item by key).  Tombstones are skipped without counting.  Every
        item read counts towards ``items_max`` and ``bytes_max``; the filter
        then decides whether it is returned.  With ``fetch`` each index entry
        is replaced by its base item, which is what counts and is filtered.
        Raises ``DynamoError`` (an expression the router should have
        rejected, an index this node does not know, or a failed engine).
        """
        if self._failure is not None:
            raise self._failure
        compiled = None
        if read.filter is not None or read.projection is not None:
            compiled = compile_expressions(
                key_condition=read.key_condition,
                filter=read.filter,
                projection=read.projection,
                names=read.names,
                values=read.values,
                legacy=read.legacy,
            )
        matches = compiled.filter_matches if compiled is not None and read.filter is not None else None
        project = compiled.project if compiled is not None and read.projection is not None else None
        count_only = read.count_only
        detail = read.detail
        kind = read.kind
        scan = kind == RangeKind.SCAN
        fetch = None
        if read.fetch:
            fetch, project = self._fetcher(read, project)
        items_get = self._items.get
        items_max = read.items_max
        bytes_max = read.bytes_max
        lower = read.lower

        read_options = ReadOptions()
        read_options.set_iterate_upper_bound(read.upper)
        column_family = self._scan if scan else self._index if kind == RangeKind.INDEX else self._items
        it = column_family.iter(read_options)
        if read.reverse:
            it.seek_to_last()
            step = it.prev
        else:
            it.seek(lower)
            step = it.next
        reverse = read.reverse

        result = RangeResult()
        items = result.items
        positions = result.positions
        sizes = result.sizes
        hits = bytearray()
        scanned = count = bytes_read = 0
        last = None
        while it.valid():
            position = it.key()
            if reverse and position < lower:
                break
            if scan:
                record = items_get(scan_position_item_key(position))
            elif fetch is not None:
                record = fetch(position)
            else:
                record = it.value()
            if record is None or is_tombstone(record):
                # SCAN, fetch: the item went after this iterator's snapshot was taken.
                step()
                continue
            size = record_size(record)
            scanned += 1
            bytes_read += size
            last = position
            item_json = record_item_json(record)
            hit = True
            item = None
            if matches is not None:
                item = _loads(item_json)
                hit = matches(item)
            if hit:
                count += 1
                if not count_only:
                    if project is not None:
                        items.append(_dumps(project(item if item is not None else _loads(item_json))))
                    else:
                        items.append(item_json)
            if detail:
                positions.append(position)
                sizes.append(size)
                hits.append(hit)
            if scanned == items_max or bytes_read >= bytes_max:
                result.more = True
                break
            step()
        result.count = count
        result.scanned = scanned
        result.bytes_read = bytes_read
        result.hits = bytes(hits)
        result.last_position = last
        self._range_reads += 1
        self._range_items_read += scanned
        return result

    def _fetcher(
        self, read: RangeRead, project: Callable[[Item], Item] | None
    ) -> tuple[Callable[[bytes], bytes | None], Callable[[Item], Item] | None]:
        """For a local index read that fetches: the base record of an entry
        (by its index key), and the projection of what is returned."""
        plan = self.indexes.indexes.get(read.table_id)
        if plan is None:
            raise ResourceNotFoundException(f"Index {read.table_id} is not known on node {self.node_id}")
        items_get = self._items.get
        index_schema, base_table_id = plan.key_schema, plan.table_id

        def fetch(position: bytes) -> bytes | None:
            return items_get(index_entry_table_key(position, index_schema, base_table_id))

        projected = plan.projected
        if project is not None or read.whole_items or projected is None:
            return fetch, project

        def project_to_index(item: Item) -> Item:
            return {name: value for name, value in item.items() if name in projected}

        return fetch, project_to_index

    # --- committing --------------------------------------------------------

    def _seal(self, batch: _Batch) -> None:
        """Add the counters as they stand after this batch's mutations."""
        wb = batch.wb
        meta = self._meta_cf
        wb.put(_META_SEQUENCE, pack_u64(self._sequence), meta)
        wb.put(_META_HLC, pack_u64(self._last_hlc), meta)
        for table_id in batch.tables:
            count, size = self._stats[table_id]
            wb.put(_stats_key(table_id), _STATS.pack(count, size), meta)
        for index_id in batch.indexes:
            count, size = self._index_stats[index_id]
            wb.put(_index_stats_key(index_id), _STATS.pack(count, size), meta)
        batch.last_sequence = self._sequence
        batch.last_hlc = self._last_hlc

    def _write(self, wb: WriteBatch) -> None:
        """Write one batch (any thread); a failure stops the engine."""
        if self._failure is not None:
            raise self._failure
        try:
            self._db.write(wb, self._write_options)
        except Exception as exc:
            log.error("RocksDB write failed on node %s, stopping the engine: %s", self.node_id, exc)
            self._failure = InternalServerError(_INTERNAL)
            raise self._failure from exc

    def _commit_now(self, batch: _Batch) -> None:
        """Write ``batch`` before returning, after any group already queued."""
        self._seal(batch)
        try:
            if self._inflight:
                self._executor.submit(self._write, batch.wb).result()
            else:
                self._write(batch.wb)
        except InternalServerError:
            return
        self._retire(batch)

    def _retire(self, batch: _Batch) -> None:
        """A batch is durable: drop its records from the overlay."""
        pending = self._pending
        for key, record in batch.writes:
            if pending.get(key) is record:
                del pending[key]
        pending_meta = self._pending_meta
        for key, size in batch.meta_writes:
            if pending_meta.get(key) == size:
                del pending_meta[key]
        self._commits += 1
        if len(batch.writes) > self._commit_writes_max:
            self._commit_writes_max = len(batch.writes)
        # Group callbacks may run after a later, directly written batch retired.
        if batch.last_sequence > self._durable_sequence:
            self._durable_sequence = batch.last_sequence
            self._durable_hlc = batch.last_hlc
            if self._log_waiters:
                self._wake_log_waiters()
        if self.gsi_wakeup is not None and not self.indexes.global_tables.isdisjoint(batch.tables):
            self.gsi_wakeup()

    def _open_group(self) -> _Batch:
        loop = asyncio.get_running_loop()
        group = self._group = _Batch(loop.create_future())
        loop.call_soon(self._on_tick_end, group)
        return group

    def _on_tick_end(self, group: _Batch) -> None:
        # While an fsync is in progress the group keeps gathering writes;
        # that fsync's completion submits it.
        if self._group is group and not self._inflight:
            self._submit(group)

    def _submit(self, group: _Batch) -> None:
        """Hand the open group to the commit thread."""
        self._group = None
        if not group.writes:
            _resolve(group.done, None)
            return
        self._seal(group)
        self._inflight.append(group)
        loop = group.done.get_loop()
        fut = loop.run_in_executor(self._executor, self._write, group.wb)
        fut.add_done_callback(partial(self._on_flushed, group))

    def _on_flushed(self, group: _Batch, fut: asyncio.Future[None]) -> None:
        assert self._inflight and self._inflight[0] is group
        self._inflight.popleft()
        exc = fut.exception()
        if exc is None:
            self._retire(group)
            _resolve(group.done, None)
        else:
            _resolve(group.done, self._failure or InternalServerError(_INTERNAL))
        if self._group is not None and not self._inflight and not self._closed:
            self._submit(self._group)

    async def wait_durable(self) -> None:
        """Wait until every write applied so far is durable."""
        if self._group is not None:
            self._submit(self._group)
        while self._inflight:
            try:
                await asyncio.shield(self._inflight[-1].done)
            except DynamoError:
                return

    # --- tables and catalog ------------------------------------------------

    def _table_counters(self, table_id: int) -> list[int]:
        stats = self._stats.get(table_id)
        if stats is None:
            raw = self._meta.get(_stats_key(table_id))
            stats = list(_STATS.unpack(raw)) if raw is not None else [0, 0]
            self._stats[table_id] = stats
        return stats

    def _index_counters(self, index_id: int) -> list[int]:
        stats = self._index_stats.get(index_id)
        if stats is None:
            raw = self._meta.get(_index_stats_key(index_id))
            stats = list(_STATS.unpack(raw)) if raw is not None else [0, 0]
            self._index_stats[index_id] = stats
        return stats

    def table_stats(self, table_id: int) -> TableStats:
        count, size = self._table_counters(table_id)
        stats = TableStats(item_count=count, size_bytes=size)
        indexes = self.indexes.tables.get(table_id)
        if indexes is not None:
            for plan in (*indexes.local, *indexes.global_):
                entries, entry_bytes = self._index_counters(plan.index_id)
                backfill_key = _gsi_key(_GSI_BACKFILL_PREFIX, plan.index_id)
                backfilling = plan.is_global and self._meta.get(backfill_key) is not None
                stats.indexes[plan.index_id] = IndexStats(entries, entry_bytes, backfilling)
        return stats

    def _write_behind_groups(self, wb: WriteBatch) -> None:
        """Write ``wb`` after every batch already applied, open group included."""
        if self._group is not None:
            self._submit(self._group)
        if self._inflight:
            self._executor.submit(self._write, wb).result()
        else:
            self._write(wb)

    def drop_table(self, table_id: int) -> None:
        """Delete every item of a table (the change log keeps its history).

        Its index entries go when its catalog entry does (``catalog_put``).
        """
        if self._group is not None:
            self._submit(self._group)
        start = table_prefix(table_id)
        end = prefix_end(start)
        wb = WriteBatch(raw_mode=True)
        wb.delete_range(start, end, self._items_cf)
        wb.delete_range(start, end, self._scan_cf)
        wb.delete(_stats_key(table_id), self._meta_cf)
        collections = _COLLECTION_PREFIX + start
        wb.delete_range(collections, prefix_end(collections), self._meta_cf)
        self._stats[table_id] = [0, 0]
        for key in [k for k in self._pending if start <= k < end]:
            del self._pending[key]
        for key in [k for k in self._pending_meta if k.startswith(collections)]:
            del self._pending_meta[key]
        self._write_behind_groups(wb)

    def catalog_put(self, entry: CatalogEntry) -> None:
        """Store a catalog entry unless a newer revision is already stored.

        The table's secondary indexes follow in the same write: the entries
        and bookkeeping of an index that went are deleted, and a new global
        index gets its change-log cursor (and backfill position).
        """
        key = _CATALOG_PREFIX + entry.name.encode()
        current = self._meta.get(key)
        if current is not None and _loads(current)["revision"] > entry.revision:
            return
        self._replica_tables = None
        value = _dumps(
            {"revision": entry.revision, "description": entry.description, "deleted": entry.deleted}
        )
        wb = WriteBatch(raw_mode=True)
        wb.put(key, value, self._meta_cf)
        added, removed = self.indexes.apply((entry,))
        for plan in removed:
            self._drop_index(wb, plan)
        for plan in added:
            if plan.is_global and self._meta.get(_gsi_key(_GSI_CURSOR_PREFIX, plan.index_id)) is None:
                wb.put(_gsi_key(_GSI_CURSOR_PREFIX, plan.index_id), pack_u64(self._durable_sequence), self._meta_cf)
                if plan.spec.backfill:
                    wb.put(_gsi_key(_GSI_BACKFILL_PREFIX, plan.index_id), b"", self._meta_cf)
        if removed:
            self._write_behind_groups(wb)
        else:
            self._write(wb)
        if (added or removed) and self.gsi_wakeup is not None:
            self.gsi_wakeup()

    def _drop_index(self, wb: WriteBatch, plan: IndexPlan) -> None:
        index_id = plan.index_id
        start = table_prefix(index_id)
        wb.delete_range(start, prefix_end(start), self._index_cf)
        wb.delete(_index_stats_key(index_id), self._meta_cf)
        self._index_stats.pop(index_id, None)
        if plan.is_global:
            wb.delete(_gsi_key(_GSI_CURSOR_PREFIX, index_id), self._meta_cf)
            wb.delete(_gsi_key(_GSI_BACKFILL_PREFIX, index_id), self._meta_cf)
            reverse = _gsi_key(_GSI_REVERSE_PREFIX, index_id)
            wb.delete_range(reverse, prefix_end(reverse), self._meta_cf)

    def catalog_list(self) -> list[CatalogEntry]:
        read_options = ReadOptions()
        read_options.set_iterate_upper_bound(_CATALOG_END)
        out = []
        start = len(_CATALOG_PREFIX)
        for key, value in self._meta.items(from_key=_CATALOG_PREFIX, read_opt=read_options):
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

    # --- global secondary indexes: the maintainer's side (node/gsi.py) ------

    def gsi_position(self, index_id: int) -> tuple[int, bytes | None]:
        """``(change-log cursor, backfill position)`` of a global index; the
        position is None once its backfill is done (or if it never had one)."""
        raw = self._meta.get(_gsi_key(_GSI_CURSOR_PREFIX, index_id))
        if raw is None:
            raise ResourceNotFoundException(f"Index {index_id} is not known on node {self.node_id}")
        return unpack_u64(raw), self._meta.get(_gsi_key(_GSI_BACKFILL_PREFIX, index_id))

    def gsi_sent_keys(self, index_id: int, table_keys: Iterable[bytes]) -> dict[bytes, bytes]:
        """The index key last sent for each of these items (absent: none)."""
        prefix = _gsi_key(_GSI_REVERSE_PREFIX, index_id)
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
        cursor_key = _gsi_key(_GSI_CURSOR_PREFIX, index_id)
        if self._meta.get(cursor_key) is None:
            return
        meta = self._meta_cf
        wb = WriteBatch(raw_mode=True)
        prefix = _gsi_key(_GSI_REVERSE_PREFIX, index_id)
        for table_key, index_key in sent.items():
            if index_key is None:
                wb.delete(prefix + table_key, meta)
            else:
                wb.put(prefix + table_key, index_key, meta)
        if cursor is not None:
            wb.put(cursor_key, pack_u64(cursor), meta)
        if backfill_done:
            wb.delete(_gsi_key(_GSI_BACKFILL_PREFIX, index_id), meta)
        elif backfill is not None:
            wb.put(_gsi_key(_GSI_BACKFILL_PREFIX, index_id), backfill, meta)
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

        An entry older (by its base item's version stamp) than the one held
        under its key is ignored, so entries sent again change nothing.
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
            if current is not None and record_stamp(current) > VersionStamp.unpack(entry.stamp)[0]:
                continue
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
            wb.put(_index_stats_key(index_id), _STATS.pack(*self._index_stats[index_id]), self._meta_cf)
        self._write(wb)
        self._index_entries_applied += len(entries)

    # --- change log --------------------------------------------------------

    def last_sequence(self) -> int:
        """Newest durable change-log sequence number (0: empty log)."""
        return self._durable_sequence

    def read_changes(self, after_seq: int, limit: int) -> Iterator[Change]:
        """Durable changes with a sequence number above ``after_seq``, in order."""
        if limit <= 0:
            return
        end = self._durable_sequence
        for key, value in self._log.items(from_key=pack_u64(after_seq + 1)):
            seq = unpack_u64(key)
            if seq > end:
                return
            yield unpack_log_record(seq, value)
            limit -= 1
            if limit == 0:
                return

    # --- lifecycle ---------------------------------------------------------

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
        )

    async def aclose(self) -> None:
        """Make every applied write durable, then close."""
        await self.wait_durable()
        self.close()

    def close(self) -> None:
        """Close the database; an open group is written first."""
        if self._closed:
            return
        self._closed = True
        group = self._group
        self._group = None
        self._executor.shutdown(wait=True)
        if group is not None and group.writes and self._failure is None:
            self._seal(group)
            try:
                self._write(group.wb)
                self._retire(group)
                _resolve(group.done, None)
            except InternalServerError as err:
                _resolve(group.done, err)
        elif group is not None:
            _resolve(group.done, None)
        self._failure = InternalServerError(_INTERNAL)  # every later op fails cleanly
        self._db.close()
        # RocksDB releases its lock only once no column family object is left.
        self._items = self._log = self._meta = self._scan = self._index = None
        self._items_cf = self._log_cf = self._meta_cf = self._scan_cf = self._index_cf = None
