"""Starting, watching and stopping Meridian processes on one machine.

``meridian up`` and the test fixtures both run real processes (storage nodes,
routers, embedded servers); this module is the one place that knows how:

* every child runs ``python -m meridian.main ...`` with the interpreter of the
  parent, so it works without the ``meridian`` console script on ``PATH``;
* its output goes to a log file, never to the parent's terminal, so a crash
  can be reported with the tail of that log;
* it lives in its own process group, so a Ctrl-C in the terminal reaches only
  the supervisor, which then stops the children in order;
* it asks the kernel (``PR_SET_PDEATHSIG``) for SIGTERM when its parent dies,
  so children never outlive a supervisor or a test run that was SIGKILLed;
* it is only ever signalled by its own PID, never by name or group.

``PR_SET_PDEATHSIG`` fires when the *thread* that started the child exits,
not the process: start children from a thread that lives as long as they
should (the main thread, in ``meridian up`` and in pytest fixtures).
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from meridian.cluster import limits
from meridian.replication.topology import realistic_links as realistic_links_of

#: How the children are started: this interpreter, the meridian entry module.
MERIDIAN_COMMAND: tuple[str, ...] = (sys.executable, "-m", "meridian.main")


_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
_SIGTERM = int(signal.SIGTERM)


def _load_prctl():
    """libc's ``prctl``, resolved once in the parent (not between fork and exec)."""
    if not sys.platform.startswith("linux"):
        return None
    return ctypes.CDLL(None, use_errno=True).prctl


_PRCTL = _load_prctl()


