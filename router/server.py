"""Starting a router: embedded (``meridian serve``) or in front of nodes (``meridian router``).

Both build the same ``Application`` over a ``Storage``; only the storage
differs (``EmbeddedStorage`` over an in-process engine, or ``GrpcStorage``
over the nodes' gRPC streams).  Every event loop is uvloop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import shutil
import signal
import tempfile
from dataclasses import dataclass

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import uvloop

from .actions import ACTIONS, DAX_ACTIONS, STREAM_ACTIONS
from .app import Application
from .catalog import Catalog, RegionDirectory
from .context import RouterContext
from .console.routes import console_handler
from .fast_path import fast_path_for
from .http import HttpProtocol, HttpProtocolAllHeaders, HttpStats, Request, Response
from .sigv4 import Credential
from meridian.model import limits
from meridian.model.errors import DynamoError
from meridian.model.ring import Ring
from .storage import Storage
from .throttle import READ, WRITE, Throttle

log = logging.getLogger("meridian.router.server")

Route = Callable[[], Awaitable[Response]]

_JSON_HEADER = b"Content-Type: application/json\r\n"
_REPLICATION_PATH = b"/meridian/replication"
_CONTROL_PATH = b"/meridian/control"
_PROMETHEUS_HEADER = b"Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"


@dataclass
class RouterServer:
    """A running router: its HTTP server, application and storage."""

    app: Application
    storage: Storage
    catalog: Catalog
    server: asyncio.AbstractServer
    stats: HttpStats
    ctx: RouterContext | None = None
    dax: Any = None  # router.dax.cluster.DaxCluster when --dax-port is set

    @property
    def port(self) -> int:
        return self.server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        self.server.close()
        if self.ctx is not None:  # the --dax-port cluster and those the control plane created
            if self.ctx.dax_control is not None:
                await self.ctx.dax_control.close()  # its creations and resizes in flight first
            for cluster in list(self.ctx.dax_clusters.values()):
                await cluster.close()
        elif self.dax is not None:
            await self.dax.close()
        await self.catalog.stop()
        await self.storage.close()


_TTL_METRIC = "meridian_ttl_deleted_item_count"
_TTL_HELP = (
    f"# HELP {_TTL_METRIC} Items Time to Live deleted from the table in this region since it was created, "
    "summed over its storage nodes (CloudWatch TimeToLiveDeletedItemCount).\n"
    f"# TYPE {_TTL_METRIC} gauge\n"
)


def _label_value(text: str) -> str:
    """A Prometheus label value, escaped as the text exposition format asks."""
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


async def ttl_metrics_text(ctx: RouterContext) -> str:
    """``meridian_ttl_deleted_item_count{TableName=...}``, one sample per table of the catalog.

    Read when scraped, never on a DynamoDB call's path: one ``table_stats``
    per table of the catalog (at most as many reads at once as the console
    makes, the same reads).  A table whose statistics cannot be read now (a
    node down) is left out of this scrape rather than shown with a partial
    sum, which would read as the count going back.
    """
    gate = asyncio.Semaphore(limits.METRICS_STATS_CONCURRENCY)

    async def deleted(table_id: int) -> int | None:
        async with gate:
            try:
                return (await ctx.storage.table_stats(table_id)).ttl_deleted_count
            except DynamoError as err:
                log.info("TTL metrics: table %d's statistics unavailable: %r", table_id, err)
                return None

    tables = sorted(ctx.catalog.tables(), key=lambda table: table.name)
    counts = await asyncio.gather(*(deleted(table.table_id) for table in tables))
    lines = [
        f'{_TTL_METRIC}{{TableName="{_label_value(table.name)}"}} {count}\n'
        for table, count in zip(tables, counts)
        if count is not None
    ]
    return _TTL_HELP + "".join(lines)


_THROUGHPUT_FAMILIES = (
    ("meridian_consumed_read_capacity_units_total", "counter",
     "Read capacity units this router's requests consumed from the table, or with GlobalSecondaryIndexName "
     "from that index (CloudWatch ConsumedReadCapacityUnits)."),
    ("meridian_consumed_write_capacity_units_total", "counter",
     "Write capacity units this router's requests consumed from the table, or with GlobalSecondaryIndexName "
     "from that index (CloudWatch ConsumedWriteCapacityUnits)."),
    ("meridian_read_throttle_events_total", "counter",
     "Reads of the table this router throttled, or with GlobalSecondaryIndexName those the index refused "
     "(CloudWatch ReadThrottleEvents)."),
    ("meridian_write_throttle_events_total", "counter",
     "Writes to the table this router throttled, or with GlobalSecondaryIndexName those the index refused "
     "(CloudWatch WriteThrottleEvents)."),
    ("meridian_provisioned_read_capacity_units", "gauge",
     "The table's or index's provisioned read capacity (CloudWatch ProvisionedReadCapacityUnits; provisioned "
     "tables only)."),
    ("meridian_provisioned_write_capacity_units", "gauge",
     "The table's or index's provisioned write capacity (CloudWatch ProvisionedWriteCapacityUnits; provisioned "
     "tables only)."),
    ("meridian_read_key_range_throughput_throttle_events_total", "counter",
     "Reads this router refused at one partition's ceiling, by partition of the table or index "
     "(CloudWatch ReadKeyRangeThroughputThrottleEvents, split by Partition)."),
    ("meridian_write_key_range_throughput_throttle_events_total", "counter",
     "Writes this router refused at one partition's ceiling, by partition of the table or index "
     "(CloudWatch WriteKeyRangeThroughputThrottleEvents, split by Partition)."),
)


def throughput_metrics_text(ctx: RouterContext) -> str:
    """Capacity consumed and throttled by this router, per table, global
    index and partition, and each provisioned table's and index's capacity
    (``router/throttle.py``; empty with throttling off).  A table's own
    samples have the ``TableName`` label alone, an index's add
    ``GlobalSecondaryIndexName`` (CloudWatch's dimensions); summing the
    routers of a region gives the table's."""
    throttle = getattr(ctx, "throttle", None)  # a context without a server has none
    if throttle is None or not throttle.enabled:
        return ""
    columns: list[list[tuple[str, Any]]] = [[] for _ in _THROUGHPUT_FAMILIES]
    for t in sorted(ctx.catalog.tables(), key=lambda table: table.name):
        table_label = f'TableName="{_label_value(t.name)}"'
        indexes = [(index, f'{table_label},GlobalSecondaryIndexName="{_label_value(index.name)}"')
                   for index in t.global_indexes]
        for meter in (READ, WRITE):
            columns[meter].append((table_label, throttle.consumed[meter].get(t.table_id, 0.0)))
            columns[meter].extend((labels, throttle.index_consumed[meter].get((t.table_id, index.name), 0.0))
                                  for index, labels in indexes)
            columns[2 + meter].append((table_label, throttle.throttled.get((t.name, meter), 0)))
            columns[2 + meter].extend((labels, throttle.events.get((t.table_id, index.name, meter), 0))
                                      for index, labels in indexes)
        if t.billing_mode == "PROVISIONED":
            columns[4].append((table_label, t.read_capacity))
            columns[5].append((table_label, t.write_capacity))
            columns[4].extend((labels, index.read_capacity) for index, labels in indexes)
            columns[5].extend((labels, index.write_capacity) for index, labels in indexes)
        for index_name, meter, partition, count in throttle.partition_events(t):
            labels = table_label + (f',GlobalSecondaryIndexName="{_label_value(index_name)}"' if index_name else "")
            columns[6 + meter].append((f'{labels},Partition="{partition}"', count))
    out = []
    for (name, kind, text), samples in zip(_THROUGHPUT_FAMILIES, columns):
        out.append(f"# HELP {name} {text}\n# TYPE {name} {kind}\n")
        out.extend(f"{name}{{{labels}}} {value}\n" for labels, value in samples)
    return "".join(out)


_CONTRIBUTOR_FAMILIES = {
    False: ("meridian_contributor_insights_accessed_keys",
            "A table's or global index's most accessed keys through this router (Contributor Insights' PKC and "
            "SKC rules): capacity units consumed in about the last minute, exponentially weighted; an estimate, "
            "never low."),
    True: ("meridian_contributor_insights_throttled_keys",
           "A table's or global index's most throttled keys through this router (Contributor Insights' PKT and "
           "SKT rules): requests refused in about the last minute, exponentially weighted; an estimate, never low."),
}


def contributor_metrics_text(ctx: RouterContext) -> str:
    """Each table's and global index's top keys per Contributor Insights rule
    (``router/contributors.py``), largest first; only resources with it on.
    ``Key`` is the partition key's value, ``SortKey`` the sort key's (SKC, SKT)."""
    contributors = getattr(ctx, "contributors", None)  # a context without a server may have none
    if contributors is None:
        return ""
    tables = sorted(ctx.catalog.tables(), key=lambda table: table.name)
    contributors.prune(tables)  # a deleted table's or disabled resource's rules
    samples: dict[bool, list[str]] = {False: [], True: []}
    for table in tables:
        if not table.contributor_insights:
            continue
        for index_name, code, ranked in contributors.top(table):
            labels = (f'TableName="{_label_value(table.name)}",IndexName="{_label_value(index_name or "")}",'
                      f'Rule="{code}"')
            for key, count in ranked:
                pk, sk = (key[0], key[1]) if code.startswith("SK") else (key, ("", ""))
                samples[code.endswith("T")].append(
                    f'{labels},Key="{_label_value(pk[1])}",SortKey="{_label_value(sk[1])}"}} {count:.6g}\n')
    out = []
    for throttled, (name, text) in _CONTRIBUTOR_FAMILIES.items():
        out.append(f"# HELP {name} {text}\n# TYPE {name} gauge\n")
        out.extend(f"{name}{{{sample}" for sample in samples[throttled])
    return "".join(out)


def _build_info_text() -> str:
    """``meridian_build_info{version=...} 1``: which Meridian serves this router
    (the version is looked up on the first scrape, not at start-up)."""
    from meridian import __version__

    return (
        "# HELP meridian_build_info The Meridian build serving this router.\n"
        "# TYPE meridian_build_info gauge\n"
        f'meridian_build_info{{version="{_label_value(__version__)}"}} 1\n'
    )


def dax_metrics_text(ctx: RouterContext) -> str:
    """The DAX node's cache and request counters, when this router serves one."""
    clusters = getattr(ctx, "dax_clusters", None)  # a context stand-in (tests) may lack it
    if not clusters:
        return ""
    from .dax.metrics import render

    return "".join(render([node for cluster in clusters.values() for node in cluster.nodes]))


def _metrics_route(ctx: RouterContext, relay: Route | None) -> Route:
    """``GET /metrics``: the replicator's metrics (when the router has one), then this router's own
    (TTL counts, throughput, Contributor Insights' top keys)."""

    async def metrics() -> Response:
        if relay is None:
            text = (_build_info_text() + await ttl_metrics_text(ctx) + throughput_metrics_text(ctx)
                    + contributor_metrics_text(ctx) + dax_metrics_text(ctx))
            return Response(200, text.encode(), _PROMETHEUS_HEADER)
        relayed = await relay()
        if relayed.status != 200:
            return relayed
        text = relayed.body.decode()
        if text and not text.endswith("\n"):
            text += "\n"
        text += (_build_info_text() + await ttl_metrics_text(ctx) + throughput_metrics_text(ctx)
                 + contributor_metrics_text(ctx) + dax_metrics_text(ctx))
        return Response(200, text.encode(), _PROMETHEUS_HEADER)

    return metrics


def _replication_routes(region: str, replicator: str) -> tuple[Route, Route]:
    """``GET /meridian/replication``, and the relay of ``GET /metrics``, answered by the region's replicator.

    The first names every region's replicator, as this region's one knows
    them: the replication commands' ``--endpoint`` starts there, then talks
    to the replicators themselves.  The second relays the replicator's
    Prometheus metrics, so a router is enough to scrape its region
    (``_metrics_route`` adds the router's own).
    """
    from meridian.proto.errors import RPC_FAILURES
    from meridian.replication.peers import control

    async def replication() -> Response:
        try:
            answer = await control(replicator, {"command": "peers"}, timeout_s=limits.ROUTER_REPLICATOR_TIMEOUT_S)
        except RPC_FAILURES as exc:  # any failure of the replicator is a 503 here
            body = {"message": f"the replicator of {region} at {replicator} is unavailable: {exc}"}
            return Response(503, orjson.dumps(body), _JSON_HEADER)
        replicators = {region: replicator, **answer["replicators"]}
        return Response(200, orjson.dumps({"region": region, "replicators": replicators}), _JSON_HEADER)

    async def metrics() -> Response:
        try:
            answer = await control(replicator, {"command": "metrics"}, timeout_s=limits.ROUTER_REPLICATOR_TIMEOUT_S)
        except RPC_FAILURES as exc:  # any failure of the replicator is a 503 here
            return Response(503, f"# replicator of {region} unavailable: {exc}\n".encode(), _PROMETHEUS_HEADER)
        return Response(200, answer["text"].encode(), _PROMETHEUS_HEADER)

    return replication, metrics


def _control_route(region: str, replicator: str) -> Callable[[Request], Awaitable[Response]]:
    """``POST /meridian/control``: ``{"region": R, "command": C, ...}`` to the region's replicator.

    The replicator runs it, or forwards it to R's replicator (``peers.py``),
    so every region can be operated through any router.  200 with the
    command's answer; 400 ``{"message"}`` for a bad body, region or command;
    503 when a replicator cannot be reached.
    """
    from meridian.proto.errors import RPC_FAILURES
    from meridian.replication.peers import ControlError, control

    def refuse(status: int, message: str) -> Response:
        return Response(status, orjson.dumps({"message": message}), _JSON_HEADER)

    async def route(req: Request) -> Response:
        if len(req.body) > limits.ROUTER_CONTROL_BODY_BYTES_MAX:
            return refuse(413, f"a control command is at most {limits.ROUTER_CONTROL_BODY_BYTES_MAX} bytes")
        try:
            command = orjson.loads(req.body)
        except orjson.JSONDecodeError:
            return refuse(400, "the body is not JSON")
        if not isinstance(command, dict):
            return refuse(400, "the body must be a JSON object")
        for field in ("region", "command"):
            if not isinstance(command.get(field), str) or not command[field]:
                return refuse(400, f"{field!r} must be a non-empty string")
        try:
            answer = await control(replicator, command, timeout_s=limits.ROUTER_CONTROL_TIMEOUT_S)
        except ControlError as exc:
            return refuse(400, str(exc) or "invalid command")
        except RPC_FAILURES as exc:  # the replicator, or the region it forwards to, failed
            return refuse(503, f"via the replicator of {region} at {replicator}: {exc}")
        return Response(200, orjson.dumps(answer), _JSON_HEADER)

    return route


@dataclass(frozen=True)
class RouterOptions:
    """What a router's operator may set (``meridian serve`` / ``meridian router`` flags).

    ``cors_origins``: browser origins allowed to call (``"*"``, DynamoDB's
    answer, or a list of exact origins; ``[]`` for none).
    ``ttl_change_interval_s``: how soon a table's TimeToLive may change again
    (DynamoDB's hour; labs shorten it).
    ``credentials``: access key -> ``Credential`` (secret, optional session
    token); every request's SigV4 signature is then verified as DynamoDB
    does (``router/sigv4.py``).  None (the default): any signature passes.
    ``stream_retention_s``: how long a disabled DynamoDB stream is still
    listed and readable (DynamoDB's 24 hours; the nodes' ``--stream-retention-s``
    should match, as it is how long they keep its records).
    ``throttling``: provisioned tables and indexes are held to their
    throughput, as DynamoDB does (``router/throttle.py``); False meters
    nothing (consumed capacity is still reported).
    ``dax_port``: also serve a DAX node on this port (``router/dax/``), in
    front of this router's action layer; its clients' credentials are
    checked against ``credentials`` too.
    ``dax_tls_cert_path``/``dax_tls_key_path``: the DAX nodes speak ``daxs://``
    (TLS) with these PEM files; ``dax_tls_generate`` without them: with a
    self-signed certificate made once in ``dax_tls_dir`` (None: a per-user
    temporary folder), see ``router/dax/tls.py``.
    """

    cors_origins: str | list[str] = "*"
    ttl_change_interval_s: float = limits.TTL_CHANGE_INTERVAL_S
    credentials: dict[str, Credential] | None = None
    stream_retention_s: float = limits.STREAM_RETENTION_S_DEFAULT
    throttling: bool = True
    dax_port: int | None = None
    dax_record_ttl_ms: int = limits.DAX_RECORD_TTL_MS_DEFAULT
    dax_query_ttl_ms: int = limits.DAX_QUERY_TTL_MS_DEFAULT
    dax_attribute_lists_path: str | None = None
    dax_nodes: int = 1
    dax_cluster_name: str = "meridian"
    dax_tls_cert_path: str | None = None
    dax_tls_key_path: str | None = None
    dax_tls_generate: bool = False
    dax_tls_dir: str | None = None


def with_dax_tls(options: RouterOptions, host: str) -> tuple[RouterOptions, Any]:
    """(``options`` naming the files, ``tls.TlsFiles`` or None): a certificate asked for is made (or reused)
    now, so the banner can print its path; starting the router then only loads the files."""
    if options.dax_port is None or not (options.dax_tls_generate or options.dax_tls_cert_path):
        return options, None
    from .dax import tls

    files = tls.resolve(cert_path=options.dax_tls_cert_path, key_path=options.dax_tls_key_path,
                        generate=options.dax_tls_generate, directory=options.dax_tls_dir, host=host)  # fmt: skip
    assert files is not None  # asked for above
    return dataclasses.replace(options, dax_tls_cert_path=files.cert_path, dax_tls_key_path=files.key_path), files


async def start_router(
    storage: Storage,
    *,
    host: str,
    port: int,
    region: str,
    shared_catalog: bool,
    replicator: str | None = None,
    inflight_max: int = limits.HTTP_INFLIGHT_REQUESTS_MAX,
    pipelined_max: int = limits.HTTP_PIPELINED_REQUESTS_MAX,
    resume_below: int = limits.HTTP_PIPELINED_REQUESTS_RESUME_BELOW,
    options: RouterOptions = RouterOptions(),
) -> RouterServer:
    """``replicator``: the region's replicator (HOST:PORT), served on ``GET /meridian/replication``.

    ``inflight_max`` (per router), ``pipelined_max`` and ``resume_below``
    (per connection): the HTTP front's bounds, smaller in tests.
    ``options``: the operator's settings (``RouterOptions``).
    """
    catalog = Catalog(storage, region, shared=shared_catalog, directory=RegionDirectory(region, replicator))
    await catalog.start()
    ctx = RouterContext(storage=storage, catalog=catalog, ring=Ring(storage.node_ids), region=region, address=f"{host}:{port}")
    ctx.ttl_change_interval_s = options.ttl_change_interval_s
    ctx.stream_retention_s = options.stream_retention_s
    ctx.throttle = Throttle(storage, ctx.ring, enabled=options.throttling)
    stats = HttpStats()

    async def health() -> Response:
        return Response(200, orjson.dumps({"status": "ok", "region": region, "nodes": len(storage.node_ids)}), _JSON_HEADER)

    routes = {b"/health": health}
    post_routes = {}
    relay: Route | None = None
    if replicator is not None:
        routes[_REPLICATION_PATH], relay = _replication_routes(region, replicator)
        post_routes[_CONTROL_PATH] = _control_route(region, replicator)
    routes[b"/metrics"] = _metrics_route(ctx, relay)
    app = Application(
        ctx, ACTIONS, routes, post_routes, inflight_max=inflight_max, cors_origins=options.cors_origins,
        credentials=options.credentials, stream_actions=STREAM_ACTIONS, dax_actions=DAX_ACTIONS,
    )
    from .dax.control_model import DaxControl  # the DAX control plane (router/actions/dax_control.py)
    from .dax.upstream import InProcessUpstream

    ctx.dax_control = DaxControl(InProcessUpstream(app), host=host, region=region, credentials=options.credentials)
    handle = console_handler(app.handle, ctx, replicator)  # /console: the web console (router/console/)
    fast = fast_path_for(app, storage)  # embedded GetItem/PutItem without coroutines (router/fast_path.py)
    # A signature covers headers the plain protocol skips: keep them all only when they are checked.
    protocol = HttpProtocolAllHeaders if options.credentials else HttpProtocol
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: protocol(handle, app.encode, stats, pipelined_max=pipelined_max, resume_below=resume_below, fast=fast),
        host,
        port,
        reuse_address=True,
        backlog=limits.HTTP_LISTEN_BACKLOG_CONNECTIONS,
    )
    if port == 0:
        ctx.address = f"{host}:{server.sockets[0].getsockname()[1]}"
    dax = None
    if options.dax_port is not None:
        from .dax.cluster import start_dax_cluster  # only when asked: the embedded start-up stays lean
        from .dax.upstream import InProcessUpstream

        options, tls_files = with_dax_tls(options, host)
        tls_context = None
        if tls_files is not None:  # daxs://: each node of the cluster serves TLS with this context
            from .dax.tls import server_context

            tls_context = server_context(tls_files)
        dax = await start_dax_cluster(
            InProcessUpstream(app), name=options.dax_cluster_name, host=host, node_count=options.dax_nodes,
            base_port=options.dax_port, record_ttl_ms=options.dax_record_ttl_ms,
            query_ttl_ms=options.dax_query_ttl_ms, attribute_lists_path=options.dax_attribute_lists_path,
            region=region, credentials=options.credentials, tls=tls_context,
        )  # fmt: skip
        ctx.dax_clusters[dax.name] = dax
    return RouterServer(app=app, storage=storage, catalog=catalog, server=server, stats=stats, ctx=ctx, dax=dax)


