"""Throttling: a router's side of the shared throughput budgets (``node/budget.py``).

Before an operation runs, ``admit`` checks that every resource it draws on
has capacity:

* a provisioned table's reads or writes (a Query on a global index: that
  index's reads), and for a write every provisioned global secondary index's
  writes too (DynamoDB throttles a base-table write whose index cannot keep
  up): ``ProvisionedThroughputExceeded``;
* an on-demand table's or index's ``OnDemandThroughput`` maximum, when one
  is set: ``MaxOnDemandThroughputExceeded`` (a ``ThrottlingException``);
* the partition the key falls in, in either mode: at most
  ``PARTITION_READ_UNITS_PER_S`` / ``PARTITION_WRITE_UNITS_PER_S``, so one
  hot key is throttled while the table still has capacity
  (``KeyRangeThroughputExceeded``).  A table has as many partitions as
  DynamoDB gives it for its throughput (``partition_count``); a key's
  partition is its partition hash's slice of the hash space.

Each resource's units come from a local allowance, refilled by leases from
the table's budget node; an empty allowance that a lease cannot refill
throttles the request with DynamoDB's error and ``ThrottlingReasons``.
After the operation, ``spend`` takes what it actually consumed (a read's
size is only known then), which may overdraw the allowance: the next lease
pays the debt first, so the long-run rate is exact, and two routers driving
one table together get its rate, not twice it.  The error bound is one
lease per router per resource (``THROUGHPUT_LEASE_S`` of its rate) plus one
request's overdraft.

When a table's budget node cannot be reached (dead, restarting, cut off),
the router meters that table on buckets of its own for
``THROUGHPUT_LEASE_RETRY_S`` at a time and then asks the node again: while
the node is away each router gets the whole rate (the budget fails open, as
it must: one dead node does not make every partition of its tables
unavailable), and the shared buckets resume when it is back.

In ``meridian serve`` the budget node is the router's own engine and a
lease is a function call, so the fast path (``router/fast_path.py``) admits
synchronously (``admit_now``).  With throttling off (``--no-throttling``)
nothing is metered.  An on-demand table's partitions grow with its traffic:
as many as double its previous peak (per second, as this router saw it)
needs, so a burst past double the previous peak is throttled first, as in
DynamoDB.  Known gaps: partitions do not split as a table's data grows,
global indexes have no partition ceilings, and each router sizes on-demand
partitions from its own share of the traffic.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from meridian.model import limits
from meridian.model.errors import (
    DynamoError,
    InternalServerError,
    ProvisionedThroughputExceededException,
    ServiceUnavailable,
    ThrottlingException,
)
from meridian.model.keycodec import partition_hash
from meridian.model.ring import Ring
from meridian.model.throughput import (
    INDEX_PROVISIONED_MESSAGE,
    KEY_RANGE_ON_DEMAND_MESSAGE,
    MAX_ON_DEMAND_MESSAGE,
    TABLE_PROVISIONED_MESSAGE,
    LeaseRequest,
    Limit,
    LimitType,
    Meter,
    key_range_of,
    lease_units,
    reason_name,
)
from meridian.node.budget import BudgetHolder

from .capacity import Usage
from .storage import Storage
from .table_record import Table, warm_throughput

log = logging.getLogger(__name__)

READ = Meter.READ
WRITE = Meter.WRITE
_KEY_RANGE_SHIFT = 64 - limits.THROUGHPUT_KEY_RANGE_BITS
assert key_range_of(1 << 63) == (1 << 63) >> _KEY_RANGE_SHIFT
#: What an admitted operation takes from its allowances at once (DynamoDB's
#: least charge: half a read unit, one write unit), so that operations
#: admitted together (a batch, concurrent requests) cannot all pass on one
#: unit; ``spend`` takes the rest of what it consumed.
_RESERVED = {READ: 0.5, WRITE: 1.0}


@dataclass(slots=True)
class _Resource:
    """One metered resource as a plan holds it, with this router's allowance
    of it (``have``: leased units not spent yet; below zero, a debt).  A plan
    rebuilt (the table changed) starts its allowances from zero: at most one
    lease per resource is lost to the table."""

    name: str  # "" the table, an index's name, "#partitions", or "#<n>" key range n
    limit: Limit
    arn: str
    is_index: bool = False
    have: float = 0.0


class _Plan:
    """What operations of one kind on one table revision draw on: the
    table-wide resources, and each key range's ceiling (made on first use).

    A key's ceiling is that of its *key range*, a fixed fine slice of the
    partition-hash space (``key_range_of``), so one key keeps one bucket
    whatever the table's partition count: a hot key is held to one
    partition's rate even while an on-demand table grows.  An on-demand
    table's partitions together are one more resource (``#partitions``: its
    partition count times a partition's rate), which a spread workload past
    double its previous peak runs into."""

    __slots__ = ("table", "revision", "resources", "partitions", "whole", "_key_ranges", "_ceiling", "_arn")

    def __init__(self, table: Table, meter: Meter, index_name: str | None, peaks: list[float] | None) -> None:
        self.table = table
        self.revision = table.revision  # a table record may change in place: its revision says so
        self.resources = _table_resources(table, meter, index_name)
        self.partitions = partition_count(table, *(peaks or (0.0, 0.0)))
        ceiling = limits.PARTITION_READ_UNITS_PER_S if meter is READ else limits.PARTITION_WRITE_UNITS_PER_S
        self._ceiling = Limit(float(ceiling), limits.THROUGHPUT_PARTITION_BURST_S, LimitType.KEY_RANGE)
        self._arn = table.arn
        #: an on-demand table's partitions together (None: provisioned, or an index read)
        self.whole: _Resource | None = None
        if table.billing_mode != "PROVISIONED" and index_name is None:
            self.whole = _Resource("#partitions", self._whole_limit(), table.arn)
            self.resources = [*self.resources, self.whole]
        #: key range -> the table-wide resources and that range's ceiling
        self._key_ranges: dict[int, list[_Resource]] = {}

    def _whole_limit(self) -> Limit:
        return Limit(self._ceiling.rate_per_s * self.partitions, limits.THROUGHPUT_PARTITION_BURST_S,
                     LimitType.KEY_RANGE)

    def resize(self, partitions: int) -> None:
        """The table grew: its partitions' bucket gets the new rate (on its next
        lease); the key ranges and every allowance stay as they are."""
        self.partitions = partitions
        if self.whole is not None:
            self.whole.limit = self._whole_limit()

    def with_partition(self, key_hash: int) -> list[_Resource]:
        n = key_hash >> _KEY_RANGE_SHIFT  # key_range_of, inline: this runs per request
        resources = self._key_ranges.get(n)
        if resources is None:
            resources = self._key_ranges[n] = [*self.resources, _Resource(f"#{n}", self._ceiling, self._arn)]
        return resources


def budget_owner(ring: Ring, table_id: int) -> str:
    """The node holding a table's buckets: the same for every router."""
    if ring.single is not None:
        return ring.single
    return ring.owner(partition_hash("N", {"N": str(table_id)}))


