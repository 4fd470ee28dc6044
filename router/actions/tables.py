"""CreateTable, DescribeTable, ListTables, UpdateTable, DeleteTable.

Shape checks (and the request-only checks DynamoDB runs with them, such as
key schema vs attribute definitions) happen in ``router/validation.py``;
what is here needs the catalog.

Secondary indexes: CreateTable records them (local and global, each with a
fresh random index id); UpdateTable's ``GlobalSecondaryIndexUpdates`` adds
one global index (built by every node from its items: ``Backfilling``),
removes one, or changes throughput, with DynamoDB's checks against the
table as it stands, as far as live replies have been recorded (unknown
index, one online index change per table at a time, index count, attribute
definitions, billing mode).  The nodes learn every change from the catalog
entry (``Engine.catalog_put``).
"""

from __future__ import annotations

import time
from typing import Any

from meridian.model import limits
from meridian.model.errors import (
    LimitExceededException,
    ResourceInUseException,
    ResourceNotFoundException,
    ValidationException,
)
from meridian.model.ops import IndexSpec, IndexStats

from ..catalog import Index, Table, new_table_id, new_table_uuid, stream_label
from ..context import RouterContext
from ..validation import check_key_schema

_PARAM = "One or more parameter values were invalid: "
_ONE_ONLINE_INDEX = "Subscriber limit exceeded: Only 1 online index can be created or deleted simultaneously per table"
_INDEXES_BUSY = (
    "Attempt to change a resource which is still in use: Cannot delete table while indexes are being created, "
    "updated, or deleted."
)
_GUIDE = "Refer to the Amazon DynamoDB Developer Guide for current limits and how to request higher limits."
_NO_STATS = IndexStats()


def _not_found(name: str) -> ResourceNotFoundException:
    return ResourceNotFoundException(f"Requested resource not found: Table: {name} not found")


async def _require(ctx: RouterContext, name: str) -> Table:
    table = await ctx.catalog.get(name)
    if table is None:
        raise _not_found(name)
    return table


async def _describe(
    ctx: RouterContext, table: Table, status: str, index_status: dict[str, str] | None = None
) -> dict[str, Any]:
    stats = await ctx.storage.table_stats(table.table_id)
    return table.describe(status, stats.item_count, stats.size_bytes, stats.indexes, index_status)


def _index(spec: dict[str, Any], types: dict[str, str], *, is_global: bool, backfill: bool, billing: str) -> Index:
    """A validated index of a request as the catalog keeps it, with a fresh id."""
    key_schema = sorted(spec["KeySchema"], key=lambda k: k["KeyType"] != "HASH")
    projection = spec["Projection"]
    throughput = spec.get("ProvisionedThroughput") or {}
    provisioned = is_global and billing == "PROVISIONED"
    return Index(
        IndexSpec(
            name=spec["IndexName"],
            index_id=new_table_id(),
            is_global=is_global,
            key_schema=tuple((k["AttributeName"], types[k["AttributeName"]]) for k in key_schema),
            projection_type=projection["ProjectionType"],
            non_key_attributes=tuple(projection.get("NonKeyAttributes") or ()),
            backfill=backfill,
        ),
        read_capacity=int(throughput.get("ReadCapacityUnits", 0)) if provisioned else 0,
        write_capacity=int(throughput.get("WriteCapacityUnits", 0)) if provisioned else 0,
    )


def _stream(spec: dict[str, Any] | None) -> dict[str, Any] | None:
    if not spec or not spec.get("StreamEnabled"):
        return None
    return {"StreamEnabled": True, "StreamViewType": spec["StreamViewType"]}


