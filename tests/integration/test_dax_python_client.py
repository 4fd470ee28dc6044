"""The published Python DAX client (``amazon-dax-client``) against ``meridian serve --dax-port``.

One real ``meridian serve`` process with its DAX port; the client speaks
DAX's binary protocol to it, boto3 speaks DynamoDB's HTTP API to the same
process.  Every call is made through DAX and compared with what boto3 sees,
then DAX's cache semantics are checked: write-through, a stale item after a
write that bypassed DAX, a stale query cache after a write through DAX,
consistent reads passing through.
"""

from __future__ import annotations

import socket
import time
from decimal import Decimal

import boto3
import pytest
from botocore.exceptions import ClientError

from meridian.cluster.procs import LocalCluster, ManagedProcess, free_port, wait_for_http_ok, wait_for_port

amazondax = pytest.importorskip("amazondax")

REGION = "us-east-1"
QUERY_TTL_MS = 1500


@pytest.fixture(scope="module", params=["embedded", "cluster"])
def server(request, tmp_path_factory):
    """``meridian serve --dax-port``, or a 3-node cluster whose router serves a 3-node DAX cluster
    (``meridian up --dax-port --dax-nodes 3``)."""
    if request.param == "cluster":
        yield from _cluster(tmp_path_factory)
        return
    http_port, dax_port = free_port(), free_port()
    log = tmp_path_factory.mktemp("dax") / "serve.log"
    process = ManagedProcess(
        ["serve", "--in-memory", "--port", str(http_port), "--dax-port", str(dax_port), "--no-throttling",
         "--dax-query-ttl-ms", str(QUERY_TTL_MS)],
        log_path=log, name="serve-dax",
    )
    try:
        wait_for_http_ok(f"http://127.0.0.1:{http_port}/health", 30, process=process)
        wait_for_port("127.0.0.1", dax_port, 30, process=process)
        yield {"http": f"http://127.0.0.1:{http_port}", "dax": f"dax://127.0.0.1:{dax_port}", "log": log,
               "dax_nodes": 1, "metrics": [f"http://127.0.0.1:{http_port}/metrics"]}
    finally:
        process.terminate()


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _cluster(tmp_path_factory):
    """Three storage nodes, and a DAX cluster of three ``meridian dax`` processes (a leader, two replicas)."""
    base = free_port()
    while not all(_port_free(base + i) for i in range(3)):
        base = free_port()
    cluster = LocalCluster([REGION], 3, None, tmp_path_factory.mktemp("dax-cluster"), sync=False,
                           dax_base_port=base, dax_nodes=3, dax_args=["--dax-query-ttl-ms", str(QUERY_TTL_MS)])
    try:
        cluster.start()
        yield {"http": cluster.endpoints[REGION], "dax": cluster.dax_endpoints[REGION],
               "log": cluster.log_dir / f"{REGION}-router.log", "dax_nodes": 3,
               "metrics": [cluster.dax.metrics_url(REGION, i) for i in range(3)]}
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def ddb(server):
    client = boto3.client("dynamodb", endpoint_url=server["http"], region_name=REGION,
                          aws_access_key_id="test", aws_secret_access_key="test")
    for name, keys, defs in (
        ("dax_h", [("pk", "HASH")], [("pk", "S")]),
        ("dax_hr", [("pk", "HASH"), ("sk", "RANGE")], [("pk", "S"), ("sk", "N")]),
        ("dax_b", [("bk", "HASH"), ("rs", "RANGE")], [("bk", "B"), ("rs", "S")]),
        ("dax_n", [("nk", "HASH")], [("nk", "N")]),
    ):
        client.create_table(
            TableName=name, BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": a, "KeyType": t} for a, t in keys],
            AttributeDefinitions=[{"AttributeName": a, "AttributeType": t} for a, t in defs],
        )
    return client


@pytest.fixture(scope="module")
def dax(server, ddb):
    client = amazondax.AmazonDaxClient(endpoint_url=server["dax"], region_name=REGION,
                                       aws_access_key_id="test", aws_secret_access_key="test")
    yield client
    client.close()


