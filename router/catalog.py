"""The table catalog as a router sees it.

Table metadata is durable on the storage nodes (every node keeps a copy of
every entry, in its ``meta`` column family); a router keeps an in-memory
view, refreshed from the nodes every ``limits.CATALOG_REFRESH_INTERVAL_S``
and on any miss, so that every router of a region, including one started
later or restarted, sees the same tables.  When copies differ (a node was
down during a change), the newest ``revision`` wins.

Tables are created ACTIVE at once: the CreateTable answer says CREATING (as
DynamoDB's does) and the next DescribeTable says ACTIVE, which is all the
``table-exists`` waiter needs.  DeleteTable answers DELETING and the table
is gone from the next call on.

Secondary indexes are part of a table's record (``Index``): the part the
storage nodes read to maintain them (``IndexSpec``, ``model/ops.py``) and
the router's own (throughput).  A global index added by UpdateTable is
CREATING, with ``Backfilling``, for as long as some node still builds it
from its items (``TableStats``); a deleted one is DELETING in the
UpdateTable answer and gone from the next call on.

Global Tables: a table's ``replicas`` (every region holding one, this one
included) are written by routers (``UpdateTable`` ``ReplicaUpdates``, the
legacy ``CreateGlobalTable`` / ``UpdateGlobalTable``) and by the region's
replicator (``replication/replicas.py``: statuses, progress, other regions'
changes).  A router saving any other change keeps the replicas it finds
stored, so it never undoes the replicator's work with a stale view.  Other
regions' tables are read through the region's replicator
(``RegionDirectory``): routers never talk to other regions.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import grpc

from meridian.model import limits
from meridian.model.errors import ResourceNotFoundException
from meridian.model.ops import PROJECTION_INCLUDE, CatalogEntry, IndexSpec, IndexStats

from .storage import Storage

log = logging.getLogger("meridian.router.catalog")

ACCOUNT_ID = "000000000000"
GLOBAL_TABLE_VERSION = "2019.11.21"

#: Keys of a replica's catalog record that only Meridian reads (who does the
#: work, what a pending change is): never shown to clients.
#: ``Coordinator``: the region whose replicator carries out the change;
#: ``Adopt``: a legacy (2017.11.29) replica made of the region's existing
#: table; ``Keep``: a legacy removal that leaves the region's table in place;
#: ``Pending``: the fields an ``Update`` sets once every region has them.
REPLICA_INTERNAL_KEYS = frozenset({"Coordinator", "Adopt", "Keep", "Pending"})
#: How long a router waits for its region's replicator (and, through it,
#: for another region) when a request needs another region's catalog.
REMOTE_CATALOG_TIMEOUT_S = 5.0


@dataclass(slots=True)
class Index:
    """One secondary index of a table, as the catalog keeps it."""

    spec: IndexSpec
    read_capacity: int = 0  # GSIs of PROVISIONED tables
    write_capacity: int = 0
    last_increase_s: float | None = None
    last_decrease_s: float | None = None
    decreases_today: int = 0

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def is_global(self) -> bool:
        return self.spec.is_global

    @property
    def key_schema(self) -> list[tuple[str, str]]:
        return list(self.spec.key_schema)

    @property
    def key_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.spec.key_schema)

    def to_record(self) -> dict[str, Any]:
        record = self.spec.to_record()
        record.update(
            read_capacity=self.read_capacity, write_capacity=self.write_capacity,
            last_increase_s=self.last_increase_s, last_decrease_s=self.last_decrease_s,
            decreases_today=self.decreases_today,
        )
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> "Index":
        return cls(
            spec=IndexSpec.from_record(record),
            read_capacity=record.get("read_capacity", 0), write_capacity=record.get("write_capacity", 0),
            last_increase_s=record.get("last_increase_s"), last_decrease_s=record.get("last_decrease_s"),
            decreases_today=record.get("decreases_today", 0),
        )

    def describe(self, table_arn: str, status: str, stats: IndexStats | None) -> dict[str, Any]:
        """Its ``LocalSecondaryIndexDescription`` / ``GlobalSecondaryIndexDescription``.

        ``status`` is a GSI's IndexStatus; a GSI added by UpdateTable shows
        ``Backfilling`` while it is CREATING, true once nodes build it.
        """
        key_schema = [{"AttributeName": self.spec.key_schema[0][0], "KeyType": "HASH"}]
        if len(self.spec.key_schema) > 1:
            key_schema.append({"AttributeName": self.spec.key_schema[1][0], "KeyType": "RANGE"})
        projection: dict[str, Any] = {"ProjectionType": self.spec.projection_type}
        if self.spec.projection_type == PROJECTION_INCLUDE:
            projection["NonKeyAttributes"] = sorted(self.spec.non_key_attributes)
        out: dict[str, Any] = {"IndexName": self.name, "KeySchema": key_schema, "Projection": projection}
        if self.is_global:
            out["IndexStatus"] = status
            if status == "CREATING" and self.spec.backfill:
                out["Backfilling"] = stats is not None and stats.backfilling
            throughput: dict[str, Any] = {"NumberOfDecreasesToday": self.decreases_today}
            if self.last_increase_s is not None:
                throughput["LastIncreaseDateTime"] = self.last_increase_s
            if self.last_decrease_s is not None:
                throughput["LastDecreaseDateTime"] = self.last_decrease_s
            throughput["ReadCapacityUnits"] = self.read_capacity
            throughput["WriteCapacityUnits"] = self.write_capacity
            out["ProvisionedThroughput"] = throughput
        out["IndexSizeBytes"] = stats.size_bytes if stats is not None else 0
        out["ItemCount"] = stats.item_count if stats is not None else 0
        out["IndexArn"] = f"{table_arn}/index/{self.name}"
        return out


@dataclass(slots=True)
class Table:
    """One table's metadata (what DescribeTable shows, minus live statistics)."""

    name: str
    table_id: int
    uuid: str
    key_schema: list[tuple[str, str]]  # [(pk_name, pk_type), (sk_name, sk_type)?]
    attribute_definitions: list[dict[str, str]]
    created_s: float
    region: str
    billing_mode: str = "PROVISIONED"
    billing_mode_explicit: bool = False
    read_capacity: int = 0
    write_capacity: int = 0
    last_increase_s: float | None = None
    last_decrease_s: float | None = None
    decreases_today: int = 0
    last_pay_per_request_s: float | None = None
    stream: dict[str, Any] | None = None  # {"StreamEnabled": True, "StreamViewType": ...}
    stream_label: str | None = None
    deletion_protection: bool = False
    table_class: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    indexes: list[Index] = field(default_factory=list)  # local ones first, each kind in creation order
    #: Global Tables (2019.11.21): every region holding a replica, this one
    #: included, as its ``ReplicaDescription`` (RegionName, ReplicaStatus,
    #: ReplicaStatusPercentProgress, ProvisionedThroughputOverride,
    #: ReplicaTableClassSummary ...) plus ``REPLICA_INTERNAL_KEYS``; the
    #: coordinator is the region whose replicator creates, updates or deletes
    #: that replica (replication/replicas.py).  Empty: not global.
    replicas: list[dict[str, Any]] = field(default_factory=list)
    #: Set when the table is a legacy (2017.11.29) global table, made by
    #: CreateGlobalTable: the global table's creation time.  Such a table
    #: replicates through the same ``replicas``, but shows as a plain table
    #: in DescribeTable and answers DescribeGlobalTable instead.
    legacy_created_s: float | None = None
    revision: int = 0

    @property
    def arn(self) -> str:
        return f"arn:aws:dynamodb:{self.region}:{ACCOUNT_ID}:table/{self.name}"

    @property
    def key_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.key_schema)

    def index(self, name: str) -> Index | None:
        for index in self.indexes:
            if index.name == name:
                return index
        return None

    @property
    def index_key_schemas(self) -> list[tuple[str, tuple[tuple[str, str], ...]]]:
        """(name, key schema) of every secondary index, global ones first (the nodes' order)."""
        return [(i.name, i.spec.key_schema) for i in self.global_indexes] + [
            (i.name, i.spec.key_schema) for i in self.local_indexes
        ]

    @property
    def global_indexes(self) -> list[Index]:
        return [index for index in self.indexes if index.is_global]

    @property
    def local_indexes(self) -> list[Index]:
        return [index for index in self.indexes if not index.is_global]

    # --- persistence ------------------------------------------------------------
    def to_record(self) -> dict[str, Any]:
        return {
            "name": self.name, "table_id": self.table_id, "uuid": self.uuid,
            "key_schema": [list(k) for k in self.key_schema],
            "attribute_definitions": self.attribute_definitions,
            "created_s": self.created_s, "region": self.region,
            "billing_mode": self.billing_mode, "billing_mode_explicit": self.billing_mode_explicit,
            "read_capacity": self.read_capacity, "write_capacity": self.write_capacity,
            "last_increase_s": self.last_increase_s, "last_decrease_s": self.last_decrease_s,
            "decreases_today": self.decreases_today, "last_pay_per_request_s": self.last_pay_per_request_s,
            "stream": self.stream, "stream_label": self.stream_label,
            "deletion_protection": self.deletion_protection, "table_class": self.table_class,
            "tags": self.tags, "indexes": [index.to_record() for index in self.indexes],
            "replicas": self.replicas, "legacy_created_s": self.legacy_created_s,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any], revision: int) -> "Table":
        fields = dict(record)
        fields["key_schema"] = [tuple(k) for k in fields["key_schema"]]
        fields["indexes"] = [Index.from_record(index) for index in fields.get("indexes") or ()]
        return cls(revision=revision, **fields)

    # --- DescribeTable ------------------------------------------------------------
    def describe(
        self,
        status: str,
        item_count: int = 0,
        size_bytes: int = 0,
        index_stats: dict[int, IndexStats] | None = None,
        index_status: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """The ``TableDescription`` DynamoDB returns for this table.

        ``index_stats``: the indexes' live statistics, by index id;
        ``index_status``: a GSI's IndexStatus when it is not the one the
        table's state implies (CREATING while the table is, or while nodes
        backfill it; otherwise ACTIVE).
        """
        key_schema = [{"AttributeName": self.key_schema[0][0], "KeyType": "HASH"}]
        if len(self.key_schema) > 1:
            key_schema.append({"AttributeName": self.key_schema[1][0], "KeyType": "RANGE"})
        throughput: dict[str, Any] = {"NumberOfDecreasesToday": self.decreases_today}
        if self.last_increase_s is not None:
            throughput["LastIncreaseDateTime"] = self.last_increase_s
        if self.last_decrease_s is not None:
            throughput["LastDecreaseDateTime"] = self.last_decrease_s
        own = self.own_replica or {}
        override = own.get("ProvisionedThroughputOverride") if self.billing_mode == "PROVISIONED" else None
        throughput["ReadCapacityUnits"] = override["ReadCapacityUnits"] if override else self.read_capacity
        throughput["WriteCapacityUnits"] = self.write_capacity
        out: dict[str, Any] = {
            "AttributeDefinitions": self.attribute_definitions,
            "TableName": self.name,
            "KeySchema": key_schema,
            "TableStatus": status,
            "CreationDateTime": self.created_s,
            "ProvisionedThroughput": throughput,
            "TableSizeBytes": size_bytes,
            "ItemCount": item_count,
            "TableArn": self.arn,
            "TableId": self.uuid,
        }
        if self.billing_mode == "PAY_PER_REQUEST" or self.billing_mode_explicit:
            summary: dict[str, Any] = {"BillingMode": self.billing_mode}
            if self.billing_mode == "PAY_PER_REQUEST":
                summary["LastUpdateToPayPerRequestDateTime"] = self.last_pay_per_request_s or self.created_s
            out["BillingModeSummary"] = summary
        if self.stream is not None and self.stream.get("StreamEnabled"):
            out["StreamSpecification"] = self.stream
            out["LatestStreamLabel"] = self.stream_label
            out["LatestStreamArn"] = f"{self.arn}/stream/{self.stream_label}"
        index_stats = index_stats or {}
        local = [index.describe(self.arn, "", index_stats.get(index.spec.index_id)) for index in self.local_indexes]
        if local:
            out["LocalSecondaryIndexes"] = local
        global_ = []
        for index in self.global_indexes:
            stats = index_stats.get(index.spec.index_id)
            index_state = (index_status or {}).get(index.name)
            if index_state is None:
                creating = status == "CREATING" or (stats is not None and stats.backfilling)
                index_state = "CREATING" if creating else "ACTIVE"
            global_.append(index.describe(self.arn, index_state, stats))
        if global_:
            out["GlobalSecondaryIndexes"] = global_
        if own.get("ReplicaTableClassSummary") is not None:
            out["TableClassSummary"] = dict(own["ReplicaTableClassSummary"])
        elif self.table_class is not None:
            out["TableClassSummary"] = {"TableClass": self.table_class}
        out["DeletionProtectionEnabled"] = self.deletion_protection
        if self.replicas and self.legacy_created_s is None:
            out["GlobalTableVersion"] = GLOBAL_TABLE_VERSION
            out["Replicas"] = [
                shown_replica(replica) for replica in self.replicas if replica["RegionName"] != self.region
            ]
        return out

    @property
    def own_replica(self) -> dict[str, Any] | None:
        """This region's entry in ``replicas`` (its per-replica overrides), if global."""
        for replica in self.replicas:
            if replica["RegionName"] == self.region:
                return replica
        return None

    def replica(self, region: str) -> dict[str, Any] | None:
        for replica in self.replicas:
            if replica["RegionName"] == region:
                return replica
        return None

    @property
    def replicas_changing(self) -> bool:
        """A replica is being created, updated or deleted: the table is UPDATING."""
        return any(replica["ReplicaStatus"] != "ACTIVE" for replica in self.replicas)

    @property
    def table_status(self) -> str:
        """DescribeTable's TableStatus: UPDATING while a replica changes.

        A legacy (2017.11.29) global table's tables stay ACTIVE: only the
        global table (DescribeGlobalTable) goes through CREATING / UPDATING.
        """
        return "UPDATING" if self.replicas_changing and self.legacy_created_s is None else "ACTIVE"


def shown_replica(replica: dict[str, Any]) -> dict[str, Any]:
    """A replica's ``ReplicaDescription``, without Meridian's own bookkeeping."""
    return {k: v for k, v in replica.items() if k not in REPLICA_INTERNAL_KEYS}


def new_table_id() -> int:
    """A 63-bit id, unique across routers, so a re-created table never sees old items."""
    return int.from_bytes(os.urandom(8), "big") >> 1


def new_table_uuid() -> str:
    return str(uuid.uuid4())


def stream_label(now_s: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now_s)) + f".{int(now_s * 1000) % 1000:03d}"


