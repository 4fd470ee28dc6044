"""BatchGetItem and BatchWriteItem through boto3, against any endpoint.

Messages and capacity figures follow what DynamoDB answers (as recorded by
mhart/dynalite's tests, which run against DynamoDB itself) and the API
reference.  Item order inside ``Responses`` is not guaranteed, so results
are compared as sets of keys.
"""

from __future__ import annotations

import re

import pytest

from helpers import create_table, expect_error, unique_name

DUPLICATES = "Provided list of item keys contains duplicates"
KEY_MISMATCH = "The provided key element does not match the schema"
NOT_FOUND = "Requested resource not found"
EXACTLY_ONE = "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes"


@pytest.fixture(scope="module")
def hash_tbl(ddb):
    return create_table(ddb, unique_name("bhash"))


@pytest.fixture(scope="module")
def range_tbl(ddb):
    return create_table(ddb, unique_name("brange"), pk=("pk", "S"), sk=("sk", "N"))


@pytest.fixture(scope="module")
def num_tbl(ddb):
    return create_table(ddb, unique_name("bnum"), pk=("id", "N"))


def _ids(items: list[dict], attr: str = "id") -> set[str]:
    return {next(iter(item[attr].values())) for item in items}


def _put(item: dict) -> dict:
    return {"PutRequest": {"Item": item}}


def _delete(key: dict) -> dict:
    return {"DeleteRequest": {"Key": key}}


def _s(value: str) -> dict:
    return {"S": value}


def _get(ddb, table: str, key: dict) -> dict | None:
    return ddb.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")


# --- functionality --------------------------------------------------------------


def test_round_trip_over_several_tables(ddb, hash_tbl, range_tbl, num_tbl):
    prefix = unique_name("rt")
    hash_items = [{"id": _s(f"{prefix}-{i}"), "v": {"N": str(i)}} for i in range(10)]
    range_items = [{"pk": _s(prefix), "sk": {"N": str(i)}, "v": _s("x" * i)} for i in range(8)]
    num_items = [{"id": {"N": str(1000 + i)}, "tag": _s(prefix)} for i in range(5)]
    out = ddb.batch_write_item(RequestItems={
        hash_tbl: [_put(i) for i in hash_items],
        range_tbl: [_put(i) for i in range_items],
        num_tbl: [_put(i) for i in num_items],
    })
    assert out["UnprocessedItems"] == {}
    assert "ConsumedCapacity" not in out and "ItemCollectionMetrics" not in out

    out = ddb.batch_get_item(RequestItems={
        hash_tbl: {"Keys": [{"id": i["id"]} for i in hash_items] + [{"id": _s(f"{prefix}-missing")}]},
        range_tbl: {"Keys": [{"pk": i["pk"], "sk": i["sk"]} for i in range_items], "ConsistentRead": True},
        num_tbl: {"Keys": [{"id": i["id"]} for i in num_items]},
    })
    assert out["UnprocessedKeys"] == {}
    responses = out["Responses"]
    assert sorted(responses[hash_tbl], key=lambda i: int(i["v"]["N"])) == hash_items
    assert sorted(responses[range_tbl], key=lambda i: int(i["sk"]["N"])) == range_items
    assert sorted(responses[num_tbl], key=lambda i: int(i["id"]["N"])) == num_items
    assert "ConsumedCapacity" not in out


def test_missing_keys_give_empty_lists(ddb, hash_tbl, range_tbl):
    out = ddb.batch_get_item(RequestItems={
        hash_tbl: {"Keys": [{"id": _s(unique_name())}]},
        range_tbl: {"Keys": [{"pk": _s(unique_name()), "sk": {"N": "1"}}]},
    })
    assert out["Responses"] == {hash_tbl: [], range_tbl: []}
    assert out["UnprocessedKeys"] == {}


