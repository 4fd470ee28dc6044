"""Capacity settings as live DynamoDB answers them (issue 15): OnDemandThroughput, WarmThroughput,
billing-mode switches and the account's provisioned total.

Each test cites the entries of the 2026 parity catalog of DynamoDB behaviours ("DDB-TABLE-nnn")
whose requests and answers it replays.  Black-box through boto3, against the embedded server and
the cluster alike; ``table`` and ``raw`` come from ``test_table_parity.py``.  Meridian warms a
table at once: where DynamoDB keeps ``WarmThroughput.Status`` UPDATING for minutes, only the
UpdateTable answer says UPDATING and DescribeTable already shows the new value ACTIVE.
"""

from __future__ import annotations

import re

import pytest

from helpers import expect_error
from test_table_parity import INVALID, PK, _create_args, _gsi, raw, table  # noqa: F401 (fixtures)

G = [{"AttributeName": "g", "AttributeType": "S"}]


def _pt(read: int, write: int) -> dict:
    return {"ReadCapacityUnits": read, "WriteCapacityUnits": write}


def _warm(read: int, write: int, status: str = "ACTIVE") -> dict:
    return {"ReadUnitsPerSecond": read, "WriteUnitsPerSecond": write, "Status": status}


def _provisioned(read: int, write: int, **extra) -> dict:
    return {"BillingMode": "PROVISIONED", "ProvisionedThroughput": _pt(read, write), **extra}


def _describe(ddb, name: str) -> dict:
    return ddb.describe_table(TableName=name)["Table"]


def test_on_demand_defaults(ddb):
    """DDB-TABLE-028, DDB-TABLE-032, DDB-TABLE-033, DDB-TABLE-133: an on-demand table and its GSI
    are warm at 12000 reads and 4000 writes a second, ACTIVE, with no OnDemandThroughput unless
    one is set; CreateTable's answer has no WarmThroughput unless the request set one."""
    args = _create_args(AttributeDefinitions=PK + G, GlobalSecondaryIndexes=[_gsi("by_g", "g")])
    created = ddb.create_table(**args)["TableDescription"]
    name = args["TableName"]
    try:
        assert "WarmThroughput" not in created and "WarmThroughput" not in created["GlobalSecondaryIndexes"][0]
        ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
        described = _describe(ddb, name)
        assert described["WarmThroughput"] == _warm(12000, 4000)
        assert "OnDemandThroughput" not in described
        index = described["GlobalSecondaryIndexes"][0]
        assert index["WarmThroughput"] == _warm(12000, 4000) and "OnDemandThroughput" not in index
        assert index["ProvisionedThroughput"] == {"NumberOfDecreasesToday": 0, "ReadCapacityUnits": 0,
                                                  "WriteCapacityUnits": 0}
    finally:
        ddb.delete_table(TableName=name)


def test_warm_throughput_asked_at_create(ddb):
    """DDB-TABLE-039, DDB-TABLE-032, DDB-TABLE-363: a WarmThroughput given at CreateTable (one member
    is enough) shows UPDATING in the answer, then ACTIVE; DeleteTable's answer has none."""
    args = _create_args(WarmThroughput={"ReadUnitsPerSecond": 12001},
                        AttributeDefinitions=PK + G,
                        GlobalSecondaryIndexes=[_gsi("by_g", "g", WarmThroughput={"WriteUnitsPerSecond": 4500})])
    created = ddb.create_table(**args)["TableDescription"]
    name = args["TableName"]
    assert created["WarmThroughput"] == _warm(12001, 4000, "UPDATING")
    assert created["GlobalSecondaryIndexes"][0]["WarmThroughput"] == _warm(12000, 4500, "UPDATING")
    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    described = _describe(ddb, name)
    assert described["WarmThroughput"] == _warm(12001, 4000)
    assert described["GlobalSecondaryIndexes"][0]["WarmThroughput"] == _warm(12000, 4500)
    deleted = ddb.delete_table(TableName=name)["TableDescription"]
    assert "WarmThroughput" not in deleted


