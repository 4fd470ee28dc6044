"""The replicator process of one region (``meridian replicator``).

Wires the core (``replicator.py``) to the real world: its region's storage
nodes over gRPC (``nodes.py``), one simulated link per peer region in front
of a gRPC transport to that peer's replicator (``peers.py``), durable
cursors in ``data_dir/cursors.json``, and a gRPC server taking peers'
batches and control commands.  Every ``REPLICATION_GC_INTERVAL_S`` it tells
its nodes how far their logs and tombstones may be collected
(``Replicator.gc_horizon``).

A table replicates to the peers holding one of its replicas, as the
region's catalog says (``replicas.py``, which also creates and deletes
replicas as ``UpdateTable`` asked).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import signal
from collections.abc import Mapping, Sequence

import grpc
import uvloop

from meridian.model import limits
from meridian.model.errors import DynamoError
from meridian.proto.channels import SERVER_OPTIONS
from meridian.proto import replication_pb2_grpc
from meridian.replication.clock import SystemClock
from meridian.replication.cursors import FileCursorStore
from meridian.replication.interfaces import Clock
from meridian.replication.gc import NO_PEERS_FLOOR_HLC
from meridian.replication.link import LinkConditions, SimulatedLink
from meridian.replication.metrics import ReplicationCollector, exposition, refresh_pending, registry_of, serve_metrics
from meridian.replication.nodes import NodeChangeSource, RegionNodes, RegionSink
from meridian.replication.peers import PeerTransport
from meridian.replication.replicas import ReplicaControlService, ReplicaManager
from meridian.replication.replicator import Replicator

log = logging.getLogger(__name__)

async def _collect_garbage(replicator: Replicator, nodes: RegionNodes, clock: Clock) -> None:
    """Truncate logs and drop tombstones as far as every peer allows, forever."""
    while True:
        await clock.sleep(limits.REPLICATION_GC_INTERVAL_S)
        horizon = replicator.gc_horizon()
        try:
            for node_id, through in horizon.truncate_through.items():
                if through:
                    await nodes.truncate_log(node_id, through)
            if 0 < horizon.tombstone_floor_hlc < NO_PEERS_FLOOR_HLC:
                await nodes.drop_tombstones(horizon.tombstone_floor_hlc)
        except DynamoError as err:
            log.info("garbage collection round failed: %r", err)


async def serve_replicator(
    region: str,
    nodes: Sequence[tuple[str, str]],
    peers: Mapping[str, str],
    listen: str,
    data_dir: str,
    *,
    conditions: Mapping[str, LinkConditions] | None = None,
    stop: asyncio.Event | None = None,
    metrics_port: int | None = None,
) -> None:
    """Replicate until ``stop`` is set (default: until SIGTERM or SIGINT).

    With ``metrics_port``, Prometheus ``/metrics`` is served on it (same host as ``listen``).
    """
    loop = asyncio.get_running_loop()
    if stop is None:
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    os.makedirs(data_dir, exist_ok=True)
    clock = SystemClock()
    region_nodes = RegionNodes(nodes)
    transports = {peer: PeerTransport(address) for peer, address in peers.items()}
    links = {
        peer: SimulatedLink(region, peer, transport, clock, random.Random(), (conditions or {}).get(peer))
        for peer, transport in transports.items()
    }
    manager = ReplicaManager(
        region,
        region_nodes,
        peers,
        control=lambda peer, command, **options: transports[peer].control(command, **options),
        backfill=lambda peer, changes: transports[peer].backfill(changes),
        clock=clock,
    )
    sink = RegionSink(region_nodes)
    replicator = Replicator(
        region,
        [NodeChangeSource(node_id, region_nodes.replica[node_id], clock) for node_id, _ in nodes],
        sink,
        FileCursorStore(os.path.join(data_dir, "cursors.json")),
        links,
        clock,
        replicates=manager.replicates,
    )
    collector = ReplicationCollector(region, replicator, manager.table_name)
    registry = registry_of(collector)
    server = grpc.aio.server(options=SERVER_OPTIONS)
    service = ReplicaControlService(
        replicator, links, region_nodes, sink, manager.note, peer_addresses=peers, metrics=lambda: exposition(registry),
        transports=transports, table_name=manager.table_name, manager=manager,
    )  # fmt: skip
    replication_pb2_grpc.add_ReplicatorServicer_to_server(service, server)
    if server.add_insecure_port(listen) == 0:
        raise OSError(f"cannot listen on {listen}")
    await server.start()
    # Nothing may be shipped (or skipped) before the scope is known.
    while True:
        try:
            await manager.refresh(every_node=True)
            break
        except DynamoError as err:
            log.info("waiting for the region's nodes: %r", err)
            await clock.sleep(limits.REPLICATION_NODE_RETRY_S)
    running = asyncio.create_task(replicator.run())
    gc = asyncio.create_task(_collect_garbage(replicator, region_nodes, clock))
    managing = asyncio.create_task(manager.run())
    background = [gc, managing, asyncio.create_task(refresh_pending(collector, replicator, clock))]
    metrics_server = None
    if metrics_port is not None:
        metrics_server, _ = serve_metrics(registry, listen.rsplit(":", 1)[0], metrics_port)
    log.info("replicator of %s listening on %s, peers %s", region, listen, dict(peers))
    try:
        stopped = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait({running, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if running in done:
            running.result()  # a replicator that stopped by itself failed: report it
        stopped.cancel()
    finally:
        replicator.close()
        for task in background:
            task.cancel()
        await asyncio.gather(running, *background, return_exceptions=True)
        if metrics_server is not None:
            metrics_server.shutdown()
        await server.stop(limits.REPLICATOR_STOP_GRACE_S)
        for transport in transports.values():
            await transport.close()
        await region_nodes.close()
        log.info("replicator of %s stopped", region)


def run_replicator(
    region: str,
    nodes: Sequence[tuple[str, str]],
    peers: Mapping[str, str],
    listen: str,
    data_dir: str,
    conditions: Mapping[str, LinkConditions] | None = None,
    metrics_port: int | None = None,
) -> None:
    """Blocking entry point of a replicator process."""
    uvloop.run(serve_replicator(region, nodes, peers, listen, data_dir, conditions=conditions, metrics_port=metrics_port))
