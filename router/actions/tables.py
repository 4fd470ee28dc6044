"""CreateTable, DescribeTable, ListTables, DeleteTable, UpdateTable.

Shape checks (and the request-only checks DynamoDB runs with them, such as
key schema vs attribute definitions, or UpdateTable's one change per
request) happen in ``router/validation.py``; what is here needs the catalog.
The answers are built by ``descriptions.py``.

UpdateTable changes the table itself here (billing mode, throughput,
stream, deletion protection, table class), with the checks of the request
against the table in DynamoDB's order as the 2026 parity catalog of live
DynamoDB records it (entries "DDB-TABLE-nnn"); its
``GlobalSecondaryIndexUpdates`` are ``table_indexes.py``'s, and its
``ReplicaUpdates`` (Global Tables 2019.11.21, the only change of their
request) ``replica_updates.py``'s.  DeleteTable deletes this region's
replica only; of a table with point-in-time recovery it first keeps a
SYSTEM backup (``router/backup_take.py``).

Meridian's table changes take no time, yet an UpdateTable answer shows what
DynamoDB's shows while the change runs: UPDATING for throughput, billing,
stream, table class and index changes (even a billing or class re-send that
changes nothing: DDB-TABLE-177), the old provisioned units (DDB-TABLE-060),
the old table class (DDB-TABLE-284) and the old warm throughput, UPDATING
(DDB-TABLE-179: the table stays ACTIVE); DescribeTable then shows the change
done.  OnDemandThroughput changes at once (DDB-TABLE-178).

Capacity quotas: the account's per-table maxima (``check_capacity_caps``)
and its total of provisioned units over every table and GSI of the region
(``_check_account_capacity``: DescribeLimits' Account* figures), the day's
throughput decreases, and the switches to PAY_PER_REQUEST: at most
``limits.PAY_PER_REQUEST_SWITCHES_MAX`` in a rolling day since 2025 (the
earlier rule was once a day; back to PROVISIONED is allowed at any time).
"""

from __future__ import annotations

import datetime
import time
from typing import Any

from meridian.model import limits
from meridian.model.errors import (
    LimitExceededException,
    ResourceInUseException,
    ThrottlingException,
    ValidationException,
)

from ..backup_take import keep_system_backup
from ..context import RouterContext
from ..stream_catalog import inherited_streams, new_stream_label, retire_stream
from ..table_record import Table, new_table_id, new_table_uuid, settle_warm, stream_label
from .descriptions import deleted_description, live_description, require_table, table_description
from .replica_updates import REPLICAS_BUSY, update_replicas
from .resource_policies import create_table_policies
from .table_indexes import (
    GUIDE,
    begin_throughput_update,
    check_capacity_caps,
    check_decrease_budget,
    check_index_capacity,
    check_index_throughput_bounds,
    check_index_updates,
    check_on_demand_caps,
    check_on_demand_settings,
    check_warm_caps,
    check_warm_settings,
    drop_on_demand,
    finish_throughput_update,
    merge_on_demand,
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
_TABLE_CLASS_QUOTA = (
    f"Subscriber limit exceeded: Updates to TableClass are limited to {limits.TABLE_CLASS_CHANGES_MAX} times in "
    f"{limits.TABLE_CLASS_CHANGE_WINDOW_DAYS} day(s)."
)


def _stream(spec: dict[str, Any] | None) -> dict[str, Any] | None:
    """The stream a (validated) StreamSpecification asks for, or None."""
    if not spec or not spec.get("StreamEnabled"):
        return None
    return {"StreamEnabled": True, "StreamViewType": spec["StreamViewType"]}


async def create_table(ctx: RouterContext, body: dict[str, Any]) -> dict[str, Any]:
    name = body["TableName"]
    billing = body.get("BillingMode", "PROVISIONED")
    global_specs = [spec for spec in body.get("GlobalSecondaryIndexes") or () if spec is not None]
    if billing == "PROVISIONED":  # a provisioned GSI's on-demand and warm settings (DDB-TABLE-128)
        for spec in global_specs:
            check_on_demand_settings(spec.get("OnDemandThroughput"), billing, f"index: {spec['IndexName']}",
                                     update=False, create_wording=True)
            check_warm_settings(None, spec.get("WarmThroughput"), billing, f"index {spec['IndexName']}",
                                spec.get("ProvisionedThroughput"))
    if await ctx.catalog.get(name) is not None:
        raise ResourceInUseException(f"Table already exists: {name}")
    # The account's capacity maxima (DDB-TABLE-170, 154), after the name (a guess).
    check_capacity_caps(ctx.region, body.get("ProvisionedThroughput"))
    check_on_demand_caps(ctx.region, body.get("OnDemandThroughput"))
    check_warm_caps(ctx.region, body.get("WarmThroughput"))
    for spec in global_specs:
        check_capacity_caps(ctx.region, spec.get("ProvisionedThroughput"), spec["IndexName"])
        check_on_demand_caps(ctx.region, spec.get("OnDemandThroughput"), spec["IndexName"])
        check_warm_caps(ctx.region, spec.get("WarmThroughput"), spec["IndexName"])
    types = {d["AttributeName"]: d["AttributeType"] for d in body["AttributeDefinitions"]}
    key_schema = sorted(body["KeySchema"], key=lambda k: k["KeyType"] != "HASH")
    now_s = time.time()
    throughput = body.get("ProvisionedThroughput") or {}
    stream = _stream(body.get("StreamSpecification"))
    indexes = [new_index(spec, types, is_global=False, backfill=False, billing=billing)
               for spec in body.get("LocalSecondaryIndexes") or () if spec is not None]
    indexes += [new_index(spec, types, is_global=True, backfill=False, billing=billing) for spec in global_specs]
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
        resource_policies=create_table_policies(body),
        indexes=indexes,
    )
    if billing == "PAY_PER_REQUEST":
        merge_on_demand(table, body.get("OnDemandThroughput"))
    warm = body.get("WarmThroughput") or {}
    settle_warm(table, billing, warm.get("ReadUnitsPerSecond"), warm.get("WriteUnitsPerSecond"))
    _check_account_capacity(ctx, name, (0, 0), _provisioned_units(table))
    table.past_streams = inherited_streams(ctx.catalog.deleted(name), now_s, ctx.stream_retention_s)
    if table.stream is not None and table.past_streams:
        table.stream_label = None
        table.stream_label = new_stream_label(table, now_s)  # never one of the inherited streams' labels
    await ctx.catalog.save(table)
    return {"TableDescription": _create_answer(table, body, global_specs)}