def partition_count(table: Table, peak_reads_per_s: float = 0.0, peak_writes_per_s: float = 0.0) -> int:
    """How many partitions DynamoDB gives a table for its throughput: one per
    3,000 read and 1,000 write units provisioned (summed), or, on demand,
    enough for its warm throughput (12,000 reads and 4,000 writes a second
    for a new table: four partitions) or for double its previous peak,
    whichever is more: on-demand capacity follows traffic, and a burst past
    double the previous peak is throttled until it has."""
    if table.billing_mode == "PROVISIONED":
        units = table.read_capacity / limits.PARTITION_READ_UNITS_PER_S + (
            table.write_capacity / limits.PARTITION_WRITE_UNITS_PER_S
        )
        return max(1, math.ceil(units))
    reads, writes = warm_throughput(table, table.billing_mode)
    reads = max(reads, limits.ON_DEMAND_PEAK_FACTOR * peak_reads_per_s)
    writes = max(writes, limits.ON_DEMAND_PEAK_FACTOR * peak_writes_per_s)
    return max(1, math.ceil(reads / limits.PARTITION_READ_UNITS_PER_S),
               math.ceil(writes / limits.PARTITION_WRITE_UNITS_PER_S))


def _table_resources(table: Table, meter: Meter, index_name: str | None) -> list[_Resource]:
    """The table- and index-wide resources an operation draws on."""
    reading = meter is READ
    if table.billing_mode == "PROVISIONED":
        if reading:
            if index_name is not None:
                index = table.index(index_name)
                if index is not None and index.is_global:
                    return [_Resource(index.name, Limit(float(index.read_capacity)),
                                      f"{table.arn}/index/{index.name}", True)]
            return [_Resource("", Limit(float(table.read_capacity)), table.arn)]
        out = [_Resource("", Limit(float(table.write_capacity)), table.arn)]
        for index in table.global_indexes:
            if index.write_capacity:
                out.append(_Resource(index.name, Limit(float(index.write_capacity)),
                                     f"{table.arn}/index/{index.name}", True))
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
            out.append(_Resource(name, Limit(float(maximum), limits.THROUGHPUT_MAX_BURST_S, LimitType.MAX_ON_DEMAND),
                                 arn, is_index))
    return out


