"""Global secondary indexes with multi-attribute keys (DynamoDB, 2025), through
boto3, against any endpoint (embedded and a 3-node cluster).

A GSI's ``KeySchema`` may hold up to four HASH attributes, then up to four
RANGE attributes.  Expected behaviour is DynamoDB's: the Developer Guide's
"Multi-attribute key schema" (every partition attribute by equality; sort
attributes left to right with no gap, only the last one named a range
condition; an item is in the index only with every key attribute), the 2026
parity catalog of live CreateTable/UpdateTable messages (DDB-TABLE-442), and
conformance tests run against live DynamoDB for the Query and PartiQL wording
and the sort order (paritysuite/dynamodb-conformance, October 2026).
Global indexes are eventually consistent, so reads poll until they agree.
"""

from __future__ import annotations

import time

import pytest

from helpers import expect_error, unique_name

CONVERGE_S = 10.0
POLL_S = 0.05
INVALID = "One or more parameter values were invalid: "
EQUALITIES = ("RANGE key attributes {} must have equality conditions specified in the query because a condition "
              "is present on key attribute {}")
PARTIQL_REFUSED = ("PartiQL statements cannot be executed on tables with multi-attribute HASH keys or "
                   "multi-attribute RANGE keys.")


def _s(value: str) -> dict:
    return {"S": value}


def _keys(hash_names, range_names) -> list[dict]:
    return ([{"AttributeName": n, "KeyType": "HASH"} for n in hash_names]
            + [{"AttributeName": n, "KeyType": "RANGE"} for n in range_names])


def _gsi(name: str, hash_names, range_names, projection: str = "ALL") -> dict:
    return {"IndexName": name, "KeySchema": _keys(hash_names, range_names),
            "Projection": {"ProjectionType": projection}}


def _definitions(names, key_type: str = "S") -> list[dict]:
    return [{"AttributeName": n, "AttributeType": key_type} for n in names]


def _eventually(probe, timeout_s: float = CONVERGE_S):
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value:
            return value
        assert time.monotonic() < deadline, "the index did not converge in time"
        time.sleep(POLL_S)


def _wait_active(ddb, table: str) -> dict:
    def active():
        description = ddb.describe_table(TableName=table)["Table"]
        indexes = description.get("GlobalSecondaryIndexes", [])
        done = all(i["IndexStatus"] == "ACTIVE" and "Backfilling" not in i for i in indexes)
        return description if done else None

    return _eventually(active)


@pytest.fixture
def make_table(ddb):
    """Factory: ``make_table(definitions, gsis, key=("pk",)) -> name``; deleted after the test."""
    created: list[str] = []

    def make(definitions: list[dict], gsis: list[dict] | None, key=("pk",)) -> str:
        name = unique_name("mak")
        kwargs = {"GlobalSecondaryIndexes": gsis} if gsis else {}
        ddb.create_table(TableName=name, AttributeDefinitions=definitions, BillingMode="PAY_PER_REQUEST",
                         KeySchema=_keys(key[:1], key[1:]), **kwargs)
        created.append(name)
        ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
        return name

    yield make
    for name in created:
        _wait_active(ddb, name)
        ddb.delete_table(TableName=name)


def _query(ddb, table: str, condition: str, values: dict, index: str = "gsi", **kwargs) -> list[dict]:
    items, request = [], dict(TableName=table, IndexName=index, KeyConditionExpression=condition,
                              ExpressionAttributeValues=values, **kwargs)
    while True:
        page = ddb.query(**request)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            return items
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


# --- CreateTable, UpdateTable, DescribeTable ---------------------------------------------------


def test_create_and_describe_keep_the_key_schema_in_order(ddb, make_table):
    hashes, ranges = ["h1", "h2", "h3", "h4"], ["r1", "r2", "r3", "r4"]
    name = make_table(_definitions(["pk", *hashes, *ranges]),
                      [_gsi("gsi", hashes, ranges), _gsi("two", ["h2", "h1"], [])])
    described = {i["IndexName"]: i for i in ddb.describe_table(TableName=name)["Table"]["GlobalSecondaryIndexes"]}
    assert described["gsi"]["KeySchema"] == _keys(hashes, ranges)
    assert described["two"]["KeySchema"] == _keys(["h2", "h1"], [])
    assert described["gsi"]["IndexStatus"] == "ACTIVE"


