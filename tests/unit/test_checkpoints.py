"""Checkpoints of a node's database and the write pause (``node/checkpoints.py``),
on real RocksDB folders."""

from __future__ import annotations

import asyncio
import os

import orjson
import pytest

from meridian.model.backups import CheckpointInfo, RestoreRequest, check_checkpoint_name
from meridian.model.errors import BackupInUseException, ResourceInUseException
from meridian.model.keycodec import table_prefix
from meridian.model.ops import ItemOp, OpKind
from meridian.model.records import record_item_json
from meridian.node.engine import Engine
from meridian.node.restore import open_checkpoint

TABLE = 7


def key(pk: str) -> bytes:
    return table_prefix(TABLE) + pk.encode()


def put(pk: str, v: str = "1") -> ItemOp:
    return ItemOp(OpKind.PUT, TABLE, key(pk), {"pk": {"S": pk}}, item={"pk": {"S": pk}, "v": {"S": v}})


def get(pk: str) -> ItemOp:
    return ItemOp(OpKind.GET, TABLE, key(pk), {"pk": {"S": pk}})


def value(engine: Engine, pk: str) -> str | None:
    result = engine.execute(get(pk))
    return None if result.item_json is None else orjson.loads(result.item_json)["v"]["S"]


def checkpoint_items(engine: Engine, name: str) -> dict[bytes, bytes]:
    db = open_checkpoint(engine.checkpoint_path(name))
    try:
        items = db.get_column_family("items")
        out = dict(items.items())
        del items
        return out
    finally:
        db.close()


@pytest.fixture(params=[False, True], ids=["async-commit", "sync"])
async def engine(request, tmp_path):
    e = Engine(str(tmp_path / "db"), node_id="n1", sync=request.param)
    yield e
    await e.aclose()


async def test_a_checkpoint_holds_every_write_before_it_and_none_after(engine):
    for i in range(100):
        await engine.execute_async(put(f"k{i}", "before"))
    info = await engine.create_checkpoint("b1")
    await engine.execute_async(put("k0", "after"))
    await engine.execute_async(put("late", "after"))
    assert isinstance(info, CheckpointInfo) and info.name == "b1"
    assert info.sequence == 100 and info.size_bytes > 0
    snapshot = checkpoint_items(engine, "b1")
    assert len(snapshot) == 100 and key("late") not in snapshot
    assert orjson.loads(record_item_json(snapshot[key("k0")]))["v"] == {"S": "before"}
    assert value(engine, "k0") == "after"  # the live database went on


async def test_writes_staged_in_an_open_group_are_in_the_checkpoint(tmp_path):
    e = Engine(str(tmp_path / "db"), node_id="n1", sync=True)
    try:
        results, durable = e.execute_many([put(f"k{i}") for i in range(10)])
        assert durable is not None and not durable.done()  # still in the open group
        info = await e.create_checkpoint("c")
        assert durable.done()
        assert info.sequence == 10 and len(checkpoint_items(e, "c")) == 10
        # A write applied while the checkpoint is being taken waits behind it, and is not in it.
        task = asyncio.ensure_future(e.create_checkpoint("d"))
        await asyncio.sleep(0)
        await e.execute_async(put("during"))
        assert (await task).sequence == 10
        assert key("during") not in checkpoint_items(e, "d")
    finally:
        await e.aclose()


async def test_checkpoints_survive_a_restart_and_deletion_is_durable(tmp_path):
    path = str(tmp_path / "db")
    e = Engine(path, node_id="n1")
    e.execute(put("a"))
    first = await e.create_checkpoint("keep")
    await e.create_checkpoint("drop")
    assert e.delete_checkpoint("drop") is True
    assert e.delete_checkpoint("drop") is False
    await e.aclose()
    # A checkpoint a crash interrupted: a folder without its manifest.
    os.makedirs(os.path.join(path, "checkpoints", "half", "x"))
    e = Engine(path, node_id="n1")
    try:
        assert e.checkpoints() == [first]
        assert not os.path.exists(os.path.join(path, "checkpoints", "half"))
        assert list(checkpoint_items(e, "keep")) == [key("a")]
        with pytest.raises(ResourceInUseException):
            await e.create_checkpoint("keep")
    finally:
        await e.aclose()


