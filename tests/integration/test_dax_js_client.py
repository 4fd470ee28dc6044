"""The published JavaScript DAX client (``@amazon-dax-sdk/client-dax``) against ``meridian serve --dax-port``.

The Python client (``test_dax_python_client.py``) is one implementation of
DAX's binary protocol; the JavaScript client is another, with its own CBOR
codec (numbers through bignumber.js, binary as Buffers), its own expression
compiler and its own cluster discovery.  One real ``meridian serve`` process
serves both its HTTP API (tables are created and every answer is checked with
boto3) and its DAX port.  ONE node script (``js/dax_client.cjs``) makes every
call through the DAX client and prints what the client parsed; each test
below checks one part of that summary against boto3's view of the same items.

The JavaScript packages come from the npm registry, installed with ``npm
install --prefix`` into ``tests/integration/.node-dax`` (gitignored) on first
use, as ``tests/compat/test_streams_clients.py`` installs the AWS SDK.  Without
``node`` or ``npm`` these tests are skipped, unless ``MERIDIAN_REQUIRE_NODE``
is set, which makes that a failure.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import boto3
import pytest

from meridian.cluster.procs import ManagedProcess, free_port, wait_for_http_ok, wait_for_port

REGION = "us-east-1"
NPM_TIMEOUT_S = 600
NODE_TIMEOUT_S = 120
SERVER_START_TIMEOUT_S = 30
LOG_TAIL_CHARS = 4000
NODE_DIR = Path(__file__).parent / ".node-dax"
NODE_SCRIPT = Path(__file__).parent / "js" / "dax_client.cjs"
#: package -> the version installed (the DAX client is pinned: it is the protocol under test).
NODE_PACKAGES = {"@amazon-dax-sdk/client-dax": "3.1.0", "@aws-sdk/client-dynamodb": "3"}
#: the script's page sizes (PAGE_LIMIT, SCAN_PAGE_LIMIT in dax_client.cjs)
QUERY_PAGE_ITEMS = 2
SCAN_PAGE_ITEMS = 3
HASH_TABLE, RANGE_TABLE = "dax_js_h", "dax_js_hr"
#: numeric range keys in sorted order: negatives and decimals exercise LexDecimal key bytes
RANGE_KEYS = ["-3", "-1.5", "0", "2", "2.5", "10", "1000"]
ODD_RANGE_KEYS = ["-3", "2.5", "1000"]

EVERY_TYPE = {
    "s": {"S": "héllo"},
    "n_int": {"N": "42"},
    "n_neg": {"N": "-17"},
    "n_dec": {"N": "3.14159"},
    "n_neg_dec": {"N": "-0.5"},
    "n_big": {"N": "123456789012345678901234567890"},
    "n_small": {"N": "0.000000000000000000000000000001"},
    "n_2_53": {"N": "9007199254740993"},
    "b": {"B": b"\x00\x01\xffbin"},
    "bool": {"BOOL": True},
    "bool_false": {"BOOL": False},
    "null": {"NULL": True},
    "ss": {"SS": ["a", "b"]},
    "ns": {"NS": ["1", "2.5", "-3"]},
    "bs": {"BS": [b"x", b"y"]},
    "m": {"M": {"inner": {"S": "v"}, "deep": {"M": {"x": {"N": "1"}}}}},
    "l": {"L": [{"S": "a"}, {"N": "2"}, {"L": [{"BOOL": False}]}]},
    "empty_m": {"M": {}},
    "empty_l": {"L": []},
}


# --- node and the DAX client ------------------------------------------------------------------
def _require_node() -> None:
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if not missing:
        return
    why = f"{' and '.join(missing)} not found"
    if os.environ.get("MERIDIAN_REQUIRE_NODE", "") not in ("", "0"):
        pytest.fail(f"MERIDIAN_REQUIRE_NODE is set but {why}")
    pytest.skip(why)


@pytest.fixture(scope="session")
def node_modules() -> Path:
    """The folder holding the DAX client and the AWS SDK it needs, installed on first use."""
    _require_node()
    modules = NODE_DIR / "node_modules"
    if not all((modules / package / "package.json").is_file() for package in NODE_PACKAGES):
        NODE_DIR.mkdir(parents=True, exist_ok=True)
        specs = [f"{package}@{version}" for package, version in NODE_PACKAGES.items()]
        done = subprocess.run(["npm", "install", "--prefix", str(NODE_DIR), "--no-audit", "--no-fund", *specs],
                              capture_output=True, text=True, timeout=NPM_TIMEOUT_S)  # fmt: skip
        assert done.returncode == 0, f"npm install failed:\n{done.stdout}\n{done.stderr}"
    return modules


# --- the server, the tables, the one run of the script ----------------------------------------
@pytest.fixture(scope="module")
def server(tmp_path_factory):
    http_port, dax_port = free_port(), free_port()
    log = tmp_path_factory.mktemp("dax-js") / "serve.log"
    process = ManagedProcess(
        ["serve", "--in-memory", "--port", str(http_port), "--dax-port", str(dax_port), "--no-throttling"],
        log_path=log, name="serve-dax-js",
    )
    try:
        wait_for_http_ok(f"http://127.0.0.1:{http_port}/health", SERVER_START_TIMEOUT_S, process=process)
        wait_for_port("127.0.0.1", dax_port, SERVER_START_TIMEOUT_S, process=process)
        # The JS client resolves seed hosts with dns.resolve: give it the IP literal.
        yield {"http": f"http://127.0.0.1:{http_port}", "dax": f"dax://127.0.0.1:{dax_port}", "log": log}
    finally:
        process.terminate()


@pytest.fixture(scope="module")
def ddb(server):
    client = boto3.client("dynamodb", endpoint_url=server["http"], region_name=REGION,
                          aws_access_key_id="test", aws_secret_access_key="test")  # fmt: skip
    for name, keys, defs in (
        (HASH_TABLE, [("pk", "HASH")], [("pk", "S")]),
        (RANGE_TABLE, [("pk", "HASH"), ("sk", "RANGE")], [("pk", "S"), ("sk", "N")]),
    ):
        client.create_table(
            TableName=name, BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": a, "KeyType": t} for a, t in keys],
            AttributeDefinitions=[{"AttributeName": a, "AttributeType": t} for a, t in defs],
        )
    return client


def _to_js(value):
    """boto3's values -> the plan's JSON (binary as {"base64": ...}, which the script turns into Buffers)."""
    if isinstance(value, bytes):
        return {"base64": base64.b64encode(value).decode()}
    if isinstance(value, dict):
        return {k: _to_js(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_js(v) for v in value]
    return value


def _log_tail(server) -> str:
    return server["log"].read_text(errors="replace")[-LOG_TAIL_CHARS:]


@pytest.fixture(scope="module")
def summary(node_modules, server, ddb) -> dict:
    """What the DAX client answered to every call, as the script printed it (binary as {"base64": ...})."""
    plan = {"endpoint": server["dax"], "hashTable": HASH_TABLE, "rangeTable": RANGE_TABLE,
            "everyType": _to_js(EVERY_TYPE), "rangeKeys": RANGE_KEYS, "oddRangeKeys": ODD_RANGE_KEYS}  # fmt: skip
    done = subprocess.run(["node", str(NODE_SCRIPT)], input=json.dumps(plan), capture_output=True, text=True,
                          timeout=NODE_TIMEOUT_S, env=dict(os.environ, NODE_PATH=str(node_modules)))  # fmt: skip
    assert done.returncode == 0, f"{done.stderr}\n--- server log ---\n{_log_tail(server)}"
    return json.loads(done.stdout)


# --- comparing items --------------------------------------------------------------------------
def _norm(av: dict):
    """One attribute value, JS or boto3 shaped, in a form where equal values compare equal."""
    (kind, x), = av.items()
    if kind == "N":
        return ("N", Decimal(x))
    if kind == "B":
        return ("B", _bytes(x))
    if kind in ("SS", "BS", "NS"):
        conv = {"SS": str, "BS": _bytes, "NS": Decimal}[kind]
        return (kind, frozenset(conv(v) for v in x))
    if kind == "M":
        return ("M", {k: _norm(v) for k, v in x.items()})
    if kind == "L":
        return ("L", [_norm(v) for v in x])
    return (kind, x)


def _bytes(x) -> bytes:
    return base64.b64decode(x["base64"]) if isinstance(x, dict) else bytes(x)


def _item(item: dict | None):
    return None if item is None else {k: _norm(v) for k, v in item.items()}


def _consistent_get(ddb, table: str, key: dict) -> dict | None:
    return ddb.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")


def _sk(item: dict) -> Decimal:
    return Decimal(item["sk"]["N"])


# --- the checks -------------------------------------------------------------------------------
def test_put_and_get_every_type(summary, ddb):
    assert summary["putEvery"] == {}
    through_dax = summary["getEvery"]["Item"]
    key = {"pk": {"S": "every"}}
    assert _item(through_dax) == _item({**key, **EVERY_TYPE})
    assert _item(through_dax) == _item(_consistent_get(ddb, HASH_TABLE, key))


def test_missing_items_have_no_item(summary, ddb):
    assert summary["getMissing"] == {}
    assert summary["getDeleted"] == {}


def test_update_return_values(summary, ddb):
    key = {"pk": {"S": "upd"}}
    assert _item(summary["updateAllNew"]["Attributes"]) == _item(
        {**key, "a": {"N": "2"}, "b": {"S": "new"}, "keep": {"S": "k"}})
    assert _item(summary["updateUpdatedOld"]["Attributes"]) == _item({"a": {"N": "2"}, "keep": {"S": "k"}})
    assert _item(_consistent_get(ddb, HASH_TABLE, key)) == _item(
        {**key, "a": {"N": "12"}, "b": {"S": "new"}, "count": {"N": "-2.5"}})


def test_conditional_put_fails_then_delete(summary, ddb):
    failed = summary["conditionalPut"]
    assert failed is not None, "the conditional put succeeded"
    # The JS client names the DynamoDB error in `code` (its errors are plain Errors: `name` is "Error").
    assert failed["code"] == "ConditionalCheckFailedException"
    assert failed["message"] == "ConditionalCheckFailedException: The conditional request failed"
    assert failed["statusCode"] == 400
    assert summary["deleteOld"]["Attributes"] == {"pk": {"S": "cond"}, "v": {"N": "1"}}
    assert _consistent_get(ddb, HASH_TABLE, {"pk": {"S": "cond"}}) is None


def test_query_pages_in_numeric_order(summary, ddb):
    pages = summary["queryPages"]
    items = [item for page in pages for item in page["Items"]]
    assert [_sk(item) for item in items] == [Decimal(sk) for sk in RANGE_KEYS]
    assert all(page["Count"] == len(page["Items"]) <= QUERY_PAGE_ITEMS for page in pages)
    for page in pages[:-1]:
        last = page["Items"][-1]
        assert _item(page["LastEvaluatedKey"]) == _item({"pk": last["pk"], "sk": last["sk"]})
    assert "LastEvaluatedKey" not in pages[-1]
    direct = ddb.query(TableName=RANGE_TABLE, KeyConditionExpression="pk = :p",
                       ExpressionAttributeValues={":p": {"S": "page"}}, ConsistentRead=True)["Items"]  # fmt: skip
    assert [_item(i) for i in items] == [_item(i) for i in direct]


def test_query_with_a_filter_backwards(summary, ddb):
    got = summary["queryFiltered"]
    direct = ddb.query(TableName=RANGE_TABLE, KeyConditionExpression="pk = :p AND sk BETWEEN :lo AND :hi",
                       FilterExpression="odd = :t", ScanIndexForward=False, ConsistentRead=True,
                       ExpressionAttributeValues={":p": {"S": "page"}, ":lo": {"N": "-100"}, ":hi": {"N": "100"},
                                                  ":t": {"BOOL": True}})  # fmt: skip
    assert [_sk(i) for i in got["Items"]] == [Decimal("2.5"), Decimal("-3")]
    assert [_item(i) for i in got["Items"]] == [_item(i) for i in direct["Items"]]
    assert (got["Count"], got["ScannedCount"]) == (direct["Count"], direct["ScannedCount"]) == (2, 6)


def test_scan_pages(summary, ddb):
    pages = summary["scanPages"]
    assert all(page["Count"] == len(page["Items"]) <= SCAN_PAGE_ITEMS for page in pages)
    assert "LastEvaluatedKey" not in pages[-1]
    # The script scanned before its batch and transaction writes: only the query items were there.
    scanned = [_item(item) for page in pages for item in page["Items"]]
    direct = ddb.scan(TableName=RANGE_TABLE, ConsistentRead=True,
                      FilterExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "page"}})["Items"]  # fmt: skip
    assert sorted(map(repr, scanned)) == sorted(repr(_item(i)) for i in direct)
    assert len(scanned) == len(RANGE_KEYS)


def test_batch_write_and_get(summary, ddb):
    assert summary["batchWrite"] == {"UnprocessedItems": {}}
    assert summary["batchDelete"] == {"UnprocessedItems": {}}
    got = summary["batchGet"]
    assert not got.get("UnprocessedKeys")
    hashed = sorted(got["Responses"][HASH_TABLE], key=lambda item: item["pk"]["S"])
    keys = [{"pk": {"S": f"batch-{i}"}} for i in range(5)]
    direct = [item for item in (_consistent_get(ddb, HASH_TABLE, key) for key in keys) if item is not None]
    assert [_item(i) for i in hashed] == [_item(i) for i in direct]
    assert [i["v"]["N"] for i in hashed] == ["0", "1", "2", "3"]
    assert _item(hashed[2]) == _item({**keys[2], "v": {"N": "2"}, "b": {"B": b"\x02\xff"}})
    assert [_item(i) for i in got["Responses"][RANGE_TABLE]] == [
        _item(_consistent_get(ddb, RANGE_TABLE, {"pk": {"S": "page"}, "sk": {"N": RANGE_KEYS[0]}}))]


def test_transact_write_and_get(summary, ddb):
    assert summary["transactWrite"] == {}
    responses = summary["transactGet"]["Responses"]
    keys = [(HASH_TABLE, {"pk": {"S": "tx-a"}}), (HASH_TABLE, {"pk": {"S": "tx-b"}}),
            (RANGE_TABLE, {"pk": {"S": "tx-r"}, "sk": {"N": "-7.25"}}),
            (HASH_TABLE, {"pk": {"S": "tx-none"}})]  # fmt: skip
    assert [_item(r.get("Item")) for r in responses] == [_item(_consistent_get(ddb, t, k)) for t, k in keys]
    assert [r.get("Item", {}).get("n") for r in responses[:2]] == [{"N": "1"}, {"N": "2"}]
    assert responses[3] == {}


def test_cancelled_transaction(summary, ddb):
    failed = summary["transactCancelled"]
    assert failed is not None, "the transaction with a false condition succeeded"
    assert failed["code"] == "TransactionCanceledException"
    assert [r["Code"] for r in failed["cancellationReasons"]] == ["ConditionalCheckFailed", "None"]
    assert _consistent_get(ddb, HASH_TABLE, {"pk": {"S": "tx-b"}}) is not None
