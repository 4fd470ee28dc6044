"""What a workload does: its specification, its keys, its versions and its items.

Keys are partitioned by writer region so that each key has exactly one
writer: region ``r`` owns ``r#0``, ``r#1``, ... (the ``keys`` single-writer
keys are dealt out over the regions in order, the first regions getting one
more when they do not divide evenly).  ``conflict_keys`` more keys,
``conflict#0``..., are written by every region, for last-writer-wins demos.
A key's writer is therefore readable from its name: the part before ``#``
when that part is a region of the workload (which is why no region may be
called ``conflict``).

Versions are per key and per writer region and strictly increasing: each
region counts its own writes to a key up from ``version_base``, a number
derived from the run's start time (milliseconds x ``VERSIONS_PER_MS``), so
that the versions of a later run on the same table are above every version
an earlier run wrote, and a region still holding an earlier run's item can
never pass for holding this run's.

Which key a request names follows the workload's key distribution:
``uniform`` (every key alike) or ``zipf`` (the key of rank *k* drawn with
probability proportional to 1 / *k* ** ``zipf_s``: a few hot keys, a long
cold tail, as YCSB's "zipfian" workloads).  Ranks follow each region's key
order, so ``r#0`` is region ``r``'s hottest key.

``TableBilling`` is the table's billing a workload asks for: on-demand, or
provisioned read and write capacity units.
"""

from __future__ import annotations

import bisect
import itertools
import random
from dataclasses import dataclass
from typing import Any

from meridian.model.limits import ITEM_SIZE_BYTES_MAX  # DynamoDB's: the largest ``item_bytes``

#: The prefix of keys written by every region.
CONFLICT_PREFIX = "conflict"
#: ``version_base`` = run start in ms x this: room for this many writes per
#: key and region per millisecond between the starts of two runs.
VERSIONS_PER_MS = 1000
#: ``pad`` values are slices of one seeded text (no per-request randomness):
#: any offset below ``ITEM_SIZE_BYTES_MAX`` leaves room for the longest pad.
PAD_SOURCE_BYTES = 2 * ITEM_SIZE_BYTES_MAX
_PAD_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

UNIFORM = "uniform"
ZIPF = "zipf"
KEY_DISTRIBUTIONS = (UNIFORM, ZIPF)
#: YCSB's zipfian constant: the default skew of ``zipf``.
ZIPF_S_DEFAULT = 0.99
#: ``zipf_s`` bounds: below the least the distribution is all but uniform,
#: above the greatest all but every request names the first key.
ZIPF_S_MIN = 0.1
ZIPF_S_MAX = 10.0


@dataclass
class WorkloadSpec:
    """A workload: where, how fast, for how long, over which keys.

    ``regions``: region name -> router URL (every region is written, each
    its own keys).  ``rate_per_s``: requests per second over all regions,
    scheduled open-loop.  ``write_ratio``: share of PutItem (the rest is
    GetItem).  ``visibility_probe_every``: probe every Nth acknowledged
    write for its visibility in the other regions (0: never).
    """

    regions: dict[str, str]
    table: str
    rate_per_s: float
    duration_s: float
    keys: int
    write_ratio: float
    conflict_keys: int = 0
    seed: int = 0
    item_bytes: int = 100
    visibility_probe_every: int = 0
    key_distribution: str = UNIFORM
    zipf_s: float = ZIPF_S_DEFAULT

    def __post_init__(self) -> None:
        if not self.regions:
            raise ValueError("a workload needs at least one region")
        if CONFLICT_PREFIX in self.regions:
            raise ValueError(f"no region may be called {CONFLICT_PREFIX!r}: it names the conflict keys")
        for region in self.regions:
            if not region or "#" in region:
                raise ValueError(f"bad region name {region!r}")
        if not self.rate_per_s > 0:
            raise ValueError("rate_per_s must be positive")
        if not self.duration_s > 0:
            raise ValueError("duration_s must be positive")
        if self.keys < len(self.regions):
            raise ValueError(f"keys must be at least the number of regions ({len(self.regions)}): every region writes its own")
        if not 0.0 <= self.write_ratio <= 1.0:
            raise ValueError("write_ratio must be between 0 and 1")
        if self.conflict_keys < 0:
            raise ValueError("conflict_keys must not be negative")
        if not 0 < self.item_bytes <= ITEM_SIZE_BYTES_MAX:
            raise ValueError(f"item_bytes must be between 1 and {ITEM_SIZE_BYTES_MAX}")
        if self.visibility_probe_every < 0:
            raise ValueError("visibility_probe_every must not be negative")
        if self.key_distribution not in KEY_DISTRIBUTIONS:
            raise ValueError(f"key_distribution must be one of {', '.join(KEY_DISTRIBUTIONS)}, not {self.key_distribution!r}")
        check_zipf_s(self.zipf_s)