def _create_error(ddb, gsi_key_schema: list[dict], names, message: str, **extra) -> None:
    expect_error(ddb.create_table, "ValidationException", message, TableName=unique_name("mak"),
                 AttributeDefinitions=_definitions(["pk", *names]), KeySchema=_keys(["pk"], []),
                 BillingMode="PAY_PER_REQUEST",
                 GlobalSecondaryIndexes=[{"IndexName": "gsi", "KeySchema": gsi_key_schema,
                                          "Projection": {"ProjectionType": "ALL"}}], **extra)


def test_create_table_key_schema_rules(ddb):
    five = [f"a{i}" for i in range(5)]
    _create_error(ddb, _keys(five, []), five,
                  INVALID + "The KeySchema exceeds the maximum allowed number of HASH key attributes")
    _create_error(ddb, _keys(["h"], five), ["h", *five],
                  INVALID + "The KeySchema exceeds the maximum allowed number of RANGE key attributes")
    _create_error(ddb, _keys(["a"], ["b"]) + _keys(["c"], []), ["a", "b", "c"],
                  INVALID + "All HASH key attributes must precede RANGE key attributes in the KeySchema")
    _create_error(ddb, _keys([], ["a", "b"]), ["a", "b"],
                  "Invalid KeySchema: The first KeySchemaElement is not a HASH key type")
    _create_error(ddb, _keys(["a", "b"], ["a"]), ["a", "b"],
                  "The KeySchema contains multiple key attributes with the same name")
    _create_error(ddb, _keys(["a", "b"], []), ["a"],
                  INVALID + "Some index key attributes are not defined in AttributeDefinitions. "
                  "Keys: [a, b], AttributeDefinitions: [pk, a]")


def test_only_global_indexes_take_multi_attribute_keys(ddb):
    """The table's key and a local index's keep at most two elements (the shape check's wording)."""
    error = expect_error(ddb.create_table, "ValidationException", TableName=unique_name("mak"),
                         AttributeDefinitions=_definitions(["pk", "sk", "x"]), BillingMode="PAY_PER_REQUEST",
                         KeySchema=_keys(["pk"], ["sk", "x"]))
    assert "Member must have length less than or equal to 2" in error.response["Error"]["Message"]
    error = expect_error(ddb.create_table, "ValidationException", TableName=unique_name("mak"),
                         AttributeDefinitions=_definitions(["pk", "sk", "x", "y"]), BillingMode="PAY_PER_REQUEST",
                         KeySchema=_keys(["pk"], ["sk"]),
                         LocalSecondaryIndexes=[{"IndexName": "lsi", "KeySchema": _keys(["pk"], ["x", "y"]),
                                                 "Projection": {"ProjectionType": "ALL"}}])
    assert "localSecondaryIndexes.1.member.keySchema" in error.response["Error"]["Message"]


