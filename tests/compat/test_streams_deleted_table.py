"""A deleted table's streams outlive it, as DynamoDB keeps them 24 hours.

DynamoDB Streams' developer guide: after a table is deleted its stream
stays readable for 24 hours (the records' retention), then goes.  Meridian
keeps the deleted table's last record in the catalog with its streams
retired (``router/stream_catalog.py``); a table created again under the
same name lists its predecessor's streams beside its own, each read under
the table it was written for.
"""

from __future__ import annotations

import pytest

from helpers import expect_error
from streams_helpers import item, read_stream, stream_table, streams_client, wait_for_key

NOT_FOUND = "ResourceNotFoundException"


@pytest.fixture(scope="session")
def streams(endpoint: str):
    return streams_client(endpoint)


def _delete(ddb, name: str) -> None:
    ddb.delete_table(TableName=name)
    ddb.get_waiter("table_not_exists").wait(TableName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 100})


def test_a_deleted_tables_stream_stays_listed_described_and_readable(ddb, streams):
    name, arn = stream_table(ddb)
    ddb.put_item(TableName=name, Item=item("a", v=1))
    wait_for_key(streams, arn, "a")
    _delete(ddb, name)

    listed = streams.list_streams(TableName=name)["Streams"]
    assert [s["StreamArn"] for s in listed] == [arn]
    assert arn in [s["StreamArn"] for s in streams.list_streams()["Streams"]]
    description = streams.describe_stream(StreamArn=arn)["StreamDescription"]
    assert description["StreamStatus"] == "DISABLED"
    assert description["TableName"] == name
    assert description["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    records = read_stream(streams, arn)
    assert [(r["eventName"], r["dynamodb"]["Keys"]) for r in records] == [("INSERT", {"id": {"S": "a"}})]
    for shard in description["Shards"]:
        assert "EndingSequenceNumber" in shard["SequenceNumberRange"]  # every shard closed


def test_a_table_created_again_lists_both_streams_and_reads_each_under_its_own_table(ddb, streams):
    name, old_arn = stream_table(ddb)
    ddb.put_item(TableName=name, Item=item("old", v=1))
    wait_for_key(streams, old_arn, "old")
    _delete(ddb, name)
    ddb.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"},
    )  # fmt: skip
    new_arn = ddb.describe_table(TableName=name)["Table"]["LatestStreamArn"]
    assert new_arn != old_arn
    ddb.put_item(TableName=name, Item=item("new", v=2))
    wait_for_key(streams, new_arn, "new")

    arns = {s["StreamArn"] for s in streams.list_streams(TableName=name)["Streams"]}
    assert arns == {old_arn, new_arn}
    assert [r["dynamodb"]["Keys"]["id"]["S"] for r in read_stream(streams, old_arn)] == ["old"]
    assert [r["dynamodb"]["Keys"]["id"]["S"] for r in read_stream(streams, new_arn)] == ["new"]
    assert streams.describe_stream(StreamArn=old_arn)["StreamDescription"]["StreamStatus"] == "DISABLED"
    assert streams.describe_stream(StreamArn=new_arn)["StreamDescription"]["StreamStatus"] == "ENABLED"


def test_a_deleted_table_without_a_stream_is_still_not_found(ddb, streams):
    name, _ = stream_table(ddb)
    ddb.update_table(TableName=name, StreamSpecification={"StreamEnabled": False})
    _delete(ddb, name)
    # Its disabled stream is kept; a table that never had one is simply unknown.
    assert len(streams.list_streams(TableName=name)["Streams"]) == 1
    expect_error(lambda: streams.list_streams(TableName=name + "-never"), NOT_FOUND)