class StartupError(RuntimeError):
    """A process did not become ready: it exited, or it took too long.

    ``process``: the one that exited (None: a timeout), whose exit code and
    log say why (``cluster/startup_errors.child_failure``); ``failure``: the
    start-up failure it is, when known here (a router port taken).
    """

    def __init__(self, message: str, process: ManagedProcess | None = None, failure: Exception | None = None) -> None:
        super().__init__(message)
        self.process = process
        self.failure = failure


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now (the kernel's pick for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_is_free(host: str, port: int) -> bool:
    """Whether a server could bind ``host:port`` now (with SO_REUSEADDR, as servers do)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def _check_running(process: ManagedProcess | None, waiting_for: str) -> None:
    if process is not None and not process.alive:
        raise StartupError(
            f"{process.name} exited with code {process.returncode} while waiting for {waiting_for}\n"
            + process.log_tail(),
            process,
        )


def wait_for_port(
    host: str, port: int, timeout_s: float, *, process: ManagedProcess | None = None
) -> None:
    """Return once ``host:port`` accepts TCP connections.

    With ``process``, give up as soon as that process exits instead of waiting
    out the timeout for a server that will never come.
    """
    deadline = time.monotonic() + timeout_s
    waiting_for = f"{host}:{port} to accept connections"
    while True:
        _check_running(process, waiting_for)
        try:
            with socket.create_connection((host, port), timeout=limits.READINESS_PROBE_TIMEOUT_S):
                return
        except OSError:
            pass
        if time.monotonic() >= deadline:
            raise StartupError(f"timed out after {timeout_s:g} s waiting for {waiting_for}")
        time.sleep(limits.READINESS_PROBE_INTERVAL_S)


# Readiness probes go straight to the address: an HTTP(S)_PROXY in the
# environment must not capture requests to 127.0.0.1.
_DIRECT_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def wait_for_http_ok(url: str, timeout_s: float, *, process: ManagedProcess | None = None) -> None:
    """Return once ``GET url`` answers 200 (a router's ``/health``)."""
    deadline = time.monotonic() + timeout_s
    waiting_for = f"GET {url} to answer 200"
    while True:
        _check_running(process, waiting_for)
        try:
            with _DIRECT_OPENER.open(url, timeout=limits.READINESS_PROBE_TIMEOUT_S) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass  # HTTPError (non-2xx) is a URLError: not ready yet
        if time.monotonic() >= deadline:
            raise StartupError(f"timed out after {timeout_s:g} s waiting for {waiting_for}")
        time.sleep(limits.READINESS_PROBE_INTERVAL_S)


class ManagedProcess:
    """One child process, its log file, and the signals we may send it.

    ``args`` are the ``meridian`` subcommand and its flags (``["node",
    "--listen", ...]``); ``command`` is what runs them, ``MERIDIAN_COMMAND``
    unless a caller needs another program under the same supervision.  The
    process starts in the constructor; ``restart`` starts it again with the
    same arguments and the same (appended) log.
    """

    def __init__(
        self,
        args: Sequence[str],
        *,
        log_path: str | os.PathLike[str],
        name: str | None = None,
        env: dict[str, str] | None = None,
        command: Sequence[str] = MERIDIAN_COMMAND,
    ) -> None:
        self.argv = [*command, *args]
        self.name = name or (args[0] if args else self.argv[0])
        self.log_path = Path(log_path)
        # Unbuffered output so the log holds everything up to a crash.
        self._env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self._popen = self._spawn()

    def _spawn(self) -> subprocess.Popen:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        parent_pid = os.getpid()

        def in_child() -> None:  # between fork and exec: no locks, no imports
            if _PRCTL is not None:
                _PRCTL(_PR_SET_PDEATHSIG, _SIGTERM)
                if os.getppid() != parent_pid:  # the parent died before prctl took effect
                    os.kill(os.getpid(), _SIGTERM)

        with open(self.log_path, "ab") as log:
            # One header line per start (argv repr keeps it on one line).
            log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} start: {self.argv!r}\n".encode())
            log.flush()
            popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._env,
                process_group=0,
                preexec_fn=in_child,
            )
        self._paused = False
        return popen

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def alive(self) -> bool:
        """Running (or paused); reaps the child if it has exited."""
        return self._popen.poll() is None

    @property
    def paused(self) -> bool:
        """Stopped by ``pause`` and not resumed (and still alive)."""
        return self._paused and self.alive

    @property
    def returncode(self) -> int | None:
        """Exit code, negative signal number if killed, None while running."""
        return self._popen.poll()

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to this process (by PID) if it is still running."""
        if self.alive:
            self._popen.send_signal(sig)

    def pause(self) -> None:
        """Freeze the process (SIGSTOP): it holds its sockets but answers nothing."""
        self.kill(signal.SIGSTOP)
        self._paused = True

    def resume(self) -> None:
        """Undo ``pause`` (SIGCONT)."""
        self.kill(signal.SIGCONT)
        self._paused = False

    def wait(self, timeout_s: float) -> int:
        """Wait for exit; return the exit code, raise TimeoutError if still running."""
        try:
            return self._popen.wait(timeout_s)
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"{self.name} (pid {self.pid}) still running after {timeout_s:g} s") from None

    def terminate(self, timeout_s: float = limits.TERMINATE_TIMEOUT_S) -> int:
        """SIGTERM, then SIGKILL after ``timeout_s``; return the exit code."""
        terminate_all([self], timeout_s)
        return self._popen.returncode

    def restart(self, timeout_s: float = limits.TERMINATE_TIMEOUT_S) -> None:
        """Stop the process if it runs, then start it again with the same arguments."""
        self.terminate(timeout_s)
        self._popen = self._spawn()

    def log_tail(self, lines: int = limits.LOG_TAIL_LINES) -> str:
        """The last ``lines`` lines of the log (bounded read from its end)."""
        try:
            with open(self.log_path, "rb") as log:
                size = log.seek(0, os.SEEK_END)
                log.seek(max(0, size - limits.LOG_TAIL_BYTES_MAX))
                data = log.read()
        except FileNotFoundError:
            return ""
        return "\n".join(data.decode(errors="replace").splitlines()[-lines:])

    def __repr__(self) -> str:
        state = "paused" if self._paused and self.alive else "running" if self.alive else f"exited {self.returncode}"
        return f"<ManagedProcess {self.name} pid={self.pid} {state}>"


def terminate_all(processes: Iterable[ManagedProcess], timeout_s: float = limits.TERMINATE_TIMEOUT_S) -> None:
    """Stop several processes at once: SIGTERM to all, one shared deadline, then SIGKILL.

    SIGCONT follows SIGTERM so a paused process can act on it.
    """
    running = [p for p in processes if p.alive]
    for process in running:
        process.kill(signal.SIGTERM)
        process.kill(signal.SIGCONT)
    deadline = time.monotonic() + timeout_s
    for process in running:
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            process.kill(signal.SIGKILL)
    for process in running:
        process.wait(limits.TERMINATE_TIMEOUT_S)


def pid_running(pid: int) -> bool:
    """Whether a process with this PID exists (signal 0 probes without signalling)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, owned by someone else
    return True

