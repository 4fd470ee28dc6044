"""Throughput, billing, on-demand / warm throughput, quotas and tags as live DynamoDB answers them (issue 17).

Each test cites the entries of the 2026 parity catalog of DynamoDB behaviours
("DDB-TABLE-nnn", verified against live DynamoDB in October 2026) whose
requests and answers it replays.  Black-box through boto3, against the
embedded server and the cluster alike; ``table`` and ``raw`` come from
``test_table_parity.py``.
"""

from __future__ import annotations

import datetime
import re
import time

import pytest

from helpers import expect_error, unique_name
from test_table_parity import INVALID, PK, _create_args, _gsi, raw, table  # noqa: F401 (fixtures)

PROVISIONED_10 = {"BillingMode": "PROVISIONED", "ProvisionedThroughput": {"ReadCapacityUnits": 10, "WriteCapacityUnits": 10}}
GUIDE = "Refer to the Amazon DynamoDB Developer Guide for current limits and how to request higher limits."


def _pt(read: int, write: int) -> dict:
    return {"ReadCapacityUnits": read, "WriteCapacityUnits": write}


def test_billing_mode_and_throughput_rules(ddb, raw, table):
    """DDB-TABLE-057, DDB-TABLE-164, DDB-TABLE-056, DDB-TABLE-059: BillingMode=PROVISIONED needs the
    throughput whatever the table's mode; unchanged throughput "will not change", BillingMode or
    not; throughput beside a switch to on demand, or on an on-demand table, is refused."""
    name = table(**PROVISIONED_10)
    update = raw.update_table
    expect_error(update, "ValidationException",
                 f"{INVALID}ProvisionedThroughput must be specified when BillingMode is PROVISIONED",
                 TableName=name, BillingMode="PROVISIONED")
    unchanged = ("The provisioned throughput for the table will not change. The requested value equals the current "
                 "value. Current ReadCapacityUnits provisioned for the table: 10. Requested ReadCapacityUnits: 10. "
                 "Current WriteCapacityUnits provisioned for the table: 10. Requested WriteCapacityUnits: 10. " + GUIDE)
    expect_error(update, "ValidationException", unchanged, TableName=name, ProvisionedThroughput=_pt(10, 10))
    expect_error(update, "ValidationException", unchanged, TableName=name, BillingMode="PROVISIONED",
                 ProvisionedThroughput=_pt(10, 10))
    expect_error(update, "ValidationException",
                 f"{INVALID}ProvisionedThroughput cannot be specified when BillingMode is PAY_PER_REQUEST",
                 TableName=name, BillingMode="PAY_PER_REQUEST", ProvisionedThroughput=_pt(1, 1))
    on_demand = table()
    expect_error(update, "ValidationException",
                 f"{INVALID}Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is "
                 "PAY_PER_REQUEST", TableName=on_demand, ProvisionedThroughput=_pt(1, 1))
    expect_error(update, "ValidationException",
                 f"{INVALID}ProvisionedThroughput must be specified when BillingMode is PROVISIONED",
                 TableName=on_demand, BillingMode="PROVISIONED")