EVERY_TYPE = {
    "s": {"S": "héllo"},
    "n_int": {"N": "42"},
    "n_neg": {"N": "-17"},
    "n_dec": {"N": "3.14159"},
    "n_big": {"N": "123456789012345678901234567890"},
    "n_small": {"N": "0.000000000000000000000000000001"},
    "b": {"B": b"\x00\x01\xffbin"},
    "bool": {"BOOL": True},
    "null": {"NULL": True},
    "ss": {"SS": ["a", "b"]},
    "ns": {"NS": ["1", "2.5"]},
    "bs": {"BS": [b"x", b"y"]},
    "m": {"M": {"inner": {"S": "v"}, "deep": {"M": {"x": {"N": "1"}}}}},
    "l": {"L": [{"S": "a"}, {"N": "2"}, {"L": [{"BOOL": False}]}]},
}


def _same(a: dict, b: dict) -> bool:
    """Items equal, sets compared as sets and numbers by value."""
    def norm(v):
        (t, x), = v.items()
        if t == "N":
            return ("N", Decimal(x))
        if t in ("SS", "BS"):
            return (t, frozenset(x))
        if t == "NS":
            return (t, frozenset(Decimal(n) for n in x))
        if t == "M":
            return ("M", {k: norm(w) for k, w in x.items()})
        if t == "L":
            return ("L", [norm(w) for w in x])
        return (t, bytes(x) if t == "B" else x)
    return {k: norm(v) for k, v in a.items()} == {k: norm(v) for k, v in b.items()}


def test_put_and_get_every_type(dax, ddb):
    item = {"pk": {"S": "every"}, **EVERY_TYPE}
    dax.put_item(TableName="dax_h", Item=item)
    through_dax = dax.get_item(TableName="dax_h", Key={"pk": {"S": "every"}})["Item"]
    direct = ddb.get_item(TableName="dax_h", Key={"pk": {"S": "every"}}, ConsistentRead=True)["Item"]
    assert _same(through_dax, item)
    assert _same(direct, item)


def test_numeric_and_binary_keys(dax, ddb):
    for sk in ("-5", "0", "2.5", "10", "1e3"):
        dax.put_item(TableName="dax_hr", Item={"pk": {"S": "nums"}, "sk": {"N": sk}, "v": {"S": sk}})
    got = dax.get_item(TableName="dax_hr", Key={"pk": {"S": "nums"}, "sk": {"N": "2.5"}})["Item"]
    assert got["v"] == {"S": "2.5"}
    dax.put_item(TableName="dax_b", Item={"bk": {"B": b"\x00k"}, "rs": {"S": "r"}, "v": {"N": "1"}})
    assert dax.get_item(TableName="dax_b", Key={"bk": {"B": b"\x00k"}, "rs": {"S": "r"}})["Item"]["v"] == {"N": "1"}
    dax.put_item(TableName="dax_n", Item={"nk": {"N": "-1.5"}, "v": {"S": "neg"}})
    assert dax.get_item(TableName="dax_n", Key={"nk": {"N": "-1.5"}})["Item"]["v"] == {"S": "neg"}
    assert ddb.get_item(TableName="dax_n", Key={"nk": {"N": "-1.5"}})["Item"]["v"] == {"S": "neg"}


def test_missing_item_and_projection(dax):
    assert "Item" not in dax.get_item(TableName="dax_h", Key={"pk": {"S": "nobody"}})
    dax.put_item(TableName="dax_h", Item={"pk": {"S": "proj"}, "a": {"S": "A"}, "m": {"M": {"x": {"N": "1"}, "y": {"N": "2"}}},
                                          "l": {"L": [{"S": "l0"}, {"S": "l1"}]}})
    got = dax.get_item(TableName="dax_h", Key={"pk": {"S": "proj"}}, ProjectionExpression="a, m.y, #l[1]",
                       ExpressionAttributeNames={"#l": "l"})["Item"]
    assert got == {"a": {"S": "A"}, "m": {"M": {"y": {"N": "2"}}}, "l": {"L": [{"S": "l1"}]}}


