"""UpdateItem on an item that does not exist, through boto3, against any endpoint.

UpdateItem creates a missing item ("Edits an existing item's attributes, or
adds a new item to the table if it does not already exist"), with one
exception DynamoDB makes: an update that only takes attributes away
(``REMOVE``, ``DELETE`` of set members, the legacy ``DELETE`` action with
or without a ``Value``: "Nothing happens; there is no attribute to delete")
leaves the item missing, and answers no ``Attributes`` whatever
``ReturnValues`` asks.  An update with no action at all (no
``UpdateExpression``, empty or absent ``AttributeUpdates``) still creates
the key-only item; so does any update that writes an attribute (``SET``,
``ADD``, legacy ``PUT`` / ``ADD``), beside removals or not.
"""

from __future__ import annotations

import pytest

from helpers import expect_error

KEY = {"id": {"S": "k"}}

REMOVING = {
    "remove": dict(UpdateExpression="REMOVE a"),
    "remove-several": dict(UpdateExpression="REMOVE a, #b", ExpressionAttributeNames={"#b": "b"}),
    # A nested path below a missing attribute is an error on an existing
    # item, but ignored when the item itself is missing.
    "remove-nested": dict(UpdateExpression="REMOVE a.b, c[0]"),
    "delete-set-members": dict(UpdateExpression="DELETE s :s", ExpressionAttributeValues={":s": {"SS": ["x"]}}),
    "remove-and-delete": dict(UpdateExpression="REMOVE a DELETE s :s", ExpressionAttributeValues={":s": {"NS": ["1"]}}),
    "legacy-delete": dict(AttributeUpdates={"a": {"Action": "DELETE"}}),
    "legacy-delete-two": dict(AttributeUpdates={"a": {"Action": "DELETE"}, "b": {"Action": "DELETE"}}),
    "legacy-delete-set-members": dict(AttributeUpdates={"s": {"Action": "DELETE", "Value": {"SS": ["x"]}}}),
}

CREATING = {
    "no-update": (dict(), {}),
    "legacy-empty": (dict(AttributeUpdates={}), {}),
    "remove-and-set": (
        dict(UpdateExpression="REMOVE a SET b = :v", ExpressionAttributeValues={":v": {"S": "x"}}),
        {"b": {"S": "x"}},
    ),
    "add-number": (
        dict(UpdateExpression="ADD n :one", ExpressionAttributeValues={":one": {"N": "1"}}),
        {"n": {"N": "1"}},
    ),
    "add-set-and-delete": (
        dict(UpdateExpression="ADD s :s DELETE t :s", ExpressionAttributeValues={":s": {"SS": ["x"]}}),
        {"s": {"SS": ["x"]}},
    ),
    "legacy-put-and-delete": (
        dict(AttributeUpdates={"a": {"Action": "DELETE"}, "b": {"Action": "PUT", "Value": {"N": "2"}}}),
        {"b": {"N": "2"}},
    ),
    "legacy-add": (dict(AttributeUpdates={"n": {"Action": "ADD", "Value": {"N": "3"}}}), {"n": {"N": "3"}}),
}


def _absent(ddb, name: str, key: dict = KEY) -> None:
    assert "Item" not in ddb.get_item(TableName=name, Key=key, ConsistentRead=True)
    assert ddb.scan(TableName=name, Select="COUNT", ConsistentRead=True)["Count"] == 0


@pytest.mark.parametrize("request_kwargs", list(REMOVING.values()), ids=list(REMOVING))
def test_an_update_that_only_removes_creates_nothing(ddb, table, request_kwargs):
    name = table()
    out = ddb.update_item(TableName=name, Key=KEY, **request_kwargs)
    assert "Attributes" not in out
    _absent(ddb, name)


@pytest.mark.parametrize("return_values", ["ALL_NEW", "UPDATED_NEW", "ALL_OLD", "UPDATED_OLD"])
def test_an_update_that_creates_nothing_returns_no_attributes(ddb, table, return_values):
    name = table()
    out = ddb.update_item(TableName=name, Key=KEY, UpdateExpression="REMOVE a", ReturnValues=return_values)
    assert "Attributes" not in out
    out = ddb.update_item(
        TableName=name, Key=KEY, AttributeUpdates={"a": {"Action": "DELETE"}}, ReturnValues=return_values
    )
    assert "Attributes" not in out
    _absent(ddb, name)