@pytest.mark.parametrize("settings", [
    {"AttributesToGet": ["b", "c"]},
    {"ProjectionExpression": "b, c"},
    {"ProjectionExpression": "#b, #c", "ExpressionAttributeNames": {"#b": "b", "#c": "c"}},
])
def test_projections(ddb, hash_tbl, settings):
    prefix = unique_name("proj")
    items = [
        {"id": _s(f"{prefix}-1"), "b": {"N": "1"}, "c": _s("c"), "d": _s("d")},
        {"id": _s(f"{prefix}-2"), "b": {"N": "2"}},
        {"id": _s(f"{prefix}-3")},
    ]
    ddb.batch_write_item(RequestItems={hash_tbl: [_put(i) for i in items]})
    keys = [{"id": i["id"]} for i in items] + [{"id": _s(f"{prefix}-none")}]
    out = ddb.batch_get_item(RequestItems={hash_tbl: {"Keys": keys, "ConsistentRead": True, **settings}})
    got = out["Responses"][hash_tbl]
    assert len(got) == 3
    for expected in ({"b": {"N": "1"}, "c": _s("c")}, {"b": {"N": "2"}}, {}):
        assert expected in got


def test_puts_and_deletes_together(ddb, hash_tbl):
    a, b = {"id": _s(unique_name())}, {"id": _s(unique_name())}
    ddb.put_item(TableName=hash_tbl, Item={**a, "v": _s("old")})
    out = ddb.batch_write_item(RequestItems={hash_tbl: [_delete(a), _put({**b, "v": _s("new")})]})
    assert out == {"UnprocessedItems": {}, "ResponseMetadata": out["ResponseMetadata"]}
    assert _get(ddb, hash_tbl, a) is None
    assert _get(ddb, hash_tbl, b) == {**b, "v": _s("new")}
    # A put replaces the whole item, as PutItem does.
    ddb.batch_write_item(RequestItems={hash_tbl: [_put({**b, "w": _s("w")}), _delete(a)]})
    assert _get(ddb, hash_tbl, b) == {**b, "w": _s("w")}


def test_numbers_are_normalised(ddb, num_tbl):
    ddb.batch_write_item(RequestItems={num_tbl: [_put({"id": {"N": "12.50"}, "n": {"N": "1E+2"}})]})
    out = ddb.batch_get_item(RequestItems={num_tbl: {"Keys": [{"id": {"N": "012.5"}}]}})
    assert out["Responses"][num_tbl] == [{"id": {"N": "12.5"}, "n": {"N": "100"}}]


def test_item_collection_metrics_accepted(ddb, hash_tbl):
    out = ddb.batch_write_item(RequestItems={hash_tbl: [_put({"id": _s(unique_name())})]},
                               ReturnItemCollectionMetrics="SIZE")
    assert out["UnprocessedItems"] == {}
    assert "ItemCollectionMetrics" not in out


# --- consumed capacity ------------------------------------------------------------


def _capacity(out: dict) -> dict[str, dict]:
    return {c["TableName"]: c for c in out["ConsumedCapacity"]}


def test_get_consumed_capacity_per_table(ddb, hash_tbl, num_tbl):
    prefix = unique_name("cap")
    big = {"id": _s(f"{prefix}-big"), "b": _s("b" * 5000)}  # 2 read units (4 KB each)
    small = {"id": _s(f"{prefix}-small")}
    ddb.batch_write_item(RequestItems={hash_tbl: [_put(big), _put(small)]})
    request = {
        hash_tbl: {"Keys": [{"id": big["id"]}, {"id": small["id"]}, {"id": _s(f"{prefix}-none")}]},
        num_tbl: {"Keys": [{"id": {"N": "-424242"}}]},
    }
    out = ddb.batch_get_item(RequestItems=request, ReturnConsumedCapacity="TOTAL")
    assert _capacity(out) == {
        hash_tbl: {"TableName": hash_tbl, "CapacityUnits": 2.0},  # (2 + 1 + 1) / 2, eventually consistent
        num_tbl: {"TableName": num_tbl, "CapacityUnits": 0.5},
    }
    for entry in request.values():
        entry["ConsistentRead"] = True
    out = ddb.batch_get_item(RequestItems=request, ReturnConsumedCapacity="INDEXES")
    assert _capacity(out) == {
        hash_tbl: {"TableName": hash_tbl, "CapacityUnits": 4.0, "Table": {"CapacityUnits": 4.0}},
        num_tbl: {"TableName": num_tbl, "CapacityUnits": 1.0, "Table": {"CapacityUnits": 1.0}},
    }
    out = ddb.batch_get_item(RequestItems=request, ReturnConsumedCapacity="NONE")
    assert "ConsumedCapacity" not in out


