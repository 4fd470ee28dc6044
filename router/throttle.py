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
  DynamoDB gives it for its throughput and its data (``partition_count``,
  ``router/throttle_plan.py``); a key's partition is its partition hash's
  slice of the hash space.  Global indexes have ceilings too: a Query on
  an index given its index partition's hash is held to that partition's,
  and a put given its item (``item=``) whose item lands on a hot index key
  is throttled with the index's reason (DynamoDB's GSI back-pressure); a
  write given its old and new items (``spend_usage``) is charged to their
  index partitions.

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
synchronously (``admit_now``); its common case (every allowance holds) is
a clock read, one dict lookup for the key range's resources and a
reservation from each.  With throttling off (``--no-throttling``) nothing
is metered.  An on-demand table's partitions grow with its traffic: as many
as double its previous peak (per second, as this router saw it) needs, so a
burst past double the previous peak is throttled first, as in DynamoDB; and
every table's with its data: the router asks the nodes for the size of the
tables it meters every ``THROUGHPUT_TABLE_SIZE_REFRESH_S``.  Known gaps: an
update's or delete's index keys are known only after it ran, so only a
put is refused on a hot index partition (the others are charged to it);
each router sizes on-demand partitions from its own share of the traffic.

What it counts, for ``/metrics`` and the console (CloudWatch's figures, as
this router saw them): units consumed per table and per global index (a
Query on an index is the index's, as CloudWatch's ``GlobalSecondaryIndexName``
dimension counts it), requests throttled per table, throttle events per
resource, and throttle events per partition.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
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
    LimitType,
    Meter,
    lease_units,
    reason_name,
)
from meridian.node.budget import BudgetHolder

from .capacity import Usage
from .storage import Storage
from .table_record import Table
from .throttle_plan import (
    KEY_RANGE_SHIFT,
    Plan,
    Resource,
    index_key_hash,
    index_partition_count,
    partition_count,
)

log = logging.getLogger(__name__)

READ = Meter.READ
WRITE = Meter.WRITE
#: What an admitted operation takes from its allowances at once, by meter
#: (DynamoDB's least charge: half a read unit, one write unit), so that
#: operations admitted together (a batch, concurrent requests) cannot all
#: pass on one unit; ``spend`` takes the rest of what it consumed.
_RESERVED = (0.5, 1.0)
assert _RESERVED[READ] == 0.5 and _RESERVED[WRITE] == 1.0

__all__ = ["READ", "WRITE", "Throttle", "budget_owner", "partition_count"]


def budget_owner(ring: Ring, table_id: int) -> str:
    """The node holding a table's buckets: the same for every router."""
    if ring.single is not None:
        return ring.single
    return ring.owner(partition_hash("N", {"N": str(table_id)}))


def _throttled(table: Table, meter: Meter, refused: list[Resource]) -> DynamoError:
    reasons = [{"reason": reason_name(r.is_index, meter, r.limit.limit_type), "resource": r.arn} for r in refused]
    if any(r.limit.limit_type is LimitType.MAX_ON_DEMAND for r in refused):
        return ThrottlingException(MAX_ON_DEMAND_MESSAGE, reasons)
    if table.billing_mode != "PROVISIONED":
        return ProvisionedThroughputExceededException(KEY_RANGE_ON_DEMAND_MESSAGE, reasons)
    message = INDEX_PROVISIONED_MESSAGE if all(r.is_index for r in refused) else TABLE_PROVISIONED_MESSAGE
    return ProvisionedThroughputExceededException(message, reasons)


def _global_index_name(table: Table, index_name: str | None) -> str | None:
    """``index_name`` when it names a global index (whose reads are its own), else None."""
    if index_name is None:
        return None
    index = table.index(index_name)
    return index.name if index is not None and index.is_global else None


