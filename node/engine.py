"""The storage engine of a node: single-item operations on one RocksDB.

``Engine`` is the one class callers use.  It is assembled from mixins, one
per job, each in its own module; the state they share is set up here, in
``Engine.__init__``, and nowhere else:

=============================  ================================================
``node/database.py``           opening RocksDB: column families, their options,
                               the keys of the ``meta`` column family
``node/write_path.py``         GetItem / PutItem / UpdateItem / DeleteItem: the
                               critical section, staging one mutation (item,
                               scan entry, LSI entries, log record, statistics)
``node/commit.py``             write batches, group commit and its thread, the
                               pending overlay, stopping on a failed write
``node/range_reads.py``        Query, Scan segments, local index reads
``node/index_state.py``        the catalog copy, which indexes exist, the GSI
                               maintainer's bookkeeping, global entries applied
``node/change_log.py``         reading the change log, and its retention
``node/statistics.py``         table and index statistics, live counters
``node/replica.py``            Global Tables: last-writer-wins apply, digests,
                               clock skew, tombstone garbage collection
``node/streams.py``            DynamoDB Streams: stream records staged with
                               each change, shards by period, reads, trims
``node/indexes.py``            index plans: which entry an item makes (pure)
``node/gsi.py``                the GSI maintainer task (uses the engine)
``node/ttl.py``                the Time to Live sweeper task (uses the engine;
                               its deletes are ``expire_many``, write path)
``node/stream_retention.py``   the task trimming expired stream periods
``node/checkpoints.py``        RocksDB checkpoints (backups, PITR), the write
                               pause that makes them one cut across nodes
``node/restore.py``            a table's items from a checkpoint (and the log,
                               to a point in time) into a new table id
``node/pitr.py``               the task taking periodic checkpoints and
                               deleting those past the recovery period
``node/transactions.py``       transactions: judged and applied at once, or
                               prepared (locks, staged versions), decided,
                               finished; TransactGetItems' reads
``node/txn_recovery.py``       the task resolving prepared transactions
                               whose router went away
=============================  ================================================

Every call happens on the node's event-loop thread (blocking RocksDB work
of group commit runs on the engine's one commit thread), so a condition
check and its write form one critical section without locks.

Where wave 2 goes on a node (``docs/architecture.md``, "Where wave 2 goes"):

* **TTL expiry sweeps**: ``node/ttl.py`` sweeps a node's items; with
  replica sets it runs per partition, on the partition's leader.
* **Stream shards**: built (``node/streams.py``): a copy of each change of
  a table with a stream, in the item's batch, so the change log's retention
  does not depend on stream readers.
* **Transaction locks and staged versions**: built (``node/transactions.py``;
  durable keys in ``node/database.py``, the lock check in ``_apply``).
* **Checkpoints for point-in-time recovery**: built (``node/checkpoints.py``,
  ``node/restore.py``, ``node/pitr.py``): RocksDB checkpoints of the whole
  database, replayed forward with the change log; the oldest periodic one's
  sequence joins log retention (``truncate_log``).
* **Capacity accounting**: a new ``node/capacity.py`` beside
  ``node/statistics.py``, charging the ``size_bytes`` / ``bytes_read`` each
  write and range read computes once.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor

from rocksdict import WriteBatch, WriteOptions

from meridian.model import limits
from meridian.model.errors import InternalServerError
from meridian.model.keycodec import prefix_end, table_prefix
from meridian.model.ops import ItemOp, ItemResult, OpKind
from meridian.model.records import pack_u64, unpack_u64
from meridian.model.stamps import HybridLogicalClock, VersionStamp, wall_clock_ms
from meridian.node.change_log import ChangeLogMixin
from meridian.node.checkpoints import CheckpointMixin
from meridian.node.commit import INTERNAL, Batch, CommitMixin, resolve
from meridian.node.database import COLLECTION_PREFIX, META_HLC, META_SEQUENCE, close_database, open_database, stats_key
from meridian.node.index_state import IndexStateMixin
from meridian.node.indexes import IndexRegistry
from meridian.node.range_reads import RangeReadMixin
from meridian.node.replica import ReplicaMixin
from meridian.node.restore import RestoreMixin
from meridian.node.statistics import EngineStatistics, StatisticsMixin, ttl_deleted_key
from meridian.node.streams import StreamsMixin, check_stream_options
from meridian.node.transactions import TransactionMixin
from meridian.node.write_path import WritePathMixin

__all__ = ["Engine", "EngineStatistics"]


class Engine(
    WritePathMixin,
    CommitMixin,
    RangeReadMixin,
    IndexStateMixin,
    ChangeLogMixin,
    StatisticsMixin,
    ReplicaMixin,
    StreamsMixin,
    CheckpointMixin,
    RestoreMixin,
    TransactionMixin,
):
    """Executes item operations atomically against one RocksDB database.

    Each job is a mixin in its own module (see this module's docstring);
    this class holds their shared state, the table drop and the lifecycle.
    """

    def __init__(
        self,
        path: str,
        *,
        node_id: str,
        region: str = "local",
        sync: bool = False,
        now_ms: Callable[[], int] | None = None,
        item_collection_bytes_max: int = limits.ITEM_COLLECTION_BYTES_MAX,
        stream_retention_s: float = limits.STREAM_RETENTION_S_DEFAULT,
        stream_shard_period_s: float = limits.STREAM_SHARD_PERIOD_S_DEFAULT,
        replicated: bool = True,
    ) -> None:
        """``stream_retention_s``: how long stream records are kept;
        ``stream_shard_period_s``: how long one stream shard takes records
        (``node/streams.py``; labs shorten both).  ``replicated`` False:
        no replicator will ever read this node (``meridian serve``,
        the nodes of a one-region cluster), so a delete removes the item's
        record instead of leaving a stamped tombstone that only
        last-writer-wins replication needs, and its change log is trimmed
        locally (``node/log_compaction.py``)."""
        check_stream_options(stream_retention_s, stream_shard_period_s)
        self.node_id = node_id
        self.region = region
        self.sync = sync
        self._path = path
        # A packed stamp is the clock reading then this constant tail; built
        # once, checked against VersionStamp.pack so the formats cannot drift.
        self._region_tail = VersionStamp(0, region).pack()[8:]
        assert pack_u64(1) + self._region_tail == VersionStamp(1, region).pack()
        try:
            # An older on-disk format is migrated here (node/data_format.py).
            self._db = open_database(path, replicated=replicated)
        except Exception as exc:  # RocksDB reports every failure as Exception
            # The cause (FolderInUse, DataFormatError, an OSError's words) is
            # what `meridian` explains in one line (cluster/startup_errors.py).
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
        self.replicated = replicated

        seq = self._meta.get(META_SEQUENCE)
        self._sequence = unpack_u64(seq) if seq is not None else 0
        self._durable_sequence = self._sequence
        self._now_ms = now_ms or wall_clock_ms
        self._clock = HybridLogicalClock(self._now_ms)
        hlc = self._meta.get(META_HLC)
        self._last_hlc = self._clock.observe(unpack_u64(hlc)) if hlc is not None else 0
        self._durable_hlc = self._last_hlc  # the clock's last reading as of the durable log end
        self._replica_tables: dict[int, list] | None = None  # table id -> key schema (node/replica.py)
        self._ttl_attributes: dict[int, str] | None = None  # table id -> TTL attribute (node/index_state.py)
        self._open_streams(stream_retention_s, stream_shard_period_s)  # node/streams.py
        self._ttl_deleted: dict[int, int] = {}  # table id -> items TTL deleted (node/statistics.py)
        self._ttl_deleted_total = 0
        self._log_waiters: list[asyncio.Future[None]] = []  # ChangeLogMixin.wait_beyond
        self.replicated_applied = 0
        self.replicated_discarded = 0

        self._stats: dict[int, list[int]] = {}  # table id -> [item count, size bytes]
        self._index_stats: dict[int, list[int]] = {}  # index id -> [entry count, size bytes]
        self._pending: dict[bytes, bytes] = {}  # overlay: item key -> record not yet durable
        self._pending_meta: dict[bytes, int] = {}  # overlay: collection key -> size not yet durable
        self._group: Batch | None = None  # open group-commit batch (sync mode)
        self._inflight: deque[Batch] = deque()  # groups handed to the commit thread, in order
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
        self._open_checkpoints()  # node/checkpoints.py
        self._open_transactions()  # node/transactions.py

    def __repr__(self) -> str:
        return (
            f"<Engine {self.node_id} region={self.region} sync={self.sync} path={self._path!r} "
            f"seq={self._sequence} pending={len(self._pending)} inflight_groups={len(self._inflight)}"
            f"{' FAILED' if self._failure else ''}>"
        )

    def execute_async(self, op: ItemOp) -> Awaitable[ItemResult]:
        """``WritePathMixin.execute_async``, but a client write waits while
        writes are held (``node/checkpoints.py``).  Returns the coroutine
        itself: no extra frame per call."""
        if self._hold_timers and op.kind is not OpKind.GET:
            return self.execute_released(op)
        return WritePathMixin.execute_async(self, op)

    def physical_now_ms(self) -> int:
        """The node's physical clock in epoch milliseconds, clock skew included
        (what Time to Live compares expiry times with)."""
        return self._now_ms() + self._clock.skew_ms

    # --- tables ------------------------------------------------------------

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
        wb.delete(stats_key(table_id), self._meta_cf)
        wb.delete(ttl_deleted_key(table_id), self._meta_cf)
        self._ttl_deleted[table_id] = 0
        collections = COLLECTION_PREFIX + start
        wb.delete_range(collections, prefix_end(collections), self._meta_cf)
        self._stats[table_id] = [0, 0]
        for key in [k for k in self._pending if start <= k < end]:
            del self._pending[key]
        for key in [k for k in self._pending_meta if k.startswith(collections)]:
            del self._pending_meta[key]
        self._write_behind_groups(wb)

    # --- lifecycle ---------------------------------------------------------

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
                resolve(group.done, None)
            except InternalServerError as err:
                resolve(group.done, err)
        elif group is not None:
            resolve(group.done, None)
        self._failure = InternalServerError(INTERNAL)  # every later op fails cleanly
        close_database(self._db, self._path)
        # RocksDB releases its lock only once no column family object is left.
        self._items = self._log = self._meta = self._scan = self._index = self._stream = None
        self._items_cf = self._log_cf = self._meta_cf = self._scan_cf = self._index_cf = self._stream_cf = None
