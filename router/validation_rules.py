"""Step 3 of request validation: the request-only rules, per action, in DynamoDB's order.

Rules DynamoDB runs with its shape checks and before anything that needs
the attribute values, expressions or a table: CreateTable's key schema,
index, stream, encryption and throughput rules, UpdateTable's "At least one
of ..." and its one-change-per-request rules, the tag actions' ARN and tag
checks, BatchWriteItem's empty requests, TransactWriteItems' one action per
entry.  The item actions' rules start with expression and attribute-value
checks, so they live with those actions.
``check_key_schema`` (``validation_key_schema.py``) and ``check_projection`` are also run by UpdateTable
against the table (``router/actions/table_indexes.py``), with the same
messages; ``check_tag_count`` and ``check_tag_set_size`` by TagResource
against the table's tags (``router/actions/tags.py``).

Each rule runs after the shape checks passed, so required members are
present and typed.  Order within each follows dynalite's
validations/<action>.js ``custom`` (recorded against live DynamoDB);
additions from later captures of live replies are marked, most with the id
of an entry of the 2026 parity catalog of live DynamoDB behaviour
("DDB-TABLE-nnn").  Where that catalog records a message but not its place
among the other rules, the place is a guess and says so.
"""

from __future__ import annotations

import unicodedata
from typing import Any, Callable, Iterable

from meridian.model import limits
from meridian.model.errors import ValidationException

from .backup_rules import BACKUP_RULES
from .validation_key_schema import check_key_schema
from .validation_constraints import java_length, render

_PARAM = "One or more parameter values were invalid: "
_WARM_GUIDE = (
    "See: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/on-demand-capacity-mode.html"
    "#on-demand-capacity-mode-initial"
)
TAG_COUNT_EXCEEDED = "Number of Tags exceed the current limit for the provided ResourceArn"

#: An action's rules: raise ``ValidationException`` or return.
Rule = Callable[[dict[str, Any]], None]

def _elements(values: list[Any]) -> list[dict[str, Any]]:
    """A list of structures with JSON nulls read as empty structures, so no rule trips over them."""
    return [v if v is not None else {} for v in values]


def _names(elements: list[dict[str, Any]]) -> list[str]:
    return [render(e.get("AttributeName")) for e in elements]


def java_hash_set_order(names: Iterable[str]) -> list[str]:
    """``names`` (distinct) in the order a Java ``HashSet`` built from them iterates.

    DynamoDB lists the "keys used" of CreateTable's unused-definitions
    message from such a set ("keys used: [a, sk, pk]" for keys pk, sk, a:
    DDB-TABLE-127): buckets by ``String.hashCode`` spread over a table of 16
    slots, doubled past three quarters full; insertion order within a bucket.
    """
    ordered = list(dict.fromkeys(names))
    capacity = 16
    while len(ordered) > capacity * 3 // 4:
        capacity *= 2
    buckets: dict[int, list[str]] = {}
    for name in ordered:
        code = 0
        data = name.encode("utf-16-be")
        for i in range(0, len(data), 2):  # String.hashCode, over UTF-16 code units, in 32 bits
            code = (31 * code + (data[i] << 8 | data[i + 1])) & 0xFFFFFFFF
        buckets.setdefault((code ^ (code >> 16)) & (capacity - 1), []).append(name)
    return [name for slot in sorted(buckets) for name in buckets[slot]]


def _check_throughput_bounds(throughput: dict[str, Any]) -> None:
    for member in ("ReadCapacityUnits", "WriteCapacityUnits"):
        units = throughput.get(member)
        if units is not None and units > limits.CAPACITY_UNITS_VALUE_MAX:
            raise ValidationException(f"Given value {units} for {member} is out of bounds")


