"""``meridian.testing``: the embedded server a test process starts, its reset, its clean stop.

The server runs in this process on its own uvloop thread; the tests talk to
it over HTTP with boto3 as a user's tests would.  The reset's cost is
measured and printed (``pytest -s``) and held to a loose bound: far below a
restart, whatever the machine's load.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import textwrap
import time

import boto3
import pytest
from botocore.exceptions import ClientError

from meridian import testing
from meridian.testing import plugin
from meridian.testing.server import EmbeddedMeridian
from tests.conftest import CLIENT_CONFIG, make_client

#: A reset is a call on the server's loop: tens to hundreds of microseconds.
#: The bound is loose (a busy CI machine), yet 20x below a restart (~0.2 s).
RESET_MEDIAN_S_MAX = 0.01
RESETS_MEASURED = 50
STOP_CHILD_TIMEOUT_S = 120


def _streams(endpoint: str):
    return boto3.client("dynamodbstreams", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test", config=CLIENT_CONFIG)  # fmt: skip


def _create(client, name: str, *, with_index_and_stream: bool = False) -> None:
    extra = {}
    if with_index_and_stream:
        extra = {
            "GlobalSecondaryIndexes": [{
                "IndexName": "by-owner",
                "KeySchema": [{"AttributeName": "owner", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }],
            "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
        }  # fmt: skip
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}]
        + ([{"AttributeName": "owner", "AttributeType": "S"}] if with_index_and_stream else []),
        BillingMode="PAY_PER_REQUEST",
        **extra,
    )


@pytest.fixture(scope="module")
def served():
    with testing.serve() as endpoint:
        yield endpoint, make_client(endpoint)


def test_serve_yields_a_working_endpoint_on_loopback(served):
    endpoint, client = served
    assert endpoint.startswith("http://127.0.0.1:")
    _create(client, "orders")
    client.put_item(TableName="orders", Item={"pk": {"S": "o-1"}, "total": {"N": "12.50"}})
    assert client.get_item(TableName="orders", Key={"pk": {"S": "o-1"}})["Item"]["total"] == {"N": "12.5"}
    with pytest.raises(ClientError) as caught:  # Meridian's validation, as DynamoDB words it
        client.create_table(
            TableName="x", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST",
        )  # fmt: skip
    assert "Member must have length greater than or equal to 3" in str(caught.value)
    testing.reset(endpoint)


def test_reset_drops_every_table_index_and_stream(served):
    endpoint, client = served
    _create(client, "orders", with_index_and_stream=True)
    _create(client, "guarded")
    client.update_table(TableName="guarded", DeletionProtectionEnabled=True)
    for n in range(10):
        client.put_item(TableName="orders", Item={"pk": {"S": f"o-{n}"}, "owner": {"S": "ann"}})
    assert _streams(endpoint).list_streams()["Streams"]

    assert testing.reset(endpoint) == 2

    assert client.list_tables()["TableNames"] == []
    assert _streams(endpoint).list_streams()["Streams"] == []
    _create(client, "orders", with_index_and_stream=True)  # the same name again: a new, empty table
    assert client.scan(TableName="orders")["Count"] == 0
    assert client.query(
        TableName="orders", IndexName="by-owner", KeyConditionExpression="#o = :o",
        ExpressionAttributeNames={"#o": "owner"}, ExpressionAttributeValues={":o": {"S": "ann"}},
    )["Count"] == 0  # fmt: skip
    assert client.describe_table(TableName="orders")["Table"]["ItemCount"] == 0
    assert testing.reset(endpoint) == 1


def test_reset_drops_backups_and_client_request_tokens(served):
    endpoint, client = served
    _create(client, "orders")
    client.create_backup(TableName="orders", BackupName="before-reset")
    put = {"Put": {"TableName": "orders", "Item": {"pk": {"S": "t-1"}}}}
    client.transact_write_items(TransactItems=[put], ClientRequestToken="same-token")
    assert client.list_backups()["BackupSummaries"]

    testing.reset(endpoint)

    assert client.list_backups()["BackupSummaries"] == []
    _create(client, "orders")
    # The token is forgotten: the same token runs again, on the new table.
    client.transact_write_items(TransactItems=[put], ClientRequestToken="same-token")
    assert client.get_item(TableName="orders", Key={"pk": {"S": "t-1"}})["Item"] == {"pk": {"S": "t-1"}}
    testing.reset(endpoint)


def test_reset_costs_microseconds_not_a_restart(served):
    endpoint, client = served
    testing.reset(endpoint)
    empty, one_table = [], []
    for _ in range(RESETS_MEASURED):
        started = time.perf_counter()
        testing.reset(endpoint)
        empty.append(time.perf_counter() - started)
    for n in range(RESETS_MEASURED):
        _create(client, "orders")
        client.put_item(TableName="orders", Item={"pk": {"S": f"o-{n}"}})
        started = time.perf_counter()
        testing.reset(endpoint)
        one_table.append(time.perf_counter() - started)
    empty_s, one_s = statistics.median(empty), statistics.median(one_table)
    print(f"reset: empty server {empty_s * 1e6:.0f} us, one table {one_s * 1e6:.0f} us (medians of {RESETS_MEASURED})")
    assert empty_s < RESET_MEDIAN_S_MAX and one_s < RESET_MEDIAN_S_MAX


def test_reset_of_an_unknown_endpoint_says_so():
    with pytest.raises(LookupError, match="no Meridian started by meridian.testing.serve"):
        testing.reset("http://127.0.0.1:1")


def test_in_memory_scratch_goes_and_a_data_dir_keeps_its_tables(tmp_path):
    server = EmbeddedMeridian()
    server.start()
    scratch = server._scratch
    assert scratch is not None and os.path.isdir(scratch)
    server.stop()
    server.stop()  # idempotent
    assert not os.path.exists(scratch)

    with EmbeddedMeridian(data_dir=tmp_path / "data") as server:
        _create(make_client(server.endpoint), "kept")
    with EmbeddedMeridian(data_dir=tmp_path / "data") as server:
        assert make_client(server.endpoint).list_tables()["TableNames"] == ["kept"]
    with pytest.raises(RuntimeError, match="not running"):
        server.reset()


def test_stop_is_clean_with_client_connections_open_and_warnings_as_errors(tmp_path):
    """Connections a client keeps open are closed by ``stop``, not left to the loop: under
    ``-W error`` uvloop's own close warns, and that warning hangs it."""
    script = tmp_path / "stop.py"
    script.write_text(textwrap.dedent("""
        import boto3
        from meridian import testing
        with testing.serve() as endpoint:
            client = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1",
                                  aws_access_key_id="test", aws_secret_access_key="test")
            client.list_tables()
        print("stopped")
    """))
    result = subprocess.run([sys.executable, "-W", "error", str(script)], capture_output=True, text=True,
                            timeout=STOP_CHILD_TIMEOUT_S)  # fmt: skip
    assert result.returncode == 0 and result.stdout.strip() == "stopped", result.stderr
    assert "Warning" not in result.stderr and "Exception ignored" not in result.stderr, result.stderr


def test_the_plugin_defines_fixtures_and_no_hooks():
    """pytest loads the plugin in every run where Meridian is installed (this repository's own
    included): it must add fixtures and change nothing else."""
    assert [name for name in vars(plugin) if name.startswith("pytest_")] == []
    fixtures = {name for name, value in vars(plugin).items() if hasattr(value, "_pytestfixturefunction")
                or type(value).__name__ == "FixtureFunctionDefinition"}  # fmt: skip
    assert {"meridian_endpoint", "meridian_dynamodb_client", "meridian_dynamodb_resource", "meridian_server",
            "meridian_session_endpoint", "meridian_session_dynamodb_client",
            "meridian_session_dynamodb_resource"} <= fixtures  # fmt: skip
    assert all(name.startswith(("meridian_", "_meridian_")) for name in fixtures)
