"""``meridian lab up|down|status|logs|build``: the Docker lab without learning Compose.

    meridian lab up            build what is missing, start the 15 containers, wait
                               until every region serves, print the endpoints
    meridian lab down [--wipe] stop and remove the containers; data stays in the
                               named volumes unless --wipe
    meridian lab status        each container's state and health
    meridian lab logs [SERVICE] [-f]
    meridian lab build         only build the image (and its base when needed)

With ``--swarm``, ``up``, ``status``, ``logs`` and ``down`` act on the same
lab deployed as a Docker Swarm stack (``deploy/swarm/stack.yml``) instead:
``up --swarm`` makes this machine a one-node swarm if it is in none, and
``down --swarm`` leaves the swarm as ``up`` found it (``lab/swarm.py``).

The lab's working files (wheelhouse, build context, the PID and log of a
dockerd the lab started) live in ``--lab-dir`` (``MERIDIAN_LAB_DIR``, default
``~/.cache/meridian-lab``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from meridian.cluster import limits
from meridian.cluster.startup_errors import FailureKind

from . import compose
from .dockerd import DockerUnavailable, ensure_docker, stop_started_dockerd
from .image import BuildError, build_image, image_exists
from .source import SourceNotFound, find_source
from .wait import NotReady, wait_ready

LAB_DIR_ENV = "MERIDIAN_LAB_DIR"


def default_lab_dir() -> Path:
    if os.environ.get(LAB_DIR_ENV):
        return Path(os.environ[LAB_DIR_ENV])
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "meridian-lab"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``meridian lab``."""
    parser.description = __doc__
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--lab-dir", type=Path, default=None, help=f"working files (default: ${LAB_DIR_ENV} or ~/.cache/meridian-lab)")
    parser.add_argument("--source", default=None, help="the Meridian source checkout to build from (default: found)")
    sub = parser.add_subparsers(dest="lab_command", required=True)

    def build_flags(p: argparse.ArgumentParser) -> None:
        p.add_argument("--base-image", default=None, help="build on this image (default: python:3.11-slim if present "
                       "or pullable, else a local Debian base made with debootstrap)")  # fmt: skip
        p.add_argument("--offline", action="store_true", help="never try to pull the public base image")

    up = sub.add_parser("up", help="build what is missing, start the lab, wait until every region serves")
    build_flags(up)
    up.add_argument("--no-build", action="store_true", help="use the image as it is (fail if there is none)")
    up.add_argument(
        "--timeout-s", type=float, default=limits.LAB_READY_TIMEOUT_S,
        help=f"time every region has to serve (default {limits.LAB_READY_TIMEOUT_S:g})",
    )
    down = sub.add_parser("down", help="stop and remove the lab's containers and networks (data is kept)")
    down.add_argument("--wipe", action="store_true", help="also delete the data volumes")
    down.add_argument("--stop-dockerd", action="store_true", help="also stop dockerd if `lab up` started it")
    for p in (up, down):
        p.add_argument("--swarm", action="store_true", help="the lab as a Docker Swarm stack (deploy/swarm/stack.yml)")
    status = sub.add_parser("status", help="each container's state and health")
    status.add_argument("--json", action="store_true", help="machine-readable")
    status.add_argument("--swarm", action="store_true", help="the swarm stack's services")
    logs = sub.add_parser("logs", help="the containers' output")
    logs.add_argument("service", nargs="?", help=f"one service, e.g. {compose.router_service(compose.REGIONS[0])} (default: all)")
    logs.add_argument("-f", "--follow", action="store_true")
    logs.add_argument("--tail", default="200", help="lines per container to start from (default 200, or 'all')")
    logs.add_argument("--swarm", action="store_true", help="the swarm stack's services (docker service logs)")
    build = sub.add_parser("build", help="build the lab's image (and a local base image when needed)")
    build_flags(build)
    build.add_argument("--force", action="store_true", help="rebuild even if the image is current")


def _say(text: str) -> None:
    print(text, flush=True)


def _fail(text: str, code: int = 1) -> int:
    print(f"meridian lab: {text}", file=sys.stderr, flush=True)
    return code


