"""Two routers driving one provisioned table share its budget (issue 15).

A one-region cluster of three storage nodes, its router, and a second router
over the same nodes: writes alternate between them until both are
throttled.  Together they get the table's burst and rate, not twice it: the
table's buckets live on its budget node, which both lease from
(docs/architecture.md, Throughput and throttling).
"""

from __future__ import annotations

import time

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from meridian.cluster.limits import STARTUP_TIMEOUT_S
from meridian.cluster.procs import LocalCluster, ManagedProcess, free_port, wait_for_http_ok
from meridian.model import limits

REGION = "us-east-1"


def _client(endpoint: str):
    return boto3.client("dynamodb", endpoint_url=endpoint, region_name=REGION, aws_access_key_id="x",
                        aws_secret_access_key="x", config=Config(retries={"mode": "standard", "total_max_attempts": 1}))


def test_two_routers_get_one_tables_rate_not_twice_it(tmp_path):
    cluster = LocalCluster([REGION], 3, None, tmp_path, sync=False)
    second = None
    try:
        cluster.start()
        port = free_port()
        nodes = ",".join(f"{REGION}-node-{i}={address}" for i, address in enumerate(cluster.node_addresses[REGION]))
        second = ManagedProcess(["router", "--port", str(port), "--nodes", nodes, "--region", REGION],
                                log_path=tmp_path / "router-2.log", name="router-2")
        wait_for_http_ok(f"http://127.0.0.1:{port}/health", STARTUP_TIMEOUT_S, process=second)
        clients = [_client(cluster.endpoints[REGION]), _client(f"http://127.0.0.1:{port}")]
        clients[0].create_table(
            TableName="budget", BillingMode="PROVISIONED",
            ProvisionedThroughput={"ReadCapacityUnits": 1, "WriteCapacityUnits": 1},
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        )
        clients[0].get_waiter("table_exists").wait(TableName="budget", WaiterConfig={"Delay": 1, "MaxAttempts": 30})
        clients[1].describe_table(TableName="budget")  # the second router knows the table

        started = time.monotonic()
        passed = [0, 0]
        throttled = [False, False]
        i = 0
        while not all(throttled) and i < 10 * limits.THROUGHPUT_BURST_S:
            which = i % 2
            i += 1
            if throttled[which]:
                continue
            try:
                clients[which].put_item(TableName="budget", Item={"id": {"S": f"k{i}"}})
                passed[which] += 1
            except ClientError as err:
                assert err.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
                assert err.response["ThrottlingReasons"][0]["reason"] == "TableWriteProvisionedThroughputExceeded"
                throttled[which] = True
        elapsed_s = time.monotonic() - started
        assert all(throttled)
        total = sum(passed)
        burst = int(limits.THROUGHPUT_BURST_S)  # a 1-unit table's
        # One table's burst plus its rate (one unit a second), plus at most one
        # lease and one overdraft per router: not two bursts.
        assert burst <= total <= burst + elapsed_s + 4, (passed, elapsed_s)
        assert min(passed) > 0  # both routers drew on it
    finally:
        if second is not None:
            second.terminate()
        cluster.stop()
