"""``deploy/docker-compose.yml`` against the names and figures the tools rely on (no Docker needed).

The chaos and demo tools find containers, networks and addresses through
``meridian.lab.compose``; the replicators' start-up latencies must be the
real-world figures of ``meridian.replication.topology``; every process must
be reachable from the others (bind 0.0.0.0, stable node ids, the same node
list everywhere in a region).  When Compose v1 is installed, it must accept
the file too.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from meridian.lab import compose
from meridian.replication.topology import one_way_latency_ms, realistic_links

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "deploy" / "docker-compose.yml"
_VARIABLE = re.compile(r"\$\{(\w+):-([^}]*)\}")


def _with_defaults(value):
    """Compose's ``${VAR:-default}`` interpolation, every variable unset."""
    if isinstance(value, str):
        return _VARIABLE.sub(lambda m: m.group(2), value)
    if isinstance(value, list):
        return [_with_defaults(v) for v in value]
    if isinstance(value, dict):
        return {k: _with_defaults(v) for k, v in value.items()}
    return value


@pytest.fixture(scope="module")
def config() -> dict:
    return _with_defaults(yaml.safe_load(COMPOSE_FILE.read_text()))


def _flag(command: list[str], name: str) -> str:
    assert command.count(name) == 1, f"{name} given {command.count(name)} times in {command}"
    return command[command.index(name) + 1]


def _region_nodes(region: str) -> str:
    return ",".join(f"{s}={s}:{compose.NODE_PORT}" for s in compose.node_services(region))


def test_services_and_names_are_the_shared_ones(config):
    services = config["services"]
    assert list(services) == compose.all_services()
    assert compose.all_services() == [*compose.services()[:5], compose.dax_service("us-east-1"), *compose.services()[5:10],
                                      compose.dax_service("eu-west-1"), *compose.services()[10:],
                                      compose.dax_service("ap-southeast-2")]  # the DAX nodes are added, nothing else moved
    for name, service in services.items():
        assert service["container_name"] == compose.container_name(name)
        assert service["image"] == compose.DEFAULT_IMAGE
        networks = service["networks"]
        assert list(networks) == compose.service_networks(name)
        for network, settings in networks.items():
            assert settings["ipv4_address"] == compose.static_ip(name, network)
    assert {k: v["name"] for k, v in config["networks"].items()} == {
        n: compose.network_name(n) for n in (*compose.REGIONS, compose.INTER_REGION_NETWORK)
    }
    addresses = [s["ipv4_address"] for svc in services.values() for s in svc["networks"].values()]
    assert len(addresses) == len(set(addresses))


def test_each_region_is_three_nodes_a_replicator_and_a_router(config):
    services = config["services"]
    for region in compose.REGIONS:
        nodes = _region_nodes(region)
        for i, name in enumerate(compose.node_services(region)):
            command = services[name]["command"]
            assert command[1] == "node"
            assert _flag(command, "--listen") == f"0.0.0.0:{compose.NODE_PORT}"
            assert _flag(command, "--node-id") == name  # stable: keys are placed by id
            assert _flag(command, "--region") == region
            assert _flag(command, "--peers") == nodes
            assert _flag(command, "--data-dir") == "/data"
            assert services[name]["volumes"] == [f"{name}:/data"]
        router = services[compose.router_service(region)]
        command = router["command"]
        assert command[1] == "router"
        assert (_flag(command, "--host"), _flag(command, "--port")) == ("0.0.0.0", str(compose.ROUTER_PORT))
        assert _flag(command, "--nodes") == nodes
        assert _flag(command, "--replicator") == f"{compose.replicator_service(region)}:{compose.REPLICATOR_PORT}"
        assert router["ports"] == [f"127.0.0.1:{compose.ROUTER_HOST_PORTS[region]}:{compose.ROUTER_PORT}"]
        assert set(router["depends_on"]) == {*compose.node_services(region), compose.replicator_service(region)}
        replicator = services[compose.replicator_service(region)]
        command = replicator["command"]
        assert command[1] == "replicator"
        assert _flag(command, "--listen") == f"0.0.0.0:{compose.REPLICATOR_PORT}"
        assert _flag(command, "--nodes") == nodes
        peers = [r for r in compose.REGIONS if r != region]
        assert _flag(command, "--peers") == ",".join(
            f"{p}={compose.replicator_service(p)}:{compose.REPLICATOR_PORT}" for p in peers
        )
        assert replicator["volumes"] == [f"{compose.replicator_service(region)}:/data"]


