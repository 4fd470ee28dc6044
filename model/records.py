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

All integers are big-endian, so log keys sort by sequence number.
"""

from __future__ import annotations

import struct

from meridian.model.changes import Change
from meridian.model.stamps import VersionStamp

_HEADER = struct.Struct(">BIB")  # flags, item size, stamp length
_LOG_HEADER = struct.Struct(">QI")  # table id, key length
_U64 = struct.Struct(">Q")
_TOMBSTONE = 0x01
_BY_SERVICE = 0x02

HEADER_BYTES = _HEADER.size


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
