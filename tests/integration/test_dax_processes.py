"""DAX nodes as processes of their own (``meridian up --dax-port --dax-nodes 3``), with the real Python client.

Each DAX node is a ``meridian dax`` process in front of the region's router;
a write through the leader reaches the other nodes' item caches over the
gRPC peer channel.  Shown here by a write that bypasses DAX afterwards:
every node still answers the item as written through DAX (from its item
cache), never the table's newer one.  Then a replica is SIGKILLed: the
nodes leave it out of ``endpoints``, so the client, at its next refresh,
keeps working on the others; the leader counts the updates it could not
deliver; restarted, the replica rejoins with an empty cache (cleared again
by the leader, which dropped updates for it) and receives write-throughs
again.
"""

from __future__ import annotations

import signal
import urllib.request

import boto3
import pytest

from meridian.cluster.procs import LocalCluster, free_port, port_is_free
from tests.waiting import wait_until

amazondax = pytest.importorskip("amazondax")

REGION = "us-east-1"
TABLE = "dax_procs"
NODES = 3
READS = 40  # the client spreads reads over the nodes at random: 40 reach all three (but for 3 in 10**7)

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    base = free_port()
    while not all(port_is_free("127.0.0.1", base + i) for i in range(NODES)):
        base = free_port()
    local = LocalCluster([REGION], 1, None, tmp_path_factory.mktemp("dax-procs"), sync=False,
                         dax_base_port=base, dax_nodes=NODES)
    local.start()
    try:
        yield local
    finally:
        local.stop()


@pytest.fixture(scope="module")
def ddb(cluster):
    client = boto3.client("dynamodb", endpoint_url=cluster.endpoints[REGION], region_name=REGION,
                          aws_access_key_id="test", aws_secret_access_key="test")
    client.create_table(TableName=TABLE, BillingMode="PAY_PER_REQUEST",
                        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
    return client


@pytest.fixture(scope="module")
def dax(cluster, ddb):
    client = amazondax.AmazonDaxClient(endpoint_url=cluster.dax_endpoints[REGION], region_name=REGION,
                                       aws_access_key_id="test", aws_secret_access_key="test")
    yield client
    client.close()


_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _metrics(cluster, index: int) -> dict[str, float]:
    with _DIRECT.open(cluster.dax.metrics_url(REGION, index), timeout=10) as response:
        text = response.read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith("meridian_dax_") and "{" in line:
            name, value = line.split("{", 1)[0], line.rsplit(" ", 1)[1]
            out[name] = float(value)
    return out


def _received(cluster, index: int) -> float:
    return _metrics(cluster, index).get("meridian_dax_peer_updates_received_total", 0)


def _value(dax, key: str) -> str:
    return dax.get_item(TableName=TABLE, Key={"pk": {"S": key}})["Item"]["v"]["S"]


def _write_then_bypass(cluster, dax, ddb, key: str, through_dax: str, directly: str) -> None:
    """Write ``through_dax`` through DAX (the leader), wait until every replica applied it, then
    ``directly`` to the table: a node that missed the write-through would read the latter."""
    before = {i: _received(cluster, i) for i in range(1, NODES)}
    dax.put_item(TableName=TABLE, Item={"pk": {"S": key}, "v": {"S": through_dax}})
    wait_until(lambda: all(_received(cluster, i) > before[i] for i in before), 10, 0.05, "write-through on every replica")
    ddb.put_item(TableName=TABLE, Item={"pk": {"S": key}, "v": {"S": directly}})


def test_every_node_lists_every_node_and_a_write_through_reaches_every_process(cluster, dax, ddb):
    names = [member.name for member in cluster.members() if member.role == "dax"]
    assert names == [f"{REGION}/dax-{i}" for i in range(NODES)]
    _write_then_bypass(cluster, dax, ddb, "k1", "through-dax", "direct")
    hits_before = [_metrics(cluster, i).get("meridian_dax_item_cache_hits_total", 0) for i in range(NODES)]
    assert {_value(dax, "k1") for _ in range(READS)} == {"through-dax"}  # every node: the cached item
    hits_after = [_metrics(cluster, i).get("meridian_dax_item_cache_hits_total", 0) for i in range(NODES)]
    assert all(after > before for before, after in zip(hits_before, hits_after)), (hits_before, hits_after)
    leader = _metrics(cluster, 0)
    assert leader["meridian_dax_peers_connected"] == NODES - 1
    assert leader["meridian_dax_peer_updates_dropped_total"] == 0


def test_the_lab_health_check_speaks_dax(cluster):
    from meridian.lab import probe

    replica = f"127.0.0.1:{cluster.dax.ports[REGION][1]}"
    assert probe.probe_dax(replica) == f"DAX node answers, {NODES} node(s) in its cluster"
    with pytest.raises((probe.ProbeFailed, OSError)):
        probe.probe_dax(cluster.endpoints[REGION].rsplit("/", 1)[-1])  # the router: HTTP, not DAX


def _eventually(call, what: str):
    """The client's first calls after a node died may fail while it notices; later ones must not."""
    result = []
    wait_until(lambda: result.append(call()) or True, 20, 0.2, what, ignoring=(Exception,))
    return result[-1]


def test_a_killed_replica_leaves_the_others_serving_and_rejoins_empty(cluster, dax, ddb):
    victim = cluster.dax.processes[REGION][2]
    victim.kill(signal.SIGKILL)
    victim.wait(10)
    _eventually(lambda: dax.put_item(TableName=TABLE, Item={"pk": {"S": "k2"}, "v": {"S": "while-down"}}),
                "a PutItem through the leader")
    # the nodes leave the dead replica out of `endpoints`; at its next refresh (4 s) the client reads
    # from the leader and the other replica only, and every read succeeds again
    wait_until(lambda: {_value(dax, "k2") for _ in range(READS)} == {"while-down"}, 30, 0.5,
               "the client to stop reading from the dead replica", ignoring=(Exception,))
    assert {_value(dax, "k2") for _ in range(READS)} == {"while-down"}
    wait_until(lambda: _metrics(cluster, 0)["meridian_dax_peer_updates_dropped_total"] > 0, 10, 0.05,
               "the leader to count the updates the dead replica missed")

    victim.restart()
    member = next(m for m in cluster.members() if m.name == f"{REGION}/dax-2")
    member.ready(30)
    rejoined = _metrics(cluster, 2)
    assert rejoined["meridian_dax_estimated_db_size_bytes"] == 0  # a new, empty cache
    assert rejoined["meridian_dax_item_cache_hits_total"] == 0
    wait_until(lambda: _metrics(cluster, 0)["meridian_dax_peers_connected"] == NODES - 1, 20, 0.1,
               "the leader's stream to the restarted replica")
    wait_until(lambda: _metrics(cluster, 2).get("meridian_dax_peer_clears_total", 0) >= 1, 10, 0.05,
               "the leader to clear the replica it dropped updates for")
    _write_then_bypass(cluster, dax, ddb, "k3", "after-rejoin", "direct")
    assert {_value(dax, "k3") for _ in range(READS)} == {"after-rejoin"}
