"""Global index partition ceilings and Contributor Insights' consumed units, end to end (issue 15), both modes.

An index partition is held to a partition's ceiling as a table's is: a put
whose item lands in a hot index partition is throttled with the index's
reason and ARN (DynamoDB's GSI back-pressure), and so is a Query on it.
Contributor Insights' accessed rules sum the units each request consumed.
Clients do not retry, so a throttle is seen as it is answered.
"""

from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError

from helpers import unique_name
from meridian.model import limits
from test_contributor_insights import ACCESSED, samples, wait_status
from test_throttling import client, drain_writes

BIG = "x" * (400 * 1024 - 100)  # 400 write units an item (and an index entry: ALL is projected)


@pytest.fixture(scope="module")
def raw(endpoint):
    return client(endpoint)


@pytest.fixture
def gsi_all(ddb):
    """An on-demand table (id) whose global index ``byg`` (g) projects every attribute."""
    name = unique_name()
    ddb.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}, {"AttributeName": "g", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[{"IndexName": "byg", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                                 "Projection": {"ProjectionType": "ALL"}}],
    )
    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    yield name
    ddb.delete_table(TableName=name)


def test_a_hot_index_partition_throttles_puts_with_the_index_reason(ddb, gsi_all, raw):
    name = gsi_all
    started = time.monotonic()
    # every put a new base key (spread over the table's partitions), one index key
    passed, err = drain_writes(raw, name, lambda i: {"id": {"S": f"k{i}"}, "g": {"S": "hot"}, "v": {"S": BIG}}, 1000)
    elapsed_s = time.monotonic() - started
    rate = limits.PARTITION_WRITE_UNITS_PER_S / 400
    bank = rate * limits.THROUGHPUT_PARTITION_BURST_S
    assert bank - 2 <= passed <= bank + rate * elapsed_s + 2
    assert err.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
    arn = ddb.describe_table(TableName=name)["Table"]["TableArn"]
    assert err.response["ThrottlingReasons"] == [
        {"reason": "IndexWriteKeyRangeThroughputExceeded", "resource": f"{arn}/index/byg"}]
    # Other index keys (most land in other index partitions) still write.
    written = 0
    for i in range(20):
        try:
            raw.put_item(TableName=name, Item={"id": {"S": f"cold{i}"}, "g": {"S": f"cold{i}"}})
            written += 1
        except ClientError:
            pass
    assert written >= 10


def test_a_hot_index_partition_throttles_queries_on_the_index(ddb, gsi_all, raw):
    name = gsi_all
    for i in range(4):  # 1.6 MB under one index key: a page reads 1 MB of it
        raw.put_item(TableName=name, Item={"id": {"S": f"k{i}"}, "g": {"S": "hot"}, "v": {"S": BIG}})
    raw.put_item(TableName=name, Item={"id": {"S": "c"}, "g": {"S": "cold"}})
    hot = {"TableName": name, "IndexName": "byg", "KeyConditionExpression": "g = :g", "Select": "COUNT",
           "ExpressionAttributeValues": {":g": {"S": "hot"}}}
    first = raw.query(**hot, ReturnConsumedCapacity="INDEXES")
    units = first["ConsumedCapacity"]["GlobalSecondaryIndexes"]["byg"]["CapacityUnits"]
    assert units >= 100  # a megabyte, eventually consistent
    bank = limits.PARTITION_READ_UNITS_PER_S * limits.THROUGHPUT_PARTITION_BURST_S
    started = time.monotonic()
    for passed in range(1, 3 * int(bank / units)):
        try:
            raw.query(**hot)
        except ClientError as err:
            refused = err.response
            break
    else:
        raise AssertionError("the hot index partition was never throttled")
    elapsed_s = time.monotonic() - started
    assert bank / units - 2 <= passed <= (bank + limits.PARTITION_READ_UNITS_PER_S * elapsed_s) / units + 2
    arn = ddb.describe_table(TableName=name)["Table"]["TableArn"]
    assert refused["Error"]["Code"] == "ProvisionedThroughputExceededException"
    assert refused["ThrottlingReasons"] == [
        {"reason": "IndexReadKeyRangeThroughputExceeded", "resource": f"{arn}/index/byg"}]
    # Another index partition and the table itself still read.
    cold = raw.query(TableName=name, IndexName="byg", KeyConditionExpression="g = :g",
                     ExpressionAttributeValues={":g": {"S": "cold"}})
    assert cold["Count"] == 1
    assert raw.get_item(TableName=name, Key={"id": {"S": "c"}})["Item"]["g"] == {"S": "cold"}


def test_contributor_insights_ranks_keys_by_consumed_units(ddb, table, raw, endpoint):
    name = table()
    ddb.update_contributor_insights(TableName=name, ContributorInsightsAction="ENABLE")
    wait_status(ddb, name, "ENABLED")
    raw.put_item(TableName=name, Item={"id": {"S": "big"}, "v": {"S": "x" * (300 * 1024)}})  # 300 write units
    raw.put_item(TableName=name, Item={"id": {"S": "small"}})
    for _ in range(3):  # 76 read blocks at half a unit: 38 units a read
        raw.get_item(TableName=name, Key={"id": {"S": "big"}})
    for _ in range(40):  # more requests, half a unit each
        raw.get_item(TableName=name, Key={"id": {"S": "small"}})
    ranked = [(labels["Key"], value) for labels, value in samples(endpoint, ACCESSED, name)
              if labels["IndexName"] == "" and labels["Rule"] == "PKC"]
    assert [key for key, _value in ranked[:2]] == ["big", "small"]
    # weights decay with the seconds the test took: within a factor of the units consumed
    assert ranked[0][1] > 5 * ranked[1][1]
    assert 300 <= ranked[0][1] <= 301 + 3 * 38  # the item is a few bytes over 300 KB
    assert 10 <= ranked[1][1] <= 1 + 40 * 0.5 + 1