def test_write_consumed_capacity_per_table(ddb, hash_tbl, num_tbl):
    prefix = unique_name("wcap")
    big = {"id": _s(f"{prefix}-big"), "b": _s("b" * 1500)}  # 2 write units (1 KB each)
    small = {"id": _s(f"{prefix}-small")}
    out = ddb.batch_write_item(RequestItems={hash_tbl: [_put(big), _put(small)], num_tbl: [_put({"id": {"N": "-7"}})]},
                               ReturnConsumedCapacity="TOTAL")
    assert _capacity(out) == {
        hash_tbl: {"TableName": hash_tbl, "CapacityUnits": 3.0},
        num_tbl: {"TableName": num_tbl, "CapacityUnits": 1.0},
    }
    # A delete costs the size of the item it removes; a missing item costs one unit.
    deletes = {hash_tbl: [_delete({"id": big["id"]}), _delete({"id": _s(f"{prefix}-none")})]}
    out = ddb.batch_write_item(RequestItems=deletes, ReturnConsumedCapacity="INDEXES")
    assert _capacity(out) == {hash_tbl: {"TableName": hash_tbl, "CapacityUnits": 3.0, "Table": {"CapacityUnits": 3.0}}}
    out = ddb.batch_write_item(RequestItems=deletes, ReturnConsumedCapacity="TOTAL")
    assert _capacity(out) == {hash_tbl: {"TableName": hash_tbl, "CapacityUnits": 2.0}}


# --- limits -----------------------------------------------------------------------


def test_more_than_100_keys_in_one_table(ddb):
    keys = [{"id": _s(str(i))} for i in range(101)]
    err = expect_error(ddb.batch_get_item, "ValidationException", RequestItems={"abc": {"Keys": keys}})
    assert re.fullmatch(
        r"1 validation error detected: Value '\[.+\]' at 'requestItems\.abc\.member\.keys' failed to satisfy "
        r"constraint: Member must have length less than or equal to 100",
        err.response["Error"]["Message"], re.S,
    )


def test_more_than_100_keys_over_tables(ddb):
    keys = [{"id": _s(str(i))} for i in range(100)]
    expect_error(ddb.batch_get_item, "ValidationException", "Too many items requested for the BatchGetItem call",
                 RequestItems={"abc": {"Keys": keys}, "abd": {"Keys": [{"id": _s("100")}]}})


def test_exactly_100_keys_reach_the_table_lookup(ddb):
    keys = [{"id": _s(str(i))} for i in range(100)]
    expect_error(ddb.batch_get_item, "ResourceNotFoundException", NOT_FOUND,
                 RequestItems={unique_name(): {"Keys": keys}})


def test_100_keys_are_served(ddb, hash_tbl):
    prefix = unique_name("hundred")
    for start in range(0, 100, 25):
        ddb.batch_write_item(RequestItems={hash_tbl: [_put({"id": _s(f"{prefix}-{i}")}) for i in range(start, start + 25)]})
    out = ddb.batch_get_item(RequestItems={hash_tbl: {"Keys": [{"id": _s(f"{prefix}-{i}")} for i in range(100)]}})
    assert out["UnprocessedKeys"] == {}
    assert _ids(out["Responses"][hash_tbl]) == {f"{prefix}-{i}" for i in range(100)}


