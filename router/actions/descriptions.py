"""What the table actions answer: ``TableDescription`` and its index descriptions.

CreateTable, DescribeTable, UpdateTable and DeleteTable all answer a
``TableDescription`` built here from the table's catalog record
(``router/table_record.py``) and, except for CreateTable's, the live
statistics the nodes keep (item count and size, per table and per index,
and whether a new global index is still being built).  Meridian's own
bookkeeping in the record (``REPLICA_INTERNAL_KEYS``, a restore's own keys)
never reaches a client.

Capacity settings as DynamoDB shows them: ``OnDemandThroughput`` only while
a maximum is set, on an on-demand table or GSI (DDB-TABLE-028, 182);
``WarmThroughput`` always, on the table and each GSI (DDB-TABLE-032), ACTIVE
unless the answer is to a change of it (UPDATING, with the old values).
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping
from typing import Any

from meridian.model.errors import ResourceNotFoundException
from meridian.model.ops import PROJECTION_INCLUDE, IndexStats

from ..context import RouterContext
from ..table_record import REPLICA_INTERNAL_KEYS, Index, Table, decreases_today, warm_throughput

#: The members of a table's ``restore`` record shown as its RestoreSummary
#: (the others are Meridian's own, ``router/restore.py``).
RESTORE_SUMMARY_KEYS = ("SourceBackupArn", "SourceTableArn", "RestoreDateTime", "RestoreInProgress")

GLOBAL_TABLE_VERSION = "2019.11.21"


def table_not_found(name: str) -> ResourceNotFoundException:
    return ResourceNotFoundException(f"Requested resource not found: Table: {name} not found")


async def require_table(ctx: RouterContext, name: str) -> Table:
    """The table, or DynamoDB's not-found error naming it."""
    table = await ctx.catalog.get(name)
    if table is None:
        raise table_not_found(name)
    return table


async def live_description(
    ctx: RouterContext, table: Table, status: str, index_status: dict[str, str] | None = None,
    *, billing_date_shown: bool = True, warm_updating: Collection[str | None] = (),
    on_demand_shown: Mapping[str | None, dict[str, int]] | None = None,
) -> dict[str, Any]:
    """The table's description with the nodes' live statistics."""
    stats = await ctx.storage.table_stats(table.table_id)
    return table_description(table, status, stats.item_count, stats.size_bytes, stats.indexes, index_status,
                             billing_date_shown=billing_date_shown, warm_updating=warm_updating,
                             on_demand_shown=on_demand_shown)


#: What DeleteTable's answer leaves out of a description (DDB-TABLE-363).
_NOT_IN_DELETED = ("AttributeDefinitions", "KeySchema", "CreationDateTime", "LocalSecondaryIndexes",
                   "GlobalSecondaryIndexes", "WarmThroughput")


def deleted_description(table: Table, item_count: int, size_bytes: int) -> dict[str, Any]:
    """DeleteTable's ``TableDescription``: DELETING, without the key schema, the
    attribute definitions, the indexes and the creation date."""
    out = table_description(table, "DELETING", item_count, size_bytes)
    return {k: v for k, v in out.items() if k not in _NOT_IN_DELETED}


def _java_order(name: str) -> bytes:
    """Sort key of Java's String.compareTo (UTF-16 code units)."""
    return name.encode("utf-16-be")


