"""UpdateTable's ``ReplicaUpdates`` (Global Tables, version 2019.11.21).

Create / Update / Delete of a replica, the only change its request may
carry, is checked against the request, the table and the deployment's
regions, then recorded in the table's replicas for this region's replicator
to carry out (``replication/replicas.py``); the answer says UPDATING.  The
legacy 2017.11.29 calls (``global_tables.py``) share the region checks and
messages kept here.

Another region is asked two things: which regions exist (fixed for the
deployment's life, asked once) and, for a Create, whether the new region
already holds a table of that name.  When it cannot be reached the rule of
``router/regions.py`` applies (InternalServerError); the one exception is
marked where it is made.
"""

from __future__ import annotations

import time
from typing import Any

from meridian.model.errors import ResourceInUseException, ValidationException

from ..context import RouterContext
from ..regions import RegionUnavailable
from ..table_record import Table, stream_label
from .descriptions import live_description, table_not_found

_PARAM = "One or more parameter values were invalid: "

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
REPLICAS_BUSY = "The resource which you are attempting to change is in use."
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
    """The deployment's regions; None when this router has no replicator and
    so cannot know them (embedded, one region).

    Raises ``RegionUnavailable`` (InternalServerError) when its replicator
    does not answer: a region check that cannot be made fails the request,
    rather than letting through a region no replicator would ever serve.
    """
    return await ctx.catalog.directory.regions()


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
    if table.replicas_changing and ctx.catalog.directory.knows_other_regions:  # see tables.delete_table
        raise ResourceInUseException(REPLICAS_BUSY)
    for kind, action in actions:
        if kind == "Update" and action.get("ProvisionedThroughputOverride") and table.billing_mode == "PAY_PER_REQUEST":
            raise ValidationException(_PPR_REPLICA_THROUGHPUT)
        if action.get("OnDemandThroughputOverride") and table.billing_mode == "PROVISIONED":
            raise ValidationException(_PROVISIONED_ON_DEMAND)
        if kind == "Create" and ctx.catalog.directory.knows_other_regions:
            try:
                there = await ctx.catalog.directory.table(action["RegionName"], table.name)
            except RegionUnavailable:
                # Tolerated, the one exception to router/regions.py's rule: this
                # check only answers early what the coordinating replicator checks
                # again before it installs anything (replica-install refuses an
                # existing table, and the replica is then dropped, as DynamoDB
                # shows no failed replica), so the request can be recorded now.
                there = None
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


async def update_replicas(ctx: RouterContext, body: dict[str, Any], updates: list[dict[str, Any]]) -> dict[str, Any]:
    """UpdateTable with ReplicaUpdates (which must be its only change)."""
    actions = _check_replica_request(ctx, body, updates)
    table = await ctx.catalog.fresh(body["TableName"])  # replica statuses move behind the routers
    if table is None:
        raise table_not_found(body["TableName"])
    await _check_replica_actions(ctx, table, actions)
    _apply_replica_actions(ctx, table, actions, time.time())
    answer = await live_description(ctx, table, "UPDATING")
    await ctx.catalog.save(table, replicas_changed=True)
    return {"TableDescription": answer}
