"""The demo's table, ACTIVE and replicated to every region.

The table is created in the first known region (``meridian.lab.load``'s
``ensure_table``, which leaves an existing one as it is), then each missing
replica is added from there, one UpdateTable ``ReplicaUpdates`` Create at a
time, as DynamoDB requires (one create or delete per request, none while
another replica is being created), and waited for in DescribeTable's
``Replicas``. Regions whose router URL is unknown (``--endpoint``) are
known by name only (``ControlClient.regions()``) and handled the same way;
the regions whose router is known are then also asked whether the table is
ACTIVE there.
"""

from __future__ import annotations

import asyncio

from meridian.cluster import limits
from meridian.lab.load.client import DynamoClient
from meridian.lab.load.table import TableSetupError, ensure_table


async def ensure_demo_table(routers: dict[str, str], regions: list[str], table: str,
                            timeout_s: float = limits.TABLE_ACTIVE_TIMEOUT_S) -> None:  # fmt: skip
    """``table`` ACTIVE in every one of ``regions``; ``routers`` holds the known routers (at least one)."""
    first_region, first_url = next(iter(routers.items()))
    await ensure_table({first_region: first_url}, table, timeout_s=timeout_s)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    clients = {region: DynamoClient(url, region) for region, url in routers.items()}
    try:
        first = clients[first_region]
        for region in regions:
            if region == first_region:
                continue
            while (await _describe(first, table))[1].get(region) != "ACTIVE":
                replicas = (await _describe(first, table))[1]
                if region not in replicas:
                    reply = await first.call("UpdateTable", {
                        "TableName": table, "ReplicaUpdates": [{"Create": {"RegionName": region}}],
                    })  # fmt: skip
                    # ResourceInUseException: another replica is still being created; try again shortly.
                    if not reply.ok and reply.error != "ResourceInUseException":
                        raise TableSetupError(f"adding a replica in {region} to {table}: {reply.error}")
                if loop.time() >= deadline:
                    raise TableSetupError(f"the replica of {table} in {region} is not ACTIVE in time: {replicas}")
                await asyncio.sleep(limits.TABLE_POLL_INTERVAL_S)
        for region, client in clients.items():
            while (await _describe(client, table))[0] != "ACTIVE":
                if loop.time() >= deadline:
                    raise TableSetupError(f"{table} is not ACTIVE in {region} in time")
                await asyncio.sleep(limits.TABLE_POLL_INTERVAL_S)
    finally:
        await asyncio.gather(*(client.close() for client in clients.values()))


async def _describe(client: DynamoClient, table: str) -> tuple[str | None, dict[str, str | None]]:
    """(TableStatus, region -> ReplicaStatus) as ``client``'s region sees ``table``; (None, {}) if it has none."""
    reply = await client.call("DescribeTable", {"TableName": table})
    if reply.error == "ResourceNotFoundException":
        return None, {}
    if not reply.ok or reply.body is None:
        raise TableSetupError(f"DescribeTable {table} in {client.region}: {reply.error}")
    description = reply.body["Table"]
    replicas = {r["RegionName"]: r.get("ReplicaStatus") for r in description.get("Replicas", [])}
    return description.get("TableStatus"), replicas
