"""Backups and point-in-time recovery through the storage seam over gRPC: a real
``meridian node`` process (with ``--pitr-checkpoint-interval-s``) reached by
``GrpcStorage``: checkpoints, the write pause, restores, the PITR window."""

from __future__ import annotations

import asyncio
import time

import grpc
import orjson
import pytest

from meridian.cluster.procs import ManagedProcess, free_port, wait_for_port
from meridian.model.backups import CheckpointInfo, RestoreRequest, RestoreResult
from meridian.model.errors import (
    BackupNotFoundException,
    PointInTimeRecoveryUnavailableException,
    ResourceInUseException,
)
from meridian.model.keycodec import encode_item_key
from meridian.model.ops import CatalogEntry, ItemOp, OpKind
from meridian.proto import replication_pb2 as rpb
from meridian.proto.replication_pb2_grpc import ReplicaNodeStub
from meridian.router.storage_grpc import GrpcStorage

SOURCE, TARGET, TARGET2 = 5, 6, 7
SCHEMA = [("pk", "S")]
NODE_ID = "pitr-node"


def _op(kind: OpKind, pk: str, v: str = "1", table: int = SOURCE) -> ItemOp:
    key_item = {"pk": {"S": pk}}
    item = {**key_item, "v": {"S": v}} if kind == OpKind.PUT else None
    return ItemOp(kind, table, encode_item_key(table, SCHEMA, key_item), key_item, item=item)


def _table(table_id: int, **extra) -> dict:
    return {"table_id": table_id, "key_schema": [list(k) for k in SCHEMA], **extra}


async def _value(storage: GrpcStorage, table: int, pk: str) -> str | None:
    result = await storage.call(NODE_ID, _op(OpKind.GET, pk, table=table))
    return None if result.item_json is None else orjson.loads(result.item_json)["v"]["S"]


@pytest.fixture
def node(tmp_path):
    port = free_port()
    address = f"127.0.0.1:{port}"
    process = ManagedProcess(
        ["node", "--listen", address, "--data-dir", str(tmp_path / "db"), "--node-id", NODE_ID, "--sync",
         "--no-replicator", "--pitr-checkpoint-interval-s", "0.3"],
        log_path=tmp_path / "node.log",
    )  # fmt: skip
    try:
        wait_for_port("127.0.0.1", port, 30, process=process)
        yield address
    finally:
        process.kill()
        process.wait(10)


async def test_checkpoints_holds_and_restores_over_grpc(node):
    storage = GrpcStorage([(NODE_ID, node)])
    try:
        await storage.catalog_put(CatalogEntry("src", 1, _table(SOURCE)))
        for i in range(20):
            assert (await storage.call(NODE_ID, _op(OpKind.PUT, f"k{i}", "before"))).error is None

        # The write pause: a write waits, a read does not, and the write lands after the release.
        await storage.hold_writes(NODE_ID, "cut-1", 5.0)
        write = asyncio.ensure_future(storage.call(NODE_ID, _op(OpKind.PUT, "k0", "held")))
        await asyncio.sleep(0.2)
        assert not write.done()
        assert await _value(storage, SOURCE, "k0") == "before"
        info = await storage.create_checkpoint(NODE_ID, "backup-1")
        await storage.release_writes(NODE_ID, "cut-1")
        assert (await asyncio.wait_for(write, 5)).error is None
        assert await _value(storage, SOURCE, "k0") == "held"
        assert isinstance(info, CheckpointInfo) and info.name == "backup-1" and info.sequence == 20
        assert info.size_bytes > 0 and abs(info.created_ms - time.time() * 1000) < 60_000
        with pytest.raises(ResourceInUseException):
            await storage.create_checkpoint(NODE_ID, "backup-1")

        # A restore from the backup: the state before the held write.
        await storage.catalog_put(CatalogEntry("restored", 1, _table(TARGET)))
        result = await storage.restore_table(NODE_ID, RestoreRequest(SOURCE, TARGET, checkpoint="backup-1"))
        assert isinstance(result, RestoreResult) and result.item_count == 20 and result.size_bytes > 0
        assert await _value(storage, TARGET, "k0") == "before"
        assert (await storage.table_stats(TARGET)).item_count == 20
        with pytest.raises(BackupNotFoundException):
            await storage.restore_table(NODE_ID, RestoreRequest(SOURCE, TARGET, checkpoint="nope"))
        await storage.delete_checkpoint(NODE_ID, "backup-1")
        await storage.delete_checkpoint(NODE_ID, "backup-1")  # nothing left: no error

        # Point in time: no table has PITR yet, so no periodic checkpoint covers now.
        assert await storage.pitr_window(NODE_ID) == 0
        with pytest.raises(PointInTimeRecoveryUnavailableException):
            await storage.restore_table(NODE_ID, RestoreRequest(SOURCE, TARGET2, at_ms=int(time.time() * 1000)))
        await storage.catalog_put(CatalogEntry("src", 2, _table(SOURCE, pitr_enabled_s=time.time(),
                                                                  pitr_recovery_days=35)))  # fmt: skip
        for _ in range(100):  # the node's task takes one within its interval
            window_ms = await storage.pitr_window(NODE_ID)
            if window_ms:
                break
            await asyncio.sleep(0.05)
        assert window_ms > 0
        await asyncio.sleep(0.05)
        assert (await storage.call(NODE_ID, _op(OpKind.PUT, "k1", "kept"))).error is None
        await asyncio.sleep(0.05)
        at_ms = int(time.time() * 1000)
        await asyncio.sleep(0.05)
        assert (await storage.call(NODE_ID, _op(OpKind.DELETE, "k1"))).error is None
        # Replication's garbage collection (the node's TruncateLog) keeps the log after the checkpoint.
        async with grpc.aio.insecure_channel(node) as channel:
            truncated = await ReplicaNodeStub(channel).TruncateLog(rpb.Sequence(sequence=10**9))
        last = (await storage.stream_shards(NODE_ID, SOURCE, 0)).latest_sequence
        assert truncated.sequence <= last - 2  # the put and the delete after the checkpoint are kept
        await storage.catalog_put(CatalogEntry("restored2", 1, _table(TARGET2)))
        await storage.restore_table(NODE_ID, RestoreRequest(SOURCE, TARGET2, at_ms=at_ms))
        assert await _value(storage, TARGET2, "k1") == "kept"
        assert await _value(storage, SOURCE, "k1") is None
        assert (await storage.table_stats(TARGET2)).item_count == 20
    finally:
        await storage.close()
