"""Secondary indexes on one node: index keys, the registry, local indexes in
the item's write batch, item collections, and global entries as an owner
applies them.

White-box where it must be (the ``index`` column family's raw entries);
otherwise through the engine's own reads (``RangeKind.INDEX``), with the
router's ``index_query_range`` computing bounds as a Query would.
"""

from __future__ import annotations

import orjson
import pytest

from meridian.model.errors import (
    ItemCollectionSizeLimitExceededException,
    ResourceNotFoundException,
    ValidationException,
)
from meridian.model.expressions import KeyCondition
from meridian.model.keycodec import encode_item_key, table_prefix
from meridian.model.ops import (
    CatalogEntry,
    IndexEntry,
    IndexSpec,
    ItemOp,
    OpKind,
    RangeKind,
    RangeRead,
    decode_index_key,
    encode_index_key,
    index_entry_table_key,
    index_key_hash,
    scan_segment_bounds,
)
from meridian.model.stamps import VersionStamp
from meridian.model.values import item_size
from meridian.node.engine import Engine
from meridian.node.indexes import IndexRegistry
from meridian.router.actions.query_scan import index_query_range

TABLE = 21
SCHEMA = [("pk", "S"), ("sk", "N")]
BY_SCORE = IndexSpec("by_score", 901, False, (("pk", "S"), ("score", "N")), "KEYS_ONLY")
BY_TAG = IndexSpec("by_tag", 902, False, (("pk", "S"), ("tag", "S")), "INCLUDE", ("colour",))
BY_CITY = IndexSpec("by_city", 903, True, (("city", "S"), ("age", "N")), "ALL")


def catalog(*specs: IndexSpec, name: str = "t", revision: int = 1, table_id: int = TABLE,
            deleted: bool = False) -> CatalogEntry:
    description = {"table_id": table_id, "key_schema": [list(k) for k in SCHEMA],
                   "indexes": [spec.to_record() for spec in specs]}
    return CatalogEntry(name, revision, description, deleted)


@pytest.fixture
def engine(tmp_path):
    e = Engine(str(tmp_path / "db"), node_id="n1", item_collection_bytes_max=2000)
    e.catalog_put(catalog(BY_SCORE, BY_TAG, BY_CITY))
    yield e
    e.close()


def key_of(pk: str, sk: int) -> dict:
    return {"pk": {"S": pk}, "sk": {"N": str(sk)}}


def put(engine: Engine, pk: str, sk: int, **attrs) -> object:
    key = key_of(pk, sk)
    item = {**key, **attrs}
    return engine.execute(ItemOp(OpKind.PUT, TABLE, encode_item_key(TABLE, SCHEMA, key), key, item=item))


def update(engine: Engine, pk: str, sk: int, expression: str, values: dict | None = None) -> object:
    key = key_of(pk, sk)
    return engine.execute(ItemOp(OpKind.UPDATE, TABLE, encode_item_key(TABLE, SCHEMA, key), key,
                                 update=expression, values=values))


def delete(engine: Engine, pk: str, sk: int) -> object:
    key = key_of(pk, sk)
    return engine.execute(ItemOp(OpKind.DELETE, TABLE, encode_item_key(TABLE, SCHEMA, key), key))


def index_items(engine: Engine, spec: IndexSpec, pk: str, **read) -> list[dict]:
    condition = KeyCondition(spec.key_schema[0][0], {"S": pk}, None, None, ())
    lower, upper = index_query_range(spec.index_id, list(spec.key_schema), condition)
    result = engine.read_range(RangeRead(RangeKind.INDEX, spec.index_id, lower, upper, **read))
    return [orjson.loads(item) for item in result.items]


def raw_entries(engine: Engine, index_id: int) -> list[bytes]:
    prefix = table_prefix(index_id)
    return [k for k in engine._index.keys(from_key=prefix) if k.startswith(prefix)]


# --- index keys -------------------------------------------------------------------------


def test_index_keys_round_trip_and_lead_back_to_the_item():
    item = {"city": {"S": "x\x00y"}, "age": {"N": "-1.5"}, "pk": {"S": "p"}, "sk": {"N": "7"}}
    table_key = encode_item_key(TABLE, SCHEMA, item)
    key = encode_index_key(BY_CITY.index_id, BY_CITY.key_schema, table_key[8:], item)
    assert key.startswith(table_prefix(BY_CITY.index_id))
    assert decode_index_key(key, BY_CITY.key_schema, SCHEMA) == item
    assert index_entry_table_key(key, BY_CITY.key_schema, TABLE) == table_key
    from meridian.model.keycodec import partition_hash
    assert index_key_hash(key) == partition_hash("S", "x\x00y")


