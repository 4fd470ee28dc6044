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
"""

from __future__ import annotations

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
    """Per key and writer region: the last version sent (attempted) and the last acknowledged.

    ``attempted[key][region]``: the highest version ``region`` sent for
    ``key`` (every version from ``base + 1`` up to it was sent).
    ``acknowledged[key]``: ``(version, region)`` of the last write to ``key``
    answered 200.  Memory: one entry per key written.
    """

    def __init__(self, base: int) -> None:
        self.base = base
        self.attempted: dict[str, dict[str, int]] = {}
        self.acknowledged: dict[str, tuple[int, str]] = {}

    def next(self, key: str, region: str) -> int:
        """Allocate the next version of ``key`` from ``region`` (and record it as attempted)."""
        per_region = self.attempted.get(key)
        if per_region is None:
            per_region = self.attempted[key] = {}
        version = per_region.get(region, self.base) + 1
        per_region[region] = version
        return version

    def acknowledge(self, key: str, version: int, region: str) -> None:
        assert version <= self.attempted[key][region], "acknowledged a version never sent"
        self.acknowledged[key] = (version, region)


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