def test_provisioned_warm_throughput_tracks_the_highest_units(ddb, raw, table):
    """DDB-TABLE-058, DDB-TABLE-061, DDB-TABLE-059, DDB-TABLE-179, DDB-TABLE-064: a provisioned
    table is warm at its units, then at the highest it had; WarmThroughput is never lowered; a
    raise answers ACTIVE with the old value UPDATING; on demand it is 12000/4000 and stays so
    back on PROVISIONED."""
    name = table(**_provisioned(1, 1))
    assert _describe(ddb, name)["WarmThroughput"] == _warm(1, 1)
    ddb.update_table(TableName=name, ProvisionedThroughput=_pt(3, 3))
    ddb.update_table(TableName=name, ProvisionedThroughput=_pt(2, 1))
    described = _describe(ddb, name)
    assert (described["ProvisionedThroughput"]["ReadCapacityUnits"], described["WarmThroughput"]) == (2, _warm(3, 3))
    expect_error(raw.update_table, "ValidationException",
                 f"{INVALID}Requested ReadUnitsPerSecond for WarmThroughput for table is lower than current "
                 "WarmThroughput, decreasing WarmThroughput is not supported",
                 TableName=name, WarmThroughput={"ReadUnitsPerSecond": 2, "WriteUnitsPerSecond": 50})
    answer = ddb.update_table(TableName=name, WarmThroughput={"ReadUnitsPerSecond": 50,
                                                              "WriteUnitsPerSecond": 50})["TableDescription"]
    assert answer["TableStatus"] == "ACTIVE" and answer["WarmThroughput"] == _warm(3, 3, "UPDATING")
    assert _describe(ddb, name)["WarmThroughput"] == _warm(50, 50)
    ddb.update_table(TableName=name, WarmThroughput={"WriteUnitsPerSecond": 50})  # the same value: accepted
    switched = ddb.update_table(TableName=name, BillingMode="PAY_PER_REQUEST")["TableDescription"]
    assert switched["WarmThroughput"] == _warm(50, 50)  # the old one while the switch runs
    assert _describe(ddb, name)["WarmThroughput"] == _warm(12000, 4000)
    ddb.update_table(TableName=name, BillingMode="PROVISIONED", ProvisionedThroughput=_pt(1, 1))
    assert _describe(ddb, name)["WarmThroughput"] == _warm(12000, 4000)


def test_index_warm_throughput(ddb, raw, table):
    """DDB-TABLE-155, DDB-TABLE-154: a GSI's WarmThroughput is never lowered (a re-send of the
    current value is accepted); a raise keeps the index ACTIVE with the old value UPDATING in the
    answer; above the per-table maximum it is a LimitExceededException."""
    name = table(AttributeDefinitions=PK + G, GlobalSecondaryIndexes=[_gsi("by_g", "g")])
    expect_error(raw.update_table, "ValidationException",
                 f"{INVALID}Requested ReadUnitsPerSecond for WarmThroughput for index by_g is lower than current "
                 "WarmThroughput, decreasing WarmThroughput is not supported",
                 TableName=name, GlobalSecondaryIndexUpdates=[{"Update": {"IndexName": "by_g", "WarmThroughput": {
                     "ReadUnitsPerSecond": 100, "WriteUnitsPerSecond": 100}}}])
    region = ddb.meta.region_name
    expect_error(raw.update_table, "LimitExceededException",
                 "Subscriber limit exceeded: Requested ReadUnitsPerSecond for WarmThroughput for index by_g exceeds "
                 f"TableMaxReadCapacityUnits of the account in region {region}",
                 TableName=name, GlobalSecondaryIndexUpdates=[{"Update": {"IndexName": "by_g", "WarmThroughput": {
                     "ReadUnitsPerSecond": 40001}}}])
    ddb.update_table(TableName=name, GlobalSecondaryIndexUpdates=[{"Update": {"IndexName": "by_g", "WarmThroughput": {
        "ReadUnitsPerSecond": 12000, "WriteUnitsPerSecond": 4000}}}])  # the current value
    answer = ddb.update_table(TableName=name, GlobalSecondaryIndexUpdates=[{"Update": {
        "IndexName": "by_g", "WarmThroughput": {"ReadUnitsPerSecond": 13000}}}])["TableDescription"]
    index = answer["GlobalSecondaryIndexes"][0]
    assert answer["TableStatus"] == "ACTIVE" and index["IndexStatus"] == "ACTIVE"
    assert index["WarmThroughput"] == _warm(12000, 4000, "UPDATING")
    described = _describe(ddb, name)
    assert described["GlobalSecondaryIndexes"][0]["WarmThroughput"] == _warm(13000, 4000)
    assert described["WarmThroughput"] == _warm(12000, 4000)  # the table's own is unchanged
    expect_error(raw.update_table, "LimitExceededException",
                 "Subscriber limit exceeded: Requested WriteUnitsPerSecond for WarmThroughput for table exceeds "
                 f"TableMaxWriteCapacityUnits of the account in region {region}",
                 TableName=name, WarmThroughput={"WriteUnitsPerSecond": 40001})


