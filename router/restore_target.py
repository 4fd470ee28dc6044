"""The table a restore creates: the source's schema and settings as DynamoDB restores them.

Both restores (from a backup, to a point in time) create a new table with a
new table id, from the source table's record (the backup's copy, or the
live table's for a point in time).  What DynamoDB carries over and what not
(parity catalog DDB-TABLE-215, DDB-BACKUP-009, DDB-BACKUP-021): the key
schema, the secondary indexes (with their recorded GSI throughput), the
billing mode and provisioned throughput are restored; streams, Time to Live,
point-in-time recovery, tags, deletion protection and the table class are
not.  Encryption is not modelled (every table has the default key).

The overrides (DDB-TABLE-273, DDB-TABLE-279, DDB-TABLE-280, 281 and the
ValidationException catalogue DDB-TABLE-442), checked in this order (the
order among them is a guess):

* ``ProvisionedThroughputOverride`` only with an effective PROVISIONED mode,
  and required when ``BillingModeOverride`` turns an on-demand source
  PROVISIONED; it applies to the base table only;
* ``OnDemandThroughputOverride`` only with an effective PAY_PER_REQUEST
  mode, each maximum at least 1 (accepted, not modelled: Meridian does not
  throttle);
* ``GlobalSecondaryIndexOverride`` / ``LocalSecondaryIndexOverride``: each
  entry must match a source index of its kind by key schema and projection
  (it may rename it); an empty list drops that kind of index, an absent
  one keeps them all.  A GSI of a table restored PROVISIONED keeps its
  recorded throughput unless its entry gives one; restored PAY_PER_REQUEST,
  it has none.
"""

from __future__ import annotations

from typing import Any

from meridian.model.errors import ValidationException
from meridian.model.ops import IndexSpec

from .table_record import Index, Table, new_table_id, new_table_uuid

_INVALID = "Invalid Request: "


def _check_throughput_overrides(source: Table, body: dict[str, Any], billing: str) -> None:
    override = body.get("BillingModeOverride")
    throughput = body.get("ProvisionedThroughputOverride")
    if throughput is not None and override == "PAY_PER_REQUEST":
        raise ValidationException(
            f"{_INVALID}Cannot override ProvisionedThroughput if BillingMode is overridden to PAY_PER_REQUEST"
        )
    if throughput is not None and billing != "PROVISIONED":
        raise ValidationException(f"{_INVALID}Cannot override ProvisionedThroughput unless BillingMode is PROVISIONED")
    if override == "PROVISIONED" and throughput is None and source.billing_mode != "PROVISIONED":
        raise ValidationException(
            f"{_INVALID}Must override ProvisionedThroughput if BillingMode is overridden to PROVISIONED"
        )
    on_demand = body.get("OnDemandThroughputOverride")
    if on_demand is None:
        return
    for member in ("MaxReadRequestUnits", "MaxWriteRequestUnits"):
        if on_demand.get(member) is not None and billing != "PAY_PER_REQUEST":
            raise ValidationException(
                f"{_INVALID}Cannot override {member} for OnDemandThroughput unless BillingModeOverride is PAY_PER_REQUEST"
            )
    for member in ("MaxReadRequestUnits", "MaxWriteRequestUnits"):
        units = on_demand.get(member)
        if units is not None and units < 1:
            raise ValidationException(f"{_INVALID}Requested {member} for OnDemandThroughput is outside of valid range")


def _override_shape(entry: dict[str, Any]) -> tuple:
    """What an override entry must share with a source index: key names by role
    (a multi-attribute key's in order), projection."""
    elements = sorted((k for k in entry.get("KeySchema") or () if k), key=lambda k: k.get("KeyType") != "HASH")
    keys = tuple((k.get("KeyType"), k.get("AttributeName")) for k in elements)
    projection = entry.get("Projection") or {}
    return keys, projection.get("ProjectionType"), tuple(sorted(projection.get("NonKeyAttributes") or ()))


def _source_shape(index: Index) -> tuple:
    keys = tuple((k["KeyType"], k["AttributeName"]) for k in index.spec.key_schema_elements())
    return keys, index.spec.projection_type, tuple(sorted(index.spec.non_key_attributes))


def _restored_indexes(
    source: Table, override: list[Any] | None, is_global: bool, billing: str
) -> list[Index]:
    candidates = [index for index in source.indexes if index.is_global == is_global]
    if override is None:
        chosen = [(index, index.name, None) for index in candidates]
    else:
        chosen = []
        for entry in (e if e is not None else {} for e in override):
            shape = _override_shape(entry)
            match = next((index for index in candidates if _source_shape(index) == shape), None)
            if match is None:
                raise ValidationException(
                    f"{_INVALID}Index {entry.get('IndexName')} does not match a secondary index that existed in the "
                    "source table and cannot be created during the restore operation"
                )
            chosen.append((match, entry.get("IndexName") or match.name, entry.get("ProvisionedThroughput")))
    out = []
    for index, name, throughput in chosen:
        read, write = 0, 0
        if is_global and billing == "PROVISIONED":
            if throughput is not None:
                read, write = int(throughput["ReadCapacityUnits"]), int(throughput["WriteCapacityUnits"])
            elif source.billing_mode == "PROVISIONED":
                read, write = index.read_capacity, index.write_capacity
            else:  # guess: the wording of the catalogue's "for index" variant
                raise ValidationException(f"{_INVALID}Must specify provisioned throughput for index {name}")
        elif throughput is not None:
            raise ValidationException(
                f"{_INVALID}Cannot override ProvisionedThroughput if BillingMode is overridden to PAY_PER_REQUEST "
                f"for index {name}"
            )
        spec = index.spec
        out.append(Index(
            IndexSpec(name=name, index_id=new_table_id(), is_global=spec.is_global, key_schema=spec.key_schema,
                      projection_type=spec.projection_type, non_key_attributes=spec.non_key_attributes,
                      hash_count=spec.hash_count),
            read_capacity=read, write_capacity=write,
        ))
    return out


def restored_table(
    source: Table, body: dict[str, Any], target_name: str, region: str, now_s: float, summary: dict[str, Any]
) -> Table:
    """The new table (CREATING: ``restore`` is ``summary``) a restore of ``source`` makes.

    Raises ValidationException for overrides DynamoDB refuses.
    """
    billing = body.get("BillingModeOverride") or source.billing_mode
    _check_throughput_overrides(source, body, billing)
    indexes = _restored_indexes(source, body.get("LocalSecondaryIndexOverride"), False, billing)
    indexes += _restored_indexes(source, body.get("GlobalSecondaryIndexOverride"), True, billing)
    used = {name for name, _ in source.key_schema}
    for index in indexes:
        used.update(name for name, _ in index.spec.key_schema)
    read, write = 0, 0
    if billing == "PROVISIONED":
        throughput = body.get("ProvisionedThroughputOverride")
        if throughput is not None:
            read, write = int(throughput["ReadCapacityUnits"]), int(throughput["WriteCapacityUnits"])
        else:
            read, write = source.read_capacity, source.write_capacity
    return Table(
        name=target_name,
        table_id=new_table_id(),
        uuid=new_table_uuid(),
        key_schema=list(source.key_schema),
        attribute_definitions=[d for d in source.attribute_definitions if d["AttributeName"] in used],
        created_s=now_s,
        region=region,
        billing_mode=billing,
        billing_mode_explicit=source.billing_mode_explicit or "BillingModeOverride" in body,
        read_capacity=read,
        write_capacity=write,
        last_pay_per_request_s=now_s if billing == "PAY_PER_REQUEST" else None,
        indexes=indexes,
        restore=summary,
    )