def _create_answer(table: Table, body: dict[str, Any], global_specs: list[dict[str, Any]]) -> dict[str, Any]:
    """CreateTable's answer: its BillingModeSummary names the mode only (DescribeTable
    adds the date), and it shows a WarmThroughput only where the request asked for
    one, UPDATING (DDB-TABLE-033, DDB-TABLE-032; for a GSI, a guess after the table)."""
    asked: set[str | None] = {spec["IndexName"] for spec in global_specs if spec.get("WarmThroughput")}
    if body.get("WarmThroughput"):
        asked.add(None)
    out = table_description(table, "CREATING", billing_date_shown=False, warm_updating=asked)
    if None not in asked:
        del out["WarmThroughput"]
    for index in out.get("GlobalSecondaryIndexes", ()):
        if index["IndexName"] not in asked:
            del index["WarmThroughput"]
    return out


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
    if table.replicas or table.restoring:
        table = await ctx.catalog.fresh(table.name) or table
    if table.restoring:  # until its restore ends (DDB-TABLE-277; the wording is a guess)
        raise ResourceInUseException(
            f"Attempt to change a resource which is still in use: Table is being created: {table.name}"
        )
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
    description = deleted_description(table, stats.item_count, stats.size_bytes)
    if table.pitr_enabled_s is not None:
        await keep_system_backup(ctx, table)  # restorable for 35 days (DDB-BACKUP-015)
    # The table's streams outlive it for their retention (router/stream_catalog.py).
    retire_stream(table, time.time(), ctx.stream_retention_s)
    table.stream = None
    await ctx.catalog.remove(table)
    await ctx.storage.drop_table(table.table_id)
    return {"TableDescription": description}