def check_zipf_s(zipf_s: float) -> None:
    if not ZIPF_S_MIN <= zipf_s <= ZIPF_S_MAX:
        raise ValueError(f"zipf_s must be between {ZIPF_S_MIN:g} and {ZIPF_S_MAX:g}, not {zipf_s:g}")


class KeyDistribution:
    """Draws key ranks ``0 <= rank < n`` from a seeded ``random.Random``.

    ``uniform`` draws exactly as ``rng.randrange(n)`` (one call), so a
    uniform workload's sequence is what it always was for its seed;
    ``zipf`` inverts the cumulative weights (one ``rng.random()`` and a
    binary search), kept per key count: memory is one float per key.
    """

    def __init__(self, name: str = UNIFORM, zipf_s: float = ZIPF_S_DEFAULT) -> None:
        if name not in KEY_DISTRIBUTIONS:
            raise ValueError(f"unknown key distribution {name!r}")
        check_zipf_s(zipf_s)
        self.name = name
        self.zipf_s = zipf_s
        self._cumulative: dict[int, list[float]] = {}

    def draw(self, rng: random.Random, n: int) -> int:
        if self.name == UNIFORM:
            return rng.randrange(n)
        cumulative = self._cumulative.get(n)
        if cumulative is None:
            cumulative = self._cumulative[n] = zipf_cumulative(n, self.zipf_s)
        return bisect.bisect_right(cumulative, rng.random())

    def __repr__(self) -> str:
        return f"<KeyDistribution {self.name}" + (f" s={self.zipf_s:g}>" if self.name == ZIPF else ">")


def zipf_cumulative(n: int, s: float) -> list[float]:
    """The cumulative probabilities of ranks ``0..n-1`` under Zipf's law with exponent ``s`` (the last is 1)."""
    if n < 1:
        raise ValueError("a distribution needs at least one key")
    running = list(itertools.accumulate(1.0 / k**s for k in range(1, n + 1)))
    total = running[-1]
    cumulative = [value / total for value in running]
    cumulative[-1] = 1.0  # rng.random() < 1.0: the last rank is always reachable, never passed
    return cumulative


def keys_per_region(regions: list[str], keys: int) -> dict[str, int]:
    """How many single-writer keys each region owns: ``keys`` dealt out in region order."""
    share, extra = divmod(keys, len(regions))
    return {region: share + (1 if i < extra else 0) for i, region in enumerate(regions)}


def region_key(region: str, index: int) -> str:
    return f"{region}#{index}"


def conflict_key(index: int) -> str:
    return f"{CONFLICT_PREFIX}#{index}"


def writer_of(key: str, regions: object) -> str | None:
    """The one region allowed to write ``key``, or None for a conflict key (every region)."""
    prefix = key.partition("#")[0]
    return prefix if prefix in regions else None  # type: ignore[operator]


def version_base(started_at_s: float) -> int:
    """The version every key and region counts up from in a run started at ``started_at_s``."""
    return int(started_at_s * 1000) * VERSIONS_PER_MS


class Versions:
    """Per key and writer region: the versions sent, those in flight, and the floor a key must hold.

    ``attempted[key][region]``: the highest version ``region`` sent for
    ``key`` (every version from ``base + 1`` up to it was sent).
    ``acknowledged[key]``: ``(floor, region)``: the lowest version ``key``
    may hold once ``region``'s writes are applied.  That is the version of
    ``region``'s highest acknowledged write, unless earlier writes of the
    key were still unanswered when it was sent: those may have been applied
    after it (last writer wins by arrival), so the floor is the lowest of
    them.  A write answered before another was sent was applied before it.
    For a key with several writers (a conflict key) it is the floor of the
    region acknowledged last.  Memory: one entry per key written and one
    per write in flight.
    """

    def __init__(self, base: int) -> None:
        self.base = base
        self.attempted: dict[str, dict[str, int]] = {}
        self.acknowledged: dict[str, tuple[int, str]] = {}
        self._in_flight: dict[tuple[str, str], list[int]] = {}  # (key, region) -> versions, in send order
        self._acknowledged_max: dict[tuple[str, str], int] = {}

    def next(self, key: str, region: str) -> int:
        """Allocate the next version of ``key`` from ``region`` (and record it as attempted)."""
        per_region = self.attempted.get(key)
        if per_region is None:
            per_region = self.attempted[key] = {}
        version = per_region.get(region, self.base) + 1
        per_region[region] = version
        return version

    def sent(self, key: str, region: str, version: int) -> int:
        """Record ``version`` as in flight; the floor its acknowledgement sets (the lowest in flight)."""
        flying = self._in_flight.setdefault((key, region), [])
        assert not flying or flying[-1] < version, "versions are sent in order"
        flying.append(version)
        return flying[0]

    def answered(self, key: str, region: str, version: int) -> None:
        """``version`` is no longer in flight (whatever the answer)."""
        flying = self._in_flight[(key, region)]
        flying.remove(version)
        if not flying:
            del self._in_flight[(key, region)]

    def in_flight(self, key: str, region: str) -> int:
        return len(self._in_flight.get((key, region), ()))

    def acknowledge(self, key: str, version: int, region: str, floor: int | None = None) -> None:
        """``version`` was acknowledged; ``floor`` is what ``sent`` answered for it (default: itself)."""
        assert version <= self.attempted[key][region], "acknowledged a version never sent"
        floor = version if floor is None else floor
        assert floor <= version, "a floor above its own write"
        if version > self._acknowledged_max.get((key, region), 0):
            self._acknowledged_max[(key, region)] = version
            self.acknowledged[key] = (floor, region)


