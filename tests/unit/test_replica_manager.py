"""Replica management (``replication/replicas.py``): real managers of several
regions, wired to each other in memory (commands and backfills go straight
to the other region's manager and storage), over fake storage nodes."""

from __future__ import annotations

import orjson

from meridian.model.ops import CatalogEntry
from meridian.model.stamps import VersionStamp, lww_wins
from meridian.model.changes import Change
from meridian.model.records import is_tombstone, pack_record, record_change, record_stamp
from meridian.replication.replicas import ReplicaManager

TABLE_ID = 42


class FakeNodes:
    """One region's nodes as the manager sees them: a catalog and tables' records."""

    def __init__(self) -> None:
        self.entries: dict[str, CatalogEntry] = {}
        self.history: list[CatalogEntry] = []
        self.tables: dict[int, dict[bytes, bytes]] = {}
        self.dropped: list[int] = []

    async def catalog(self, *, every_node: bool = False) -> dict[str, CatalogEntry]:
        return dict(self.entries)

    async def catalog_put(self, entry: CatalogEntry) -> None:
        current = self.entries.get(entry.name)
        if current is not None and current.revision > entry.revision:
            return  # as a node does: an older revision never replaces a newer one
        self.entries[entry.name] = entry
        self.history.append(entry)

    async def item_count(self, table_id: int) -> int:
        return sum(1 for record in self.tables.get(table_id, {}).values() if not is_tombstone(record))

    async def records(self, table_id: int):
        for key, record in sorted(self.tables.get(table_id, {}).items()):
            yield key, record

    async def drop_table(self, table_id: int) -> None:
        self.tables.pop(table_id, None)
        self.dropped.append(table_id)

    def write(self, table_id: int, key: bytes, hlc: int, region: str, value: str | None = "v") -> None:
        item = None if value is None else orjson.dumps({"pk": {"S": key.decode()}, "v": {"S": value}})
        self.tables.setdefault(table_id, {})[key] = pack_record(VersionStamp(hlc, region).pack(), item, 10)

    def apply(self, changes: list[Change]) -> None:
        """Last writer wins, as ``ApplyReplicated`` does."""
        for change in changes:
            held = self.tables.setdefault(change.table_id, {}).get(change.key)
            if lww_wins(change.stamp, None if held is None else record_stamp(held)):
                self.tables[change.table_id][change.key] = pack_record(change.stamp.pack(), change.item_json, 10)


class Clock:
    def wall_ms(self) -> int:
        return 0

    def monotonic_s(self) -> float:
        return 0.0

    async def sleep(self, seconds: float) -> None:
        return None


class Regions:
    """Managers of several regions that reach each other in memory."""

    def __init__(self, *names: str) -> None:
        self.nodes = {name: FakeNodes() for name in names}
        self.commands: list[tuple[str, str, dict]] = []  # (from, to, command)
        self.backfilled: list[tuple[str, list[Change]]] = []
        self.managers = {name: self._manager(name, names) for name in names}

    def _manager(self, name: str, names: tuple[str, ...]) -> ReplicaManager:
        async def control(peer: str, command: dict, **options) -> dict:
            self.commands.append((name, peer, command))
            # As the replicator service does: a command naming a region is forwarded there.
            answer = await self.managers[command.get("region") or peer].control(command)
            assert answer is not None, command
            return answer

        async def backfill(peer: str, changes: list[Change]) -> None:
            self.backfilled.append((peer, changes))
            self.nodes[peer].apply(changes)

        return ReplicaManager(name, self.nodes[name], [n for n in names if n != name], control, backfill, Clock())

    async def round(self, *names: str) -> None:
        """One management round of each region named (all by default)."""
        for name in names or self.managers:
            manager = self.managers[name]
            for entry in (await manager.refresh()).values():
                await manager._carry_out(entry)

    def replicas(self, region: str, name: str = "t") -> dict[str, str]:
        entry = self.nodes[region].entries[name]
        return {r["RegionName"]: r["ReplicaStatus"] for r in entry.description.get("replicas") or ()}


def _description(region: str, *replicas: dict, table_id: int = TABLE_ID, **extra) -> dict:
    return {"table_id": table_id, "key_schema": [["pk", "S"]], "region": region, "replicas": list(replicas), **extra}


def _put(regions: Regions, region: str, description: dict, revision: int = 3, deleted: bool = False) -> None:
    regions.nodes[region].entries["t"] = CatalogEntry("t", revision, description, deleted)


