"""Operating two real regions through one router only (``POST /meridian/control``).

Every command goes through a router's endpoint - the router's replicator
runs it or forwards it to the region it names - as it must in the Docker
lab, where replicators are not reachable from the host.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request

import orjson
import pytest

from meridian.cluster.control_client import ControlClient, ControlError, ControlUnavailable
from meridian.main import main
from meridian.cluster.procs import LocalCluster, ManagedProcess, free_port, wait_for_http_ok, wait_for_port
from tests.conftest import make_client
from tests.waiting import wait_until

A, B = "region-a", "region-b"
TABLE = "forwarded"
TIMEOUT_S = 20.0
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with LocalCluster([A, B], 1, None, tmp_path_factory.mktemp("control"), sync=False) as c:
        yield c


@pytest.fixture(scope="module")
def clients(cluster):
    ddb = {region: make_client(cluster.endpoints[region]) for region in (A, B)}
    ddb[A].create_table(
        TableName=TABLE,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb[A].update_table(TableName=TABLE, ReplicaUpdates=[{"Create": {"RegionName": B}}])
    wait_until(lambda: ddb[A].describe_table(TableName=TABLE)["Table"]["TableStatus"] == "ACTIVE", TIMEOUT_S, 0.1,
               f"{TABLE} and its replica to be ACTIVE")
    return ddb


@pytest.fixture
def control(cluster):
    """A client that knows only region B's router."""
    with ControlClient(endpoint=cluster.endpoints[B]) as client:
        yield client


def _get(ddb, key: str) -> dict | None:
    return ddb.get_item(TableName=TABLE, Key={"pk": {"S": key}}, ConsistentRead=True).get("Item")


def _wait_for(ddb, key: str, value: str) -> None:
    wait_until(lambda: (_get(ddb, key) or {}).get("v") == {"S": value}, TIMEOUT_S, 0.05, f"{key}={value} to arrive")


def _link(control: ControlClient, source: str, target: str) -> dict:
    (link,) = [x for x in control.links() if (x["source"], x["target"]) == (source, target)]
    return link


def test_either_router_names_every_region_its_own_first(cluster):
    assert ControlClient(endpoint=cluster.endpoints[A]).regions() == [A, B]
    assert ControlClient(endpoint=cluster.endpoints[B]).regions() == [B, A]


def test_links_are_set_cut_and_healed_through_one_router(control, clients):
    control.link_set(A, B, latency_ms=40, jitter_ms=3)
    for source, target in ((A, B), (B, A)):
        link = _link(control, source, target)
        assert (link["latency_ms"], link["jitter_ms"], link["loss"], link["cut"]) == (40, 3, 0, False)
    control.link_set(A, B, loss=0.1, one_way=True)  # jitter and latency stay
    assert (_link(control, A, B)["loss"], _link(control, A, B)["latency_ms"], _link(control, B, A)["loss"]) == (0.1, 40, 0)
    control.link_set(A, B, latency_ms=0, jitter_ms=0, loss=0)

    control.link_cut(A, B, one_way=True)
    assert _link(control, A, B)["cut"] and not _link(control, B, A)["cut"]
    clients[A].put_item(TableName=TABLE, Item={"pk": {"S": "behind-the-cut"}, "v": {"S": "1"}})
    identical, keys = control.verify(TABLE, timeout_s=1.0)
    assert not identical and keys == ['{"pk":{"S":"behind-the-cut"}}']
    assert control.pending()[(A, B)] >= 1
    control.link_heal(A, B)
    assert not _link(control, A, B)["cut"]
    assert control.verify(TABLE, timeout_s=TIMEOUT_S) == (True, [])
    assert control.pending()[(A, B)] == 0


def test_pause_holds_replication_to_and_from_a_region_until_resume(control, clients):
    control.pause(A)
    try:
        assert all(link["paused"] for link in control.links())
        clients[B].put_item(TableName=TABLE, Item={"pk": {"S": "paused"}, "v": {"S": "from-b"}})
        time.sleep(1.0)  # the point: a second in which the paused region receives nothing
        assert _get(clients[A], "paused") is None
    finally:
        control.resume(A)
    assert not any(link["paused"] for link in control.links())
    _wait_for(clients[A], "paused", "from-b")


