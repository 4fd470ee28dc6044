"""A table's metadata as the catalog keeps it: ``Table`` and its ``Index``es.

One record per table, stored as JSON on every node of the region
(``to_record`` / ``from_record``; ``router/catalog.py`` reads and writes
them).  What clients see of a record (``TableDescription``) is built from it
in ``router/actions/descriptions.py``.

Secondary indexes are part of a table's record (``Index``): the part the
storage nodes read to maintain them (``IndexSpec``, ``model/ops.py``) and
the router's own (throughput).

Global Tables: a table's ``replicas`` (every region holding one, this one
included) are written by routers (``UpdateTable`` ``ReplicaUpdates``, the
legacy ``CreateGlobalTable`` / ``UpdateGlobalTable``) and by the region's
replicator (``replication/replicas.py``: statuses, progress, other regions'
changes).

Time to Live: ``ttl_attribute`` (set while TTL is enabled) is what the
storage nodes' expiry sweeps read; UpdateTimeToLive writes it.

DynamoDB Streams: ``stream`` and ``stream_label`` are the enabled stream
(the nodes read them: they record changes of tables whose stream is
enabled); ``past_streams`` the disabled ones still readable
(``router/stream_catalog.py``).

Capacity settings: the provisioned units (``read_capacity``,
``write_capacity``, with their increase and decrease history), an on-demand
table's or GSI's ``OnDemandThroughput`` maxima (``on_demand_max_*_units``,
None for no maximum) and the ``WarmThroughput`` DynamoDB reports
(``warm_*_units_per_s``: never lower than the mode's floor, see
``settle_warm``); ``router/throttle.py`` reads them.

Point-in-time recovery: ``pitr_enabled_s`` and ``pitr_recovery_days`` (set
while PITR is enabled) are what the storage nodes' PITR task reads (periodic
checkpoints, change-log retention); ``restore`` is the RestoreSummary of a
table being restored (``router/restore.py``), None once it is ACTIVE.

Contributor Insights: ``contributor_insights`` holds the setting of each
resource where it is on, ``contributor_insights_disabled`` the last one of
each where it was turned off (``router/actions/contributor_insights.py``);
every router reads the first to know which tables' and indexes' keys to
rank (``router/contributors.py``), and a request on a table where it is
empty costs one attribute test.
"""

from __future__ import annotations

import datetime
import os
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from meridian.model import limits
from meridian.model.ops import IndexSpec

ACCOUNT_ID = "000000000000"

#: Keys of a replica's catalog record that only Meridian reads (who does the
#: work, what a pending change is): never shown to clients.
#: ``Coordinator``: the region whose replicator carries out the change;
#: ``Adopt``: a legacy (2017.11.29) replica made of the region's existing
#: table; ``Keep``: a legacy removal that leaves the region's table in place;
#: ``Pending``: the fields an ``Update`` sets once every region has them.
REPLICA_INTERNAL_KEYS = frozenset({"Coordinator", "Adopt", "Keep", "Pending"})


