"""Replica management with three real regions (``LocalCluster``).

* A new replica is announced to every replica region as soon as its
  creation starts, and every region sends it the versions it wrote itself:
  writes in a third region made before, during and after the backfill all
  reach the new replica, even those the coordinating region never got
  (its link from the third region was cut meanwhile).  Convergence is
  proven as ``meridian verify`` proves it: every region's digest.
* DeleteTable in one region removes only that replica: the other regions
  drop it from ``Replicas`` and stop replicating to it.
"""

from __future__ import annotations

import threading
import time

import pytest

from meridian.cluster.control_client import ControlClient
from meridian.cluster.procs import LocalCluster
from tests.conftest import make_client, unique_table_name
from tests.waiting import wait_until

A, B, C = "region-a", "region-b", "region-c"
REGIONS = (A, B, C)
TIMEOUT_S = 60.0
POLL_S = 0.05
#: Items in the table before the new replica is added (its backfill's work).
EXISTING_ITEMS = 20_000
BATCH_ITEMS_MAX = 25


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with LocalCluster(list(REGIONS), 1, None, tmp_path_factory.mktemp("global-3"), sync=False) as c:
        yield c


@pytest.fixture(scope="module")
def ddb(cluster):
    return {region: make_client(cluster.endpoints[region]) for region in REGIONS}


@pytest.fixture(scope="module")
def control(cluster):
    with ControlClient(replicators=cluster.replicator_addresses) as client:
        yield client


def _wait(what: str, probe, timeout_s: float = TIMEOUT_S):
    return wait_until(probe, timeout_s, POLL_S, what)


def _replicas(client, name: str) -> dict[str, str]:
    table = client.describe_table(TableName=name)["Table"]
    return {r["RegionName"]: r["ReplicaStatus"] for r in table.get("Replicas", ())}


def _add_replica(ddb, name: str, coordinator: str, region: str) -> None:
    ddb[coordinator].update_table(TableName=name, ReplicaUpdates=[{"Create": {"RegionName": region}}])


def _active_everywhere(ddb, name: str, regions: tuple[str, ...]) -> bool:
    return all(set(_replicas(ddb[r], name).values()) == {"ACTIVE"} and len(_replicas(ddb[r], name)) == len(regions) - 1
               for r in regions)  # fmt: skip


def _create(client, name: str) -> None:
    client.create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )


def _load(client, name: str, count: int) -> None:
    for first in range(0, count, BATCH_ITEMS_MAX):
        requests = [{"PutRequest": {"Item": {"pk": {"S": f"old-{i:06d}"}, "v": {"S": "a"}}}}
                    for i in range(first, min(count, first + BATCH_ITEMS_MAX))]  # fmt: skip
        while requests:
            requests = client.batch_write_item(RequestItems={name: requests}).get("UnprocessedItems", {}).get(name, [])


def _get(client, name: str, pk: str) -> dict | None:
    return client.get_item(TableName=name, Key={"pk": {"S": pk}}, ConsistentRead=True).get("Item")


class Writer(threading.Thread):
    """Writes (and sometimes deletes) keys in one region until stopped,
    watching that region's view of a replica's status as it goes."""

    def __init__(self, endpoint: str, name: str, prefix: str, watched: str) -> None:
        super().__init__(daemon=True)
        self._client = make_client(endpoint)
        self._name = name
        self._prefix = prefix
        self._watched = watched
        self.stop = threading.Event()
        self.statuses: list[str] = []  # the watched replica's status, as this region saw it
        self.written = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                pk = f"{self._prefix}-{self.written:05d}"
                self._client.put_item(TableName=self._name, Item={"pk": {"S": pk}, "v": {"S": "c"}})
                if self.written % 7 == 3:
                    earlier = f"{self._prefix}-{self.written - 2:05d}"
                    self._client.delete_item(TableName=self._name, Key={"pk": {"S": earlier}})
                self.written += 1
                status = _replicas(self._client, self._name).get(self._watched)
                if status and (not self.statuses or self.statuses[-1] != status):
                    self.statuses.append(status)
        except BaseException as exc:  # reported by the test
            self.error = exc


