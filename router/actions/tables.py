"""CreateTable, DescribeTable, ListTables, UpdateTable, DeleteTable.

Shape checks (and the request-only checks DynamoDB runs with them, such as
key schema vs attribute definitions) happen in ``router/validation.py``;
what is here needs the catalog.
"""

from __future__ import annotations

import time
from typing import Any

from meridian.model import limits
from meridian.model.errors import ResourceInUseException, ResourceNotFoundException, ValidationException

from ..catalog import Table, new_table_id, new_table_uuid, stream_label
from ..context import RouterContext


def _not_found(name: str) -> ResourceNotFoundException:
    return ResourceNotFoundException(f"Requested resource not found: Table: {name} not found")


async def _require(ctx: RouterContext, name: str) -> Table:
    table = await ctx.catalog.get(name)
    if table is None:
        raise _not_found(name)
    return table


async def _describe(ctx: RouterContext, table: Table, status: str) -> dict[str, Any]:
    stats = await ctx.storage.table_stats(table.table_id)
    return table.describe(status, stats.item_count, stats.size_bytes)


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
    )
    await ctx.catalog.save(table)
    return {"TableDescription": table.describe("CREATING")}


async def describe_table(ctx: RouterContext, body: dict[str, Any]) -> dict[str, Any]:
    table = await _require(ctx, body["TableName"])
    return {"Table": await _describe(ctx, table, "ACTIVE")}


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
    description = await _describe(ctx, table, "DELETING")
    await ctx.catalog.remove(table)
    await ctx.storage.drop_table(table.table_id)
    return {"TableDescription": description}


async def update_table(ctx: RouterContext, body: dict[str, Any]) -> dict[str, Any]:
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

    if billing is not None:
        if billing != table.billing_mode and billing == "PAY_PER_REQUEST":
            table.last_pay_per_request_s = now_s
            table.read_capacity = table.write_capacity = 0
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
    await ctx.catalog.save(table)
    return {"TableDescription": await _describe(ctx, table, "UPDATING" if (billing or throughput) else "ACTIVE")}


ACTIONS = {
    "CreateTable": create_table,
    "DescribeTable": describe_table,
    "ListTables": list_tables,
    "DeleteTable": delete_table,
    "UpdateTable": update_table,
}