# --- UpdateTable: the checks against the table --------------------------------------------
def _check_billing(table: Table, body: dict[str, Any]) -> None:
    """BillingMode, ProvisionedThroughput and OnDemandThroughput against the table's mode."""
    billing, throughput = body.get("BillingMode"), body.get("ProvisionedThroughput")
    effective = billing or table.billing_mode
    if throughput is not None and billing == "PAY_PER_REQUEST":  # DDB-TABLE-056
        raise ValidationException(f"{_PARAM}ProvisionedThroughput cannot be specified when BillingMode is PAY_PER_REQUEST")
    if throughput is not None and effective == "PAY_PER_REQUEST":  # DDB-TABLE-059
        raise ValidationException(
            f"{_PARAM}Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST"
        )
    if billing == "PROVISIONED" and throughput is None:  # whatever the table's mode (DDB-TABLE-057, 164)
        raise ValidationException(f"{_PARAM}ProvisionedThroughput must be specified when BillingMode is PROVISIONED")
    if throughput is not None and table.billing_mode == "PROVISIONED":  # with BillingMode or without (DDB-TABLE-057)
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
    on_demand = body.get("OnDemandThroughput") or {}
    if effective == "PROVISIONED":  # DDB-TABLE-059
        for member in ("MaxReadRequestUnits", "MaxWriteRequestUnits"):
            if on_demand.get(member) is not None:
                raise ValidationException(
                    f"{_PARAM}{member} for OnDemandThroughput cannot be specified when the table BillingMode is PROVISIONED"
                )


def _check_stream(table: Table, spec: dict[str, Any] | None) -> None:
    """Enabling an enabled stream (same view type or not) or disabling none (DDB-TABLE-050, 018, 222)."""
    if spec is None:
        return
    if spec["StreamEnabled"]:
        if table.stream is not None:
            raise ValidationException(f"Table already has an enabled stream: TableName: {table.name}")
        return
    if table.replicas:
        raise ValidationException(_STREAM_OF_REPLICA)
    if table.stream is None:
        raise ValidationException(f"Table has no stream to disable: TableName: {table.name}")


def _check_sse(spec: dict[str, Any] | None) -> None:
    """Meridian's tables are all as DynamoDB's are by default (an AWS owned key):
    asking for that again is refused (DDB-TABLE-047, 079, 437).  A KMS key is
    accepted and not modelled (docs/compatibility.md)."""
    if spec is not None and (spec.get("Enabled") is False or not spec):
        raise ValidationException(f"{_PARAM}Table is already encrypted by default")


def _iso_ms(at_s: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at_s)) + f".{int(at_s * 1000) % 1000:03d}Z"


def _check_deletion_protection(table: Table, body: dict[str, Any], now_s: float) -> None:
    """A pause after each change of the setting, re-sends included (DDB-TABLE-003, 054, 047)."""
    changed_s = table.deletion_protection_changed_s
    if body.get("DeletionProtectionEnabled") is None or changed_s is None:
        return
    until_s = changed_s + limits.DELETION_PROTECTION_COOLDOWN_S
    if now_s < until_s:
        raise ThrottlingException(
            f"Deletion protection setting for table {table.name} modified within the previous "
            f"{limits.DELETION_PROTECTION_COOLDOWN_S * 1000} milliseconds. Please try again after {_iso_ms(until_s)}"
        )


def _recent_class_changes(table: Table, now_s: float) -> list[float]:
    window_s = datetime.timedelta(days=limits.TABLE_CLASS_CHANGE_WINDOW_DAYS).total_seconds()
    return [at_s for at_s in table.table_class_changes_s if now_s - at_s < window_s]


def _check_table_class(table: Table, body: dict[str, Any], now_s: float) -> None:
    """A few changes a month; once spent, a re-send of the class is refused too (DDB-TABLE-283)."""
    if body.get("TableClass") is not None and len(_recent_class_changes(table, now_s)) >= limits.TABLE_CLASS_CHANGES_MAX:
        raise LimitExceededException(_TABLE_CLASS_QUOTA)


