"""Time to Live in a global table: two real regions (``LocalCluster``: two nodes,
a router and a replicator each), every node sweeping with ``--ttl-interval-s 0.5``.

What DynamoDB promises, and ``node/ttl.py`` implements: an item that expires
is deleted once, by one region (the one that wrote the expiring version),
and the deletion reaches every replica, still marked as the service's.  The
other region's sweeper sees the same expired item and must leave it alone:
were it to delete it too, one expiry would count twice in
``TimeToLiveDeletedItemCount`` (and write two REMOVE stream records).

TTL is enabled once, in region A, before the replica in B is created: a new
replica starts from a copy of the table record, TTL setting included.  The
test checks that B shows the setting.  A TTL change made after the replica
exists reaches every replica region too (``replication/replicas.py``,
``ttl-set``): the last test enables TTL in B and watches A take it.

A global table has a NEW_AND_OLD_IMAGES stream in every region: each
region's stream holds one REMOVE record per expiry, naming the service
(``dynamodb.amazonaws.com``), whether the region issued the deletion or
applied it.

Each test has its own table, so each region's count on ``/metrics``
(``meridian_ttl_deleted_item_count{TableName=...}``, summed over the
region's nodes by its router) starts at zero.  Convergence is judged by
``meridian verify`` (a digest of every stored record, tombstones and their
stamps included).
"""

from __future__ import annotations

import time
import urllib.request

import boto3
import grpc
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from meridian.cluster.control_client import ControlClient
from meridian.cluster.procs import LocalCluster
from meridian.main import main
from meridian.model.records import is_service_delete, is_tombstone, record_stamp
from meridian.proto import replication_pb2 as rpb
from meridian.proto import replication_pb2_grpc, storage_pb2_grpc
from meridian.proto import storage_pb2 as spb
from tests.conftest import CLIENT_CONFIG, make_client, unique_table_name
from tests.waiting import wait_until

A, B = "region-a", "region-b"
TTL_INTERVAL_S = 0.5
TIMEOUT_S = 30.0
HTTP_TIMEOUT_S = 10.0
#: Items expire this long after they are written: time enough to reach the
#: other region (and to cut the link) while still alive.
EXPIRES_IN_S = 6
ITEMS = 12
SERVICE = {"PrincipalId": "dynamodb.amazonaws.com", "Type": "Service"}
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with LocalCluster([A, B], 2, None, tmp_path_factory.mktemp("ttl-global"), sync=False,
                      ttl_interval_s=TTL_INTERVAL_S) as c:  # fmt: skip
        yield c


@pytest.fixture(scope="module")
def clients(cluster):
    return {region: make_client(cluster.endpoints[region]) for region in (A, B)}


@pytest.fixture(scope="module")
def control(cluster):
    with ControlClient(replicators=cluster.replicator_addresses) as client:
        yield client


