"""Resource-based policies: PutResourcePolicy, GetResourcePolicy, DeleteResourcePolicy.

Messages are live DynamoDB's, as AWS-verified tests record them (moto's
``test_dynamodb_resource_policy.py``) and the 2026 parity catalogue lists
them; Meridian stores and returns policies without enforcing them.
"""

from __future__ import annotations

import json

import pytest

from helpers import expect_error, unique_name

NOT_FOUND = "Resource-based policy not found for the provided ResourceArn: "


def _doc(action: str = "dynamodb:*", **extra) -> str:
    statement = {"Effect": "Allow", "Principal": {"AWS": "000000000000"}, "Action": [action], "Resource": "*", **extra}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


@pytest.fixture
def arn(ddb, table) -> str:
    return ddb.describe_table(TableName=table())["Table"]["TableArn"]


def test_put_get_delete_round_trip(ddb, arn):
    expect_error(ddb.get_resource_policy, "PolicyNotFoundException", NOT_FOUND + arn, ResourceArn=arn)
    revision = ddb.put_resource_policy(ResourceArn=arn, Policy=_doc())["RevisionId"]
    got = ddb.get_resource_policy(ResourceArn=arn)
    assert got["RevisionId"] == revision and json.loads(got["Policy"])["Statement"][0]["Action"] == ["dynamodb:*"]
    assert ddb.delete_resource_policy(ResourceArn=arn)["RevisionId"] == revision
    expect_error(ddb.get_resource_policy, "PolicyNotFoundException", NOT_FOUND + arn, ResourceArn=arn)
    expect_error(ddb.delete_resource_policy, "PolicyNotFoundException", NOT_FOUND + arn, ResourceArn=arn)


def test_same_policy_keeps_its_revision_a_new_one_is_later(ddb, arn):
    first = ddb.put_resource_policy(ResourceArn=arn, Policy=_doc())["RevisionId"]
    assert ddb.put_resource_policy(ResourceArn=arn, Policy=_doc())["RevisionId"] == first
    second = ddb.put_resource_policy(ResourceArn=arn, Policy=_doc("dynamodb:PutItem"))["RevisionId"]
    assert second != first and int(second) > int(first)


def test_expected_revision_id(ddb, arn):
    name = arn.rsplit("/", 1)[1]
    first = ddb.put_resource_policy(ResourceArn=arn, Policy=_doc(), ExpectedRevisionId="NO_POLICY")["RevisionId"]
    expect_error(ddb.put_resource_policy, "PolicyNotFoundException",
                 NOT_FOUND + f"Requested policy update expecting none to be present for table {name}, but a policy "
                 f"exists with revision id {first}.", ResourceArn=arn, Policy=_doc("dynamodb:GetItem"),
                 ExpectedRevisionId="NO_POLICY")
    second = ddb.put_resource_policy(ResourceArn=arn, Policy=_doc("dynamodb:GetItem"),
                                     ExpectedRevisionId=first)["RevisionId"]
    stale = (NOT_FOUND + f"Requested update for policy with revision id {first}, but the policy associated to "
             f"target table {name} has revision id {second}.")
    expect_error(ddb.put_resource_policy, "PolicyNotFoundException", stale, ResourceArn=arn,
                 Policy=_doc("dynamodb:Query"), ExpectedRevisionId=first)
    expect_error(ddb.delete_resource_policy, "PolicyNotFoundException", stale, ResourceArn=arn,
                 ExpectedRevisionId=first)
    assert ddb.get_resource_policy(ResourceArn=arn)["RevisionId"] == second  # nothing changed
    ddb.delete_resource_policy(ResourceArn=arn, ExpectedRevisionId=second)
    expect_error(ddb.get_resource_policy, "PolicyNotFoundException", NOT_FOUND + arn, ResourceArn=arn)


