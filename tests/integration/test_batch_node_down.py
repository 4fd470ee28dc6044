"""A batch that meets a dead storage node answers with what it could do.

A three-node cluster loses one node (SIGKILL, by PID): BatchGetItem returns
the items of the live nodes in ``Responses`` and exactly the keys of the dead
node in ``UnprocessedKeys``; BatchWriteItem applies the writes of the live
nodes and hands back exactly the dead node's writes in ``UnprocessedItems``.
Once the node is back, retrying the unprocessed part completes the work, as
an SDK's retry loop would.

Which node owns a key is computed with the router's own ring over the node
ids ``LocalCluster`` gives its router, so the test knows the exact split.
"""

from __future__ import annotations

import signal
import time

from meridian.model.keycodec import partition_hash
from meridian.cluster.procs import LocalCluster, wait_for_port
from meridian.model.ring import Ring
from tests.conftest import make_client

REGION = "us-east-1"
RECOVERY_TIMEOUT_S = 30.0


def _retry_until_done(call, request: dict, unprocessed_member: str) -> dict:
    """Resend the unprocessed part until nothing is left; return every answer's merged Responses."""
    deadline = time.monotonic() + RECOVERY_TIMEOUT_S
    merged: dict[str, list] = {}
    while request:
        try:
            out = call(RequestItems=request)
        except Exception:  # the router may still be reconnecting to the restarted node
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
            continue
        for table, items in out.get("Responses", {}).items():
            merged.setdefault(table, []).extend(items)
        request = out[unprocessed_member]
        if request:
            assert time.monotonic() < deadline, f"still unprocessed after {RECOVERY_TIMEOUT_S} s: {request}"
            time.sleep(0.2)
    return merged


def test_batches_route_around_a_dead_node(tmp_path):
    with LocalCluster([REGION], 3, None, tmp_path / "cluster", sync=False) as cluster:
        ddb = make_client(cluster.endpoints[REGION])
        ddb.create_table(TableName="spread", AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                         KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}], BillingMode="PAY_PER_REQUEST")
        ddb.get_waiter("table_exists").wait(TableName="spread", WaiterConfig={"Delay": 1, "MaxAttempts": 20})

        ids = [f"k{i:02d}" for i in range(75)]
        for start in range(0, len(ids), 25):
            out = ddb.batch_write_item(RequestItems={"spread": [
                {"PutRequest": {"Item": {"id": {"S": k}, "v": {"S": "before"}}}} for k in ids[start:start + 25]
            ]})
            assert out["UnprocessedItems"] == {}

        node_ids = [f"{REGION}-node-{i}" for i in range(cluster.nodes_per_region)]
        ring = Ring(node_ids)
        on_victim = {k for k in ids if ring.owner(partition_hash("S", {"S": k})) == node_ids[1]}
        assert on_victim and len(on_victim) < len(ids), "the keys should spread over the nodes"

        victim = cluster.nodes[REGION][1]
        victim.kill(signal.SIGKILL)
        victim.wait(10)

        # BatchGetItem: the dead node's keys come back unprocessed, with the table's settings.
        request = {"spread": {"Keys": [{"id": {"S": k}} for k in ids], "ConsistentRead": True,
                              "ProjectionExpression": "id"}}
        out = ddb.batch_get_item(RequestItems=request, ReturnConsumedCapacity="TOTAL")
        assert {i["id"]["S"] for i in out["Responses"]["spread"]} == set(ids) - on_victim
        assert all(set(i) == {"id"} for i in out["Responses"]["spread"])
        left = out["UnprocessedKeys"]["spread"]
        assert {k["id"]["S"] for k in left["Keys"]} == on_victim
        assert left["ConsistentRead"] is True and left["ProjectionExpression"] == "id"
        assert out["ConsumedCapacity"] == [{"TableName": "spread", "CapacityUnits": float(len(ids) - len(on_victim))}]

        # BatchWriteItem: the live nodes' writes are applied, the dead node's come back as sent.
        batch = ids[:25]
        writes = [{"PutRequest": {"Item": {"id": {"S": k}, "v": {"S": "after"}}}} if i % 2 == 0
                  else {"DeleteRequest": {"Key": {"id": {"S": k}}}} for i, k in enumerate(batch)]
        out = ddb.batch_write_item(RequestItems={"spread": writes})
        expected_left = [w for w, k in zip(writes, batch) if k in on_victim]
        assert sorted(out["UnprocessedItems"]["spread"], key=repr) == sorted(expected_left, key=repr)
        live = [k for k in batch if k not in on_victim]
        assert live and expected_left
        for i, k in enumerate(batch):
            if k in on_victim:
                continue
            item = ddb.get_item(TableName="spread", Key={"id": {"S": k}}).get("Item")
            assert item == ({"id": {"S": k}, "v": {"S": "after"}} if i % 2 == 0 else None)

        # The node comes back; retrying what was unprocessed completes both batches.
        victim.restart()
        host, port = cluster.node_addresses[REGION][1].rsplit(":", 1)
        wait_for_port(host, int(port), RECOVERY_TIMEOUT_S, process=victim)
        _retry_until_done(ddb.batch_write_item, out["UnprocessedItems"], "UnprocessedItems")
        got = _retry_until_done(ddb.batch_get_item, request, "UnprocessedKeys")
        deleted = {k for i, k in enumerate(batch) if i % 2}
        assert {i["id"]["S"] for i in got["spread"]} == set(ids) - deleted
