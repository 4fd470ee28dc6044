"""Convergence digests: prove two regions hold the same item versions, or name the keys that differ.

The input is what a region stores per item: ``(key, record)`` pairs, where
the record is the node's stored bytes (stamp, tombstone flag, item JSON;
``model/records.py``), so two regions agree only if they hold the same
version of every key, down to the byte.  Whether tombstones take part is
the caller's choice (include them to check deletes converged too; leave them
out when regions may have garbage-collected them at different times).

Keys are spread over ``16 ** depth`` leaves by a hash of the key alone, so
every region cuts the key space identically whatever keys it holds, and the
leaves stay balanced.  A leaf's digest is the sum, modulo 2**256, of its
entries' hashes (an additive multiset hash) plus an entry count; a tree node
is the sum of its 16 children.  Sums do not care about order, so each node
of a region can digest its own items and the region's digest is their
``merge``; and like any Merkle tree, comparing from the root down visits
only the subtrees that differ::

    level 0             root = sum of everything
    level 1        [0] [1] ... [15]           ranges of the key hash's first hex digit
    level depth    16**depth leaves           ... its first ``depth`` hex digits

Comparing two regions: ``differing_leaves`` (from their digests), then
``leaf_entries`` of each region for just those leaves, then
``differing_keys``.  ``compare`` does all three over local iterables.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from hashlib import blake2b

from meridian.model import limits

FANOUT_BITS = 4
FANOUT = 1 << FANOUT_BITS
_MODULUS = 1 << 256
_LEN = 4  # key length prefix in an entry hash: (key, record) pairs hash unambiguously


def leaf_of(key: bytes, depth: int) -> int:
    """The leaf a key belongs to: the first ``depth`` hex digits of its hash."""
    prefix = int.from_bytes(blake2b(key, digest_size=8).digest(), "big")
    return prefix >> (64 - FANOUT_BITS * depth)


def entry_hash(key: bytes, record: bytes) -> int:
    """A 256-bit hash of one stored item version."""
    h = blake2b(digest_size=32)
    h.update(len(key).to_bytes(_LEN, "big"))
    h.update(key)
    h.update(record)
    return int.from_bytes(h.digest(), "big")


class Digest:
    """A Merkle-style digest of one region's (or one node's) item versions."""

    __slots__ = ("depth", "_sums", "_counts", "_levels")

    def __init__(self, depth: int = limits.DIGEST_DEPTH) -> None:
        if not 1 <= depth <= limits.DIGEST_DEPTH_MAX:
            raise ValueError(f"digest depth must be within [1, {limits.DIGEST_DEPTH_MAX}]")
        self.depth = depth
        self._sums = [0] * (FANOUT**depth)
        self._counts = [0] * (FANOUT**depth)
        self._levels: list[tuple[list[int], list[int]]] | None = None  # built on first comparison

    @classmethod
    def of(cls, entries: Iterable[tuple[bytes, bytes]], depth: int = limits.DIGEST_DEPTH) -> Digest:
        digest = cls(depth)
        for key, record in entries:
            digest.add(key, record)
        return digest

    def add(self, key: bytes, record: bytes) -> None:
        leaf = leaf_of(key, self.depth)
        self._sums[leaf] = (self._sums[leaf] + entry_hash(key, record)) % _MODULUS
        self._counts[leaf] += 1
        self._levels = None

    def merge(self, other: Digest) -> None:
        """Add another digest's entries (e.g. another node of the same region)."""
        if other.depth != self.depth:
            raise ValueError("digests of different depths do not merge")
        for leaf, (s, c) in enumerate(zip(other._sums, other._counts)):
            if c:
                self._sums[leaf] = (self._sums[leaf] + s) % _MODULUS
                self._counts[leaf] += c
        self._levels = None

    @property
    def count(self) -> int:
        return sum(self._counts)

    def node(self, level: int, index: int) -> tuple[int, int]:
        """``(sum, count)`` of one tree node; level 0 is the root, ``depth`` the leaves."""
        sums, counts = self._tree()[level]
        return sums[index], counts[index]

    def root(self) -> bytes:
        """The whole digest in 40 bytes: equal roots mean equal contents."""
        total, count = self.node(0, 0)
        return total.to_bytes(32, "big") + count.to_bytes(8, "big")

    def _tree(self) -> list[tuple[list[int], list[int]]]:
        if self._levels is None:
            levels = [(self._sums, self._counts)]
            while len(levels[0][0]) > 1:
                sums, counts = levels[0]
                levels.insert(
                    0,
                    (
                        [sum(sums[i : i + FANOUT]) % _MODULUS for i in range(0, len(sums), FANOUT)],
                        [sum(counts[i : i + FANOUT]) for i in range(0, len(counts), FANOUT)],
                    ),
                )
            self._levels = levels
        return self._levels

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Digest):
            return NotImplemented
        return self.depth == other.depth and self.root() == other.root()

    __hash__ = None  # mutable

    def __repr__(self) -> str:
        return f"<Digest depth={self.depth} count={self.count} root={self.root()[:8].hex()}>"


def differing_leaves(a: Digest, b: Digest) -> list[int]:
    """The leaves where two digests differ, found from the root down, in order."""
    if a.depth != b.depth:
        raise ValueError("digests of different depths do not compare")
    frontier = [0]
    for level in range(a.depth + 1):
        frontier = [i for i in frontier if a.node(level, i) != b.node(level, i)]
        if level < a.depth:
            frontier = [i * FANOUT + child for i in frontier for child in range(FANOUT)]
    return frontier


def leaf_entries(entries: Iterable[tuple[bytes, bytes]], leaves: Iterable[int], depth: int) -> dict[bytes, int]:
    """``key -> entry hash`` for the entries in the given leaves (what a region sends to name keys)."""
    wanted = frozenset(leaves)
    return {key: entry_hash(key, record) for key, record in entries if leaf_of(key, depth) in wanted}


def differing_keys(a: Mapping[bytes, int], b: Mapping[bytes, int]) -> list[bytes]:
    """Keys held by one side only, or in different versions, in key order."""
    return sorted(key for key in a.keys() | b.keys() if a.get(key) != b.get(key))


def compare(
    a: Sequence[tuple[bytes, bytes]],
    b: Sequence[tuple[bytes, bytes]],
    depth: int = limits.DIGEST_DEPTH,
) -> list[bytes]:
    """The keys in which two sets of item versions differ (empty: identical)."""
    leaves = differing_leaves(Digest.of(a, depth), Digest.of(b, depth))
    if not leaves:
        return []
    return differing_keys(leaf_entries(a, leaves, depth), leaf_entries(b, leaves, depth))
