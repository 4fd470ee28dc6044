"""Two real regions (``LocalCluster``: nodes, routers, one replicator each).

Tables become global through UpdateTable ReplicaUpdates; contents are
compared the way ``meridian verify`` does: a digest over every stored
record, stamps and tombstones included.
"""

from __future__ import annotations

import asyncio
import signal
import time

import grpc
import orjson
import pytest

from meridian.main import main
from meridian.cluster.procs import LocalCluster
from meridian.proto import replication_pb2 as rpb
from meridian.proto import replication_pb2_grpc, storage_pb2_grpc
from meridian.proto import storage_pb2 as spb
from meridian.replication.digest import compare
from meridian.replication.peers import control
from tests.conftest import make_client
from tests.waiting import wait_until

A, B = "region-a", "region-b"
TABLE = "global"
REPLICATION_TIMEOUT_S = 20.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with LocalCluster([A, B], 2, None, tmp_path_factory.mktemp("global"), sync=False) as c:
        yield c


@pytest.fixture(scope="module")
def clients(cluster):
    return {region: make_client(cluster.endpoints[region]) for region in (A, B)}


def _describe(ddb, name: str) -> dict:
    return ddb.describe_table(TableName=name)["Table"]


def _wait_active(ddb, name: str, timeout_s: float = REPLICATION_TIMEOUT_S) -> dict:
    def active() -> dict | None:
        table = _describe(ddb, name)
        return table if table["TableStatus"] == "ACTIVE" else None

    return wait_until(active, timeout_s, 0.1, f"{name} to be ACTIVE")


