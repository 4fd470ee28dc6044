"""Throttling as DynamoDB does it (issue 15), black-box through boto3, both modes.

Provisioned tables start with their five-minute burst (``THROUGHPUT_BURST_S``
of their rate), so each test drains a 1-unit table's 300 units first.
Clients here do not retry (``max_attempts`` 1) unless a test says so, so a
throttle is seen as it is answered.
"""

from __future__ import annotations

import time

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from helpers import create_table, unique_name
from meridian.model import limits

BURST_UNITS = int(limits.THROUGHPUT_BURST_S)  # of a 1-unit table
TABLE_MESSAGE = (
    "The level of configured provisioned throughput for the table was exceeded. "
    "Consider increasing your provisioning level with the UpdateTable API."
)


def client(endpoint: str, attempts: int = 1):
    return boto3.client(
        "dynamodb", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="x",
        aws_secret_access_key="x", config=Config(retries={"mode": "standard", "total_max_attempts": attempts}),
    )


@pytest.fixture(scope="module")
def raw(endpoint):
    return client(endpoint)


def drain_writes(raw, name: str, item_of, limit: int) -> tuple[int, ClientError]:
    """Write until throttled; how many writes passed, and the throttle."""
    for i in range(limit):
        try:
            raw.put_item(TableName=name, Item=item_of(i))
        except ClientError as err:
            if err.response["Error"]["Code"] in ("ProvisionedThroughputExceededException", "ThrottlingException"):
                return i, err
            raise
    raise AssertionError(f"{limit} writes and no throttle")


def provisioned(ddb, table, read=1, write=1, **kw) -> str:
    return table(billing="PROVISIONED", ProvisionedThroughput={"ReadCapacityUnits": read, "WriteCapacityUnits": write},
                 **kw)


def test_a_provisioned_table_is_throttled_once_its_burst_is_spent(ddb, table, raw, endpoint):
    name = provisioned(ddb, table)
    passed, err = drain_writes(raw, name, lambda i: {"id": {"S": f"k{i}"}}, 3 * BURST_UNITS)
    # the burst, what accrued meanwhile (one unit a second), one lease of slack
    assert BURST_UNITS <= passed <= BURST_UNITS + 60
    body = err.response
    assert body["Error"]["Code"] == "ProvisionedThroughputExceededException"
    assert body["Error"]["Message"] == TABLE_MESSAGE
    arn = ddb.describe_table(TableName=name)["Table"]["TableArn"]
    assert body["ThrottlingReasons"] == [{"reason": "TableWriteProvisionedThroughputExceeded", "resource": arn}]
    # Reads have their own budget.
    assert raw.get_item(TableName=name, Key={"id": {"S": "k0"}})["Item"] == {"id": {"S": "k0"}}
    # The SDK's retries get through once a unit has accrued.
    patient = client(endpoint, attempts=10)
    patient.put_item(TableName=name, Item={"id": {"S": "after"}})
    assert raw.get_item(TableName=name, Key={"id": {"S": "after"}}, ConsistentRead=True)["Item"]


def test_switching_to_on_demand_stops_the_throttling(ddb, table, raw):
    name = provisioned(ddb, table)
    drain_writes(raw, name, lambda i: {"id": {"S": f"k{i}"}}, 3 * BURST_UNITS)
    ddb.update_table(TableName=name, BillingMode="PAY_PER_REQUEST")
    for i in range(50):
        raw.put_item(TableName=name, Item={"id": {"S": f"free{i}"}})


def test_reads_are_throttled_with_their_own_reason(ddb, table, raw):
    name = provisioned(ddb, table, read=1, write=5)
    raw.put_item(TableName=name, Item={"id": {"S": "a"}})
    # Eventually consistent reads cost half a unit: the burst is 600 reads.
    for i in range(4 * BURST_UNITS):
        try:
            raw.get_item(TableName=name, Key={"id": {"S": "a"}})
        except ClientError as err:
            assert err.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
            assert err.response["ThrottlingReasons"][0]["reason"] == "TableReadProvisionedThroughputExceeded"
            assert 2 * BURST_UNITS <= i <= 2 * BURST_UNITS + 120
            return
    raise AssertionError("never throttled")


