"""The engine's replication side (``node/replica.py``) on a real RocksDB."""

from __future__ import annotations

import asyncio
import random
import tempfile

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meridian.model.keycodec import encode_item_key, table_prefix
from meridian.model.ops import CatalogEntry, IndexSpec, ItemOp, OpKind, RangeKind, RangeRead, scan_segment_bounds
from meridian.model.stamps import LOGICAL_BITS, VersionStamp
from meridian.model.values import item_size
from meridian.node.engine import Engine
from meridian.model.changes import Change
from meridian.model.records import is_tombstone, record_item_json, record_stamp
from meridian.model.changes import LogTruncated

TABLE = 7
SCHEMA = [("pk", "S")]
BY_TAG = IndexSpec("by_tag", 701, False, (("pk", "S"), ("tag", "S")), "ALL")
BY_CITY = IndexSpec("by_city", 702, True, (("city", "S"),), "ALL")
NOW_MS = 1_000_000


def catalog(*specs: IndexSpec, table_id: int = TABLE, revision: int = 1) -> CatalogEntry:
    description = {
        "table_id": table_id,
        "key_schema": [list(k) for k in SCHEMA],
        "indexes": [spec.to_record() for spec in specs],
    }
    return CatalogEntry(f"t{table_id}", revision, description)


def key(pk: str, table_id: int = TABLE) -> bytes:
    return encode_item_key(table_id, SCHEMA, {"pk": {"S": pk}})


def item(pk: str, **attrs: str) -> dict:
    return {"pk": {"S": pk}, **{name: {"S": value} for name, value in attrs.items()}}


def change(pk: str, hlc: int, region: str = "eu", table_id: int = TABLE, **attrs: str) -> Change:
    """A put change (a delete when ``attrs`` has ``deleted=""``)."""
    if attrs.pop("deleted", None) is not None:
        return Change(0, table_id, key(pk, table_id), VersionStamp(hlc, region), True, None, 0)
    body = item(pk, **attrs)
    return Change(0, table_id, key(pk, table_id), VersionStamp(hlc, region), False, orjson.dumps(body), item_size(body))


def open_engine(path: str, sync: bool = False, region: str = "us") -> Engine:
    engine = Engine(path, node_id="n1", region=region, sync=sync, now_ms=lambda: NOW_MS)
    engine.catalog_put(catalog(BY_TAG, BY_CITY))
    return engine


@pytest.fixture
def engine(tmp_path):
    e = open_engine(str(tmp_path / "db"))
    yield e
    e.close()


def apply(engine: Engine, *changes: Change) -> list[bool]:
    return asyncio.run(engine.apply_replicated(changes))


def stored(engine: Engine, pk: str) -> tuple[VersionStamp, dict | None] | None:
    record = engine._items.get(key(pk))
    if record is None:
        return None
    return record_stamp(record), None if is_tombstone(record) else orjson.loads(record_item_json(record))


def scan(engine: Engine) -> list[dict]:
    lower, upper = scan_segment_bounds(table_prefix(TABLE), 0, 1)
    return [orjson.loads(i) for i in engine.read_range(RangeRead(RangeKind.SCAN, TABLE, lower, upper)).items]


def hlc(ms: int, logical: int = 0) -> int:
    return ms << LOGICAL_BITS | logical


# --- last-writer-wins ------------------------------------------------------------


def test_a_newer_change_is_stored_with_its_own_stamp(engine):
    assert apply(engine, change("a", hlc(5), v="1")) == [True]
    assert stored(engine, "a") == (VersionStamp(hlc(5), "eu"), item("a", v="1"))


def test_an_older_or_equal_change_is_discarded(engine):
    apply(engine, change("a", hlc(5), v="new"))
    assert apply(engine, change("a", hlc(4), v="old"), change("a", hlc(5), v="new")) == [False, False]
    assert stored(engine, "a")[1] == item("a", v="new")
    assert engine.replicated_discarded == 2


def test_the_region_breaks_ties(engine):
    apply(engine, change("a", hlc(5), region="eu", v="eu"))
    assert apply(engine, change("a", hlc(5), region="ap", v="ap")) == [False]
    assert apply(engine, change("a", hlc(5), region="sa", v="sa")) == [True]


def test_a_tombstone_beats_older_writes_arriving_later(engine):
    assert apply(engine, change("a", hlc(9), deleted="")) == [True]
    assert stored(engine, "a") == (VersionStamp(hlc(9), "eu"), None)
    assert apply(engine, change("a", hlc(8), v="late")) == [False]
    assert engine.execute(ItemOp(OpKind.GET, TABLE, key("a"), {"pk": {"S": "a"}})).item_json is None


def test_a_local_write_after_a_replicated_one_beats_it(engine):
    future = hlc(NOW_MS + 60_000)  # a region whose clock runs a minute ahead
    apply(engine, change("a", future, v="remote"))
    engine.execute(ItemOp(OpKind.PUT, TABLE, key("a"), {"pk": {"S": "a"}}, item=item("a", v="local")))
    stamp, body = stored(engine, "a")
    assert stamp.hlc > future and stamp.region == "us" and body == item("a", v="local")


