"""DynamoDB Streams on a node: its stream records, cut into shards by time.

For every table whose stream is enabled in this node's catalog copy
(``stream_tables``, ``node/index_state.py``), ``_stage`` (``node/write_path.py``)
puts one stream record per change into the ``stream`` column family, in the
item's write batch: INSERT, MODIFY or REMOVE, both images kept
(``model/records.py``), keyed by (table, stream, period, change-log
sequence).  A change that leaves the item as it was (same bytes, or same
size and equal once parsed, maps and sets in any order) and a delete of a
missing item write none.
Replicated changes that win and Time to Live deletes (``by_service``) write
records like client writes.

**Periods.**  A record goes into the period of its staging time on this
node's physical clock (``now_ms // shard period``), never into one lower
than a period this node already used or reported (``_stream_floor``), and
never before the stream's own first period.  Each (node, stream, period) is
one shard; a node's shards of a stream form a chain.  The last period used
and the last one reported current are kept in ``meta``, so periods never go
back across a restart either.

**Closed shards.**  Shard k is closed once the stream is no longer this
table's enabled stream on this node (``_stream_status``) or the current
period is past k - and every stream record of period <= k this node staged
is durable (``_staged_through``), so a consumer that read a closed shard to
its end has seen every record it will ever hold.  Reads see durable
records only (sequence <= ``_durable_sequence``).

**Retention.**  Periods that ended more than ``stream_retention_s`` ago
count as trimmed at once (``TrimmedDataAccessException``); ``trim_streams``
(run by ``node/stream_retention.py``) deletes them, remembering per stream
the period trimmed through.  The change log is a separate copy, unaffected.
"""

from __future__ import annotations

import struct
from typing import Any

import orjson
from rocksdict import ReadOptions, WriteBatch

from meridian.model import limits
from meridian.model.errors import TrimmedDataAccessException
from meridian.model.keycodec import prefix_end
from meridian.model.records import (
    U64_MAX,
    pack_stream_record,
    pack_u64,
    record_item_json,
    record_size,
    stream_key,
    stream_key_sequence,
    unpack_stream_record,
    unpack_u64,
)
from meridian.model.streams import (
    ShardState,
    StreamEvent,
    StreamPage,
    StreamRead,
    StreamShards,
    shard_period_ms,
    stream_id_from_label,
)
from meridian.node.commit import Batch
from meridian.node.database import (
    META_STREAM_FLOOR,
    META_STREAM_PERIOD,
    STREAM_END_PREFIX,
    STREAM_TRIM_PREFIX,
    stream_meta_key,
)

_dumps = orjson.dumps
_loads = orjson.loads
_STREAM_PREFIX = struct.Struct(">QQ")  # table id, stream id: the first 16 bytes of a stream key
_PERIOD_AT = _STREAM_PREFIX.size  # offset of the period in a stream key
_SHARD_PREFIX = struct.Struct(">QQQ")  # table id, stream id, period: a shard's keys start so
_INSERT = StreamEvent.INSERT
_MODIFY = StreamEvent.MODIFY
_REMOVE = StreamEvent.REMOVE


def enabled_stream_id(description: dict[str, Any]) -> int | None:
    """The id of a table's enabled stream, from its catalog description
    (the table record, ``router/table_record.py``); None: no stream."""
    stream = description.get("stream")
    label = description.get("stream_label")
    if not stream or not stream.get("StreamEnabled", True) or not label:
        return None
    return stream_id_from_label(label)


def latest_stream_id(description: dict[str, Any]) -> int:
    """The id of a table's latest stream, enabled or not (a disabled
    stream keeps its label in the record); 0: it never had one."""
    label = description.get("stream_label")
    return stream_id_from_label(label) if label else 0


def check_stream_options(retention_s: float, shard_period_s: float) -> None:
    if not (retention_s > 0 and shard_period_s > 0):
        raise ValueError(f"stream retention ({retention_s}s) and shard period ({shard_period_s}s) must be positive")


_SET_TYPES = frozenset({"SS", "NS", "BS"})


