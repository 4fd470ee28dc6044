"""DynamoDB Streams, black-box: boto3's ``dynamodbstreams`` client and raw requests.

Runs against every mode (``endpoint``: embedded and a three-node cluster)
with DynamoDB's own shard period and retention (four hours, a day), and
against a second server per mode (``short``) whose shards roll over every
``SHARD_PERIOD_S`` and whose records are kept ``RETENTION_S``: closed shards,
parents, trimming and a disabled stream's retention are seen happening.

Records are waited for, never assumed (``streams_helpers.py``).  A key's
records must match its writes one for one and in order; they arrive in that
order, so once a key has as many records as it had writes that should make
one, they are compared: a record no write should have made (a no-op's, a
failed condition's) is a mismatch.  What readers rely on (LATEST, a shard's
start, images, SizeBytes, a disabled stream) is checked as DynamoDB does it.
"""

from __future__ import annotations

import os
import time

import pytest

from helpers import create_table, expect_error, unique_name
from meridian.cluster.limits import STARTUP_TIMEOUT_S
from meridian.cluster.procs import LocalCluster, ManagedProcess, free_port, wait_for_http_ok
from streams_helpers import (
    RECORDS_TIMEOUT_S,
    by_key,
    item,
    iterator_of,
    key_of,
    raw,
    read_from,
    read_shard,
    read_stream,
    shard_of_key,
    shards_of,
    stream_table,
    streams_client,
    wait_for_key,
)
from tests.conftest import make_client
from tests.waiting import wait_until
SHARD_PERIOD_S = 1.5
RETENTION_S = 6.0
VIEW_TYPES = ("KEYS_ONLY", "NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES")
VAL = "com.amazon.coral.validate#ValidationException"
NOT_FOUND = "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException"


@pytest.fixture(scope="session")
def streams(endpoint: str):
    return streams_client(endpoint)


# --- every view type: records match the writes, one for one ----------------------------
def script(ddb, name: str, pk: str) -> list[tuple[str, dict | None, dict | None]]:
    """Writes to one key, and what each must leave in the stream: (event, old, new), or nothing."""
    key = {"id": {"S": pk}}
    expected = []

    def set_value(attribute: str, value: dict) -> None:
        ddb.update_item(TableName=name, Key=key, UpdateExpression=f"SET {attribute} = :v",
                        ExpressionAttributeValues={":v": value})  # fmt: skip

    ddb.put_item(TableName=name, Item=item(pk, a=1))
    expected.append(("INSERT", None, item(pk, a=1)))
    ddb.put_item(TableName=name, Item=item(pk, a=1))  # the same item again: no record
    ddb.put_item(TableName=name, Item=item(pk, b=2))
    expected.append(("MODIFY", item(pk, a=1), item(pk, b=2)))
    set_value("b", {"N": "2"})  # the value it has: no record
    ddb.update_item(TableName=name, Key=key, UpdateExpression="REMOVE nothing_here")  # no change: no record
    with pytest.raises(ddb.exceptions.ConditionalCheckFailedException):
        ddb.put_item(TableName=name, Item=item(pk, z=9), ConditionExpression="attribute_not_exists(id)")
    set_value("c", {"S": "x"})
    expected.append(("MODIFY", item(pk, b=2), item(pk, b=2, c="x")))
    ddb.delete_item(TableName=name, Key=key)
    expected.append(("REMOVE", item(pk, b=2, c="x"), None))
    ddb.delete_item(TableName=name, Key=key)  # nothing to delete: no record
    set_value("d", {"N": "4"})  # makes the item
    expected.append(("INSERT", None, item(pk, d=4)))
    ddb.batch_write_item(RequestItems={name: [{"PutRequest": {"Item": item(pk, e=5)}}]})
    expected.append(("MODIFY", item(pk, d=4), item(pk, e=5)))
    ddb.put_item(TableName=name, Item=item(pk, done="yes"))
    expected.append(("MODIFY", item(pk, e=5), item(pk, done="yes")))
    return expected


def shown(view_type: str, old: dict | None, new: dict | None) -> tuple[dict | None, dict | None]:
    return (old if view_type in ("OLD_IMAGE", "NEW_AND_OLD_IMAGES") else None,
            new if view_type in ("NEW_IMAGE", "NEW_AND_OLD_IMAGES") else None)


