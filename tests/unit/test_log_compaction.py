"""A node no replicator reads (``meridian serve``, a one-region cluster):
deletes leave no tombstone, and ``LogCompactor`` trims its change log."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from meridian.model.keycodec import table_prefix
from meridian.model.ops import CatalogEntry, IndexSpec, ItemOp, OpKind, ReturnValues
from meridian.node.engine import Engine
from meridian.node.gsi import GsiMaintainer
from meridian.node.log_compaction import LogCompactor

TABLE = 7


def key(pk: str) -> bytes:
    return table_prefix(TABLE) + pk.encode()


def put(pk: str, **attrs: str) -> ItemOp:
    item = {"pk": {"S": pk}, **{name: {"S": value} for name, value in attrs.items()}}
    return ItemOp(OpKind.PUT, TABLE, key(pk), {"pk": {"S": pk}}, item=item)


def delete(pk: str, **kw) -> ItemOp:
    return ItemOp(OpKind.DELETE, TABLE, key(pk), {"pk": {"S": pk}}, **kw)


def get(pk: str) -> ItemOp:
    return ItemOp(OpKind.GET, TABLE, key(pk), {"pk": {"S": pk}})


@pytest.fixture
def engine(tmp_path):
    e = Engine(str(tmp_path / "db"), node_id="n1", region="us-east-1", replicated=False)
    yield e
    e.close()


def test_a_delete_removes_the_record_instead_of_a_tombstone(engine):
    engine.execute(put("a", v="1"))
    old = engine.execute(delete("a", return_values=ReturnValues.ALL_OLD))
    assert orjson.loads(old.item_json)["v"] == {"S": "1"}
    assert engine.execute(get("a")).item_json is None
    assert engine.table_records(TABLE, b"", 10, 1 << 20) == []  # nothing left behind
    change = list(engine.read_changes(0, 10))[-1]
    assert change.tombstone  # the log still says what happened (GSI maintenance, streams)
    assert engine.table_stats(TABLE).item_count == 0


def test_a_replicated_engine_still_keeps_tombstones(tmp_path):
    e = Engine(str(tmp_path / "db"), node_id="n1", region="us-east-1")
    try:
        e.execute(put("a"))
        e.execute(delete("a"))
        assert len(e.table_records(TABLE, b"", 10, 1 << 20)) == 1
    finally:
        e.close()


async def test_sync_mode_deletes_through_group_commit(tmp_path):
    e = Engine(str(tmp_path / "db"), node_id="n1", region="us-east-1", sync=True, replicated=False)
    try:
        await e.execute_async(put("a"))
        results, durable = e.execute_many([delete("a"), get("a")])
        assert results[1].item_json is None  # the pending delete reads as missing
        if durable is not None:
            await durable
        assert e.execute(get("a")).item_json is None
        assert e.table_records(TABLE, b"", 10, 1 << 20) == []
    finally:
        await e.aclose()


def test_a_trim_keeps_nothing_durable_behind(engine):
    for i in range(50):
        engine.execute(put(f"k{i}"))
    compactor = LogCompactor(engine, interval_s=1)
    assert compactor.trim() == 50
    assert engine.log_base() == 50
    assert list(engine.read_changes(0, 100)) == []
    engine.execute(put("later"))
    assert [c.sequence for c in engine.read_changes(0, 100)] == [51]


async def test_a_trim_keeps_what_a_global_index_maintainer_has_not_read(engine):
    spec = IndexSpec("by_v", 701, True, (("v", "S"),), "ALL")
    engine.catalog_put(CatalogEntry("t", 1, {"table_id": TABLE, "key_schema": [["pk", "S"]],
                                             "indexes": [spec.to_record()]}, False))  # fmt: skip
    for i in range(20):
        engine.execute(put(f"k{i}", v=f"v{i}"))
    # No maintainer has run: the index's cursor holds the log where it was.
    cursor = engine.gsi_position(701)[0]
    assert LogCompactor(engine, interval_s=1).trim() == cursor
    maintainer = GsiMaintainer(engine, owner=lambda partition_hash: "n1")
    maintainer.start()
    try:
        for _ in range(200):
            if engine.gsi_position(701)[0] == engine.last_sequence():
                break
            await asyncio.sleep(0.01)
        assert LogCompactor(engine, interval_s=1).trim() == engine.last_sequence()
    finally:
        await maintainer.stop()


async def test_the_task_trims_periodically(engine):
    for i in range(10):
        engine.execute(put(f"k{i}"))
    compactor = LogCompactor(engine, interval_s=0.01)
    compactor.start()
    try:
        for _ in range(200):
            if engine.log_base() == 10:
                break
            await asyncio.sleep(0.01)
        assert engine.log_base() == 10 and compactor.passes >= 1
    finally:
        await compactor.stop()


def test_a_bad_interval_is_refused(engine):
    with pytest.raises(ValueError):
        LogCompactor(engine, interval_s=0)
