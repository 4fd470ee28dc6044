"""Replica management (``replication/replicas.py``) against a fake region."""

from __future__ import annotations

import copy

import orjson

from meridian.model.ops import CatalogEntry
from meridian.model.stamps import VersionStamp
from meridian.node.records import pack_record
from meridian.replication.replicas import ReplicaManager, record_change

TABLE_ID = 42


class FakeNodes:
    """The region's nodes as the manager sees them: a catalog and a table's records."""

    def __init__(self, entry: CatalogEntry, records: list[tuple[bytes, bytes]]) -> None:
        self.entries = {entry.name: entry}
        self.history: list[CatalogEntry] = []
        self._records = records
        self.dropped: list[int] = []

    async def catalog(self, *, every_node: bool = False) -> dict[str, CatalogEntry]:
        return dict(self.entries)

    async def catalog_put(self, entry: CatalogEntry) -> None:
        self.entries[entry.name] = entry
        self.history.append(entry)

    async def item_count(self, table_id: int) -> int:
        return len(self._records)

    async def records(self, table_id: int):
        for key, record in self._records:
            yield key, record

    async def drop_table(self, table_id: int) -> None:
        self.dropped.append(table_id)


class Clock:
    def wall_ms(self) -> int:
        return 0

    def monotonic_s(self) -> float:
        return 0.0

    async def sleep(self, seconds: float) -> None:
        return None


def _entry(*replicas: dict) -> CatalogEntry:
    description = {"table_id": TABLE_ID, "key_schema": [["pk", "S"]], "region": "a", "replicas": list(replicas)}
    return CatalogEntry("t", 3, description)


def _records(n: int) -> list[tuple[bytes, bytes]]:
    stamp = VersionStamp(7, "a").pack()
    return [(b"k%05d" % i, pack_record(stamp, orjson.dumps({"pk": {"S": str(i)}}), 10)) for i in range(n)]


def _manager(nodes: FakeNodes) -> tuple[ReplicaManager, list, list]:
    commands: list[tuple[str, dict]] = []
    batches: list[tuple[str, list]] = []

    async def control(peer: str, command: dict) -> dict:
        commands.append((peer, copy.deepcopy(command)))
        return {}

    async def backfill(peer: str, changes: list) -> None:
        batches.append((peer, changes))

    return ReplicaManager("a", nodes, ["b", "c"], control, backfill, Clock()), commands, batches


async def test_scope_follows_the_catalog() -> None:
    nodes = FakeNodes(_entry({"RegionName": "a", "ReplicaStatus": "ACTIVE"},
                             {"RegionName": "b", "ReplicaStatus": "CREATING", "Coordinator": "a"}), [])
    manager, _, _ = _manager(nodes)
    assert not manager.replicates(TABLE_ID, "b")
    await manager.refresh()
    assert manager.replicates(TABLE_ID, "b") and not manager.replicates(TABLE_ID, "c")
    assert not manager.replicates(TABLE_ID + 1, "b")


async def test_create_sends_the_entry_backfills_with_progress_then_activates() -> None:
    records = _records(2500)
    nodes = FakeNodes(_entry({"RegionName": "a", "ReplicaStatus": "ACTIVE"},
                             {"RegionName": "b", "ReplicaStatus": "CREATING", "Coordinator": "a"}), records)
    manager, commands, batches = _manager(nodes)
    for entry in (await manager.refresh()).values():
        await manager._carry_out(entry)
    first_peer, first = commands[0]
    assert first_peer == "b" and first["command"] == "catalog-put"
    assert first["description"]["region"] == "b" and first["description"]["table_id"] == TABLE_ID
    sent = [change for _, batch in batches for change in batch]
    assert [c.key for c in sent] == [k for k, _ in records]
    assert sent[0] == record_change(TABLE_ID, *records[0])
    progress = [
        r.get("ReplicaStatusPercentProgress")
        for e in nodes.history
        for r in e.description["replicas"]
        if r["RegionName"] == "b"
    ]
    assert progress == ["40", "80", None]
    final = nodes.entries["t"].description["replicas"]
    assert final == [{"RegionName": "a", "ReplicaStatus": "ACTIVE"}, {"RegionName": "b", "ReplicaStatus": "ACTIVE"}]
    peer, last = commands[-1]
    assert peer == "b" and last["description"]["replicas"] == final and last["revision"] == nodes.entries["t"].revision


async def test_replicas_coordinated_elsewhere_are_left_alone() -> None:
    nodes = FakeNodes(_entry({"RegionName": "a", "ReplicaStatus": "ACTIVE"},
                             {"RegionName": "b", "ReplicaStatus": "CREATING", "Coordinator": "c"}), _records(3))
    manager, commands, batches = _manager(nodes)
    for entry in (await manager.refresh()).values():
        await manager._carry_out(entry)
    assert commands == [] and batches == []


async def test_delete_drops_the_peer_replica_and_the_table_is_no_longer_global() -> None:
    nodes = FakeNodes(_entry({"RegionName": "a", "ReplicaStatus": "ACTIVE"},
                             {"RegionName": "b", "ReplicaStatus": "DELETING", "Coordinator": "a"}), [])
    manager, commands, _ = _manager(nodes)
    for entry in (await manager.refresh()).values():
        await manager._carry_out(entry)
    assert [(peer, c["command"], c.get("deleted")) for peer, c in commands] == [
        ("b", "catalog-put", True), ("b", "drop-table", None),
    ]  # fmt: skip
    assert nodes.entries["t"].description["replicas"] == []
    await manager.refresh()
    assert not manager.replicates(TABLE_ID, "b")


async def test_a_noted_entry_is_not_undone_by_an_older_catalog_read() -> None:
    nodes = FakeNodes(_entry({"RegionName": "a", "ReplicaStatus": "ACTIVE"}), [])  # revision 3: not global yet
    manager, _, _ = _manager(nodes)
    newer = _entry({"RegionName": "a", "ReplicaStatus": "ACTIVE"},
                   {"RegionName": "b", "ReplicaStatus": "CREATING", "Coordinator": "b"})
    manager.note(CatalogEntry(newer.name, 4, newer.description))
    assert manager.replicates(TABLE_ID, "b")
    await manager.refresh()  # a read that started before the entry reached the nodes
    assert manager.replicates(TABLE_ID, "b")