def test_throughput_and_billing_answers(ddb, table):
    """DDB-TABLE-060, DDB-TABLE-064, DDB-TABLE-055, DDB-TABLE-183, DDB-TABLE-156: a throughput change
    answers UPDATING with the old units and the new change's date; a billing switch's answer names
    the new mode without its date; a table once on demand keeps a BillingModeSummary with that
    date when PROVISIONED again; an on-demand re-send answers UPDATING and changes nothing."""
    name = table(**PROVISIONED_10)
    answer = ddb.update_table(TableName=name, ProvisionedThroughput=_pt(20, 10))["TableDescription"]
    assert answer["TableStatus"] == "UPDATING"
    shown = answer["ProvisionedThroughput"]
    assert (shown["ReadCapacityUnits"], shown["WriteCapacityUnits"]) == (10, 10) and "LastIncreaseDateTime" in shown
    described = ddb.describe_table(TableName=name)["Table"]["ProvisionedThroughput"]
    assert (described["ReadCapacityUnits"], described["LastIncreaseDateTime"]) == (20, shown["LastIncreaseDateTime"])
    switched = ddb.update_table(TableName=name, BillingMode="PAY_PER_REQUEST")["TableDescription"]
    assert switched["TableStatus"] == "UPDATING" and switched["BillingModeSummary"] == {"BillingMode": "PAY_PER_REQUEST"}
    assert (switched["ProvisionedThroughput"]["ReadCapacityUnits"], switched["ProvisionedThroughput"]["WriteCapacityUnits"]) == (0, 0)
    since = ddb.describe_table(TableName=name)["Table"]["BillingModeSummary"]["LastUpdateToPayPerRequestDateTime"]
    resent = ddb.update_table(TableName=name, BillingMode="PAY_PER_REQUEST")["TableDescription"]
    assert resent["TableStatus"] == "UPDATING"
    assert resent["BillingModeSummary"] == {"BillingMode": "PAY_PER_REQUEST", "LastUpdateToPayPerRequestDateTime": since}
    back = ddb.update_table(TableName=name, BillingMode="PROVISIONED", ProvisionedThroughput=_pt(3, 4))["TableDescription"]
    assert back["BillingModeSummary"] == {"BillingMode": "PROVISIONED"}
    assert (back["ProvisionedThroughput"]["ReadCapacityUnits"], back["ProvisionedThroughput"]["WriteCapacityUnits"]) == (3, 4)
    described = ddb.describe_table(TableName=name)["Table"]
    assert described["BillingModeSummary"] == {"BillingMode": "PROVISIONED", "LastUpdateToPayPerRequestDateTime": since}


def _next_utc_midnight_s() -> float:
    today = datetime.datetime.now(datetime.timezone.utc).date()
    return datetime.datetime.combine(today + datetime.timedelta(days=1), datetime.time(),
                                     datetime.timezone.utc).timestamp()


def test_provisioned_decreases_per_day(ddb, raw, table):
    """DDB-TABLE-184, DDB-TABLE-326, DDB-TABLE-157: four decreases a UTC day (each answer shows the
    old count), then LimitExceededException naming the last and the next allowed decrease; an
    increase still passes; an index has its own budget."""
    if _next_utc_midnight_s() - time.time() < 30:
        pytest.skip("the day's decrease count restarts at 00:00 UTC, a few seconds away")
    name = table(**PROVISIONED_10, AttributeDefinitions=PK + [{"AttributeName": "g", "AttributeType": "S"}],
                 GlobalSecondaryIndexes=[_gsi("by_g", "g", ProvisionedThroughput=_pt(10, 10))])
    for count, (read, write) in enumerate([(9, 9), (9, 8), (9, 7), (8, 8)]):  # RCU down with WCU up: one decrease
        answer = ddb.update_table(TableName=name, ProvisionedThroughput=_pt(read, write))["TableDescription"]
        assert answer["ProvisionedThroughput"]["NumberOfDecreasesToday"] == count
    assert ddb.describe_table(TableName=name)["Table"]["ProvisionedThroughput"]["NumberOfDecreasesToday"] == 4
    err = expect_error(raw.update_table, "LimitExceededException", TableName=name, ProvisionedThroughput=_pt(7, 7),
                       GlobalSecondaryIndexUpdates=[{"Update": {"IndexName": "by_g", "ProvisionedThroughput": _pt(5, 5)}}])
    pattern = (r"Subscriber limit exceeded: Provisioned throughput decreases are limited within a given UTC day\. "
               r"After the first 4 decreases, each subsequent decrease in the same UTC day can be performed at most "
               r"once every 3600 seconds\. Number of decreases today: 4\. Last decrease at \w+day, \w+ \d{1,2}, \d{4} "
               r"at \d{1,2}:\d\d:\d\d [AP]M Coordinated Universal Time\. Next decrease can be made at \w+day, \w+ "
               r"\d{1,2}, \d{4} at \d{1,2}:\d\d:\d\d [AP]M Coordinated Universal Time\.")
    assert re.fullmatch(pattern, err.response["Error"]["Message"]), err.response["Error"]["Message"]
    index = ddb.describe_table(TableName=name)["Table"]["GlobalSecondaryIndexes"][0]["ProvisionedThroughput"]
    assert (index["ReadCapacityUnits"], index["NumberOfDecreasesToday"]) == (10, 0)  # nothing applied
    ddb.update_table(TableName=name, ProvisionedThroughput=_pt(20, 20))  # an increase
    ddb.update_table(TableName=name, GlobalSecondaryIndexUpdates=[
        {"Update": {"IndexName": "by_g", "ProvisionedThroughput": _pt(5, 5)}}])  # the index's own budget
    described = ddb.describe_table(TableName=name)["Table"]
    assert described["GlobalSecondaryIndexes"][0]["ProvisionedThroughput"]["NumberOfDecreasesToday"] == 1
    assert described["ProvisionedThroughput"]["NumberOfDecreasesToday"] == 4