async def _wait_for_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def serve_embedded(
    *, host: str, port: int, data_dir: str, sync: bool, region: str,
    ttl_interval_s: float = limits.TTL_SWEEP_INTERVAL_S_DEFAULT, options: RouterOptions = RouterOptions(),
    stream_shard_period_s: float = limits.STREAM_SHARD_PERIOD_S_DEFAULT,
    pitr_checkpoint_interval_s: float = limits.PITR_CHECKPOINT_INTERVAL_S_DEFAULT,
) -> None:  # fmt: skip
    """The engine keeps stream records as long as the router shows disabled
    streams (``options.stream_retention_s``)."""
    from .storage_embedded import EmbeddedStorage
    from meridian.node.engine import Engine

    os.makedirs(data_dir, exist_ok=True)
    engine = Engine(data_dir, node_id="embedded", region=region, sync=sync, replicated=False,
                    stream_retention_s=options.stream_retention_s, stream_shard_period_s=stream_shard_period_s)
    storage = EmbeddedStorage(engine, ttl_interval_s=ttl_interval_s, pitr_checkpoint_interval_s=pitr_checkpoint_interval_s)
    if options.dax_port is not None and options.dax_attribute_lists_path is None:
        # DAX clients cache attribute-list ids across the node's restarts: keep the lists with the data
        options = dataclasses.replace(options, dax_attribute_lists_path=os.path.join(data_dir, "dax-attribute-lists.jsonl"))
    options, dax_tls = with_dax_tls(options, host)
    router = await start_router(storage, host=host, port=port, region=region, shared_catalog=False, options=options)
    from meridian import __version__  # after listening: the lookup costs ~10 ms

    print(f"meridian serve {__version__}: listening on http://{host}:{router.port} "
          f"(data in {data_dir}{', fsync on' if sync else ''})", flush=True)  # fmt: skip
    if router.dax is not None:
        print(f"meridian serve: DAX cluster {router.dax.name} on {router.dax.url} "
              f"({len(router.dax.nodes)} node(s))", flush=True)
        if dax_tls is not None:
            from .dax.tls import trust_hint

            print(f"meridian serve: DAX daxs:// {trust_hint(dax_tls)}", flush=True)
    try:
        await _wait_for_signal()
    finally:
        await router.close()


