"""The expression language through boto3, against the embedded server and a cluster.

One test per construct family: conditions (comparators, BETWEEN, IN, AND/OR/NOT,
every function), updates (SET arithmetic, if_not_exists, list_append, REMOVE
with list indexes, ADD, DELETE), projections, placeholders and DynamoDB's
error messages.  Messages are DynamoDB's.
"""

from __future__ import annotations

import pytest

from helpers import create_table, expect_error, unique_name

COND_FAIL = "ConditionalCheckFailedException"
VAL = "ValidationException"


@pytest.fixture(scope="module")
def tbl(ddb):
    return create_table(ddb, unique_name("expr"))


@pytest.fixture
def item(ddb, tbl):
    key = {"id": {"S": unique_name("it")}}
    ddb.put_item(TableName=tbl, Item={
        **key,
        "n": {"N": "10"},
        "s": {"S": "hello world"},
        "b": {"B": b"\x01\x02"},
        "ss": {"SS": ["a", "b"]},
        "ns": {"NS": ["1", "2"]},
        "l": {"L": [{"N": "1"}, {"S": "two"}, {"M": {"x": {"N": "3"}}}]},
        "m": {"M": {"nested": {"M": {"deep": {"S": "v"}}}, "count": {"N": "1"}}},
        "flag": {"BOOL": True},
        "nothing": {"NULL": True},
    })
    return key


def _holds(ddb, tbl, key, condition, values=None, names=None) -> bool:
    """Whether ``condition`` holds for the stored item (a no-op conditional update)."""
    kwargs = {"TableName": tbl, "Key": key, "ConditionExpression": condition,
              "UpdateExpression": "SET probe = :probe"}
    kwargs["ExpressionAttributeValues"] = {":probe": {"N": "0"}, **(values or {})}
    if names:
        kwargs["ExpressionAttributeNames"] = names
    try:
        ddb.update_item(**kwargs)
        return True
    except ddb.exceptions.ConditionalCheckFailedException:
        return False


@pytest.mark.parametrize("condition, values, expected", [
    ("n = :v", {":v": {"N": "10"}}, True),
    ("n = :v", {":v": {"N": "10.0"}}, True),
    ("n <> :v", {":v": {"N": "10"}}, False),
    ("n < :v", {":v": {"N": "9"}}, False),
    ("n <= :v", {":v": {"N": "10"}}, True),
    ("n > :v", {":v": {"N": "-100"}}, True),
    ("n >= :v", {":v": {"N": "10.5"}}, False),
    ("s < :v", {":v": {"S": "help"}}, True),  # bytewise string order
    ("n = :v", {":v": {"S": "10"}}, False),  # mismatched types compare false
    ("n < :v", {":v": {"S": "10"}}, False),
    ("n BETWEEN :lo AND :hi", {":lo": {"N": "1"}, ":hi": {"N": "10"}}, True),
    ("n BETWEEN :lo AND :hi", {":lo": {"N": "11"}, ":hi": {"N": "20"}}, False),
    ("n IN (:a, :b, :c)", {":a": {"N": "1"}, ":b": {"N": "10"}, ":c": {"S": "x"}}, True),
    ("s IN (:a)", {":a": {"S": "nope"}}, False),
    ("n = :a AND s = :b", {":a": {"N": "10"}, ":b": {"S": "hello world"}}, True),
    ("n = :a AND s = :b", {":a": {"N": "10"}, ":b": {"S": "x"}}, False),
    ("n = :a OR s = :b", {":a": {"N": "0"}, ":b": {"S": "hello world"}}, True),
    ("NOT n = :a", {":a": {"N": "10"}}, False),
    ("n = :a OR n = :b AND n = :c", {":a": {"N": "10"}, ":b": {"N": "1"}, ":c": {"N": "2"}}, True),  # AND binds tighter
    ("(n = :a OR n = :b) AND n = :c", {":a": {"N": "10"}, ":b": {"N": "1"}, ":c": {"N": "2"}}, False),
    ("attribute_exists(m.nested.deep)", None, True),
    ("attribute_not_exists(m.nested.absent)", None, True),
    ("attribute_exists(l[2].x)", None, True),
    ("attribute_exists(l[5])", None, False),
    ("attribute_type(ss, :t)", {":t": {"S": "SS"}}, True),
    ("attribute_type(nothing, :t)", {":t": {"S": "NULL"}}, True),
    ("attribute_type(n, :t)", {":t": {"S": "S"}}, False),
    ("begins_with(s, :p)", {":p": {"S": "hell"}}, True),
    ("begins_with(b, :p)", {":p": {"B": b"\x01"}}, True),
    ("contains(s, :p)", {":p": {"S": "o w"}}, True),
    ("contains(ss, :p)", {":p": {"S": "b"}}, True),
    ("contains(ns, :p)", {":p": {"N": "3"}}, False),
    ("contains(l, :p)", {":p": {"S": "two"}}, True),
    ("size(s) = :n", {":n": {"N": "11"}}, True),
    ("size(l) = :n", {":n": {"N": "3"}}, True),
    ("size(m) = :n", {":n": {"N": "2"}}, True),
    ("size(b) = :n", {":n": {"N": "2"}}, True),
    ("size(ss) > :n", {":n": {"N": "1"}}, True),
])
def test_condition_semantics(ddb, tbl, item, condition, values, expected):
    assert _holds(ddb, tbl, item, condition, values) is expected


