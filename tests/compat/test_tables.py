"""Table lifecycle, listing, updates, tags and account actions, through boto3.

Runs unchanged against the embedded server and a 3-node cluster (see
``conftest.py``).  Expected messages are DynamoDB's.
"""

from __future__ import annotations

from helpers import create_table, expect_error, unique_name


def test_create_describe_delete_lifecycle(ddb):
    name = unique_name()
    out = ddb.create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "N"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        ProvisionedThroughput={"ReadCapacityUnits": 5, "WriteCapacityUnits": 7},
    )["TableDescription"]
    assert out["TableStatus"] == "CREATING"
    assert out["TableName"] == name
    assert out["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]
    assert out["ProvisionedThroughput"]["ReadCapacityUnits"] == 5
    assert out["ProvisionedThroughput"]["WriteCapacityUnits"] == 7
    assert out["TableArn"].endswith(f":table/{name}")
    assert out["TableArn"].startswith("arn:aws:dynamodb:")
    assert "BillingModeSummary" not in out  # PROVISIONED by default, not stated

    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 10})
    desc = ddb.describe_table(TableName=name)["Table"]
    assert desc["TableStatus"] == "ACTIVE"
    assert desc["ItemCount"] == 0 and desc["TableSizeBytes"] == 0
    assert desc["TableId"] == out["TableId"]

    deleted = ddb.delete_table(TableName=name)["TableDescription"]
    assert deleted["TableStatus"] == "DELETING"
    ddb.get_waiter("table_not_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 10})
    expect_error(ddb.describe_table, "ResourceNotFoundException",
                 f"Requested resource not found: Table: {name} not found", TableName=name)


def test_pay_per_request_description(ddb):
    name = create_table(ddb)
    desc = ddb.describe_table(TableName=name)["Table"]
    assert desc["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert desc["ProvisionedThroughput"] == {"NumberOfDecreasesToday": 0, "ReadCapacityUnits": 0, "WriteCapacityUnits": 0}


def test_create_existing_table_is_in_use(ddb):
    name = create_table(ddb)
    expect_error(
        ddb.create_table, "ResourceInUseException", f"Table already exists: {name}",
        TableName=name, AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}], BillingMode="PAY_PER_REQUEST",
    )


