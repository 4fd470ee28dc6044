"""PutItem, GetItem, UpdateItem, DeleteItem through boto3, against any endpoint.

Expected values and messages follow the DynamoDB API reference and what
DynamoDB answers.
"""

from __future__ import annotations

import pytest

from helpers import create_table, expect_error, unique_name


@pytest.fixture(scope="module")
def tbl(ddb):
    return create_table(ddb, unique_name("items"))


@pytest.fixture(scope="module")
def composite(ddb):
    return create_table(ddb, unique_name("comp"), pk=("pk", "S"), sk=("sk", "N"))


ALL_TYPES = {
    "id": {"S": "all-types"},
    "s": {"S": "héllo"},
    "empty": {"S": ""},
    "n": {"N": "42"},
    "b": {"B": b"\x00\x01\xff"},  # boto3 base64-encodes bytes on the wire
    "bool": {"BOOL": True},
    "null": {"NULL": True},
    "m": {"M": {"inner": {"L": [{"N": "1"}, {"S": "two"}]}}},
    "l": {"L": [{"BOOL": False}, {"M": {}}]},
    "ss": {"SS": ["a", "b"]},
    "ns": {"NS": ["1", "2.5"]},
    "bs": {"BS": [b"x"]},
}


def test_put_get_all_types(ddb, tbl):
    ddb.put_item(TableName=tbl, Item=ALL_TYPES)
    item = ddb.get_item(TableName=tbl, Key={"id": {"S": "all-types"}}, ConsistentRead=True)["Item"]
    assert item["s"] == {"S": "héllo"}
    assert item["empty"] == {"S": ""}
    assert item["b"] == {"B": b"\x00\x01\xff"}
    assert item["m"] == {"M": {"inner": {"L": [{"N": "1"}, {"S": "two"}]}}}
    assert sorted(item["ss"]["SS"]) == ["a", "b"]
    assert sorted(item["ns"]["NS"]) == ["1", "2.5"]
    assert item["bs"] == {"BS": [b"x"]}
    assert item["null"] == {"NULL": True}
    assert set(item) == set(ALL_TYPES)


@pytest.mark.parametrize(
    "given, returned",
    [("1E+2", "100"), ("0.50", "0.5"), ("-0", "0"), ("007", "7"), ("1.0e-3", "0.001"), ("-12.3400", "-12.34")],
)
def test_numbers_are_normalised(ddb, tbl, given, returned):
    ddb.put_item(TableName=tbl, Item={"id": {"S": "num"}, "n": {"N": given}})
    assert ddb.get_item(TableName=tbl, Key={"id": {"S": "num"}})["Item"]["n"] == {"N": returned}


def test_get_missing_item_has_no_item(ddb, tbl):
    out = ddb.get_item(TableName=tbl, Key={"id": {"S": "nope"}})
    assert "Item" not in out


def test_projection_expression_nested(ddb, tbl):
    ddb.put_item(TableName=tbl, Item={
        "id": {"S": "proj"}, "a": {"M": {"b": {"L": [{"N": "0"}, {"N": "1"}, {"M": {"c": {"S": "deep"}, "d": {"S": "no"}}}]}}},
        "other": {"S": "x"},
    })
    out = ddb.get_item(TableName=tbl, Key={"id": {"S": "proj"}}, ProjectionExpression="a.b[2].c, #o",
                       ExpressionAttributeNames={"#o": "other"})
    assert out["Item"] == {"a": {"M": {"b": {"L": [{"M": {"c": {"S": "deep"}}}]}}}, "other": {"S": "x"}}


def test_attributes_to_get_legacy(ddb, tbl):
    ddb.put_item(TableName=tbl, Item={"id": {"S": "atg"}, "x": {"N": "1"}, "y": {"N": "2"}})
    out = ddb.get_item(TableName=tbl, Key={"id": {"S": "atg"}}, AttributesToGet=["x"])
    assert out["Item"] == {"x": {"N": "1"}}


