"""A DAX node's two caches: the item cache and the query cache.

Followed from AWS's DAX documentation (Developer Guide: "DAX: How it works"
(DAX.concepts), "DAX and DynamoDB consistency models" (DAX.consistency),
"Managing DAX clusters" (DAX.cluster-management), the default parameter
group's descriptions (``aws dax describe-default-parameters``)):

* **Item cache** (``ItemCache``): GetItem and BatchGetItem answers, "stored by
  their primary key values"; BatchGetItem is "essentially a wrapper around one
  or more GetItem requests, so DAX treats each of these as an individual
  GetItem", so the caller looks up and fills one key at a time.  Keyed by
  (table name, key bytes) only, never by the projection: the entry holds the
  FULL item (the caller fetches it without a projection on a miss and applies
  the request's projection to the cached item), which is also what a write
  through DAX leaves behind ("DAX writes the item to its item cache").
* **Query cache** (``QueryCache``): Query and Scan result sets "stored by their
  parameter values", so keyed by the whole request in canonical bytes.  "Updates
  to the item cache, or to the underlying DynamoDB table, do not invalidate or
  modify the results stored in the query cache": nothing here touches it on a
  write; an entry lives until its TTL or LRU.
* **TTL**: "DAX assigns a timestamp to every item that it writes to the item
  cache. An item expires if it has remained in the cache for longer than the
  TTL"; reads do not extend it.  Defaults 5 minutes (``record-ttl-millis``,
  ``query-ttl-millis`` = 300000).  **TTL 0**: for the item cache it means no
  expiry ("0 = infinite"; items "will only be refreshed due to an LRU eviction
  or a write-through operation"); for the query cache it means "the query
  response will not be cached".
* **LRU**: each cache keeps a least-recently-used list tracking "when an item
  was first written to the cache, and when the item was last read"; when full,
  "DAX will evict older items (even if they have not expired yet)".  Always on.
  DAX shares one memory between the caches; here each has its own byte bound.
* **Negative caching**: "DAX supports negative cache entries, in both the item
  cache and the query cache": a GetItem of a missing item caches "an empty
  item" (here: the value ``None``) until "its item TTL has expired, LRU is
  invoked, or until the item is modified using PutItem, UpdateItem or
  DeleteItem".  An empty Query/Scan page is just another cached answer.
* **Write-through**: after a write succeeds in DynamoDB "DAX writes the item to
  its item cache ... regardless of the TTL value" (a new timestamp); a failed
  write leaves the cache alone (the caller only calls on success).
* Strongly consistent and transactional reads are passed through, "not cached":
  the caller does not consult these caches for them.

Values are opaque to the caches (the caller stores an item dict, encoded
answer bytes, ...) with their ``size_bytes`` declared by the caller, so a hit
costs no re-encoding and the byte bound is cheap to keep.  One event loop uses
a cache: no locks; every operation is O(1) (an ``OrderedDict``).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Literal

from meridian.model import limits


class _Miss:
    """The type of ``MISS``: what a lookup returns when nothing usable is cached."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISS"

    def __bool__(self) -> bool:
        return False


#: Returned by ``get`` when the cache cannot answer (never cached, expired,
#: evicted, invalidated).  Distinct from ``None``, the item cache's negative entry.
MISS = _Miss()

#: The value a tombstone holds: reads as a miss, but blocks fills older than it.
_TOMBSTONE = object()

ScanKind = Literal["Query", "Scan"]


@dataclass(slots=True)
class _Entry:
    value: object
    charged_bytes: int
    expires_at_s: float  # float("inf") for no expiry
    seq: int  # the write sequence number that stored it (ItemCache's fill ordering)


