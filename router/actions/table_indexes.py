"""UpdateTable's ``GlobalSecondaryIndexUpdates``, and a request's index as the catalog keeps it.

One update adds a global index (built by every node from its items:
``Backfilling``), removes one, or changes one's throughput.  The checks run
against the table as it stands, in DynamoDB's order, as far as live replies
have been recorded: unknown index, one online index change per table at a
time, index count, attribute definitions, billing mode.  The shape of an
index (key schema, projection) is checked with the same rules as
CreateTable's (``router/validation_rules.py``).  The nodes learn every
change from the catalog entry (``Engine.catalog_put``).

UpdateTable (``router/actions/tables.py``) runs ``check_index_updates``,
then ``stage_index_updates`` (new indexes added, the answer's index
statuses), answers, then ``StagedIndexUpdates.finish`` (throughput changed,
deleted indexes and their unused attribute definitions dropped): the answer
shows an updated index's old throughput and a deleted one, as DynamoDB's does.

An index's capacity settings are kept here too: its provisioned units (and
their decrease budget), an on-demand GSI's ``OnDemandThroughput`` maxima
(changed at once: the answer already shows them, -1 for a maximum removed)
and its ``WarmThroughput`` (never lowered; the answer shows the old value
UPDATING, DescribeTable the new one ACTIVE: Meridian takes no time to warm).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from meridian.model import limits
from meridian.model.errors import LimitExceededException, ResourceNotFoundException, ValidationException
from meridian.model.ops import IndexSpec, IndexStats

from ..context import RouterContext
from ..table_record import Index, Table, decreases_today, new_table_id, settle_warm, utc_day, warm_throughput
from ..validation_rules import check_key_schema, check_projection

_PARAM = "One or more parameter values were invalid: "
_ONE_ONLINE_INDEX = "Subscriber limit exceeded: Only 1 online index can be created or deleted simultaneously per table"
GUIDE = "Refer to the Amazon DynamoDB Developer Guide for current limits and how to request higher limits."
_NO_STATS = IndexStats()
_ON_DEMAND_MEMBERS = (("MaxReadRequestUnits", "on_demand_max_read_units"),
                      ("MaxWriteRequestUnits", "on_demand_max_write_units"))
_WARM_MEMBERS = ("ReadUnitsPerSecond", "WriteUnitsPerSecond")
_WARM_GUIDE = (
    "See: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/on-demand-capacity-mode.html"
    "#on-demand-capacity-mode-initial"
)


def new_index(spec: dict[str, Any], types: dict[str, str], *, is_global: bool, backfill: bool, billing: str) -> Index:
    """A validated index of a request as the catalog keeps it, with a fresh id."""
    key_schema = sorted(spec["KeySchema"], key=lambda k: k["KeyType"] != "HASH")
    projection = spec["Projection"]
    throughput = spec.get("ProvisionedThroughput") or {}
    provisioned = is_global and billing == "PROVISIONED"
    index = Index(
        IndexSpec(
            name=spec["IndexName"],
            index_id=new_table_id(),
            is_global=is_global,
            key_schema=tuple((k["AttributeName"], types[k["AttributeName"]]) for k in key_schema),
            projection_type=projection["ProjectionType"],
            non_key_attributes=tuple(projection.get("NonKeyAttributes") or ()),
            backfill=backfill,
            hash_count=sum(1 for k in key_schema if k["KeyType"] == "HASH"),
        ),
        read_capacity=int(throughput.get("ReadCapacityUnits", 0)) if provisioned else 0,
        write_capacity=int(throughput.get("WriteCapacityUnits", 0)) if provisioned else 0,
    )
    if is_global:
        if billing == "PAY_PER_REQUEST":
            merge_on_demand(index, spec.get("OnDemandThroughput"))
        warm = spec.get("WarmThroughput") or {}
        settle_warm(index, billing, warm.get("ReadUnitsPerSecond"), warm.get("WriteUnitsPerSecond"))
    return index


def merge_on_demand(holder: Table | Index, on_demand: dict[str, Any] | None) -> dict[str, int]:
    """Apply an OnDemandThroughput member by member (-1 removes a maximum, an absent
    member keeps its value: DDB-TABLE-051, 178); returns what an UpdateTable answer
    shows: the maxima now set, and -1 for each one this request removed (DDB-TABLE-182)."""
    for member, attribute in _ON_DEMAND_MEMBERS:
        units = (on_demand or {}).get(member)
        if units is not None:
            setattr(holder, attribute, None if units == limits.ON_DEMAND_NO_MAXIMUM else int(units))
    shown = {}
    for member, attribute in _ON_DEMAND_MEMBERS:
        units = getattr(holder, attribute)
        if units is not None or (on_demand or {}).get(member) == limits.ON_DEMAND_NO_MAXIMUM:
            shown[member] = limits.ON_DEMAND_NO_MAXIMUM if units is None else units
    return shown


def drop_on_demand(holder: Table | Index) -> None:
    """A switch to PROVISIONED forgets the on-demand maxima of the table and its GSIs (DDB-TABLE-153)."""
    holder.on_demand_max_read_units = holder.on_demand_max_write_units = None


def check_on_demand_settings(on_demand: dict[str, Any] | None, billing: str, of: str, *, update: bool,
                             create_wording: bool = False) -> None:
    """OnDemandThroughput only on demand, each maximum at least 1 (-1, no maximum, on
    UpdateTable only): DDB-TABLE-038, 051, 128, 153.  ``of`` names the resource as the
    messages do ("table", "index : <name>")."""
    for member, _ in _ON_DEMAND_MEMBERS:
        units = (on_demand or {}).get(member)
        if units is None:
            continue
        if billing == "PROVISIONED":
            table = "table BillingMode is PROVISIONED." if create_wording else "the table BillingMode is PROVISIONED"
            raise ValidationException(
                f"{_PARAM}{member} for OnDemandThroughput for {of} cannot be specified when {table}"
            )
        if units < 1 and not (update and units == limits.ON_DEMAND_NO_MAXIMUM):
            raise ValidationException(
                f"{_PARAM}Requested {member} for OnDemandThroughput for {of} is outside of valid range"
            )


def check_warm_settings(holder: Table | Index | None, warm: dict[str, Any] | None, billing: str, of: str,
                        throughput: dict[str, Any] | None = None) -> None:
    """A new table's or index's WarmThroughput no lower than its mode's floor, an
    existing one's no lower than its current value (DDB-TABLE-039, 059, 061, 155).
    ``holder``: the existing table or index, None for a new one.  The write member's
    messages, and the index variant of the provisioned floor, are guesses."""
    for position, member in enumerate(_WARM_MEMBERS):
        units = (warm or {}).get(member)
        if units is None:
            continue
        if holder is not None:
            if units < warm_throughput(holder, billing)[position]:
                raise ValidationException(f"{_PARAM}Requested {member} for WarmThroughput for {of} is lower than "
                                          "current WarmThroughput, decreasing WarmThroughput is not supported")
        elif billing == "PAY_PER_REQUEST":
            floor = (limits.ON_DEMAND_INITIAL_READ_UNITS_PER_S, limits.ON_DEMAND_INITIAL_WRITE_UNITS_PER_S)[position]
            if units < floor:
                raise ValidationException(f"{_PARAM}Requested {member} for WarmThroughput for {of} is lower than "
                                          f"initial throughput for OnDemand. {_WARM_GUIDE}")
        else:
            capacity = ("ReadCapacityUnits", "WriteCapacityUnits")[position]
            if units < (throughput or {}).get(capacity, 0):
                raise ValidationException(f"{_PARAM}Requested {member} for WarmThroughput for {of} is lower than "
                                          f"{capacity} of ProvisionedThroughput")


def check_warm_caps(region: str, warm: dict[str, Any] | None, index_name: str | None = None) -> None:
    """WarmThroughput above the per-table maximum of the account (DDB-TABLE-154, 171: the
    index variant; the table's wording is a guess after it)."""
    for member, quota, cap in (
        ("ReadUnitsPerSecond", "TableMaxReadCapacityUnits", limits.TABLE_MAX_READ_CAPACITY_UNITS),
        ("WriteUnitsPerSecond", "TableMaxWriteCapacityUnits", limits.TABLE_MAX_WRITE_CAPACITY_UNITS),
    ):
        units = (warm or {}).get(member)
        if units is not None and units > cap:
            of = "table" if index_name is None else f"index {index_name}"
            raise LimitExceededException(
                f"Subscriber limit exceeded: Requested {member} for WarmThroughput for {of} exceeds {quota} of the "
                f"account in region {region}"
            )



def check_index_throughput_bounds(updates: list[dict[str, Any]]) -> None:
    """The request-only bound on an Update's capacity units (dynalite records it)."""
    for update in updates:
        action = update.get("Update")
        throughput = (action or {}).get("ProvisionedThroughput")
        if throughput is None:
            continue
        for member in ("ReadCapacityUnits", "WriteCapacityUnits"):
            units = throughput.get(member)
            if units is not None and units > limits.CAPACITY_UNITS_VALUE_MAX:
                raise ValidationException(
                    f"Given value {units} for {member} is out of bounds for index {action['IndexName']}"
                )


def _index_not_found(table: Table, name: str) -> ResourceNotFoundException:
    return ResourceNotFoundException(f"Requested resource not found: Index {name} for table {table.name}")


def _check_create_index(table: Table, body: dict[str, Any], create: dict[str, Any], billing: str) -> dict[str, str]:
    """Checks of one Create against the table; returns the attribute types its keys may use."""
    name = create["IndexName"]
    if table.index(name) is not None:
        raise ValidationException("Attempting to create an index which already exists")
    definitions = body.get("AttributeDefinitions")
    if definitions is None:
        raise ValidationException(f"{_PARAM}AttributeDefinitions is not specified for index: {name}")
    types = {d["AttributeName"]: d["AttributeType"] for d in definitions}
    # A key attribute the table already defines keeps the table's type.
    types.update((d["AttributeName"], d["AttributeType"]) for d in table.attribute_definitions)
    key_schema = create["KeySchema"]
    check_key_schema(key_schema, [d["AttributeName"] for d in definitions], known=types, multi_attribute=True)
    check_projection(create["Projection"])
    if billing == "PAY_PER_REQUEST" and create.get("ProvisionedThroughput") is not None:
        raise ValidationException(
            f"{_PARAM}ProvisionedThroughput should not be specified for index: {name} when BillingMode is "
            "PAY_PER_REQUEST"
        )
    if billing == "PROVISIONED" and create.get("ProvisionedThroughput") is None:
        raise ValidationException(
            f"{_PARAM}Both ReadCapacityUnits and WriteCapacityUnits must be specified for index: {name}"
        )
    # As a new index of CreateTable (validation_rules.py); their place here is a guess.
    check_on_demand_settings(create.get("OnDemandThroughput"), billing, f"index : {name}", update=False)
    check_warm_settings(None, create.get("WarmThroughput"), billing, f"index {name}",
                        create.get("ProvisionedThroughput"))
    if len(table.global_indexes) + 1 > limits.GLOBAL_SECONDARY_INDEXES_MAX:
        raise LimitExceededException(
            "Subscriber limit exceeded: Number of global secondary indexes exceeds per-table limit of "
            f"{limits.GLOBAL_SECONDARY_INDEXES_MAX}"
        )
    return types


def _global_index(table: Table, name: str, verb: str) -> Index:
    """The global index an Update or Delete names; a local one cannot be
    (DDB-TABLE-137: "Cannot delete an index that is not a GlobalSecondaryIndex")."""
    index = table.index(name)
    if index is None:
        raise _index_not_found(table, name)
    if not index.is_global:
        raise ValidationException(f"Cannot {verb} an index that is not a GlobalSecondaryIndex: {name}")
    return index


def _check_update_index(table: Table, update: dict[str, Any], billing: str) -> Index:
    name = update["IndexName"]
    index = _global_index(table, name, "update")
    throughput = update.get("ProvisionedThroughput")
    on_demand_only = throughput is None and (update.get("OnDemandThroughput") or update.get("WarmThroughput"))
    if billing == "PAY_PER_REQUEST" and not on_demand_only:
        # A throughput update, or none at all (DDB-TABLE-152, DDB-TABLE-456).
        raise ValidationException(
            f"{_PARAM}The only Updates for index: {name} when TableThroughputMode is PAY_PER_REQUEST can be to "
            "OnDemandThroughput, WarmThroughput"
        )
    check_on_demand_settings(update.get("OnDemandThroughput"), billing, f"index : {name}", update=True)
    check_warm_settings(index, update.get("WarmThroughput"), billing, f"index {name}")
    if throughput is None:
        return index
    read, write = throughput["ReadCapacityUnits"], throughput["WriteCapacityUnits"]
    if read == index.read_capacity and write == index.write_capacity:
        raise ValidationException(
            f"The provisioned throughput for the index {name} will not change. The requested value equals the "
            f"current value. Current ReadCapacityUnits provisioned for index {name}: {index.read_capacity}. "
            f"Requested ReadCapacityUnits: {read}. Current WriteCapacityUnits provisioned for index {name}: "
            f"{index.write_capacity}. Requested WriteCapacityUnits: {write}. {GUIDE}"
        )
    return index


async def check_index_updates(
    ctx: RouterContext, table: Table, body: dict[str, Any], updates: list[dict[str, Any]], billing: str
) -> dict[str, dict[str, str]]:
    """UpdateTable's index checks against the table, in order; returns the
    attribute types each Create may use, by index name."""
    # What an index change may come with is checked with the request
    # (router/validation_rules.py: one change per UpdateTable).
    online = [u for u in updates if u.get("Create") is not None or u.get("Delete") is not None]
    if online:
        if len(online) > 1:
            raise LimitExceededException(_ONE_ONLINE_INDEX)
        stats = await ctx.storage.table_stats(table.table_id)
        building = {index.name for index in table.global_indexes
                    if stats.indexes.get(index.spec.index_id, _NO_STATS).backfilling}
        deleting = (online[0].get("Delete") or {}).get("IndexName")
        if building and deleting not in building:  # only a building index's own delete gets through
            raise LimitExceededException(_ONE_ONLINE_INDEX)
    types: dict[str, dict[str, str]] = {}
    for update in updates:
        if update.get("Update") is not None:
            _check_update_index(table, update["Update"], billing)
        elif update.get("Create") is not None:
            types[update["Create"]["IndexName"]] = _check_create_index(table, body, update["Create"], billing)
        else:
            _global_index(table, update["Delete"]["IndexName"], "delete")
    return types

@dataclass(slots=True)
class StagedIndexUpdates:
    """Index updates applied before UpdateTable answers, and what is left for after."""

    #: index name -> the IndexStatus the answer shows (CREATING, DELETING, UPDATING)
    status: dict[str, str] = field(default_factory=dict)
    deleted: list[Index] = field(default_factory=list)
    throughputs: list[tuple[Index, dict[str, Any]]] = field(default_factory=list)
    #: new warm throughputs (the answer shows the old one UPDATING)
    warms: list[tuple[Index, dict[str, Any]]] = field(default_factory=list)
    #: index name -> the OnDemandThroughput the answer shows (-1 for a maximum removed)
    on_demand_shown: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def warm_updating(self) -> set[str]:
        return {index.name for index, _ in self.warms}

    def finish(self, table: Table, billing: str, now_s: float) -> None:
        """Apply what the answer still showed as it was: new throughputs, warm
        throughputs, deleted indexes."""
        for index, throughput in self.throughputs:
            update_throughput(index, throughput, now_s)
        for index, warm in self.warms:
            settle_warm(index, billing, warm.get("ReadUnitsPerSecond"), warm.get("WriteUnitsPerSecond"))
        if self.deleted:
            table.indexes = [index for index in table.indexes if index not in self.deleted]
            _prune_attribute_definitions(table)


def check_index_capacity(region: str, table: Table, updates: list[dict[str, Any]], now_s: float) -> None:
    """The account's capacity maxima and each index's decrease budget, for every Create and Update."""
    for update in updates:
        action = update.get("Update") or update.get("Create")
        if action is None:
            continue
        check_capacity_caps(region, action.get("ProvisionedThroughput"), action["IndexName"])
        check_on_demand_caps(region, action.get("OnDemandThroughput"), action["IndexName"])
        check_warm_caps(region, action.get("WarmThroughput"), action["IndexName"])
        if update.get("Update") is not None and action.get("ProvisionedThroughput") is not None:
            check_decrease_budget(table.index(action["IndexName"]), action["ProvisionedThroughput"], now_s)


def stage_index_updates(
    table: Table, updates: list[dict[str, Any]], index_types: dict[str, dict[str, str]], billing: str,
    now_s: float, new_throughput_shown: bool = False,
) -> StagedIndexUpdates:
    """Add the new indexes to ``table`` (with the attribute definitions their
    keys need) and note the deleted and updated ones; the answer shows a new
    index CREATING, a deleted one DELETING and an updated one UPDATING with
    its old throughput, as DynamoDB's does (the new one when the table
    switches to PROVISIONED: ``new_throughput_shown``, DDB-TABLE-165)."""
    staged = StagedIndexUpdates()
    for update in updates:
        if update.get("Create") is not None:
            create = update["Create"]
            types = index_types[create["IndexName"]]
            index = new_index(create, types, is_global=True, backfill=True, billing=billing)
            table.indexes.append(index)
            defined = {d["AttributeName"] for d in table.attribute_definitions}
            for name in index.key_names:
                if name not in defined:
                    table.attribute_definitions.append({"AttributeName": name, "AttributeType": types[name]})
            staged.status[index.name] = "CREATING"
        elif update.get("Delete") is not None:
            index = table.index(update["Delete"]["IndexName"])
            staged.deleted.append(index)
            staged.status[index.name] = "DELETING"
        else:
            _stage_index_update(table, update["Update"], staged, now_s, new_throughput_shown)
    return staged


def _stage_index_update(table: Table, update: dict[str, Any], staged: StagedIndexUpdates, now_s: float,
                        new_throughput_shown: bool) -> None:
    """One GSI Update: its OnDemandThroughput at once (the index UPDATING in the answer,
    DDB-TABLE-135), its provisioned and warm throughput after the answer."""
    index = table.index(update["IndexName"])
    if update.get("ProvisionedThroughput") is not None:
        if new_throughput_shown:
            update_throughput(index, update["ProvisionedThroughput"], now_s)
        else:
            staged.throughputs.append((index, update["ProvisionedThroughput"]))
        staged.status[index.name] = "UPDATING"
    if update.get("OnDemandThroughput"):
        staged.on_demand_shown[index.name] = merge_on_demand(index, update["OnDemandThroughput"])
        staged.status[index.name] = "UPDATING"
    if update.get("WarmThroughput"):  # the index stays ACTIVE (DDB-TABLE-155)
        staged.warms.append((index, update["WarmThroughput"]))


def update_throughput(holder: Table | Index, throughput: dict[str, Any], now_s: float) -> None:
    """New provisioned capacity for a table or an index, with the times of the
    last increase and decrease and the day's decrease count DynamoDB reports."""
    finish_throughput_update(holder, throughput, begin_throughput_update(holder, throughput, now_s))


def begin_throughput_update(holder: Table | Index, throughput: dict[str, Any], now_s: float) -> bool:
    """The first half of ``update_throughput``: what an UpdateTable answer already
    shows (new LastIncreaseDateTime / LastDecreaseDateTime, the old units and
    decrease count: DDB-TABLE-060, DDB-TABLE-184).  True when it is a decrease."""
    read, write = int(throughput["ReadCapacityUnits"]), int(throughput["WriteCapacityUnits"])
    holder.decreases_today = decreases_today(holder, now_s)  # a new UTC day starts from 0
    if read > holder.read_capacity or write > holder.write_capacity:
        holder.last_increase_s = now_s
    decrease = read < holder.read_capacity or write < holder.write_capacity
    if decrease:
        holder.last_decrease_s = now_s
    return decrease


def finish_throughput_update(holder: Table | Index, throughput: dict[str, Any], decrease: bool) -> None:
    """The second half of ``update_throughput``: the new units (and a warm throughput
    as high as the highest units the table or index has had: DDB-TABLE-061)."""
    holder.read_capacity, holder.write_capacity = int(throughput["ReadCapacityUnits"]), int(throughput["WriteCapacityUnits"])
    settle_warm(holder, "PROVISIONED")
    if decrease:
        holder.decreases_today += 1


def check_decrease_budget(holder: Table | Index, throughput: dict[str, Any], now_s: float) -> None:
    """Decreases of a table's (or one index's) throughput: a few a UTC day, then
    one an interval after the last (DDB-TABLE-184, 185, 326; 157: each index
    has its own).  A request decreasing either unit is one decrease."""
    read, write = int(throughput["ReadCapacityUnits"]), int(throughput["WriteCapacityUnits"])
    if read >= holder.read_capacity and write >= holder.write_capacity:
        return
    count = decreases_today(holder, now_s)
    if count < limits.PROVISIONED_DECREASES_PER_DAY_FREE:
        return
    last_s = holder.last_decrease_s
    if now_s >= last_s + limits.PROVISIONED_DECREASE_INTERVAL_S:
        return
    midnight = datetime.datetime.combine(utc_day(last_s) + datetime.timedelta(days=1), datetime.time(),
                                         datetime.timezone.utc).timestamp()
    next_s = min(last_s + limits.PROVISIONED_DECREASE_INTERVAL_S, midnight)
    raise LimitExceededException(
        "Subscriber limit exceeded: Provisioned throughput decreases are limited within a given UTC day. After the "
        f"first {limits.PROVISIONED_DECREASES_PER_DAY_FREE} decreases, each subsequent decrease in the same UTC day "
        f"can be performed at most once every {limits.PROVISIONED_DECREASE_INTERVAL_S} seconds. Number of decreases "
        f"today: {count}. Last decrease at {_long_utc(last_s)}. Next decrease can be made at {_long_utc(next_s)}."
    )


_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")


def _long_utc(at_s: float) -> str:
    """Java's long UTC date ("Friday, October 9, 2026 at 1:21:34 AM Coordinated Universal Time")."""
    t = datetime.datetime.fromtimestamp(at_s, datetime.timezone.utc)
    hour = t.hour % 12 or 12
    return (f"{_DAYS[t.weekday()]}, {_MONTHS[t.month - 1]} {t.day}, {t.year} at {hour}:{t.minute:02d}:"
            f"{t.second:02d} {'AM' if t.hour < 12 else 'PM'} Coordinated Universal Time")


def check_capacity_caps(region: str, throughput: dict[str, Any] | None, index_name: str | None = None) -> None:
    """The per-table (and per-index) capacity maximum of the account (DDB-TABLE-170, 393: it does not
    add an index's units to its table's).  The write units' check, after the read units', is a guess."""
    for member, cap in (("ReadCapacityUnits", limits.TABLE_MAX_READ_CAPACITY_UNITS),
                        ("WriteCapacityUnits", limits.TABLE_MAX_WRITE_CAPACITY_UNITS)):
        units = (throughput or {}).get(member)
        if units is None or units <= cap:
            continue
        of = "table" if index_name is None else "index"
        named = f" for index {index_name}" if index_name is not None else ""
        raise LimitExceededException(
            f"The requested {member}{named}, {units}, is above the per {of} maximum for the account in {region}. "
            f"Per table maximum: {cap}. {GUIDE}"
        )


def check_on_demand_caps(region: str, on_demand: dict[str, Any] | None, index_name: str | None = None) -> None:
    """OnDemandThroughput above the per-table maximum (DDB-TABLE-154; the write member's text is a guess)."""
    for member, cap, quota in (("MaxReadRequestUnits", limits.TABLE_MAX_READ_CAPACITY_UNITS, "TableMaxReadCapacityUnits"),
                               ("MaxWriteRequestUnits", limits.TABLE_MAX_WRITE_CAPACITY_UNITS,
                                "TableMaxWriteCapacityUnits")):
        units = (on_demand or {}).get(member)
        if units is not None and units > cap:
            of = "table" if index_name is None else f"index : {index_name}"
            raise LimitExceededException(
                f"Subscriber limit exceeded: Requested {member} for OnDemandThroughput for {of} exceeds {quota} of "
                f"the account in region {region}"
            )


def _prune_attribute_definitions(table: Table) -> None:
    """Drop the definitions no key uses any more (DynamoDB does, after an index delete)."""
    used = set(table.key_names)
    for index in table.indexes:
        used.update(index.key_names)
    table.attribute_definitions = [d for d in table.attribute_definitions if d["AttributeName"] in used]