def test_conditional_put_and_return_values_on_failure(ddb, tbl):
    ddb.put_item(TableName=tbl, Item={"id": {"S": "cond"}, "v": {"N": "1"}}, ConditionExpression="attribute_not_exists(id)")
    expect_error(ddb.put_item, "ConditionalCheckFailedException", "The conditional request failed",
                 TableName=tbl, Item={"id": {"S": "cond"}, "v": {"N": "2"}}, ConditionExpression="attribute_not_exists(id)")
    err = expect_error(ddb.put_item, "ConditionalCheckFailedException", TableName=tbl,
                       Item={"id": {"S": "cond"}, "v": {"N": "3"}}, ConditionExpression="attribute_not_exists(id)",
                       ReturnValuesOnConditionCheckFailure="ALL_OLD")
    assert err.response["Item"] == {"id": {"S": "cond"}, "v": {"N": "1"}}
    assert ddb.get_item(TableName=tbl, Key={"id": {"S": "cond"}})["Item"]["v"] == {"N": "1"}


def test_put_return_values(ddb, tbl):
    assert "Attributes" not in ddb.put_item(TableName=tbl, Item={"id": {"S": "rv"}, "v": {"N": "1"}}, ReturnValues="ALL_OLD")
    out = ddb.put_item(TableName=tbl, Item={"id": {"S": "rv"}, "v": {"N": "2"}}, ReturnValues="ALL_OLD")
    assert out["Attributes"] == {"id": {"S": "rv"}, "v": {"N": "1"}}
    expect_error(ddb.put_item, "ValidationException", "ReturnValues can only be ALL_OLD or NONE",
                 TableName=tbl, Item={"id": {"S": "rv"}}, ReturnValues="ALL_NEW")


def test_update_return_values_modes(ddb, tbl):
    key = {"id": {"S": "upd"}}
    ddb.put_item(TableName=tbl, Item={**key, "a": {"N": "1"}, "b": {"S": "keep"}})
    out = ddb.update_item(TableName=tbl, Key=key, UpdateExpression="SET a = a + :one", ExpressionAttributeValues={":one": {"N": "1"}},
                          ReturnValues="UPDATED_OLD")
    assert out["Attributes"] == {"a": {"N": "1"}}
    out = ddb.update_item(TableName=tbl, Key=key, UpdateExpression="SET a = a + :one", ExpressionAttributeValues={":one": {"N": "1"}},
                          ReturnValues="UPDATED_NEW")
    assert out["Attributes"] == {"a": {"N": "3"}}
    out = ddb.update_item(TableName=tbl, Key=key, UpdateExpression="REMOVE b", ReturnValues="ALL_OLD")
    assert out["Attributes"] == {**key, "a": {"N": "3"}, "b": {"S": "keep"}}
    out = ddb.update_item(TableName=tbl, Key=key, UpdateExpression="ADD c :s", ExpressionAttributeValues={":s": {"SS": ["x"]}},
                          ReturnValues="ALL_NEW")
    assert out["Attributes"] == {**key, "a": {"N": "3"}, "c": {"SS": ["x"]}}
    out = ddb.update_item(TableName=tbl, Key=key, UpdateExpression="SET d = :d", ExpressionAttributeValues={":d": {"N": "1"}})
    assert "Attributes" not in out


def test_update_creates_item_and_list_append(ddb, tbl):
    key = {"id": {"S": "newupd"}}
    ddb.update_item(TableName=tbl, Key=key,
                    UpdateExpression="SET l = list_append(if_not_exists(l, :empty), :vals), n = if_not_exists(n, :zero) + :one",
                    ExpressionAttributeValues={":empty": {"L": []}, ":vals": {"L": [{"S": "a"}]}, ":zero": {"N": "0"}, ":one": {"N": "1"}})
    item = ddb.get_item(TableName=tbl, Key=key)["Item"]
    assert item == {**key, "l": {"L": [{"S": "a"}]}, "n": {"N": "1"}}


def test_update_with_only_key_creates_item(ddb, tbl):
    key = {"id": {"S": "keyonly"}}
    ddb.update_item(TableName=tbl, Key=key)
    assert ddb.get_item(TableName=tbl, Key=key)["Item"] == key


def test_update_key_attribute_rejected(ddb, tbl):
    expect_error(ddb.update_item, "ValidationException", "One or more parameter values were invalid: Cannot update attribute id. "
                 "This attribute is part of the key",
                 TableName=tbl, Key={"id": {"S": "x"}}, UpdateExpression="SET id = :v", ExpressionAttributeValues={":v": {"S": "y"}})


def test_update_conditional_failure(ddb, tbl):
    key = {"id": {"S": "ucond"}}
    ddb.put_item(TableName=tbl, Item={**key, "v": {"N": "5"}})
    err = expect_error(ddb.update_item, "ConditionalCheckFailedException", TableName=tbl, Key=key,
                       UpdateExpression="SET v = :n", ConditionExpression="v > :lim",
                       ExpressionAttributeValues={":n": {"N": "0"}, ":lim": {"N": "10"}},
                       ReturnValuesOnConditionCheckFailure="ALL_OLD")
    assert err.response["Item"] == {**key, "v": {"N": "5"}}


