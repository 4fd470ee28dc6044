"""Item and expression limits as DynamoDB answers them (issue 17's data-model list).

* attribute names: 1 to 65,535 bytes at any depth, wherever a name is given;
* conditions nest as deep as DynamoDB's 300 operators allow, then "too many
  operators" or "redundant parentheses" (ScyllaDB's AWS-run tests);
* a projection may not look into a key attribute (GetItem, BatchGetItem);
* a global index key value past 2,048 (HASH) / 1,024 (RANGE) bytes is
  refused on write, and an item written before the index is skipped by the
  backfill;
* legacy edge cases: ``AttributeUpdates`` DELETE with an empty value,
  ``Expected`` with empty maps;
* UpdateTable redeclaring an existing attribute with another type keeps the
  table's type (live DynamoDB, 2026);
* Query's ExclusiveStartKey on a table without a sort key.
"""

from __future__ import annotations

import pytest

from helpers import create_table, expect_error, unique_name
from tests.waiting import wait_until

LONG = "1 validation error detected: Attribute name is too large, must be less than 65536 bytes"
EMPTY = "1 validation error detected: Empty attribute name"
OPERATORS = "Invalid ConditionExpression: The expression contains too many operators; operator count: 301"
INVALID = "One or more parameter values were invalid: "
CONVERGE_S = 30.0


def _s(text: str) -> dict:
    return {"S": text}


@pytest.fixture(scope="module")
def tbl(ddb):
    name = create_table(ddb, unique_name("fid"))
    yield name
    ddb.delete_table(TableName=name)


# --- attribute names ------------------------------------------------------------------


def test_attribute_names_up_to_65535_bytes(ddb, tbl):
    longest = "a" * 65535
    ddb.put_item(TableName=tbl, Item={"id": _s("long"), longest: _s("v"), "m": {"M": {longest: _s("w")}}})
    got = ddb.get_item(TableName=tbl, Key={"id": _s("long")}, ConsistentRead=True,
                       ProjectionExpression="#n", ExpressionAttributeNames={"#n": longest})
    assert got["Item"] == {longest: _s("v")}
    too_long = "é" * 32768  # 65,536 bytes in UTF-8
    for item in ({"id": _s("x"), too_long: _s("v")}, {"id": _s("x"), "m": {"M": {"a" * 65536: _s("v")}}}):
        expect_error(ddb.put_item, "ValidationException", LONG, TableName=tbl, Item=item)
    expect_error(ddb.update_item, "ValidationException", LONG, TableName=tbl, Key={"id": _s("x")},
                 UpdateExpression="SET #n = :v", ExpressionAttributeNames={"#n": "a" * 65536},
                 ExpressionAttributeValues={":v": _s("v")})
    expect_error(ddb.update_item, "ValidationException", LONG, TableName=tbl, Key={"id": _s("x")},
                 UpdateExpression="SET doc = :v", ExpressionAttributeValues={":v": {"M": {"a" * 65536: _s("v")}}})
    expect_error(ddb.update_item, "ValidationException", LONG, TableName=tbl, Key={"id": _s("x")},
                 AttributeUpdates={"a" * 65536: {"Action": "PUT", "Value": _s("v")}})
    expect_error(ddb.get_item, "ValidationException", LONG, TableName=tbl, Key={"id": _s("x")},
                 AttributesToGet=["a" * 65536])
    assert "Item" not in ddb.get_item(TableName=tbl, Key={"id": _s("x")}, ConsistentRead=True)


def test_empty_attribute_names(ddb, tbl):
    for item in ({"id": _s("e"), "": _s("v")}, {"id": _s("e"), "m": {"M": {"": _s("v")}}}):
        expect_error(ddb.put_item, "ValidationException", EMPTY, TableName=tbl, Item=item)
    expect_error(ddb.update_item, "ValidationException", EMPTY, TableName=tbl, Key={"id": _s("e")},
                 AttributeUpdates={"": {"Action": "PUT", "Value": _s("v")}})
    expect_error(ddb.put_item, "ValidationException", EMPTY, TableName=tbl, Item={"id": _s("e")},
                 Expected={"": {"Exists": False}})
    expect_error(ddb.get_item, "ValidationException",
                 "ExpressionAttributeNames contains invalid value: Empty attribute name for key #a",
                 TableName=tbl, Key={"id": _s("e")}, ProjectionExpression="#a", ExpressionAttributeNames={"#a": ""})
    assert "Item" not in ddb.get_item(TableName=tbl, Key={"id": _s("e")}, ConsistentRead=True)


# --- deeply nested conditions ---------------------------------------------------------------