async def create_table(ctx: RouterContext, body: dict[str, Any]) -> dict[str, Any]:
    name = body["TableName"]
    if await ctx.catalog.get(name) is not None:
        raise ResourceInUseException(f"Table already exists: {name}")
    types = {d["AttributeName"]: d["AttributeType"] for d in body["AttributeDefinitions"]}
    key_schema = sorted(body["KeySchema"], key=lambda k: k["KeyType"] != "HASH")
    now_s = time.time()
    billing = body.get("BillingMode", "PROVISIONED")
    throughput = body.get("ProvisionedThroughput") or {}
    stream = _stream(body.get("StreamSpecification"))
    indexes = [_index(spec, types, is_global=False, backfill=False, billing=billing)
               for spec in body.get("LocalSecondaryIndexes") or ()]
    indexes += [_index(spec, types, is_global=True, backfill=False, billing=billing)
                for spec in body.get("GlobalSecondaryIndexes") or ()]
    table = Table(
        name=name,
        table_id=new_table_id(),
        uuid=new_table_uuid(),
        key_schema=[(k["AttributeName"], types[k["AttributeName"]]) for k in key_schema],
        attribute_definitions=body["AttributeDefinitions"],
        created_s=now_s,
        region=ctx.region,
        billing_mode=billing,
        billing_mode_explicit="BillingMode" in body,
        read_capacity=int(throughput.get("ReadCapacityUnits", 0)) if billing == "PROVISIONED" else 0,
        write_capacity=int(throughput.get("WriteCapacityUnits", 0)) if billing == "PROVISIONED" else 0,
        last_pay_per_request_s=now_s if billing == "PAY_PER_REQUEST" else None,
        stream=stream,
        stream_label=stream_label(now_s) if stream else None,
        deletion_protection=bool(body.get("DeletionProtectionEnabled", False)),
        table_class=body.get("TableClass"),
        tags={t["Key"]: t["Value"] for t in body.get("Tags", [])},
        indexes=indexes,
    )
    await ctx.catalog.save(table)
    return {"TableDescription": table.describe("CREATING")}


async def describe_table(ctx: RouterContext, body: dict[str, Any]) -> dict[str, Any]:
    table = await _require(ctx, body["TableName"])
    return {"Table": await _describe(ctx, table, "UPDATING" if table.replicas_changing else "ACTIVE")}


async def list_tables(ctx: RouterContext, body: dict[str, Any]) -> dict[str, Any]:
    names = ctx.catalog.names()
    start = body.get("ExclusiveStartTableName")
    if start is not None:
        names = [n for n in names if n > start]
    limit = body.get("Limit", limits.LIST_TABLES_LIMIT_MAX)
    out: dict[str, Any] = {"TableNames": names[:limit]}
    if len(names) > limit:
        out["LastEvaluatedTableName"] = names[limit - 1]
    return out


async def delete_table(ctx: RouterContext, body: dict[str, Any]) -> dict[str, Any]:
    table = await _require(ctx, body["TableName"])
    if table.deletion_protection:
        raise ValidationException(
            "Resource cannot be deleted as it is currently protected against deletion. Disable deletion protection first."
        )
    stats = await ctx.storage.table_stats(table.table_id)
    if any(index.backfilling for index in stats.indexes.values()):
        raise ResourceInUseException(_INDEXES_BUSY)
    description = table.describe("DELETING", stats.item_count, stats.size_bytes, stats.indexes)
    await ctx.catalog.remove(table)
    await ctx.storage.drop_table(table.table_id)
    return {"TableDescription": description}


# --- UpdateTable's GlobalSecondaryIndexUpdates ---------------------------------------


def _check_index_throughput_bounds(updates: list[dict[str, Any]]) -> None:
    """The request-only bound on an Update's capacity units (dynalite records it)."""
    for update in updates:
        action = update.get("Update")
        throughput = (action or {}).get("ProvisionedThroughput")
        if throughput is None:
            continue
        for member in ("ReadCapacityUnits", "WriteCapacityUnits"):
            units = throughput.get(member)
            if units is not None and units > limits.CAPACITY_UNITS_VALUE_MAX:
                raise ValidationException(
                    f"Given value {units} for {member} is out of bounds for index {action['IndexName']}"
                )


def _index_not_found(table: Table, name: str) -> ResourceNotFoundException:
    return ResourceNotFoundException(f"Requested resource not found: Index {name} for table {table.name}")


