"""TransactWriteItems and TransactGetItems through boto3, against any endpoint.

Black-box, both modes: in a cluster the items of one transaction live on
several storage nodes (keys spread over the ring), so atomicity here is the
two-phase protocol's.  Expected answers follow DynamoDB: the API reference
(``CancellationReasons``: ``None`` has no Message; reasons in request order),
and answers captured from DynamoDB itself by public conformance suites
(messages, the cancellation shape of a key that does not match the schema,
transactional capacity: two units per item, reported as read or write units).
"""

from __future__ import annotations

import re
import uuid

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from helpers import create_table, expect_error, unique_name
from streams_helpers import stream_table, streams_client, wait_for_key
from tests.conftest import CLIENT_CONFIG

NOT_FOUND = "Requested resource not found"
MULTIPLE = "Transaction request cannot include multiple operations on one item"
ONE_OF = "TransactItems can only contain one of Check, Put, Update or Delete"
FAILED = "The conditional request failed"
SCHEMA = "The provided key element does not match the schema"
EMPTY_KEY = ("One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an "
             "empty string value. Key: id")
KB = 1024


def _s(value: str) -> dict:
    return {"S": value}


def _n(value: int) -> dict:
    return {"N": str(value)}


@pytest.fixture(scope="module")
def tbl(ddb):
    return create_table(ddb, unique_name("txn"))


@pytest.fixture(scope="module")
def other(ddb):
    return create_table(ddb, unique_name("txn2"))


@pytest.fixture(scope="module")
def composite(ddb):
    return create_table(ddb, unique_name("txnc"), pk=("pk", "S"), sk=("sk", "N"))


@pytest.fixture(scope="module")
def raw(endpoint):
    """A client that sends what boto3's own parameter validation would refuse."""
    return boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test",
                        aws_secret_access_key="test", config=CLIENT_CONFIG.merge(Config(parameter_validation=False)))


def _get(ddb, table: str, key: dict) -> dict | None:
    return ddb.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")


def _put(table: str, item: dict, **extra) -> dict:
    return {"Put": {"TableName": table, "Item": item, **extra}}


def _update(table: str, key: dict, expression: str, **extra) -> dict:
    return {"Update": {"TableName": table, "Key": key, "UpdateExpression": expression, **extra}}


def _delete(table: str, key: dict, **extra) -> dict:
    return {"Delete": {"TableName": table, "Key": key, **extra}}


def _check(table: str, key: dict, condition: str, **extra) -> dict:
    return {"ConditionCheck": {"TableName": table, "Key": key, "ConditionExpression": condition, **extra}}


def cancelled(fn, **kwargs) -> list[dict]:
    """Call ``fn``; it must fail with TransactionCanceledException (HTTP 400); return its reasons."""
    with pytest.raises(ClientError) as info:
        fn(**kwargs)
    response = info.value.response
    assert response["Error"]["Code"] == "TransactionCanceledException", response["Error"]
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    reasons = response["CancellationReasons"]
    codes = ", ".join(r["Code"] for r in reasons)
    assert response["Error"]["Message"] == (
        f"Transaction cancelled, please refer cancellation reasons for specific reasons [{codes}]")
    return reasons


NONE = {"Code": "None"}
CHECK_FAILED = {"Code": "ConditionalCheckFailed", "Message": FAILED}


# --- atomicity -----------------------------------------------------------------------------


def test_put_update_delete_and_check_commit_together(ddb, tbl):
    p = unique_name("all")
    ddb.put_item(TableName=tbl, Item={"id": _s(f"{p}-u"), "n": _n(1)})
    ddb.put_item(TableName=tbl, Item={"id": _s(f"{p}-d"), "n": _n(5)})
    ddb.put_item(TableName=tbl, Item={"id": _s(f"{p}-c"), "keep": _s("yes")})
    out = ddb.transact_write_items(TransactItems=[
        _put(tbl, {"id": _s(f"{p}-p"), "x": _s("new")}, ConditionExpression="attribute_not_exists(id)"),
        _update(tbl, {"id": _s(f"{p}-u")}, "SET n = n + :one", ConditionExpression="n = :one",
                ExpressionAttributeValues={":one": _n(1)}),
        _delete(tbl, {"id": _s(f"{p}-d")}, ConditionExpression="n = :five", ExpressionAttributeValues={":five": _n(5)}),
        _check(tbl, {"id": _s(f"{p}-c")}, "attribute_exists(#k)", ExpressionAttributeNames={"#k": "keep"}),
    ])
    assert set(out) == {"ResponseMetadata"}  # no capacity, no metrics unless asked
    assert _get(ddb, tbl, {"id": _s(f"{p}-p")}) == {"id": _s(f"{p}-p"), "x": _s("new")}
    assert _get(ddb, tbl, {"id": _s(f"{p}-u")}) == {"id": _s(f"{p}-u"), "n": _n(2)}
    assert _get(ddb, tbl, {"id": _s(f"{p}-d")}) is None
    assert _get(ddb, tbl, {"id": _s(f"{p}-c")}) == {"id": _s(f"{p}-c"), "keep": _s("yes")}


