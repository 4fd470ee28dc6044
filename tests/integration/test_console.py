"""The web console at ``/console``, in a real headless browser.

Two real regions (``LocalCluster``: nodes, routers, replicators) and one
``meridian serve``; the page is loaded in chromium driven by Playwright (the
system's chromium, never a downloaded one).  Data is written with boto3 and
read back on the page; link controls are clicked on the page and checked
through the control API (``POST /meridian/control``, ``ControlClient``).

Without chromium the tests are skipped, unless ``MERIDIAN_REQUIRE_BROWSER=1``
(CI), which makes a missing browser a failure.  ``MERIDIAN_CONSOLE_SCREENSHOT``
names a file to save the cluster console's screenshot to (docs/console.png
is made so); every run saves one into the test's tmp_path.
"""

from __future__ import annotations

import os
import re
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path

import orjson
import pytest

from meridian.cluster.control_client import ControlClient
from meridian.cluster.procs import LocalCluster, ManagedProcess, free_port, wait_for_http_ok
from tests.conftest import make_client
from tests.waiting import wait_until

CHROMIUM = os.environ.get("MERIDIAN_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
A, B = "console-a", "console-b"
#: How long the page may take to show something the data already holds (it polls every 1-2 s).
UI_TIMEOUT_MS = 20_000
REPLICATION_TIMEOUT_S = 30.0
#: Text that would run script if the page ever inserted data as HTML.
XSS = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _need_browser() -> None:
    """Skip (or fail under MERIDIAN_REQUIRE_BROWSER=1) without chromium or Playwright."""
    missing = None
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        missing = f"no chromium at {CHROMIUM}"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            missing = "the playwright package is not installed"
    if missing is None:
        return
    if os.environ.get("MERIDIAN_REQUIRE_BROWSER") == "1":
        pytest.fail(f"MERIDIAN_REQUIRE_BROWSER=1 but {missing}")
    pytest.skip(missing)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """A fresh chromium (own profile directory, nothing shared with any other run)."""
    _need_browser()
    from playwright.sync_api import sync_playwright

    profile = tmp_path_factory.mktemp("chromium-profile")
    playwright = sync_playwright().start()
    try:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1000},
        )  # fmt: skip
        try:
            yield context
        finally:
            context.close()
    finally:
        playwright.stop()


@pytest.fixture
def page(browser):
    """A page that fails the test on any script error (or any page that ran injected script)."""
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield page
        assert page.evaluate("() => window.__pwned") is None, "data was rendered as HTML"
        assert errors == [], errors
    finally:
        page.close()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with LocalCluster([A, B], 1, None, tmp_path_factory.mktemp("console"), sync=False, link_latency_ms=20) as c:
        yield c


def _get(url: str) -> tuple[int, dict]:
    try:
        with _DIRECT.open(url, timeout=10) as answer:
            return answer.status, orjson.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read())


def _post(url: str, body: bytes, content_type: str = "application/json") -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": content_type})
    try:
        with _DIRECT.open(request, timeout=10) as answer:
            return answer.status, orjson.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read())


def _create_table(ddb, name: str) -> None:
    ddb.create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )


def _wait_active(ddb, name: str) -> None:
    wait_until(lambda: ddb.describe_table(TableName=name)["Table"]["TableStatus"] == "ACTIVE", REPLICATION_TIMEOUT_S,
               0.1, f"{name} and its replicas to be ACTIVE")


def _link(control: ControlClient, source: str, target: str) -> dict:
    return next(link for link in control.links() if link["source"] == source and link["target"] == target)


def _open_table(page, name: str) -> None:
    page.locator(f'#tables li[data-table="{name}"] button').click(timeout=UI_TIMEOUT_MS)
    page.wait_for_function(
        "name => document.getElementById('table-title').textContent === 'Items of ' + name", arg=name, timeout=UI_TIMEOUT_MS
    )


def _cell_texts(page) -> list[str]:
    return page.locator("#items tbody td").all_text_contents()


