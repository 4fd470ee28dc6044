"""The lab's names, as ``deploy/docker-compose.yml`` declares them, and how to run Compose.

Chaos and demo tools address the lab through these names (interface I3):
the Compose project is ``meridian-lab``; per region there are services
``<region>-node-<i>``, ``<region>-router`` and ``<region>-replicator``, a
network ``<region>``, and all replicators share the network
``inter-region``.  Each region also has a DAX node, ``<region>-dax``
(``meridian dax`` in front of the region's router), kept out of
``services()`` (the Swarm stack, ``lab/swarm.py``, waits for every service
that lists and has no DAX yet): ``dax_services()``, ``all_services()``.  Containers and networks carry explicit names in the
Compose file (``meridian-lab-<service>``, ``meridian-lab-<network>``), so
they are the same under Compose v1 and v2, which name them differently by
default.  ``tests/lab/test_compose_file.py`` checks the file against this
module.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from meridian.cluster import limits

PROJECT = "meridian-lab"
REGIONS: tuple[str, ...] = ("us-east-1", "eu-west-1", "ap-southeast-2")
NODES_PER_REGION = 3
INTER_REGION_NETWORK = "inter-region"

#: Host ports of the regions' routers, in ``REGIONS`` order.
ROUTER_HOST_PORTS: dict[str, int] = {"us-east-1": 8000, "eu-west-1": 8001, "ap-southeast-2": 8002}
#: Ports inside the containers (every container has its own address).
ROUTER_PORT = 8000
NODE_PORT = 7000
REPLICATOR_PORT = 7100
REPLICATOR_METRICS_PORT = 9100
#: The regions' DAX nodes: the port inside the container, and the host ports they are published on
#: (and advertise in ``endpoints``, so the clients' next connections go where the first one went).
DAX_PORT = 8111
DAX_HOST_PORTS: dict[str, int] = {"us-east-1": 8111, "eu-west-1": 8112, "ap-southeast-2": 8113}

#: The image every service runs, unless ``MERIDIAN_LAB_IMAGE`` names another.
DEFAULT_IMAGE = "meridian:lab"
IMAGE_ENV = "MERIDIAN_LAB_IMAGE"

#: The host address the routers are published on (the Compose file's default).
BIND_ENV = "MERIDIAN_LAB_BIND"
DEFAULT_BIND = "127.0.0.1"
#: First two octets of the lab's subnets (the Compose file's default).
SUBNET_PREFIX_ENV = "MERIDIAN_LAB_SUBNET_PREFIX"
DEFAULT_SUBNET_PREFIX = "10.77"
#: Third octet of the inter-region subnet; a region's subnet is its 1-based index.
INTER_REGION_SUBNET = 100


def node_services(region: str) -> list[str]:
    return [f"{region}-node-{i}" for i in range(NODES_PER_REGION)]


def router_service(region: str) -> str:
    return f"{region}-router"


def replicator_service(region: str) -> str:
    return f"{region}-replicator"


def dax_service(region: str) -> str:
    return f"{region}-dax"


def region_services(region: str) -> list[str]:
    """A region's services in start order: nodes, replicator, router (its DAX node: ``dax_service``)."""
    return [*node_services(region), replicator_service(region), router_service(region)]


def services() -> list[str]:
    """Every service of the lab but the DAX nodes (see the module docstring)."""
    return [service for region in REGIONS for service in region_services(region)]


def dax_services() -> list[str]:
    return [dax_service(region) for region in REGIONS]


def all_services() -> list[str]:
    """Every service of the Compose file, in its order: each region's, then its DAX node."""
    return [service for region in REGIONS for service in (*region_services(region), dax_service(region))]


def region_of(service: str) -> str:
    """The region a service belongs to (``eu-west-1-node-2`` -> ``eu-west-1``)."""
    for region in REGIONS:
        if service.startswith(region + "-"):
            return region
    raise ValueError(f"{service!r} is not a lab service; services are {', '.join(all_services())}")


def container_name(service: str) -> str:
    """The Docker container running ``service`` (for ``docker kill``, ``pause``, ...)."""
    region_of(service)  # validates
    return f"{PROJECT}-{service}"