def check_projection(projection: dict[str, Any]) -> None:
    """The rules of a secondary index's ``Projection`` (CreateTable's indexes, UpdateTable's Create)."""
    projection_type = projection.get("ProjectionType")
    non_key = projection.get("NonKeyAttributes")
    if projection_type is None:
        raise ValidationException(f"{_PARAM}Unknown ProjectionType: null")
    if non_key is not None and projection_type != "INCLUDE":
        raise ValidationException(f"{_PARAM}ProjectionType is {projection_type}, but NonKeyAttributes is specified")
    if non_key is None and projection_type == "INCLUDE":
        # 2026 capture of live CreateTable replies.
        raise ValidationException(f"{_PARAM}ProjectionType is INCLUDE, but NonKeyAttributes is not specified")
    seen: set[str] = set()
    for name in non_key or ():
        if name in seen:  # DDB-TABLE-126
            raise ValidationException(f"{_PARAM}Duplicate element in NonKeyAttributes: {name}")
        seen.add(name)


# --- tags (CreateTable, TagResource, UntagResource: DDB-TABLE-105..110, 372) -------------
#: Besides letters, separators and digits of any script, the characters a tag may hold.
_TAG_PUNCTUATION = frozenset("_.:/=+-@")


def _tag_text_ok(text: str) -> bool:
    return all(ch in _TAG_PUNCTUATION or unicodedata.category(ch)[0] in "LZN" for ch in text)


def _check_tag_key(key: Any) -> None:
    if key is None:
        raise ValidationException("The Tag Key provided is invalid, Key: null")
    if not key or java_length(key) > limits.TAG_KEY_LENGTH_MAX or not _tag_text_ok(key):
        raise ValidationException(f"The Tag Key provided is invalid, Key: {key}")
    if key[:4].lower() == "aws:":
        raise ValidationException(f"Tag Key cannot be prefixed with aws:, Key: {key}")


def _check_tags(tags: list[dict[str, Any]]) -> None:
    """Each tag's key and value, then duplicate keys (the order between them is a guess)."""
    for tag in tags:
        key, value = tag.get("Key"), tag.get("Value")
        if key is None:
            raise ValidationException("The Tag Key provided is invalid, Key: null")
        if value is None:
            raise ValidationException("The Tag Value provided is invalid, Value: null")
        _check_tag_key(key)
        if java_length(value) > limits.TAG_VALUE_LENGTH_MAX or not _tag_text_ok(value):
            raise ValidationException(f"The Tag Value provided is invalid, Value: {value}")
    seen: set[str] = set()
    for tag in tags:
        if tag["Key"] in seen:
            raise ValidationException(f"Duplicate Tag Keys provided as input: Duplicate Tag Key found {tag['Key']}")
        seen.add(tag["Key"])


def check_tag_count(count: int) -> None:
    """The 50-tag limit, a ValidationException (DDB-TABLE-108)."""
    if count > limits.TAGS_PER_RESOURCE_MAX:
        raise ValidationException(TAG_COUNT_EXCEEDED)


def check_tag_set_size(tags: dict[str, str]) -> None:
    """The bytes of a resource's tags together (DDB-TABLE-109; counting UTF-8 keys plus values is a guess)."""
    size = sum(len(k.encode()) + len(v.encode()) for k, v in tags.items())
    if size > limits.TAG_SET_BYTES_MAX:
        raise ValidationException(f"Tag set size {size} bytes is above max size limit of {limits.TAG_SET_BYTES_MAX} bytes")


# --- stream, encryption and on-demand / warm throughput members -----------------------
def _check_stream_create(spec: dict[str, Any] | None) -> None:
    """DDB-TABLE-035."""
    if spec is None:
        return
    if spec["StreamEnabled"] and spec.get("StreamViewType") is None:
        raise ValidationException(f"{_PARAM}Table is being created with a stream enabled, UpdateViewType is required")
    if not spec["StreamEnabled"] and spec.get("StreamViewType") is not None:
        raise ValidationException(
            f"{_PARAM}Table is being created with a stream disabled, UpdateViewType should not be specified"
        )


def _check_stream_update(spec: dict[str, Any] | None) -> None:
    """DDB-TABLE-050."""
    if spec is None:
        return
    if spec["StreamEnabled"] and spec.get("StreamViewType") is None:
        raise ValidationException(f"{_PARAM}If stream is being enabled then UpdateViewType is required")
    if not spec["StreamEnabled"] and spec.get("StreamViewType") is not None:
        raise ValidationException(f"{_PARAM}If stream is being disabled, then UpdateViewType must not be specified")