def _contents(nodes: FakeNodes, table_id: int = TABLE_ID) -> dict[bytes, bytes]:
    return dict(nodes.tables.get(table_id, {}))


ACTIVE_A = {"RegionName": "a", "ReplicaStatus": "ACTIVE"}


async def test_scope_follows_the_catalog() -> None:
    regions = Regions("a", "b", "c")
    _put(regions, "a", _description("a", ACTIVE_A, {"RegionName": "b", "ReplicaStatus": "CREATING", "Coordinator": "x"}))
    manager = regions.managers["a"]
    assert not manager.replicates(TABLE_ID, "b")
    await manager.refresh()
    assert manager.replicates(TABLE_ID, "b") and not manager.replicates(TABLE_ID, "c")
    assert not manager.replicates(TABLE_ID + 1, "b")


async def test_create_installs_the_entry_backfills_with_progress_then_activates() -> None:
    regions = Regions("a", "b")
    for i in range(2500):
        regions.nodes["a"].write(TABLE_ID, b"k%05d" % i, 7, "a")
    _put(regions, "a", _description("a", ACTIVE_A, {"RegionName": "b", "ReplicaStatus": "CREATING", "Coordinator": "a"}))
    await regions.round("a")
    first_from, first_to, first = regions.commands[0]
    assert (first_from, first_to, first["command"]) == ("a", "b", "replica-install")
    installed = regions.nodes["b"].history[0].description
    assert installed["region"] == "b" and installed["table_id"] == TABLE_ID
    assert regions.managers["b"].replicates(TABLE_ID, "a")  # b ships its own writes from the start
    sent = [change for _, batch in regions.backfilled for change in batch]
    assert sent[0] == record_change(TABLE_ID, *next(iter(sorted(_contents(regions.nodes["a"]).items()))))
    assert _contents(regions.nodes["b"]) == _contents(regions.nodes["a"])
    progress = [
        r.get("ReplicaStatusPercentProgress")
        for e in regions.nodes["a"].history
        for r in e.description["replicas"]
        if r["RegionName"] == "b"
    ]
    assert progress == ["40", "80", None]
    final = regions.nodes["a"].entries["t"].description["replicas"]
    assert final == [ACTIVE_A, {"RegionName": "b", "ReplicaStatus": "ACTIVE"}]
    assert regions.replicas("b") == {"a": "ACTIVE", "b": "ACTIVE"}


async def test_a_third_region_learns_of_the_replica_before_the_backfill_and_sends_its_own_writes() -> None:
    regions = Regions("a", "b", "c")
    active_c = {"RegionName": "c", "ReplicaStatus": "ACTIVE"}
    _put(regions, "c", _description("c", ACTIVE_A, active_c))
    regions.nodes["a"].write(TABLE_ID, b"from-a", 5, "a")
    regions.nodes["c"].write(TABLE_ID, b"from-a", 5, "a")
    regions.nodes["c"].write(TABLE_ID, b"held-back", 9, "c")  # written in c, never reached a
    regions.nodes["c"].write(TABLE_ID, b"gone", 11, "c", value=None)  # a delete in c
    _put(regions, "a", _description("a", ACTIVE_A, active_c,
                                    {"RegionName": "b", "ReplicaStatus": "CREATING", "Coordinator": "a"}))  # fmt: skip
    await regions.round("a")
    order = [(src, dst, c["command"]) for src, dst, c in regions.commands if src == "a"]
    assert order[:2] == [("a", "b", "replica-install"), ("a", "c", "replica-set")]  # before any backfill
    assert ("a", "c", "replica-backfill") in order
    b = _contents(regions.nodes["b"])
    assert set(b) == {b"from-a", b"held-back", b"gone"} and is_tombstone(b[b"gone"])
    assert all(record_stamp(record).region == "c" for _, batch in regions.backfilled[1:] for record in
               (pack_record(change.stamp.pack(), change.item_json, 10) for change in batch))  # fmt: skip
    for region in ("a", "b", "c"):
        assert regions.replicas(region) == {"a": "ACTIVE", "b": "ACTIVE", "c": "ACTIVE"}, region
    assert regions.managers["c"].replicates(TABLE_ID, "b")


async def test_replicas_coordinated_elsewhere_are_left_alone() -> None:
    regions = Regions("a", "b", "c")
    regions.nodes["a"].write(TABLE_ID, b"k", 1, "a")
    _put(regions, "a", _description("a", ACTIVE_A, {"RegionName": "b", "ReplicaStatus": "CREATING", "Coordinator": "c"}))
    await regions.round("a")
    assert regions.commands == [] and regions.backfilled == []


