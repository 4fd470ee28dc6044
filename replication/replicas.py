"""Replica management: which tables replicate where, and creating and deleting replicas.

Routers never talk to other regions.  ``UpdateTable`` with ``ReplicaUpdates``
only records the wish in the table's catalog entry (``router/catalog.py``:
``replicas``, a new one CREATING or an old one DELETING, each naming its
*coordinator*, the region that took the request); the catalog is durable on
the region's nodes, and this module, in the coordinator's replicator, does
the rest:

* **scope**: every round (``REPLICA_MANAGER_INTERVAL_S``) it reads the local
  catalog; a table replicates to a peer when the peer holds one of its
  replicas (CREATING included, so live changes flow during the backfill).
* **create**: the table's catalog entry (same table id, schema and indexes;
  ``region`` set to the peer's) goes to the new region's replicator, which
  stores it on its nodes; then every stored record of the table - stamps
  kept, tombstones included - is sent there (``Backfill``) and applied
  last-writer-wins, with ``ReplicaStatusPercentProgress`` updated in the
  catalog as it goes; then the replica turns ACTIVE in every replica
  region's catalog.  Changes written before the scope included the peer
  are in the items the backfill reads, because the backfill starts after.
* **delete**: the replica region's catalog entry is marked deleted and its
  items dropped; the others forget the replica (a table left alone in its
  region is no longer global).

Catalog revisions written here go one above the newest stored, so a
router's later save (its revision + 1) may restore an older replica status;
the manager then simply does the work again (apply is idempotent).  Known
gap with three or more regions: a third region learns of a new replica only
when it turns ACTIVE, and changes it logged before then are not shipped to
it (the coordinator's backfill carries those that reached the coordinator).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Awaitable, Callable, Iterable

from meridian.model import limits
from meridian.model.ops import CatalogEntry
from meridian.node.records import Change, is_tombstone, record_item_json, record_size, record_stamp
from meridian.replication.interfaces import Clock, change_size_bytes
from meridian.replication.nodes import RegionNodes

log = logging.getLogger(__name__)

#: ``(peer, command)`` -> the peer replicator's answer (``peers.control``).
PeerControl = Callable[[str, dict], Awaitable[dict]]
#: ``(peer, changes)``: a backfill batch, applied by the peer's region.
PeerBackfill = Callable[[str, list[Change]], Awaitable[None]]


def record_change(table_id: int, key: bytes, record: bytes) -> Change:
    """A stored record as a change to ship (a backfill sends items as changes)."""
    tombstone = is_tombstone(record)
    return Change(
        sequence=0,
        table_id=table_id,
        key=key,
        stamp=record_stamp(record),
        tombstone=tombstone,
        item_json=None if tombstone else record_item_json(record),
        size_bytes=record_size(record),
    )


def replica_regions(entry: CatalogEntry) -> frozenset[str]:
    """Regions holding a replica of a table (not those being deleted)."""
    if entry.deleted:
        return frozenset()
    return frozenset(
        r["RegionName"] for r in entry.description.get("replicas") or () if r["ReplicaStatus"] != "DELETING"
    )


def entry_for_region(entry: CatalogEntry, region: str, revision: int) -> CatalogEntry:
    """The entry as ``region`` stores it: its own region in the table's ARN."""
    description = copy.deepcopy(entry.description)
    description["region"] = region
    return CatalogEntry(entry.name, revision, description, entry.deleted)