def check_sse(spec: dict[str, Any] | None) -> None:
    """SSESpecification's own rules, CreateTable's and UpdateTable's (DDB-TABLE-031, DDB-TABLE-036)."""
    if spec is None:
        return
    sse_type = spec.get("SSEType")
    if spec.get("Enabled") is False:
        if sse_type is not None:
            raise ValidationException(f"{_PARAM}SSEType can not be specified if Enabled is false")
        if spec.get("KMSMasterKeyId") is not None:
            raise ValidationException(f"{_PARAM}KMSMasterKeyId can not be specified if Enabled is false")
        return
    if sse_type == "AES256":
        raise ValidationException(f"{_PARAM}SSEType AES256 is not supported")
    if spec.get("KMSMasterKeyId") is not None and sse_type is None:
        raise ValidationException(f"{_PARAM}SSEType KMS is required if KMSMasterKeyId is specified")


def _check_on_demand_range(on_demand: dict[str, Any] | None, of: str, update: bool) -> None:
    """Caps below 1 (-1, "no cap", only on UpdateTable): DDB-TABLE-039, DDB-TABLE-051, DDB-TABLE-128."""
    for member in ("MaxReadRequestUnits", "MaxWriteRequestUnits"):
        units = (on_demand or {}).get(member)
        if units is not None and units < 1 and not (update and units == -1):
            raise ValidationException(f"{_PARAM}Requested {member} for OnDemandThroughput for {of} is outside of valid range")


def _check_warm_on_demand(warm: dict[str, Any] | None, of: str) -> None:
    """An on-demand table or index starts warm: WarmThroughput may not ask for less (DDB-TABLE-039, 128).

    The write member's message is a guess after the read member's."""
    floors = (("ReadUnitsPerSecond", limits.ON_DEMAND_INITIAL_READ_UNITS_PER_S),
              ("WriteUnitsPerSecond", limits.ON_DEMAND_INITIAL_WRITE_UNITS_PER_S))
    for member, floor in floors:
        units = (warm or {}).get(member)
        if units is not None and units < floor:
            raise ValidationException(
                f"{_PARAM}Requested {member} for WarmThroughput for {of} is lower than initial throughput for "
                f"OnDemand. {_WARM_GUIDE}"
            )


def _check_create_capacity_modes(body: dict[str, Any], billing: str | None) -> None:
    """CreateTable's OnDemandThroughput and WarmThroughput against the billing mode (DDB-TABLE-038, 039).

    Their place after the ProvisionedThroughput rules is a guess."""
    on_demand = body.get("OnDemandThroughput")
    warm = body.get("WarmThroughput")
    if billing == "PAY_PER_REQUEST":
        _check_on_demand_range(on_demand, "table", update=False)
        _check_warm_on_demand(warm, "table")
        return
    for member in ("MaxReadRequestUnits", "MaxWriteRequestUnits"):
        if (on_demand or {}).get(member) is not None:
            raise ValidationException(
                f"{_PARAM}{member} for OnDemandThroughput cannot be specified when table BillingMode is PROVISIONED."
            )
    throughput = body["ProvisionedThroughput"]
    for member, capacity in (("ReadUnitsPerSecond", "ReadCapacityUnits"), ("WriteUnitsPerSecond", "WriteCapacityUnits")):
        units = (warm or {}).get(member)
        if units is not None and units < throughput[capacity]:  # the write member's message is a guess
            raise ValidationException(
                f"{_PARAM}Requested {member} for WarmThroughput for table is lower than {capacity} of "
                "ProvisionedThroughput"
            )