def test_update_table_adds_one_and_backfills_it(ddb, make_table):
    name = make_table(_definitions(["pk"]), None)
    items = [{"pk": _s(f"k{i}"), "a": _s("common"), "b": _s(f"b{i % 2}"), "c": _s(f"c{i:02d}")} for i in range(12)]
    for item in items + [{"pk": _s("no-c"), "a": _s("common"), "b": _s("b0")}]:
        ddb.put_item(TableName=name, Item=item)
    five = [f"a{i}" for i in range(5)]
    expect_error(ddb.update_table, "ValidationException",
                 INVALID + "The KeySchema exceeds the maximum allowed number of HASH key attributes",
                 TableName=name, AttributeDefinitions=_definitions(five),
                 GlobalSecondaryIndexUpdates=[{"Create": _gsi("gsi", five, [])}])
    answer = ddb.update_table(TableName=name, AttributeDefinitions=_definitions(["a", "b", "c"]),
                              GlobalSecondaryIndexUpdates=[{"Create": _gsi("gsi", ["a", "b"], ["c"])}])
    assert answer["TableDescription"]["GlobalSecondaryIndexes"][0]["KeySchema"] == _keys(["a", "b"], ["c"])
    _wait_active(ddb, name)
    values = {":a": _s("common"), ":b": _s("b1")}
    found = _eventually(lambda: len(r := _query(ddb, name, "a = :a AND b = :b", values)) == 6 and r)
    assert [i["c"]["S"] for i in found] == [f"c{i:02d}" for i in range(1, 12, 2)]
    _eventually(lambda: ddb.describe_table(TableName=name)["Table"]["GlobalSecondaryIndexes"][0]["ItemCount"] == 12)


# --- writes: sparse entries, key types ------------------------------------------------------------


@pytest.fixture
def ordered_table(ddb, make_table):
    """The live-verified layout: HASH h, RANGE a, b, c, d (strings); p6 lacks c, so is not in the index."""
    name = make_table(_definitions(["pk", "h", "a", "b", "c", "d"]), [_gsi("gsi", ["h"], ["a", "b", "c", "d"])])
    rows = [("p1", "T", "live", "b", "r1"), ("p2", "T", "live", "a", "r2"), ("p3", "T", "live", "a", "r1"),
            ("p4", "T", "draft", "c", "r1"), ("p5", "F", "live", "a", "r0"), ("p6", "T", "live", None, "r1")]
    for pk, a, b, c, d in rows:
        item = {"pk": _s(pk), "h": _s("o1"), "a": _s(a), "b": _s(b), "d": _s(d)}
        if c is not None:
            item["c"] = _s(c)
        ddb.put_item(TableName=name, Item=item)
    _eventually(lambda: len(_query(ddb, name, "h = :h", {":h": _s("o1")})) == 5)
    return name


VALUES = {":h": _s("o1"), ":a": _s("T"), ":b": _s("live"), ":c": _s("a"), ":d": _s("r"), ":x": _s("r1")}


def _pks(ddb, table: str, condition: str, **kwargs) -> list[str]:
    values = {k: v for k, v in VALUES.items() if k in condition}
    return [i["pk"]["S"] for i in _query(ddb, table, condition, values, **kwargs)]


def test_query_sorts_by_the_range_attributes_in_turn(ddb, ordered_table):
    assert _pks(ddb, ordered_table, "h = :h") == ["p5", "p4", "p3", "p2", "p1"]
    assert _pks(ddb, ordered_table, "h = :h AND a = :a") == ["p4", "p3", "p2", "p1"]
    assert _pks(ddb, ordered_table, "h = :h AND a = :a", ScanIndexForward=False) == ["p1", "p2", "p3", "p4"]
    assert _pks(ddb, ordered_table, "h = :h AND a = :a AND b = :b") == ["p3", "p2", "p1"]
    assert _pks(ddb, ordered_table, "h = :h AND a = :a AND b = :b AND c = :c") == ["p3", "p2"]
    assert _pks(ddb, ordered_table, "h = :h AND a = :a AND b = :b AND c > :c") == ["p1"]
    assert _pks(ddb, ordered_table, "h = :h AND a = :a AND b = :b AND c = :c AND begins_with(d, :d)") == ["p3", "p2"]
    assert _pks(ddb, ordered_table, "h = :h AND a = :a AND b = :b AND c = :c AND d BETWEEN :x AND :x") == ["p3"]
    assert _pks(ddb, ordered_table, "h = :h AND a = :a AND b < :b") == ["p4"]
    assert _pks(ddb, ordered_table, "b = :b AND h = :h AND a = :a") == ["p3", "p2", "p1"]  # any clause order