@pytest.mark.parametrize("view_type", VIEW_TYPES)
def test_records_match_the_writes(ddb, streams, view_type):
    name, arn = stream_table(ddb, view_type)
    pks = [f"key-{i}" for i in range(4)]
    scripts = {pk: script(ddb, name, pk) for pk in pks}

    def complete() -> dict[str, list[dict]] | None:
        grouped = by_key(read_stream(streams, arn))
        counts = [len(grouped.get(key_of(pk), [])) for pk in pks]
        return grouped if all(n >= len(scripts[pk]) for n, pk in zip(counts, pks)) else None

    # A key's records arrive in order, so a record no write should have made
    # (a no-op's, a failed condition's) shows as a mismatch below.
    grouped = wait_until(complete, RECORDS_TIMEOUT_S, what="every write's record")
    assert sorted(grouped) == sorted(key_of(pk) for pk in pks)
    for pk in pks:
        records = grouped[key_of(pk)]
        assert [r["eventName"] for r in records] == [event for event, _, _ in scripts[pk]]
        for record, (event, old, new) in zip(records, scripts[pk]):
            body = record["dynamodb"]
            assert record["eventName"] == event
            assert (record["eventVersion"], record["eventSource"], record["awsRegion"]) == (
                "1.1", "aws:dynamodb", "us-east-1")
            assert len(record["eventID"]) == 32 and "userIdentity" not in record
            assert body["Keys"] == {"id": {"S": pk}} and body["StreamViewType"] == view_type
            assert (body.get("OldImage"), body.get("NewImage")) == shown(view_type, old, new)
            assert body["SequenceNumber"].isdecimal() and 21 <= len(body["SequenceNumber"]) <= 40
            assert body["SizeBytes"] > 0
            assert abs(body["ApproximateCreationDateTime"].timestamp() - time.time()) < 120
        numbers = [int(r["dynamodb"]["SequenceNumber"]) for r in records]
        assert numbers == sorted(numbers)
    every = [r["eventID"] for rs in grouped.values() for r in rs]
    assert len(set(every)) == len(every)


# --- streams, shards, iterators -----------------------------------------------------------
def test_list_and_describe(ddb, streams):
    name, arn = stream_table(ddb, "KEYS_ONLY", sk=("s", "N"))
    listed = streams.list_streams(TableName=name)["Streams"]
    assert listed == [{"StreamArn": arn, "TableName": name, "StreamLabel": arn.rsplit("/", 1)[1]}]
    described = streams.describe_stream(StreamArn=arn)["StreamDescription"]
    assert described["StreamArn"] == arn and described["StreamLabel"] == listed[0]["StreamLabel"]
    assert (described["StreamStatus"], described["StreamViewType"], described["TableName"]) == (
        "ENABLED", "KEYS_ONLY", name)
    assert described["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"},
                                      {"AttributeName": "s", "KeyType": "RANGE"}]
    assert abs(described["CreationRequestDateTime"].timestamp() - time.time()) < 120
    assert described["Shards"], described
    for shard in described["Shards"]:
        assert 28 <= len(shard["ShardId"]) <= 65
        assert shard["SequenceNumberRange"]["StartingSequenceNumber"].isdecimal()
    ids = [s["ShardId"] for s in described["Shards"]]
    assert ids == sorted(ids)
    assert streams.list_streams(TableName=create_table(ddb))["Streams"] == []


def test_list_streams_pages(ddb, streams):
    arns = {stream_table(ddb)[1] for _ in range(3)}
    seen, start = [], None
    while True:
        page = streams.list_streams(Limit=1, **({"ExclusiveStartStreamArn": start} if start else {}))
        assert len(page["Streams"]) <= 1
        seen += [s["StreamArn"] for s in page["Streams"]]
        start = page.get("LastEvaluatedStreamArn")
        if start is None:
            break
    assert arns <= set(seen) and len(seen) == len(set(seen))


def test_describe_stream_pages(ddb, streams):
    _, arn = stream_table(ddb)
    every = [s["ShardId"] for s in shards_of(streams, arn)]
    assert [s["ShardId"] for s in shards_of(streams, arn, limit=1)] == every
    beyond = streams.describe_stream(StreamArn=arn, ExclusiveStartShardId="shardId-99999999999999999999-ffffffff")
    assert beyond["StreamDescription"]["Shards"] == []


def test_iterator_types(ddb, streams):
    name, arn = stream_table(ddb)
    for n in range(3):
        ddb.put_item(TableName=name, Item=item("k", n=n))
    shard, records = wait_for_key(streams, arn, "k", 3)
    numbers = [r["dynamodb"]["SequenceNumber"] for r in records]

    def numbers_from(kind: str, **extra) -> list[str]:
        found, _ = read_shard(streams, arn, shard, kind, **extra)
        return [r["dynamodb"]["SequenceNumber"] for r in found if r["dynamodb"]["Keys"] == {"id": {"S": "k"}}]

    assert numbers_from("TRIM_HORIZON") == numbers
    assert numbers_from("AT_SEQUENCE_NUMBER", SequenceNumber=numbers[1]) == numbers[1:]
    assert numbers_from("AFTER_SEQUENCE_NUMBER", SequenceNumber=numbers[1]) == numbers[2:]
    latest = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="LATEST")["ShardIterator"]
    assert streams.get_records(ShardIterator=latest)["Records"] == []
    ddb.put_item(TableName=name, Item=item("k", n=99))

    def after_latest() -> list[dict] | None:
        page = streams.get_records(ShardIterator=latest)
        return page["Records"] or None
    fresh = wait_until(after_latest, RECORDS_TIMEOUT_S, what="the write after LATEST")
    assert [r["dynamodb"]["NewImage"]["n"] for r in fresh] == [{"N": "99"}]