def test_legacy_attribute_updates_and_expected(ddb, tbl):
    key = {"id": {"S": "legacy"}}
    ddb.update_item(TableName=tbl, Key=key, AttributeUpdates={"v": {"Action": "PUT", "Value": {"N": "1"}}})
    ddb.update_item(TableName=tbl, Key=key, AttributeUpdates={"v": {"Action": "ADD", "Value": {"N": "2"}}},
                    Expected={"v": {"Value": {"N": "1"}}})
    assert ddb.get_item(TableName=tbl, Key=key)["Item"]["v"] == {"N": "3"}
    expect_error(ddb.put_item, "ConditionalCheckFailedException", TableName=tbl, Item={**key, "v": {"N": "0"}},
                 Expected={"v": {"Exists": False}})


def test_mixing_legacy_and_expressions_rejected(ddb, tbl):
    expect_error(ddb.get_item, "ValidationException",
                 "Can not use both expression and non-expression parameters in the same request: "
                 "Non-expression parameters: {AttributesToGet} Expression parameters: {ProjectionExpression}",
                 TableName=tbl, Key={"id": {"S": "x"}}, AttributesToGet=["a"], ProjectionExpression="a")


def test_delete_item_return_values_and_condition(ddb, tbl):
    key = {"id": {"S": "del"}}
    ddb.put_item(TableName=tbl, Item={**key, "v": {"N": "1"}})
    expect_error(ddb.delete_item, "ConditionalCheckFailedException", TableName=tbl, Key=key,
                 ConditionExpression="v = :two", ExpressionAttributeValues={":two": {"N": "2"}})
    out = ddb.delete_item(TableName=tbl, Key=key, ReturnValues="ALL_OLD")
    assert out["Attributes"] == {**key, "v": {"N": "1"}}
    assert "Item" not in ddb.get_item(TableName=tbl, Key=key)
    assert "Attributes" not in ddb.delete_item(TableName=tbl, Key=key, ReturnValues="ALL_OLD")


def test_composite_keys(ddb, composite):
    for sk in ("-1.5", "0", "10", "2"):
        ddb.put_item(TableName=composite, Item={"pk": {"S": "p"}, "sk": {"N": sk}, "v": {"S": sk}})
    assert ddb.get_item(TableName=composite, Key={"pk": {"S": "p"}, "sk": {"N": "10"}})["Item"]["v"] == {"S": "10"}
    assert ddb.get_item(TableName=composite, Key={"pk": {"S": "p"}, "sk": {"N": "10.0"}})["Item"]["v"] == {"S": "10"}
    expect_error(ddb.get_item, "ValidationException", "The provided key element does not match the schema",
                 TableName=composite, Key={"pk": {"S": "p"}})


# --- key and item validation ----------------------------------------------------

def test_key_schema_mismatch(ddb, tbl):
    msg = "The provided key element does not match the schema"
    expect_error(ddb.get_item, "ValidationException", msg, TableName=tbl, Key={"other": {"S": "x"}})
    expect_error(ddb.get_item, "ValidationException", msg, TableName=tbl, Key={"id": {"N": "1"}})
    expect_error(ddb.get_item, "ValidationException", msg, TableName=tbl, Key={"id": {"S": "x"}, "extra": {"S": "y"}})


def test_put_missing_key(ddb, tbl):
    expect_error(ddb.put_item, "ValidationException", "One or more parameter values were invalid: Missing the key id in the item",
                 TableName=tbl, Item={"v": {"S": "x"}})


def test_put_key_type_mismatch(ddb, tbl):
    expect_error(ddb.put_item, "ValidationException",
                 "One or more parameter values were invalid: Type mismatch for key id expected: S actual: N",
                 TableName=tbl, Item={"id": {"N": "1"}})


def test_empty_string_key_rejected(ddb, tbl):
    expect_error(ddb.put_item, "ValidationException",
                 "One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an "
                 "empty string value. Key: id",
                 TableName=tbl, Item={"id": {"S": ""}})


