"""What chaos acts on: a running ``meridian up``, the Docker lab, or a ``meridian up`` of its own.

Every target offers the same surface (``Target``): the regions' router
endpoints, the process names (``<region>/node-<i>``, ``<region>/router``,
``<region>/replicator``), a process action (kill, restart, pause, resume),
a ``ControlClient`` for links, clocks and replication, and, in the lab
only, a real network disconnect of a region's replicator.

* ``UpTarget`` (``--cluster-dir D``): reads ``D/up.json`` and uses the
  process-control API ``meridian up`` serves (``meridian.cluster.up_control``);
  replication commands go straight to the replicators named there.
* ``OwnUpTarget`` (the default): starts ``meridian up`` for the scenario's
  regions in a fresh directory, then is an ``UpTarget``; ``close`` stops
  that one process (by PID), which stops its children.
* ``LabTarget`` (``--lab``): the Compose project ``meridian-lab``; processes
  are containers (``docker kill -s KILL``, ``docker start``, ``docker
  pause``), replication commands go through the routers (the replicators
  are on internal networks), and a region's isolation also disconnects its
  replicator from the ``inter-region`` network.

Everything here blocks: call it from a thread when an event loop runs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from meridian.cluster import limits
from meridian.cluster.control_client import ControlClient
from meridian.cluster.procs import ManagedProcess, pid_running, wait_for_http_ok
from meridian.cluster.up_control import state_path
from meridian.lab.chaos.schema import process_region, process_role


_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class TargetError(RuntimeError):
    """The target is not there, or refused an action."""


class Target:
    """The common surface; subclasses fill it in."""

    kind = ""

    def __init__(self) -> None:
        self.regions: dict[str, str] = {}

    def process_names(self) -> list[str]:
        return [p["name"] for p in self.processes()]

    def processes(self) -> list[dict]:
        raise NotImplementedError

    def process(self, name: str, action: str) -> dict:
        raise NotImplementedError

    def control(self) -> ControlClient:
        raise NotImplementedError

    def control_for(self, region: str) -> ControlClient:
        """A client that reaches ``region``'s replicator the most direct way (for sampling)."""
        return self.control()

    def disconnect_region(self, region: str) -> object | None:
        """Really cut the region's replicator off the other regions; None where there is no such network."""
        return None

    def reconnect_region(self, region: str, saved: object | None) -> None:
        """Undo ``disconnect_region`` (``saved`` is what it answered, None when unknown)."""

    def skew_keys(self, region: str, zipf_s: float | None) -> None:
        """The ``hot-key`` fault acts on a workload, which only a scenario run has (``runner.RunSurface``)."""
        raise TargetError("hot-key changes a scenario's workload: only `meridian chaos run` has one")

    def describe(self) -> dict:
        return {"kind": self.kind}

    def close(self) -> None:
        pass

    def __enter__(self) -> Target:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


# --- meridian up ------------------------------------------------------------------


