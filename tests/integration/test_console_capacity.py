"""The console's capacity panel: consumed vs provisioned units and throttle events per table (issue 15).

``GET /console/api/capacity`` answers, per table, the router's cumulative
counters (``router/throttle.py``: units consumed, requests throttled) beside
the table's provisioned units or on-demand maxima; the page turns them into
per-second series and draws them.  Checked on ``meridian serve`` (no
replicator): the JSON to the unit after known reads and writes and after a
throttle, against ``/metrics`` (the same counters); with ``--no-throttling``;
and the panel in chromium (``test_console.py``'s browser and server
fixtures), a throttled table's chart showing its throttle events.
"""

from __future__ import annotations

import re
import urllib.request

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from meridian.cluster.procs import ManagedProcess, free_port, wait_for_http_ok
from meridian.model import limits
from tests.integration.test_console import UI_TIMEOUT_MS, _get
from tests.integration.test_console import browser, embedded, page  # noqa: F401 - fixtures used below

#: Writes to a 1-WCU table before it must throttle: its five minutes of burst, plus slack for the rate.
WRITES_BEFORE_THROTTLE_MAX = int(limits.THROUGHPUT_BURST_S) * 2


def _client(endpoint: str):
    """boto3 without retries: a throttled call raises at once, and is counted once."""
    return boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="x",
                        aws_secret_access_key="x", config=Config(retries={"mode": "standard", "total_max_attempts": 1}))


def _create(ddb, name: str, **mode) -> None:
    ddb.create_table(TableName=name, AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}], **mode)


PROVISIONED_1 = {"BillingMode": "PROVISIONED", "ProvisionedThroughput": {"ReadCapacityUnits": 1, "WriteCapacityUnits": 1}}


def _row(endpoint: str, name: str) -> dict:
    status, answer = _get(endpoint + "/console/api/capacity")
    assert status == 200, answer
    rows = [row for row in answer["tables"] if row["name"] == name]
    assert len(rows) == 1, answer
    return rows[0]


def _write_until_throttled(ddb, table: str, prefix: str) -> int:
    """Puts (each under 1 KB: one unit) until the table throttles one; how many passed."""
    for i in range(WRITES_BEFORE_THROTTLE_MAX):
        try:
            ddb.put_item(TableName=table, Item={"pk": {"S": f"{prefix}-{i}"}})
        except ClientError as err:
            assert err.response["Error"]["Code"] == "ProvisionedThroughputExceededException", err.response
            return i
    raise AssertionError(f"{table} never throttled in {WRITES_BEFORE_THROTTLE_MAX} writes")


def _metric(endpoint: str, name: str, table: str) -> float:
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(endpoint + "/metrics", timeout=10) as answer:
        text = answer.read().decode()
    found = re.search(rf'^{name}{{TableName="{re.escape(table)}"}} (\S+)$', text, re.MULTILINE)
    assert found, (name, table, text)
    return float(found.group(1))