def test_policy_document_rules(ddb, arn):
    invalid = "One or more parameter values were invalid: "
    expect_error(ddb.put_resource_policy, "ValidationException",
                 invalid + "Maximum policy size of 20480 bytes exceeded",
                 ResourceArn=arn, Policy=_doc() + " " * 20480)  # whitespace counts
    expect_error(ddb.put_resource_policy, "ValidationException",
                 invalid + "Invalid policy document: This policy contains invalid Json", ResourceArn=arn, Policy="{")
    expect_error(ddb.get_resource_policy, "PolicyNotFoundException", NOT_FOUND + arn, ResourceArn=arn)


def test_arns_of_other_resources(ddb, arn):
    name = arn.rsplit("/", 1)[1]
    expect_error(ddb.put_resource_policy, "ResourceNotFoundException",
                 f"Requested resource not found: Table: {name}_ not found", ResourceArn=arn + "_", Policy=_doc())
    expect_error(ddb.get_resource_policy, "ResourceNotFoundException",
                 f"Requested resource not found: Table: {name}unknown not found", ResourceArn=arn + "unknown")
    expect_error(ddb.delete_resource_policy, "ResourceNotFoundException",
                 f"Requested resource not found: Table: {name}unknown not found", ResourceArn=arn + "unknown")
    invalid = "One or more parameter values were invalid: "
    expect_error(ddb.get_resource_policy, "ValidationException",
                 invalid + "Invalid resource arn provided, only table or stream is accepted. Provided resource arn: "
                 + arn + "/index/gsi", ResourceArn=arn + "/index/gsi")
    other_region = arn.replace(":us-east-1:", ":eu-west-1:")
    expect_error(ddb.get_resource_policy, "ValidationException", invalid + "Invalid resource Arn: " + other_region,
                 ResourceArn=other_region)
    expect_error(ddb.get_resource_policy, "ValidationException",
                 "This action is only supported by accounts that match the resource owner\u2019s account.",
                 ResourceArn=arn.replace(":000000000000:", ":123456789012:"))
    expect_error(ddb.get_resource_policy, "ValidationException", invalid + "ARNs must start with 'arn:': " + name,
                 ResourceArn=name)
    expect_error(ddb.get_resource_policy, "ValidationException",
                 invalid + "Provided Arn is not a DynamoDB resource arn: arn:aws:s3:::bucket",
                 ResourceArn="arn:aws:s3:::bucket")


def test_create_table_with_a_policy_and_delete_table_drops_it(ddb, table):
    name = table(ResourcePolicy=_doc())
    arn = ddb.describe_table(TableName=name)["Table"]["TableArn"]
    assert json.loads(ddb.get_resource_policy(ResourceArn=arn)["Policy"])["Version"] == "2012-10-17"
    ddb.delete_table(TableName=name)
    expect_error(ddb.get_resource_policy, "ResourceNotFoundException",
                 f"Requested resource not found: Table: {name} not found", ResourceArn=arn)
    bad = unique_name()
    expect_error(ddb.create_table, "ValidationException",
                 "One or more parameter values were invalid: Invalid policy document: This policy contains invalid Json",
                 TableName=bad, ResourcePolicy="not json", BillingMode="PAY_PER_REQUEST",
                 AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                 KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}])
    assert bad not in ddb.list_tables()["TableNames"]


def test_a_stream_holds_its_own_policy(ddb, table):
    name = table(StreamSpecification={"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"})
    described = ddb.describe_table(TableName=name)["Table"]
    stream_arn, table_arn = described["LatestStreamArn"], described["TableArn"]
    revision = ddb.put_resource_policy(ResourceArn=stream_arn, Policy=_doc("dynamodb:GetRecords"))["RevisionId"]
    assert ddb.get_resource_policy(ResourceArn=stream_arn)["RevisionId"] == revision
    expect_error(ddb.get_resource_policy, "PolicyNotFoundException", NOT_FOUND + table_arn, ResourceArn=table_arn)