def test_on_demand_throughput_members(ddb, table):
    """DDB-TABLE-045, DDB-TABLE-051, DDB-TABLE-178, DDB-TABLE-182, DDB-TABLE-410: OnDemandThroughput is
    kept member by member; a change answers ACTIVE at once; -1 removes a maximum: the answer
    shows -1, DescribeTable leaves the member out, and the whole block once both are gone."""
    name = table(OnDemandThroughput={"MaxReadRequestUnits": 100})
    assert _describe(ddb, name)["OnDemandThroughput"] == {"MaxReadRequestUnits": 100}
    answer = ddb.update_table(TableName=name, OnDemandThroughput={"MaxWriteRequestUnits": 500})["TableDescription"]
    assert answer["TableStatus"] == "ACTIVE"
    assert answer["OnDemandThroughput"] == {"MaxReadRequestUnits": 100, "MaxWriteRequestUnits": 500}
    assert _describe(ddb, name)["OnDemandThroughput"] == {"MaxReadRequestUnits": 100, "MaxWriteRequestUnits": 500}
    answer = ddb.update_table(TableName=name, OnDemandThroughput={"MaxReadRequestUnits": -1})["TableDescription"]
    assert answer["OnDemandThroughput"] == {"MaxReadRequestUnits": -1, "MaxWriteRequestUnits": 500}
    assert _describe(ddb, name)["OnDemandThroughput"] == {"MaxWriteRequestUnits": 500}
    answer = ddb.update_table(TableName=name, OnDemandThroughput={"MaxWriteRequestUnits": -1})["TableDescription"]
    assert answer["OnDemandThroughput"] == {"MaxWriteRequestUnits": -1}
    assert "OnDemandThroughput" not in _describe(ddb, name)
    answer = ddb.update_table(TableName=name, OnDemandThroughput={"MaxReadRequestUnits": -1,
                                                                  "MaxWriteRequestUnits": -1})["TableDescription"]
    assert answer["OnDemandThroughput"] == {"MaxReadRequestUnits": -1, "MaxWriteRequestUnits": -1}
    assert "OnDemandThroughput" not in _describe(ddb, name)


