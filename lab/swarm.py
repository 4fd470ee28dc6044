"""``meridian lab up|status|logs|down --swarm``: the lab as a Docker Swarm stack.

The same three regions, image, processes and flags as the compose lab, from
``deploy/swarm/stack.yml`` (stack ``meridian-swarm``), so that the files
that run them on this machine would place them on three hosts.  ``up``:

1. makes this machine a one-node swarm when it is in none (``docker swarm
   init`` on 127.0.0.1 only: nothing listens outside), and gives it the
   label of every region (``meridian-region.<region>=true``);
2. builds the image as ``meridian lab build`` does and tags it
   ``meridian:swarm-<source fingerprint>``, so a changed source is a changed
   service spec, which Swarm rolls out;
3. rolls a changed image over the storage nodes one at a time (``docker
   service update --detach=false`` waits for each to be healthy), because
   ``docker stack deploy`` would replace them all at once;
4. deploys the stack and waits until every service's task passed its health
   check and every region serves.

What ``up`` changed is written to ``<lab dir>/swarm.json``; ``down`` reads it
to leave the machine as it found it: it removes the labels it added and, if
it made the swarm, leaves it (and removes ``docker_gwbridge`` if that came
with it).  Data stays in the stack's volumes unless ``--wipe``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from meridian.cluster import limits as lab_limits
from meridian.model import limits

from . import compose
from .image import SOURCE_HASH_LABEL, build_image, image_labels
from .wait import NotReady, wait_ready

STACK = "meridian-swarm"
STATE_FILE = "swarm.json"
#: The node label that places a region's services; one key per region, as a key holds one value.
REGION_LABEL_PREFIX = "meridian-region."
#: Tags of the image per source fingerprint (``MERIDIAN_SWARM_IMAGE`` in the stack file).
IMAGE_TAG_PREFIX = "meridian:swarm-"
IMAGE_ENV = "MERIDIAN_SWARM_IMAGE"
NAMESPACE_LABEL = "com.docker.stack.namespace"
GWBRIDGE = "docker_gwbridge"


class SwarmError(RuntimeError):
    """The swarm cannot be made, used or cleaned up, with the reason."""


def _docker(args: list[str], *, timeout_s: float = limits.SWARM_COMMAND_TIMEOUT_S, check: bool = True,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:  # fmt: skip
    done = subprocess.run(["docker", *args], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout_s, env=env)
    if check and done.returncode != 0:
        raise SwarmError(f"docker {' '.join(args)}: {(done.stderr or done.stdout).strip() or f'exit code {done.returncode}'}")
    return done


# --- names ----------------------------------------------------------------------


def stack_file(source: Path) -> Path:
    return source / "deploy" / "swarm" / "stack.yml"


def service_name(service: str) -> str:
    """The Swarm service of a lab service (``us-east-1-router`` -> ``meridian-swarm_us-east-1-router``)."""
    compose.region_of(service)  # validates
    return f"{STACK}_{service}"


def network_name(network: str) -> str:
    compose.network_name(network)  # validates
    return f"{STACK}_{network}"


def region_label(region: str) -> str:
    return f"{REGION_LABEL_PREFIX}{region}"


def endpoints() -> dict[str, str]:
    """Each region's router from this machine: the stack publishes 8000-8002 on the host running it."""
    return {region: f"http://127.0.0.1:{port}" for region, port in compose.ROUTER_HOST_PORTS.items()}


# --- the swarm itself --------------------------------------------------------------


def swarm_info() -> dict[str, str]:
    """``{"state": "inactive|active|pending|...", "manager": "true|false", "node": ID}``."""
    fmt = "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}} {{.Swarm.NodeID}}"
    state, manager, node = (_docker(["info", "--format", fmt]).stdout.split() + ["", ""])[:3]
    return {"state": state, "manager": manager, "node": node}


def _read_state(lab_dir: Path) -> dict:
    try:
        return json.loads((lab_dir / STATE_FILE).read_text())
    except (OSError, ValueError):
        return {}