@pytest.fixture
def gsi_table(ddb):
    name = unique_name()
    ddb.create_table(
        TableName=name, BillingMode="PROVISIONED",
        ProvisionedThroughput={"ReadCapacityUnits": 5, "WriteCapacityUnits": 1000},
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}, {"AttributeName": "g", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[{
            "IndexName": "byg", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
            "Projection": {"ProjectionType": "KEYS_ONLY"},
            "ProvisionedThroughput": {"ReadCapacityUnits": 1, "WriteCapacityUnits": 1},
        }],
    )
    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    yield name
    ddb.delete_table(TableName=name)


def test_a_global_index_that_cannot_keep_up_throttles_base_table_writes(gsi_table, raw):
    name = gsi_table
    passed, err = drain_writes(raw, name, lambda i: {"id": {"S": f"k{i}"}, "g": {"S": "x"}}, 3 * BURST_UNITS)
    assert BURST_UNITS <= passed <= BURST_UNITS + 60
    reasons = err.response["ThrottlingReasons"]
    assert [r["reason"] for r in reasons] == ["IndexWriteProvisionedThroughputExceeded"]
    assert reasons[0]["resource"].endswith(f"table/{name}/index/byg")


def test_a_hot_key_is_throttled_while_the_table_has_capacity(ddb, table, raw):
    name = table()  # on demand: four partitions of 1,000 write units a second
    big = "x" * (400 * 1024 - 100)  # 400 write units a write
    hot = {"id": {"S": "hot"}, "v": {"S": big}}
    started = time.monotonic()
    passed, err = drain_writes(raw, name, lambda i: hot, 1000)
    elapsed_s = time.monotonic() - started
    rate = limits.PARTITION_WRITE_UNITS_PER_S / 400
    bank = rate * limits.THROUGHPUT_PARTITION_BURST_S
    assert bank - 1 <= passed <= bank + rate * elapsed_s + 2
    assert err.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
    arn = ddb.describe_table(TableName=name)["Table"]["TableArn"]
    assert err.response["ThrottlingReasons"] == [{"reason": "TableWriteKeyRangeThroughputExceeded", "resource": arn}]
    # Other keys (most land in other partitions) still write.
    written = 0
    for i in range(20):
        try:
            raw.put_item(TableName=name, Item={"id": {"S": f"cold{i}"}})
            written += 1
        except ClientError:
            pass
    assert written >= 10


def test_an_on_demand_maximum_is_enforced(ddb, table, raw):
    name = table(OnDemandThroughput={"MaxWriteRequestUnits": 5})
    started = time.monotonic()
    passed, err = drain_writes(raw, name, lambda i: {"id": {"S": f"k{i}"}}, 500)
    elapsed_s = time.monotonic() - started
    assert 5 <= passed <= 5 + 5 * elapsed_s + 2  # one second banked, then the rate
    assert err.response["Error"]["Code"] == "ThrottlingException"
    reasons = err.response["Error"].get("throttlingReasons") or err.response.get("throttlingReasons")
    assert reasons[0]["reason"] == "TableWriteMaxOnDemandThroughputExceeded"


def test_a_throttled_batch_returns_unprocessed_items_or_the_error(ddb, table, raw):
    name = provisioned(ddb, table)
    drain_writes(raw, name, lambda i: {"id": {"S": f"k{i}"}}, 3 * BURST_UNITS)
    # What accrued since the drain (a unit a second) may run; the rest comes
    # back unprocessed, or, if no key may run, the batch is the throttle.
    writes = [{"PutRequest": {"Item": {"id": {"S": f"b{i}"}}}} for i in range(10)]
    try:
        out = raw.batch_write_item(RequestItems={name: writes})
    except ClientError as refused:
        assert refused.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
    else:
        assert len(out["UnprocessedItems"][name]) >= 7
    reads = raw.batch_get_item(RequestItems={name: {"Keys": [{"id": {"S": f"k{i}"}} for i in range(5)]}})
    assert len(reads["Responses"][name]) == 5  # reads are not throttled


