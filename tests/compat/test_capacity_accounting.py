"""Capacity accounting end to end: AWS's documented examples, asserted to the unit.

Black-box, both modes.  Each case is one of the Developer Guide's worked
examples ("Managing throughput settings on provisioned tables", the local
and global secondary index chapters) or of the AWS CLI's (table
``MusicCollection``, local index ``AlbumTitleIndex`` on ``AlbumTitle``
projecting ``Genre`` and ``Year``), rebuilt with items of the sizes the
example names.  ``router/capacity.py`` states the rules; ``tests/unit/
test_capacity.py`` checks them without a server.

Item sizes are DynamoDB's: the attribute names' UTF-8 bytes plus the
values' (a string's bytes), so ``_sized`` pads one attribute to reach an
exact size.
"""

from __future__ import annotations

import pytest

from helpers import unique_name
from tests.waiting import wait_until

KB = 1024
CONVERGE_S = 10.0  # a global index catches up well within this
PAGE_BYTES = 1024 * 1024


def _s(text: str) -> dict:
    return {"S": text}


def _sized(key: dict, size: int, pad: str = "v", **others: dict) -> dict:
    """``key`` plus ``others`` plus a string attribute ``pad`` making the item exactly ``size`` bytes."""
    used = sum(len(name) + len(value["S"]) for name, value in {**key, **others}.items()) + len(pad)
    assert size >= used, f"an item of {size} bytes cannot hold {used} bytes of keys"
    return {**key, **others, pad: _s("x" * (size - used))}


def _units(answer: dict) -> float:
    return answer["ConsumedCapacity"]["CapacityUnits"]


def _create(ddb, key_schema: tuple[tuple[str, str], ...], index_keys: tuple[str, ...], **indexes) -> str:
    """A new on-demand table with string index key attributes ``index_keys`` (its indexes in ``indexes``)."""
    name = unique_name()
    kinds = ("HASH", "RANGE")
    ddb.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": t} for a, t in key_schema]
        + [{"AttributeName": a, "AttributeType": "S"} for a in index_keys],
        KeySchema=[{"AttributeName": a, "KeyType": kind} for (a, _), kind in zip(key_schema, kinds)],
        **indexes,
    )
    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    return name


def _batch_put(ddb, name: str, items: list[dict]) -> None:
    for start in range(0, len(items), 25):
        out = ddb.batch_write_item(RequestItems={name: [{"PutRequest": {"Item": i}} for i in items[start:start + 25]]})
        assert out["UnprocessedItems"] == {}


# --- reads ------------------------------------------------------------------------------


@pytest.fixture
def pk_sk(table):
    return table(pk=("pk", "S"), sk=("sk", "S"))


@pytest.mark.parametrize("size, consistent, units", [
    (3500, True, 1.0),       # a 3,500-byte item costs what a 4 KB one does
    (8 * KB, True, 2.0),     # an 8 KB item: 2 units strongly consistent ...
    (8 * KB, False, 1.0),    # ... 1 eventually consistent
    (10 * KB, True, 3.0),    # GetItem of 10 KB rounds up to 12 KB
    (3 * KB, True, 1.0),     # 3 KB / 4 KB = 0.75, or 1
], ids=["3500B", "8KB-strong", "8KB-eventual", "10KB", "3KB"])
def test_get_item(ddb, pk_sk, size, consistent, units):
    key = {"pk": _s("p"), "sk": _s(f"{size}")}
    ddb.put_item(TableName=pk_sk, Item=_sized(key, size))
    out = ddb.get_item(TableName=pk_sk, Key=key, ConsistentRead=consistent, ProjectionExpression="pk",
                       ReturnConsumedCapacity="TOTAL")
    assert out["ConsumedCapacity"] == {"TableName": pk_sk, "CapacityUnits": units}


def test_reading_a_missing_item_still_costs(ddb, pk_sk):
    key = {"pk": _s("none"), "sk": _s("none")}
    for consistent, units in ((True, 1.0), (False, 0.5)):
        out = ddb.get_item(TableName=pk_sk, Key=key, ConsistentRead=consistent, ReturnConsumedCapacity="INDEXES")
        assert "Item" not in out
        assert out["ConsumedCapacity"] == {"TableName": pk_sk, "CapacityUnits": units,
                                           "Table": {"CapacityUnits": units}}