# --- CreateTable --------------------------------------------------------------------
def _check_global_index_capacity(index: dict[str, Any], billing: str | None) -> None:
    name = index["IndexName"]
    if billing == "PAY_PER_REQUEST" and index.get("ProvisionedThroughput") is not None:
        raise ValidationException(
            f"{_PARAM}ProvisionedThroughput should not be specified for index: {name} when BillingMode is "
            "PAY_PER_REQUEST"
        )
    if billing != "PAY_PER_REQUEST" and index.get("ProvisionedThroughput") is None:
        # 2026 capture of live CreateTable replies.
        raise ValidationException(f"{_PARAM}ProvisionedThroughput is not specified for index: {name}")
    if billing == "PAY_PER_REQUEST":  # DDB-TABLE-128; their place after the rules above is a guess
        _check_on_demand_range(index.get("OnDemandThroughput"), f"index : {name}", update=False)
        _check_warm_on_demand(index.get("WarmThroughput"), f"index {name}")


def _create_table(body: dict[str, Any]) -> None:
    billing = body.get("BillingMode")
    throughput = body.get("ProvisionedThroughput")
    if billing == "PAY_PER_REQUEST":
        if throughput is not None:
            raise ValidationException(
                f"{_PARAM}Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST"
            )
    else:
        if throughput is None:
            raise ValidationException(
                f"{_PARAM}ReadCapacityUnits and WriteCapacityUnits must both be specified when BillingMode is PROVISIONED"
            )
        _check_throughput_bounds(throughput)
    _check_create_capacity_modes(body, billing)

    definitions = _names(_elements(body["AttributeDefinitions"]))
    seen: set[str] = set()
    for name in definitions:
        if name in seen:  # DDB-TABLE-042, DDB-TABLE-127; its place before the key rules is a guess
            raise ValidationException(f"Attribute Name is duplicated: {name}")
        seen.add(name)
    key_schema = _elements(body["KeySchema"])
    keys = _names(key_schema)
    if len(keys) > len(definitions):
        raise ValidationException("Invalid KeySchema: Some index key attribute have no definition")
    check_key_schema(key_schema, definitions)

    local_indexes = body.get("LocalSecondaryIndexes")
    global_indexes = body.get("GlobalSecondaryIndexes")
    if local_indexes is None and global_indexes is None and len(keys) != len(definitions):
        raise ValidationException(
            f"{_PARAM}Number of attributes in KeySchema does not exactly match number of attributes defined in "
            "AttributeDefinitions"
        )
    used = list(keys)
    for index in _elements(local_indexes or []) + _elements(global_indexes or []):
        used += [k for k in _names(_elements(index.get("KeySchema") or [])) if k not in used]
    if (local_indexes or global_indexes) and any(d not in used for d in definitions):
        # With indexes the count rule above becomes this one, checked before
        # every index rule (DDB-TABLE-127; 2026 capture of live replies).
        raise ValidationException(
            f"{_PARAM}Some AttributeDefinitions are not used. AttributeDefinitions: [{', '.join(definitions)}], "
            f"keys used: [{', '.join(java_hash_set_order(used))}]"
        )

    index_names: set[str] = set()
    if local_indexes is not None:
        if not local_indexes:
            raise ValidationException(f"{_PARAM}List of LocalSecondaryIndexes is empty")
        if len(key_schema) != 2:
            raise ValidationException(
                f"{_PARAM}Table KeySchema does not have a range key, which is required when specifying a LocalSecondaryIndex"
            )
        for index in _elements(local_indexes):
            if not index:
                continue
            name = index["IndexName"]
            index_keys = _names(_elements(index["KeySchema"]))
            check_key_schema(_elements(index["KeySchema"]), definitions)
            if len(index_keys) != 2:
                raise ValidationException(f"{_PARAM}Index KeySchema does not have a range key for index: {name}")
            if index_keys[0] != keys[0]:
                raise ValidationException(
                    f"{_PARAM}Index KeySchema does not have the same leading hash key as table KeySchema for index: "
                    f"{name}. index hash key: {index_keys[0]}, table hash key: {keys[0]}"
                )
            check_projection(index["Projection"])
            if name in index_names:
                raise ValidationException(f"{_PARAM}Duplicate index name: {name}")
            index_names.add(name)
        if len(local_indexes) > limits.LOCAL_SECONDARY_INDEXES_MAX:
            raise ValidationException(
                f"{_PARAM}Number of LocalSecondaryIndexes exceeds per-table limit of {limits.LOCAL_SECONDARY_INDEXES_MAX}"
            )

    if global_indexes is not None:
        if not global_indexes:
            raise ValidationException(f"{_PARAM}List of GlobalSecondaryIndexes is empty")
        for index in _elements(global_indexes):
            if not index:
                continue
            name = index["IndexName"]
            check_key_schema(_elements(index["KeySchema"]), definitions, multi_attribute=True)
            check_projection(index["Projection"])
            _check_global_index_capacity(index, billing)
            if name in index_names:
                raise ValidationException(f"{_PARAM}Duplicate index name: {name}")
            index_names.add(name)
        if len(global_indexes) > limits.GLOBAL_SECONDARY_INDEXES_MAX:
            raise ValidationException(
                f"{_PARAM}GlobalSecondaryIndex count exceeds the per-table limit of {limits.GLOBAL_SECONDARY_INDEXES_MAX}"
            )
    # The stream, encryption and tag rules after the key and index ones: their order is a guess.
    _check_stream_create(body.get("StreamSpecification"))
    check_sse(body.get("SSESpecification"))
    tags = _elements(body.get("Tags") or [])
    _check_tags(tags)
    check_tag_count(len(tags))


