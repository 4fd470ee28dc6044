"""Restores on one node (``node/restore.py``) and point-in-time recovery's
checkpoints and retention (``node/pitr.py``), on real RocksDB folders."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from meridian.model import limits
from meridian.model.backups import CheckpointInfo, RestoreRequest, pitr_checkpoint_name
from meridian.model.errors import BackupNotFoundException, PointInTimeRecoveryUnavailableException
from meridian.model.keycodec import TABLE_PREFIX_BYTES, prefix_end, table_prefix
from meridian.model.ops import CatalogEntry, IndexSpec, ItemOp, OpKind
from meridian.node.engine import Engine
from meridian.node.gsi import GsiMaintainer
from meridian.node.log_compaction import LogCompactor
from meridian.node.pitr import PitrCheckpointer, periodic_to_delete

SOURCE, TARGET = 7, 8
LSI = {SOURCE: 701, TARGET: 801, 9: 901}
GSI = {SOURCE: 702, TARGET: 802, 9: 902}
DAY_MS = 24 * 60 * 60 * 1000


class Clock:
    def __init__(self, ms: int = 1_000_000) -> None:
        self.ms = ms

    def __call__(self) -> int:
        return self.ms


def description(table_id: int, **extra) -> dict:
    lsi = IndexSpec("by_x", LSI[table_id], False, (("pk", "S"), ("x", "S")), "ALL")
    gsi = IndexSpec("by_g", GSI[table_id], True, (("g", "S"),), "KEYS_ONLY")
    return {
        "table_id": table_id,
        "key_schema": [["pk", "S"], ["sk", "S"]],
        "indexes": [lsi.to_record(), gsi.to_record()],
        **extra,
    }


def create(engine: Engine, name: str, table_id: int, revision: int = 1, **extra) -> None:
    engine.catalog_put(CatalogEntry(name, revision, description(table_id, **extra), False))


def key(table_id: int, pk: str, sk: str = "s") -> bytes:
    return table_prefix(table_id) + pk.encode() + b"\x00\x01" + sk.encode() + b"\x00\x01"


def put(pk: str, v: str, *, x: str | None = None, g: str | None = None) -> ItemOp:
    item = {"pk": {"S": pk}, "sk": {"S": "s"}, "v": {"S": v}}
    if x is not None:
        item["x"] = {"S": x}
    if g is not None:
        item["g"] = {"S": g}
    return ItemOp(OpKind.PUT, SOURCE, key(SOURCE, pk), {"pk": {"S": pk}, "sk": {"S": "s"}}, item=item)


def delete(pk: str) -> ItemOp:
    return ItemOp(OpKind.DELETE, SOURCE, key(SOURCE, pk), {"pk": {"S": pk}, "sk": {"S": "s"}})


def items(engine: Engine, table_id: int) -> dict[bytes, bytes]:
    """Live item records by key without the table prefix."""
    out = {}
    for item_key, record in engine.table_items(table_id, b"", 10**9, 1 << 40):
        out[item_key[TABLE_PREFIX_BYTES:]] = record
    return out


def values(engine: Engine, table_id: int) -> dict[str, str]:
    from meridian.model.records import record_item_json

    return {
        orjson.loads(record_item_json(r))["pk"]["S"]: orjson.loads(record_item_json(r))["v"]["S"]
        for r in items(engine, table_id).values()
    }


def index_entries(engine: Engine, index_id: int) -> list[bytes]:
    start = table_prefix(index_id)
    return [v for k, v in engine._index.items(from_key=start) if k < prefix_end(start)]


async def wait_indexed(engine: Engine) -> None:
    for _ in range(500):
        if all(engine.gsi_position(p.index_id)[0] == engine.last_sequence() for p in engine.indexes.global_indexes()):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the GSI maintainer did not catch up")


@pytest.fixture(params=[False, True], ids=["async-commit", "sync"])
async def engine(request, tmp_path):
    e = Engine(str(tmp_path / "db"), node_id="n1", sync=request.param, now_ms=Clock())
    create(e, "src", SOURCE)
    maintainer = GsiMaintainer(e, owner=lambda partition_hash: "n1")
    maintainer.start()
    yield e
    # Python 3.11's wait_for swallows a cancellation that meets a wake-up
    # (GsiMaintainer.stop right after a catalog change): let the round settle.
    await wait_indexed(e)
    await asyncio.sleep(0.05)
    await maintainer.stop()
    await e.aclose()


async def test_restore_from_a_backup_copies_items_indexes_and_statistics(engine):
    for i in range(300):
        await engine.execute_async(put(f"p{i}", f"v{i}", x=f"x{i % 7}", g=f"g{i % 5}" if i % 2 else None))
    await engine.execute_async(delete("p3"))
    await engine.create_checkpoint("backup-1")
    before = items(engine, SOURCE)
    await engine.execute_async(put("p0", "changed later"))
    await engine.execute_async(delete("p1"))
    create(engine, "restored", TARGET)
    result = await engine.restore_table(RestoreRequest(SOURCE, TARGET, checkpoint="backup-1"))
    restored = items(engine, TARGET)
    assert result.item_count == 299 == len(restored)
    assert values(engine, TARGET)["p0"] == "v0" and "p1" in values(engine, TARGET)
    assert restored == before  # byte for byte, stamps included, as the backup held them
    stats = engine.table_stats(TARGET)
    assert stats.item_count == 299 and stats.size_bytes == result.size_bytes > 0
    assert len(index_entries(engine, LSI[TARGET])) == 299  # every item has x
    assert stats.indexes[LSI[TARGET]].item_count == 299
    await wait_indexed(engine)
    assert len(index_entries(engine, GSI[TARGET])) == sum(1 for i in range(300) if i % 2 and i != 3)
    # The source table is untouched.
    assert values(engine, SOURCE)["p0"] == "changed later" and "p1" not in values(engine, SOURCE)


async def test_a_restore_needs_its_checkpoint_and_its_target(engine):
    create(engine, "restored", TARGET)
    with pytest.raises(BackupNotFoundException):
        await engine.restore_table(RestoreRequest(SOURCE, TARGET, checkpoint="nope"))
    with pytest.raises(PointInTimeRecoveryUnavailableException):
        await engine.restore_table(RestoreRequest(SOURCE, TARGET, at_ms=engine.physical_now_ms()))


async def test_point_in_time_restore_gives_exactly_the_earlier_state(engine):
    clock = engine._now_ms
    for i in range(50):
        await engine.execute_async(put(f"p{i}", "base", x="x"))
    clock.ms += 1000
    checkpoint = await engine.create_checkpoint(pitr_checkpoint_name(clock.ms))
    # Many log entries after the checkpoint, each at its own millisecond.
    for i in range(5000):  # more than one chunk of the log read (RESTORE_BATCH_ITEMS * RESTORE_LOG_CHUNK_FACTOR)
        clock.ms += 1
        await engine.execute_async(put(f"p{i % 60}", f"r{i}", x="x"))
    clock.ms += 1000
    await engine.execute_async(delete("p5"))
    t_between = clock.ms + 500
    clock.ms += 1000
    await engine.execute_async(put("p6", "after the second", x="x"))
    await engine.execute_async(delete("p7"))
    await engine.execute_async(put("p5", "back again", x="x"))
    assert 5000 > limits.RESTORE_BATCH_ITEMS * limits.RESTORE_LOG_CHUNK_FACTOR
    expected = {f"p{i % 60}": f"r{i}" for i in range(5000)}
    del expected["p5"]
    create(engine, "restored", TARGET)
    result = await engine.restore_table(RestoreRequest(SOURCE, TARGET, at_ms=t_between))
    assert values(engine, TARGET) == expected
    assert result.item_count == len(expected) == engine.table_stats(TARGET).item_count
    assert len(index_entries(engine, LSI[TARGET])) == len(expected)
    # A time before the first write after the checkpoint: the checkpoint's state.
    create(engine, "restored2", 9)
    await engine.restore_table(RestoreRequest(SOURCE, 9, at_ms=checkpoint.created_ms))
    assert values(engine, 9) == {f"p{i}": "base" for i in range(50)}


async def test_items_from_the_log_are_written_in_key_order(engine, monkeypatch):
    """RocksDB takes sorted writes faster; the log holds them in write order."""
    clock = engine._now_ms
    await engine.create_checkpoint(pitr_checkpoint_name(clock.ms))
    for i in reversed(range(40)):
        clock.ms += 1
        await engine.execute_async(put(f"p{i:02d}", f"v{i}"))
    await engine.execute_async(delete("p07"))
    written: list[bytes] = []
    apply = engine.apply_replicated_many

    def recording(changes):
        written.extend(change.key for change in changes)
        return apply(changes)

    monkeypatch.setattr(engine, "apply_replicated_many", recording)
    create(engine, "restored", TARGET)
    result = await engine.restore_table(RestoreRequest(SOURCE, TARGET, at_ms=clock.ms + 1))
    assert written == sorted(written) and len(written) == result.item_count == 39
    assert values(engine, TARGET) == {f"p{i:02d}": f"v{i}" for i in range(40) if i != 7}


async def test_a_deleted_tables_history_restores_and_survives_a_restart(tmp_path):
    clock = Clock()
    path = str(tmp_path / "db")
    e = Engine(path, node_id="n1", now_ms=clock)
    create(e, "src", SOURCE)
    await e.create_checkpoint(pitr_checkpoint_name(clock.ms))
    clock.ms += 10
    e.execute(put("a", "1", x="x"))
    clock.ms += 10
    at = clock.ms
    e.drop_table(SOURCE)  # DeleteTable: the items go, the log keeps the history
    await e.aclose()
    e = Engine(path, node_id="n1", now_ms=clock)
    try:
        create(e, "restored", TARGET)
        await e.restore_table(RestoreRequest(SOURCE, TARGET, at_ms=at))
        assert values(e, TARGET) == {"a": "1"}
    finally:
        await e.aclose()


# --- retention ---------------------------------------------------------------------

def test_retention_keeps_the_newest_checkpoint_before_the_period_and_all_newer():

    now = 100 * DAY_MS
    cps = [CheckpointInfo(pitr_checkpoint_name(ms), i, ms, 1) for i, ms in enumerate(
        [now - 40 * DAY_MS, now - 36 * DAY_MS, now - 35 * DAY_MS - 1, now - 10 * DAY_MS, now - 1])]  # fmt: skip
    assert periodic_to_delete(cps, now, 35) == [cps[0].name, cps[1].name]
    assert periodic_to_delete(cps, now, 35, frozenset({cps[0].name})) == [cps[1].name]
    assert periodic_to_delete(cps, now, 1) == [c.name for c in cps[:3]]
    assert periodic_to_delete(cps[-1:], now, 1) == []
    # No table with PITR: all go but the young ones (the router's first one).
    assert periodic_to_delete(cps, now, None) == [c.name for c in cps[:4]]


async def test_the_log_is_kept_after_the_oldest_periodic_checkpoint(tmp_path):
    clock = Clock()
    e = Engine(str(tmp_path / "db"), node_id="n1", now_ms=clock, replicated=False)
    try:
        plain = {"table_id": SOURCE, "key_schema": [["pk", "S"], ["sk", "S"]]}  # no GSI holding the log
        e.catalog_put(CatalogEntry("src", 1, {**plain, "pitr_enabled_s": clock.ms / 1000, "pitr_recovery_days": 1}, False))
        for i in range(10):
            e.execute(put(f"p{i}", "1"))
        checkpointer = PitrCheckpointer(e, interval_s=3600)
        await checkpointer.run_pass()  # none yet: one is taken
        assert [c.sequence for c in e.periodic_checkpoints()] == [10]
        assert e.pitr_window() == clock.ms
        for i in range(10):
            e.execute(put(f"p{i}", "2"))
        compactor = LogCompactor(e, interval_s=1)
        assert compactor.trim() == 10  # not past the checkpoint
        assert e.truncate_log(20) == 10  # replication GC neither
        await checkpointer.run_pass()  # not due yet
        assert len(e.periodic_checkpoints()) == 1
        clock.ms += 3600 * 1000
        await checkpointer.run_pass()
        assert [c.sequence for c in e.periodic_checkpoints()] == [10, 20]
        clock.ms += DAY_MS - 1  # the first is older than the period, but the newest such: kept
        await checkpointer.run_pass()
        assert [c.sequence for c in e.periodic_checkpoints()] == [10, 20, 20]
        clock.ms += 1  # the second is at the period's start now: the first goes
        await checkpointer.run_pass()
        assert [c.sequence for c in e.periodic_checkpoints()] == [20, 20]
        assert compactor.trim() == 20
        # PITR disabled: the history goes (after the grace), and the log with it.
        e.catalog_put(CatalogEntry("src", 2, plain, False))
        await checkpointer.run_pass()
        assert len(e.periodic_checkpoints()) == 1  # the youngest waits out the grace
        clock.ms += int(limits.PITR_ORPHAN_GRACE_S * 1000)
        await checkpointer.run_pass()
        assert e.periodic_checkpoints() == [] and e.pitr_window() == 0
        assert checkpointer.checkpoints_deleted == 3
        e.execute(put("p0", "3"))
        assert compactor.trim() == 21
    finally:
        await e.aclose()


async def test_the_task_runs_on_its_own(tmp_path):
    e = Engine(str(tmp_path / "db"), node_id="n1")
    create(e, "src", SOURCE, pitr_enabled_s=1.0, pitr_recovery_days=35)
    checkpointer = PitrCheckpointer(e, interval_s=0.05)
    checkpointer.start()
    try:
        for _ in range(200):
            if checkpointer.checkpoints_taken >= 2:
                break
            await asyncio.sleep(0.01)
        assert checkpointer.checkpoints_taken >= 2 and checkpointer.failures == 0
    finally:
        await checkpointer.stop()
        await e.aclose()


async def test_a_restore_lets_the_event_loop_run_between_batches(engine, monkeypatch):
    """Without --sync a batch's write does not suspend: the restore itself must yield,
    or a node restoring a large table answers nothing else until it is done."""
    monkeypatch.setattr(limits, "RESTORE_BATCH_ITEMS", 4)
    clock = engine._now_ms
    for i in range(40):
        clock.ms += 1
        await engine.execute_async(put(f"k{i:02d}", f"v{i}"))
    await engine.create_checkpoint(pitr_checkpoint_name(clock.ms))
    for i in range(40, 60):  # and some from the log after it
        clock.ms += 1
        await engine.execute_async(put(f"k{i:02d}", f"v{i}"))
    turns = 0
    done = False

    async def other_work() -> None:
        nonlocal turns
        while not done:
            turns += 1
            await asyncio.sleep(0)

    other = asyncio.create_task(other_work())
    create(engine, "restored", TARGET)
    result = await engine.restore_table(RestoreRequest(SOURCE, TARGET, at_ms=clock.ms + 1))
    done = True
    await other
    assert result.item_count == 60
    assert turns >= 60 // 4  # at least one turn of other work per batch