def test_batch_get_rounds_each_item(ddb, pk_sk):
    """A 1.5 KB and a 6.5 KB item: 12 KB (4 KB + 8 KB), not 8 KB: 3 units."""
    keys = [{"pk": _s("b"), "sk": _s(str(n))} for n in range(2)]
    ddb.put_item(TableName=pk_sk, Item=_sized(keys[0], int(1.5 * KB)))
    ddb.put_item(TableName=pk_sk, Item=_sized(keys[1], int(6.5 * KB)))
    out = ddb.batch_get_item(RequestItems={pk_sk: {"Keys": keys, "ConsistentRead": True}},
                             ReturnConsumedCapacity="TOTAL")
    assert out["ConsumedCapacity"] == [{"TableName": pk_sk, "CapacityUnits": 3.0}]


def test_query_rounds_the_page_once(ddb, pk_sk):
    """10 items of 40.8 KB together round up to 44 KB: 11 units (5.5
    eventually consistent); whatever is filtered, projected or only counted."""
    total = int(40.8 * KB)
    sizes = [total // 10] * 9 + [total - 9 * (total // 10)]
    _batch_put(ddb, pk_sk, [_sized({"pk": _s("q"), "sk": _s(f"{n:02}")}, size) for n, size in enumerate(sizes)])
    key = {"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": _s("q")}}
    for extra in ({}, {"Select": "COUNT"}, {"ProjectionExpression": "sk"},
                  {"FilterExpression": "v = :none", "ExpressionAttributeValues": {":p": _s("q"), ":none": _s("")}}):
        asked = {**key, **extra}
        out = ddb.query(TableName=pk_sk, ConsistentRead=True, ReturnConsumedCapacity="TOTAL", **asked)
        assert out["ScannedCount"] == 10 and _units(out) == 11.0, extra
        assert _units(ddb.query(TableName=pk_sk, ReturnConsumedCapacity="TOTAL", **asked)) == 5.5


def test_query_of_1500_small_items(ddb, pk_sk):
    """1500 items of 64 bytes: 96 KB read in one page, 24 units."""
    _batch_put(ddb, pk_sk, [_sized({"pk": _s("s"), "sk": _s(f"{n:04}")}, 64) for n in range(1500)])
    out = ddb.query(TableName=pk_sk, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": _s("s")},
                    ConsistentRead=True, Select="COUNT", ReturnConsumedCapacity="TOTAL")
    assert out["Count"] == 1500 and "LastEvaluatedKey" not in out
    assert _units(out) == 24.0


def test_scan_of_small_items_spread_over_partitions(ddb, table):
    """Twenty 100-byte items on every node: 2,000 bytes read, one unit per page
    (half eventually consistent), not a unit per node or per item."""
    name = table(pk=("pk", "S"))
    _batch_put(ddb, name, [_sized({"pk": _s(f"k{n:02}")}, 100) for n in range(20)])
    for consistent, units in ((True, 1.0), (False, 0.5)):
        out = ddb.scan(TableName=name, ConsistentRead=consistent, ReturnConsumedCapacity="INDEXES")
        assert out["ScannedCount"] == 20
        assert out["ConsumedCapacity"] == {"TableName": name, "CapacityUnits": units, "Table": {"CapacityUnits": units}}
    segments = [ddb.scan(TableName=name, Segment=s, TotalSegments=2, ReturnConsumedCapacity="TOTAL") for s in (0, 1)]
    assert sum(page["ScannedCount"] for page in segments) == 20
    assert [_units(page) for page in segments] == [0.5, 0.5]
    assert _units(ddb.scan(TableName=name, Limit=3, FilterExpression="pk = :x",
                           ExpressionAttributeValues={":x": _s("none")}, ReturnConsumedCapacity="TOTAL")) == 0.5


