"""DynamoDB Streams on the engine (``node/streams.py``), on a real RocksDB."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest

from meridian.model.changes import Change
from meridian.model.errors import TrimmedDataAccessException
from meridian.model.keycodec import encode_item_key
from meridian.model.ops import CatalogEntry, ItemOp, OpKind, ReturnValues
from meridian.model.records import record_stamp
from meridian.model.stamps import VersionStamp
from meridian.model.streams import StreamEvent, StreamRead, stream_id_from_label
from meridian.model.values import item_size
from meridian.node.database import open_database
from meridian.node.engine import Engine

TABLE = 7
OTHER = 8  # a table without a stream
SCHEMA = [("pk", "S")]
PERIOD_MS = 1000
T0 = 1_800_000_000_000  # a period boundary: T0 % PERIOD_MS == 0
K0 = T0 // PERIOD_MS


class Clock:
    def __init__(self, now_ms: int) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


def label_at(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}"


LABEL = label_at(T0 - 5 * PERIOD_MS)
STREAM = stream_id_from_label(LABEL)
FIRST = STREAM // PERIOD_MS


def entry(table_id: int = TABLE, revision: int = 1, *, label: str | None = LABEL, enabled: bool = True,
          view: str = "NEW_AND_OLD_IMAGES", deleted: bool = False) -> CatalogEntry:  # fmt: skip
    description = {
        "table_id": table_id,
        "key_schema": [list(k) for k in SCHEMA],
        "stream": {"StreamEnabled": True, "StreamViewType": view} if enabled else None,
        "stream_label": label,
    }
    return CatalogEntry(f"t{table_id}", revision, description, deleted)


def key(pk: str, table_id: int = TABLE) -> bytes:
    return encode_item_key(table_id, SCHEMA, {"pk": {"S": pk}})


def item(pk: str, **attrs: str) -> dict:
    return {"pk": {"S": pk}, **{name: {"S": value} for name, value in attrs.items()}}


def put(pk: str, table_id: int = TABLE, **attrs: str) -> ItemOp:
    return ItemOp(OpKind.PUT, table_id, key(pk, table_id), {"pk": {"S": pk}}, item=item(pk, **attrs))


def delete(pk: str, table_id: int = TABLE, **kw) -> ItemOp:
    return ItemOp(OpKind.DELETE, table_id, key(pk, table_id), {"pk": {"S": pk}}, **kw)


def update(pk: str, expression: str, values: dict | None = None) -> ItemOp:
    return ItemOp(OpKind.UPDATE, TABLE, key(pk), {"pk": {"S": pk}}, update=expression, values=values)


def open_engine(path: str, clock: Clock, *, sync: bool = False, retention_s: float = 3600.0) -> Engine:
    return Engine(
        path, node_id="n1", region="us-east-1", sync=sync, now_ms=clock,
        stream_retention_s=retention_s, stream_shard_period_s=PERIOD_MS / 1000,
    )  # fmt: skip


@pytest.fixture
def clock() -> Clock:
    return Clock(T0 + 100)


@pytest.fixture
def path(tmp_path) -> str:
    return str(tmp_path / "db")


@pytest.fixture
def engine(path, clock):
    e = open_engine(path, clock)
    e.catalog_put(entry())
    e.catalog_put(entry(OTHER, enabled=False, label=None))
    yield e
    e.close()


def records(engine: Engine, period: int = K0, after: int = 0, stream_id: int = STREAM, table_id: int = TABLE):
    return engine.read_stream(StreamRead(table_id, stream_id, period, after, 1000, 1 << 20)).records


def events(engine: Engine, period: int = K0) -> list[tuple[StreamEvent, str]]:
    return [(r.event, orjson.loads(r.keys_json)["pk"]["S"]) for r in records(engine, period)]


# --- what a change writes -------------------------------------------------------


def test_insert_modify_remove_with_both_images(engine):
    engine.execute(put("a", v="1"))
    engine.execute(put("a", v="2"))
    engine.execute(delete("a"))
    inserted, modified, removed = records(engine)
    assert inserted.event == StreamEvent.INSERT and inserted.old_json is None
    assert orjson.loads(inserted.new_json) == item("a", v="1")
    assert modified.event == StreamEvent.MODIFY
    assert orjson.loads(modified.old_json) == item("a", v="1") and orjson.loads(modified.new_json) == item("a", v="2")
    assert removed.event == StreamEvent.REMOVE and removed.new_json is None
    assert orjson.loads(removed.old_json) == item("a", v="2") and not removed.by_service
    assert orjson.loads(removed.keys_json) == {"pk": {"S": "a"}}
    assert [r.sequence for r in (inserted, modified, removed)] == [1, 2, 3]  # the change-log sequences
    assert {r.created_ms for r in (inserted, modified, removed)} == {T0 + 100}


def test_a_change_that_changes_nothing_writes_no_record(engine):
    engine.execute(put("a", x="1", y="2"))
    engine.execute(put("a", x="1", y="2"))  # the same bytes
    engine.execute(put("a", y="2", x="1"))  # the same item, attributes in another order
    engine.execute(update("a", "SET x = :x", {":x": {"S": "1"}}))
    assert events(engine) == [(StreamEvent.INSERT, "a")]
    assert engine.last_sequence() == 4  # each was still written and logged


def test_a_delete_of_a_missing_item_writes_nothing_at_all(engine):
    result = engine.execute(delete("ghost", return_values=ReturnValues.ALL_OLD))
    assert result.error is None and result.item_json is None
    engine.execute(put("a"))
    engine.execute(delete("a"))
    engine.execute(delete("a"))  # a tombstone is there now: still missing
    assert engine.last_sequence() == 2
    assert events(engine) == [(StreamEvent.INSERT, "a"), (StreamEvent.REMOVE, "a")]


def test_images_do_not_depend_on_the_view_type(engine):
    engine.catalog_put(entry(revision=2, view="KEYS_ONLY"))
    engine.execute(put("a", v="1"))
    engine.execute(put("a", v="2"))
    modified = records(engine)[-1]
    assert modified.old_json is not None and modified.new_json is not None


def test_a_table_without_a_stream_writes_no_record(engine):
    assert engine.stream_tables() == {TABLE: STREAM}
    engine.execute(put("a", table_id=OTHER))
    assert list(engine._stream.keys()) == []
    assert engine.execute(put("b")).error is None
    assert len(list(engine._stream.keys())) == 1


def test_the_stream_map_follows_the_catalog(engine):
    assert engine.stream_tables() == {TABLE: STREAM}
    label = label_at(T0)
    engine.catalog_put(entry(OTHER, revision=2, label=label))
    assert engine.stream_tables() == {TABLE: STREAM, OTHER: stream_id_from_label(label)}
    engine.catalog_put(entry(revision=2, enabled=False))
    assert engine.stream_tables() == {OTHER: stream_id_from_label(label)}


def test_a_ttl_delete_is_the_services(engine):
    engine.execute(put("a", v="1"))
    stamp = record_stamp(engine._items.get(key("a")))
    assert engine.expire_many([(TABLE, key("a"), stamp)]) == (1, None)
    removed = records(engine)[-1]
    assert removed.event == StreamEvent.REMOVE and removed.by_service


def test_replicated_changes_that_win_write_records(engine):
    body = item("r", v="x")
    change = Change(0, TABLE, key("r"), VersionStamp(1, "eu"), False, orjson.dumps(body), item_size(body))
    older = Change(0, TABLE, key("r"), VersionStamp(0, "ap"), True, None, 0)
    ttl = Change(0, TABLE, key("r"), VersionStamp(T0 << 20, "eu"), True, None, 0, by_service=True)
    ghost = Change(0, TABLE, key("g"), VersionStamp(T0 << 20, "eu"), True, None, 0)
    assert asyncio.run(engine.apply_replicated([change, older, ttl, ghost])) == [True, False, True, True]
    inserted, removed = records(engine)
    assert inserted.event == StreamEvent.INSERT and orjson.loads(inserted.new_json) == body
    assert removed.event == StreamEvent.REMOVE and removed.by_service
    assert engine._items.get(key("g")) is not None  # a replicated tombstone is still stored
    assert engine.last_sequence() == 3


# --- shards -----------------------------------------------------------------------


def test_periods_roll_over_into_a_chain_of_shards(engine, clock):
    engine.execute(put("a"))
    listed = engine.stream_shards(TABLE, STREAM)
    assert [s.period for s in listed.shards] == list(range(FIRST, K0 + 1))
    assert [s.closed for s in listed.shards] == [True] * (K0 - FIRST) + [False]
    assert listed.shards[-1].last_sequence == 1 and listed.latest_sequence == 1
    assert all(s.last_sequence == 0 for s in listed.shards[:-1])  # empty periods are shards too
    clock.now_ms += PERIOD_MS
    engine.execute(put("b"))
    listed = engine.stream_shards(TABLE, STREAM)
    assert [(s.period, s.closed, s.last_sequence) for s in listed.shards[-2:]] == [(K0, True, 1), (K0 + 1, False, 2)]
    page = engine.read_stream(StreamRead(TABLE, STREAM, K0, 0, 1000, 1 << 20))
    assert [r.sequence for r in page.records] == [1] and page.end_of_shard and page.last_sequence == 1
    page = engine.read_stream(StreamRead(TABLE, STREAM, K0 + 1, 0, 1000, 1 << 20))
    assert [r.sequence for r in page.records] == [2] and not page.end_of_shard
    page = engine.read_stream(StreamRead(TABLE, STREAM, K0 + 1, 2, 1000, 1 << 20))
    assert page.records == () and page.last_sequence == 2 and not page.end_of_shard


def test_a_shard_reported_closed_never_grows_even_if_the_clock_steps_back(engine, clock):
    clock.now_ms += PERIOD_MS
    assert engine.stream_shards(TABLE, STREAM).shards[-2].closed  # K0 is closed: time moved on
    clock.now_ms -= PERIOD_MS
    engine.execute(put("a"))
    assert records(engine, K0) == () and [r.sequence for r in records(engine, K0 + 1)] == [1]


def test_reads_stop_at_their_bounds(engine):
    for pk in "abcde":
        engine.execute(put(pk, pad="x" * 100))
    page = engine.read_stream(StreamRead(TABLE, STREAM, K0, 0, 2, 1 << 20))
    assert [r.sequence for r in page.records] == [1, 2] and page.last_sequence == 2 and not page.end_of_shard
    page = engine.read_stream(StreamRead(TABLE, STREAM, K0, 2, 1000, 1))  # the first record always comes
    assert [r.sequence for r in page.records] == [3]
    page = engine.read_stream(StreamRead(TABLE, STREAM, K0, 0, 1000, 500))
    assert 1 <= len(page.records) < 5


def test_a_disabled_stream_closes_its_shards_and_a_new_one_starts(engine, clock):
    engine.execute(put("a"))
    engine.catalog_put(entry(revision=2, enabled=False))
    engine.execute(put("b"))  # no stream: no record
    listed = engine.stream_shards(TABLE, STREAM)
    assert listed.shards[-1].period == K0 and all(s.closed for s in listed.shards)
    clock.now_ms += 3 * PERIOD_MS
    assert engine.stream_shards(TABLE, STREAM).shards[-1].period == K0  # it ended in K0
    page = engine.read_stream(StreamRead(TABLE, STREAM, K0, 0, 1000, 1 << 20))
    assert [r.sequence for r in page.records] == [1] and page.end_of_shard
    label = label_at(clock.now_ms)
    engine.catalog_put(entry(revision=3, label=label))
    engine.execute(put("c"))
    new = stream_id_from_label(label)
    listed = engine.stream_shards(TABLE, new)
    assert [(s.period, s.closed, s.last_sequence) for s in listed.shards] == [(K0 + 3, False, 3)]


def test_a_deleted_table_closes_its_stream(engine):
    engine.execute(put("a"))
    engine.catalog_put(entry(revision=2, deleted=True))
    assert all(s.closed for s in engine.stream_shards(TABLE, STREAM).shards)
    assert [r.sequence for r in records(engine)] == [1]  # still readable within retention


def test_a_stream_this_node_has_not_heard_of_is_open(engine):
    unknown = stream_id_from_label(label_at(T0))
    listed = engine.stream_shards(99, unknown)
    assert [(s.period, s.closed) for s in listed.shards] == [(K0, False)]


# --- retention ----------------------------------------------------------------------


def test_trimmed_periods_raise_and_go(path, clock):
    engine = open_engine(path, clock, retention_s=3.0)
    try:
        engine.catalog_put(entry())
        engine.execute(put("a"))
        clock.now_ms += PERIOD_MS
        engine.execute(put("b"))
        clock.now_ms += 3 * PERIOD_MS  # K0 ended 3.9 s ago; K0 + 1 2.9 s ago
        with pytest.raises(TrimmedDataAccessException):
            records(engine, K0)
        assert [r.sequence for r in records(engine, K0 + 1)] == [2]
        assert engine.stream_shards(TABLE, STREAM).shards[0].period == K0 + 1
        assert engine.trim_streams() == 1
        assert engine.trim_streams() == 0
        assert len(list(engine._stream.keys())) == 1  # K0 + 1's record is left
        clock.now_ms += PERIOD_MS
        assert engine.trim_streams() == 1
        assert list(engine._stream.keys()) == []
        with pytest.raises(TrimmedDataAccessException):
            records(engine, K0 + 1)
    finally:
        engine.close()


def test_a_trim_point_survives_a_longer_retention(path, clock):
    engine = open_engine(path, clock, retention_s=1.0)
    engine.catalog_put(entry())
    engine.execute(put("a"))
    clock.now_ms += 3 * PERIOD_MS
    assert engine.trim_streams() == 1
    engine.close()
    engine = open_engine(path, clock, retention_s=3600.0)
    try:
        for period in (K0, K0 + 1):  # trimmed through K0 + 1: it ended 2.1 s before the trim
            with pytest.raises(TrimmedDataAccessException):
                records(engine, period)
        assert engine.stream_shards(TABLE, STREAM).shards[0].period == K0 + 2
        assert records(engine, K0 + 2) == ()
    finally:
        engine.close()


def test_the_trim_forgets_ended_streams_with_nothing_left(path, clock):
    engine = open_engine(path, clock, retention_s=1.0)
    try:
        engine.catalog_put(entry())
        engine.execute(put("a"))
        engine.catalog_put(entry(revision=2, enabled=False))
        clock.now_ms += 3 * PERIOD_MS
        assert engine.trim_streams() == 1
        left = [k for k, _ in engine._meta.items(from_key=b"stream/") if k.startswith(b"stream/")]
        assert left == [b"stream/f", b"stream/p"]  # no end or trim point of the stream is left
        assert engine.stream_shards(TABLE, STREAM).shards == ()
    finally:
        engine.close()


# --- durability --------------------------------------------------------------------


def test_sync_mode_shows_and_closes_durable_records_only(path, clock):
    async def run() -> None:
        engine = open_engine(path, clock, sync=True)
        try:
            engine.catalog_put(entry())
            results, durable = engine.execute_many([put("a")])
            assert durable is not None and results[0].error is None
            assert records(engine) == ()  # applied, not yet durable
            clock.now_ms += PERIOD_MS
            listed = engine.stream_shards(TABLE, STREAM)
            assert listed.latest_sequence == 0
            assert (listed.shards[-2].period, listed.shards[-2].closed, listed.shards[-2].last_sequence) == (K0, False, 0)
            await durable
            listed = engine.stream_shards(TABLE, STREAM)
            assert (listed.shards[-2].closed, listed.shards[-2].last_sequence) == (True, 1)
            page = engine.read_stream(StreamRead(TABLE, STREAM, K0, 0, 1000, 1 << 20))
            assert [r.sequence for r in page.records] == [1] and page.end_of_shard
            # A group still open in K0 + 1 does not keep K0 open.
            results, durable = engine.execute_many([put("b")])
            assert engine.stream_shards(TABLE, STREAM).shards[-2].closed
            await durable
        finally:
            await engine.aclose()

    asyncio.run(run())


def test_records_and_periods_survive_a_restart(path, clock):
    engine = open_engine(path, clock)
    engine.catalog_put(entry())
    clock.now_ms += 2 * PERIOD_MS
    engine.execute(put("a"))
    engine.close()
    clock.now_ms -= 2 * PERIOD_MS  # the clock went back while the node was down
    engine = open_engine(path, clock)
    try:
        assert [r.sequence for r in records(engine, K0 + 2)] == [1]
        engine.execute(put("b"))
        assert [r.sequence for r in records(engine, K0 + 2)] == [1, 2]  # never a lower period
        assert engine.stream_shards(TABLE, STREAM).shards[-1].period == K0 + 2
    finally:
        engine.close()


def test_a_shard_reported_closed_stays_closed_across_a_restart(path, clock):
    engine = open_engine(path, clock)
    engine.catalog_put(entry())
    clock.now_ms += PERIOD_MS
    assert engine.stream_shards(TABLE, STREAM).shards[-2].closed  # K0, empty, closed by time
    engine.close()
    clock.now_ms -= PERIOD_MS
    engine = open_engine(path, clock)
    try:
        engine.execute(put("a"))
        assert records(engine, K0) == () and [r.sequence for r in records(engine, K0 + 1)] == [1]
    finally:
        engine.close()


def test_a_data_folder_from_before_streams_opens(path, clock):
    db = open_database(path)
    db.drop_column_family("stream")
    db.close()
    del db
    engine = open_engine(path, clock)
    try:
        engine.catalog_put(entry())
        engine.execute(put("a"))
        assert [r.sequence for r in records(engine)] == [1]
    finally:
        engine.close()


def test_stream_options_must_be_positive(path, clock):
    with pytest.raises(ValueError):
        Engine(path, node_id="n1", stream_retention_s=0)
    with pytest.raises(ValueError):
        Engine(path, node_id="n1", stream_shard_period_s=-1)
