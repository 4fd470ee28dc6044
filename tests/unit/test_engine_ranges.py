"""Range reads on a real RocksDB: Query bounds, page bounds, the scan-order index.

Key ranges come from the router's own ``query_range`` (key condition -> item
keys), so these tests check the pair: the bounds it computes for every
sort-key operator, and the engine's reads within them, against a plain
model (every item, filtered with ``KeyCondition.sort_key_matches``).
"""

from __future__ import annotations

import asyncio
import base64
import itertools
from decimal import Decimal

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meridian.model import limits
from meridian.model.expressions import KeyCondition
from meridian.model.keycodec import encode_item_key, partition_hash, prefix_end, table_prefix
from meridian.model.ops import (
    ItemOp,
    OpKind,
    RangeKind,
    RangeRead,
    scan_position,
    scan_position_item_key,
    scan_segment_bounds,
)
from meridian.model.values import item_size
from meridian.node.engine import Engine
from meridian.router.actions.query_scan import query_range, read_merged
from meridian.model.ring import Ring

TABLE = 11
OTHER_TABLE = 12
SCHEMA_N = [("pk", "S"), ("sk", "N")]
SCHEMA_S = [("pk", "S"), ("sk", "S")]
SCHEMA_B = [("pk", "S"), ("sk", "B")]
SCHEMA_HASH = [("pk", "S")]

NUMBERS = ["-1E+10", "-10", "-1.5", "-1", "-0.5", "-1E-10", "0", "1E-10", "0.001", "0.5", "1", "1.5", "2",
           "10", "10.5", "100", "1E+10", "12345678901234567890123456789012345678"]
STRINGS = ["", "a", "a\x00", "a\x00b", "aa", "ab", "abc", "b", "ba", "é", "éa", "z", "\U0001f600", "\uffff"]
BINARIES = [b"", b"\x00", b"\x00\x00", b"\x00\xff", b"\x01", b"a", b"ab", b"\x7f", b"\xfe", b"\xff", b"\xff\x00",
            b"\xff\xff", b"\xff\xff\x01"]


@pytest.fixture
def engine(tmp_path):
    e = Engine(str(tmp_path / "db"), node_id="n1")
    yield e
    e.close()


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def key_item(schema, pk, sk=None) -> dict:
    out = {schema[0][0]: {schema[0][1]: pk}}
    if len(schema) > 1:
        out[schema[1][0]] = {schema[1][1]: sk}
    return out


def put(engine: Engine, schema, pk, sk=None, table_id: int = TABLE, **attrs) -> dict:
    key = key_item(schema, pk, sk)
    item = dict(key)
    item.update({name: {"S": value} for name, value in attrs.items()})
    op = ItemOp(OpKind.PUT, table_id, encode_item_key(table_id, schema, key), key, item=item)
    assert engine.execute(op).error is None
    return item


def remove(engine: Engine, schema, pk, sk=None, table_id: int = TABLE) -> None:
    key = key_item(schema, pk, sk)
    op = ItemOp(OpKind.DELETE, table_id, encode_item_key(table_id, schema, key), key)
    assert engine.execute(op).error is None


def query(engine: Engine, schema, condition: KeyCondition, reverse: bool = False, **kw):
    lower, upper = query_range(TABLE, schema, condition)
    return engine.read_range(RangeRead(RangeKind.QUERY, TABLE, lower, upper, reverse=reverse, **kw))


def scan(engine: Engine, table_id: int = TABLE, segment: int = 0, total: int = 1, **kw):
    lower, upper = scan_segment_bounds(table_prefix(table_id), segment, total)
    return engine.read_range(RangeRead(RangeKind.SCAN, table_id, lower, upper, **kw))


def sort_keys(result, sk_type: str) -> list:
    return [orjson.loads(item)["sk"][sk_type] for item in result.items]


def scan_entries(engine: Engine, table_id: int = TABLE) -> list[bytes]:
    """The scan index's raw entries (white box: stale entries are invisible to reads)."""
    prefix = table_prefix(table_id)
    return [k for k in engine._scan.keys(from_key=prefix) if k.startswith(prefix)]


# --- Query bounds for every operator ---------------------------------------------


def _conditions(sk_type: str, values: list) -> list[KeyCondition]:
    out = [KeyCondition("pk", {"S": "p"}, None, None, ())]
    for value in values:
        for op in ("EQ", "LT", "LE", "GT", "GE"):
            out.append(KeyCondition("pk", {"S": "p"}, "sk", op, ({sk_type: value},)))
    for low in values[::3]:
        for high in values[::4]:
            out.append(KeyCondition("pk", {"S": "p"}, "sk", "BETWEEN", ({sk_type: low}, {sk_type: high})))
    return out


