"""Point-in-time recovery, black-box (boto3), embedded and cluster: issue 13's "Done when".

Enable PITR, write, note the time, delete items (or the whole table) by
mistake, restore to the second before, and get the data back, index
queries included.  Servers run with the default checkpoint interval: the
checkpoint PITR takes when it is enabled is where these restores start.
"""

from __future__ import annotations

import datetime
import math
import time

import pytest
from botocore.exceptions import ClientError

from helpers import expect_error, unique_name

GSI = {
    "IndexName": "by_color",
    "KeySchema": [{"AttributeName": "color", "KeyType": "HASH"}],
    "Projection": {"ProjectionType": "ALL"},
}
LSI = {
    "IndexName": "by_size",
    "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}, {"AttributeName": "size", "KeyType": "RANGE"}],
    "Projection": {"ProjectionType": "KEYS_ONLY"},
}


@pytest.fixture
def restored(ddb):
    """Names of restore targets, deleted when the test ends."""
    names: list[str] = []
    yield names
    for name in names:
        try:
            ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
            ddb.delete_table(TableName=name)
        except ClientError:
            pass


def _make_indexed(ddb) -> str:
    name = unique_name("pitr")
    ddb.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": t}
                              for a, t in (("id", "S"), ("n", "N"), ("color", "S"), ("size", "N"))],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}, {"AttributeName": "n", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[GSI], LocalSecondaryIndexes=[LSI],
    )
    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    return name


def _enable(ddb, name: str, **spec) -> dict:
    answer = ddb.update_continuous_backups(
        TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True, **spec})
    return answer["ContinuousBackupsDescription"]


def _item(i: int, color: str) -> dict:
    return {"id": {"S": f"k{i % 3}"}, "n": {"N": str(i)}, "color": {"S": color}, "size": {"N": str(10 * i)}}


def _scan(ddb, name: str) -> list[dict]:
    items = ddb.scan(TableName=name, ConsistentRead=True)["Items"]
    return sorted(items, key=lambda item: (item["id"]["S"], int(item["n"]["N"])))


def _wait_active(ddb, name: str) -> dict:
    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    return ddb.describe_table(TableName=name)["Table"]


def _query_color(ddb, name: str, color: str) -> list[dict]:
    items = ddb.query(TableName=name, IndexName="by_color", KeyConditionExpression="color = :c",
                      ExpressionAttributeValues={":c": {"S": color}})["Items"]
    return sorted(items, key=lambda item: int(item["n"]["N"]))


