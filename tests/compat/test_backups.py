"""On-demand backups, black-box (boto3), embedded and cluster.

CreateBackup, DescribeBackup, ListBackups (filters, pagination), DeleteBackup,
RestoreTableFromBackup (with overrides), a backup outliving its table, and
every error with DynamoDB's message (parity catalog DDB-BACKUP-*, DDB-TABLE-273).
"""

from __future__ import annotations

import datetime

import pytest
from botocore.exceptions import ClientError

from helpers import expect_error, unique_name

ACCOUNT = "000000000000"


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


def _wait_active(ddb, name: str) -> dict:
    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    return ddb.describe_table(TableName=name)["Table"]


def _items(ddb, name: str) -> list[dict]:
    return sorted(ddb.scan(TableName=name, ConsistentRead=True)["Items"], key=lambda item: item["id"]["S"])


def _backup_arn(ddb, name: str, backup_name: str = "bkp") -> str:
    return ddb.create_backup(TableName=name, BackupName=backup_name)["BackupDetails"]["BackupArn"]


def test_backup_lifecycle_and_restore(ddb, table, restored):
    name = table(billing="PROVISIONED")
    for i in range(20):
        ddb.put_item(TableName=name, Item={"id": {"S": f"i{i:02d}"}, "v": {"N": str(i)}})
    before = _items(ddb, name)
    requested = datetime.datetime.now(datetime.timezone.utc)
    details = ddb.create_backup(TableName=name, BackupName="nightly")["BackupDetails"]
    assert set(details) == {"BackupArn", "BackupName", "BackupSizeBytes", "BackupStatus", "BackupType",
                            "BackupCreationDateTime"}
    assert details["BackupStatus"] == "CREATING" and details["BackupType"] == "USER"
    assert details["BackupName"] == "nightly"
    arn = details["BackupArn"]
    prefix = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/{name}/backup/"
    assert arn.startswith(prefix)
    backup_id = arn[len(prefix):]
    assert len(backup_id) == 23 and backup_id[14] == "-"
    assert int(backup_id[:14]) == round(details["BackupCreationDateTime"].timestamp() * 1000)
    assert abs(details["BackupCreationDateTime"] - requested) < datetime.timedelta(seconds=5)
    # Writes after the backup are not in it.
    ddb.put_item(TableName=name, Item={"id": {"S": "later"}})
    ddb.delete_item(TableName=name, Key={"id": {"S": "i00"}})

    described = ddb.describe_backup(BackupArn=arn)["BackupDescription"]
    assert described["BackupDetails"]["BackupStatus"] == "AVAILABLE"
    assert described["BackupDetails"]["BackupCreationDateTime"] == details["BackupCreationDateTime"]
    assert "BackupExpiryDateTime" not in described["BackupDetails"]
    source = described["SourceTableDetails"]
    assert source["TableName"] == name and source["BillingMode"] == "PROVISIONED"
    assert source["ProvisionedThroughput"] == {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
    assert source["ItemCount"] == 20
    assert described["SourceTableFeatureDetails"] == {}

    target = unique_name("from-backup")
    restored.append(target)
    answer = ddb.restore_table_from_backup(TargetTableName=target, BackupArn=arn)["TableDescription"]
    assert answer["TableStatus"] == "CREATING"
    summary = answer["RestoreSummary"]
    assert summary["SourceBackupArn"] == arn and summary["RestoreInProgress"] is True
    assert summary["SourceTableArn"] == f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/{name}"
    active = _wait_active(ddb, target)
    assert active["TableStatus"] == "ACTIVE" and "RestoreSummary" not in active
    assert active["ProvisionedThroughput"]["ReadCapacityUnits"] == 5
    assert _items(ddb, target) == before

    deleted = ddb.delete_backup(BackupArn=arn)["BackupDescription"]
    assert deleted["BackupDetails"]["BackupStatus"] == "DELETED"
    expect_error(ddb.describe_backup, "BackupNotFoundException", f"Backup not found: {arn}", BackupArn=arn)
    expect_error(ddb.delete_backup, "BackupNotFoundException", f"Backup not found: {arn}", BackupArn=arn)
    assert ddb.list_backups(TableName=name)["BackupSummaries"] == []


def test_a_backup_outlives_its_table(ddb, restored):
    name = unique_name("gone")
    ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"},
                                           {"AttributeName": "g", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                     GlobalSecondaryIndexes=[{"IndexName": "by_g", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                                              "Projection": {"ProjectionType": "ALL"}}],
                     StreamSpecification={"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"})
    _wait_active(ddb, name)
    ddb.put_item(TableName=name, Item={"id": {"S": "a"}, "g": {"S": "x"}})
    arn = _backup_arn(ddb, name)
    table_id = ddb.describe_table(TableName=name)["Table"]["TableId"]
    ddb.delete_table(TableName=name)
    described = ddb.describe_backup(BackupArn=arn)["BackupDescription"]
    assert described["SourceTableDetails"]["TableId"] == table_id
    features = described["SourceTableFeatureDetails"]
    assert features["StreamDescription"] == {"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"}
    assert features["GlobalSecondaryIndexes"][0]["IndexName"] == "by_g"
    # A table of the same name again; the old backup restores into it after it is gone.
    assert [s["BackupArn"] for s in ddb.list_backups(TableName=name)["BackupSummaries"]] == [arn]
    restored.append(name)
    ddb.restore_table_from_backup(TargetTableName=name, BackupArn=arn)
    active = _wait_active(ddb, name)
    assert active["TableId"] != table_id
    assert "StreamSpecification" not in active  # streams are not restored
    assert ddb.get_item(TableName=name, Key={"id": {"S": "a"}})["Item"]["g"] == {"S": "x"}
    items = ddb.query(TableName=name, IndexName="by_g", KeyConditionExpression="g = :g",
                      ExpressionAttributeValues={":g": {"S": "x"}})["Items"]
    assert [i["id"]["S"] for i in items] == ["a"]
    ddb.delete_backup(BackupArn=arn)


def test_restore_overrides(ddb, table, restored):
    name = unique_name("ovr")
    ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"},
                                           {"AttributeName": "g", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                     GlobalSecondaryIndexes=[{"IndexName": "by_g", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                                              "Projection": {"ProjectionType": "KEYS_ONLY"}}])
    restored.append(name)
    _wait_active(ddb, name)
    arn = _backup_arn(ddb, name)
    restore = ddb.restore_table_from_backup
    new_index = [{"IndexName": "new", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                  "Projection": {"ProjectionType": "ALL"}}]
    expect_error(restore, "ValidationException",
                 "Invalid Request: Index new does not match a secondary index that existed in the source table and "
                 "cannot be created during the restore operation",
                 TargetTableName=unique_name("x"), BackupArn=arn, GlobalSecondaryIndexOverride=new_index)
    expect_error(restore, "ValidationException",
                 "Invalid Request: Cannot override ProvisionedThroughput unless BillingMode is PROVISIONED",
                 TargetTableName=unique_name("x"), BackupArn=arn,
                 ProvisionedThroughputOverride={"ReadCapacityUnits": 1, "WriteCapacityUnits": 1})
    expect_error(restore, "ValidationException",
                 "Invalid Request: Must override ProvisionedThroughput if BillingMode is overridden to PROVISIONED",
                 TargetTableName=unique_name("x"), BackupArn=arn, BillingModeOverride="PROVISIONED")
    expect_error(restore, "ValidationException",
                 "Invalid Request: Requested MaxReadRequestUnits for OnDemandThroughput is outside of valid range",
                 TargetTableName=unique_name("x"), BackupArn=arn,
                 OnDemandThroughputOverride={"MaxReadRequestUnits": 0, "MaxWriteRequestUnits": 0})
    # No index at all, provisioned.
    target = unique_name("bare")
    restored.append(target)
    answer = restore(TargetTableName=target, BackupArn=arn, GlobalSecondaryIndexOverride=[],
                     BillingModeOverride="PROVISIONED",
                     ProvisionedThroughputOverride={"ReadCapacityUnits": 3, "WriteCapacityUnits": 4})
    assert "GlobalSecondaryIndexes" not in answer["TableDescription"]
    active = _wait_active(ddb, target)
    assert active["ProvisionedThroughput"]["ReadCapacityUnits"] == 3
    assert [d["AttributeName"] for d in active["AttributeDefinitions"]] == ["id"]
    # A renamed index.
    renamed = unique_name("renamed")
    restored.append(renamed)
    restore(TargetTableName=renamed, BackupArn=arn, GlobalSecondaryIndexOverride=[
        {"IndexName": "g_again", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
         "Projection": {"ProjectionType": "KEYS_ONLY"}}])
    assert [i["IndexName"] for i in _wait_active(ddb, renamed)["GlobalSecondaryIndexes"]] == ["g_again"]
    expect_error(restore, "TableAlreadyExistsException", f"Table already exists: {name}",
                 TargetTableName=name, BackupArn=arn)
    ddb.delete_backup(BackupArn=arn)


def test_list_backups_filters_and_pages(ddb, table):
    name = table()
    other = table()
    arns = [_backup_arn(ddb, name, f"bk{i}") for i in range(3)]
    other_arn = _backup_arn(ddb, other, "oth")
    summaries = ddb.list_backups(TableName=name)["BackupSummaries"]
    assert [s["BackupArn"] for s in summaries] == arns  # oldest first
    first = summaries[0]
    assert set(first) == {"TableName", "TableId", "TableArn", "BackupArn", "BackupName", "BackupCreationDateTime",
                          "BackupStatus", "BackupType", "BackupSizeBytes"}
    assert (first["BackupStatus"], first["BackupType"], first["TableName"]) == ("AVAILABLE", "USER", name)
    # Pages of two.
    page = ddb.list_backups(TableName=name, Limit=2)
    assert [s["BackupArn"] for s in page["BackupSummaries"]] == arns[:2]
    assert page["LastEvaluatedBackupArn"] == arns[1]
    page = ddb.list_backups(TableName=name, Limit=2, ExclusiveStartBackupArn=page["LastEvaluatedBackupArn"])
    assert [s["BackupArn"] for s in page["BackupSummaries"]] == arns[2:]
    assert "LastEvaluatedBackupArn" not in page
    assert "LastEvaluatedBackupArn" not in ddb.list_backups(TableName=name, Limit=3)
    paginator = ddb.get_paginator("list_backups")
    pages = list(paginator.paginate(TableName=name, PaginationConfig={"PageSize": 1}))
    assert [s["BackupArn"] for p in pages for s in p["BackupSummaries"]] == arns
    # The time range is [lower, upper).
    created = summaries[1]["BackupCreationDateTime"]
    in_range = ddb.list_backups(TableName=name, TimeRangeLowerBound=created, TimeRangeUpperBound=created)
    assert in_range["BackupSummaries"] == []
    from_second = ddb.list_backups(TableName=name, TimeRangeLowerBound=created)["BackupSummaries"]
    assert [s["BackupArn"] for s in from_second] == arns[1:]
    before_second = ddb.list_backups(TableName=name, TimeRangeUpperBound=created)["BackupSummaries"]
    assert [s["BackupArn"] for s in before_second] == arns[:1]
    expect_error(ddb.list_backups, "ValidationException",
                 "One or more parameter values were invalid: Time range lower bound must be less than or equal to "
                 "upper bound", TimeRangeLowerBound=created, TimeRangeUpperBound=created - datetime.timedelta(seconds=1))
    # Types and names.
    assert len(ddb.list_backups(TableName=name, BackupType="ALL")["BackupSummaries"]) == 3
    assert ddb.list_backups(TableName=name, BackupType="SYSTEM")["BackupSummaries"] == []
    assert ddb.list_backups(TableName=name, BackupType="AWS_BACKUP")["BackupSummaries"] == []
    assert ddb.list_backups(TableName=unique_name("none"))["BackupSummaries"] == []
    everything = [s["BackupArn"] for s in ddb.list_backups(BackupType="ALL")["BackupSummaries"]]
    assert set(arns + [other_arn]) <= set(everything) or len(everything) == 100
    expect_error(ddb.list_backups, "ValidationException",
                 "Invalid Request: The supplied ExclusiveStartBackupArn does not match the region",
                 ExclusiveStartBackupArn=arns[0].replace("us-east-1", "eu-west-1"))
    for arn in arns + [other_arn]:
        ddb.delete_backup(BackupArn=arn)


def test_backup_errors(ddb, table):
    missing = unique_name("missing")
    expect_error(ddb.create_backup, "TableNotFoundException", f"Table not found: {missing}",
                 TableName=missing, BackupName="bkp")
    name = table()
    arn = _backup_arn(ddb, name)
    # Looked up by id: another region's or table's name in the ARN finds it, and is echoed (DDB-BACKUP-012).
    elsewhere = arn.replace("us-east-1", "eu-west-1")
    assert ddb.describe_backup(BackupArn=elsewhere)["BackupDescription"]["BackupDetails"]["BackupArn"] == elsewhere
    unknown = arn[:-8] + "00000001"
    expect_error(ddb.describe_backup, "BackupNotFoundException", f"Backup not found: {unknown}", BackupArn=unknown)
    table_arn = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/{name}-and-more-characters"
    expect_error(ddb.describe_backup, "ValidationException", "Invalid Backup ARN", BackupArn=table_arn)
    expect_error(ddb.describe_backup, "ValidationException", "Invalid Backup ARN", BackupArn="x" * 48)
    expect_error(ddb.describe_backup, "AccessDeniedException", "Access is denied",
                 BackupArn=arn.replace(ACCOUNT, "123456789012"))
    expect_error(ddb.delete_backup, "ValidationException", "Invalid Request: BackupArn is not valid",
                 BackupArn=arn.replace("us-east-1", "xx-fake"))
    expect_error(ddb.restore_table_from_backup, "ValidationException",
                 "Invalid Request: sseSpecificationOverride must be provided for cross-region restores",
                 TargetTableName=unique_name("x"), BackupArn=elsewhere)
    expect_error(ddb.restore_table_from_backup, "BackupNotFoundException", f"Backup not found: {unknown}",
                 TargetTableName=unique_name("x"), BackupArn=unknown)
    ddb.delete_backup(BackupArn=arn)