def test_index_query_bounds_select_by_index_sort_key(engine):
    for sk, score in enumerate([5, -2, 5, 30, 0.5]):
        assert put(engine, "p", sk, score={"N": str(score)}).error is None
    ranks = [(i["score"]["N"], i["sk"]["N"]) for i in index_items(engine, BY_SCORE, "p")]
    assert ranks == [("-2", "1"), ("0.5", "4"), ("5", "0"), ("5", "2"), ("30", "3")]
    for op, values, expected in [("EQ", ["5"], ["0", "2"]), ("LE", ["5"], ["1", "4", "0", "2"]),
                                 ("GT", ["5"], ["3"]), ("LT", ["5"], ["1", "4"]), ("GE", ["5"], ["0", "2", "3"]),
                                 ("BETWEEN", ["0", "5"], ["4", "0", "2"])]:
        condition = KeyCondition("pk", {"S": "p"}, "score", op, tuple({"N": v} for v in values))
        lower, upper = index_query_range(BY_SCORE.index_id, list(BY_SCORE.key_schema), condition)
        result = engine.read_range(RangeRead(RangeKind.INDEX, BY_SCORE.index_id, lower, upper))
        assert [orjson.loads(i)["sk"]["N"] for i in result.items] == expected, op


# --- the registry -------------------------------------------------------------------------


def test_registry_reports_indexes_that_appear_and_go():
    registry = IndexRegistry()
    added, removed = registry.apply([catalog(BY_SCORE)])
    assert [p.name for p in added] == ["by_score"] and removed == []
    added, removed = registry.apply([catalog(BY_SCORE, BY_CITY, revision=2)])
    assert [p.name for p in added] == ["by_city"] and removed == []
    assert registry.global_tables == {TABLE}
    added, removed = registry.apply([catalog(BY_CITY, revision=3)])
    assert added == [] and [p.name for p in removed] == ["by_score"]
    added, removed = registry.apply([catalog(revision=4, deleted=True)])
    assert [p.name for p in removed] == ["by_city"] and registry.indexes == {} and not registry.global_tables


# --- local secondary indexes: the item's own write batch -------------------------------------


def test_local_entries_follow_every_write(engine):
    put(engine, "p", 1, score={"N": "3"}, tag={"S": "b"}, colour={"S": "red"}, extra={"S": "x"})
    put(engine, "p", 2, score={"N": "1"})
    assert index_items(engine, BY_SCORE, "p") == [
        {"pk": {"S": "p"}, "sk": {"N": "2"}, "score": {"N": "1"}},
        {"pk": {"S": "p"}, "sk": {"N": "1"}, "score": {"N": "3"}},
    ]
    assert index_items(engine, BY_TAG, "p") == [
        {"pk": {"S": "p"}, "sk": {"N": "1"}, "tag": {"S": "b"}, "colour": {"S": "red"}}
    ]
    update(engine, "p", 1, "SET score = :s REMOVE tag", {":s": {"N": "0"}})
    assert [i["sk"]["N"] for i in index_items(engine, BY_SCORE, "p")] == ["1", "2"]
    assert index_items(engine, BY_TAG, "p") == [] and raw_entries(engine, BY_TAG.index_id) == []
    delete(engine, "p", 2)
    assert len(raw_entries(engine, BY_SCORE.index_id)) == 1
    stats = engine.table_stats(TABLE).indexes
    assert stats[BY_SCORE.index_id].item_count == 1 and stats[BY_TAG.index_id].item_count == 0


def test_fetch_reads_whole_items_from_the_table(engine):
    put(engine, "p", 1, score={"N": "3"}, extra={"S": "x"})
    condition = KeyCondition("pk", {"S": "p"}, None, None, ())
    lower, upper = index_query_range(BY_SCORE.index_id, list(BY_SCORE.key_schema), condition)
    read = RangeRead(RangeKind.INDEX, BY_SCORE.index_id, lower, upper, fetch=True, filter="extra = :x",
                     values={":x": {"S": "x"}})
    result = engine.read_range(read)
    assert [orjson.loads(i) for i in result.items] == [{"pk": {"S": "p"}, "sk": {"N": "1"}, "score": {"N": "3"}}]
    read.whole_items = True
    assert orjson.loads(engine.read_range(read).items[0])["extra"] == {"S": "x"}


def test_index_key_types_are_checked(engine):
    result = put(engine, "p", 1, score={"S": "3"})
    assert isinstance(result.error, ValidationException)
    assert result.error.message == ("One or more parameter values were invalid: Type mismatch for Index Key score "
                                    "Expected: N Actual: S IndexName: by_score")
    result = put(engine, "p", 1, city={"S": ""})
    assert "IndexName: by_city, IndexKey: city" in result.error.message
    result = update(engine, "p", 1, "SET age = :a", {":a": {"SS": ["1"]}})
    assert "Type mismatch for Index Key age Expected: N Actual: SS IndexName: by_city" in result.error.message
    assert engine.statistics().writes == 0