def test_console_on_a_two_region_cluster(cluster, page, tmp_path):
    endpoint = cluster.endpoints[A]
    ddb_a, ddb_b = make_client(endpoint), make_client(cluster.endpoints[B])
    control = ControlClient(endpoint)
    page.goto(endpoint + "/console")
    page.wait_for_function("() => document.getElementById('status').dataset.state === 'live'", timeout=UI_TIMEOUT_MS)
    assert page.locator("#region").text_content() == A
    assert page.locator("#regions").text_content() == f"{A}, {B}"
    assert page.locator("#replication-off").is_hidden()

    # A table created through boto3 appears in the list; its item on the page, escaped.
    table = "console-orders"
    _create_table(ddb_a, table)
    page.locator(f'#tables li[data-table="{table}"]').wait_for(timeout=UI_TIMEOUT_MS)
    ddb_a.put_item(TableName=table, Item={"pk": {"S": "order-1"}, "note": {"S": XSS}, "qty": {"N": "7"}})
    _open_table(page, table)
    page.locator("#items tbody tr").first.wait_for(timeout=UI_TIMEOUT_MS)
    cells = _cell_texts(page)
    assert "order-1" in cells and XSS in cells and "7" in cells
    assert page.locator("#items img, #items script").count() == 0

    # A replica, writes in both regions: a latency point for each direction.
    ddb_a.update_table(TableName=table, ReplicaUpdates=[{"Create": {"RegionName": B}}])
    _wait_active(ddb_a, table)
    _wait_active(ddb_b, table)
    ab, ba = f'.pair[data-pair="{A}>{B}"]', f'.pair[data-pair="{B}>{A}"]'
    page.locator(ab).wait_for(timeout=UI_TIMEOUT_MS)
    writer = _Writer(ddb_a, ddb_b, table)

    def points(card: str) -> int:
        return int(page.locator(f"{card} canvas").get_attribute("data-points"))

    writer.until(lambda: points(ab) >= 2 and points(ba) >= 2, "no replication latency series appeared")
    for card in (ab, ba):
        last = page.locator(f"{card} .last-ms").text_content()
        assert re.fullmatch(r"\d+(\.\d)?", last), last
        # One-way link latency is 20 ms: a replicated change cannot arrive sooner.
        assert float(last) >= 20, last
        assert "changes" in page.locator(f"{card} .cumulative").text_content()
    assert page.locator("#latency-table tbody tr").count() == 2

    # Set latency and jitter through the page; the replicators have them.
    page.locator(f'{ab} input[name="latency_ms"]').fill("35")
    page.locator(f'{ab} input[name="jitter_ms"]').fill("10")
    page.locator(f'{ab} button[data-action="set"]').click()
    page.wait_for_function(
        "sel => document.querySelector(sel + ' .conditions').textContent.startsWith('latency 35 ms · jitter 10 ms')",
        arg=ab, timeout=UI_TIMEOUT_MS,
    )  # fmt: skip
    for source, target in ((A, B), (B, A)):
        link = _link(control, source, target)
        assert (link["latency_ms"], link["jitter_ms"]) == (35, 10), link
    writer.run_for(3.0)

    # Cut, both ways: shown cut, and cut for the replicators; then heal.
    page.locator(f'{ab} button[data-action="cut"]').click()
    page.locator(f'{ab}[data-state="cut"]').wait_for(timeout=UI_TIMEOUT_MS)
    page.locator(f'{ba}[data-state="cut"]').wait_for(timeout=UI_TIMEOUT_MS)
    assert _link(control, A, B)["cut"] and _link(control, B, A)["cut"]
    ddb_a.put_item(TableName=table, Item={"pk": {"S": "during-cut"}})
    writer.run_for(3.0)  # a few seconds of cut on the charts and the timeline
    page.locator(f'{ab} button[data-action="heal"]').click()
    page.locator(f'{ab}[data-state="up"]').wait_for(timeout=UI_TIMEOUT_MS)
    page.locator(f'{ba}[data-state="up"]').wait_for(timeout=UI_TIMEOUT_MS)
    assert not _link(control, A, B)["cut"] and not _link(control, B, A)["cut"]
    writer.run_for(4.0)

    # The timeline lists every control event, as the replicators recorded them.
    page.locator('#events li[data-command="link-heal"]').nth(1).wait_for(timeout=UI_TIMEOUT_MS)
    recorded = [(e["region"], e["command"]) for e in control.events()]
    assert recorded.count((A, "link-cut")) == recorded.count((B, "link-cut")) == 1
    listed = [
        (li.get_attribute("data-region"), li.get_attribute("data-command"))
        for li in page.locator("#events li").all()
    ]
    assert sorted(listed) == sorted(recorded)
    assert page.locator('#timeline circle.marker[data-command="link-cut"]').count() == 2
    assert page.locator("#timeline rect.cut-bar").count() == 2
    page.screenshot(path=str(tmp_path / "console.png"), full_page=True)
    if os.environ.get("MERIDIAN_CONSOLE_SCREENSHOT"):
        shutil.copyfile(tmp_path / "console.png", os.environ["MERIDIAN_CONSOLE_SCREENSHOT"])
    assert (tmp_path / "console.png").stat().st_size > 10_000

    # The other router's console: the same table, with what A wrote during the cut.
    page.goto(cluster.endpoints[B] + "/console")
    page.wait_for_function("b => document.getElementById('region').textContent === b", arg=B, timeout=UI_TIMEOUT_MS)
    _open_table(page, table)
    assert page.locator(f'#tables li[data-table="{table}"] .chip').all_text_contents() == [A]
    assert _find_on_pages(page, "during-cut"), "the item written during the cut never showed in the other region"