def test_capacity_api_counts_units_and_throttles(embedded):  # noqa: F811
    ddb = _client(embedded)
    table, on_demand = "capacity-provisioned", "capacity-on-demand"
    _create(ddb, table, **PROVISIONED_1)
    _create(ddb, on_demand, BillingMode="PAY_PER_REQUEST", OnDemandThroughput={"MaxReadRequestUnits": 1})

    status, answer = _get(embedded + "/console/api/capacity")
    assert status == 200 and answer["throttling"] is True and answer["truncated"] is False
    assert answer["region"] and isinstance(answer["t"], float)
    assert _row(embedded, table) == {
        "name": table, "billing_mode": "PROVISIONED",
        "provisioned_read_units": 1, "provisioned_write_units": 1, "max_read_units": None, "max_write_units": None,
        "consumed_read_units": 0.0, "consumed_write_units": 0.0, "read_throttle_events": 0, "write_throttle_events": 0,
        "contributor_insights": False,
    }  # fmt: skip
    row = _row(embedded, on_demand)
    assert row["billing_mode"] == "PAY_PER_REQUEST"
    assert (row["provisioned_read_units"], row["provisioned_write_units"]) == (None, None)
    assert (row["max_read_units"], row["max_write_units"]) == (1, None)

    # Known charges: a put under 1 KB is one write unit; an eventually consistent
    # get half a read unit, a strongly consistent one a whole unit.
    for i in range(10):
        ddb.put_item(TableName=table, Item={"pk": {"S": f"k{i}"}})
    for i in range(4):
        ddb.get_item(TableName=table, Key={"pk": {"S": f"k{i}"}})
    ddb.get_item(TableName=table, Key={"pk": {"S": "k0"}}, ConsistentRead=True)
    row = _row(embedded, table)
    assert (row["consumed_write_units"], row["consumed_read_units"]) == (10.0, 3.0), row
    assert (row["write_throttle_events"], row["read_throttle_events"]) == (0, 0), row

    # Past the burst: one throttled put, counted once; it consumed nothing.
    passed = _write_until_throttled(ddb, table, "burst")
    assert passed >= limits.THROUGHPUT_BURST_S - 10  # the burst went to the 10 puts above and these
    row = _row(embedded, table)
    assert row["write_throttle_events"] == 1 and row["read_throttle_events"] == 0, row
    assert row["consumed_write_units"] == 10.0 + passed, (row, passed)
    # The same counters as /metrics.
    assert _metric(embedded, "meridian_write_throttle_events_total", table) == 1
    assert _metric(embedded, "meridian_consumed_write_capacity_units_total", table) == row["consumed_write_units"]

    # An on-demand maximum throttles reads (a ThrottlingException), counted as a read throttle.
    ddb.put_item(TableName=on_demand, Item={"pk": {"S": "hot"}})
    for _ in range(WRITES_BEFORE_THROTTLE_MAX):
        try:
            ddb.get_item(TableName=on_demand, Key={"pk": {"S": "hot"}}, ConsistentRead=True)
        except ClientError as err:
            assert err.response["Error"]["Code"] == "ThrottlingException", err.response
            break
    else:
        raise AssertionError("reads past MaxReadRequestUnits=1 were never throttled")
    row = _row(embedded, on_demand)
    assert (row["read_throttle_events"], row["write_throttle_events"]) == (1, 0), row
    assert row["consumed_read_units"] >= 1.0 and row["consumed_write_units"] == 1.0, row
    assert _row(embedded, table)["read_throttle_events"] == 0  # per table


@pytest.fixture(scope="module")
def unmetered(tmp_path_factory):
    """``meridian serve --no-throttling``: nothing metered."""
    folder = tmp_path_factory.mktemp("console-no-throttling")
    port = free_port()
    process = ManagedProcess(["serve", "--host", "127.0.0.1", "--port", str(port), "--in-memory", "--no-throttling"],
                             log_path=folder / "serve.log", name="serve-no-throttling")
    try:
        wait_for_http_ok(f"http://127.0.0.1:{port}/health", 60, process=process)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()


def test_capacity_api_without_throttling(unmetered):
    ddb = _client(unmetered)
    _create(ddb, "capacity-unmetered", **PROVISIONED_1)
    for i in range(3):
        ddb.put_item(TableName="capacity-unmetered", Item={"pk": {"S": f"k{i}"}})
    status, answer = _get(unmetered + "/console/api/capacity")
    assert status == 200 and answer["throttling"] is False
    row = _row(unmetered, "capacity-unmetered")
    assert (row["provisioned_read_units"], row["provisioned_write_units"]) == (1, 1)
    assert [row[k] for k in ("consumed_read_units", "consumed_write_units", "read_throttle_events",
                             "write_throttle_events")] == [None] * 4  # fmt: skip


def _red_pixels(page, selector: str) -> int:  # noqa: F811
    """Pixels of the throttle bars' red on a canvas (the chart really drew them): red with green
    and blue alike, so the orange limit line blended with the blue consumed line does not count."""
    return page.evaluate(
        """sel => {
            const canvas = document.querySelector(sel);
            const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
            let n = 0;
            for (let i = 0; i < data.length; i += 4) {
                if (data[i] > 180 && data[i + 1] < 130 && data[i + 2] < 130 && Math.abs(data[i + 1] - data[i + 2]) < 30
                    && data[i + 3] > 100) n++;
            }
            return n;
        }""",
        selector,
    )


