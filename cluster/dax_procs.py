"""The DAX nodes of ``meridian up --dax-port P --dax-nodes N``: supervised ``meridian dax`` processes.

Per region, a DAX cluster of N nodes, each its own process (started and
supervised like the storage nodes and routers, ``cluster/procs.py``), in
front of the region's router over HTTP (``--upstream``):

* region i's nodes listen on ``P + i*N``, ``P + i*N + 1``, ...; the first is
  the leader (``dax://HOST:P+i*N`` is the region's discovery endpoint);
* every node is given every member (``--members ID=HOST:DAXPORT/PEERPORT``)
  and writes through to the others' item caches over their gRPC peer
  channel, each on a free port (``router/dax/peer_channel.py``);
* node ids are ``meridian-a``, ``meridian-b``, ... (the cluster is named
  ``meridian`` in every region, as ``--dax-cluster-name``'s default), process
  names ``<region>-dax-<i>``, control names ``<region>/dax-<i>``;
* one attribute-list journal for all (``<data dir>/dax-attribute-lists.jsonl``),
  so clients' cached ids hold on every node and across restarts;
* each serves ``/metrics`` on a free port (``metrics_url``).

A killed node restarted by the control API (``meridian chaos``) comes back
on the same ports with empty caches; its peers' streams to it reconnect,
and updates they dropped meanwhile are repaired by clearing (``peers.py``).
"""

from __future__ import annotations

import string
import time
from pathlib import Path

from meridian.cluster.procs import Member, ManagedProcess, StartupError, free_port, port_is_free, wait_for_port
from meridian.model import limits

#: The cluster name every region's DAX cluster has (``meridian router --dax-cluster-name``'s default).
CLUSTER_NAME = "meridian"


def node_id(index: int) -> str:
    return f"{CLUSTER_NAME}-{string.ascii_lowercase[index]}"


class DaxProcesses:
    """Every region's DAX node processes of one ``LocalCluster`` (none when ``base_port`` is None)."""

    def __init__(self, base_port: int | None, nodes_per_region: int, *, host: str, connect_host: str, data_dir: Path,
                 log_dir: Path, extra_args: list[str] | None = None) -> None:  # fmt: skip
        if base_port is not None and not 1 <= nodes_per_region <= limits.DAX_CLUSTER_NODES_MAX:
            raise ValueError(f"a DAX cluster has 1 to {limits.DAX_CLUSTER_NODES_MAX} nodes, not {nodes_per_region}")
        self.base_port, self.nodes_per_region = base_port, nodes_per_region
        self.host, self.connect_host = host, connect_host
        self.data_dir, self.log_dir = data_dir, log_dir
        #: more flags for every DAX node (tests: shorter TTLs)
        self.extra_args = list(extra_args or [])
        self.processes: dict[str, list[ManagedProcess]] = {}
        self.ports: dict[str, list[int]] = {}
        self.peer_ports: dict[str, list[int]] = {}
        self.metrics_ports: dict[str, list[int]] = {}
        #: region -> dax://HOST:PORT of its leader (where clients start)
        self.endpoints: dict[str, str] = {}

    @classmethod
    def for_cluster(cls, cluster, base_port: int | None, nodes_per_region: int,
                    extra_args: list[str] | None) -> DaxProcesses:  # fmt: skip
        """A ``LocalCluster``'s DAX nodes (none: ``--dax-port`` not given)."""
        return cls(base_port, nodes_per_region, host=cluster.host, connect_host=cluster._connect_host,
                   data_dir=cluster.data_dir, log_dir=cluster.log_dir, extra_args=extra_args)

    def __repr__(self) -> str:
        return f"<DaxProcesses nodes_per_region={self.nodes_per_region} endpoints={self.endpoints}>"

    def dax_ports(self, region_index: int) -> list[int]:
        if self.base_port is None:
            return []
        first = self.base_port + region_index * self.nodes_per_region
        return list(range(first, first + self.nodes_per_region))

    def check_ports(self, regions: list[str]) -> None:
        """Fail before anything starts if a DAX port is out of range or taken."""
        for i, region in enumerate(regions):
            for port in self.dax_ports(i):
                if not 0 < port < 65536:
                    raise StartupError(f"DAX port {port} for {region} is out of range")
                if not port_is_free(self.host, port):
                    from meridian.cluster.startup_errors import port_in_use  # one line naming the holder

                    failure = port_in_use("--dax-port", port, what=f"for a DAX node of {region}")
                    raise StartupError(failure.message, failure=failure)

    def _free_ports(self, count: int, taken: set[int]) -> list[int]:
        ports: list[int] = []
        while len(ports) < count:
            port = free_port()
            if port not in taken:
                taken.add(port)
                ports.append(port)
        return ports

    def start(self, regions: list[str], routers: dict[str, str], timeout_s: float) -> None:
        """Start every region's nodes in front of its router (``routers``: region -> URL); return once each listens."""
        if self.base_port is None:
            return
        deadline = time.monotonic() + timeout_s
        taken = {port for i in range(len(regions)) for port in self.dax_ports(i)}
        journal = str(self.data_dir / "dax-attribute-lists.jsonl")
        for i, region in enumerate(regions):
            ports = self.ports[region] = self.dax_ports(i)
            peer_ports = self.peer_ports[region] = self._free_ports(len(ports), taken)
            metrics_ports = self.metrics_ports[region] = self._free_ports(len(ports), taken)
            members = ",".join(f"{node_id(n)}={self.connect_host}:{port}/{peer_ports[n]}" for n, port in enumerate(ports))
            self.processes[region] = []
            for n, port in enumerate(ports):
                name = f"{region}-dax-{n}"
                args = [
                    "dax",
                    "--listen", f"{self.host}:{port}",
                    "--upstream", routers[region],
                    "--region", region,
                    "--node-id", node_id(n),
                    "--cluster-name", CLUSTER_NAME,
                    "--members", members,
                    "--metrics-port", str(metrics_ports[n]),
                    "--dax-attribute-lists", journal,
                    *self.extra_args,
                ]  # fmt: skip
                self.processes[region].append(ManagedProcess(args, log_path=self.log_dir / f"{name}.log", name=name))
            self.endpoints[region] = f"dax://{self.connect_host}:{ports[0]}"
        for member in self.members():
            member.ready(max(0.0, deadline - time.monotonic()))

    def all_processes(self) -> list[ManagedProcess]:
        return [p for processes in self.processes.values() for p in processes]

    def members(self) -> list[Member]:
        """Every node as ``meridian up``'s control API names it (``<region>/dax-<i>``): ready when its
        DAX port listens, and its metrics port, which it opens last (after its peer channel)."""
        out = []
        for region, processes in self.processes.items():
            for n, process in enumerate(processes):
                ports = (self.ports[region][n], self.metrics_ports[region][n])

                def ready(timeout_s: float, ports: tuple[int, int] = ports, process: ManagedProcess = process) -> None:
                    deadline = time.monotonic() + timeout_s
                    for port in ports:
                        wait_for_port(self.connect_host, port, max(0.0, deadline - time.monotonic()), process=process)

                out.append(Member(f"{region}/dax-{n}", "dax", region, process, ready))
        return out

    def metrics_url(self, region: str, index: int) -> str:
        return f"http://{self.connect_host}:{self.metrics_ports[region][index]}/metrics"
