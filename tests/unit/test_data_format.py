"""The on-disk format of data folders (``node/data_format.py``) and cursor folders.

A folder written by the previous release's code (``tests/fixtures/format1``,
made by commit 7e82490's own ``meridian serve``) opens, is migrated in
place and reads back item for item; a crash in the middle of a migration
leaves a folder the next open migrates again; a folder from a newer
Meridian is refused, whatever it holds.  Tests copy the fixture first:
opening a folder migrates it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import orjson
import pytest
from rocksdict import AccessType, Options, Rdict

from meridian.model import limits
from meridian.model.errors import InternalServerError
from meridian.model.folders import DataFormatError, FolderInUse
from meridian.model.records import is_tombstone, pack_u64, record_item_json
from meridian.node import data_format
from meridian.node.database import open_database
from meridian.node.engine import Engine
from meridian.replication.cursors import CURSOR_FORMAT_CURRENT, FileCursorStore

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
EXPECTED = json.loads((FIXTURES / "format1.json").read_text())


@pytest.fixture
def format1(tmp_path) -> str:
    path = tmp_path / "format1"
    shutil.copytree(FIXTURES / "format1", path)
    return str(path)


def _cause(err: BaseException) -> BaseException:
    assert isinstance(err, InternalServerError) and err.__cause__ is not None
    return err.__cause__


def _stamp(path: str) -> int | None:
    db = Rdict(path, Options(raw_mode=True), column_families={n: Options(raw_mode=True) for n in Rdict.list_cf(path)
                                                             if n != "default"}, access_type=AccessType.read_only())  # fmt: skip
    try:
        value = db.get_column_family("meta").get(data_format.META_FORMAT)
    finally:
        db.close()
    return None if value is None else int.from_bytes(value, "big")


def _tombstones(engine: Engine) -> int:
    return sum(is_tombstone(record) for _, record in engine._items.items())


def _items_by_table(engine: Engine) -> dict[str, list[dict]]:
    out = {}
    for entry in engine.catalog_list():
        rows = engine.table_items(entry.description["table_id"], b"", 1000, 1 << 30)
        out[entry.name] = [orjson.loads(record_item_json(record)) for _, record in rows]
    return out


def _canonical(items: list[dict]) -> list[str]:
    """Items compared whatever their order (sets' members sorted)."""

    def value(v: dict) -> object:
        (tag, inner), = v.items()
        if tag in ("SS", "NS", "BS"):
            return {tag: sorted(inner)}
        if tag == "L":
            return {tag: [value(x) for x in inner]}
        if tag == "M":
            return {tag: {k: value(x) for k, x in inner.items()}}
        return v

    return sorted(json.dumps({k: value(v) for k, v in item.items()}, sort_keys=True) for item in items)


def test_the_fixture_is_format_1_as_written():
    assert sorted(Rdict.list_cf(str(FIXTURES / "format1"))) == ["default", "index", "items", "log", "meta", "scan"]
    assert _stamp(str(FIXTURES / "format1")) is None


@pytest.mark.parametrize("replicated", [True, False])
def test_a_format_1_folder_opens_and_every_item_reads_back(format1, replicated):
    engine = Engine(format1, node_id="n", replicated=replicated)
    try:
        found = _items_by_table(engine)
        assert set(found) == set(EXPECTED["tables"])
        for table, items in EXPECTED["tables"].items():
            assert _canonical(found[table]) == _canonical(items), table
        # Deletes kept a tombstone in format 1; only a node no replicator reads drops them.
        assert _tombstones(engine) == (len(EXPECTED["deleted"]) if replicated else 0)
        for entry in engine.catalog_list():  # the statistics format 1 kept still count the live items
            assert engine.table_stats(entry.description["table_id"]).item_count == len(EXPECTED["tables"][entry.name])
    finally:
        engine.close()
    assert _stamp(format1) == data_format.FORMAT_CURRENT
    assert "stream" in Rdict.list_cf(format1)


def test_a_migration_shows_itself(format1, monkeypatch):
    seen = []

    class Display(data_format.MigrationDisplay):
        def started(self, path, found, target):
            seen.append(("started", found, target))

        def step(self, description, total_keys):
            seen.append(("step", description))

            class Progress(data_format.StepProgress):
                def advance(self, keys):
                    seen.append(("advance", keys))

            return Progress()

        def finished(self, path, target, seconds):
            seen.append(("finished", target))

    monkeypatch.setattr(limits, "FORMAT_MIGRATION_PROGRESS_KEYS_MIN", 1)
    monkeypatch.setattr(limits, "FORMAT_MIGRATION_PROGRESS_KEYS_STEP", 10)
    previous = data_format.set_display(Display())
    try:
        Engine(format1, node_id="n", replicated=False).close()
    finally:
        data_format.set_display(previous)
    assert seen[0] == ("started", 1, 2) and seen[-1] == ("finished", 2)
    assert seen[1] == ("step", "dropping the tombstones of deleted items")
    items = sum(len(t) for t in EXPECTED["tables"].values()) + len(EXPECTED["deleted"])
    assert sum(event[1] for event in seen if event[0] == "advance") == items  # every key of items, counted once


def test_a_crash_mid_migration_leaves_the_old_format_and_the_next_open_finishes(format1, monkeypatch):
    """The new format is written only after the migration's writes: a
    migration that dies half-way (here: after its first write batch) leaves
    the folder unstamped, still format 1, and the next open migrates it."""
    monkeypatch.setattr(limits, "TOMBSTONE_DELETES_PER_WRITE_MAX", 1)
    real_write = Rdict.write
    writes = []

    class Crash(Exception):
        pass

    def write_then_die(self, batch, *args):
        writes.append(batch)
        real_write(self, batch, *args)
        raise Crash

    monkeypatch.setattr(Rdict, "write", write_then_die)
    with pytest.raises(InternalServerError) as failed:
        Engine(format1, node_id="n", replicated=False)
    assert isinstance(_cause(failed.value), Crash) and len(writes) == 1
    del failed
    monkeypatch.setattr(Rdict, "write", real_write)
    assert _stamp(format1) is None  # no format written: still a format 1 folder
    engine = Engine(format1, node_id="n", replicated=False)
    try:
        assert _tombstones(engine) == 0
        assert sum(map(len, _items_by_table(engine).values())) == sum(len(t) for t in EXPECTED["tables"].values())
    finally:
        engine.close()
    assert _stamp(format1) == data_format.FORMAT_CURRENT


def test_a_new_folder_is_recorded_at_once(tmp_path):
    Engine(str(tmp_path / "new"), node_id="n").close()
    assert _stamp(str(tmp_path / "new")) == data_format.FORMAT_CURRENT


def test_an_unrecorded_folder_with_streams_is_migrated_too(tmp_path):
    """Folders written between the stream column family and this record have
    no record either: format 1 for this build, whose migration does no harm there."""
    path = str(tmp_path / "d")
    db = open_database(path)
    db.get_column_family("meta").delete(data_format.META_FORMAT)
    db.close()
    del db
    assert _stamp(path) is None
    Engine(path, node_id="n").close()
    assert _stamp(path) == data_format.FORMAT_CURRENT


def _future(path: str, *, extra_column_family: bool) -> None:
    db = open_database(path)
    db.get_column_family("meta").put(data_format.META_FORMAT, pack_u64(data_format.FORMAT_CURRENT + 1))
    if extra_column_family:
        db.create_column_family("transactions", Options(raw_mode=True))
    db.close()
    del db


@pytest.mark.parametrize("extra_column_family", [False, True], ids=["same-families", "a-new-family"])
def test_a_folder_from_a_newer_meridian_is_refused(tmp_path, extra_column_family):
    path = str(tmp_path / "d")
    _future(path, extra_column_family=extra_column_family)
    with pytest.raises(InternalServerError) as refused:
        Engine(path, node_id="n")
    cause = _cause(refused.value)
    assert isinstance(cause, DataFormatError) and cause.too_new
    assert (cause.found, cause.newest) == (data_format.FORMAT_CURRENT + 1, data_format.FORMAT_CURRENT)
    del refused, cause
    assert _stamp(path) == data_format.FORMAT_CURRENT + 1  # untouched


def test_a_folder_older_than_any_migration_is_refused(format1, monkeypatch):
    monkeypatch.setattr(data_format, "FORMAT_OLDEST_MIGRATED", 2)
    with pytest.raises(InternalServerError) as refused:
        Engine(format1, node_id="n")
    cause = _cause(refused.value)
    assert isinstance(cause, DataFormatError) and not cause.too_new and cause.found == 1


def test_the_pid_file_names_the_user_and_goes_with_it(tmp_path):
    path = str(tmp_path / "d")
    engine = Engine(path, node_id="n")
    assert data_format.read_pid_file(path) == os.getpid()
    try:
        with pytest.raises(InternalServerError) as refused:
            Engine(path, node_id="again")
        cause = _cause(refused.value)
        assert isinstance(cause, FolderInUse) and cause.pid == os.getpid()
    finally:
        engine.close()
    assert data_format.read_pid_file(path) is None


# --- the replicator's cursor folder ---------------------------------------------------


def test_a_cursor_folder_records_its_format(tmp_path):
    FileCursorStore(str(tmp_path / "cursors.json"))
    assert (tmp_path / "format").read_text().strip() == str(CURSOR_FORMAT_CURRENT)
    (tmp_path / "format").write_text(f"{CURSOR_FORMAT_CURRENT + 1}\n")
    with pytest.raises(DataFormatError) as refused:
        FileCursorStore(str(tmp_path / "cursors.json"))
    assert refused.value.too_new and refused.value.what == "cursor folder"


def test_a_cursor_folder_is_one_replicator_s(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys
            from meridian.replication.cursors import FileCursorStore
            FileCursorStore({str(tmp_path / "cursors.json")!r})
            print("locked", flush=True)
            sys.stdin.read()
        """)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(FolderInUse) as refused:
            FileCursorStore(str(tmp_path / "cursors.json"))
        assert refused.value.pid == holder.pid
    finally:
        holder.stdin.close()
        holder.wait(30)
    FileCursorStore(str(tmp_path / "cursors.json"))  # free again once it is gone