def test_get_records_pages_with_limit(ddb, streams):
    name, arn = stream_table(ddb, "KEYS_ONLY")
    for n in range(5):
        ddb.put_item(TableName=name, Item=item("p", n=n))
    shard, _ = wait_for_key(streams, arn, "p", 5)
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard,
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]  # fmt: skip
    sizes = []
    while True:
        page = streams.get_records(ShardIterator=iterator, Limit=2)
        if not page["Records"]:
            break
        sizes.append(len(page["Records"]))
        iterator = page["NextShardIterator"]  # an open shard always gives one
    assert sizes == [2, 2, 1]



# --- what stream readers rely on: each behaviour as DynamoDB shows it ---------------------------
def test_reading_on_from_latest(ddb, streams):
    """LATEST iterators (one per shard, all different) read nothing yet and still go on; the one
    write shows up in one shard, alone; reading on finds nothing more, and the key's next write
    comes through that same shard; AT_SEQUENCE_NUMBER reads the first again."""
    name, arn = stream_table(ddb, "KEYS_ONLY")
    iterators = {s["ShardId"]: iterator_of(streams, arn, s["ShardId"]) for s in shards_of(streams, arn)}
    assert len(set(iterators.values())) == len(iterators)
    for iterator in iterators.values():
        page = streams.get_records(ShardIterator=iterator)
        assert page["Records"] == [] and "NextShardIterator" in page
    ddb.put_item(TableName=name, Item=item("once", v=1))

    def the_shard_with_it() -> tuple[str, dict] | None:
        pages = {shard: streams.get_records(ShardIterator=it) for shard, it in iterators.items()}
        return next(((shard, page) for shard, page in pages.items() if page["Records"]), None)
    shard_id, page = wait_until(the_shard_with_it, RECORDS_TIMEOUT_S, what="the write after LATEST")
    assert [r["dynamodb"]["Keys"] for r in page["Records"]] == [{"id": {"S": "once"}}]
    number = page["Records"][0]["dynamodb"]["SequenceNumber"]
    again = streams.get_records(ShardIterator=page["NextShardIterator"])
    assert again["Records"] == [] and "NextShardIterator" in again
    ddb.put_item(TableName=name, Item=item("once", v=2))
    later = wait_until(lambda: streams.get_records(ShardIterator=again["NextShardIterator"])["Records"],
                       RECORDS_TIMEOUT_S, what="the key's next write, in the same shard")  # fmt: skip
    assert [r["dynamodb"]["Keys"] for r in later] == [{"id": {"S": "once"}}]
    assert int(later[0]["dynamodb"]["SequenceNumber"]) > int(number)
    at = streams.get_records(ShardIterator=iterator_of(streams, arn, shard_id, "AT_SEQUENCE_NUMBER",
                                                       SequenceNumber=number))["Records"]
    assert [r["dynamodb"]["SequenceNumber"] for r in at][:1] == [number]


def test_a_shards_starting_sequence_number_starts_it(ddb, streams):
    name, arn = stream_table(ddb, "KEYS_ONLY")
    for n in range(2):
        ddb.put_item(TableName=name, Item=item("start", v=n))
    shard_id, records = wait_for_key(streams, arn, "start", 2)
    start = next(s for s in shards_of(streams, arn) if s["ShardId"] == shard_id)["SequenceNumberRange"][
        "StartingSequenceNumber"]
    found, _ = read_shard(streams, arn, shard_id, "AT_SEQUENCE_NUMBER", SequenceNumber=start)
    assert [r["dynamodb"]["SequenceNumber"] for r in found] == [r["dynamodb"]["SequenceNumber"] for r in records]
    assert iterator_of(streams, arn, shard_id, "AFTER_SEQUENCE_NUMBER", SequenceNumber=start)


