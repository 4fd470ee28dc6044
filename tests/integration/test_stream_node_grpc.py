"""DynamoDB Streams through the storage seam over gRPC: a real ``meridian node``
process (started with its stream flags), reached by ``GrpcStorage``'s
``stream_shards`` and ``read_stream``."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest

from meridian.cluster.procs import ManagedProcess, free_port, wait_for_port
from meridian.model.errors import TrimmedDataAccessException
from meridian.model.keycodec import encode_item_key
from meridian.model.ops import CatalogEntry, ItemOp, OpKind
from meridian.model.streams import StreamEvent, StreamRead, stream_id_from_label
from meridian.router.storage_grpc import GrpcStorage

TABLE = 5
SCHEMA = [("pk", "S")]
PERIOD_S = 0.5
RETENTION_S = 2.0
NODE_ID = "streams-node"


def _label(now_s: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now_s)) + f".{int(now_s * 1000) % 1000:03d}"


def _op(kind: OpKind, pk: str, **attrs: str) -> ItemOp:
    key_item = {"pk": {"S": pk}}
    item = {**key_item, **{name: {"S": value} for name, value in attrs.items()}} if kind == OpKind.PUT else None
    return ItemOp(kind, TABLE, encode_item_key(TABLE, SCHEMA, key_item), key_item, item=item)


@pytest.fixture
def node(tmp_path):
    port = free_port()
    address = f"127.0.0.1:{port}"
    process = ManagedProcess(
        ["node", "--listen", address, "--data-dir", str(tmp_path / "db"), "--node-id", NODE_ID, "--sync",
         "--stream-shard-period-s", str(PERIOD_S), "--stream-retention-s", str(RETENTION_S)],
        log_path=tmp_path / "node.log",
    )  # fmt: skip
    try:
        wait_for_port("127.0.0.1", port, 30, process=process)
        yield address
    finally:
        process.kill()
        process.wait(10)


async def test_shards_and_records_over_grpc(node):
    storage = GrpcStorage([(NODE_ID, node)])
    try:
        label = _label(time.time())
        stream_id = stream_id_from_label(label)
        description = {
            "table_id": TABLE,
            "key_schema": [list(k) for k in SCHEMA],
            "stream": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
            "stream_label": label,
        }
        await storage.catalog_put(CatalogEntry("streamed", 1, description))
        for op in (_op(OpKind.PUT, "a", v="1"), _op(OpKind.PUT, "a", v="2"), _op(OpKind.DELETE, "a")):
            assert (await storage.call(NODE_ID, op)).error is None
        assert (await storage.call(NODE_ID, _op(OpKind.DELETE, "ghost"))).error is None  # writes nothing

        listed = await storage.stream_shards(NODE_ID, TABLE, stream_id)
        assert listed.latest_sequence == 3
        holding = [s for s in listed.shards if s.last_sequence]
        assert holding and holding[-1].last_sequence == 3
        periods = [s.period for s in listed.shards]
        assert periods == sorted(periods) and periods == list(range(periods[0], periods[-1] + 1))

        found = []
        for shard in listed.shards:
            page = await storage.read_stream(NODE_ID, StreamRead(TABLE, stream_id, shard.period, 0, 1000, 1 << 20))
            found += page.records
        assert [r.event for r in found] == [StreamEvent.INSERT, StreamEvent.MODIFY, StreamEvent.REMOVE]
        assert [r.sequence for r in found] == [1, 2, 3]
        assert orjson.loads(found[1].old_json) == {"pk": {"S": "a"}, "v": {"S": "1"}}
        assert found[2].new_json is None and not found[2].by_service

        # Time moves on: the shards holding records close, a consumer reading
        # them to the end is told so.
        await asyncio.sleep(PERIOD_S * 2.5)
        listed = await storage.stream_shards(NODE_ID, TABLE, stream_id)
        last = max(s.period for s in listed.shards if s.last_sequence)
        closed = {s.period: s.closed for s in listed.shards}
        assert closed[last] and not closed[listed.shards[-1].period]
        page = await storage.read_stream(NODE_ID, StreamRead(TABLE, stream_id, last, 0, 1000, 1 << 20))
        assert page.end_of_shard and page.last_sequence == 3

        # Past the retention, the period reads as trimmed, through the wire.
        await asyncio.sleep(RETENTION_S + PERIOD_S)
        with pytest.raises(TrimmedDataAccessException):
            await storage.read_stream(NODE_ID, StreamRead(TABLE, stream_id, last, 0, 1000, 1 << 20))
        listed = await storage.stream_shards(NODE_ID, TABLE, stream_id)
        assert listed.shards and min(s.period for s in listed.shards) > last
    finally:
        await storage.close()