def table_description(
    table: Table,
    status: str,
    item_count: int = 0,
    size_bytes: int = 0,
    index_stats: dict[int, IndexStats] | None = None,
    index_status: dict[str, str] | None = None,
    *,
    billing_date_shown: bool = True,
    warm_updating: Collection[str | None] = (),
    on_demand_shown: Mapping[str | None, dict[str, int]] | None = None,
) -> dict[str, Any]:
    """The ``TableDescription`` DynamoDB returns for ``table``.

    ``index_stats``: the indexes' live statistics, by index id;
    ``index_status``: a GSI's IndexStatus when it is not the one the
    table's state implies (CREATING while the table is, or while nodes
    backfill it; otherwise ACTIVE); ``billing_date_shown``: False in the
    answers of CreateTable and of a billing mode switch, whose
    BillingModeSummary names the mode only (DDB-TABLE-033, DDB-TABLE-060);
    ``warm_updating``: the table (None) and GSIs (names) whose WarmThroughput
    the answer shows UPDATING; ``on_demand_shown``: the OnDemandThroughput an
    UpdateTable answer shows for the table (None) or a GSI it changed (-1 for
    a maximum it removed, DDB-TABLE-182).
    """
    on_demand_shown = on_demand_shown or {}
    now_s = time.time()
    key_schema = [{"AttributeName": table.key_schema[0][0], "KeyType": "HASH"}]
    if len(table.key_schema) > 1:
        key_schema.append({"AttributeName": table.key_schema[1][0], "KeyType": "RANGE"})
    throughput: dict[str, Any] = {"NumberOfDecreasesToday": decreases_today(table, now_s)}
    if table.last_increase_s is not None:
        throughput["LastIncreaseDateTime"] = table.last_increase_s
    if table.last_decrease_s is not None:
        throughput["LastDecreaseDateTime"] = table.last_decrease_s
    own = table.own_replica or {}
    override = own.get("ProvisionedThroughputOverride") if table.billing_mode == "PROVISIONED" else None
    throughput["ReadCapacityUnits"] = override["ReadCapacityUnits"] if override else table.read_capacity
    throughput["WriteCapacityUnits"] = table.write_capacity
    out: dict[str, Any] = {
        # Sorted by name, as DynamoDB lists them (DDB-TABLE-125).
        "AttributeDefinitions": sorted(table.attribute_definitions, key=lambda d: _java_order(d["AttributeName"])),
        "TableName": table.name,
        "KeySchema": key_schema,
        "TableStatus": status,
        "CreationDateTime": table.created_s,
        "ProvisionedThroughput": throughput,
        "TableSizeBytes": size_bytes,
        "ItemCount": item_count,
        "TableArn": table.arn,
        "TableId": table.uuid,
    }
    if table.billing_mode == "PAY_PER_REQUEST" or table.last_pay_per_request_s is not None:
        # Shown once the table has been on demand, whether or not it still is;
        # never for a table only ever PROVISIONED, BillingMode given or not
        # (DDB-TABLE-025, DDB-TABLE-055).
        summary: dict[str, Any] = {"BillingMode": table.billing_mode}
        if billing_date_shown:
            summary["LastUpdateToPayPerRequestDateTime"] = table.last_pay_per_request_s or table.created_s
        out["BillingModeSummary"] = summary
    if table.stream is not None and table.stream.get("StreamEnabled"):
        out["StreamSpecification"] = table.stream
    if table.stream_label is not None:
        # A disabled stream is still the latest one (live DynamoDB keeps
        # naming it, without a StreamSpecification: ScyllaDB PR 31553's test).
        out["LatestStreamLabel"] = table.stream_label
        out["LatestStreamArn"] = f"{table.arn}/stream/{table.stream_label}"
    index_stats = index_stats or {}
    local = [
        index_description(index, table.arn, "", index_stats.get(index.spec.index_id)) for index in table.local_indexes
    ]
    if local:
        out["LocalSecondaryIndexes"] = local
    global_ = []
    for index in table.global_indexes:
        stats = index_stats.get(index.spec.index_id)
        index_state = (index_status or {}).get(index.name)
        if index_state is None:
            creating = status == "CREATING" or (stats is not None and stats.backfilling)
            index_state = "CREATING" if creating else "ACTIVE"
        global_.append(index_description(index, table.arn, index_state, stats, table.billing_mode,
                                         warm_updating=index.name in warm_updating,
                                         on_demand_shown=on_demand_shown.get(index.name)))
    if global_:
        out["GlobalSecondaryIndexes"] = global_
    if own.get("ReplicaTableClassSummary") is not None:
        out["TableClassSummary"] = dict(own["ReplicaTableClassSummary"])
    elif table.table_class is not None:
        # Absent until a class is given (DDB-TABLE-026); dated once UpdateTable changed it (DDB-TABLE-180).
        out["TableClassSummary"] = {"TableClass": table.table_class}
        if table.table_class_updated_s is not None:
            out["TableClassSummary"]["LastUpdateDateTime"] = table.table_class_updated_s
    out["DeletionProtectionEnabled"] = table.deletion_protection
    out.update(capacity_settings(table, table.billing_mode, None in warm_updating, on_demand_shown.get(None)))
    if table.replicas and table.legacy_created_s is None:
        out["GlobalTableVersion"] = GLOBAL_TABLE_VERSION
        out["Replicas"] = [
            shown_replica(replica) for replica in table.replicas if replica["RegionName"] != table.region
        ]
    if table.restore is not None:
        # Only while the restore runs: live DynamoDB drops it at ACTIVE (DDB-TABLE-216).
        out["RestoreSummary"] = {k: table.restore[k] for k in RESTORE_SUMMARY_KEYS if k in table.restore}
    return out