def test_index_on_demand_throughput(ddb, raw, table):
    """DDB-TABLE-135, DDB-TABLE-153, DDB-TABLE-128, DDB-TABLE-055: a GSI's own OnDemandThroughput
    (independent of the table's) changes at once with the index UPDATING and the table ACTIVE;
    0 is out of range; a switch to PROVISIONED drops every maximum but keeps the warm throughput;
    a provisioned table's GSI takes none; a switch to on demand may set the table's."""
    name = table(AttributeDefinitions=PK + G, OnDemandThroughput={"MaxReadRequestUnits": 1000},
                 GlobalSecondaryIndexes=[_gsi("by_g", "g", OnDemandThroughput={"MaxReadRequestUnits": 50,
                                                                                "MaxWriteRequestUnits": 50},
                                           WarmThroughput={"ReadUnitsPerSecond": 12002})])
    assert _describe(ddb, name)["GlobalSecondaryIndexes"][0]["OnDemandThroughput"] == {
        "MaxReadRequestUnits": 50, "MaxWriteRequestUnits": 50}
    answer = ddb.update_table(TableName=name, GlobalSecondaryIndexUpdates=[{"Update": {
        "IndexName": "by_g", "OnDemandThroughput": {"MaxReadRequestUnits": 5000}}}])["TableDescription"]
    index = answer["GlobalSecondaryIndexes"][0]
    assert answer["TableStatus"] == "ACTIVE" and index["IndexStatus"] == "UPDATING"
    assert index["OnDemandThroughput"] == {"MaxReadRequestUnits": 5000, "MaxWriteRequestUnits": 50}
    described = _describe(ddb, name)
    assert described["GlobalSecondaryIndexes"][0]["IndexStatus"] == "ACTIVE"
    assert described["GlobalSecondaryIndexes"][0]["OnDemandThroughput"] == {"MaxReadRequestUnits": 5000,
                                                                            "MaxWriteRequestUnits": 50}
    assert described["OnDemandThroughput"] == {"MaxReadRequestUnits": 1000}
    expect_error(raw.update_table, "ValidationException",
                 f"{INVALID}Requested MaxWriteRequestUnits for OnDemandThroughput for index : by_g is outside of valid "
                 "range", TableName=name, GlobalSecondaryIndexUpdates=[{"Update": {
                     "IndexName": "by_g", "OnDemandThroughput": {"MaxWriteRequestUnits": 0}}}])
    ddb.update_table(TableName=name, BillingMode="PROVISIONED", ProvisionedThroughput=_pt(5, 5),
                     GlobalSecondaryIndexUpdates=[{"Update": {"IndexName": "by_g",
                                                              "ProvisionedThroughput": _pt(5, 5)}}])
    described = _describe(ddb, name)
    index = described["GlobalSecondaryIndexes"][0]
    assert "OnDemandThroughput" not in described and "OnDemandThroughput" not in index
    assert index["WarmThroughput"] == _warm(12002, 4000)
    expect_error(raw.update_table, "ValidationException",
                 f"{INVALID}MaxReadRequestUnits for OnDemandThroughput for index : by_g cannot be specified when the "
                 "table BillingMode is PROVISIONED",
                 TableName=name, GlobalSecondaryIndexUpdates=[{"Update": {
                     "IndexName": "by_g", "OnDemandThroughput": {"MaxReadRequestUnits": 10}}}])
    expect_error(raw.create_table, "ValidationException",
                 f"{INVALID}MaxReadRequestUnits for OnDemandThroughput for index: by_g cannot be specified when table "
                 "BillingMode is PROVISIONED.",
                 **_create_args(**_provisioned(5, 5), AttributeDefinitions=PK + G, GlobalSecondaryIndexes=[_gsi(
                     "by_g", "g", ProvisionedThroughput=_pt(5, 5), OnDemandThroughput={"MaxReadRequestUnits": 10})]))
    answer = ddb.update_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                              OnDemandThroughput={"MaxReadRequestUnits": 100, "MaxWriteRequestUnits": 100})
    assert answer["TableDescription"]["OnDemandThroughput"] == {"MaxReadRequestUnits": 100, "MaxWriteRequestUnits": 100}
    assert _describe(ddb, name)["OnDemandThroughput"] == {"MaxReadRequestUnits": 100, "MaxWriteRequestUnits": 100}


def test_switches_to_on_demand_per_day(ddb, raw, table):
    """Switching from PROVISIONED to PAY_PER_REQUEST: four times in a rolling 24 hours (DynamoDB's
    rule since 2025; DDB-TABLE-183 saw three switches in minutes accepted), back to PROVISIONED at
    any time; the fifth is a LimitExceededException and changes nothing.  A switch keeps the
    throughput history (DDB-TABLE-055)."""
    name = table(**_provisioned(5, 5))
    ddb.update_table(TableName=name, ProvisionedThroughput=_pt(4, 6))  # one increase, one decrease
    history = _describe(ddb, name)["ProvisionedThroughput"]
    for _ in range(4):
        ddb.update_table(TableName=name, BillingMode="PAY_PER_REQUEST")
        ddb.update_table(TableName=name, BillingMode="PROVISIONED", ProvisionedThroughput=_pt(5, 5))
    err = expect_error(raw.update_table, "LimitExceededException", TableName=name, BillingMode="PAY_PER_REQUEST")
    date = r"\w{3} \w{3} \d\d \d\d:\d\d:\d\d UTC \d{4}"
    assert re.fullmatch(rf"Subscriber limit exceeded: Update to PayPerRequest mode are limited to 4 times in 1 "
                        rf"day\(s\)\. Last update at {date}\. Next update can be made at {date}",
                        err.response["Error"]["Message"]), err.response["Error"]["Message"]
    described = _describe(ddb, name)
    assert described["BillingModeSummary"]["BillingMode"] == "PROVISIONED"
    throughput = described["ProvisionedThroughput"]
    assert throughput["LastDecreaseDateTime"] == history["LastDecreaseDateTime"]
    assert throughput["NumberOfDecreasesToday"] == history["NumberOfDecreasesToday"] == 1
    ddb.update_table(TableName=name, ProvisionedThroughput=_pt(6, 6))  # throughput changes still pass