def test_a_local_write_loses_to_a_later_replicated_one(engine):
    engine.execute(ItemOp(OpKind.PUT, TABLE, key("a"), {"pk": {"S": "a"}}, item=item("a", v="local")))
    assert apply(engine, change("a", hlc(NOW_MS + 1), v="remote")) == [True]
    assert stored(engine, "a")[1] == item("a", v="remote")


def test_unknown_tables_are_discarded(engine):
    assert apply(engine, change("a", hlc(5), table_id=99, v="1"), change("b", hlc(5), v="1")) == [False, True]
    assert engine._items.get(key("a", 99)) is None


def test_a_dropped_table_is_unknown(engine):
    assert apply(engine, change("a", hlc(5), v="1")) == [True]
    engine.catalog_put(CatalogEntry(f"t{TABLE}", 2, catalog().description, deleted=True))
    assert apply(engine, change("b", hlc(6), v="1")) == [False]


# --- what a replicated write keeps in step ----------------------------------------


def test_scan_index_and_statistics_follow_replicated_puts_and_deletes(engine):
    apply(engine, change("a", hlc(5), v="1"), change("b", hlc(5), v="2"))
    assert sorted(i["pk"]["S"] for i in scan(engine)) == ["a", "b"]
    assert engine.table_stats(TABLE).item_count == 2
    apply(engine, change("a", hlc(6), v="longer value"))
    stats = engine.table_stats(TABLE)
    assert (stats.item_count, stats.size_bytes) == (2, item_size(item("a", v="longer value")) + item_size(item("b", v="2")))
    apply(engine, change("a", hlc(7), deleted=""), change("zz", hlc(7), deleted=""))
    assert [i["pk"]["S"] for i in scan(engine)] == ["b"]
    assert engine.table_stats(TABLE).item_count == 1


def test_local_index_entries_follow_replicated_writes(engine):
    apply(engine, change("a", hlc(5), tag="red"))
    stats = engine.table_stats(TABLE).indexes[BY_TAG.index_id]
    assert stats.item_count == 1
    apply(engine, change("a", hlc(6), deleted=""))
    assert engine.table_stats(TABLE).indexes[BY_TAG.index_id].item_count == 0


def test_replicated_writes_ignore_the_item_collection_limit(tmp_path):
    e = Engine(str(tmp_path / "db"), node_id="n1", now_ms=lambda: NOW_MS, item_collection_bytes_max=10)
    e.catalog_put(catalog(BY_TAG))
    try:
        assert asyncio.run(e.apply_replicated([change("a", hlc(5), tag="x" * 50)])) == [True]
    finally:
        e.close()


def test_applied_changes_are_logged_with_their_stamp(engine):
    before = engine.log_position().last_sequence
    apply(engine, change("a", hlc(5), v="1"), change("a", hlc(4), v="0"), change("b", hlc(6), deleted=""))
    logged = engine.read_change_batch(before, 10, 1 << 20)
    assert [(c.sequence, c.key, c.stamp, c.tombstone) for c in logged] == [
        (before + 1, key("a"), VersionStamp(hlc(5), "eu"), False),
        (before + 2, key("b"), VersionStamp(hlc(6), "eu"), True),
    ]
    assert logged[0].size_bytes == item_size(item("a", v="1"))


# --- any delivery order, the same state ---------------------------------------------

_KEYS = ["k0", "k1", "k2"]
_changes = st.builds(
    lambda pk, clock, region, deleted, n: change(pk, clock, region, **({"deleted": ""} if deleted else {"v": str(n)})),
    st.sampled_from(_KEYS),
    st.integers(1, 30),
    st.sampled_from(["a", "b", "c"]),
    st.booleans(),
    st.integers(0, 9),
)


def _state(engine: Engine) -> dict:
    return {pk: stored(engine, pk) for pk in _KEYS}


@settings(max_examples=40, deadline=None)
@given(st.lists(_changes, max_size=15, unique_by=lambda c: (c.key, c.stamp)), st.randoms(use_true_random=False))
def test_any_delivery_order_gives_the_same_state(changes, rnd) -> None:
    shuffled = list(changes)
    rnd.shuffle(shuffled)
    with tempfile.TemporaryDirectory() as tmp:
        first, second = open_engine(tmp + "/1"), open_engine(tmp + "/2", sync=True)
        try:
            for c in changes:
                apply(first, c)

            async def in_batches() -> None:  # the group-commit path, several changes per call
                i = 0
                while i < len(shuffled):
                    n = rnd.randint(1, 4)
                    await second.apply_replicated(shuffled[i : i + n])
                    i += n

            asyncio.run(in_batches())
            assert _state(first) == _state(second)
            winners = {}
            for c in changes:
                if c.key not in winners or c.stamp > winners[c.key].stamp:
                    winners[c.key] = c
            for pk in _KEYS:
                expected = winners.get(key(pk))
                assert (stored(first, pk) or (None,))[0] == (expected.stamp if expected else None)
            assert first.table_stats(TABLE) == second.table_stats(TABLE)
            assert sorted(map(str, scan(first))) == sorted(map(str, scan(second)))
        finally:
            first.close()
            second.close()


