"""A DAX node's caches (router/dax/cache.py) and their Prometheus lines (router/dax/metrics.py).

Behaviour as AWS documents DAX: TTL from the write (reads do not extend it),
item TTL 0 = no expiry, query TTL 0 = not cached, LRU under a byte bound,
negative entries, write-through, a query cache that writes never touch.
Time is a virtual clock; a hypothesis run checks the byte accounting and the
answers (reads in flight across writes included) against a plain model.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meridian.model import limits
from meridian.router.dax import metrics
from meridian.router.dax.cache import _TOMBSTONE, MISS, DaxCaches, ItemCache, QueryCache

OVERHEAD = limits.DAX_CACHE_ENTRY_OVERHEAD_BYTES


class Clock:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


def charge(table: str, key: bytes, size: int) -> int:
    return len(table) + len(key) + size + OVERHEAD


@pytest.fixture
def clock() -> Clock:
    return Clock()


def fill(cache: ItemCache, table: str, key: bytes, item, size: int = 10) -> bool:
    return cache.fill(table, key, item, size, cache.ticket())


# --- item cache -----------------------------------------------------------------


def test_item_miss_then_hit(clock):
    cache = ItemCache(monotonic_s=clock)
    assert cache.get("t", b"k1") is MISS
    assert fill(cache, "t", b"k1", {"pk": {"S": "k1"}})
    assert cache.get("t", b"k1") == {"pk": {"S": "k1"}}
    assert cache.get("other", b"k1") is MISS  # the table is part of the key
    assert (cache.hits, cache.misses) == (1, 2)
    assert cache.used_bytes == charge("t", b"k1", 10)


def test_negative_entry_answers_without_a_miss(clock):
    cache = ItemCache(monotonic_s=clock)
    assert cache.get("t", b"gone") is MISS
    assert fill(cache, "t", b"gone", None, 0)
    assert cache.get("t", b"gone") is None
    assert cache.statistics()["ItemCacheHits"] == 1


def test_ttl_counts_from_the_write_not_the_last_read(clock):
    cache = ItemCache(record_ttl_ms=10_000, monotonic_s=clock)
    fill(cache, "t", b"k", "v")
    clock.now_s += 9.0
    assert cache.get("t", b"k") == "v"
    clock.now_s += 1.0
    assert cache.get("t", b"k") is MISS
    assert cache.used_bytes == 0  # the expired entry went when met


def test_item_ttl_zero_means_no_expiry(clock):
    cache = ItemCache(record_ttl_ms=0, monotonic_s=clock)
    fill(cache, "t", b"k", "v")
    clock.now_s += 10.0**9
    assert cache.get("t", b"k") == "v"


def test_lru_evicts_least_recently_read_under_the_byte_bound(clock):
    one = charge("t", b"k0", 100)
    cache = ItemCache(capacity_bytes=3 * one, monotonic_s=clock)
    for i in range(3):
        fill(cache, "t", b"k%d" % i, i, 100)
    assert cache.get("t", b"k0") == 0  # k0 read: k1 is now the least recently used
    fill(cache, "t", b"k3", 3, 100)
    assert cache.get("t", b"k1") is MISS
    assert [cache.get("t", b"k%d" % i) for i in (0, 2, 3)] == [0, 2, 3]
    assert cache.used_bytes == 3 * one <= cache.capacity_bytes
    assert cache.statistics()["EvictedSize"] == one


def test_expired_entries_pushed_out_are_not_evicted_size(clock):
    one = charge("t", b"k0", 100)
    cache = ItemCache(record_ttl_ms=1000, capacity_bytes=one, monotonic_s=clock)
    fill(cache, "t", b"k0", 0, 100)
    clock.now_s += 2.0
    fill(cache, "t", b"k1", 1, 100)
    assert cache.statistics()["EvictedSize"] == 0


def test_an_answer_larger_than_the_cache_is_not_cached(clock):
    cache = ItemCache(capacity_bytes=1000, monotonic_s=clock)
    assert not fill(cache, "t", b"k", "big", 1000)
    assert cache.get("t", b"k") is MISS and cache.used_bytes == 0


def test_write_through_replaces_and_restarts_the_ttl(clock):
    cache = ItemCache(record_ttl_ms=10_000, monotonic_s=clock)
    fill(cache, "t", b"k", {"n": {"N": "42"}})
    clock.now_s += 8.0
    cache.write_through("t", b"k", {"n": {"N": "41"}}, 10)  # "regardless of the TTL"
    clock.now_s += 8.0
    assert cache.get("t", b"k") == {"n": {"N": "41"}}
    assert cache.used_bytes == charge("t", b"k", 10)  # replaced, not added


def test_write_through_of_an_unseen_key_caches_it(clock):
    cache = ItemCache(monotonic_s=clock)
    cache.write_through("t", b"new", "item", 5)
    assert cache.get("t", b"new") == "item"


def test_a_delete_leaves_a_negative_entry_and_a_put_replaces_one(clock):
    cache = ItemCache(monotonic_s=clock)
    fill(cache, "t", b"k", "item")
    cache.write_through("t", b"k", None, 0)
    assert cache.get("t", b"k") is None
    cache.write_through("t", b"k", "again", 5)
    assert cache.get("t", b"k") == "again"


def test_invalidate_makes_the_next_read_miss(clock):
    cache = ItemCache(monotonic_s=clock)
    fill(cache, "t", b"k", "old")
    cache.invalidate("t", b"k")
    assert cache.get("t", b"k") is MISS
    assert fill(cache, "t", b"k", "new")  # a read started after the invalidation fills
    assert cache.get("t", b"k") == "new"


@pytest.mark.parametrize("write", ["write_through", "invalidate", "delete", "too_big", "clear"])
def test_a_read_in_flight_cannot_overwrite_a_newer_write(clock, write):
    cache = ItemCache(capacity_bytes=10_000, monotonic_s=clock)
    assert cache.get("t", b"k") is MISS
    ticket = cache.ticket()  # the read goes upstream and sees the OLD item ...
    if write == "write_through":
        cache.write_through("t", b"k", "new", 5)
    elif write == "invalidate":
        cache.invalidate("t", b"k")
    elif write == "delete":
        cache.write_through("t", b"k", None, 0)
    elif write == "too_big":
        cache.write_through("t", b"k", "huge", 10_000)
    else:
        cache.clear()
    assert not cache.fill("t", b"k", "old", 5, ticket)  # ... and comes back after the write
    assert cache.get("t", b"k") in ({"write_through": "new", "delete": None}.get(write, MISS),)


def test_a_read_in_flight_cannot_refill_a_newer_write_evicted_meanwhile(clock):
    one = charge("t", b"k0", 100)
    cache = ItemCache(capacity_bytes=one, monotonic_s=clock)
    ticket = cache.ticket()
    cache.write_through("t", b"k0", "new", 100)
    cache.write_through("t", b"k1", "other", 100)  # evicts k0's new value
    assert not cache.fill("t", b"k0", "old", 100, ticket)
    assert cache.fill("t", b"k0", "fresh", 100, cache.ticket())


def test_concurrent_reads_of_one_key_both_fill(clock):
    cache = ItemCache(monotonic_s=clock)
    first, second = cache.ticket(), cache.ticket()
    assert cache.fill("t", b"k", "v", 5, first)
    assert cache.fill("t", b"k", "v", 5, second)
    assert cache.used_bytes == charge("t", b"k", 5)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError):
        ItemCache(record_ttl_ms=-1)
    with pytest.raises(ValueError):
        QueryCache(capacity_bytes=-1)
    with pytest.raises(ValueError):
        ItemCache().write_through("t", b"k", "v", -1)


# --- query cache ---------------------------------------------------------------


def test_query_and_scan_hits_and_misses_are_counted_apart(clock):
    cache = QueryCache(monotonic_s=clock)
    request = b"canonical request"
    assert cache.get("Query", request) is MISS
    assert cache.put("Query", request, b"answer", 6)
    assert cache.get("Query", request) == b"answer"
    assert cache.get("Scan", request) is MISS  # the kind is part of the key
    cache.put("Scan", request, b"scan answer", 11)
    assert cache.get("Scan", request) == b"scan answer"
    assert cache.statistics() | {"EvictedSize": 0} == {
        "QueryCacheHits": 1, "QueryCacheMisses": 1, "ScanCacheHits": 1, "ScanCacheMisses": 1,
        "EvictedSize": 0, "EstimatedDbSize": 2 * (len(request) + OVERHEAD) + 6 + 11,
    }


def test_an_empty_page_is_cached_like_any_answer(clock):
    cache = QueryCache(monotonic_s=clock)
    cache.put("Query", b"r", {"Items": [], "Count": 0}, 2)
    assert cache.get("Query", b"r") == {"Items": [], "Count": 0}


def test_query_ttl_expires_and_zero_means_not_cached(clock):
    cache = QueryCache(query_ttl_ms=5000, monotonic_s=clock)
    cache.put("Scan", b"r", "page", 4)
    clock.now_s += 4.999
    assert cache.get("Scan", b"r") == "page"
    clock.now_s += 0.001
    assert cache.get("Scan", b"r") is MISS
    off = QueryCache(query_ttl_ms=0, monotonic_s=clock)
    assert not off.enabled
    assert not off.put("Query", b"r", "page", 4)
    assert off.get("Query", b"r") is MISS and off.used_bytes == 0


def test_query_cache_lru(clock):
    one = len(b"r0") + 50 + OVERHEAD
    cache = QueryCache(capacity_bytes=2 * one, monotonic_s=clock)
    cache.put("Query", b"r0", 0, 50)
    cache.put("Query", b"r1", 1, 50)
    cache.get("Query", b"r0")
    cache.put("Query", b"r2", 2, 50)
    assert cache.get("Query", b"r1") is MISS
    assert cache.get("Query", b"r0") == 0 and cache.get("Query", b"r2") == 2
    assert cache.statistics()["EvictedSize"] == one


def test_writes_through_the_item_cache_leave_the_query_cache_stale(clock):
    caches = DaxCaches(monotonic_s=clock)
    caches.queries.put("Query", b"DocId=101 AND Rev>=5", ["rev5"], 10)
    caches.items.write_through("Docs", b"101/20", {"Rev": {"N": "20"}}, 10)
    assert caches.queries.get("Query", b"DocId=101 AND Rev>=5") == ["rev5"]


# --- statistics and /metrics ------------------------------------------------------


def test_node_statistics_use_cloudwatch_names(clock):
    caches = DaxCaches(item_cache_bytes=1000, query_cache_bytes=1000, monotonic_s=clock)
    caches.items.get("t", b"k")
    fill(caches.items, "t", b"k", "v", 10)
    caches.items.get("t", b"k")
    caches.queries.get("Scan", b"r")
    caches.queries.put("Scan", b"r", "page", 20)
    stats = caches.statistics()
    used = charge("t", b"k", 10) + len(b"r") + 20 + OVERHEAD
    assert stats == {
        "ItemCacheHits": 1, "ItemCacheMisses": 1, "QueryCacheHits": 0, "QueryCacheMisses": 0,
        "ScanCacheHits": 0, "ScanCacheMisses": 1, "EvictedSize": 0, "EstimatedDbSize": used,
        "CacheMemoryUtilization": 100.0 * used / 2000,
    }
    assert "entries=1" in repr(caches.items) and "hits=1" in repr(caches.items)


def test_render_writes_one_family_per_reported_name(clock):
    caches = DaxCaches(monotonic_s=clock)
    caches.items.get("t", b"k")
    node_b = SimpleNamespace(cluster_id="local", node_id="b", statistics=caches.statistics)
    node_a = SimpleNamespace(cluster_id="local", node_id='a"1',
                             statistics=lambda: {"ItemCacheMisses": 7, "TotalRequestCount": 9, "Unknown": 1})
    text = "".join(metrics.render([node_b, node_a]))
    assert all(line.endswith("\n") for line in metrics.render([node_a]))
    assert "# TYPE meridian_dax_item_cache_misses_total counter\n" in text
    assert ('meridian_dax_item_cache_misses_total{ClusterId="local",NodeId="a\\"1"} 7\n'
            'meridian_dax_item_cache_misses_total{ClusterId="local",NodeId="b"} 1\n') in text
    assert 'meridian_dax_requests_total{ClusterId="local",NodeId="a\\"1"} 9\n' in text
    assert "meridian_dax_get_item_requests_total" not in text  # nobody reports it
    assert "Unknown" not in text
    assert 'meridian_dax_cache_memory_utilization_percent{ClusterId="local",NodeId="b"} 0\n' in text
    assert metrics.render([]) == []


def test_every_cache_statistic_has_a_family():
    assert set(DaxCaches().statistics()) <= set(metrics.FAMILIES)


# --- the accounting against a model ------------------------------------------------

OPS = st.lists(
    st.tuples(
        st.sampled_from(["get", "fill", "read_start", "read_end", "write", "delete", "invalidate", "tick"]),
        st.integers(0, 2),  # key: few, so reads and writes of one key interleave
        st.integers(0, 300),  # size, or seconds for tick
    ),
    max_size=80,
)


@settings(max_examples=300, deadline=None)
@given(ops=OPS, capacity=st.one_of(st.just(10**6), st.integers(0, 2000)), ttl_ms=st.sampled_from([0, 1000, 60_000]))
def test_item_cache_bytes_and_answers_agree_with_a_model(ops, capacity, ttl_ms):
    clock = Clock()
    cache = ItemCache(record_ttl_ms=ttl_ms, capacity_bytes=capacity, monotonic_s=clock)
    latest: dict[bytes, object] = {}  # what the table holds, written through this node
    in_flight: dict[bytes, tuple[int, object]] = {}  # reads gone upstream: (ticket, answer seen)
    for op, k, n in ops:
        key = b"k%d" % k
        if op == "get":
            value = cache.get("t", key)
            assert value is MISS or value == latest.get(key)  # never stale, never made up
        elif op == "fill":
            cache.fill("t", key, latest.get(key), n, cache.ticket())
        elif op == "read_start":
            in_flight[key] = (cache.ticket(), latest.get(key))
        elif op == "read_end" and key in in_flight:
            ticket, seen = in_flight.pop(key)
            cache.fill("t", key, seen, n, ticket)
        elif op == "write":
            latest[key] = ("v", k, n)
            cache.write_through("t", key, latest[key], n)
        elif op == "delete":
            latest.pop(key, None)
            cache.write_through("t", key, None, 0)
        elif op == "invalidate":
            cache.invalidate("t", key)
        elif op == "tick":
            clock.now_s += n / 100
        entries = cache._store._entries
        assert cache.used_bytes == sum(entry.charged_bytes for entry in entries.values()) <= capacity
        for (_, cached_key), entry in entries.items():  # every entry agrees with the table
            assert entry.value is _TOMBSTONE or entry.value == latest.get(cached_key)
