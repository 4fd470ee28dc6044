"""Acknowledged writes survive kill -9: embedded, --sync under a write burst, and a cluster node.

Real processes, real RocksDB on disk, SIGKILL (no chance to flush anything).
"""

from __future__ import annotations

import signal
import threading
import time

import boto3
import pytest
from botocore.config import Config

from meridian.cluster.procs import LocalCluster, ManagedProcess, free_port, wait_for_http_ok
from tests.waiting import wait_until


def _client(endpoint: str):
    return boto3.client(
        "dynamodb", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test",
        aws_secret_access_key="test", config=Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=5),
    )


def _create(ddb, name: str) -> None:
    ddb.create_table(TableName=name, AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}], BillingMode="PAY_PER_REQUEST")
    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 20})


def _serve(tmp_path, port: int, *extra: str) -> ManagedProcess:
    proc = ManagedProcess(["serve", "--port", str(port), "--data-dir", str(tmp_path / "data"), *extra],
                          log_path=tmp_path / "serve.log")
    wait_for_http_ok(f"http://127.0.0.1:{port}/health", 30, process=proc)
    return proc


def test_embedded_write_kill9_restart_read(tmp_path):
    port = free_port()
    proc = _serve(tmp_path, port)
    try:
        endpoint = f"http://127.0.0.1:{port}"
        ddb = _client(endpoint)
        _create(ddb, "durable")
        for i in range(200):
            ddb.put_item(TableName="durable", Item={"id": {"S": f"k{i}"}, "v": {"N": str(i)}})
        ddb.delete_item(TableName="durable", Key={"id": {"S": "k0"}})
        proc.kill(signal.SIGKILL)
        proc.wait(10)
        proc.restart()
        wait_for_http_ok(f"{endpoint}/health", 30, process=proc)
        ddb = _client(endpoint)
        assert "durable" in ddb.list_tables()["TableNames"]
        assert "Item" not in ddb.get_item(TableName="durable", Key={"id": {"S": "k0"}})
        for i in range(1, 200):
            assert ddb.get_item(TableName="durable", Key={"id": {"S": f"k{i}"}})["Item"]["v"] == {"N": str(i)}
        assert ddb.describe_table(TableName="durable")["Table"]["ItemCount"] == 199
    finally:
        proc.terminate()


def test_sync_kill9_during_write_burst_loses_no_acknowledged_write(tmp_path):
    port = free_port()
    proc = _serve(tmp_path, port, "--sync")
    endpoint = f"http://127.0.0.1:{port}"
    acknowledged: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()
    try:
        _create(_client(endpoint), "burst")

        def writer(w: int) -> None:
            ddb = _client(endpoint)
            i = 0
            while not stop.is_set():
                key = f"w{w}-{i}"
                try:
                    ddb.put_item(TableName="burst", Item={"id": {"S": key}, "v": {"S": "x" * 100}})
                except Exception:  # the kill: unacknowledged from here on
                    return
                with lock:
                    acknowledged.append(key)
                i += 1

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
        started = time.monotonic()
        for t in threads:
            t.start()
        wait_until(lambda: len(acknowledged) > 50, 30, 0.05, "the burst to get going (50 acknowledged writes)")
        # The point: the kill lands three seconds into the burst, with many writes in flight.
        time.sleep(max(0.0, 3 - (time.monotonic() - started)))
        proc.kill(signal.SIGKILL)
        stop.set()
        for t in threads:
            t.join(10)
        proc.wait(10)
        assert len(acknowledged) > 50, "the burst did not get going"
        proc.restart()
        wait_for_http_ok(f"{endpoint}/health", 30, process=proc)
        ddb = _client(endpoint)
        missing = [k for k in acknowledged if "Item" not in ddb.get_item(TableName="burst", Key={"id": {"S": k}})]
        assert not missing, f"{len(missing)} of {len(acknowledged)} acknowledged writes lost, e.g. {missing[:5]}"
    finally:
        stop.set()
        proc.terminate()


def test_cluster_node_kill9_restart_keeps_data(tmp_path):
    with LocalCluster(["us-east-1"], 3, None, tmp_path / "cluster", sync=False) as cluster:
        endpoint = cluster.endpoints["us-east-1"]
        ddb = _client(endpoint)
        _create(ddb, "spread")
        for i in range(150):
            ddb.put_item(TableName="spread", Item={"id": {"S": f"k{i}"}, "v": {"N": str(i)}})
        victim = cluster.nodes["us-east-1"][1]
        victim.kill(signal.SIGKILL)
        victim.wait(10)
        victim.restart()
        values = wait_until(
            lambda: [ddb.get_item(TableName="spread", Key={"id": {"S": f"k{i}"}})["Item"]["v"]["N"] for i in range(150)],
            30, 0.5, "every item readable after the node's restart", ignoring=(Exception,),
        )
        assert values == [str(i) for i in range(150)]