def test_more_than_25_writes_in_one_table(ddb):
    requests = [_put({"id": _s(str(i))}) if i % 2 else _delete({"id": _s(str(i))}) for i in range(26)]
    err = expect_error(ddb.batch_write_item, "ValidationException", RequestItems={"abc": requests})
    assert re.fullmatch(
        r"1 validation error detected: Value '\{.+\}' at 'requestItems' failed to satisfy constraint: Map value must "
        r"satisfy constraint: \[Member must have length less than or equal to 25, Member must have length greater "
        r"than or equal to 1\]",
        err.response["Error"]["Message"], re.S,
    )


def test_more_than_25_writes_over_tables(ddb):
    requests = [_put({"id": _s(str(i))}) for i in range(13)]
    expect_error(ddb.batch_write_item, "ValidationException", "Too many items requested for the BatchWriteItem call",
                 RequestItems={"abc": requests, "abd": requests})


def test_exactly_25_writes_reach_the_table_lookup(ddb):
    requests = [_put({"id": _s(str(i))}) for i in range(25)]
    expect_error(ddb.batch_write_item, "ResourceNotFoundException", NOT_FOUND, RequestItems={unique_name(): requests})


# --- request checks ----------------------------------------------------------------


def test_get_duplicate_keys_checked_before_the_table(ddb):
    key = {"pk": _s("a"), "sk": {"N": "1"}}
    expect_error(ddb.batch_get_item, "ValidationException", DUPLICATES,
                 RequestItems={unique_name(): {"Keys": [key, {"sk": key["sk"], "pk": key["pk"]}]}})


def test_get_duplicate_keys(ddb, hash_tbl):
    expect_error(ddb.batch_get_item, "ValidationException", DUPLICATES,
                 RequestItems={hash_tbl: {"Keys": [{"id": _s("a")}, {"id": _s("b")}, {"id": _s("a")}]}})


def test_same_key_in_two_tables_is_not_a_duplicate(ddb, hash_tbl):
    other = create_table(ddb, unique_name("bother"))
    try:
        out = ddb.batch_get_item(RequestItems={hash_tbl: {"Keys": [{"id": _s("same")}]},
                                               other: {"Keys": [{"id": _s("same")}]}})
        assert out["UnprocessedKeys"] == {}
    finally:
        ddb.delete_table(TableName=other)


def test_attributes_to_get_duplicates(ddb):
    expect_error(ddb.batch_get_item, "ValidationException",
                 "One or more parameter values were invalid: Duplicate value in attribute name: a",
                 RequestItems={"abc": {"Keys": [{"id": _s("x")}], "AttributesToGet": ["a", "a"]}})


def test_expression_and_legacy_mixed(ddb):
    expect_error(ddb.batch_get_item, "ValidationException",
                 "Can not use both expression and non-expression parameters in the same request: "
                 "Non-expression parameters: {AttributesToGet} Expression parameters: {ProjectionExpression}",
                 RequestItems={"abc": {"Keys": [{"id": _s("x")}], "AttributesToGet": ["a"], "ProjectionExpression": "a"}})
    expect_error(ddb.batch_get_item, "ValidationException",
                 "ExpressionAttributeNames can only be specified when using expressions",
                 RequestItems={"abc": {"Keys": [{"id": _s("x")}], "ExpressionAttributeNames": {"#a": "a"}}})


def test_projection_errors(ddb):
    expect_error(ddb.batch_get_item, "ValidationException", "Invalid ProjectionExpression: The expression can not be empty;",
                 RequestItems={"abc": {"Keys": [{"id": _s("x")}], "ProjectionExpression": ""}})
    expect_error(ddb.batch_get_item, "ValidationException", "ExpressionAttributeNames must not be empty",
                 RequestItems={"abc": {"Keys": [{"id": _s("x")}], "ProjectionExpression": "a", "ExpressionAttributeNames": {}}})