# --- UpdateTable --------------------------------------------------------------------
# UpdateTable's "nothing to do" message names every member that changes a
# table; MultiRegionConsistency, which changes nothing alone, is left out when
# the request has it (2026 capture of live replies).
_UPDATE_TABLE_CHANGES = ("ProvisionedThroughput", "BillingMode", "UpdateStreamEnabled", "GlobalSecondaryIndexUpdates",
                         "SSESpecification", "ReplicaUpdates", "MultiAccountReplicaReady", "ReplicaTransitRoleArn",
                         "MultiRegionConsistency", "DeletionProtectionEnabled", "OnDemandThroughput",
                         "WarmThroughput", "TableClass")
_UPDATE_TABLE_CHANGING_MEMBERS = ("ProvisionedThroughput", "BillingMode", "StreamSpecification", "SSESpecification",
                                  "ReplicaUpdates", "DeletionProtectionEnabled", "OnDemandThroughput",
                                  "WarmThroughput", "TableClass", "GlobalTableSettingsReplicationMode",
                                  "DisassociationProtectionEnabled", "VectorIndexUpdates")
#: The members each of which is one change ("concern") of UpdateTable.
_CONCERNS = ("ProvisionedThroughput", "BillingMode", "GlobalSecondaryIndexUpdates", "StreamSpecification",
             "SSESpecification", "DeletionProtectionEnabled", "OnDemandThroughput", "WarmThroughput", "TableClass")
#: Members that must come alone, in the order DynamoDB names them when several do (DDB-TABLE-433).
_ALONE = (("SSESpecification", "Server-Side Encryption modification"), ("TableClass", "TableClass modification"),
          ("DeletionProtectionEnabled", "DeletionProtection modification"))


def _concerns(body: dict[str, Any]) -> set[str]:
    """The changes a request asks for; an empty WarmThroughput or OnDemandThroughput
    counts as none when something else is asked (DDB-TABLE-456), like an empty
    GlobalSecondaryIndexUpdates."""
    present = {m for m in _CONCERNS if body.get(m) is not None}
    return {m for m in present if m not in ("GlobalSecondaryIndexUpdates", "WarmThroughput", "OnDemandThroughput")
            or body[m]}