def _check_create_index(table: Table, body: dict[str, Any], create: dict[str, Any], billing: str) -> dict[str, str]:
    """Checks of one Create against the table; returns the attribute types its keys may use."""
    name = create["IndexName"]
    if table.index(name) is not None:
        raise ValidationException("Attempting to create an index which already exists")
    definitions = body.get("AttributeDefinitions")
    if definitions is None:
        raise ValidationException(f"{_PARAM}AttributeDefinitions is not specified for index: {name}")
    types = {d["AttributeName"]: d["AttributeType"] for d in definitions}
    # A key attribute the table already defines keeps the table's type.
    types.update((d["AttributeName"], d["AttributeType"]) for d in table.attribute_definitions)
    key_schema = create["KeySchema"]
    check_key_schema(key_schema, [d["AttributeName"] for d in definitions], known=types)
    projection = create["Projection"]
    projection_type = projection.get("ProjectionType")
    if projection_type is None:
        raise ValidationException(f"{_PARAM}Unknown ProjectionType: null")
    if projection.get("NonKeyAttributes") is not None and projection_type != "INCLUDE":
        raise ValidationException(f"{_PARAM}ProjectionType is {projection_type}, but NonKeyAttributes is specified")
    if projection.get("NonKeyAttributes") is None and projection_type == "INCLUDE":
        raise ValidationException(f"{_PARAM}ProjectionType is INCLUDE, but NonKeyAttributes is not specified")
    if billing == "PAY_PER_REQUEST" and create.get("ProvisionedThroughput") is not None:
        raise ValidationException(
            f"{_PARAM}ProvisionedThroughput should not be specified for index: {name} when BillingMode is "
            "PAY_PER_REQUEST"
        )
    if billing == "PROVISIONED" and create.get("ProvisionedThroughput") is None:
        raise ValidationException(
            f"{_PARAM}Both ReadCapacityUnits and WriteCapacityUnits must be specified for index: {name}"
        )
    if len(table.global_indexes) + 1 > limits.GLOBAL_SECONDARY_INDEXES_MAX:
        raise LimitExceededException(
            "Subscriber limit exceeded: Number of global secondary indexes exceeds per-table limit of "
            f"{limits.GLOBAL_SECONDARY_INDEXES_MAX}"
        )
    return types


def _check_update_index(table: Table, update: dict[str, Any], billing: str) -> Index:
    name = update["IndexName"]
    index = table.index(name)
    if index is None or not index.is_global:
        raise _index_not_found(table, name)
    throughput = update.get("ProvisionedThroughput")
    if throughput is None:
        return index
    if billing == "PAY_PER_REQUEST":
        raise ValidationException(
            f"{_PARAM}The only Updates for index: {name} when TableThroughputMode is PAY_PER_REQUEST can be to "
            "OnDemandThroughput, WarmThroughput"
        )
    read, write = throughput["ReadCapacityUnits"], throughput["WriteCapacityUnits"]
    if read == index.read_capacity and write == index.write_capacity:
        raise ValidationException(
            f"The provisioned throughput for the index {name} will not change. The requested value equals the "
            f"current value. Current ReadCapacityUnits provisioned for index {name}: {index.read_capacity}. "
            f"Requested ReadCapacityUnits: {read}. Current WriteCapacityUnits provisioned for index {name}: "
            f"{index.write_capacity}. Requested WriteCapacityUnits: {write}. {_GUIDE}"
        )
    return index


async def _check_index_updates(
    ctx: RouterContext, table: Table, body: dict[str, Any], updates: list[dict[str, Any]], billing: str
) -> dict[str, dict[str, str]]:
    """UpdateTable's index checks against the table, in order; returns the
    attribute types each Create may use, by index name."""
    online = [u for u in updates if u.get("Create") is not None or u.get("Delete") is not None]
    if online:
        if body.get("ProvisionedThroughput") is not None:
            raise ValidationException("You cannot create or delete index while updating table IOPS")
        if body.get("StreamSpecification") is not None:
            raise ValidationException("You cannot create or delete index while changing stream status")
        if body.get("DeletionProtectionEnabled") is not None:
            raise ValidationException("DeletionProtection modification must be the only operation in the request")
        if body.get("TableClass") is not None:
            raise ValidationException("TableClass modification must be the only operation in the request")
        if len(online) > 1:
            raise LimitExceededException(_ONE_ONLINE_INDEX)
        stats = await ctx.storage.table_stats(table.table_id)
        building = {index.name for index in table.global_indexes
                    if stats.indexes.get(index.spec.index_id, _NO_STATS).backfilling}
        deleting = (online[0].get("Delete") or {}).get("IndexName")
        if building and deleting not in building:  # only a building index's own delete gets through
            raise LimitExceededException(_ONE_ONLINE_INDEX)
    types: dict[str, dict[str, str]] = {}
    for update in updates:
        if update.get("Update") is not None:
            _check_update_index(table, update["Update"], billing)
        elif update.get("Create") is not None:
            types[update["Create"]["IndexName"]] = _check_create_index(table, body, update["Create"], billing)
        else:
            index = table.index(update["Delete"]["IndexName"])
            if index is None or not index.is_global:
                raise _index_not_found(table, update["Delete"]["IndexName"])
    return types