def test_account_provisioned_total(ddb, raw, table):
    """DDB-TABLE-443, DDB-TABLE-393: the account's total of provisioned units over every table and
    GSI of the region is DescribeLimits' AccountMax*: a CreateTable, or a switch to PROVISIONED,
    past it is a LimitExceededException naming what is reserved and what was asked."""
    limits = ddb.describe_limits()
    account_max, table_max = limits["AccountMaxReadCapacityUnits"], limits["TableMaxReadCapacityUnits"]
    assert account_max < 3 * table_max, "the test fills the account with tables at the per-table maximum"
    first = table(**_provisioned(table_max, 1))
    pattern = (rf"This request would have caused the ReadCapacityUnits limit to be exceeded for the account in "
               rf"{ddb.meta.region_name}\. Current ReadCapacityUnits reserved by the account: (\d+)\. Limit: "
               rf"{account_max}\. Requested: (\d+)\. Refer to the Amazon DynamoDB Developer Guide for current limits "
               r"and how to request higher limits\.")
    big = _create_args(**_provisioned(table_max, 1), AttributeDefinitions=PK + G,
                       GlobalSecondaryIndexes=[_gsi("by_g", "g", ProvisionedThroughput=_pt(table_max, 1))])
    err = expect_error(raw.create_table, "LimitExceededException", **big)
    reserved, requested = map(int, re.fullmatch(pattern, err.response["Error"]["Message"]).groups())
    assert reserved >= table_max and requested == 2 * table_max
    expect_error(ddb.describe_table, "ResourceNotFoundException", TableName=big["TableName"])
    switching = table(AttributeDefinitions=PK + G, GlobalSecondaryIndexes=[_gsi("by_g", "g")])
    err = expect_error(raw.update_table, "LimitExceededException", TableName=switching, BillingMode="PROVISIONED",
                       ProvisionedThroughput=_pt(table_max, 1), GlobalSecondaryIndexUpdates=[{"Update": {
                           "IndexName": "by_g", "ProvisionedThroughput": _pt(account_max - table_max, 1)}}])
    reserved, requested = map(int, re.fullmatch(pattern, err.response["Error"]["Message"]).groups())
    assert reserved >= table_max and requested == account_max
    assert "BillingModeSummary" in _describe(ddb, switching)
    assert _describe(ddb, switching)["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    ddb.delete_table(TableName=first)
    ddb.get_waiter("table_not_exists").wait(TableName=first, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    ddb.update_table(TableName=switching, BillingMode="PROVISIONED", ProvisionedThroughput=_pt(table_max, 1),
                     GlobalSecondaryIndexUpdates=[{"Update": {"IndexName": "by_g",
                                                              "ProvisionedThroughput": _pt(table_max // 2, 1)}}])
    ddb.update_table(TableName=switching, ProvisionedThroughput=_pt(table_max - 1, 1))  # a decrease always passes


@pytest.mark.parametrize("billing", ["PAY_PER_REQUEST", "PROVISIONED"])
def test_create_table_warm_and_on_demand_caps(ddb, raw, billing):
    """DDB-TABLE-154, DDB-TABLE-171: WarmThroughput above the per-table maximum of the account is a
    LimitExceededException at CreateTable too (the table's wording is a guess after the index's)."""
    extra = _provisioned(5, 5) if billing == "PROVISIONED" else {}
    args = _create_args(**extra, WarmThroughput={"ReadUnitsPerSecond": 40001})
    expect_error(raw.create_table, "LimitExceededException",
                 "Subscriber limit exceeded: Requested ReadUnitsPerSecond for WarmThroughput for table exceeds "
                 f"TableMaxReadCapacityUnits of the account in region {ddb.meta.region_name}", **args)
    expect_error(ddb.describe_table, "ResourceNotFoundException", TableName=args["TableName"])
