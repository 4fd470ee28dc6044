"""``meridian up``: a whole local cluster from one command, without Docker.

Starts every region's storage nodes and router (and DAX nodes, ``--dax-port``) as child processes (see
``meridian.cluster.procs``), prints where to point a client, then supervises: a child
that dies is reported with the tail of its log, and the rest keep running
(no restart policy: a lab user wants to see the failure, not have it hidden).
SIGTERM, SIGINT (Ctrl-C) or SIGHUP stops everything and exits 0; if ``up``
itself is SIGKILLed, the kernel's parent-death signal stops the children.
``<data-dir>/up.json`` and a small HTTP API let other tools kill, pause and
restart single processes (``meridian.cluster.up_control``); deaths they cause are not
reported.
"""

from __future__ import annotations

import argparse
import signal
import sys

from meridian.cluster import limits, startup_errors
from meridian.cluster.node_options import add_pitr_interval, add_stream_options, add_ttl_interval, positive_seconds
from meridian.cluster.procs import LocalCluster, ManagedProcess, StartupError
from meridian.cluster.up_control import ProcessControl, state_path


_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def _region_list(text: str) -> list[str]:
    regions = [r.strip() for r in text.split(",")]
    if not all(regions) or len(set(regions)) != len(regions):
        raise argparse.ArgumentTypeError(f"expected distinct comma-separated region names, got {text!r}")
    return regions


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value < 65536:
        raise argparse.ArgumentTypeError(f"not a TCP port: {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``meridian up``."""
    parser.add_argument(
        "--regions", type=_region_list, default=["us-east-1"],
        help="comma-separated region names, one router each (default: us-east-1)",
    )  # fmt: skip
    parser.add_argument(
        "--nodes-per-region", type=_positive_int, default=3,
        help="storage nodes per region (default: 3)",
    )  # fmt: skip
    parser.add_argument(
        "--port", type=_port, default=8000,
        help="port of the first region's router; region i gets port + i; 0: any free ports (see up.json) "
        "(default: 8000)",
    )  # fmt: skip
    parser.add_argument("--host", default="127.0.0.1", help="address the routers bind (default: 127.0.0.1)")
    parser.add_argument(
        "--data-dir", default="./meridian-cluster",
        help="data of every node (<dir>/<region>/node-<i>) and logs (<dir>/logs) (default: ./meridian-cluster)",
    )  # fmt: skip
    parser.add_argument("--sync", action="store_true", help="storage nodes fsync every write")
    parser.add_argument(
        "--dax-port", type=_port, default=None,
        help="each region also gets a DAX cluster (dax://HOST:PORT) of --dax-nodes `meridian dax` processes in front "
        "of its router: region i's nodes on this port + i * --dax-nodes, ...",
    )  # fmt: skip
    parser.add_argument(
        "--dax-nodes", type=_positive_int, default=1,
        help="nodes of each region's DAX cluster (the first the leader, the others read replicas; 1 to 11; default 1)",
    )  # fmt: skip
    add_ttl_interval(parser)
    add_pitr_interval(parser)
    add_stream_options(parser)
    parser.add_argument(
        "--link-latency-ms", type=float, default=0.0,
        help="with several regions: simulated one-way latency of every inter-region link at start (default: 0)",
    )  # fmt: skip
    parser.add_argument(
        "--realistic-links", action="store_true",
        help="give each inter-region link the approximate real-world latency between its two AWS regions "
        "(regions must be AWS region names, e.g. us-east-1,eu-west-1,ap-southeast-2)",
    )  # fmt: skip


class _StopRequested(Exception):
    """Raised out of whatever ``up`` is doing when a stop signal arrives."""


def _on_stop_signal(signum: int, _frame: object) -> None:
    # Ignore further signals so the shutdown itself is never interrupted.
    for sig in _STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    raise _StopRequested(signal.Signals(signum).name)


def _print_banner(cluster: LocalCluster) -> None:
    width = max(len(region) for region in cluster.regions)
    print(
        f"meridian up: {len(cluster.regions)} region(s) x {cluster.nodes_per_region} storage node(s), "
        f"data in {cluster.data_dir}",
        flush=True,
    )
    for region, url in cluster.endpoints.items():
        print(f"  {region:<{width}}  {url}", flush=True)
    first = next(iter(cluster.endpoints.values()))
    print(f"try this: aws dynamodb list-tables --endpoint-url {first}", flush=True)
    for region, url in cluster.dax_endpoints.items():
        print(f"  {region:<{width}}  DAX {url}", flush=True)
    for region, address in cluster.replicator_addresses.items():
        print(f"  {region:<{width}}  replicator {address}", flush=True)
    print(f"logs in {cluster.log_dir}; Ctrl-C stops everything", flush=True)


def _report_death(process: ManagedProcess) -> None:
    print(
        f"meridian up: {process.name} (pid {process.pid}) exited with code {process.returncode}; "
        f"last lines of {process.log_path}:\n{process.log_tail(limits.LOG_TAIL_LINES)}",
        file=sys.stderr,
        flush=True,
    )


def _supervise(control: ProcessControl) -> None:
    """Carry out control requests and report each child that dies unasked, once;
    return only through ``_StopRequested``."""
    reported: set[int] = set()
    while True:
        for member in control.members():
            process = member.process
            if process.pid not in reported and not process.alive:
                reported.add(process.pid)
                if not control.killed_on_request(member):
                    _report_death(process)
        control.write_state()
        control.serve(limits.SUPERVISE_INTERVAL_S)


def run_up(ns: argparse.Namespace) -> int:
    """Run the cluster described by ``ns`` until a stop signal; 0 on a clean stop."""
    try:
        cluster = LocalCluster(
            ns.regions, ns.nodes_per_region, ns.port or None, ns.data_dir, ns.sync, host=ns.host,
            link_latency_ms=ns.link_latency_ms, realistic_links=ns.realistic_links,
            ttl_interval_s=ns.ttl_interval_s, stream_retention_s=ns.stream_retention_s,
            stream_shard_period_s=ns.stream_shard_period_s,
            pitr_checkpoint_interval_s=ns.pitr_checkpoint_interval_s, dax_base_port=ns.dax_port, dax_nodes=ns.dax_nodes,
        )  # fmt: skip
    except ValueError as error:
        print(f"meridian up: {error}", file=sys.stderr, flush=True)
        return 2
    control: ProcessControl | None = None
    previous_handlers = {sig: signal.signal(sig, _on_stop_signal) for sig in _STOP_SIGNALS}
    try:
        cluster.start()
        control = ProcessControl(cluster)
        control.start()
        _print_banner(cluster)
        print(f"process control on http://{control.address}/processes (state in {state_path(ns.data_dir)})", flush=True)
        _supervise(control)
    except _StopRequested as stop:
        print(f"meridian up: {stop}, stopping", file=sys.stderr, flush=True)
    except StartupError as error:
        process = error.process
        failure = error.failure or (
            process and startup_errors.child_failure(process.name, process.returncode, process.log_tail())
        )
        if failure:  # one line and its exit code (cli/main.py prints it): a child's, or a port taken
            raise failure from error
        print(f"meridian up: could not start the cluster: {error}", file=sys.stderr, flush=True)
        return 1
    finally:
        for sig in _STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        if control is not None:
            control.close()
        cluster.stop()
        for sig, handler in previous_handlers.items():
            signal.signal(sig, handler)
    return 0
