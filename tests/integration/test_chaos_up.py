"""``meridian up``'s state file and process-control API, and the one-off ``meridian chaos`` verbs on it.

One real ``meridian up`` (two regions, one node each) serves the module.
Every verb runs as a user runs it (``python -m meridian.main chaos ...``),
and its effect is checked independently: process states in ``/proc`` and
``up.json``, links and events through ``ControlClient``, items through boto3.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import orjson
import pytest

from meridian.cluster import limits
from meridian.cluster.control_client import ControlClient
from meridian.cluster.procs import MERIDIAN_COMMAND, ManagedProcess
from meridian.cluster.up_control import state_path
from tests.conftest import make_client
from tests.waiting import wait_until

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc and PR_SET_PDEATHSIG")

REGIONS = ["us-east-1", "eu-west-1"]
UP_TIMEOUT_S = 90.0
VERB_TIMEOUT_S = 90.0
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _proc_state(pid: int) -> str | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    return text[text.rindex(")") + 2 :].split()[0]


def _state() -> dict:
    return json.loads(state_path(UP["dir"]).read_text())


def _process(name: str) -> dict:
    return next(p for p in _state()["processes"] if p["name"] == name)


UP: dict = {}


@pytest.fixture(scope="module", autouse=True)
def cluster(tmp_path_factory):
    """``meridian up`` for the module; stopped by PID (SIGTERM, then SIGKILL) whatever happens."""
    base = tmp_path_factory.mktemp("chaos-up")
    up = ManagedProcess(
        ["up", "--data-dir", str(base / "cluster"), "--regions", ",".join(REGIONS), "--nodes-per-region", "1",
         "--port", "0"],
        log_path=base / "up.log", name="meridian up",
    )  # fmt: skip
    UP.update(dir=base / "cluster", base=base, up=up)
    try:
        def up_json_written() -> bool:
            assert up.alive, up.log_tail(30)
            return state_path(UP["dir"]).exists()

        wait_until(up_json_written, UP_TIMEOUT_S, 0.1, "meridian up to write up.json")
        yield up
    finally:
        up.terminate()
        UP.clear()


def chaos(*args: str, run_dir: Path | None = None) -> subprocess.CompletedProcess:
    argv = [*MERIDIAN_COMMAND, "chaos", *args, "--cluster-dir", str(UP["dir"])]
    if run_dir is not None:
        argv += ["--run-dir", str(run_dir)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=VERB_TIMEOUT_S)


def _control() -> ControlClient:
    return ControlClient(replicators=_state()["replicators"])


def _link(source: str, target: str) -> dict:
    with _control() as control:
        return next(l for l in control.links() if l["source"] == source and l["target"] == target)


# --- up.json and the control API ----------------------------------------------------------


def test_up_json_names_every_process_with_its_pid_role_and_region(cluster):
    state = _state()
    assert state["pid"] == cluster.pid
    assert set(state["regions"]) == set(REGIONS) and set(state["replicators"]) == set(REGIONS)
    names = sorted(p["name"] for p in state["processes"])
    assert names == sorted(f"{r}/{p}" for r in REGIONS for p in ("node-0", "replicator", "router"))
    for p in state["processes"]:
        assert p["state"] == "running" and _proc_state(p["pid"]) in ("S", "R")
        assert p["region"] == p["name"].split("/")[0] and p["role"] == p["name"].split("/")[1].split("-")[0]
    with _DIRECT.open(f"http://{state['control']}/processes", timeout=10) as answer:
        assert sorted(p["name"] for p in json.loads(answer.read())["processes"]) == names
    make_client(state["regions"]["us-east-1"]).list_tables()  # the endpoints serve


def test_the_api_refuses_unknown_processes_and_paths(cluster):
    control = _state()["control"]
    for method, path, expected in (("POST", "/processes/us-east-1/node-7/kill", "no process named 'us-east-1/node-7'"),
                                   ("POST", "/processes/us-east-1/node-0/explode", "no such path"),
                                   ("GET", "/nothing", "no such path")):  # fmt: skip
        request = urllib.request.Request(f"http://{control}{path}", data=b"" if method == "POST" else None, method=method)
        with pytest.raises(urllib.error.HTTPError) as raised:
            _DIRECT.open(request, timeout=10)
        assert raised.value.code == 404
        assert expected in json.loads(raised.value.read())["message"]
    assert _process("us-east-1/node-0")["state"] == "running"


def test_kill_and_restart_keep_data_ports_and_are_not_reported_as_deaths(cluster, tmp_path):
    endpoint = _state()["regions"]["us-east-1"]
    ddb = make_client(endpoint)
    ddb.create_table(TableName="survives-kill", AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}], BillingMode="PAY_PER_REQUEST")  # fmt: skip
    ddb.put_item(TableName="survives-kill", Item={"id": {"S": "k"}, "v": {"N": "1"}})
    node = _process("us-east-1/node-0")
    argv_before = Path(f"/proc/{node['pid']}/cmdline").read_bytes()

    killed = chaos("kill", "us-east-1/node-0", run_dir=tmp_path)
    assert killed.returncode == 0, killed.stderr
    assert "inject  process-kill      us-east-1/node-0" in killed.stdout and "us-east-1/node-0: killed" in killed.stdout
    assert _process("us-east-1/node-0")["state"] == "killed" and _proc_state(node["pid"]) in (None, "Z")
    with pytest.raises(Exception):  # the region's only node is down
        ddb.get_item(TableName="survives-kill", Key={"id": {"S": "k"}})

    restarted = chaos("restart", "us-east-1/node-0", run_dir=tmp_path)
    assert restarted.returncode == 0, restarted.stderr
    assert "revert  process-kill      us-east-1/node-0" in restarted.stdout
    after = _process("us-east-1/node-0")
    assert after["state"] == "running" and after["pid"] != node["pid"]
    assert Path(f"/proc/{after['pid']}/cmdline").read_bytes() == argv_before  # same arguments, same port and data
    item = wait_until(  # the router reconnects to the node on its own
        lambda: ddb.get_item(TableName="survives-kill", Key={"id": {"S": "k"}}, ConsistentRead=True)["Item"],
        30, 0.2, "the restarted node to serve again", ignoring=(Exception,),
    )
    assert item["v"] == {"N": "1"}
    # The point: two supervision rounds pass and report nothing (a death would be reported by then).
    time.sleep(2 * limits.SUPERVISE_INTERVAL_S)
    assert "exited with code" not in cluster.log_tail(200), "a deliberate kill was reported as a death"
    events = [orjson.loads(line) for line in (tmp_path / "faults.jsonl").read_bytes().splitlines()]
    assert [(e["fault"], e["phase"], e["target"]) for e in events] == [
        ("process-kill", "inject", "us-east-1/node-0"), ("process-kill", "revert", "us-east-1/node-0"),
    ]  # fmt: skip
    assert events[0]["t"] < events[1]["t"] and events[1]["took_ms"] > 0


def test_pause_and_resume_a_process(cluster):
    router = _process("eu-west-1/router")
    paused = chaos("pause", "eu-west-1/router")
    assert paused.returncode == 0, paused.stderr
    assert _proc_state(router["pid"]) == "T" and _process("eu-west-1/router")["state"] == "paused"
    resumed = chaos("resume", "eu-west-1/router")
    assert resumed.returncode == 0, resumed.stderr
    assert _proc_state(router["pid"]) in ("S", "R") and _process("eu-west-1/router")["state"] == "running"
    make_client(_state()["regions"]["eu-west-1"]).list_tables()


def test_an_unasked_death_is_still_reported(cluster):
    replicator = _process("eu-west-1/replicator")
    cluster_log_before = cluster.log_tail(500)
    os.kill(replicator["pid"], signal.SIGKILL)  # not through the API
    wait_until(lambda: f"(pid {replicator['pid']}) exited with code -9" in cluster.log_tail(500), 10, 0.1,
               "meridian up to report the replicator's death")
    assert _process("eu-west-1/replicator")["state"] == "exited"
    assert f"pid {replicator['pid']}" not in cluster_log_before
    restarted = chaos("restart", "eu-west-1/replicator")
    assert restarted.returncode == 0, restarted.stderr
    assert _process("eu-west-1/replicator")["state"] == "running"


# --- link, region, clock and replication verbs --------------------------------------------------


def test_cut_heal_slow_and_lossy_change_the_links(cluster, tmp_path):
    assert chaos("cut", "us-east-1", "eu-west-1", run_dir=tmp_path).returncode == 0
    assert _link("us-east-1", "eu-west-1")["cut"] and _link("eu-west-1", "us-east-1")["cut"]
    assert chaos("heal", "us-east-1", "eu-west-1", run_dir=tmp_path).returncode == 0
    assert not _link("us-east-1", "eu-west-1")["cut"] and not _link("eu-west-1", "us-east-1")["cut"]

    slowed = chaos("slow", "us-east-1", "eu-west-1", "--latency-ms", "250", "--jitter-ms", "5", "--one-way", run_dir=tmp_path)
    assert slowed.returncode == 0, slowed.stderr
    assert "link-slow" in slowed.stdout and "us-east-1->eu-west-1" in slowed.stdout
    assert (_link("us-east-1", "eu-west-1")["latency_ms"], _link("us-east-1", "eu-west-1")["jitter_ms"]) == (250, 5)
    assert _link("eu-west-1", "us-east-1")["latency_ms"] == 0
    assert chaos("lossy", "eu-west-1", "us-east-1", "--loss", "0.25", run_dir=tmp_path).returncode == 0
    assert _link("eu-west-1", "us-east-1")["loss"] == 0.25 and _link("us-east-1", "eu-west-1")["loss"] == 0.25
    assert chaos("slow", "us-east-1", "eu-west-1", "--latency-ms", "0").returncode == 0
    assert chaos("lossy", "us-east-1", "eu-west-1", "--loss", "0").returncode == 0
    assert _link("us-east-1", "eu-west-1")["latency_ms"] == 0 and _link("us-east-1", "eu-west-1")["loss"] == 0

    refused = chaos("lossy", "us-east-1", "eu-west-1", "--loss", "1.5")
    assert refused.returncode == 2 and "--loss must be between 0 and 0.99" in refused.stderr
    unknown = chaos("cut", "us-east-1", "mars-1")
    assert unknown.returncode == 2 and "'mars-1' is not one of the regions" in unknown.stderr
    events = [orjson.loads(line) for line in (tmp_path / "faults.jsonl").read_bytes().splitlines()]
    assert [(e["fault"], e["phase"]) for e in events] == [
        ("link-cut", "inject"), ("link-cut", "revert"), ("link-slow", "inject"), ("link-lossy", "inject"),
    ]  # fmt: skip


def test_isolate_then_heal_the_region(cluster):
    isolated = chaos("isolate", "eu-west-1")
    assert isolated.returncode == 0, isolated.stderr
    assert _link("us-east-1", "eu-west-1")["cut"] and _link("eu-west-1", "us-east-1")["cut"]
    healed = chaos("heal", "eu-west-1")
    assert healed.returncode == 0, healed.stderr
    assert "revert  region-isolate" in healed.stdout
    assert not _link("us-east-1", "eu-west-1")["cut"] and not _link("eu-west-1", "us-east-1")["cut"]


def test_skew_and_replication_pause_reach_the_replicators(cluster):
    since = time.time()
    assert chaos("skew", "eu-west-1", "--ms", "1500").returncode == 0
    assert chaos("skew", "eu-west-1", "--ms", "0").returncode == 0
    assert chaos("pause", "eu-west-1").returncode == 0
    assert _link("us-east-1", "eu-west-1")["paused"] and _link("eu-west-1", "us-east-1")["paused"]
    assert chaos("resume", "eu-west-1").returncode == 0
    assert not _link("us-east-1", "eu-west-1")["paused"]
    with _control() as control:
        events = [(e["region"], e["command"], e["args"]) for e in control.events() if e["t"] >= since]
    assert ("eu-west-1", "clock-skew", {"ms": 1500}) in events and ("eu-west-1", "clock-skew", {"ms": 0}) in events
    assert [c for _, c, _ in events if c in ("pause", "resume")].count("pause") == len(REGIONS)


def test_a_verb_without_a_running_up_says_so(tmp_path):
    answer = subprocess.run([*MERIDIAN_COMMAND, "chaos", "kill", "us-east-1/node-0", "--cluster-dir", str(tmp_path)],
                            capture_output=True, text=True, timeout=VERB_TIMEOUT_S)  # fmt: skip
    assert answer.returncode == 2 and f"no running meridian up in {tmp_path}" in answer.stderr


def test_up_json_is_removed_when_up_stops(tmp_path):
    up = ManagedProcess(["up", "--data-dir", str(tmp_path / "c"), "--nodes-per-region", "1", "--port", "0"],
                        log_path=tmp_path / "up.log", name="meridian up")  # fmt: skip
    try:
        def up_json_written() -> bool:
            assert up.alive, up.log_tail(30)
            return state_path(tmp_path / "c").exists()

        wait_until(up_json_written, UP_TIMEOUT_S, 0.1, "meridian up to write up.json")
        assert [p["role"] for p in json.loads(state_path(tmp_path / "c").read_text())["processes"]] == ["node", "router"]
        up.kill(signal.SIGTERM)
        assert up.wait(30) == 0
        assert not state_path(tmp_path / "c").exists()
    finally:
        up.terminate()