def test_update_creates_and_delete_of_a_missing_item_is_fine(ddb, tbl):
    p = unique_name("upsert")
    ddb.transact_write_items(TransactItems=[
        _update(tbl, {"id": _s(f"{p}-new")}, "SET v = :v", ExpressionAttributeValues={":v": _s("made")}),
        _delete(tbl, {"id": _s(f"{p}-never")}),
    ])
    assert _get(ddb, tbl, {"id": _s(f"{p}-new")}) == {"id": _s(f"{p}-new"), "v": _s("made")}


@pytest.mark.parametrize("failing", ["Put", "Update", "Delete", "ConditionCheck"])
def test_one_failing_condition_leaves_every_item_unchanged(ddb, tbl, failing):
    p = unique_name(failing.lower())
    keys = {kind: {"id": _s(f"{p}-{kind}")} for kind in ("Put", "Update", "Delete", "ConditionCheck")}
    before = {kind: {**key, "n": _n(1)} for kind, key in keys.items()}
    for item in before.values():
        ddb.put_item(TableName=tbl, Item=item)

    def expected(kind: str) -> dict:  # the failing action expects n = 2; the item has n = 1
        return {":n": _n(2 if kind == failing else 1)}

    actions = [
        _put(tbl, {**keys["Put"], "n": _n(100)}, ConditionExpression="n = :n", ExpressionAttributeValues=expected("Put")),
        _update(tbl, keys["Update"], "SET m = :m", ConditionExpression="n = :n",
                ExpressionAttributeValues={**expected("Update"), ":m": _s("changed")}),
        _delete(tbl, keys["Delete"], ConditionExpression="n = :n", ExpressionAttributeValues=expected("Delete")),
        _check(tbl, keys["ConditionCheck"], "n = :n", ExpressionAttributeValues=expected("ConditionCheck")),
    ]
    reasons = cancelled(ddb.transact_write_items, TransactItems=actions)
    order = ["Put", "Update", "Delete", "ConditionCheck"]
    assert reasons == [CHECK_FAILED if kind == failing else NONE for kind in order]
    for kind, item in before.items():
        assert _get(ddb, tbl, keys[kind]) == item


def test_reasons_are_in_request_order(ddb, tbl):
    p = unique_name("order")
    for i in range(4):
        ddb.put_item(TableName=tbl, Item={"id": _s(f"{p}-{i}")})
    reasons = cancelled(ddb.transact_write_items, TransactItems=[
        _put(tbl, {"id": _s(f"{p}-new")}, ConditionExpression="attribute_not_exists(id)"),
        _put(tbl, {"id": _s(f"{p}-1"), "x": _n(1)}, ConditionExpression="attribute_not_exists(id)"),
        _check(tbl, {"id": _s(f"{p}-2")}, "attribute_exists(id)"),
        _delete(tbl, {"id": _s(f"{p}-3")}, ConditionExpression="attribute_not_exists(id)"),
    ])
    assert reasons == [NONE, CHECK_FAILED, NONE, CHECK_FAILED]
    assert _get(ddb, tbl, {"id": _s(f"{p}-new")}) is None
    assert _get(ddb, tbl, {"id": _s(f"{p}-1")}) == {"id": _s(f"{p}-1")}
    assert _get(ddb, tbl, {"id": _s(f"{p}-3")}) == {"id": _s(f"{p}-3")}


