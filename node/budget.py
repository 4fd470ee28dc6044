"""A region's shared throughput budgets, held by one node per table (``model/throughput.py``).

Every router meters the same provisioned table, so the table's capacity
cannot live in any one router.  Each table's buckets (the table's reads and
writes, each provisioned global secondary index's) live on one storage
node, the table's *budget node* (``budget_owner``: the ring owner of a hash
of the table id, so every router finds the same node); routers lease units
from it in small chunks (``lease_units``: a tenth of a second of the rate)
and spend them locally (``router/throttle.py``).  Two routers driving one
table together therefore get the table's rate, not twice it: what one
router holds unspent is at most one lease, and a router's overdraft (a read
whose size was only known after it ran) is paid from its next lease.

A table's buckets start with its whole five-minute burst (a new DynamoDB
table takes a first burst too).  They are in memory: a restarted budget
node starts each table's again from a full burst (a known gap: a restart
in the middle of a sustained overload lets one extra burst through).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from meridian.model.throughput import LeaseRequest, Meter, TokenBucket, initial_tokens


class BudgetHolder:
    """The buckets of the tables whose budget node this is."""

    def __init__(self, *, monotonic_s: Callable[[], float] = time.monotonic) -> None:
        self._monotonic_s = monotonic_s
        self._buckets: dict[tuple[int, str, Meter], TokenBucket] = {}
        self.leases = 0
        self.refusals = 0

    def __repr__(self) -> str:
        return f"<BudgetHolder buckets={len(self._buckets)} leases={self.leases} refusals={self.refusals}>"

    def lease(self, request: LeaseRequest) -> float:
        """Units granted now (0: the resource is out of capacity)."""
        now_s = self._monotonic_s()
        key = (request.table_id, request.index_name, request.meter)
        limit = request.limit
        bucket = self._buckets.get(key)
        if bucket is None:
            tokens = initial_tokens(limit)
            bucket = self._buckets[key] = TokenBucket(limit.rate_per_s, limit.burst_s, now_s, tokens)
        elif bucket.rate_per_s != limit.rate_per_s:
            bucket.set_rate(limit.rate_per_s, limit.burst_s, now_s)
        granted = bucket.take(request.wanted, now_s)
        self.leases += 1
        if granted <= 0:
            self.refusals += 1
        return granted

    def forget_table(self, table_id: int) -> None:
        for key in [k for k in self._buckets if k[0] == table_id]:
            del self._buckets[key]

    def tokens(self, table_id: int, index_name: str, meter: Meter) -> float | None:
        bucket = self._buckets.get((table_id, index_name, meter))
        if bucket is None:
            return None
        bucket.refill(self._monotonic_s())
        return bucket.tokens


__all__ = ["BudgetHolder", "LeaseRequest"]
