"""Query and Scan through boto3, against any endpoint (embedded and a 3-node cluster).

Expected behaviour is DynamoDB's, as the API reference states it and as
mhart/dynalite's tests (which run against DynamoDB itself) record messages
and their order.  Results of a Scan are compared as sets (scan order is
unspecified); a Query's order is checked against a plain sort of the items.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from helpers import create_table, expect_error, unique_name

NOT_FOUND = "Requested resource not found"
START_KEY_SCHEMA = "The provided starting key is invalid: The provided key element does not match the schema"
PAGE_BYTES = 1024 * 1024
BIG_ITEM_BYTES = 100 * 1024

NUMBERS = ["-1E+10", "-100", "-10", "-1.5", "-1", "-0.5", "-0.001", "0", "0.001", "0.5", "1", "1.5", "2", "10",
           "10.5", "100", "123456.789", "1E+10"]
WORDS = ["a", "aa", "ab", "abc", "abd", "b", "ba", "bb", "c", "é", "éa", "z"]


def _n(value) -> dict:
    return {"N": str(value)}


def _s(value: str) -> dict:
    return {"S": value}


def _write(ddb, table: str, items: list[dict]) -> None:
    for start in range(0, len(items), 25):
        request = {table: [{"PutRequest": {"Item": item}} for item in items[start:start + 25]]}
        while request:
            request = ddb.batch_write_item(RequestItems=request)["UnprocessedItems"]


def _keys(items: list[dict], *names: str) -> list[tuple]:
    return [tuple(next(iter(item[name].values())) for name in names) for item in items]


def _pages(ddb, method: str, **kwargs) -> list[dict]:
    pages = []
    while True:
        page = getattr(ddb, method)(**kwargs)
        pages.append(page)
        if "LastEvaluatedKey" not in page:
            return pages
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


@pytest.fixture(scope="module")
def numbers(ddb):
    """pk "p": one item per number of NUMBERS (sort key), plus neighbour partitions."""
    name = create_table(ddb, unique_name("qnum"), pk=("pk", "S"), sk=("sk", "N"))
    items = []
    for i, number in enumerate(NUMBERS):
        items.append({"pk": _s("p"), "sk": _n(number), "colour": _s("red" if i % 3 == 0 else "blue"), "i": _n(i)})
        items.append({"pk": _s("o"), "sk": _n(number)})
    items.append({"pk": _s("q"), "sk": _n(1)})
    _write(ddb, name, items)
    return name


@pytest.fixture(scope="module")
def words(ddb):
    name = create_table(ddb, unique_name("qstr"), pk=("pk", "S"), sk=("sk", "S"))
    _write(ddb, name, [{"pk": _s("p"), "sk": _s(w)} for w in WORDS] + [{"pk": _s("pp"), "sk": _s("a")}])
    return name


@pytest.fixture(scope="module")
def spread(ddb):
    """300 items over 100 partitions (3 sort keys each): a Scan crosses every node."""
    name = create_table(ddb, unique_name("scan"), pk=("pk", "S"), sk=("sk", "N"))
    items = [{"pk": _s(f"part-{p}"), "sk": _n(s), "even": {"BOOL": (p + s) % 2 == 0}, "payload": _s("x" * 50)}
             for p in range(100) for s in range(3)]
    _write(ddb, name, items)
    return name


@pytest.fixture(scope="module")
def big(ddb):
    """24 items of about 100 KB, in 12 partitions: pages are cut by the 1 MB limit."""
    name = create_table(ddb, unique_name("big"), pk=("pk", "S"), sk=("sk", "N"))
    for i in range(24):
        ddb.put_item(TableName=name, Item={"pk": _s(f"b{i % 12}"), "sk": _n(i), "blob": _s("y" * BIG_ITEM_BYTES)})
    return name


# --- Query: key conditions, order ---------------------------------------------------


def _query_sks(ddb, table: str, condition: str, values: dict, forward: bool = True) -> list[str]:
    values = {":p": _s("p"), **values}
    pages = _pages(ddb, "query", TableName=table, KeyConditionExpression=condition,
                   ExpressionAttributeValues=values, ScanIndexForward=forward)
    return [item["sk"]["N"] for page in pages for item in page["Items"]]


@pytest.mark.parametrize("op, pick", [
    ("=", lambda x, v: x == v), ("<", lambda x, v: x < v), ("<=", lambda x, v: x <= v),
    (">", lambda x, v: x > v), (">=", lambda x, v: x >= v),
])
def test_query_comparison_operators_on_numbers(ddb, numbers, op, pick):
    ordered = sorted(NUMBERS, key=Decimal)
    for value in ("-1.5", "0", "0.001", "10", "7"):
        expected = [n for n in ordered if pick(Decimal(n), Decimal(value))]
        got = _query_sks(ddb, numbers, f"pk = :p AND sk {op} :v", {":v": _n(value)})
        assert [Decimal(n) for n in got] == [Decimal(n) for n in expected]
        backwards = _query_sks(ddb, numbers, f"pk = :p AND sk {op} :v", {":v": _n(value)}, forward=False)
        assert backwards == got[::-1]


def test_query_between_and_whole_partition_in_numeric_order(ddb, numbers):
    ordered = sorted(NUMBERS, key=Decimal)
    got = _query_sks(ddb, numbers, "pk = :p AND sk BETWEEN :a AND :b", {":a": _n("-1"), ":b": _n("10")})
    assert [Decimal(n) for n in got] == [Decimal(n) for n in ordered if Decimal(-1) <= Decimal(n) <= 10]
    everything = _query_sks(ddb, numbers, "pk = :p", {})
    assert [Decimal(n) for n in everything] == [Decimal(n) for n in ordered]


def test_query_begins_with_on_strings(ddb, words):
    for prefix in ("a", "ab", "é", "b", "zz"):
        page = ddb.query(TableName=words, KeyConditionExpression="pk = :p AND begins_with(sk, :x)",
                         ExpressionAttributeValues={":p": _s("p"), ":x": _s(prefix)})
        assert [i["sk"]["S"] for i in page["Items"]] == sorted(w for w in WORDS if w.startswith(prefix))


def test_query_begins_with_on_binary(ddb, table):
    name = table(pk=("pk", "S"), sk=("sk", "B"))
    raws = [b"\x00", b"\x00\x01", b"\x01", b"\xff", b"\xff\x00", b"\xff\xff", b"a", b"ab"]
    _write(ddb, name, [{"pk": _s("p"), "sk": {"B": raw}} for raw in raws])
    for prefix in (b"\x00", b"\xff", b"a"):
        page = ddb.query(TableName=name, KeyConditionExpression="pk = :p AND begins_with(sk, :x)",
                         ExpressionAttributeValues={":p": _s("p"), ":x": {"B": prefix}})
        assert [i["sk"]["B"] for i in page["Items"]] == sorted(r for r in raws if r.startswith(prefix))


def test_query_on_a_hash_only_table(ddb, table):
    name = table()
    _write(ddb, name, [{"id": _s("a"), "v": _n(1)}, {"id": _s("ab"), "v": _n(2)}])
    page = ddb.query(TableName=name, KeyConditionExpression="id = :a", ExpressionAttributeValues={":a": _s("a")})
    assert page["Items"] == [{"id": _s("a"), "v": _n(1)}] and page["Count"] == 1
    assert "LastEvaluatedKey" not in page


def test_legacy_key_conditions_and_query_filter(ddb, numbers):
    page = ddb.query(TableName=numbers, KeyConditions={
        "pk": {"ComparisonOperator": "EQ", "AttributeValueList": [_s("p")]},
        "sk": {"ComparisonOperator": "GE", "AttributeValueList": [_n(0)]},
    }, QueryFilter={
        "colour": {"ComparisonOperator": "EQ", "AttributeValueList": [_s("red")]},
        "i": {"ComparisonOperator": "LT", "AttributeValueList": [_n(3)]},
    }, ConditionalOperator="OR", AttributesToGet=["sk", "colour"])
    expected = [(n, i) for i, n in enumerate(NUMBERS) if Decimal(n) >= 0 and (i % 3 == 0 or i < 3)]
    assert [i["sk"]["N"] for i in page["Items"]] == [n for n, _ in sorted(expected, key=lambda e: Decimal(e[0]))]
    assert all(set(item) <= {"sk", "colour"} for item in page["Items"])
    assert page["ScannedCount"] == sum(1 for n in NUMBERS if Decimal(n) >= 0)


# --- Query: Limit, pages, filter, projection, Select ------------------------------------


def test_query_limit_pages_resume_exactly(ddb, numbers):
    ordered = sorted(NUMBERS, key=Decimal)
    for forward in (True, False):
        pages = _pages(ddb, "query", TableName=numbers, KeyConditionExpression="pk = :p",
                       ExpressionAttributeValues={":p": _s("p")}, Limit=5, ScanIndexForward=forward)
        got = [i["sk"]["N"] for page in pages for i in page["Items"]]
        assert [Decimal(n) for n in got] == [Decimal(n) for n in (ordered if forward else ordered[::-1])]
        assert [page["Count"] for page in pages] == [5, 5, 5, 3]
        assert pages[0]["LastEvaluatedKey"] == {"pk": _s("p"), "sk": pages[0]["Items"][-1]["sk"]}


def test_query_limit_reached_on_the_last_item_still_gives_a_last_evaluated_key(ddb, numbers):
    page = ddb.query(TableName=numbers, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": _s("q")},
                     Limit=1)
    assert page["Count"] == 1 and page["LastEvaluatedKey"] == {"pk": _s("q"), "sk": _n(1)}
    after = ddb.query(TableName=numbers, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": _s("q")},
                      Limit=1, ExclusiveStartKey=page["LastEvaluatedKey"])
    assert after["Count"] == 0 and after["Items"] == [] and "LastEvaluatedKey" not in after


def test_query_filter_counts_what_was_read(ddb, numbers):
    page = ddb.query(TableName=numbers, KeyConditionExpression="pk = :p", FilterExpression="colour = :c",
                     ExpressionAttributeValues={":p": _s("p"), ":c": _s("red")})
    assert page["ScannedCount"] == len(NUMBERS)
    assert page["Count"] == len(page["Items"]) == len(NUMBERS[::3])
    # A page whose items all fail the filter is empty but still says where it stopped.
    empty = ddb.query(TableName=numbers, KeyConditionExpression="pk = :p", FilterExpression="colour = :c",
                      ExpressionAttributeValues={":p": _s("p"), ":c": _s("green")}, Limit=3)
    assert empty["Items"] == [] and empty["Count"] == 0 and empty["ScannedCount"] == 3
    assert "LastEvaluatedKey" in empty


def test_query_projection_and_select(ddb, numbers):
    projected = ddb.query(TableName=numbers, KeyConditionExpression="pk = :p AND sk = :v",
                          ExpressionAttributeValues={":p": _s("p"), ":v": _n(1)}, ProjectionExpression="#c, i",
                          ExpressionAttributeNames={"#c": "colour"}, Select="SPECIFIC_ATTRIBUTES")
    assert projected["Items"] == [{"colour": _s("red" if NUMBERS.index("1") % 3 == 0 else "blue"),
                                   "i": _n(NUMBERS.index("1"))}]
    counted = ddb.query(TableName=numbers, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": _s("p")},
                        Select="COUNT", Limit=4)
    assert "Items" not in counted and counted["Count"] == 4 and "LastEvaluatedKey" in counted


def test_query_consumed_capacity(ddb, numbers):
    page = ddb.query(TableName=numbers, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": _s("p")},
                     ReturnConsumedCapacity="TOTAL", ConsistentRead=True)
    assert page["ConsumedCapacity"] == {"TableName": numbers, "CapacityUnits": 1.0}
    page = ddb.query(TableName=numbers, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": _s("p")},
                     ReturnConsumedCapacity="INDEXES")
    assert page["ConsumedCapacity"] == {"TableName": numbers, "CapacityUnits": 0.5, "Table": {"CapacityUnits": 0.5}}


def test_query_paginator_returns_every_item_once(ddb, numbers):
    paginator = ddb.get_paginator("query")
    pages = list(paginator.paginate(TableName=numbers, KeyConditionExpression="pk = :p",
                                    ExpressionAttributeValues={":p": _s("p")}, PaginationConfig={"PageSize": 4}))
    assert len(pages) == 5
    got = [i["sk"]["N"] for page in pages for i in page["Items"]]
    assert [Decimal(n) for n in got] == sorted(Decimal(n) for n in NUMBERS)


# --- Scan ------------------------------------------------------------------------------------


def test_scan_paginator_returns_every_item_exactly_once(ddb, spread):
    pages = list(ddb.get_paginator("scan").paginate(TableName=spread, PaginationConfig={"PageSize": 7}))
    keys = _keys([i for page in pages for i in page["Items"]], "pk", "sk")
    assert len(keys) == 300 and len(set(keys)) == 300
    assert all(page["Count"] == page["ScannedCount"] == 7 for page in pages[:-1])


def test_scan_order_is_the_same_on_every_page_boundary(ddb, spread):
    whole = ddb.scan(TableName=spread)
    assert whole["Count"] == 300 and "LastEvaluatedKey" not in whole
    paged = [i for page in _pages(ddb, "scan", TableName=spread, Limit=13) for i in page["Items"]]
    assert _keys(paged, "pk", "sk") == _keys(whole["Items"], "pk", "sk")


def test_scan_filter_projection_count(ddb, spread):
    page = ddb.scan(TableName=spread, FilterExpression="#e = :t", ExpressionAttributeNames={"#e": "even"},
                    ExpressionAttributeValues={":t": {"BOOL": True}}, ProjectionExpression="pk, sk")
    assert page["ScannedCount"] == 300 and page["Count"] == 150
    assert all(set(item) == {"pk", "sk"} for item in page["Items"])
    counted = ddb.scan(TableName=spread, Select="COUNT", ScanFilter={
        "even": {"ComparisonOperator": "EQ", "AttributeValueList": [{"BOOL": False}]}})
    assert "Items" not in counted and counted["Count"] == 150 and counted["ScannedCount"] == 300
    limited = _pages(ddb, "scan", TableName=spread, Limit=50, FilterExpression="#e = :t",
                     ExpressionAttributeNames={"#e": "even"}, ExpressionAttributeValues={":t": {"BOOL": True}})
    assert [p["ScannedCount"] for p in limited][:6] == [50] * 6
    assert sum(p["Count"] for p in limited) == 150


@pytest.mark.parametrize("total", [1, 2, 3, 4])
def test_parallel_scan_segments_cover_the_table_exactly_once(ddb, spread, total):
    keys = []
    for segment in range(total):
        for page in _pages(ddb, "scan", TableName=spread, Segment=segment, TotalSegments=total, Limit=40):
            keys.extend(_keys(page["Items"], "pk", "sk"))
    assert len(keys) == 300 and len(set(keys)) == 300


def test_scan_start_key_from_another_segment_is_rejected(ddb, spread):
    first = ddb.scan(TableName=spread, Segment=1, TotalSegments=2, Limit=1)
    expect_error(ddb.scan, "ValidationException",
                 "The provided starting key is invalid: Invalid ExclusiveStartKey. Please use ExclusiveStartKey with "
                 "correct Segment. TotalSegments: 2 Segment: 0",
                 TableName=spread, Segment=0, TotalSegments=2, ExclusiveStartKey=first["LastEvaluatedKey"])


def test_pages_are_cut_at_one_megabyte_read(ddb, big):
    pages = _pages(ddb, "scan", TableName=big, ReturnConsumedCapacity="TOTAL")
    assert len(pages) == 3
    keys = _keys([i for page in pages for i in page["Items"]], "pk", "sk")
    assert len(keys) == 24 == len(set(keys))
    for page in pages[:-1]:
        size = sum(len(i["blob"]["S"]) for i in page["Items"])
        assert size >= PAGE_BYTES and size - BIG_ITEM_BYTES < PAGE_BYTES  # the item crossing 1 MB is included
    # Filtered out or not, the items read fill the page.
    filtered = ddb.scan(TableName=big, FilterExpression="sk < :z", ExpressionAttributeValues={":z": _n(0)})
    assert filtered["Count"] == 0 and filtered["ScannedCount"] == pages[0]["Count"]
    assert "LastEvaluatedKey" in filtered
    counted = ddb.scan(TableName=big, Select="COUNT")
    assert counted["Count"] == pages[0]["Count"] and "LastEvaluatedKey" in counted
    assert pages[0]["ConsumedCapacity"]["CapacityUnits"] >= PAGE_BYTES / 4096 / 2


def test_query_pages_are_cut_at_one_megabyte_read(ddb, table):
    name = table(pk=("pk", "S"), sk=("sk", "N"))
    for i in range(14):
        ddb.put_item(TableName=name, Item={"pk": _s("p"), "sk": _n(i), "blob": _s("z" * BIG_ITEM_BYTES)})
    pages = _pages(ddb, "query", TableName=name, KeyConditionExpression="pk = :p",
                   ExpressionAttributeValues={":p": _s("p")})
    assert [p["Count"] for p in pages] == [11, 3]
    assert [i["sk"]["N"] for p in pages for i in p["Items"]] == [str(i) for i in range(14)]


# --- validation --------------------------------------------------------------------------------


def test_scan_segment_validation(ddb, spread):
    expect_error(ddb.scan, "ValidationException",
                 "The Segment parameter is zero-based and must be less than parameter TotalSegments: "
                 "Segment: 1 is not less than TotalSegments: 1", TableName="any-table", Segment=1, TotalSegments=1)
    expect_error(ddb.scan, "ValidationException",
                 "The TotalSegments parameter is required but was not present in the request when Segment "
                 "parameter is present", TableName="any-table", Segment=1)
    expect_error(ddb.scan, "ValidationException",
                 "The Segment parameter is required but was not present in the request when parameter "
                 "TotalSegments is present", TableName="any-table", TotalSegments=3)


def test_select_rules(ddb, numbers, spread):
    query = {"TableName": numbers, "KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": _s("p")}}
    expect_error(ddb.query, "ValidationException",
                 "1 validation error detected: ALL_PROJECTED_ATTRIBUTES can be used only when Querying using an "
                 "IndexName", Select="ALL_PROJECTED_ATTRIBUTES", **query)
    expect_error(ddb.scan, "ValidationException",
                 "ALL_PROJECTED_ATTRIBUTES can be used only when Querying using an IndexName",
                 TableName=spread, Select="ALL_PROJECTED_ATTRIBUTES")
    expect_error(ddb.query, "ValidationException",
                 "1 validation error detected: Must specify the AttributesToGet or ProjectionExpression when "
                 "choosing to get SPECIFIC_ATTRIBUTES", Select="SPECIFIC_ATTRIBUTES", **query)
    expect_error(ddb.scan, "ValidationException",
                 "Cannot specify the ProjectionExpression when choosing to get only the Count",
                 TableName=spread, Select="COUNT", ProjectionExpression="pk")
    expect_error(ddb.scan, "ValidationException",
                 "Cannot specify the AttributesToGet when choosing to get ALL_ATTRIBUTES",
                 TableName=spread, Select="ALL_ATTRIBUTES", AttributesToGet=["pk"])


def test_query_needs_a_key_condition(ddb, numbers):
    expect_error(ddb.query, "ValidationException",
                 "Either the KeyConditions or KeyConditionExpression parameter must be specified in the request.",
                 TableName=numbers)


def test_query_key_condition_against_the_schema(ddb, numbers):
    def query(condition, **kw):
        return ddb.query(TableName=numbers, KeyConditionExpression=condition, **kw)

    expect_error(query, "ValidationException", "Query condition missed key schema element: pk",
                 condition="sk = :v", ExpressionAttributeValues={":v": _n(1)})
    expect_error(query, "ValidationException", "Query key condition not supported",
                 condition="pk > :v", ExpressionAttributeValues={":v": _s("a")})
    expect_error(query, "ValidationException",
                 "One or more parameter values were invalid: Condition parameter type does not match schema type",
                 condition="pk = :p AND sk = :v", ExpressionAttributeValues={":p": _s("p"), ":v": _s("1")})
    expect_error(query, "ValidationException",
                 "Filter Expression can only contain non-primary key attributes: Primary key attribute: sk",
                 condition="pk = :p", FilterExpression="sk > :v",
                 ExpressionAttributeValues={":p": _s("p"), ":v": _n(1)})
    expect_error(ddb.query, "ValidationException", "Attempted conditional constraint is not an indexable operation",
                 TableName=numbers, KeyConditions={"pk": {"ComparisonOperator": "NE", "AttributeValueList": [_s("p")]}})
    expect_error(ddb.query, "ResourceNotFoundException", NOT_FOUND, TableName=unique_name("missing"),
                 KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": _s("p")})
    expect_error(query, "ValidationException", "The table does not have the specified index: whatever",
                 condition="pk = :p", ExpressionAttributeValues={":p": _s("p")}, IndexName="whatever")


def test_query_exclusive_start_key_checks(ddb, numbers):
    def query(start, condition="pk = :p", **values):
        return ddb.query(TableName=numbers, KeyConditionExpression=condition,
                         ExpressionAttributeValues={":p": _s("p"), **values}, ExclusiveStartKey=start)

    expect_error(query, "ValidationException", "Exclusive Start Key must have same size as table's key schema",
                 start={"pk": _s("p")})
    expect_error(query, "ValidationException", "The provided starting key is invalid",
                 start={"pk": _s("p"), "other": _n(1)})
    expect_error(query, "ValidationException", "The provided key element does not match the schema",
                 start={"pk": _s("p"), "sk": _s("1")})
    expect_error(query, "ValidationException",
                 "The provided starting key is outside query boundaries based on provided conditions",
                 start={"pk": _s("o"), "sk": _n(1)})
    expect_error(query, "ValidationException", "The provided starting key does not match the range key predicate",
                 start={"pk": _s("p"), "sk": _n(1)}, condition="pk = :p AND sk > :v", **{":v": _n(5)})
    expect_error(query, "ValidationException",
                 "The provided starting key is invalid: Supplied AttributeValue is empty, must contain exactly one "
                 "of the supported datatypes", start={"pk": {}})


def test_scan_exclusive_start_key_checks(ddb, spread):
    for start in ({"pk": _s("a")}, {"pk": _s("a"), "sk": _s("1")}, {"pk": _s("a"), "sk": _n(1), "x": _n(1)}):
        expect_error(ddb.scan, "ValidationException", START_KEY_SCHEMA, TableName=spread, ExclusiveStartKey=start)
    expect_error(ddb.scan, "ResourceNotFoundException", NOT_FOUND, TableName=unique_name("missing"),
                 ExclusiveStartKey={"pk": _s("a")})
    # DynamoDB checks ScanFilter before the start key's values.
    expect_error(ddb.scan, "ValidationException",
                 "One or more parameter values were invalid: Invalid number of argument(s) for the EQ "
                 "ComparisonOperator", TableName=spread, ExclusiveStartKey={"pk": {}},
                 ScanFilter={"a": {"ComparisonOperator": "EQ"}})


def test_expression_and_legacy_parameters_do_not_mix(ddb, spread):
    expect_error(ddb.scan, "ValidationException",
                 "Can not use both expression and non-expression parameters in the same request: "
                 "Non-expression parameters: {ScanFilter} Expression parameters: {FilterExpression}",
                 TableName=spread, FilterExpression="a = :a", ExpressionAttributeValues={":a": _n(1)},
                 ScanFilter={"a": {"ComparisonOperator": "NULL"}})
    expect_error(ddb.scan, "ValidationException", "Key attributes must be scalars; list random access '[]' and "
                 "map lookup '.' are not allowed: Key: pk", TableName=spread, ProjectionExpression="pk.x")