@dataclass(slots=True)
class Index:
    """One secondary index of a table, as the catalog keeps it."""

    spec: IndexSpec
    read_capacity: int = 0  # GSIs of PROVISIONED tables
    write_capacity: int = 0
    last_increase_s: float | None = None
    last_decrease_s: float | None = None
    decreases_today: int = 0
    #: A GSI of an on-demand table: its OnDemandThroughput maxima (None: no maximum).
    on_demand_max_read_units: int | None = None
    on_demand_max_write_units: int | None = None
    #: A GSI's WarmThroughput (units a second); None: not recorded (a record
    #: from before warm throughput), the mode's floor (``warm_throughput``).
    warm_read_units_per_s: int | None = None
    warm_write_units_per_s: int | None = None

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
            on_demand_max_read_units=self.on_demand_max_read_units,
            on_demand_max_write_units=self.on_demand_max_write_units,
            warm_read_units_per_s=self.warm_read_units_per_s, warm_write_units_per_s=self.warm_write_units_per_s,
        )
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> "Index":
        return cls(
            spec=IndexSpec.from_record(record),
            read_capacity=record.get("read_capacity", 0), write_capacity=record.get("write_capacity", 0),
            last_increase_s=record.get("last_increase_s"), last_decrease_s=record.get("last_decrease_s"),
            decreases_today=record.get("decreases_today", 0),
            on_demand_max_read_units=record.get("on_demand_max_read_units"),
            on_demand_max_write_units=record.get("on_demand_max_write_units"),
            warm_read_units_per_s=record.get("warm_read_units_per_s"),
            warm_write_units_per_s=record.get("warm_write_units_per_s"),
        )


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
    #: When UpdateTable switched the table to PAY_PER_REQUEST within the
    #: quota's window (``limits.PAY_PER_REQUEST_SWITCH_WINDOW_DAYS``), oldest first.
    pay_per_request_switches_s: list[float] = field(default_factory=list)
    #: OnDemandThroughput of an on-demand table (None: no maximum).
    on_demand_max_read_units: int | None = None
    on_demand_max_write_units: int | None = None
    #: WarmThroughput (units a second); None: not recorded, the mode's floor (``warm_throughput``).
    warm_read_units_per_s: int | None = None
    warm_write_units_per_s: int | None = None
    stream: dict[str, Any] | None = None  # {"StreamEnabled": True, "StreamViewType": ...}
    stream_label: str | None = None
    deletion_protection: bool = False
    #: When DeletionProtectionEnabled last changed through UpdateTable (its cooldown).
    deletion_protection_changed_s: float | None = None
    table_class: str | None = None
    #: When UpdateTable last changed the table class (TableClassSummary's
    #: LastUpdateDateTime), and every such change of the last 30 days (its quota).
    table_class_updated_s: float | None = None
    table_class_changes_s: list[float] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    #: Resource-based policies (``router/actions/resource_policies.py``): "" the
    #: table's, a stream's label that stream's, each {"policy", "revision"}.
    resource_policies: dict[str, dict[str, str]] = field(default_factory=dict)
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
    #: Time to Live (``router/actions/ttl.py``).  ``ttl_attribute``: the TTL
    #: attribute while TTL is ENABLING or ENABLED, else None; the storage
    #: nodes read this one member of the record (their expiry sweeps).
    #: ``ttl_last_attribute``: the attribute the last change named (what a
    #: DISABLING table still shows); ``ttl_changed_s``: when TTL last
    #: changed (the status and the change interval follow from it).
    ttl_attribute: str | None = None
    ttl_last_attribute: str | None = None
    ttl_changed_s: float | None = None
    #: DynamoDB Streams: each stream disabled within the retention period, as
    #: {"label", "view_type", "disabled_s"}, oldest first; ``stream_label``
    #: stays the last stream's label once it is disabled (DescribeTable's
    #: LatestStreamLabel).
    past_streams: list[dict[str, Any]] = field(default_factory=list)
    #: Point-in-time recovery (``router/actions/backups.py``): when it was
    #: last enabled (epoch s) and its recovery period, both None while
    #: disabled; the storage nodes read them (``node/pitr.py``).
    pitr_enabled_s: float | None = None
    pitr_recovery_days: int | None = None
    #: A restore in progress into this table: its RestoreSummary
    #: (SourceBackupArn or SourceTableArn, RestoreDateTime,
    #: RestoreInProgress) plus Meridian's own keys (``router/restore.py``);
    #: None for a table not being restored.  The table is CREATING meanwhile.
    restore: dict[str, Any] | None = None
    #: Contributor Insights, per resource ("" the table, else a global index's
    #: name) where it is on: {"mode", "changed_s", "rules_ms", "index_id"
    #: (an index's)}; where it was turned off, its last setting.
    contributor_insights: dict[str, dict[str, Any]] = field(default_factory=dict)
    contributor_insights_disabled: dict[str, dict[str, Any]] = field(default_factory=dict)
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
    def index_key_schemas(self) -> list[tuple[str, tuple[tuple[str, str], ...], int]]:
        """(name, key schema, HASH attribute count) of every secondary index, global ones
        first (the nodes' order)."""
        return [(i.name, i.spec.key_schema, i.spec.hash_count) for i in self.global_indexes] + [
            (i.name, i.spec.key_schema, i.spec.hash_count) for i in self.local_indexes
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
            "pay_per_request_switches_s": self.pay_per_request_switches_s,
            "on_demand_max_read_units": self.on_demand_max_read_units,
            "on_demand_max_write_units": self.on_demand_max_write_units,
            "warm_read_units_per_s": self.warm_read_units_per_s, "warm_write_units_per_s": self.warm_write_units_per_s,
            "stream": self.stream, "stream_label": self.stream_label,
            "deletion_protection": self.deletion_protection, "table_class": self.table_class,
            "deletion_protection_changed_s": self.deletion_protection_changed_s,
            "table_class_updated_s": self.table_class_updated_s, "table_class_changes_s": self.table_class_changes_s,
            "tags": self.tags, "resource_policies": self.resource_policies, "indexes": [index.to_record() for index in self.indexes],
            "replicas": self.replicas, "legacy_created_s": self.legacy_created_s,
            "ttl_attribute": self.ttl_attribute, "ttl_last_attribute": self.ttl_last_attribute,
            "ttl_changed_s": self.ttl_changed_s, "past_streams": self.past_streams,
            "pitr_enabled_s": self.pitr_enabled_s, "pitr_recovery_days": self.pitr_recovery_days,
            "restore": self.restore, "contributor_insights": self.contributor_insights,
            "contributor_insights_disabled": self.contributor_insights_disabled,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any], revision: int) -> "Table":
        fields = dict(record)
        fields["key_schema"] = [tuple(k) for k in fields["key_schema"]]
        fields["indexes"] = [Index.from_record(index) for index in fields.get("indexes") or ()]
        return cls(revision=revision, **fields)

    # --- Global Tables ------------------------------------------------------------
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
    def restoring(self) -> bool:
        """A restore still writes this table's items (it is CREATING)."""
        return self.restore is not None and bool(self.restore.get("RestoreInProgress"))

    @property
    def table_status(self) -> str:
        """DescribeTable's TableStatus: CREATING while restored, UPDATING while a replica changes.

        A legacy (2017.11.29) global table's tables stay ACTIVE: only the
        global table (DescribeGlobalTable) goes through CREATING / UPDATING.
        """
        if self.restoring:
            return "CREATING"
        return "UPDATING" if self.replicas_changing and self.legacy_created_s is None else "ACTIVE"


