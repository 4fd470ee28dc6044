"""Run a storage node: one engine behind a ``grpc.aio`` server.

``run_node`` is what ``meridian node`` calls: uvloop, then serve until
SIGTERM/SIGINT, then a graceful stop (no new streams, in-flight batches
answered, GSI maintenance and TTL sweeps stopped, every applied write made
durable, database closed).

Its Time to Live sweeper (``node/ttl.py``) expires the items of its tables
with TTL, one sweep every ``ttl_interval_s``; its stream trimmer
(``node/stream_retention.py``) deletes DynamoDB Streams records older than
``stream_retention_s``; while a table has point-in-time recovery it takes a
periodic checkpoint every ``pitr_checkpoint_interval_s`` (``node/pitr.py``).

A node also maintains the global secondary indexes of its items
(``node/gsi.py``), which needs its peers (the region's nodes, itself
included, by id) and the ring placing index partitions on them.  The ring
is handed in as ``placement`` (partition hash -> node id) by whoever wires
the process (``meridian node``), so this package never depends on the
router's.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from collections.abc import Callable

import grpc
import uvloop

from meridian.model import limits
from meridian.node.engine import Engine
from meridian.node.gsi import GsiMaintainer
from meridian.node.peers import PeerLinks
from meridian.node.replica_service import ReplicaNodeService
from meridian.node.service import StorageService
from meridian.node.log_compaction import LogCompactor
from meridian.node.pitr import PitrCheckpointer
from meridian.node.stream_retention import StreamTrimmer
from meridian.node.ttl import TtlSweeper
from meridian.node.txn_recovery import TxnResolver
from meridian.proto.channels import SERVER_OPTIONS
from meridian.proto import replication_pb2_grpc, storage_pb2_grpc

log = logging.getLogger(__name__)


async def serve_node(
    listen: str,
    data_dir: str,
    *,
    sync: bool,
    node_id: str | None,
    region: str,
    stop: asyncio.Event | None = None,
    peers: list[tuple[str, str]] | None = None,
    placement: Callable[[int], str] | None = None,
    ttl_interval_s: float = limits.TTL_SWEEP_INTERVAL_S_DEFAULT,
    stream_retention_s: float = limits.STREAM_RETENTION_S_DEFAULT,
    stream_shard_period_s: float = limits.STREAM_SHARD_PERIOD_S_DEFAULT,
    replicated: bool = True,
    pitr_checkpoint_interval_s: float = limits.PITR_CHECKPOINT_INTERVAL_S_DEFAULT,
) -> None:
    """Serve until ``stop`` is set (default: until SIGTERM or SIGINT).

    ``peers``: the region's nodes as ``(id, address)``; ``placement``: the
    node owning a partition hash.  Without them every index entry is this
    node's (a one-node region).  ``replicated`` False: no replicator will
    read this node (a one-region cluster): deletes leave no tombstone and
    the node trims its own change log (``node/log_compaction.py``).
    """
    loop = asyncio.get_running_loop()
    if stop is None:
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    engine = Engine(
        data_dir, node_id=node_id or listen, region=region, sync=sync, replicated=replicated,
        stream_retention_s=stream_retention_s, stream_shard_period_s=stream_shard_period_s,
    )  # fmt: skip
    links = PeerLinks({peer_id: address for peer_id, address in peers or () if peer_id != engine.node_id})
    local_id = engine.node_id
    maintainer = GsiMaintainer(
        engine,
        owner=placement or (lambda partition_hash: local_id),
        remote_send=links.send_index_entries,
    )
    sweeper = TtlSweeper(engine, interval_s=ttl_interval_s)
    trimmer = StreamTrimmer(engine)
    compactor = None if replicated else LogCompactor(engine)
    pitr = PitrCheckpointer(engine, interval_s=pitr_checkpoint_interval_s)
    resolver = TxnResolver(engine, links.decide_transaction)
    try:
        server = grpc.aio.server(options=SERVER_OPTIONS)
        storage_pb2_grpc.add_StorageServicer_to_server(StorageService(engine), server)
        replication_pb2_grpc.add_ReplicaNodeServicer_to_server(ReplicaNodeService(engine), server)
        if server.add_insecure_port(listen) == 0:
            raise OSError(f"cannot listen on {listen}")
        await server.start()
        maintainer.start()
        sweeper.start()
        trimmer.start()
        if compactor is not None:
            compactor.start()
        pitr.start()
        resolver.start()
        log.info("storage node %s listening on %s (data %s, sync=%s)", engine.node_id, listen, data_dir, sync)
        try:
            await stop.wait()
        finally:
            await resolver.stop()
            await pitr.stop()
            if compactor is not None:
                await compactor.stop()
            await trimmer.stop()
            await sweeper.stop()
            await maintainer.stop()
            await server.stop(limits.NODE_STOP_GRACE_S)
            await links.close()
    finally:
        await engine.aclose()
        log.info("storage node %s stopped", engine.node_id)


def run_node(
    *,
    listen: str,
    data_dir: str,
    sync: bool,
    node_id: str | None = None,
    region: str = "local",
    peers: list[tuple[str, str]] | None = None,
    placement: Callable[[int], str] | None = None,
    ttl_interval_s: float = limits.TTL_SWEEP_INTERVAL_S_DEFAULT,
    stream_retention_s: float = limits.STREAM_RETENTION_S_DEFAULT,
    stream_shard_period_s: float = limits.STREAM_SHARD_PERIOD_S_DEFAULT,
    replicated: bool = True,
    pitr_checkpoint_interval_s: float = limits.PITR_CHECKPOINT_INTERVAL_S_DEFAULT,
) -> None:
    """Blocking entry point of a storage node process."""
    uvloop.run(
        serve_node(
            listen, data_dir, sync=sync, node_id=node_id, region=region, peers=peers, placement=placement,
            ttl_interval_s=ttl_interval_s, stream_retention_s=stream_retention_s,
            stream_shard_period_s=stream_shard_period_s, replicated=replicated,
            pitr_checkpoint_interval_s=pitr_checkpoint_interval_s,
        )  # fmt: skip
    )
