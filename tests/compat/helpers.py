"""Helpers shared by the black-box compatibility tests (boto3 only, any endpoint)."""

from __future__ import annotations

import uuid

import pytest
from botocore.exceptions import ClientError


def unique_name(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def create_table(ddb, name: str | None = None, *, pk=("id", "S"), sk=None, billing: str = "PAY_PER_REQUEST", **extra) -> str:
    name = name or unique_name()
    attrs = [{"AttributeName": pk[0], "AttributeType": pk[1]}]
    schema = [{"AttributeName": pk[0], "KeyType": "HASH"}]
    if sk is not None:
        attrs.append({"AttributeName": sk[0], "AttributeType": sk[1]})
        schema.append({"AttributeName": sk[0], "KeyType": "RANGE"})
    kwargs = dict(TableName=name, AttributeDefinitions=attrs, KeySchema=schema, BillingMode=billing, **extra)
    if billing == "PROVISIONED":
        kwargs.setdefault("ProvisionedThroughput", {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5})
    ddb.create_table(**kwargs)
    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    return name


def expect_error(fn, error_type: str, message: str | None = None, **kwargs) -> ClientError:
    """Call ``fn(**kwargs)``; assert it fails with ``error_type`` (and exactly ``message``)."""
    with pytest.raises(ClientError) as info:
        fn(**kwargs)
    err = info.value.response["Error"]
    assert err["Code"] == error_type, err
    if message is not None:
        assert err.get("Message") == message, err
    return info.value