def test_invalid_attribute_values(ddb):
    expect_error(ddb.batch_get_item, "ValidationException",
                 "One or more parameter values were invalid: An string set  may not be empty",
                 RequestItems={"abc": {"Keys": [{"a": {"SS": []}}]}})
    expect_error(ddb.batch_write_item, "ValidationException",
                 "One or more parameter values were invalid: Null attribute value types must have the value of true",
                 RequestItems={"abc": [_put({"a": {"NULL": False}})]})
    expect_error(ddb.batch_write_item, "ValidationException",
                 "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes",
                 RequestItems={"abc": [_delete({"a": {}})]})


def test_write_request_needs_exactly_one_action(ddb, hash_tbl):
    expect_error(ddb.batch_write_item, "ValidationException", EXACTLY_ONE, RequestItems={hash_tbl: [{}]})
    both = {"PutRequest": {"Item": {"id": _s("x")}}, "DeleteRequest": {"Key": {"id": _s("x")}}}
    expect_error(ddb.batch_write_item, "ValidationException", EXACTLY_ONE, RequestItems={hash_tbl: [both]})


def test_item_too_large_checked_before_the_table(ddb):
    item = {"id": _s("x"), "b": _s("b" * (400 * 1024))}
    expect_error(ddb.batch_write_item, "ValidationException", "Item size has exceeded the maximum allowed size",
                 RequestItems={unique_name(): [_put(item)]})


def test_unknown_table(ddb, hash_tbl):
    missing = unique_name()
    expect_error(ddb.batch_get_item, "ResourceNotFoundException", NOT_FOUND,
                 RequestItems={hash_tbl: {"Keys": [{"id": _s("x")}]}, missing: {"Keys": [{"id": _s("x")}]}})
    expect_error(ddb.batch_write_item, "ResourceNotFoundException", NOT_FOUND,
                 RequestItems={missing: [_put({"id": _s("x")})]})


def test_write_duplicates_checked_after_the_table(ddb):
    item = {"id": _s("x"), "c": _s("c")}
    expect_error(ddb.batch_write_item, "ResourceNotFoundException", NOT_FOUND,
                 RequestItems={unique_name(): [_put(item), _delete({"id": item["id"]})]})


@pytest.mark.parametrize("order", ["put first", "delete first"])
def test_write_put_and_delete_of_one_item(ddb, hash_tbl, order):
    item = {"id": _s(unique_name()), "c": _s("c")}
    requests = [_put(item), _delete({"id": item["id"]})]
    if order == "delete first":
        requests.reverse()
    expect_error(ddb.batch_write_item, "ValidationException", DUPLICATES, RequestItems={hash_tbl: requests})


def test_write_duplicates_compare_normalised_numbers(ddb, num_tbl):
    expect_error(ddb.batch_write_item, "ValidationException", DUPLICATES,
                 RequestItems={num_tbl: [_put({"id": {"N": "1.0"}}), _put({"id": {"N": "1"}})]})


@pytest.mark.parametrize("key", [
    {},
    {"other": _s("a")},
    {"id": {"N": "1"}},
    {"id": {"B": "YWJj"}},
    {"id": _s("a"), "extra": _s("b")},
])
def test_get_and_delete_key_mismatch(ddb, hash_tbl, key):
    expect_error(ddb.batch_get_item, "ValidationException", KEY_MISMATCH, RequestItems={hash_tbl: {"Keys": [key]}})
    expect_error(ddb.batch_write_item, "ValidationException", KEY_MISMATCH, RequestItems={hash_tbl: [_delete(key)]})


@pytest.mark.parametrize("item", [{}, {"other": _s("a")}, {"id": {"N": "1"}}, {"id": {"SS": ["a"]}}])
def test_put_key_mismatch(ddb, hash_tbl, item):
    expect_error(ddb.batch_write_item, "ValidationException", KEY_MISMATCH, RequestItems={hash_tbl: [_put(item)]})


