"""Item operations: what a router asks a storage node to do.

These plain records cross the router -> storage seam.  In embedded mode they
are handed to the node's engine as they are (no serialization); in cluster
mode the gRPC client encodes them into ``meridian.v1.ItemOp`` messages and the
node decodes them back into these same records.

Items and keys travel as DynamoDB wire JSON (``{"attr": {"S": "x"}}``);
expressions travel as their text plus the request's placeholder maps, so the
node parses them (with a cache) and evaluates them in the same critical
section as the write.  Legacy parameters (``Expected``, ``AttributeUpdates``,
``AttributesToGet``) are translated by the router into expression text first,
so there is one representation on the wire.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, field
from typing import Any, Sequence

from . import limits
from .errors import DynamoError
from .keycodec import (
    TABLE_PREFIX_BYTES,
    decode_value,
    encode_values,
    partition_hash,
    partition_hash_of,
    prefix_end,
    table_prefix,
)

Item = dict[str, Any]  # wire JSON: attribute name -> {"S": ...} etc.


class OpKind(enum.IntEnum):
    GET = 0
    PUT = 1
    DELETE = 2
    UPDATE = 3
    #: TransactWriteItems' ConditionCheck: the condition is evaluated (and the
    #: item locked while a transaction prepares), nothing is written.
    CHECK = 4


class ReturnValues(enum.IntEnum):
    NONE = 0
    ALL_OLD = 1
    UPDATED_OLD = 2
    ALL_NEW = 3
    UPDATED_NEW = 4


@dataclass(slots=True)
class ItemOp:
    """One single-item operation, executed atomically by the owning node.

    ``key`` is the encoded storage key (``keycodec.encode_item_key``);
    ``key_item`` holds just the key attributes, as wire JSON, partition key
    first (the node derives the item's scan position from it).
    ``item`` is the full new item for PUT (validated and normalised by the
    router).  ``condition`` / ``update`` / ``projection`` are expression
    texts; ``names`` / ``values`` are ``ExpressionAttributeNames`` /
    ``ExpressionAttributeValues`` (``None`` when absent).
    """

    kind: OpKind
    table_id: int
    key: bytes
    key_item: Item
    item: Item | None = None
    condition: str | None = None
    update: str | None = None
    projection: str | None = None
    names: dict[str, str] | None = None
    values: Item | None = None
    return_values: ReturnValues = ReturnValues.NONE
    return_old_on_condition_failure: bool = False
    #: the expressions were translated from legacy parameters (Expected,
    #: AttributeUpdates, AttributesToGet): DynamoDB's expression limits do not
    #: apply and errors use the legacy wording.
    legacy: bool = False
    #: PUT: the item's DynamoDB size, computed once by the router (-1: unknown)
    item_size_bytes: int = -1


@dataclass(slots=True)
class ItemResult:
    """The answer to one ``ItemOp``.

    GET: ``item_json`` is the stored (or projected) item as JSON bytes, ready
    to be spliced into the HTTP response, or ``None`` when there is no item.
    Writes: ``item_json`` holds the ``ReturnValues`` attributes as JSON bytes
    (``None`` when nothing is to be returned).
    ``error`` is set instead when the operation failed (a failed condition is
    a ``ConditionalCheckFailedException`` carrying the old item if asked).
    """

    item_json: bytes | None = None
    error: DynamoError | None = None
    #: DynamoDB size of the item the op was charged for (capacity units):
    #: GET, the whole stored item (0: none); writes, the larger of the old and
    #: the new item; -1 when unknown (errors).
    size_bytes: int = -1
    #: writes to a table with local secondary indexes: the size of the item's
    #: collection (its partition's items and their LSI entries) after the
    #: write, for ``ReturnItemCollectionMetrics``; -1 otherwise.
    collection_size_bytes: int = -1
    #: transactional reads (``Storage.txn_read``): the packed version stamp
    #: of the record read (b"" when there is none), so a read spanning nodes
    #: can check that nothing changed between two rounds.
    version: bytes = b""


@dataclass(slots=True)
class IndexStats:
    """One secondary index's share on one node (summed by the router)."""

    item_count: int = 0
    size_bytes: int = 0
    #: a global index added to a table with items: this node has not yet
    #: sent the index entries of every item it held when the index appeared.
    backfilling: bool = False


@dataclass(slots=True)
class TableStats:
    item_count: int = 0
    size_bytes: int = 0
    indexes: dict[int, IndexStats] = field(default_factory=dict)  # index id -> its statistics
    # Items Time to Live deleted (CloudWatch's TimeToLiveDeletedItemCount),
    # counted by the node that issued each expiry; cumulative.
    ttl_deleted_count: int = 0


@dataclass(slots=True)
class CatalogEntry:
    """One table's metadata as stored on every node (``meta`` column family).

    ``description`` is the JSON-serialisable table record kept by the router's
    catalog; ``revision`` increases with every change so that the newest copy
    wins when copies differ.  Nodes read four of its members: to maintain
    secondary indexes, ``table_id``, ``key_schema`` (``[[name, type], ...]``)
    and ``indexes`` (``IndexSpec.to_record()`` each, see
    ``index_specs_from_catalog``); to expire items (``node/ttl.py``),
    ``ttl_attribute``: the Time to Live attribute's name while TTL is
    ENABLING or ENABLED, absent or None otherwise.  Everything else is the
    router's.
    """

    name: str
    revision: int
    description: dict[str, Any] = field(default_factory=dict)
    deleted: bool = False


# --- range reads (Query and Scan) ------------------------------------------------
#
# A Query reads one partition of the ``items`` column family, whose keys are
# the item keys themselves (``keycodec``), in sort-key order.  A Scan reads the
# ``scan`` column family, which every node keeps in the same write batch as its
# items: one empty-valued entry per live item, keyed by its *scan position*:
#
#     +----------------+---------------------------+--------------------------+
#     | table id (u64) | partition hash (u64, BE)  | item key minus table id  |
#     +----------------+---------------------------+--------------------------+
#
# ``partition hash`` is ``keycodec.partition_hash`` of the partition key, the
# number the ring places partitions by.  Scan order is therefore one order for
# the whole table, independent of which node holds what: a page ends at a
# well-defined position (its LastEvaluatedKey), every node can serve "my items
# after position P" and a router merges those streams; and a parallel-scan
# segment is a contiguous range of hashes, the same on every node.

_SCAN_HASH = struct.Struct(">Q")
_SCAN_HASH_SPACE = 1 << 64


def scan_position(item_key: bytes, partition_hash: int) -> bytes:
    """Where the item with storage key ``item_key`` sits in its table's scan order."""
    return item_key[:TABLE_PREFIX_BYTES] + _SCAN_HASH.pack(partition_hash) + item_key[TABLE_PREFIX_BYTES:]


def scan_position_item_key(position: bytes) -> bytes:
    """The storage key of the item at a scan position."""
    return position[:TABLE_PREFIX_BYTES] + position[TABLE_PREFIX_BYTES + _SCAN_HASH.size :]


def scan_segment_hashes(segment: int, total_segments: int) -> tuple[int, int]:
    """The partition hashes ``[low, high)`` of one parallel-scan segment.

    The hash space is cut into ``total_segments`` equal ranges; consecutive
    segments share their boundary, so segments are disjoint and cover it.
    """
    low = segment * _SCAN_HASH_SPACE // total_segments
    high = (segment + 1) * _SCAN_HASH_SPACE // total_segments
    return low, high


def scan_segment_bounds(table_prefix: bytes, segment: int, total_segments: int) -> tuple[bytes, bytes]:
    """Scan positions ``[lower, upper)`` of one segment of a table."""
    low, high = scan_segment_hashes(segment, total_segments)
    lower = table_prefix + _SCAN_HASH.pack(low)
    if high == _SCAN_HASH_SPACE:
        return lower, prefix_end(table_prefix)
    return lower, table_prefix + _SCAN_HASH.pack(high)


class RangeKind(enum.IntEnum):
    QUERY = 0  # the ``items`` column family: one partition, sort-key order
    SCAN = 1  # the ``scan`` column family: a table (or segment) in scan order
    INDEX = 2  # the ``index`` column family: a secondary index, in index-key order


@dataclass(slots=True)
class RangeRead:
    """Read items in one key range of one node, a page at a time.

    ``lower`` (inclusive) and ``upper`` (exclusive) are item keys (QUERY) or
    scan positions (SCAN); the router folds the key condition and any
    ExclusiveStartKey into them, so the node evaluates no key condition.
    The read stops after ``items_max`` items (0: no such bound; DynamoDB's
    ``Limit``) or once the items read reach ``bytes_max`` bytes, the item
    that crosses it included (DynamoDB's 1 MB page).  Both count items
    *read*, before the filter.  ``filter`` and ``projection`` are expression
    texts; ``key_condition`` travels only so that placeholders it alone uses
    count as used when the node compiles the request's expressions.
    ``detail`` asks for each item's position, size and filter outcome, which
    a router needs to merge the streams of several nodes.

    INDEX reads name the index in ``table_id`` (its index id) and bound
    index keys (see "secondary indexes" below), for a Query and a Scan
    alike.  ``fetch`` (local secondary indexes only) reads every entry's
    item from the base table and filters that item instead of the entry, as
    DynamoDB does when a request needs attributes the index does not
    project; what is returned is then ``projection``, else the whole item
    with ``whole_items`` (Select ALL_ATTRIBUTES), else the index's own
    projection of it.
    """

    kind: RangeKind
    table_id: int
    lower: bytes
    upper: bytes
    reverse: bool = False
    items_max: int = 0
    bytes_max: int = limits.PAGE_BYTES_MAX
    key_condition: str | None = None
    filter: str | None = None  # noqa: A003  (DynamoDB's own name)
    projection: str | None = None
    names: dict[str, str] | None = None
    values: Item | None = None
    legacy: bool = False
    count_only: bool = False  # Select COUNT: items are counted, not returned
    detail: bool = False
    fetch: bool = False
    whole_items: bool = False


@dataclass(slots=True)
class RangeResult:
    """What one ``RangeRead`` found.

    ``items`` holds, in read order, the JSON bytes of the items that passed
    the filter (projected; none when ``count_only``).  ``last_position`` is
    the key (QUERY) or scan position (SCAN) of the last item read, and
    ``more`` says the read stopped on ``items_max`` / ``bytes_max`` rather
    than at ``upper``: the page then has a LastEvaluatedKey.  With
    ``detail``: ``positions`` and ``sizes`` of every item read, and
    ``hits``, one byte per item read, 1 if it passed the filter.

    A read that fetches (``RangeRead.fetch``) reads index entries and their
    items: ``bytes_read`` and ``sizes`` are the entries', and
    ``fetched_sizes`` holds the size of every item fetched, one per entry
    read, in read order (empty for other reads).  Read capacity is charged
    from these (``router/capacity.py``).
    """

    items: list[bytes] = field(default_factory=list)
    count: int = 0
    scanned: int = 0
    bytes_read: int = 0
    last_position: bytes | None = None
    more: bool = False
    positions: list[bytes] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    hits: bytes = b""
    fetched_sizes: list[int] = field(default_factory=list)


def fetched_page_bytes(size_bytes: int) -> int:
    """How much an item fetched by an index read counts towards its page's
    ``bytes_max``: its size rounded up to whole 4 KB read units."""
    unit = limits.READ_CAPACITY_UNIT_BYTES
    return -(-size_bytes // unit) * unit


def fetching_page_bytes(entry_bytes: int, fetched_bytes: int) -> int:
    """The size of a page that fetches, as DynamoDB bounds it by 1 MB (the
    Developer Guide's local secondary index chapter): the entries read,
    rounded up to whole 4 KB read units, plus every item fetched, each
    rounded up on its own (``fetched_bytes``: the sum of their
    ``fetched_page_bytes``)."""
    return fetched_page_bytes(entry_bytes) + fetched_bytes


# --- secondary indexes ------------------------------------------------------------
#
# Every index entry lives in the ``index`` column family of some node, keyed
# like a scan position of the index itself, then the base item's key:
#
#     +----------------+------------------------+-------------------+------------------+
#     | index id (u64) | hash of index pk (u64) | index key values  | table key values |
#     +----------------+------------------------+-------------------+------------------+
#
# A global index's key may hold several HASH and several RANGE attributes
# (multi-attribute keys, up to four of each): ``index key values`` are then
# every HASH value, then every RANGE value, in key schema order, and the hash
# is that of the HASH values together (``keycodec.partition_hash_of``).  Key
# values are self-delimiting, so an index partition is still one range, and
# it sorts by the first RANGE attribute, then the second, ... as DynamoDB's
# does; equalities on a leading run of RANGE attributes select one sub-range.
#
# Index ids are random 63-bit numbers like table ids, so index entries never
# share a prefix with anything else.  Because the hash is a function of the
# index partition key, one index partition is still one contiguous range, in
# index sort-key order (then base-table key order, which makes entries with
# equal index keys distinct and ordered); and the whole index is in scan
# order, so an index Scan merges and segments exactly like a table Scan.
#
# A local secondary index (LSI) shares its table's partition key, hence its
# hash and its node: its entries are written with the item, in the same
# RocksDB batch.  A global secondary index (GSI) is placed by its own hash
# on the ring and maintained asynchronously from the nodes' change logs
# (``node/gsi.py``); every entry carries its base item's version stamp, and
# an older entry never replaces a newer one.

PROJECTION_ALL = "ALL"
PROJECTION_KEYS_ONLY = "KEYS_ONLY"
PROJECTION_INCLUDE = "INCLUDE"


@dataclass(frozen=True, slots=True)
class IndexSpec:
    """What a node needs to know about one secondary index of a table."""

    name: str
    index_id: int
    is_global: bool
    #: ((name, type), ...): the HASH attributes (``hash_count`` of them), then
    #: the RANGE ones; one of each at most but in a multi-attribute GSI.
    key_schema: tuple[tuple[str, str], ...]
    projection_type: str  # ALL, KEYS_ONLY or INCLUDE
    non_key_attributes: tuple[str, ...] = ()
    #: a global index added to a table that may hold items: every node first
    #: sends the entries of the items it holds (``IndexStats.backfilling``).
    backfill: bool = False
    #: how many of ``key_schema``'s attributes are HASH attributes (records
    #: written before multi-attribute keys have none: one).
    hash_count: int = 1

    @property
    def hash_schema(self) -> tuple[tuple[str, str], ...]:
        return self.key_schema[: self.hash_count]

    @property
    def range_schema(self) -> tuple[tuple[str, str], ...]:
        return self.key_schema[self.hash_count :]

    @property
    def multi_attribute(self) -> bool:
        """More than one HASH or more than one RANGE attribute (DynamoDB's multi-attribute keys)."""
        return self.hash_count > 1 or len(self.key_schema) - self.hash_count > 1

    def key_schema_elements(self) -> list[dict[str, str]]:
        """The index's ``KeySchema`` as DynamoDB shows it (every HASH, then every RANGE element)."""
        return [{"AttributeName": name, "KeyType": "HASH" if position < self.hash_count else "RANGE"}
                for position, (name, _) in enumerate(self.key_schema)]

    def to_record(self) -> dict[str, Any]:
        return {
            "name": self.name, "index_id": self.index_id, "is_global": self.is_global,
            "key_schema": [list(k) for k in self.key_schema], "projection_type": self.projection_type,
            "non_key_attributes": list(self.non_key_attributes), "backfill": self.backfill,
            "hash_count": self.hash_count,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> IndexSpec:
        """The spec in a record written by ``to_record`` (other members are ignored)."""
        return cls(
            name=record["name"], index_id=record["index_id"], is_global=record["is_global"],
            key_schema=tuple((name, key_type) for name, key_type in record["key_schema"]),
            projection_type=record["projection_type"],
            non_key_attributes=tuple(record.get("non_key_attributes") or ()),
            backfill=bool(record.get("backfill")),
            hash_count=int(record.get("hash_count") or 1),
        )


def index_specs_from_catalog(description: dict[str, Any]) -> tuple[int, list[tuple[str, str]], list[IndexSpec]]:
    """``(table id, table key schema, index specs)`` of a catalog description."""
    key_schema = [(name, key_type) for name, key_type in description["key_schema"]]
    specs = [IndexSpec.from_record(record) for record in description.get("indexes") or ()]
    return description["table_id"], key_schema, specs


_INDEX_PREFIX_BYTES = TABLE_PREFIX_BYTES + _SCAN_HASH.size


def index_partition_hash(hash_parts: Sequence[tuple[str, Any]]) -> int:
    """The hash (ring position) of an index partition whose HASH attributes
    have the values ``(type, value)`` of ``hash_parts``, in key schema order."""
    if len(hash_parts) == 1:
        return partition_hash(*hash_parts[0])
    return partition_hash_of(hash_parts)


def index_partition_prefix(index_id: int, hash_parts: Sequence[tuple[str, Any]]) -> bytes:
    """The first bytes of every entry of one index partition, and of nothing else
    (``hash_parts``: its HASH attributes' ``(type, value)``, in key schema order)."""
    return table_prefix(index_id) + _SCAN_HASH.pack(index_partition_hash(hash_parts)) + encode_values(hash_parts)


def encode_index_key(index_id: int, index_schema: Any, table_key_suffix: bytes, item: Item,
                     hash_count: int = 1) -> bytes:
    """The index key of ``item``, whose index key attributes must all be present.

    ``index_schema``: its ``hash_count`` HASH attributes, then its RANGE ones.
    ``table_key_suffix`` is the item's storage key without its table prefix
    (``key[TABLE_PREFIX_BYTES:]``), so base keys are never encoded twice.
    """
    parts = [(key_type, item[name]) for name, key_type in index_schema]
    return index_partition_prefix(index_id, parts[:hash_count]) + encode_values(parts[hash_count:]) + table_key_suffix


def index_key_hash(index_key: bytes) -> int:
    """The ring position of an index entry: the hash of its index partition key."""
    return _SCAN_HASH.unpack_from(index_key, TABLE_PREFIX_BYTES)[0]


def index_entry_table_key(index_key: bytes, index_schema: Any, table_id: int) -> bytes:
    """The storage key of the base item an index entry stands for."""
    pos = _INDEX_PREFIX_BYTES
    for _, key_type in index_schema:
        pos = decode_value(key_type, index_key, pos)[1]
    return table_prefix(table_id) + index_key[pos:]


def decode_index_key(index_key: bytes, index_schema: Any, table_schema: Any) -> dict[str, dict[str, str]]:
    """The wire JSON of an index key: index key attributes, then the table's
    (DynamoDB's ``LastEvaluatedKey`` of an index read)."""
    out: dict[str, dict[str, str]] = {}
    pos = _INDEX_PREFIX_BYTES
    for name, key_type in (*index_schema, *table_schema):
        value, pos = decode_value(key_type, index_key, pos)
        out[name] = {key_type: value}
    if pos != len(index_key):
        raise ValueError(f"{len(index_key) - pos} trailing bytes after the index key")
    return out


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """One change of one global index entry, sent to the node that owns it.

    ``stamp`` is the base item version's packed ``VersionStamp``;
    ``item_json`` the projected item (None: remove the entry).  The owner
    applies it unless it holds an entry with a newer stamp, so sending the
    same entries again changes nothing.
    """

    index_id: int
    key: bytes
    stamp: bytes
    item_json: bytes | None
    size_bytes: int = 0