def test_checkpoint_names_are_folder_names():
    assert check_checkpoint_name("01700000000000-abcdef01") == "01700000000000-abcdef01"
    for bad in ("", ".hidden", "..", "a/b", "a b", "a.json", "x" * 200):
        with pytest.raises(ValueError):
            check_checkpoint_name(bad)
    with pytest.raises(ValueError):
        RestoreRequest(1, 2)  # neither a checkpoint nor a time
    with pytest.raises(ValueError):
        RestoreRequest(1, 2, checkpoint="a", at_ms=5)


async def test_a_checkpoint_a_restore_reads_cannot_be_deleted(engine):
    await engine.create_checkpoint("busy")
    engine._checkpoints_in_use["busy"] = 1
    with pytest.raises(BackupInUseException):
        engine.delete_checkpoint("busy")
    del engine._checkpoints_in_use["busy"]
    assert engine.delete_checkpoint("busy")


# --- the write pause --------------------------------------------------------------


async def test_held_writes_wait_and_run_in_order_after_the_release_reads_go_on(engine):
    await engine.execute_async(put("a", "0"))
    engine.hold_writes("t1", 5)
    assert engine.writes_held
    writes = [asyncio.ensure_future(engine.execute_released(put("a", str(i)))) for i in range(1, 6)]
    await asyncio.sleep(0.05)
    assert not any(w.done() for w in writes)
    assert value(engine, "a") == "0"  # reads are not held
    info = await engine.create_checkpoint("cut")  # a checkpoint while held: none of the held writes
    assert engine.release_writes("t1") is True
    assert not engine.writes_held
    results = await asyncio.gather(*writes)
    assert all(r.error is None for r in results)
    assert value(engine, "a") == "5"  # applied in arrival order: the last one wins
    assert [c.sequence for c in engine.read_changes(info.sequence, 10)] == list(range(2, 7))
    assert engine.writes_held_total == 5


async def test_every_hold_must_be_released(engine):
    engine.hold_writes("t1", 5)
    engine.hold_writes("t2", 5)
    write = asyncio.ensure_future(engine.execute_released(put("a")))
    engine.release_writes("t1")
    await asyncio.sleep(0.02)
    assert not write.done()
    assert engine.release_writes("t1") is False  # already released
    engine.release_writes("t2")
    assert (await write).error is None


async def test_a_hold_ends_on_its_own_after_the_timeout(engine):
    engine.hold_writes("forgotten", 0.05)
    write = asyncio.ensure_future(engine.execute_released(put("a")))
    await asyncio.sleep(0.01)
    assert not write.done()
    assert (await asyncio.wait_for(write, 2)).error is None
    assert not engine.writes_held and value(engine, "a") == "1"
    with pytest.raises(ValueError):
        engine.hold_writes("t", 0)


async def test_the_embedded_seam_holds_writes_on_both_paths(engine):
    from meridian.router.storage_embedded import EmbeddedStorage

    storage = EmbeddedStorage(engine, pitr_checkpoint_interval_s=3600)
    node = engine.node_id
    try:
        await storage.hold_writes(node, "t", 5)
        general = asyncio.ensure_future(storage.call(node, put("a", "general")))
        await asyncio.sleep(0)  # it arrives (queues) first
        result, durable = storage.execute_now(put("a", "fast"))  # the router's fast path
        assert durable is not None
        fast = asyncio.ensure_future(storage.settle(result, durable))
        read = await storage.call(node, get("a"))  # reads go on
        assert read.item_json is None and storage.execute_now(get("a"))[1] is None
        await asyncio.sleep(0.02)
        assert not general.done() and not fast.done()
        await storage.release_writes(node, "t")
        assert (await general).error is None and (await fast).error is None
        assert value(engine, "a") == "fast"  # in arrival order
        info = await storage.create_checkpoint(node, "x")
        assert info.sequence == engine.last_sequence() and await storage.pitr_window(node) == 0
        await storage.delete_checkpoint(node, "x")
        assert engine.checkpoints() == []
    finally:
        await storage.pitr.stop()
        await storage.indexer.stop()
        await storage.sweeper.stop()
        await storage.trimmer.stop()