# --- UpdateTable --------------------------------------------------------------------
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
    on_demand = body.get("OnDemandThroughput")
    warm = body.get("WarmThroughput")
    effective_billing = billing or table.billing_mode
    _check_billing(table, body)
    check_warm_settings(table, warm, table.billing_mode, "table")  # never lower (DDB-TABLE-059, 061)
    spec = body.get("StreamSpecification")
    _check_stream(table, spec)
    _check_sse(body.get("SSESpecification"))
    _check_deletion_protection(table, body, now_s)
    _check_table_class(table, body, now_s)
    if billing == "PROVISIONED" and table.billing_mode == "PAY_PER_REQUEST":
        updated = {u["Update"]["IndexName"] for u in index_updates
                   if u.get("Update") is not None and u["Update"].get("ProvisionedThroughput") is not None}
        for index in table.global_indexes:
            if index.name not in updated:
                raise ValidationException(f"{_PARAM}ProvisionedThroughput must be specified for index: {index.name}")
    index_types = await check_index_updates(ctx, table, body, index_updates, effective_billing)
    # Quotas last (their place after the checks above is a guess): the switches to
    # on demand, the account's maxima, then the day's decreases, the table's before
    # its indexes' (DDB-TABLE-157), then the account's total.
    switched = billing is not None and billing != table.billing_mode
    if switched and billing == "PAY_PER_REQUEST":
        _check_pay_per_request_switches(table, now_s)
    check_capacity_caps(ctx.region, throughput)
    check_on_demand_caps(ctx.region, on_demand)
    check_warm_caps(ctx.region, warm)
    switching_to_provisioned = billing == "PROVISIONED" and table.billing_mode == "PAY_PER_REQUEST"
    if throughput is not None and not switching_to_provisioned:
        check_decrease_budget(table, throughput, now_s)
    check_index_capacity(ctx.region, table, index_updates, now_s)
    _check_account_capacity(ctx, table.name, _provisioned_units(table),
                            _provisioned_after(table, body, index_updates, effective_billing))

    on_demand_shown: dict[str | None, dict[str, int]] = {}
    if billing is not None:
        if switched and billing == "PAY_PER_REQUEST":
            table.last_pay_per_request_s = now_s
            table.pay_per_request_switches_s = _recent_switches(table, now_s) + [now_s]
            table.read_capacity = table.write_capacity = 0
            for index in table.global_indexes:
                index.read_capacity = index.write_capacity = 0
        elif switched:  # PROVISIONED forgets the on-demand maxima (DDB-TABLE-153)
            for holder in [table, *table.global_indexes]:
                drop_on_demand(holder)
        table.billing_mode = billing
        table.billing_mode_explicit = True
    if on_demand and effective_billing == "PAY_PER_REQUEST":  # at once (DDB-TABLE-178, 182)
        on_demand_shown[None] = merge_on_demand(table, on_demand)
    staged_decrease: bool | None = None
    if throughput is not None:
        if switching_to_provisioned:  # the answer shows the new units (DDB-TABLE-165)
            update_throughput(table, throughput, now_s)
        else:  # the old ones, with the new change's date (DDB-TABLE-060, 184)
            staged_decrease = begin_throughput_update(table, throughput, now_s)
    if spec is not None:
        # Disabling keeps the stream readable for the retention period;
        # enabling makes a new stream (a new label, so a new ARN).
        new_stream = _stream(spec)
        if new_stream is None:
            retire_stream(table, now_s, ctx.stream_retention_s)
        else:
            table.stream_label = new_stream_label(table, now_s)
        table.stream = new_stream
    protection = body.get("DeletionProtectionEnabled")
    if protection is not None and bool(protection) != table.deletion_protection:
        table.deletion_protection = bool(protection)
        table.deletion_protection_changed_s = now_s  # a re-send of the setting changes nothing

    staged = stage_index_updates(table, index_updates, index_types, effective_billing, now_s,
                                 new_throughput_shown=switching_to_provisioned)
    on_demand_shown.update(staged.on_demand_shown)
    changing = (
        billing or throughput or spec or body.get("TableClass")
        or any(u.get("Create") or u.get("Delete") for u in index_updates)
    )
    warm_updating: set[str | None] = staged.warm_updating | ({None} if warm else set())
    answer = await live_description(ctx, table, "UPDATING" if changing else "ACTIVE", staged.status,
                                    billing_date_shown=not switched, warm_updating=warm_updating,
                                    on_demand_shown=on_demand_shown)
    staged.finish(table, effective_billing, now_s)
    if staged_decrease is not None:
        finish_throughput_update(table, throughput, staged_decrease)
    if warm:
        settle_warm(table, effective_billing, warm.get("ReadUnitsPerSecond"), warm.get("WriteUnitsPerSecond"))
    if switched:  # warm as the new mode has it once the switch is done (DDB-TABLE-064, 061)
        for holder in [table, *table.global_indexes]:
            settle_warm(holder, effective_billing)
    _apply_table_class(table, body.get("TableClass"), now_s)
    await ctx.catalog.save(table)
    return {"TableDescription": answer}


# --- capacity quotas ------------------------------------------------------------------------
def _recent_switches(table: Table, now_s: float) -> list[float]:
    window_s = datetime.timedelta(days=limits.PAY_PER_REQUEST_SWITCH_WINDOW_DAYS).total_seconds()
    return [at_s for at_s in table.pay_per_request_switches_s if now_s - at_s < window_s]


def _java_date(at_s: float) -> str:
    """Java's Date.toString in UTC ("Sat Feb 23 03:07:45 UTC 2019")."""
    return time.strftime("%a %b %d %H:%M:%S UTC %Y", time.gmtime(at_s))


