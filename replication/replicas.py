"""Replica management: which tables replicate where; creating, updating and deleting replicas.

Routers never talk to other regions.  ``UpdateTable`` with ``ReplicaUpdates``
(and the legacy ``CreateGlobalTable`` / ``UpdateGlobalTable``) only record
the wish in the table's catalog entry (``router/table_record.py``: ``replicas``,
a new one CREATING, a changed one UPDATING, an old one DELETING, each
naming its *coordinator*, the region that took the request); the catalog
is durable on the region's nodes, and this module, in every region's
replicator, does the rest:

* **scope**: every round (``REPLICA_MANAGER_INTERVAL_S``) it reads the local
  catalog; a table replicates to a peer when the peer holds one of its
  replicas (CREATING included, so live changes flow during the backfill).
* **create** (coordinator): the table's entry (same table id, schema and
  indexes) is installed in the new region, which notes it before storing
  it, so nothing it logs is skipped; then every *other* replica region is
  told of the CREATING replica at once (it ships to the new region from
  then on); then every stored record of the table - stamps kept,
  tombstones included - goes to the new region (``Backfill``, applied
  last-writer-wins), with ``ReplicaStatusPercentProgress`` updated as it
  goes; then each other replica region sends the new region the records
  *it* wrote (its own-origin versions): whatever it logged before it knew
  of the new replica, and that had not reached the coordinator before the
  backfill read it, arrives that way.  Then the replica turns ACTIVE in
  every replica region.  With the other regions' own-origin backfills, the
  newest version of every item reaches the new replica: it was written by
  the coordinator (in its backfill or shipped live), or by another region
  (in that region's own-origin backfill or shipped live).
* **legacy adoption**: a 2017.11.29 replica is the region's existing (empty)
  table; installing it keeps that table's own settings and gives it the
  group's table id, so changes address the same table everywhere.
* **update** (coordinator): the replica's new settings (``Pending``:
  ``ProvisionedThroughputOverride``, ``ReplicaTableClassSummary``) go to
  every replica region, then the replica is ACTIVE again.
* **delete** (coordinator): the replica region's table is deleted (a legacy
  removal keeps it, as a table of its own); the others forget the replica
  (a table left alone in its region is no longer global).
* **DeleteTable in one region**: that region's replicator tells every other
  replica region, which forget the replica and stop replicating to it.
* **Time to Live**: a global table's TTL setting is one setting for every
  replica, as DynamoDB keeps it aligned.  UpdateTimeToLive changes it in one
  region's entry; that region's manager hands the setting (``ttl-set``) to
  every other replica region, which keeps it if it is newer than its own
  (by ``ttl_changed_s``): the newest change wins everywhere, and handing
  the same setting twice changes nothing.

Changes to another region's catalog are commands that region's replicator
carries out on its own newest entry (``control``), with its own revision
numbers, so a change made there meanwhile is never undone; this region's
entry is changed the same way (``_mutate``).  Any step that fails (a peer
or node down) is retried from the start the next round: every step is
idempotent.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from meridian.model import limits
from meridian.model.changes import Change, change_size_bytes
from meridian.model.ops import CatalogEntry
from meridian.model.records import record_change, record_stamp
from meridian.proto.errors import ControlError
from meridian.replication.interfaces import Clock
from meridian.replication.nodes import RegionNodes
from meridian.replication.peers import ReplicatorService

log = logging.getLogger(__name__)

#: ``(peer, command, timeout_s=...)`` -> the peer replicator's answer (``PeerTransport.control``).
PeerControl = Callable[..., Awaitable[dict]]
#: ``(peer, changes)``: a backfill batch, applied by the peer's region.
PeerBackfill = Callable[[str, list[Change]], Awaitable[None]]

#: The table-record members of the Time to Live setting, kept alike in every replica region.
TTL_SETTING_KEYS = ("ttl_attribute", "ttl_last_attribute", "ttl_changed_s")

#: Replica fields that only describe a change in progress.
_TRANSIENT_KEYS = ("ReplicaStatusPercentProgress", "Coordinator", "Adopt", "Keep", "Pending")


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


def set_replica(description: dict, region: str, fields: dict[str, Any]) -> None:
    """Set fields of ``region``'s replica (added if missing); a None value
    removes the field; an ACTIVE replica keeps no change in progress."""
    replicas = description.setdefault("replicas", [])
    replica = next((r for r in replicas if r["RegionName"] == region), None)
    if replica is None:
        replica = {"RegionName": region}
        replicas.append(replica)
    for key, value in fields.items():
        if value is None:
            replica.pop(key, None)
        else:
            replica[key] = value
    if replica.get("ReplicaStatus") == "ACTIVE":
        for key in _TRANSIENT_KEYS:
            replica.pop(key, None)


def remove_replica(description: dict, region: str, here: str) -> None:
    """Forget ``region``'s replica, as the region ``here`` stores the table.

    A table left alone in its region is no longer global (a legacy global
    table stays one, of a single region, as DynamoDB kept it).
    """
    replicas = [r for r in description.get("replicas") or () if r["RegionName"] != region]
    if [r["RegionName"] for r in replicas] == [here] and description.get("legacy_created_s") is None:
        replicas = []
    description["replicas"] = replicas


def _replica_set(name: str, table_id: int, region: str, fields: dict | None, *, drop: bool = False) -> dict:
    """The command that sets (None: removes) ``region``'s replica in a peer's entry."""
    # ("region" would name the region a command is forwarded to: peers.py.)
    return {"command": "replica-set", "name": name, "table_id": table_id, "replica_region": region, "replica": fields,
            "drop": drop}  # fmt: skip


class ReplicaManager:
    """Keeps this region's replication scope and carries out replica changes.

    It does the work of the replica changes this region coordinates
    (``run``) and answers the replica-management commands of the other
    regions' managers and of this region's routers (``control``).
    """

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
        self._ttl_handed: dict[tuple[int, str], float] = {}  # (table id, peer) -> TTL change it holds

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

        Entries changed by another region's manager are noted *before* they
        reach the nodes, so no write to such a table can be logged here
        while the scope still lacks a replica (it would be skipped, never
        shipped).
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
            if entry.description.get("replicas"):
                await self._leave(entry)
            return
        await self._hand_ttl(entry)
        for replica in entry.description.get("replicas") or ():
            if replica.get("Coordinator") != self.region or replica["RegionName"] not in self._peers:
                continue
            status = replica["ReplicaStatus"]
            if status == "CREATING":
                await self._create(entry, replica)
                return  # the entry changed: the next round sees the new one
            if status == "UPDATING":
                await self._update(entry, replica)
                return
            if status == "DELETING":
                await self._delete(entry, replica)
                return

    # --- this region's entry ------------------------------------------------

    async def _stored(self, name: str, table_id: int) -> CatalogEntry | None:
        """This region's newest live entry of the table (None: gone or re-created)."""
        current = (await self._nodes.catalog()).get(name)
        if current is None or current.deleted or current.description.get("table_id") != table_id:
            return None
        return current

    async def _store(
        self, current: CatalogEntry | None, name: str, description: dict, deleted: bool = False
    ) -> CatalogEntry:
        """Store a new revision of a table's entry here (scope first)."""
        entry = CatalogEntry(name, (current.revision if current is not None else 0) + 1, description, deleted)
        self.note(entry)
        await self._nodes.catalog_put(entry)
        return entry

    async def _mutate(self, name: str, table_id: int, change: Callable[[dict], None]) -> CatalogEntry | None:
        """Apply ``change`` to this region's newest entry of the table and store it."""
        current = await self._stored(name, table_id)
        if current is None:
            return None
        description = copy.deepcopy(current.description)
        change(description)
        return await self._store(current, name, description)

    # --- changes this region coordinates -----------------------------------------

    async def _create(self, entry: CatalogEntry, replica: dict) -> None:
        name, table_id, peer = entry.name, entry.description["table_id"], replica["RegionName"]
        log.info("creating the %s replica of %s (table id %d)", peer, name, table_id)
        answer = await self._control(peer, {
            "command": "replica-install", "name": name, "adopt": bool(replica.get("Adopt")),
            "description": entry_for_region(entry, peer, entry.revision).description,
        })  # fmt: skip
        if not answer.get("installed", False):
            # DynamoDB shows no failed replica either: it is simply not there.
            log.warning("the %s replica of %s cannot be created: %s", peer, name, answer.get("reason"))
            await self._mutate(name, table_id, lambda d: remove_replica(d, peer, self.region))
            return
        others = sorted(replica_regions(entry) & self._peers - {peer})
        for other in others:  # they ship to the new replica from now on
            await self._control(other, _replica_set(name, table_id, peer, {"ReplicaStatus": "CREATING"}))
        if not await self._backfill_peer(name, table_id, peer):
            return
        for other in others:
            await self._control(
                other,
                {"command": "replica-backfill", "name": name, "table_id": table_id, "target": peer},
                timeout_s=limits.REPLICA_PEER_BACKFILL_TIMEOUT_S,
            )
        active = {"ReplicaStatus": "ACTIVE"}
        for region in [peer, *others]:
            await self._control(region, _replica_set(name, table_id, peer, active))
        await self._mutate(name, table_id, lambda d: set_replica(d, peer, active))
        log.info("the %s replica of %s is ACTIVE", peer, name)

    async def _backfill_peer(self, name: str, table_id: int, peer: str) -> bool:
        """Send every stored record of the table to ``peer``, reporting progress;
        False if the table went meanwhile."""
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
                    progress = {"ReplicaStatusPercentProgress": str(percent)}
                    if await self._mutate(name, table_id, lambda d: set_replica(d, peer, progress)) is None:
                        return False
        if batch:
            await self._backfill(peer, batch)
        return True

    async def _update(self, entry: CatalogEntry, replica: dict) -> None:
        name, table_id, peer = entry.name, entry.description["table_id"], replica["RegionName"]
        fields = {**(replica.get("Pending") or {}), "ReplicaStatus": "ACTIVE"}
        for region in sorted(replica_regions(entry) & self._peers):
            await self._control(region, _replica_set(name, table_id, peer, fields))
        await self._mutate(name, table_id, lambda d: set_replica(d, peer, fields))
        log.info("the %s replica of %s is updated", peer, name)

    async def _delete(self, entry: CatalogEntry, replica: dict) -> None:
        name, table_id, peer = entry.name, entry.description["table_id"], replica["RegionName"]
        keep = bool(replica.get("Keep"))
        log.info("%s the %s replica of %s", "detaching" if keep else "deleting", peer, name)
        await self._control(peer, _replica_set(name, table_id, peer, None, drop=not keep))
        for other in sorted(replica_regions(entry) & self._peers - {peer}):
            await self._control(other, _replica_set(name, table_id, peer, None))
        await self._mutate(name, table_id, lambda d: remove_replica(d, peer, self.region))

    async def _leave(self, entry: CatalogEntry) -> None:
        """The table was deleted here (DeleteTable): the other replica regions forget this one."""
        table_id = entry.description["table_id"]
        for replica in entry.description["replicas"]:
            if replica["RegionName"] != self.region and replica["RegionName"] in self._peers:
                await self._control(replica["RegionName"], _replica_set(entry.name, table_id, self.region, None))
        current = (await self._nodes.catalog()).get(entry.name)
        if current is not None and current.revision == entry.revision:  # not re-created meanwhile
            description = copy.deepcopy(entry.description)
            description["replicas"] = []
            await self._store(current, entry.name, description, deleted=True)
        log.info("the other regions forgot the %s replica of %s", self.region, entry.name)

    async def _hand_ttl(self, entry: CatalogEntry) -> None:
        """Give every other replica region this region's TTL setting, once
        per change (a peer that did not take it is asked again next round)."""
        changed_s = entry.description.get("ttl_changed_s")
        if changed_s is None:
            return
        table_id = entry.description["table_id"]
        setting = {key: entry.description.get(key) for key in TTL_SETTING_KEYS}
        for peer in sorted(replica_regions(entry) & self._peers):
            if self._ttl_handed.get((table_id, peer)) == changed_s:
                continue
            answer = await self._control(peer, {"command": "ttl-set", "name": entry.name, "table_id": table_id,
                                                "setting": setting})  # fmt: skip
            if answer.get("stored"):
                self._ttl_handed[(table_id, peer)] = changed_s

    async def _set_ttl(self, command: dict) -> dict:
        """Keep another region's TTL setting if it is newer than this region's."""
        name, table_id, setting = command["name"], int(command["table_id"]), command["setting"]
        current = await self._stored(name, table_id)
        if current is None:
            return {"region": self.region, "stored": False}  # not installed yet: asked again later
        mine = current.description.get("ttl_changed_s")
        if mine is None or setting["ttl_changed_s"] > mine:
            description = copy.deepcopy(current.description)
            description.update({key: setting.get(key) for key in TTL_SETTING_KEYS})
            await self._store(current, name, description)
        return {"region": self.region, "stored": True}

    # --- commands from other regions and from this region's routers ---------------

    async def control(self, command: dict) -> dict | None:
        """Answer a replica-management command; None if ``command`` is not one.

        * ``table-describe`` {table}: the live entry and item count (routers'
          legacy checks, and another region's coordinator);
        * ``replica-install`` {name, description, adopt}: store a new replica's entry;
        * ``replica-set`` {name, table_id, replica_region, replica, drop}: set or remove one replica;
        * ``replica-backfill`` {name, table_id, target}: send ``target`` this region's own versions;
        * ``ttl-set`` {name, table_id, setting}: keep another region's TTL setting if newer.
        """
        name = command.get("command")
        if name == "table-describe":
            return await self._describe(str(command.get("table")))
        if name == "replica-install":
            return await self._install(command["name"], command["description"], bool(command.get("adopt")))
        if name == "replica-set":
            return await self._set(command)
        if name == "replica-backfill":
            return await self._own_backfill(int(command["table_id"]), command["target"])
        if name == "ttl-set":
            return await self._set_ttl(command)
        return None

    async def _describe(self, name: str) -> dict:
        entry = (await self._nodes.catalog()).get(name)
        if entry is None or entry.deleted or "table_id" not in entry.description:
            return {"region": self.region, "description": None}
        count = await self._nodes.item_count(entry.description["table_id"])
        return {"region": self.region, "revision": entry.revision, "description": entry.description, "item_count": count}

    async def _install(self, name: str, description: dict, adopt: bool) -> dict:
        table_id = description["table_id"]
        current = (await self._nodes.catalog()).get(name)
        live = current if current is not None and not current.deleted else None
        replaced = None
        if live is None:
            new = description
        elif live.description.get("table_id") == table_id:  # installed before: take the group again
            new = copy.deepcopy(live.description)
            new["replicas"] = description["replicas"]
        elif adopt:  # a legacy replica: this region's own table joins the group
            replaced = live.description["table_id"]
            if await self._nodes.item_count(replaced) > 0:
                return {"region": self.region, "installed": False, "reason": f"table {name} is not empty"}
            new = copy.deepcopy(live.description)
            new.update(table_id=table_id, replicas=description["replicas"],
                       legacy_created_s=description.get("legacy_created_s"))  # fmt: skip
        else:
            return {"region": self.region, "installed": False, "reason": f"a table {name} already exists"}
        await self._store(current, name, new)
        if replaced is not None:
            await self._nodes.drop_table(replaced)
        return {"region": self.region, "installed": True}

    async def _set(self, command: dict) -> dict:
        name, table_id, region = command["name"], int(command["table_id"]), command["replica_region"]
        current = await self._stored(name, table_id)
        if current is None:
            return {"region": self.region, "changed": False}
        description = copy.deepcopy(current.description)
        fields = command.get("replica")
        deleted = False
        if fields is not None:
            set_replica(description, region, fields)
        elif region == self.region:  # this region leaves the group
            description["replicas"] = []
            description["legacy_created_s"] = None
            deleted = bool(command.get("drop"))
        else:
            remove_replica(description, region, self.region)
        await self._store(current, name, description, deleted)
        if deleted:
            await self._nodes.drop_table(table_id)
        return {"region": self.region, "changed": True}

    async def _own_backfill(self, table_id: int, target: str) -> dict:
        """Send ``target`` every version of the table this region wrote itself."""
        if target not in self._peers:
            raise ControlError(f"{target!r} is not a peer of {self.region}")
        sent = 0
        batch: list[Change] = []
        size = 0
        async for key, record in self._nodes.records(table_id):
            if record_stamp(record).region != self.region:
                continue
            change = record_change(table_id, key, record)
            batch.append(change)
            size += change_size_bytes(change)
            if len(batch) >= limits.REPLICATION_BATCH_CHANGES_MAX or size >= limits.REPLICATION_BATCH_BYTES_MAX:
                await self._backfill(target, batch)
                sent += len(batch)
                batch, size = [], 0
        if batch:
            await self._backfill(target, batch)
            sent += len(batch)
        return {"region": self.region, "sent": sent}


class ReplicaControlService(ReplicatorService):
    """The replicator's gRPC service, also answering the replica-management
    commands (``ReplicaManager.control``) - forwarded ones included."""

    def __init__(self, *args: Any, manager: ReplicaManager, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._manager = manager

    async def control(self, command: dict) -> dict:
        answer = await self._manager.control(command)
        return answer if answer is not None else await super().control(command)