def test_images_of_key_only_items_and_unchanged_values(ddb, streams):
    """An item can be its key alone (its image is then just the key, never missing); rewriting a
    value as an equal one (a map's members or a set's in another order, a number spelled
    otherwise) changes nothing, so it makes no record."""
    name, arn = stream_table(ddb)
    key = {"id": {"S": "u"}}
    values = {"m": {"M": {"dog": {"N": "1"}, "cat": {"N": "2"}}}, "s": {"SS": ["a", "b"]}, "n": {"N": "1"}}
    same = {":m": {"M": {"cat": {"N": "2"}, "dog": {"N": "1"}}}, ":s": {"SS": ["b", "a"]}, ":n": {"N": "1.00"}}
    for update in ({}, {"UpdateExpression": "SET x = :x", "ExpressionAttributeValues": {":x": {"N": "2"}}},
                   {"UpdateExpression": "REMOVE x"},
                   {"UpdateExpression": "SET m = :m, s = :s, n = :n",
                    "ExpressionAttributeValues": {":m": values["m"], ":s": values["s"], ":n": {"N": "1.0"}}},
                   {"UpdateExpression": "SET m = :m, s = :s, n = :n", "ExpressionAttributeValues": same}):
        ddb.update_item(TableName=name, Key=key, **update)  # the first: a key-only item; the last: a no-op
    ddb.put_item(TableName=name, Item=key | {k[1:]: v for k, v in same.items()})  # the same item: no record
    ddb.delete_item(TableName=name, Key=key)
    with_x, full = key | {"x": {"N": "2"}}, key | values
    expected = [("INSERT", None, key), ("MODIFY", key, with_x), ("MODIFY", with_x, key), ("MODIFY", key, full),
                ("REMOVE", full, None)]
    _, records = wait_for_key(streams, arn, "u", len(expected))

    def sets_sorted(image: dict | None) -> dict | None:  # a set's order is the store's own
        return image and {k: ({"SS": sorted(v["SS"])} if "SS" in v else v) for k, v in image.items()}
    assert [(r["eventName"], sets_sorted(r["dynamodb"].get("OldImage")), sets_sorted(r["dynamodb"].get("NewImage")))
            for r in records] == expected  # fmt: skip


# SizeBytes of a put of {"id": "Fred"}, a SET of name = "Fred", and the delete: what the record
# carries by DynamoDB's item-size rules (names and strings count their UTF-8 bytes).  DynamoDB's
# own records of these writes in NEW_AND_OLD_IMAGES are 12 and 26 bytes; KEYS_ONLY counts the keys alone.
SIZE_BYTES = {"KEYS_ONLY": [6, 6, 6], "NEW_IMAGE": [12, 20, 6], "OLD_IMAGE": [6, 12, 20],
              "NEW_AND_OLD_IMAGES": [12, 26, 20]}


@pytest.mark.parametrize("view_type", VIEW_TYPES)
def test_size_bytes_counts_what_the_record_carries(ddb, streams, view_type):
    name, arn = stream_table(ddb, view_type)
    key = {"id": {"S": "Fred"}}
    ddb.put_item(TableName=name, Item=key)
    ddb.update_item(TableName=name, Key=key, UpdateExpression="SET #n = :n", ExpressionAttributeNames={"#n": "name"},
                    ExpressionAttributeValues={":n": {"S": "Fred"}})  # fmt: skip
    ddb.delete_item(TableName=name, Key=key)
    _, records = wait_for_key(streams, arn, "Fred", 3)
    assert [r["dynamodb"]["SizeBytes"] for r in records] == SIZE_BYTES[view_type]


def test_table_descriptions_name_the_stream(ddb, streams):
    """CreateTable, DescribeTable and UpdateTable name the stream ListStreams lists; tagging the table
    leaves it be.  Once disabled, DescribeTable still names it (LatestStreamArn, LatestStreamLabel)
    but shows no StreamSpecification, and iterators taken before read its last record, then end."""
    spec = {"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"}
    name = unique_name()
    created = ddb.create_table(TableName=name, AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                               KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}], BillingMode="PAY_PER_REQUEST",
                               StreamSpecification=spec)["TableDescription"]  # fmt: skip
    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    arn, label = created["LatestStreamArn"], created["LatestStreamLabel"]
    assert arn == f"{created['TableArn']}/stream/{label}" and created["StreamSpecification"] == spec
    assert streams.list_streams(TableName=name)["Streams"] == [{"StreamArn": arn, "TableName": name,
                                                                "StreamLabel": label}]
    for described in (ddb.describe_table(TableName=name)["Table"],
                      ddb.update_table(TableName=name, BillingMode="PAY_PER_REQUEST")["TableDescription"]):
        assert (described["LatestStreamArn"], described["LatestStreamLabel"], described["StreamSpecification"]) == (
            arn, label, spec)
    ddb.tag_resource(ResourceArn=created["TableArn"], Tags=[{"Key": "animal", "Value": "dog"}])
    assert [s["StreamArn"] for s in streams.list_streams(TableName=name)["Streams"]] == [arn]

    iterators = [iterator_of(streams, arn, s["ShardId"]) for s in shards_of(streams, arn)]
    ddb.put_item(TableName=name, Item=item("last", v=1))
    ddb.update_table(TableName=name, StreamSpecification={"StreamEnabled": False})
    described = ddb.describe_table(TableName=name)["Table"]
    assert "StreamSpecification" not in described
    assert (described["LatestStreamArn"], described["LatestStreamLabel"]) == (arn, label)

    def read_to_the_ends() -> list[dict] | None:
        reads = [read_from(streams, iterator) for iterator in iterators]
        return [r for records, _ in reads for r in records] if all(ended for _, ended in reads) else None
    records = wait_until(read_to_the_ends, RECORDS_TIMEOUT_S, what="every shard read to its end")
    assert [r["dynamodb"]["Keys"] for r in records] == [{"id": {"S": "last"}}]