def test_nested_conditions_up_to_300_operators(ddb, tbl):
    key = {"id": _s("deep")}
    ddb.put_item(TableName=tbl, Item={**key, "a": {"N": "1"}, "b": {"N": "2"}})

    def update(condition: str):
        return ddb.update_item(TableName=tbl, Key=key, UpdateExpression="SET z = :v", ConditionExpression=condition,
                               ExpressionAttributeValues={":v": {"N": "1"}})

    update("a<b " + "or (a<b " * 149 + ")" * 149)  # 299 operators, 149 levels of parentheses
    update("NOT (" * 150 + "a<b" + ")" * 150)  # 150 NOTs (even: a<b), 150 levels
    update("NOT " * 298 + "a<b")
    expect_error(update, "ValidationException", OPERATORS, condition="a<b " + "or (a<b " * 454 + ")" * 454)
    expect_error(update, "ValidationException", OPERATORS, condition="NOT " * 1000 + "a<b")
    expect_error(update, "ValidationException", OPERATORS, condition="a<b " + "or a<b " * 584)
    expect_error(update, "ValidationException", "Invalid ConditionExpression: The expression has redundant parentheses;",
                 condition="(" * 2046 + "a<b" + ")" * 2046)
    expect_error(ddb.scan, "ValidationException",
                 "Invalid FilterExpression: The expression contains too many operators; operator count: 301",
                 TableName=tbl, FilterExpression="NOT " * 300 + "a<b")
    assert ddb.scan(TableName=tbl, FilterExpression="a<b " + "or (a<b " * 149 + ")" * 149, Select="COUNT")["Count"] >= 1


# --- projections into key attributes ------------------------------------------------------


def test_projection_cannot_look_into_a_key(ddb, tbl):
    message = "Key attributes must be scalars; list random access '[]' and map lookup '.' are not allowed: Key: id"
    for projection in ("id[0]", "id.a", "a, id[1]"):
        expect_error(ddb.get_item, "ValidationException", message, TableName=tbl, Key={"id": _s("k")},
                     ProjectionExpression=projection)
        expect_error(ddb.batch_get_item, "ValidationException", message,
                     RequestItems={tbl: {"Keys": [{"id": _s("k")}], "ProjectionExpression": projection}})
    ddb.get_item(TableName=tbl, Key={"id": _s("k")}, ProjectionExpression="id, a[0], m.x")


# --- global index key sizes -------------------------------------------------------------------


@pytest.fixture(scope="module")
def gsi_tbl(ddb):
    name = unique_name("gsz")
    ddb.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": t}
                              for a, t in (("pk", "S"), ("g", "S"), ("r", "B"))],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[{"IndexName": "by_g", "Projection": {"ProjectionType": "ALL"},
                                 "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"},
                                               {"AttributeName": "r", "KeyType": "RANGE"}]}],
    )
    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    yield name
    ddb.delete_table(TableName=name)


def test_index_key_sizes_are_checked_on_write(ddb, gsi_tbl):
    hash_message = INVALID + "Size of hashkey has exceeded the maximum size limit of2048 bytes"
    range_message = INVALID + "Aggregated size of all range keys has exceeded the size limit of 1024 bytes"
    ddb.put_item(TableName=gsi_tbl, Item={"pk": _s("ok"), "g": _s("é" * 1024), "r": {"B": b"x" * 1024}})
    expect_error(ddb.put_item, "ValidationException", hash_message, TableName=gsi_tbl,
                 Item={"pk": _s("big"), "g": _s("x" * 2049), "r": {"B": b"x"}})
    expect_error(ddb.put_item, "ValidationException", range_message, TableName=gsi_tbl,
                 Item={"pk": _s("big"), "g": _s("x"), "r": {"B": b"x" * 1025}})
    expect_error(ddb.update_item, "ValidationException", range_message, TableName=gsi_tbl, Key={"pk": _s("ok")},
                 UpdateExpression="SET r = :r", ExpressionAttributeValues={":r": {"B": b"x" * 1025}})
    expect_error(ddb.batch_write_item, "ValidationException", hash_message, RequestItems={gsi_tbl: [
        {"PutRequest": {"Item": {"pk": _s("b1"), "g": _s("x")}}},
        {"PutRequest": {"Item": {"pk": _s("b2"), "g": _s("x" * 2049)}}}]})
    for key in ("big", "b1", "b2"):
        assert "Item" not in ddb.get_item(TableName=gsi_tbl, Key={"pk": _s(key)}, ConsistentRead=True)
    assert ddb.get_item(TableName=gsi_tbl, Key={"pk": _s("ok")}, ConsistentRead=True)["Item"]["r"] == {"B": b"x" * 1024}


