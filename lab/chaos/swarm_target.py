"""Chaos on the lab deployed as a Docker Swarm stack (``meridian lab up --swarm``; ``--swarm``).

The same surface as the compose lab's ``LabTarget`` (process names,
replication commands through the routers), with Swarm's ways:

* a process is a service's task: ``kill`` is ``docker kill -s KILL`` of the
  task's container; Swarm's restart policy then starts a new task by itself
  (after the stack's 2 s delay, with the same volume), so ``restart`` after a
  kill waits for that task to serve; ``restart`` of a running process is
  ``docker service update --force`` (a new task, waited for); ``pause`` is
  ``docker pause`` (keep it short: a paused task fails its health check and
  Swarm replaces it after three misses);
* a region's real isolation sets the replicator's interface on the
  ``inter-region`` overlay down inside the task's network namespace
  (``nsenter``, so root), and the heal sets it up again.  ``docker network
  disconnect`` also works on a task, but the reconnected task loses its
  service name on that network (Swarm's DNS keeps it only for the
  attachments it made), so peers would not find it again.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time

from meridian.cluster.procs import wait_for_http_ok
from meridian.lab.chaos.schema import process_region, process_role
from meridian.lab.chaos.targets import LabTarget, TargetError, _docker
from meridian.model import limits


class SwarmTarget(LabTarget):
    """The stack ``meridian-swarm`` on this machine (a one-node swarm, or this manager's own tasks)."""

    kind = "swarm"

    def __init__(self) -> None:  # noqa: D107 - LabTarget's checks, with Swarm's names
        from meridian.lab import compose, swarm

        if shutil.which("docker") is None:
            raise TargetError("docker is not installed")
        self._compose = compose
        self._swarm = swarm
        self.regions = swarm.endpoints()
        self._down: set[str] = set()
        self._killed: dict[str, str] = {}  # process -> the container it had when killed or replaced
        missing = [s for s, state in self._states().items() if state == "missing"]
        if len(missing) == len(self._names()):
            raise TargetError("the swarm stack is not deployed here: meridian lab up --swarm")

    def _service(self, name: str) -> str:
        return name.replace("/", "-", 1)

    def _container(self, name: str) -> str:
        found = self._swarm.task_container(self._service(name))
        if found is None:
            raise TargetError(f"{name} has no running task on this machine")
        return found

    def _states(self) -> dict[str, str]:
        """Per process: the state of its newest task's container (``missing`` without one)."""
        answer = _docker(["ps", "-a", "--filter", f"label=com.docker.stack.namespace={self._swarm.STACK}",
                          "--format", '{{.Label "com.docker.swarm.service.name"}} {{.State}} {{.CreatedAt}}'], check=False)  # fmt: skip
        newest: dict[str, tuple[str, str]] = {}
        for line in answer.stdout.splitlines():
            service, _, rest = line.partition(" ")
            state, _, created = rest.partition(" ")
            if created > newest.get(service, ("", ""))[1]:
                newest[service] = (state, created)
        states = {}
        for name in self._names():
            state = newest.get(self._swarm.service_name(self._service(name)), ("missing", ""))[0]
            states[name] = {"created": "starting", "restarting": "starting", "dead": "exited"}.get(state, state)
        return states

    def process(self, name: str, action: str) -> dict:
        if name not in self._names():
            raise TargetError(f"no process named {name!r} in the swarm stack; known: {', '.join(self._names())}")
        if action == "kill":
            _docker(["kill", "--signal", "KILL", self._container(name)])
            self._down.add(name)
            self._killed[name] = self._last_container(name)
        elif action == "restart":
            state = self._states()[name]
            if state == "paused":
                _docker(["unpause", self._container(name)])
            elif state == "running" and name not in self._down:
                self._killed[name] = self._container(name)
                _docker(["service", "update", "--force", "--detach=true", "--quiet", self._swarm.service_name(self._service(name))])
            self._wait_ready(name, self._killed.pop(name, None))
            self._down.discard(name)
        elif action == "pause":
            _docker(["pause", self._container(name)])
            self._down.add(name)
        elif action == "resume":
            _docker(["unpause", self._container(name)])
            self._down.discard(name)
        else:
            raise TargetError(f"unknown action {action!r}")
        return next(p for p in self.processes() if p["name"] == name)

    def processes(self) -> list[dict]:
        docker_states = {"running": "running", "paused": "paused", "exited": "exited"}
        out = []
        for name, status in self._states().items():
            state = docker_states.get(status, status)
            if state in ("exited", "missing", "starting") and name in self._down:
                state = "killed"
            out.append({"name": name, "role": process_role(name), "region": process_region(name), "state": state,
                        "service": self._swarm.service_name(self._service(name))})  # fmt: skip
        return out

    def _last_container(self, name: str) -> str:
        answer = _docker(["ps", "-a", "--latest", "--quiet", "--filter",
                          f"label=com.docker.swarm.service.name={self._swarm.service_name(self._service(name))}"])  # fmt: skip
        return answer.stdout.strip()

    def _serves(self, name: str, container: str) -> bool:
        if process_role(name) == "node":
            return self._swarm.node_serves(self._service(name))
        fmt = "{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}"
        return _docker(["inspect", "--format", fmt, container], check=False).stdout.split() in (["running", "healthy"], ["running", "none"])

    def _wait_ready(self, name: str, previous: str | None) -> None:
        """Until a task other than ``previous`` (the killed or replaced one) runs and serves."""
        deadline = time.monotonic() + limits.SWARM_TASK_READY_TIMEOUT_S
        service = self._service(name)
        while True:
            container = self._swarm.task_container(service)
            if container is not None and not (previous and previous.startswith(container)) and self._serves(name, container):
                break
            if time.monotonic() > deadline:
                raise TargetError(f"{name}: no new serving task after {limits.SWARM_TASK_READY_TIMEOUT_S:g} s")
            time.sleep(limits.SWARM_POLL_INTERVAL_S)
        if process_role(name) == "router":
            wait_for_http_ok(self.regions[process_region(name)] + "/health", limits.SWARM_TASK_READY_TIMEOUT_S)

    # --- the real cut: the replicator's inter-region interface, down and up ----------

    def _inter_region_link(self, region: str) -> dict:
        """The replicator's task (container, pid) and its interface on the inter-region overlay."""
        service = self._compose.replicator_service(region)
        container = self._container(f"{region}/replicator")
        network = self._swarm.network_name(self._compose.INTER_REGION_NETWORK)
        info = json.loads(_docker(["inspect", "--format", "{{json .}}", container]).stdout)
        address = ((info["NetworkSettings"]["Networks"] or {}).get(network) or {}).get("IPAddress")
        if not address:
            raise TargetError(f"{service}'s task {container[:12]} is not on {network}")
        pid = str(info["State"]["Pid"])
        for line in _nsenter(pid, ["ip", "-o", "-4", "addr", "show"]).splitlines():
            fields = line.split()
            if len(fields) > 3 and fields[3].split("/")[0] == address:
                return {"container": container, "pid": pid, "interface": fields[1], "address": address, "network": network}
        raise TargetError(f"no interface with {address} in {service}'s task {container[:12]}")

    def disconnect_region(self, region: str) -> dict:
        link = self._inter_region_link(region)
        _nsenter(link["pid"], ["ip", "link", "set", "dev", link["interface"], "down"])
        return link

    def reconnect_region(self, region: str, saved: object | None) -> None:
        # Looked up again: the task may have been replaced since (a new one is up already).
        link = self._inter_region_link(region)
        _nsenter(link["pid"], ["ip", "link", "set", "dev", link["interface"], "up"])

    def describe(self) -> dict:
        return {"kind": self.kind, "stack": self._swarm.STACK}


def _nsenter(pid: str, command: list[str]) -> str:
    """Run ``command`` in the network namespace of process ``pid`` (needs root and util-linux's nsenter)."""
    if shutil.which("nsenter") is None:
        raise TargetError("a real cut on the swarm needs nsenter (util-linux); use --no-real for a simulated one")
    try:
        done = subprocess.run(["nsenter", "--target", pid, "--net", *command], stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=limits.SWARM_COMMAND_TIMEOUT_S)  # fmt: skip
    except subprocess.TimeoutExpired:
        raise TargetError(f"nsenter {' '.join(command)}: no answer within {limits.SWARM_COMMAND_TIMEOUT_S:g} s") from None
    if done.returncode != 0:
        raise TargetError(f"nsenter -t {pid} -n {' '.join(command)}: {done.stderr.strip()} (a real cut needs root; --no-real avoids it)")
    return done.stdout