def _check_one_concern(body: dict[str, Any]) -> None:
    """UpdateTable makes one change per request (DDB-TABLE-382, DDB-TABLE-433, DDB-TABLE-174).

    Only BillingMode combines: with ProvisionedThroughput and index updates,
    with a stream when it is PAY_PER_REQUEST, with OnDemandThroughput.
    ReplicaUpdates' own rule is ``replica_updates.py``'s.
    """
    concerns = _concerns(body)
    for member, what in _ALONE:
        if member in concerns and len(concerns) > 1:
            raise ValidationException(f"{_PARAM}{what} must be the only operation in the request")
    if "OnDemandThroughput" in concerns and concerns - {"OnDemandThroughput", "BillingMode"}:
        raise ValidationException(f"{_PARAM}OnDemandThroughput can only be combined with BillingMode in an UpdateTable request")
    updates = _elements(body.get("GlobalSecondaryIndexUpdates") or [])
    online = any(u.get("Create") is not None or u.get("Delete") is not None for u in updates)
    if "WarmThroughput" in concerns:
        if any(u.get("Create") is not None for u in updates):
            raise ValidationException(
                f"{_PARAM}Create global secondary index cannot be specified when updating WarmThroughput"
            )
        if len(concerns) > 1:
            raise ValidationException(f"{_PARAM}WarmThroughput must be the only operation in the request")
    iops = "ProvisionedThroughput" in concerns or body.get("BillingMode") == "PROVISIONED"
    if "StreamSpecification" in concerns and iops:
        raise ValidationException(f"{_PARAM}You cannot modify stream status while updating table IOPS")
    if online and "ProvisionedThroughput" in concerns:
        raise ValidationException(f"{_PARAM}You cannot create or delete index while updating table IOPS")
    if online and "StreamSpecification" in concerns:
        raise ValidationException(f"{_PARAM}You cannot create or delete index while changing stream status")


def _check_index_update_entries(updates: list[Any]) -> None:
    index_names: set[str] = set()
    for update in updates:
        if update is None:
            continue
        actions = [update[a] for a in ("Update", "Create", "Delete") if update.get(a) is not None]
        if not actions:
            raise ValidationException(
                f"{_PARAM}One of GlobalSecondaryIndexUpdate.Update, GlobalSecondaryIndexUpdate.Create, "
                "GlobalSecondaryIndexUpdate.Delete must not be null"
            )
        if len(actions) > 1:
            # 2026 capture of live UpdateTable replies.
            raise ValidationException(
                f"{_PARAM}Only one global secondary index action is allowed per GlobalSecondaryIndexUpdate object"
            )
        name = actions[0]["IndexName"]
        if name in index_names:
            raise ValidationException(
                f"{_PARAM}Only one global secondary index update per index is allowed simultaneously. Index: {name}"
            )
        index_names.add(name)
        if update.get("Update") is not None and update["Update"].get("WarmThroughput") == {}:
            raise ValidationException(  # DDB-TABLE-456: before the table and the index are looked up
                f"{_PARAM}WarmThroughput must have at least one of ReadUnitsPerSecond or WriteUnitsPerSecond "
                f"specified for index: {name}"
            )


def _update_table(body: dict[str, Any]) -> None:
    if not body.get("GlobalSecondaryIndexUpdates") and all(body.get(m) is None for m in _UPDATE_TABLE_CHANGING_MEMBERS):
        names = [n for n in _UPDATE_TABLE_CHANGES if n != "MultiRegionConsistency" or body.get(n) is None]
        raise ValidationException(f"At least one of {', '.join(names[:-1])} or {names[-1]} is required")
    if body.get("GlobalSecondaryIndexUpdates") == []:
        # An empty list counts as absent above, and is refused once another
        # member makes the request one (DDB-TABLE-359).
        raise ValidationException(f"{_PARAM}List of GlobalSecondaryIndexUpdates is empty")
    throughput = body.get("ProvisionedThroughput")
    if throughput is not None:
        _check_throughput_bounds(throughput)
    _check_index_update_entries(body.get("GlobalSecondaryIndexUpdates") or [])
    if any(u is not None for u in body.get("ReplicaUpdates") or ()):
        return  # ReplicaUpdates must be the only change: replica_updates.py says so first
    # The one-change rules, then each member's own: their relative order is a guess.
    _check_one_concern(body)
    _check_stream_update(body.get("StreamSpecification"))
    check_sse(body.get("SSESpecification"))
    _check_on_demand_range(body.get("OnDemandThroughput"), "table", update=True)