def test_query_key_condition_rules(ddb, ordered_table):
    def refused(condition: str, message: str) -> None:
        values = {k: v for k, v in VALUES.items() if k in condition}
        expect_error(ddb.query, "ValidationException", message, TableName=ordered_table, IndexName="gsi",
                     KeyConditionExpression=condition, ExpressionAttributeValues=values)

    refused("h = :h AND a = :a AND c = :c", EQUALITIES.format("b", "c"))
    refused("h = :h AND a = :a AND b > :b AND c = :c", EQUALITIES.format("b", "c"))
    refused("h = :h AND b = :b", EQUALITIES.format("a", "b"))
    refused("a = :a", "Query condition missed key schema element: h")
    refused("h > :h", "Query key condition not supported")
    expect_error(ddb.query, "ValidationException",
                 "Filter Expression can only contain non-primary key attributes: Primary key attribute: b",
                 TableName=ordered_table, IndexName="gsi", KeyConditionExpression="h = :h",
                 FilterExpression="b = :b", ExpressionAttributeValues={":h": _s("o1"), ":b": _s("live")})


def test_items_missing_or_mistyping_a_key_attribute(ddb, make_table):
    name = make_table(_definitions(["pk", "h1", "r1"]) + _definitions(["h2", "r2"], "N"),
                      [_gsi("gsi", ["h1", "h2"], ["r1", "r2"])])
    full = {"pk": _s("full"), "h1": _s("x"), "h2": {"N": "1"}, "r1": _s("m"), "r2": {"N": "2"}}
    ddb.put_item(TableName=name, Item=full)
    for missing in ("h1", "h2", "r1", "r2"):
        item = {k: v for k, v in full.items() if k != missing}
        ddb.put_item(TableName=name, Item={**item, "pk": _s(f"no-{missing}")})
    values = {":x": _s("x"), ":one": {"N": "1"}}
    _eventually(lambda: [i["pk"]["S"] for i in _query(ddb, name, "h1 = :x AND h2 = :one", values)] == ["full"])
    expect_error(ddb.put_item, "ValidationException",
                 INVALID + "Type mismatch for Index Key h2 Expected: N Actual: S IndexName: gsi",
                 TableName=name, Item={**full, "h2": _s("1")})
    # An update that removes a key attribute takes the item out; setting it back puts it in.
    ddb.update_item(TableName=name, Key={"pk": _s("full")}, UpdateExpression="REMOVE r2")
    _eventually(lambda: _query(ddb, name, "h1 = :x AND h2 = :one", values) == [])
    ddb.update_item(TableName=name, Key={"pk": _s("full")}, UpdateExpression="SET r2 = :two",
                    ExpressionAttributeValues={":two": {"N": "2"}})
    _eventually(lambda: len(_query(ddb, name, "h1 = :x AND h2 = :one", values)) == 1)


def test_projection_keys_only_keeps_every_key_attribute(ddb, make_table):
    name = make_table(_definitions(["pk", "h1", "h2", "r1"]), [_gsi("gsi", ["h1", "h2"], ["r1"], "KEYS_ONLY")])
    ddb.put_item(TableName=name, Item={"pk": _s("k"), "h1": _s("a"), "h2": _s("b"), "r1": _s("c"), "v": _s("no")})
    found = _eventually(lambda: _query(ddb, name, "h1 = :a AND h2 = :b", {":a": _s("a"), ":b": _s("b")}))
    assert found == [{"pk": _s("k"), "h1": _s("a"), "h2": _s("b"), "r1": _s("c")}]


