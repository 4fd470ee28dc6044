"""The workload's table: created once, replicated to every region, ACTIVE everywhere.

The table (partition key ``pk``, a string, on-demand billing) is created in
the first region; every other region is added as a Global Tables replica
(UpdateTable ``ReplicaUpdates``, one region per call and each ACTIVE before
the next, as DynamoDB requires), which is how a DynamoDB user makes a table
global.  Both steps are idempotent: an existing table or replica is left as
it is, so runs can share a table.
"""

from __future__ import annotations

import asyncio

from meridian.cluster import limits

from .client import DynamoClient


class TableSetupError(RuntimeError):
    """The table could not be created, replicated or seen ACTIVE in time."""


async def ensure_table(regions: dict[str, str], table: str, *, timeout_s: float = limits.TABLE_ACTIVE_TIMEOUT_S) -> None:
    """Create ``table`` in the first region, add replicas in the rest, wait until ACTIVE everywhere."""
    clients = {region: DynamoClient(url, region) for region, url in regions.items()}
    first, *others = list(regions)
    deadline = asyncio.get_running_loop().time() + timeout_s
    try:
        reply = await clients[first].call("CreateTable", {
            "TableName": table,
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "BillingMode": "PAY_PER_REQUEST",
        })  # fmt: skip
        if not reply.ok and reply.error != "ResourceInUseException":
            raise TableSetupError(f"CreateTable {table} in {first}: {reply.error}: {_message(reply.body)}")
        existing = await _wait_active(clients[first], table, deadline, replicas=[])
        added: list[str] = []
        for region in others:  # DynamoDB takes one replica creation per UpdateTable
            if region not in existing:
                update = [{"Create": {"RegionName": region}}]
                reply = await clients[first].call("UpdateTable", {"TableName": table, "ReplicaUpdates": update})
                if not reply.ok:
                    raise TableSetupError(f"adding a replica in {region} to {table}: {reply.error}: {_message(reply.body)}")
            added.append(region)
            await _wait_active(clients[first], table, deadline, replicas=added)
        for region in others:
            await _wait_active(clients[region], table, deadline, replicas=[])
    finally:
        await asyncio.gather(*(client.close() for client in clients.values()))


async def _wait_active(client: DynamoClient, table: str, deadline: float, replicas: list[str]) -> set[str]:
    """Until the table is ACTIVE in ``client``'s region with each of ``replicas`` ACTIVE; the replica regions."""
    loop = asyncio.get_running_loop()
    while True:
        reply = await client.call("DescribeTable", {"TableName": table})
        seen = "no answer"
        if reply.ok and reply.body is not None:
            description = reply.body["Table"]
            statuses = {r["RegionName"]: r.get("ReplicaStatus") for r in description.get("Replicas", [])}
            if description["TableStatus"] == "ACTIVE" and all(statuses.get(r) == "ACTIVE" for r in replicas):
                return set(statuses)
            seen = f"{description['TableStatus']}, replicas {statuses}"
        elif reply.error is not None:
            seen = reply.error
        if loop.time() >= deadline:
            raise TableSetupError(f"{table} in {client.region} not ACTIVE in time (last seen: {seen})")
        await asyncio.sleep(limits.TABLE_POLL_INTERVAL_S)


def _message(body: dict | None) -> str:
    if not body:
        return ""
    return str(body.get("message") or body.get("Message") or "")