@pytest.mark.parametrize("kind", ["Put", "Update", "Delete", "ConditionCheck"])
def test_all_old_returns_the_item_that_failed(ddb, tbl, kind):
    p = unique_name("old")
    old = {"id": _s(p), "n": _n(7), "tag": _s("old")}
    ddb.put_item(TableName=tbl, Item=old)
    extra = {"ConditionExpression": "n = :n", "ExpressionAttributeValues": {":n": _n(8)},
             "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}
    action = {
        "Put": _put(tbl, {"id": _s(p)}, **extra),
        "Update": _update(tbl, {"id": _s(p)}, "REMOVE tag", **extra),
        "Delete": _delete(tbl, {"id": _s(p)}, **extra),
        "ConditionCheck": {"ConditionCheck": {"TableName": tbl, "Key": {"id": _s(p)}, **extra}},
    }[kind]
    other_key = {"id": _s(f"{p}-other")}
    reasons = cancelled(ddb.transact_write_items, TransactItems=[_put(tbl, other_key), action])
    assert reasons == [NONE, {**CHECK_FAILED, "Item": old}]
    assert _get(ddb, tbl, {"id": _s(p)}) == old and _get(ddb, tbl, other_key) is None


def test_all_old_of_a_missing_item_has_no_item(ddb, tbl):
    p = unique_name("gone")
    reasons = cancelled(ddb.transact_write_items, TransactItems=[
        _check(tbl, {"id": _s(p)}, "attribute_exists(id)", ReturnValuesOnConditionCheckFailure="ALL_OLD"),
    ])
    assert reasons == [CHECK_FAILED]


def test_no_item_without_all_old(ddb, tbl):
    p = unique_name("none")
    ddb.put_item(TableName=tbl, Item={"id": _s(p)})
    reasons = cancelled(ddb.transact_write_items, TransactItems=[
        _check(tbl, {"id": _s(p)}, "attribute_not_exists(id)", ReturnValuesOnConditionCheckFailure="NONE"),
    ])
    assert reasons == [CHECK_FAILED]


def test_an_update_operand_of_the_wrong_type_cancels_with_a_validation_reason(ddb, tbl):
    p = unique_name("operand")
    ddb.put_item(TableName=tbl, Item={"id": _s(p), "n": _s("not a number")})
    reasons = cancelled(ddb.transact_write_items, TransactItems=[
        _put(tbl, {"id": _s(f"{p}-x")}),
        _update(tbl, {"id": _s(p)}, "SET n = n + :one", ExpressionAttributeValues={":one": _n(1)}),
    ])
    assert reasons == [NONE, {"Code": "ValidationError",
                              "Message": "An operand in the update expression has an incorrect data type"}]
    assert _get(ddb, tbl, {"id": _s(f"{p}-x")}) is None


def test_many_partitions_commit_or_cancel_as_one(ddb, tbl, other):
    # 60 keys over two tables: in a cluster, every storage node holds some of them.
    p = unique_name("wide")
    keys = [{"id": _s(f"{p}-{i}")} for i in range(60)]
    puts = [_put(tbl if i % 2 else other, {**key, "i": _n(i)}) for i, key in enumerate(keys)]
    blocker = {"id": _s(f"{p}-blocker")}
    reasons = cancelled(ddb.transact_write_items,
                        TransactItems=puts + [_check(tbl, blocker, "attribute_exists(id)")])
    assert reasons == [NONE] * 60 + [CHECK_FAILED]
    assert all(_get(ddb, tbl if i % 2 else other, key) is None for i, key in enumerate(keys))
    ddb.put_item(TableName=tbl, Item=blocker)
    ddb.transact_write_items(TransactItems=puts + [_check(tbl, blocker, "attribute_exists(id)")])
    got = ddb.transact_get_items(TransactItems=[
        {"Get": {"TableName": tbl if i % 2 else other, "Key": key}} for i, key in enumerate(keys)])
    assert [r["Item"]["i"] for r in got["Responses"]] == [_n(i) for i in range(60)]


def test_a_hundred_actions(ddb, tbl):
    p = unique_name("hundred")
    ddb.transact_write_items(TransactItems=[_put(tbl, {"id": _s(f"{p}-{i}")}) for i in range(100)])
    got = ddb.transact_get_items(TransactItems=[{"Get": {"TableName": tbl, "Key": {"id": _s(f"{p}-{i}")}}}
                                                for i in range(100)])
    assert [r["Item"] for r in got["Responses"]] == [{"id": _s(f"{p}-{i}")} for i in range(100)]


# --- validation ----------------------------------------------------------------------------


def test_two_actions_on_one_item(ddb, tbl, composite):
    key = {"id": _s(unique_name("dup"))}
    expect_error(ddb.transact_write_items, "ValidationException", MULTIPLE,
                 TransactItems=[_put(tbl, key), _check(tbl, key, "attribute_exists(id)")])
    expect_error(ddb.transact_write_items, "ValidationException", MULTIPLE,
                 TransactItems=[_update(tbl, key, "SET a = :a", ExpressionAttributeValues={":a": _n(1)}),
                                _delete(tbl, key)])
    # The same item however its key is spelled: attribute order, number formatting.
    ckey = {"pk": _s("p"), "sk": {"N": "1.50"}}
    expect_error(ddb.transact_write_items, "ValidationException", MULTIPLE,
                 TransactItems=[_delete(composite, ckey), _delete(composite, {"sk": {"N": "1.5"}, "pk": _s("p")})])
    assert _get(ddb, tbl, key) is None


def test_same_key_in_two_tables_or_sort_keys_is_not_a_duplicate(ddb, tbl, other, composite):
    key = {"id": _s(unique_name("twin"))}
    ddb.transact_write_items(TransactItems=[
        _put(tbl, key), _put(other, key),
        _put(composite, {"pk": key["id"], "sk": _n(1)}), _put(composite, {"pk": key["id"], "sk": _n(2)}),
    ])
    assert _get(ddb, tbl, key) == key and _get(ddb, other, key) == key


def test_transact_get_duplicate(ddb, tbl):
    key = {"id": _s("same")}
    expect_error(ddb.transact_get_items, "ValidationException", MULTIPLE,
                 TransactItems=[{"Get": {"TableName": tbl, "Key": key}}, {"Get": {"TableName": tbl, "Key": key}}])


@pytest.mark.parametrize("operation", ["transact_write_items", "transact_get_items"])
def test_empty_list(raw, operation):
    expect_error(getattr(raw, operation), "ValidationException",
                 "1 validation error detected: Value '[]' at 'transactItems' failed to satisfy constraint: "
                 "Member must have length greater than or equal to 1", TransactItems=[])


def test_more_than_100_actions(raw, tbl):
    err = expect_error(raw.transact_write_items, "ValidationException",
                       TransactItems=[_put(tbl, {"id": _s(str(i))}) for i in range(101)])
    assert re.fullmatch(r"1 validation error detected: Value '\[.+\]' at 'transactItems' failed to satisfy "
                        r"constraint: Member must have length less than or equal to 100",
                        err.response["Error"]["Message"], re.S)
    err = expect_error(raw.transact_get_items, "ValidationException",
                       TransactItems=[{"Get": {"TableName": tbl, "Key": {"id": _s(str(i))}}} for i in range(101)])
    assert err.response["Error"]["Message"].endswith("Member must have length less than or equal to 100")


def test_more_than_one_action_in_an_entry(ddb, tbl):
    key = {"id": _s(unique_name("two"))}
    expect_error(ddb.transact_write_items, "ValidationException", ONE_OF,
                 TransactItems=[{**_put(tbl, key), **_delete(tbl, {"id": _s("elsewhere")})}])
    assert _get(ddb, tbl, key) is None


def test_condition_check_needs_a_condition(raw, tbl):
    expect_error(raw.transact_write_items, "ValidationException",
                 "1 validation error detected: Value null at 'transactItems.1.member.conditionCheck.conditionExpression' "
                 "failed to satisfy constraint: Member must not be null",
                 TransactItems=[{"ConditionCheck": {"TableName": tbl, "Key": {"id": _s("x")}}}])


def test_missing_table(ddb, tbl):
    missing = unique_name("nosuch")
    key = {"id": _s(unique_name("k"))}
    for action in (_put(missing, key), _update(missing, key, "SET a = :a", ExpressionAttributeValues={":a": _n(1)}),
                   _delete(missing, key), _check(missing, key, "attribute_exists(id)")):
        expect_error(ddb.transact_write_items, "ResourceNotFoundException", NOT_FOUND,
                     TransactItems=[_put(tbl, key), action])
    assert _get(ddb, tbl, key) is None
    expect_error(ddb.transact_get_items, "ResourceNotFoundException", NOT_FOUND,
                 TransactItems=[{"Get": {"TableName": tbl, "Key": key}}, {"Get": {"TableName": missing, "Key": key}}])


def test_put_key_of_the_wrong_type_cancels(ddb, tbl):
    reasons = cancelled(ddb.transact_write_items, TransactItems=[_put(tbl, {"id": _n(5)})])
    assert reasons == [{"Code": "ValidationError",
                        "Message": "One or more parameter values were invalid: Type mismatch for key id expected: S actual: N"}]


@pytest.mark.parametrize("kind", ["Update", "Delete", "ConditionCheck"])
def test_key_not_matching_the_schema_cancels(ddb, tbl, kind):
    p = unique_name("schema")
    for bad in ({"id": _n(5)}, {"id": {"L": [_s("x")]}}):
        action = {
            "Update": _update(tbl, bad, "SET a = :a", ExpressionAttributeValues={":a": _n(1)}),
            "Delete": _delete(tbl, bad),
            "ConditionCheck": _check(tbl, bad, "attribute_not_exists(id)"),
        }[kind]
        reasons = cancelled(ddb.transact_write_items, TransactItems=[_put(tbl, {"id": _s(p)}), action])
        assert reasons == [NONE, {"Code": "ValidationError", "Message": SCHEMA}]
    assert _get(ddb, tbl, {"id": _s(p)}) is None


@pytest.mark.parametrize("kind", ["Put", "Update", "Delete", "ConditionCheck"])
def test_empty_string_key_is_refused_up_front(ddb, tbl, kind):
    empty = {"id": _s("")}
    action = {
        "Put": _put(tbl, empty),
        "Update": _update(tbl, empty, "SET a = :a", ExpressionAttributeValues={":a": _n(1)}),
        "Delete": _delete(tbl, empty),
        "ConditionCheck": _check(tbl, empty, "attribute_not_exists(id)"),
    }[kind]
    expect_error(ddb.transact_write_items, "ValidationException", EMPTY_KEY, TransactItems=[action])


def test_transact_get_key_not_matching_the_schema_cancels(ddb, tbl):
    reasons = cancelled(ddb.transact_get_items, TransactItems=[
        {"Get": {"TableName": tbl, "Key": {"id": _s("fine")}}}, {"Get": {"TableName": tbl, "Key": {}}}])
    assert [r["Code"] for r in reasons] == ["None", "ValidationError"]


def test_unused_placeholders(ddb, tbl):
    key = {"id": _s(unique_name("unused"))}
    missing = unique_name("nosuch")
    # Refused before any table is looked up, wherever the action sits.
    expect_error(ddb.transact_write_items, "ValidationException",
                 "Value provided in ExpressionAttributeValues unused in expressions: keys: {:v}",
                 TransactItems=[_put(missing, key), _check(tbl, key, "attribute_not_exists(id)",
                                                          ExpressionAttributeValues={":v": _s("x")})])
    expect_error(ddb.transact_write_items, "ValidationException",
                 "Value provided in ExpressionAttributeNames unused in expressions: keys: {#n}",
                 TransactItems=[_update(tbl, key, "SET a = :a", ExpressionAttributeValues={":a": _n(1)},
                                        ExpressionAttributeNames={"#n": "n"})])
    expect_error(ddb.transact_get_items, "ValidationException",
                 "Value provided in ExpressionAttributeNames unused in expressions: keys: {#n}",
                 TransactItems=[{"Get": {"TableName": tbl, "Key": key, "ProjectionExpression": "a",
                                         "ExpressionAttributeNames": {"#n": "n"}}}])
    assert _get(ddb, tbl, key) is None


def test_a_malformed_condition_is_refused_before_the_tables(ddb, tbl):
    expect_error(ddb.transact_write_items, "ValidationException",
                 'Invalid ConditionExpression: Syntax error; token: "<EOF>", near: "("',
                 TransactItems=[_put(unique_name("nosuch"), {"id": _s("a")}),
                                _check(tbl, {"id": _s("b")}, "attribute_not_exists(")])


def test_request_members_are_checked_first(raw, tbl):
    expect_error(raw.transact_write_items, "ValidationException",
                 "1 validation error detected: Value 'BOGUS' at 'returnConsumedCapacity' failed to satisfy constraint: "
                 "Member must satisfy enum value set: [INDEXES, TOTAL, NONE]",
                 TransactItems=[_put(unique_name("nosuch"), {"id": _s("a")})], ReturnConsumedCapacity="BOGUS")


def test_aggregate_size_over_4_mb(ddb, tbl):
    p = unique_name("big")
    big = "x" * (390 * KB)
    expect_error(ddb.transact_write_items, "ValidationException",
                 TransactItems=[_put(tbl, {"id": _s(f"{p}-{i}"), "b": _s(big)}) for i in range(11)])
    assert _get(ddb, tbl, {"id": _s(f"{p}-0")}) is None


# --- idempotency -----------------------------------------------------------------------------


def test_same_token_same_request_applies_once(ddb, tbl):
    key = {"id": _s(unique_name("idem"))}
    token = str(uuid.uuid4())
    request = dict(TransactItems=[_update(tbl, key, "ADD n :one", ExpressionAttributeValues={":one": _n(1)})],
                   ClientRequestToken=token)
    first = ddb.transact_write_items(**request)
    second = ddb.transact_write_items(**request)
    first.pop("ResponseMetadata"), second.pop("ResponseMetadata")
    assert first == second == {}
    assert _get(ddb, tbl, key) == {**key, "n": _n(1)}
    # Another token is another transaction.
    ddb.transact_write_items(**{**request, "ClientRequestToken": str(uuid.uuid4())})
    assert _get(ddb, tbl, key) == {**key, "n": _n(2)}
    # Without a token, every call applies.
    ddb.transact_write_items(TransactItems=request["TransactItems"])
    assert _get(ddb, tbl, key) == {**key, "n": _n(3)}


def test_same_token_other_request_is_a_mismatch(ddb, tbl):
    key = {"id": _s(unique_name("mismatch"))}
    token = str(uuid.uuid4())
    ddb.transact_write_items(TransactItems=[_put(tbl, {**key, "v": _n(1)})], ClientRequestToken=token)
    err = expect_error(ddb.transact_write_items, "IdempotentParameterMismatchException",
                       TransactItems=[_put(tbl, {**key, "v": _n(2)})], ClientRequestToken=token)
    assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert _get(ddb, tbl, key) == {**key, "v": _n(1)}


def test_a_replay_reports_read_capacity(ddb, tbl):
    # DynamoDB: the first call reports the write units, a replay the (transactional) read of the result.
    key = {"id": _s(unique_name("replay"))}
    request = dict(TransactItems=[_put(tbl, key)], ClientRequestToken=str(uuid.uuid4()), ReturnConsumedCapacity="TOTAL")
    assert ddb.transact_write_items(**request)["ConsumedCapacity"] == [
        {"TableName": tbl, "CapacityUnits": 2.0, "WriteCapacityUnits": 2.0}]
    assert ddb.transact_write_items(**request)["ConsumedCapacity"] == [
        {"TableName": tbl, "CapacityUnits": 2.0, "ReadCapacityUnits": 2.0}]


# --- capacity and item collection metrics ------------------------------------------------------


def test_write_capacity_is_doubled(ddb, tbl, other):
    p = unique_name("cap")
    ddb.put_item(TableName=tbl, Item={"id": _s(f"{p}-c"), "pad": _s("x" * 1500)})
    actions = [
        _put(tbl, {"id": _s(f"{p}-a")}),                            # 1 unit, doubled: 2
        _put(tbl, {"id": _s(f"{p}-b"), "pad": _s("x" * 1500)}),     # 2 units (1.5 KB), doubled: 4
        _check(tbl, {"id": _s(f"{p}-c")}, "attribute_exists(id)"),  # the 1.5 KB item it looked at: 4
        _put(other, {"id": _s(f"{p}-a")}),                          # 2
    ]
    out = ddb.transact_write_items(TransactItems=actions, ReturnConsumedCapacity="TOTAL")
    assert sorted(out["ConsumedCapacity"], key=lambda c: c["TableName"] != tbl) == [
        {"TableName": tbl, "CapacityUnits": 10.0, "WriteCapacityUnits": 10.0},
        {"TableName": other, "CapacityUnits": 2.0, "WriteCapacityUnits": 2.0},
    ]
    out = ddb.transact_write_items(TransactItems=[_delete(other, {"id": _s(f"{p}-a")})], ReturnConsumedCapacity="INDEXES")
    assert out["ConsumedCapacity"] == [{"TableName": other, "CapacityUnits": 2.0, "WriteCapacityUnits": 2.0,
                                        "Table": {"CapacityUnits": 2.0, "WriteCapacityUnits": 2.0}}]
    out = ddb.transact_write_items(TransactItems=[_delete(other, {"id": _s(f"{p}-a")})], ReturnConsumedCapacity="NONE")
    assert "ConsumedCapacity" not in out


def test_read_capacity_is_doubled(ddb, tbl):
    p = unique_name("rcap")
    ddb.put_item(TableName=tbl, Item={"id": _s(f"{p}-big"), "pad": _s("x" * (5 * KB))})
    gets = [{"Get": {"TableName": tbl, "Key": {"id": _s(f"{p}-big")}}},    # 2 units (5 KB), doubled: 4
            {"Get": {"TableName": tbl, "Key": {"id": _s(f"{p}-none")}}}]   # a miss still costs 2
    out = ddb.transact_get_items(TransactItems=gets, ReturnConsumedCapacity="TOTAL")
    assert out["ConsumedCapacity"] == [{"TableName": tbl, "CapacityUnits": 6.0, "ReadCapacityUnits": 6.0}]
    out = ddb.transact_get_items(TransactItems=gets, ReturnConsumedCapacity="INDEXES")
    assert out["ConsumedCapacity"] == [{"TableName": tbl, "CapacityUnits": 6.0, "ReadCapacityUnits": 6.0,
                                        "Table": {"CapacityUnits": 6.0, "ReadCapacityUnits": 6.0}}]
    assert "ConsumedCapacity" not in ddb.transact_get_items(TransactItems=gets)


def test_item_collection_metrics(ddb):
    name = _lsi_table(ddb)
    try:
        out = ddb.transact_write_items(TransactItems=[
            _put(name, {"pk": _s("a"), "sk": _n(1), "l": _s("x")}),
            _put(name, {"pk": _s("b"), "sk": _n(1)}),
        ], ReturnItemCollectionMetrics="SIZE")
        metrics = out["ItemCollectionMetrics"][name]
        assert sorted(metrics, key=lambda m: m["ItemCollectionKey"]["pk"]["S"]) == [
            {"ItemCollectionKey": {"pk": _s("a")}, "SizeEstimateRangeGB": [0.0, 1.0]},
            {"ItemCollectionKey": {"pk": _s("b")}, "SizeEstimateRangeGB": [0.0, 1.0]},
        ]
        out = ddb.transact_write_items(TransactItems=[_put(name, {"pk": _s("a"), "sk": _n(2)})])
        assert "ItemCollectionMetrics" not in out
    finally:
        ddb.delete_table(TableName=name)


def test_no_item_collection_metrics_without_local_indexes(ddb, tbl):
    out = ddb.transact_write_items(TransactItems=[_put(tbl, {"id": _s(unique_name("nolsi"))})],
                                   ReturnItemCollectionMetrics="SIZE")
    assert "ItemCollectionMetrics" not in out


def _lsi_table(ddb) -> str:
    """Table ``pk``/``sk`` with a KEYS_ONLY local index on ``l``."""
    name = unique_name("txnlsi")
    ddb.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": t} for a, t in (("pk", "S"), ("sk", "N"), ("l", "S"))],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        LocalSecondaryIndexes=[{"IndexName": "lsi", "Projection": {"ProjectionType": "KEYS_ONLY"},
                                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"},
                                              {"AttributeName": "l", "KeyType": "RANGE"}]}],
    )
    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    return name