def run(ns: argparse.Namespace) -> int:
    lab_dir = (ns.lab_dir or default_lab_dir()).absolute()
    try:
        version = ensure_docker(lab_dir)
        if getattr(ns, "swarm", False):
            return _run_swarm(ns, lab_dir, version)
        if ns.lab_command in ("up", "down", "logs"):
            compose.compose_command()
        source = find_source(ns.source) if ns.lab_command in ("up", "build", "down", "logs") else None
        if ns.lab_command == "up":
            return _up(ns, source, lab_dir, version)
        if ns.lab_command == "build":
            build_image(source, lab_dir, base_image=ns.base_image, offline=ns.offline, force=ns.force, log=_say)
            return 0
        if ns.lab_command == "down":
            return _down(ns, source, lab_dir)
        if ns.lab_command == "status":
            return _status(ns)
        if ns.lab_command == "logs":
            return _logs(ns, source)
    except DockerUnavailable as exc:  # one line, its own exit code (`meridian --help` lists them)
        return _fail(str(exc), FailureKind.DOCKER_UNUSABLE.exit_code)
    except (BuildError, SourceNotFound, FileNotFoundError) as exc:
        return _fail(str(exc))
    except subprocess.TimeoutExpired as exc:
        return _fail(f"`{' '.join(map(str, exc.cmd))}` took longer than {exc.timeout:g} s")
    raise AssertionError(ns.lab_command)


def _run_swarm(ns: argparse.Namespace, lab_dir: Path, version: str) -> int:
    from . import swarm

    try:
        if ns.lab_command == "up":
            source = find_source(ns.source)
            _say(f"meridian lab: Docker {version}, swarm stack {swarm.STACK}, source {source}")
            return swarm.up(source, lab_dir, base_image=ns.base_image, offline=ns.offline, no_build=ns.no_build,
                            timeout_s=ns.timeout_s)  # fmt: skip
        if ns.lab_command == "down":
            code = swarm.down(lab_dir, wipe=ns.wipe)
            if ns.stop_dockerd:
                pid = stop_started_dockerd(lab_dir)
                _say(f"meridian lab: stopped dockerd (pid {pid})" if pid else "meridian lab: dockerd was not started by the lab; left running")
            return code
        if ns.lab_command == "status":
            return swarm.status(as_json=ns.json)
        return swarm.logs(ns.service, follow=ns.follow, tail=ns.tail)
    except swarm.SwarmError as exc:
        return _fail(str(exc))


def _up(ns: argparse.Namespace, source: Path, lab_dir: Path, version: str) -> int:
    started = time.monotonic()
    _say(f"meridian lab: Docker {version}, {' '.join(compose.compose_command())}, source {source}")
    if ns.no_build:
        if not image_exists(compose.DEFAULT_IMAGE):
            return _fail(f"no image {compose.DEFAULT_IMAGE}; run `meridian lab build` or drop --no-build")
    else:
        result = build_image(source, lab_dir, base_image=ns.base_image, offline=ns.offline, log=_say)
        if not result.built:
            _say(f"meridian lab: image {result.image} is up to date")
    result = compose.run_compose(source, ["up", "-d", "--remove-orphans"], capture=True, check=False, timeout_s=limits.COMPOSE_TIMEOUT_S)
    if result.returncode != 0:
        _show_failure()
        return _fail(f"compose up failed:\n{(result.stdout + result.stderr).strip()}")
    endpoints = compose.endpoints()
    compose_done = time.monotonic()
    try:
        wait_ready(endpoints, ns.timeout_s, on_ready=lambda region, s: _say(f"meridian lab: {region} serves ({s:.1f} s)"))
        _wait_healthy(compose_done + ns.timeout_s)
    except NotReady as exc:
        _show_failure()
        return _fail(f"{exc}\n(the lab is left running: `meridian lab status`, `meridian lab logs`, `meridian lab down`)")
    _print_banner(endpoints, time.monotonic() - started)
    return 0


def _wait_healthy(deadline: float) -> None:
    """Return once every container's health check passed (the first runs one interval after start)."""
    while True:
        states = container_states()
        waiting = {service: s for service, s in states.items() if (s["state"], s["health"]) != ("running", "healthy")}
        if not waiting:
            return
        broken = {service: s for service, s in waiting.items() if s["state"] != "running" or s["health"] == "unhealthy"}
        if broken or time.monotonic() >= deadline:
            detail = ", ".join(f"{service} {s['state']}/{s['health']}" for service, s in (broken or waiting).items())
            raise NotReady(f"containers not healthy: {detail}")
        time.sleep(limits.LAB_HEALTH_POLL_INTERVAL_S)