@pytest.mark.parametrize("length", [192, 255])
def test_long_table_names_have_streams(ddb, streams, length):
    name, arn = stream_table(ddb, "KEYS_ONLY", name=unique_name("long").ljust(length, "x"))
    assert streams.describe_stream(StreamArn=arn)["StreamDescription"]["TableName"] == name
    ddb.put_item(TableName=name, Item=item("k", v=1))
    assert wait_for_key(streams, arn, "k")[1][0]["eventName"] == "INSERT"


def test_disable_and_reenable(ddb, streams):
    name, first = stream_table(ddb, "NEW_IMAGE")
    ddb.put_item(TableName=name, Item=item("before", v=1))
    wait_until(lambda: read_stream(streams, first), RECORDS_TIMEOUT_S, what="the first stream's record")
    disabled = ddb.update_table(TableName=name, StreamSpecification={"StreamEnabled": False})["TableDescription"]
    assert "StreamSpecification" not in disabled and disabled["LatestStreamArn"] == first
    described = streams.describe_stream(StreamArn=first)["StreamDescription"]
    assert (described["StreamStatus"], described["StreamViewType"]) == ("DISABLED", "NEW_IMAGE")

    def all_closed() -> list[dict] | None:
        shards = shards_of(streams, first)
        return shards if all("EndingSequenceNumber" in s["SequenceNumberRange"] for s in shards) else None
    for shard in wait_until(all_closed, RECORDS_TIMEOUT_S, what="the disabled stream's shards closed"):
        assert read_shard(streams, first, shard["ShardId"])[1]  # readable to its end: no NextShardIterator
    assert [r["dynamodb"]["Keys"] for r in read_stream(streams, first)] == [{"id": {"S": "before"}}]
    ddb.put_item(TableName=name, Item=item("between", v=2))  # no stream: no record anywhere

    second = ddb.update_table(TableName=name, StreamSpecification={"StreamEnabled": True,
                                                                   "StreamViewType": "KEYS_ONLY"})
    second = second["TableDescription"]["LatestStreamArn"]
    assert second != first
    listed = [s["StreamArn"] for s in streams.list_streams(TableName=name)["Streams"]]
    assert sorted(listed) == sorted([first, second])
    assert streams.describe_stream(StreamArn=first)["StreamDescription"]["StreamStatus"] == "DISABLED"
    assert streams.describe_stream(StreamArn=second)["StreamDescription"]["StreamStatus"] == "ENABLED"
    ddb.put_item(TableName=name, Item=item("after", v=3))
    keys = wait_until(lambda: [r["dynamodb"]["Keys"] for r in read_stream(streams, second)],
                      RECORDS_TIMEOUT_S, what="the new stream's record")
    assert keys == [{"id": {"S": "after"}}]
    assert [r["dynamodb"]["Keys"] for r in read_stream(streams, first)] == [{"id": {"S": "before"}}]
    expect_error(ddb.update_table, "ValidationException", f"Table already has an enabled stream: TableName: {name}",
                 TableName=name, StreamSpecification={"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"})


# --- errors ----------------------------------------------------------------------------------
MISSING_ARN = "arn:aws:dynamodb:us-east-1:000000000000:table/no-such-table-here/stream/2026-01-01T00:00:00.000"


