"""The storage engine on a real RocksDB in a temporary folder."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from meridian.model import limits
from meridian.model.errors import ConditionalCheckFailedException, InternalServerError, ValidationException
from meridian.model.keycodec import table_prefix
from meridian.model.ops import CatalogEntry, ItemOp, OpKind, ReturnValues
from meridian.model.stamps import VersionStamp
from meridian.model.values import item_size
from meridian.node.engine import Engine

TABLE = 7


class Clock:
    """A settable millisecond clock."""

    def __init__(self, now_ms: int = 1_000_000) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


def key(pk: str, table_id: int = TABLE) -> bytes:
    return table_prefix(table_id) + pk.encode()


def item(pk: str, **attrs: str) -> dict:
    out = {"pk": {"S": pk}}
    out.update({name: {"S": value} for name, value in attrs.items()})
    return out


def put(pk: str, table_id: int = TABLE, **kw) -> ItemOp:
    attrs = kw.pop("attrs", {})
    return ItemOp(OpKind.PUT, table_id, key(pk, table_id), {"pk": {"S": pk}}, item=item(pk, **attrs), **kw)


def get(pk: str, table_id: int = TABLE, **kw) -> ItemOp:
    return ItemOp(OpKind.GET, table_id, key(pk, table_id), {"pk": {"S": pk}}, **kw)


def delete(pk: str, table_id: int = TABLE, **kw) -> ItemOp:
    return ItemOp(OpKind.DELETE, table_id, key(pk, table_id), {"pk": {"S": pk}}, **kw)


def update(pk: str, table_id: int = TABLE, **kw) -> ItemOp:
    return ItemOp(OpKind.UPDATE, table_id, key(pk, table_id), {"pk": {"S": pk}}, **kw)


@pytest.fixture
def path(tmp_path) -> str:
    return str(tmp_path / "db")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def engine(path, clock):
    e = Engine(path, node_id="n1", region="us-east-1", now_ms=clock)
    yield e
    e.close()


# --- single operations -------------------------------------------------------


def test_get_returns_the_stored_json_bytes(engine):
    assert engine.execute(put("a", attrs={"v": "x"})).item_json is None
    result = engine.execute(get("a"))
    assert result.error is None
    assert result.item_json == orjson.dumps(item("a", v="x"))


def test_get_missing_item_is_none(engine):
    assert engine.execute(get("nothing")).item_json is None


def test_put_returns_all_old_only_when_asked(engine):
    engine.execute(put("a", attrs={"v": "1"}))
    assert engine.execute(put("a", attrs={"v": "2"})).item_json is None
    old = engine.execute(put("a", attrs={"v": "3"}, return_values=ReturnValues.ALL_OLD))
    assert orjson.loads(old.item_json) == item("a", v="2")


def test_delete_leaves_a_stamped_tombstone(engine):
    engine.execute(put("a"))
    old = engine.execute(delete("a", return_values=ReturnValues.ALL_OLD))
    assert orjson.loads(old.item_json) == item("a")
    assert engine.execute(get("a")).item_json is None
    change = list(engine.read_changes(0, 10))[-1]
    assert change.tombstone and change.item_json is None
    assert change.stamp.region == "us-east-1"
    assert engine.execute(delete("a", return_values=ReturnValues.ALL_OLD)).item_json is None


def test_delete_of_a_missing_item_writes_nothing(engine):
    """DynamoDB writes nothing then: no tombstone, no change-log record."""
    result = engine.execute(delete("ghost", return_values=ReturnValues.ALL_OLD))
    assert result.error is None and result.item_json is None and result.size_bytes == 0
    assert engine.last_sequence() == 0
    assert engine.table_stats(TABLE).item_count == 0
    assert engine.table_records(TABLE, b"", 10, 1 << 20) == []  # no tombstone either


def test_update_without_expression_creates_the_key_only_item(engine):
    result = engine.execute(update("a", return_values=ReturnValues.ALL_NEW))
    assert orjson.loads(result.item_json) == item("a")
    assert engine.table_stats(TABLE).item_count == 1


@pytest.mark.parametrize(
    ("expression", "values"),
    [("REMOVE a", None), ("REMOVE a, b.c, d[0]", None), ("DELETE s :s", {":s": {"SS": ["x"]}})],
    ids=["remove", "remove-nested", "delete-set-members"],
)
@pytest.mark.parametrize("return_values", [ReturnValues.ALL_NEW, ReturnValues.UPDATED_NEW, ReturnValues.ALL_OLD])
def test_update_that_only_removes_creates_no_item(engine, expression, values, return_values):
    result = engine.execute(update("a", update=expression, values=values, return_values=return_values))
    assert result.error is None and result.item_json is None
    assert engine.execute(get("a")).item_json is None
    assert engine.last_sequence() == 0  # no change-log record
    assert list(engine.read_changes(0, 10)) == []
    assert engine.table_stats(TABLE).item_count == 0
    assert engine.table_stats(TABLE).size_bytes == 0
    assert engine.statistics().writes == 0


def test_update_that_only_removes_after_a_delete_creates_no_item(engine):
    engine.execute(put("a", attrs={"v": "1"}))
    engine.execute(delete("a"))
    result = engine.execute(update("a", update="REMOVE v", return_values=ReturnValues.ALL_NEW))
    assert result.error is None and result.item_json is None
    assert engine.execute(get("a")).item_json is None
    assert engine.last_sequence() == 2
    assert engine.table_stats(TABLE).item_count == 0


async def test_update_that_only_removes_awaits_nothing_in_sync_mode(path):
    e = Engine(path, node_id="n1", sync=True)
    try:
        results, durable = e.execute_many([update("a", update="REMOVE v")])
        assert results[0].error is None and durable is None
        assert e.last_sequence() == 0
    finally:
        e.close()


@pytest.mark.parametrize(
    ("expression", "values", "created"),
    [
        ("REMOVE a SET b = :v", {":v": {"S": "x"}}, {"b": {"S": "x"}}),
        ("ADD n :one", {":one": {"N": "1"}}, {"n": {"N": "1"}}),
        ("ADD s :s DELETE t :s", {":s": {"SS": ["x"]}}, {"s": {"SS": ["x"]}}),
    ],
    ids=["remove-and-set", "add", "add-and-delete"],
)
def test_update_that_writes_an_attribute_creates_the_item(engine, expression, values, created):
    result = engine.execute(update("a", update=expression, values=values, return_values=ReturnValues.ALL_NEW))
    assert orjson.loads(result.item_json) == {"pk": {"S": "a"}, **created}
    assert engine.last_sequence() == 1
    assert engine.table_stats(TABLE).item_count == 1


def test_failed_condition_on_a_removing_update_of_a_missing_item(engine):
    result = engine.execute(update("a", update="REMOVE v", condition="attribute_exists(pk)"))
    assert isinstance(result.error, ConditionalCheckFailedException)
    assert engine.last_sequence() == 0


# --- change log, stamps, statistics -----------------------------------------


def test_every_write_is_logged_with_increasing_sequence_and_stamp(engine):
    engine.execute(put("a", attrs={"v": "1"}))
    engine.execute(put("b"))
    engine.execute(delete("a"))
    engine.execute(get("b"))  # reads are not logged
    changes = list(engine.read_changes(0, 100))
    assert [c.sequence for c in changes] == [1, 2, 3]
    assert [c.key for c in changes] == [key("a"), key("b"), key("a")]
    assert all(c.table_id == TABLE for c in changes)
    assert changes[0].item_json == orjson.dumps(item("a", v="1"))
    assert changes[0].stamp.hlc < changes[1].stamp.hlc < changes[2].stamp.hlc
    assert isinstance(changes[0].stamp, VersionStamp)
    assert [c.sequence for c in engine.read_changes(1, 1)] == [2]
    assert list(engine.read_changes(3, 10)) == []


def test_sequence_stamps_and_stats_survive_reopen(path, clock):
    e = Engine(path, node_id="n1", now_ms=clock)
    for pk in "abc":
        e.execute(put(pk, attrs={"v": pk * 10}))
    e.execute(delete("b"))
    last_stamp = list(e.read_changes(0, 10))[-1].stamp
    stats = e.table_stats(TABLE)
    e.close()

    clock.now_ms -= 60_000  # the wall clock stepped back while the node was down
    e = Engine(path, node_id="n1", now_ms=clock)
    try:
        assert e.last_sequence() == 4
        assert e.table_stats(TABLE) == stats
        assert stats.item_count == 2
        assert stats.size_bytes == item_size(item("a", v="a" * 10)) + item_size(item("c", v="c" * 10))
        e.execute(put("d"))
        change = list(e.read_changes(4, 10))[0]
        assert change.sequence == 5
        assert change.stamp.hlc > last_stamp.hlc
    finally:
        e.close()


def test_stats_follow_overwrites_and_deletes(engine):
    engine.execute(put("a", attrs={"v": "short"}))
    engine.execute(put("a", attrs={"v": "a much longer value"}))
    engine.execute(put("b"))
    stats = engine.table_stats(TABLE)
    assert stats.item_count == 2
    assert stats.size_bytes == item_size(item("a", v="a much longer value")) + item_size(item("b"))
    engine.execute(delete("a"))
    assert engine.table_stats(TABLE).size_bytes == item_size(item("b"))
    assert engine.table_stats(TABLE + 1).item_count == 0


# --- tables and catalog -------------------------------------------------------


def test_drop_table_deletes_only_that_table(engine):
    for pk in "abc":
        engine.execute(put(pk))
        engine.execute(put(pk, table_id=TABLE + 1))
    engine.drop_table(TABLE)
    assert all(engine.execute(get(pk)).item_json is None for pk in "abc")
    assert all(engine.execute(get(pk, table_id=TABLE + 1)).item_json is not None for pk in "abc")
    assert engine.table_stats(TABLE).item_count == 0
    assert engine.table_stats(TABLE + 1).item_count == 3


def test_catalog_keeps_the_newest_revision(path):
    e = Engine(path, node_id="n1")
    e.catalog_put(CatalogEntry("users", 2, {"TableName": "users", "KeySchema": []}))
    e.catalog_put(CatalogEntry("users", 1, {"TableName": "stale"}))
    e.catalog_put(CatalogEntry("orders", 5, {"TableName": "orders"}, deleted=True))
    e.close()
    e = Engine(path, node_id="n1")
    try:
        entries = {c.name: c for c in e.catalog_list()}
        assert entries["users"] == CatalogEntry("users", 2, {"TableName": "users", "KeySchema": []})
        assert entries["orders"].deleted
    finally:
        e.close()


# --- group commit -------------------------------------------------------------


async def test_writes_of_one_tick_share_one_synced_batch(path):
    e = Engine(path, node_id="n1", sync=True)
    try:
        results = await asyncio.gather(*(e.execute_async(put(f"k{i}")) for i in range(100)))
        assert all(r.error is None for r in results)
        stats = e.statistics()
        assert stats.commits == 1
        assert stats.commit_writes_max == 100
        assert stats.pending_writes == 0
        assert stats.last_sequence == 100
    finally:
        await e.aclose()
    e = Engine(path, node_id="n1")
    try:
        assert e.table_stats(TABLE).item_count == 100
        assert e.execute(get("k99")).item_json is not None
    finally:
        e.close()


async def test_a_group_is_bounded(path):
    e = Engine(path, node_id="n1", sync=True)
    try:
        n = limits.GROUP_COMMIT_WRITES_MAX + 10
        await asyncio.gather(*(e.execute_async(put(f"k{i}")) for i in range(n)))
        assert e.statistics().commits == 2
        assert e.statistics().commit_writes_max == limits.GROUP_COMMIT_WRITES_MAX
    finally:
        await e.aclose()


async def test_later_ops_of_a_tick_see_earlier_writes_once_durable(path):
    e = Engine(path, node_id="n1", sync=True)
    try:
        results, durable = e.execute_many([put("a", attrs={"v": "1"}), get("a"), delete("a"), get("a")])
        assert durable is not None and not durable.done()
        assert e.statistics().pending_writes == 1
        await durable
        assert orjson.loads(results[1].item_json) == item("a", v="1")
        assert results[3].item_json is None
        # A read of durable state needs no wait.
        results, durable = e.execute_many([get("a")])
        assert durable is None
        assert e.statistics().commits == 1
    finally:
        await e.aclose()


async def test_writes_arriving_during_an_fsync_join_the_next_group(path):
    e = Engine(path, node_id="n1", sync=True)
    try:

        async def writer(n: int) -> None:
            for i in range(20):
                assert (await e.execute_async(put(f"w{n}-{i}"))).error is None

        await asyncio.gather(*(writer(n) for n in range(10)))
        stats = e.statistics()
        assert stats.writes == 200
        assert stats.commits <= 21  # one group per round of writers, give or take the first
    finally:
        await e.aclose()


def test_execute_in_sync_mode_outside_a_loop_is_durable(path):
    e = Engine(path, node_id="n1", sync=True)
    e.execute(put("a"))
    assert e.statistics().commits == 1
    e.close()
    e = Engine(path, node_id="n1")
    try:
        assert e.execute(get("a")).item_json is not None
    finally:
        e.close()


class _FailingDb:
    """Wraps the RocksDB handle so that writes fail like a full disk."""

    def __init__(self, db) -> None:
        self._db = db

    def write(self, *args) -> None:
        raise Exception("IO error: No space left on device")

    def __getattr__(self, name):
        return getattr(self._db, name)


async def test_a_failed_write_stops_the_engine(path):
    e = Engine(path, node_id="n1", sync=True)
    try:
        assert (await e.execute_async(put("a"))).error is None
        e._db = _FailingDb(e._db)
        results = await asyncio.gather(e.execute_async(put("b")), e.execute_async(get("a")))
        assert isinstance(results[0].error, InternalServerError)
        assert isinstance((await e.execute_async(get("a"))).error, InternalServerError)
        e._db = e._db._db
    finally:
        e.close()


# --- expressions ----------------------------------------------------------------


def test_condition_failure_returns_the_old_item_when_asked(engine):
    engine.execute(put("a", attrs={"v": "1"}))
    cond = "attribute_not_exists(pk)"
    plain = engine.execute(put("a", condition=cond))
    assert isinstance(plain.error, ConditionalCheckFailedException)
    assert plain.error.item is None
    with_old = engine.execute(put("a", condition=cond, return_old_on_condition_failure=True))
    assert with_old.error.item == item("a", v="1")
    assert engine.execute(put("new", condition=cond)).error is None
    assert engine.last_sequence() == 2  # failed conditions write nothing


def test_conditional_delete_and_update(engine):
    engine.execute(put("a", attrs={"v": "1"}))
    values = {":v": {"S": "2"}}
    failed = engine.execute(delete("a", condition="v = :v", values=values))
    assert isinstance(failed.error, ConditionalCheckFailedException)
    ok = engine.execute(
        update("a", update="SET v = :v", condition="attribute_exists(pk)", values=values,
               return_values=ReturnValues.UPDATED_OLD)
    )
    assert ok.error is None
    assert orjson.loads(ok.item_json) == {"v": {"S": "1"}}
    assert engine.execute(delete("a", condition="v = :v", values=values)).error is None


@pytest.mark.parametrize(
    ("return_values", "expected"),
    [
        (ReturnValues.NONE, None),
        (ReturnValues.ALL_OLD, item("a", v="1", w="x")),
        (ReturnValues.ALL_NEW, item("a", v="2", w="x")),
        (ReturnValues.UPDATED_OLD, {"v": {"S": "1"}}),
        (ReturnValues.UPDATED_NEW, {"v": {"S": "2"}}),
    ],
    ids=lambda v: v.name if isinstance(v, ReturnValues) else "",
)
def test_update_return_values(engine, return_values, expected):
    engine.execute(put("a", attrs={"v": "1", "w": "x"}))
    result = engine.execute(
        update("a", update="SET v = :v", values={":v": {"S": "2"}}, return_values=return_values)
    )
    assert result.error is None
    assert (None if result.item_json is None else orjson.loads(result.item_json)) == expected


def test_update_of_a_missing_item_updated_old_is_empty(engine):
    result = engine.execute(
        update("a", update="SET v = :v", values={":v": {"S": "2"}}, return_values=ReturnValues.UPDATED_OLD)
    )
    assert result.error is None and result.item_json is None
    assert orjson.loads(engine.execute(get("a")).item_json) == item("a", v="2")


def test_update_past_the_item_size_limit_is_rejected(engine):
    engine.execute(put("a", attrs={"v": "x" * (limits.ITEM_SIZE_BYTES_MAX - 100)}))
    result = engine.execute(update("a", update="SET w = :w", values={":w": {"S": "y" * 200}}))
    assert isinstance(result.error, ValidationException)
    assert result.error.message == "Item size to update has exceeded the maximum allowed size"
    assert engine.last_sequence() == 1


def test_get_with_projection(engine):
    engine.execute(put("a", attrs={"v": "1", "w": "2"}))
    result = engine.execute(get("a", projection="#w", names={"#w": "w"}))
    assert orjson.loads(result.item_json) == {"w": {"S": "2"}}


def test_invalid_expression_is_returned_not_raised(engine):
    result = engine.execute(update("a", update="SET = oops"))
    assert isinstance(result.error, ValidationException)
