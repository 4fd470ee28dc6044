"""A real storage node process, reached through ``GrpcStorage``."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import time

import orjson
import pytest

from meridian.model import limits
from meridian.model.errors import ConditionalCheckFailedException, DynamoError, ServiceUnavailable
from meridian.model.keycodec import table_prefix
from meridian.model.ops import CatalogEntry, ItemOp, OpKind, ReturnValues
from meridian.router.storage_grpc import GrpcStorage

TABLE = 3
_START_TIMEOUT_S = 15.0
_NODE_MAIN = (
    "import sys; from meridian.node.server import run_node; "
    "run_node(listen=sys.argv[1], data_dir=sys.argv[2], sync=sys.argv[3] == 'sync', "
    "node_id='node-under-test', region='eu-west-1')"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NodeProcess:
    """A ``run_node`` subprocess on 127.0.0.1; always killed by its fixture."""

    def __init__(self, data_dir: str, *, sync: bool) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.sync = sync
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        mode = "sync" if self.sync else "async"
        self.proc = subprocess.Popen([sys.executable, "-c", _NODE_MAIN, self.address, self.data_dir, mode])
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "node process exited during start"
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"node on {self.address} did not start")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def terminate(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(10)


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    n = NodeProcess(str(tmp_path_factory.mktemp("node") / "db"), sync=False)
    n.start()
    yield n
    n.kill()


@pytest.fixture
def restartable_node(tmp_path):
    n = NodeProcess(str(tmp_path / "db"), sync=True)
    n.start()
    yield n
    n.kill()


@pytest.fixture
async def storage(node):
    s = GrpcStorage([(node.address, node.address)])
    yield s
    await s.close()


def op(kind: OpKind, pk: str, **kw) -> ItemOp:
    key_item = {"pk": {"S": pk}}
    return ItemOp(kind, TABLE, table_prefix(TABLE) + pk.encode(), key_item, **kw)


def put(pk: str, value: str = "v", **kw) -> ItemOp:
    return op(OpKind.PUT, pk, item={"pk": {"S": pk}, "v": {"S": value}}, **kw)


async def test_round_trip(storage):
    node_id = storage.node_ids[0]
    assert (await storage.call(node_id, put("a", "1"))).item_json is None
    got = await storage.call(node_id, op(OpKind.GET, "a"))
    assert got.item_json == orjson.dumps({"pk": {"S": "a"}, "v": {"S": "1"}})
    old = await storage.call(node_id, op(OpKind.DELETE, "a", return_values=ReturnValues.ALL_OLD))
    assert orjson.loads(old.item_json) == {"pk": {"S": "a"}, "v": {"S": "1"}}
    assert (await storage.call(node_id, op(OpKind.GET, "a"))).item_json is None


async def test_calls_of_one_tick_travel_in_one_message(storage):
    node_id = storage.node_ids[0]
    await storage.call(node_id, put("warm"))  # stream open
    before = storage.statistics()[0]
    results = await asyncio.gather(*(storage.call(node_id, put(f"b{i}", str(i))) for i in range(50)))
    assert all(r.error is None for r in results)
    after = storage.statistics()[0]
    assert after.batches_sent - before.batches_sent == 1
    assert after.ops_sent - before.ops_sent == 50
    n = limits.STORAGE_BATCH_OPS_MAX + 1
    got = await asyncio.gather(*(storage.call(node_id, op(OpKind.GET, f"b{i % 50}")) for i in range(n)))
    assert [orjson.loads(r.item_json)["v"]["S"] for r in got] == [str(i % 50) for i in range(n)]
    assert storage.statistics()[0].batches_sent - after.batches_sent == 2
    assert storage.statistics()[0].inflight_ops == 0


async def test_operation_errors_come_back_as_results(storage):
    node_id = storage.node_ids[0]
    await storage.call(node_id, put("c", "old"))
    result = await storage.call(
        node_id, put("c", "new", condition="attribute_not_exists(pk)", return_old_on_condition_failure=True)
    )
    assert isinstance(result.error, ConditionalCheckFailedException)
    assert result.error.message == "The conditional request failed"
    assert result.error.item == {"pk": {"S": "c"}, "v": {"S": "old"}}


async def test_catalog_stats_and_drop(storage):
    node_id = storage.node_ids[0]
    await storage.catalog_put(CatalogEntry("t1", 3, {"TableName": "t1", "ItemCount": 0}))
    await storage.catalog_put(CatalogEntry("t1", 2, {"TableName": "stale"}))
    entries = {e.name: e for e in await storage.catalog_list()}
    assert entries["t1"] == CatalogEntry("t1", 3, {"TableName": "t1", "ItemCount": 0})
    other = ItemOp(OpKind.PUT, TABLE + 1, table_prefix(TABLE + 1) + b"x", {"pk": {"S": "x"}}, item={"pk": {"S": "x"}})
    await storage.call(node_id, other)
    assert (await storage.table_stats(TABLE + 1)).item_count == 1
    await storage.drop_table(TABLE + 1)
    assert (await storage.table_stats(TABLE + 1)).item_count == 0


async def test_no_node_listening_is_service_unavailable():
    s = GrpcStorage([("gone", f"127.0.0.1:{free_port()}")])
    try:
        with pytest.raises(ServiceUnavailable):
            await s.call(s.node_ids[0], put("a"))
        with pytest.raises(ServiceUnavailable):  # within the backoff: fails fast
            await s.call(s.node_ids[0], put("a"))
        with pytest.raises(ServiceUnavailable):
            await s.table_stats(TABLE)
    finally:
        await s.close()


async def test_killed_node_fails_calls_and_a_restarted_one_is_found_again(restartable_node):
    s = GrpcStorage([(restartable_node.address, restartable_node.address)])
    node_id = s.node_ids[0]
    try:
        assert (await s.call(node_id, put("durable", "yes"))).error is None
        restartable_node.kill()
        with pytest.raises(DynamoError) as failure:
            await s.call(node_id, op(OpKind.GET, "durable"))
        assert failure.value.status >= 500  # retried by the SDKs
        restartable_node.start()
        deadline = time.monotonic() + 2 * limits.NODE_RECONNECT_BACKOFF_S_MAX + 5
        while True:
            try:
                got = await s.call(node_id, op(OpKind.GET, "durable"))
                break
            except DynamoError:
                assert time.monotonic() < deadline, "no reconnect"
                await asyncio.sleep(0.05)
        assert orjson.loads(got.item_json)["v"] == {"S": "yes"}
        stats = s.statistics()[0]
        assert stats.streams_opened >= 2 and stats.stream_failures >= 1
    finally:
        await s.close()
    assert restartable_node.terminate() == 0  # SIGTERM: graceful stop