def test_capacity_panel_on_meridian_serve(embedded, page, tmp_path):  # noqa: F811
    page.goto(embedded + "/console")
    page.wait_for_function("() => document.getElementById('status').dataset.state === 'live'", timeout=UI_TIMEOUT_MS)
    ddb = _client(embedded)
    table = "capacity-chart"
    _create(ddb, table, **PROVISIONED_1)
    card = f'.capacity-card[data-table="{table}"]'
    page.locator(card).wait_for(timeout=UI_TIMEOUT_MS)
    assert page.locator(f"{card} .badge.mode").text_content() == "provisioned"
    assert "provisioned 1 read / 1 write units a second" in page.locator(f"{card} .capacity-limits").text_content()

    # Reads and writes while the page polls, then past the burst: throttled writes.
    writes = f'{card} .meter[data-meter="write"]'
    for i in range(20):
        ddb.put_item(TableName=table, Item={"pk": {"S": f"k{i}"}})
        ddb.get_item(TableName=table, Key={"pk": {"S": f"k{i}"}})
    page.wait_for_function("sel => Number(document.querySelector(sel).dataset.points) >= 2",
                           arg=f"{writes} canvas", timeout=UI_TIMEOUT_MS)  # fmt: skip
    _write_until_throttled(ddb, table, "burst")
    page.wait_for_function("sel => Number(document.querySelector(sel).dataset.throttlePoints) >= 1",
                           arg=f"{writes} canvas", timeout=UI_TIMEOUT_MS)  # fmt: skip
    throttled = page.locator(f"{writes} .throttled")
    assert re.fullmatch(r"[\d,]+ throttled", throttled.text_content()) and throttled.get_attribute("data-any") == "yes"
    assert int(throttled.text_content().split()[0].replace(",", "")) == _row(embedded, table)["write_throttle_events"]
    assert _red_pixels(page, f"{writes} canvas") > 0
    reads = f'{card} .meter[data-meter="read"]'
    assert page.locator(f"{reads} .throttled").text_content() == "0 throttled"
    assert _red_pixels(page, f"{reads} canvas") == 0
    assert int(page.locator(f"{reads} canvas").get_attribute("data-points")) >= 2
    assert page.locator("#capacity-off").is_hidden()
    page.screenshot(path=str(tmp_path / "console-capacity.png"), full_page=True)


def test_contributor_insights_in_the_capacity_panel(embedded, page, tmp_path):  # noqa: F811
    """A table with Contributor Insights on shows its rules' top keys in its card:
    the hot key first among the accessed ones, and among the throttled ones once
    it is refused; a table without it shows no such section."""
    ddb = _client(embedded)
    table, plain = "capacity-insights", "capacity-no-insights"
    _create(ddb, table, **PROVISIONED_1)
    _create(ddb, plain, **PROVISIONED_1)
    ddb.update_contributor_insights(TableName=table, ContributorInsightsAction="ENABLE")
    status, answer = _get(embedded + "/console/api/capacity")
    assert status == 200
    flags = {row["name"]: row["contributor_insights"] for row in answer["tables"]}
    assert flags[table] is True and flags[plain] is False
    page.goto(embedded + "/console")
    page.wait_for_function("() => document.getElementById('status').dataset.state === 'live'", timeout=UI_TIMEOUT_MS)
    card = f'.capacity-card[data-table="{table}"]'
    page.locator(f'{card}[data-insights="yes"] .insights').wait_for(timeout=UI_TIMEOUT_MS)
    assert page.locator(f'.capacity-card[data-table="{plain}"] .insights').is_hidden()

    for i in range(30):  # one hot key, a few cold ones
        ddb.put_item(TableName=table, Item={"pk": {"S": "hot"}, "n": {"N": str(i)}})
        if i % 10 == 0:
            ddb.put_item(TableName=table, Item={"pk": {"S": f"cold-{i}"}})
    accessed = f'{card} .insight-resource[data-index=""] .insight-rule[data-rule="PKC"] .insight-key'
    page.wait_for_function("sel => { const k = document.querySelector(sel); return k && k.textContent.includes('pk = hot'); }",
                           arg=accessed, timeout=UI_TIMEOUT_MS)  # fmt: skip
    first = page.locator(accessed).first
    assert first.locator(".key-text").text_content() == "pk = hot"
    assert float(first.get_attribute("data-count")) > float(page.locator(accessed).nth(1).get_attribute("data-count"))
    throttled = f'{card} .insight-rule[data-rule="PKT"]'
    assert page.locator(f"{throttled} .insight-none").text_content() == "nothing throttled"

    for i in range(WRITES_BEFORE_THROTTLE_MAX):  # the hot key past the table's burst
        try:
            ddb.put_item(TableName=table, Item={"pk": {"S": "hot"}, "n": {"N": str(i)}})
        except ClientError as err:
            assert err.response["Error"]["Code"] == "ProvisionedThroughputExceededException", err.response
            break
    else:
        raise AssertionError(f"{table} never throttled")
    page.wait_for_function("sel => { const k = document.querySelector(sel); return k && k.textContent.includes('pk = hot'); }",
                           arg=f"{throttled} .insight-key", timeout=UI_TIMEOUT_MS)  # fmt: skip
    assert re.fullmatch(r"[\d.]+ refused", page.locator(f"{throttled} .insight-key .count").first.text_content())
    page.screenshot(path=str(tmp_path / "console-contributor-insights.png"), full_page=True)