def test_clock_skew_makes_the_skewed_regions_earlier_write_win(control, clients):
    # Held back until both are written: had B applied A's write first, its
    # hybrid clock would have moved past it, and B's write would rightly win.
    control.link_cut(A, B, one_way=True)
    control.clock_skew(A, 3000)
    try:
        clients[A].put_item(TableName=TABLE, Item={"pk": {"S": "skewed"}, "v": {"S": "a-first"}})
        clients[B].put_item(TableName=TABLE, Item={"pk": {"S": "skewed"}, "v": {"S": "b-later"}})
    finally:
        control.clock_skew(A, 0)
        control.link_heal(A, B, one_way=True)
    # A's clock ran 3 s ahead: its write carries the larger stamp and wins everywhere.
    _wait_for(clients[B], "skewed", "a-first")
    assert _get(clients[A], "skewed")["v"] == {"S": "a-first"}


def test_lag_names_tables_and_region_pairs(control, clients, capsys):
    for i in range(10):
        clients[A].put_item(TableName=TABLE, Item={"pk": {"S": f"lag-{i}"}, "v": {"S": "x"}})
    _wait_for(clients[B], "lag-9", "x")
    rows = {(r["table"], r["source"], r["target"]): r for r in control.lag()}
    row = rows[(TABLE, A, B)]
    assert row["count"] >= 10 and 0 <= row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"] <= row["max_ms"]
    assert main(["lag", "--endpoint", control.endpoint]) == 0
    out = capsys.readouterr().out
    assert any(line.startswith(TABLE + " ") and f"{A} -> {B}" in line for line in out.splitlines()), out
    assert "pending changes" in out


def test_every_operating_command_works_with_only_an_endpoint(cluster, clients, capsys):
    endpoint = ["--endpoint", cluster.endpoints[A]]
    assert main(["link", "set", A, B, "--latency-ms", "25", "--jitter-ms", "2", *endpoint]) == 0
    out = capsys.readouterr().out
    assert f"{A} -> {B}" in out and f"{B} -> {A}" in out and " 25 " in out
    assert main(["link", "cut", B, A, "--one-way", *endpoint]) == 0
    assert capsys.readouterr().out.count("cut") == 1
    clients[B].put_item(TableName=TABLE, Item={"pk": {"S": "cli-cut"}, "v": {"S": "b"}})
    assert main(["verify", "--table", TABLE, "--timeout-s", "1", *endpoint]) == 1
    assert '{"pk":{"S":"cli-cut"}}' in capsys.readouterr().err
    assert main(["link", "heal", B, A, *endpoint]) == 0
    assert main(["link", "set", A, B, "--latency-ms", "0", "--jitter-ms", "0", *endpoint]) == 0
    assert main(["verify", "--table", TABLE, "--timeout-s", str(TIMEOUT_S), *endpoint]) == 0
    assert "identical in 2 regions" in capsys.readouterr().out
    assert main(["verify", "--table", "no-such-table", *endpoint]) == 2
    assert main(["replication", "pause", B, *endpoint]) == 0
    assert main(["link", "show", *endpoint]) == 0
    assert capsys.readouterr().out.count("paused") == 3  # the pause line, and both links
    assert main(["replication", "resume", B, *endpoint]) == 0
    assert main(["clock", "skew", B, "--ms", "0", *endpoint]) == 0
    assert main(["events", *endpoint]) == 0
    out = capsys.readouterr().out
    assert "link-cut" in out and "resume" in out and "clock-skew" in out