def test_capacity_maxima(ddb, raw, table):
    """DDB-TABLE-170, DDB-TABLE-393, DDB-TABLE-154: the per-table and per-index maxima of the
    account (40000 units) are LimitExceededException; a table's maximum does not count its indexes."""
    region = ddb.meta.region_name
    expect_error(raw.create_table, "LimitExceededException",
                 f"The requested ReadCapacityUnits, 40001, is above the per table maximum for the account in {region}. "
                 f"Per table maximum: 40000. {GUIDE}",
                 **_create_args(BillingMode="PROVISIONED", ProvisionedThroughput=_pt(40001, 1)))
    gsi_args = _create_args(BillingMode="PROVISIONED", ProvisionedThroughput=_pt(39900, 1),
                            AttributeDefinitions=PK + [{"AttributeName": "g", "AttributeType": "S"}],
                            GlobalSecondaryIndexes=[_gsi("by_g", "g", ProvisionedThroughput=_pt(40001, 1))])
    expect_error(raw.create_table, "LimitExceededException",
                 f"The requested ReadCapacityUnits for index by_g, 40001, is above the per index maximum for the "
                 f"account in {region}. Per table maximum: 40000. {GUIDE}", **gsi_args)
    name = table(**{**gsi_args, "TableName": unique_name("par"),
                    "GlobalSecondaryIndexes": [_gsi("by_g", "g", ProvisionedThroughput=_pt(200, 1))]})
    expect_error(raw.update_table, "LimitExceededException",
                 f"The requested ReadCapacityUnits, 40001, is above the per table maximum for the account in {region}. "
                 f"Per table maximum: 40000. {GUIDE}", TableName=name, ProvisionedThroughput=_pt(40001, 1))
    expect_error(raw.update_table, "LimitExceededException",
                 "Subscriber limit exceeded: Requested MaxReadRequestUnits for OnDemandThroughput for table exceeds "
                 f"TableMaxReadCapacityUnits of the account in region {region}",
                 TableName=table(), OnDemandThroughput={"MaxReadRequestUnits": 40001})