class Catalog:
    """A router's view of the region's tables."""

    def __init__(self, storage: Storage, region: str, *, shared: bool, directory: RegionDirectory | None = None) -> None:
        """``shared``: other routers may change the catalog (cluster mode), so
        refresh periodically and on misses; in embedded mode this router is
        the only writer and its view is always current.  ``directory``: the
        other regions, through this region's replicator (default: none known)."""
        self._storage = storage
        self.region = region
        self.directory = directory if directory is not None else RegionDirectory(region, None)
        self._shared = shared
        self._tables: dict[str, Table] = {}
        self._revisions: dict[str, int] = {}
        self._refreshed_at_s = 0.0
        self._built_indexes: set[int] = set()  # GSIs added by UpdateTable seen built on every node
        self._refresh_task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        await self._first_refresh()
        if self._shared:
            self._refresh_task = asyncio.get_running_loop().create_task(self._refresh_forever())

    async def _first_refresh(self) -> None:
        """Read the catalog once, retrying while the nodes are not up yet.

        A router is often started alongside its nodes (``meridian up``,
        docker-compose); one that gave up at the first unanswered read would
        make start order matter.  After ``CATALOG_START_TIMEOUT_S`` the last
        error is raised.
        """
        deadline = time.monotonic() + limits.CATALOG_START_TIMEOUT_S
        while True:
            try:
                await self.refresh()
                return
            except Exception as exc:  # noqa: BLE001 - any storage error: retry until the deadline
                if time.monotonic() >= deadline:
                    raise
                log.info("catalog not readable yet (%s); retrying", exc)
                await asyncio.sleep(limits.CATALOG_START_RETRY_S)

    async def stop(self) -> None:
        if self._refresh_task is not None:
            self._refresh_task.cancel()
            try:
                await self._refresh_task
            except asyncio.CancelledError:
                pass

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(limits.CATALOG_REFRESH_INTERVAL_S)
            try:
                await self.refresh()
            except Exception as exc:  # noqa: BLE001 - keep serving from the last view
                log.warning("catalog refresh failed: %s", exc)

    async def refresh(self) -> None:
        entries = await self._storage.catalog_list()
        tables: dict[str, Table] = {}
        revisions: dict[str, int] = {}
        for entry in entries:
            revisions[entry.name] = entry.revision
            if not entry.deleted:
                tables[entry.name] = Table.from_record(entry.description, entry.revision)
        self._tables = tables
        self._revisions = revisions
        self._refreshed_at_s = time.monotonic()

    # --- lookups ---------------------------------------------------------------
    def get_cached(self, name: str) -> Table | None:
        return self._tables.get(name)

    async def get(self, name: str) -> Table | None:
        """The table, refreshing once from the nodes on a miss in cluster mode."""
        table = self._tables.get(name)
        if table is None and self._shared:
            await self.refresh()
            table = self._tables.get(name)
        return table

    async def require(self, name: str, message: str = "Requested resource not found") -> Table:
        table = await self.get(name)
        if table is None:
            raise ResourceNotFoundException(message)
        return table

    async def index_built(self, table: Table, index: Index) -> bool:
        """Whether a global index may be read: not being built by some node.

        Only an index added to an existing table is ever built; once every
        node reported it built it stays so, and is not asked about again.
        """
        index_id = index.spec.index_id
        if not index.spec.backfill or index_id in self._built_indexes:
            return True
        stats = (await self._storage.table_stats(table.table_id)).indexes.get(index_id)
        if stats is None or stats.backfilling:
            return False
        self._built_indexes.add(index_id)
        return True

    def names(self) -> list[str]:
        return sorted(self._tables)

    def tables(self) -> list[Table]:
        return list(self._tables.values())

    async def fresh(self, name: str) -> Table | None:
        """The table as stored now, not as last refreshed (cluster mode: the
        region's replicator changes replica statuses behind the routers)."""
        if self._shared:
            await self.refresh()
        return self._tables.get(name)

    # --- changes ---------------------------------------------------------------
    async def save(self, table: Table, *, replicas_changed: bool = False) -> None:
        """Store a table's new record.  Unless ``replicas_changed`` (the
        caller changed them on a fresh view), the replicas stored now are
        kept: the replicator may have moved them on since this view was read."""
        async with self._lock:
            if not replicas_changed:
                await self._keep_stored_replicas(table)
            table.revision = max(self._revisions.get(table.name, 0), table.revision) + 1
            await self._storage.catalog_put(CatalogEntry(table.name, table.revision, table.to_record()))
            self._revisions[table.name] = table.revision
            self._tables[table.name] = table

    async def remove(self, table: Table) -> None:
        """Delete a table here; the record keeps its replicas, so that this
        region's replicator tells the other replica regions (``replicas.py``)."""
        async with self._lock:
            await self._keep_stored_replicas(table)
            revision = max(self._revisions.get(table.name, 0), table.revision) + 1
            await self._storage.catalog_put(CatalogEntry(table.name, revision, table.to_record(), deleted=True))
            self._revisions[table.name] = revision
            self._tables.pop(table.name, None)

    async def _keep_stored_replicas(self, table: Table) -> None:
        if not self._shared:
            return  # embedded: no replicator, this view is the only writer
        for entry in await self._storage.catalog_list():
            if entry.name == table.name and not entry.deleted and entry.description.get("table_id") == table.table_id:
                table.replicas = entry.description.get("replicas") or []
                table.legacy_created_s = entry.description.get("legacy_created_s")
                return


