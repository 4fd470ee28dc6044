"""Time to Live expiry (``node/ttl.py``) on a real engine over a temporary RocksDB."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from meridian.model import limits
from meridian.model.changes import Change
from meridian.model.keycodec import encode_item_key, table_prefix
from meridian.model.ops import CatalogEntry, IndexSpec, ItemOp, OpKind, RangeKind, RangeRead, scan_segment_bounds
from meridian.model.records import is_service_delete, is_tombstone, record_stamp
from meridian.model.stamps import LOGICAL_BITS, VersionStamp
from meridian.model.values import item_size
from meridian.node.engine import Engine
from meridian.node.ttl import TtlSweeper, expired
from meridian.proto.replication_codec import batch_from_pb, batch_to_pb, change_from_pb, change_to_pb
from meridian.model.changes import ReplicationBatch

TABLE = 7
SCHEMA = [("pk", "S"), ("sk", "N")]
BY_TAG = IndexSpec("by_tag", 701, False, (("pk", "S"), ("tag", "S")), "ALL")  # a local secondary index
NOW_S = 1_700_000_000
NOW_MS = NOW_S * 1000
FIVE_YEARS_S = limits.TTL_EXPIRED_AGE_S_MAX


def catalog(ttl_attribute: str | None = "exp", revision: int = 1, deleted: bool = False) -> CatalogEntry:
    description = {
        "table_id": TABLE,
        "key_schema": [list(k) for k in SCHEMA],
        "indexes": [BY_TAG.to_record()],
        "ttl_attribute": ttl_attribute,
    }
    return CatalogEntry("t", revision, description, deleted)


def key_item(pk: str) -> dict:
    return {"pk": {"S": pk}, "sk": {"N": "1"}}


def key(pk: str) -> bytes:
    return encode_item_key(TABLE, SCHEMA, key_item(pk))


def put(engine: Engine, pk: str, **attrs: dict) -> None:
    item = {**key_item(pk), "tag": {"S": "t-" + pk}, **attrs}
    result = engine.execute(ItemOp(OpKind.PUT, TABLE, key(pk), key_item(pk), item=item))
    assert result.error is None


def get(engine: Engine, pk: str) -> dict | None:
    result = engine.execute(ItemOp(OpKind.GET, TABLE, key(pk), key_item(pk)))
    return orjson.loads(result.item_json) if result.item_json else None


def scan(engine: Engine, table_id: int = TABLE) -> list[str]:
    lower, upper = scan_segment_bounds(table_prefix(table_id), 0, 1)
    return [orjson.loads(i)["pk"]["S"] for i in engine.read_range(RangeRead(RangeKind.SCAN, table_id, lower, upper)).items]


def n(value: float | int) -> dict:
    return {"N": str(value)}


class Clock:
    """A settable epoch-millisecond clock, shared by the engine and the sweeper."""

    def __init__(self, now_ms: int = NOW_MS) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


class VirtualTime:
    """A monotonic clock that only moves when the sweeper sleeps; records each sleep."""

    def __init__(self, on_sleep=None) -> None:
        self.now_s = 0.0
        self.sleeps: list[float] = []
        self.on_sleep = on_sleep

    def monotonic_s(self) -> float:
        return self.now_s

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now_s += seconds
        if self.on_sleep is not None:
            self.on_sleep(self)


def open_engine(path, clock: Clock, *, region: str = "us", sync: bool = False, ttl: str | None = "exp") -> Engine:
    engine = Engine(str(path), node_id="n1", region=region, sync=sync, now_ms=clock)
    engine.catalog_put(catalog(ttl))
    return engine


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def engine(tmp_path, clock):
    e = open_engine(tmp_path / "db", clock)
    yield e
    e.close()


def sweeper(engine: Engine, clock: Clock, **kw) -> TtlSweeper:
    return TtlSweeper(engine, interval_s=0.01, now_ms=clock, **kw)


# --- which items expire ------------------------------------------------------------


def test_the_expiry_rule():
    assert expired(n(NOW_S - 1), NOW_MS)
    assert expired(n(NOW_S - 0.5), NOW_MS)
    assert not expired(n(NOW_S), NOW_MS)  # not before the second has passed
    assert not expired(n(NOW_S + 60), NOW_MS)
    assert expired(n(NOW_S - FIVE_YEARS_S), NOW_MS)
    assert not expired(n(NOW_S - FIVE_YEARS_S - 1), NOW_MS)
    assert not expired(n(0), NOW_MS)
    assert not expired(n(NOW_MS - 1), NOW_MS)  # milliseconds read as far in the future
    assert not expired({"S": str(NOW_S - 1)}, NOW_MS)
    assert not expired({"NS": [str(NOW_S - 1)]}, NOW_MS)
    assert not expired({"L": [n(NOW_S - 1)]}, NOW_MS)
    assert not expired(None, NOW_MS)


async def test_past_numbers_expire_and_the_rest_stay(engine, clock):
    put(engine, "past", exp=n(NOW_S - 10))
    put(engine, "fractional", exp=n(NOW_S - 0.25))
    put(engine, "future", exp=n(NOW_S + 3600))
    put(engine, "ancient", exp=n(NOW_S - FIVE_YEARS_S - 10))
    put(engine, "almost-five-years", exp=n(NOW_S - FIVE_YEARS_S + 10))
    put(engine, "string", exp={"S": str(NOW_S - 10)})
    put(engine, "set", exp={"NS": [str(NOW_S - 10)]})
    put(engine, "bool", exp={"BOOL": True})
    put(engine, "missing", other=n(NOW_S - 10))
    put(engine, "nested", m={"M": {"exp": n(NOW_S - 10)}})
    assert get(engine, "past") is not None  # expired but not yet swept: still read
    before = engine.table_stats(TABLE)

    assert await sweeper(engine, clock).sweep() == 3

    gone = {"past", "fractional", "almost-five-years"}
    kept = {"future", "ancient", "string", "set", "bool", "missing", "nested"}
    assert {pk for pk in gone | kept if get(engine, pk) is None} == gone
    assert sorted(scan(engine)) == sorted(kept)
    after = engine.table_stats(TABLE)
    assert after.item_count == before.item_count - 3
    assert after.indexes[BY_TAG.index_id].item_count == before.indexes[BY_TAG.index_id].item_count - 3
    assert after.ttl_deleted_count == 3
    assert engine.statistics().ttl_deleted == 3


async def test_items_expire_once_their_time_comes(engine, clock):
    put(engine, "a", exp=n(NOW_S + 100))
    ttl = sweeper(engine, clock)
    assert await ttl.sweep() == 0
    clock.now_ms += 101_000
    assert await ttl.sweep() == 1
    assert get(engine, "a") is None
    stats = ttl.statistics()
    assert (stats.passes, stats.items_examined, stats.deleted, stats.skipped) == (2, 2, 1, 0)


async def test_a_table_without_ttl_is_not_swept(tmp_path, clock):
    engine = open_engine(tmp_path / "db", clock, ttl=None)
    try:
        put(engine, "a", exp=n(NOW_S - 10))
        assert await sweeper(engine, clock).sweep() == 0
        assert get(engine, "a") is not None
        engine.catalog_put(catalog("exp", revision=2))  # UpdateTimeToLive reached the node
        assert await sweeper(engine, clock).sweep() == 1
        engine.catalog_put(catalog(None, revision=3))
        put(engine, "b", exp=n(NOW_S - 10))
        assert await sweeper(engine, clock).sweep() == 0
    finally:
        engine.close()


# --- the delete: logged, marked as the service's, conditional on the version -------


async def test_an_expiry_is_a_stamped_logged_delete_marked_as_the_services(engine, clock):
    put(engine, "a", exp=n(NOW_S - 10))
    put(engine, "b")
    engine.execute(ItemOp(OpKind.DELETE, TABLE, key("b"), key_item("b")))
    last = engine.last_sequence()
    clock.now_ms += 5
    assert await sweeper(engine, clock).sweep() == 1

    record = engine._items.get(key("a"))
    assert is_tombstone(record) and is_service_delete(record)
    assert record_stamp(record).region == "us"
    assert record_stamp(record).hlc >> LOGICAL_BITS == clock.now_ms  # stamped by the node's clock
    client_delete = engine._items.get(key("b"))
    assert is_tombstone(client_delete) and not is_service_delete(client_delete)

    changes = list(engine.read_changes(last, 10))
    assert [(c.key, c.tombstone, c.by_service, c.stamp) for c in changes] == [
        (key("a"), True, True, record_stamp(record))
    ]
    earlier = list(engine.read_changes(0, 10))
    assert [c.by_service for c in earlier] == [False, False, False, True]


async def test_an_update_racing_the_sweep_wins(engine, clock):
    put(engine, "a", exp=n(NOW_S - 10))
    put(engine, "b", exp=n(NOW_S - 10))

    def rewrite_b(_time: VirtualTime) -> None:  # while the sweeper waits its turn to delete "b"
        put(engine, "b", exp=n(NOW_S - 5), v={"S": "rewritten"})

    time = VirtualTime(rewrite_b)
    ttl = sweeper(engine, clock, deletes_per_s_max=1, burst_max=1, monotonic_s=time.monotonic_s, sleep=time.sleep)
    assert await ttl.sweep() == 1
    assert time.sleeps  # "b" was read, then waited, and was rewritten meanwhile
    assert get(engine, "a") is None
    assert get(engine, "b")["v"] == {"S": "rewritten"}
    assert ttl.statistics().skipped == 1
    time.on_sleep = None
    assert await ttl.sweep() == 1  # the new version is judged by the next sweep
    assert get(engine, "b") is None


def test_expire_many_skips_a_version_it_did_not_judge(engine):
    put(engine, "a", exp=n(NOW_S - 10))
    seen = record_stamp(engine._items.get(key("a")))
    put(engine, "a", exp=n(NOW_S + 10))
    assert engine.expire_many([(TABLE, key("a"), seen)]) == (0, None)
    assert get(engine, "a") is not None
    engine.execute(ItemOp(OpKind.DELETE, TABLE, key("a"), key_item("a")))
    assert engine.expire_many([(TABLE, key("a"), seen)]) == (0, None)
    assert engine.table_stats(TABLE).ttl_deleted_count == 0


async def test_sync_mode_expires_through_group_commit(tmp_path, clock):
    engine = open_engine(tmp_path / "db", clock, sync=True)
    try:
        for i in range(5):
            await engine.execute_async(
                ItemOp(OpKind.PUT, TABLE, key(f"k{i}"), key_item(f"k{i}"), item={**key_item(f"k{i}"), "exp": n(NOW_S - i - 1)})
            )
        assert await sweeper(engine, clock).sweep() == 5
        assert engine.statistics().pending_writes == 0
        assert scan(engine) == []
    finally:
        await engine.aclose()
    reopened = open_engine(tmp_path / "db", clock)
    try:
        assert reopened.table_stats(TABLE).ttl_deleted_count == 5  # the count is durable
        assert reopened.table_stats(TABLE).item_count == 0
    finally:
        reopened.close()


def test_dropping_a_table_resets_its_count(engine):
    put(engine, "a", exp=n(NOW_S - 10))
    asyncio.run(TtlSweeper(engine, now_ms=lambda: NOW_MS).sweep())
    assert engine.table_stats(TABLE).ttl_deleted_count == 1
    engine.drop_table(TABLE)
    assert engine.table_stats(TABLE).ttl_deleted_count == 0


# --- global tables ------------------------------------------------------------------


def replicated(pk: str, hlc: int, region: str, **attrs: dict) -> Change:
    body = {**key_item(pk), **attrs}
    return Change(0, TABLE, key(pk), VersionStamp(hlc, region), False, orjson.dumps(body), item_size(body))


async def test_only_versions_written_in_this_region_are_expired(engine, clock):
    put(engine, "mine", exp=n(NOW_S - 10))
    put(engine, "overwritten", exp=n(NOW_S - 10))
    newer = (NOW_MS + 1) << LOGICAL_BITS
    assert await engine.apply_replicated(
        [
            replicated("theirs", newer, "eu", exp=n(NOW_S - 10)),
            replicated("overwritten", newer, "eu", exp=n(NOW_S - 10)),
        ]
    ) == [True, True]
    assert await sweeper(engine, clock).sweep() == 1
    assert get(engine, "mine") is None
    assert get(engine, "theirs") is not None and get(engine, "overwritten") is not None


async def test_a_replicated_expiry_stays_the_services(engine, clock):
    put(engine, "a", exp=n(NOW_S - 10))
    later = (NOW_MS + 1) << LOGICAL_BITS
    expiry = Change(0, TABLE, key("a"), VersionStamp(later, "eu"), True, None, 0, by_service=True)
    assert await engine.apply_replicated([expiry]) == [True]
    record = engine._items.get(key("a"))
    assert is_tombstone(record) and is_service_delete(record)
    (logged,) = [c for c in engine.read_changes(0, 10) if c.tombstone]
    assert logged.by_service and logged.stamp == VersionStamp(later, "eu")
    assert engine.table_stats(TABLE).ttl_deleted_count == 0  # counted where it was issued


def test_the_replication_wire_carries_the_services_mark():
    stamp = VersionStamp(123 << LOGICAL_BITS, "us")
    expiry = Change(9, TABLE, key("a"), stamp, True, None, 0, by_service=True)
    client = Change(10, TABLE, key("b"), stamp, True, None, 0)
    assert change_from_pb(change_to_pb(expiry)) == expiry
    assert change_from_pb(change_to_pb(client)) == client
    batch = ReplicationBatch("us", "n1", 8, 10, (expiry, client), 100, 5)
    assert batch_from_pb(batch_to_pb(batch)) == batch


# --- pacing -------------------------------------------------------------------------


async def test_the_deletion_rate_is_bounded(engine, clock):
    for i in range(50):
        put(engine, f"k{i:02}", exp=n(NOW_S - 10))
    rate, burst = 10, 4

    def check(time: VirtualTime) -> None:  # before each wait: never more than a burst ahead of the rate
        assert engine.statistics().ttl_deleted <= burst + rate * time.now_s

    time = VirtualTime(check)
    ttl = sweeper(engine, clock, deletes_per_s_max=rate, burst_max=burst, monotonic_s=time.monotonic_s, sleep=time.sleep)
    assert await ttl.sweep() == 50
    assert time.now_s >= (50 - burst) / rate - 1e-9
    assert time.now_s <= 50 / rate + 1e-9


async def test_disabling_ttl_stops_a_pass_in_progress(engine, clock):
    """The router tells users expiry stops the moment TTL is disabled: a
    pass that is waiting for its deletion rate must not go on deleting."""
    for i in range(50):
        put(engine, f"k{i:02}", exp=n(NOW_S - 10))

    def disable_after_first_burst(time: VirtualTime) -> None:
        if engine.statistics().ttl_deleted >= 4:
            engine.catalog_put(catalog(None, revision=2))

    time = VirtualTime(disable_after_first_burst)
    ttl = sweeper(engine, clock, deletes_per_s_max=10, burst_max=4, monotonic_s=time.monotonic_s, sleep=time.sleep)
    deleted = await ttl.sweep()
    assert deleted == engine.statistics().ttl_deleted < 50
    assert len(scan(engine)) == 50 - deleted


async def test_moving_ttl_to_another_attribute_stops_a_pass_by_the_old_one(engine, clock):
    for i in range(50):
        put(engine, f"k{i:02}", exp=n(NOW_S - 10))

    def move_after_first_burst(time: VirtualTime) -> None:
        if engine.statistics().ttl_deleted >= 4:
            engine.catalog_put(catalog("other", revision=2))

    time = VirtualTime(move_after_first_burst)
    ttl = sweeper(engine, clock, deletes_per_s_max=10, burst_max=4, monotonic_s=time.monotonic_s, sleep=time.sleep)
    assert await ttl.sweep() < 50
    assert await ttl.sweep() == 0  # nothing has an "other" attribute


async def test_chunks_bound_a_sweep_of_a_large_table(engine, clock):
    count = limits.TTL_SWEEP_CHUNK_ITEMS_MAX * 2 + 3
    for i in range(count):
        put(engine, f"k{i:04}", exp=n(NOW_S - 10) if i % 2 else n(NOW_S + 10))
    time = VirtualTime()
    ttl = sweeper(engine, clock, monotonic_s=time.monotonic_s, sleep=time.sleep)
    assert await ttl.sweep() == count // 2
    assert ttl.statistics().items_examined == count
    assert engine.table_stats(TABLE).item_count == count - count // 2


# --- the task -----------------------------------------------------------------------


async def test_the_running_sweeper_expires_items_and_stops(engine, clock):
    ttl = TtlSweeper(engine, interval_s=0.01, now_ms=clock)
    ttl.start()
    try:
        put(engine, "a", exp=n(NOW_S - 10))
        for _ in range(500):
            if get(engine, "a") is None:
                break
            await asyncio.sleep(0.01)
        assert get(engine, "a") is None
        assert "running" in repr(ttl)
    finally:
        await ttl.stop()
    assert "stopped" in repr(ttl)
    put(engine, "b", exp=n(NOW_S - 10))
    await asyncio.sleep(0.05)
    assert get(engine, "b") is not None


def test_bad_settings_are_refused(engine):
    with pytest.raises(ValueError):
        TtlSweeper(engine, interval_s=0)
    with pytest.raises(ValueError):
        TtlSweeper(engine, burst_max=0)
