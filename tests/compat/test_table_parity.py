"""CreateTable / UpdateTable / DescribeTable / DeleteTable as live DynamoDB answers them (issue 17).

Each test cites the entries of the 2026 parity catalog of DynamoDB behaviours
("DDB-TABLE-nnn", verified against live DynamoDB in October 2026) whose
requests and answers it replays.  Black-box through boto3 (client-side
validation off where DynamoDB's own answer to a shape boto3 refuses is the
point), so it runs against the embedded server and the cluster alike.
"""

from __future__ import annotations

import boto3
import pytest
from botocore.config import Config

from helpers import expect_error, unique_name
from tests.conftest import CLIENT_CONFIG

INVALID = "One or more parameter values were invalid: "
PK = [{"AttributeName": "pk", "AttributeType": "S"}]
PK_KEY = [{"AttributeName": "pk", "KeyType": "HASH"}]
KEYS_ONLY = {"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"}


@pytest.fixture
def table(ddb):
    """Factory: ``table(**create_table_args) -> name``: a PAY_PER_REQUEST table keyed on
    ``pk`` unless the arguments say otherwise (``None`` drops a member), ACTIVE, deleted
    (protection off) when the test ends."""
    created: list[str] = []

    def make(**extra) -> str:
        if extra.get("BillingMode") == "PROVISIONED" or extra.get("BillingMode", "") is None:
            extra.setdefault("ProvisionedThroughput", {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5})
        args = _create_args(**extra)
        ddb.create_table(**args)
        created.append(args["TableName"])
        ddb.get_waiter("table_exists").wait(TableName=args["TableName"], WaiterConfig={"Delay": 1, "MaxAttempts": 30})
        return args["TableName"]

    yield make
    for name in created:
        try:
            ddb.delete_table(TableName=name)
        except ddb.exceptions.ResourceNotFoundException:
            pass


@pytest.fixture(scope="module")
def raw(endpoint):
    """A client that sends what boto3's own parameter validation would refuse."""
    return boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test",
                        aws_secret_access_key="test",
                        config=CLIENT_CONFIG.merge(Config(parameter_validation=False)))


def _create_args(**extra) -> dict:
    args = {"TableName": unique_name("par"), "AttributeDefinitions": PK, "KeySchema": PK_KEY,
            "BillingMode": "PAY_PER_REQUEST"}
    args.update(extra)
    return {k: v for k, v in args.items() if v is not None}


def _gsi(name: str, attribute: str, **extra) -> dict:
    return {"IndexName": name, "KeySchema": [{"AttributeName": attribute, "KeyType": "HASH"}],
            "Projection": {"ProjectionType": "ALL"}, **extra}


# --- streams ---------------------------------------------------------------------------
def test_create_table_stream_specification_rules(raw):
    """DDB-TABLE-035: the view type goes with an enabled stream only; StreamEnabled is required."""
    create = raw.create_table
    expect_error(create, "ValidationException",
                 f"{INVALID}Table is being created with a stream enabled, UpdateViewType is required",
                 **_create_args(StreamSpecification={"StreamEnabled": True}))
    expect_error(create, "ValidationException",
                 f"{INVALID}Table is being created with a stream disabled, UpdateViewType should not be specified",
                 **_create_args(StreamSpecification={"StreamEnabled": False, "StreamViewType": "NEW_IMAGE"}))
    null_enabled = ("1 validation error detected: Value null at 'streamSpecification.streamEnabled' failed to "
                    "satisfy constraint: Member must not be null")
    expect_error(create, "ValidationException", null_enabled, **_create_args(StreamSpecification={}))
    expect_error(create, "ValidationException", null_enabled,
                 **_create_args(StreamSpecification={"StreamViewType": "NEW_IMAGE"}))
    expect_error(create, "ValidationException",
                 "1 validation error detected: Value 'new_image' at 'streamSpecification.streamViewType' failed to "
                 "satisfy constraint: Member must satisfy enum value set: [OLD_IMAGE, KEYS_ONLY, NEW_AND_OLD_IMAGES, "
                 "NEW_IMAGE]",
                 **_create_args(StreamSpecification={"StreamEnabled": True, "StreamViewType": "new_image"}))


