"""The legacy Global Tables API (version 2017.11.29): CreateGlobalTable,
DescribeGlobalTable, UpdateGlobalTable, ListGlobalTables.

In the legacy model a global table is a group of *existing* tables, one per
region, with the same name and key schema, each empty and streaming
NEW_AND_OLD_IMAGES.  Meridian answers these calls over the machinery of
the current version (``UpdateTable`` ``ReplicaUpdates``): the group is the
table's ``replicas`` in the catalog, marked legacy (``legacy_created_s``),
and this region's replicator does the work (``replication/replicas.py``),
where a legacy replica *adopts* the region's existing table instead of
creating one.  Each region has its own catalog, so a router checks the
other regions' tables synchronously through its region's replicator
(``RegionDirectory``), and the replicator checks again (the table still
there and empty) when it adopts it.  CreateGlobalTable and UpdateGlobalTable
need those answers: when a region cannot be reached they fail with
InternalServerError (``router/regions.py``).  DescribeGlobalTable and
ListGlobalTables answer from this region's catalog.

What differs from the current version, as DynamoDB had it: DescribeTable
shows a legacy group's tables as plain ACTIVE tables (no ``Replicas``, no
``GlobalTableVersion``); removing a region (UpdateGlobalTable ``Delete``)
leaves that region's table in place, as a table of its own; a current
(2019.11.21) global table is not a legacy one (DescribeGlobalTable answers
GlobalTableNotFoundException for it, as live DynamoDB does).

Messages come from live replies where those were recorded (not-found,
empty or malformed ``ReplicaUpdates``, ``ListGlobalTables`` with an unknown
region); where none was, the wording is Meridian's
(docs/compatibility.md lists which).
"""

from __future__ import annotations

import time
from typing import Any

from meridian.model import limits
from meridian.model.errors import (
    GlobalTableAlreadyExistsException,
    GlobalTableNotFoundException,
    InternalServerError,
    ReplicaAlreadyExistsException,
    ReplicaNotFoundException,
    TableNotFoundException,
    ValidationException,
)

from ..context import RouterContext
from ..table_record import ACCOUNT_ID, Table
from .replica_updates import LOCAL_REPLICA, known_regions, unsupported_region

_INVALID = "One or more parameter values were invalid"
_NEW_AND_OLD_IMAGES = {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}


def _global_not_found(name: str) -> GlobalTableNotFoundException:
    return GlobalTableNotFoundException(f"Global table not found: Global table with name: '{name}' does not exist.")


def _table_not_found(name: str, region: str) -> TableNotFoundException:
    return TableNotFoundException(f"Table not found: Table: '{name}' not found in region: '{region}'.")


def _global_exists(name: str) -> GlobalTableAlreadyExistsException:
    return GlobalTableAlreadyExistsException(f"Global table with name: '{name}' already exists.")


#: ``Adopt`` of a replica joining with the group's creation (CreateGlobalTable),
#: or later (UpdateGlobalTable): the group is CREATING, or UPDATING, meanwhile.
_JOINS_AT_CREATION, _JOINS_LATER = "create", "update"


def _global_status(table: Table) -> str:
    """CREATING until every region named at creation joined, UPDATING while
    a region joins or leaves later, else ACTIVE."""
    if any(r.get("Adopt") == _JOINS_AT_CREATION for r in table.replicas):
        return "CREATING"
    return "UPDATING" if table.replicas_changing else "ACTIVE"


def _group(table: Table) -> list[dict[str, str]]:
    return [{"RegionName": r["RegionName"]} for r in table.replicas if r["ReplicaStatus"] != "DELETING"]


def global_table_description(table: Table, status: str | None = None) -> dict[str, Any]:
    """The ``GlobalTableDescription`` of a legacy global table."""
    return {
        "ReplicationGroup": _group(table),
        "GlobalTableArn": f"arn:aws:dynamodb::{ACCOUNT_ID}:global-table/{table.name}",
        "CreationDateTime": table.legacy_created_s,
        "GlobalTableStatus": status or _global_status(table),
        "GlobalTableName": table.name,
    }


async def _legacy_table(ctx: RouterContext, name: str, *, fresh: bool = False) -> Table:
    table = await (ctx.catalog.fresh(name) if fresh else ctx.catalog.get(name))
    if table is None or table.legacy_created_s is None:
        raise _global_not_found(name)
    return table


async def _check_joining(ctx: RouterContext, model: Table, region: str, *, global_name: str) -> None:
    """A legacy replica's conditions on the table ``region`` holds: there,
    empty, same key schema, NEW_AND_OLD_IMAGES stream, not global yet.

    Raises ``RegionUnavailable`` (InternalServerError) when ``region`` cannot
    be reached: the group cannot be formed without knowing its table."""
    name = model.name
    remote = await ctx.catalog.directory.table(region, name)
    if remote is None:
        raise _table_not_found(name, region)
    _check_table(remote.table, remote.item_count, model, region, global_name=global_name)


def _check_table(table: Table, item_count: int, model: Table, region: str, *, global_name: str) -> None:
    if table.replicas or table.legacy_created_s is not None:
        raise _global_exists(global_name)
    if table.key_schema != model.key_schema:
        raise ValidationException(
            f"{_INVALID}: Table: {table.name} in region: {region} does not have the same key schema as the global table"
        )
    if table.stream != _NEW_AND_OLD_IMAGES:
        raise ValidationException(
            f"{_INVALID}: Table: {table.name} in region: {region} must have DynamoDB Streams enabled "
            "with StreamViewType NEW_AND_OLD_IMAGES"
        )
    if item_count > 0:
        raise ValidationException(f"{_INVALID}: Table: {table.name} in region: {region} is not empty")