class _LruStore:
    """Entries under a byte bound, least recently used first, each with an expiry.

    ``get`` moves a live entry to the most-recent end; ``put`` replaces and then
    evicts from the least-recent end until the bound holds.  Expired entries are
    dropped when met (read, or reached by eviction; those do not count as
    ``evicted_bytes``, which is DAX's EvictedSize: data evicted to make room)."""

    def __init__(self, capacity_bytes: int, monotonic_s: Callable[[], float]) -> None:
        if capacity_bytes < 0:
            raise ValueError(f"capacity_bytes must be >= 0, not {capacity_bytes}")
        self.capacity_bytes = capacity_bytes
        self.used_bytes = 0
        self.evicted_bytes = 0
        #: the highest ``seq`` of an entry dropped other than by replacement
        #: (evicted, expired, cleared, refused): see ``ItemCache.fill``
        self.newest_dropped_seq = -1
        self._clock = monotonic_s
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def peek(self, key: Hashable) -> _Entry | None:
        """The live entry under ``key`` without touching the LRU order (expired: dropped, None)."""
        entry = self._entries.get(key)
        if entry is not None and entry.expires_at_s <= self._clock():
            self._drop(key, entry)
            return None
        return entry

    def get(self, key: Hashable) -> _Entry | None:
        entry = self.peek(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def put(self, key: Hashable, value: object, charged_bytes: int, ttl_s: float, seq: int) -> bool:
        """Store (replacing any entry under ``key``); False if it can never fit."""
        old = self._entries.pop(key, None)
        if old is not None:
            self.used_bytes -= old.charged_bytes
        if charged_bytes > self.capacity_bytes:
            self.newest_dropped_seq = max(self.newest_dropped_seq, seq)
            return False
        now = self._clock()
        self._entries[key] = _Entry(value, charged_bytes, now + ttl_s, seq)
        self.used_bytes += charged_bytes
        while self.used_bytes > self.capacity_bytes:
            oldest_key, oldest = next(iter(self._entries.items()))
            self._drop(oldest_key, oldest)
            if oldest.expires_at_s > now:
                self.evicted_bytes += oldest.charged_bytes
        return True

    def clear(self, seq: int = 0) -> None:
        self._entries.clear()
        self.used_bytes = 0
        self.newest_dropped_seq = max(self.newest_dropped_seq, seq)

    def _drop(self, key: Hashable, entry: _Entry) -> None:
        del self._entries[key]
        self.used_bytes -= entry.charged_bytes
        self.newest_dropped_seq = max(self.newest_dropped_seq, entry.seq)


def _charge(key_bytes: int, size_bytes: int) -> int:
    if size_bytes < 0:
        raise ValueError(f"size_bytes must be >= 0, not {size_bytes}")
    return key_bytes + size_bytes + limits.DAX_CACHE_ENTRY_OVERHEAD_BYTES


class ItemCache:
    """GetItem/BatchGetItem answers per (table name, key bytes): the full item,
    or ``None`` for "no such item" (a negative entry).

    The key bytes must be canonical (one encoding per key value: re-encode the
    decoded key rather than trusting the client's bytes, e.g. ``1`` vs ``1.0``).

    A read that misses calls ``ticket()`` BEFORE asking DynamoDB and hands it to
    ``fill``: a write through this node (``write_through``/``invalidate``) that
    lands while the read is in flight then wins over the read's older answer,
    which ``fill`` drops.  Usage::

        value = cache.get(table, key)
        if value is MISS:
            ticket = cache.ticket()
            item = await upstream_get_item(...)      # full item, eventually consistent
            cache.fill(table, key, item, size_bytes, ticket)
    """

    def __init__(
        self,
        *,
        record_ttl_ms: int = limits.DAX_RECORD_TTL_MS_DEFAULT,
        capacity_bytes: int = limits.DAX_ITEM_CACHE_BYTES_MAX,
        monotonic_s: Callable[[], float] = time.monotonic,
    ) -> None:
        if record_ttl_ms < 0:
            raise ValueError(f"record_ttl_ms must be >= 0, not {record_ttl_ms}")
        self.record_ttl_ms = record_ttl_ms
        # record-ttl-millis 0: "infinite" (refreshed only by LRU or a write-through)
        self._ttl_s = float("inf") if record_ttl_ms == 0 else record_ttl_ms / 1000
        self._store = _LruStore(capacity_bytes, monotonic_s)
        self._seq = 0
        self.hits = 0
        self.misses = 0

    def set_ttl_ms(self, record_ttl_ms: int) -> None:
        """A parameter group change: entries stored from now on live this long (0: no expiry)."""
        if record_ttl_ms < 0:
            raise ValueError(f"record_ttl_ms must be >= 0, not {record_ttl_ms}")
        self.record_ttl_ms = record_ttl_ms
        self._ttl_s = float("inf") if record_ttl_ms == 0 else record_ttl_ms / 1000

    def get(self, table_name: str, key: bytes) -> object:
        """The cached item, ``None`` (cached as absent), or ``MISS``; counts ItemCacheHits/Misses."""
        entry = self._store.get((table_name, key))
        if entry is None or entry.value is _TOMBSTONE:
            self.misses += 1
            return MISS
        self.hits += 1
        return entry.value

    def ticket(self) -> int:
        """The write sequence number now: take it before the upstream read a ``fill`` will store."""
        return self._seq

    def fill(self, table_name: str, key: bytes, item: object, size_bytes: int, ticket: int) -> bool:
        """Cache the answer of a read that missed (``item`` None: the item does not exist).

        Dropped (False) when a write through this node since ``ticket`` may be
        newer than the answer: an entry stored after the ticket exists, or one
        was dropped meanwhile (evicted, expired: its key is gone, so be safe)."""
        cache_key = (table_name, key)
        current = self._store.peek(cache_key)
        if current is not None and current.seq > ticket:
            return False
        if current is None and self._store.newest_dropped_seq > ticket:
            return False
        return self._store.put(cache_key, item, _charge(len(table_name) + len(key), size_bytes),
                               self._ttl_s, ticket)

    def write_through(self, table_name: str, key: bytes, item: object, size_bytes: int) -> None:
        """After a write through DAX succeeded: cache the item as it now is (``None``
        after a delete: a negative entry), with a fresh timestamp.  An item too big
        to cache leaves a tombstone, so no older read can put the old item back."""
        self._seq += 1
        cache_key = (table_name, key)
        key_bytes = len(table_name) + len(key)
        if not self._store.put(cache_key, item, _charge(key_bytes, size_bytes), self._ttl_s, self._seq):
            self._store.put(cache_key, _TOMBSTONE, _charge(key_bytes, 0), self._ttl_s, self._seq)

    def invalidate(self, table_name: str, key: bytes) -> None:
        """After a write whose resulting item is unknown here (e.g. an UpdateItem
        answered with UPDATED_OLD): the next read of the key misses.  Leaves a
        small tombstone so a read already in flight cannot refill the old item."""
        self._seq += 1
        cache_key = (table_name, key)
        self._store.put(cache_key, _TOMBSTONE, _charge(len(table_name) + len(key), 0), self._ttl_s, self._seq)

    def clear(self) -> None:
        """Forget every entry (counters stay: they are totals since start)."""
        self._seq += 1
        self._store.clear(self._seq)

    @property
    def used_bytes(self) -> int:
        return self._store.used_bytes

    @property
    def capacity_bytes(self) -> int:
        return self._store.capacity_bytes

    def statistics(self) -> dict[str, int]:
        """Counters under DAX's CloudWatch names (this cache's share of EvictedSize/EstimatedDbSize)."""
        return {
            "ItemCacheHits": self.hits,
            "ItemCacheMisses": self.misses,
            "EvictedSize": self._store.evicted_bytes,
            "EstimatedDbSize": self._store.used_bytes,
        }

    def __repr__(self) -> str:
        return (f"<ItemCache entries={len(self._store)} bytes={self.used_bytes}/{self.capacity_bytes} "
                f"ttl_ms={self.record_ttl_ms} hits={self.hits} misses={self.misses}>")


class QueryCache:
    """Query and Scan answers per (kind, canonical request bytes).

    The request bytes must name everything that shapes the answer: table, index,
    key condition, filter, projection, names and values, limit, exclusive start
    key, scan direction, segment/total segments, select, ...  Writes never touch
    this cache (DAX's documented query-cache staleness)."""

    def __init__(
        self,
        *,
        query_ttl_ms: int = limits.DAX_QUERY_TTL_MS_DEFAULT,
        capacity_bytes: int = limits.DAX_QUERY_CACHE_BYTES_MAX,
        monotonic_s: Callable[[], float] = time.monotonic,
    ) -> None:
        if query_ttl_ms < 0:
            raise ValueError(f"query_ttl_ms must be >= 0, not {query_ttl_ms}")
        self.query_ttl_ms = query_ttl_ms
        self._store = _LruStore(capacity_bytes, monotonic_s)
        self.hits: dict[str, int] = {"Query": 0, "Scan": 0}
        self.misses: dict[str, int] = {"Query": 0, "Scan": 0}

    def set_ttl_ms(self, query_ttl_ms: int) -> None:
        """A parameter group change: answers stored from now on live this long (0: none is stored)."""
        if query_ttl_ms < 0:
            raise ValueError(f"query_ttl_ms must be >= 0, not {query_ttl_ms}")
        self.query_ttl_ms = query_ttl_ms

    @property
    def enabled(self) -> bool:
        """query-ttl-millis 0: "the query response will not be cached"."""
        return self.query_ttl_ms > 0

    def get(self, kind: ScanKind, request: bytes) -> object:
        """The cached answer or ``MISS``; counts Query/ScanCacheHits and Misses."""
        entry = self._store.get((kind, request))
        if entry is None:
            self.misses[kind] += 1
            return MISS
        self.hits[kind] += 1
        return entry.value

    def put(self, kind: ScanKind, request: bytes, answer: object, size_bytes: int) -> bool:
        """Cache an answer DynamoDB gave (an empty page too: a negative entry).
        False when not cached (TTL 0, or larger than the whole cache)."""
        if not self.enabled:
            return False
        charged = _charge(len(request), size_bytes)
        return self._store.put((kind, request), answer, charged, self.query_ttl_ms / 1000, 0)

    def clear(self) -> None:
        self._store.clear()

    @property
    def used_bytes(self) -> int:
        return self._store.used_bytes

    @property
    def capacity_bytes(self) -> int:
        return self._store.capacity_bytes

    def statistics(self) -> dict[str, int]:
        return {
            "QueryCacheHits": self.hits["Query"],
            "QueryCacheMisses": self.misses["Query"],
            "ScanCacheHits": self.hits["Scan"],
            "ScanCacheMisses": self.misses["Scan"],
            "EvictedSize": self._store.evicted_bytes,
            "EstimatedDbSize": self._store.used_bytes,
        }

    def __repr__(self) -> str:
        return (f"<QueryCache entries={len(self._store)} bytes={self.used_bytes}/{self.capacity_bytes} "
                f"ttl_ms={self.query_ttl_ms} hits={self.hits} misses={self.misses}>")


class DaxCaches:
    """One DAX node's item cache and query cache, and their statistics together."""

    def __init__(
        self,
        *,
        record_ttl_ms: int = limits.DAX_RECORD_TTL_MS_DEFAULT,
        query_ttl_ms: int = limits.DAX_QUERY_TTL_MS_DEFAULT,
        item_cache_bytes: int = limits.DAX_ITEM_CACHE_BYTES_MAX,
        query_cache_bytes: int = limits.DAX_QUERY_CACHE_BYTES_MAX,
        monotonic_s: Callable[[], float] = time.monotonic,
    ) -> None:
        self.items = ItemCache(record_ttl_ms=record_ttl_ms, capacity_bytes=item_cache_bytes,
                               monotonic_s=monotonic_s)
        self.queries = QueryCache(query_ttl_ms=query_ttl_ms, capacity_bytes=query_cache_bytes,
                                  monotonic_s=monotonic_s)

    def statistics(self) -> dict[str, int | float]:
        """DAX's CloudWatch cache metrics for this node: hits and misses per cache,
        EvictedSize (bytes evicted for room, total), EstimatedDbSize (bytes cached
        now), CacheMemoryUtilization (percent of both caches' bytes in use)."""
        items, queries = self.items.statistics(), self.queries.statistics()
        capacity = self.items.capacity_bytes + self.queries.capacity_bytes
        used = items["EstimatedDbSize"] + queries["EstimatedDbSize"]
        return {
            "ItemCacheHits": items["ItemCacheHits"],
            "ItemCacheMisses": items["ItemCacheMisses"],
            "QueryCacheHits": queries["QueryCacheHits"],
            "QueryCacheMisses": queries["QueryCacheMisses"],
            "ScanCacheHits": queries["ScanCacheHits"],
            "ScanCacheMisses": queries["ScanCacheMisses"],
            "EvictedSize": items["EvictedSize"] + queries["EvictedSize"],
            "EstimatedDbSize": used,
            "CacheMemoryUtilization": 100.0 * used / capacity if capacity else 0.0,
        }

    def __repr__(self) -> str:
        return f"<DaxCaches {self.items!r} {self.queries!r}>"