@pytest.mark.parametrize("return_values", ["NONE", "ALL_OLD", "UPDATED_OLD", "ALL_NEW", "UPDATED_NEW"])
def test_update_item_return_values(dax, ddb, return_values):
    key = {"pk": {"S": f"upd-{return_values}"}}
    ddb.put_item(TableName="dax_h", Item={**key, "a": {"N": "1"}, "keep": {"S": "k"}})
    kwargs = dict(TableName="dax_h", Key=key, UpdateExpression="SET a = a + :one, b = :b",
                  ExpressionAttributeValues={":one": {"N": "1"}, ":b": {"S": "new"}}, ReturnValues=return_values)
    got = dax.update_item(**kwargs).get("Attributes")
    expected = {
        "NONE": None,
        "ALL_OLD": {**key, "a": {"N": "1"}, "keep": {"S": "k"}},
        "UPDATED_OLD": {"a": {"N": "1"}},
        "ALL_NEW": {**key, "a": {"N": "2"}, "keep": {"S": "k"}, "b": {"S": "new"}},
        "UPDATED_NEW": {"a": {"N": "2"}, "b": {"S": "new"}},
    }[return_values]
    assert (got or None) == expected
    assert ddb.get_item(TableName="dax_h", Key=key, ConsistentRead=True)["Item"]["a"] == {"N": "2"}


def test_conditional_failures_and_delete(dax, ddb):
    key = {"pk": {"S": "cond"}}
    dax.put_item(TableName="dax_h", Item={**key, "v": {"N": "1"}})
    with pytest.raises(ClientError) as info:
        dax.put_item(TableName="dax_h", Item={**key, "v": {"N": "2"}}, ConditionExpression="attribute_not_exists(pk)")
    assert info.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    with pytest.raises(ClientError) as info:
        dax.update_item(TableName="dax_h", Key=key, UpdateExpression="SET v = :x", ConditionExpression="v > :x",
                        ExpressionAttributeValues={":x": {"N": "5"}})
    assert info.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    old = dax.delete_item(TableName="dax_h", Key=key, ReturnValues="ALL_OLD")["Attributes"]
    assert old == {**key, "v": {"N": "1"}}
    assert "Item" not in dax.get_item(TableName="dax_h", Key=key)
    assert "Item" not in ddb.get_item(TableName="dax_h", Key=key, ConsistentRead=True)


def test_unknown_table_is_resource_not_found(dax):
    with pytest.raises(ClientError) as info:
        dax.get_item(TableName="no_such_table", Key={"pk": {"S": "x"}})
    assert info.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_query_and_scan_with_paging(dax, ddb):
    for i in range(7):
        ddb.put_item(TableName="dax_hr", Item={"pk": {"S": "page"}, "sk": {"N": str(i)}, "odd": {"BOOL": i % 2 == 1}})
    seen, start = [], None
    while True:
        kwargs = dict(TableName="dax_hr", KeyConditionExpression="pk = :p AND sk >= :z", Limit=3,
                      ExpressionAttributeValues={":p": {"S": "page"}, ":z": {"N": "0"}})
        if start:
            kwargs["ExclusiveStartKey"] = start
        page = dax.query(**kwargs)
        seen += [int(item["sk"]["N"]) for item in page["Items"]]
        start = page.get("LastEvaluatedKey")
        if not start:
            break
    assert seen == list(range(7))
    back = dax.query(TableName="dax_hr", KeyConditionExpression="pk = :p", ScanIndexForward=False,
                     FilterExpression="odd = :t", ExpressionAttributeValues={":p": {"S": "page"}, ":t": {"BOOL": True}})
    assert [int(i["sk"]["N"]) for i in back["Items"]] == [5, 3, 1]
    assert back["Count"] == 3 and back["ScannedCount"] == 7
    scanned = dax.scan(TableName="dax_hr", ConsistentRead=True)
    direct = ddb.scan(TableName="dax_hr", ConsistentRead=True)
    assert scanned["Count"] == direct["Count"]
    assert sorted(str(i) for i in scanned["Items"]) == sorted(str(i) for i in direct["Items"])


