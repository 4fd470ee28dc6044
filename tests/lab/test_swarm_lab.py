"""The lab as a Docker Swarm stack end to end: ``meridian lab up --swarm``, a global table, a partition, ``down``.

On a one-node swarm of this machine (made by ``lab up --swarm`` when the
machine is in none): the three regions deploy from ``deploy/swarm/stack.yml``
and serve; a global table created in us-east-1 gets replicas in the other
two regions and a write in us-east-1 reads back in both; the
``region-partition`` scenario runs against the stack (``meridian chaos run
--swarm``: ap-southeast-2's replicator really loses its inter-region
interface for 10 s) and every check passes; then ``lab down --swarm --wipe``
must leave no service, container, network or volume of the stack, and the
swarm as it was found (left if the test's ``up`` made it, labels removed).

Guarded like the compose lab's test: runs when Docker is usable here (or can
be started), skips otherwise, FAILS instead when ``MERIDIAN_REQUIRE_DOCKER=1``
(CI); the stack is always removed at the end, even on failure.  Shares the
image with the compose lab's test (same source, no rebuild).  Each phase's
wall time is printed (``pytest -s``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from meridian.lab import compose, swarm
from meridian.lab.cli import container_states, default_lab_dir
from meridian.lab.dockerd import DockerUnavailable, ensure_docker, started_dockerd_pid
from meridian.lab.lock import exclusive_lab
from tests.conftest import make_client, unique_table_name
from tests.lab.test_compose_lab import _lab, _port_in_use, _read_all, _required, _unavailable, _wait_replica_active

SCENARIO = Path(__file__).resolve().parents[2] / "deploy" / "scenarios" / "region-partition.yaml"
#: A cold run builds the base image and the image first (minutes); warm, the whole test takes about 2.
SWARM_TEST_TIMEOUT_S = 1500
LOCK_TIMEOUT_S = 900.0
CHAOS_TIMEOUT_S = 300.0
VISIBLE_TIMEOUT_S = 30.0
ITEMS = 10

pytestmark = [pytest.mark.slow, pytest.mark.timeout(SWARM_TEST_TIMEOUT_S)]


def _node_labels() -> dict[str, str]:
    info = swarm.swarm_info()
    if info["state"] != "active":
        return {}
    answer = subprocess.run(["docker", "node", "inspect", "--format", "{{json .Spec.Labels}}", info["node"]],
                            capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    return json.loads(answer.stdout or "null") or {}


@pytest.fixture
def swarm_owner():
    """Docker usable (started if need be), the lab ours; the stack removed after, whatever happens.

    Yields the swarm's state and this node's labels before the test.
    """
    lab_dir = default_lab_dir()
    dockerd_before = started_dockerd_pid(lab_dir)
    try:
        ensure_docker(lab_dir)
    except DockerUnavailable as exc:
        _unavailable(str(exc))
    with exclusive_lab(lab_dir, LOCK_TIMEOUT_S):
        before = swarm.swarm_info()
        if before["state"] not in ("inactive", "active") or (before["state"] == "active" and before["manager"] != "true"):
            _unavailable(f"this machine is a swarm {before['state']} node that does not manage it")
        deployed = before["state"] == "active" and any(s["state"] != "absent" for s in swarm.service_states().values())
        if deployed and not _required():
            pytest.skip("the swarm stack is already deployed; not replacing it")
        if deployed:
            pass  # CI: the test's `lab up --swarm` takes it over
        elif any(s["state"] != "absent" for s in container_states().values()):
            _unavailable("the compose lab runs here and holds ports 8000-8002 (`meridian lab down`)")
        elif [p for p in compose.ROUTER_HOST_PORTS.values() if _port_in_use(p)]:
            _unavailable("host ports 8000-8002 are in use by something else")
        labels_before = _node_labels()
        try:
            yield before, labels_before
        finally:
            _lab("down", "--swarm", "--wipe")
            if dockerd_before is None and started_dockerd_pid(lab_dir) is not None:
                _lab("down", "--stop-dockerd")


def test_swarm_stack_global_table_and_partition(swarm_owner, tmp_path):
    swarm_before, labels_before = swarm_owner
    timings: dict[str, float] = {}

    started = time.monotonic()
    up = _lab("up", "--swarm", "--offline")
    timings["lab up --swarm (build if needed)"] = time.monotonic() - started
    assert up.returncode == 0, up.stderr
    assert "try this: aws dynamodb list-tables --endpoint-url http://localhost:8000" in up.stdout
    status = _lab("status", "--swarm", "--json")
    assert status.returncode == 0, status.stdout
    assert json.loads(status.stdout)["healthy"] is True
    assert {r: f"meridian-region.{r}" in _node_labels() for r in compose.REGIONS} == dict.fromkeys(compose.REGIONS, True)

    # A global table: created in us-east-1, a replica in each other region, writes read back there.
    endpoints = swarm.endpoints()
    clients = {region: make_client(url) for region, url in endpoints.items()}
    home, *others = compose.REGIONS
    table = unique_table_name("swarm")
    started = time.monotonic()
    clients[home].create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    for region in others:
        clients[home].update_table(TableName=table, ReplicaUpdates=[{"Create": {"RegionName": region}}])
        _wait_replica_active(clients[home], table, region)
    written = {f"item-{i}": f"value-{i}-{time.time_ns()}" for i in range(ITEMS)}
    for key, value in written.items():
        clients[home].put_item(TableName=table, Item={"pk": {"S": key}, "v": {"S": value}})
    for region in others:
        _read_all(clients[region], table, written, VISIBLE_TIMEOUT_S)
    timings["global table, 3 regions, writes visible everywhere"] = time.monotonic() - started

    # The partition scenario against the stack: a real cut of ap-southeast-2's replicator.
    run_dir = tmp_path / "run"
    started = time.monotonic()
    chaos = subprocess.run(
        [sys.executable, "-m", "meridian.main", "chaos", "run", str(SCENARIO), "--seed", "1", "--swarm", "--run-dir", str(run_dir)],
        capture_output=True, text=True, timeout=CHAOS_TIMEOUT_S,
    )  # fmt: skip
    timings["chaos run region-partition --swarm"] = time.monotonic() - started
    print(chaos.stdout, chaos.stderr, flush=True)
    assert chaos.returncode == 0, chaos.stdout + chaos.stderr
    checks = {c["name"]: c for c in json.loads((run_dir / "checks.json").read_text())}
    assert all(c["passed"] for c in checks.values())
    assert json.loads((run_dir / "run.json").read_text())["target"] == "swarm"
    inject, revert = [orjson.loads(line) for line in (run_dir / "faults.jsonl").read_bytes().splitlines()]
    assert (inject["fault"], inject["phase"], revert["phase"]) == ("region-isolate", "inject", "revert")
    assert inject["args"] == {"real": True} and inject["error"] is None and revert["error"] is None
    inside = checks["availability"]["figures"]["regions"]["ap-southeast-2"]["inside"]
    assert inside["requests"] > 50 and inside["errors"] == 0
    assert checks["lag-bound"]["figures"]["backlog_at_heal"] > 0

    started = time.monotonic()
    down = _lab("down", "--swarm", "--wipe")
    timings["lab down --swarm --wipe"] = time.monotonic() - started
    assert down.returncode == 0, down.stderr
    assert swarm.stack_resources() == {"services": [], "containers": [], "networks": [], "volumes": []}
    after = swarm.swarm_info()
    assert after["state"] == swarm_before["state"]
    assert _node_labels() == labels_before
    print("swarm timings: " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in timings.items()), flush=True)