async def _check_regions(ctx: RouterContext, regions: list[str]) -> None:
    known = await known_regions(ctx)
    if known is None:
        known = [ctx.region]  # without a replicator, no other region can be reached
    for region in regions:
        if region not in known:
            raise unsupported_region(region, known)


async def create_global_table(ctx: RouterContext, body: dict[str, Any]) -> dict[str, Any]:
    name = body["GlobalTableName"]
    regions: list[str] = []
    for member in body["ReplicationGroup"]:
        region = (member or {}).get("RegionName")
        if not region:
            raise ValidationException(_INVALID)
        if region not in regions:
            regions.append(region)
    if ctx.region not in regions:
        # The region that takes the request coordinates the group, so it must be in it.
        raise ValidationException(f"{_INVALID}: ReplicationGroup must include the region of the endpoint: {ctx.region}")
    await _check_regions(ctx, regions)
    table = await ctx.catalog.fresh(name)
    if table is None:
        raise _table_not_found(name, ctx.region)
    if table.replicas or table.legacy_created_s is not None:
        raise _global_exists(name)
    stats = await ctx.storage.table_stats(table.table_id)
    _check_table(table, stats.item_count, table, ctx.region, global_name=name)
    for region in regions:
        if region != ctx.region:
            await _check_joining(ctx, table, region, global_name=name)
    now_s = time.time()
    table.legacy_created_s = now_s
    table.replicas = [
        {"RegionName": region, "ReplicaStatus": "ACTIVE"} if region == ctx.region
        else {"RegionName": region, "ReplicaStatus": "CREATING", "Coordinator": ctx.region, "Adopt": _JOINS_AT_CREATION}
        for region in regions
    ]  # fmt: skip
    await ctx.catalog.save(table, replicas_changed=True)
    return {"GlobalTableDescription": global_table_description(table, "CREATING" if len(regions) > 1 else "ACTIVE")}


async def describe_global_table(ctx: RouterContext, body: dict[str, Any]) -> dict[str, Any]:
    table = await _legacy_table(ctx, body["GlobalTableName"])
    return {"GlobalTableDescription": global_table_description(table)}


async def update_global_table(ctx: RouterContext, body: dict[str, Any]) -> dict[str, Any]:
    name = body["GlobalTableName"]
    actions: list[tuple[str, str]] = []
    for update in body["ReplicaUpdates"]:
        update = update or {}
        kinds = [kind for kind in ("Create", "Delete") if update.get(kind) is not None]
        if len(kinds) != 1:
            raise ValidationException(_INVALID)
        actions.append((kinds[0], update[kinds[0]]["RegionName"]))
    if not actions:
        raise ValidationException(_INVALID)
    table = await _legacy_table(ctx, name, fresh=True)
    await _check_regions(ctx, [region for _, region in actions])
    for kind, region in actions:
        if region == ctx.region:
            raise ValidationException(LOCAL_REPLICA)
        member = table.replica(region)
        if kind == "Create" and member is not None:
            raise ReplicaAlreadyExistsException(f"Replica already exists in region: '{region}'.")
        if kind == "Delete" and (member is None or member["ReplicaStatus"] == "DELETING"):
            raise ReplicaNotFoundException(f"Replica not found in region: '{region}'.")
        if kind == "Create":
            await _check_joining(ctx, table, region, global_name=name)
    for kind, region in actions:
        if kind == "Create":
            table.replicas.append({"RegionName": region, "ReplicaStatus": "CREATING", "Coordinator": ctx.region,
                                   "Adopt": _JOINS_LATER})  # fmt: skip
        else:
            table.replica(region).update(ReplicaStatus="DELETING", Coordinator=ctx.region, Keep=True)
    await ctx.catalog.save(table, replicas_changed=True)
    return {"GlobalTableDescription": global_table_description(table, "UPDATING")}


async def list_global_tables(ctx: RouterContext, body: dict[str, Any]) -> dict[str, Any]:
    region = body.get("RegionName")
    if region is not None and region != ctx.region:  # this region is always known, without asking
        known = await known_regions(ctx) or [ctx.region]
        if region not in known:
            raise InternalServerError("Internal server error")  # what live DynamoDB answers
    tables = sorted(
        (t for t in ctx.catalog.tables()
         if t.legacy_created_s is not None and (region is None or t.replica(region) is not None)),
        key=lambda t: t.name,
    )  # fmt: skip
    start = body.get("ExclusiveStartGlobalTableName")
    if start is not None:
        tables = [t for t in tables if t.name > start]
    limit = body.get("Limit", limits.LIST_GLOBAL_TABLES_LIMIT_DEFAULT)
    out: dict[str, Any] = {
        "GlobalTables": [{"GlobalTableName": t.name, "ReplicationGroup": _group(t)} for t in tables[:limit]]
    }
    if len(tables) > limit:
        out["LastEvaluatedGlobalTableName"] = tables[limit - 1].name
    return out


ACTIONS = {
    "CreateGlobalTable": create_global_table,
    "DescribeGlobalTable": describe_global_table,
    "UpdateGlobalTable": update_global_table,
    "ListGlobalTables": list_global_tables,
}