def test_each_region_has_a_dax_node_in_front_of_its_router(config):
    services = config["services"]
    assert compose.DAX_HOST_PORTS == {"us-east-1": 8111, "eu-west-1": 8112, "ap-southeast-2": 8113}
    for region in compose.REGIONS:
        name = compose.dax_service(region)
        dax = services[name]
        command = dax["command"]
        assert command[1] == "dax"
        assert _flag(command, "--listen") == f"0.0.0.0:{compose.DAX_PORT}"
        assert _flag(command, "--upstream") == f"http://{compose.router_service(region)}:{compose.ROUTER_PORT}"
        assert _flag(command, "--region") == region
        assert _flag(command, "--node-id") == name
        host_port = compose.DAX_HOST_PORTS[region]
        # it lists itself where the host publishes it, not at its container's address
        assert _flag(command, "--advertise") == f"127.0.0.1:{host_port}"
        assert _flag(command, "--dax-attribute-lists") == "/data/dax-attribute-lists.jsonl"
        assert dax["volumes"] == [f"{name}:/data"]
        assert dax["ports"] == [f"127.0.0.1:{host_port}:{compose.DAX_PORT}"]
        assert dax["depends_on"] == {compose.router_service(region): {"condition": "service_healthy"}}
    assert compose.dax_endpoints("127.0.0.1")["eu-west-1"] == "dax://127.0.0.1:8112"


def test_link_latencies_are_the_real_world_figures(config):
    for region in compose.REGIONS:
        command = config["services"][compose.replicator_service(region)]["command"]
        peers = [r for r in compose.REGIONS if r != region]
        assert _flag(command, "--link") == realistic_links(region, peers)
    # The lab's figures, as geography orders them (Ireland is nearer Virginia than Sydney is).
    us_eu, us_ap, eu_ap = (
        one_way_latency_ms(a, b)
        for a, b in (("us-east-1", "eu-west-1"), ("us-east-1", "ap-southeast-2"), ("eu-west-1", "ap-southeast-2"))
    )
    assert 20 < us_eu < us_ap < eu_ap < 200


def test_every_service_has_a_real_health_check(config):
    for name, service in config["services"].items():
        test = service["healthcheck"]["test"]
        role = name.rsplit("-", 2)[-1] if name.endswith(("-router", "-replicator", "-dax")) else "node"
        port = {"router": compose.ROUTER_PORT, "replicator": compose.REPLICATOR_PORT, "node": compose.NODE_PORT,
                "dax": compose.DAX_PORT}[role]
        assert test == ["CMD", "python", "-m", "meridian.lab.probe", role, f"127.0.0.1:{port}"]


def test_volumes_are_named_and_declared(config):
    declared = set(config["volumes"])
    used = {v.split(":")[0] for s in config["services"].values() for v in s.get("volumes", [])}
    assert used == declared
    assert declared == {s for s in compose.all_services() if not s.endswith("-router")}


def test_static_ip_follows_the_subnet_prefix(monkeypatch):
    monkeypatch.setenv(compose.SUBNET_PREFIX_ENV, "10.99")
    assert compose.static_ip("eu-west-1-replicator", "inter-region") == "10.99.100.12"
    assert compose.static_ip("ap-southeast-2-node-2", "ap-southeast-2") == "10.99.3.12"
    assert compose.static_ip("eu-west-1-dax", "eu-west-1") == "10.99.2.40"
    with pytest.raises(ValueError):
        compose.static_ip("eu-west-1-router", "inter-region")
    with pytest.raises(ValueError):
        compose.container_name("mars-1-router")


def test_endpoints_are_the_published_ports(monkeypatch):
    monkeypatch.delenv(compose.BIND_ENV, raising=False)
    assert compose.endpoints() == {
        "us-east-1": "http://127.0.0.1:8000",
        "eu-west-1": "http://127.0.0.1:8001",
        "ap-southeast-2": "http://127.0.0.1:8002",
    }
    monkeypatch.setenv(compose.BIND_ENV, "0.0.0.0")
    assert compose.endpoints()["eu-west-1"] == "http://127.0.0.1:8001"


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="Compose v1 (docker-compose) is not installed")
def test_compose_v1_reads_the_file():
    result = subprocess.run(
        ["docker-compose", "-f", str(COMPOSE_FILE), "-p", compose.PROJECT, "config", "--services"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert sorted(result.stdout.split()) == sorted(compose.all_services())