def test_range_key_missing(ddb, range_tbl):
    expect_error(ddb.batch_get_item, "ValidationException", KEY_MISMATCH,
                 RequestItems={range_tbl: {"Keys": [{"pk": _s("a")}]}})
    expect_error(ddb.batch_write_item, "ValidationException", KEY_MISMATCH,
                 RequestItems={range_tbl: [_put({"pk": _s("a")})]})


def test_key_value_errors_keep_their_wording(ddb, hash_tbl):
    expect_error(ddb.batch_write_item, "ValidationException",
                 "One or more parameter values were invalid: Size of hashkey has exceeded the maximum size limit of2048 bytes",
                 RequestItems={hash_tbl: [_put({"id": _s("a" * 2049)})]})
    expect_error(ddb.batch_get_item, "ValidationException",
                 "One or more parameter values were invalid: Size of hashkey has exceeded the maximum size limit of2048 bytes",
                 RequestItems={hash_tbl: {"Keys": [{"id": _s("a" * 2049)}]}})
    expect_error(ddb.batch_write_item, "ValidationException",
                 "One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an "
                 "empty string value. Key: id",
                 RequestItems={hash_tbl: [_delete({"id": _s("")})]})


def test_failing_batch_writes_nothing(ddb, hash_tbl, range_tbl):
    good = [{"id": _s(unique_name())} for _ in range(5)]
    expect_error(ddb.batch_write_item, "ValidationException", KEY_MISMATCH,
                 RequestItems={hash_tbl: [_put(i) for i in good], range_tbl: [_put({"pk": _s("a"), "sk": _s("not N")})]})
    expect_error(ddb.batch_write_item, "ResourceNotFoundException", NOT_FOUND,
                 RequestItems={hash_tbl: [_put(i) for i in good], unique_name(): [_put({"id": _s("a")})]})
    expect_error(ddb.batch_write_item, "ValidationException", DUPLICATES,
                 RequestItems={hash_tbl: [_put(i) for i in good] + [_delete({"id": good[0]["id"]})]})
    out = ddb.batch_get_item(RequestItems={hash_tbl: {"Keys": good, "ConsistentRead": True}})
    assert out["Responses"][hash_tbl] == []


# --- the response size cap -----------------------------------------------------------


def test_response_over_16_mb_returns_unprocessed_keys(ddb, hash_tbl):
    prefix = unique_name("cap16")
    filler = "f" * (400 * 1024 - 100)
    ids = [f"{prefix}-{i:02d}" for i in range(42)]  # 42 * ~400 KB > 16 MB
    for start in range(0, len(ids), 21):
        out = ddb.batch_write_item(RequestItems={hash_tbl: [_put({"id": _s(k), "f": _s(filler)}) for k in ids[start:start + 21]]})
        assert out["UnprocessedItems"] == {}
    request = {hash_tbl: {"Keys": [{"id": _s(k)} for k in ids], "ProjectionExpression": "id, f", "ConsistentRead": True}}
    out = ddb.batch_get_item(RequestItems=request)
    returned = _ids(out["Responses"][hash_tbl])
    left = out["UnprocessedKeys"][hash_tbl]
    assert left["ProjectionExpression"] == "id, f" and left["ConsistentRead"] is True
    assert returned and left["Keys"]
    assert returned | _ids(left["Keys"]) == set(ids) and not returned & _ids(left["Keys"])
    assert sum(len(item["f"]["S"]) for item in out["Responses"][hash_tbl]) <= 16 * 1024 * 1024
    # Asking again for what was left returns the rest.
    out = ddb.batch_get_item(RequestItems=out["UnprocessedKeys"])
    assert out["UnprocessedKeys"] == {}
    assert returned | _ids(out["Responses"][hash_tbl]) == set(ids)
    ddb.batch_write_item(RequestItems={hash_tbl: [_delete({"id": _s(k)}) for k in ids[:25]]})
    ddb.batch_write_item(RequestItems={hash_tbl: [_delete({"id": _s(k)}) for k in ids[25:]]})
