"""Scan across a 3-node cluster: every item exactly once, whatever the paging.

2,000 items of about 2 KB spread over the three nodes (checked with the
router's own ring over the node ids ``LocalCluster`` gives it), so a full
Scan is several 1 MB pages, each merged from three nodes' streams.  Pages
by 1 MB, pages by ``Limit``, parallel segments (each paged too) and
``Select=COUNT`` must all see each item exactly once, in one order.
"""

from __future__ import annotations

from collections import Counter

from meridian.model.keycodec import partition_hash
from meridian.model.values import item_size
from meridian.cluster.procs import LocalCluster
from meridian.model.ring import Ring
from tests.conftest import make_client

REGION = "us-east-1"
TABLE = "spread-scan"
ITEMS = 2000
PAYLOAD_BYTES = 2000
PAGE_BYTES = 1024 * 1024


def _pages(ddb, **kwargs) -> list[dict]:
    pages = []
    while True:
        page = ddb.scan(TableName=TABLE, **kwargs)
        pages.append(page)
        if "LastEvaluatedKey" not in page:
            return pages
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _keys(pages: list[dict]) -> list[tuple[str, str]]:
    return [(item["pk"]["S"], item["sk"]["N"]) for page in pages for item in page["Items"]]


def test_scan_sees_every_item_once_across_three_nodes(tmp_path):
    with LocalCluster([REGION], 3, None, tmp_path / "cluster", sync=False) as cluster:
        ddb = make_client(cluster.endpoints[REGION])
        ddb.create_table(
            TableName=TABLE,
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                  {"AttributeName": "sk", "AttributeType": "N"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            BillingMode="PAY_PER_REQUEST",
        )
        ddb.get_waiter("table_exists").wait(TableName=TABLE, WaiterConfig={"Delay": 1, "MaxAttempts": 20})
        expected = [(f"p{i // 4}", str(i % 4)) for i in range(ITEMS)]
        for start in range(0, ITEMS, 25):
            request = {TABLE: [{"PutRequest": {"Item": {"pk": {"S": pk}, "sk": {"N": sk}, "blob": {"S": "b" * PAYLOAD_BYTES}}}}
                               for pk, sk in expected[start:start + 25]]}
            while request:
                request = ddb.batch_write_item(RequestItems=request)["UnprocessedItems"]

        node_ids = [f"{REGION}-node-{i}" for i in range(cluster.nodes_per_region)]
        ring = Ring(node_ids)
        per_node = Counter(ring.owner(partition_hash("S", pk)) for pk, _ in expected)
        assert len(per_node) == 3 and min(per_node.values()) > ITEMS // 10, per_node

        # Full pages: cut at 1 MB read, merged from every node.
        full = _pages(ddb)
        assert len(full) >= 4
        for page in full[:-1]:  # the item that crosses 1 MB is in the page
            sizes = [item_size(item) for item in page["Items"]]
            assert sum(sizes) >= PAGE_BYTES > sum(sizes[:-1])
        order = _keys(full)
        assert len(order) == ITEMS and sorted(order) == sorted(expected)

        # Pages by Limit resume at exactly the same places.
        limited = _pages(ddb, Limit=137)
        assert _keys(limited) == order
        assert all(page["Count"] == 137 for page in limited[:-1])

        # Parallel segments: disjoint, covering, each in the table's order.
        for total in (2, 3, 5):
            seen = []
            for segment in range(total):
                pages = _pages(ddb, Segment=segment, TotalSegments=total, Limit=300)
                segment_keys = _keys(pages)
                assert segment_keys == [k for k in order if k in set(segment_keys)]
                seen.extend(segment_keys)
            assert len(seen) == ITEMS and sorted(seen) == sorted(expected)

        # Counting with a filter reads everything and returns no items.
        counted = _pages(ddb, Select="COUNT", FilterExpression="sk = :z", ExpressionAttributeValues={":z": {"N": "0"}})
        assert sum(page["ScannedCount"] for page in counted) == ITEMS
        assert sum(page["Count"] for page in counted) == ITEMS // 4
        assert all("Items" not in page for page in counted)