def test_batch_get_and_write(dax, ddb):
    writes = [{"PutRequest": {"Item": {"pk": {"S": f"batch-{i}"}, "v": {"N": str(i)}}}} for i in range(5)]
    assert dax.batch_write_item(RequestItems={"dax_h": writes})["UnprocessedItems"] == {}
    dax.batch_write_item(RequestItems={"dax_h": [{"DeleteRequest": {"Key": {"pk": {"S": "batch-4"}}}}]})
    got = dax.batch_get_item(RequestItems={"dax_h": {"Keys": [{"pk": {"S": f"batch-{i}"}} for i in range(5)]}})
    values = sorted(int(item["v"]["N"]) for item in got["Responses"]["dax_h"])
    assert values == [0, 1, 2, 3]
    assert "Item" not in ddb.get_item(TableName="dax_h", Key={"pk": {"S": "batch-4"}}, ConsistentRead=True)


def test_transactions(dax, ddb):
    dax.transact_write_items(TransactItems=[
        {"Put": {"TableName": "dax_h", "Item": {"pk": {"S": "tx-a"}, "n": {"N": "1"}}}},
        {"Update": {"TableName": "dax_h", "Key": {"pk": {"S": "tx-b"}}, "UpdateExpression": "SET n = :n",
                    "ExpressionAttributeValues": {":n": {"N": "2"}}}},
    ])
    got = dax.transact_get_items(TransactItems=[
        {"Get": {"TableName": "dax_h", "Key": {"pk": {"S": "tx-a"}}}},
        {"Get": {"TableName": "dax_h", "Key": {"pk": {"S": "tx-b"}}}},
    ])
    assert [r["Item"]["n"]["N"] for r in got["Responses"]] == ["1", "2"]
    with pytest.raises(ClientError) as info:
        dax.transact_write_items(TransactItems=[
            {"ConditionCheck": {"TableName": "dax_h", "Key": {"pk": {"S": "tx-a"}},
                                "ConditionExpression": "n = :nine", "ExpressionAttributeValues": {":nine": {"N": "9"}}}},
            {"Delete": {"TableName": "dax_h", "Key": {"pk": {"S": "tx-b"}}}},
        ])
    assert info.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert "Item" in ddb.get_item(TableName="dax_h", Key={"pk": {"S": "tx-b"}}, ConsistentRead=True)


def test_item_cache_is_stale_after_a_direct_write_until_a_write_through(dax, ddb):
    """A write through DAX reaches every node's item cache; one that bypassed DAX reaches none."""
    key = {"pk": {"S": "stale"}}

    def values() -> set[str]:
        return {dax.get_item(TableName="dax_h", Key=key)["Item"]["v"]["S"] for _ in range(30)}

    dax.put_item(TableName="dax_h", Item={**key, "v": {"S": "one"}})
    assert values() == {"one"}
    ddb.put_item(TableName="dax_h", Item={**key, "v": {"S": "two"}})  # not through DAX
    assert values() == {"one"}  # DAX's documented staleness, on every node
    assert dax.get_item(TableName="dax_h", Key=key, ConsistentRead=True)["Item"]["v"] == {"S": "two"}
    dax.put_item(TableName="dax_h", Item={**key, "v": {"S": "three"}})
    assert values() == {"three"}


def test_query_cache_is_stale_after_a_write_until_its_ttl(dax):
    def count() -> int:
        return dax.query(TableName="dax_hr", KeyConditionExpression="pk = :p",
                         ExpressionAttributeValues={":p": {"S": "qc"}})["Count"]

    # Each node of a DAX cluster has its own query cache and the client spreads reads over the
    # nodes: asked 30 times, every node of three has been asked (all but surely) and caches 1.
    dax.put_item(TableName="dax_hr", Item={"pk": {"S": "qc"}, "sk": {"N": "1"}})
    assert {count() for _ in range(30)} == {1}
    dax.put_item(TableName="dax_hr", Item={"pk": {"S": "qc"}, "sk": {"N": "2"}})
    assert {count() for _ in range(30)} == {1}  # no node's query cache is invalidated by writes
    time.sleep(QUERY_TTL_MS / 1000 + 0.2)
    assert count() == 2