def _write_state(lab_dir: Path, state: dict) -> None:
    lab_dir.mkdir(parents=True, exist_ok=True)
    (lab_dir / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")


def _network_exists(name: str) -> bool:
    return _docker(["network", "inspect", name], check=False).returncode == 0


def ensure_swarm(lab_dir: Path, log=print) -> dict:
    """A swarm this machine manages, labelled for every region; returns what was changed (kept in swarm.json)."""
    state = _read_state(lab_dir)
    info = swarm_info()
    if info["state"] == "inactive":
        gwbridge_before = _network_exists(GWBRIDGE)
        _docker(["swarm", "init", "--advertise-addr", "127.0.0.1", "--listen-addr", "127.0.0.1:2377"])
        state = {"made_swarm": True, "made_gwbridge": not gwbridge_before, "labels_added": []}
        info = swarm_info()
        state["node"] = info["node"]
        _write_state(lab_dir, state)  # at once: a failure below must still let `down` undo it
        log(f"meridian lab: made this machine a one-node swarm (node {info['node'][:12]}, on 127.0.0.1 only)")
    elif info["state"] != "active" or info["manager"] != "true":
        raise SwarmError(f"this machine's swarm state is {info['state']} (manager: {info['manager']}); "
                         "`meridian lab up --swarm` needs a manager node or no swarm at all")  # fmt: skip
    state.setdefault("made_swarm", False)
    state.setdefault("labels_added", [])
    state["node"] = info["node"]
    labels = json.loads(_docker(["node", "inspect", "--format", "{{json .Spec.Labels}}", info["node"]]).stdout or "null") or {}
    missing = [region_label(r) for r in compose.REGIONS if labels.get(region_label(r)) != "true"]
    if missing:
        args = [arg for label in missing for arg in ("--label-add", f"{label}=true")]
        _docker(["node", "update", *args, info["node"]])
        state["labels_added"] = sorted(set(state["labels_added"]) | {m for m in missing if m not in labels})
        log(f"meridian lab: labelled this node {', '.join(f'{m}=true' for m in missing)}")
    _write_state(lab_dir, state)
    return state


def restore_swarm(lab_dir: Path, log=print) -> None:
    """Undo ``ensure_swarm``: the labels it added, then the swarm if it made it."""
    state = _read_state(lab_dir)
    if not state:
        return
    info = swarm_info()
    if info["state"] == "active" and state.get("labels_added") and info["node"] == state.get("node"):
        args = [arg for label in state["labels_added"] for arg in ("--label-rm", label)]
        _docker(["node", "update", *args, info["node"]], check=False)
    if state.get("made_swarm") and info["state"] != "inactive" and info["node"] == state.get("node"):
        _docker(["swarm", "leave", "--force"])
        log("meridian lab: left the swarm `lab up --swarm` had made")
        if state.get("made_gwbridge"):
            _remove_gwbridge(log)
    elif state.get("labels_added"):
        log(f"meridian lab: removed the labels {', '.join(state['labels_added'])}; the swarm stays as it was")
    (lab_dir / STATE_FILE).unlink(missing_ok=True)


def _remove_gwbridge(log) -> None:
    """Remove the bridge ``swarm init`` made; the engine may hold stale endpoints on it for a while."""
    deadline = time.monotonic() + limits.SWARM_COMMAND_TIMEOUT_S
    while _network_exists(GWBRIDGE):
        answer = _docker(["network", "rm", GWBRIDGE], check=False)
        if answer.returncode == 0:
            return
        if time.monotonic() >= deadline:
            log(f"meridian lab: could not remove {GWBRIDGE}, which `swarm init` made ({answer.stderr.strip()}); "
                "the engine reuses it at the next `swarm init`, or `docker network rm` it after restarting dockerd")  # fmt: skip
            return
        time.sleep(limits.SWARM_POLL_INTERVAL_S)


# --- the stack ---------------------------------------------------------------------


def swarm_image(source: Path, lab_dir: Path, *, base_image: str | None, offline: bool, log=print) -> str:
    """Build the lab's image if needed; tag it by its source fingerprint, the tag the services run."""
    result = build_image(source, lab_dir, base_image=base_image, offline=offline, log=log)
    if not result.built:
        log(f"meridian lab: image {result.image} is up to date")
    fingerprint = (image_labels(result.image) or {}).get(SOURCE_HASH_LABEL, "unknown")
    tag = f"{IMAGE_TAG_PREFIX}{fingerprint[:12]}"
    _docker(["tag", result.image, tag])
    return tag


def service_images() -> dict[str, str]:
    """The image each deployed service of the stack runs (by lab service name)."""
    answer = _docker(["service", "ls", "--filter", f"label={NAMESPACE_LABEL}={STACK}", "--format", "{{.Name}} {{.Image}}"])
    prefix = f"{STACK}_"
    return {name[len(prefix):]: image for name, image in (line.split() for line in answer.stdout.splitlines() if line.strip())}


def roll_storage_nodes(image: str, log=print) -> int:
    """Move every deployed storage node that runs another image to ``image``, one at a time; how many moved."""
    current = service_images()
    moved = 0
    for region in compose.REGIONS:
        for service in compose.node_services(region):
            if service not in current or current[service] == image:
                continue
            started = time.monotonic()
            _docker(["service", "update", "--detach=false", "--quiet", "--no-resolve-image", "--image", image, service_name(service)],
                    timeout_s=limits.SWARM_NODE_UPDATE_TIMEOUT_S)  # fmt: skip
            wait_node_serves(service, started + limits.SWARM_NODE_UPDATE_TIMEOUT_S)
            moved += 1
            log(f"meridian lab: {service} now runs {image} ({time.monotonic() - started:.0f} s)")
    return moved


def deploy(source: Path, image: str) -> None:
    env = {**os.environ, IMAGE_ENV: image}
    _docker(["stack", "deploy", "--resolve-image", "never", "--prune", "--compose-file", str(stack_file(source)), STACK],
            timeout_s=limits.SWARM_DEPLOY_TIMEOUT_S, env=env)  # fmt: skip


def task_container(service: str) -> str | None:
    """The ID of the running (or paused) container of ``service``'s task on this machine, if any."""
    answer = _docker(["ps", "--quiet", "--filter", f"label=com.docker.swarm.service.name={service_name(service)}",
                      "--filter", "status=running", "--filter", "status=paused"], check=False)  # fmt: skip
    found = answer.stdout.split()
    return found[0] if found else None


def node_serves(service: str) -> bool:
    """The compose lab's node health check (``Storage.Info``), run in the node's task (see the stack file)."""
    container = task_container(service)
    if container is None:
        return False
    probe = ["exec", container, "python", "-m", "meridian.lab.probe", "node", f"127.0.0.1:{compose.NODE_PORT}"]
    return _docker(probe, check=False).returncode == 0


def wait_node_serves(service: str, deadline: float) -> None:
    while not node_serves(service):
        if time.monotonic() >= deadline:
            raise SwarmError(f"{service} does not serve (Storage.Info) after its update: `meridian lab logs --swarm {service}`")
        time.sleep(limits.SWARM_POLL_INTERVAL_S)


def service_states(known_healthy: frozenset[str] = frozenset()) -> dict[str, dict[str, str]]:
    """Per lab service: ``{"service", "state", "health", "error"}``; state ``absent`` without a service.

    A task's state is Swarm's: ``running`` once its health check passed
    (``starting`` before), and at once for a storage node, which has none;
    a running node is ``healthy`` when its probe answers through ``docker
    exec`` (not asked again for those in ``known_healthy``).
    """
    states = {s: {"service": service_name(s), "state": "absent", "health": "-", "error": ""} for s in compose.services()}
    deployed = set(service_images())
    answer = _docker(["stack", "ps", STACK, "--filter", "desired-state=running", "--no-trunc",
                      "--format", "{{.Name}}\t{{.CurrentState}}\t{{.Error}}"], check=False)  # fmt: skip
    for service in deployed & set(states):
        states[service]["state"] = "pending"
    for line in answer.stdout.splitlines():
        name, _, rest = line.partition("\t")
        current, _, error = rest.partition("\t")
        service = name[len(STACK) + 1:].rsplit(".", 1)[0]
        if service in states:
            task_state = current.split()[0].lower() if current.strip() else "pending"
            states[service].update(state=task_state, health="healthy" if task_state == "running" else "starting", error=error.strip())
    for service, s in states.items():
        if s["state"] == "running" and service.rsplit("-", 2)[-2] == "node" and service not in known_healthy:
            s["health"] = "healthy" if node_serves(service) else "starting"
    return states


def wait_services_running(deadline: float) -> None:
    healthy: set[str] = set()
    while True:
        states = service_states(frozenset(healthy))
        healthy |= {s for s, v in states.items() if v["health"] == "healthy"}
        waiting = {s: v for s, v in states.items() if v["health"] != "healthy"}
        if not waiting:
            return
        if time.monotonic() >= deadline:
            detail = ", ".join(f"{s} {v['state']}" + (f" ({v['error']})" if v["error"] else "") for s, v in waiting.items())
            raise NotReady(f"services without a healthy task: {detail}")
        time.sleep(limits.SWARM_POLL_INTERVAL_S)


def _port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def stack_resources() -> dict[str, list[str]]:
    """What of the stack is left: services, containers, networks, volumes (names)."""
    label = f"label={NAMESPACE_LABEL}={STACK}"
    found = {}
    for kind, args in (("services", ["service", "ls"]), ("containers", ["ps", "-a"]), ("networks", ["network", "ls"]),
                       ("volumes", ["volume", "ls"])):  # fmt: skip
        answer = _docker([*args, "--filter", label, "--format", "{{.Name}}" if kind != "containers" else "{{.Names}}"], check=False)
        found[kind] = answer.stdout.split()
    return found


def remove_stack(*, wipe: bool) -> None:
    """``docker stack rm``, then wait until its containers and networks are gone (and delete volumes if ``wipe``)."""
    if swarm_info()["state"] == "active":
        _docker(["stack", "rm", STACK], check=False)
    deadline = time.monotonic() + limits.SWARM_REMOVE_TIMEOUT_S
    while True:
        left = stack_resources()
        if not (left["services"] or left["containers"] or left["networks"]):
            break
        if time.monotonic() >= deadline:
            raise SwarmError(f"the stack was not gone after {limits.SWARM_REMOVE_TIMEOUT_S:g} s: {left}")
        time.sleep(limits.SWARM_POLL_INTERVAL_S)
    if wipe and left["volumes"]:
        _docker(["volume", "rm", *left["volumes"]])


def _drop_old_tags(keep: str) -> None:
    answer = _docker(["images", "--format", "{{.Repository}}:{{.Tag}}", IMAGE_TAG_PREFIX.split(":")[0]], check=False)
    old = [t for t in answer.stdout.split() if t.startswith(IMAGE_TAG_PREFIX) and t != keep]
    if old:
        _docker(["image", "rm", *old], check=False)  # a tag a container still uses is only untagged


# --- the commands -------------------------------------------------------------------------


def _say(text: str) -> None:
    print(text, flush=True)


def up(source: Path, lab_dir: Path, *, base_image: str | None, offline: bool, no_build: bool, timeout_s: float) -> int:
    started = time.monotonic()
    deployed = set(service_images()) if swarm_info()["state"] == "active" else set()
    busy = [p for r, p in compose.ROUTER_HOST_PORTS.items() if compose.router_service(r) not in deployed and _port_in_use(p)]
    if busy:
        raise SwarmError(f"host ports {busy} are taken (the compose lab, `meridian up`?): the stack's routers publish them")
    ensure_swarm(lab_dir, log=_say)
    if no_build:
        tags = _docker(["images", "--format", "{{.Repository}}:{{.Tag}}", IMAGE_TAG_PREFIX.split(":")[0]]).stdout.split()
        image = next((t for t in tags if t.startswith(IMAGE_TAG_PREFIX)), None)
        if image is None:
            raise SwarmError("no meridian:swarm-* image; run `meridian lab up --swarm` without --no-build")
    else:
        image = swarm_image(source, lab_dir, base_image=base_image, offline=offline, log=_say)
    roll_storage_nodes(image, log=_say)
    deploy(source, image)
    _say(f"meridian lab: stack {STACK} deployed ({image}); waiting for its health checks")
    deploy_done = time.monotonic()
    try:
        wait_ready(endpoints(), timeout_s, on_ready=lambda region, s: _say(f"meridian lab: {region} serves ({s:.1f} s)"))
        wait_services_running(deploy_done + timeout_s)
    except NotReady as exc:
        _show_failure()
        print(f"meridian lab: {exc}\n(the stack is left running: `meridian lab status --swarm`, "
              "`meridian lab logs --swarm SERVICE`, `meridian lab down --swarm`)", file=sys.stderr, flush=True)  # fmt: skip
        return 1
    _drop_old_tags(image)
    _say(f"meridian lab: 3 regions up as the swarm stack {STACK} in {time.monotonic() - started:.0f} s "
         f"({compose.NODES_PER_REGION} storage nodes, 1 router, 1 replicator each)")  # fmt: skip
    for region, url in endpoints().items():
        _say(f"  {region:<14}  {url.replace('127.0.0.1', 'localhost')}")
    _say("try this: aws dynamodb list-tables --endpoint-url http://localhost:8000")
    _say("status: meridian lab status --swarm | logs: meridian lab logs --swarm SERVICE -f | stop: meridian lab down --swarm [--wipe]")
    return 0


def down(lab_dir: Path, *, wipe: bool) -> int:
    remove_stack(wipe=wipe)
    _say(f"meridian lab: stack {STACK} removed" + (", data volumes deleted" if wipe else
         "; data kept in its volumes (`lab down --swarm --wipe` deletes it)"))  # fmt: skip
    restore_swarm(lab_dir, log=_say)
    return 0


def status(*, as_json: bool) -> int:
    states = service_states() if swarm_info()["state"] == "active" else {
        s: {"service": service_name(s), "state": "absent", "health": "-", "error": ""} for s in compose.services()}  # fmt: skip
    healthy = all(s["health"] == "healthy" for s in states.values())
    if as_json:
        print(json.dumps({"healthy": healthy, "stack": STACK, "services": states, "endpoints": endpoints()}, indent=2))
        return 0 if healthy else 1
    width = max(map(len, states))
    print(f"{'SERVICE':<{width}}  {'STATE':<10}  HEALTH")
    for service, s in states.items():
        print(f"{service:<{width}}  {s['state']:<10}  {s['health']}" + (f"  {s['error']}" if s["error"] else ""))
    if all(s["state"] == "absent" for s in states.values()):
        print("the swarm stack is not deployed (`meridian lab up --swarm`)")
    else:
        for region, url in endpoints().items():
            print(f"{region}: {url}")
    return 0 if healthy else 1


def logs(service: str | None, *, follow: bool, tail: str) -> int:
    if service is not None and service not in compose.services():
        print(f"meridian lab: no service {service!r}; services: {', '.join(compose.services())}", file=sys.stderr)
        return 1
    chosen = [service] if service else compose.services()
    args = ["service", "logs", "--timestamps", "--tail", str(tail)] + (["--follow"] if follow else [])
    readers = [subprocess.Popen(["docker", *args, service_name(s)], stdin=subprocess.DEVNULL) for s in chosen]
    try:
        return max(reader.wait() for reader in readers)
    except KeyboardInterrupt:
        return 0
    finally:
        for reader in readers:
            if reader.poll() is None:
                reader.terminate()
                reader.wait(lab_limits.DOCKER_INSPECT_TIMEOUT_S)


def _show_failure() -> None:
    """The last lines of every service without a healthy task, to stderr."""
    try:
        states = service_states()
    except (SwarmError, subprocess.SubprocessError, OSError):
        return
    for service, s in states.items():
        if s["health"] == "healthy":
            continue
        print(f"--- {service}: {s['state']}/{s['health']} {s['error']}", file=sys.stderr)
        tail = _docker(["service", "logs", "--tail", str(lab_limits.LAB_FAILURE_LOG_LINES), s["service"]], check=False)
        print((tail.stdout + tail.stderr).rstrip(), file=sys.stderr, flush=True)
