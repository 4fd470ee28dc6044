"""The Docker lab end to end, as a user drives it: ``meridian lab up``, boto3, ``lab down``.

Builds the image offline when needed (wheelhouse on the host; the public
base image if it is already here, else a debootstrapped Debian), starts the
three regions, makes a global table (created in us-east-1, replicas added
with ``UpdateTable ReplicaUpdates``), writes in us-east-1 and reads the
writes in the other two regions, and one of them through each region's DAX
node with the published Python DAX client (when installed); then ``lab down`` + ``lab up`` must keep
the data, and ``lab down --wipe`` must delete it.  The lab is always torn
down (with its volumes) at the end, and a dockerd this test made the lab
start is stopped again.

Runs when Docker is usable here (or can be started), is skipped otherwise,
and FAILS instead of skipping when ``MERIDIAN_REQUIRE_DOCKER=1`` (CI).  A lab
that is already running belongs to someone: the test skips rather than
replace it, unless Docker is required.  Each phase's wall time is printed
(``pytest -s``).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from meridian.lab import compose
from meridian.lab.cli import container_states, default_lab_dir
from meridian.lab.dockerd import DockerUnavailable, ensure_docker, started_dockerd_pid
from meridian.lab.lock import exclusive_lab
from tests.conftest import make_client, unique_table_name
from tests.waiting import wait_until

REQUIRE_ENV = "MERIDIAN_REQUIRE_DOCKER"
#: A cold run builds a base image (debootstrap) and the image: minutes, not seconds.
LAB_TEST_TIMEOUT_S = 1500
LAB_COMMAND_TIMEOUT_S = 900.0
#: Waiting for another test run's lab to be released.
LOCK_TIMEOUT_S = 900.0
REPLICA_ACTIVE_TIMEOUT_S = 60.0
VISIBLE_TIMEOUT_S = 30.0
#: A DAX node starts once its router is healthy: a little after ``lab up`` returns.
DAX_READY_TIMEOUT_S = 60.0
ITEMS = 20

pytestmark = [pytest.mark.slow, pytest.mark.timeout(LAB_TEST_TIMEOUT_S)]


def _required() -> bool:
    return os.environ.get(REQUIRE_ENV) == "1"


def _unavailable(reason: str) -> None:
    if _required():
        pytest.fail(f"{REQUIRE_ENV}=1 but the Docker lab cannot run: {reason}")
    pytest.skip(f"Docker lab not runnable: {reason}")


def _lab(*args: str) -> subprocess.CompletedProcess:
    """``meridian lab ARGS`` as a user runs it; its output is shown with the test's."""
    command = [sys.executable, "-m", "meridian.main", "lab", *args]
    result = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=LAB_COMMAND_TIMEOUT_S)
    print(f"$ meridian lab {' '.join(args)}  (exit {result.returncode})\n{result.stdout}{result.stderr}", flush=True)
    return result


