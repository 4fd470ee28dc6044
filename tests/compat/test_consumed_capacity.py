"""ReturnConsumedCapacity: exact units and DynamoDB's answer shapes (issue 17).

A Query or Scan page is charged by the total size of the items it read
(before the filter and the projection), rounded up to 4 KB once per page,
halved when eventually consistent.  ``INDEXES`` lists the table's and each
index's share: an index read under the index's name, a write under each
index whose entry it put, changed or deleted.
"""

from __future__ import annotations

import pytest

from helpers import unique_name

KB = 1024


def _indexed_table(ddb) -> str:
    """Table ``id``/``s`` with GSI ``gsi`` on ``g`` and LSI ``lsi`` on ``l``, both KEYS_ONLY."""
    name = unique_name()
    ddb.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": t}
                              for a, t in (("id", "S"), ("s", "N"), ("g", "S"), ("l", "S"))],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}, {"AttributeName": "s", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[{"IndexName": "gsi", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                                 "Projection": {"ProjectionType": "KEYS_ONLY"}}],
        LocalSecondaryIndexes=[{"IndexName": "lsi",
                                "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"},
                                              {"AttributeName": "l", "KeyType": "RANGE"}],
                                "Projection": {"ProjectionType": "KEYS_ONLY"}}],
    )
    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    return name


@pytest.fixture
def small(ddb, table):
    """A table of ten small items in one partition."""
    name = table(pk=("id", "S"), sk=("s", "N"))
    for i in range(10):
        ddb.put_item(TableName=name, Item={"id": {"S": "p"}, "s": {"N": str(i)}, "v": {"S": "x"}})
    return name


@pytest.mark.parametrize("consistent, units", [(True, 1.0), (False, 0.5)])
def test_small_item_pages(ddb, small, consistent, units):
    scan = ddb.scan(TableName=small, ReturnConsumedCapacity="TOTAL", ConsistentRead=consistent)
    assert scan["ScannedCount"] == 10
    assert scan["ConsumedCapacity"] == {"TableName": small, "CapacityUnits": units}
    query = ddb.query(TableName=small, KeyConditionExpression="id = :p", ExpressionAttributeValues={":p": {"S": "p"}},
                      ReturnConsumedCapacity="INDEXES", ConsistentRead=consistent)
    assert query["ConsumedCapacity"] == {"TableName": small, "CapacityUnits": units, "Table": {"CapacityUnits": units}}


@pytest.mark.parametrize("extra", [
    {"FilterExpression": "v = :z", "ExpressionAttributeValues": {":z": {"S": "z"}}},
    {"ProjectionExpression": "id"},
    {"Select": "COUNT"},
    {"Limit": 3},
], ids=["filter", "projection", "count", "limit"])
def test_what_was_read_is_charged(ddb, small, extra):
    page = ddb.scan(TableName=small, ReturnConsumedCapacity="TOTAL", ConsistentRead=True, **extra)
    assert page["ConsumedCapacity"] == {"TableName": small, "CapacityUnits": 1.0}


def test_a_page_is_rounded_once(ddb, table):
    """Three items of about 1.5 KB: 4.5 KB read is 2 units, not 3 (one per item)."""
    name = table(pk=("id", "S"), sk=("s", "N"))
    for i in range(3):
        ddb.put_item(TableName=name, Item={"id": {"S": "p"}, "s": {"N": str(i)}, "v": {"S": "x" * (1500 - 6)}})
    key = {"KeyConditionExpression": "id = :p", "ExpressionAttributeValues": {":p": {"S": "p"}}}
    assert ddb.query(TableName=name, ReturnConsumedCapacity="TOTAL", ConsistentRead=True,
                     **key)["ConsumedCapacity"]["CapacityUnits"] == 2.0
    assert ddb.query(TableName=name, ReturnConsumedCapacity="TOTAL",
                     **key)["ConsumedCapacity"]["CapacityUnits"] == 1.0
    assert ddb.scan(TableName=name, ReturnConsumedCapacity="TOTAL", ConsistentRead=True,
                    Limit=2)["ConsumedCapacity"]["CapacityUnits"] == 1.0