def test_events_of_every_region_come_back_merged_and_in_order(cluster, control):
    before = time.time()
    control.link_set(A, B, latency_ms=5)
    control.link_set(A, B, latency_ms=0)
    events = control.events()
    assert [e["t"] for e in events] == sorted(e["t"] for e in events)
    recent = [e for e in events if e["t"] >= before - 0.001]  # stamps are whole milliseconds
    for region, peer in ((A, B), (B, A)):
        assert [(e["command"], e["args"]) for e in recent if e["region"] == region] == [
            ("link-set", {"peer": peer, "latency_ms": 5}),
            ("link-set", {"peer": peer, "latency_ms": 0}),
        ]
    assert {e["command"] for e in events} >= {"link-set", "link-cut", "link-heal", "pause", "resume", "clock-skew"}
    # The same log, read from the replicators directly.
    with ControlClient(replicators=cluster.replicator_addresses) as direct:
        assert direct.events() == events


def test_bad_commands_are_refused_with_400(cluster, control):
    with pytest.raises(ControlError, match="unknown region 'mars'") as refused:
        control.call("mars", {"command": "show"})
    assert refused.value.status == 400
    with pytest.raises(ControlError, match="unknown control command") as refused:
        control.call(A, {"command": "explode"})  # forwarded, refused by A
    assert refused.value.status == 400
    with pytest.raises(ControlError, match="unknown region"):
        control.pause("mars")
    for body, status in ((b"not json", 400), (b"[1]", 400), (b'{"command": "show"}', 400),
                         (b'{"region": "' + A.encode() + b'", "command": "show", "pad": "' + b"x" * 300_000 + b'"}', 413)):
        request = urllib.request.Request(cluster.endpoints[B] + "/meridian/control", data=body, method="POST")
        with pytest.raises(urllib.error.HTTPError) as answer:
            _DIRECT.open(request, timeout=5)
        assert answer.value.code == status
        assert "message" in orjson.loads(answer.value.read())
    request = urllib.request.Request(
        cluster.endpoints[B] + "/meridian/control", data=orjson.dumps({"region": A, "command": "show"}), method="POST"
    )
    with _DIRECT.open(request, timeout=5) as answer:
        assert orjson.loads(answer.read())["region"] == A


def test_a_router_without_a_replicator_says_so(tmp_path):
    port = free_port()
    server = ManagedProcess(
        ["serve", "--port", str(port), "--data-dir", str(tmp_path / "data")], log_path=tmp_path / "serve.log"
    )
    try:
        wait_for_http_ok(f"http://127.0.0.1:{port}/health", 30.0, process=server)
        with pytest.raises(ControlError, match="started with --replicator"):
            ControlClient(endpoint=f"http://127.0.0.1:{port}").regions()
        with pytest.raises(ControlError, match="started with --replicator"):
            ControlClient(endpoint=f"http://127.0.0.1:{port}").call(A, {"command": "show"})
    finally:
        server.terminate()


def test_an_unreachable_region_answers_503_and_nothing_else_breaks(cluster, control):
    replicator = cluster.replicators[A]
    replicator.terminate()
    try:
        with pytest.raises(ControlUnavailable) as unavailable:
            control.call(A, {"command": "show"})
        assert unavailable.value.status == 503 and A in str(unavailable.value)
        assert control.call(B, {"command": "show"})["region"] == B
    finally:
        replicator.restart()
        host, port = cluster.replicator_addresses[A].rsplit(":", 1)
        wait_for_port(host, int(port), 30.0, process=replicator)
    # B's channel to A reconnects within its backoff (at most 2 s).
    shown = wait_until(lambda: control.call(A, {"command": "show"}), TIMEOUT_S, 0.2,
                       "B's channel to A to reconnect", ignoring=(ControlUnavailable,))
    assert shown["region"] == A


def test_realistic_links_start_with_real_world_latencies(tmp_path):
    from meridian.replication.topology import one_way_latency_ms

    regions = ["us-east-1", "ap-southeast-2"]
    with LocalCluster(regions, 1, None, tmp_path, sync=False, realistic_links=True) as c:
        links = ControlClient(endpoint=c.endpoints["ap-southeast-2"]).links()
    expected = one_way_latency_ms(*regions)
    assert expected > 50
    assert sorted((x["source"], x["target"], x["latency_ms"]) for x in links) == [
        ("ap-southeast-2", "us-east-1", expected), ("us-east-1", "ap-southeast-2", expected),
    ]
