"""What a throttled operation draws on: resources, plans and partition counts (``router/throttle.py``).

A *plan* is what operations of one kind (a meter, on the table or one of
its global indexes) on one table revision draw on: the table- or
index-wide resources (provisioned rates, on-demand maxima, an on-demand
table's partitions together), and each key range's partition ceiling, made
on first use.  A write plan also holds its global indexes' key ranges: a
put whose item lands on a hot index key is throttled with the index's
reason (``IndexWriteKeyRangeThroughputExceeded``, the index's ARN), as
DynamoDB applies back-pressure from a GSI partition that cannot keep up.

How many partitions a table has (``partition_count``) follows DynamoDB's
rule: enough for its throughput (one per 3,000 read and 1,000 write units)
and for its data (one per 10 GB: a partition past that splits), and, on
demand, for double its previous peak.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from meridian.model import limits
from meridian.model.keycodec import partition_hash
from meridian.model.ops import index_partition_hash
from meridian.model.throughput import Limit, LimitType, Meter, key_range_of

from .table_record import Index, Table, warm_throughput

READ = Meter.READ
WRITE = Meter.WRITE
KEY_RANGE_SHIFT = 64 - limits.THROUGHPUT_KEY_RANGE_BITS
assert key_range_of(1 << 63) == (1 << 63) >> KEY_RANGE_SHIFT


@dataclass(slots=True)
class Resource:
    """One metered resource as a plan holds it, with this router's allowance
    of it (``have``: leased units not spent yet; below zero, a debt).  A plan
    rebuilt (the table changed) starts its allowances from zero: at most one
    lease per resource is lost to the table."""

    #: "" the table, an index's name, "#partitions", "#<n>" the table's key
    #: range n, "<index>#<n>" an index's: the budget node's bucket name
    name: str
    limit: Limit
    arn: str
    is_index: bool = False
    have: float = 0.0
    index_name: str = ""  # the global index this resource meters ("" the table): for /metrics
    key_range: int = -1  # a partition ceiling's key range (-1: a table- or index-wide resource)


class Plan:
    """What operations of one kind on one table revision draw on (module docstring).

    A key's ceiling is that of its *key range*, a fixed fine slice of the
    partition-hash space (``key_range_of``), so one key keeps one bucket
    whatever the table's partition count: a hot key is held to one
    partition's rate even while an on-demand table grows.  An on-demand
    table's partitions together are one more resource (``#partitions``: its
    partition count times a partition's rate), which a spread workload past
    double its previous peak runs into."""

    __slots__ = ("table", "revision", "resources", "partitions", "whole", "key_ranges", "index_ranges",
                 "reserved", "uniform", "_ceiling", "_arn", "_index_name")

    def __init__(self, table: Table, meter: Meter, index_name: str | None, peaks: list[float] | None,
                 size_bytes: int = 0) -> None:
        self.table = table
        self.revision = table.revision  # a table record may change in place: its revision says so
        self.resources = table_resources(table, meter, index_name)
        self.partitions = partition_count(table, *(peaks or (0.0, 0.0)), size_bytes)
        ceiling = limits.PARTITION_READ_UNITS_PER_S if meter is READ else limits.PARTITION_WRITE_UNITS_PER_S
        self._ceiling = Limit(float(ceiling), limits.THROUGHPUT_PARTITION_BURST_S, LimitType.KEY_RANGE)
        index = table.index(index_name) if index_name is not None else None
        self._index_name = index.name if index is not None and index.is_global else ""
        self._arn = f"{table.arn}/index/{self._index_name}" if self._index_name else table.arn
        #: an on-demand table's partitions together (None: provisioned, or an index read)
        self.whole: Resource | None = None
        if table.billing_mode != "PROVISIONED" and index_name is None:
            self.whole = Resource("#partitions", self._whole_limit(), table.arn)
            self.resources = [*self.resources, self.whole]
        #: key range -> the table-wide resources and that range's ceiling (of the index, for an index's reads)
        self.key_ranges: dict[int, list[Resource]] = {}
        #: (global index, key range) -> that index partition's ceiling (write plans)
        self.index_ranges: dict[tuple[str, int], Resource] = {}
        #: what ``admit`` takes from each allowance at once (DynamoDB's least
        #: charge: half a read unit, one write unit), and whether from every
        #: one: a write's share of a global index is known only afterwards
        self.reserved = 0.5 if meter is READ else 1.0
        self.uniform = meter is READ or not any(resource.is_index for resource in self.resources)

    def _whole_limit(self) -> Limit:
        return Limit(self._ceiling.rate_per_s * self.partitions, limits.THROUGHPUT_PARTITION_BURST_S,
                     LimitType.KEY_RANGE)

    def resize(self, partitions: int) -> None:
        """The table grew: its partitions' bucket gets the new rate (on its next
        lease); the key ranges and every allowance stay as they are."""
        self.partitions = partitions
        if self.whole is not None:
            self.whole.limit = self._whole_limit()

    def with_partition(self, key_hash: int) -> list[Resource]:
        """The plan's resources and the ceiling of the key range ``key_hash`` falls in."""
        n = key_hash >> KEY_RANGE_SHIFT
        resources = self.key_ranges.get(n)
        if resources is None:
            index = self._index_name
            ceiling = Resource(f"{index}#{n}", self._ceiling, self._arn, bool(index), index_name=index, key_range=n)
            resources = self.key_ranges[n] = [*self.resources, ceiling]
        return resources

    def index_range(self, index_name: str, key_hash: int) -> Resource:
        """A global index partition's write ceiling (a write plan's)."""
        n = key_hash >> KEY_RANGE_SHIFT
        resource = self.index_ranges.get((index_name, n))
        if resource is None:
            resource = self.index_ranges[index_name, n] = Resource(
                f"{index_name}#{n}", self._ceiling, f"{self._arn}/index/{index_name}", True,
                index_name=index_name, key_range=n)
        return resource