def test_index_reads(ddb):
    name = _indexed_table(ddb)
    try:
        for i in range(5):
            ddb.put_item(TableName=name, Item={"id": {"S": "p"}, "s": {"N": str(i)}, "g": {"S": "G"},
                                               "l": {"S": f"l{i}"}})
        gsi = {"IndexName": "gsi", "KeyConditionExpression": "g = :g", "ExpressionAttributeValues": {":g": {"S": "G"}}}
        assert ddb.query(TableName=name, ReturnConsumedCapacity="TOTAL", **gsi)["ConsumedCapacity"] == {
            "TableName": name, "CapacityUnits": 0.5}
        assert ddb.query(TableName=name, ReturnConsumedCapacity="INDEXES", **gsi)["ConsumedCapacity"] == {
            "TableName": name, "CapacityUnits": 0.5, "Table": {"CapacityUnits": 0.0},
            "GlobalSecondaryIndexes": {"gsi": {"CapacityUnits": 0.5}}}
        assert ddb.scan(TableName=name, IndexName="gsi", ReturnConsumedCapacity="INDEXES")["ConsumedCapacity"] == {
            "TableName": name, "CapacityUnits": 0.5, "Table": {"CapacityUnits": 0.0},
            "GlobalSecondaryIndexes": {"gsi": {"CapacityUnits": 0.5}}}
        lsi = {"IndexName": "lsi", "KeyConditionExpression": "id = :p", "ExpressionAttributeValues": {":p": {"S": "p"}}}
        assert ddb.query(TableName=name, ReturnConsumedCapacity="INDEXES", ConsistentRead=True,
                         **lsi)["ConsumedCapacity"] == {
            "TableName": name, "CapacityUnits": 1.0, "Table": {"CapacityUnits": 0.0},
            "LocalSecondaryIndexes": {"lsi": {"CapacityUnits": 1.0}}}
        assert ddb.scan(TableName=name, IndexName="lsi", ReturnConsumedCapacity="TOTAL")["ConsumedCapacity"] == {
            "TableName": name, "CapacityUnits": 0.5}
    finally:
        ddb.delete_table(TableName=name)


def _both(table_units: float, gsi: float = 0.0, lsi: float = 0.0) -> dict:
    shaped: dict = {"CapacityUnits": table_units + gsi + lsi, "Table": {"CapacityUnits": table_units}}
    if gsi:
        shaped["GlobalSecondaryIndexes"] = {"gsi": {"CapacityUnits": gsi}}
    if lsi:
        shaped["LocalSecondaryIndexes"] = {"lsi": {"CapacityUnits": lsi}}
    return shaped


def test_index_writes(ddb):
    name = _indexed_table(ddb)
    key = {"id": {"S": "p"}, "s": {"N": "1"}}
    item = {**key, "g": {"S": "G"}, "l": {"S": "L"}, "v": {"S": "x"}}

    def capacity(answer):
        consumed = dict(answer["ConsumedCapacity"])
        assert consumed.pop("TableName") == name
        return consumed

    try:
        # A new item with both index keys: one write in each index.
        out = ddb.put_item(TableName=name, Item=item, ReturnConsumedCapacity="INDEXES")
        assert capacity(out) == _both(1.0, gsi=1.0, lsi=1.0)
        assert "Attributes" not in out
        # The same item again: no index entry changes.
        assert capacity(ddb.put_item(TableName=name, Item=item, ReturnConsumedCapacity="INDEXES")) == _both(1.0)
        # A non-projected attribute: the table only.
        out = ddb.update_item(TableName=name, Key=key, UpdateExpression="SET v = :v",
                              ExpressionAttributeValues={":v": {"S": "y"}}, ReturnConsumedCapacity="INDEXES")
        assert capacity(out) == _both(1.0)
        # The GSI key changes: delete the old entry, put the new one.
        out = ddb.update_item(TableName=name, Key=key, UpdateExpression="SET g = :g",
                              ExpressionAttributeValues={":g": {"S": "H"}}, ReturnConsumedCapacity="TOTAL")
        assert capacity(out) == {"CapacityUnits": 3.0}
        # ... asked for the new item: the same charge, and the item.
        out = ddb.update_item(TableName=name, Key=key, UpdateExpression="SET g = :g",
                              ExpressionAttributeValues={":g": {"S": "I"}}, ReturnValues="ALL_NEW",
                              ReturnConsumedCapacity="INDEXES")
        assert capacity(out) == _both(1.0, gsi=2.0)
        assert out["Attributes"]["g"] == {"S": "I"}
        # Removing the LSI key: its entry goes.
        out = ddb.update_item(TableName=name, Key=key, UpdateExpression="REMOVE l", ReturnConsumedCapacity="INDEXES")
        assert capacity(out) == _both(1.0, lsi=1.0)
        # Deleting: the GSI entry left goes; ALL_OLD still answers.
        out = ddb.delete_item(TableName=name, Key=key, ReturnValues="ALL_OLD", ReturnConsumedCapacity="INDEXES")
        assert capacity(out) == _both(1.0, gsi=1.0)
        assert out["Attributes"]["g"] == {"S": "I"}
        # An item without index keys: the table only.
        out = ddb.put_item(TableName=name, Item={**key, "v": {"S": "x"}}, ReturnConsumedCapacity="TOTAL")
        assert capacity(out) == {"CapacityUnits": 1.0}
    finally:
        ddb.delete_table(TableName=name)


def test_write_without_indexes_keeps_its_shape(ddb, table):
    name = table(pk=("id", "S"))
    out = ddb.put_item(TableName=name, Item={"id": {"S": "a"}, "v": {"S": "x" * (2 * KB)}},
                       ReturnConsumedCapacity="INDEXES")
    assert out["ConsumedCapacity"] == {"TableName": name, "CapacityUnits": 3.0, "Table": {"CapacityUnits": 3.0}}