def test_pages_carry_every_key_attribute(ddb, ordered_table):
    first = ddb.query(TableName=ordered_table, IndexName="gsi", KeyConditionExpression="h = :h AND a = :a",
                      ExpressionAttributeValues={":h": _s("o1"), ":a": _s("T")}, Limit=2)
    assert [i["pk"]["S"] for i in first["Items"]] == ["p4", "p3"]
    assert sorted(first["LastEvaluatedKey"]) == ["a", "b", "c", "d", "h", "pk"]
    assert _pks(ddb, ordered_table, "h = :h AND a = :a", Limit=1) == ["p4", "p3", "p2", "p1"]
    start = dict(first["LastEvaluatedKey"])
    del start["c"]
    expect_error(ddb.query, "ValidationException", "The provided starting key is invalid",
                 TableName=ordered_table, IndexName="gsi", KeyConditionExpression="h = :h",
                 ExpressionAttributeValues={":h": _s("o1")}, ExclusiveStartKey=start)
    scanned, request = [], {"TableName": ordered_table, "IndexName": "gsi", "Limit": 2}
    while True:
        page = ddb.scan(**request)
        scanned += [i["pk"]["S"] for i in page["Items"]]
        if "LastEvaluatedKey" not in page:
            break
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    assert sorted(scanned) == ["p1", "p2", "p3", "p4", "p5"]


def test_legacy_key_conditions_read_it_too(ddb, ordered_table):
    """DynamoDB accepts KeyConditions on a multi-attribute GSI, as on any other."""
    answer = ddb.query(TableName=ordered_table, IndexName="gsi", KeyConditions={
        "h": {"ComparisonOperator": "EQ", "AttributeValueList": [_s("o1")]},
        "a": {"ComparisonOperator": "EQ", "AttributeValueList": [_s("T")]},
        "b": {"ComparisonOperator": "BEGINS_WITH", "AttributeValueList": [_s("li")]},
    })
    assert [i["pk"]["S"] for i in answer["Items"]] == ["p3", "p2", "p1"]


def test_read_capacity_is_charged_as_for_any_index(ddb, ordered_table):
    answer = ddb.query(TableName=ordered_table, IndexName="gsi", KeyConditionExpression="h = :h",
                       ExpressionAttributeValues={":h": _s("o1")}, ReturnConsumedCapacity="INDEXES")
    assert answer["ConsumedCapacity"] == {"TableName": ordered_table, "CapacityUnits": 0.5,
                                          "Table": {"CapacityUnits": 0.0},
                                          "GlobalSecondaryIndexes": {"gsi": {"CapacityUnits": 0.5}}}


# --- PartiQL --------------------------------------------------------------------------------------


def test_partiql_refuses_to_read_the_index_only(ddb, make_table):
    name = make_table(_definitions(["pk", "g", "h1", "h2", "r1"]),
                      [_gsi("single", ["g"], []), _gsi("multi", ["h1", "h2"], ["r1"])])
    ddb.put_item(TableName=name, Item={"pk": _s("i1"), "g": _s("g1"), "h1": _s("a"), "h2": _s("x"), "r1": _s("m")})
    expect_error(ddb.execute_statement, "ValidationException", PARTIQL_REFUSED,
                 Statement=f"SELECT * FROM \"{name}\".\"multi\" WHERE h1 = 'a' AND h2 = 'x'")
    expect_error(ddb.execute_statement, "ValidationException", PARTIQL_REFUSED,
                 Statement=f"SELECT * FROM \"{name}\".\"multi\" WHERE h1 = 5")  # ahead of the key type
    assert len(ddb.execute_statement(Statement=f"SELECT * FROM \"{name}\" WHERE pk = 'i1'")["Items"]) == 1
    _eventually(lambda: ddb.execute_statement(Statement=f"SELECT * FROM \"{name}\".\"single\" WHERE g = 'g1'")["Items"])
    ddb.execute_statement(Statement=f"UPDATE \"{name}\" SET v = 1 WHERE pk = 'i1'")
    answer = ddb.batch_execute_statement(Statements=[
        {"Statement": f"SELECT * FROM \"{name}\".\"multi\" WHERE h1 = 'a' AND h2 = 'x' AND r1 = 'm'"},
        {"Statement": f"SELECT * FROM \"{name}\" WHERE pk = 'i1'"},
    ])["Responses"]
    assert answer[0]["Error"] == {"Code": "ValidationError", "Message": PARTIQL_REFUSED}
    assert answer[1]["Item"]["v"] == {"N": "1"}