def _throttled(table: Table, meter: Meter, refused: list[_Resource]) -> DynamoError:
    reasons = [{"reason": reason_name(r.is_index, meter, r.limit.limit_type), "resource": r.arn} for r in refused]
    if any(r.limit.limit_type is LimitType.MAX_ON_DEMAND for r in refused):
        return ThrottlingException(MAX_ON_DEMAND_MESSAGE, reasons)
    if table.billing_mode != "PROVISIONED":
        return ProvisionedThroughputExceededException(KEY_RANGE_ON_DEMAND_MESSAGE, reasons)
    message = INDEX_PROVISIONED_MESSAGE if all(r.is_index for r in refused) else TABLE_PROVISIONED_MESSAGE
    return ProvisionedThroughputExceededException(message, reasons)


class Throttle:
    """One router's allowances, held by its plans' resources."""

    def __init__(self, storage: Storage, ring: Ring, *, enabled: bool = True) -> None:
        self.enabled = enabled
        self._storage = storage
        self._ring = ring
        #: in-process budgets (meridian serve): leases need no await
        self._local_holder: BudgetHolder | None = getattr(storage, "budget", None)
        #: this router's own buckets, for tables whose budget node is away
        self._fallback_holder = BudgetHolder()
        #: budget node -> when to ask it again after a failed lease (monotonic s)
        self._away_until: dict[str, float] = {}
        #: (table id, revision, meter, index) -> what such an operation draws on
        self._plans: dict[tuple[int, int, Meter, str | None], _Plan] = {}
        #: per meter, the last table-wide plan used (same table object, same revision: still right)
        self._last: list[_Plan | None] = [None, None]
        #: (key type, raw partition key value) -> its partition hash: a key's
        #: hash is a blake2b, ten times the cost of the rest of an admission
        self._hashes: dict[tuple[str, Any], int] = {}
        self.throttled: dict[tuple[str, Meter], int] = {}  # (table name, meter) -> requests refused
        #: per meter, table id -> units this router's requests consumed (CloudWatch's Consumed*CapacityUnits)
        self.consumed: tuple[dict[int, float], dict[int, float]] = ({}, {})
        #: (table id, revision) -> whether its writes must know the old item
        self._indexed: dict[tuple[int, int], bool] = {}
        #: on-demand growth: table id -> the highest read and write units a
        #: second this router saw it consume; the totals at the last whole
        #: second, and that second (``_roll``)
        self._peaks: dict[int, list[float]] = {}
        self._totals: dict[tuple[int, Meter], float] = {}
        self._second = int(time.monotonic())

    def __repr__(self) -> str:
        return f"<Throttle {'on' if self.enabled else 'off'} plans={len(self._plans)}>"

    def _needed(self, table: Table, meter: Meter, index_name: str | None, key_hash: int | None) -> list[_Resource]:
        if index_name is None:  # the common case: the same table object as last time
            last = self._last[meter]
            if last is not None and last.table is table and last.revision == table.revision:
                return last.resources if key_hash is None else last.with_partition(key_hash)
        key = (table.table_id, table.revision, meter, index_name)
        plan = self._plans.get(key)
        if plan is None:
            if len(self._plans) >= limits.THROUGHPUT_PLANS_MAX:
                self._plans.clear()
                self._last = [None, None]
            plan = self._plans[key] = _Plan(table, meter, index_name, self._peaks.get(table.table_id))
        if index_name is None:
            self._last[meter] = plan
        if key_hash is None or index_name is not None:
            return plan.resources
        return plan.with_partition(key_hash)

    def _short(self, table: Table, meter: Meter, resources: list[_Resource]) -> list[tuple[_Resource, LeaseRequest]]:
        """The resources whose allowance is spent, with the lease each needs."""
        short = []
        for resource in resources:
            have = resource.have
            if have > 0:
                continue
            wanted = lease_units(resource.limit) - have  # the debt first
            short.append((resource, LeaseRequest(table.table_id, resource.name, meter, resource.limit, wanted)))
        return short

    def _reserve(self, table: Table, meter: Meter, resources: list[_Resource]) -> None:
        reserved = _RESERVED[meter]
        writing = meter is WRITE
        for resource in resources:
            if writing and resource.is_index:
                continue  # a write's share of an index is known only afterwards
            resource.have -= reserved

    def _settle(self, table: Table, meter: Meter, short: list[tuple[_Resource, LeaseRequest]],
                granted: Iterable[float]) -> None:
        refused = []
        for (resource, _request), units in zip(short, granted):
            resource.have += units
            if resource.have <= 0:
                refused.append(resource)
        if refused:
            counter = (table.name, meter)
            self.throttled[counter] = self.throttled.get(counter, 0) + 1
            raise _throttled(table, meter, refused)

    def key_hash(self, table: Table, key: dict) -> int:
        """The partition hash of an item key (what places it in a partition)."""
        name, key_type = table.key_schema[0]
        value = key[name][key_type]
        hashes = self._hashes
        cached = hashes.get((key_type, value))
        if cached is None:
            if len(hashes) >= limits.THROUGHPUT_KEY_HASHES_MAX:
                hashes.clear()
            cached = hashes[key_type, value] = partition_hash(key_type, key[name])
        return cached

    def admit_now(self, table: Table, meter: Meter, index_name: str | None = None,
                  key_hash: int | None = None) -> bool:
        """Admit without awaiting when possible: True (admitted), False (a
        lease must be awaited: call ``admit``); raises when throttled.
        ``key_hash``: the partition hash of the one key a single-item
        operation touches (its partition's ceiling applies)."""
        if not self.enabled:
            return True
        if int(time.monotonic()) != self._second:
            self._roll()
        needed = self._needed(table, meter, index_name, key_hash)
        for resource in needed:
            if resource.have <= 0:
                break
        else:  # every allowance holds: the common case, no lease
            reserved = _RESERVED[meter]
            writing = meter is WRITE
            for resource in needed:
                if not (writing and resource.is_index):
                    resource.have -= reserved
            return True
        short = self._short(table, meter, needed)
        holder = self._local_holder
        if holder is None:
            return False
        self._settle(table, meter, short, [holder.lease(request) for _r, request in short])
        self._reserve(table, meter, needed)
        return True

    def _roll(self) -> None:
        """A second went by: each table's consumption rate since the last
        roll; a new peak gives an on-demand table more partitions (its plans
        are rebuilt)."""
        now = int(time.monotonic())
        elapsed = now - self._second
        self._second = now
        if elapsed <= 0:
            return
        grown: set[int] = set()
        for meter in (READ, WRITE):
            for table_id, total in self.consumed[meter].items():
                before = self._totals.get((table_id, meter), 0.0)
                self._totals[table_id, meter] = total
                rate = (total - before) / elapsed
                peaks = self._peaks.setdefault(table_id, [0.0, 0.0])
                if rate > peaks[meter]:
                    peaks[meter] = rate
                    grown.add(table_id)
        if grown:
            for plan in self._plans.values():
                table = plan.table
                if plan.whole is not None and table.table_id in grown:
                    partitions = partition_count(table, *self._peaks[table.table_id])
                    if partitions != plan.partitions:
                        plan.resize(partitions)

    async def admit(self, table: Table, meter: Meter, index_name: str | None = None,
                    key_hash: int | None = None) -> None:
        """Raise the throttling error if the operation may not run now."""
        if self.admit_now(table, meter, index_name, key_hash):
            return
        needed = self._needed(table, meter, index_name, key_hash)
        short = self._short(table, meter, needed)
        owner = budget_owner(self._ring, table.table_id)
        granted = [await self._lease(owner, request) for _r, request in short]
        self._settle(table, meter, short, granted)
        self._reserve(table, meter, needed)

    async def _lease(self, owner: str, request: LeaseRequest) -> float:
        """Units from the budget node, or from this router's own buckets while it is away."""
        away_until = self._away_until.get(owner)
        if away_until is None or time.monotonic() >= away_until:
            try:
                granted = await self._storage.lease_capacity(owner, request)
            except (ServiceUnavailable, InternalServerError) as error:
                if away_until is None:
                    log.warning("budget node %s unreachable (%s): metering its tables on this router's own "
                                "buckets", owner, error.message)
                self._away_until[owner] = time.monotonic() + limits.THROUGHPUT_LEASE_RETRY_S
            else:
                if away_until is not None:
                    del self._away_until[owner]
                    log.warning("budget node %s is back: its tables' budgets are shared again", owner)
                return granted
        return self._fallback_holder.lease(request)

    def metered_indexes(self, table: Table) -> bool:
        """Whether a write must know the old item: a local index's entries
        are charged to the table's own throughput, or some global index of
        the table is metered on its own (provisioned, or with an on-demand
        maximum)."""
        if not self.enabled:
            return False
        key = (table.table_id, table.revision)
        indexed = self._indexed.get(key)
        if indexed is None:
            if len(self._indexed) >= limits.THROUGHPUT_PLANS_MAX:
                self._indexed.clear()
            provisioned = table.billing_mode == "PROVISIONED"
            indexed = self._indexed[key] = bool(table.local_indexes) or any(
                index.write_capacity if provisioned else index.on_demand_max_write_units
                for index in table.global_indexes
            )
        return indexed

    def spend_usage(self, table: Table, meter: Meter, usage: Usage, index_name: str | None = None,
                    key_hash: int | None = None) -> None:
        """``spend`` what ``router/capacity.py`` computed: local indexes share
        the table's throughput, global ones have their own."""
        if meter is READ:
            index = table.index(index_name) if index_name is not None else None
            if index is not None and index.is_global:
                units = usage.global_indexes[index.name].read if index.name in usage.global_indexes else 0.0
            else:
                units = usage.table.read + sum(u.read for u in usage.local_indexes.values())
            self.spend(table, READ, units, index_name=index_name, key_hash=key_hash)
            return
        units = usage.table.write + sum(u.write for u in usage.local_indexes.values())
        self.spend(table, WRITE, units, {name: u.write for name, u in usage.global_indexes.items()},
                   key_hash=key_hash)

    def spend(self, table: Table, meter: Meter, units: float, index_units: dict[str, float] | None = None,
              index_name: str | None = None, key_hash: int | None = None) -> None:
        """Take what an admitted operation consumed: ``units`` from the table
        (or from ``index_name``'s reads, a global index) and its key's
        partition, ``index_units`` from each global index a write changed;
        less what ``admit`` reserved."""
        if not self.enabled:
            return
        table_id = table.table_id
        consumed = self.consumed[meter]
        consumed[table_id] = consumed.get(table_id, 0.0) + units
        used = units - _RESERVED[meter]
        if not used and not index_units:
            return  # what admit reserved was all of it: a small item
        writing = meter is WRITE
        for resource in self._needed(table, meter, index_name, key_hash):
            if writing and resource.is_index:
                resource.have -= index_units.get(resource.name, 0.0) if index_units else 0.0
            else:
                resource.have -= used