@dataclass(frozen=True, slots=True)
class RemoteTable:
    """A table as another region's catalog holds it."""

    region: str
    table: Table
    item_count: int


class RegionUnavailable(Exception):
    """The region's replicator, or through it another region, did not answer."""


class RegionDirectory:
    """The deployment's regions and their tables, as far as a router may know them.

    Routers never talk to other regions: every question goes to this
    region's replicator (``--replicator``), which answers for its region or
    forwards it to the region named (``replication/peers.py``).  Without a
    replicator (embedded, or one region) only this region is known.
    """

    def __init__(self, region: str, replicator: str | None) -> None:
        self.region = region
        self._replicator = replicator
        self._regions: list[str] | None = None  # the topology is fixed at start: asked once

    @property
    def knows_other_regions(self) -> bool:
        return self._replicator is not None

    async def _call(self, command: dict) -> dict:
        from meridian.replication.peers import control  # only routers with a replicator load replication

        try:
            return await control(self._replicator, command, timeout_s=REMOTE_CATALOG_TIMEOUT_S)
        except grpc.aio.AioRpcError as exc:
            raise RegionUnavailable(f"{command.get('region', self.region)}: {exc.code().name} {exc.details()}") from exc

    async def regions(self) -> list[str] | None:
        """Every region of the deployment, sorted (None: not known here)."""
        if self._replicator is None:
            return None
        if self._regions is None:
            answer = await self._call({"command": "peers"})
            self._regions = sorted({self.region, *answer["replicators"]})
        return list(self._regions)

    async def table(self, region: str, name: str) -> RemoteTable | None:
        """The live table ``name`` in ``region`` (None if it has none)."""
        answer = await self._call({"command": "table-describe", "table": name, "region": region})
        if answer.get("description") is None:
            return None
        table = Table.from_record(answer["description"], int(answer["revision"]))
        return RemoteTable(region, table, int(answer["item_count"]))