_TO_ALPHABET = bytes(ord(_PAD_ALPHABET[i % len(_PAD_ALPHABET)]) for i in range(256))


def pad_source(seed: int) -> str:
    """The seeded text ``pad`` values are sliced from (letters and digits)."""
    rng = random.Random(f"pad-{seed}")
    return rng.randbytes(PAD_SOURCE_BYTES).translate(_TO_ALPHABET).decode()


def pad_length(key: str, version: int, region: str, item_bytes: int) -> int:
    """``pad``'s length for an item of about ``item_bytes`` as DynamoDB sizes it.

    DynamoDB counts attribute names plus values (strings by UTF-8 length,
    numbers at about one byte per two digits plus one).
    """
    fixed = len("pk") + len(key.encode()) + len("v") + (len(str(version)) + 1) // 2 + 1
    fixed += len("w") + len(region.encode()) + len("pad")
    return max(0, item_bytes - fixed)


def make_item(key: str, version: int, region: str, pad: str) -> dict[str, Any]:
    """The wire JSON of one workload item."""
    return {"pk": {"S": key}, "v": {"N": str(version)}, "w": {"S": region}, "pad": {"S": pad}}


#: What ``parse_item`` answers for an item that is not a workload item (no
#: workload ever writes version 0, so it can never pass for an acknowledged write).
FOREIGN_ITEM = (0, "")


def parse_item(item: dict[str, Any] | None) -> tuple[int, str] | None:
    """``(version, writer region)`` of an item in wire JSON; None if absent, ``FOREIGN_ITEM`` if not ours."""
    if not item:
        return None
    try:
        return int(item["v"]["N"]), str(item["w"]["S"])
    except (KeyError, TypeError, ValueError):
        return FOREIGN_ITEM


# --- the table's billing -------------------------------------------------------

PAY_PER_REQUEST = "PAY_PER_REQUEST"
PROVISIONED = "PROVISIONED"
BILLING_MODES = (PAY_PER_REQUEST, PROVISIONED)


@dataclass(frozen=True)
class TableBilling:
    """A table's ``BillingMode`` and, when ``PROVISIONED``, its read and write capacity units."""

    mode: str = PAY_PER_REQUEST
    read_capacity: int | None = None
    write_capacity: int | None = None

    def __post_init__(self) -> None:
        if self.mode not in BILLING_MODES:
            raise ValueError(f"billing mode must be {' or '.join(BILLING_MODES)}, not {self.mode!r}")
        units = (self.read_capacity, self.write_capacity)
        if self.mode == PROVISIONED and any(u is None or u < 1 for u in units):
            raise ValueError("a PROVISIONED table needs read and write capacity units of at least 1")
        if self.mode == PAY_PER_REQUEST and any(u is not None for u in units):
            raise ValueError("capacity units are for PROVISIONED tables only")

    def request(self) -> dict[str, Any]:
        """The CreateTable / UpdateTable members that set this billing."""
        if self.mode == PAY_PER_REQUEST:
            return {"BillingMode": PAY_PER_REQUEST}
        throughput = {"ReadCapacityUnits": self.read_capacity, "WriteCapacityUnits": self.write_capacity}
        return {"BillingMode": PROVISIONED, "ProvisionedThroughput": throughput}

    @classmethod
    def of(cls, description: dict[str, Any]) -> TableBilling:
        """The billing a DescribeTable ``Table`` shows."""
        mode = (description.get("BillingModeSummary") or {}).get("BillingMode") or PROVISIONED
        if mode == PAY_PER_REQUEST:
            return cls(PAY_PER_REQUEST)
        throughput = description.get("ProvisionedThroughput") or {}
        return cls(PROVISIONED, int(throughput.get("ReadCapacityUnits") or 1), int(throughput.get("WriteCapacityUnits") or 1))

    def __str__(self) -> str:
        if self.mode == PAY_PER_REQUEST:
            return "on-demand (PAY_PER_REQUEST)"
        return f"PROVISIONED, {self.read_capacity} read and {self.write_capacity} write capacity units"