async def test_delete_drops_the_peer_replica_and_the_others_forget_it() -> None:
    regions = Regions("a", "b", "c")
    replicas = [ACTIVE_A, {"RegionName": "b", "ReplicaStatus": "ACTIVE"}, {"RegionName": "c", "ReplicaStatus": "ACTIVE"}]
    for region in ("b", "c"):
        _put(regions, region, _description(region, *replicas))
    regions.nodes["b"].write(TABLE_ID, b"k", 1, "a")
    _put(regions, "a", _description("a", *replicas[:2], {**replicas[2], "ReplicaStatus": "DELETING", "Coordinator": "a"}))
    await regions.round("a")
    assert regions.nodes["c"].entries["t"].deleted and TABLE_ID in regions.nodes["c"].dropped
    assert regions.replicas("a") == regions.replicas("b") == {"a": "ACTIVE", "b": "ACTIVE"}
    assert not regions.managers["a"].replicates(TABLE_ID, "c")
    # And down to one region: the table is no longer global.
    _put(regions, "a", _description("a", ACTIVE_A, {"RegionName": "b", "ReplicaStatus": "DELETING", "Coordinator": "a"}),
         revision=10)  # fmt: skip
    await regions.round("a")
    assert regions.nodes["a"].entries["t"].description["replicas"] == []
    assert regions.nodes["b"].entries["t"].deleted and _contents(regions.nodes["b"]) == {}


async def test_delete_table_in_one_region_makes_the_others_forget_it() -> None:
    regions = Regions("a", "b", "c")
    replicas = [ACTIVE_A, {"RegionName": "b", "ReplicaStatus": "ACTIVE"}, {"RegionName": "c", "ReplicaStatus": "ACTIVE"}]
    for region in ("a", "c"):
        _put(regions, region, _description(region, *replicas))
    _put(regions, "b", _description("b", *replicas), revision=9, deleted=True)  # DeleteTable in b
    await regions.managers["a"].refresh()
    assert regions.managers["a"].replicates(TABLE_ID, "b")
    await regions.round("b")
    assert regions.replicas("a") == regions.replicas("c") == {"a": "ACTIVE", "c": "ACTIVE"}
    assert not regions.managers["a"].replicates(TABLE_ID, "b") and not regions.managers["c"].replicates(TABLE_ID, "b")
    tombstone = regions.nodes["b"].entries["t"]
    assert tombstone.deleted and tombstone.revision == 10 and tombstone.description["replicas"] == []
    sent = len(regions.commands)
    await regions.round("b")
    assert len(regions.commands) == sent  # done once


async def test_update_sets_the_replica_settings_in_every_region() -> None:
    regions = Regions("a", "b")
    override = {"ReadCapacityUnits": 10}
    _put(regions, "b", _description("b", ACTIVE_A, {"RegionName": "b", "ReplicaStatus": "ACTIVE"}))
    _put(regions, "a", _description("a", ACTIVE_A, {
        "RegionName": "b", "ReplicaStatus": "UPDATING", "Coordinator": "a",
        "Pending": {"ProvisionedThroughputOverride": override, "ReplicaTableClassSummary": None},
    }))  # fmt: skip
    await regions.round("a")
    for region in ("a", "b"):
        replica = regions.nodes[region].entries["t"].description["replicas"][1]
        assert replica == {"RegionName": "b", "ReplicaStatus": "ACTIVE", "ProvisionedThroughputOverride": override}


async def test_a_create_over_a_foreign_table_is_abandoned() -> None:
    regions = Regions("a", "b")
    _put(regions, "b", _description("b", table_id=7))  # a table of b's own, same name
    _put(regions, "a", _description("a", ACTIVE_A, {"RegionName": "b", "ReplicaStatus": "CREATING", "Coordinator": "a"}))
    await regions.round("a")
    assert regions.nodes["b"].entries["t"].description["table_id"] == 7
    assert regions.nodes["a"].entries["t"].description["replicas"] == []
    assert regions.backfilled == []