async def serve_router(
    *, host: str, port: int, nodes: list[tuple[str, str]], region: str, replicator: str | None,
    options: RouterOptions = RouterOptions(),
) -> None:  # fmt: skip
    from .storage_grpc import GrpcStorage

    storage = GrpcStorage(nodes)
    options, dax_tls = with_dax_tls(options, host)
    router = await start_router(
        storage, host=host, port=port, region=region, shared_catalog=True, replicator=replicator, options=options
    )
    from meridian import __version__

    print(f"meridian router {__version__}: listening on http://{host}:{router.port} -> {len(nodes)} node(s)", flush=True)
    if router.dax is not None:
        print(f"meridian router: DAX cluster {router.dax.name} on {router.dax.url} "
              f"({len(router.dax.nodes)} node(s))", flush=True)
        if dax_tls is not None:
            from .dax.tls import trust_hint

            print(f"meridian router: DAX daxs:// {trust_hint(dax_tls)}", flush=True)
    try:
        await _wait_for_signal()
    finally:
        await router.close()


def run_serve(
    *, host: str, port: int, data_dir: str | None, in_memory: bool, sync: bool, region: str,
    ttl_interval_s: float = limits.TTL_SWEEP_INTERVAL_S_DEFAULT, options: RouterOptions = RouterOptions(),
    stream_shard_period_s: float = limits.STREAM_SHARD_PERIOD_S_DEFAULT,
    pitr_checkpoint_interval_s: float = limits.PITR_CHECKPOINT_INTERVAL_S_DEFAULT,
) -> int:  # fmt: skip
    scratch = None
    if not in_memory and options.dax_tls_dir is None:  # a made DAX certificate lives with the data
        options = dataclasses.replace(options, dax_tls_dir=data_dir)
    if in_memory:
        # RocksDB still writes files; on a RAM-backed folder nothing touches disk.
        base = "/dev/shm" if os.path.isdir("/dev/shm") else None
        scratch = tempfile.mkdtemp(prefix="meridian-mem-", dir=base)
        data_dir = scratch
    assert data_dir is not None
    try:
        uvloop.run(
            serve_embedded(
                host=host, port=port, data_dir=data_dir, sync=sync, region=region, ttl_interval_s=ttl_interval_s,
                options=options, stream_shard_period_s=stream_shard_period_s,
                pitr_checkpoint_interval_s=pitr_checkpoint_interval_s,
            )
        )
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    return 0


def run_router(
    *, host: str, port: int, nodes: list[tuple[str, str]], region: str, replicator: str | None = None,
    options: RouterOptions = RouterOptions(),
) -> int:  # fmt: skip
    uvloop.run(serve_router(host=host, port=port, nodes=nodes, region=region, replicator=replicator, options=options))
    return 0