def test_backfill_skips_items_whose_key_is_too_large(ddb, table):
    name = table()
    ddb.put_item(TableName=name, Item={"id": _s("small"), "h": _s("same")})
    ddb.put_item(TableName=name, Item={"id": _s("large"), "h": _s("x" * 2049)})
    ddb.update_table(TableName=name, AttributeDefinitions=[{"AttributeName": "h", "AttributeType": "S"}],
                     GlobalSecondaryIndexUpdates=[{"Create": {
                         "IndexName": "by_h", "KeySchema": [{"AttributeName": "h", "KeyType": "HASH"}],
                         "Projection": {"ProjectionType": "KEYS_ONLY"}}}])

    def backfilled():
        index = ddb.describe_table(TableName=name)["Table"]["GlobalSecondaryIndexes"][0]
        return index["IndexStatus"] == "ACTIVE" and "Backfilling" not in index

    wait_until(backfilled, CONVERGE_S, what="the index to be backfilled")
    found = wait_until(lambda: ddb.query(TableName=name, IndexName="by_h", KeyConditionExpression="h = :h",
                                         ExpressionAttributeValues={":h": _s("same")})["Items"],
                       CONVERGE_S, what="the small item in the index")
    assert found == [{"id": _s("small"), "h": _s("same")}]
    assert ddb.scan(TableName=name, IndexName="by_h")["Items"] == found
    assert ddb.get_item(TableName=name, Key={"id": _s("large")}, ConsistentRead=True)["Item"]["h"] == _s("x" * 2049)


# --- legacy parameters ---------------------------------------------------------------------


def test_attribute_updates_delete_and_expected_edge_cases(ddb, tbl):
    key = {"id": _s("legacy")}
    expect_error(ddb.update_item, "ValidationException",
                 "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes",
                 TableName=tbl, Key=key, AttributeUpdates={"a": {"Action": "DELETE", "Value": {}}})
    expect_error(ddb.update_item, "ValidationException", INVALID + "An string set  may not be empty",
                 TableName=tbl, Key=key, AttributeUpdates={"a": {"Action": "DELETE", "Value": {"SS": []}}})
    expect_error(ddb.update_item, "ValidationException",
                 INVALID + "DELETE action with value is not supported for the type S",
                 TableName=tbl, Key=key, AttributeUpdates={"a": {"Action": "DELETE", "Value": _s("x")}})
    expect_error(ddb.update_item, "ValidationException",
                 INVALID + "Only DELETE action is allowed when no attribute value is specified",
                 TableName=tbl, Key=key, AttributeUpdates={"a": {}})
    expect_error(ddb.put_item, "ValidationException",
                 INVALID + "Value must be provided when Exists is null for Attribute: a",
                 TableName=tbl, Item=key, Expected={"a": {}})
    expect_error(ddb.put_item, "ValidationException",
                 "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes",
                 TableName=tbl, Item=key, Expected={"a": {"Value": {}}})
    assert "Item" not in ddb.get_item(TableName=tbl, Key=key, ConsistentRead=True)  # nothing written so far
    ddb.put_item(TableName=tbl, Item=key, Expected={})  # an empty Expected is no condition
    ddb.update_item(TableName=tbl, Key=key, AttributeUpdates={})
    assert ddb.get_item(TableName=tbl, Key=key, ConsistentRead=True)["Item"] == key


# --- table definitions ------------------------------------------------------------------------


def test_update_table_keeps_the_type_of_an_existing_attribute(ddb, table):
    name = table()
    ddb.update_table(TableName=name, AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "N"},
                                                           {"AttributeName": "g", "AttributeType": "S"}],
                     GlobalSecondaryIndexUpdates=[{"Create": {
                         "IndexName": "by_g", "Projection": {"ProjectionType": "ALL"},
                         "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"},
                                       {"AttributeName": "id", "KeyType": "RANGE"}]}}])
    definitions = ddb.describe_table(TableName=name)["Table"]["AttributeDefinitions"]
    assert {"AttributeName": "id", "AttributeType": "S"} in definitions
    ddb.put_item(TableName=name, Item={"id": _s("still a string"), "g": _s("g")})


# --- Query's ExclusiveStartKey ------------------------------------------------------------------


def test_query_start_key_on_a_table_without_a_sort_key(ddb, tbl):
    def query(start: dict):
        return ddb.query(TableName=tbl, KeyConditionExpression="id = :p", ExpressionAttributeValues={":p": _s("q")},
                         ExclusiveStartKey=start)

    ddb.put_item(TableName=tbl, Item={"id": _s("q")})
    assert query({"id": _s("q")})["Items"] == []  # resumes after the only item
    expect_error(query, "ValidationException", "Exclusive Start Key must have same size as table's key schema",
                 start={"id": _s("q"), "extra": _s("x")})
    expect_error(query, "ValidationException", "The provided starting key is invalid", start={"other": _s("q")})
    expect_error(query, "ValidationException", "The provided key element does not match the schema",
                 start={"id": {"N": "1"}})
    expect_error(query, "ValidationException",
                 "The provided starting key is outside query boundaries based on provided conditions",
                 start={"id": _s("elsewhere")})
