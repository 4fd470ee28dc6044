"""Last-writer-wins apply on the simulation's node store (the engine's replication semantics)."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meridian.model.stamps import VersionStamp, physical_ms
from meridian.model.changes import Change
from meridian.replication.clock import VirtualClock, VirtualTimeLoop
from meridian.model.changes import change_size_bytes
from meridian.replication.sim_store import SimNodeStore, SimRegionStorage

TABLE = 7
_KEYS = [b"\x00" * 7 + b"\x07k%d" % i for i in range(4)]


def _item(n: int) -> bytes:
    return orjson.dumps({"pk": {"S": "k"}, "v": {"N": str(n)}})


_changes = st.builds(
    lambda key, hlc, region, tombstone, n: Change(
        sequence=0,
        table_id=TABLE,
        key=key,
        stamp=VersionStamp(hlc, region),
        tombstone=tombstone,
        item_json=None if tombstone else _item(n),
    ),
    st.sampled_from(_KEYS),
    st.integers(1, 40),  # few clock values: equal clocks (region tie-breaks) happen often
    st.sampled_from(["a", "b", "c"]),
    st.booleans(),
    st.integers(0, 9),
)


@pytest.fixture
def clock():
    loop = VirtualTimeLoop()
    yield VirtualClock(loop)
    loop.close()


def _store(clock: VirtualClock, region: str = "z") -> SimNodeStore:
    return SimNodeStore("n0", region, clock)


def _state(store: SimNodeStore) -> dict[bytes, tuple[VersionStamp, bytes | None]]:
    return {key: store.get(key) for key, _ in sorted(store.records())}


@settings(max_examples=200, deadline=None)
@given(st.lists(_changes, max_size=25, unique_by=lambda c: c.stamp), st.randoms(use_true_random=False), st.data())
def test_any_delivery_order_gives_the_same_state(changes, rnd, data) -> None:
    """Any order, any duplicates, any batching: the largest stamp per key wins."""
    loop = VirtualTimeLoop()
    try:
        clock = VirtualClock(loop)
        expected: dict[bytes, Change] = {}
        for c in changes:
            if c.key not in expected or c.stamp > expected[c.key].stamp:
                expected[c.key] = c
        duplicates = st.lists(st.sampled_from(changes), max_size=10) if changes else st.just([])
        deliveries = list(changes) + data.draw(duplicates)
        states = []
        for _ in range(3):
            rnd.shuffle(deliveries)
            store = _store(clock)
            i = 0
            while i < len(deliveries):
                n = rnd.randint(1, 5)
                store.apply_replicated(deliveries[i : i + n])
                i += n
            states.append(_state(store))
        assert states[0] == states[1] == states[2] == {
            key: (c.stamp, c.item_json) for key, c in sorted(expected.items())
        }
    finally:
        loop.close()


def test_tombstones_are_versions_too(clock: VirtualClock) -> None:
    store = _store(clock)
    key = _KEYS[0]
    delete = Change(0, TABLE, key, VersionStamp(10, "b"), True, None)
    older_put = Change(0, TABLE, key, VersionStamp(9, "c"), False, _item(1))
    newer_put = Change(0, TABLE, key, VersionStamp(10, "c"), False, _item(2))  # same clock, larger region
    assert store.apply_replicated([delete, older_put]) == [True, False]
    assert store.get(key) == (VersionStamp(10, "b"), None)
    assert store.apply_replicated([newer_put, delete]) == [True, False]
    assert store.get(key) == (VersionStamp(10, "c"), _item(2))


def test_applied_changes_are_logged_with_their_stamp_and_discarded_ones_are_not(clock: VirtualClock) -> None:
    store = _store(clock)
    key = _KEYS[1]
    local = store.put(TABLE, key, _item(0))
    remote = Change(0, TABLE, key, VersionStamp(local.hlc + 5, "a"), False, _item(1))
    stale = Change(0, TABLE, key, VersionStamp(local.hlc - 1, "a"), False, _item(2))
    assert store.apply_replicated([remote, stale, remote]) == [True, False, False]
    logged = asyncio.run(store.read(0, 100, 1 << 20))
    assert [(c.sequence, c.stamp) for c in logged] == [(1, local), (2, remote.stamp)]
    assert logged[1].item_json == remote.item_json


def test_a_local_write_after_a_replicated_one_wins_even_against_a_clock_far_ahead(clock: VirtualClock) -> None:
    """The node's clock observes what it stores, so its next write is stamped later."""
    store = _store(clock, region="z")
    key = _KEYS[2]
    ahead = VersionStamp((clock.wall_ms() + 60_000) << 16, "a")  # a writer a minute ahead
    store.apply_replicated([Change(0, TABLE, key, ahead, False, _item(1))])
    mine = store.put(TABLE, key, _item(2))
    assert mine > ahead and physical_ms(mine.hlc) >= physical_ms(ahead.hlc)
    assert store.get(key) == (mine, _item(2))


def test_skew_shifts_a_regions_stamps(clock: VirtualClock) -> None:
    store = _store(clock)
    store.skew_ms = -5000
    stamp = store.put(TABLE, _KEYS[0], _item(0))
    assert physical_ms(stamp.hlc) == clock.wall_ms() - 5000


def test_region_storage_routes_each_change_to_its_owner_and_keeps_order(clock: VirtualClock) -> None:
    nodes = [SimNodeStore(f"n{i}", "z", clock) for i in range(3)]
    region = SimRegionStorage(nodes)
    keys = [b"\x00" * 8 + b"key%d" % i for i in range(30)]
    changes = [Change(0, TABLE, k, VersionStamp(5, "a"), False, _item(i)) for i, k in enumerate(keys)]
    stale = [Change(0, TABLE, k, VersionStamp(4, "a"), False, _item(0)) for k in keys[::2]]
    assert asyncio.run(region.apply(changes)) == [True] * 30
    assert asyncio.run(region.apply(stale + changes[:3])) == [False] * (len(stale) + 3)
    for key in keys:
        assert region.owner(key).get(key) is not None
        assert sum(node.get(key) is not None for node in nodes) == 1
    assert sum(n.last_sequence for n in nodes) == 30


def test_reads_respect_both_bounds_but_always_return_one_change(clock: VirtualClock) -> None:
    store = _store(clock)
    for i in range(10):
        store.put(TABLE, _KEYS[i % 4], _item(i))
    one = asyncio.run(store.read(0, 10, 1))
    assert [c.sequence for c in one] == [1]
    size = change_size_bytes(one[0])
    three = asyncio.run(store.read(2, 10, 3 * size))
    assert [c.sequence for c in three] == [3, 4, 5]
    assert [c.sequence for c in asyncio.run(store.read(7, 2, 1 << 20))] == [8, 9]
    assert asyncio.run(store.read(10, 5, 1 << 20)) == []