def _check_pay_per_request_switches(table: Table, now_s: float) -> None:
    """A few switches to PAY_PER_REQUEST in a rolling day.  The message is the
    once-a-day rule's (recorded in 2019: "limited to once in 1 day(s). Last update at
    ... Next update can be made at ...") with the 2025 count: a guess."""
    recent = _recent_switches(table, now_s)
    if len(recent) < limits.PAY_PER_REQUEST_SWITCHES_MAX:
        return
    window_s = datetime.timedelta(days=limits.PAY_PER_REQUEST_SWITCH_WINDOW_DAYS).total_seconds()
    raise LimitExceededException(
        f"Subscriber limit exceeded: Update to PayPerRequest mode are limited to {limits.PAY_PER_REQUEST_SWITCHES_MAX} "
        f"times in {limits.PAY_PER_REQUEST_SWITCH_WINDOW_DAYS} day(s). Last update at {_java_date(recent[-1])}. "
        f"Next update can be made at {_java_date(recent[0] + window_s)}"
    )


def _provisioned_units(table: Table) -> tuple[int, int]:
    """The read and write units a table reserves of the account's total: its own and its GSIs'."""
    if table.billing_mode != "PROVISIONED":
        return 0, 0
    holders = [table, *table.global_indexes]
    return sum(h.read_capacity for h in holders), sum(h.write_capacity for h in holders)


def _provisioned_after(table: Table, body: dict[str, Any], index_updates: list[dict[str, Any]],
                       billing: str) -> tuple[int, int]:
    """What ``_provisioned_units`` will be once an (already checked) UpdateTable is done."""
    if billing != "PROVISIONED":
        return 0, 0
    deleted = {u["Delete"]["IndexName"] for u in index_updates if u.get("Delete") is not None}
    changed = {action["IndexName"]: action["ProvisionedThroughput"] for action in
               (u.get("Create") or u.get("Update") or {} for u in index_updates)
               if action.get("ProvisionedThroughput") is not None}
    units = [body.get("ProvisionedThroughput") or {"ReadCapacityUnits": table.read_capacity,
                                                   "WriteCapacityUnits": table.write_capacity}]
    units += [changed.pop(index.name, None) or {"ReadCapacityUnits": index.read_capacity,
                                                "WriteCapacityUnits": index.write_capacity}
              for index in table.global_indexes if index.name not in deleted]
    units += changed.values()  # the new indexes'
    return sum(u["ReadCapacityUnits"] for u in units), sum(u["WriteCapacityUnits"] for u in units)


def _check_account_capacity(ctx: RouterContext, name: str, before: tuple[int, int], after: tuple[int, int]) -> None:
    """The account's total of provisioned units in the region, every table and GSI
    together (DescribeLimits' AccountMax*CapacityUnits; DDB-TABLE-443 records the
    message; "Requested" being what the request adds is a guess).  A request that
    adds nothing is never refused.  ``before`` / ``after``: the table's own units."""
    others = [_provisioned_units(t) for t in ctx.catalog.tables() if t.name != name]
    for position, (member, cap) in enumerate((("ReadCapacityUnits", limits.ACCOUNT_MAX_READ_CAPACITY_UNITS),
                                              ("WriteCapacityUnits", limits.ACCOUNT_MAX_WRITE_CAPACITY_UNITS))):
        reserved = sum(units[position] for units in others) + before[position]
        requested = after[position] - before[position]
        if requested > 0 and reserved + requested > cap:
            raise LimitExceededException(
                f"This request would have caused the {member} limit to be exceeded for the account in {ctx.region}. "
                f"Current {member} reserved by the account: {reserved}. Limit: {cap}. Requested: {requested}. {GUIDE}"
            )


def _apply_table_class(table: Table, requested: str | None, now_s: float) -> None:
    """A new class (after the answer, which shows the old one: DDB-TABLE-284); the
    class a table already has changes nothing, not even its summary (DDB-TABLE-365)."""
    if requested is None or requested == (table.table_class or "STANDARD"):
        return
    table.table_class = requested
    table.table_class_updated_s = now_s
    table.table_class_changes_s = _recent_class_changes(table, now_s) + [now_s]


ACTIONS = {
    "CreateTable": create_table,
    "DescribeTable": describe_table,
    "ListTables": list_tables,
    "DeleteTable": delete_table,
    "UpdateTable": update_table,
}
