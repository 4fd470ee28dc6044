"""Byte layouts of what a node stores in RocksDB.

Item record (column family ``items``, key = ``keycodec.encode_item_key``)::

    +-------+------------+---------+------------------+---------------------+
    | flags | size (u32) | n (u8)  | stamp (n bytes)  | item: orjson bytes  |
    +-------+------------+---------+------------------+---------------------+
      bit 0 of flags: tombstone (then size is 0 and the item part is empty)
      bit 1 of flags: deleted by the service (a tombstone written by Time to
                      Live expiry, ``node/ttl.py``, or replicated from one);
                      stream records name ``dynamodb.amazonaws.com`` for it

The item part is the wire JSON exactly as GetItem returns it, so a read
slices it out without parsing; ``size`` is DynamoDB's item size, kept so that
table statistics never need the old item decoded; the stamp is
``VersionStamp.pack()``, kept for last-writer-wins replication.

Change-log record (column family ``log``, key = sequence number, u64 BE)::

    +----------------+--------------+-----------+--------------------------+
    | table id (u64) | key len (u32)| item key  | item record (as above)   |
    +----------------+--------------+-----------+--------------------------+

Stream record (column family ``stream``, key = ``stream_key``: table id,
stream id, shard period, sequence, each u64; ``model/streams.py``)::

    +-------+-------+-----------------+---------------+---------------+---------------+
    | flags | event | created ms (u64)| keys len (u32)| old len (u32) | new len (u32) |
    +-------+-------+-----------------+---------------+---------------+---------------+
    | keys: wire JSON | old item: wire JSON | new item: wire JSON |
    +-----------------+---------------------+---------------------+
      bit 0 of flags: deleted by the service (Time to Live)
      bit 1 of flags: there is an old image; bit 2: there is a new image
      (an absent image has length 0)

All integers are big-endian, so log keys sort by sequence number and stream
keys by (table, stream, period, sequence).
"""

from __future__ import annotations

import struct

from meridian.model.changes import Change
from meridian.model.stamps import VersionStamp
from meridian.model.streams import StreamEvent, StreamRecord

_HEADER = struct.Struct(">BIB")  # flags, item size, stamp length
_LOG_HEADER = struct.Struct(">QI")  # table id, key length
_U64 = struct.Struct(">Q")
_STREAM_HEADER = struct.Struct(">BBQIII")  # flags, event, created ms, keys/old/new lengths
_STREAM_KEY = struct.Struct(">QQQQ")  # table id, stream id, period, sequence
_STREAM_BY_SERVICE = 0x01
_STREAM_HAS_OLD = 0x02
_STREAM_HAS_NEW = 0x04
_TOMBSTONE = 0x01
_BY_SERVICE = 0x02

HEADER_BYTES = _HEADER.size
U64_MAX = (1 << 64) - 1  # the largest sequence (or id) a key can hold


def pack_record(stamp: bytes, item_json: bytes | None, size_bytes: int, *, by_service: bool = False) -> bytes:
    """An item record; ``item_json`` None makes a tombstone, which
    ``by_service`` marks as the service's (a TTL expiry)."""
    if item_json is None:
        return _HEADER.pack(_TOMBSTONE | _BY_SERVICE if by_service else _TOMBSTONE, 0, len(stamp)) + stamp
    assert not by_service, "only a delete is the service's"
    return _HEADER.pack(0, size_bytes, len(stamp)) + stamp + item_json


def is_tombstone(record: bytes) -> bool:
    return record[0] & _TOMBSTONE != 0


def is_service_delete(record: bytes) -> bool:
    """A tombstone written by the service (Time to Live), not by a client."""
    return record[0] & _BY_SERVICE != 0


def record_size(record: bytes) -> int:
    """DynamoDB item size of a live record (0 for a tombstone)."""
    return _HEADER.unpack_from(record)[1]


def record_item_json(record: bytes) -> bytes:
    """The item's wire JSON bytes (empty for a tombstone)."""
    return record[HEADER_BYTES + record[5] :]


def record_stamp(record: bytes) -> VersionStamp:
    return VersionStamp.unpack(record, HEADER_BYTES)[0]


def pack_u64(n: int) -> bytes:
    return _U64.pack(n)


def unpack_u64(b: bytes) -> int:
    return _U64.unpack(b)[0]


def pack_log_record(table_id: int, key: bytes, record: bytes) -> bytes:
    return _LOG_HEADER.pack(table_id, len(key)) + key + record


def record_change(table_id: int, key: bytes, record: bytes, sequence: int = 0) -> Change:
    """The change an item record stands for: its stamp, its item or its
    tombstone (and whether the service wrote it), its size.  A log entry is one (``unpack_log_record``); so is a
    stored item shipped whole (a new replica's backfill, ``sequence`` 0)."""
    tombstone = is_tombstone(record)
    return Change(
        sequence=sequence,
        table_id=table_id,
        key=key,
        stamp=record_stamp(record),
        tombstone=tombstone,
        item_json=None if tombstone else record_item_json(record),
        size_bytes=record_size(record),
        by_service=is_service_delete(record),
    )


def unpack_log_record(sequence: int, value: bytes) -> Change:
    table_id, key_len = _LOG_HEADER.unpack_from(value)
    start = _LOG_HEADER.size
    return record_change(table_id, value[start : start + key_len], value[start + key_len :], sequence)


def stream_key(table_id: int, stream_id: int, period: int, sequence: int) -> bytes:
    return _STREAM_KEY.pack(table_id, stream_id, period, sequence)


def stream_key_sequence(key: bytes) -> int:
    """The sequence a stream key ends with."""
    return _U64.unpack_from(key, _STREAM_KEY.size - _U64.size)[0]


def pack_stream_record(
    event: int,
    created_ms: int,
    by_service: bool,
    keys_json: bytes,
    old_json: bytes | None,
    new_json: bytes | None,
) -> bytes:
    """A stream record's value; its sequence is in its key."""
    flags = (
        (_STREAM_BY_SERVICE if by_service else 0)
        | (_STREAM_HAS_OLD if old_json is not None else 0)
        | (_STREAM_HAS_NEW if new_json is not None else 0)
    )
    old = old_json or b""
    new = new_json or b""
    header = _STREAM_HEADER.pack(flags, event, created_ms, len(keys_json), len(old), len(new))
    return b"".join((header, keys_json, old, new))


def unpack_stream_record(sequence: int, value: bytes) -> StreamRecord:
    flags, event, created_ms, keys_len, old_len, new_len = _STREAM_HEADER.unpack_from(value)
    start = _STREAM_HEADER.size
    old_start = start + keys_len
    new_start = old_start + old_len
    if new_start + new_len != len(value):
        raise ValueError("stream record length does not match its header")
    return StreamRecord(
        sequence=sequence,
        event=StreamEvent(event),
        created_ms=created_ms,
        keys_json=value[start:old_start],
        old_json=value[old_start:new_start] if flags & _STREAM_HAS_OLD else None,
        new_json=value[new_start:] if flags & _STREAM_HAS_NEW else None,
        by_service=bool(flags & _STREAM_BY_SERVICE),
    )