def _same_values(old: Any, new: Any) -> bool:
    """Whether two parsed items (or attribute values) hold the same data, as
    DynamoDB compares them: a map's members in any order (dict equality), a
    set's too (``SS``/``NS``/``BS`` lists are sorted first; numbers are stored
    normalised, so equal numbers are equal strings).  A rewrite that only
    reorders a set changes nothing, so DynamoDB Streams writes no record."""
    if isinstance(old, dict) and isinstance(new, dict):
        if old.keys() != new.keys():
            return False
        for name, value in old.items():
            other = new[name]
            if name in _SET_TYPES and len(old) == 1 and isinstance(value, list) and isinstance(other, list):
                if sorted(value) != sorted(other):
                    return False
            elif not _same_values(value, other):
                return False
        return True
    if isinstance(old, list) and isinstance(new, list):
        return len(old) == len(new) and all(_same_values(a, b) for a, b in zip(old, new))
    return old == new


class StreamsMixin:
    """Stream records of ``Engine`` (its state is set up in ``Engine.__init__``
    by ``_open_streams``)."""

    def _open_streams(self, retention_s: float, shard_period_s: float) -> None:
        self._stream = self._db.get_column_family("stream")
        self._stream_cf = self._db.get_column_family_handle("stream")
        self.stream_retention_s = retention_s
        self.stream_shard_period_s = shard_period_s
        self._stream_retention_ms = max(1, round(retention_s * 1000))
        self._shard_period_ms = shard_period_ms(shard_period_s)
        self._stream_tables: dict[int, int] | None = None  # table id -> enabled stream id
        self._stream_latest: dict[int, tuple[int, bool]] | None = None  # table id -> (latest stream id, deleted)
        staged = self._stored_period(META_STREAM_PERIOD)
        self._stream_staged_period = staged  # the last period a record went into
        self._stream_staged_last = 0  # the last sequence staged in it (0: all durable)
        self._stream_before_last = 0  # the last sequence staged in an earlier period
        self._stream_floor = max(staged, self._stored_period(META_STREAM_FLOOR))  # no record goes lower
        self._stream_floor_saved = self._stream_floor

    def _stored_period(self, meta_key: bytes) -> int:
        """A period kept in ``meta`` (0: none).  One counted in another shard
        period (the option changed) does not compare with this one's: the
        floor then starts from the clock."""
        raw = self._meta.get(meta_key)
        if raw is None or unpack_u64(raw[8:]) != self._shard_period_ms:
            return 0
        return unpack_u64(raw[:8])

    # --- the write path (called by _stage) ------------------------------------

    def _stage_stream(
        self,
        batch: Batch,
        table_id: int,
        stream_id: int,
        key_item: dict,
        item_json: bytes | None,
        size_bytes: int,
        old_record: bytes | None,
        by_service: bool,
    ) -> None:
        """Put the stream record of the change just logged (``self._sequence``)."""
        if item_json is None:
            if old_record is None:
                return  # nothing was there: nothing happened
            event, old_json, new_json = _REMOVE, record_item_json(old_record), None
        elif old_record is None:
            event, old_json, new_json = _INSERT, None, item_json
        else:
            old_json = record_item_json(old_record)
            if old_json == item_json or (
                record_size(old_record) == size_bytes and _same_values(_loads(old_json), _loads(item_json))
            ):
                return  # the item is as it was: DynamoDB writes no record
            event, new_json = _MODIFY, item_json
        now_ms = self.physical_now_ms()
        period_ms = self._shard_period_ms
        period = max(now_ms // period_ms, self._stream_floor, stream_id // period_ms, 1)
        self._stream_floor = period
        sequence = self._sequence
        wb = batch.wb
        if period != self._stream_staged_period:
            self._stream_before_last = self._stream_staged_last
            self._stream_staged_period = period
            wb.put(META_STREAM_PERIOD, pack_u64(period) + pack_u64(period_ms), self._meta_cf)
        self._stream_staged_last = sequence
        value = pack_stream_record(event, now_ms, by_service and event == _REMOVE, _dumps(key_item), old_json, new_json)
        wb.put(stream_key(table_id, stream_id, period, sequence), value, self._stream_cf)

    # --- shards -----------------------------------------------------------------

    def stream_shards(self, table_id: int, stream_id: int) -> StreamShards:
        """This node's shards of a stream, oldest first: from the stream's first
        period (or the oldest retained one) through the current period (through
        its last one, once the stream ended here); at most the newest
        ``STREAM_SHARDS_LISTED_MAX``."""
        now_ms = self.physical_now_ms()
        current = self._stream_current_period(now_ms)
        last, ended = self._stream_status(table_id, stream_id, current)
        period_ms = self._shard_period_ms
        start = max(
            stream_id // period_ms,
            1,
            self._stream_horizon(now_ms),
            self._stream_trimmed_through(table_id, stream_id) + 1,
            last - limits.STREAM_SHARDS_LISTED_MAX + 1,
        )
        durable = self._durable_sequence
        shards = []
        it = self._stream.iter(ReadOptions())
        try:
            for period in range(start, last + 1):
                it.seek_for_prev(stream_key(table_id, stream_id, period, durable))
                last_sequence = 0
                if it.valid():
                    key = it.key()
                    if key[: _SHARD_PREFIX.size] == _SHARD_PREFIX.pack(table_id, stream_id, period):
                        last_sequence = stream_key_sequence(key)
                shards.append(ShardState(period, self._shard_closed(period, ended, current), last_sequence))
        finally:
            del it
        return StreamShards(tuple(shards), durable)

    def read_stream(self, read: StreamRead) -> StreamPage:
        """Durable records of one shard after ``read.after_sequence``: at most
        ``records_max``, none past ``bytes_max`` (by stored size) except the
        first.  Raises ``TrimmedDataAccessException`` for a trimmed period."""
        table_id, stream_id, period = read.table_id, read.stream_id, read.period
        now_ms = self.physical_now_ms()
        if period <= self._stream_trimmed_through(table_id, stream_id) or period < self._stream_horizon(now_ms):
            raise TrimmedDataAccessException()
        current = self._stream_current_period(now_ms)
        _, ended = self._stream_status(table_id, stream_id, current)
        closed = self._shard_closed(period, ended, current)
        durable = self._durable_sequence
        after = min(read.after_sequence, U64_MAX - 1)
        read_options = ReadOptions()
        read_options.set_iterate_upper_bound(stream_key(table_id, stream_id, period, U64_MAX))
        records = []
        total = 0
        more = False
        for key, value in self._stream.items(
            from_key=stream_key(table_id, stream_id, period, after + 1), read_opt=read_options
        ):
            sequence = stream_key_sequence(key)
            if sequence > durable or len(records) >= read.records_max or (records and total + len(value) > read.bytes_max):
                more = True
                break
            records.append(unpack_stream_record(sequence, value))
            total += len(value)
        last_sequence = records[-1].sequence if records else read.after_sequence
        return StreamPage(tuple(records), last_sequence, closed and not more)

    # --- retention (node/stream_retention.py) ---------------------------------------

    def trim_streams(self, now_ms: int | None = None) -> int:
        """Delete the stream records of every period that ended more than the
        retention ago, remembering per stream the period trimmed through; drop
        the bookkeeping of streams left with nothing to read.  Returns how many
        streams lost records."""
        if self._failure is not None:
            raise self._failure
        cut = self._stream_horizon(self.physical_now_ms() if now_ms is None else now_ms)
        if cut <= 1:
            return 0
        wb = WriteBatch(raw_mode=True)
        trimmed: dict[tuple[int, int], int] = {}  # stream -> the period now trimmed through
        holding: set[tuple[int, int]] = set()  # streams with records left
        it = self._stream.iter(ReadOptions())
        try:
            it.seek_to_first()
            while it.valid():
                key = it.key()
                prefix = key[:_PERIOD_AT]
                table_id, stream_id = _STREAM_PREFIX.unpack(prefix)
                if unpack_u64(key[_PERIOD_AT : _PERIOD_AT + 8]) < cut:
                    wb.delete_range(prefix, stream_key(table_id, stream_id, cut, 0), self._stream_cf)
                    trimmed[(table_id, stream_id)] = max(cut - 1, self._stream_trimmed_through(table_id, stream_id))
                    it.seek(stream_key(table_id, stream_id, cut, 0))
                    if not (it.valid() and it.key()[:_PERIOD_AT] == prefix):
                        continue  # the iterator is past this stream already
                holding.add((table_id, stream_id))
                it.seek(prefix_end(prefix))
        finally:
            del it
        self._stage_stream_markers(wb, cut, trimmed, holding)
        if wb.len():
            self._write_behind_groups(wb)
        return len(trimmed)

    def _stage_stream_markers(
        self, wb: WriteBatch, cut: int, trimmed: dict[tuple[int, int], int], holding: set[tuple[int, int]]
    ) -> None:
        """Put the new trim points; forget the end and trim points of streams
        with nothing left to read (no records, not enabled here, and no end
        within retention), whose every period now reads as trimmed anyway."""
        enabled = self.stream_tables()
        markers: dict[tuple[int, int], list[bytes]] = {}
        ends: dict[tuple[int, int], int] = {}
        read_options = ReadOptions()
        for prefix in (STREAM_END_PREFIX, STREAM_TRIM_PREFIX):
            read_options.set_iterate_upper_bound(prefix_end(prefix))
            for key, value in self._meta.items(from_key=prefix, read_opt=read_options):
                stream = _STREAM_PREFIX.unpack(key[len(prefix) :])
                markers.setdefault(stream, []).append(key)
                if prefix == STREAM_END_PREFIX:
                    ends[stream] = unpack_u64(value)
        for stream in markers.keys() | trimmed.keys():
            finished = stream not in holding and enabled.get(stream[0]) != stream[1] and ends.get(stream, -1) < cut
            if finished:
                for key in markers.get(stream, ()):
                    wb.delete(key, self._meta_cf)
            elif stream in trimmed:
                wb.put(stream_meta_key(STREAM_TRIM_PREFIX, *stream), pack_u64(trimmed[stream]), self._meta_cf)

    # --- shared ---------------------------------------------------------------

    def _stream_current_period(self, now_ms: int) -> int:
        """The period a record staged now would go into at the least; from
        now on no record goes into a lower one (so shards reported closed by
        time stay closed, even if the clock steps back, restarts included)."""
        period = max(now_ms // self._shard_period_ms, self._stream_floor, 1)
        self._stream_floor = period
        if period > self._stream_floor_saved:  # once per period: kept across a restart too
            wb = WriteBatch(raw_mode=True)
            wb.put(META_STREAM_FLOOR, pack_u64(period) + pack_u64(self._shard_period_ms), self._meta_cf)
            self._write(wb)
            self._stream_floor_saved = period
        return period

    def _stream_horizon(self, now_ms: int) -> int:
        """The oldest period within retention: every earlier one ended more
        than ``stream_retention_s`` ago."""
        return max(0, now_ms - self._stream_retention_ms) // self._shard_period_ms

    def _stream_trimmed_through(self, table_id: int, stream_id: int) -> int:
        raw = self._meta.get(stream_meta_key(STREAM_TRIM_PREFIX, table_id, stream_id))
        return unpack_u64(raw) if raw is not None else 0

    def _stream_status(self, table_id: int, stream_id: int, current: int) -> tuple[int, bool]:
        """``(last period, ended)`` of a stream on this node.  It ended when
        this node saw it enabled and then not (its end marker, written by
        ``catalog_put``), or when the catalog copy shows the table gone or a
        later stream; a stream this node has not heard of yet is open."""
        first = max(stream_id // self._shard_period_ms, 1)
        if self.stream_tables().get(table_id) == stream_id:
            return max(current, first), False
        raw = self._meta.get(stream_meta_key(STREAM_END_PREFIX, table_id, stream_id))
        if raw is not None:
            return max(unpack_u64(raw), first), True
        latest = self._stream_latest_ids().get(table_id)
        newest = self._stream_newest_period(table_id, stream_id)
        if (latest is not None and (latest[1] or latest[0] >= stream_id)) or newest is not None:
            return max(first, newest or 0), True
        return max(current, first), False

    def _stream_newest_period(self, table_id: int, stream_id: int) -> int | None:
        """The period of a stream's newest stored record (None: it has none)."""
        prefix = _STREAM_PREFIX.pack(table_id, stream_id)
        for key in self._stream.keys(backwards=True, from_key=stream_key(table_id, stream_id, U64_MAX, U64_MAX)):
            if key[:_PERIOD_AT] == prefix:
                return unpack_u64(key[_PERIOD_AT : _PERIOD_AT + 8])
            return None
        return None

    def _shard_closed(self, period: int, ended: bool, current: int) -> bool:
        if not ended and period >= current:
            return False
        return self._staged_through(period) <= self._durable_sequence

    def _staged_through(self, period: int) -> int:
        """A sequence at or above every stream record staged in ``period`` or before."""
        if period < self._stream_staged_period:
            return self._stream_before_last
        return self._stream_staged_last