def capacity_settings(holder: Table | Index, billing_mode: str, warm_updating: bool = False,
                      on_demand_shown: dict[str, int] | None = None) -> dict[str, Any]:
    """A table's or GSI's ``OnDemandThroughput`` (while a maximum is set, or as an
    UpdateTable answer shows it) and ``WarmThroughput``."""
    out: dict[str, Any] = {}
    if on_demand_shown is None and billing_mode == "PAY_PER_REQUEST":
        maxima = (("MaxReadRequestUnits", holder.on_demand_max_read_units),
                  ("MaxWriteRequestUnits", holder.on_demand_max_write_units))
        on_demand_shown = {member: units for member, units in maxima if units is not None}
    if on_demand_shown:
        out["OnDemandThroughput"] = on_demand_shown
    read, write = warm_throughput(holder, billing_mode)
    out["WarmThroughput"] = {"ReadUnitsPerSecond": read, "WriteUnitsPerSecond": write,
                             "Status": "UPDATING" if warm_updating else "ACTIVE"}
    return out


def index_description(index: Index, table_arn: str, status: str, stats: IndexStats | None,
                      billing_mode: str = "PROVISIONED", *, warm_updating: bool = False,
                      on_demand_shown: dict[str, int] | None = None) -> dict[str, Any]:
    """An index's ``LocalSecondaryIndexDescription`` / ``GlobalSecondaryIndexDescription``.

    ``status`` is a GSI's IndexStatus; a GSI added by UpdateTable shows
    ``Backfilling`` while it is CREATING, true once nodes build it.  A GSI's
    capacity settings are ``capacity_settings``'s, in its table's ``billing_mode``.
    """
    key_schema = index.spec.key_schema_elements()
    projection: dict[str, Any] = {"ProjectionType": index.spec.projection_type}
    if index.spec.projection_type == PROJECTION_INCLUDE:
        projection["NonKeyAttributes"] = sorted(index.spec.non_key_attributes)
    out: dict[str, Any] = {"IndexName": index.name, "KeySchema": key_schema, "Projection": projection}
    if index.is_global:
        out["IndexStatus"] = status
        if status == "CREATING" and index.spec.backfill:
            out["Backfilling"] = stats is not None and stats.backfilling
        throughput: dict[str, Any] = {"NumberOfDecreasesToday": decreases_today(index, time.time())}
        if index.last_increase_s is not None:
            throughput["LastIncreaseDateTime"] = index.last_increase_s
        if index.last_decrease_s is not None:
            throughput["LastDecreaseDateTime"] = index.last_decrease_s
        throughput["ReadCapacityUnits"] = index.read_capacity
        throughput["WriteCapacityUnits"] = index.write_capacity
        out["ProvisionedThroughput"] = throughput
    out["IndexSizeBytes"] = stats.size_bytes if stats is not None else 0
    out["ItemCount"] = stats.item_count if stats is not None else 0
    out["IndexArn"] = f"{table_arn}/index/{index.name}"
    if index.is_global:
        out.update(capacity_settings(index, billing_mode, warm_updating, on_demand_shown))
    return out


def shown_replica(replica: dict[str, Any]) -> dict[str, Any]:
    """A replica's ``ReplicaDescription``, without Meridian's own bookkeeping."""
    return {k: v for k, v in replica.items() if k not in REPLICA_INTERNAL_KEYS}