def _check_every_condition(engine, schema, sk_type, values, order_key, extra_conditions=()):
    for value in values:
        put(engine, schema, "p", value)
        put(engine, schema, "o", value)  # a neighbouring partition that must never show up
    put(engine, schema, "q", values[0])
    ordered = sorted(values, key=order_key)
    for condition in [*_conditions(sk_type, values), *extra_conditions]:
        expected = [v for v in ordered if condition.sort_key_matches({sk_type: v})]
        if condition.sk_op == "BETWEEN" and order_key(condition.sk_values[0][sk_type]) > order_key(
            condition.sk_values[1][sk_type]
        ):
            expected = []
        assert sort_keys(query(engine, schema, condition), sk_type) == expected, condition
        assert sort_keys(query(engine, schema, condition, reverse=True), sk_type) == expected[::-1], condition


def test_number_sort_keys_every_operator_forward_and_backward(engine):
    _check_every_condition(engine, SCHEMA_N, "N", NUMBERS, Decimal)


def test_string_sort_keys_every_operator_and_begins_with(engine):
    values = [s for s in STRINGS if s]
    prefixes = ["a", "a\x00", "ab", "é", "\U0001f600", "\uffff", "zz", "b"]
    begins = [KeyCondition("pk", {"S": "p"}, "sk", "BEGINS_WITH", ({"S": p},)) for p in prefixes]
    _check_every_condition(engine, SCHEMA_S, "S", values, lambda s: s.encode("utf-8", "surrogatepass"), begins)


def test_binary_sort_keys_every_operator_and_begins_with(engine):
    values = [b64(b) for b in BINARIES if b]
    prefixes = [b"\x00", b"\x00\xff", b"a", b"\xff", b"\xff\xff", b"\xfe"]
    begins = [KeyCondition("pk", {"S": "p"}, "sk", "BEGINS_WITH", ({"B": b64(p)},)) for p in prefixes]
    _check_every_condition(engine, SCHEMA_B, "B", values, base64.b64decode, begins)


def test_hash_only_table_query_reads_its_one_item(engine):
    put(engine, SCHEMA_HASH, "p", v="1")
    put(engine, SCHEMA_HASH, "pp", v="2")
    lower, upper = query_range(TABLE, SCHEMA_HASH, KeyCondition("pk", {"S": "p"}, None, None, ()))
    result = engine.read_range(RangeRead(RangeKind.QUERY, TABLE, lower, upper))
    assert [orjson.loads(i)["v"]["S"] for i in result.items] == ["1"]
    assert not result.more


# --- page bounds, filter, projection ----------------------------------------------


def test_items_max_stops_the_read_and_names_the_last_item(engine):
    for n in range(10):
        put(engine, SCHEMA_N, "p", str(n))
    everything = KeyCondition("pk", {"S": "p"}, None, None, ())
    page = query(engine, SCHEMA_N, everything, items_max=4)
    assert sort_keys(page, "N") == ["0", "1", "2", "3"] and page.more and page.scanned == 4
    assert page.last_position == encode_item_key(TABLE, SCHEMA_N, key_item(SCHEMA_N, "p", "3"))
    backwards = query(engine, SCHEMA_N, everything, reverse=True, items_max=3)
    assert sort_keys(backwards, "N") == ["9", "8", "7"] and backwards.more
    exact = query(engine, SCHEMA_N, everything, items_max=10)
    assert exact.more  # DynamoDB too: reaching Limit on the last item still gives a LastEvaluatedKey
    assert not query(engine, SCHEMA_N, everything, items_max=11).more


def test_bytes_max_includes_the_item_that_crosses_it(engine):
    sizes = [item_size(put(engine, SCHEMA_N, "p", str(n), blob="x" * 1000)) for n in range(10)]
    everything = KeyCondition("pk", {"S": "p"}, None, None, ())
    page = query(engine, SCHEMA_N, everything, bytes_max=sum(sizes[:3]) + 1)
    assert page.scanned == 4 and page.more and page.bytes_read == sum(sizes[:4])
    page = query(engine, SCHEMA_N, everything, bytes_max=sum(sizes[:3]))
    assert page.scanned == 3 and page.more


def test_filter_counts_items_read_and_returns_matches(engine):
    for n in range(6):
        put(engine, SCHEMA_N, "p", str(n), colour="red" if n % 2 else "blue")
    everything = KeyCondition("pk", {"S": "p"}, None, None, ())
    page = query(engine, SCHEMA_N, everything, filter="colour = :c", values={":c": {"S": "red"}},
                 projection="sk", items_max=5)
    assert page.scanned == 5 and page.count == 2 and page.more
    assert [orjson.loads(i) for i in page.items] == [{"sk": {"N": "1"}}, {"sk": {"N": "3"}}]
    counted = query(engine, SCHEMA_N, everything, filter="colour = :c", values={":c": {"S": "red"}},
                    count_only=True)
    assert counted.items == [] and counted.count == 3 and counted.scanned == 6


