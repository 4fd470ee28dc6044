"""UpdateTimeToLive, DescribeTimeToLive: a table's Time to Live setting.

The setting lives in the table's catalog record (``router/table_record.py``:
``ttl_attribute``, ``ttl_last_attribute``, ``ttl_changed_s``), saved through
the catalog like every table change.  The storage nodes read
``ttl_attribute`` and expire items by it (``node/ttl.py``); nothing here
touches items.

States.  A change shows its transitional status (ENABLING, DISABLING) for
``limits.TTL_TRANSITION_S`` after it is made, then the settled one (ENABLED,
DISABLED); the status follows from the record and the clock, so a describe
writes nothing.  The nodes expire by the attribute from the moment TTL is
enabled (ENABLING included) and stop the moment it is disabled.

Checks, in DynamoDB's order (content before timing, as live DynamoDB
answers; each message as live DynamoDB words it):

1. the table exists (ResourceNotFoundException);
2. enabling while enabled (ENABLING counts) on the same attribute:
   "TimeToLive is already enabled"; on another attribute, or disabling it
   by another attribute's name: "TimeToLive is active on a different
   AttributeName: current AttributeName is <name>";
3. disabling while disabled (DISABLING counts): "TimeToLive is already
   disabled";
4. a change within ``ctx.ttl_change_interval_s`` of the last successful one
   (DynamoDB's hour): "Time to live has been modified multiple times within
   a fixed interval".  A refused call does not restart the interval.

Global Tables: DynamoDB keeps one TTL setting for all of a global table's
replicas.  This changes this region's record; the region's replicator hands
the setting to every other replica region, where the newest change wins
(``replication/replicas.py``, ``ttl-set``); a replica created later starts
from a copy of the record, TTL included.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from meridian.model import limits
from meridian.model.errors import ValidationException

from ..context import RouterContext
from ..table_record import Table
from .descriptions import require_table, table_not_found

_ALREADY_ENABLED = "TimeToLive is already enabled"
_ALREADY_DISABLED = "TimeToLive is already disabled"
_TOO_SOON = "Time to live has been modified multiple times within a fixed interval"


def _other_attribute(current: str) -> str:
    return f"TimeToLive is active on a different AttributeName: current AttributeName is {current}"


def ttl_status(table: Table, now_s: float) -> str:
    """DescribeTimeToLive's TimeToLiveStatus for ``table`` at ``now_s``."""
    if table.ttl_changed_s is None:
        return "DISABLED"
    settled = now_s - table.ttl_changed_s >= limits.TTL_TRANSITION_S
    if table.ttl_attribute is not None:
        return "ENABLED" if settled else "ENABLING"
    return "DISABLED" if settled else "DISABLING"


def ttl_description(table: Table, now_s: float) -> dict[str, Any]:
    """The ``TimeToLiveDescription`` of ``table``: its status, and the
    attribute while TTL is enabled or being disabled."""
    status = ttl_status(table, now_s)
    out: dict[str, Any] = {"TimeToLiveStatus": status}
    if status in ("ENABLING", "ENABLED"):
        out["AttributeName"] = table.ttl_attribute
    elif status == "DISABLING":
        # guess: a DISABLING table still names its attribute (live DynamoDB
        # shows DISABLING too briefly to capture); a DISABLED one does not.
        out["AttributeName"] = table.ttl_last_attribute
    return out


def check_ttl_change(table: Table, enabled: bool, attribute: str, now_s: float, interval_s: float) -> None:
    """Refuse a change DynamoDB refuses, in its order (module docstring)."""
    current = table.ttl_attribute
    if current is not None:
        if attribute != current:
            # guess: disabling by another attribute's name is refused with
            # the same message as enabling one (captures show the latter).
            raise ValidationException(_other_attribute(current))
        if enabled:
            raise ValidationException(_ALREADY_ENABLED)
    elif not enabled:
        raise ValidationException(_ALREADY_DISABLED)
    if table.ttl_changed_s is not None and now_s - table.ttl_changed_s < interval_s:
        raise ValidationException(_TOO_SOON)


async def update_time_to_live(ctx: RouterContext, body: dict[str, Any]) -> dict[str, Any]:
    name = body["TableName"]
    # A fresh view: another router of the region may have changed TTL since
    # this one last refreshed, and the interval rule is the region's.
    table = await ctx.catalog.fresh(name)
    if table is None:
        raise table_not_found(name)
    spec = body["TimeToLiveSpecification"]
    enabled, attribute = bool(spec["Enabled"]), spec["AttributeName"]
    now_s = time.time()
    check_ttl_change(table, enabled, attribute, now_s, ctx.ttl_change_interval_s)
    # A copy: the cached record changes only once the new one is stored.
    changed = dataclasses.replace(
        table, ttl_attribute=attribute if enabled else None, ttl_last_attribute=attribute, ttl_changed_s=now_s
    )
    await ctx.catalog.save(changed)
    return {"TimeToLiveSpecification": {"Enabled": enabled, "AttributeName": attribute}}


async def describe_time_to_live(ctx: RouterContext, body: dict[str, Any]) -> dict[str, Any]:
    table = await require_table(ctx, body["TableName"])
    return {"TimeToLiveDescription": ttl_description(table, time.time())}


ACTIONS = {
    "UpdateTimeToLive": update_time_to_live,
    "DescribeTimeToLive": describe_time_to_live,
}