def _update_index_throughput(index: Index, throughput: dict[str, Any], now_s: float) -> None:
    read, write = int(throughput["ReadCapacityUnits"]), int(throughput["WriteCapacityUnits"])
    if read > index.read_capacity or write > index.write_capacity:
        index.last_increase_s = now_s
    if read < index.read_capacity or write < index.write_capacity:
        index.last_decrease_s = now_s
        index.decreases_today += 1
    index.read_capacity, index.write_capacity = read, write


def _prune_attribute_definitions(table: Table) -> None:
    """Drop the definitions no key uses any more (DynamoDB does, after an index delete)."""
    used = set(table.key_names)
    for index in table.indexes:
        used.update(index.key_names)
    table.attribute_definitions = [d for d in table.attribute_definitions if d["AttributeName"] in used]


# --- UpdateTable's ReplicaUpdates (Global Tables 2019.11.21) ---------------------------

_LOCAL_REPLICA = (
    "Cannot add, delete, or update the local region through ReplicaUpdates. "
    "Use CreateTable, DeleteTable, or UpdateTable as required."
)
_GLOBAL_STREAM = {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}


def _check_replica_updates(ctx: RouterContext, updates: list[dict[str, Any]]) -> None:
    for update in updates:
        for action in update.values():
            if action is not None and action.get("RegionName") == ctx.region:
                raise ValidationException(_LOCAL_REPLICA)


def _apply_replica_updates(ctx: RouterContext, table: Table, updates: list[dict[str, Any]], now_s: float) -> bool:
    """Record replicas to create (CREATING) or delete (DELETING); this
    region's replicator does the work and turns them ACTIVE, or removes
    them (``replication/replicas.py``).  A table becoming global gets a
    NEW_AND_OLD_IMAGES stream, as DynamoDB enables one.  Returns whether
    anything changed."""
    changed = False
    for update in updates:
        create, delete = update.get("Create"), update.get("Delete")
        if create is not None:
            region = create["RegionName"]
            if any(r["RegionName"] == region for r in table.replicas):
                continue
            if not table.replicas:
                table.replicas.append({"RegionName": ctx.region, "ReplicaStatus": "ACTIVE"})
            table.replicas.append({"RegionName": region, "ReplicaStatus": "CREATING", "Coordinator": ctx.region})
            changed = True
        elif delete is not None:
            for replica in table.replicas:
                if replica["RegionName"] == delete["RegionName"] and replica["ReplicaStatus"] != "DELETING":
                    replica.update(ReplicaStatus="DELETING", Coordinator=ctx.region)
                    replica.pop("ReplicaStatusPercentProgress", None)
                    changed = True
    if changed and table.stream is None:
        table.stream = dict(_GLOBAL_STREAM)
        table.stream_label = stream_label(now_s)
    return changed


