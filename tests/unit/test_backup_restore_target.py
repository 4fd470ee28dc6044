"""The table a restore creates (router/restore_target.py): what is carried over, the overrides."""

from __future__ import annotations

import pytest

from meridian.model.errors import ValidationException
from meridian.model.ops import IndexSpec
from meridian.router.table_record import Index, Table

from meridian.router.restore_target import restored_table

NOW_S = 1_800_000_000.0
SUMMARY = {"SourceTableArn": "arn", "RestoreDateTime": NOW_S, "RestoreInProgress": True}


def _source(billing: str = "PROVISIONED") -> Table:
    provisioned = billing == "PROVISIONED"
    return Table(
        name="src", table_id=7, uuid="u", key_schema=[("pk", "S"), ("sk", "N")],
        attribute_definitions=[{"AttributeName": n, "AttributeType": t}
                               for n, t in (("pk", "S"), ("sk", "N"), ("g", "S"), ("l", "N"))],
        created_s=NOW_S - 100, region="us-east-1", billing_mode=billing, billing_mode_explicit=True,
        read_capacity=5 if provisioned else 0, write_capacity=6 if provisioned else 0,
        stream={"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"}, stream_label="x",
        deletion_protection=True, table_class="STANDARD_INFREQUENT_ACCESS", tags={"a": "b"},
        ttl_attribute="exp", pitr_enabled_s=NOW_S - 50, pitr_recovery_days=7,
        indexes=[
            Index(IndexSpec("lsi", 11, False, (("pk", "S"), ("l", "N")), "KEYS_ONLY")),
            Index(IndexSpec("gsi", 12, True, (("g", "S"),), "INCLUDE", ("x", "y"))),
        ],
    )


def _restore(source: Table, **body) -> Table:
    return restored_table(source, body, "dst", "us-east-1", NOW_S, dict(SUMMARY))


def test_what_a_restore_keeps_and_drops():
    source = _source()
    source.indexes[1].read_capacity, source.indexes[1].write_capacity = 3, 4
    target = _restore(source)
    assert target.name == "dst" and target.table_id != source.table_id and target.uuid != source.uuid
    assert target.key_schema == source.key_schema and target.created_s == NOW_S
    assert (target.billing_mode, target.read_capacity, target.write_capacity) == ("PROVISIONED", 5, 6)
    assert [i.name for i in target.indexes] == ["lsi", "gsi"]
    assert {i.spec.index_id for i in target.indexes}.isdisjoint({11, 12})  # fresh ids
    assert (target.indexes[1].read_capacity, target.indexes[1].write_capacity) == (3, 4)
    assert target.indexes[1].spec.non_key_attributes == ("x", "y")
    # Not restored: stream, TTL, PITR, tags, deletion protection, table class.
    assert target.stream is None and target.stream_label is None and target.ttl_attribute is None
    assert target.pitr_enabled_s is None and target.tags == {} and not target.deletion_protection
    assert target.table_class is None
    assert target.restoring and target.table_status == "CREATING"


def test_empty_index_overrides_drop_the_indexes_and_their_attributes():
    target = _restore(_source(), GlobalSecondaryIndexOverride=[], LocalSecondaryIndexOverride=[])
    assert target.indexes == []
    assert [d["AttributeName"] for d in target.attribute_definitions] == ["pk", "sk"]


def test_an_index_override_may_rename_a_matching_index():
    override = [{"IndexName": "renamed", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                 "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["y", "x"]},
                 "ProvisionedThroughput": {"ReadCapacityUnits": 9, "WriteCapacityUnits": 8}}]
    target = _restore(_source(), GlobalSecondaryIndexOverride=override)
    assert [i.name for i in target.indexes] == ["lsi", "renamed"]
    assert (target.indexes[1].read_capacity, target.indexes[1].write_capacity) == (9, 8)


def test_an_index_that_did_not_exist_cannot_be_created():
    override = [{"IndexName": "new", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                 "Projection": {"ProjectionType": "ALL"}}]
    with pytest.raises(ValidationException) as info:
        _restore(_source(), GlobalSecondaryIndexOverride=override)
    assert info.value.message == ("Invalid Request: Index new does not match a secondary index that existed in the "
                                  "source table and cannot be created during the restore operation")


def test_billing_override_to_on_demand_zeroes_the_throughput():
    target = _restore(_source(), BillingModeOverride="PAY_PER_REQUEST")
    assert (target.billing_mode, target.read_capacity, target.write_capacity) == ("PAY_PER_REQUEST", 0, 0)
    assert target.last_pay_per_request_s == NOW_S
    assert (target.indexes[1].read_capacity, target.indexes[1].write_capacity) == (0, 0)


@pytest.mark.parametrize("billing, body, message", [
    ("PROVISIONED", {"BillingModeOverride": "PAY_PER_REQUEST",
                     "ProvisionedThroughputOverride": {"ReadCapacityUnits": 1, "WriteCapacityUnits": 1}},
     "Invalid Request: Cannot override ProvisionedThroughput if BillingMode is overridden to PAY_PER_REQUEST"),
    ("PAY_PER_REQUEST", {"ProvisionedThroughputOverride": {"ReadCapacityUnits": 1, "WriteCapacityUnits": 1}},
     "Invalid Request: Cannot override ProvisionedThroughput unless BillingMode is PROVISIONED"),
    ("PAY_PER_REQUEST", {"BillingModeOverride": "PROVISIONED"},
     "Invalid Request: Must override ProvisionedThroughput if BillingMode is overridden to PROVISIONED"),
    ("PAY_PER_REQUEST", {"OnDemandThroughputOverride": {"MaxReadRequestUnits": 0, "MaxWriteRequestUnits": 0}},
     "Invalid Request: Requested MaxReadRequestUnits for OnDemandThroughput is outside of valid range"),
    ("PROVISIONED", {"OnDemandThroughputOverride": {"MaxReadRequestUnits": 10}},
     "Invalid Request: Cannot override MaxReadRequestUnits for OnDemandThroughput unless BillingModeOverride is "
     "PAY_PER_REQUEST"),
])
def test_throughput_overrides(billing, body, message):
    with pytest.raises(ValidationException) as info:
        _restore(_source(billing), **body)
    assert info.value.message == message


def test_provisioned_override_of_an_on_demand_source():
    body = {"BillingModeOverride": "PROVISIONED",
            "ProvisionedThroughputOverride": {"ReadCapacityUnits": 2, "WriteCapacityUnits": 3}}
    with pytest.raises(ValidationException) as info:  # its GSI has no recorded throughput
        _restore(_source("PAY_PER_REQUEST"), **body)
    assert info.value.message == "Invalid Request: Must specify provisioned throughput for index gsi"
    target = _restore(_source("PAY_PER_REQUEST"), GlobalSecondaryIndexOverride=[], **body)
    assert (target.billing_mode, target.read_capacity, target.write_capacity) == ("PROVISIONED", 2, 3)