class Throttle:
    """One router's allowances, held by its plans' resources, and its counters."""

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
        self._plans: dict[tuple[int, int, Meter, str | None], Plan] = {}
        #: per meter, the last table-wide plan used (same table object, same revision: still right)
        self._last: list[Plan | None] = [None, None]
        #: key type -> raw partition key value -> its partition hash: a key's
        #: hash is a blake2b, ten times the cost of the rest of an admission
        self._hashes: dict[str, dict[Any, int]] = {"S": {}, "N": {}, "B": {}}
        self.throttled: dict[tuple[str, Meter], int] = {}  # (table name, meter) -> requests refused
        #: per meter, table id -> units this router's requests consumed from the
        #: table itself (CloudWatch's Consumed*CapacityUnits, TableName alone)
        self.consumed: tuple[dict[int, float], dict[int, float]] = ({}, {})
        #: per meter, (table id, global index) -> units consumed from the index
        #: (the same, with CloudWatch's GlobalSecondaryIndexName)
        self.index_consumed: tuple[dict[tuple[int, str], float], dict[tuple[int, str], float]] = ({}, {})
        #: (table id, global index or "", meter) -> throttle events of that resource
        #: (CloudWatch's Read/WriteThrottleEvents: a request refused by the table and
        #: an index is an event of each)
        self.events: dict[tuple[int, str, Meter], int] = {}
        #: (table id, global index or "", meter, key range) -> partition ceiling refusals
        self.key_range_events: dict[tuple[int, str, Meter, int], int] = {}
        #: (table id, revision) -> whether its writes must know the old item
        self._indexed: dict[tuple[int, int], bool] = {}
        #: on-demand growth: table id -> the highest read and write units a
        #: second this router saw it consume; the totals at the last whole
        #: second, and that second (``_roll``)
        self._peaks: dict[int, list[float]] = {}
        self._totals: dict[tuple[int, Meter], float] = {}
        self._second = int(time.monotonic())
        self._roll_at_s = self._second + 1.0
        self._roll_countdown = 0  # admissions before the clock is read again
        #: table id -> its size as the nodes last reported it (TableSizeBytes), and
        #: when to ask again (``refresh_sizes``, started by ``_roll`` on a running loop)
        self._sizes: dict[int, int] = {}
        self._sizes_due_s = 0.0
        self._sizing: asyncio.Task | None = None

    def __repr__(self) -> str:
        return f"<Throttle {'on' if self.enabled else 'off'} plans={len(self._plans)}>"

    # --- plans ----------------------------------------------------------------------
    def _plan(self, table: Table, meter: Meter, index_name: str | None) -> Plan:
        key = (table.table_id, table.revision, meter, index_name)
        plan = self._plans.get(key)
        if plan is None:
            if len(self._plans) >= limits.THROUGHPUT_PLANS_MAX:
                self._plans.clear()
                self._last = [None, None]
            plan = self._plans[key] = Plan(table, meter, index_name, self._peaks.get(table.table_id),
                                           self._sizes.get(table.table_id, 0))
        if index_name is None:
            self._last[meter] = plan
        return plan

    def _needed(self, table: Table, meter: Meter, index_name: str | None, key_hash: int | None) -> list[Resource]:
        plan = self._last[meter]
        if index_name is not None or plan is None or plan.table is not table or plan.revision != table.revision:
            plan = self._plan(table, meter, index_name)
        if key_hash is None:
            return plan.resources
        return plan.key_ranges.get(key_hash >> KEY_RANGE_SHIFT) or plan.with_partition(key_hash)

    def _index_ranges(self, table: Table, item: dict[str, Any]) -> list[Resource]:
        """A put's new item's partitions in the table's global indexes (their write ceilings)."""
        plan = self._plan(table, WRITE, None)
        out = []
        for index in table.global_indexes:
            key_hash = index_key_hash(index, item)
            if key_hash is not None:
                out.append(plan.index_range(index.name, key_hash))
        return out

    def key_hash(self, table: Table, key: dict) -> int:
        """The partition hash of an item key (what places it in a partition)."""
        name, key_type = table.key_schema[0]
        value = key[name]
        hashes = self._hashes[key_type]
        raw = value[key_type]
        cached = hashes.get(raw)
        if cached is None:
            if len(hashes) >= limits.THROUGHPUT_KEY_HASHES_MAX:
                hashes.clear()
            cached = hashes[raw] = partition_hash(key_type, value)
        return cached

    # --- admitting ----------------------------------------------------------------------
    def admit_now(self, table: Table, meter: Meter, index_name: str | None = None,
                  key_hash: int | None = None, item: Any = None) -> bool:
        """Admit without awaiting when possible: True (admitted), False (a
        lease must be awaited: call ``admit``); raises when throttled.
        ``key_hash``: the partition hash of the one key a single-item
        operation touches, or of the index partition a Query on a global
        index reads (its partition's ceiling applies); ``item``: a put's new
        item (the ceilings of its global index partitions apply too)."""
        if not self.enabled:
            return True
        self._roll_countdown -= 1
        if self._roll_countdown <= 0:  # the clock, every few admissions: a second may have gone by
            self._roll_countdown = limits.THROUGHPUT_ROLL_CHECK_ADMISSIONS
            if time.monotonic() >= self._roll_at_s:
                self._roll()
        plan = self._last[meter]
        if index_name is None and plan is not None and plan.table is table and plan.revision == table.revision:
            if key_hash is None:
                needed = plan.resources
            else:  # key_range_of, inline: this runs per request
                needed = plan.key_ranges.get(key_hash >> KEY_RANGE_SHIFT) or plan.with_partition(key_hash)
        else:
            plan = self._plan(table, meter, index_name)
            needed = plan.resources if key_hash is None else plan.with_partition(key_hash)
        if item is not None and type(item) is dict and table.indexes:
            needed = needed + self._index_ranges(table, item)
            plan = None  # its index partitions are written: not reserved
        for resource in needed:
            if resource.have <= 0:
                break
        else:  # every allowance holds: the common case, no lease
            if plan is not None and plan.uniform:
                reserved = plan.reserved
                for resource in needed:
                    resource.have -= reserved
            else:
                self._reserve(meter, needed)
            return True
        holder = self._local_holder
        if holder is None:
            return False
        short = self._short(table, meter, needed)
        self._settle(table, meter, short, [holder.lease(request) for _r, request in short])
        self._reserve(meter, needed)
        return True

    async def admit(self, table: Table, meter: Meter, index_name: str | None = None,
                    key_hash: int | None = None, item: Any = None) -> None:
        """Raise the throttling error if the operation may not run now (``admit_now``'s arguments)."""
        if self.admit_now(table, meter, index_name, key_hash, item):
            return
        needed = self._needed(table, meter, index_name, key_hash)
        if type(item) is dict and table.indexes:
            needed = needed + self._index_ranges(table, item)
        short = self._short(table, meter, needed)
        owner = budget_owner(self._ring, table.table_id)
        granted = [await self._lease(owner, request) for _r, request in short]
        self._settle(table, meter, short, granted)
        self._reserve(meter, needed)

    def _short(self, table: Table, meter: Meter, resources: list[Resource]) -> list[tuple[Resource, LeaseRequest]]:
        """The resources whose allowance is spent, with the lease each needs."""
        short = []
        for resource in resources:
            have = resource.have
            if have > 0:
                continue
            wanted = lease_units(resource.limit) - have  # the debt first
            short.append((resource, LeaseRequest(table.table_id, resource.name, meter, resource.limit, wanted)))
        return short

    def _reserve(self, meter: Meter, resources: list[Resource]) -> None:
        reserved = _RESERVED[meter]
        writing = meter is WRITE
        for resource in resources:
            if writing and resource.is_index:
                continue  # a write's share of an index is known only afterwards
            resource.have -= reserved

    def _settle(self, table: Table, meter: Meter, short: list[tuple[Resource, LeaseRequest]],
                granted: Iterable[float]) -> None:
        refused = []
        for (resource, _request), units in zip(short, granted):
            resource.have += units
            if resource.have <= 0:
                refused.append(resource)
        if refused:
            counter = (table.name, meter)
            self.throttled[counter] = self.throttled.get(counter, 0) + 1
            for resource in refused:
                self._count_event(table.table_id, meter, resource)
            raise _throttled(table, meter, refused)

    def _count_event(self, table_id: int, meter: Meter, resource: Resource) -> None:
        """One refusal by ``resource``, for ``/metrics`` (bounded: past
        ``THROUGHPUT_THROTTLE_COUNTERS_MAX`` counters, new ones are not kept)."""
        for counters, key in ((self.events, (table_id, resource.index_name, meter)),
                              (self.key_range_events, (table_id, resource.index_name, meter, resource.key_range))):
            if counters is self.key_range_events and resource.key_range < 0:
                continue
            if key in counters or len(counters) < limits.THROUGHPUT_THROTTLE_COUNTERS_MAX:
                counters[key] = counters.get(key, 0) + 1  # type: ignore[index]

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

    # --- spending -------------------------------------------------------------------------
    def metered_indexes(self, table: Table) -> bool:
        """Whether a write must know the old item: a table with secondary
        indexes charges each affected index (a local index's entries to the
        table's own throughput, a global index's to that index and the
        partitions of its old and new keys)."""
        if not self.enabled:
            return False
        key = (table.table_id, table.revision)
        indexed = self._indexed.get(key)
        if indexed is None:
            if len(self._indexed) >= limits.THROUGHPUT_PLANS_MAX:
                self._indexed.clear()
            indexed = self._indexed[key] = bool(table.indexes)
        return indexed

    def spend_usage(self, table: Table, meter: Meter, usage: Usage, index_name: str | None = None,
                    key_hash: int | None = None, old: Any = None, new: Any = None) -> None:
        """``spend`` what ``router/capacity.py`` computed: local indexes share
        the table's throughput, global ones have their own; a write's
        ``old`` and ``new`` items (when known) place its index entries in
        their index partitions."""
        if meter is READ:
            global_name = _global_index_name(table, index_name)
            if global_name is not None:
                units = usage.global_indexes[global_name].read if global_name in usage.global_indexes else 0.0
            else:
                units = usage.table.read + sum(u.read for u in usage.local_indexes.values())
            self.spend(table, READ, units, index_name=index_name, key_hash=key_hash)
            return
        units = usage.table.write + sum(u.write for u in usage.local_indexes.values())
        index_hashes = None
        if (type(old) is dict or type(new) is dict) and usage.global_indexes:
            index_hashes = set()
            for index in table.global_indexes:
                for item in (old, new):
                    if type(item) is dict and (hashed := index_key_hash(index, item)) is not None:
                        index_hashes.add((index.name, hashed))
        self.spend(table, WRITE, units, {name: u.write for name, u in usage.global_indexes.items()},
                   key_hash=key_hash, index_hashes=index_hashes)

    def spend(self, table: Table, meter: Meter, units: float, index_units: dict[str, float] | None = None,
              index_name: str | None = None, key_hash: int | None = None,
              index_hashes: Iterable[tuple[str, int]] | None = None) -> None:
        """Take what an admitted operation consumed: ``units`` from the table
        (or from ``index_name``'s reads, a global index) and its key's
        partition, ``index_units`` from each global index a write changed
        and from each of its partitions in ``index_hashes`` ((index, partition
        hash) of the write's old and new index keys); less what ``admit``
        reserved."""
        if not self.enabled:
            return
        table_id = table.table_id
        if index_name is None or (global_name := _global_index_name(table, index_name)) is None:
            consumed = self.consumed[meter]
            consumed[table_id] = consumed.get(table_id, 0.0) + units
        else:
            self._count_index_units(meter, table_id, global_name, units)
        if index_units:
            for name, index_spent in index_units.items():
                self._count_index_units(meter, table_id, name, index_spent)
        used = units - _RESERVED[meter]
        if not used and not index_units:
            return  # what admit reserved was all of it: a small item
        writing = meter is WRITE
        for resource in self._needed(table, meter, index_name, key_hash):
            if writing and resource.is_index:
                resource.have -= index_units.get(resource.index_name, 0.0) if index_units else 0.0
            else:
                resource.have -= used
        if index_hashes and index_units:
            plan = self._plan(table, WRITE, None)
            for name, hashed in index_hashes:
                plan.index_range(name, hashed).have -= index_units.get(name, 0.0)

    def _count_index_units(self, meter: Meter, table_id: int, index_name: str, units: float) -> None:
        consumed = self.index_consumed[meter]
        key = (table_id, index_name)
        if key in consumed or len(consumed) < limits.THROUGHPUT_THROTTLE_COUNTERS_MAX:
            consumed[key] = consumed.get(key, 0.0) + units

    # --- growth: traffic and data ---------------------------------------------------------
    def _roll(self) -> None:
        """A second went by: each table's consumption rate since the last
        roll; a new peak gives an on-demand table more partitions (its plans
        are resized).  Every ``THROUGHPUT_TABLE_SIZE_REFRESH_S`` it also
        starts ``refresh_sizes`` (when an event loop runs)."""
        now_s = time.monotonic()
        now = int(now_s)
        elapsed = now - self._second
        self._second = now
        self._roll_at_s = now + 1.0
        if now_s >= self._sizes_due_s and self._sizing is None and self._plans:
            self._start_refresh(now_s)
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
                if plan.whole is not None and plan.table.table_id in grown:
                    self._resize(plan)

    def _resize(self, plan: Plan) -> None:
        table_id = plan.table.table_id
        partitions = partition_count(plan.table, *self._peaks.get(table_id, (0.0, 0.0)), self._sizes.get(table_id, 0))
        if partitions != plan.partitions:
            plan.resize(partitions)

    def _start_refresh(self, now_s: float) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop (a test driving admit_now directly): sizes stay as they are
        self._sizes_due_s = now_s + limits.THROUGHPUT_TABLE_SIZE_REFRESH_S
        self._sizing = loop.create_task(self.refresh_sizes())
        self._sizing.add_done_callback(self._refreshed)

    def _refreshed(self, task: asyncio.Task) -> None:
        self._sizing = None
        if not task.cancelled() and task.exception() is not None:
            log.warning("table sizes for partition counts not refreshed: %r", task.exception())

    async def refresh_sizes(self) -> None:
        """Ask the nodes for the size of each table this router meters (the
        most recently planned first, at most ``THROUGHPUT_TABLE_SIZE_TABLES_MAX``)
        and resize their partitions (``note_size``)."""
        table_ids = list(dict.fromkeys(key[0] for key in reversed(list(self._plans))))
        for table_id in table_ids[: limits.THROUGHPUT_TABLE_SIZE_TABLES_MAX]:
            try:
                stats = await self._storage.table_stats(table_id)
            except DynamoError as error:  # a table just deleted, a node away: the next round
                log.info("table %d's size unavailable for its partition count: %r", table_id, error)
                continue
            self.note_size(table_id, stats.size_bytes)

    def note_size(self, table_id: int, size_bytes: int) -> None:
        """A table's size (TableSizeBytes): past 10 GB a partition splits, so
        its plans get ``partition_count``'s new figure."""
        if self._sizes.get(table_id) == size_bytes:
            return
        if table_id not in self._sizes and len(self._sizes) >= limits.THROUGHPUT_PLANS_MAX:
            self._sizes.clear()
        self._sizes[table_id] = size_bytes
        for plan in self._plans.values():
            if plan.table.table_id == table_id:
                self._resize(plan)

    # --- reading (``/metrics``, the console) -------------------------------------------------
    def partitions(self, table: Table) -> int:
        """How many partitions this router gives ``table`` now."""
        table_id = table.table_id
        return partition_count(table, *self._peaks.get(table_id, (0.0, 0.0)), self._sizes.get(table_id, 0))

    def partition_events(self, table: Table) -> list[tuple[str, Meter, int, int]]:
        """(global index or "", meter, partition, partition ceiling refusals) of
        ``table``, by partition: its key ranges' counts summed over the
        partitions it has now (an index's, by the index's own count)."""
        counts: dict[tuple[str, Meter, int], int] = {}
        sizes: dict[str, int] = {}
        for (table_id, index_name, meter, key_range), count in self.key_range_events.items():
            if table_id != table.table_id:
                continue
            partitions = sizes.get(index_name)
            if partitions is None:
                index = table.index(index_name) if index_name else None
                if index_name and index is None:
                    continue  # an index since deleted
                partitions = sizes[index_name] = (
                    index_partition_count(table, index) if index is not None else self.partitions(table))
            partition = (key_range * partitions) >> limits.THROUGHPUT_KEY_RANGE_BITS
            counts[index_name, meter, partition] = counts.get((index_name, meter, partition), 0) + count
        return [(index, meter, partition, count) for (index, meter, partition), count in sorted(counts.items())]