# --- TransactGetItems ------------------------------------------------------------------------


def test_transact_get_items(ddb, tbl, other):
    p = unique_name("get")
    ddb.put_item(TableName=tbl, Item={"id": _s(f"{p}-a"), "x": _n(1), "name": _s("a"), "m": {"M": {"in": _s("deep")}}})
    ddb.put_item(TableName=other, Item={"id": _s(f"{p}-a"), "y": _n(2)})
    out = ddb.transact_get_items(TransactItems=[
        {"Get": {"TableName": tbl, "Key": {"id": _s(f"{p}-a")}, "ProjectionExpression": "#n, m.#i",
                 "ExpressionAttributeNames": {"#n": "name", "#i": "in"}}},
        {"Get": {"TableName": tbl, "Key": {"id": _s(f"{p}-missing")}}},
        {"Get": {"TableName": other, "Key": {"id": _s(f"{p}-a")}}},
    ])
    assert out["Responses"] == [
        {"Item": {"name": _s("a"), "m": {"M": {"in": _s("deep")}}}},
        {},
        {"Item": {"id": _s(f"{p}-a"), "y": _n(2)}},
    ]
    assert set(out) == {"Responses", "ResponseMetadata"}


def test_transact_get_reads_what_a_transaction_wrote(ddb, tbl):
    p = unique_name("after")
    keys = [{"id": _s(f"{p}-{i}")} for i in range(12)]
    ddb.transact_write_items(TransactItems=[_put(tbl, {**k, "v": _n(1)}) for k in keys])
    ddb.transact_write_items(TransactItems=[_update(tbl, k, "SET v = v + :one", ExpressionAttributeValues={":one": _n(1)})
                                            for k in keys])
    got = ddb.transact_get_items(TransactItems=[{"Get": {"TableName": tbl, "Key": k}} for k in keys])
    assert [r["Item"]["v"] for r in got["Responses"]] == [_n(2)] * 12