class _Writer:
    """Writes to both regions, a put each every ``WRITE_INTERVAL_S``, while the test waits."""

    WRITE_INTERVAL_S = 0.1

    def __init__(self, ddb_a, ddb_b, table: str) -> None:
        self._clients, self._table, self._n = (ddb_a, ddb_b), table, 0

    def _write(self) -> None:
        for prefix, ddb in zip("ab", self._clients):
            ddb.put_item(TableName=self._table, Item={"pk": {"S": f"{prefix}-{self._n % 40}"}, "v": {"N": str(self._n)}})
        self._n += 1
        time.sleep(self.WRITE_INTERVAL_S)  # the writer's pace, not a wait: ``until`` polls the condition

    def until(self, condition, message: str) -> None:
        deadline = time.monotonic() + REPLICATION_TIMEOUT_S
        while not condition():
            assert time.monotonic() < deadline, message
            self._write()

    def run_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self._write()


def _find_on_pages(page, text: str, pages_max: int = 20) -> bool:
    """Whether a cell shows ``text`` on some page of the open table (Next until the last)."""
    for _ in range(pages_max):
        page.locator("#items tbody tr").first.wait_for(timeout=UI_TIMEOUT_MS)
        if text in _cell_texts(page):
            return True
        following = page.locator("#items-next")
        if following.is_disabled():
            return False
        shown = page.locator("#items-page").text_content()
        following.click()
        page.wait_for_function(
            "shown => document.getElementById('items-page').textContent !== shown", arg=shown, timeout=UI_TIMEOUT_MS
        )
    return False


def test_console_api_on_a_cluster(cluster):
    """The JSON API's refusals, and the link controls' checks, without a browser."""
    endpoint = cluster.endpoints[A]
    status, state = _get(endpoint + "/console/api/replication")
    assert status == 200 and state["configured"] and state["regions"] == [A, B]
    assert {(link["source"], link["target"]) for link in state["links"]} == {(A, B), (B, A)}
    for body, message in (
        ({"action": "explode", "source": A, "target": B}, "action must be one of"),
        ({"action": "cut", "source": A, "target": A}, "two different regions"),
        ({"action": "cut", "source": A, "target": "nowhere"}, "two different regions"),
        ({"action": "set", "source": A, "target": B}, "set needs"),
        ({"action": "set", "source": A, "target": B, "loss": "lots"}, "loss must be a number"),
        ({"action": "set", "source": A, "target": B, "loss": 7}, "loss"),  # the replicator refuses it
    ):
        status, answer = _post(endpoint + "/console/api/link", orjson.dumps(body))
        assert status == 400 and message in answer["message"], (body, answer)
    status, answer = _post(endpoint + "/console/api/link", b"{}", content_type="text/plain")
    assert status == 415
    status, answer = _post(endpoint + "/console/api/link", b"not json")
    assert status == 400 and answer["message"] == "the body is not JSON"
    # A one-way change touches one direction only.
    before = {(link["source"], link["target"]): link["jitter_ms"] for link in state["links"]}
    status, state = _post(
        endpoint + "/console/api/link",
        orjson.dumps({"action": "set", "source": B, "target": A, "jitter_ms": 3, "one_way": True}),
    )
    assert status == 200
    jitter = {(link["source"], link["target"]): link["jitter_ms"] for link in state["links"]}
    assert jitter == {(B, A): 3, (A, B): before[(A, B)]}
    restore = {"action": "set", "source": B, "target": A, "jitter_ms": before[(B, A)], "one_way": True}
    assert _post(endpoint + "/console/api/link", orjson.dumps(restore))[0] == 200


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    """``meridian serve``: no replicator."""
    folder = tmp_path_factory.mktemp("console-serve")
    port = free_port()
    process = ManagedProcess(
        ["serve", "--host", "127.0.0.1", "--port", str(port), "--in-memory"], log_path=folder / "serve.log", name="serve"
    )
    try:
        wait_for_http_ok(f"http://127.0.0.1:{port}/health", 60, process=process)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()


