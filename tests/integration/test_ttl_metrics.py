"""TimeToLiveDeletedItemCount on ``GET /metrics`` and in the console, end to end.

boto3 against ``meridian serve`` and a two-node local cluster, each with
``--ttl-interval-s 0.5``: TTL enabled with UpdateTimeToLive, items expired
by the nodes' sweepers, then the router's ``/metrics`` shows
``meridian_ttl_deleted_item_count{TableName="..."} N`` (summed over the
nodes over gRPC in the cluster) and ``/console/api/tables`` the table's TTL
attribute and the same count.
"""

from __future__ import annotations

import time
import urllib.request

import orjson
import pytest

from tests.conftest import make_client, unique_table_name
from tests.ttl_servers import ttl_endpoint
from tests.waiting import wait_until

TTL_INTERVAL_S = 0.5
EXPIRY_TIMEOUT_S = 20.0
HTTP_TIMEOUT_S = 10.0
EXPIRED = 30
KEPT = 5
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture(scope="module", params=["embedded", "cluster"])
def endpoint(request, tmp_path_factory) -> str:
    return ttl_endpoint(request, tmp_path_factory, TTL_INTERVAL_S)


def _get(url: str) -> tuple[int, str, bytes]:
    with _DIRECT.open(url, timeout=HTTP_TIMEOUT_S) as answer:
        return answer.status, answer.headers.get("Content-Type", ""), answer.read()


def _ttl_samples(endpoint: str) -> dict[str, float]:
    """``meridian_ttl_deleted_item_count`` per TableName, as a Prometheus scraper reads it."""
    from prometheus_client.parser import text_string_to_metric_families

    status, content_type, body = _get(endpoint + "/metrics")
    assert status == 200 and content_type.startswith("text/plain; version=0.0.4")
    families = [f for f in text_string_to_metric_families(body.decode()) if f.name == "meridian_ttl_deleted_item_count"]
    assert len(families) == 1 and families[0].type == "gauge"
    return {sample.labels["TableName"]: sample.value for sample in families[0].samples}


def _console_table(endpoint: str, name: str) -> dict:
    status, _, body = _get(endpoint + "/console/api/tables")
    assert status == 200
    (table,) = [t for t in orjson.loads(body)["tables"] if t["name"] == name]
    return table


def _create(ddb, name: str) -> None:
    ddb.create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})


def _count(ddb, name: str) -> int:
    return ddb.scan(TableName=name, ConsistentRead=True, Select="COUNT")["Count"]


def test_expired_items_are_counted_on_metrics_and_in_the_console(endpoint):
    ddb = make_client(endpoint)
    name, quiet = unique_table_name("ttl-metrics"), unique_table_name("ttl-quiet")
    _create(ddb, name)
    _create(ddb, quiet)
    assert _ttl_samples(endpoint)[name] == 0
    assert _console_table(endpoint, name)["ttl"] == {"attribute": None, "status": "DISABLED", "deleted_count": 0}

    ddb.update_time_to_live(TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires"})
    now = int(time.time())
    for i in range(EXPIRED):  # spread over both nodes of the cluster
        ddb.put_item(TableName=name, Item={"id": {"S": f"old-{i}"}, "expires": {"N": str(now - 60)}})
    for i in range(KEPT):
        ddb.put_item(TableName=name, Item={"id": {"S": f"new-{i}"}, "expires": {"N": str(now + 3600)}})
    ddb.put_item(TableName=quiet, Item={"id": {"S": "a"}, "expires": {"N": str(now - 60)}})  # TTL off: stays
    wait_until(lambda: _count(ddb, name) == KEPT, EXPIRY_TIMEOUT_S, 0.2, "the expired items to be deleted")

    # Each delete is counted in its own write batch: the count is there as soon as the item is gone.
    samples = _ttl_samples(endpoint)
    assert samples[name] == EXPIRED
    assert samples[quiet] == 0
    assert _console_table(endpoint, name)["ttl"] == {
        "attribute": "expires", "status": "ENABLED", "deleted_count": EXPIRED,
    }  # fmt: skip
    assert _console_table(endpoint, quiet)["ttl"]["deleted_count"] == 0
    # Nothing more expires during a few sweeps: the count stays.
    time.sleep(4 * TTL_INTERVAL_S)
    assert _ttl_samples(endpoint)[name] == EXPIRED

    ddb.delete_table(TableName=name)
    wait_until(lambda: name not in _ttl_samples(endpoint), EXPIRY_TIMEOUT_S, 0.2, "the deleted table to leave /metrics")