def test_detail_reports_every_item_read(engine):
    for n in range(4):
        put(engine, SCHEMA_N, "p", str(n), colour="red" if n % 2 else "blue")
    page = scan(engine, filter="colour = :c", values={":c": {"S": "red"}}, detail=True)
    assert page.scanned == 4 and len(page.positions) == 4 and len(page.sizes) == 4
    assert list(page.hits).count(1) == 2 == len(page.items)
    assert page.positions == sorted(page.positions) and page.last_position == page.positions[-1]


def test_key_condition_placeholders_count_as_used_on_the_node(engine):
    put(engine, SCHEMA_N, "p", "1", colour="red")
    page = query(engine, SCHEMA_N, KeyCondition("pk", {"S": "p"}, None, None, ()), key_condition="pk = :p",
                 filter="colour = :c", values={":p": {"S": "p"}, ":c": {"S": "red"}})
    assert page.count == 1


# --- the scan-order index --------------------------------------------------------------


def test_scan_index_follows_put_update_delete(engine):
    put(engine, SCHEMA_N, "a", "1")
    put(engine, SCHEMA_N, "a", "1", v="again")  # replaced: still one entry
    key = key_item(SCHEMA_N, "b", "2")
    engine.execute(ItemOp(OpKind.UPDATE, TABLE, encode_item_key(TABLE, SCHEMA_N, key), key))  # creates
    engine.execute(ItemOp(OpKind.UPDATE, TABLE, encode_item_key(TABLE, SCHEMA_N, key), key))  # exists
    assert len(scan_entries(engine)) == 2
    remove(engine, SCHEMA_N, "a", "1")
    remove(engine, SCHEMA_N, "a", "1")  # deleting what is gone changes nothing
    remove(engine, SCHEMA_N, "zz", "9")
    entries = scan_entries(engine)
    expected_key = encode_item_key(TABLE, SCHEMA_N, key)
    assert entries == [scan_position(expected_key, partition_hash("S", "b"))]
    assert scan_position_item_key(entries[0]) == expected_key
    put(engine, SCHEMA_N, "a", "1")  # back after a tombstone
    assert len(scan_entries(engine)) == 2
    assert scan(engine).count == 2


def test_drop_table_removes_its_scan_entries_only(engine):
    for n in range(5):
        put(engine, SCHEMA_N, "p", str(n))
        put(engine, SCHEMA_N, "p", str(n), table_id=OTHER_TABLE)
    engine.drop_table(TABLE)
    assert scan_entries(engine) == []
    assert scan(engine).scanned == 0
    assert scan(engine, table_id=OTHER_TABLE).scanned == 5


def test_scan_index_survives_a_restart(tmp_path):
    path = str(tmp_path / "db")
    first = Engine(path, node_id="n1")
    for n in range(5):
        put(first, SCHEMA_N, f"p{n}", "1")
    first.close()
    second = Engine(path, node_id="n1")
    try:
        assert scan(second).count == 5
    finally:
        second.close()


def test_scan_reads_in_partition_hash_order_and_resumes_after_a_position(engine):
    for n in range(30):
        put(engine, SCHEMA_N, f"p{n}", "1")
        put(engine, SCHEMA_N, f"p{n}", "2")
    whole = scan(engine, detail=True)
    hashes = [partition_hash("S", orjson.loads(i)["pk"]["S"]) for i in whole.items]
    assert hashes == sorted(hashes)
    first = scan(engine, items_max=25)
    lower = first.last_position + b"\x00"
    _, upper = scan_segment_bounds(table_prefix(TABLE), 0, 1)
    rest = engine.read_range(RangeRead(RangeKind.SCAN, TABLE, lower, upper))
    assert first.items + rest.items == whole.items


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    partitions=st.lists(st.one_of(st.text(min_size=1, max_size=6), st.integers(-10**6, 10**6).map(str)),
                        min_size=0, max_size=40, unique=True),
    total=st.integers(1, 8),
)
def test_segments_are_a_disjoint_cover_of_the_table(tmp_path_factory, partitions, total):
    engine = Engine(str(tmp_path_factory.mktemp("seg") / "db"), node_id="n1")
    try:
        for pk in partitions:
            put(engine, SCHEMA_N, pk, "1")
            put(engine, SCHEMA_N, pk, "2")
        seen = []
        for segment in range(total):
            page = scan(engine, segment=segment, total=total)
            assert not page.more
            seen.extend((orjson.loads(i)["pk"]["S"], orjson.loads(i)["sk"]["N"]) for i in page.items)
        assert sorted(seen) == sorted((pk, sk) for pk in partitions for sk in ("1", "2"))
    finally:
        engine.close()