def test_a_throttled_transaction_is_cancelled_with_the_reason(ddb, table, raw):
    name = provisioned(ddb, table)
    other = table()
    drain_writes(raw, name, lambda i: {"id": {"S": f"k{i}"}}, 3 * BURST_UNITS)
    with pytest.raises(ClientError) as refused:
        raw.transact_write_items(TransactItems=[
            {"Put": {"TableName": other, "Item": {"id": {"S": "o"}}}},
            {"Put": {"TableName": name, "Item": {"id": {"S": "t"}}}},
        ])
    response = refused.value.response
    assert response["Error"]["Code"] == "TransactionCanceledException"
    codes = [reason["Code"] for reason in response["CancellationReasons"]]
    assert codes == ["None", "ProvisionedThroughputExceeded"]
    assert "Item" not in raw.get_item(TableName=other, Key={"id": {"S": "o"}}, ConsistentRead=True)


def test_a_failed_condition_still_costs_a_write(ddb, table, raw):
    name = provisioned(ddb, table)
    raw.put_item(TableName=name, Item={"id": {"S": "c"}})
    refused = 0
    for i in range(3 * BURST_UNITS):
        try:
            raw.put_item(TableName=name, Item={"id": {"S": "c"}}, ConditionExpression="attribute_not_exists(id)")
        except ClientError as err:
            code = err.response["Error"]["Code"]
            if code == "ProvisionedThroughputExceededException":
                assert BURST_UNITS - 5 <= refused <= BURST_UNITS + 60
                return
            assert code == "ConditionalCheckFailedException"
            refused += 1
    raise AssertionError("failed conditions were free")


def test_unique_names_do_not_share_budgets(ddb, table, raw):
    """A table deleted and created again under its name starts a new budget (a new table id)."""
    name = unique_name()
    create_table(ddb, name, billing="PROVISIONED", ProvisionedThroughput={"ReadCapacityUnits": 1, "WriteCapacityUnits": 1})
    try:
        drain_writes(raw, name, lambda i: {"id": {"S": f"k{i}"}}, 3 * BURST_UNITS)
        ddb.delete_table(TableName=name)
        create_table(ddb, name, billing="PROVISIONED",
                     ProvisionedThroughput={"ReadCapacityUnits": 1, "WriteCapacityUnits": 1})
        raw.put_item(TableName=name, Item={"id": {"S": "fresh"}})
    finally:
        ddb.delete_table(TableName=name)


def _metric_samples(endpoint: str, family: str) -> dict[str, float]:
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(endpoint + "/metrics", timeout=10) as answer:
        text = answer.read().decode()
    for found in text_string_to_metric_families(text):
        if found.name == family:
            return {sample.labels["TableName"]: sample.value for sample in found.samples}
    return {}


def test_consumption_and_throttle_events_are_on_metrics(ddb, table, raw, endpoint):
    name = provisioned(ddb, table, read=1, write=1)
    passed, _err = drain_writes(raw, name, lambda i: {"id": {"S": f"k{i}"}}, 3 * BURST_UNITS)
    assert _metric_samples(endpoint, "meridian_write_throttle_events")[name] >= 1
    assert _metric_samples(endpoint, "meridian_consumed_write_capacity_units")[name] >= passed
    assert _metric_samples(endpoint, "meridian_provisioned_write_capacity_units")[name] == 1
    assert _metric_samples(endpoint, "meridian_read_throttle_events")[name] == 0