def test_a_restarted_node_keeps_attribute_lists_and_starts_with_empty_caches(tmp_path):
    """A client that outlives ``meridian serve`` keeps its cached attribute-list ids: after a
    SIGKILL and a restart on the same data, its writes still decode, and its reads miss the
    (new, empty) cache: the item read is the table's, not the dead node's cached one."""
    http_port, dax_port = free_port(), free_port()
    args = ["serve", "--data-dir", str(tmp_path / "data"), "--port", str(http_port), "--dax-port", str(dax_port),
            "--no-throttling"]
    process = ManagedProcess(args, log_path=tmp_path / "serve.log", name="serve-dax-restart")
    client = None
    try:
        wait_for_port("127.0.0.1", dax_port, 30, process=process)
        ddb = boto3.client("dynamodb", endpoint_url=f"http://127.0.0.1:{http_port}", region_name=REGION,
                           aws_access_key_id="test", aws_secret_access_key="test")
        ddb.create_table(TableName="restart", BillingMode="PAY_PER_REQUEST",
                         KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                         AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
        client = amazondax.AmazonDaxClient(endpoint_url=f"dax://127.0.0.1:{dax_port}", region_name=REGION,
                                           aws_access_key_id="test", aws_secret_access_key="test")
        client.put_item(TableName="restart", Item={"pk": {"S": "a"}, "colour": {"S": "red"}, "size": {"N": "1"}})
        # a list only ever sent by the client (never in an answer after the restart)
        client.put_item(TableName="restart", Item={"pk": {"S": "c"}, "shape": {"S": "round"}, "weight": {"N": "1"}})
        assert client.get_item(TableName="restart", Key={"pk": {"S": "a"}})["Item"]["colour"] == {"S": "red"}
        ddb.put_item(TableName="restart", Item={"pk": {"S": "a"}, "colour": {"S": "blue"}, "size": {"N": "2"}})
        process.kill()
        process.wait(10)
        process.restart()
        wait_for_port("127.0.0.1", dax_port, 30, process=process)

        def after_restart():
            try:
                return client.get_item(TableName="restart", Key={"pk": {"S": "a"}})
            except Exception:  # noqa: BLE001 - the client reconnects on its own schedule
                return None

        deadline = time.monotonic() + 30
        answer = None
        while answer is None and time.monotonic() < deadline:
            answer = after_restart()
            if answer is None:
                time.sleep(0.5)
        assert answer is not None, "the client never reconnected"
        assert answer["Item"]["colour"] == {"S": "blue"}  # the cache died with the process
        # the same attribute list as before the restart: the client sends its cached id
        client.put_item(TableName="restart", Item={"pk": {"S": "b"}, "shape": {"S": "square"}, "weight": {"N": "3"}})
        got = ddb.get_item(TableName="restart", Key={"pk": {"S": "b"}}, ConsistentRead=True)["Item"]
        assert got["shape"] == {"S": "square"}
    finally:
        if client is not None:
            client.close()
        process.terminate()


def test_metrics_count_every_nodes_hits_and_requests(server, dax):
    """/metrics shows each DAX node's counters; in a 3-node cluster the client spread its reads over all three."""
    import urllib.request

    key = {"pk": {"S": "metrics"}}
    dax.put_item(TableName="dax_h", Item={**key, "v": {"N": "1"}})
    for _ in range(30):
        dax.get_item(TableName="dax_h", Key=key)
    text = ""
    for url in server["metrics"]:  # the router's (in-process nodes), or each DAX process's
        with urllib.request.urlopen(url, timeout=10) as response:
            text += response.read().decode()
    hits = {}
    for line in text.splitlines():
        if line.startswith("meridian_dax_item_cache_hits_total{"):
            labels, value = line.rsplit(" ", 1)
            hits[labels.split('NodeId="', 1)[1].split('"', 1)[0]] = float(value)
    assert len(hits) == server["dax_nodes"], hits
    assert all(value > 0 for value in hits.values()), hits