def test_an_update_that_creates_nothing_still_consumes_a_write(ddb, table):
    name = table()
    out = ddb.update_item(TableName=name, Key=KEY, UpdateExpression="REMOVE a", ReturnConsumedCapacity="TOTAL")
    assert out["ConsumedCapacity"] == {"TableName": name, "CapacityUnits": 1.0}
    _absent(ddb, name)


def test_composite_key_update_that_only_removes_creates_nothing(ddb, table):
    name = table(pk=("pk", "S"), sk=("sk", "N"))
    key = {"pk": {"S": "p"}, "sk": {"N": "1"}}
    out = ddb.update_item(TableName=name, Key=key, UpdateExpression="REMOVE a", ReturnValues="ALL_NEW")
    assert "Attributes" not in out
    _absent(ddb, name, key)


def test_a_deleted_item_is_not_brought_back_by_a_remove(ddb, table):
    name = table()
    ddb.put_item(TableName=name, Item={**KEY, "a": {"S": "x"}})
    ddb.delete_item(TableName=name, Key=KEY)
    out = ddb.update_item(TableName=name, Key=KEY, UpdateExpression="REMOVE a", ReturnValues="ALL_NEW")
    assert "Attributes" not in out
    _absent(ddb, name)


def test_a_remove_on_an_existing_item_keeps_the_key_only_item(ddb, table):
    name = table()
    ddb.put_item(TableName=name, Item={**KEY, "a": {"S": "x"}})
    out = ddb.update_item(TableName=name, Key=KEY, UpdateExpression="REMOVE a", ReturnValues="ALL_NEW")
    assert out["Attributes"] == KEY
    assert ddb.get_item(TableName=name, Key=KEY, ConsistentRead=True)["Item"] == KEY


@pytest.mark.parametrize("request_kwargs, created", list(CREATING.values()), ids=list(CREATING))
def test_an_update_that_writes_or_does_nothing_creates_the_item(ddb, table, request_kwargs, created):
    name = table()
    out = ddb.update_item(TableName=name, Key=KEY, ReturnValues="ALL_NEW", **request_kwargs)
    assert out["Attributes"] == {**KEY, **created}
    assert ddb.get_item(TableName=name, Key=KEY, ConsistentRead=True)["Item"] == {**KEY, **created}
    assert ddb.scan(TableName=name, Select="COUNT", ConsistentRead=True)["Count"] == 1


def test_an_empty_update_returns_no_updated_attributes(ddb, table):
    name = table()
    out = ddb.update_item(TableName=name, Key=KEY, AttributeUpdates={}, ReturnValues="UPDATED_NEW")
    assert "Attributes" not in out
    assert ddb.get_item(TableName=name, Key=KEY, ConsistentRead=True)["Item"] == KEY


def test_a_failed_condition_fails_whatever_the_update(ddb, table):
    name = table()
    expect_error(
        ddb.update_item, "ConditionalCheckFailedException", "The conditional request failed",
        TableName=name, Key=KEY, UpdateExpression="REMOVE a", ConditionExpression="attribute_exists(id)",
    )
    expect_error(
        ddb.update_item, "ConditionalCheckFailedException", "The conditional request failed",
        TableName=name, Key=KEY, AttributeUpdates={"a": {"Action": "DELETE"}},
        Expected={"id": {"Exists": True, "Value": {"S": "k"}}},
    )
    _absent(ddb, name)


def test_a_passing_condition_still_creates_nothing(ddb, table):
    name = table()
    out = ddb.update_item(
        TableName=name, Key=KEY, UpdateExpression="REMOVE a", ConditionExpression="attribute_not_exists(id)",
        ReturnValues="ALL_NEW",
    )
    assert "Attributes" not in out
    _absent(ddb, name)