@pytest.mark.parametrize("action, payload, error_type, message", [
    ("ListStreams", {"Limit": 0}, VAL, "1 validation error detected: Value '0' at 'limit' failed to satisfy "
     "constraint: Member must have value greater than or equal to 1"),
    ("ListStreams", {"Limit": 101}, VAL, "1 validation error detected: Value '101' at 'limit' failed to satisfy "
     "constraint: Member must have value less than or equal to 100"),
    ("ListStreams", {"ExclusiveStartStreamArn": "this-is-no-stream-arn-although-it-is-long-enough"}, VAL,
     "Invalid StreamArn"),
    ("ListStreams", {"TableName": "no-such-table-here"}, NOT_FOUND,
     "Requested resource not found: Table: no-such-table-here not found"),
    ("DescribeStream", {}, VAL, "1 validation error detected: Value null at 'streamArn' failed to satisfy "
     "constraint: Member must not be null"),
    ("DescribeStream", {"StreamArn": "arn:aws:dynamodb"}, VAL, "1 validation error detected: Value "
     "'arn:aws:dynamodb' at 'streamArn' failed to satisfy constraint: Member must have length greater than or "
     "equal to 37"),
    ("DescribeStream", {"StreamArn": "not-an-arn-just-forty-or-so-characters-of-text"}, VAL,
     "Invalid StreamArn"),
    ("DescribeStream", {"StreamArn": MISSING_ARN}, NOT_FOUND,
     f"Requested resource not found: Stream: {MISSING_ARN} not found"),
    ("DescribeStream", {"StreamArn": MISSING_ARN, "Limit": 101}, VAL, "1 validation error detected: Value '101' "
     "at 'limit' failed to satisfy constraint: Member must have value less than or equal to 100"),
    ("GetShardIterator", {}, VAL, "3 validation errors detected: Value null at 'streamArn' failed to satisfy "
     "constraint: Member must not be null; Value null at 'shardId' failed to satisfy constraint: Member must not "
     "be null; Value null at 'shardIteratorType' failed to satisfy constraint: Member must not be null"),
    ("GetShardIterator", {"StreamArn": MISSING_ARN, "ShardId": "shardId-00000000000000000001-00000000",
                          "ShardIteratorType": "FROM_THE_MIDDLE"}, VAL,
     "1 validation error detected: Value 'FROM_THE_MIDDLE' at 'shardIteratorType' failed to satisfy constraint: "
     "Member must satisfy enum value set: [TRIM_HORIZON, LATEST, AT_SEQUENCE_NUMBER, AFTER_SEQUENCE_NUMBER, AT_TIMESTAMP]"),
    ("GetShardIterator", {"StreamArn": "neither-arn-nor-anything-else-that-names-a-stream",
                          "ShardId": "shardId-00000000000000000001-00000000", "ShardIteratorType": "LATEST"},
     VAL, "Invalid StreamArn"),
    ("GetShardIterator", {"StreamArn": MISSING_ARN, "ShardId": "shardId-00000000000000000001-00000000",
                          "ShardIteratorType": "LATEST"}, NOT_FOUND,
     f"Requested resource not found: Stream: {MISSING_ARN} not found"),
    ("GetRecords", {}, VAL, "1 validation error detected: Value null at 'shardIterator' failed to satisfy "
     "constraint: Member must not be null"),
    ("GetRecords", {"ShardIterator": "no-iterator-was-ever-spelled-like-this"}, VAL,
     "Invalid ShardIterator"),
    ("GetRecords", {"ShardIterator": "x", "Limit": 1001}, VAL, "1 validation error detected: Value '1001' at "
     "'limit' failed to satisfy constraint: Member must have value less than or equal to 1000"),
    ("GetRecords", {"ShardIterator": "x", "Limit": 0}, VAL, "1 validation error detected: Value '0' at 'limit' "
     "failed to satisfy constraint: Member must have value greater than or equal to 1"),
    ("GetRecords", {"ShardIterator": "x", "Limit": -1}, VAL, "1 validation error detected: Value '-1' at 'limit' "
     "failed to satisfy constraint: Member must have value greater than or equal to 1"),
    ("GetShardIterator", {"StreamArn": MISSING_ARN, "ShardId": "shardId-00000000000000000001-00000000",
                          "ShardIteratorType": "LATEST", "SequenceNumber": "no-such-number-" * 3}, VAL,
     f"1 validation error detected: Value '{'no-such-number-' * 3}' at 'sequenceNumber' failed to satisfy "
     "constraint: Member must have length less than or equal to 40"),
])
def test_request_errors(endpoint, action, payload, error_type, message):
    assert raw(endpoint, action, payload) == (400, {"__type": error_type, "message": message})


def test_wrong_json_types_and_unknown_actions(endpoint):
    status, body = raw(endpoint, "GetRecords", {"ShardIterator": 5})
    assert (status, body["__type"]) == (400, "com.amazon.coral.service#SerializationException")
    unknown = (400, {"__type": "com.amazon.coral.service#UnknownOperationException"})
    assert raw(endpoint, "GetItem", {"TableName": "abc", "Key": {}}) == unknown
    assert raw(endpoint, "ListTheStreams", {}) == unknown
    assert raw(endpoint, "ListStreams", {}, prefix="DynamoDB_20120810") == unknown


