"""The ``meridian`` command: one entry point for every Meridian process.

    meridian serve    embedded router + storage in one process (port 8000)
    meridian node     a storage node (gRPC)
    meridian router   a router in front of storage nodes
    meridian up       a local cluster of real processes (nodes + routers)
    meridian lab      the three-region Docker lab (up, down, status, logs)
    meridian replicator  one region's replicator (Global Tables)
    meridian link | replication | clock | lag | verify | events
                      operate replication between regions
    meridian load     a workload generator (rate, keys, hot keys, regions) with a history file
    meridian chaos    faults (kill, pause, cut, isolate, skew ...) and chaos scenarios with checks
    meridian demo replication  a live replication-latency dashboard
    meridian report RUN_DIR    plots and a summary of a load, chaos or demo run
    meridian streams tail      print a table's stream records as they arrive
    meridian import | export   a table from / to DynamoDB's S3 export format (JSON or Ion) on disk
"""

from __future__ import annotations

import argparse
import logging
import sys

DEFAULT_REGION = "us-east-1"


def _add_serve(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="embedded mode: router and storage in one process")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--data-dir", default="./meridian-data", help="where RocksDB keeps the data (default ./meridian-data)")
    p.add_argument("--in-memory", action="store_true", help="keep data in a RAM-backed scratch folder, removed on exit")
    p.add_argument("--sync", action="store_true", help="fsync every acknowledged write (group commit)")
    p.add_argument("--region", default=DEFAULT_REGION)
    from meridian.cluster.node_options import add_pitr_interval, add_stream_options, add_ttl_interval

    add_ttl_interval(p)
    add_pitr_interval(p)
    add_stream_options(p)
    _add_front_options(p)


