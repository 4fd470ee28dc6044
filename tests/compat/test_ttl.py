"""UpdateTimeToLive and DescribeTimeToLive, black-box: boto3, raw requests, the aws CLI.

A table's TTL may change once per interval (DynamoDB's hour, Meridian's
default too), so each test uses its own tables and checks the refusal right
after a change; the whole enable/disable cycle, with the interval shortened
through the router's context, is tests/unit/test_ttl_actions.py's.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from helpers import expect_error, unique_name
from rawhttp import call

VAL = "com.amazon.coral.validate#ValidationException"
TOO_SOON = "Time to live has been modified multiple times within a fixed interval"


def _spec(enabled: bool, attribute: str = "expires") -> dict:
    return {"Enabled": enabled, "AttributeName": attribute}


def test_new_table_is_disabled(ddb, table):
    name = table()
    assert ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"] == {"TimeToLiveStatus": "DISABLED"}


def test_enable_then_describe(ddb, table):
    name = table()
    answer = ddb.update_time_to_live(TableName=name, TimeToLiveSpecification=_spec(True))
    assert answer["TimeToLiveSpecification"] == _spec(True)
    description = ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    assert description == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires"}
    # The table itself is unchanged and still serves items.
    assert ddb.describe_table(TableName=name)["Table"]["TableStatus"] == "ACTIVE"
    ddb.put_item(TableName=name, Item={"id": {"S": "a"}, "expires": {"N": "4102444800"}})
    assert ddb.get_item(TableName=name, Key={"id": {"S": "a"}}, ConsistentRead=True)["Item"]["id"] == {"S": "a"}


def test_errors_while_enabled_come_before_the_interval(ddb, table):
    name = table()
    ddb.update_time_to_live(TableName=name, TimeToLiveSpecification=_spec(True))
    update = ddb.update_time_to_live
    expect_error(update, "ValidationException", "TimeToLive is already enabled",
                 TableName=name, TimeToLiveSpecification=_spec(True))
    different = "TimeToLive is active on a different AttributeName: current AttributeName is expires"
    expect_error(update, "ValidationException", different, TableName=name, TimeToLiveSpecification=_spec(True, "other"))
    expect_error(update, "ValidationException", different,
                 TableName=name, TimeToLiveSpecification=_spec(False, "other"))
    # A valid change right after the last one: refused, and nothing changed.
    expect_error(update, "ValidationException", TOO_SOON, TableName=name, TimeToLiveSpecification=_spec(False))
    description = ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    assert description == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires"}


def test_disable_when_disabled(ddb, table):
    name = table()
    expect_error(ddb.update_time_to_live, "ValidationException", "TimeToLive is already disabled",
                 TableName=name, TimeToLiveSpecification=_spec(False))
    assert ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"] == {"TimeToLiveStatus": "DISABLED"}


def test_missing_table(ddb):
    name = unique_name("nope")
    message = f"Requested resource not found: Table: {name} not found"
    expect_error(ddb.describe_time_to_live, "ResourceNotFoundException", message, TableName=name)
    expect_error(ddb.update_time_to_live, "ResourceNotFoundException", message,
                 TableName=name, TimeToLiveSpecification=_spec(True))


def test_tables_keep_their_own_setting(ddb, table):
    first, second = table(), table()
    ddb.update_time_to_live(TableName=first, TimeToLiveSpecification=_spec(True))
    assert ddb.describe_time_to_live(TableName=second)["TimeToLiveDescription"] == {"TimeToLiveStatus": "DISABLED"}
    ddb.update_time_to_live(TableName=second, TimeToLiveSpecification=_spec(True, "other"))
    assert ddb.describe_time_to_live(TableName=first)["TimeToLiveDescription"]["AttributeName"] == "expires"


def test_recreated_table_starts_disabled(ddb, table):
    name = table()
    ddb.update_time_to_live(TableName=name, TimeToLiveSpecification=_spec(True))
    ddb.delete_table(TableName=name)
    ddb.get_waiter("table_not_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    table(name=name)
    assert ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"] == {"TimeToLiveStatus": "DISABLED"}
    ddb.update_time_to_live(TableName=name, TimeToLiveSpecification=_spec(True, "other"))


# --- request validation (raw: boto3 checks some of this itself) ---------------------

def _raw_error(endpoint: str, action: str, payload: dict) -> dict:
    resp = call(endpoint, action, payload)
    assert resp.status == 400, resp.body
    return resp.json()


@pytest.mark.parametrize("action, payload, message", [
    ("DescribeTimeToLive", {}, "The parameter 'TableName' is required but was not present in the request"),
    ("DescribeTimeToLive", {"TableName": "ab"},
     "TableName must be at least 3 characters long and at most 255 characters long"),
    ("DescribeTimeToLive", {"TableName": "ab$"},
     "1 validation error detected: Value 'ab$' at 'tableName' failed to satisfy constraint: "
     "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+"),
    ("UpdateTimeToLive", {"TimeToLiveSpecification": _spec(True)},
     "The parameter 'TableName' is required but was not present in the request"),
    ("UpdateTimeToLive", {"TableName": "ab"},
     "TableName must be at least 3 characters long and at most 255 characters long"),
    ("UpdateTimeToLive", {"TableName": "abc"},
     "1 validation error detected: Value null at 'timeToLiveSpecification' failed to satisfy constraint: "
     "Member must not be null"),
    ("UpdateTimeToLive", {"TableName": "abc", "TimeToLiveSpecification": {}},
     "2 validation errors detected: "
     "Value null at 'timeToLiveSpecification.attributeName' failed to satisfy constraint: Member must not be null; "
     "Value null at 'timeToLiveSpecification.enabled' failed to satisfy constraint: Member must not be null"),
    ("UpdateTimeToLive", {"TableName": "abc", "TimeToLiveSpecification": {"Enabled": True, "AttributeName": ""}},
     "1 validation error detected: Value '' at 'timeToLiveSpecification.attributeName' failed to satisfy "
     "constraint: Member must have length greater than or equal to 1"),
    ("UpdateTimeToLive", {"TableName": "ab$", "TimeToLiveSpecification": {"Enabled": True, "AttributeName": "a" * 256}},
     "2 validation errors detected: Value 'ab$' at 'tableName' failed to satisfy constraint: "
     "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+; "
     f"Value '{'a' * 256}' at 'timeToLiveSpecification.attributeName' failed to satisfy constraint: "
     "Member must have length less than or equal to 255"),
])
def test_validation(endpoint, action, payload, message):
    assert _raw_error(endpoint, action, payload) == {"__type": VAL, "message": message}


def test_validation_before_the_table(endpoint):
    # An invalid request naming a missing table is a ValidationException, not ResourceNotFound.
    payload = {"TableName": unique_name("nope"), "TimeToLiveSpecification": {"Enabled": True, "AttributeName": ""}}
    assert _raw_error(endpoint, "UpdateTimeToLive", payload)["__type"] == VAL


def test_wrong_json_type(endpoint):
    payload = {"TableName": "abc", "TimeToLiveSpecification": {"Enabled": "yes", "AttributeName": "a"}}
    answer = _raw_error(endpoint, "UpdateTimeToLive", payload)
    assert answer["__type"] == "com.amazon.coral.service#SerializationException"


# --- the aws CLI ---------------------------------------------------------------------

def _aws(endpoint: str, *args: str) -> subprocess.CompletedProcess:
    beside = os.path.join(os.path.dirname(sys.executable), "aws")
    binary = beside if os.path.exists(beside) else shutil.which("aws")
    if binary is None:
        pytest.fail("the aws CLI is a test dependency (awscli) but is not installed")
    return subprocess.run([binary, "dynamodb", *args, "--endpoint-url", endpoint, "--output", "json"],
                          capture_output=True, text=True, timeout=60)  # the session's dummy AWS environment


def test_aws_cli(endpoint, table):
    name = table()
    described = _aws(endpoint, "describe-time-to-live", "--table-name", name)
    assert described.returncode == 0, described.stderr
    assert json.loads(described.stdout) == {"TimeToLiveDescription": {"TimeToLiveStatus": "DISABLED"}}
    updated = _aws(endpoint, "update-time-to-live", "--table-name", name,
                   "--time-to-live-specification", "Enabled=true,AttributeName=expires")
    assert updated.returncode == 0, updated.stderr
    assert json.loads(updated.stdout) == {"TimeToLiveSpecification": {"Enabled": True, "AttributeName": "expires"}}
    described = _aws(endpoint, "describe-time-to-live", "--table-name", name)
    assert json.loads(described.stdout)["TimeToLiveDescription"] == {"TimeToLiveStatus": "ENABLED",
                                                                      "AttributeName": "expires"}
    again = _aws(endpoint, "update-time-to-live", "--table-name", name,
                 "--time-to-live-specification", "Enabled=true,AttributeName=expires")
    assert again.returncode != 0
    assert "(ValidationException)" in again.stderr and "TimeToLive is already enabled" in again.stderr
