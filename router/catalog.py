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
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from meridian.model import limits
from meridian.model.errors import ResourceNotFoundException
from meridian.model.ops import PROJECTION_INCLUDE, CatalogEntry, IndexSpec, IndexStats

from .storage import Storage

log = logging.getLogger("meridian.router.catalog")

ACCOUNT_ID = "000000000000"
GLOBAL_TABLE_VERSION = "2019.11.21"


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
    #: included, as {"RegionName", "ReplicaStatus", "ReplicaStatusPercentProgress"?,
    #: "Coordinator"}; the coordinator is the region whose replicator creates
    #: or deletes that replica (replication/replicas.py).  Empty: not global.
    replicas: list[dict[str, Any]] = field(default_factory=list)
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
            "replicas": self.replicas,
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
        throughput["ReadCapacityUnits"] = self.read_capacity
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
        if self.table_class is not None:
            out["TableClassSummary"] = {"TableClass": self.table_class}
        out["DeletionProtectionEnabled"] = self.deletion_protection
        if self.replicas:
            out["GlobalTableVersion"] = GLOBAL_TABLE_VERSION
            out["Replicas"] = [
                {k: v for k, v in replica.items() if k != "Coordinator"}
                for replica in self.replicas
                if replica["RegionName"] != self.region
            ]
        return out

    @property
    def replicas_changing(self) -> bool:
        """A replica is being created or deleted: the table is UPDATING."""
        return any(replica["ReplicaStatus"] != "ACTIVE" for replica in self.replicas)


def new_table_id() -> int:
    """A 63-bit id, unique across routers, so a re-created table never sees old items."""
    return int.from_bytes(os.urandom(8), "big") >> 1


def new_table_uuid() -> str:
    return str(uuid.uuid4())


def stream_label(now_s: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now_s)) + f".{int(now_s * 1000) % 1000:03d}"


class Catalog:
    """A router's view of the region's tables."""

    def __init__(self, storage: Storage, region: str, *, shared: bool) -> None:
        """``shared``: other routers may change the catalog (cluster mode), so
        refresh periodically and on misses; in embedded mode this router is
        the only writer and its view is always current."""
        self._storage = storage
        self.region = region
        self._shared = shared
        self._tables: dict[str, Table] = {}
        self._revisions: dict[str, int] = {}
        self._refreshed_at_s = 0.0
        self._built_indexes: set[int] = set()  # GSIs added by UpdateTable seen built on every node
        self._refresh_task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        await self.refresh()
        if self._shared:
            self._refresh_task = asyncio.get_running_loop().create_task(self._refresh_forever())

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

    # --- changes ---------------------------------------------------------------
    async def save(self, table: Table) -> None:
        async with self._lock:
            table.revision = max(self._revisions.get(table.name, 0), table.revision) + 1
            await self._storage.catalog_put(CatalogEntry(table.name, table.revision, table.to_record()))
            self._revisions[table.name] = table.revision
            self._tables[table.name] = table

    async def remove(self, table: Table) -> None:
        async with self._lock:
            revision = max(self._revisions.get(table.name, 0), table.revision) + 1
            await self._storage.catalog_put(CatalogEntry(table.name, revision, table.to_record(), deleted=True))
            self._revisions[table.name] = revision
            self._tables.pop(table.name, None)
