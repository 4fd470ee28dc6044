"""The change log's read side and its retention.

Every mutation appends one record to the ``log`` column family
(``node/database.py``) in its own write batch (``node/write_path.py``), so
the log is the single source of everything downstream of a write.  Its
readers here see durable records only (up to ``_durable_sequence``,
advanced when a batch retires, ``node/commit.py``):

* ``read_changes``: a node's GSI maintainer (``node/gsi.py``);
* ``log_position`` / ``read_change_batch`` / ``wait_beyond``: a region's
  replicator (``replication/interfaces.py``: ``ChangeSource``);
* ``truncate_log``: garbage collection (``replication/gc.py`` decides;
  on a node no replicator reads, ``node/log_compaction.py`` trims through
  the durable end), which never deletes what a global index maintainer
  still needs.

DynamoDB Streams do not read this log: a table with a stream gets its own
copy of each change (both images, the event) in the same write batch
(``node/streams.py``), kept by time for the stream's retention, so the
log's garbage collection never waits for a stream consumer.
Point-in-time recovery replays the log from a periodic checkpoint
(``node/restore.py``): ``truncate_log`` keeps every entry after the oldest
kept one (``pitr_log_floor``, ``node/pitr.py``), as it keeps what the GSI
maintainers have not read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

from rocksdict import ReadOptions, WriteBatch

from meridian.model.changes import Change, LogPosition, LogTruncated, change_size_bytes
from meridian.model.records import pack_u64, unpack_log_record, unpack_u64
from meridian.node.database import META_LOG_BASE


class ChangeLogMixin:
    """Change-log methods of ``Engine`` (its state is set up in ``Engine.__init__``)."""

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

    # --- ChangeSource (a region's replicator) -----------------------------------

    def log_position(self) -> LogPosition:
        """The durable log end, and a clock reading every later local change
        exceeds (below the first not yet durable one, if any)."""
        pending = self._group is not None or bool(self._inflight)
        return LogPosition(self._durable_sequence, self._durable_hlc if pending else self._last_hlc)

    def log_base(self) -> int:
        """Sequences up to this one were truncated (0: none ever were)."""
        raw = self._meta.get(META_LOG_BASE)
        return unpack_u64(raw) if raw is not None else 0

    def read_change_batch(self, after_seq: int, changes_max: int, bytes_max: int) -> list[Change]:
        """Durable changes after ``after_seq``: at most ``changes_max``, and
        none past ``bytes_max`` by ``change_size_bytes`` except the first.
        Raises ``LogTruncated`` when entries after ``after_seq`` are gone."""
        if after_seq < self.log_base():
            raise LogTruncated(f"{self.node_id}: read after {after_seq}, log starts after {self.log_base()}")
        out: list[Change] = []
        if changes_max <= 0:
            return out
        end = self._durable_sequence
        total = 0
        read_options = ReadOptions()
        read_options.set_iterate_upper_bound(pack_u64(end + 1))
        for raw_seq, value in self._log.items(from_key=pack_u64(after_seq + 1), read_opt=read_options):
            change = unpack_log_record(unpack_u64(raw_seq), value)
            total += change_size_bytes(change)
            if out and total > bytes_max:
                break
            out.append(change)
            if len(out) == changes_max:
                break
        return out

    async def wait_beyond(self, sequence: int) -> None:
        """Return once the log holds a durable change after ``sequence``."""
        while self._durable_sequence <= sequence:
            if self._failure is not None:
                raise self._failure
            waiter = asyncio.get_running_loop().create_future()
            self._log_waiters.append(waiter)
            await waiter

    def _wake_log_waiters(self) -> None:
        waiters, self._log_waiters = self._log_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    # --- retention ----------------------------------------------------------------

    def truncate_log(self, through_sequence: int) -> int:
        """Delete change-log entries up to ``through_sequence``, but none a
        global index maintainer or a point-in-time restore still needs, and
        none not yet durable; return the sequence truncated through."""
        through = min(through_sequence, self._durable_sequence)
        pitr_floor = self.pitr_log_floor()
        if pitr_floor is not None:
            through = min(through, pitr_floor)
        for plan in self.indexes.global_indexes():
            through = min(through, self.gsi_position(plan.index_id)[0])
        base = self.log_base()
        if through <= base:
            return base
        wb = WriteBatch(raw_mode=True)
        wb.delete_range(pack_u64(base), pack_u64(through + 1), self._log_cf)
        wb.put(META_LOG_BASE, pack_u64(through), self._meta_cf)
        self._write(wb)
        return through