def partition_count(table: Table, peak_reads_per_s: float = 0.0, peak_writes_per_s: float = 0.0,
                    size_bytes: int = 0) -> int:
    """How many partitions DynamoDB gives a table: one per 3,000 read and
    1,000 write units provisioned (summed), or, on demand, enough for its
    warm throughput (12,000 reads and 4,000 writes a second for a new table:
    four partitions) or for double its previous peak, whichever is more
    (on-demand capacity follows traffic: a burst past double the previous
    peak is throttled until it has); and in both modes at least one per
    ``PARTITION_SIZE_BYTES_MAX`` (10 GB) of data, as a partition splits when
    it grows past that."""
    by_size = math.ceil(max(size_bytes, 0) / limits.PARTITION_SIZE_BYTES_MAX)
    if table.billing_mode == "PROVISIONED":
        units = table.read_capacity / limits.PARTITION_READ_UNITS_PER_S + (
            table.write_capacity / limits.PARTITION_WRITE_UNITS_PER_S
        )
        return max(1, math.ceil(units), by_size)
    reads, writes = warm_throughput(table, table.billing_mode)
    reads = max(reads, limits.ON_DEMAND_PEAK_FACTOR * peak_reads_per_s)
    writes = max(writes, limits.ON_DEMAND_PEAK_FACTOR * peak_writes_per_s)
    return max(1, math.ceil(reads / limits.PARTITION_READ_UNITS_PER_S),
               math.ceil(writes / limits.PARTITION_WRITE_UNITS_PER_S), by_size)


def index_partition_count(table: Table, index: Index, size_bytes: int = 0) -> int:
    """A global index's partitions, by the same rule as its table's (its own
    throughput, or warm throughput on demand, and its own size)."""
    by_size = math.ceil(max(size_bytes, 0) / limits.PARTITION_SIZE_BYTES_MAX)
    if table.billing_mode == "PROVISIONED":
        units = index.read_capacity / limits.PARTITION_READ_UNITS_PER_S + (
            index.write_capacity / limits.PARTITION_WRITE_UNITS_PER_S
        )
        return max(1, math.ceil(units), by_size)
    reads, writes = warm_throughput(index, table.billing_mode)
    return max(1, math.ceil(reads / limits.PARTITION_READ_UNITS_PER_S),
               math.ceil(writes / limits.PARTITION_WRITE_UNITS_PER_S), by_size)


def index_key_hash(index: Index, item: dict[str, Any]) -> int | None:
    """The partition hash of ``item``'s key in global index ``index`` (None:
    the item lacks a HASH attribute of it, so it is not in the index).  The
    same hash a Query on the index places its partition with."""
    parts = []
    for name, key_type in index.spec.hash_schema:
        value = item.get(name)
        if type(value) is not dict or key_type not in value:
            return None
        parts.append((key_type, value))
    if len(parts) == 1:
        return partition_hash(*parts[0])
    return index_partition_hash(parts)


def table_resources(table: Table, meter: Meter, index_name: str | None) -> list[Resource]:
    """The table- and index-wide resources an operation draws on."""
    reading = meter is READ
    if table.billing_mode == "PROVISIONED":
        if reading:
            if index_name is not None:
                index = table.index(index_name)
                if index is not None and index.is_global:
                    return [Resource(index.name, Limit(float(index.read_capacity)),
                                     f"{table.arn}/index/{index.name}", True, index_name=index.name)]
            return [Resource("", Limit(float(table.read_capacity)), table.arn)]
        out = [Resource("", Limit(float(table.write_capacity)), table.arn)]
        for index in table.global_indexes:
            if index.write_capacity:
                out.append(Resource(index.name, Limit(float(index.write_capacity)),
                                    f"{table.arn}/index/{index.name}", True, index_name=index.name))
        return out
    member = "on_demand_max_read_units" if reading else "on_demand_max_write_units"
    out = []
    subjects: list = [table]
    if reading and index_name is not None:
        index = table.index(index_name)
        subjects = [index] if index is not None and index.is_global else [table]
    elif not reading:
        subjects += table.global_indexes
    for subject in subjects:
        maximum = getattr(subject, member)
        if maximum is not None and maximum > 0:
            is_index = subject is not table
            name = subject.name if is_index else ""
            arn = f"{table.arn}/index/{name}" if is_index else table.arn
            out.append(Resource(name, Limit(float(maximum), limits.THROUGHPUT_MAX_BURST_S, LimitType.MAX_ON_DEMAND),
                                arn, is_index, index_name=name))
    return out
