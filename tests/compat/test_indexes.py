"""Local and global secondary indexes through boto3, against any endpoint
(embedded and a 3-node cluster).

Expected behaviour is DynamoDB's: the API reference and developer guide for
what indexes hold and return, mhart/dynalite's tests (run against DynamoDB)
and recorded live replies for the messages.  Global indexes are eventually
consistent, so their tests poll (a bounded wait) until the index agrees.
"""

from __future__ import annotations

import time

import pytest

from helpers import create_table, expect_error, unique_name

CONVERGE_S = 10.0  # a global index catches up well within this
POLL_S = 0.05
INVALID = "One or more parameter values were invalid: "
START_KEY_INVALID = "The provided starting key is invalid"
KEY_MISMATCH = "The provided key element does not match the schema"


def _s(value: str) -> dict:
    return {"S": value}


def _n(value) -> dict:
    return {"N": str(value)}


def _key_schema(pk: str, sk: str | None = None) -> list[dict]:
    schema = [{"AttributeName": pk, "KeyType": "HASH"}]
    if sk is not None:
        schema.append({"AttributeName": sk, "KeyType": "RANGE"})
    return schema


def _index(name: str, pk: str, sk: str | None = None, projection: str = "ALL", include=None, throughput=None) -> dict:
    spec = {"IndexName": name, "KeySchema": _key_schema(pk, sk), "Projection": {"ProjectionType": projection}}
    if include is not None:
        spec["Projection"]["NonKeyAttributes"] = include
    if throughput is not None:
        spec["ProvisionedThroughput"] = {"ReadCapacityUnits": throughput, "WriteCapacityUnits": throughput}
    return spec


def _definitions(**types: str) -> list[dict]:
    return [{"AttributeName": name, "AttributeType": t} for name, t in types.items()]


def _write(ddb, table: str, items: list[dict]) -> None:
    for start in range(0, len(items), 25):
        request = {table: [{"PutRequest": {"Item": item}} for item in items[start:start + 25]]}
        while request:
            request = ddb.batch_write_item(RequestItems=request)["UnprocessedItems"]


def _pages(ddb, method: str, **kwargs) -> list[dict]:
    pages = []
    while True:
        page = getattr(ddb, method)(**kwargs)
        pages.append(page)
        if "LastEvaluatedKey" not in page:
            return pages
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _items(pages: list[dict]) -> list[dict]:
    return [item for page in pages for item in page["Items"]]