def test_on_demand_and_warm_throughput_rules(raw, table):
    """DDB-TABLE-038, DDB-TABLE-039, DDB-TABLE-128, DDB-TABLE-051, DDB-TABLE-059: OnDemandThroughput
    only on demand and at least 1 (-1, no cap, on UpdateTable only); WarmThroughput no lower than
    an on-demand table's initial throughput, or than a PROVISIONED table's units."""
    create = raw.create_table
    expect_error(create, "ValidationException",
                 f"{INVALID}MaxReadRequestUnits for OnDemandThroughput cannot be specified when table BillingMode is "
                 "PROVISIONED.", **_create_args(**PROVISIONED_10, OnDemandThroughput={"MaxReadRequestUnits": 100,
                                                                                     "MaxWriteRequestUnits": 100}))
    for units in (0, -1, -2):
        expect_error(create, "ValidationException",
                     f"{INVALID}Requested MaxReadRequestUnits for OnDemandThroughput for table is outside of valid range",
                     **_create_args(OnDemandThroughput={"MaxReadRequestUnits": units, "MaxWriteRequestUnits": units}))
    warm_floor = (f"{INVALID}Requested ReadUnitsPerSecond for WarmThroughput for table is lower than initial "
                  "throughput for OnDemand. See: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/"
                  "on-demand-capacity-mode.html#on-demand-capacity-mode-initial")
    for units in (1, 0):
        expect_error(create, "ValidationException", warm_floor,
                     **_create_args(WarmThroughput={"ReadUnitsPerSecond": units, "WriteUnitsPerSecond": units}))
    expect_error(create, "ValidationException",
                 f"{INVALID}Requested ReadUnitsPerSecond for WarmThroughput for table is lower than ReadCapacityUnits "
                 "of ProvisionedThroughput",
                 **_create_args(**PROVISIONED_10, WarmThroughput={"ReadUnitsPerSecond": 5, "WriteUnitsPerSecond": 5}))
    expect_error(create, "ValidationException",
                 f"{INVALID}Requested MaxReadRequestUnits for OnDemandThroughput for index : by_g is outside of valid "
                 "range", **_create_args(AttributeDefinitions=PK + [{"AttributeName": "g", "AttributeType": "S"}],
                                         GlobalSecondaryIndexes=[_gsi("by_g", "g", OnDemandThroughput={
                                             "MaxReadRequestUnits": 0})]))
    table(OnDemandThroughput={"MaxReadRequestUnits": 100}, WarmThroughput={"ReadUnitsPerSecond": 12001})  # accepted
    on_demand = table()
    expect_error(raw.update_table, "ValidationException",
                 f"{INVALID}Requested MaxWriteRequestUnits for OnDemandThroughput for table is outside of valid range",
                 TableName=on_demand, OnDemandThroughput={"MaxWriteRequestUnits": 0})
    raw.update_table(TableName=on_demand, OnDemandThroughput={"MaxReadRequestUnits": -1})  # -1: no cap
    expect_error(raw.update_table, "ValidationException",
                 f"{INVALID}MaxReadRequestUnits for OnDemandThroughput cannot be specified when the table BillingMode "
                 "is PROVISIONED",
                 TableName=table(**PROVISIONED_10), OnDemandThroughput={"MaxReadRequestUnits": 100})


def test_deletion_protection_cooldown(ddb, raw, table):
    """DDB-TABLE-017, DDB-TABLE-003, DDB-TABLE-054, DDB-TABLE-047: the change is immediate (ACTIVE),
    and the setting may not be sent again for 15 seconds (ThrottlingException naming when)."""
    name = table()
    answer = ddb.update_table(TableName=name, DeletionProtectionEnabled=True)["TableDescription"]
    assert answer["TableStatus"] == "ACTIVE" and answer["DeletionProtectionEnabled"]
    for value in (True, False):
        err = expect_error(raw.update_table, "ThrottlingException", TableName=name, DeletionProtectionEnabled=value)
        message = err.response["Error"]["Message"]
        match = re.fullmatch(f"Deletion protection setting for table {name} modified within the previous 15000 "
                             r"milliseconds\. Please try again after (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z", message)
        assert match, message
    until = datetime.datetime.fromisoformat(match.group(1)).replace(tzinfo=datetime.timezone.utc).timestamp()
    assert 0 < until - time.time() <= 15
    time.sleep(until - time.time() + 0.2)
    ddb.update_table(TableName=name, DeletionProtectionEnabled=False)
    assert not ddb.describe_table(TableName=name)["Table"]["DeletionProtectionEnabled"]