class ReplicaManager:
    """Keeps this region's replication scope and carries out replica changes it coordinates."""

    def __init__(
        self,
        region: str,
        nodes: RegionNodes,
        peers: Iterable[str],
        control: PeerControl,
        backfill: PeerBackfill,
        clock: Clock,
        interval_s: float = limits.REPLICA_MANAGER_INTERVAL_S,
    ) -> None:
        self.region = region
        self._nodes = nodes
        self._peers = frozenset(peers)
        self._control = control
        self._backfill = backfill
        self._clock = clock
        self._interval_s = interval_s
        self._scope: dict[int, frozenset[str]] = {}  # table id -> regions holding a replica
        self._scope_revisions: dict[int, int] = {}  # table id -> catalog revision the scope is from
        self._names: dict[int, str] = {}  # table id -> table name, for metrics

    def __repr__(self) -> str:
        return f"<ReplicaManager {self.region} global_tables={len(self._scope)}>"

    def replicates(self, table_id: int, peer: str) -> bool:
        """The replicator's scope: does ``peer`` hold a replica of the table?"""
        regions = self._scope.get(table_id)
        return regions is not None and peer in regions

    def table_name(self, table_id: int) -> str | None:
        """The name of a table this region's catalog has shown (None if never seen)."""
        return self._names.get(table_id)

    async def refresh(self, *, every_node: bool = False) -> dict[str, CatalogEntry]:
        """Re-read the catalog and the scope from it (``every_node``: only
        from a complete read, as a replicator needs before it first ships)."""
        catalog = await self._nodes.catalog(every_node=every_node)
        for entry in catalog.values():
            self.note(entry)
        return catalog

    def note(self, entry: CatalogEntry) -> None:
        """Take a catalog entry into the scope unless a newer one was noted.

        A peer's coordinator sends this region the entries of its new
        replicas; they are noted *before* they reach the nodes, so no write
        to such a table can be logged here while the scope still lacks it
        (it would be skipped, never shipped).
        """
        table_id = entry.description.get("table_id")
        if table_id is None or self._scope_revisions.get(table_id, -1) > entry.revision:
            return
        self._scope_revisions[table_id] = entry.revision
        self._names[table_id] = entry.name
        regions = replica_regions(entry)
        if self.region in regions:
            self._scope[table_id] = regions
        else:
            self._scope.pop(table_id, None)

    async def run(self) -> None:
        """Refresh the scope and carry out pending replica changes, forever."""
        while True:
            try:
                for entry in (await self.refresh()).values():
                    await self._carry_out(entry)
            except Exception as exc:  # a node or peer down: the next round tries again
                log.info("replica management round failed: %r", exc)
            await self._clock.sleep(self._interval_s)

    async def _carry_out(self, entry: CatalogEntry) -> None:
        if entry.deleted:
            return
        for replica in entry.description.get("replicas") or ():
            if replica.get("Coordinator") != self.region or replica["RegionName"] not in self._peers:
                continue
            if replica["ReplicaStatus"] == "CREATING":
                await self._create(entry, replica["RegionName"])
                return  # the entry changed: the next round sees the new one
            if replica["ReplicaStatus"] == "DELETING":
                await self._delete(entry, replica["RegionName"])
                return

    async def _save(self, entry: CatalogEntry, description: dict, *, to: Iterable[str] = ()) -> CatalogEntry:
        """Store a new revision here and on the given peers."""
        current = (await self._nodes.catalog()).get(entry.name)
        revision = max(entry.revision, current.revision if current is not None else 0) + 1
        updated = CatalogEntry(entry.name, revision, description, entry.deleted)
        await self._nodes.catalog_put(updated)
        for peer in to:
            await self._put_on_peer(peer, entry_for_region(updated, peer, revision))
        return updated

    async def _put_on_peer(self, peer: str, entry: CatalogEntry) -> None:
        await self._control(
            peer,
            {
                "command": "catalog-put",
                "name": entry.name,
                "revision": entry.revision,
                "description": entry.description,
                "deleted": entry.deleted,
            },
        )

    @staticmethod
    def _with_replica(description: dict, region: str, **changes) -> dict:
        description = copy.deepcopy(description)
        for replica in description["replicas"]:
            if replica["RegionName"] == region:
                replica.update(changes)
                if replica["ReplicaStatus"] == "ACTIVE":
                    replica.pop("ReplicaStatusPercentProgress", None)
                    replica.pop("Coordinator", None)
        return description

    async def _create(self, entry: CatalogEntry, peer: str) -> None:
        table_id = entry.description["table_id"]
        log.info("creating the %s replica of %s (table id %d)", peer, entry.name, table_id)
        await self._put_on_peer(peer, entry_for_region(entry, peer, entry.revision))
        total = max(1, await self._nodes.item_count(table_id))
        sent = 0
        reported = 0
        batch: list[Change] = []
        size = 0
        async for key, record in self._nodes.records(table_id):
            change = record_change(table_id, key, record)
            batch.append(change)
            size += change_size_bytes(change)
            if len(batch) >= limits.REPLICATION_BATCH_CHANGES_MAX or size >= limits.REPLICATION_BATCH_BYTES_MAX:
                await self._backfill(peer, batch)
                sent += sum(1 for c in batch if not c.tombstone)
                batch, size = [], 0
                percent = min(99, sent * 100 // total)
                if percent >= reported + limits.REPLICA_PROGRESS_STEP_PERCENT:
                    reported = percent
                    description = self._with_replica(
                        entry.description, peer, ReplicaStatusPercentProgress=str(percent)
                    )
                    entry = await self._save(entry, description)
        if batch:
            await self._backfill(peer, batch)
        others = replica_regions(entry) - {self.region}
        await self._save(entry, self._with_replica(entry.description, peer, ReplicaStatus="ACTIVE"), to=others)
        log.info("the %s replica of %s is ACTIVE", peer, entry.name)

    async def _delete(self, entry: CatalogEntry, peer: str) -> None:
        log.info("deleting the %s replica of %s", peer, entry.name)
        await self._put_on_peer(peer, CatalogEntry(entry.name, entry.revision + 1, entry.description, deleted=True))
        await self._control(peer, {"command": "drop-table", "table_id": entry.description["table_id"]})
        description = copy.deepcopy(entry.description)
        description["replicas"] = [r for r in description["replicas"] if r["RegionName"] != peer]
        if [r["RegionName"] for r in description["replicas"]] == [self.region]:
            description["replicas"] = []  # alone again: no longer a global table
        others = replica_regions(entry) - {self.region, peer}
        await self._save(entry, description, to=others)
