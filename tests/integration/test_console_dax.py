"""The console's DAX panel: each DAX node's cache hit rates, bytes, connections and requests (issue 16).

``GET /console/api/dax`` answers, per DAX node of the router, its cumulative
CloudWatch figures (``router/dax/front.py``'s ``statistics()``, the same
counters as ``/metrics``) shaped for a person: hits, misses and hit rate per
cache, cached and evicted bytes, connections, requests per method.  Checked
on ``meridian serve --dax-port`` with the published Python DAX client
(``amazon-dax-client``) making the reads: the JSON after known reads, against
``/metrics``; a router without DAX; and the panel in chromium
(``test_console.py``'s browser fixtures), its hit count growing as DAX reads hit.
"""

from __future__ import annotations

import re
import urllib.request

import boto3
import pytest

from meridian.cluster.procs import ManagedProcess, free_port, wait_for_http_ok, wait_for_port
from tests.integration.test_console import UI_TIMEOUT_MS, _get
from tests.integration.test_console import browser, embedded, page  # noqa: F401 - fixtures used below

amazondax = pytest.importorskip("amazondax")

REGION = "us-east-1"


@pytest.fixture(scope="module")
def serve_dax(tmp_path_factory):
    """``meridian serve --dax-port``: one DAX node in the router's process."""
    folder = tmp_path_factory.mktemp("console-dax")
    http_port, dax_port = free_port(), free_port()
    process = ManagedProcess(
        ["serve", "--host", "127.0.0.1", "--port", str(http_port), "--in-memory", "--dax-port", str(dax_port)],
        log_path=folder / "serve.log", name="serve-console-dax",
    )  # fmt: skip
    try:
        wait_for_http_ok(f"http://127.0.0.1:{http_port}/health", 60, process=process)
        wait_for_port("127.0.0.1", dax_port, 60, process=process)
        yield {"http": f"http://127.0.0.1:{http_port}", "dax": f"dax://127.0.0.1:{dax_port}"}
    finally:
        process.terminate()


@pytest.fixture(scope="module")
def dax(serve_dax):
    client = amazondax.AmazonDaxClient(endpoint_url=serve_dax["dax"], region_name=REGION,
                                       aws_access_key_id="test", aws_secret_access_key="test")  # fmt: skip
    yield client
    client.close()


def _ddb(endpoint: str):
    return boto3.client("dynamodb", endpoint_url=endpoint, region_name=REGION,
                        aws_access_key_id="test", aws_secret_access_key="test")  # fmt: skip


def _create(ddb, name: str) -> None:
    ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])  # fmt: skip


def _node(endpoint: str) -> dict:
    status, answer = _get(endpoint + "/console/api/dax")
    assert status == 200, answer
    assert answer["configured"] is True and answer["truncated"] is False, answer
    nodes = [node for cluster in answer["clusters"] for node in cluster["nodes"]]
    assert len(nodes) == 1, answer
    return nodes[0]


def _metric(endpoint: str, name: str) -> float:
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(endpoint + "/metrics", timeout=10) as answer:
        text = answer.read().decode()
    found = re.search(rf"^{name}{{[^}}]*}} (\S+)$", text, re.MULTILINE)
    assert found, (name, text)
    return float(found.group(1))


def test_dax_api_without_dax(embedded):  # noqa: F811
    status, answer = _get(embedded + "/console/api/dax")
    assert status == 200, answer
    assert answer["configured"] is False and answer["clusters"] == [] and answer["truncated"] is False
    assert answer["region"] and isinstance(answer["t"], float)


