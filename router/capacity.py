"""Capacity accounting: every rule DynamoDB charges reads and writes by, in one place.

Pure functions and plain records, no I/O.  The actions feed them the sizes
the storage nodes report (``ItemResult.size_bytes``, ``RangeResult``'s
``bytes_read`` and ``fetched_sizes``) and shape ``ConsumedCapacity`` with
them; throttling charges the same figures.

Sources: the Developer Guide's "DynamoDB read and write operations" and the
throughput considerations of local and global secondary indexes, the API
reference's ``ConsumedCapacity``, and the AWS CLI's examples of every data
call (``awscli/examples/dynamodb/*.rst``), which show the answers' shapes.

Reads
-----
* A read unit is 4 KB read (``limits.READ_CAPACITY_UNIT_BYTES``): a strongly
  consistent read of up to 4 KB costs one unit, an eventually consistent one
  half of that, a transactional one twice (``Consistency``).  A read rounds
  its size up to whole units and costs at least one: reading a missing item
  is charged like reading a small one.
* GetItem, and each key of a BatchGetItem (its own GetItem): the whole stored
  item, whatever the projection.
* Query and Scan: one read of the total size of the items *read*, before the
  filter, the projection and ``Select: COUNT``, rounded up once per page; a
  page that read nothing still costs one unit.
* An index read (Query or Scan with ``IndexName``) reads index entries, whose
  size is their projection's: charged to the index.  A local index read that
  needs attributes the index does not project fetches every entry's item from
  the table, and pays for each whole item on its own, rounded up item by item,
  charged to the table: the example of the LSI chapter is 4 entries of 200
  bytes (4 KB, one unit) and 4 fetched items of 300 bytes (4 units).  Global
  index reads are eventually consistent.

Writes
------
* A write unit is 1 KB written (``limits.WRITE_CAPACITY_UNIT_BYTES``),
  transactional writes twice.  A write is charged on the larger of the item
  before and after it (PutItem replacing an item, UpdateItem), a delete on the
  item deleted, and at least one unit (deleting a missing item costs one).
* Every index whose entry a write changes is charged too, on the entry's size
  (its projection): an entry appearing or disappearing is one index write, an
  entry whose index key changed is two (a delete of the old entry and a put of
  the new, each rounded on its own), an entry changed in place one of the
  larger of the two; an entry that stays as it was, or that is in the index
  neither before nor after, costs nothing.  Local indexes follow the same
  rules, and are paid from the table's capacity, but are listed apart.
* BatchWriteItem: each put and delete as its own write.

Answers (``ReturnConsumedCapacity``)
------------------------------------
* ``NONE`` or absent: no ``ConsumedCapacity``.
* ``TOTAL``: ``TableName`` and ``CapacityUnits``, the table's and every
  index's units together.
* ``INDEXES``: also ``Table`` (always, ``0.0`` for an index read that fetched
  nothing) and, under ``LocalSecondaryIndexes`` / ``GlobalSecondaryIndexes``,
  each index the call read or whose entries it changed.
* Single-item calls, Query, Scan and batches answer ``CapacityUnits`` alone;
  transactions (and PartiQL) also split it into ``ReadCapacityUnits`` /
  ``WriteCapacityUnits``, each present when not zero (``split``).
* Batches and transactions answer a list, one entry per table, in the order
  the request first names the tables (``Tally``).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from meridian.model import limits
from meridian.model.ops import PROJECTION_ALL
from meridian.model.values import item_size

from .table_record import Index, Table

Item = dict[str, Any]

CAPACITY_MODES = ("TOTAL", "INDEXES")


class Consistency(enum.Enum):
    """How a read is made, which decides its price per read unit."""

    EVENTUAL = "eventual"
    STRONG = "strong"
    TRANSACTIONAL = "transactional"

    @property
    def factor(self) -> float:
        if self is Consistency.EVENTUAL:
            return limits.EVENTUAL_READ_FACTOR
        if self is Consistency.TRANSACTIONAL:
            return float(limits.TRANSACT_CAPACITY_FACTOR)
        return 1.0

    @classmethod
    def of(cls, consistent_read: Any) -> Consistency:
        """A plain read's consistency from its ``ConsistentRead`` parameter."""
        return cls.STRONG if consistent_read else cls.EVENTUAL