class UpTarget(Target):
    """A ``meridian up`` already running with ``--data-dir cluster_dir``."""

    kind = "up"

    def __init__(self, cluster_dir: str | os.PathLike[str]) -> None:
        super().__init__()
        self.cluster_dir = Path(cluster_dir).absolute()
        state = self._read_state()
        self.regions = dict(state["regions"])
        self.replicators = dict(state.get("replicators") or {})
        self._control_address = state["control"]
        self._client: ControlClient | None = None

    def _read_state(self) -> dict:
        path = state_path(self.cluster_dir)
        try:
            state = json.loads(path.read_text())
        except FileNotFoundError:
            raise TargetError(f"no running meridian up in {self.cluster_dir} ({path.name} not found)") from None
        except (OSError, ValueError) as exc:
            raise TargetError(f"cannot read {path}: {exc}") from None
        if not pid_running(int(state.get("pid", 0))):
            raise TargetError(f"{path} names pid {state.get('pid')}, which is not running: meridian up has stopped")
        return state

    def processes(self) -> list[dict]:
        return self._request("GET", "/processes")["processes"]

    def process(self, name: str, action: str) -> dict:
        return self._request("POST", f"/processes/{urllib.parse.quote(name, safe='/')}/{action}")["process"]

    def _request(self, method: str, path: str) -> dict:
        url = f"http://{self._control_address}{path}"
        request = urllib.request.Request(url, data=b"" if method == "POST" else None, method=method)
        try:
            with _DIRECT.open(request, timeout=limits.UP_CONTROL_CLIENT_TIMEOUT_S) as answer:
                return json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            try:
                message = json.loads(exc.read()).get("message")
            except (ValueError, OSError):
                message = None
            raise TargetError(f"meridian up refused {method} {path}: {message or exc}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise TargetError(f"cannot reach meridian up's control API at {url}: {exc}") from None

    def control(self) -> ControlClient:
        if self._client is None:
            if self.replicators:
                self._client = ControlClient(replicators=self.replicators, timeout_s=limits.CONTROL_CALL_TIMEOUT_S)
            else:
                self._client = ControlClient(endpoint=next(iter(self.regions.values())), timeout_s=limits.CONTROL_CALL_TIMEOUT_S)
        return self._client

    def describe(self) -> dict:
        return {"kind": self.kind, "cluster_dir": str(self.cluster_dir)}

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


class OwnUpTarget(UpTarget):
    """A ``meridian up`` started for one run (in ``work_dir``) and stopped at its end.

    Start it from the main thread: its children are tied to the starting
    thread's life (``PR_SET_PDEATHSIG``, see ``meridian.cluster.procs``).
    """

    kind = "up"

    def __init__(self, regions: list[str], nodes_per_region: int, work_dir: str | os.PathLike[str]) -> None:
        work_dir = Path(work_dir).absolute()
        cluster_dir = work_dir / "cluster"
        self._up = ManagedProcess(
            ["up", "--data-dir", str(cluster_dir), "--regions", ",".join(regions),
             "--nodes-per-region", str(nodes_per_region), "--port", "0"],
            log_path=work_dir / "up.log", name="meridian up",
        )  # fmt: skip
        try:
            self._wait_for_state(cluster_dir)
            super().__init__(cluster_dir)
        except BaseException:
            self._up.terminate()
            raise

    def _wait_for_state(self, cluster_dir: Path) -> None:
        path = state_path(cluster_dir)
        deadline = time.monotonic() + limits.CHAOS_OWN_UP_TIMEOUT_S
        while True:
            if not self._up.alive:
                raise TargetError(f"meridian up exited with code {self._up.returncode}:\n{self._up.log_tail()}")
            try:
                if json.loads(path.read_text()).get("pid") == self._up.pid:
                    return
            except (FileNotFoundError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise TargetError(f"meridian up did not write {path} in time:\n{self._up.log_tail()}")
            time.sleep(limits.TARGET_POLL_INTERVAL_S)

    @property
    def pid(self) -> int:
        return self._up.pid

    @property
    def log_path(self) -> Path:
        return self._up.log_path

    def describe(self) -> dict:
        return {"kind": self.kind, "cluster_dir": str(self.cluster_dir), "own": True}

    def close(self) -> None:
        super().close()
        self._up.terminate()


# --- the Docker lab -----------------------------------------------------------------


class LabTarget(Target):
    """The Docker Compose lab (``meridian lab up``)."""

    kind = "lab"

    def __init__(self, host: str = "127.0.0.1") -> None:
        super().__init__()
        from meridian.lab import compose

        if shutil.which("docker") is None:
            raise TargetError("docker is not installed")
        self._compose = compose
        self.regions = compose.endpoints(host)
        self._down: set[str] = set()  # processes we killed or paused and did not bring back
        missing = [s for s, state in self._states().items() if state == "missing"]
        if missing:
            raise TargetError(f"the lab is not running (no container for {', '.join(missing[:3])}...): meridian lab up")

    def _container(self, name: str) -> str:
        return self._compose.container_name(name.replace("/", "-", 1))

    def _names(self) -> list[str]:
        compose = self._compose
        names = []
        for region in compose.REGIONS:
            names += [f"{region}/node-{i}" for i in range(compose.NODES_PER_REGION)]
            names += [f"{region}/replicator", f"{region}/router"]
        return names

    def _states(self) -> dict[str, str]:
        names = self._names()
        containers = [self._container(n) for n in names]
        answer = _docker(["inspect", "--format", "{{.Name}} {{.State.Status}} {{.State.Pid}}", *containers], check=False)
        found = {}
        for line in answer.stdout.splitlines():
            parts = line.split()
            if len(parts) == 3:
                found[parts[0].lstrip("/")] = (parts[1], int(parts[2]))
        return {n: found.get(c, ("missing", 0))[0] for n, c in zip(names, containers)}

    def processes(self) -> list[dict]:
        docker_states = {"running": "running", "paused": "paused", "exited": "exited", "dead": "exited"}
        out = []
        for name, status in self._states().items():
            state = docker_states.get(status, status)
            if state == "exited" and name in self._down:
                state = "killed"
            out.append({"name": name, "role": process_role(name), "region": process_region(name), "state": state,
                        "container": self._container(name)})  # fmt: skip
        return out

    def process(self, name: str, action: str) -> dict:
        if name not in self._names():
            raise TargetError(f"no process named {name!r} in the lab; known: {', '.join(self._names())}")
        container = self._container(name)
        if action == "kill":
            _docker(["kill", "--signal", "KILL", container])
            self._down.add(name)
        elif action == "restart":
            status = self._states()[name]
            if status == "paused":
                _docker(["unpause", container])
            if status in ("running", "paused"):
                _docker(["restart", container])
            else:
                _docker(["start", container])
            self._wait_ready(name)
            self._down.discard(name)
        elif action == "pause":
            _docker(["pause", container])
            self._down.add(name)
        elif action == "resume":
            _docker(["unpause", container])
            self._down.discard(name)
        else:
            raise TargetError(f"unknown action {action!r}")
        return next(p for p in self.processes() if p["name"] == name)

    def _wait_ready(self, name: str) -> None:
        container = self._container(name)
        if process_role(name) == "router":
            wait_for_http_ok(self.regions[process_region(name)] + "/health", limits.CONTAINER_READY_TIMEOUT_S)
            return
        deadline = time.monotonic() + limits.CONTAINER_READY_TIMEOUT_S
        fmt = "{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}"
        while True:
            status, _, health = _docker(["inspect", "--format", fmt, container]).stdout.strip().partition(" ")
            if status == "running" and health in ("healthy", "none"):
                return
            if status in ("exited", "dead"):
                raise TargetError(f"{container} exited right after starting")
            if time.monotonic() > deadline:
                raise TargetError(f"{container} not healthy after {limits.CONTAINER_READY_TIMEOUT_S:g} s ({status}, {health})")
            time.sleep(limits.TARGET_POLL_INTERVAL_S)

    def control(self) -> ControlClient:
        # Through a router whose region's router and replicator are up (commands to
        # other regions travel router -> its replicator -> theirs).
        for region, endpoint in self.regions.items():
            if f"{region}/router" not in self._down and f"{region}/replicator" not in self._down:
                return ControlClient(endpoint=endpoint, timeout_s=limits.CONTROL_CALL_TIMEOUT_S)
        raise TargetError("every region's router or replicator is down: no way to send a replication command")

    def control_for(self, region: str) -> ControlClient:
        # A region's own router reaches its replicator even while that one is cut off
        # the inter-region network.
        if f"{region}/router" in self._down:
            return self.control()
        return ControlClient(endpoint=self.regions[region], timeout_s=limits.CONTROL_CALL_TIMEOUT_S)

    def disconnect_region(self, region: str) -> dict:
        compose = self._compose
        container = compose.container_name(compose.replicator_service(region))
        network = compose.network_name(compose.INTER_REGION_NETWORK)
        fmt = "{{json .NetworkSettings.Networks}}"
        networks = json.loads(_docker(["inspect", "--format", fmt, container]).stdout or "{}")
        attached = networks.get(network) or {}
        aliases = [a for a in (attached.get("Aliases") or []) if a]
        address = (attached.get("IPAMConfig") or {}).get("IPv4Address") or ""  # the compose file's fixed address
        _docker(["network", "disconnect", network, container])
        return {"network": network, "container": container, "aliases": aliases, "ip": address}

    def reconnect_region(self, region: str, saved: object | None) -> None:
        compose = self._compose
        if not isinstance(saved, dict):  # disconnected by an earlier command: reconnect if it still is
            service = compose.replicator_service(region)
            container = compose.container_name(service)
            network = compose.network_name(compose.INTER_REGION_NETWORK)
            fmt = "{{json .NetworkSettings.Networks}}"
            if network in json.loads(_docker(["inspect", "--format", fmt, container]).stdout or "{}"):
                return
            saved = {"network": network, "container": container, "aliases": [service], "ip": ""}
        args = [arg for alias in saved["aliases"] for arg in ("--alias", alias)]
        if saved.get("ip"):
            args += ["--ip", saved["ip"]]
        _docker(["network", "connect", *args, saved["network"], saved["container"]])

    def describe(self) -> dict:
        return {"kind": self.kind, "project": self._compose.PROJECT}


def _docker(args: list[str], *, check: bool = True) -> subprocess.CompletedProcess:
    try:
        done = subprocess.run(
            ["docker", *args], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=limits.DOCKER_COMMAND_TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        raise TargetError(f"docker {' '.join(args)}: no answer within {limits.DOCKER_COMMAND_TIMEOUT_S:g} s") from None
    if check and done.returncode != 0:
        raise TargetError(f"docker {' '.join(args)}: {done.stderr.strip() or f'exit code {done.returncode}'}")
    return done