def _global_table(clients, prefix: str) -> str:
    """A table in A with TTL on ``expires``, then its replica in B."""
    name = unique_table_name(prefix)
    ddb = clients[A]
    ddb.create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.update_time_to_live(TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires"})
    ddb.update_table(TableName=name, ReplicaUpdates=[{"Create": {"RegionName": B}}])

    def active() -> bool:
        table = ddb.describe_table(TableName=name)["Table"]
        return table["TableStatus"] == "ACTIVE" and table.get("Replicas", [{}])[0].get("ReplicaStatus") == "ACTIVE"

    wait_until(active, TIMEOUT_S, 0.1, f"{name} and its replica in {B} to be ACTIVE")
    copied = clients[B].describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    assert copied["TimeToLiveStatus"] in ("ENABLING", "ENABLED") and copied["AttributeName"] == "expires"
    return name


def _ttl_deleted(cluster: LocalCluster, region: str, name: str) -> float:
    """The region's ``meridian_ttl_deleted_item_count`` for ``name`` on its router's /metrics."""
    with _DIRECT.open(cluster.endpoints[region] + "/metrics", timeout=HTTP_TIMEOUT_S) as answer:
        text = answer.read().decode()
    for family in text_string_to_metric_families(text):
        if family.name == "meridian_ttl_deleted_item_count":
            for sample in family.samples:
                if sample.labels["TableName"] == name:
                    return sample.value
    raise AssertionError(f"no TTL count for {name} on {region}'s /metrics")


def _keys(ddb, name: str) -> set[str]:
    return {i["pk"]["S"] for i in ddb.scan(TableName=name, ConsistentRead=True)["Items"]}


def _table_id(cluster: LocalCluster, region: str, name: str) -> int:
    with grpc.insecure_channel(cluster.node_addresses[region][0]) as channel:
        entries = storage_pb2_grpc.StorageStub(channel).CatalogList(spb.Empty()).entries
    return orjson.loads(next(e for e in entries if e.name == name and not e.deleted).description)["table_id"]


def _tombstones(cluster: LocalCluster, region: str, name: str) -> list[bytes]:
    """Every tombstone record of ``name`` stored in ``region`` (all its nodes)."""
    table_id = _table_id(cluster, region, name)
    out = []
    for address in cluster.node_addresses[region]:
        with grpc.insecure_channel(address) as channel:
            stub = replication_pb2_grpc.ReplicaNodeStub(channel)
            after = b""
            while True:
                page = stub.ReadRecords(rpb.RecordsRequest(table_id=table_id, after=after, limit=500)).records
                out.extend(r.record for r in page if is_tombstone(r.record))
                if len(page) < 500:
                    break
                after = page[-1].key
    return out


def make_streams_client(endpoint: str):
    """boto3's ``dynamodbstreams`` client for a local endpoint (as ``make_client``)."""
    return boto3.client("dynamodbstreams", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test", config=CLIENT_CONFIG)  # fmt: skip


def _stream_removes(endpoint: str, name: str) -> list[dict]:
    """Every REMOVE record of the table's stream in one region (every shard, oldest first)."""
    ddb, streams = make_client(endpoint), make_streams_client(endpoint)
    arn = ddb.describe_table(TableName=name)["Table"]["LatestStreamArn"]
    removes = []
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"],
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]  # fmt: skip
        while iterator:
            page = streams.get_records(ShardIterator=iterator)
            removes += [r for r in page["Records"] if r["eventName"] == "REMOVE"]
            iterator = page.get("NextShardIterator") if page["Records"] else None
    return removes


def _verify(cluster: LocalCluster, name: str, capsys) -> None:
    """``meridian verify``: both regions hold the same versions."""
    replicators = ",".join(f"{region}={address}" for region, address in cluster.replicator_addresses.items())
    capsys.readouterr()
    assert main(["verify", "--table", name, "--timeout-s", str(TIMEOUT_S), "--replicators", replicators]) == 0
    assert "identical in 2 regions" in capsys.readouterr().out


def _put(ddb, name: str, pk: str, expires_s: int) -> None:
    ddb.put_item(TableName=name, Item={"pk": {"S": pk}, "expires": {"N": str(expires_s)}})


def test_the_writing_region_alone_expires_an_item_and_the_deletion_reaches_the_other(cluster, clients, control, capsys):
    name = _global_table(clients, "ttl-one-region")
    expires_s = int(time.time()) + EXPIRES_IN_S
    keys = {f"a-{i}" for i in range(ITEMS)}
    for pk in keys:
        _put(clients[A], name, pk, expires_s)
    wait_until(lambda: _keys(clients[B], name) == keys, TIMEOUT_S, 0.05, "A's items in B")
    # Cut both ways while the items still live: from here on, B can only lose
    # them by its own sweeper's hand.
    control.link_cut(A, B)
    try:
        assert time.time() < expires_s, "the items expired before the link was cut: the machine is too slow"
        wait_until(lambda: not _keys(clients[A], name), EXPIRES_IN_S + TIMEOUT_S, 0.2, "A to expire its items")
        # The point: several sweeps of B's nodes, all of which see the same
        # expired items; none may delete them (the versions are A's).
        time.sleep(6 * TTL_INTERVAL_S)
        assert _keys(clients[B], name) == keys
        assert _ttl_deleted(cluster, B, name) == 0
        assert _ttl_deleted(cluster, A, name) == ITEMS
    finally:
        control.link_heal(A, B)
    wait_until(lambda: not _keys(clients[B], name), TIMEOUT_S, 0.1, "A's TTL deletions to reach B")
    # Once, in the region that issued it: B applied A's deletions, it counted none.
    assert (_ttl_deleted(cluster, A, name), _ttl_deleted(cluster, B, name)) == (ITEMS, 0)
    for region in (A, B):
        tombstones = _tombstones(cluster, region, name)
        assert len(tombstones) == ITEMS
        assert all(is_service_delete(t) and record_stamp(t).region == A for t in tombstones), region
        # One REMOVE per expiry in each region's stream, the service's.
        removes = _stream_removes(cluster.endpoints[region], name)
        assert sorted(r["dynamodb"]["Keys"]["pk"]["S"] for r in removes) == sorted(keys), region
        assert all(r["userIdentity"] == SERVICE for r in removes), region
    _verify(cluster, name, capsys)


def test_each_region_expires_the_versions_it_wrote(cluster, clients, capsys):
    name = _global_table(clients, "ttl-both-regions")
    expires_s = int(time.time()) + EXPIRES_IN_S
    written = {A: {f"a-{i}" for i in range(ITEMS)}, B: {f"b-{i}" for i in range(ITEMS)}}
    moved = {f"moved-{i}" for i in range(ITEMS // 2)}  # written in A, then rewritten in B: B's versions
    for region, keys in written.items():
        for pk in keys:
            _put(clients[region], name, pk, expires_s)
    for pk in moved:
        _put(clients[A], name, pk, expires_s)
    everything = written[A] | written[B] | moved
    wait_until(lambda: _keys(clients[B], name) == everything, TIMEOUT_S, 0.05, "every item in B")
    for pk in moved:
        _put(clients[B], name, pk, expires_s)
    assert time.time() < expires_s, "the items expired before they were all written: the machine is too slow"
    for region in (A, B):
        wait_until(lambda: not _keys(clients[region], name), EXPIRES_IN_S + TIMEOUT_S, 0.2,
                   f"every item to be gone from {region}")  # fmt: skip
    expected = {A: len(written[A]), B: len(written[B]) + len(moved)}
    wait_until(lambda: {r: _ttl_deleted(cluster, r, name) for r in (A, B)} == expected, TIMEOUT_S, 0.2,
               f"TTL counts {expected}")  # fmt: skip
    # A few more sweeps change nothing: no second deletion of the same expiry anywhere.
    time.sleep(4 * TTL_INTERVAL_S)
    assert {r: _ttl_deleted(cluster, r, name) for r in (A, B)} == expected
    for region in (A, B):
        tombstones = _tombstones(cluster, region, name)
        assert len(tombstones) == len(everything)
        assert all(is_service_delete(t) for t in tombstones), region
        by_region = {r: sum(record_stamp(t).region == r for t in tombstones) for r in (A, B)}
        assert by_region == expected, region
        removes = _stream_removes(cluster.endpoints[region], name)
        assert sorted(r["dynamodb"]["Keys"]["pk"]["S"] for r in removes) == sorted(everything), region
        assert all(r["userIdentity"] == SERVICE for r in removes), region
    _verify(cluster, name, capsys)


def test_a_ttl_change_in_one_region_reaches_the_other(clients):
    """DynamoDB keeps a global table's TTL setting aligned across replicas."""
    name = unique_table_name("ttl-change")
    clients[A].create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    clients[A].update_table(TableName=name, ReplicaUpdates=[{"Create": {"RegionName": B}}])

    def active() -> bool:
        table = clients[A].describe_table(TableName=name)["Table"]
        return table["TableStatus"] == "ACTIVE" and table.get("Replicas", [{}])[0].get("ReplicaStatus") == "ACTIVE"

    wait_until(active, TIMEOUT_S, 0.1, f"{name} and its replica in {B} to be ACTIVE")
    assert clients[A].describe_time_to_live(TableName=name)["TimeToLiveDescription"]["TimeToLiveStatus"] == "DISABLED"
    clients[B].update_time_to_live(TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "gone"})

    def taken_by_a() -> dict | None:
        described = clients[A].describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        return described if described.get("AttributeName") == "gone" else None

    described = wait_until(taken_by_a, TIMEOUT_S, 0.2, f"{A} to take {B}'s TTL setting of {name}")
    assert described["TimeToLiveStatus"] in ("ENABLING", "ENABLED")

