"""CreateTable, DescribeTable, ListTables, DeleteTable, UpdateTable.

Shape checks (and the request-only checks DynamoDB runs with them, such as
key schema vs attribute definitions) happen in ``router/validation.py``;
what is here needs the catalog.  The answers are built by
``descriptions.py``.

UpdateTable changes the table itself here (billing mode, throughput,
stream, deletion protection, table class); its ``GlobalSecondaryIndexUpdates``
are ``table_indexes.py``'s, and its ``ReplicaUpdates`` (Global Tables
2019.11.21, the only change of their request) ``replica_updates.py``'s.
DeleteTable deletes this region's replica only.
"""

from __future__ import annotations

import time
from typing import Any

from meridian.model import limits
from meridian.model.errors import ResourceInUseException, ValidationException

from ..context import RouterContext
from ..stream_catalog import inherited_streams, new_stream_label, retire_stream
from ..table_record import Table, new_table_id, new_table_uuid, stream_label
from .descriptions import live_description, require_table, table_description
from .replica_updates import REPLICAS_BUSY, update_replicas
from .table_indexes import (
    check_index_throughput_bounds,
    check_index_updates,
    new_index,
    stage_index_updates,
    update_throughput,
)

_PARAM = "One or more parameter values were invalid: "
_INDEXES_BUSY = (
    "Attempt to change a resource which is still in use: Cannot delete table while indexes are being created, "
    "updated, or deleted."
)
_STREAM_OF_REPLICA = f"{_PARAM}Disabling Stream is not allowed for a Global Table replica."


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
    indexes = [new_index(spec, types, is_global=False, backfill=False, billing=billing)
               for spec in body.get("LocalSecondaryIndexes") or ()]
    indexes += [new_index(spec, types, is_global=True, backfill=False, billing=billing)
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
    table.past_streams = inherited_streams(ctx.catalog.deleted(name), now_s, ctx.stream_retention_s)
    if table.stream is not None and table.past_streams:
        table.stream_label = None
        table.stream_label = new_stream_label(table, now_s)  # never one of the inherited streams' labels
    await ctx.catalog.save(table)
    return {"TableDescription": table_description(table, "CREATING")}


async def describe_table(ctx: RouterContext, body: dict[str, Any]) -> dict[str, Any]:
    table = await require_table(ctx, body["TableName"])
    return {"Table": await live_description(ctx, table, table.table_status)}


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
    table = await require_table(ctx, body["TableName"])
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
        raise ResourceInUseException(REPLICAS_BUSY)
    stats = await ctx.storage.table_stats(table.table_id)
    if any(index.backfilling for index in stats.indexes.values()):
        raise ResourceInUseException(_INDEXES_BUSY)
    description = table_description(table, "DELETING", stats.item_count, stats.size_bytes, stats.indexes)
    # The table's streams outlive it for their retention (router/stream_catalog.py).
    retire_stream(table, time.time(), ctx.stream_retention_s)
    table.stream = None
    await ctx.catalog.remove(table)
    await ctx.storage.drop_table(table.table_id)
    return {"TableDescription": description}



async def update_table(ctx: RouterContext, body: dict[str, Any]) -> dict[str, Any]:
    replica_updates = [u for u in body.get("ReplicaUpdates") or () if u is not None]
    if replica_updates:
        return await update_replicas(ctx, body, replica_updates)
    index_updates = [u for u in body.get("GlobalSecondaryIndexUpdates") or () if u is not None]
    check_index_throughput_bounds(index_updates)
    table = await require_table(ctx, body["TableName"])
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
    index_types = await check_index_updates(ctx, table, body, index_updates, effective_billing)

    if billing is not None:
        if billing != table.billing_mode and billing == "PAY_PER_REQUEST":
            table.last_pay_per_request_s = now_s
            table.read_capacity = table.write_capacity = 0
            for index in table.global_indexes:
                index.read_capacity = index.write_capacity = 0
        table.billing_mode = billing
        table.billing_mode_explicit = True
    if throughput is not None:
        update_throughput(table, throughput, now_s)
    if spec is not None:
        # Disabling keeps the stream readable for the retention period;
        # enabling makes a new stream (a new label, so a new ARN).
        new_stream = _stream(spec)
        if new_stream is None:
            retire_stream(table, now_s, ctx.stream_retention_s)
        else:
            table.stream_label = new_stream_label(table, now_s)
        table.stream = new_stream
    if "DeletionProtectionEnabled" in body:
        table.deletion_protection = bool(body["DeletionProtectionEnabled"])
    if "TableClass" in body:
        table.table_class = body["TableClass"]

    staged = stage_index_updates(table, index_updates, index_types, effective_billing)
    changing = (
        billing or throughput or any(u.get("Create") or u.get("Delete") for u in index_updates)
    )
    answer = await live_description(ctx, table, "UPDATING" if changing else "ACTIVE", staged.status)
    staged.finish(table, now_s)
    await ctx.catalog.save(table)
    return {"TableDescription": answer}


ACTIONS = {
    "CreateTable": create_table,
    "DescribeTable": describe_table,
    "ListTables": list_tables,
    "DeleteTable": delete_table,
    "UpdateTable": update_table,
}
