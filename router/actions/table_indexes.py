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
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from meridian.model import limits
from meridian.model.errors import LimitExceededException, ResourceNotFoundException, ValidationException
from meridian.model.ops import IndexSpec, IndexStats

from ..context import RouterContext
from ..table_record import Index, Table, new_table_id
from ..validation_rules import check_key_schema, check_projection

_PARAM = "One or more parameter values were invalid: "
_ONE_ONLINE_INDEX = "Subscriber limit exceeded: Only 1 online index can be created or deleted simultaneously per table"
_GUIDE = "Refer to the Amazon DynamoDB Developer Guide for current limits and how to request higher limits."
_NO_STATS = IndexStats()


def new_index(spec: dict[str, Any], types: dict[str, str], *, is_global: bool, backfill: bool, billing: str) -> Index:
    """A validated index of a request as the catalog keeps it, with a fresh id."""
    key_schema = sorted(spec["KeySchema"], key=lambda k: k["KeyType"] != "HASH")
    projection = spec["Projection"]
    throughput = spec.get("ProvisionedThroughput") or {}
    provisioned = is_global and billing == "PROVISIONED"
    return Index(
        IndexSpec(
            name=spec["IndexName"],
            index_id=new_table_id(),
            is_global=is_global,
            key_schema=tuple((k["AttributeName"], types[k["AttributeName"]]) for k in key_schema),
            projection_type=projection["ProjectionType"],
            non_key_attributes=tuple(projection.get("NonKeyAttributes") or ()),
            backfill=backfill,
        ),
        read_capacity=int(throughput.get("ReadCapacityUnits", 0)) if provisioned else 0,
        write_capacity=int(throughput.get("WriteCapacityUnits", 0)) if provisioned else 0,
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
    check_key_schema(key_schema, [d["AttributeName"] for d in definitions], known=types)
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
    if len(table.global_indexes) + 1 > limits.GLOBAL_SECONDARY_INDEXES_MAX:
        raise LimitExceededException(
            "Subscriber limit exceeded: Number of global secondary indexes exceeds per-table limit of "
            f"{limits.GLOBAL_SECONDARY_INDEXES_MAX}"
        )
    return types


def _check_update_index(table: Table, update: dict[str, Any], billing: str) -> Index:
    name = update["IndexName"]
    index = table.index(name)
    if index is None or not index.is_global:
        raise _index_not_found(table, name)
    throughput = update.get("ProvisionedThroughput")
    if throughput is None:
        return index
    if billing == "PAY_PER_REQUEST":
        raise ValidationException(
            f"{_PARAM}The only Updates for index: {name} when TableThroughputMode is PAY_PER_REQUEST can be to "
            "OnDemandThroughput, WarmThroughput"
        )
    read, write = throughput["ReadCapacityUnits"], throughput["WriteCapacityUnits"]
    if read == index.read_capacity and write == index.write_capacity:
        raise ValidationException(
            f"The provisioned throughput for the index {name} will not change. The requested value equals the "
            f"current value. Current ReadCapacityUnits provisioned for index {name}: {index.read_capacity}. "
            f"Requested ReadCapacityUnits: {read}. Current WriteCapacityUnits provisioned for index {name}: "
            f"{index.write_capacity}. Requested WriteCapacityUnits: {write}. {_GUIDE}"
        )
    return index


async def check_index_updates(
    ctx: RouterContext, table: Table, body: dict[str, Any], updates: list[dict[str, Any]], billing: str
) -> dict[str, dict[str, str]]:
    """UpdateTable's index checks against the table, in order; returns the
    attribute types each Create may use, by index name."""
    online = [u for u in updates if u.get("Create") is not None or u.get("Delete") is not None]
    if online:
        if body.get("ProvisionedThroughput") is not None:
            raise ValidationException("You cannot create or delete index while updating table IOPS")
        if body.get("StreamSpecification") is not None:
            raise ValidationException("You cannot create or delete index while changing stream status")
        if body.get("DeletionProtectionEnabled") is not None:
            raise ValidationException("DeletionProtection modification must be the only operation in the request")
        if body.get("TableClass") is not None:
            raise ValidationException("TableClass modification must be the only operation in the request")
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
            index = table.index(update["Delete"]["IndexName"])
            if index is None or not index.is_global:
                raise _index_not_found(table, update["Delete"]["IndexName"])
    return types

@dataclass(slots=True)
class StagedIndexUpdates:
    """Index updates applied before UpdateTable answers, and what is left for after."""

    #: index name -> the IndexStatus the answer shows (CREATING, DELETING, UPDATING)
    status: dict[str, str] = field(default_factory=dict)
    deleted: list[Index] = field(default_factory=list)
    throughputs: list[tuple[Index, dict[str, Any]]] = field(default_factory=list)

    def finish(self, table: Table, now_s: float) -> None:
        """Apply what the answer still showed as it was: new throughputs, deleted indexes."""
        for index, throughput in self.throughputs:
            update_throughput(index, throughput, now_s)
        if self.deleted:
            table.indexes = [index for index in table.indexes if index not in self.deleted]
            _prune_attribute_definitions(table)


def stage_index_updates(
    table: Table, updates: list[dict[str, Any]], index_types: dict[str, dict[str, str]], billing: str
) -> StagedIndexUpdates:
    """Add the new indexes to ``table`` (with the attribute definitions their
    keys need) and note the deleted and updated ones; the answer shows a new
    index CREATING, a deleted one DELETING and an updated one UPDATING with
    its old throughput, as DynamoDB's does."""
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
        elif update["Update"].get("ProvisionedThroughput") is not None:
            index = table.index(update["Update"]["IndexName"])
            staged.throughputs.append((index, update["Update"]["ProvisionedThroughput"]))
            staged.status[index.name] = "UPDATING"
    return staged


def update_throughput(holder: Table | Index, throughput: dict[str, Any], now_s: float) -> None:
    """New provisioned capacity for a table or an index, with the times of the
    last increase and decrease and the day's decrease count DynamoDB reports."""
    read, write = int(throughput["ReadCapacityUnits"]), int(throughput["WriteCapacityUnits"])
    if read > holder.read_capacity or write > holder.write_capacity:
        holder.last_increase_s = now_s
    if read < holder.read_capacity or write < holder.write_capacity:
        holder.last_decrease_s = now_s
        holder.decreases_today += 1
    holder.read_capacity, holder.write_capacity = read, write


def _prune_attribute_definitions(table: Table) -> None:
    """Drop the definitions no key uses any more (DynamoDB does, after an index delete)."""
    used = set(table.key_names)
    for index in table.indexes:
        used.update(index.key_names)
    table.attribute_definitions = [d for d in table.attribute_definitions if d["AttributeName"] in used]