def test_writes_in_a_third_region_during_a_backfill_reach_the_new_replica(cluster, ddb, control):
    name = unique_table_name("three")
    _create(ddb[A], name)
    _add_replica(ddb, name, A, C)
    _wait("C ACTIVE", lambda: _active_everywhere(ddb, name, (A, C)))
    _load(ddb[A], name, EXISTING_ITEMS)
    # What C writes from now on does not reach A (the coordinator) until healed.
    control.link_cut(C, A, one_way=True)
    try:
        for i in range(50):
            ddb[C].put_item(TableName=name, Item={"pk": {"S": f"early-{i:02d}"}, "v": {"S": "c"}})
        ddb[C].delete_item(TableName=name, Key={"pk": {"S": "old-000007"}})
        writer = Writer(cluster.endpoints[C], name, "during", watched=B)
        writer.start()
        try:
            _wait("writes in C", lambda: writer.written >= 20 or writer.error)
            _add_replica(ddb, name, A, B)
            _wait("B ACTIVE in A", lambda: _replicas(ddb[A], name).get(B) == "ACTIVE" or writer.error)
            _wait("more writes in C", lambda: writer.written >= 20 + 20 or writer.error, timeout_s=10)
            _wait("C to see B ACTIVE", lambda: writer.statuses[-1:] == ["ACTIVE"] or writer.error)
        finally:
            writer.stop.set()
            writer.join(10)
        assert writer.error is None, writer.error
        assert writer.statuses[0] == "CREATING", writer.statuses  # C knew of B before it was ACTIVE
        assert writer.statuses[-1] == "ACTIVE"
        # Before healing: B holds C's early writes, which A has never seen.
        assert _get(ddb[B], name, "early-00") is not None and _get(ddb[A], name, "early-00") is None
        assert _get(ddb[B], name, "old-000007") is None
    finally:
        control.link_heal(C, A, one_way=True)
    _wait("B ACTIVE everywhere", lambda: _active_everywhere(ddb, name, REGIONS))
    identical, differing = control.verify(name, timeout_s=45)
    assert identical, differing[:20]
    for region in REGIONS:
        assert _get(ddb[region], name, f"during-{writer.written - 1:05d}") is not None
        assert _get(ddb[region], name, "old-000007") is None


def test_delete_table_in_one_region_removes_only_that_replica(cluster, ddb, control):
    name = unique_table_name("leave")
    _create(ddb[A], name)
    _add_replica(ddb, name, A, B)
    _wait("B ACTIVE", lambda: _active_everywhere(ddb, name, (A, B)))
    _add_replica(ddb, name, A, C)
    _wait("C ACTIVE", lambda: _active_everywhere(ddb, name, REGIONS))
    deleted = ddb[B].delete_table(TableName=name)["TableDescription"]
    assert deleted["TableStatus"] == "DELETING"
    with pytest.raises(ddb[B].exceptions.ResourceNotFoundException):
        ddb[B].describe_table(TableName=name)
    for region, other in ((A, C), (C, A)):
        _wait(f"{region} forgets B", lambda r=region, o=other: _replicas(ddb[r], name) == {o: "ACTIVE"})
        assert ddb[region].describe_table(TableName=name)["Table"]["GlobalTableVersion"] == "2019.11.21"
    # Replication to B stopped: A's changes now go to C only.
    sent_before = control.call(A, {"command": "show"})["statistics"]["changes_sent"]
    for i in range(20):
        ddb[A].put_item(TableName=name, Item={"pk": {"S": f"after-{i}"}})
    _wait("the writes in C", lambda: _get(ddb[C], name, "after-19") is not None)
    _wait("A's acks", lambda: control.call(A, {"command": "show"})["statistics"]["changes_sent"] >= sent_before + 20)
    time.sleep(1.0)  # the point: a second in which nothing more may be sent (B is gone)
    assert control.call(A, {"command": "show"})["statistics"]["changes_sent"] == sent_before + 20
    # C's writes still reach A; B may create a table of that name again, on its own.
    ddb[C].put_item(TableName=name, Item={"pk": {"S": "from-c"}})
    _wait("C's write in A", lambda: _get(ddb[A], name, "from-c") is not None)
    _create(ddb[B], name)
    _wait("B's new table", lambda: ddb[B].describe_table(TableName=name)["Table"]["TableStatus"] == "ACTIVE")
    assert "Replicas" not in ddb[B].describe_table(TableName=name)["Table"] and _get(ddb[B], name, "from-c") is None
