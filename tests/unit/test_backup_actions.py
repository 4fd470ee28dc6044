"""The backup and PITR actions in one process: one engine, or three behind a fake seam.

What the black-box tests (tests/compat/test_backups*.py) cannot reach: the
table records the nodes read (``pitr_*``), backup records hidden from
ListTables and surviving a router restart (a new catalog over the same
nodes), a consistent cut across several nodes, a restore spread over
several nodes, SYSTEM backups expiring, and BackupInUseException while a
restore runs.
"""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest

from meridian.model.errors import BackupInUseException, DynamoError, TableInUseException, ValidationException
from meridian.model.ring import Ring
from meridian.node.engine import Engine
from meridian.router import restore
from meridian.router.actions import ACTIONS
from meridian.router.backup_catalog import BackupCatalog
from meridian.router.catalog import Catalog
from meridian.router.context import RouterContext
from meridian.router.validation import validate_request

from meridian.router.storage_embedded import EmbeddedStorage
from tests.unit.backup_seam import ThreeNodes


async def call(ctx: RouterContext, action: str, body: dict) -> dict:
    validate_request(action, body)
    answer = await ACTIONS[action](ctx, body)
    return orjson.loads(answer) if isinstance(answer, bytes) else answer  # Query and Scan splice JSON bytes


async def _context(storage, shared: bool = False) -> RouterContext:
    catalog = Catalog(storage, "us-east-1", shared=shared)
    await catalog.start()
    return RouterContext(storage=storage, catalog=catalog, ring=Ring(storage.node_ids), region="us-east-1",
                         address="127.0.0.1:0")


async def _create(ctx: RouterContext, name: str, gsi: bool = True) -> None:
    body = {
        "TableName": name, "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"},
                                 {"AttributeName": "g", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
    }
    if gsi:
        body["GlobalSecondaryIndexes"] = [{"IndexName": "by_g", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                                           "Projection": {"ProjectionType": "ALL"}}]
    else:
        body["AttributeDefinitions"] = body["AttributeDefinitions"][:1]
    await call(ctx, "CreateTable", body)


async def _put(ctx: RouterContext, name: str, key: str, g: str = "x") -> None:
    await call(ctx, "PutItem", {"TableName": name, "Item": {"id": {"S": key}, "g": {"S": g}}})


async def _keys(ctx: RouterContext, name: str) -> list[str]:
    out = await call(ctx, "Scan", {"TableName": name, "ConsistentRead": True})
    return sorted(item["id"]["S"] for item in out["Items"])


async def _finish_restores(ctx: RouterContext, name: str) -> None:
    await restore.wait_all()
    assert (await call(ctx, "DescribeTable", {"TableName": name}))["Table"]["TableStatus"] == "ACTIVE"


@pytest.fixture
async def one(tmp_path):
    engine = Engine(str(tmp_path / "data"), node_id="embedded", region="us-east-1")
    ctx = await _context(EmbeddedStorage(engine))
    yield ctx
    await restore.wait_all()
    await ctx.catalog.stop()
    await ctx.storage.close()


@pytest.fixture
async def three(tmp_path):
    storage = ThreeNodes(tmp_path)
    ctx = await _context(storage)
    yield ctx
    await restore.wait_all()
    await ctx.catalog.stop()
    await storage.close()


async def test_pitr_fields_are_what_the_nodes_read(one):
    await _create(one, "tbl")
    answer = await call(one, "UpdateContinuousBackups", {
        "TableName": "tbl", "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True,
                                                               "RecoveryPeriodInDays": 3}})
    pitr = answer["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]
    assert pitr["RecoveryPeriodInDays"] == 3
    engine = one.storage.engine
    assert list(engine.pitr_tables().values()) == [3]
    assert [info.name.startswith("pitr-") for info in engine.checkpoints()] == [True]
    assert pitr["EarliestRestorableDateTime"] >= engine.checkpoints()[0].created_ms / 1000
    await call(one, "UpdateContinuousBackups", {
        "TableName": "tbl", "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": False}})
    assert engine.pitr_tables() == {}


