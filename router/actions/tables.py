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

Global Tables (2019.11.21): UpdateTable's ``ReplicaUpdates`` (Create /
Update / Delete, the only change of its request) is checked against the
table and the deployment's regions, then recorded in the table's replicas
for this region's replicator to carry out (``replication/replicas.py``);
DeleteTable deletes this region's replica only.
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

from ..catalog import Index, RegionUnavailable, Table, new_table_id, new_table_uuid, stream_label
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
    return {"Table": await _describe(ctx, table, table.table_status)}


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
    """Delete the table in this region only: a global table's other replicas
    stay, and this region's replicator tells their regions to forget this one."""
    table = await _require(ctx, body["TableName"])
    if table.replicas:
        table = await ctx.catalog.fresh(table.name) or table
    if table.deletion_protection:
        raise ValidationException(
            "Resource cannot be deleted as it is currently protected against deletion. Disable deletion protection first."
        )
    # A replica change in progress is carried out by a replicator; without
    # one (no other region known) it never will be, so it holds nothing back.
    if table.replicas_changing and ctx.catalog.directory.knows_other_regions:
        own = table.own_replica
        if own is not None and own["ReplicaStatus"] == "CREATING":
            raise ResourceInUseException(
                f"Attempt to change a resource which is still in use: Table: {table.name} is being used."
            )
        raise ResourceInUseException(_REPLICAS_BUSY)
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
# Messages as live DynamoDB replies have them (2020-2026 captures), including
# the typographic quotes and the "a the" of the replica-exists one.

