"""Each replicator's Prometheus ``/metrics``, and the replication commands through
``--endpoint`` of a router, against real processes (two regions)."""

from __future__ import annotations

import asyncio
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

import orjson

from meridian.main import main
from meridian.cluster.procs import LocalCluster
from meridian.replication.peers import control
from tests.conftest import make_client
from tests.waiting import wait_until

A, B = "region-a", "region-b"
TABLE = "metered"
TIMEOUT_S = 20.0
WRITES = 20


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with LocalCluster([A, B], 1, None, tmp_path_factory.mktemp("metrics"), sync=False) as c:
        yield c


def _scrape(cluster: LocalCluster, region: str) -> dict[str, list]:
    with urllib.request.urlopen(cluster.replicator_metrics_url(region), timeout=5) as answer:
        text = answer.read().decode()
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


def _latency(cluster: LocalCluster) -> tuple[int, dict[float, float]]:
    """(count, {le: cumulative}) of A -> B for the table, as B's replicator reports it."""
    count, buckets = 0, {}
    for sample in _scrape(cluster, B).get("meridian_replication_latency_ms", []):
        labels = sample.labels
        if (labels.get("TableName"), labels.get("SendingRegion"), labels.get("ReceivingRegion")) != (TABLE, A, B):
            continue
        if sample.name.endswith("_count"):
            count = int(sample.value)
        elif sample.name.endswith("_bucket"):
            buckets[float(labels["le"])] = sample.value
    return count, buckets


def _wait_count(cluster: LocalCluster, at_least: int) -> dict[float, float]:
    def enough() -> dict[float, float] | None:
        count, buckets = _latency(cluster)
        return buckets if count >= at_least else None

    return wait_until(enough, TIMEOUT_S, 0.2, f"{at_least} latency samples")


@pytest.fixture(scope="module")
def ddb(cluster):
    ddb = make_client(cluster.endpoints[A])
    ddb.create_table(
        TableName=TABLE,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.update_table(TableName=TABLE, ReplicaUpdates=[{"Create": {"RegionName": B}}])
    wait_until(lambda: ddb.describe_table(TableName=TABLE)["Table"]["TableStatus"] == "ACTIVE", TIMEOUT_S, 0.1,
               f"{TABLE} and its replica to be ACTIVE")
    return ddb


def test_the_histogram_counts_replicated_writes_and_the_pending_gauge_is_exposed(cluster, ddb):
    before, _ = _latency(cluster)
    for i in range(WRITES):
        ddb.put_item(TableName=TABLE, Item={"pk": {"S": f"fast-{i}"}})
    _wait_count(cluster, before + WRITES)
    pending = {
        (s.labels["SendingRegion"], s.labels["ReceivingRegion"])
        for s in _scrape(cluster, A)["meridian_pending_replication_count"]
    }
    assert pending == {(A, B)}


def test_a_150_ms_link_shows_a_median_between_150_and_250_ms(cluster, ddb):
    asyncio.run(control(cluster.replicator_addresses[A], {"command": "link-set", "peer": B, "latency_ms": 150.0}))
    try:
        before, old = _latency(cluster)
        for i in range(WRITES):
            ddb.put_item(TableName=TABLE, Item={"pk": {"S": f"slow-{i}"}})
        buckets = _wait_count(cluster, before + WRITES)
    finally:
        asyncio.run(control(cluster.replicator_addresses[A], {"command": "link-set", "peer": B, "latency_ms": 0.0}))
    # Only the new samples: subtract what the earlier (fast) writes put in each bucket.
    new = {le: n - old.get(le, 0) for le, n in buckets.items()}
    half = new[float("inf")] / 2
    median_le = min(le for le, n in new.items() if n >= half)
    assert new[150.0] <= half  # fewer than half arrived faster than the link allows
    assert 150.0 <= median_le <= 250.0, new


def test_a_router_names_every_regions_replicator(cluster):
    with urllib.request.urlopen(cluster.endpoints[B] + "/meridian/replication", timeout=5) as answer:
        assert orjson.loads(answer.read()) == {"region": B, "replicators": cluster.replicator_addresses}


def test_the_operating_commands_take_any_routers_endpoint(cluster, ddb, capsys):
    endpoint = ["--endpoint", cluster.endpoints[B]]
    assert main(["link", "set", A, B, "--latency-ms", "80", "--jitter-ms", "5", *endpoint]) == 0
    shown = capsys.readouterr().out
    assert f"{A} -> {B}" in shown and f"{B} -> {A}" in shown and "80" in shown
    assert main(["link", "cut", A, B, *endpoint]) == 0
    assert main(["link", "show", *endpoint]) == 0
    assert capsys.readouterr().out.count("cut") >= 2
    assert main(["link", "heal", A, B, *endpoint]) == 0
    assert main(["link", "set", A, B, "--latency-ms", "0", "--jitter-ms", "0", *endpoint]) == 0
    assert main(["replication", "pause", A, *endpoint]) == 0
    assert main(["link", "show", *endpoint]) == 0
    assert "paused" in capsys.readouterr().out
    assert main(["replication", "resume", A, *endpoint]) == 0
    assert main(["clock", "skew", B, "--ms", "0", *endpoint]) == 0
    assert main(["lag", *endpoint]) == 0
    assert "pending changes" in capsys.readouterr().out
    ddb.put_item(TableName=TABLE, Item={"pk": {"S": "checked"}})
    assert main(["verify", "--table", TABLE, "--timeout-s", "15", *endpoint]) == 0
    assert "identical in 2 regions" in capsys.readouterr().out


def test_an_endpoint_without_a_replicator_is_refused(cluster):
    with pytest.raises(SystemExit, match="cannot reach"):
        main(["lag", "--endpoint", "http://127.0.0.1:9"])


def test_a_router_relays_its_regions_replicator_metrics(cluster, ddb):
    with urllib.request.urlopen(cluster.endpoints[B] + "/metrics", timeout=5) as answer:
        assert answer.headers["Content-Type"].startswith("text/plain")
        text = answer.read().decode()
    assert f'meridian_replication_latency_ms_count{{ReceivingRegion="{B}",SendingRegion="{A}",TableName="{TABLE}"}}' in text
    assert f'meridian_pending_replication_count{{ReceivingRegion="{A}",SendingRegion="{B}"}}' in text