def _make_global(cluster: LocalCluster, clients, name: str, items: int = 0) -> int:
    """Create ``name`` in region A with ``items`` items, then add a replica in B."""
    ddb = clients[A]
    ddb.create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    for start in range(0, items, 25):
        ddb.batch_write_item(RequestItems={name: [
            {"PutRequest": {"Item": {"pk": {"S": f"old-{i}"}, "v": {"S": str(i)}}}}
            for i in range(start, min(items, start + 25))
        ]})  # fmt: skip
    answer = ddb.update_table(TableName=name, ReplicaUpdates=[{"Create": {"RegionName": B}}])["TableDescription"]
    assert answer["TableStatus"] == "UPDATING"
    assert answer["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert answer["GlobalTableVersion"] == "2019.11.21"
    assert answer["Replicas"][0]["RegionName"] == B and answer["Replicas"][0]["ReplicaStatus"] == "CREATING"
    table = _wait_active(ddb, name)
    assert table["Replicas"] == [{"RegionName": B, "ReplicaStatus": "ACTIVE"}]
    return _table_id(cluster, name)


def _table_id(cluster: LocalCluster, name: str) -> int:
    with grpc.insecure_channel(cluster.node_addresses[A][0]) as channel:
        entries = storage_pb2_grpc.StorageStub(channel).CatalogList(spb.Empty()).entries
    return orjson.loads(next(e for e in entries if e.name == name).description)["table_id"]


def _records(cluster: LocalCluster, region: str, table_id: int) -> list[tuple[bytes, bytes]]:
    """Every stored record of a table in a region, tombstones included."""
    out = []
    for address in cluster.node_addresses[region]:
        with grpc.insecure_channel(address) as channel:
            stub = replication_pb2_grpc.ReplicaNodeStub(channel)
            after = b""
            while True:
                page = stub.ReadRecords(rpb.RecordsRequest(table_id=table_id, after=after, limit=500)).records
                out.extend((r.key, r.record) for r in page)
                if len(page) < 500:
                    break
                after = page[-1].key
    return sorted(out)


def _wait_converged(cluster: LocalCluster, table_id: int, timeout_s: float = REPLICATION_TIMEOUT_S) -> list:
    deadline = time.monotonic() + timeout_s
    while True:
        a, b = _records(cluster, A, table_id), _records(cluster, B, table_id)
        differing = compare(a, b)
        if not differing or time.monotonic() > deadline:
            return differing
        time.sleep(0.2)


def _control(cluster: LocalCluster, region: str, **command) -> dict:
    return asyncio.run(control(cluster.replicator_addresses[region], command))


def _value(ddb, pk: str) -> str | None:
    got = ddb.get_item(TableName=TABLE, Key={"pk": {"S": pk}}, ConsistentRead=True).get("Item")
    return got["v"]["S"] if got else None


@pytest.fixture(scope="module")
def table_id(cluster, clients):
    return _make_global(cluster, clients, TABLE)


def test_a_new_replica_gets_the_schema_and_the_existing_items(cluster, clients, table_id):
    name = "backfilled"
    _make_global(cluster, clients, name, items=120)
    replica = _describe(clients[B], name)
    original = _describe(clients[A], name)
    assert replica["TableStatus"] == "ACTIVE" and replica["GlobalTableVersion"] == "2019.11.21"
    assert replica["Replicas"] == [{"RegionName": A, "ReplicaStatus": "ACTIVE"}]
    assert replica["KeySchema"] == original["KeySchema"] and replica["TableId"] == original["TableId"]
    assert replica["TableArn"] == original["TableArn"].replace(A, B)
    assert clients[B].scan(TableName=name, Select="COUNT")["Count"] == 120
    clients[B].put_item(TableName=name, Item={"pk": {"S": "new"}, "v": {"S": "from b"}})
    wait_until(lambda: "Item" in clients[A].get_item(TableName=name, Key={"pk": {"S": "new"}}),
               REPLICATION_TIMEOUT_S, 0.05, "B's write to reach A")


def test_the_local_region_is_refused_in_replica_updates(clients, table_id):
    with pytest.raises(clients[A].exceptions.ClientError) as info:
        clients[A].update_table(TableName=TABLE, ReplicaUpdates=[{"Create": {"RegionName": A}}])
    error = info.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert error["Message"] == (
        "Cannot add, delete, or update the local region through ReplicaUpdates. "
        "Use CreateTable, DeleteTable, or UpdateTable as required."
    )


def test_deleting_a_replica_removes_only_that_region(cluster, clients, table_id):
    name = "doomed"
    _make_global(cluster, clients, name, items=5)
    clients[A].update_table(TableName=name, ReplicaUpdates=[{"Delete": {"RegionName": B}}])
    table = _wait_active(clients[A], name)
    assert "Replicas" not in table and "GlobalTableVersion" not in table

    def b_replica_gone() -> bool:
        try:
            _describe(clients[B], name)
        except clients[B].exceptions.ResourceNotFoundException:
            return True
        return False

    wait_until(b_replica_gone, REPLICATION_TIMEOUT_S, 0.1, "the B replica to be deleted")
    assert clients[A].scan(TableName=name, Select="COUNT")["Count"] == 5


def test_a_write_in_one_region_is_read_in_the_other(clients, table_id):
    clients[A].put_item(TableName=TABLE, Item={"pk": {"S": "hello"}, "v": {"S": "from a"}})
    started = time.monotonic()
    wait_until(lambda: _value(clients[B], "hello") == "from a", REPLICATION_TIMEOUT_S, 0.05, "A's write in B")
    clients[B].delete_item(TableName=TABLE, Key={"pk": {"S": "hello"}})
    wait_until(lambda: _value(clients[A], "hello") is None, REPLICATION_TIMEOUT_S - (time.monotonic() - started), 0.05,
               "B's delete in A")


def test_conflicting_writes_during_a_cut_converge_to_the_last_writer(cluster, clients, table_id):
    for source, peer in ((A, B), (B, A)):
        _control(cluster, source, command="link-cut", peer=peer)
    try:
        keys = [f"conflict-{i}" for i in range(20)]
        for pk in keys:
            clients[A].put_item(TableName=TABLE, Item={"pk": {"S": pk}, "v": {"S": "a"}})
        time.sleep(0.01)  # B writes later, on the same machine's clock: B's versions win
        for pk in keys[:10]:
            clients[B].put_item(TableName=TABLE, Item={"pk": {"S": pk}, "v": {"S": "b"}})
        for pk in keys[10:15]:
            # B holds no copy of A's item (the link is cut): it writes one, then
            # deletes it, so its delete is a real one, later than A's put (a
            # delete of a missing item writes nothing, as in DynamoDB).
            clients[B].put_item(TableName=TABLE, Item={"pk": {"S": pk}, "v": {"S": "b"}})
            clients[B].delete_item(TableName=TABLE, Key={"pk": {"S": pk}})
        time.sleep(0.5)  # the point: half a second in which nothing may cross the cut link
        assert _value(clients[B], keys[0]) == "b" and _value(clients[A], keys[0]) == "a"  # cut: no flow
        shown = _control(cluster, A, command="show")
        assert shown["links"][0]["cut"] and shown["pending"][B] > 0
    finally:
        for source, peer in ((A, B), (B, A)):
            _control(cluster, source, command="link-heal", peer=peer)
    assert _wait_converged(cluster, table_id) == []
    for region in (A, B):
        assert [_value(clients[region], pk) for pk in keys] == ["b"] * 10 + [None] * 5 + ["a"] * 5


def test_replicator_kill_9_and_restart_loses_nothing(cluster, clients, table_id):
    replicator = cluster.replicators[A]
    n = 600
    for start in range(0, n, 25):
        clients[A].batch_write_item(RequestItems={TABLE: [
            {"PutRequest": {"Item": {"pk": {"S": f"bulk-{i}"}, "v": {"S": str(i)}}}} for i in range(start, start + 25)
        ]})  # fmt: skip
        if start == n // 2:
            replicator.kill(signal.SIGKILL)
            replicator.wait(10)
    replicator.restart()
    assert _wait_converged(cluster, table_id, 30) == []
    count = clients[B].scan(TableName=TABLE, Select="COUNT", ConsistentRead=True)["Count"]
    assert count >= n
    assert _value(clients[B], f"bulk-{n - 1}") == str(n - 1)


# --- operating it: meridian link / replication / lag / verify / clock -------------


def _cli(cluster: LocalCluster, *args: str) -> int:
    replicators = ",".join(f"{region}={address}" for region, address in cluster.replicator_addresses.items())
    return main([*args, "--replicators", replicators])


def _wait_value(ddb, pk: str, expected: str | None, timeout_s: float = REPLICATION_TIMEOUT_S) -> float:
    """Seconds until ``pk`` reads ``expected``."""
    start = time.monotonic()
    wait_until(lambda: _value(ddb, pk) == expected, timeout_s, 0.01, f"{pk} to read {expected!r}")
    return time.monotonic() - start


def test_verify_names_the_keys_a_cut_holds_back_then_passes_after_heal(cluster, clients, table_id, capsys):
    assert _cli(cluster, "link", "cut", A, B) == 0
    assert "cut" in capsys.readouterr().out
    try:
        clients[A].put_item(TableName=TABLE, Item={"pk": {"S": "held-back"}, "v": {"S": "1"}})
        assert _cli(cluster, "verify", "--table", TABLE, "--timeout-s", "0.5") == 1
        assert '{"pk":{"S":"held-back"}}' in capsys.readouterr().err  # the key, as get-item --key takes it
    finally:
        assert _cli(cluster, "link", "heal", A, B) == 0
    assert _cli(cluster, "verify", "--table", TABLE, "--timeout-s", "20") == 0
    assert "identical in 2 regions" in capsys.readouterr().out


def test_link_latency_shows_in_replication_and_in_lag(cluster, clients, table_id, capsys):
    assert _cli(cluster, "link", "set", A, B, "--latency-ms", "150", "--one-way") == 0
    try:
        shown = capsys.readouterr().out
        assert f"{A} -> {B}" in shown and "150" in shown
        clients[A].put_item(TableName=TABLE, Item={"pk": {"S": "slow"}, "v": {"S": "1"}})
        assert _wait_value(clients[B], "slow", "1") >= 0.14  # applied once the batch crossed the link
    finally:
        _cli(cluster, "link", "set", A, B, "--latency-ms", "0", "--one-way")
    assert _cli(cluster, "lag") == 0
    lag = capsys.readouterr().out
    assert f"{A} -> {B}" in lag and "pending changes" in lag


def test_paused_replication_holds_changes_until_resumed(cluster, clients, table_id, capsys):
    assert _cli(cluster, "replication", "pause", B) == 0
    try:
        clients[A].put_item(TableName=TABLE, Item={"pk": {"S": "paused"}, "v": {"S": "1"}})
        time.sleep(0.5)  # the point: half a second in which the paused replication delivers nothing
        assert _value(clients[B], "paused") is None
    finally:
        assert _cli(cluster, "replication", "resume", B) == 0
    _wait_value(clients[B], "paused", "1")


def test_a_skewed_clock_makes_the_earlier_write_win(cluster, clients, table_id, capsys):
    # Last test of the module: region A's clock stays ahead for the skew's length.
    # The link is cut while both write, so the writes are concurrent: had A's
    # write reached B first, B's hybrid clock would have moved past it and B's
    # write, causally later, would rightly win.
    assert _cli(cluster, "link", "cut", A, B) == 0
    assert _cli(cluster, "clock", "skew", A, "--ms", "3000") == 0
    try:
        clients[A].put_item(TableName=TABLE, Item={"pk": {"S": "skewed"}, "v": {"S": "a, earlier"}})
        clients[B].put_item(TableName=TABLE, Item={"pk": {"S": "skewed"}, "v": {"S": "b, later"}})
    finally:
        _cli(cluster, "clock", "skew", A, "--ms", "0")
        _cli(cluster, "link", "heal", A, B)
    _wait_value(clients[B], "skewed", "a, earlier")
    assert _value(clients[A], "skewed") == "a, earlier"