# --- streams ---------------------------------------------------------------------------------


def test_a_transaction_appears_as_individual_stream_records(ddb, endpoint):
    streams = streams_client(endpoint)
    name, arn = stream_table(ddb, "NEW_AND_OLD_IMAGES")
    p = unique_name("st")
    ddb.put_item(TableName=name, Item={"id": _s(f"{p}-u"), "n": _n(1)})
    ddb.put_item(TableName=name, Item={"id": _s(f"{p}-d"), "n": _n(1)})
    ddb.put_item(TableName=name, Item={"id": _s(f"{p}-c"), "n": _n(1)})
    # A cancelled transaction leaves no record.
    cancelled(ddb.transact_write_items, TransactItems=[
        _put(name, {"id": _s(f"{p}-p"), "bad": _s("cancelled")}),
        _check(name, {"id": _s(f"{p}-c")}, "n = :two", ExpressionAttributeValues={":two": _n(2)}),
    ])
    ddb.transact_write_items(TransactItems=[
        _put(name, {"id": _s(f"{p}-p"), "n": _n(9)}),
        _update(name, {"id": _s(f"{p}-u")}, "SET n = n + :one", ExpressionAttributeValues={":one": _n(1)}),
        _delete(name, {"id": _s(f"{p}-d")}),
        _check(name, {"id": _s(f"{p}-c")}, "n = :one", ExpressionAttributeValues={":one": _n(1)}),
    ])
    ddb.put_item(TableName=name, Item={"id": _s(f"{p}-c"), "n": _n(2)})  # after the transaction: the check's key
    _, p_records = wait_for_key(streams, arn, f"{p}-p")
    _, u_records = wait_for_key(streams, arn, f"{p}-u", 2)
    _, d_records = wait_for_key(streams, arn, f"{p}-d", 2)
    _, c_records = wait_for_key(streams, arn, f"{p}-c", 2)
    assert [(r["eventName"], r["dynamodb"].get("OldImage"), r["dynamodb"].get("NewImage")) for r in p_records] == [
        ("INSERT", None, {"id": _s(f"{p}-p"), "n": _n(9)})]
    assert [(r["eventName"], r["dynamodb"].get("NewImage")) for r in u_records] == [
        ("INSERT", {"id": _s(f"{p}-u"), "n": _n(1)}), ("MODIFY", {"id": _s(f"{p}-u"), "n": _n(2)})]
    assert [(r["eventName"], r["dynamodb"].get("OldImage")) for r in d_records][1] == (
        "REMOVE", {"id": _s(f"{p}-d"), "n": _n(1)})
    # The ConditionCheck wrote nothing: the key's records are its two puts only.
    assert [r["eventName"] for r in c_records] == ["INSERT", "MODIFY"]
