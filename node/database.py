"""A node's RocksDB database: opening it, its column families, and their layout.

One RocksDB database (rocksdict, raw bytes mode) with six column families:

* ``items``: item key -> item record (``model/records.py``): header with the
  version stamp, then the item's wire JSON, returned by GetItem untouched.
  Deletes leave stamped tombstones (needed by last-writer-wins replication).
* ``log``: sequence number -> change record; the change log that every
  consumer downstream of a write reads (``node/change_log.py``).  Every
  mutation's log record is in the same write batch as the item record, so
  the log can never miss or invent a change.
* ``meta``: last sequence number, last hybrid-clock value, per-table
  statistics and the catalog copy; item collection sizes, GSI maintenance
  bookkeeping, the log's truncation point (keys below).  Counters travel in
  the same batch as the writes they count, so a restart resumes exactly
  where the durable state ends.
* ``scan``: scan position (``model/ops.py``: table id, partition hash, item
  key) -> empty, one entry per live item, put when an item appears and
  deleted when it goes, in the item's write batch.  A Scan walks it, so a
  table is read in one order on every node and a parallel-scan segment is a
  contiguous range; the items themselves are then point lookups in
  ``items``.
* ``index``: secondary index entries (index key, ``model/ops.py`` -> a
  record as in ``items``: the base item's stamp and its projection).
* ``stream``: DynamoDB Streams records (``model/records.py``: ``stream_key``
  -> a stream record), written in the item's batch for tables whose stream
  is enabled, read by shard (``node/streams.py``), trimmed by whole periods
  (``node/stream_retention.py``).  A data folder from before streams gains
  it, empty, when opened (RocksDB creates missing column families).

The folder records its on-disk format (``meta`` key ``format``) and the pid
of the process using it (``meridian.pid``): ``node/data_format.py`` checks,
migrates and stamps it right after RocksDB opens it (docs/data-format.md).
A layout change that an older build would misread (a new column family, a
changed record) is a new format there, with its migration.

Wave 2: a new kind of durable state (transaction locks and staged versions,
TTL sweep positions) gets its keys here, as a ``meta``
prefix or, if it is read in ranges on the hot path, its own column family;
point-in-time recovery takes its RocksDB checkpoints of the database opened
here.  RocksDB's tuning numbers live in ``model/limits.py`` (``ROCKSDB_*``).
"""

from __future__ import annotations

import struct

from rocksdict import (
    BlockBasedIndexType,
    BlockBasedOptions,
    Cache,
    DBCompressionType,
    DBRecoveryMode,
    Options,
    Rdict,
)

from meridian.model import limits
from meridian.model.folders import FolderInUse
from meridian.model.keycodec import partition_prefix
from meridian.model.ops import Item
from meridian.model.records import pack_u64
from meridian.node import data_format

# --- the meta column family's keys ---------------------------------------------

META_SEQUENCE = b"seq"  # -> u64: the last change-log sequence number written
META_HLC = b"hlc"  # -> u64: the hybrid clock's last reading written
META_LOG_BASE = b"logbase"  # -> u64: change-log sequences up to this one were truncated
STATS_PREFIX = b"stats/"  # + table id -> STATS: item count, total item size
INDEX_STATS_PREFIX = b"istats/"  # + index id -> STATS: entry count, total entry size
STATS = struct.Struct(">QQ")  # (count, total size in bytes)
CATALOG_PREFIX = b"catalog/"  # + table name -> JSON: revision, description, deleted
CATALOG_END = b"catalog0"  # b"/" + 1: upper bound of the catalog keys
# Item collection sizes (tables with local secondary indexes only): + the
# partition's key prefix (table id, partition key value) -> u64 bytes.
COLLECTION_PREFIX = b"coll/"
# GSI maintenance, per index id (node/gsi.py): the change-log sequence the
# index entries are sent up to; the backfill position while the index is
# still being built from existing items (absent once done); and, per base
# item, the index key last sent for it (so a change knows the entry it
# replaces).
GSI_CURSOR_PREFIX = b"gsi/c/"
GSI_BACKFILL_PREFIX = b"gsi/b/"
GSI_REVERSE_PREFIX = b"gsi/r/"
# DynamoDB Streams (node/streams.py): the last shard period this node put a
# stream record in, and the last it reported current (every earlier one is
# closed), each with the shard period (ms) it was counted in; per stream
# (+ table id, stream id), the period it ended in on this node (disabled,
# replaced, or its table gone) and the period its records were trimmed through.
# Transactions (node/transactions.py): a prepared transaction's staged
# versions and locked keys, and a coordinator's decisions.
TXN_PREPARED_PREFIX = b"txn/p/"  # + transaction id -> JSON: coordinator, prepared at (ms), staged writes
TXN_DECISION_PREFIX = b"txn/d/"  # + transaction id -> outcome byte, u64 decided at (ms)
META_STREAM_PERIOD = b"stream/p"  # -> u64 period, u64 shard period ms
META_STREAM_FLOOR = b"stream/f"  # -> u64 period, u64 shard period ms: the lowest period still open
STREAM_END_PREFIX = b"stream/e/"  # + table id, stream id -> u64 period
STREAM_TRIM_PREFIX = b"stream/t/"  # + table id, stream id -> u64 period


