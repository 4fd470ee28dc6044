"""router/capacity.py: DynamoDB's capacity rules, asserted to the unit.

The tables of cases are AWS's own documented examples: the Developer Guide's
"Managing throughput settings on provisioned tables" (reads and writes), its
local and global secondary index chapters (index reads, fetches, index
writes), and the AWS CLI's examples of each data call
(``awscli/examples/dynamodb/*.rst``, table ``MusicCollection`` with the local
index ``AlbumTitleIndex`` on ``AlbumTitle``, projecting ``Genre`` and ``Year``).
The properties below them are hypothesis tests of rounding and monotonicity.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meridian.model import limits
from meridian.model.ops import (
    PROJECTION_INCLUDE,
    PROJECTION_KEYS_ONLY,
    IndexSpec,
    fetched_page_bytes,
    fetching_page_bytes,
)
from meridian.model.values import item_size
from meridian.router import capacity
from meridian.router.capacity import Consistency, Tally, Units, Usage
from meridian.router.table_record import Index, Table

KB = 1024
STRONG, EVENTUAL, TRANSACTIONAL = Consistency.STRONG, Consistency.EVENTUAL, Consistency.TRANSACTIONAL


def _table(*indexes: Index, key_schema=(("Artist", "S"), ("SongTitle", "S"))) -> Table:
    return Table(name="MusicCollection", table_id=7, uuid="u", key_schema=list(key_schema),
                 attribute_definitions=[], created_s=0.0, region="us-east-1", indexes=list(indexes))


def _index(name: str, key_schema, is_global: bool, projection: str = PROJECTION_INCLUDE,
           non_key: tuple[str, ...] = ()) -> Index:
    return Index(IndexSpec(name=name, index_id=hash(name) & 0xFFFF, is_global=is_global,
                           key_schema=tuple(key_schema), projection_type=projection, non_key_attributes=non_key))


ALBUM_TITLE_INDEX = _index("AlbumTitleIndex", (("Artist", "S"), ("AlbumTitle", "S")), False,
                           non_key=("Genre", "Year"))
MUSIC = _table(ALBUM_TITLE_INDEX)


def _s(text: str) -> dict:
    return {"S": text}


def _song(artist: str, title: str, **attributes: str) -> dict:
    return {"Artist": _s(artist), "SongTitle": _s(title), **{k: _s(v) for k, v in attributes.items()}}


# --- reads: the Developer Guide's examples ------------------------------------------------

READS = [
    # (what the guide says, bytes read, consistency, read units)
    ("a 3,500-byte item costs what a 4 KB one does", 3500, STRONG, 1.0),
    ("an 8 KB item: 2 units strongly consistent", 8 * KB, STRONG, 2.0),
    ("... 1 eventually consistent", 8 * KB, EVENTUAL, 1.0),
    ("... 4 transactional", 8 * KB, TRANSACTIONAL, 4.0),
    ("GetItem of 3.5 KB rounds to 4 KB", 3584, STRONG, 1.0),
    ("GetItem of 10 KB rounds to 12 KB", 10 * KB, STRONG, 3.0),
    ("Query of 10 items, 40.8 KB together, rounds to 44 KB", int(40.8 * KB), STRONG, 11.0),
    ("Query of 1500 items of 64 bytes: 96 KB", 1500 * 64, STRONG, 24.0),
    ("eventually consistent, 80 KB in all: 10 units", 80 * KB, EVENTUAL, 10.0),
    ("a missing item, strongly consistent: 1 unit", 0, STRONG, 1.0),
    ("a missing item, eventually consistent: 0.5", 0, EVENTUAL, 0.5),
    ("3 KB items read strongly consistent: 1 unit each", 3 * KB, STRONG, 1.0),
    ("a GSI query matching 8 entries of 2,000 bytes: 2 units", 8 * 2000, EVENTUAL, 2.0),
]


@pytest.mark.parametrize("what, size, consistency, units", READS, ids=[r[0] for r in READS])
def test_documented_reads(what, size, consistency, units):
    assert capacity.read_units(size, consistency) == units


def test_batch_get_rounds_each_item():
    """BatchGetItem of a 1.5 KB and a 6.5 KB item: 12 KB (4 + 8), not 8 KB."""
    tally = Tally(["MusicCollection"])
    for size in (int(1.5 * KB), int(6.5 * KB)):
        tally.add("MusicCollection", capacity.item_read(size, STRONG))
    assert tally.consumed("TOTAL") == [{"TableName": "MusicCollection", "CapacityUnits": 3.0}]


def test_lsi_fetch_example():
    """4 entries of 200 bytes (800 bytes: 4 KB) and 4 fetched items of 300
    bytes (4 KB each): 20 KB, charged 1 unit to the index, 4 to the table."""
    usage = capacity.page_read(ALBUM_TITLE_INDEX, 4 * 200, [300] * 4, STRONG)
    assert capacity.consumed("INDEXES", "MusicCollection", usage) == {
        "TableName": "MusicCollection", "CapacityUnits": 5.0, "Table": {"CapacityUnits": 4.0},
        "LocalSecondaryIndexes": {"AlbumTitleIndex": {"CapacityUnits": 1.0}},
    }
    assert capacity.consumed("TOTAL", "T", capacity.page_read(ALBUM_TITLE_INDEX, 800, [300] * 4, EVENTUAL)) == {
        "TableName": "T", "CapacityUnits": 2.5}
    # The same sum bounds such a page at 1 MB.
    assert fetching_page_bytes(800, sum(fetched_page_bytes(300) for _ in range(4))) == 20 * KB


# --- writes: the Developer Guide's examples --------------------------------------------------

WRITES = [
    ("a 500-byte item costs what a 1 KB one does", 500, False, 1.0),
    ("a 512-byte item: 1 unit", 512, False, 1.0),
    ("putting or deleting 1.6 KB rounds to 2 KB", int(1.6 * KB), False, 2.0),
    ("a 2 KB item: 2 units", 2 * KB, False, 2.0),
    ("... 4 transactional", 2 * KB, True, 4.0),
    ("deleting a missing item: 1 unit", 0, False, 1.0),
]


@pytest.mark.parametrize("what, size, transactional, units", WRITES, ids=[w[0] for w in WRITES])
def test_documented_writes(what, size, transactional, units):
    assert capacity.write_units(size, transactional) == units


def test_batch_write_rounds_each_item():
    """BatchWriteItem of a 500-byte and a 3.5 KB item: 5 KB (1 + 4), not 4 KB."""
    tally = Tally(["T"])
    for size in (500, int(3.5 * KB)):
        tally.add("T", capacity.item_write(_table(), size))
    assert tally.consumed("INDEXES") == [{"TableName": "T", "CapacityUnits": 5.0, "Table": {"CapacityUnits": 5.0}}]


# --- the AWS CLI's examples (MusicCollection, AlbumTitleIndex) ------------------------------


def test_cli_batch_write_item_three_puts_with_their_index():
    """batch-write-item, INDEXES: three new songs with an AlbumTitle: 3 table
    units and 3 in AlbumTitleIndex."""
    tally = Tally(["MusicCollection"])
    for artist, title, album in (("No One You Know", "Call Me Today", "Somewhat Famous"),
                                 ("Acme Band", "Happy Day", "Songs About Life"),
                                 ("No One You Know", "Scared of My Shadow", "Blue Sky Blues")):
        item = _song(artist, title, AlbumTitle=album)
        tally.add("MusicCollection", capacity.item_write(MUSIC, item_size(item), None, item, indexed=True))
    assert tally.consumed("INDEXES") == [{
        "TableName": "MusicCollection", "CapacityUnits": 6.0, "Table": {"CapacityUnits": 3.0},
        "LocalSecondaryIndexes": {"AlbumTitleIndex": {"CapacityUnits": 3.0}},
    }]


def test_cli_update_item_moving_the_index_key():
    """update-item SET Year, AlbumTitle, TOTAL: 3 units (the table's 1, and a
    delete and a put in AlbumTitleIndex)."""
    old = _song("Acme Band", "Happy Day", AlbumTitle="Songs About Life")
    new = {**old, "AlbumTitle": _s("Louder Than Ever"), "Year": {"N": "2015"}}
    usage = capacity.item_write(MUSIC, max(item_size(old), item_size(new)), old, new, indexed=True)
    assert capacity.consumed("TOTAL", "MusicCollection", usage) == {"TableName": "MusicCollection",
                                                                    "CapacityUnits": 3.0}


def test_cli_delete_item_with_its_index_entry():
    """delete-item, TOTAL: 2 units (the item, and its AlbumTitleIndex entry)."""
    old = _song("No One You Know", "Scared of My Shadow", AlbumTitle="Blue Sky Blues")
    usage = capacity.item_write(MUSIC, item_size(old), old, None, indexed=True)
    assert capacity.consumed("TOTAL", "MusicCollection", usage) == {"TableName": "MusicCollection",
                                                                    "CapacityUnits": 2.0}


def test_cli_reads():
    """get-item 0.5 / 1.0; batch-get-item of three songs, eventually
    consistent: 1.5; query of AlbumTitleIndex, INDEXES: the table at 0.0."""
    song = item_size(_song("Acme Band", "Happy Day", AlbumTitle="Songs About Life"))
    assert capacity.consumed("TOTAL", "MusicCollection", capacity.item_read(song, EVENTUAL)) == {
        "TableName": "MusicCollection", "CapacityUnits": 0.5}
    assert capacity.consumed("TOTAL", "MusicCollection", capacity.item_read(song, STRONG)) == {
        "TableName": "MusicCollection", "CapacityUnits": 1.0}
    tally = Tally(["MusicCollection"])
    for _ in range(3):
        tally.add("MusicCollection", capacity.item_read(song, EVENTUAL))
    assert tally.consumed("TOTAL") == [{"TableName": "MusicCollection", "CapacityUnits": 1.5}]
    page = capacity.page_read(ALBUM_TITLE_INDEX, 2 * song, [], EVENTUAL)
    assert capacity.consumed("INDEXES", "MusicCollection", page) == {
        "TableName": "MusicCollection", "CapacityUnits": 0.5, "Table": {"CapacityUnits": 0.0},
        "LocalSecondaryIndexes": {"AlbumTitleIndex": {"CapacityUnits": 0.5}},
    }


def test_cli_transact_get_items_splits_read_units():
    """transact-get-items of two songs: 4.0, also as ReadCapacityUnits."""
    tally = Tally(["MusicCollection"])
    for _ in range(2):
        tally.add("MusicCollection", capacity.item_read(100, TRANSACTIONAL))
    assert tally.consumed("TOTAL", split=True) == [
        {"TableName": "MusicCollection", "CapacityUnits": 4.0, "ReadCapacityUnits": 4.0}]
    assert tally.consumed("INDEXES", split=True) == [
        {"TableName": "MusicCollection", "CapacityUnits": 4.0, "ReadCapacityUnits": 4.0,
         "Table": {"CapacityUnits": 4.0, "ReadCapacityUnits": 4.0}}]


def test_nothing_when_not_asked():
    usage = capacity.item_read(10, STRONG)
    for mode in (None, "NONE"):
        assert capacity.consumed(mode, "T", usage) is None
        assert Tally(["T"]).consumed(mode) is None


# --- index writes: the secondary index chapters' rules --------------------------------------

GSI = _index("gsi", (("g", "S"),), True, PROJECTION_INCLUDE, ("proj",))
LSI = _index("lsi", (("pk", "S"), ("l", "S")), False, PROJECTION_KEYS_ONLY)
INDEXED = _table(GSI, LSI, key_schema=(("pk", "S"), ("sk", "S")))


def _item(**attributes: str) -> dict:
    return {"pk": _s("p"), "sk": _s("s"), **{k: _s(v) for k, v in attributes.items()}}


INDEX_WRITES = [
    # (the rule, old, new, {index: units})
    ("a new item defining the index key: one put", None, _item(g="G", l="L"), {"gsi": 1.0, "lsi": 1.0}),
    ("the index key defined by an update: one put", _item(), _item(g="G"), {"gsi": 1.0}),
    ("the index key changed (A to B): a delete and a put", _item(g="A"), _item(g="B"), {"gsi": 2.0}),
    ("the index key removed: one delete", _item(g="G", l="L"), _item(g="G"), {"lsi": 1.0}),
    ("in the index neither before nor after: nothing", _item(x="1"), _item(x="2"), {}),
    ("a projected attribute changed, the key not: one write", _item(g="G", proj="a"), _item(g="G", proj="b"),
     {"gsi": 1.0}),
    ("an attribute the index does not project changed: nothing", _item(g="G", l="L", x="a"),
     _item(g="G", l="L", x="b"), {}),
    ("the item deleted: its entries go", _item(g="G", l="L"), None, {"gsi": 1.0, "lsi": 1.0}),
    ("a moved entry pays each half on its own size", _item(g="A", proj="x" * 1500), _item(g="B", proj="y"),
     {"gsi": 3.0}),
    ("an entry changed in place pays the larger size", _item(g="G", proj="x" * 2000), _item(g="G", proj="y"),
     {"gsi": 2.0}),
    ("an entry's size is its projection's, not the item's", None, _item(g="G", other="x" * 3000),
     {"gsi": 1.0}),
    ("an empty key value is no entry", None, _item(g=""), {}),
]


@pytest.mark.parametrize("what, old, new, units", INDEX_WRITES, ids=[w[0] for w in INDEX_WRITES])
def test_index_write_rules(what, old, new, units):
    assert capacity.index_write_units(INDEXED, old, new) == units


def test_write_shapes_list_only_the_indexes_written():
    usage = capacity.item_write(INDEXED, 100, _item(g="A"), _item(g="B"), indexed=True)
    assert capacity.consumed("INDEXES", "T", usage) == {
        "TableName": "T", "CapacityUnits": 3.0, "Table": {"CapacityUnits": 1.0},
        "GlobalSecondaryIndexes": {"gsi": {"CapacityUnits": 2.0}},
    }
    unindexed = capacity.item_write(INDEXED, 100, _item(g="A"), _item(g="B"))
    assert capacity.consumed("INDEXES", "T", unindexed) == {"TableName": "T", "CapacityUnits": 1.0,
                                                            "Table": {"CapacityUnits": 1.0}}


def test_transactional_writes_split_write_units():
    usage = capacity.item_write(INDEXED, 100, None, _item(g="G"), indexed=True, transactional=True)
    assert capacity.consumed("INDEXES", "T", usage, split=True) == {
        "TableName": "T", "CapacityUnits": 3.0, "WriteCapacityUnits": 3.0,
        "Table": {"CapacityUnits": 2.0, "WriteCapacityUnits": 2.0},
        "GlobalSecondaryIndexes": {"gsi": {"CapacityUnits": 1.0, "WriteCapacityUnits": 1.0}},
    }


def test_tally_keeps_the_request_order_and_adds_up():
    tally = Tally(["b", "a"])
    tally.add("a", capacity.item_read(1, STRONG))
    tally.add("c", capacity.item_read(1, EVENTUAL))
    tally.add("b", capacity.item_write(INDEXED, 1, None, _item(l="L"), indexed=True))
    tally.add("b", capacity.item_write(INDEXED, 1, None, _item(l="M"), indexed=True))
    assert tally.consumed("INDEXES") == [
        {"TableName": "b", "CapacityUnits": 4.0, "Table": {"CapacityUnits": 2.0},
         "LocalSecondaryIndexes": {"lsi": {"CapacityUnits": 2.0}}},
        {"TableName": "a", "CapacityUnits": 1.0, "Table": {"CapacityUnits": 1.0}},
        {"TableName": "c", "CapacityUnits": 0.5, "Table": {"CapacityUnits": 0.5}},
    ]


# --- properties ------------------------------------------------------------------------------

sizes = st.integers(min_value=0, max_value=limits.ITEM_SIZE_BYTES_MAX * 4)
consistencies = st.sampled_from(list(Consistency))


@given(sizes, sizes, consistencies)
def test_reads_grow_with_size(a, b, consistency):
    low, high = sorted((a, b))
    assert capacity.read_units(low, consistency) <= capacity.read_units(high, consistency)


@given(sizes)
def test_reads_round_up_to_whole_4kb_units(size):
    blocks = capacity.read_blocks(size)
    unit = limits.READ_CAPACITY_UNIT_BYTES
    assert blocks >= 1 and blocks * unit >= size and (blocks == 1 or (blocks - 1) * unit < size)
    assert capacity.read_units(size, EVENTUAL) == blocks / 2
    assert capacity.read_units(size, TRANSACTIONAL) == 2 * capacity.read_units(size, STRONG) == 2 * blocks


@given(sizes)
def test_writes_round_up_to_whole_1kb_units(size):
    units = capacity.write_units(size)
    unit = limits.WRITE_CAPACITY_UNIT_BYTES
    assert units >= 1 and units * unit >= size and (units == 1 or (units - 1) * unit < size)
    assert capacity.write_units(size, transactional=True) == 2 * units


@given(st.lists(st.integers(min_value=1, max_value=limits.ITEM_SIZE_BYTES_MAX), min_size=1, max_size=50),
       consistencies)
def test_a_page_never_costs_more_than_its_items_read_one_by_one(item_sizes, consistency):
    page = capacity.read_units(sum(item_sizes), consistency)
    assert page <= sum(capacity.read_units(size, consistency) for size in item_sizes)
    assert page == capacity.fetch_read_units([sum(item_sizes)], consistency)
    assert capacity.fetch_read_units(item_sizes, consistency) == sum(
        capacity.read_units(size, consistency) for size in item_sizes)


values = st.sampled_from(["", "A", "B", "x" * 700, "y" * 1600])
items = st.one_of(st.none(), st.builds(
    lambda g, l, proj, other: _item(**{k: v for k, v in (("g", g), ("l", l), ("proj", proj), ("other", other))
                                       if v is not None}),
    st.one_of(st.none(), values), st.one_of(st.none(), values), st.one_of(st.none(), values),
    st.one_of(st.none(), values)))


@given(items, items)
def test_index_writes_are_symmetric_and_bounded(old, new):
    """Undoing a write costs its indexes what doing it did; no index pays more
    than a delete plus a put of its entries, nor anything when nothing changes."""
    forward = capacity.index_write_units(INDEXED, old, new)
    assert forward == capacity.index_write_units(INDEXED, new, old)
    assert capacity.index_write_units(INDEXED, new, new) == {}
    for index in INDEXED.indexes:
        before, after = capacity.index_entry(INDEXED, index, old), capacity.index_entry(INDEXED, index, new)
        ceiling = sum(capacity.write_units(item_size(e)) for e in (before, after) if e is not None)
        assert forward.get(index.name, 0.0) <= ceiling


@given(items, items, sizes, st.sampled_from(capacity.CAPACITY_MODES))
def test_total_is_the_sum_of_its_parts(old, new, size, mode):
    usage = capacity.item_write(INDEXED, size, old, new, indexed=True)
    usage.add(capacity.page_read(GSI, size, [], EVENTUAL))
    shaped = capacity.consumed(mode, "T", usage)
    parts = [usage.table, *usage.local_indexes.values(), *usage.global_indexes.values()]
    assert shaped["CapacityUnits"] == sum(units.total for units in parts) == usage.total.total
    if mode == "INDEXES":
        assert shaped["Table"] == {"CapacityUnits": usage.table.total}
        listed = {**shaped.get("LocalSecondaryIndexes", {}), **shaped.get("GlobalSecondaryIndexes", {})}
        assert shaped["CapacityUnits"] == shaped["Table"]["CapacityUnits"] + sum(
            entry["CapacityUnits"] for entry in listed.values())
    else:
        assert set(shaped) == {"TableName", "CapacityUnits"}


def test_units_add():
    units = Units(1.0, 2.0)
    units.add(Units(0.5, 0.0))
    assert (units.read, units.write, units.total) == (1.5, 2.0, 3.5)
    usage = Usage()
    usage.index(GSI).read += 1.0
    usage.add(usage)
    assert usage.global_indexes == {"gsi": Units(2.0, 0.0)}