def test_a_full_scan_page_costs_128_5_units(ddb, table):
    """A page ends on the item that takes it past 1 MB: items of 1,042 bytes
    make a page of 1,007 items, 1,049,294 bytes, 257 units of 4 KB: 128.5
    eventually consistent (what live DynamoDB answers for such a Scan)."""
    name = table(pk=("pk", "S"))
    _batch_put(ddb, name, [_sized({"pk": _s(f"k{n:04}")}, 1042) for n in range(1100)])
    page = ddb.scan(TableName=name, Select="COUNT", ReturnConsumedCapacity="TOTAL")
    assert page["ScannedCount"] == -(-PAGE_BYTES // 1042) == 1007
    assert "LastEvaluatedKey" in page and _units(page) == 128.5
    rest = ddb.scan(TableName=name, Select="COUNT", ExclusiveStartKey=page["LastEvaluatedKey"],
                    ReturnConsumedCapacity="TOTAL", ConsistentRead=True)
    assert rest["ScannedCount"] == 93 and _units(rest) == float(-(-93 * 1042 // (4 * KB)))


# --- writes -------------------------------------------------------------------------------


@pytest.mark.parametrize("size, units", [(500, 1.0), (512, 1.0), (int(1.6 * KB), 2.0), (2 * KB, 2.0)],
                         ids=["500B", "512B", "1.6KB", "2KB"])
def test_put_and_delete(ddb, pk_sk, size, units):
    key = {"pk": _s("w"), "sk": _s(str(size))}
    assert _units(ddb.put_item(TableName=pk_sk, Item=_sized(key, size), ReturnConsumedCapacity="TOTAL")) == units
    assert _units(ddb.delete_item(TableName=pk_sk, Key=key, ReturnConsumedCapacity="TOTAL")) == units
    assert _units(ddb.delete_item(TableName=pk_sk, Key=key, ReturnConsumedCapacity="TOTAL")) == 1.0  # none left


def test_a_write_costs_the_larger_of_before_and_after(ddb, pk_sk):
    key = {"pk": _s("u"), "sk": _s("u")}
    ddb.put_item(TableName=pk_sk, Item=_sized(key, 3 * KB))
    shrink = ddb.update_item(TableName=pk_sk, Key=key, UpdateExpression="SET v = :v",
                             ExpressionAttributeValues={":v": _s("x")}, ReturnConsumedCapacity="TOTAL")
    assert _units(shrink) == 3.0
    grow = ddb.put_item(TableName=pk_sk, Item=_sized(key, int(4.5 * KB)), ReturnConsumedCapacity="TOTAL")
    assert _units(grow) == 5.0


def test_batch_write_rounds_each_item(ddb, pk_sk):
    """A 500-byte and a 3.5 KB item: 5 KB (1 KB + 4 KB), not 4 KB: 5 units."""
    items = [_sized({"pk": _s("bw"), "sk": _s("a")}, 500), _sized({"pk": _s("bw"), "sk": _s("b")}, int(3.5 * KB))]
    out = ddb.batch_write_item(RequestItems={pk_sk: [{"PutRequest": {"Item": i}} for i in items]},
                               ReturnConsumedCapacity="INDEXES")
    assert out["ConsumedCapacity"] == [{"TableName": pk_sk, "CapacityUnits": 5.0, "Table": {"CapacityUnits": 5.0}}]


# --- MusicCollection and AlbumTitleIndex (the AWS CLI's examples) ---------------------------------


@pytest.fixture
def music(ddb):
    name = _create(ddb, (("Artist", "S"), ("SongTitle", "S")), ("AlbumTitle",), LocalSecondaryIndexes=[{
        "IndexName": "AlbumTitleIndex",
        "KeySchema": [{"AttributeName": "Artist", "KeyType": "HASH"},
                      {"AttributeName": "AlbumTitle", "KeyType": "RANGE"}],
        "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["Genre", "Year"]},
    }])
    yield name
    ddb.delete_table(TableName=name)


SONGS = [("No One You Know", "Call Me Today", "Somewhat Famous"),
         ("Acme Band", "Happy Day", "Songs About Life"),
         ("No One You Know", "Scared of My Shadow", "Blue Sky Blues")]


def _song(artist: str, title: str, album: str) -> dict:
    return {"Artist": _s(artist), "SongTitle": _s(title), "AlbumTitle": _s(album)}


def test_cli_examples(ddb, music):
    # batch-write-item, INDEXES: three songs, each in the table and in AlbumTitleIndex.
    out = ddb.batch_write_item(RequestItems={music: [{"PutRequest": {"Item": _song(*s)}} for s in SONGS]},
                               ReturnConsumedCapacity="INDEXES", ReturnItemCollectionMetrics="SIZE")
    assert out["ConsumedCapacity"] == [{
        "TableName": music, "CapacityUnits": 6.0, "Table": {"CapacityUnits": 3.0},
        "LocalSecondaryIndexes": {"AlbumTitleIndex": {"CapacityUnits": 3.0}}}]
    # batch-get-item of the three, eventually consistent, only AlbumTitle: 1.5.
    keys = [{"Artist": _s(a), "SongTitle": _s(t)} for a, t, _ in SONGS]
    out = ddb.batch_get_item(RequestItems={music: {"Keys": keys, "ProjectionExpression": "AlbumTitle"}},
                             ReturnConsumedCapacity="TOTAL")
    assert out["ConsumedCapacity"] == [{"TableName": music, "CapacityUnits": 1.5}]
    # query of AlbumTitleIndex, ALL_PROJECTED_ATTRIBUTES, INDEXES: the index's 0.5, the table's 0.0.
    out = ddb.query(TableName=music, IndexName="AlbumTitleIndex", KeyConditionExpression="Artist = :v1",
                    ExpressionAttributeValues={":v1": _s("No One You Know")}, Select="ALL_PROJECTED_ATTRIBUTES",
                    ReturnConsumedCapacity="INDEXES")
    assert out["Count"] == 2
    assert out["ConsumedCapacity"] == {
        "TableName": music, "CapacityUnits": 0.5, "Table": {"CapacityUnits": 0.0},
        "LocalSecondaryIndexes": {"AlbumTitleIndex": {"CapacityUnits": 0.5}}}
    # update-item SET Year, AlbumTitle, TOTAL: the table's 1, a delete and a put in the index.
    out = ddb.update_item(TableName=music, Key=keys[1], UpdateExpression="SET #Y = :y, #AT = :t",
                          ExpressionAttributeNames={"#Y": "Year", "#AT": "AlbumTitle"},
                          ExpressionAttributeValues={":y": {"N": "2015"}, ":t": _s("Louder Than Ever")},
                          ReturnValues="ALL_NEW", ReturnConsumedCapacity="TOTAL", ReturnItemCollectionMetrics="SIZE")
    assert out["Attributes"]["AlbumTitle"] == _s("Louder Than Ever")
    assert out["ConsumedCapacity"] == {"TableName": music, "CapacityUnits": 3.0}
    # delete-item, ALL_OLD, TOTAL: the item and its index entry.
    out = ddb.delete_item(TableName=music, Key=keys[2], ReturnValues="ALL_OLD", ReturnConsumedCapacity="TOTAL")
    assert out["Attributes"]["AlbumTitle"] == _s("Blue Sky Blues")
    assert out["ConsumedCapacity"] == {"TableName": music, "CapacityUnits": 2.0}


def test_lsi_fetch_example(ddb, music):
    """4 index entries of 200 bytes (one 4 KB unit together) and 4 fetched
    items of 300 bytes (a 4 KB unit each): 5 units, 4 of them the table's."""
    artist = "Fetch"
    for n in range(4):
        key = {"Artist": _s(artist), "SongTitle": _s(f"song{n}")}
        entry = _sized(key, 200, pad="AlbumTitle")  # the entry: the table key and the index key
        ddb.put_item(TableName=music, Item=_sized(entry, 300, pad="Lyrics"))  # Lyrics is not projected
    asked = {"IndexName": "AlbumTitleIndex", "KeyConditionExpression": "Artist = :a",
             "ExpressionAttributeValues": {":a": _s(artist)}, "ReturnConsumedCapacity": "INDEXES"}
    fetched = {"TableName": music, "CapacityUnits": 5.0, "Table": {"CapacityUnits": 4.0},
               "LocalSecondaryIndexes": {"AlbumTitleIndex": {"CapacityUnits": 1.0}}}
    whole = ddb.query(TableName=music, Select="ALL_ATTRIBUTES", ConsistentRead=True, **asked)
    assert whole["Count"] == 4 and all("Lyrics" in item for item in whole["Items"])
    assert whole["ConsumedCapacity"] == fetched
    named = ddb.query(TableName=music, ProjectionExpression="Lyrics", ConsistentRead=True, **asked)
    assert named["ConsumedCapacity"] == fetched
    halved = ddb.query(TableName=music, Select="ALL_ATTRIBUTES", **asked)
    assert halved["ConsumedCapacity"] == {
        "TableName": music, "CapacityUnits": 2.5, "Table": {"CapacityUnits": 2.0},
        "LocalSecondaryIndexes": {"AlbumTitleIndex": {"CapacityUnits": 0.5}}}
    projected = ddb.query(TableName=music, ConsistentRead=True, **asked)  # no fetch: the entries alone
    assert projected["ConsumedCapacity"] == {
        "TableName": music, "CapacityUnits": 1.0, "Table": {"CapacityUnits": 0.0},
        "LocalSecondaryIndexes": {"AlbumTitleIndex": {"CapacityUnits": 1.0}}}
    scanned = ddb.scan(TableName=music, IndexName="AlbumTitleIndex", Select="ALL_ATTRIBUTES", ConsistentRead=True,
                       FilterExpression="Artist = :a", ExpressionAttributeValues={":a": _s(artist)},
                       ReturnConsumedCapacity="TOTAL")
    assert scanned["Count"] == 4 and _units(scanned) == 5.0


def test_a_fetching_page_is_bounded_as_it_is_charged(ddb, music):
    """A page that fetches ends once its entries (rounded up to 4 KB) plus
    each fetched item (rounded up on its own) reach 1 MB: with entries of
    200 bytes, 244 of them (48,800 bytes: 12 units) and 244 items (244 units)."""
    artist = "Bound"
    items = []
    for n in range(300):
        entry = _sized({"Artist": _s(artist), "SongTitle": _s(f"song{n:03}")}, 200, pad="AlbumTitle")
        items.append(_sized(entry, 300, pad="Lyrics"))
    _batch_put(ddb, music, items)
    page = ddb.query(TableName=music, IndexName="AlbumTitleIndex", KeyConditionExpression="Artist = :a",
                     ExpressionAttributeValues={":a": _s(artist)}, Select="ALL_ATTRIBUTES", ConsistentRead=True,
                     ReturnConsumedCapacity="INDEXES")
    assert page["Count"] == 244 and "LastEvaluatedKey" in page
    assert page["ConsumedCapacity"] == {
        "TableName": music, "CapacityUnits": 256.0, "Table": {"CapacityUnits": 244.0},
        "LocalSecondaryIndexes": {"AlbumTitleIndex": {"CapacityUnits": 12.0}}}


# --- a global index ---------------------------------------------------------------------------


@pytest.fixture
def gsi(ddb):
    name = _create(ddb, (("pk", "S"),), ("g",), GlobalSecondaryIndexes=[{
        "IndexName": "by_g", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
        "Projection": {"ProjectionType": "ALL"},
    }])
    yield name
    ddb.delete_table(TableName=name)


def test_gsi_query_example(ddb, gsi):
    """8 index entries of 2,000 bytes: 16,000 bytes, rounded up to 16 KB,
    eventually consistent: 2 units, charged to the index."""
    items = [_sized({"pk": _s(f"k{n}")}, 2000, g=_s("G")) for n in range(8)]
    out = ddb.batch_write_item(RequestItems={gsi: [{"PutRequest": {"Item": i}} for i in items]},
                               ReturnConsumedCapacity="INDEXES")
    assert out["ConsumedCapacity"] == [{
        "TableName": gsi, "CapacityUnits": 32.0, "Table": {"CapacityUnits": 16.0},
        "GlobalSecondaryIndexes": {"by_g": {"CapacityUnits": 16.0}}}]
    asked = {"IndexName": "by_g", "KeyConditionExpression": "g = :g", "ExpressionAttributeValues": {":g": _s("G")}}
    page = wait_until(lambda: (p := ddb.query(TableName=gsi, ReturnConsumedCapacity="INDEXES", **asked))["Count"] == 8
                      and p, CONVERGE_S, what="the index's 8 entries")
    assert page["ConsumedCapacity"] == {"TableName": gsi, "CapacityUnits": 2.0, "Table": {"CapacityUnits": 0.0},
                                        "GlobalSecondaryIndexes": {"by_g": {"CapacityUnits": 2.0}}}
    # Moving one entry to another index key: a delete and a put of 2 units each.
    moved = ddb.update_item(TableName=gsi, Key={"pk": _s("k0")}, UpdateExpression="SET g = :h",
                            ExpressionAttributeValues={":h": _s("H")}, ReturnConsumedCapacity="INDEXES")
    assert moved["ConsumedCapacity"] == {"TableName": gsi, "CapacityUnits": 6.0, "Table": {"CapacityUnits": 2.0},
                                         "GlobalSecondaryIndexes": {"by_g": {"CapacityUnits": 4.0}}}
    # Any ReturnValues answers as without capacity, and is charged the same.
    for n, returns in ((3, "UPDATED_NEW"), (4, "UPDATED_OLD"), (5, "ALL_NEW")):
        attributes = {"UPDATED_NEW": {"g": _s("I")}, "UPDATED_OLD": {"g": _s("G")},
                      "ALL_NEW": {**items[n], "g": _s("I")}}[returns]
        out = ddb.update_item(TableName=gsi, Key={"pk": _s(f"k{n}")}, UpdateExpression="SET g = :i",
                              ReturnValues=returns, ExpressionAttributeValues={":i": _s("I")},
                              ReturnConsumedCapacity="TOTAL")
        assert out["Attributes"] == attributes and _units(out) == 6.0
    # Deleting through a batch: each item and its entry.
    out = ddb.batch_write_item(RequestItems={gsi: [{"DeleteRequest": {"Key": {"pk": _s(f"k{n}")}}} for n in (1, 2)]},
                               ReturnConsumedCapacity="TOTAL")
    assert out["ConsumedCapacity"] == [{"TableName": gsi, "CapacityUnits": 8.0}]


def test_an_update_that_creates_nothing_writes_no_index(ddb):
    """REMOVE on a missing item creates nothing, not even the key-only item a
    global index keyed on the table's partition key would hold."""
    name = _create(ddb, (("pk", "S"), ("sk", "S")), (), GlobalSecondaryIndexes=[{
        "IndexName": "by_pk", "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "Projection": {"ProjectionType": "KEYS_ONLY"},
    }])
    try:
        key = {"pk": _s("none"), "sk": _s("none")}
        for returns in ("NONE", "ALL_NEW", "UPDATED_OLD"):
            out = ddb.update_item(TableName=name, Key=key, UpdateExpression="REMOVE x", ReturnValues=returns,
                                  ReturnConsumedCapacity="INDEXES")
            assert "Attributes" not in out
            assert out["ConsumedCapacity"] == {"TableName": name, "CapacityUnits": 1.0,
                                               "Table": {"CapacityUnits": 1.0}}
        assert "Item" not in ddb.get_item(TableName=name, Key=key, ConsistentRead=True)
        created = ddb.update_item(TableName=name, Key=key, ReturnValues="ALL_NEW", ReturnConsumedCapacity="INDEXES")
        assert created["Attributes"] == key
        assert created["ConsumedCapacity"] == {"TableName": name, "CapacityUnits": 2.0, "Table": {"CapacityUnits": 1.0},
                                               "GlobalSecondaryIndexes": {"by_pk": {"CapacityUnits": 1.0}}}
    finally:
        ddb.delete_table(TableName=name)
