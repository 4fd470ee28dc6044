"""Step 3 of request validation: the request-only rules, per action, in DynamoDB's order.

Rules DynamoDB runs with its shape checks and before anything that needs
the attribute values, expressions or a table: CreateTable's key schema and
index rules, UpdateTable's "At least one of ...", the tag actions' ARN and
tag checks, BatchWriteItem's empty requests.  The item actions' rules start
with expression and attribute-value checks, so they live with those actions.
``check_key_schema`` and ``check_projection`` are also run by UpdateTable
against the table (``router/actions/table_indexes.py``), with the same
messages.

Each rule runs after the shape checks passed, so required members are
present and typed.  Order within each follows dynalite's
validations/<action>.js ``custom`` (recorded against live DynamoDB);
additions from later captures of live replies are marked.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

from meridian.model import limits
from meridian.model.errors import ValidationException

from .validation_constraints import render

_PARAM = "One or more parameter values were invalid: "

#: An action's rules: raise ``ValidationException`` or return.
Rule = Callable[[dict[str, Any]], None]

def _elements(values: list[Any]) -> list[dict[str, Any]]:
    """A list of structures with JSON nulls read as empty structures, so no rule trips over them."""
    return [v if v is not None else {} for v in values]


def _names(elements: list[dict[str, Any]]) -> list[str]:
    return [render(e.get("AttributeName")) for e in elements]


def _check_throughput_bounds(throughput: dict[str, Any]) -> None:
    for member in ("ReadCapacityUnits", "WriteCapacityUnits"):
        units = throughput.get(member)
        if units is not None and units > limits.CAPACITY_UNITS_VALUE_MAX:
            raise ValidationException(f"Given value {units} for {member} is out of bounds")


def check_key_schema(
    key_schema: list[dict[str, Any]], definitions: list[str], known: Iterable[str] | None = None
) -> None:
    """The rules a table's and every secondary index's key schema obey, in DynamoDB's order.

    ``definitions``: the request's attribute definitions (named in the
    message); ``known``: every attribute a key may use, when more than those
    (UpdateTable: the table's own definitions too).
    """
    keys = _names(key_schema)
    usable = set(definitions if known is None else known)
    if any(k not in usable for k in keys):
        raise ValidationException(
            f"{_PARAM}Some index key attributes are not defined in AttributeDefinitions. "
            f"Keys: [{', '.join(keys)}], AttributeDefinitions: [{', '.join(definitions)}]"
        )
    if len(keys) == 2 and keys[0] == keys[1]:
        raise ValidationException("Both the Hash Key and the Range Key element in the KeySchema have the same name")
    if key_schema[0].get("KeyType") != "HASH":
        raise ValidationException("Invalid KeySchema: The first KeySchemaElement is not a HASH key type")
    if len(key_schema) == 2 and key_schema[1].get("KeyType") != "RANGE":
        raise ValidationException("Invalid KeySchema: The second KeySchemaElement is not a RANGE key type")


def check_projection(projection: dict[str, Any]) -> None:
    """The rules of a secondary index's ``Projection`` (CreateTable's indexes, UpdateTable's Create)."""
    projection_type = projection.get("ProjectionType")
    if projection_type is None:
        raise ValidationException(f"{_PARAM}Unknown ProjectionType: null")
    if projection.get("NonKeyAttributes") is not None and projection_type != "INCLUDE":
        raise ValidationException(f"{_PARAM}ProjectionType is {projection_type}, but NonKeyAttributes is specified")
    if projection.get("NonKeyAttributes") is None and projection_type == "INCLUDE":
        # 2026 capture of live CreateTable replies.
        raise ValidationException(f"{_PARAM}ProjectionType is INCLUDE, but NonKeyAttributes is not specified")


def _check_tags(tags: list[dict[str, Any]]) -> None:
    for tag in tags:
        if tag.get("Key") is None:
            raise ValidationException("The Tag Key provided is invalid, Key: null")
        if tag.get("Value") is None:
            raise ValidationException("The Tag Value provided is invalid, Value: null")


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

    definitions = _names(_elements(body["AttributeDefinitions"]))
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

    index_names: set[str] = set()
    used = list(keys)
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
            used += [k for k in index_keys if k not in used]
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
            index_keys = _names(_elements(index["KeySchema"]))
            check_key_schema(_elements(index["KeySchema"]), definitions)
            check_projection(index["Projection"])
            if billing == "PAY_PER_REQUEST" and index.get("ProvisionedThroughput") is not None:
                raise ValidationException(
                    f"{_PARAM}ProvisionedThroughput should not be specified for index: {name} when BillingMode is "
                    "PAY_PER_REQUEST"
                )
            if billing != "PAY_PER_REQUEST" and index.get("ProvisionedThroughput") is None:
                # 2026 capture of live CreateTable replies.
                raise ValidationException(f"{_PARAM}ProvisionedThroughput is not specified for index: {name}")
            if name in index_names:
                raise ValidationException(f"{_PARAM}Duplicate index name: {name}")
            index_names.add(name)
            used += [k for k in index_keys if k not in used]
        if len(global_indexes) > limits.GLOBAL_SECONDARY_INDEXES_MAX:
            raise ValidationException(
                f"{_PARAM}GlobalSecondaryIndex count exceeds the per-table limit of {limits.GLOBAL_SECONDARY_INDEXES_MAX}"
            )

    if (local_indexes or global_indexes) and any(d not in used for d in definitions):
        # 2026 capture of live CreateTable replies: with indexes, the count
        # rule above becomes this one.
        raise ValidationException(
            f"{_PARAM}Some AttributeDefinitions are not used. AttributeDefinitions: [{', '.join(definitions)}], "
            f"keys used: [{', '.join(used)}]"
        )
    _check_tags(_elements(body.get("Tags") or []))


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


def _update_table(body: dict[str, Any]) -> None:
    if not body.get("GlobalSecondaryIndexUpdates") and all(body.get(m) is None for m in _UPDATE_TABLE_CHANGING_MEMBERS):
        names = [n for n in _UPDATE_TABLE_CHANGES if n != "MultiRegionConsistency" or body.get(n) is None]
        raise ValidationException(f"At least one of {', '.join(names[:-1])} or {names[-1]} is required")
    throughput = body.get("ProvisionedThroughput")
    if throughput is not None:
        _check_throughput_bounds(throughput)
    index_names: set[str] = set()
    for update in body.get("GlobalSecondaryIndexUpdates") or ():
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
        if not key:
            raise ValidationException(f"The Tag Key provided is invalid, Key: {'null' if key is None else key}")


#: Action name -> its request-only rules.
RULES: dict[str, Rule] = {
    "CreateTable": _create_table,
    "UpdateTable": _update_table,
    "BatchWriteItem": _batch_write_item,
    "TagResource": _tag_resource,
    "UntagResource": _untag_resource,
    "ListTagsOfResource": _require_resource_arn,
}
