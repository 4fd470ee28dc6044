"""DescribeEndpoints and DescribeLimits: facts about the service itself."""

from __future__ import annotations

from typing import Any

from meridian.model import limits

from ..context import RouterContext


async def describe_endpoints(ctx: RouterContext, body: dict[str, Any]) -> dict[str, Any]:
    return {"Endpoints": [{"Address": ctx.address, "CachePeriodInMinutes": limits.ENDPOINT_CACHE_PERIOD_MINUTES}]}


async def describe_limits(ctx: RouterContext, body: dict[str, Any]) -> dict[str, Any]:
    """The quotas Meridian enforces, DynamoDB's defaults: the total of provisioned
    units over every table and GSI of the region (CreateTable / UpdateTable,
    ``tables.py``), the most one table or GSI may provision, ask as an on-demand
    maximum or warm to (``table_indexes.py``)."""
    return {
        "AccountMaxReadCapacityUnits": limits.ACCOUNT_MAX_READ_CAPACITY_UNITS,
        "AccountMaxWriteCapacityUnits": limits.ACCOUNT_MAX_WRITE_CAPACITY_UNITS,
        "TableMaxReadCapacityUnits": limits.TABLE_MAX_READ_CAPACITY_UNITS,
        "TableMaxWriteCapacityUnits": limits.TABLE_MAX_WRITE_CAPACITY_UNITS,
    }


ACTIONS = {
    "DescribeEndpoints": describe_endpoints,
    "DescribeLimits": describe_limits,
}