LOCAL_REPLICA = (
    "Cannot add, delete, or update the local region through ReplicaUpdates. "
    "Use CreateTable, DeleteTable, or UpdateTable as required."
)
_GLOBAL_STREAM = {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
_REPLICA_ONLY = f"{_PARAM}Replica modification must be the only operation in the request"
_NO_REPLICA_ACTION = "There are no actions specified in the Replica Update Action of the request."
_MIXED_REPLICA_ACTIONS = "Update table operation with more than one type of replica actions not allowed."
_MANY_REPLICA_ACTIONS = "Update table operation with more than one create or delete replica actions not allowed"
_REPLICAS_BUSY = "The resource which you are attempting to change is in use."
_STREAM_OF_REPLICA = f"{_PARAM}Disabling Stream is not allowed for a Global Table replica."
_PPR_REPLICA_THROUGHPUT = (
    "Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST"
)
_PROVISIONED_ON_DEMAND = (
    "MaxReadRequestUnits for OnDemandThroughput cannot be specified when the table BillingMode is PROVISIONED"
)
#: UpdateTable members that change a table: none may come with ReplicaUpdates.
_NOT_WITH_REPLICA_UPDATES = ("ProvisionedThroughput", "BillingMode", "StreamSpecification", "SSESpecification",
                             "DeletionProtectionEnabled", "OnDemandThroughput", "WarmThroughput", "TableClass",
                             "GlobalSecondaryIndexUpdates")  # fmt: skip
_REPLICA_ACTIONS = ("Create", "Update", "Delete")
#: What an Update may change (one of them makes it an action).
_REPLICA_UPDATE_FIELDS = ("ProvisionedThroughputOverride", "OnDemandThroughputOverride", "TableClassOverride",
                          "GlobalSecondaryIndexes", "KMSMasterKeyId")  # fmt: skip


def replica_exists(name: str) -> ValidationException:
    return ValidationException(
        f"Failed to create a the new replica of table with name: \u2018{name}\u2019 because one or more replicas "
        "already existed as tables."
    )


def not_replicas(regions: list[str]) -> ValidationException:
    return ValidationException(
        "Update global table operation failed because one or more replicas were not part of the global table. "
        f"Please retry the request without these replicas: [{', '.join(regions)}]."
    )


def unsupported_region(region: str, regions: list[str]) -> ValidationException:
    return ValidationException(
        f"Region {region} is not supported. The latest version of global tables are only supported in the "
        f"following regions: [{', '.join(regions)}]"
    )


async def known_regions(ctx: RouterContext) -> list[str] | None:
    """The deployment's regions, when this router can know them (through its replicator)."""
    try:
        return await ctx.catalog.directory.regions()
    except RegionUnavailable:
        return None


def _replica_action(update: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    actions = [name for name in _REPLICA_ACTIONS if update.get(name) is not None]
    if not actions:
        raise ValidationException(_NO_REPLICA_ACTION)
    if len(actions) > 1:
        raise ValidationException(_MIXED_REPLICA_ACTIONS)
    kind = actions[0]
    action = update[kind]
    if kind == "Update" and all(action.get(f) is None for f in _REPLICA_UPDATE_FIELDS):
        raise ValidationException(_NO_REPLICA_ACTION)
    return kind, action


def _check_replica_request(ctx: RouterContext, body: dict[str, Any], updates: list[dict[str, Any]]) -> list:
    """The request-only checks of ReplicaUpdates, in DynamoDB's order; returns (kind, action) pairs."""
    if body.get("GlobalSecondaryIndexUpdates") or any(
        body.get(member) is not None for member in _NOT_WITH_REPLICA_UPDATES if member != "GlobalSecondaryIndexUpdates"
    ):
        raise ValidationException(_REPLICA_ONLY)
    actions = [_replica_action(update) for update in updates]
    for _, action in actions:
        if action.get("RegionName") == ctx.region:
            raise ValidationException(LOCAL_REPLICA)
    # Two identical Creates (or Deletes) of one region count once.
    if len({(kind, action["RegionName"]) for kind, action in actions if kind != "Update"}) > 1:
        raise ValidationException(_MANY_REPLICA_ACTIONS)
    return actions


async def _check_replica_actions(ctx: RouterContext, table: Table, actions: list) -> None:
    """The checks of ReplicaUpdates against the table and the deployment."""
    regions = await known_regions(ctx)
    for kind, action in actions:
        region = action["RegionName"]
        if regions is not None and region not in regions:
            raise unsupported_region(region, regions)
        member = table.replica(region)
        if kind == "Create" and member is not None:
            raise replica_exists(table.name)
        if kind != "Create" and member is None:
            raise not_replicas([region])
    if table.replicas_changing and ctx.catalog.directory.knows_other_regions:  # see delete_table
        raise ResourceInUseException(_REPLICAS_BUSY)
    for kind, action in actions:
        if kind == "Update" and action.get("ProvisionedThroughputOverride") and table.billing_mode == "PAY_PER_REQUEST":
            raise ValidationException(_PPR_REPLICA_THROUGHPUT)
        if action.get("OnDemandThroughputOverride") and table.billing_mode == "PROVISIONED":
            raise ValidationException(_PROVISIONED_ON_DEMAND)
        if kind == "Create" and ctx.catalog.directory.knows_other_regions:
            try:
                there = await ctx.catalog.directory.table(action["RegionName"], table.name)
            except RegionUnavailable:
                there = None  # the replicator checks again before it installs anything
            if there is not None:
                raise replica_exists(table.name)


def replica_settings(table: Table, action: dict[str, Any], now_s: float) -> dict[str, Any]:
    """A replica's own settings as a Create or Update action gives them (None: back to the table's)."""
    settings: dict[str, Any] = {}
    throughput = action.get("ProvisionedThroughputOverride")
    if throughput and throughput.get("ReadCapacityUnits") is not None:
        units = int(throughput["ReadCapacityUnits"])
        # The table's own value clears the override (it is shown only when it differs).
        settings["ProvisionedThroughputOverride"] = None if units == table.read_capacity else {"ReadCapacityUnits": units}
    on_demand = action.get("OnDemandThroughputOverride")
    if on_demand and on_demand.get("MaxReadRequestUnits") is not None:
        settings["OnDemandThroughputOverride"] = {"MaxReadRequestUnits": int(on_demand["MaxReadRequestUnits"])}
    if action.get("TableClassOverride") is not None:
        settings["ReplicaTableClassSummary"] = {"TableClass": action["TableClassOverride"], "LastUpdateDateTime": now_s}
    return settings


def _apply_replica_actions(ctx: RouterContext, table: Table, actions: list, now_s: float) -> None:
    """Record replicas to create (CREATING), update (UPDATING) or delete
    (DELETING); this region's replicator does the work and turns them
    ACTIVE, or removes them (``replication/replicas.py``).  A table becoming
    global gets a NEW_AND_OLD_IMAGES stream, as DynamoDB enables one."""
    for kind, action in actions:
        region = action["RegionName"]
        settings = replica_settings(table, action, now_s)
        if kind == "Create":
            if table.replica(region) is not None:
                continue  # a second identical Create
            if not table.replicas:
                table.replicas.append({"RegionName": ctx.region, "ReplicaStatus": "ACTIVE"})
            replica = {"RegionName": region, "ReplicaStatus": "CREATING", "Coordinator": ctx.region}
            replica.update((k, v) for k, v in settings.items() if v is not None)
            table.replicas.append(replica)
        elif kind == "Update":
            table.replica(region).update(ReplicaStatus="UPDATING", Coordinator=ctx.region, Pending=settings)
        else:
            replica = table.replica(region)
            if replica["ReplicaStatus"] != "DELETING":
                replica.update(ReplicaStatus="DELETING", Coordinator=ctx.region)
                replica.pop("ReplicaStatusPercentProgress", None)
    if table.stream is None and any(kind == "Create" for kind, _ in actions):
        table.stream = dict(_GLOBAL_STREAM)
        table.stream_label = stream_label(now_s)


async def _update_replicas(ctx: RouterContext, body: dict[str, Any], updates: list[dict[str, Any]]) -> dict[str, Any]:
    """UpdateTable with ReplicaUpdates (which must be its only change)."""
    actions = _check_replica_request(ctx, body, updates)
    table = await ctx.catalog.fresh(body["TableName"])  # replica statuses move behind the routers
    if table is None:
        raise _not_found(body["TableName"])
    await _check_replica_actions(ctx, table, actions)
    _apply_replica_actions(ctx, table, actions, time.time())
    answer = await _describe(ctx, table, "UPDATING")
    await ctx.catalog.save(table, replicas_changed=True)
    return {"TableDescription": answer}


async def update_table(ctx: RouterContext, body: dict[str, Any]) -> dict[str, Any]:
    replica_updates = [u for u in body.get("ReplicaUpdates") or () if u is not None]
    if replica_updates:
        return await _update_replicas(ctx, body, replica_updates)
    index_updates = [u for u in body.get("GlobalSecondaryIndexUpdates") or () if u is not None]
    _check_index_throughput_bounds(index_updates)
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
        if not spec.get("StreamEnabled") and table.replicas:
            raise ValidationException(_STREAM_OF_REPLICA)
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
        billing or throughput or any(u.get("Create") or u.get("Delete") for u in index_updates)
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
