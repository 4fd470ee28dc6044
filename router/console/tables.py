"""The console's tables and items, read through the router's own action handlers.

No HTTP hop and no second code path: each call is validated and run exactly
as a client's ``ListTables`` / ``DescribeTable`` / ``Scan`` would be, so the
console shows what a client would see, errors included.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson

from meridian.model import limits
from meridian.model.errors import ResourceNotFoundException

from ..actions import ACTIONS
from ..actions.ttl import ttl_status
from ..context import RouterContext
from ..validation import validate_request


async def run_action(ctx: RouterContext, name: str, body: dict[str, Any]) -> dict[str, Any]:
    """Run one DynamoDB action in-process; raises ``DynamoError`` as it would answer."""
    validate_request(name, body)
    result = await ACTIONS[name](ctx, body)
    return orjson.loads(result) if result.__class__ is bytes else result


def _summary(table: dict[str, Any]) -> dict[str, Any]:
    """What the tables list shows of a DescribeTable answer."""
    return {
        "name": table["TableName"],
        "status": table["TableStatus"],
        "item_count": table.get("ItemCount", 0),
        "size_bytes": table.get("TableSizeBytes", 0),
        "key_schema": table["KeySchema"],
        "attribute_definitions": table.get("AttributeDefinitions", []),
        "replicas": table.get("Replicas", []),
        "indexes": [
            {"name": index["IndexName"], "kind": kind, "key_schema": index["KeySchema"]}
            for kind, member in (("local", "LocalSecondaryIndexes"), ("global", "GlobalSecondaryIndexes"))
            for index in table.get(member, [])
        ],
        "created": table.get("CreationDateTime"),
    }


async def _ttl(ctx: RouterContext, name: str) -> dict[str, Any] | None:
    """The table's Time to Live: its attribute and status (DescribeTimeToLive's, from the
    catalog record) and the items it deleted in this region (CloudWatch's
    TimeToLiveDeletedItemCount, summed over the nodes); None once the table is gone."""
    table = ctx.catalog.get_cached(name)
    if table is None:
        return None
    stats = await ctx.storage.table_stats(table.table_id)
    return {
        "attribute": table.ttl_attribute,
        "status": ttl_status(table, time.time()),
        "deleted_count": stats.ttl_deleted_count,
    }


async def list_tables(ctx: RouterContext) -> dict[str, Any]:
    """Every table (up to ``limits.CONSOLE_TABLES_MAX``) with its description's essentials
    and its Time to Live (``_ttl``)."""
    names: list[str] = []
    body: dict[str, Any] = {"Limit": limits.LIST_TABLES_LIMIT_MAX}
    more = True
    while more and len(names) < limits.CONSOLE_TABLES_MAX:
        page = await run_action(ctx, "ListTables", body)
        names += page["TableNames"]
        more = "LastEvaluatedTableName" in page
        if more:
            body["ExclusiveStartTableName"] = page["LastEvaluatedTableName"]
    truncated = more or len(names) > limits.CONSOLE_TABLES_MAX
    gate = asyncio.Semaphore(limits.CONSOLE_DESCRIBE_CONCURRENCY)

    async def describe(name: str) -> dict[str, Any] | None:
        async with gate:
            try:
                summary = _summary((await run_action(ctx, "DescribeTable", {"TableName": name}))["Table"])
            except ResourceNotFoundException:  # deleted between the two calls
                return None
            summary["ttl"] = await _ttl(ctx, name)
            return summary

    described = await asyncio.gather(*(describe(name) for name in names[:limits.CONSOLE_TABLES_MAX]))
    tables = [table for table in described if table is not None]
    return {"region": ctx.region, "tables": tables, "truncated": truncated}


def page_limit(text: str | None) -> int:
    """The ``limit`` query parameter, bounded; ``ValueError`` when it is not a positive whole number."""
    if text is None or text == "":
        return limits.CONSOLE_PAGE_ITEMS_DEFAULT
    limit = int(text)
    if limit < 1:
        raise ValueError("limit must be at least 1")
    return min(limit, limits.CONSOLE_PAGE_ITEMS_MAX)


async def scan_page(ctx: RouterContext, table: str, limit: int, start: dict[str, Any] | None) -> dict[str, Any]:
    """One page of a table's items in Scan order, and where the next page starts."""
    body: dict[str, Any] = {"TableName": table, "Limit": limit}
    if start:
        body["ExclusiveStartKey"] = start
    page = await run_action(ctx, "Scan", body)
    return {
        "table": table,
        "items": page.get("Items", []),
        "count": page.get("Count", 0),
        "last_evaluated_key": page.get("LastEvaluatedKey"),
    }