def test_recreated_table_does_not_see_old_items(ddb):
    name = create_table(ddb)
    ddb.put_item(TableName=name, Item={"id": {"S": "a"}, "v": {"N": "1"}})
    ddb.delete_table(TableName=name)
    ddb.get_waiter("table_not_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 10})
    create_table(ddb, name)
    assert "Item" not in ddb.get_item(TableName=name, Key={"id": {"S": "a"}})


def test_item_count_and_size_follow_writes(ddb):
    name = create_table(ddb)
    for i in range(5):
        ddb.put_item(TableName=name, Item={"id": {"S": f"k{i}"}, "v": {"S": "x" * 10}})
    ddb.delete_item(TableName=name, Key={"id": {"S": "k0"}})
    desc = ddb.describe_table(TableName=name)["Table"]
    assert desc["ItemCount"] == 4
    # each item: "id"(2) + "k1"(2) + "v"(1) + 10 = 15 bytes
    assert desc["TableSizeBytes"] == 4 * 15


def test_list_tables_paginates(ddb):
    prefix = unique_name("lt")
    names = sorted(create_table(ddb, f"{prefix}-{i}") for i in range(5))
    seen: list[str] = []
    start = None
    while True:
        kwargs = {"Limit": 2}
        if start:
            kwargs["ExclusiveStartTableName"] = start
        page = ddb.list_tables(**kwargs)
        assert len(page["TableNames"]) <= 2
        seen += page["TableNames"]
        start = page.get("LastEvaluatedTableName")
        if not start:
            break
    assert [n for n in seen if n.startswith(prefix)] == names
    assert seen == sorted(seen)
    all_names = ddb.list_tables()["TableNames"]
    assert set(names) <= set(all_names)


def test_list_tables_limit_validation(ddb):
    expect_error(
        ddb.list_tables, "ValidationException",
        "1 validation error detected: Value '101' at 'limit' failed to satisfy constraint: "
        "Member must have value less than or equal to 100",
        Limit=101,
    )


def test_update_table_throughput_and_billing(ddb):
    name = create_table(ddb, billing="PROVISIONED")
    before = ddb.describe_table(TableName=name)["Table"]["ProvisionedThroughput"]["ReadCapacityUnits"]
    out = ddb.update_table(TableName=name, ProvisionedThroughput={"ReadCapacityUnits": 10, "WriteCapacityUnits": 5})
    # The answer still shows the old units (DynamoDB: UPDATING), DescribeTable the new ones.
    assert out["TableDescription"]["ProvisionedThroughput"]["ReadCapacityUnits"] == before
    assert ddb.describe_table(TableName=name)["Table"]["ProvisionedThroughput"]["ReadCapacityUnits"] == 10
    expect_error(
        ddb.update_table, "ValidationException",
        "The provisioned throughput for the table will not change. The requested value equals the current value. "
        "Current ReadCapacityUnits provisioned for the table: 10. Requested ReadCapacityUnits: 10. "
        "Current WriteCapacityUnits provisioned for the table: 5. Requested WriteCapacityUnits: 5. "
        "Refer to the Amazon DynamoDB Developer Guide for current limits and how to request higher limits.",
        TableName=name, ProvisionedThroughput={"ReadCapacityUnits": 10, "WriteCapacityUnits": 5},
    )
    ddb.update_table(TableName=name, BillingMode="PAY_PER_REQUEST")
    desc = ddb.describe_table(TableName=name)["Table"]
    assert desc["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert desc["TableStatus"] == "ACTIVE"


def test_update_table_streams(ddb):
    name = create_table(ddb)
    out = ddb.update_table(TableName=name, StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
    desc = out["TableDescription"]
    assert desc["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert desc["LatestStreamArn"].startswith(desc["TableArn"] + "/stream/")
    err = expect_error(ddb.update_table, "ValidationException", TableName=name,
                       StreamSpecification={"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"})
    assert "Table already has an enabled stream" in err.response["Error"]["Message"]


def test_update_missing_table(ddb):
    name = unique_name()
    expect_error(ddb.update_table, "ResourceNotFoundException", f"Requested resource not found: Table: {name} not found",
                 TableName=name, BillingMode="PAY_PER_REQUEST")


def test_delete_missing_table(ddb):
    name = unique_name()
    expect_error(ddb.delete_table, "ResourceNotFoundException", f"Requested resource not found: Table: {name} not found",
                 TableName=name)


def test_deletion_protection(ddb):
    name = create_table(ddb, DeletionProtectionEnabled=True)
    expect_error(ddb.delete_table, "ValidationException",
                 "Resource cannot be deleted as it is currently protected against deletion. Disable deletion protection first.",
                 TableName=name)
    ddb.update_table(TableName=name, DeletionProtectionEnabled=False)
    ddb.delete_table(TableName=name)


def test_tags(ddb):
    name = create_table(ddb, Tags=[{"Key": "team", "Value": "core"}])
    arn = ddb.describe_table(TableName=name)["Table"]["TableArn"]
    assert ddb.list_tags_of_resource(ResourceArn=arn)["Tags"] == [{"Key": "team", "Value": "core"}]
    ddb.tag_resource(ResourceArn=arn, Tags=[{"Key": "env", "Value": "dev"}, {"Key": "team", "Value": "infra"}])
    tags = {t["Key"]: t["Value"] for t in ddb.list_tags_of_resource(ResourceArn=arn)["Tags"]}
    assert tags == {"team": "infra", "env": "dev"}
    ddb.untag_resource(ResourceArn=arn, TagKeys=["team"])
    assert ddb.list_tags_of_resource(ResourceArn=arn)["Tags"] == [{"Key": "env", "Value": "dev"}]


def test_tags_on_missing_table(ddb):
    arn = ddb.describe_table(TableName=create_table(ddb))["Table"]["TableArn"].rsplit("/", 1)[0] + "/" + unique_name()
    expect_error(ddb.list_tags_of_resource, "ResourceNotFoundException",
                 f"Requested resource not found: ResourceArn: {arn} not found", ResourceArn=arn)


def test_describe_limits_and_endpoints(ddb):
    limits = ddb.describe_limits()
    assert limits["AccountMaxReadCapacityUnits"] == 80000
    assert limits["TableMaxWriteCapacityUnits"] == 40000
    endpoints = ddb.describe_endpoints()["Endpoints"]
    assert endpoints[0]["CachePeriodInMinutes"] == 1440
    assert endpoints[0]["Address"]
