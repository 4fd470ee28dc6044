"""A global secondary index on a 3-node cluster survives a node killed mid-maintenance.

Items are written, and moved between index partitions, in bursts; right
after a burst one node is SIGKILLed (by PID: its GSI maintainer is then
most likely between sending entries and recording that they arrived) and
started again on the same data.  Once writes stop, the index must converge
to the table: every item with the index key exactly once, with its current
values, and no entry for anything else.
"""

from __future__ import annotations

import random
import signal
from collections import Counter

from botocore.exceptions import ClientError

from meridian.cluster.procs import LocalCluster, wait_for_port
from tests.conftest import make_client
from tests.waiting import wait_until

REGION = "us-east-1"
TABLE = "gsi-chaos"
KEYS = 300
CONVERGE_S = 20.0


def _pages(ddb, **kwargs) -> list[dict]:
    items = []
    while True:
        page = ddb.scan(TableName=TABLE, **kwargs)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _burst(ddb, rng: random.Random, count: int) -> None:
    """Writes that land on every node; some fail while a node is down (not acknowledged: fine)."""
    for start in range(0, count, 25):
        requests = []
        for i in range(start, min(count, start + 25)):
            key = f"k{(i * 7 + rng.randrange(KEYS)) % KEYS:04d}"
            if any(r.get("key") == key for r in requests):
                continue
            item = {"id": {"S": key}, "v": {"N": str(rng.randrange(10**6))}}
            if rng.random() < 0.85:  # the rest leave (or stay out of) the index
                item["grp"] = {"S": f"g{rng.randrange(8)}"}
            requests.append({"key": key, "PutRequest": {"Item": item}})
        request = {TABLE: [{"PutRequest": r["PutRequest"]} for r in requests]}
        try:
            ddb.batch_write_item(RequestItems=request)  # unprocessed items are simply not written
        except ClientError:
            pass


def _index_matches_table(ddb) -> bool:
    table = {item["id"]["S"]: item for item in _pages(ddb) if "grp" in item}
    index = _pages(ddb, IndexName="by_grp")
    counts = Counter(item["id"]["S"] for item in index)
    if any(n != 1 for n in counts.values()) or set(counts) != set(table):
        return False
    return all(item == table[item["id"]["S"]] for item in index)


def test_gsi_converges_after_a_node_is_killed_mid_maintenance(tmp_path):
    with LocalCluster([REGION], 3, None, tmp_path / "cluster", sync=False) as cluster:
        ddb = make_client(cluster.endpoints[REGION])
        ddb.create_table(
            TableName=TABLE, BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"},
                                  {"AttributeName": "grp", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            GlobalSecondaryIndexes=[{"IndexName": "by_grp", "KeySchema": [{"AttributeName": "grp", "KeyType": "HASH"}],
                                     "Projection": {"ProjectionType": "ALL"}}],
        )
        ddb.get_waiter("table_exists").wait(TableName=TABLE, WaiterConfig={"Delay": 1, "MaxAttempts": 20})
        rng = random.Random(11)
        _burst(ddb, rng, KEYS)
        nodes = cluster.nodes[REGION]
        for victim in (nodes[1], nodes[2], nodes[1]):
            _burst(ddb, rng, 150)
            victim.kill(signal.SIGKILL)
            victim.wait(10)
            _burst(ddb, rng, 100)  # the other nodes keep sending entries to the dead one
            victim.restart()
            host, port = cluster.node_addresses[REGION][nodes.index(victim)].rsplit(":", 1)
            wait_for_port(host, int(port), 30, process=victim)

        # ClientError: the router may still be reconnecting to a restarted node.
        wait_until(lambda: _index_matches_table(ddb), CONVERGE_S, 0.2, "the index to converge to the table",
                   ignoring=(ClientError,))
        indexed = _pages(ddb, IndexName="by_grp")
        assert len(indexed) > KEYS // 2  # the check above is not vacuous
        assert ddb.describe_table(TableName=TABLE)["Table"]["GlobalSecondaryIndexes"][0]["ItemCount"] == len(indexed)