# --- units ----------------------------------------------------------------------


def _blocks(size_bytes: int, unit_bytes: int) -> int:
    """Whole units of ``unit_bytes`` that ``size_bytes`` takes, at least one."""
    return max(1, -(-max(size_bytes, 0) // unit_bytes))


def read_blocks(size_bytes: int) -> int:
    """4 KB units one read of ``size_bytes`` takes (at least one)."""
    return _blocks(size_bytes, limits.READ_CAPACITY_UNIT_BYTES)


def read_units(size_bytes: int, consistency: Consistency = Consistency.STRONG) -> float:
    """Read units of one read of ``size_bytes`` bytes: an item (GetItem, a
    BatchGetItem key, a transactional read) or a whole Query/Scan page."""
    return read_blocks(size_bytes) * consistency.factor


def fetch_read_units(sizes: Iterable[int], consistency: Consistency) -> float:
    """Read units of the items a local index read fetched from its table,
    each whole item rounded up on its own."""
    return sum(read_blocks(size) for size in sizes) * consistency.factor


def write_units(size_bytes: int, transactional: bool = False) -> float:
    """Write units of one write charged on ``size_bytes`` (the larger of the
    item before and after; the deleted item; 0 when there was none)."""
    units = float(_blocks(size_bytes, limits.WRITE_CAPACITY_UNIT_BYTES))
    return units * limits.TRANSACT_CAPACITY_FACTOR if transactional else units


# --- index writes ------------------------------------------------------------------


def index_entry(table: Table, index: Index, item: Item | None) -> Item | None:
    """The entry ``item`` makes in ``index`` (its projection), None when it has
    none (indexes are sparse: every index key attribute, typed, non-empty)."""
    if item is None:
        return None
    for name, key_type in index.key_schema:
        value = item.get(name)
        if value is None or value.get(key_type) in (None, ""):
            return None
    if index.spec.projection_type == PROJECTION_ALL:
        return item
    kept = {*table.key_names, *index.key_names, *index.spec.non_key_attributes}
    return {name: value for name, value in item.items() if name in kept}


def index_entry_write_units(index: Index, before: Item | None, after: Item | None) -> float:
    """Write units an index is charged when its entry goes from ``before`` to
    ``after`` (entries, not items: ``index_entry``); 0 when nothing changes."""
    if before == after:
        return 0.0
    if before is None or after is None:
        return write_units(item_size(before if after is None else after))
    if all(before.get(name) == after.get(name) for name in index.key_names):
        return write_units(max(item_size(before), item_size(after)))
    return write_units(item_size(before)) + write_units(item_size(after))


def index_writes(table: Table, old: Item | None, new: Item | None) -> list[tuple[Index, float]]:
    """Each index a write turning ``old`` into ``new`` changes, with its units."""
    out = []
    for index in table.indexes:
        units = index_entry_write_units(index, index_entry(table, index, old), index_entry(table, index, new))
        if units:
            out.append((index, units))
    return out


def index_write_units(table: Table, old: Item | None, new: Item | None) -> dict[str, float]:
    """``index_writes`` by index name."""
    return {index.name: units for index, units in index_writes(table, old, new)}


# --- what one call consumed ----------------------------------------------------------


@dataclass(slots=True)
class Units:
    """Read and write units of one table or index."""

    read: float = 0.0
    write: float = 0.0

    @property
    def total(self) -> float:
        return self.read + self.write

    def add(self, other: Units) -> None:
        self.read += other.read
        self.write += other.write


@dataclass(slots=True)
class Usage:
    """What one call consumed on one table: the table's own units, and each
    index's (by name, in the order they were charged)."""

    table: Units = field(default_factory=Units)
    local_indexes: dict[str, Units] = field(default_factory=dict)
    global_indexes: dict[str, Units] = field(default_factory=dict)

    def index(self, index: Index) -> Units:
        """The units of ``index`` (created at zero: it is then listed)."""
        indexes = self.global_indexes if index.is_global else self.local_indexes
        units = indexes.get(index.name)
        if units is None:
            units = indexes[index.name] = Units()
        return units

    def add(self, other: Usage) -> None:
        self.table.add(other.table)
        for mine, theirs in ((self.local_indexes, other.local_indexes), (self.global_indexes, other.global_indexes)):
            for name, units in theirs.items():
                mine.setdefault(name, Units()).add(units)

    @property
    def total(self) -> Units:
        out = Units(self.table.read, self.table.write)
        for indexes in (self.local_indexes, self.global_indexes):
            for units in indexes.values():
                out.add(units)
        return out


def item_read(size_bytes: int, consistency: Consistency) -> Usage:
    """GetItem, one BatchGetItem key, one transactional read: the whole stored
    item (``size_bytes`` 0 or less: none, still charged)."""
    return Usage(Units(read=read_units(size_bytes, consistency)))


def item_write(table: Table, size_bytes: int, old: Item | None = None, new: Item | None = None,
               indexed: bool = False, transactional: bool = False) -> Usage:
    """One write charged on ``size_bytes`` (the node's ``size_bytes``), and,
    when ``indexed``, each index its change from ``old`` to ``new`` touches."""
    usage = Usage(Units(write=write_units(size_bytes, transactional)))
    if indexed:
        for index, units in index_writes(table, old, new):
            usage.index(index).write += units
    return usage


def page_read(index: Index | None, bytes_read: int, fetched_sizes: Iterable[int],
              consistency: Consistency) -> Usage:
    """One Query or Scan page: ``bytes_read`` (items, or index entries) read
    from the table or ``index``, plus the items a local index read fetched."""
    units = read_units(bytes_read, consistency)
    if index is None:
        return Usage(Units(read=units))
    usage = Usage(Units(read=fetch_read_units(fetched_sizes, consistency)))
    usage.index(index).read += units
    return usage


# --- ConsumedCapacity -------------------------------------------------------------------


def _capacity(units: Units, split: bool) -> dict[str, float]:
    out = {"CapacityUnits": units.total}
    if split:
        if units.read:
            out["ReadCapacityUnits"] = units.read
        if units.write:
            out["WriteCapacityUnits"] = units.write
    return out


def consumed(mode: str | None, table_name: str, usage: Usage, split: bool = False) -> dict[str, Any] | None:
    """One table's ``ConsumedCapacity`` under ``ReturnConsumedCapacity``
    ``mode`` (None when not asked); ``split`` adds the read/write split."""
    if mode not in CAPACITY_MODES:
        return None
    out: dict[str, Any] = {"TableName": table_name, **_capacity(usage.total, split)}
    if mode == "INDEXES":
        out["Table"] = _capacity(usage.table, split)
        for member, indexes in (("LocalSecondaryIndexes", usage.local_indexes),
                                ("GlobalSecondaryIndexes", usage.global_indexes)):
            if indexes:
                out[member] = {name: _capacity(units, split) for name, units in indexes.items()}
    return out


class Tally:
    """What a multi-table call (a batch, a transaction) consumed, per table,
    in the order the request first named each table."""

    __slots__ = ("tables",)

    def __init__(self, names: Iterable[str] = ()) -> None:
        self.tables: dict[str, Usage] = {name: Usage() for name in names}

    def usage(self, table_name: str) -> Usage:
        usage = self.tables.get(table_name)
        if usage is None:
            usage = self.tables[table_name] = Usage()
        return usage

    def add(self, table_name: str, usage: Usage) -> None:
        self.usage(table_name).add(usage)

    def consumed(self, mode: str | None, split: bool = False) -> list[dict[str, Any]] | None:
        """``ConsumedCapacity``: one entry per table (None when not asked)."""
        if mode not in CAPACITY_MODES:
            return None
        return [consumed(mode, name, usage, split) for name, usage in self.tables.items()]  # type: ignore[misc]