def _port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _lab_volumes() -> list[str]:
    result = subprocess.run(
        ["docker", "volume", "ls", "--quiet", "--filter", f"label=com.docker.compose.project={compose.PROJECT}"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return result.stdout.split()


@pytest.fixture
def lab_owner():
    """Docker usable (started if need be), the lab ours for the test; torn down after, whatever happens."""
    lab_dir = default_lab_dir()
    dockerd_before = started_dockerd_pid(lab_dir)
    try:
        ensure_docker(lab_dir)
        compose.compose_command()
    except (DockerUnavailable, FileNotFoundError) as exc:
        _unavailable(str(exc))
    with exclusive_lab(lab_dir, LOCK_TIMEOUT_S):
        existing = [s for s, state in container_states().items() if state["state"] != "absent"]
        if existing and not _required():
            pytest.skip(f"a lab is already running ({len(existing)} containers); not replacing it")
        busy = [p for p in (*compose.ROUTER_HOST_PORTS.values(), *compose.DAX_HOST_PORTS.values()) if _port_in_use(p)]
        if busy and not existing:
            _unavailable(f"host ports {busy} are in use by something else")
        try:
            yield
        finally:
            _lab("down", "--wipe")
            if dockerd_before is None and started_dockerd_pid(lab_dir) is not None:
                _lab("down", "--stop-dockerd")


def _wait_replica_active(client, table: str, region: str) -> None:
    def active() -> bool:
        description = client.describe_table(TableName=table)["Table"]
        status = {r["RegionName"]: r.get("ReplicaStatus") for r in description.get("Replicas", [])}
        return status.get(region) == "ACTIVE" and description["TableStatus"] == "ACTIVE"

    wait_until(active, REPLICA_ACTIVE_TIMEOUT_S, 0.2, f"replica {region} of {table} to be ACTIVE")


def _read_all(client, table: str, expected: dict[str, str], timeout_s: float) -> float:
    """Poll until every expected item reads back (strongly consistent); seconds it took."""
    started = time.monotonic()
    missing = dict(expected)

    def all_arrived() -> bool:
        for key in list(missing):
            item = client.get_item(TableName=table, Key={"pk": {"S": key}}, ConsistentRead=True).get("Item")
            if item is not None and item["v"]["S"] == missing[key]:
                del missing[key]
        return not missing

    wait_until(all_arrived, timeout_s, 0.1, f"all {len(expected)} items to arrive")
    return time.monotonic() - started


def _get_through_dax(table: str, written: tuple[str, str]) -> dict[str, float]:
    """One GetItem through each region's DAX node, with the real client; seconds until each answered."""
    try:
        import amazondax
    except ImportError:
        print("amazon-dax-client is not installed: no GetItem through DAX", flush=True)
        return {}
    from meridian.lab import probe

    key, value = written
    timings = {}
    for region, url in compose.dax_endpoints().items():
        started = time.monotonic()
        address = url.split("://", 1)[1]
        wait_until(lambda: probe.probe_dax(address), DAX_READY_TIMEOUT_S, 0.5, f"the DAX node of {region}",
                   ignoring=(probe.ProbeFailed, OSError))
        client = amazondax.AmazonDaxClient(endpoint_url=url, region_name=region,
                                           aws_access_key_id="lab", aws_secret_access_key="lab")
        try:
            item = client.get_item(TableName=table, Key={"pk": {"S": key}})["Item"]
        finally:
            client.close()
        assert item["v"] == {"S": value}
        timings[f"GetItem through {region}'s DAX node"] = time.monotonic() - started
    return timings


def test_compose_lab_global_table_survives_restart(lab_owner):
    timings: dict[str, float] = {}

    started = time.monotonic()
    up = _lab("up", "--offline")
    timings["lab up (build if needed)"] = time.monotonic() - started
    assert up.returncode == 0, up.stderr
    assert "try this: aws dynamodb list-tables --endpoint-url http://localhost:8000" in up.stdout
    status = _lab("status", "--json")
    assert status.returncode == 0, status.stdout
    assert json.loads(status.stdout)["healthy"] is True

    endpoints = compose.endpoints()
    clients = {region: make_client(url) for region, url in endpoints.items()}
    home, *others = compose.REGIONS
    table = unique_table_name("lab")
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
    timings["global table with 2 replicas"] = time.monotonic() - started
    for region in others:  # each replica region serves the table and knows where it came from
        # The coordinator marks the last replica ACTIVE in every replica region
        # in turn, and each region's routers see it at their next catalog
        # refresh: the home region may say ACTIVE a moment before the others.
        wait_until(
            lambda: clients[region].describe_table(TableName=table)["Table"]["TableStatus"] == "ACTIVE",
            REPLICA_ACTIVE_TIMEOUT_S, 0.2, f"{table} to be ACTIVE in {region}",
        )
        described = clients[region].describe_table(TableName=table)["Table"]
        assert home in {r["RegionName"] for r in described["Replicas"]}

    written = {f"item-{i}": f"value-{i}-{time.time_ns()}" for i in range(ITEMS)}
    for key, value in written.items():
        clients[home].put_item(TableName=table, Item={"pk": {"S": key}, "v": {"S": value}})
    for region in others:
        timings[f"all {ITEMS} writes visible in {region}"] = _read_all(clients[region], table, written, VISIBLE_TIMEOUT_S)

    timings.update(_get_through_dax(table, next(iter(written.items()))))

    started = time.monotonic()
    down = _lab("down")
    assert down.returncode == 0, down.stderr
    assert all(s["state"] == "absent" for s in container_states().values())
    assert len(_lab_volumes()) == len(compose.all_services()) - len(compose.REGIONS)  # all but the routers
    up = _lab("up", "--offline")
    timings["lab down + lab up (warm)"] = time.monotonic() - started
    assert up.returncode == 0, up.stderr
    clients = {region: make_client(url) for region, url in endpoints.items()}
    for region in compose.REGIONS:
        assert _read_all(clients[region], table, written, VISIBLE_TIMEOUT_S) < VISIBLE_TIMEOUT_S
        assert table in clients[region].list_tables()["TableNames"]

    started = time.monotonic()
    wiped = _lab("down", "--wipe")
    timings["lab down --wipe"] = time.monotonic() - started
    assert wiped.returncode == 0, wiped.stderr
    assert _lab_volumes() == []
    print("lab timings: " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in timings.items()), flush=True)