async def test_backups_are_hidden_from_list_tables_and_survive_a_new_router(one):
    await _create(one, "tbl")
    await _put(one, "tbl", "a")
    arn = (await call(one, "CreateBackup", {"TableName": "tbl", "BackupName": "bkp"}))["BackupDetails"]["BackupArn"]
    assert (await call(one, "ListTables", {}))["TableNames"] == ["tbl"]
    again = await _context(one.storage)  # another router over the same nodes
    assert again.catalog.names() == ["tbl"]
    summaries = (await call(again, "ListBackups", {}))["BackupSummaries"]
    assert [s["BackupArn"] for s in summaries] == [arn]
    await again.catalog.stop()


async def test_restore_in_progress(one, monkeypatch):
    await _create(one, "tbl")
    await _put(one, "tbl", "a")
    arn = (await call(one, "CreateBackup", {"TableName": "tbl", "BackupName": "bkp"}))["BackupDetails"]["BackupArn"]
    gate = asyncio.Event()
    real = one.storage.restore_table

    async def slow(node_id, request):
        await gate.wait()
        return await real(node_id, request)

    monkeypatch.setattr(one.storage, "restore_table", slow)
    answer = await call(one, "RestoreTableFromBackup", {"TargetTableName": "rst", "BackupArn": arn})
    assert answer["TableDescription"]["RestoreSummary"]["RestoreInProgress"] is True
    assert "backup_id" not in answer["TableDescription"]["RestoreSummary"]
    described = (await call(one, "DescribeTable", {"TableName": "rst"}))["Table"]
    assert described["TableStatus"] == "CREATING" and described["RestoreSummary"]["SourceBackupArn"] == arn
    with pytest.raises(BackupInUseException) as info:
        await call(one, "DeleteBackup", {"BackupArn": arn})
    assert info.value.message == f"Backup is being used to restore table: {arn}"
    with pytest.raises(BackupInUseException) as info:
        await call(one, "RestoreTableFromBackup", {"TargetTableName": "rs2", "BackupArn": arn})
    assert info.value.message == f"Backup is being used to restore another table: {arn}"
    with pytest.raises(TableInUseException) as info:
        await call(one, "RestoreTableFromBackup", {"TargetTableName": "rst", "BackupArn": arn})
    assert info.value.message == f"Table: rst is already being restored from backup: {arn}"
    with pytest.raises(DynamoError) as err:
        await call(one, "CreateBackup", {"TableName": "rst", "BackupName": "bkp"})
    assert err.value.type_name == "TableNotFoundException" and err.value.message == "Table not found: rst"
    with pytest.raises(DynamoError) as err:
        await call(one, "DeleteTable", {"TableName": "rst"})
    assert err.value.type_name == "ResourceInUseException"
    gate.set()
    await _finish_restores(one, "rst")
    assert await _keys(one, "rst") == ["a"]
    assert "RestoreSummary" not in (await call(one, "DescribeTable", {"TableName": "rst"}))["Table"]
    await call(one, "DeleteBackup", {"BackupArn": arn})