async def test_a_legacy_replica_adopts_the_regions_own_empty_table() -> None:
    regions = Regions("a", "b")
    _put(regions, "b", _description("b", table_id=7, billing_mode="PROVISIONED", read_capacity=3), revision=5)
    regions.nodes["a"].write(TABLE_ID, b"k", 1, "a")
    creating = {"RegionName": "b", "ReplicaStatus": "CREATING", "Coordinator": "a", "Adopt": True}
    _put(regions, "a", _description("a", ACTIVE_A, creating, legacy_created_s=100.0))
    await regions.round("a")
    adopted = regions.nodes["b"].entries["t"]
    assert adopted.revision > 5 and adopted.description["table_id"] == TABLE_ID
    assert adopted.description["read_capacity"] == 3 and adopted.description["region"] == "b"  # its own settings
    assert adopted.description["legacy_created_s"] == 100.0 and 7 in regions.nodes["b"].dropped
    assert regions.replicas("b") == {"a": "ACTIVE", "b": "ACTIVE"}
    assert _contents(regions.nodes["b"]) == _contents(regions.nodes["a"])


async def test_a_legacy_replica_is_not_adopted_once_it_holds_items() -> None:
    regions = Regions("a", "b")
    _put(regions, "b", _description("b", table_id=7))
    regions.nodes["b"].write(7, b"k", 1, "b")
    _put(regions, "a", _description("a", ACTIVE_A, {"RegionName": "b", "ReplicaStatus": "CREATING", "Coordinator": "a",
                                                    "Adopt": True}, legacy_created_s=1.0))  # fmt: skip
    await regions.round("a")
    assert regions.nodes["b"].entries["t"].description["table_id"] == 7 and 7 not in regions.nodes["b"].dropped
    assert regions.replicas("a") == {"a": "ACTIVE"}  # a legacy group of one region stays global


async def test_a_noted_entry_is_not_undone_by_an_older_catalog_read() -> None:
    regions = Regions("a", "b")
    _put(regions, "a", _description("a", ACTIVE_A))  # revision 3: not global yet
    manager = regions.managers["a"]
    newer = _description("a", ACTIVE_A, {"RegionName": "b", "ReplicaStatus": "CREATING", "Coordinator": "b"})
    manager.note(CatalogEntry("t", 4, newer))
    assert manager.replicates(TABLE_ID, "b")
    await manager.refresh()  # a read that started before the entry reached the nodes
    assert manager.replicates(TABLE_ID, "b")


ACTIVE_B = {"RegionName": "b", "ReplicaStatus": "ACTIVE"}


def _ttl(attribute: str | None, changed_s: float) -> dict:
    return {"ttl_attribute": attribute, "ttl_last_attribute": attribute or "exp", "ttl_changed_s": changed_s}


async def test_a_ttl_change_reaches_every_replica_region_once() -> None:
    regions = Regions("a", "b", "c")
    active_c = {"RegionName": "c", "ReplicaStatus": "ACTIVE"}
    _put(regions, "a", _description("a", ACTIVE_A, ACTIVE_B, active_c, **_ttl("exp", 100.0)))
    _put(regions, "b", _description("b", ACTIVE_A, ACTIVE_B, active_c))
    _put(regions, "c", _description("c", ACTIVE_A, ACTIVE_B, active_c))
    await regions.round("a")
    for region in ("b", "c"):
        assert {k: regions.nodes[region].entries["t"].description.get(k) for k in _ttl("", 0)} == _ttl("exp", 100.0)
    sent = len(regions.commands)
    await regions.round("a", "b", "c")  # handed once per change; b and c hand it back, a keeps its own
    ttl_commands = [c for c in regions.commands[sent:] if c[2]["command"] == "ttl-set"]
    assert {(frm, to) for frm, to, _ in ttl_commands} <= {("b", "a"), ("b", "c"), ("c", "a"), ("c", "b")}
    await regions.round("a", "b", "c")
    assert [c for c in regions.commands[sent + len(ttl_commands):] if c[2]["command"] == "ttl-set"] == []


async def test_the_newest_ttl_change_wins_everywhere() -> None:
    regions = Regions("a", "b")
    _put(regions, "a", _description("a", ACTIVE_A, ACTIVE_B, **_ttl("old", 100.0)))
    _put(regions, "b", _description("b", ACTIVE_A, ACTIVE_B, **_ttl(None, 200.0)))  # disabled later, in b
    await regions.round("a", "b", "a", "b")
    for region in ("a", "b"):
        assert regions.nodes[region].entries["t"].description["ttl_changed_s"] == 200.0
        assert regions.nodes[region].entries["t"].description["ttl_attribute"] is None