def test_errors_of_a_stream(ddb, streams):
    name, arn = stream_table(ddb)
    ddb.put_item(TableName=name, Item=item("e", v=1))
    shard, records = wait_for_key(streams, arn, "e")
    number = records[0]["dynamodb"]["SequenceNumber"]
    get = streams.get_shard_iterator
    for other in ("shardId-00000000000000000001-00000000", "shard-that-no-node-ever-had-at-all"):
        expect_error(get, "ResourceNotFoundException", "Requested resource not found: Shard does not exist",
                     StreamArn=arn, ShardId=other, ShardIteratorType="LATEST")
    for kind in ("AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER"):
        expect_error(get, "ValidationException", f"SequenceNumber must be specified for ShardIteratorType {kind}",
                     StreamArn=arn, ShardId=shard, ShardIteratorType=kind)
    for kind in ("TRIM_HORIZON", "LATEST"):
        expect_error(get, "ValidationException", f"SequenceNumber must not be specified for ShardIteratorType {kind}",
                     StreamArn=arn, ShardId=shard, ShardIteratorType=kind, SequenceNumber=number)
    elsewhere = str(int(number) + 10**20)  # the next period's
    expect_error(get, "ValidationException", f"Invalid SequenceNumber {elsewhere} for shard {shard}",
                 StreamArn=arn, ShardId=shard, ShardIteratorType="AT_SEQUENCE_NUMBER", SequenceNumber=elsewhere)
    iterator = get(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    expect_error(streams.get_records, "ValidationException", "Invalid ShardIterator", ShardIterator=iterator[:-3])
    missing = unique_name("gone")
    expect_error(streams.list_streams, "ResourceNotFoundException",
                 f"Requested resource not found: Table: {missing} not found", TableName=missing)
    plain = create_table(ddb)  # no stream to disable: DynamoDB's message says so ("...stream...disable...")
    message = expect_error(ddb.update_table, "ValidationException", TableName=plain,
                           StreamSpecification={"StreamEnabled": False}).response["Error"]["Message"]
    assert "stream" in message and "disable" in message[message.index("stream"):]


# --- rollover, trimming, retention: a server with short shard periods -----------------------------
@pytest.fixture(scope="module", params=[m for m in ("embedded", "cluster")
                                        if m in os.environ.get("MERIDIAN_TEST_MODES", "embedded,cluster")])
def short(request, tmp_path_factory) -> str:
    """The endpoint of a server whose shards last SHARD_PERIOD_S and records RETENTION_S (TTL sweeps every 0.5 s)."""
    tmp = tmp_path_factory.mktemp(f"streams-{request.param}")
    if request.param == "cluster":
        cluster = LocalCluster(["us-east-1"], 2, None, tmp, sync=False, ttl_interval_s=0.5,
                               stream_retention_s=RETENTION_S, stream_shard_period_s=SHARD_PERIOD_S)  # fmt: skip
        request.addfinalizer(cluster.stop)
        cluster.start()
        return cluster.endpoints["us-east-1"]
    port = free_port()
    server = ManagedProcess(["serve", "--port", str(port), "--data-dir", str(tmp / "data"), "--ttl-interval-s", "0.5",
                             "--stream-retention-s", str(RETENTION_S), "--stream-shard-period-s", str(SHARD_PERIOD_S)],
                            log_path=tmp / "serve.log", name="serve")  # fmt: skip
    request.addfinalizer(server.terminate)
    url = f"http://127.0.0.1:{port}"
    wait_for_http_ok(url + "/health", STARTUP_TIMEOUT_S, process=server)
    return url


def test_shards_roll_over_and_close(short):
    ddb, streams = make_client(short), streams_client(short)
    name, arn = stream_table(ddb)
    ddb.put_item(TableName=name, Item=item("old", v=1))
    shard, _ = wait_for_key(streams, arn, "old")

    def closed_with_child() -> tuple[dict, dict] | None:
        shards = {s["ShardId"]: s for s in shards_of(streams, arn)}
        children = [s for s in shards.values() if s.get("ParentShardId") == shard]
        if "EndingSequenceNumber" in shards[shard]["SequenceNumberRange"] and children:
            return shards[shard], children[0]
        return None
    closed, child = wait_until(closed_with_child, RECORDS_TIMEOUT_S, what="the shard closed, and its child")
    records, ended = read_shard(streams, arn, shard)
    assert ended and [r["dynamodb"]["Keys"] for r in records] == [{"id": {"S": "old"}}]
    assert closed["SequenceNumberRange"]["EndingSequenceNumber"] == records[-1]["dynamodb"]["SequenceNumber"]
    child_starts = int(child["SequenceNumberRange"]["StartingSequenceNumber"])
    assert child_starts > int(closed["SequenceNumberRange"]["EndingSequenceNumber"])
    ddb.put_item(TableName=name, Item=item("old", v=2))

    def in_a_later_shard() -> str | None:
        newest, found = shard_of_key(streams, arn, "old")
        return newest if len(found) == 2 else None
    assert wait_until(in_a_later_shard, RECORDS_TIMEOUT_S, what="the later write's record") > shard


def test_records_are_trimmed_after_the_retention(short):
    ddb, streams = make_client(short), streams_client(short)
    name, arn = stream_table(ddb)
    ddb.put_item(TableName=name, Item=item("t", v=1))
    shard, _ = wait_for_key(streams, arn, "t")
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard,
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]  # fmt: skip
    wait_until(lambda: shard not in [s["ShardId"] for s in shards_of(streams, arn)],
               RETENTION_S + RECORDS_TIMEOUT_S, what="the shard trimmed away")
    expect_error(streams.get_records, "TrimmedDataAccessException", None, ShardIterator=iterator)
    expect_error(streams.get_shard_iterator, "TrimmedDataAccessException", None,
                 StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    oldest = shards_of(streams, arn)[0]
    assert "ParentShardId" not in oldest  # its parent is gone


def test_a_disabled_stream_is_forgotten_after_the_retention(short):
    ddb, streams = make_client(short), streams_client(short)
    name, arn = stream_table(ddb)
    ddb.update_table(TableName=name, StreamSpecification={"StreamEnabled": False})
    assert [s["StreamArn"] for s in streams.list_streams(TableName=name)["Streams"]] == [arn]
    wait_until(lambda: streams.list_streams(TableName=name)["Streams"] == [], RETENTION_S + RECORDS_TIMEOUT_S,
               what="the disabled stream forgotten")
    expect_error(streams.describe_stream, "ResourceNotFoundException",
                 f"Requested resource not found: Stream: {arn} not found", StreamArn=arn)


def test_time_to_live_deletes_are_the_services(short):
    ddb, streams = make_client(short), streams_client(short)
    name, arn = stream_table(ddb, "OLD_IMAGE")
    ddb.update_time_to_live(TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "exp"})
    expired = item("gone") | {"exp": {"N": str(int(time.time()) - 60)}}
    ddb.put_item(TableName=name, Item=expired)

    def removed() -> dict | None:
        return next((r for r in read_stream(streams, arn) if r["eventName"] == "REMOVE"), None)
    record = wait_until(removed, RECORDS_TIMEOUT_S, what="the TTL delete's record")
    assert record["userIdentity"] == {"PrincipalId": "dynamodb.amazonaws.com", "Type": "Service"}
    assert record["dynamodb"]["OldImage"] == expired


