"""``meridian dax``: one DAX node as a process of its own, in front of a DynamoDB endpoint.

Alone (no ``--members``) it is a one-node cluster, as before.  With
``--members`` (``membership.py``) it is one node of a cluster of processes: it
lists every member in ``endpoints``, serves the gRPC peer channel on its
``PEERPORT`` and writes every write through to the other members' item
caches over theirs (``peers.py``, ``peer_channel.py``).  ``meridian up
--dax-port`` starts such clusters (``cluster/dax_procs.py``); the Docker lab
runs one alone per region.

``--metrics-port`` serves Prometheus ``GET /metrics``: the node's counters
under DAX's CloudWatch names (``metrics.py``, as a router's ``/metrics``
shows its in-process nodes) and the peer channel's.
"""

from __future__ import annotations

import logging
from typing import Any

from .cache import DaxCaches
from .front import DaxFront, start_dax_node
from .membership import DaxMember, endpoints_of, member_of, parse_advertise, parse_members, zone_of

log = logging.getLogger("meridian.dax")

#: peer-channel counter -> (Prometheus family, type, help)
_PEER_FAMILIES = {
    "PeerUpdatesSent": ("meridian_dax_peer_updates_sent_total", "counter",
                        "Cache updates this DAX node sent to its peers' item caches."),
    "PeerUpdatesDropped": ("meridian_dax_peer_updates_dropped_total", "counter",
                           "Cache updates this DAX node dropped: a peer down or not keeping up (its cache is cleared)."),
    "PeerUpdatesReceived": ("meridian_dax_peer_updates_received_total", "counter",
                            "Cache updates this DAX node applied from its peers."),
    "PeerClears": ("meridian_dax_peer_clears_total", "counter",
                   "Times a peer had this DAX node empty its item cache after lost updates."),
    "PeersConnected": ("meridian_dax_peers_connected", "gauge", "Peers this DAX node streams cache updates to now."),
}


def metrics_text(front: DaxFront, peer_statistics: dict[str, int]) -> str:
    from .metrics import render  # noqa: PLC0415

    lines = render([front])
    labels = f'ClusterId="{front.cluster_id}",NodeId="{front.node_id}"'
    for name, (family, kind, text) in _PEER_FAMILIES.items():
        if name in peer_statistics:
            lines += [f"# HELP {family} {text}\n", f"# TYPE {family} {kind}\n",
                      f"{family}{{{labels}}} {peer_statistics[name]}\n"]
    return "".join(lines)


async def _serve_metrics(host: str, port: int, text):
    from aiohttp import web  # noqa: PLC0415 - HttpUpstream's library, already loaded

    async def handle(_request: web.Request) -> web.Response:
        return web.Response(text=text(), content_type="text/plain", charset="utf-8")

    app = web.Application()
    app.router.add_get("/metrics", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


async def serve_dax(*, host: str, port: int, upstream_url: str, region: str, node_id: str,
                    record_ttl_ms: int, query_ttl_ms: int, attribute_lists_path: str | None = None,
                    tls_cert_path: str | None = None, tls_key_path: str | None = None,
                    tls_generate: bool = False, cluster_name: str = "meridian", members: str = "",
                    metrics_port: int | None = None, advertise: str | None = None) -> None:  # fmt: skip
    """``tls_*``: ``tls.resolve``'s choices (a certificate made here goes to the per-user temporary folder).
    ``members``: the ``--members`` text (every member, this one included; empty: alone);
    ``advertise``: ``HOST[:PORT]`` this node lists for itself in ``endpoints``."""
    from meridian.router.server import _wait_for_signal  # noqa: PLC0415 - the same SIGTERM/SIGINT handling

    from . import tls  # noqa: PLC0415
    from .upstream import HttpUpstream  # noqa: PLC0415

    cluster = parse_members(members)
    me = member_of(cluster, node_id) if cluster else None
    if me is not None and me.dax_port != port:
        raise ValueError(f"--members gives {node_id} DAX port {me.dax_port}, --listen {port}")
    az = zone_of(region, cluster.index(me)) if me is not None else f"{region}a"
    shown = parse_advertise(advertise) if advertise else None
    tls_files = tls.resolve(cert_path=tls_cert_path, key_path=tls_key_path, generate=tls_generate, directory=None,
                            host=host)  # fmt: skip
    caches = DaxCaches(record_ttl_ms=record_ttl_ms, query_ttl_ms=query_ttl_ms)
    front = await start_dax_node(HttpUpstream(upstream_url, region), host=host, port=port, node_id=node_id,
                                 az=az, caches=caches, attribute_lists_path=attribute_lists_path,
                                 tls=tls.server_context(tls_files) if tls_files else None)  # fmt: skip
    front.cluster_id = cluster_name
    if shown is not None:
        front.server.cluster = endpoints_of([DaxMember(node_id, host, port, 0)], node_id, region, advertise=shown)
    receiver = peer_server = metrics = None
    try:
        if me is not None:
            from .peer_channel import GrpcPeers, PeerReceiver, serve_peer_channel  # noqa: PLC0415

            def relist() -> None:  # endpoints leaves out the replicas this node cannot reach
                front.server.cluster = endpoints_of(cluster, node_id, region, grpc_peers.unreachable, shown)

            receiver = PeerReceiver(front.node)
            peer_server = await serve_peer_channel(receiver, host, me.peer_port)
            grpc_peers = GrpcPeers(node_id, [(m.node_id, m.peer_address) for m in cluster if m is not me],
                                   on_change=relist)
            front.server.cluster = endpoints_of(cluster, node_id, region, advertise=shown)  # all, until one is down
            grpc_peers.start()
            front.node.peers = grpc_peers

        def peer_statistics() -> dict[str, int]:
            stats = dict(front.node.peers.statistics())
            if receiver is not None:
                stats.update(receiver.statistics())
            return stats

        if metrics_port is not None:
            metrics = await _serve_metrics(host, metrics_port, lambda: metrics_text(front, peer_statistics()))
        role = "alone" if me is None else f"{'leader' if cluster[0] is me else 'replica'} of {len(cluster)}"
        print(f"meridian dax: {node_id} ({role}, cluster {cluster_name}) listening on {front.url} -> {upstream_url}",
              flush=True)
        if tls_files is not None:
            print(f"meridian dax: daxs:// {tls.trust_hint(tls_files)}", flush=True)
        await _wait_for_signal()
    finally:
        await front.node.peers.close()
        if peer_server is not None:
            await peer_server.stop(grace=None)
        if metrics is not None:
            await metrics.cleanup()
        await front.close()


def run_dax(**kwargs: Any) -> int:
    import uvloop  # noqa: PLC0415

    uvloop.run(serve_dax(**kwargs))
    return 0