async def update_table(ctx: RouterContext, body: dict[str, Any]) -> dict[str, Any]:
    index_updates = [u for u in body.get("GlobalSecondaryIndexUpdates") or () if u is not None]
    _check_index_throughput_bounds(index_updates)
    replica_updates = [u for u in body.get("ReplicaUpdates") or () if u is not None]
    _check_replica_updates(ctx, replica_updates)
    table = await _require(ctx, body["TableName"])
    now_s = time.time()
    billing = body.get("BillingMode")
    throughput = body.get("ProvisionedThroughput")
    effective_billing = billing or table.billing_mode
    if throughput is not None and effective_billing == "PAY_PER_REQUEST":
        raise ValidationException(
            "One or more parameter values were invalid: Neither ReadCapacityUnits nor WriteCapacityUnits can be "
            "specified when BillingMode is PAY_PER_REQUEST"
        )
    if billing == "PROVISIONED" and table.billing_mode == "PAY_PER_REQUEST" and throughput is None:
        raise ValidationException(
            "One or more parameter values were invalid: ProvisionedThroughput must be specified when BillingMode is PROVISIONED"
        )
    if throughput is not None and billing is None and table.billing_mode == "PROVISIONED":
        read, write = throughput["ReadCapacityUnits"], throughput["WriteCapacityUnits"]
        if read == table.read_capacity and write == table.write_capacity:
            raise ValidationException(
                "The provisioned throughput for the table will not change. The requested value equals the current value. "
                f"Current ReadCapacityUnits provisioned for the table: {table.read_capacity}. "
                f"Requested ReadCapacityUnits: {read}. "
                f"Current WriteCapacityUnits provisioned for the table: {table.write_capacity}. "
                f"Requested WriteCapacityUnits: {write}. "
                "Refer to the Amazon DynamoDB Developer Guide for current limits and how to request higher limits."
            )
    spec = body.get("StreamSpecification")
    if spec is not None:
        enabled = table.stream is not None
        if spec.get("StreamEnabled") and enabled:
            raise ValidationException(f"Table already has an enabled stream: {table.arn}/stream/{table.stream_label}")
        if not spec.get("StreamEnabled") and not enabled:
            raise ValidationException(f"Table {table.name} does not have a stream to disable")
    if billing == "PROVISIONED" and table.billing_mode == "PAY_PER_REQUEST":
        updated = {u["Update"]["IndexName"] for u in index_updates
                   if u.get("Update") is not None and u["Update"].get("ProvisionedThroughput") is not None}
        for index in table.global_indexes:
            if index.name not in updated:
                raise ValidationException(f"{_PARAM}ProvisionedThroughput must be specified for index: {index.name}")
    index_types = await _check_index_updates(ctx, table, body, index_updates, effective_billing)

    if billing is not None:
        if billing != table.billing_mode and billing == "PAY_PER_REQUEST":
            table.last_pay_per_request_s = now_s
            table.read_capacity = table.write_capacity = 0
            for index in table.global_indexes:
                index.read_capacity = index.write_capacity = 0
        table.billing_mode = billing
        table.billing_mode_explicit = True
    if throughput is not None:
        read, write = int(throughput["ReadCapacityUnits"]), int(throughput["WriteCapacityUnits"])
        if read > table.read_capacity or write > table.write_capacity:
            table.last_increase_s = now_s
        if read < table.read_capacity or write < table.write_capacity:
            table.last_decrease_s = now_s
            table.decreases_today += 1
        table.read_capacity, table.write_capacity = read, write
    if spec is not None:
        table.stream = _stream(spec)
        table.stream_label = stream_label(now_s) if table.stream else table.stream_label
    if "DeletionProtectionEnabled" in body:
        table.deletion_protection = bool(body["DeletionProtectionEnabled"])
    if "TableClass" in body:
        table.table_class = body["TableClass"]
    replicas_changed = _apply_replica_updates(ctx, table, replica_updates, now_s)

    # The answer shows a new index CREATING, a deleted one DELETING and an
    # updated one UPDATING with its old throughput, as DynamoDB's does.
    index_status: dict[str, str] = {}
    deleted: list[Index] = []
    throughputs: list[tuple[Index, dict[str, Any]]] = []
    for update in index_updates:
        if update.get("Create") is not None:
            create = update["Create"]
            types = index_types[create["IndexName"]]
            index = _index(create, types, is_global=True, backfill=True, billing=effective_billing)
            table.indexes.append(index)
            defined = {d["AttributeName"] for d in table.attribute_definitions}
            for name in index.key_names:
                if name not in defined:
                    table.attribute_definitions.append({"AttributeName": name, "AttributeType": types[name]})
            index_status[index.name] = "CREATING"
        elif update.get("Delete") is not None:
            index = table.index(update["Delete"]["IndexName"])
            deleted.append(index)
            index_status[index.name] = "DELETING"
        elif update["Update"].get("ProvisionedThroughput") is not None:
            index = table.index(update["Update"]["IndexName"])
            throughputs.append((index, update["Update"]["ProvisionedThroughput"]))
            index_status[index.name] = "UPDATING"
    changing = (
        billing or throughput or replicas_changed or any(u.get("Create") or u.get("Delete") for u in index_updates)
    )
    answer = await _describe(ctx, table, "UPDATING" if changing else "ACTIVE", index_status)
    for index, index_throughput in throughputs:
        _update_index_throughput(index, index_throughput, now_s)
    if deleted:
        table.indexes = [index for index in table.indexes if index not in deleted]
        _prune_attribute_definitions(table)
    await ctx.catalog.save(table)
    return {"TableDescription": answer}


ACTIONS = {
    "CreateTable": create_table,
    "DescribeTable": describe_table,
    "ListTables": list_tables,
    "DeleteTable": delete_table,
    "UpdateTable": update_table,
}