def test_item_too_large(ddb, tbl):
    expect_error(ddb.put_item, "ValidationException", "Item size has exceeded the maximum allowed size",
                 TableName=tbl, Item={"id": {"S": "big"}, "blob": {"S": "x" * (400 * 1024)}})
    assert "Item" not in ddb.get_item(TableName=tbl, Key={"id": {"S": "big"}})


def test_item_at_size_limit_accepted(ddb, tbl):
    # 400 KB exactly: name "id"(2) + "max"(3) + name "blob"(4) + value
    value = "x" * (400 * 1024 - 2 - 3 - 4)
    ddb.put_item(TableName=tbl, Item={"id": {"S": "max"}, "blob": {"S": value}})
    assert len(ddb.get_item(TableName=tbl, Key={"id": {"S": "max"}})["Item"]["blob"]["S"]) == len(value)


def test_partition_key_too_large(ddb, tbl):
    expect_error(ddb.put_item, "ValidationException",
                 "One or more parameter values were invalid: Size of hashkey has exceeded the maximum size limit of2048 bytes",
                 TableName=tbl, Item={"id": {"S": "k" * 2049}})


def test_unknown_table(ddb):
    expect_error(ddb.get_item, "ResourceNotFoundException", "Requested resource not found",
                 TableName=unique_name(), Key={"id": {"S": "x"}})
    expect_error(ddb.put_item, "ResourceNotFoundException", "Requested resource not found",
                 TableName=unique_name(), Item={"id": {"S": "x"}})


def test_empty_set_rejected(ddb, tbl):
    expect_error(ddb.put_item, "ValidationException", "One or more parameter values were invalid: An string set  may not be empty",
                 TableName=tbl, Item={"id": {"S": "x"}, "s": {"SS": []}})


def test_duplicate_set_members_rejected(ddb, tbl):
    expect_error(ddb.put_item, "ValidationException",
                 "One or more parameter values were invalid: Input collection [a, a] contains duplicates.",
                 TableName=tbl, Item={"id": {"S": "x"}, "s": {"SS": ["a", "a"]}})


def test_number_precision_rejected(ddb, tbl):
    expect_error(ddb.put_item, "ValidationException", "Attempting to store more than 38 significant digits in a Number",
                 TableName=tbl, Item={"id": {"S": "x"}, "n": {"N": "1" * 39}})


def test_consumed_capacity(ddb, tbl):
    out = ddb.put_item(TableName=tbl, Item={"id": {"S": "cap"}}, ReturnConsumedCapacity="TOTAL")
    assert out["ConsumedCapacity"] == {"TableName": tbl, "CapacityUnits": 1.0}
    out = ddb.get_item(TableName=tbl, Key={"id": {"S": "cap"}}, ReturnConsumedCapacity="TOTAL")
    assert out["ConsumedCapacity"] == {"TableName": tbl, "CapacityUnits": 0.5}
    out = ddb.get_item(TableName=tbl, Key={"id": {"S": "cap"}}, ReturnConsumedCapacity="TOTAL", ConsistentRead=True)
    assert out["ConsumedCapacity"] == {"TableName": tbl, "CapacityUnits": 1.0}


def test_consumed_capacity_counts_whole_and_larger_item(ddb, tbl):
    big = "x" * 5000  # 5 KB item: 5 write units, 2 read units (strong), 1 eventual
    ddb.put_item(TableName=tbl, Item={"id": {"S": "capbig"}, "d": {"S": big}})
    # A projection returns little, but the whole stored item is charged.
    out = ddb.get_item(TableName=tbl, Key={"id": {"S": "capbig"}}, ProjectionExpression="id",
                       ReturnConsumedCapacity="TOTAL", ConsistentRead=True)
    assert out["ConsumedCapacity"]["CapacityUnits"] == 2.0
    # Writes are charged by the larger of the old and the new item.
    out = ddb.put_item(TableName=tbl, Item={"id": {"S": "capbig"}}, ReturnConsumedCapacity="TOTAL")
    assert out["ConsumedCapacity"]["CapacityUnits"] == 5.0
    out = ddb.update_item(TableName=tbl, Key={"id": {"S": "capbig"}}, UpdateExpression="SET d = :d",
                          ExpressionAttributeValues={":d": {"S": big}}, ReturnConsumedCapacity="TOTAL")
    assert out["ConsumedCapacity"]["CapacityUnits"] == 5.0
    out = ddb.delete_item(TableName=tbl, Key={"id": {"S": "capbig"}}, ReturnConsumedCapacity="TOTAL")
    assert out["ConsumedCapacity"]["CapacityUnits"] == 5.0