# --- other actions ------------------------------------------------------------------
def _batch_write_item(body: dict[str, Any]) -> None:
    # The first of BatchWriteItem's rules, checked for every table before any
    # attribute value: a request naming neither PutRequest nor DeleteRequest.
    for requests in body["RequestItems"].values():
        for request in requests or ():
            if request is None or (request.get("PutRequest") is None and request.get("DeleteRequest") is None):
                raise ValidationException(
                    "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the "
                    "supported datatypes"
                )


_TRANSACT_WRITE_MEMBERS = ("ConditionCheck", "Put", "Delete", "Update")
#: A TransactItems entry naming none of the four (the older regions' sentence;
#: eu-west-2 words it as a constraint since 2026-10), or several.
TRANSACT_WRITE_NONE = "Invalid Request: TransactWriteRequest should contain Delete or Put or Update request"
TRANSACT_WRITE_MANY = "TransactItems can only contain one of Check, Put, Update or Delete"


def _transact_write_items(body: dict[str, Any]) -> None:
    """Each TransactItems entry holds exactly one action, checked entry by
    entry before any attribute value or expression (router/actions/transact.py)."""
    for entry in body["TransactItems"]:
        present = 0 if entry is None else sum(entry.get(member) is not None for member in _TRANSACT_WRITE_MEMBERS)
        if present == 0:
            raise ValidationException(TRANSACT_WRITE_NONE)
        if present > 1:
            raise ValidationException(TRANSACT_WRITE_MANY)


def _transact_get_items(body: dict[str, Any]) -> None:
    """A JSON null entry: the constraint its ``Get`` member fails (a guess at DynamoDB's answer)."""
    for position, entry in enumerate(body["TransactItems"], 1):
        if entry is None:
            raise ValidationException(
                f"1 validation error detected: Value null at 'transactItems.{position}.member.get' "
                "failed to satisfy constraint: Member must not be null"
            )


def _null_statements(member: str, path: str):
    """A JSON null among PartiQL statements: the constraint its required
    ``Statement`` fails (a guess at DynamoDB's answer, as for TransactGetItems)."""

    def check(body: dict[str, Any]) -> None:
        for position, entry in enumerate(body[member], 1):
            if entry is None:
                raise ValidationException(
                    f"1 validation error detected: Value null at '{path}.{position}.member.statement' "
                    "failed to satisfy constraint: Member must not be null"
                )

    return check


def _require_resource_arn(body: dict[str, Any]) -> None:
    if body.get("ResourceArn") is None:
        raise ValidationException("Invalid TableArn")


def _tag_resource(body: dict[str, Any]) -> None:
    _require_resource_arn(body)
    tags = body.get("Tags")
    if not tags:
        raise ValidationException("Atleast one Tag needs to be provided as Input.")
    _check_tags(_elements(tags))


def _untag_resource(body: dict[str, Any]) -> None:
    _require_resource_arn(body)
    keys = body.get("TagKeys")
    if not keys:
        raise ValidationException("Atleast one Tag Key needs to be provided as Input.")
    for key in keys:
        _check_tag_key(key)  # aws: keys too (DDB-TABLE-105)
    check_tag_count(len(keys))  # more keys than a resource may hold (DDB-TABLE-107)


#: Action name -> its request-only rules.
RULES: dict[str, Rule] = {
    "CreateTable": _create_table,
    "UpdateTable": _update_table,
    "BatchWriteItem": _batch_write_item,
    "TransactWriteItems": _transact_write_items,
    "TransactGetItems": _transact_get_items,
    "BatchExecuteStatement": _null_statements("Statements", "statements"),
    "ExecuteTransaction": _null_statements("TransactStatements", "transactStatements"),
    "TagResource": _tag_resource,
    "UntagResource": _untag_resource,
    "ListTagsOfResource": _require_resource_arn,
    **BACKUP_RULES,  # the backup and PITR actions' (router/backup_rules.py)
}