def test_continuous_backups_lifecycle(ddb, table):
    name = table()
    described = ddb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
    assert described == {"ContinuousBackupsStatus": "ENABLED",
                         "PointInTimeRecoveryDescription": {"PointInTimeRecoveryStatus": "DISABLED"}}
    before = datetime.datetime.now(datetime.timezone.utc)
    enabled = _enable(ddb, name)
    pitr = enabled["PointInTimeRecoveryDescription"]
    assert pitr["PointInTimeRecoveryStatus"] == "ENABLED" and pitr["RecoveryPeriodInDays"] == 35
    assert before - datetime.timedelta(seconds=1) <= pitr["EarliestRestorableDateTime"] <= pitr["LatestRestorableDateTime"]
    # Enabling again changes nothing; a new period applies in place.
    again = _enable(ddb, name, RecoveryPeriodInDays=7)["PointInTimeRecoveryDescription"]
    assert again["RecoveryPeriodInDays"] == 7
    assert again["EarliestRestorableDateTime"] == pitr["EarliestRestorableDateTime"]
    described = ddb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
    assert described["PointInTimeRecoveryDescription"]["RecoveryPeriodInDays"] == 7
    disabled = ddb.update_continuous_backups(
        TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": False})
    assert disabled["ContinuousBackupsDescription"] == {
        "ContinuousBackupsStatus": "ENABLED", "PointInTimeRecoveryDescription": {"PointInTimeRecoveryStatus": "DISABLED"}}
    # Re-enabled: a new window, and the default period again (DDB-TABLE-084).
    time.sleep(0.01)
    reenabled = _enable(ddb, name)["PointInTimeRecoveryDescription"]
    assert reenabled["RecoveryPeriodInDays"] == 35
    assert reenabled["EarliestRestorableDateTime"] > pitr["EarliestRestorableDateTime"]


def test_restore_items_deleted_by_mistake(ddb, restored):
    """The seed's advice: enable PITR, delete items by mistake, restore to the second before."""
    name = _make_indexed(ddb)
    try:
        _enable(ddb, name)
        for i in range(6):
            ddb.put_item(TableName=name, Item=_item(i, "red" if i % 2 else "blue"))
        before = _scan(ddb, name)
        reds_before = _query_color(ddb, name, "red")
        time.sleep(1.1)
        noted = time.time()
        time.sleep(1.1)
        for item in before[:4]:  # the mistake
            ddb.delete_item(TableName=name, Key={"id": item["id"], "n": item["n"]})
        ddb.put_item(TableName=name, Item=_item(99, "red"))
        ddb.update_item(TableName=name, Key={"id": before[4]["id"], "n": before[4]["n"]},
                        UpdateExpression="SET color = :c", ExpressionAttributeValues={":c": {"S": "green"}})
        target = unique_name("restored")
        restored.append(target)
        answer = ddb.restore_table_to_point_in_time(
            SourceTableName=name, TargetTableName=target,
            RestoreDateTime=datetime.datetime.fromtimestamp(math.floor(noted), datetime.timezone.utc))
        description = answer["TableDescription"]
        assert description["TableStatus"] == "CREATING"
        assert description["RestoreSummary"]["RestoreInProgress"] is True
        assert description["RestoreSummary"]["SourceTableArn"].endswith(f":table/{name}")
        assert [i["IndexName"] for i in description["GlobalSecondaryIndexes"]] == ["by_color"]
        active = _wait_active(ddb, target)
        assert "RestoreSummary" not in active  # gone once ACTIVE (DDB-TABLE-216)
        assert _scan(ddb, target) == before
        assert _query_color(ddb, target, "red") == reds_before
        by_size = ddb.query(TableName=target, IndexName="by_size", KeyConditionExpression="id = :k",
                            ExpressionAttributeValues={":k": {"S": "k1"}})["Items"]
        assert sorted(int(i["size"]["N"]) for i in by_size) == sorted(
            int(i["size"]["N"]) for i in before if i["id"]["S"] == "k1")
        assert active["ItemCount"] == len(before)
        # Not restored: PITR itself (and streams, TTL, tags).
        pitr = ddb.describe_continuous_backups(TableName=target)["ContinuousBackupsDescription"]
        assert pitr["PointInTimeRecoveryDescription"] == {"PointInTimeRecoveryStatus": "DISABLED"}
        # The source is untouched; the latest restorable time gives its current state.
        latest = unique_name("latest")
        restored.append(latest)
        ddb.restore_table_to_point_in_time(SourceTableName=name, TargetTableName=latest, UseLatestRestorableTime=True)
        _wait_active(ddb, latest)
        assert _scan(ddb, latest) == _scan(ddb, name)
    finally:
        ddb.delete_table(TableName=name)


def test_restore_a_deleted_table_from_its_system_backup(ddb, restored):
    name = _make_indexed(ddb)
    _enable(ddb, name)
    for i in range(5):
        ddb.put_item(TableName=name, Item=_item(i, "red"))
    before = _scan(ddb, name)
    ddb.delete_table(TableName=name)  # the whole table, by mistake
    expect_error(ddb.describe_table, "ResourceNotFoundException", TableName=name)
    assert ddb.list_backups(TableName=name)["BackupSummaries"] == []  # USER by default
    summaries = ddb.list_backups(TableName=name, BackupType="SYSTEM")["BackupSummaries"]
    assert len(summaries) == 1
    system = summaries[0]
    assert system["BackupName"] == f"{name}$DeletedTableBackup" and system["BackupType"] == "SYSTEM"
    assert system["BackupArn"].endswith("-00000000")
    expiry = system["BackupExpiryDateTime"] - system["BackupCreationDateTime"]
    assert expiry == datetime.timedelta(days=35)
    described = ddb.describe_backup(BackupArn=system["BackupArn"])["BackupDescription"]
    assert described["SourceTableFeatureDetails"] == {}
    assert described["SourceTableDetails"]["TableName"] == name
    expect_error(ddb.delete_backup, "ValidationException", BackupArn=system["BackupArn"])
    target = unique_name("undeleted")
    restored.append(target)
    ddb.restore_table_from_backup(TargetTableName=target, BackupArn=system["BackupArn"])
    _wait_active(ddb, target)
    assert _scan(ddb, target) == before
    assert _query_color(ddb, target, "red") == sorted(before, key=lambda item: int(item["n"]["N"]))


def test_restore_to_point_in_time_errors(ddb, table, restored):
    name = table()
    target = unique_name("dst")
    expect_error(ddb.restore_table_to_point_in_time, "PointInTimeRecoveryUnavailableException",
                 f"Point in time recovery is not enabled for table '{name}'",
                 SourceTableName=name, TargetTableName=target, UseLatestRestorableTime=True)
    missing = unique_name("missing")
    expect_error(ddb.restore_table_to_point_in_time, "TableNotFoundException", f"Table not found: {missing}",
                 SourceTableName=missing, TargetTableName=target, UseLatestRestorableTime=True)
    expect_error(ddb.restore_table_to_point_in_time, "TableNotFoundException", "Table not found",
                 SourceTableArn=f"arn:aws:dynamodb:us-east-1:000000000000:table/{missing}", TargetTableName=target,
                 UseLatestRestorableTime=True)
    _enable(ddb, name)
    expect_error(ddb.restore_table_to_point_in_time, "TableAlreadyExistsException", f"Table already exists: {name}",
                 SourceTableName=name, TargetTableName=name, UseLatestRestorableTime=True)
    an_hour_ago = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1)
    err = expect_error(ddb.restore_table_to_point_in_time, "InvalidRestoreTimeException",
                       SourceTableName=name, TargetTableName=target, RestoreDateTime=an_hour_ago)
    message = err.response["Error"]["Message"]
    assert message.startswith(f"RestoreDateTime '{an_hour_ago:%Y-%m-%dT%H:%M:%S}Z' must be within "
                              "EarliestRestorableDateTime '")
    in_a_minute = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=1)
    expect_error(ddb.restore_table_to_point_in_time, "InvalidRestoreTimeException",
                 SourceTableName=name, TargetTableName=target, RestoreDateTime=in_a_minute)
    expect_error(ddb.restore_table_to_point_in_time, "ValidationException",
                 "Invalid Request: Either one of RestoreDateTime or UseLatestRestorableTime must be specified, "
                 "but not both", SourceTableName=name, TargetTableName=target)
    expect_error(ddb.restore_table_to_point_in_time, "ValidationException",
                 "Must provide exactly one of: sourceTableArn, sourceTableName",
                 SourceTableName=name, SourceTableArn=f"arn:aws:dynamodb:us-east-1:000000000000:table/{name}",
                 TargetTableName=target, UseLatestRestorableTime=True)
    expect_error(ddb.restore_table_to_point_in_time, "ValidationException",
                 "Invalid Request: sseSpecificationOverride must be provided for cross-region restores",
                 SourceTableArn=f"arn:aws:dynamodb:eu-west-1:000000000000:table/{name}", TargetTableName=target,
                 UseLatestRestorableTime=True)
    # By ARN, it works.
    restored.append(target)
    ddb.restore_table_to_point_in_time(SourceTableArn=f"arn:aws:dynamodb:us-east-1:000000000000:table/{name}",
                                       TargetTableName=target, UseLatestRestorableTime=True)
    _wait_active(ddb, target)