def decreases_today(holder: Table | Index, now_s: float) -> int:
    """NumberOfDecreasesToday: the count restarts at 00:00 UTC, LastDecreaseDateTime stays."""
    if holder.last_decrease_s is None or utc_day(holder.last_decrease_s) != utc_day(now_s):
        return 0
    return holder.decreases_today


def warm_throughput(holder: Table | Index, billing_mode: str) -> tuple[int, int]:
    """WarmThroughput (ReadUnitsPerSecond, WriteUnitsPerSecond) of a table or a GSI: what
    was recorded, else its mode's floor (``warm_floor``)."""
    floor_read, floor_write = warm_floor(holder, billing_mode)
    read, write = holder.warm_read_units_per_s, holder.warm_write_units_per_s
    return (floor_read if read is None else read), (floor_write if write is None else write)


def warm_floor(holder: Table | Index, billing_mode: str) -> tuple[int, int]:
    """What DynamoDB's warm throughput never goes below: an on-demand table's or
    GSI's initial throughput, or the provisioned units (DDB-TABLE-032, 061)."""
    if billing_mode == "PAY_PER_REQUEST":
        return limits.ON_DEMAND_INITIAL_READ_UNITS_PER_S, limits.ON_DEMAND_INITIAL_WRITE_UNITS_PER_S
    return holder.read_capacity, holder.write_capacity


def settle_warm(holder: Table | Index, billing_mode: str, read: int | None = None, write: int | None = None) -> None:
    """Raise a table's or GSI's warm throughput to ``read`` / ``write`` (a request's) and
    to its mode's floor; it never goes down: it keeps the highest provisioned units a
    table ever had, and an on-demand table's initial throughput after switching back to
    PROVISIONED (DDB-TABLE-061)."""
    current_read, current_write = warm_throughput(holder, billing_mode)
    floor_read, floor_write = warm_floor(holder, billing_mode)
    holder.warm_read_units_per_s = max(current_read, floor_read, read or 0)
    holder.warm_write_units_per_s = max(current_write, floor_write, write or 0)


def utc_day(at_s: float) -> datetime.date:
    return datetime.datetime.fromtimestamp(at_s, datetime.timezone.utc).date()


def new_table_id() -> int:
    """A 63-bit id, unique across routers, so a re-created table never sees old items."""
    return int.from_bytes(os.urandom(8), "big") >> 1


def new_table_uuid() -> str:
    return str(uuid.uuid4())


def stream_label(now_s: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now_s)) + f".{int(now_s * 1000) % 1000:03d}"