def test_update_table_stream_rules(ddb, raw, table):
    """DDB-TABLE-050, DDB-TABLE-018, DDB-TABLE-047, DDB-TABLE-180: enabling needs a view type and no
    enabled stream (same view type or another), disabling needs a stream and no view type; the
    answer is UPDATING with the new StreamSpecification, and a disabled stream's ARN stays."""
    name = table()
    update = raw.update_table
    expect_error(update, "ValidationException", f"{INVALID}If stream is being enabled then UpdateViewType is required",
                 TableName=name, StreamSpecification={"StreamEnabled": True})
    expect_error(update, "ValidationException", f"Table has no stream to disable: TableName: {name}",
                 TableName=name, StreamSpecification={"StreamEnabled": False})
    enabled = ddb.update_table(TableName=name, StreamSpecification={"StreamEnabled": True,
                                                                    "StreamViewType": "NEW_IMAGE"})["TableDescription"]
    assert enabled["TableStatus"] == "UPDATING"
    assert enabled["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}
    arn = enabled["LatestStreamArn"]
    for view_type in ("NEW_IMAGE", "NEW_AND_OLD_IMAGES"):
        expect_error(update, "ValidationException", f"Table already has an enabled stream: TableName: {name}",
                     TableName=name, StreamSpecification={"StreamEnabled": True, "StreamViewType": view_type})
    expect_error(update, "ValidationException",
                 f"{INVALID}If stream is being disabled, then UpdateViewType must not be specified",
                 TableName=name, StreamSpecification={"StreamEnabled": False, "StreamViewType": "KEYS_ONLY"})
    disabled = ddb.update_table(TableName=name, StreamSpecification={"StreamEnabled": False})["TableDescription"]
    assert disabled["TableStatus"] == "UPDATING" and "StreamSpecification" not in disabled
    described = ddb.describe_table(TableName=name)["Table"]
    assert "StreamSpecification" not in described and described["LatestStreamArn"] == arn
    expect_error(update, "ValidationException", f"Table has no stream to disable: TableName: {name}",
                 TableName=name, StreamSpecification={"StreamEnabled": False})


# --- one change per UpdateTable -----------------------------------------------------------
def test_update_table_makes_one_change_per_request(ddb, raw, table):
    """DDB-TABLE-382, DDB-TABLE-433, DDB-TABLE-174: each pair of changes is refused with the message
    of the member that must come alone (SSE, then TableClass, then DeletionProtection, then
    OnDemandThroughput, then WarmThroughput), or a stream / index change beside IOPS; nothing applies."""
    name = table(BillingMode="PROVISIONED", AttributeDefinitions=PK + [{"AttributeName": "g", "AttributeType": "S"}],
                 ProvisionedThroughput={"ReadCapacityUnits": 10, "WriteCapacityUnits": 10},
                 GlobalSecondaryIndexes=[_gsi("by_g", "g", ProvisionedThroughput={"ReadCapacityUnits": 1,
                                                                                 "WriteCapacityUnits": 1})])
    before = ddb.describe_table(TableName=name)["Table"]
    new_pt = {"ReadCapacityUnits": 11, "WriteCapacityUnits": 11}
    create_h = {"Create": _gsi("by_h", "h", ProvisionedThroughput={"ReadCapacityUnits": 1, "WriteCapacityUnits": 1})}
    h_definition = [{"AttributeName": "h", "AttributeType": "S"}]
    cases = [
        ("Server-Side Encryption modification must be the only operation in the request",
         {"SSESpecification": {"Enabled": True}, "DeletionProtectionEnabled": True, "TableClass": "STANDARD"}),
        ("TableClass modification must be the only operation in the request",
         {"TableClass": "STANDARD_INFREQUENT_ACCESS", "DeletionProtectionEnabled": True}),
        ("DeletionProtection modification must be the only operation in the request",
         {"DeletionProtectionEnabled": True, "BillingMode": "PROVISIONED", "ProvisionedThroughput": new_pt}),
        ("DeletionProtection modification must be the only operation in the request",
         {"DeletionProtectionEnabled": True, "WarmThroughput": {"ReadUnitsPerSecond": 20}}),
        ("OnDemandThroughput can only be combined with BillingMode in an UpdateTable request",
         {"OnDemandThroughput": {"MaxReadRequestUnits": 100}, "StreamSpecification": KEYS_ONLY}),
        ("OnDemandThroughput can only be combined with BillingMode in an UpdateTable request",
         {"OnDemandThroughput": {"MaxReadRequestUnits": 100}, "WarmThroughput": {"ReadUnitsPerSecond": 20}}),
        ("Create global secondary index cannot be specified when updating WarmThroughput",
         {"WarmThroughput": {"ReadUnitsPerSecond": 20}, "GlobalSecondaryIndexUpdates": [create_h],
          "AttributeDefinitions": h_definition}),
        ("WarmThroughput must be the only operation in the request",
         {"WarmThroughput": {"ReadUnitsPerSecond": 20}, "StreamSpecification": KEYS_ONLY}),
        ("You cannot modify stream status while updating table IOPS",
         {"StreamSpecification": KEYS_ONLY, "ProvisionedThroughput": new_pt}),
        ("You cannot modify stream status while updating table IOPS",
         {"StreamSpecification": KEYS_ONLY, "BillingMode": "PROVISIONED", "ProvisionedThroughput": new_pt}),
        ("You cannot create or delete index while updating table IOPS",
         {"GlobalSecondaryIndexUpdates": [{"Delete": {"IndexName": "by_g"}}], "ProvisionedThroughput": new_pt}),
        ("You cannot create or delete index while changing stream status",
         {"GlobalSecondaryIndexUpdates": [create_h], "AttributeDefinitions": h_definition,
          "StreamSpecification": KEYS_ONLY}),
    ]
    for message, members in cases:
        expect_error(raw.update_table, "ValidationException", INVALID + message, TableName=name, **members)
    after = ddb.describe_table(TableName=name)["Table"]
    assert after["ProvisionedThroughput"] == before["ProvisionedThroughput"]
    assert not after["DeletionProtectionEnabled"] and "StreamSpecification" not in after
    assert [i["IndexName"] for i in after["GlobalSecondaryIndexes"]] == ["by_g"]


def test_billing_switch_to_on_demand_comes_with_a_stream(ddb, table):
    """DDB-TABLE-433: BillingMode=PAY_PER_REQUEST with a StreamSpecification is one of the accepted pairs."""
    name = table(BillingMode="PROVISIONED")
    answer = ddb.update_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                              StreamSpecification=KEYS_ONLY)["TableDescription"]
    assert answer["TableStatus"] == "UPDATING" and answer["StreamSpecification"] == KEYS_ONLY
    described = ddb.describe_table(TableName=name)["Table"]
    assert described["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert described["StreamSpecification"] == KEYS_ONLY


def test_empty_index_update_list(ddb, raw, table):
    """DDB-TABLE-359, DDB-TABLE-015: an empty GlobalSecondaryIndexUpdates counts as absent alone,
    and is refused beside a change, which then does not apply."""
    name = table()
    expect_error(raw.update_table, "ValidationException",
                 "At least one of ProvisionedThroughput, BillingMode, UpdateStreamEnabled, GlobalSecondaryIndexUpdates, "
                 "SSESpecification, ReplicaUpdates, MultiAccountReplicaReady, ReplicaTransitRoleArn, "
                 "MultiRegionConsistency, DeletionProtectionEnabled, OnDemandThroughput, WarmThroughput or TableClass "
                 "is required",
                 TableName=name, GlobalSecondaryIndexUpdates=[])
    expect_error(raw.update_table, "ValidationException", f"{INVALID}List of GlobalSecondaryIndexUpdates is empty",
                 TableName=name, GlobalSecondaryIndexUpdates=[], DeletionProtectionEnabled=True)
    assert not ddb.describe_table(TableName=name)["Table"]["DeletionProtectionEnabled"]


# --- encryption ----------------------------------------------------------------------------
def test_sse_specification_rules(ddb, raw, table):
    """DDB-TABLE-036, DDB-TABLE-031, DDB-TABLE-044 (CreateTable) and DDB-TABLE-047, DDB-TABLE-437
    (UpdateTable on a table encrypted the default way)."""
    for spec, message in [
        ({"Enabled": False, "SSEType": "KMS"}, "SSEType can not be specified if Enabled is false"),
        ({"Enabled": False, "KMSMasterKeyId": "alias/k"}, "KMSMasterKeyId can not be specified if Enabled is false"),
        ({"Enabled": False, "SSEType": "KMS", "KMSMasterKeyId": "alias/k"},
         "SSEType can not be specified if Enabled is false"),
        ({"Enabled": False, "SSEType": "AES256"}, "SSEType can not be specified if Enabled is false"),
        ({"Enabled": True, "SSEType": "AES256"}, "SSEType AES256 is not supported"),
        ({"Enabled": True, "KMSMasterKeyId": "alias/aws/dynamodb"}, "SSEType KMS is required if KMSMasterKeyId is specified"),
    ]:
        expect_error(raw.create_table, "ValidationException", INVALID + message, **_create_args(SSESpecification=spec))
    expect_error(raw.create_table, "ValidationException",
                 "1 validation error detected: Value 'kms' at 'sSESpecification.sSEType' failed to satisfy constraint: "
                 "Member must satisfy enum value set: [AES256, KMS]",
                 **_create_args(SSESpecification={"Enabled": True, "SSEType": "kms"}))
    name = table(SSESpecification={})
    for spec in ({}, {"Enabled": False}):
        expect_error(raw.update_table, "ValidationException", f"{INVALID}Table is already encrypted by default",
                     TableName=name, SSESpecification=spec)
    expect_error(raw.update_table, "ValidationException", f"{INVALID}SSEType can not be specified if Enabled is false",
                 TableName=name, SSESpecification={"Enabled": False, "SSEType": "KMS"})
    assert ddb.describe_table(TableName=name)["Table"]["TableStatus"] == "ACTIVE"


# --- what the answers show ------------------------------------------------------------------
def test_billing_mode_summary_and_definitions_order(ddb, table):
    """DDB-TABLE-025, DDB-TABLE-033, DDB-TABLE-125, DDB-TABLE-026, DDB-TABLE-029: no BillingModeSummary
    for a table only ever PROVISIONED (BillingMode given or not); CreateTable's answer names an
    on-demand mode without its date, DescribeTable adds it; AttributeDefinitions are sorted by name;
    TableClassSummary only when a class was given; no StreamSpecification until one is enabled."""
    definitions = [{"AttributeName": n, "AttributeType": "S"} for n in ("z", "a", "m", "sk", "pk")]
    keys = PK_KEY + [{"AttributeName": "sk", "KeyType": "RANGE"}]
    gsis = [_gsi("g-z", "z"), _gsi("g-a", "a"), _gsi("g-m", "m")]
    name = table(AttributeDefinitions=definitions, KeySchema=keys, GlobalSecondaryIndexes=gsis, TableClass="STANDARD")
    described = ddb.describe_table(TableName=name)["Table"]
    assert set(described["BillingModeSummary"]) == {"BillingMode", "LastUpdateToPayPerRequestDateTime"}
    assert [d["AttributeName"] for d in described["AttributeDefinitions"]] == ["a", "m", "pk", "sk", "z"]
    assert [i["IndexName"] for i in described["GlobalSecondaryIndexes"]] == ["g-z", "g-a", "g-m"]
    assert described["TableClassSummary"] == {"TableClass": "STANDARD"}
    assert "StreamSpecification" not in described and "LatestStreamArn" not in described
    created = ddb.create_table(**_create_args(AttributeDefinitions=definitions[::-1], KeySchema=keys,
                                              GlobalSecondaryIndexes=gsis))["TableDescription"]
    assert created["BillingModeSummary"] == {"BillingMode": "PAY_PER_REQUEST"}
    assert [d["AttributeName"] for d in created["AttributeDefinitions"]] == ["a", "m", "pk", "sk", "z"]
    ddb.get_waiter("table_exists").wait(TableName=created["TableName"], WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    ddb.delete_table(TableName=created["TableName"])
    for billing in (None, "PROVISIONED"):
        provisioned = ddb.describe_table(TableName=table(BillingMode=billing))["Table"]
        assert "BillingModeSummary" not in provisioned and "TableClassSummary" not in provisioned


def test_delete_table_answer(ddb, table):
    """DDB-TABLE-363: DeleteTable answers a reduced description: DELETING, without the key
    schema, the attribute definitions, the indexes and the creation date."""
    name = table(AttributeDefinitions=PK + [{"AttributeName": "g", "AttributeType": "S"}],
                 GlobalSecondaryIndexes=[_gsi("by_g", "g")])
    deleted = ddb.delete_table(TableName=name)["TableDescription"]
    assert deleted["TableStatus"] == "DELETING" and deleted["TableName"] == name
    for member in ("KeySchema", "AttributeDefinitions", "GlobalSecondaryIndexes", "CreationDateTime"):
        assert member not in deleted
    assert {"TableArn", "TableId", "ItemCount", "TableSizeBytes", "ProvisionedThroughput"} <= set(deleted)


# --- key schema, definitions and indexes ------------------------------------------------------
def test_create_table_definitions_rules(raw):
    """DDB-TABLE-042, DDB-TABLE-127: a name defined twice; with indexes, definitions no key uses
    are refused before any index rule, the keys used listed as DynamoDB's hash set lists them."""
    expect_error(raw.create_table, "ValidationException", "Attribute Name is duplicated: pk",
                 **_create_args(AttributeDefinitions=PK + [{"AttributeName": "pk", "AttributeType": "N"}]))
    definitions = [{"AttributeName": n, "AttributeType": "S"} for n in ("sk", "a", "b", "pk", "c")]
    expect_error(raw.create_table, "ValidationException",
                 f"{INVALID}Some AttributeDefinitions are not used. AttributeDefinitions: [sk, a, b, pk, c], "
                 "keys used: [a, sk, pk]",
                 **_create_args(AttributeDefinitions=definitions,
                                KeySchema=PK_KEY + [{"AttributeName": "sk", "KeyType": "RANGE"}],
                                # the projection is wrong too, but reported after the definitions
                                GlobalSecondaryIndexes=[{**_gsi("by_a", "a"), "Projection": {}}]))


def test_projection_with_duplicate_non_key_attributes(raw):
    """DDB-TABLE-126."""
    index = {**_gsi("by_a", "a"), "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["x", "y", "x"]}}
    expect_error(raw.create_table, "ValidationException", f"{INVALID}Duplicate element in NonKeyAttributes: x",
                 **_create_args(AttributeDefinitions=PK + [{"AttributeName": "a", "AttributeType": "S"}],
                                GlobalSecondaryIndexes=[index]))


def test_index_updates_name_a_global_index(ddb, raw, table):
    """DDB-TABLE-137, DDB-TABLE-161, DDB-TABLE-456: a local index cannot be updated or deleted
    through GlobalSecondaryIndexUpdates; an on-demand index's Update must change its on-demand or
    warm throughput; an empty WarmThroughput is refused before the index is looked up."""
    definitions = PK + [{"AttributeName": n, "AttributeType": "S"} for n in ("sk", "l", "g")]
    name = table(AttributeDefinitions=definitions, KeySchema=PK_KEY + [{"AttributeName": "sk", "KeyType": "RANGE"}],
                 LocalSecondaryIndexes=[{"IndexName": "by_l", "Projection": {"ProjectionType": "KEYS_ONLY"},
                                         "KeySchema": PK_KEY + [{"AttributeName": "l", "KeyType": "RANGE"}]}],
                 GlobalSecondaryIndexes=[_gsi("by_g", "g")])
    update = raw.update_table
    expect_error(update, "ValidationException", "Cannot delete an index that is not a GlobalSecondaryIndex: by_l",
                 TableName=name, GlobalSecondaryIndexUpdates=[{"Delete": {"IndexName": "by_l"}}])
    expect_error(update, "ValidationException", "Cannot update an index that is not a GlobalSecondaryIndex: by_l",
                 TableName=name, GlobalSecondaryIndexUpdates=[{"Update": {"IndexName": "by_l",
                                                                          "OnDemandThroughput": {"MaxReadRequestUnits": 5}}}])
    expect_error(update, "ResourceNotFoundException", f"Requested resource not found: Index ghost for table {name}",
                 TableName=name, GlobalSecondaryIndexUpdates=[{"Delete": {"IndexName": "ghost"}}])
    expect_error(update, "ValidationException",
                 f"{INVALID}The only Updates for index: by_g when TableThroughputMode is PAY_PER_REQUEST can be to "
                 "OnDemandThroughput, WarmThroughput",
                 TableName=name, GlobalSecondaryIndexUpdates=[{"Update": {"IndexName": "by_g"}}])
    expect_error(update, "ValidationException",
                 f"{INVALID}WarmThroughput must have at least one of ReadUnitsPerSecond or WriteUnitsPerSecond "
                 "specified for index: ghost",
                 TableName=unique_name("missing"),
                 GlobalSecondaryIndexUpdates=[{"Update": {"IndexName": "ghost", "WarmThroughput": {}}}])


# --- table class ------------------------------------------------------------------------------
def test_table_class_changes(ddb, raw, table):
    """DDB-TABLE-177, DDB-TABLE-365, DDB-TABLE-284, DDB-TABLE-180, DDB-TABLE-283: STANDARD on a table
    never given a class changes nothing (the answer still says UPDATING); a change answers with the
    old summary, then shows the class with its date; two changes a month, after which even a
    re-send of the class is refused."""
    name = table()
    same = ddb.update_table(TableName=name, TableClass="STANDARD")["TableDescription"]
    assert same["TableStatus"] == "UPDATING" and "TableClassSummary" not in same
    assert "TableClassSummary" not in ddb.describe_table(TableName=name)["Table"]
    first = ddb.update_table(TableName=name, TableClass="STANDARD_INFREQUENT_ACCESS")["TableDescription"]
    assert first["TableStatus"] == "UPDATING" and "TableClassSummary" not in first
    summary = ddb.describe_table(TableName=name)["Table"]["TableClassSummary"]
    assert summary["TableClass"] == "STANDARD_INFREQUENT_ACCESS" and "LastUpdateDateTime" in summary
    resent = ddb.update_table(TableName=name, TableClass="STANDARD_INFREQUENT_ACCESS")["TableDescription"]
    assert resent["TableClassSummary"] == summary  # a re-send changes nothing and is not counted
    second = ddb.update_table(TableName=name, TableClass="STANDARD")["TableDescription"]
    assert second["TableClassSummary"]["TableClass"] == "STANDARD_INFREQUENT_ACCESS"  # the old summary
    quota = "Subscriber limit exceeded: Updates to TableClass are limited to 2 times in 30 day(s)."
    for table_class in ("STANDARD_INFREQUENT_ACCESS", "STANDARD"):
        expect_error(raw.update_table, "LimitExceededException", quota, TableName=name, TableClass=table_class)
    assert ddb.describe_table(TableName=name)["Table"]["TableClassSummary"]["TableClass"] == "STANDARD"