def test_console_on_meridian_serve(embedded, page):
    ddb = make_client(embedded)
    table = "console-embedded"
    _create_table(ddb, table)
    attribute = "<b>odd name</b>"
    for start in range(0, 30, 25):
        ddb.batch_write_item(RequestItems={table: [
            {"PutRequest": {"Item": {"pk": {"S": f"item-{i:02d}"}, attribute: {"S": XSS}, "n": {"N": str(i)}}}}
            for i in range(start, min(30, start + 25))
        ]})  # fmt: skip
    page.goto(embedded + "/console")
    notice = page.locator("#replication-off")
    notice.wait_for(timeout=UI_TIMEOUT_MS)
    assert "Replication is not configured" in notice.text_content()
    assert page.locator(".pair").count() == 0

    # 30 items: a page of 25, the next of 5, and back; nothing lost or repeated.
    _open_table(page, table)
    page.locator("#items tbody tr").nth(24).wait_for(timeout=UI_TIMEOUT_MS)
    first = page.locator("#items tbody tr td:first-child").all_text_contents()
    assert len(first) == 25 and page.locator("#items-next").is_enabled() and page.locator("#items-prev").is_disabled()
    assert attribute in page.locator("#items thead th").all_text_contents()
    assert page.locator("#items b, #items img, #items script").count() == 0
    page.locator("#items-next").click()
    page.wait_for_function("() => document.querySelectorAll('#items tbody tr').length === 5", timeout=UI_TIMEOUT_MS)
    second = page.locator("#items tbody tr td:first-child").all_text_contents()
    assert sorted(first + second) == [f"item-{i:02d}" for i in range(30)]
    assert page.locator("#items-next").is_disabled()
    page.locator("#items-prev").click()
    page.wait_for_function("() => document.querySelectorAll('#items tbody tr').length === 25", timeout=UI_TIMEOUT_MS)
    assert page.locator("#items tbody tr td:first-child").all_text_contents() == first

    # A row opens the whole item, as text.
    page.locator("#items tbody tr").first.click()
    detail = orjson.loads(page.locator("#item-detail").text_content())
    assert detail[attribute] == {"S": XSS} and detail["pk"]["S"] == first[0]


def test_console_api_on_meridian_serve(embedded):
    status, answer = _get(embedded + "/console/api/overview")
    assert status == 200 and answer["replication"] is False and answer["nodes"] == 1
    status, answer = _get(embedded + "/console/api/replication")
    assert status == 200 and answer["configured"] is False and answer["links"] == []
    status, answer = _post(embedded + "/console/api/link", orjson.dumps({"action": "cut", "source": "a", "target": "b"}))
    assert status == 503 and "not configured" in answer["message"]
    status, answer = _get(embedded + "/console/api/items?table=absent-table")
    assert status == 400 and answer["__type"].endswith("#ResourceNotFoundException")
    status, answer = _get(embedded + "/console/api/items?table=x&limit=0")
    assert status == 400
    status, answer = _get(embedded + "/console/api/nothing-here")
    assert status == 404
    try:  # a path that only starts like the console's is not the console's
        _DIRECT.open(embedded + "/consoles", timeout=10)
        raise AssertionError("GET /consoles answered 200")
    except urllib.error.HTTPError as exc:
        assert exc.code == 404 and exc.read() == b"<UnknownOperationException/>\n"
    # Paging through the API: Limit and ExclusiveStartKey, as Scan does.
    ddb = make_client(embedded)
    _create_table(ddb, "console-paging")
    for i in range(12):
        ddb.put_item(TableName="console-paging", Item={"pk": {"S": f"k{i}"}})
    seen, start = [], None
    while True:
        query = "table=console-paging&limit=5" + (f"&start={urllib.request.quote(orjson.dumps(start).decode())}" if start else "")
        status, answer = _get(f"{embedded}/console/api/items?{query}")
        assert status == 200 and answer["count"] <= 5
        seen += [item["pk"]["S"] for item in answer["items"]]
        start = answer["last_evaluated_key"]
        if start is None:
            break
    assert sorted(seen) == sorted(f"k{i}" for i in range(12))
    # The page itself: served with a policy that forbids anything but this router.
    with _DIRECT.open(embedded + "/console", timeout=10) as answer:
        assert answer.headers["Content-Type"] == "text/html; charset=utf-8"
        assert "default-src 'none'" in answer.headers["Content-Security-Policy"]
        html = answer.read().decode()
    assert "/console/app.js" in html
    assert re.findall(r'(?:src|href)="([^"]*)"', html) == ["data:,", "/console/app.css", "/console/app.js"]
    # DynamoDB requests are untouched by the console's dispatch.
    assert ddb.describe_table(TableName="console-paging")["Table"]["ItemCount"] == 12