@dataclass(frozen=True)
class Member:
    """One process of a ``LocalCluster`` as ``meridian up``'s control API names it.

    ``name`` is ``<region>/node-<i>``, ``<region>/router``, ``<region>/dax-<i>`` or
    ``<region>/replicator``; ``ready`` is what says it serves again after a
    restart (a node's or replicator's gRPC port, a router's ``/health``).
    """

    name: str
    role: str  # "node" | "router" | "replicator" | "dax"
    region: str
    process: ManagedProcess
    ready: Callable[[float], None]


class LocalCluster:
    """Every process of a local multi-region cluster, started and stopped together.

    Per region: ``nodes_per_region`` storage nodes on free ports, then one
    router on ``base_port + region index`` (a free port when ``base_port`` is
    None).  Data lives in ``data_dir/<region>/node-<i>``, logs in
    ``data_dir/logs``.  Node ids are stable (``<region>-node-<i>``) so that a
    cluster restarted on the same data dir maps keys to the same nodes even
    though node ports change.

    With more than one region, each region also gets a replicator (on a
    free port, cursors in ``data_dir/<region>/replicator``) that tails its
    nodes and peers with every other region's; it starts after the nodes
    and is stopped before them (``_phases``).  ``link_latency_ms`` is the
    simulated one-way latency of every inter-region link at start;
    ``realistic_links`` gives each link instead the approximate real-world
    latency between its two AWS regions (``replication/topology.py``).
    ``ttl_interval_s``: how often nodes sweep for expired items (None: the
    nodes' default); ``stream_retention_s`` (nodes and routers) and
    ``stream_shard_period_s`` (nodes): DynamoDB Streams' record retention and
    shard period (None: the defaults); ``pitr_checkpoint_interval_s`` (nodes):
    how often a node checkpoints while a table has PITR (None: the default).
    """

    def __init__(
        self,
        regions: list[str],
        nodes_per_region: int,
        base_port: int | None,
        data_dir: str | os.PathLike[str],
        sync: bool,
        *,
        host: str = "127.0.0.1",
        startup_timeout_s: float = limits.STARTUP_TIMEOUT_S,
        link_latency_ms: float = 0.0,
        realistic_links: bool = False,
        ttl_interval_s: float | None = None,
        stream_retention_s: float | None = None,
        stream_shard_period_s: float | None = None,
        pitr_checkpoint_interval_s: float | None = None,
        dax_base_port: int | None = None,
        dax_nodes: int = 1,
        router_args: list[str] | None = None,
        dax_args: list[str] | None = None,
    ) -> None:
        if not regions or len(set(regions)) != len(regions):
            raise ValueError(f"regions must be distinct and non-empty: {regions}")
        if realistic_links:
            try:
                self._realistic_links = {r: realistic_links_of(r, [p for p in regions if p != r]) for r in regions}
            except KeyError as exc:
                raise ValueError(exc.args[0]) from None
        else:
            self._realistic_links = {}
        if nodes_per_region < 1:
            raise ValueError(f"nodes_per_region must be at least 1: {nodes_per_region}")
        self.regions = list(regions)
        self.nodes_per_region = nodes_per_region
        self.base_port = base_port
        self.data_dir = Path(data_dir).absolute()
        self.log_dir = self.data_dir / "logs"
        self.sync = sync
        self.ttl_interval_s = ttl_interval_s
        self.stream_retention_s = stream_retention_s
        self.stream_shard_period_s = stream_shard_period_s
        self.pitr_checkpoint_interval_s = pitr_checkpoint_interval_s
        #: more flags for every router
        self.router_args = list(router_args or [])
        self.host = host
        self.startup_timeout_s = startup_timeout_s
        # A wildcard bind is reached through loopback.
        self._connect_host = "127.0.0.1" if host in ("0.0.0.0", "") else host
        from meridian.cluster.dax_procs import DaxProcesses  # (it imports this module)

        #: region i's DAX cluster: dax_nodes ``meridian dax`` processes from dax_base_port + i * dax_nodes
        self.dax = DaxProcesses.for_cluster(self, dax_base_port, dax_nodes, dax_args)
        self.dax_endpoints: dict[str, str] = self.dax.endpoints
        self.node_addresses: dict[str, list[str]] = {}
        self.nodes: dict[str, list[ManagedProcess]] = {}
        self.routers: dict[str, ManagedProcess] = {}
        self.endpoints: dict[str, str] = {}
        self.link_latency_ms = link_latency_ms
        self.replicator_addresses: dict[str, str] = {}
        self.replicators: dict[str, ManagedProcess] = {}
        self.replicator_metrics_ports: dict[str, int] = {}  # region -> port of its Prometheus /metrics

    # --- lifecycle --------------------------------------------------------

    def start(self) -> None:
        """Start every process and return once every router's /health is ok.

        On any failure everything already started is stopped and
        ``StartupError`` (with the failing process's log tail) is raised.
        """
        router_ports = self._router_ports()
        self.dax.check_ports(self.regions)
        try:
            self._start_nodes()
            # Replicators start after the nodes whose change logs they tail,
            # before the routers that serve clients; DAX nodes, in front of the routers, last.
            self._start_replicators()
            self._start_routers(router_ports)
            self.dax.start(self.regions, self.endpoints, self.startup_timeout_s)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop everything by PID: routers first (clients stop), then nodes."""
        for phase in reversed(self._phases()):
            terminate_all(phase)

    def _phases(self) -> list[list[ManagedProcess]]:
        """Processes in start order, one list per phase; ``stop`` walks it backwards."""
        return [
            [p for nodes in self.nodes.values() for p in nodes],
            list(self.replicators.values()),
            list(self.routers.values()),
            self.dax.all_processes(),
        ]

    def processes(self) -> list[ManagedProcess]:
        """Every process of the cluster, in start order."""
        return [p for phase in self._phases() for p in phase]

    def members(self) -> list[Member]:
        """Every process with its name, role and region, in start order."""
        out = []
        for region, nodes in self.nodes.items():
            for i, (process, address) in enumerate(zip(nodes, self.node_addresses[region])):
                out.append(Member(f"{region}/node-{i}", "node", region, process, self._port_ready(address, process)))
        for region, process in self.replicators.items():
            address = self.replicator_addresses[region]
            out.append(Member(f"{region}/replicator", "replicator", region, process, self._port_ready(address, process)))
        for region, process in self.routers.items():
            url = self.endpoints[region] + "/health"
            out.append(Member(f"{region}/router", "router", region, process,
                              lambda timeout_s, url=url, process=process: wait_for_http_ok(url, timeout_s, process=process)))
        return out + self.dax.members()

    @staticmethod
    def _port_ready(address: str, process: ManagedProcess) -> Callable[[float], None]:
        host, port = address.rsplit(":", 1)
        return lambda timeout_s: wait_for_port(host, int(port), timeout_s, process=process)

    def __enter__(self) -> LocalCluster:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- the phases -------------------------------------------------------

    def replicator_metrics_url(self, region: str) -> str:
        """Where the region's replicator serves Prometheus ``/metrics``."""
        return f"http://{self._connect_host}:{self.replicator_metrics_ports[region]}/metrics"

    def _router_ports(self) -> dict[str, int]:
        if self.base_port is None:
            return {region: free_port() for region in self.regions}
        ports = {region: self.base_port + i for i, region in enumerate(self.regions)}
        for region, port in ports.items():
            if not 0 < port < 65536:
                raise StartupError(f"router port {port} for {region} is out of range")
            if not port_is_free(self.host, port):
                from meridian.cluster.startup_errors import port_in_use  # one line naming the holder

                failure = port_in_use("--port", port, what=f"for the {region} router")
                raise StartupError(failure.message, failure=failure)
        return ports

    def _start_nodes(self) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        for region in self.regions:
            # Every node knows its peers (global secondary index entries go to
            # the node owning them), so every address is chosen first.
            ports: list[int] = []
            while len(ports) < self.nodes_per_region:
                port = free_port()
                if port not in ports:
                    ports.append(port)
            self.node_addresses[region] = [f"127.0.0.1:{port}" for port in ports]
            peers = ",".join(
                f"{region}-node-{i}={address}" for i, address in enumerate(self.node_addresses[region])
            )
            self.nodes[region] = []
            for i, address in enumerate(self.node_addresses[region]):
                node_id = f"{region}-node-{i}"
                args = [
                    "node",
                    "--listen", address,
                    "--data-dir", str(self.data_dir / region / f"node-{i}"),
                    "--node-id", node_id,
                    "--region", region,
                    "--peers", peers,
                ]  # fmt: skip
                if self.sync:
                    args.append("--sync")
                if len(self.regions) < 2:
                    args.append("--no-replicator")  # no replicator is started: the node trims its own log
                if self.ttl_interval_s is not None:
                    args += ["--ttl-interval-s", repr(self.ttl_interval_s)]
                if self.pitr_checkpoint_interval_s is not None:
                    args += ["--pitr-checkpoint-interval-s", repr(self.pitr_checkpoint_interval_s)]
                args += self._stream_args(shard_period=True)
                self.nodes[region].append(
                    ManagedProcess(args, log_path=self.log_dir / f"{node_id}.log", name=node_id)
                )
        # All nodes boot concurrently; then wait for each in turn.
        for region in self.regions:
            for address, process in zip(self.node_addresses[region], self.nodes[region]):
                host, port = address.rsplit(":", 1)
                wait_for_port(host, int(port), max(0.0, deadline - time.monotonic()), process=process)

    def _start_replicators(self) -> None:
        if len(self.regions) < 2:
            return
        deadline = time.monotonic() + self.startup_timeout_s
        taken = {address for addresses in self.node_addresses.values() for address in addresses}
        for region in self.regions:
            address = f"127.0.0.1:{free_port()}"
            while address in taken:
                address = f"127.0.0.1:{free_port()}"
            taken.add(address)
            self.replicator_addresses[region] = address
            metrics_port = free_port()
            while f"127.0.0.1:{metrics_port}" in taken:
                metrics_port = free_port()
            taken.add(f"127.0.0.1:{metrics_port}")
            self.replicator_metrics_ports[region] = metrics_port
        for region in self.regions:
            name = f"{region}-replicator"
            peers = ",".join(f"{peer}={address}" for peer, address in self.replicator_addresses.items() if peer != region)
            args = [
                "replicator",
                "--region", region,
                "--nodes", ",".join(
                    f"{region}-node-{i}={address}" for i, address in enumerate(self.node_addresses[region])
                ),
                "--peers", peers,
                "--listen", self.replicator_addresses[region],
                "--data-dir", str(self.data_dir / region / "replicator"),
                "--latency-ms", str(self.link_latency_ms),
                "--metrics-port", str(self.replicator_metrics_ports[region]),
            ]  # fmt: skip
            if self._realistic_links.get(region):
                args += ["--link", self._realistic_links[region]]
            self.replicators[region] = ManagedProcess(args, log_path=self.log_dir / f"{name}.log", name=name)
        for region in self.regions:
            host, port = self.replicator_addresses[region].rsplit(":", 1)
            wait_for_port(host, int(port), max(0.0, deadline - time.monotonic()), process=self.replicators[region])

    def _start_routers(self, ports: dict[str, int]) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        for region in self.regions:
            name = f"{region}-router"
            args = [
                "router",
                "--host", self.host,
                "--port", str(ports[region]),
                "--nodes", ",".join(
                    f"{region}-node-{i}={address}" for i, address in enumerate(self.node_addresses[region])
                ),
                "--region", region,
            ]  # fmt: skip
            if region in self.replicator_addresses:
                args += ["--replicator", self.replicator_addresses[region]]
            args += self._stream_args(shard_period=False)
            args += self.router_args
            self.routers[region] = ManagedProcess(args, log_path=self.log_dir / f"{name}.log", name=name)
            self.endpoints[region] = f"http://{self._connect_host}:{ports[region]}"
        for region in self.regions:
            wait_for_http_ok(
                self.endpoints[region] + "/health",
                max(0.0, deadline - time.monotonic()),
                process=self.routers[region],
            )

    def _stream_args(self, *, shard_period: bool) -> list[str]:
        """The DynamoDB Streams flags of a node (``shard_period``) or a router."""
        args = []
        if self.stream_retention_s is not None:
            args += ["--stream-retention-s", repr(self.stream_retention_s)]
        if shard_period and self.stream_shard_period_s is not None:
            args += ["--stream-shard-period-s", repr(self.stream_shard_period_s)]
        return args

    def __repr__(self) -> str:
        return (
            f"<LocalCluster regions={self.regions} nodes_per_region={self.nodes_per_region}"
            f" endpoints={self.endpoints}>"
        )