def _eventually(probe, timeout_s: float = CONVERGE_S):
    """Poll ``probe`` until it returns a true value; return that value."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value:
            return value
        assert time.monotonic() < deadline, "the index did not converge in time"
        time.sleep(POLL_S)


@pytest.fixture
def indexed_table(ddb):
    """Factory: ``indexed_table(definitions, key_schema, **create_table_kwargs) -> name``
    (PAY_PER_REQUEST unless told); every table made is deleted when the test ends."""
    created: list[str] = []

    def make(definitions: list[dict], key_schema: list[dict], **kwargs) -> str:
        name = unique_name("idx")
        kwargs.setdefault("BillingMode", "PAY_PER_REQUEST")
        ddb.create_table(TableName=name, AttributeDefinitions=definitions, KeySchema=key_schema, **kwargs)
        created.append(name)
        ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
        return name

    yield make
    for name in created:
        _wait_active(ddb, name)  # a table cannot go while an index is being built
        ddb.delete_table(TableName=name)


def _query_all(ddb, table: str, index: str, condition: str, values: dict, **kwargs) -> list[dict]:
    return _items(_pages(ddb, "query", TableName=table, IndexName=index, KeyConditionExpression=condition,
                         ExpressionAttributeValues=values, **kwargs))


# --- local secondary indexes ------------------------------------------------------------

LSI_ITEMS = 12  # in partition "p"; item i has score 11 - i, a tag only when i is even


def _lsi_item(i: int, partition: str = "p") -> dict:
    item = {"pk": _s(partition), "sk": _n(i), "score": _n(LSI_ITEMS - 1 - i), "colour": _s(f"c{i % 4}"),
            "weight": _n(i * 10), "extra": _s(f"x{i}")}
    if i % 2 == 0:
        item["tag"] = _s(f"t{i % 3}")
    return item


@pytest.fixture(scope="module")
def lsi_table(ddb):
    """Three LSIs (KEYS_ONLY on score, INCLUDE colour on tag, ALL on weight) over partitions p and q."""
    name = unique_name("lsi")
    ddb.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=_definitions(pk="S", sk="N", score="N", tag="S", weight="N"),
        KeySchema=_key_schema("pk", "sk"),
        LocalSecondaryIndexes=[
            _index("by_score", "pk", "score", "KEYS_ONLY"),
            _index("by_tag", "pk", "tag", "INCLUDE", ["colour"]),
            _index("by_weight", "pk", "weight", "ALL"),
        ],
    )
    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    _write(ddb, name, [_lsi_item(i) for i in range(LSI_ITEMS)] + [_lsi_item(i, "q") for i in range(3)])
    yield name
    ddb.delete_table(TableName=name)


def test_lsi_query_orders_by_the_index_sort_key(ddb, lsi_table):
    items = _query_all(ddb, lsi_table, "by_score", "pk = :p", {":p": _s("p")})
    assert [i["score"]["N"] for i in items] == [str(r) for r in range(LSI_ITEMS)]
    backwards = _query_all(ddb, lsi_table, "by_score", "pk = :p", {":p": _s("p")}, ScanIndexForward=False)
    assert backwards == items[::-1]
    some = _query_all(ddb, lsi_table, "by_score", "pk = :p AND score BETWEEN :a AND :b",
                      {":p": _s("p"), ":a": _n(3), ":b": _n(5)})
    assert [i["score"]["N"] for i in some] == ["3", "4", "5"]


def test_lsi_projections(ddb, lsi_table):
    keys_only = _query_all(ddb, lsi_table, "by_score", "pk = :p", {":p": _s("p")})
    assert all(set(item) == {"pk", "sk", "score"} for item in keys_only)
    include = _query_all(ddb, lsi_table, "by_tag", "pk = :p", {":p": _s("p")})
    assert all(set(item) == {"pk", "sk", "tag", "colour"} for item in include)
    everything = _query_all(ddb, lsi_table, "by_weight", "pk = :p", {":p": _s("p")})
    assert everything == [_lsi_item(i) for i in range(LSI_ITEMS)]
    projected = _query_all(ddb, lsi_table, "by_tag", "pk = :p", {":p": _s("p")}, Select="ALL_PROJECTED_ATTRIBUTES")
    assert projected == include


def test_lsi_is_sparse(ddb, lsi_table):
    tagged = _query_all(ddb, lsi_table, "by_tag", "pk = :p", {":p": _s("p")})
    assert sorted(int(i["sk"]["N"]) for i in tagged) == [i for i in range(LSI_ITEMS) if i % 2 == 0]
    assert [i["tag"]["S"] for i in tagged] == sorted(i["tag"]["S"] for i in tagged)
    scanned = _items(_pages(ddb, "scan", TableName=lsi_table, IndexName="by_tag", Limit=3))
    assert len(scanned) == len(tagged) + 2  # partition q holds items 0 and 2 with a tag


def test_lsi_fetches_attributes_it_does_not_project(ddb, lsi_table):
    whole = _query_all(ddb, lsi_table, "by_score", "pk = :p", {":p": _s("p")}, Select="ALL_ATTRIBUTES")
    assert whole == [_lsi_item(i) for i in reversed(range(LSI_ITEMS))]
    named = _query_all(ddb, lsi_table, "by_score", "pk = :p", {":p": _s("p")}, ProjectionExpression="extra, #r",
                       ExpressionAttributeNames={"#r": "score"})
    assert named[0] == {"extra": _s(f"x{LSI_ITEMS - 1}"), "score": _n(0)}
    filtered = ddb.query(TableName=lsi_table, IndexName="by_score", KeyConditionExpression="pk = :p",
                         FilterExpression="extra = :x", ExpressionAttributeValues={":p": _s("p"), ":x": _s("x3")})
    assert filtered["Items"] == [{"pk": _s("p"), "sk": _n(3), "score": _n(LSI_ITEMS - 4)}]
    assert filtered["ScannedCount"] == LSI_ITEMS and filtered["Count"] == 1


def test_lsi_pages_resume_with_index_and_table_keys(ddb, lsi_table):
    for forward in (True, False):
        pages = _pages(ddb, "query", TableName=lsi_table, IndexName="by_weight", KeyConditionExpression="pk = :p",
                       ExpressionAttributeValues={":p": _s("p")}, Limit=5, ScanIndexForward=forward)
        assert [page["Count"] for page in pages] == [5, 5, 2]
        last = pages[0]["Items"][-1]
        assert pages[0]["LastEvaluatedKey"] == {"pk": last["pk"], "sk": last["sk"], "weight": last["weight"]}
        sizes = [int(i["weight"]["N"]) for i in _items(pages)]
        assert sizes == sorted(sizes, reverse=not forward) and len(sizes) == LSI_ITEMS


def test_lsi_is_strongly_consistent_and_follows_updates(ddb, lsi_table):
    values = {":p": _s("r")}

    def ranks() -> list[str]:
        return [i["score"]["N"] for i in _query_all(ddb, lsi_table, "by_score", "pk = :p", values, ConsistentRead=True)]

    ddb.put_item(TableName=lsi_table, Item={"pk": _s("r"), "sk": _n(1), "score": _n(5)})
    ddb.put_item(TableName=lsi_table, Item={"pk": _s("r"), "sk": _n(2), "score": _n(7)})
    assert ranks() == ["5", "7"]
    ddb.update_item(TableName=lsi_table, Key={"pk": _s("r"), "sk": _n(1)}, UpdateExpression="SET #r = :v",
                    ExpressionAttributeNames={"#r": "score"}, ExpressionAttributeValues={":v": _n(9)})
    assert ranks() == ["7", "9"]
    ddb.update_item(TableName=lsi_table, Key={"pk": _s("r"), "sk": _n(2)}, UpdateExpression="REMOVE #r",
                    ExpressionAttributeNames={"#r": "score"})
    ddb.delete_item(TableName=lsi_table, Key={"pk": _s("r"), "sk": _n(1)})
    assert ranks() == []


def test_describe_table_shows_local_indexes(ddb, lsi_table):
    description = ddb.describe_table(TableName=lsi_table)["Table"]
    indexes = {index["IndexName"]: index for index in description["LocalSecondaryIndexes"]}
    assert list(indexes) == ["by_score", "by_tag", "by_weight"]
    by_tag = indexes["by_tag"]
    assert by_tag["KeySchema"] == _key_schema("pk", "tag")
    assert by_tag["Projection"] == {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["colour"]}
    assert by_tag["IndexArn"] == f"{description['TableArn']}/index/by_tag"
    assert by_tag["ItemCount"] == LSI_ITEMS // 2 + 2
    assert indexes["by_weight"]["ItemCount"] >= LSI_ITEMS + 3
    assert 0 < by_tag["IndexSizeBytes"] < indexes["by_weight"]["IndexSizeBytes"]
    assert "IndexStatus" not in by_tag and "ProvisionedThroughput" not in by_tag


def test_index_read_validation(ddb, lsi_table):
    query = {"TableName": lsi_table, "KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": _s("p")}}
    expect_error(ddb.query, "ValidationException", "The table does not have the specified index: nope",
                 IndexName="nope", **query)
    expect_error(ddb.scan, "ValidationException", "The table does not have the specified index: nope",
                 TableName=lsi_table, IndexName="nope")
    for start in ({"pk": _s("p"), "sk": _n(1)}, {"pk": _s("p"), "sk": _n(1), "score": _n(1), "x": _n(1)},
                  {"pk": _s("p"), "sk": _n(1), "weight": _n(1)}):
        expect_error(ddb.query, "ValidationException", START_KEY_INVALID, IndexName="by_score",
                     ExclusiveStartKey=start, **query)
    expect_error(ddb.query, "ValidationException", KEY_MISMATCH, IndexName="by_score",
                 ExclusiveStartKey={"pk": _s("p"), "sk": _n(1), "score": _s("1")}, **query)
    expect_error(ddb.query, "ValidationException", f"{START_KEY_INVALID}: {KEY_MISMATCH}", IndexName="by_score",
                 ExclusiveStartKey={"pk": _s("p"), "sk": _s("1"), "score": _n(1)}, **query)
    expect_error(ddb.scan, "ValidationException", START_KEY_INVALID, TableName=lsi_table, IndexName="by_score",
                 ExclusiveStartKey={"pk": _s("p"), "sk": _n(1)})
    expect_error(ddb.query, "ValidationException",
                 "Filter Expression can only contain non-primary key attributes: Primary key attribute: score",
                 IndexName="by_score", FilterExpression="#r > :p", ExpressionAttributeNames={"#r": "score"},
                 TableName=lsi_table, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": _s("p")})
    expect_error(ddb.query, "ValidationException",
                 "Key attributes must be scalars; list random access '[]' and map lookup '.' are not allowed: "
                 "IndexKey: tag", ProjectionExpression="tag.x", **query)


def test_index_key_values_must_fit_their_definitions(ddb, lsi_table):
    expect_error(ddb.put_item, "ValidationException",
                 f"{INVALID}Type mismatch for Index Key score Expected: N Actual: S IndexName: by_score",
                 TableName=lsi_table, Item={"pk": _s("v"), "sk": _n(1), "score": _s("one")})
    expect_error(ddb.put_item, "ValidationException",
                 "One or more parameter values are not valid. A value specified for a secondary index key is not "
                 "supported. The AttributeValue for a key attribute cannot contain an empty string value. "
                 "IndexName: by_tag, IndexKey: tag",
                 TableName=lsi_table, Item={"pk": _s("v"), "sk": _n(1), "tag": _s("")})
    expect_error(ddb.update_item, "ValidationException",
                 f"{INVALID}Type mismatch for Index Key weight Expected: N Actual: BOOL IndexName: by_weight",
                 TableName=lsi_table, Key={"pk": _s("v"), "sk": _n(1)}, UpdateExpression="SET weight = :v",
                 ExpressionAttributeValues={":v": {"BOOL": True}})
    expect_error(ddb.update_item, "ValidationException",
                 "One or more parameter values are not valid. The update expression attempted to update a secondary "
                 "index key to a value that is not supported. The AttributeValue for a key attribute cannot contain "
                 "an empty string value.",
                 TableName=lsi_table, Key={"pk": _s("v"), "sk": _n(1)}, UpdateExpression="SET tag = :v",
                 ExpressionAttributeValues={":v": _s("")})
    assert "Item" not in ddb.get_item(TableName=lsi_table, Key={"pk": _s("v"), "sk": _n(1)})


def test_batch_with_a_bad_index_key_writes_nothing(ddb, lsi_table):
    good = {"pk": _s("batchbad"), "sk": _n(1), "score": _n(5)}
    bad = {"pk": _s("batchbad"), "sk": _n(2), "score": _s("five")}
    expect_error(ddb.batch_write_item, "ValidationException",
                 f"{INVALID}Type mismatch for Index Key score Expected: N Actual: S IndexName: by_score",
                 RequestItems={lsi_table: [{"PutRequest": {"Item": good}}, {"PutRequest": {"Item": bad}}]})
    assert "Item" not in ddb.get_item(TableName=lsi_table, Key={"pk": _s("batchbad"), "sk": _n(1)}, ConsistentRead=True)


# --- global secondary indexes -----------------------------------------------------------

GSI_ITEMS = 30  # item i lives in city c{i % 3}, is i years old, on a team only when i % 5 == 0


def _gsi_item(i: int) -> dict:
    item = {"id": _s(f"u{i:03d}"), "city": _s(f"c{i % 3}"), "age": _n(i), "nick": _s(f"n{i}"), "x": _s("y")}
    if i % 5 == 0:
        item["team"] = _s("red" if i % 2 else "blue")
    return item


@pytest.fixture(scope="module")
def gsi_table(ddb):
    """Three GSIs: by_city (city, age; ALL), by_team (team; KEYS_ONLY), by_x (x; INCLUDE nick)."""
    name = unique_name("gsi")
    ddb.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=_definitions(id="S", city="S", age="N", team="S", x="S"),
        KeySchema=_key_schema("id"),
        GlobalSecondaryIndexes=[
            _index("by_city", "city", "age", "ALL"),
            _index("by_team", "team", None, "KEYS_ONLY"),
            _index("by_x", "x", None, "INCLUDE", ["nick"]),
        ],
    )
    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    _write(ddb, name, [_gsi_item(i) for i in range(GSI_ITEMS)])
    yield name
    ddb.delete_table(TableName=name)


def _city(ddb, table: str, city: str, **kwargs) -> list[dict]:
    return _query_all(ddb, table, "by_city", "city = :c", {":c": _s(city)}, **kwargs)


def test_gsi_eventually_holds_every_item(ddb, gsi_table):
    for city in ("c0", "c1", "c2"):
        expected = [_gsi_item(i) for i in range(GSI_ITEMS) if f"c{i % 3}" == city]
        assert _eventually(lambda: _city(ddb, gsi_table, city) == expected or None)
    older = _query_all(ddb, gsi_table, "by_city", "city = :c AND age >= :a", {":c": _s("c1"), ":a": _n(20)})
    assert [i["age"]["N"] for i in older] == ["22", "25", "28"]


def test_gsi_is_sparse_and_projects(ddb, gsi_table):
    team = _eventually(lambda: _query_all(ddb, gsi_table, "by_team", "team = :t", {":t": _s("blue")}) or None)
    assert sorted(item["id"]["S"] for item in team) == ["u000", "u010", "u020"]
    assert all(set(item) == {"id", "team"} for item in team)
    include = _eventually(lambda: len(r := _query_all(ddb, gsi_table, "by_x", "x = :x", {":x": _s("y")})) == GSI_ITEMS
                          and r)
    assert all(set(item) == {"id", "x", "nick"} for item in include)
    # Attributes a global index does not project are absent: it never reads the table.
    named = ddb.query(TableName=gsi_table, IndexName="by_team", KeyConditionExpression="team = :t",
                      ExpressionAttributeValues={":t": _s("blue")}, ProjectionExpression="id, age")
    assert all(set(item) == {"id"} for item in named["Items"])


def test_gsi_follows_updates_and_deletes(ddb, indexed_table):
    name = indexed_table(_definitions(id="S", g="S"), _key_schema("id"), GlobalSecondaryIndexes=[_index("by_g", "g")])
    _write(ddb, name, [{"id": _s(f"k{i}"), "g": _s("a"), "v": _n(i)} for i in range(6)])

    def members(g: str) -> list[str] | None:
        return sorted(i["id"]["S"] for i in _query_all(ddb, name, "by_g", "g = :g", {":g": _s(g)}))

    _eventually(lambda: members("a") == [f"k{i}" for i in range(6)])
    ddb.update_item(TableName=name, Key={"id": _s("k1")}, UpdateExpression="SET g = :b",
                    ExpressionAttributeValues={":b": _s("b")})
    ddb.update_item(TableName=name, Key={"id": _s("k2")}, UpdateExpression="REMOVE g")
    ddb.delete_item(TableName=name, Key={"id": _s("k3")})
    ddb.put_item(TableName=name, Item={"id": _s("k4"), "g": _s("a"), "v": _n(40)})
    _eventually(lambda: members("a") == ["k0", "k4", "k5"] and members("b") == ["k1"])
    k4 = _query_all(ddb, name, "by_g", "g = :g", {":g": _s("a"), ":v": _n(40)}, FilterExpression="v = :v")
    assert [i["id"]["S"] for i in k4] == ["k4"]
    description = ddb.describe_table(TableName=name)["Table"]["GlobalSecondaryIndexes"][0]
    assert description["ItemCount"] == 4 and description["IndexStatus"] == "ACTIVE"


def test_gsi_pages_and_scans(ddb, gsi_table):
    expected = [_gsi_item(i) for i in range(GSI_ITEMS) if i % 3 == 2]
    _eventually(lambda: _city(ddb, gsi_table, "c2") == expected)
    pages = _pages(ddb, "query", TableName=gsi_table, IndexName="by_city", KeyConditionExpression="city = :c",
                   ExpressionAttributeValues={":c": _s("c2")}, Limit=4)
    assert _items(pages) == expected and [p["Count"] for p in pages] == [4, 4, 2]
    last = pages[0]["Items"][-1]
    assert pages[0]["LastEvaluatedKey"] == {"city": last["city"], "age": last["age"], "id": last["id"]}
    _eventually(lambda: sum(len(_city(ddb, gsi_table, c)) for c in ("c0", "c1", "c2")) == GSI_ITEMS)
    scanned = _items(_pages(ddb, "scan", TableName=gsi_table, IndexName="by_city", Limit=7))
    assert sorted(i["id"]["S"] for i in scanned) == [f"u{i:03d}" for i in range(GSI_ITEMS)]
    segments = [_items(_pages(ddb, "scan", TableName=gsi_table, IndexName="by_city", Segment=s, TotalSegments=3))
                for s in range(3)]
    assert sorted(i["id"]["S"] for segment in segments for i in segment) == sorted(i["id"]["S"] for i in scanned)
    page = ddb.scan(TableName=gsi_table, IndexName="by_team", Limit=1)
    assert set(page["LastEvaluatedKey"]) == {"team", "id"}


def test_gsi_read_validation(ddb, gsi_table):
    query = {"TableName": gsi_table, "KeyConditionExpression": "team = :t",
             "ExpressionAttributeValues": {":t": _s("red")}}
    expect_error(ddb.query, "ValidationException", "Consistent reads are not supported on global secondary indexes",
                 IndexName="by_team", ConsistentRead=True, **query)
    expect_error(ddb.scan, "ValidationException", "Consistent reads are not supported on global secondary indexes",
                 TableName=gsi_table, IndexName="by_team", ConsistentRead=True)
    message = (f"{INVALID}Select type ALL_ATTRIBUTES is not supported for global secondary index by_team because its "
               "projection type is not ALL")
    expect_error(ddb.query, "ValidationException", message, IndexName="by_team", Select="ALL_ATTRIBUTES", **query)
    expect_error(ddb.scan, "ValidationException", message, TableName=gsi_table, IndexName="by_team",
                 Select="ALL_ATTRIBUTES")
    whole = ddb.query(IndexName="by_city", Select="ALL_ATTRIBUTES", TableName=gsi_table,
                      KeyConditionExpression="city = :c", ExpressionAttributeValues={":c": _s("c0")})
    assert whole["Count"] > 0
    expect_error(ddb.query, "ValidationException", "Query condition missed key schema element: team",
                 IndexName="by_team", TableName=gsi_table, KeyConditionExpression="id = :t",
                 ExpressionAttributeValues={":t": _s("red")})
    expect_error(ddb.scan, "ValidationException", KEY_MISMATCH, TableName=gsi_table, IndexName="by_team",
                 ExclusiveStartKey={"id": _s("u000"), "team": _n(1)})


# --- UpdateTable: adding, removing and changing global indexes ------------------------------


def _wait_active(ddb, table: str) -> dict:
    def active():
        description = ddb.describe_table(TableName=table)["Table"]
        indexes = description.get("GlobalSecondaryIndexes", [])
        done = all(i["IndexStatus"] == "ACTIVE" and "Backfilling" not in i for i in indexes)
        return description if done else None

    return _eventually(active)


def test_gsi_added_later_is_backfilled(ddb, indexed_table):
    name = indexed_table(_definitions(id="S"), _key_schema("id"))
    _write(ddb, name, [{"id": _s(f"k{i:02d}"), "grp": _s(f"g{i % 2}"), "n": _n(i)} for i in range(40)]
           + [{"id": _s("lonely")}])
    answer = ddb.update_table(TableName=name, AttributeDefinitions=_definitions(grp="S", n="N"),
                              GlobalSecondaryIndexUpdates=[{"Create": _index("by_grp", "grp", "n", "INCLUDE", ["id"])}])
    created = answer["TableDescription"]["GlobalSecondaryIndexes"][0]
    assert created["IndexStatus"] == "CREATING" and created["Backfilling"] is False
    assert answer["TableDescription"]["TableStatus"] == "UPDATING"
    description = _wait_active(ddb, name)
    assert {d["AttributeName"] for d in description["AttributeDefinitions"]} == {"id", "grp", "n"}
    g1 = _eventually(lambda: len(r := _query_all(ddb, name, "by_grp", "grp = :g", {":g": _s("g1")})) == 20 and r)
    assert [int(i["n"]["N"]) for i in g1] == list(range(1, 40, 2))
    _eventually(lambda: ddb.describe_table(TableName=name)["Table"]["GlobalSecondaryIndexes"][0]["ItemCount"] == 40)
    ddb.put_item(TableName=name, Item={"id": _s("late"), "grp": _s("g1"), "n": _n(99)})
    _eventually(lambda: len(_query_all(ddb, name, "by_grp", "grp = :g", {":g": _s("g1")})) == 21)


def test_gsi_delete(ddb, indexed_table):
    name = indexed_table(_definitions(id="S", a="S", b="S"), _key_schema("id"),
                         GlobalSecondaryIndexes=[_index("by_a", "a"), _index("by_b", "b")])
    ddb.put_item(TableName=name, Item={"id": _s("1"), "a": _s("x"), "b": _s("y")})
    answer = ddb.update_table(TableName=name, GlobalSecondaryIndexUpdates=[{"Delete": {"IndexName": "by_a"}}])
    statuses = {i["IndexName"]: i["IndexStatus"] for i in answer["TableDescription"]["GlobalSecondaryIndexes"]}
    assert statuses == {"by_a": "DELETING", "by_b": "ACTIVE"}
    description = ddb.describe_table(TableName=name)["Table"]
    assert [i["IndexName"] for i in description["GlobalSecondaryIndexes"]] == ["by_b"]
    assert sorted(d["AttributeName"] for d in description["AttributeDefinitions"]) == ["b", "id"]
    expect_error(ddb.query, "ValidationException", "The table does not have the specified index: by_a",
                 TableName=name, IndexName="by_a", KeyConditionExpression="a = :a",
                 ExpressionAttributeValues={":a": _s("x")})
    _eventually(lambda: _query_all(ddb, name, "by_b", "b = :b", {":b": _s("y")}))


def test_update_table_index_validation(ddb, indexed_table):
    name = indexed_table(_definitions(id="S", a="S"), _key_schema("id"), BillingMode="PROVISIONED",
                         ProvisionedThroughput={"ReadCapacityUnits": 5, "WriteCapacityUnits": 5},
                         GlobalSecondaryIndexes=[_index("by_a", "a", throughput=2)])
    update = ddb.update_table
    expect_error(update, "ResourceNotFoundException", f"Requested resource not found: Index nope for table {name}",
                 TableName=name, GlobalSecondaryIndexUpdates=[{"Delete": {"IndexName": "nope"}}])
    expect_error(update, "ResourceNotFoundException", f"Requested resource not found: Index nope for table {name}",
                 TableName=name, GlobalSecondaryIndexUpdates=[
                     {"Update": {"IndexName": "nope", "ProvisionedThroughput": {"ReadCapacityUnits": 1,
                                                                               "WriteCapacityUnits": 1}}}])
    expect_error(update, "ValidationException",
                 "The provisioned throughput for the index by_a will not change. The requested value equals the "
                 "current value. Current ReadCapacityUnits provisioned for index by_a: 2. Requested "
                 "ReadCapacityUnits: 2. Current WriteCapacityUnits provisioned for index by_a: 2. Requested "
                 "WriteCapacityUnits: 2. Refer to the Amazon DynamoDB Developer Guide for current limits and how to "
                 "request higher limits.",
                 TableName=name, GlobalSecondaryIndexUpdates=[
                     {"Update": {"IndexName": "by_a", "ProvisionedThroughput": {"ReadCapacityUnits": 2,
                                                                               "WriteCapacityUnits": 2}}}])
    expect_error(update, "ValidationException",
                 "Given value 1000000000001 for ReadCapacityUnits is out of bounds for index by_a",
                 TableName=name, GlobalSecondaryIndexUpdates=[
                     {"Update": {"IndexName": "by_a", "ProvisionedThroughput": {"ReadCapacityUnits": 1000000000001,
                                                                               "WriteCapacityUnits": 1}}}])
    create_b = {"Create": _index("by_b", "b", throughput=1)}
    expect_error(update, "LimitExceededException",
                 "Subscriber limit exceeded: Only 1 online index can be created or deleted simultaneously per table",
                 TableName=name, AttributeDefinitions=_definitions(b="S"),
                 GlobalSecondaryIndexUpdates=[create_b, {"Delete": {"IndexName": "by_a"}}])
    expect_error(update, "ValidationException",
                 "One or more parameter values were invalid: You cannot create or delete index while updating table IOPS",
                 TableName=name, AttributeDefinitions=_definitions(b="S"), GlobalSecondaryIndexUpdates=[create_b],
                 ProvisionedThroughput={"ReadCapacityUnits": 9, "WriteCapacityUnits": 9})
    expect_error(update, "ValidationException", "Attempting to create an index which already exists",
                 TableName=name, AttributeDefinitions=_definitions(a="S"),
                 GlobalSecondaryIndexUpdates=[{"Create": _index("by_a", "a", throughput=1)}])
    expect_error(update, "ValidationException", f"{INVALID}AttributeDefinitions is not specified for index: by_b",
                 TableName=name, GlobalSecondaryIndexUpdates=[create_b])
    expect_error(update, "ValidationException",
                 f"{INVALID}Some index key attributes are not defined in AttributeDefinitions. Keys: [b], "
                 "AttributeDefinitions: [c]",
                 TableName=name, AttributeDefinitions=_definitions(c="S"), GlobalSecondaryIndexUpdates=[create_b])
    expect_error(update, "ValidationException",
                 f"{INVALID}Both ReadCapacityUnits and WriteCapacityUnits must be specified for index: by_b",
                 TableName=name, AttributeDefinitions=_definitions(b="S"),
                 GlobalSecondaryIndexUpdates=[{"Create": _index("by_b", "b")}])
    expect_error(update, "ValidationException", f"{INVALID}ProjectionType is INCLUDE, but NonKeyAttributes is not "
                 "specified", TableName=name, AttributeDefinitions=_definitions(b="S"),
                 GlobalSecondaryIndexUpdates=[{"Create": _index("by_b", "b", None, "INCLUDE", throughput=1)}])
    changed = update(TableName=name, GlobalSecondaryIndexUpdates=[
        {"Update": {"IndexName": "by_a", "ProvisionedThroughput": {"ReadCapacityUnits": 3, "WriteCapacityUnits": 4}}}])
    index = changed["TableDescription"]["GlobalSecondaryIndexes"][0]
    assert index["IndexStatus"] == "UPDATING" and index["ProvisionedThroughput"]["ReadCapacityUnits"] == 2
    now = ddb.describe_table(TableName=name)["Table"]["GlobalSecondaryIndexes"][0]["ProvisionedThroughput"]
    assert (now["ReadCapacityUnits"], now["WriteCapacityUnits"]) == (3, 4) and "LastIncreaseDateTime" in now


def test_pay_per_request_index_throughput_rules(ddb, indexed_table):
    name = indexed_table(_definitions(id="S", a="S"), _key_schema("id"), GlobalSecondaryIndexes=[_index("by_a", "a")])
    description = ddb.describe_table(TableName=name)["Table"]["GlobalSecondaryIndexes"][0]
    assert description["ProvisionedThroughput"] == {"NumberOfDecreasesToday": 0, "ReadCapacityUnits": 0,
                                                    "WriteCapacityUnits": 0}
    assert description["IndexArn"].endswith(f"table/{name}/index/by_a") and description["IndexStatus"] == "ACTIVE"
    expect_error(ddb.update_table, "ValidationException",
                 f"{INVALID}The only Updates for index: by_a when TableThroughputMode is PAY_PER_REQUEST can be to "
                 "OnDemandThroughput, WarmThroughput",
                 TableName=name, GlobalSecondaryIndexUpdates=[
                     {"Update": {"IndexName": "by_a", "ProvisionedThroughput": {"ReadCapacityUnits": 1,
                                                                               "WriteCapacityUnits": 1}}}])
    expect_error(ddb.update_table, "ValidationException",
                 f"{INVALID}ProvisionedThroughput should not be specified for index: by_b when BillingMode is "
                 "PAY_PER_REQUEST",
                 TableName=name, AttributeDefinitions=_definitions(b="S"),
                 GlobalSecondaryIndexUpdates=[{"Create": _index("by_b", "b", throughput=1)}])
    expect_error(ddb.update_table, "ValidationException",
                 f"{INVALID}ProvisionedThroughput must be specified for index: by_a",
                 TableName=name, BillingMode="PROVISIONED",
                 ProvisionedThroughput={"ReadCapacityUnits": 1, "WriteCapacityUnits": 1})


def test_item_collection_metrics_on_writes(ddb, lsi_table):
    key = {"pk": _s("metrics"), "sk": {"N": "1"}}
    out = ddb.put_item(TableName=lsi_table, Item={**key, "score": {"N": "1"}}, ReturnItemCollectionMetrics="SIZE")
    assert out["ItemCollectionMetrics"] == {"ItemCollectionKey": {"pk": _s("metrics")}, "SizeEstimateRangeGB": [0.0, 1.0]}
    out = ddb.update_item(TableName=lsi_table, Key=key, UpdateExpression="SET score = :s",
                          ExpressionAttributeValues={":s": {"N": "2"}}, ReturnItemCollectionMetrics="SIZE")
    assert out["ItemCollectionMetrics"]["ItemCollectionKey"] == {"pk": _s("metrics")}
    out = ddb.batch_write_item(RequestItems={lsi_table: [{"PutRequest": {"Item": {"pk": _s("metrics"), "sk": {"N": "2"}}}}]},
                               ReturnItemCollectionMetrics="SIZE")
    assert out["ItemCollectionMetrics"][lsi_table] == [
        {"ItemCollectionKey": {"pk": _s("metrics")}, "SizeEstimateRangeGB": [0.0, 1.0]}
    ]
    out = ddb.delete_item(TableName=lsi_table, Key=key, ReturnItemCollectionMetrics="SIZE")
    assert out["ItemCollectionMetrics"]["ItemCollectionKey"] == {"pk": _s("metrics")}
    # Not asked for: not answered.
    assert "ItemCollectionMetrics" not in ddb.put_item(TableName=lsi_table, Item=key)


def test_no_item_collection_metrics_without_local_indexes(ddb):
    name = create_table(ddb, unique_name("nolsi"))
    out = ddb.put_item(TableName=name, Item={"id": {"S": "x"}}, ReturnItemCollectionMetrics="SIZE")
    assert "ItemCollectionMetrics" not in out
