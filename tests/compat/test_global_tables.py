"""Global Tables (2019.11.21) requests against one region, through boto3.

Runs against the embedded server and a one-region cluster: neither has a
peer region, so a replica asked for stays CREATING (the cross-region work
is in tests/integration/test_global_replication.py).  Expected messages are
DynamoDB's.
"""

from __future__ import annotations

from helpers import create_table, expect_error

LOCAL_REGION = "us-east-1"
LOCAL_MESSAGE = (
    "Cannot add, delete, or update the local region through ReplicaUpdates. "
    "Use CreateTable, DeleteTable, or UpdateTable as required."
)


def test_the_local_region_is_refused_for_every_replica_action(ddb):
    name = create_table(ddb)
    for action in ({"Create": {"RegionName": LOCAL_REGION}}, {"Delete": {"RegionName": LOCAL_REGION}}):
        expect_error(ddb.update_table, "ValidationException", LOCAL_MESSAGE, TableName=name, ReplicaUpdates=[action])
    assert "Replicas" not in ddb.describe_table(TableName=name)["Table"]


def test_a_table_not_global_has_no_replica_fields(ddb):
    table = ddb.describe_table(TableName=create_table(ddb))["Table"]
    assert "GlobalTableVersion" not in table and "Replicas" not in table


def test_adding_a_replica_makes_the_table_global_with_a_stream(ddb):
    name = create_table(ddb)
    answer = ddb.update_table(TableName=name, ReplicaUpdates=[{"Create": {"RegionName": "eu-west-1"}}])
    described = answer["TableDescription"]
    assert described["TableStatus"] == "UPDATING"
    assert described["GlobalTableVersion"] == "2019.11.21"
    assert described["Replicas"] == [{"RegionName": "eu-west-1", "ReplicaStatus": "CREATING"}]
    assert described["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert described["LatestStreamArn"].startswith(described["TableArn"] + "/stream/")
    table = ddb.describe_table(TableName=name)["Table"]
    assert table["TableStatus"] == "UPDATING"  # no replicator here: the replica is never built
    assert table["Replicas"] == described["Replicas"]