# --- Global Tables: every replica has its own stream ------------------------------------------
REGIONS = ("us-east-1", "eu-west-1")


@pytest.fixture(scope="module")
def two_regions(tmp_path_factory) -> dict[str, str]:
    """Two regions of one node each, replicating (cluster mode only: replication needs replicators)."""
    if "cluster" not in os.environ.get("MERIDIAN_TEST_MODES", "embedded,cluster"):
        pytest.skip("Global Tables need cluster mode")
    with LocalCluster(list(REGIONS), 1, None, tmp_path_factory.mktemp("streams-global"), sync=False) as cluster:
        yield dict(cluster.endpoints)


def test_each_replica_streams_every_region_writes(two_regions):
    ddb = {region: make_client(url) for region, url in two_regions.items()}
    streams = {region: streams_client(url) for region, url in two_regions.items()}
    name = create_table(ddb[REGIONS[0]])
    ddb[REGIONS[0]].update_table(TableName=name, ReplicaUpdates=[{"Create": {"RegionName": REGIONS[1]}}])
    wait_until(lambda: ddb[REGIONS[0]].describe_table(TableName=name)["Table"]["TableStatus"] == "ACTIVE",
               RECORDS_TIMEOUT_S, what="the replica ACTIVE")
    arns = {region: wait_until(lambda r=region: ddb[r].describe_table(TableName=name)["Table"].get("LatestStreamArn"),
                               RECORDS_TIMEOUT_S, what=f"{region}'s stream")
            for region in REGIONS}  # fmt: skip
    assert arns[REGIONS[1]].startswith(f"arn:aws:dynamodb:{REGIONS[1]}:")
    ddb[REGIONS[0]].put_item(TableName=name, Item=item("from-a", v=1))
    ddb[REGIONS[1]].put_item(TableName=name, Item=item("from-b", v=2))
    for region in REGIONS:
        described = streams[region].describe_stream(StreamArn=arns[region])["StreamDescription"]
        assert described["StreamViewType"] == "NEW_AND_OLD_IMAGES"

        def both(r=region) -> list[dict] | None:
            records = read_stream(streams[r], arns[r])
            keys = sorted(rec["dynamodb"]["Keys"]["id"]["S"] for rec in records)
            return records if keys == ["from-a", "from-b"] else None
        records = wait_until(both, RECORDS_TIMEOUT_S, what=f"both writes in {region}'s stream")
        assert {(rec["eventName"], rec["awsRegion"]) for rec in records} == {("INSERT", region)}
        assert all(rec["dynamodb"]["NewImage"]["id"] == rec["dynamodb"]["Keys"]["id"] for rec in records)