def test_item_collections_are_measured_and_bounded(engine):
    first = put(engine, "p", 1, score={"N": "1"}, blob={"S": "x" * 500})
    assert first.collection_size_bytes > 500
    second = put(engine, "p", 2, blob={"S": "y" * 500})
    assert second.collection_size_bytes > first.collection_size_bytes
    assert put(engine, "q", 1, blob={"S": "z" * 500}).collection_size_bytes < second.collection_size_bytes
    full = put(engine, "p", 3, blob={"S": "w" * 1500})
    assert isinstance(full.error, ItemCollectionSizeLimitExceededException)
    assert full.error.message == "Collection size exceeded."
    shrink = put(engine, "p", 2, blob={"S": "y"})  # smaller writes are allowed even near the limit
    assert shrink.error is None and shrink.collection_size_bytes < second.collection_size_bytes
    gone = delete(engine, "p", 1)
    assert gone.collection_size_bytes == item_size({**key_of("p", 2), "blob": {"S": "y"}})


async def test_group_commit_keeps_local_entries_and_collections_in_step(tmp_path):
    engine = Engine(str(tmp_path / "sync"), node_id="n1", sync=True)
    engine.catalog_put(catalog(BY_SCORE))
    try:
        ops = []
        for sk in range(4):
            key = key_of("p", sk)
            item = {**key, "score": {"N": str(10 - sk)}}
            ops.append(ItemOp(OpKind.PUT, TABLE, encode_item_key(TABLE, SCHEMA, key), key, item=item))
        results, durable = engine.execute_many(ops)  # one group: each write sees the ones before it
        await durable
        sizes = [r.collection_size_bytes for r in results]
        assert sizes == sorted(sizes) and len(set(sizes)) == 4
        assert [i["sk"]["N"] for i in index_items(engine, BY_SCORE, "p")] == ["3", "2", "1", "0"]
        assert engine._pending_meta == {}
    finally:
        await engine.aclose()


def test_dropping_an_index_deletes_its_entries(engine):
    put(engine, "p", 1, score={"N": "1"}, tag={"S": "t"})
    engine.catalog_put(catalog(BY_TAG, BY_CITY, revision=2))
    assert raw_entries(engine, BY_SCORE.index_id) == [] and len(raw_entries(engine, BY_TAG.index_id)) == 1
    assert BY_SCORE.index_id not in engine.table_stats(TABLE).indexes


# --- global entries at their owner ----------------------------------------------------------


def _entry(key: bytes, hlc: int, item: dict | None) -> IndexEntry:
    stamp = VersionStamp(hlc, "r").pack()
    if item is None:
        return IndexEntry(BY_CITY.index_id, key, stamp, None)
    return IndexEntry(BY_CITY.index_id, key, stamp, orjson.dumps(item), item_size(item))


def test_owner_never_lets_an_older_entry_win(engine):
    item = {"city": {"S": "c"}, "age": {"N": "1"}, **key_of("p", 1)}
    key = encode_index_key(BY_CITY.index_id, BY_CITY.key_schema, encode_item_key(TABLE, SCHEMA, item)[8:], item)
    newer = {**item, "v": {"N": "2"}}
    engine.apply_index_entries([_entry(key, 20, newer)])
    engine.apply_index_entries([_entry(key, 10, item), _entry(key, 15, None)])  # late, older: ignored
    assert index_items(engine, BY_CITY, "c") == [newer]
    engine.apply_index_entries([_entry(key, 20, newer)])  # sent again: nothing changes
    assert engine.table_stats(TABLE).indexes[BY_CITY.index_id].item_count == 1
    engine.apply_index_entries([_entry(key, 30, None)])
    assert index_items(engine, BY_CITY, "c") == []
    assert engine.table_stats(TABLE).indexes[BY_CITY.index_id].item_count == 0


def test_owner_refuses_entries_of_an_index_it_does_not_know(engine):
    with pytest.raises(ResourceNotFoundException):
        engine.apply_index_entries([IndexEntry(4242, b"k", VersionStamp(1, "r").pack(), None)])
    with pytest.raises(ResourceNotFoundException):  # a local index never receives entries
        engine.apply_index_entries([IndexEntry(BY_SCORE.index_id, b"k", VersionStamp(1, "r").pack(), None)])


def test_index_scan_segments(engine):
    for i in range(20):
        item = {"city": {"S": f"c{i}"}, "age": {"N": "1"}, **key_of("p", i)}
        key = encode_index_key(BY_CITY.index_id, BY_CITY.key_schema, encode_item_key(TABLE, SCHEMA, item)[8:], item)
        engine.apply_index_entries([_entry(key, 1, item)])
    seen = []
    for segment in range(3):
        lower, upper = scan_segment_bounds(table_prefix(BY_CITY.index_id), segment, 3)
        seen += engine.read_range(RangeRead(RangeKind.INDEX, BY_CITY.index_id, lower, upper)).items
    assert len(seen) == 20 and len(set(seen)) == 20