def stats_key(table_id: int) -> bytes:
    return STATS_PREFIX + pack_u64(table_id)


def index_stats_key(index_id: int) -> bytes:
    return INDEX_STATS_PREFIX + pack_u64(index_id)


def gsi_key(prefix: bytes, index_id: int) -> bytes:
    return prefix + pack_u64(index_id)


def stream_meta_key(prefix: bytes, table_id: int, stream_id: int) -> bytes:
    return prefix + pack_u64(table_id) + pack_u64(stream_id)


def collection_meta_key(table_id: int, key_item: Item) -> bytes:
    """The meta key of the size of the item collection ``key_item`` belongs to."""
    for value in key_item.values():
        for tag in value:
            return COLLECTION_PREFIX + partition_prefix(table_id, tag, value)
    raise ValueError("an item op without key attributes")


# --- opening -------------------------------------------------------------------


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
    table.set_metadata_block_size(limits.ROCKSDB_METADATA_BLOCK_BYTES)
    table.set_pin_top_level_index_and_filter(True)
    if bloom:
        table.set_bloom_filter(limits.ROCKSDB_BLOOM_BITS_PER_KEY, False)
    opts.set_block_based_table_factory(table)
    opts.set_write_buffer_size(write_buffer_bytes)
    opts.set_compression_type(DBCompressionType.lz4())
    opts.set_bottommost_compression_type(DBCompressionType.zstd())
    return opts


def open_database(path: str, *, replicated: bool = True) -> Rdict:
    """Open (or create) the database at ``path`` with its column families,
    in the current on-disk format (an older folder is migrated first;
    ``replicated``: whether a replicator will read this node, which a
    migration may need to know).

    Raises ``FolderInUse`` when another process has it open,
    ``DataFormatError`` (``model/folders.py``) for a format this build
    cannot use, and otherwise whatever RocksDB raises (``Exception``); the
    engine maps them.
    """
    on_disk = data_format.column_families_on_disk(path)
    if on_disk is not None and not set(on_disk) <= set(COLUMN_FAMILIES) | {"default"}:
        data_format.refuse_unknown_column_families(path, on_disk, set(COLUMN_FAMILIES))
    cache = Cache(limits.ROCKSDB_BLOCK_CACHE_BYTES)
    opts = _column_family_options(cache, limits.ROCKSDB_META_WRITE_BUFFER_BYTES, bloom=True)
    opts.create_if_missing(True)
    opts.create_missing_column_families(True)
    opts.set_max_background_jobs(limits.ROCKSDB_BACKGROUND_JOBS_MAX)
    opts.set_wal_recovery_mode(DBRecoveryMode.point_in_time())
    column_families = _column_families(cache)
    try:
        db = Rdict(path, opts, column_families=column_families)
    except Exception as exc:  # RocksDB reports every failure as Exception
        if _is_lock_refusal(str(exc)):
            raise FolderInUse(path, data_format.read_pid_file(path), "its RocksDB lock is held") from exc
        raise
    try:
        data_format.settle_format(db, path, on_disk is not None, replicated=replicated)
    except BaseException:
        db.close()
        raise
    data_format.write_pid_file(path)
    return db


def close_database(db: Rdict, path: str) -> None:
    """Close what ``open_database`` opened (its pid file goes first)."""
    data_format.remove_pid_file(path)
    db.close()


def _is_lock_refusal(message: str) -> bool:
    """RocksDB's words for "another process (or this one) holds LOCK"."""
    return "LOCK" in message and (
        "Resource temporarily unavailable" in message or "lock hold by current process" in message
    )


COLUMN_FAMILIES = ("items", "log", "meta", "scan", "index", "stream")


def _column_families(cache: Cache) -> dict[str, Options]:
    column_families = {
        # Point lookups dominate: bloom filters skip files without the key.
        "items": _column_family_options(cache, limits.ROCKSDB_ITEMS_WRITE_BUFFER_BYTES, bloom=True),
        # Only ever scanned in order from a sequence number: no filter needed.
        "log": _column_family_options(cache, limits.ROCKSDB_LOG_WRITE_BUFFER_BYTES, bloom=False),
        "meta": _column_family_options(cache, limits.ROCKSDB_META_WRITE_BUFFER_BYTES, bloom=True),
        # Only ever iterated over ranges: no filter needed.
        "scan": _column_family_options(cache, limits.ROCKSDB_SCAN_WRITE_BUFFER_BYTES, bloom=False),
        # Ranges for reads, point lookups when a global entry arrives.
        "index": _column_family_options(cache, limits.ROCKSDB_INDEX_WRITE_BUFFER_BYTES, bloom=True),
        # Read in key ranges (a shard), deleted in ranges (trims): no filter.
        "stream": _column_family_options(cache, limits.ROCKSDB_STREAM_WRITE_BUFFER_BYTES, bloom=False),
    }
    assert tuple(column_families) == COLUMN_FAMILIES
    return column_families