# --- tags ---------------------------------------------------------------------------------------
def test_tag_validation(ddb, raw, table):
    """DDB-TABLE-105, DDB-TABLE-106, DDB-TABLE-107, DDB-TABLE-108, DDB-TABLE-109, DDB-TABLE-110,
    DDB-TABLE-372: every tag checked, all or nothing, always ValidationException; 50 tags at most
    after the merge, and their bytes together."""
    expect_error(raw.create_table, "ValidationException", "Tag Key cannot be prefixed with aws:, Key: aws:foo",
                 **_create_args(Tags=[{"Key": "aws:foo", "Value": "v"}]))
    expect_error(raw.create_table, "ValidationException",
                 "Number of Tags exceed the current limit for the provided ResourceArn",
                 **_create_args(Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(51)]))
    name = table(Tags=[])
    arn = ddb.describe_table(TableName=name)["Table"]["TableArn"]
    tag = raw.tag_resource
    for tags, message in [
        ([{"Key": "ok", "Value": "v"}, {"Key": "k" * 129, "Value": "v"}], f"The Tag Key provided is invalid, Key: {'k' * 129}"),
        ([{"Key": "bad#char", "Value": "v"}], "The Tag Key provided is invalid, Key: bad#char"),
        ([{"Key": "k", "Value": "a,b"}], "The Tag Value provided is invalid, Value: a,b"),
        ([{"Key": "k", "Value": "v" * 257}], f"The Tag Value provided is invalid, Value: {'v' * 257}"),
        ([{"Key": "", "Value": "v"}], "The Tag Key provided is invalid, Key: "),
        ([{"Key": "ok", "Value": "v"}, {"Key": "AWS:zzz", "Value": "v"}], "Tag Key cannot be prefixed with aws:, Key: AWS:zzz"),
        ([{"Key": "dup", "Value": "1"}, {"Key": "dup", "Value": "2"}],
         "Duplicate Tag Keys provided as input: Duplicate Tag Key found dup"),
    ]:
        expect_error(tag, "ValidationException", message, ResourceArn=arn, Tags=tags)
    assert ddb.list_tags_of_resource(ResourceArn=arn)["Tags"] == []  # nothing applied
    ddb.tag_resource(ResourceArn=arn, Tags=[{"Key": "ключ café", "Value": "a+b-c=d.e_f:g/h@i"}, {"Key": "Env", "Value": ""}])
    expect_error(raw.untag_resource, "ValidationException", "Tag Key cannot be prefixed with aws:, Key: aws:foo",
                 ResourceArn=arn, TagKeys=["aws:foo"])
    ddb.tag_resource(ResourceArn=arn, Tags=[{"Key": f"k{i:02d}", "Value": "v"} for i in range(48)])
    expect_error(tag, "ValidationException", "Number of Tags exceed the current limit for the provided ResourceArn",
                 ResourceArn=arn, Tags=[{"Key": "k00", "Value": "new"}, {"Key": "k50", "Value": "v"}])
    ddb.tag_resource(ResourceArn=arn, Tags=[{"Key": "k00", "Value": "new"}])  # an upsert at 50 tags
    sized = table()
    sized_arn = ddb.describe_table(TableName=sized)["Table"]["TableArn"]
    big = [{"Key": f"{i:02d}" + "k" * 126, "Value": "v" * 256} for i in range(30)]
    err = expect_error(tag, "ValidationException", ResourceArn=sized_arn, Tags=big)
    assert re.fullmatch(r"Tag set size \d+ bytes is above max size limit of 10240 bytes", err.response["Error"]["Message"])


def test_tag_resource_arns(ddb, raw, table):
    """DDB-TABLE-071, DDB-TABLE-011, DDB-TABLE-070, DDB-TABLE-136: what the tag actions answer for
    ARNs that name no table of this region and account."""
    name = table()
    arn = ddb.describe_table(TableName=name)["Table"]["TableArn"]
    region, account = arn.split(":")[3], arn.split(":")[4]
    tags = [{"Key": "k", "Value": "v"}]
    expect_error(raw.list_tags_of_resource, "ValidationException",
                 f"{INVALID}ARNs must start with 'arn:': {name}", ResourceArn=name)
    expect_error(raw.tag_resource, "ValidationException", f"{INVALID}ARNs must start with 'arn:': not-an-arn",
                 ResourceArn="not-an-arn", Tags=tags)
    expect_error(raw.list_tags_of_resource, "AccessDeniedException", "Access is denied",
                 ResourceArn=arn.replace(f":{account}:", ":123456789012:"))
    other_region = arn.replace(f":{region}:", ":eu-west-3:")
    expect_error(raw.list_tags_of_resource, "ValidationException",
                 f"Invalid TableArn: Invalid ResourceArn provided as input {other_region}", ResourceArn=other_region)
    expect_error(raw.tag_resource, "ValidationException",
                 f"{INVALID}Invalid resource arn provided, only table or stream is accepted. Provided resource arn: "
                 f"{arn}/index/by_x", ResourceArn=f"{arn}/index/by_x", Tags=tags)
    missing = arn.rsplit("/", 1)[0] + "/" + unique_name("gone")
    for call, extra in ((raw.list_tags_of_resource, {}), (raw.tag_resource, {"Tags": tags}),
                        (raw.untag_resource, {"TagKeys": ["k"]})):
        expect_error(call, "ResourceNotFoundException", f"Requested resource not found: ResourceArn: {missing} not found",
                     ResourceArn=missing, **extra)
