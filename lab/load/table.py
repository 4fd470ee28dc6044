"""The workload's table: created once, replicated to every region, ACTIVE everywhere.

The table (partition key ``pk``, a string) is created in the first region,
on-demand unless a ``TableBilling`` says otherwise; every other region is
added as a Global Tables replica (UpdateTable ``ReplicaUpdates``, one region
per call and each ACTIVE before the next, as DynamoDB requires), which is
how a DynamoDB user makes a table global.  Both steps are idempotent: an
existing table or replica is left as it is, so runs can share a table;
only when a billing is asked for and the table has another is it changed
(UpdateTable ``BillingMode`` / ``ProvisionedThroughput``, with DynamoDB's
rules: a refusal is reported, not worked around).
"""

from __future__ import annotations

import asyncio

from meridian.cluster import limits

from .client import DynamoClient
from .spec import TableBilling


class TableSetupError(RuntimeError):
    """The table could not be created, replicated or seen ACTIVE in time."""


async def ensure_table(
    regions: dict[str, str], table: str, *, billing: TableBilling | None = None,
    timeout_s: float = limits.TABLE_ACTIVE_TIMEOUT_S,
) -> TableBilling:  # fmt: skip
    """Create ``table`` in the first region (with ``billing``, on-demand by default), add replicas
    in the rest, wait until ACTIVE everywhere; the table's billing as the first region describes it."""
    clients = {region: DynamoClient(url, region) for region, url in regions.items()}
    first, *others = list(regions)
    deadline = asyncio.get_running_loop().time() + timeout_s
    try:
        reply = await clients[first].call("CreateTable", {
            "TableName": table,
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            **(billing or TableBilling()).request(),
        })  # fmt: skip
        if not reply.ok and reply.error != "ResourceInUseException":
            raise TableSetupError(f"CreateTable {table} in {first}: {reply.error}: {_message(reply.body)}")
        existing, found = await _wait_active(clients[first], table, deadline, replicas=[])
        if billing is not None and found != billing:
            reply = await clients[first].call("UpdateTable", {"TableName": table, **billing.request()})
            if not reply.ok:
                raise TableSetupError(
                    f"{table} is {found}; changing it to {billing} was refused: {reply.error}: {_message(reply.body)}"
                )
            existing, found = await _wait_active(clients[first], table, deadline, replicas=[])
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
        return found
    finally:
        await asyncio.gather(*(client.close() for client in clients.values()))


async def _wait_active(
    client: DynamoClient, table: str, deadline: float, replicas: list[str]
) -> tuple[set[str], TableBilling]:
    """Until the table is ACTIVE in ``client``'s region with each of ``replicas`` ACTIVE;
    the replica regions and the table's billing."""
    loop = asyncio.get_running_loop()
    while True:
        reply = await client.call("DescribeTable", {"TableName": table})
        seen = "no answer"
        if reply.ok and reply.body is not None:
            description = reply.body["Table"]
            statuses = {r["RegionName"]: r.get("ReplicaStatus") for r in description.get("Replicas", [])}
            if description["TableStatus"] == "ACTIVE" and all(statuses.get(r) == "ACTIVE" for r in replicas):
                return set(statuses), TableBilling.of(description)
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