def test_pitr_actions_on_a_missing_table(ddb):
    missing = unique_name("missing")
    expect_error(ddb.describe_continuous_backups, "TableNotFoundException", f"Table not found: {missing}",
                 TableName=missing)
    expect_error(ddb.update_continuous_backups, "TableNotFoundException", f"Table not found: {missing}",
                 TableName=missing, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
    expect_error(ddb.update_continuous_backups, "ValidationException",
                 "Invalid Request: Cannot specify RecoveryPeriodInDays when disabling point-in-time recovery.",
                 TableName=missing,
                 PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": False, "RecoveryPeriodInDays": 7})



def test_the_seed_advice_with_the_aws_cli(endpoint):
    """Enable PITR, delete items by mistake, restore to the second before; then the whole table."""
    from test_aws_cli import aws  # the CLI runner of the README challenge

    name = unique_name("cli")
    aws(endpoint, "create-table", "--table-name", name, "--billing-mode", "PAY_PER_REQUEST",
        "--attribute-definitions", "AttributeName=id,AttributeType=S", "--key-schema", "AttributeName=id,KeyType=HASH")
    aws(endpoint, "wait", "table-exists", "--table-name", name)
    enabled = aws(endpoint, "update-continuous-backups", "--table-name", name,
                  "--point-in-time-recovery-specification", "PointInTimeRecoveryEnabled=true")
    assert enabled["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] \
        == "ENABLED"
    for key in ("a", "b", "c"):
        aws(endpoint, "put-item", "--table-name", name, "--item", f'{{"id": {{"S": "{key}"}}}}')
    time.sleep(1.1)
    second_before = datetime.datetime.fromtimestamp(math.floor(time.time()), datetime.timezone.utc)
    time.sleep(1.1)
    aws(endpoint, "delete-item", "--table-name", name, "--key", '{"id": {"S": "b"}}')  # by mistake
    target = unique_name("cli-restored")
    aws(endpoint, "restore-table-to-point-in-time", "--source-table-name", name, "--target-table-name", target,
        "--restore-date-time", second_before.isoformat())
    aws(endpoint, "wait", "table-exists", "--table-name", target)
    keys = sorted(item["id"]["S"] for item in aws(endpoint, "scan", "--table-name", target)["Items"])
    assert keys == ["a", "b", "c"]
    aws(endpoint, "delete-table", "--table-name", target)
    # The whole table, by mistake: its SYSTEM backup brings it back.
    aws(endpoint, "delete-table", "--table-name", name)
    system = aws(endpoint, "list-backups", "--table-name", name, "--backup-type", "SYSTEM")["BackupSummaries"]
    aws(endpoint, "restore-table-from-backup", "--target-table-name", name, "--backup-arn", system[0]["BackupArn"])
    aws(endpoint, "wait", "table-exists", "--table-name", name)
    keys = sorted(item["id"]["S"] for item in aws(endpoint, "scan", "--table-name", name)["Items"])
    assert keys == ["a", "c"]
    aws(endpoint, "delete-table", "--table-name", name)
