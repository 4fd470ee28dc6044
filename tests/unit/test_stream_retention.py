"""The stream trimmer task (``node/stream_retention.py``) and the embedded
storage seam's stream calls."""

from __future__ import annotations

import asyncio
import time

import pytest

from meridian.model import limits
from meridian.model.keycodec import encode_item_key
from meridian.model.ops import CatalogEntry, ItemOp, OpKind
from meridian.model.streams import StreamEvent, StreamRead, stream_id_from_label
from meridian.node.engine import Engine
from meridian.node.stream_retention import StreamTrimmer, trim_interval_s
from meridian.router.storage_embedded import EmbeddedStorage

TABLE = 4
SCHEMA = [("pk", "S")]


def _catalog() -> tuple[CatalogEntry, int]:
    now_s = time.time()
    label = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now_s)) + f".{int(now_s * 1000) % 1000:03d}"
    description = {
        "table_id": TABLE,
        "key_schema": [list(k) for k in SCHEMA],
        "stream": {"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"},
        "stream_label": label,
    }
    return CatalogEntry("t", 1, description), stream_id_from_label(label)


def _put(pk: str) -> ItemOp:
    key_item = {"pk": {"S": pk}}
    return ItemOp(OpKind.PUT, TABLE, encode_item_key(TABLE, SCHEMA, key_item), key_item, item=key_item)


def test_trim_interval_follows_short_retentions():
    assert trim_interval_s(limits.STREAM_RETENTION_S_DEFAULT) == limits.STREAM_TRIM_INTERVAL_S
    assert trim_interval_s(2.0) == 2.0 * limits.STREAM_TRIM_INTERVAL_FRACTION


async def test_the_trimmer_deletes_expired_periods(tmp_path):
    engine = Engine(str(tmp_path / "db"), node_id="n", stream_retention_s=0.2, stream_shard_period_s=0.05)
    trimmer = StreamTrimmer(engine)
    try:
        entry, _ = _catalog()
        engine.catalog_put(entry)
        engine.execute(_put("a"))
        assert len(list(engine._stream.keys())) == 1
        trimmer.start()
        deadline = time.monotonic() + 5
        while list(engine._stream.keys()) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert list(engine._stream.keys()) == [] and trimmer.streams_trimmed == 1 and trimmer.failures == 0
    finally:
        await trimmer.stop()
        await engine.aclose()


def test_a_trim_interval_must_be_positive(tmp_path):
    engine = Engine(str(tmp_path / "db"), node_id="n")
    try:
        with pytest.raises(ValueError):
            StreamTrimmer(engine, interval_s=0)
    finally:
        engine.close()


async def test_embedded_storage_serves_stream_calls(tmp_path):
    engine = Engine(str(tmp_path / "db"), node_id="embedded", stream_shard_period_s=3600)
    storage = EmbeddedStorage(engine)
    try:
        entry, stream_id = _catalog()
        await storage.catalog_put(entry)
        assert (await storage.call("embedded", _put("a"))).error is None
        listed = await storage.stream_shards("embedded", TABLE, stream_id)
        assert [s.last_sequence for s in listed.shards] == [1] and listed.latest_sequence == 1
        page = await storage.read_stream("embedded", StreamRead(TABLE, stream_id, listed.shards[0].period, 0, 10, 1 << 20))
        assert [r.event for r in page.records] == [StreamEvent.INSERT] and not page.end_of_shard
        assert "StreamTrimmer" in repr(storage)
    finally:
        await storage.close()