def test_names_placeholders_and_reserved_words(ddb, tbl, item):
    assert _holds(ddb, tbl, item, "#size = :v", {":v": {"N": "10"}}, {"#size": "n"})
    expect_error(ddb.update_item, VAL, "Invalid ConditionExpression: Attribute name is a reserved keyword; reserved keyword: size",
                 TableName=tbl, Key=item, ConditionExpression="size = :v", UpdateExpression="SET x = :v",
                 ExpressionAttributeValues={":v": {"N": "1"}})


def test_update_set_arithmetic_and_functions(ddb, tbl, item):
    out = ddb.update_item(
        TableName=tbl, Key=item, ReturnValues="UPDATED_NEW",
        UpdateExpression="SET n = n - :one, m.#c = m.#c + :one, fresh = if_not_exists(fresh, :zero), "
                         "l = list_append(:front, l), s = if_not_exists(s, :zero)",
        ExpressionAttributeNames={"#c": "count"},
        ExpressionAttributeValues={":one": {"N": "1"}, ":zero": {"N": "0"}, ":front": {"L": [{"S": "first"}]}},
    )
    attrs = out["Attributes"]
    assert attrs["n"] == {"N": "9"}
    assert attrs["m"] == {"M": {"count": {"N": "2"}}}
    assert attrs["fresh"] == {"N": "0"}
    assert attrs["l"]["L"][0] == {"S": "first"} and len(attrs["l"]["L"]) == 4
    assert attrs["s"] == {"S": "hello world"}


def test_update_remove_list_elements_shifts(ddb, tbl, item):
    out = ddb.update_item(TableName=tbl, Key=item, UpdateExpression="REMOVE l[0], l[2], m.nested", ReturnValues="ALL_NEW")
    attrs = out["Attributes"]
    assert attrs["l"] == {"L": [{"S": "two"}]}
    assert attrs["m"] == {"M": {"count": {"N": "1"}}}


def test_update_add_and_delete(ddb, tbl, item):
    out = ddb.update_item(
        TableName=tbl, Key=item, ReturnValues="ALL_NEW",
        UpdateExpression="ADD n :five, ss :more, newnum :five, newset :nums DELETE ns :one",
        ExpressionAttributeValues={":five": {"N": "5"}, ":more": {"SS": ["c", "a"]}, ":nums": {"NS": ["7"]},
                                   ":one": {"NS": ["1"]}},
    )
    attrs = out["Attributes"]
    assert attrs["n"] == {"N": "15"}
    assert sorted(attrs["ss"]["SS"]) == ["a", "b", "c"]
    assert attrs["newnum"] == {"N": "5"}
    assert attrs["newset"] == {"NS": ["7"]}
    assert attrs["ns"] == {"NS": ["2"]}


def test_update_deleting_last_set_member_removes_attribute(ddb, tbl, item):
    out = ddb.update_item(TableName=tbl, Key=item, UpdateExpression="DELETE ss :all", ReturnValues="ALL_NEW",
                          ExpressionAttributeValues={":all": {"SS": ["a", "b"]}})
    assert "ss" not in out["Attributes"]


def test_update_return_values_nested_paths(ddb, tbl, item):
    out = ddb.update_item(TableName=tbl, Key=item, UpdateExpression="SET m.nested.deep = :v", ReturnValues="UPDATED_OLD",
                          ExpressionAttributeValues={":v": {"S": "new"}})
    assert out["Attributes"] == {"m": {"M": {"nested": {"M": {"deep": {"S": "v"}}}}}}


def test_projection_of_list_elements_and_maps(ddb, tbl, item):
    out = ddb.get_item(TableName=tbl, Key=item, ProjectionExpression="l[1], l[2].x, m.nested, absent")
    assert out["Item"] == {"l": {"L": [{"S": "two"}, {"M": {"x": {"N": "3"}}}]}, "m": {"M": {"nested": {"M": {"deep": {"S": "v"}}}}}}