def network_name(network: str) -> str:
    """The Docker network of a region, or of ``inter-region`` (for ``docker network disconnect``)."""
    if network not in (*REGIONS, INTER_REGION_NETWORK):
        raise ValueError(f"{network!r} is not a lab network; networks are {', '.join((*REGIONS, INTER_REGION_NETWORK))}")
    return f"{PROJECT}-{network}"


def service_networks(service: str) -> list[str]:
    """The lab networks (short names) ``service`` is attached to."""
    region = region_of(service)
    return [region, INTER_REGION_NETWORK] if service == replicator_service(region) else [region]


def static_ip(service: str, network: str) -> str:
    """The fixed address of ``service`` on ``network`` (short names), as the Compose file assigns it.

    A chaos tool reconnecting a container it disconnected passes it to
    ``docker network connect --ip`` so peers find it where they left it.
    """
    if network not in service_networks(service):
        raise ValueError(f"{service} is not on the {network} network")
    region = region_of(service)
    index = REGIONS.index(region) + 1
    prefix = os.environ.get(SUBNET_PREFIX_ENV) or DEFAULT_SUBNET_PREFIX
    if network == INTER_REGION_NETWORK:
        return f"{prefix}.{INTER_REGION_SUBNET}.{10 + index}"
    if service == replicator_service(region):
        host = 20
    elif service == router_service(region):
        host = 30
    elif service == dax_service(region):
        host = 40
    else:
        host = 10 + node_services(region).index(service)
    return f"{prefix}.{index}.{host}"


def _client_host() -> str:
    bind = os.environ.get(BIND_ENV) or DEFAULT_BIND
    return "127.0.0.1" if bind in ("0.0.0.0", "::", "") else bind


def endpoints(host: str | None = None) -> dict[str, str]:
    """Each region's router as a client reaches it from this machine (``MERIDIAN_LAB_BIND`` honoured)."""
    host = host or _client_host()
    return {region: f"http://{host}:{port}" for region, port in ROUTER_HOST_PORTS.items()}


def dax_endpoints(host: str | None = None) -> dict[str, str]:
    """Each region's DAX node as a client reaches it from this machine (``dax://``)."""
    host = host or _client_host()
    return {region: f"dax://{host}:{port}" for region, port in DAX_HOST_PORTS.items()}


@lru_cache(maxsize=1)
def compose_command() -> list[str]:
    """``docker compose`` (v2) when the plugin is installed, else ``docker-compose`` (v1).

    Raises ``FileNotFoundError`` when neither is installed.
    """
    if shutil.which("docker"):
        try:
            probe = subprocess.run(
                ["docker", "compose", "version"],
                stdin=subprocess.DEVNULL, capture_output=True, timeout=limits.COMPOSE_PROBE_TIMEOUT_S,
            )  # fmt: skip
            if probe.returncode == 0:
                return ["docker", "compose"]
        except subprocess.TimeoutExpired:
            pass
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    raise FileNotFoundError("neither `docker compose` (v2) nor `docker-compose` (v1) is installed")


def compose_file(source_dir: Path) -> Path:
    return source_dir / "deploy" / "docker-compose.yml"


def compose_argv(source_dir: Path, args: Sequence[str]) -> list[str]:
    """The full command line of ``compose <args>`` on the lab's file and project."""
    return [*compose_command(), "-f", str(compose_file(source_dir)), "-p", PROJECT, *args]


def compose_env(image: str | None = None) -> dict[str, str]:
    env = dict(os.environ)
    if image is not None:
        env[IMAGE_ENV] = image
    return env


def run_compose(
    source_dir: Path, args: Sequence[str], *, image: str | None = None, capture: bool = False, check: bool = True,
    timeout_s: float | None = None,
) -> subprocess.CompletedProcess:
    """Run Compose on the lab; its output goes to ours unless ``capture``."""
    return subprocess.run(
        compose_argv(source_dir, args),
        env=compose_env(image),
        stdin=subprocess.DEVNULL,
        capture_output=capture,
        text=True,
        check=check,
        timeout=timeout_s,
    )