# --- durability, group commit, restart -------------------------------------------


async def test_group_commit_acknowledges_once_durable_and_survives_restart(tmp_path):
    path = str(tmp_path / "db")
    e = open_engine(path, sync=True)
    future = hlc(NOW_MS + 60_000)
    task = asyncio.ensure_future(e.apply_replicated([change("a", future, v="1")]))
    results, durable = e.execute_many([ItemOp(OpKind.PUT, TABLE, key("b"), {"pk": {"S": "b"}}, item=item("b"))])
    assert durable is not None and not task.done()
    assert await task == [True]
    await durable
    assert e.log_position().last_sequence == 2
    e.close()
    e = open_engine(path, sync=True)
    try:
        assert stored(e, "a")[0] == VersionStamp(future, "eu")
        await e.execute_async(ItemOp(OpKind.PUT, TABLE, key("c"), {"pk": {"S": "c"}}, item=item("c")))
        assert stored(e, "c")[0].hlc > future  # the observed clock was persisted
    finally:
        e.close()


async def test_log_position_floor_stays_below_writes_not_yet_durable(tmp_path):
    e = open_engine(str(tmp_path / "db"), sync=True)
    try:
        await e.execute_async(ItemOp(OpKind.PUT, TABLE, key("a"), {"pk": {"S": "a"}}, item=item("a")))
        durable = e.log_position()
        e.execute_many([ItemOp(OpKind.PUT, TABLE, key("b"), {"pk": {"S": "b"}}, item=item("b"))])
        pending = e.log_position()
        assert pending == durable
        assert stored(e, "a")[0].hlc <= pending.stamp_floor_hlc < record_stamp(e._pending[key("b")]).hlc
        await e.wait_durable()
        settled = e.log_position()
        assert settled.last_sequence == durable.last_sequence + 1
        assert settled.stamp_floor_hlc >= record_stamp(e._items.get(key("b"))).hlc
    finally:
        e.close()


async def test_wait_beyond_returns_once_a_later_change_is_durable(tmp_path):
    e = open_engine(str(tmp_path / "db"), sync=True)
    try:
        waiter = asyncio.ensure_future(e.wait_beyond(0))
        await asyncio.sleep(0)
        assert not waiter.done()
        await e.apply_replicated([change("a", hlc(5), v="1")])
        await asyncio.wait_for(waiter, 2)
    finally:
        e.close()


def test_read_change_batch_bounds(engine):
    apply(engine, *(change(f"k{n}", hlc(5), v="x" * 100) for n in range(10)))
    assert len(engine.read_change_batch(0, 4, 1 << 20)) == 4
    assert len(engine.read_change_batch(0, 100, 1)) == 1  # the first always comes
    assert [c.sequence for c in engine.read_change_batch(8, 100, 1 << 20)] == [9, 10]
    assert engine.read_change_batch(10, 100, 1 << 20) == []


# --- garbage collection ------------------------------------------------------------


def test_truncate_log_holds_back_for_global_index_cursors(engine):
    apply(engine, *(change(f"k{n}", hlc(5), v="1") for n in range(5)))
    engine.gsi_advance(BY_CITY.index_id, {}, cursor=3)
    assert engine.truncate_log(5) == 3
    with pytest.raises(LogTruncated):
        engine.read_change_batch(2, 10, 1 << 20)
    assert [c.sequence for c in engine.read_change_batch(3, 10, 1 << 20)] == [4, 5]
    engine.gsi_advance(BY_CITY.index_id, {}, cursor=5)
    assert engine.truncate_log(99) == 5
    assert engine.read_change_batch(5, 10, 1 << 20) == []


def test_drop_tombstones_at_or_below_the_floor(engine):
    apply(engine, change("a", hlc(5), deleted=""), change("b", hlc(7), deleted=""), change("c", hlc(5), v="1"))
    assert engine.drop_tombstones(hlc(6)) == 1
    assert stored(engine, "a") is None
    assert stored(engine, "b")[1] is None and stored(engine, "c")[1] == item("c", v="1")
    # With the tombstone gone nothing older can still arrive (gc.py's promise);
    # a newer write is stored as usual.
    assert apply(engine, change("a", hlc(8), v="2")) == [True]


def test_random_interleaving_of_local_and_replicated_writes_keeps_stats_exact(engine):
    rnd = random.Random(4)
    for n in range(200):
        pk = f"k{rnd.randrange(8)}"
        if rnd.random() < 0.5:
            apply(engine, change(pk, hlc(NOW_MS + rnd.randrange(-5, 5)), **({"deleted": ""} if rnd.random() < 0.3 else {"v": str(n)})))
        else:
            engine.execute(ItemOp(OpKind.PUT, TABLE, key(pk), {"pk": {"S": pk}}, item=item(pk, v=str(n))))
    live = [pk for pk in (f"k{i}" for i in range(8)) if (s := stored(engine, pk)) is not None and s[1] is not None]
    stats = engine.table_stats(TABLE)
    assert stats.item_count == len(live) == len(scan(engine))
    assert stats.size_bytes == sum(item_size(stored(engine, pk)[1]) for pk in live)