@pytest.mark.parametrize("kwargs, message", [
    ({"UpdateExpression": "SET a = :v", "ExpressionAttributeValues": {":v": {"N": "1"}, ":unused": {"N": "2"}}},
     "Value provided in ExpressionAttributeValues unused in expressions: keys: {:unused}"),
    ({"UpdateExpression": "SET a = :v", "ExpressionAttributeValues": {":v": {"N": "1"}}, "ExpressionAttributeNames": {"#x": "x"}},
     "Value provided in ExpressionAttributeNames unused in expressions: keys: {#x}"),
    ({"UpdateExpression": "SET a = :missing"},
     "Invalid UpdateExpression: An expression attribute value used in expression is not defined; attribute value: :missing"),
    ({"UpdateExpression": "SET #a = :v", "ExpressionAttributeValues": {":v": {"N": "1"}}},
     "Invalid UpdateExpression: An expression attribute name used in the document path is not defined; attribute name: #a"),
    ({"UpdateExpression": "SET a = :v, a = :v", "ExpressionAttributeValues": {":v": {"N": "1"}}},
     "Invalid UpdateExpression: Two document paths overlap with each other; must remove or rewrite one of these paths; "
     "path one: [a], path two: [a]"),
    ({"UpdateExpression": "SET a.b = :v REMOVE a", "ExpressionAttributeValues": {":v": {"N": "1"}}},
     "Invalid UpdateExpression: Two document paths overlap with each other; must remove or rewrite one of these paths; "
     "path one: [a, b], path two: [a]"),
    ({"UpdateExpression": "SET a = :v SET b = :v", "ExpressionAttributeValues": {":v": {"N": "1"}}},
     'Invalid UpdateExpression: The "SET" section can only be used once in an update expression;'),
    ({"UpdateExpression": "SET a = :v +", "ExpressionAttributeValues": {":v": {"N": "1"}}},
     'Invalid UpdateExpression: Syntax error; token: "<EOF>", near: "+"'),
    ({"UpdateExpression": ""}, "Invalid UpdateExpression: The expression can not be empty;"),
    ({"UpdateExpression": "SET s = s + :v", "ExpressionAttributeValues": {":v": {"N": "1"}}},
     "An operand in the update expression has an incorrect data type"),
    ({"UpdateExpression": "ADD s :v", "ExpressionAttributeValues": {":v": {"N": "1"}}},
     "An operand in the update expression has an incorrect data type"),
    ({"UpdateExpression": "SET n = n + :v", "ExpressionAttributeValues": {":v": {"N": "1E+125"}}},
     "Number overflow. Attempting to store a number with magnitude larger than supported range"),
    ({"UpdateExpression": "SET s.x = :v", "ExpressionAttributeValues": {":v": {"N": "1"}}},
     "The document path provided in the update expression is invalid for update"),
    ({"UpdateExpression": "SET a = :v", "ConditionExpression": "size(n)", "ExpressionAttributeValues": {":v": {"N": "1"}}},
     "Invalid ConditionExpression: The function is not allowed to be used this way in an expression; function: size"),
    ({"UpdateExpression": "SET a = :v", "ConditionExpression": "begins_with(s)", "ExpressionAttributeValues": {":v": {"N": "1"}}},
     "Invalid ConditionExpression: Incorrect number of operands for operator or function; operator or function: "
     "begins_with, number of operands: 1"),
])
def test_update_errors(ddb, tbl, item, kwargs, message):
    before = ddb.get_item(TableName=tbl, Key=item, ConsistentRead=True)["Item"]
    expect_error(ddb.update_item, VAL, message, TableName=tbl, Key=item, **kwargs)
    assert ddb.get_item(TableName=tbl, Key=item, ConsistentRead=True)["Item"] == before


def test_condition_failure_changes_nothing_and_returns_old(ddb, tbl, item):
    before = ddb.get_item(TableName=tbl, Key=item, ConsistentRead=True)["Item"]
    err = expect_error(ddb.delete_item, COND_FAIL, "The conditional request failed", TableName=tbl, Key=item,
                       ConditionExpression="flag = :f", ExpressionAttributeValues={":f": {"BOOL": False}},
                       ReturnValuesOnConditionCheckFailure="ALL_OLD")
    assert err.response["Item"] == before
    assert ddb.get_item(TableName=tbl, Key=item, ConsistentRead=True)["Item"] == before


def test_condition_on_missing_item(ddb, tbl):
    key = {"id": {"S": unique_name("missing")}}
    expect_error(ddb.update_item, COND_FAIL, TableName=tbl, Key=key, UpdateExpression="SET a = :v",
                 ConditionExpression="attribute_exists(id)", ExpressionAttributeValues={":v": {"N": "1"}})
    assert "Item" not in ddb.get_item(TableName=tbl, Key=key)
    ddb.update_item(TableName=tbl, Key=key, UpdateExpression="SET a = :v", ConditionExpression="attribute_not_exists(id)",
                    ExpressionAttributeValues={":v": {"N": "1"}})
    assert ddb.get_item(TableName=tbl, Key=key)["Item"]["a"] == {"N": "1"}


def test_in_operand_limit(ddb, tbl, item):
    values = {f":v{i}": {"N": str(i)} for i in range(101)}
    err = expect_error(ddb.update_item, VAL, TableName=tbl, Key=item, UpdateExpression="SET a = :v0",
                       ConditionExpression="n IN (" + ", ".join(values) + ")", ExpressionAttributeValues=values)
    assert "IN" in err.response["Error"]["Message"]


def test_expression_size_limit(ddb, tbl, item):
    long_name = "a" * 4100
    err = expect_error(ddb.update_item, VAL, TableName=tbl, Key=item, UpdateExpression=f"SET {long_name} = :v",
                       ExpressionAttributeValues={":v": {"N": "1"}})
    assert "Expression size has exceeded the maximum allowed size" in err.response["Error"]["Message"]
