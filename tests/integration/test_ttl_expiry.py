"""Time to Live really expires items: boto3 against ``meridian serve`` and a
local cluster, each with ``--ttl-interval-s 0.5``.

TTL is enabled with UpdateTimeToLive; the nodes' sweepers (``node/ttl.py``)
then delete the items whose TTL attribute is a past Number of epoch seconds
(not more than five years past), and leave every other item alone.
"""

from __future__ import annotations

import time

import pytest

from tests.conftest import make_client
from tests.ttl_servers import ttl_endpoint
from tests.waiting import wait_until

TTL_INTERVAL_S = 0.5
EXPIRY_TIMEOUT_S = 20.0
FIVE_YEARS_S = 5 * 365 * 24 * 3600


@pytest.fixture(scope="module", params=["embedded", "cluster"])
def endpoint(request, tmp_path_factory) -> str:
    return ttl_endpoint(request, tmp_path_factory, TTL_INTERVAL_S)


def _create(ddb, name: str) -> None:
    ddb.create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})


def _ids(ddb, name: str) -> set[str]:
    return {item["id"]["S"] for item in ddb.scan(TableName=name, ConsistentRead=True)["Items"]}


def test_expired_items_are_deleted_and_the_rest_kept(endpoint):
    ddb = make_client(endpoint)
    name = f"ttl-{int(time.time() * 1000)}"
    _create(ddb, name)
    ddb.update_time_to_live(TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires"})
    now = int(time.time())
    items = {
        "past": {"N": str(now - 60)},
        "past-fraction": {"N": f"{now - 30}.5"},
        "four-years-ago": {"N": str(now - FIVE_YEARS_S + 86400)},
        "six-years-ago": {"N": str(now - FIVE_YEARS_S - 86400)},
        "future": {"N": str(now + 3600)},
        "string": {"S": str(now - 60)},
        "list": {"L": [{"N": str(now - 60)}]},
    }
    for i, (key, expires) in enumerate(items.items()):
        ddb.put_item(TableName=name, Item={"id": {"S": key}, "expires": expires, "n": {"N": str(i)}})
    ddb.put_item(TableName=name, Item={"id": {"S": "no-attribute"}, "other": {"N": str(now - 60)}})
    # Many items on every node, all expired: the sweep deletes them all, in chunks.
    for i in range(40):
        ddb.put_item(TableName=name, Item={"id": {"S": f"bulk-{i}"}, "expires": {"N": str(now - 1)}})

    kept = {"six-years-ago", "future", "string", "list", "no-attribute"}
    wait_until(lambda: _ids(ddb, name) == kept, EXPIRY_TIMEOUT_S, 0.2, "the expired items to be deleted")
    assert "Item" not in ddb.get_item(TableName=name, Key={"id": {"S": "past"}}, ConsistentRead=True)
    assert ddb.get_item(TableName=name, Key={"id": {"S": "future"}})["Item"]["n"] == {"N": "4"}
    assert ddb.describe_table(TableName=name)["Table"]["ItemCount"] == len(kept)
    assert ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]["AttributeName"] == "expires"


def test_an_item_written_after_expiry_with_a_new_time_stays(endpoint):
    ddb = make_client(endpoint)
    name = f"ttl-renew-{int(time.time() * 1000)}"
    _create(ddb, name)
    ddb.update_time_to_live(TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"})
    now = int(time.time())
    ddb.put_item(TableName=name, Item={"id": {"S": "a"}, "ttl": {"N": str(now - 10)}})
    wait_until(lambda: not _ids(ddb, name), EXPIRY_TIMEOUT_S, 0.2, "the item to expire")
    ddb.put_item(TableName=name, Item={"id": {"S": "a"}, "ttl": {"N": str(now + 3600)}})
    # Nothing may happen during a few sweeps: the renewed item stays.
    time.sleep(4 * TTL_INTERVAL_S)
    assert _ids(ddb, name) == {"a"}


def test_without_ttl_nothing_expires(endpoint):
    ddb = make_client(endpoint)
    name = f"ttl-off-{int(time.time() * 1000)}"
    _create(ddb, name)
    ddb.put_item(TableName=name, Item={"id": {"S": "a"}, "expires": {"N": str(int(time.time()) - 60)}})
    # Nothing may happen during a few sweeps: TTL is not enabled on this table.
    time.sleep(4 * TTL_INTERVAL_S)
    assert _ids(ddb, name) == {"a"}