def _add_node(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("node", help="a storage node serving gRPC")
    p.add_argument("--listen", required=True, help="HOST:PORT to serve gRPC on")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--sync", action="store_true", help="fsync every acknowledged write (group commit)")
    p.add_argument("--node-id", default=None, help="defaults to the listen address")
    p.add_argument("--region", default=DEFAULT_REGION)
    p.add_argument(
        "--peers", default="",
        help="the region's storage nodes, this one included, each ID=HOST:PORT, comma-separated (as the routers' "
        "--nodes); global secondary index entries go to the node owning them. Default: this node alone",
    )
    from meridian.cluster.node_options import add_pitr_interval, add_resolve_wait, add_stream_options, add_ttl_interval

    add_ttl_interval(p)
    add_pitr_interval(p)
    add_stream_options(p)
    add_resolve_wait(p)
    p.add_argument(
        "--no-replicator", action="store_true",
        help="no replicator will ever read this node (a one-region cluster): deletes leave no tombstone and the "
        "node trims its own change log",
    )  # fmt: skip


def _add_front_options(p: argparse.ArgumentParser) -> None:
    """The router's operator settings (``meridian.router.server.RouterOptions``)."""
    from meridian.model import limits

    p.add_argument(
        "--cors-origins", default="*", metavar="ORIGINS",
        help="browser origins allowed to call, comma-separated; '*' (the default, DynamoDB's answer) for any, "
        "'' for none",
    )
    p.add_argument(
        "--ttl-change-interval-s", type=float, default=limits.TTL_CHANGE_INTERVAL_S, metavar="SECONDS",
        help="how soon UpdateTimeToLive may change a table's TTL again (DynamoDB: one hour; shorten it for labs)",
    )
    p.add_argument(
        "--no-throttling", action="store_true",
        help="never throttle: provisioned tables accept any rate (consumed capacity is still reported)",
    )
    p.add_argument(
        "--dax-port", type=int, default=None, metavar="PORT",
        help="also serve DAX's protocol on this port (dax://HOST:PORT, as the DAX client libraries speak it): "
        "a DAX node with an item cache and a query cache in front of this router",
    )
    p.add_argument(
        "--dax-nodes", type=int, default=1, metavar="N",
        help="nodes of the DAX cluster --dax-port starts, on ports PORT, PORT+1, ...: the first is the leader, "
        "the others read replicas (DAX: 1 to 11; default 1)",
    )
    p.add_argument("--dax-cluster-name", default="meridian", metavar="NAME",
                   help="name of the DAX cluster --dax-port starts (DescribeClusters; default meridian)")
    _add_dax_tls(p)
    _add_dax_ttls(p)
    _add_dax_attribute_lists(p)
    p.add_argument(
        "--credentials", default=None, metavar="FILE_OR_PAIRS",
        help="verify every request's SigV4 signature against these keys: a file of ACCESS_KEY:SECRET[:SESSION_TOKEN] "
        "lines ('#' comments), or comma-separated ACCESS_KEY:SECRET pairs. Default: any signature passes",
    )  # fmt: skip


def _add_dax_ttls(p: argparse.ArgumentParser) -> None:
    """DAX's parameter group: the caches' TTLs (DAX's default: 5 minutes each)."""
    from meridian.model import limits

    p.add_argument(
        "--dax-record-ttl-ms", type=int, default=limits.DAX_RECORD_TTL_MS_DEFAULT, metavar="MS",
        help="DAX item cache TTL (DAX's record-ttl-millis; 0: entries never expire)",
    )
    p.add_argument(
        "--dax-query-ttl-ms", type=int, default=limits.DAX_QUERY_TTL_MS_DEFAULT, metavar="MS",
        help="DAX query cache TTL (DAX's query-ttl-millis; 0: Query and Scan answers are not cached)",
    )


def _add_dax_attribute_lists(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dax-attribute-lists", default=None, metavar="FILE",
        help="keep DAX attribute lists in this journal, so clients' cached ids survive restarts and are shared "
        "by the DAX nodes that use the same file (meridian serve: DATA_DIR/dax-attribute-lists.jsonl)",
    )


def _add_dax_tls(p: argparse.ArgumentParser) -> None:
    """daxs:// (``meridian.router.dax.tls``): the operator's certificate, or one Meridian makes."""
    p.add_argument("--dax-tls-cert", default=None, metavar="FILE",
                   help="serve daxs:// (TLS) with this PEM certificate (chain); needs --dax-tls-key")
    p.add_argument("--dax-tls-key", default=None, metavar="FILE", help="the PEM private key of --dax-tls-cert")
    p.add_argument(
        "--dax-tls", action="store_true",
        help="serve daxs:// (TLS); without --dax-tls-cert, with a self-signed certificate made once (in the data "
        "folder, else a per-user temporary folder) whose path is printed, to trust with SSL_CERT_FILE (Python) "
        "or NODE_EXTRA_CA_CERTS (node)",
    )  # fmt: skip


def _dax_tls_args(ns: argparse.Namespace) -> dict:
    """The TLS flags, checked now: the pair goes together, and given files must load."""
    cert, key = ns.dax_tls_cert, ns.dax_tls_key
    if (cert is None) != (key is None):
        raise SystemExit("--dax-tls-cert and --dax-tls-key go together")
    if cert is not None:
        from meridian.router.dax import tls

        try:
            tls.server_context(tls.TlsFiles(cert_path=cert, key_path=key))
        except tls.TlsError as exc:
            raise SystemExit(str(exc)) from None
    return {"cert_path": cert, "key_path": key, "generate": ns.dax_tls}


def _add_dax(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dax", help="a DAX node: DAX's protocol, with its caches, in front of a DynamoDB endpoint")
    p.add_argument("--listen", default="127.0.0.1:8111", help="HOST:PORT to serve DAX on (default 127.0.0.1:8111)")
    p.add_argument("--upstream", default="http://127.0.0.1:8000", help="the DynamoDB endpoint behind it")
    p.add_argument("--region", default=DEFAULT_REGION)
    p.add_argument("--node-id", default="dax-0")
    p.add_argument("--cluster-name", default="meridian", metavar="NAME",
                   help="the DAX cluster this node belongs to (ClusterId on /metrics; default meridian)")
    p.add_argument(
        "--members", default="", metavar="ID=HOST:DAXPORT/PEERPORT,...",
        help="every node of the cluster, this one included, the first the leader: each lists them all in "
        "endpoints and writes through to the others' item caches over their gRPC PEERPORT. Default: alone",
    )  # fmt: skip
    p.add_argument("--metrics-port", type=int, default=None, help="serve Prometheus /metrics on this port")
    p.add_argument("--advertise", default=None, metavar="HOST[:PORT]",
                   help="the address this node lists for itself in endpoints (behind a published port: the host's); "
                   "default: the one each client reached")
    _add_dax_tls(p)
    _add_dax_ttls(p)
    _add_dax_attribute_lists(p)


def _front_options(ns: argparse.Namespace):
    from meridian.router.server import RouterOptions

    origins = ns.cors_origins.strip()
    cors = "*" if origins == "*" else [o.strip() for o in origins.split(",") if o.strip()]
    credentials = None
    if ns.credentials is not None:
        import os

        from meridian.router.sigv4 import parse_credentials

        text = ns.credentials
        if os.path.isfile(text):
            with open(text, encoding="utf-8") as lines:
                entries = lines.read().splitlines()
        else:
            entries = text.split(",")
        try:
            credentials = parse_credentials(entries)
        except ValueError as exc:
            raise SystemExit(f"--credentials: {exc}") from None
    tls = _dax_tls_args(ns)
    if ns.dax_port is None and (tls["generate"] or tls["cert_path"]):
        raise SystemExit("--dax-tls and --dax-tls-cert need --dax-port")
    return RouterOptions(
        cors_origins=cors, ttl_change_interval_s=ns.ttl_change_interval_s, credentials=credentials,
        stream_retention_s=ns.stream_retention_s, throttling=not ns.no_throttling, dax_port=ns.dax_port,
        dax_record_ttl_ms=ns.dax_record_ttl_ms, dax_query_ttl_ms=ns.dax_query_ttl_ms,
        dax_attribute_lists_path=ns.dax_attribute_lists, dax_nodes=ns.dax_nodes, dax_cluster_name=ns.dax_cluster_name,
        dax_tls_cert_path=tls["cert_path"], dax_tls_key_path=tls["key_path"], dax_tls_generate=tls["generate"],
    )  # fmt: skip


def _add_router(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("router", help="a router in front of storage nodes")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--nodes", required=True,
        help="comma-separated storage nodes of the region, each ID=HOST:PORT (or HOST:PORT, whose id is then the "
        "address); keys are placed by node id, so give stable ids when node ports may change",
    )
    p.add_argument("--region", default=DEFAULT_REGION)
    p.add_argument(
        "--replicator", metavar="HOST:PORT",
        help="the region's replicator, so that GET /meridian/replication can name every region's replicator "
        "(what the replication commands' --endpoint uses)",
    )  # fmt: skip
    from meridian.cluster.node_options import add_resolve_wait, add_stream_options

    add_stream_options(p, shard_period=False)
    add_resolve_wait(p)
    _add_front_options(p)


def _add_replicator(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("replicator", help="one region's replicator: ships its changes to peer regions, applies theirs")
    p.add_argument("--region", required=True)
    p.add_argument("--nodes", required=True, help="the region's storage nodes, each ID=HOST:PORT (as the routers')")
    p.add_argument("--peers", default="", help="the other regions' replicators, each REGION=HOST:PORT")
    p.add_argument("--listen", required=True, help="HOST:PORT to serve peers and control on")
    p.add_argument("--data-dir", required=True, help="where the durable cursors are kept")
    p.add_argument("--latency-ms", type=float, default=0.0, help="simulated one-way latency to every peer (default 0)")
    p.add_argument("--jitter-ms", type=float, default=0.0)
    p.add_argument("--loss", type=float, default=0.0, help="probability that one transmission is lost")
    p.add_argument(
        "--link", default="", metavar="PEER=LATENCY_MS[:JITTER_MS[:LOSS]],...",
        help="per-peer starting conditions, overriding --latency-ms (and --jitter-ms, --loss when given)",
    )  # fmt: skip
    p.add_argument("--metrics-port", type=int, help="serve Prometheus /metrics on this port (default: none)")
    from meridian.cluster.node_options import add_resolve_wait

    add_resolve_wait(p)


def parse_nodes(text: str) -> list[tuple[str, str]]:
    """``"a=h:1,h:2"`` -> ``[("a", "h:1"), ("h:2", "h:2")]``."""
    nodes = []
    for entry in (e.strip() for e in text.split(",")):
        if not entry:
            continue
        node_id, sep, address = entry.partition("=")
        nodes.append((node_id, address) if sep else (entry, entry))
    return nodes


# The commands whose parsers import nothing heavy: ``meridian serve`` and
# the processes of a cluster build only these (the operator tools' parsers
# import their modules, and start-up time is what a user of `serve` feels).
_SERVER_COMMANDS = frozenset({"serve", "node", "router", "replicator", "dax"})


def _command_word(argv: list[str]) -> str | None:
    """The subcommand ``argv`` names (None: none, or only options)."""
    words = iter(argv)
    for word in words:
        if word == "--log-level":
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The command line's parser: every command's, or, for a server
    ``command``, the server commands' alone."""
    from meridian.cluster.startup_errors import exit_codes_help

    parser = argparse.ArgumentParser(
        prog="meridian", description=__doc__, epilog=exit_codes_help(), formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--log-level", default="WARNING",
        help="DEBUG (a start-up failure then shows its traceback), INFO, WARNING (default) or ERROR",
    )  # fmt: skip
    parser.add_argument("--version", action=_VersionAction)
    sub = parser.add_subparsers(dest="command", required=True)
    _add_serve(sub)
    _add_node(sub)
    _add_router(sub)
    _add_replicator(sub)
    _add_dax(sub)
    if command in _SERVER_COMMANDS:
        return parser
    from meridian.cluster import up

    up.add_arguments(sub.add_parser("up", help="a local cluster of real processes"))
    from meridian.lab import cli as lab_cli

    lab_cli.add_arguments(sub.add_parser("lab", help="the three-region Docker lab: up, down, status, logs, build"))
    from meridian.cluster import replication_cli

    replication_cli.add_arguments(sub)
    from meridian.lab import demo, report

    demo.add_arguments(sub)
    report.add_arguments(sub)
    from meridian.lab.load import cli as load_cli

    load_cli.add_arguments(sub.add_parser("load", help="a workload generator: open-loop PutItem/GetItem, history file"))
    from meridian.lab.chaos import cli as chaos_cli

    chaos_cli.add_arguments(sub)
    from meridian.lab import streams_tail

    streams_tail.add_arguments(sub)
    from meridian.lab.export_format import cli as export_format_cli

    export_format_cli.add_arguments(sub)
    return parser


class _VersionAction(argparse.Action):
    """``meridian --version``: the installed package's version (looked up only when asked)."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, help="print Meridian's version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *args: object) -> None:
        from meridian import __version__

        print(f"meridian {__version__}")
        parser.exit()


# The commands whose start-up failures are one line and an exit code
# (cluster/startup_errors.py); a new server front (``dax``) joins them here.
_GUARDED_COMMANDS = frozenset({"serve", "node", "router", "replicator", "up", "dax"})


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    ns = build_parser(_command_word(argv)).parse_args(argv)
    logging.basicConfig(level=ns.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if ns.command in _GUARDED_COMMANDS:
        return _guarded(ns)
    return _run(ns)


def _guarded(ns: argparse.Namespace) -> int:
    """Run a server command; a start-up failure is one line on stderr and its
    exit code (the traceback too with ``--log-level debug``)."""
    from meridian.cluster import startup_errors

    ctx = startup_errors.context_of(ns)
    debug = ns.log_level.upper() == "DEBUG"
    try:
        startup_errors.preflight(ctx)
        if ns.command in ("serve", "node"):
            from meridian.cluster import migration_display

            migration_display.install(ns.command)
        if ns.command in ("node", "replicator"):  # serve and router print theirs once listening
            import os

            from meridian import __version__

            print(f"meridian {ns.command} {__version__} (pid {os.getpid()}): starting on {ns.listen}", flush=True)
        return _run(ns)
    except Exception as exc:  # noqa: BLE001 - the entry point: recognised failures become one line
        failure = startup_errors.diagnose(exc, ctx)
        if failure is None:
            raise
        return startup_errors.report(failure, ns.command, exc=exc, debug=debug)


def _run(ns: argparse.Namespace) -> int:
    if ns.command == "serve":
        from meridian.router.server import run_serve

        return run_serve(host=ns.host, port=ns.port, data_dir=ns.data_dir, in_memory=ns.in_memory, sync=ns.sync,
                         region=ns.region, ttl_interval_s=ns.ttl_interval_s, options=_front_options(ns),
                         stream_shard_period_s=ns.stream_shard_period_s,
                         pitr_checkpoint_interval_s=ns.pitr_checkpoint_interval_s)
    if ns.command == "node":
        from meridian.node.server import run_node

        node_id = ns.node_id or ns.listen
        peers = parse_nodes(ns.peers)
        placement = None
        if peers:
            # The routers' ring, so nodes place index partitions exactly as
            # routers place them when they read an index.
            from meridian.model.ring import Ring

            if node_id not in {peer_id for peer_id, _ in peers}:
                raise SystemExit(f"--peers must include this node ({node_id})")
            placement = Ring([peer_id for peer_id, _ in peers]).owner
        run_node(listen=ns.listen, data_dir=ns.data_dir, sync=ns.sync, node_id=node_id, region=ns.region,
                 peers=peers, placement=placement, ttl_interval_s=ns.ttl_interval_s,
                 stream_retention_s=ns.stream_retention_s, stream_shard_period_s=ns.stream_shard_period_s,
                 replicated=not ns.no_replicator, pitr_checkpoint_interval_s=ns.pitr_checkpoint_interval_s)
        return 0
    if ns.command == "dax":
        from meridian.router.dax.membership import member_of, parse_advertise, parse_members
        from meridian.router.dax.process import run_dax

        host, _sep, port = ns.listen.rpartition(":")
        tls = _dax_tls_args(ns)
        try:
            if ns.members:
                member_of(parse_members(ns.members), ns.node_id)
            if ns.advertise:
                parse_advertise(ns.advertise)
        except ValueError as exc:
            raise SystemExit(str(exc)) from None
        return run_dax(host=host or "127.0.0.1", port=int(port), upstream_url=ns.upstream, region=ns.region,
                       node_id=ns.node_id, record_ttl_ms=ns.dax_record_ttl_ms, query_ttl_ms=ns.dax_query_ttl_ms,
                       attribute_lists_path=ns.dax_attribute_lists, tls_cert_path=tls["cert_path"],
                       tls_key_path=tls["key_path"], tls_generate=tls["generate"], cluster_name=ns.cluster_name,
                       members=ns.members, metrics_port=ns.metrics_port, advertise=ns.advertise)
    if ns.command == "router":
        from meridian.router.server import run_router

        return run_router(host=ns.host, port=ns.port, nodes=parse_nodes(ns.nodes), region=ns.region,
                          replicator=ns.replicator, options=_front_options(ns))
    if ns.command == "replicator":
        from meridian.replication.link import LinkConditions
        from meridian.replication.process import run_replicator
        from meridian.replication.topology import link_conditions, parse_links

        peers = dict(parse_nodes(ns.peers))
        if ns.region in peers:
            raise SystemExit(f"--peers must not include this region ({ns.region})")
        try:
            default = LinkConditions(latency_ms=ns.latency_ms, jitter_ms=ns.jitter_ms, loss=ns.loss)
            conditions = link_conditions(peers, default, parse_links(ns.link))
        except ValueError as exc:
            raise SystemExit(str(exc)) from None
        run_replicator(ns.region, parse_nodes(ns.nodes), peers, ns.listen, ns.data_dir,
                       conditions, metrics_port=ns.metrics_port)
        return 0
    if ns.command in ("link", "replication", "clock", "lag", "verify", "events"):
        from meridian.cluster import replication_cli

        return replication_cli.run(ns)
    if ns.command == "up":
        from meridian.cluster import up

        return up.run_up(ns)
    if ns.command == "lab":
        from meridian.lab import cli as lab_cli

        return lab_cli.run(ns)
    if ns.command == "demo":
        from meridian.lab import demo

        return demo.run(ns)
    if ns.command == "report":
        from meridian.lab import report

        return report.run(ns)
    if ns.command == "load":
        from meridian.lab.load import cli as load_cli

        return load_cli.run(ns)
    if ns.command == "chaos":
        from meridian.lab.chaos import cli as chaos_cli

        return chaos_cli.run(ns)
    if ns.command == "streams":
        from meridian.lab import streams_tail

        return streams_tail.run(ns)
    if ns.command in ("import", "export"):
        from meridian.lab.export_format import cli as export_format_cli

        return export_format_cli.run(ns)
    raise AssertionError(ns.command)


if __name__ == "__main__":
    sys.exit(main())