async def test_system_backups_expire(one, monkeypatch):
    await _create(one, "tbl")
    await call(one, "UpdateContinuousBackups", {
        "TableName": "tbl", "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True}})
    await call(one, "DeleteTable", {"TableName": "tbl"})
    [system] = (await call(one, "ListBackups", {"BackupType": "SYSTEM"}))["BackupSummaries"]
    with pytest.raises(ValidationException) as info:
        await call(one, "DeleteBackup", {"BackupArn": system["BackupArn"]})
    assert info.value.message.startswith(
        f"Invalid Request: User is not allowed to delete the system backup with arn {system['BackupArn']}. "
        "It will automatically expire on ")
    later = system["BackupExpiryDateTime"] + 1
    monkeypatch.setattr(time, "time", lambda: later)
    assert (await call(one, "ListBackups", {"BackupType": "ALL"}))["BackupSummaries"] == []
    assert await BackupCatalog(one.storage).all() == []
    assert [info.name for info in one.storage.engine.checkpoints() if not info.name.startswith("pitr-")] == []


async def test_a_cut_and_a_restore_across_three_nodes(three):
    await _create(three, "tbl")
    keys = [f"k{i:03d}" for i in range(60)]
    for key in keys:
        await _put(three, "tbl", key, g="even" if int(key[1:]) % 2 == 0 else "odd")
    assert all(engine.table_stats(three.catalog.get_cached("tbl").table_id).item_count for engine in three.storage.engines)
    arn = (await call(three, "CreateBackup", {"TableName": "tbl", "BackupName": "bkp"}))["BackupDetails"]["BackupArn"]
    backup_id = arn.rsplit("/", 1)[1]
    assert all(engine.checkpoint(backup_id) is not None for engine in three.storage.engines)
    assert three.storage.holds == 3 and three.storage.released == 3  # every node paused, then released
    for key in keys[:30]:
        await call(three, "DeleteItem", {"TableName": "tbl", "Key": {"id": {"S": key}}})
    await call(three, "RestoreTableFromBackup", {"TargetTableName": "rst", "BackupArn": arn})
    await _finish_restores(three, "rst")
    assert await _keys(three, "rst") == keys
    evens = await call(three, "Query", {"TableName": "rst", "IndexName": "by_g", "KeyConditionExpression": "g = :g",
                                        "ExpressionAttributeValues": {":g": {"S": "even"}}})
    assert evens["Count"] == 30
    # Point in time across three nodes.
    await call(three, "UpdateContinuousBackups", {
        "TableName": "tbl", "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True}})
    await asyncio.sleep(0.01)
    noted = time.time()
    await asyncio.sleep(0.01)
    for key in keys[30:40]:
        await call(three, "DeleteItem", {"TableName": "tbl", "Key": {"id": {"S": key}}})
    await call(three, "RestoreTableToPointInTime", {"SourceTableName": "tbl", "TargetTableName": "pit",
                                                    "RestoreDateTime": noted})
    await _finish_restores(three, "pit")
    assert await _keys(three, "pit") == keys[30:]
    await call(three, "DeleteBackup", {"BackupArn": arn})
    assert all(engine.checkpoint(backup_id) is None for engine in three.storage.engines)


async def test_a_failed_cut_leaves_no_checkpoint(three):
    await _create(three, "tbl", gsi=False)
    three.storage.fail_checkpoint_on = three.storage.node_ids[1]
    with pytest.raises(DynamoError) as err:
        await call(three, "CreateBackup", {"TableName": "tbl", "BackupName": "bkp"})
    assert err.value.type_name == "InternalServerError"
    assert all(engine.checkpoints() == [] for engine in three.storage.engines)
    assert three.storage.released == three.storage.holds
    assert (await call(three, "ListBackups", {}))["BackupSummaries"] == []



async def test_the_window_follows_the_recovery_period(one, monkeypatch):
    await _create(one, "tbl")
    answer = await call(one, "UpdateContinuousBackups", {
        "TableName": "tbl", "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True,
                                                                 "RecoveryPeriodInDays": 1}})
    enabled_s = answer["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]["EarliestRestorableDateTime"]
    later = enabled_s + 2 * 86400
    monkeypatch.setattr(time, "time", lambda: later)
    pitr = (await call(one, "DescribeContinuousBackups", {"TableName": "tbl"}))["ContinuousBackupsDescription"]
    window = pitr["PointInTimeRecoveryDescription"]
    assert window["LatestRestorableDateTime"] == round(later, 3)
    assert window["EarliestRestorableDateTime"] == round(later - 86400, 3)
    with pytest.raises(DynamoError) as err:
        await call(one, "RestoreTableToPointInTime", {"SourceTableName": "tbl", "TargetTableName": "old",
                                                      "RestoreDateTime": enabled_s})
    assert err.value.type_name == "InvalidRestoreTimeException"