def _print_banner(endpoints: dict[str, str], seconds: float) -> None:
    width = max(map(len, endpoints))
    _say(f"meridian lab: {len(endpoints)} regions up in {seconds:.0f} s "
         f"({compose.NODES_PER_REGION} storage nodes, 1 router, 1 replicator each)")  # fmt: skip
    for region, url in endpoints.items():
        _say(f"  {region:<{width}}  {url.replace('127.0.0.1', 'localhost')}")
    first = next(iter(endpoints.values())).replace("127.0.0.1", "localhost")
    _say(f"try this: aws dynamodb list-tables --endpoint-url {first}")
    _say("status: meridian lab status | logs: meridian lab logs [SERVICE] -f | stop: meridian lab down [--wipe]")


def _down(ns: argparse.Namespace, source: Path, lab_dir: Path) -> int:
    args = ["down", "--remove-orphans"] + (["--volumes"] if ns.wipe else [])
    result = compose.run_compose(source, args, capture=True, check=False, timeout_s=limits.COMPOSE_TIMEOUT_S)
    if result.returncode != 0:
        return _fail(f"compose down failed:\n{(result.stdout + result.stderr).strip()}")
    _say("meridian lab: down" + (", data volumes deleted" if ns.wipe else "; data kept in the volumes (`lab down --wipe` deletes it)"))
    if ns.stop_dockerd:
        pid = stop_started_dockerd(lab_dir)
        _say(f"meridian lab: stopped dockerd (pid {pid})" if pid else "meridian lab: dockerd was not started by the lab; left running")
    return 0


def container_states() -> dict[str, dict[str, str]]:
    """Per service: ``{"container", "state", "health"}``; state ``absent`` when there is no container."""
    names = {compose.container_name(service): service for service in compose.services()}
    result = subprocess.run(
        ["docker", "inspect", "--format", "{{json .}}", *names],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=limits.DOCKER_INSPECT_TIMEOUT_S,
    )  # fmt: skip
    states = {service: {"container": name, "state": "absent", "health": "-"} for name, service in names.items()}
    for line in result.stdout.splitlines():
        if not line.strip():  # printed for a name with no container
            continue
        info = json.loads(line)
        service = names.get(info.get("Name", "").lstrip("/"))
        if service is None:
            continue
        state = info.get("State", {})
        states[service]["state"] = state.get("Status", "?")
        states[service]["health"] = (state.get("Health") or {}).get("Status", "-")
    return states


def _status(ns: argparse.Namespace) -> int:
    states = container_states()
    healthy = all(s["state"] == "running" and s["health"] == "healthy" for s in states.values())
    if ns.json:
        print(json.dumps({"healthy": healthy, "services": states, "endpoints": compose.endpoints()}, indent=2))
        return 0 if healthy else 1
    width = max(map(len, states))
    print(f"{'SERVICE':<{width}}  {'STATE':<10}  HEALTH")
    for service, s in states.items():
        print(f"{service:<{width}}  {s['state']:<10}  {s['health']}")
    absent = sum(s["state"] == "absent" for s in states.values())
    if absent == len(states):
        print("the lab is not running (`meridian lab up`)")
    else:
        for region, url in compose.endpoints().items():
            print(f"{region}: {url}")
    return 0 if healthy else 1


def _logs(ns: argparse.Namespace, source: Path) -> int:
    if ns.service is not None and ns.service not in compose.services():
        return _fail(f"no service {ns.service!r}; services: {', '.join(compose.services())}")
    args = ["logs", "--tail", str(ns.tail)] + (["--follow"] if ns.follow else []) + ([ns.service] if ns.service else [])
    try:
        return compose.run_compose(source, args, check=False).returncode
    except KeyboardInterrupt:
        return 0


def _show_failure() -> None:
    """What each container that is not running and healthy says, to stderr."""
    try:
        states = container_states()
    except (subprocess.SubprocessError, OSError, ValueError):
        return
    for service, s in states.items():
        if s["state"] == "running" and s["health"] in ("healthy", "starting"):
            continue
        print(f"--- {service}: {s['state']}, health {s['health']}", file=sys.stderr)
        if s["state"] != "absent":
            tail = subprocess.run(
                ["docker", "logs", "--tail", str(limits.LAB_FAILURE_LOG_LINES), s["container"]],
                stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=limits.DOCKER_INSPECT_TIMEOUT_S,
            )  # fmt: skip
            print((tail.stdout + tail.stderr).rstrip(), file=sys.stderr, flush=True)