def test_dax_api_counts_hits_and_misses(serve_dax, dax):
    ddb = _ddb(serve_dax["http"])
    table = "console-dax-api"
    _create(ddb, table)
    before = _node(serve_dax["http"])
    assert before["url"] == serve_dax["dax"] and before["role"] == "leader"
    assert before["capacity_bytes"] > 0 and before["record_ttl_ms"] > 0 and before["query_ttl_ms"] > 0

    dax.put_item(TableName=table, Item={"pk": {"S": "written"}, "v": {"N": "1"}})  # write-through: cached
    dax.get_item(TableName=table, Key={"pk": {"S": "nothing"}})  # a miss (then a negative entry)
    for _ in range(5):
        dax.get_item(TableName=table, Key={"pk": {"S": "written"}})  # hits
    dax.get_item(TableName=table, Key={"pk": {"S": "nothing"}})  # a hit on the negative entry
    dax.get_item(TableName=table, Key={"pk": {"S": "written"}}, ConsistentRead=True)  # passes through
    dax.query(TableName=table, KeyConditionExpression="pk = :k", ExpressionAttributeValues={":k": {"S": "written"}})
    dax.query(TableName=table, KeyConditionExpression="pk = :k", ExpressionAttributeValues={":k": {"S": "written"}})

    node = _node(serve_dax["http"])
    item, query = node["item_cache"], node["query_cache"]
    assert item["hits"] - before["item_cache"]["hits"] == 6, node
    assert item["misses"] - before["item_cache"]["misses"] == 1, node
    assert item["hit_rate"] == item["hits"] / (item["hits"] + item["misses"])
    assert (query["query"]["hits"] - before["query_cache"]["query"]["hits"],
            query["query"]["misses"] - before["query_cache"]["query"]["misses"]) == (1, 1), node  # fmt: skip
    assert query["hits"] == query["query"]["hits"] + query["scan"]["hits"]
    assert node["requests"]["GetItem"] - before["requests"].get("GetItem", 0) == 8, node
    assert node["requests"]["PutItem"] - before["requests"].get("PutItem", 0) == 1, node
    assert node["requests"]["Query"] - before["requests"].get("Query", 0) == 2, node
    assert node["connections"] >= 1  # the client keeps its connections open
    assert node["cached_bytes"] > 0 and 0 < node["memory_utilization_percent"] < 100
    assert node["statistics"]["ItemCacheHits"] == item["hits"]
    # The same counters as /metrics.
    assert _metric(serve_dax["http"], "meridian_dax_item_cache_hits_total") == item["hits"]
    assert _metric(serve_dax["http"], "meridian_dax_item_cache_misses_total") == item["misses"]


def _hits_shown(page, card: str) -> int:  # noqa: F811
    return int(page.locator(f'{card} .dax-cache[data-cache="item"] .hits').text_content().replace(",", ""))


def test_dax_panel_hit_count_grows(serve_dax, dax, page, tmp_path):  # noqa: F811
    ddb = _ddb(serve_dax["http"])
    table = "console-dax-panel"
    _create(ddb, table)
    ddb.put_item(TableName=table, Item={"pk": {"S": "hot"}, "v": {"S": "x" * 100}})
    node = _node(serve_dax["http"])
    page.goto(serve_dax["http"] + "/console")
    page.wait_for_function("() => document.getElementById('status').dataset.state === 'live'", timeout=UI_TIMEOUT_MS)
    card = f'.dax-cluster[data-cluster="{node["cluster"]}"] .dax-node[data-node="{node["node_id"]}"]'
    page.locator(card).wait_for(timeout=UI_TIMEOUT_MS)
    assert page.locator("#dax-off").is_hidden()
    assert page.locator(f"{card} .dax-url").text_content() == serve_dax["dax"]
    assert page.locator(f"{card} .badge.role").text_content() == "leader"
    shown = _hits_shown(page, card)
    assert shown <= _node(serve_dax["http"])["item_cache"]["hits"]

    # A miss (the item was written directly, not through DAX), then hits.
    for _ in range(25):
        assert dax.get_item(TableName=table, Key={"pk": {"S": "hot"}})["Item"]["v"] == {"S": "x" * 100}
    expected = _node(serve_dax["http"])["item_cache"]["hits"]
    assert expected >= shown + 24
    page.wait_for_function("([sel, n]) => Number(document.querySelector(sel).textContent.replace(/,/g, '')) >= n",
                           arg=[f'{card} .dax-cache[data-cache="item"] .hits', expected], timeout=UI_TIMEOUT_MS)  # fmt: skip
    assert re.fullmatch(r"\d+\.\d %", page.locator(f'{card} .dax-cache[data-cache="item"] .hit-rate').text_content())
    assert page.locator(f'{card} .methods li[data-method="GetItem"] .n').text_content() != ""
    page.wait_for_function("sel => Number(document.querySelector(sel).dataset.points) >= 2",
                           arg=f"{card} canvas", timeout=UI_TIMEOUT_MS)  # fmt: skip
    page.screenshot(path=str(tmp_path / "console-dax.png"), full_page=True)


def test_dax_panel_without_dax(embedded, page):  # noqa: F811
    page.goto(embedded + "/console")
    page.wait_for_function("() => document.getElementById('status').dataset.state === 'live'", timeout=UI_TIMEOUT_MS)
    page.locator("#dax-off").wait_for(state="visible", timeout=UI_TIMEOUT_MS)
    assert "--dax-port" in page.locator("#dax-off").text_content()
    assert page.locator(".dax-node").count() == 0
