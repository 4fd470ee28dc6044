"""``meridian chaos run region-partition --lab``: the partition scenario against the Docker lab.

The same scenario as against ``meridian up`` (tests/integration/test_chaos_run.py),
here on containers: the isolation also disconnects ap-southeast-2's
replicator from the ``inter-region`` Docker network, which a watcher thread
confirms with ``docker network inspect`` while the run goes on, and the
reconnect restores its fixed address.  Every check must pass.

Then the one-off process verbs act on containers (``docker kill -s KILL``,
``docker start`` until healthy, ``docker pause``/``unpause``).

Guarded like the lab's own test (``lab_owner`` from test_compose_lab.py):
runs when Docker is usable here, skips otherwise, and FAILS when
``MERIDIAN_REQUIRE_DOCKER=1`` (CI); the lab is torn down afterwards.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
import pytest

from meridian.lab import compose
from tests.lab.test_compose_lab import _lab, lab_owner  # noqa: F401 - lab_owner is the fixture

SCENARIO = Path(__file__).resolve().parents[2] / "deploy" / "scenarios" / "region-partition.yaml"
CHAOS_TIMEOUT_S = 300.0
WATCH_INTERVAL_S = 0.5

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


class NetworkWatcher(threading.Thread):
    """Records, every half second, which containers are on the inter-region network."""

    def __init__(self) -> None:
        super().__init__(name="inter-region-watcher", daemon=True)
        self.network = compose.network_name(compose.INTER_REGION_NETWORK)
        self.seen: list[tuple[float, set[str]]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            answer = subprocess.run(
                ["docker", "network", "inspect", self.network, "--format", "{{json .Containers}}"],
                capture_output=True, text=True, timeout=30,
            )  # fmt: skip
            if answer.returncode == 0:
                containers = json.loads(answer.stdout or "{}") or {}
                self.seen.append((time.time(), {c["Name"] for c in containers.values()}))
            self.stop.wait(WATCH_INTERVAL_S)


def _ip_on_inter_region(container: str) -> str:
    fmt = "{{json .NetworkSettings.Networks}}"
    networks = json.loads(subprocess.run(["docker", "inspect", "--format", fmt, container], capture_output=True,
                                         text=True, timeout=30, check=True).stdout)  # fmt: skip
    return networks[compose.network_name(compose.INTER_REGION_NETWORK)]["IPAddress"]


def test_region_partition_on_the_docker_lab(lab_owner, tmp_path):  # noqa: F811 - the imported fixture
    up = _lab("up", "--offline")
    assert up.returncode == 0, up.stderr
    isolated = compose.container_name(compose.replicator_service("ap-southeast-2"))
    ip_before = _ip_on_inter_region(isolated)

    watcher = NetworkWatcher()
    watcher.start()
    run_dir = tmp_path / "run"
    try:
        chaos = subprocess.run(
            [sys.executable, "-m", "meridian.main", "chaos", "run", str(SCENARIO), "--seed", "1", "--lab",
             "--run-dir", str(run_dir)],
            capture_output=True, text=True, timeout=CHAOS_TIMEOUT_S,
        )  # fmt: skip
    finally:
        watcher.stop.set()
        watcher.join(30)
    print(chaos.stdout, chaos.stderr, flush=True)
    assert chaos.returncode == 0, chaos.stdout + chaos.stderr
    checks = {c["name"]: c for c in json.loads((run_dir / "checks.json").read_text())}
    assert all(c["passed"] for c in checks.values())
    assert json.loads((run_dir / "run.json").read_text())["target"] == "lab"

    faults = [orjson.loads(line) for line in (run_dir / "faults.jsonl").read_bytes().splitlines()]
    inject, revert = faults
    assert (inject["fault"], inject["target"], inject["args"]) == ("region-isolate", "ap-southeast-2", {"real": True})
    # The real cut: off the inter-region network while isolated, back on before the end, same address.
    during = [names for t, names in watcher.seen if inject["t"] + inject["took_ms"] / 1000 + 1 < t < revert["t"]]
    after = [names for t, names in watcher.seen if t > revert["t"] + revert["took_ms"] / 1000 + 1]
    assert during and all(isolated not in names for names in during)
    assert after and all(isolated in names for names in after)
    assert _ip_on_inter_region(isolated) == ip_before
    # The partitioned region kept serving; its backlog arrived after the heal.
    inside = checks["availability"]["figures"]["regions"]["ap-southeast-2"]["inside"]
    assert inside["requests"] > 50 and inside["errors"] == 0
    assert checks["lag-bound"]["figures"]["backlog_at_heal"] > 0

    # The one-off process verbs on containers: kill -9, restart (healthy again), pause, resume.
    node = compose.container_name("eu-west-1-node-1")
    router = compose.container_name("us-east-1-router")
    assert _verb("kill", "eu-west-1/node-1").endswith("eu-west-1/node-1: killed")
    assert _container_state(node) == ("exited", 137)
    assert _verb("restart", "eu-west-1/node-1").endswith("eu-west-1/node-1: running")
    assert _container_state(node)[0] == "running"
    assert _verb("pause", "us-east-1/router").endswith("us-east-1/router: paused")
    assert _container_state(router)[0] == "paused"
    assert _verb("resume", "us-east-1/router").endswith("us-east-1/router: running")
    assert _container_state(router)[0] == "running"


def _verb(*args: str) -> str:
    answer = subprocess.run([sys.executable, "-m", "meridian.main", "chaos", *args, "--lab"],
                            capture_output=True, text=True, timeout=CHAOS_TIMEOUT_S)  # fmt: skip
    print(answer.stdout, answer.stderr, flush=True)
    assert answer.returncode == 0, answer.stderr
    return answer.stdout.strip()


def _container_state(container: str) -> tuple[str, int]:
    fmt = "{{.State.Status}} {{.State.ExitCode}}"
    status, code = subprocess.run(["docker", "inspect", "--format", fmt, container], capture_output=True, text=True,
                                  timeout=30, check=True).stdout.split()  # fmt: skip
    return status, int(code)
