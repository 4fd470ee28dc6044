"""Throughput limits: token buckets and the throttling vocabulary (pure).

DynamoDB meters every table and global secondary index in capacity units
per second: a provisioned table or index gets its provisioned rate, and
keeps up to ``BURST_S`` (five minutes) of capacity it did not use; an
on-demand one is bounded only by its ``OnDemandThroughput`` maximum when one
is set.  ``TokenBucket`` is that meter; ``router/throttle.py`` spends it,
``node/budget.py`` holds the shared one every router leases from.

A throttled request gets ``ProvisionedThroughputExceededException`` (or
``ThrottlingException`` for an on-demand maximum) carrying
``ThrottlingReasons``: ``{"reason": <Table|Index><Read|Write><LimitType>,
"resource": <ARN>}``.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from . import limits

#: DynamoDB keeps this much unused provisioned capacity as burst (300 s).
BURST_S = limits.THROUGHPUT_BURST_S


class Meter(enum.IntEnum):
    """What is metered: reads or writes."""

    READ = 0
    WRITE = 1


class LimitType(enum.Enum):
    PROVISIONED = "ProvisionedThroughputExceeded"
    MAX_ON_DEMAND = "MaxOnDemandThroughputExceeded"
    KEY_RANGE = "KeyRangeThroughputExceeded"


def reason_name(is_index: bool, meter: Meter, limit: LimitType) -> str:
    """``ResourceType + OperationType + LimitType``, e.g. TableWriteProvisionedThroughputExceeded."""
    return ("Index" if is_index else "Table") + ("Read" if meter is Meter.READ else "Write") + limit.value


#: DynamoDB's messages for a throttled request.
TABLE_PROVISIONED_MESSAGE = (
    "The level of configured provisioned throughput for the table was exceeded. "
    "Consider increasing your provisioning level with the UpdateTable API."
)
INDEX_PROVISIONED_MESSAGE = (
    "The level of configured provisioned throughput for one or more global secondary indexes of the table was "
    "exceeded. Consider increasing your provisioning level for the under-provisioned global secondary indexes "
    "with the UpdateTable API"
)
MAX_ON_DEMAND_MESSAGE = "Throughput exceeds the maximum OnDemandThroughput configured on table or index"
#: An on-demand table's hot partition (DynamoDB's text, as its CancellationReason documents it).
KEY_RANGE_ON_DEMAND_MESSAGE = (
    "Throughput exceeds the current capacity of your table or index. DynamoDB is automatically scaling your table "
    "or index so please try again shortly. If exceptions persist, check if you have a hot key: "
    "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-partition-key-design.html"
)


@dataclass(slots=True)
class Limit:
    """One metered resource's rate (units per second) and how much it may
    bank (``burst_s`` seconds of its rate)."""

    rate_per_s: float
    burst_s: float = BURST_S
    limit_type: LimitType = LimitType.PROVISIONED


class TokenBucket:
    """``rate_per_s`` units accrue continuously, up to ``rate_per_s * burst_s``.

    ``take`` hands out what is there, up to what was asked; consumption
    known only afterwards (a read's size) is ``spend``, which may take the
    bucket below zero: the debt is paid by later accrual, so the long-run
    rate is exact even though one request may overdraw.
    """

    __slots__ = ("rate_per_s", "capacity", "tokens", "updated_s")

    def __init__(self, rate_per_s: float, burst_s: float, now_s: float, tokens: float = 0.0) -> None:
        self.rate_per_s = rate_per_s
        self.capacity = max(rate_per_s * burst_s, 1.0)
        self.tokens = min(tokens, self.capacity)
        self.updated_s = now_s

    def __repr__(self) -> str:
        return f"<TokenBucket {self.tokens:.1f}/{self.capacity:.0f} at {self.rate_per_s}/s>"

    def refill(self, now_s: float) -> None:
        elapsed = now_s - self.updated_s
        if elapsed > 0:
            self.tokens = min(self.capacity, self.tokens + elapsed * self.rate_per_s)
            self.updated_s = now_s

    def take(self, wanted: float, now_s: float) -> float:
        """Up to ``wanted`` units, none while the bucket is empty or in debt."""
        self.refill(now_s)
        if self.tokens <= 0:
            return 0.0
        granted = min(wanted, self.tokens)
        self.tokens -= granted
        return granted

    def spend(self, units: float, now_s: float) -> None:
        self.refill(now_s)
        self.tokens -= units

    def set_rate(self, rate_per_s: float, burst_s: float, now_s: float) -> None:
        """A new provisioned rate: what is banked stays, within the new capacity."""
        self.refill(now_s)
        self.rate_per_s = rate_per_s
        self.capacity = max(rate_per_s * burst_s, 1.0)
        self.tokens = min(self.tokens, self.capacity)


@dataclass(slots=True)
class LeaseRequest:
    """Ask for up to ``wanted`` units of one resource's ``meter`` whose limit
    is ``limit`` (routers send what their catalog says, so an UpdateTable
    reaches the bucket with the next lease)."""

    table_id: int
    index_name: str  # "" for the table itself
    meter: Meter
    limit: Limit
    wanted: float


def partition_of(key_hash: int, partitions: int) -> int:
    """Which of a table's ``partitions`` (equal slices of the 64-bit
    partition-hash space) a key with this partition hash falls in."""
    return (key_hash * partitions) >> 64


def key_range_of(key_hash: int) -> int:
    """Which of ``2 ** KEY_RANGE_BITS`` fixed slices of the partition-hash
    space a key falls in: the unit a partition's ceiling is metered on."""
    return key_hash >> (64 - limits.THROUGHPUT_KEY_RANGE_BITS)


def initial_tokens(limit: Limit) -> float:
    """A resource's bank when first metered: its whole burst, as a new
    DynamoDB table absorbs a first burst before its provisioned rate bites."""
    return limit.rate_per_s * limit.burst_s


def lease_units(limit: Limit) -> float:
    """How many units a router asks for at a time: ``THROUGHPUT_LEASE_S`` of
    the rate, at least one unit (so a tiny table still moves)."""
    return max(1.0, math.ceil(limit.rate_per_s * limits.THROUGHPUT_LEASE_S))