def test_segment_bounds_split_the_hash_space_evenly():
    prefix = table_prefix(TABLE)
    for total in (1, 2, 3, 7, 1_000_000):
        bounds = [scan_segment_bounds(prefix, s, total) for s in range(min(total, 5))]
        assert bounds[0][0] == prefix + bytes(8)
        for (_, upper), (lower, _) in zip(bounds, bounds[1:]):
            assert upper == lower
    assert scan_segment_bounds(prefix, 2, 3)[1] == prefix_end(prefix)


async def test_acknowledged_group_committed_writes_are_read(tmp_path):
    engine = Engine(str(tmp_path / "db"), node_id="n1", sync=True)
    try:
        ops = []
        for n in range(5):
            key = key_item(SCHEMA_N, "p", str(n))
            ops.append(ItemOp(OpKind.PUT, TABLE, encode_item_key(TABLE, SCHEMA_N, key), key, item=key))
        results = await asyncio.gather(*(engine.execute_async(op) for op in ops))
        assert all(r.error is None for r in results)
        assert engine.statistics().commit_writes_max > 1  # they did share a group commit
        assert sort_keys(query(engine, SCHEMA_N, KeyCondition("pk", {"S": "p"}, None, None, ())), "N") == [
            "0", "1", "2", "3", "4"]
        assert scan(engine).count == 5
    finally:
        await engine.aclose()



class Nodes:
    """Several engines behind the router's ring: the part of ``Storage`` a Scan uses."""

    def __init__(self, root, count: int) -> None:
        self.node_ids = [f"node-{i}" for i in range(count)]
        self.engines = {node: Engine(str(root / node), node_id=node) for node in self.node_ids}
        self.ring = Ring(self.node_ids)

    def put(self, table_id: int, pk: str, sk: str, blob: str = "") -> None:
        engine = self.engines[self.ring.owner(partition_hash("S", pk))]
        put(engine, SCHEMA_N, pk, sk, table_id=table_id, blob=blob)

    async def read_range(self, node_id, read):
        return self.engines[node_id].read_range(read)

    def close(self) -> None:
        for engine in self.engines.values():
            engine.close()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Three engines placed by a ring, and one engine holding everything; a new table per example."""
    root = tmp_path_factory.mktemp("merge")
    nodes = Nodes(root, 3)
    single = Engine(str(root / "single"), node_id="single")
    yield nodes, single, itertools.count(1000)
    nodes.close()
    single.close()


def _pages(read_page, table_id: int, **kw) -> list:
    lower, upper = scan_segment_bounds(table_prefix(table_id), 0, 1)
    pages = []
    while True:
        page = read_page(RangeRead(RangeKind.SCAN, table_id, lower, upper, **kw))
        pages.append(page)
        if not page.more:
            return pages
        lower = page.last_position + b"\x00"


def _summary(pages: list) -> list:
    return [(p.items, p.count, p.scanned, p.bytes_read, p.last_position) for p in pages]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    # A few partitions, one of them possibly huge, so that one node's stream runs dry and is refilled.
    sizes=st.lists(st.integers(1, 60), min_size=1, max_size=12),
    limit=st.integers(0, 50),
    bytes_max=st.sampled_from([limits.PAGE_BYTES_MAX, 200, 37]),
    filtered=st.booleans(),
)
def test_merged_pages_equal_one_engine_and_cut_where_it_does(cluster, sizes, limit, bytes_max, filtered):
    nodes, single, table_ids = cluster
    table_id = next(table_ids)
    for p, size in enumerate(sizes):
        for s in range(size):
            nodes.put(table_id, f"p{p}", str(s), blob="x" * (s % 7))
            put(single, SCHEMA_N, f"p{p}", str(s), table_id=table_id, blob="x" * (s % 7))
    kw = {"items_max": limit, "bytes_max": bytes_max}
    if filtered:
        kw.update(filter="size(#b) > :n", names={"#b": "blob"}, values={":n": {"N": "3"}})
    merged = _pages(lambda read: asyncio.run(read_merged(nodes, read)), table_id, **kw)
    alone = _pages(single.read_range, table_id, **kw)
    assert _summary(merged) == _summary(alone)
    assert sum(p.scanned for p in merged) == sum(sizes)
