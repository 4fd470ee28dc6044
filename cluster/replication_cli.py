"""Operating Global Tables replication from the command line.

    meridian link show|set|cut|heal ...   simulated links between regions
    meridian replication pause|resume R   stop replication to and from one region
    meridian clock skew R --ms N          offset a region's hybrid clocks
    meridian lag                          replication latency and backlog per region pair
    meridian verify --table T             do all replicas hold the same versions?
    meridian events                       every control change the replicators applied

Each takes ``--endpoint URL`` of any region's router (started with
``--replicator``): the router's replicator carries the command out or
forwards it to the region it names, so nothing else needs to be reachable
(``meridian.cluster.control_client``).  ``--replicators REGION=HOST:PORT,...``
talks to the replicators directly instead.  A link is one direction;
``set``, ``cut`` and ``heal`` act on both directions between two regions
unless ``--one-way`` (then only SOURCE -> TARGET).
"""

from __future__ import annotations

import argparse
import sys
import time

from meridian.cluster import limits
from meridian.cluster.control_client import ControlClient, ControlError, TableNotFound


def _replicators(text: str) -> dict[str, str]:
    out = {}
    for entry in (e.strip() for e in text.split(",")):
        if entry:
            region, sep, address = entry.partition("=")
            if not sep or not region or not address:
                raise argparse.ArgumentTypeError(f"expected REGION=HOST:PORT, got {entry!r}")
            out[region] = address
    if not out:
        raise argparse.ArgumentTypeError("no replicator given")
    return out


def _common(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--endpoint", metavar="URL", help="any region's router, e.g. http://localhost:8000")
    where.add_argument(
        "--replicators", type=_replicators,
        help="instead of --endpoint: every region's replicator, each REGION=HOST:PORT, comma-separated",
    )  # fmt: skip
    return parser


def add_arguments(sub: argparse._SubParsersAction) -> None:
    """Register ``link``, ``replication``, ``clock``, ``lag``, ``verify`` and ``events``."""
    link = sub.add_parser("link", help="show or change the simulated links between regions")
    actions = link.add_subparsers(dest="link_command", required=True)
    _common(actions.add_parser("show", help="every link's conditions"))
    for name, text in (("set", "change latency, jitter or loss"), ("cut", "partition two regions"), ("heal", "undo cut")):
        p = _common(actions.add_parser(name, help=text))
        p.add_argument("source")
        p.add_argument("target")
        p.add_argument("--one-way", action="store_true", help="only the direction source -> target")
        if name == "set":
            p.add_argument("--latency-ms", type=float)
            p.add_argument("--jitter-ms", type=float)
            p.add_argument("--loss", type=float, help="probability that one transmission is lost")

    replication = sub.add_parser("replication", help="pause or resume replication to and from one region")
    p = _common(replication)
    p.add_argument("action", choices=("pause", "resume"))
    p.add_argument("region")

    clock = sub.add_parser("clock", help="chaos on a region's hybrid clocks")
    p = _common(clock)
    p.add_argument("action", choices=("skew",))
    p.add_argument("region")
    p.add_argument("--ms", type=int, required=True, help="milliseconds added to the region's clocks (may be negative)")

    _common(sub.add_parser("lag", help="replication latency percentiles and backlog per region pair"))

    p = _common(sub.add_parser("verify", help="compare a table's replicas; exit 1 naming the keys that differ"))
    p.add_argument("--table", required=True)
    p.add_argument(
        "--timeout-s", type=float, default=limits.VERIFY_TIMEOUT_S,
        help=f"how long replicas may take to agree (default {limits.VERIFY_TIMEOUT_S:g})",
    )

    _common(sub.add_parser("events", help="every link/pause/clock change the replicators applied, oldest first"))


def run(ns: argparse.Namespace) -> int:
    client = ControlClient(endpoint=ns.endpoint, replicators=ns.replicators, timeout_s=limits.CONTROL_CALL_TIMEOUT_S)
    try:
        return _run(client, ns)
    except ControlError as exc:
        raise SystemExit(f"meridian {ns.command}: {exc}") from None
    finally:
        client.close()


def _run(client: ControlClient, ns: argparse.Namespace) -> int:
    if ns.command == "link":
        if ns.link_command == "set":
            client.link_set(ns.source, ns.target, latency_ms=ns.latency_ms, jitter_ms=ns.jitter_ms, loss=ns.loss,
                            one_way=ns.one_way)  # fmt: skip
        elif ns.link_command == "cut":
            client.link_cut(ns.source, ns.target, one_way=ns.one_way)
        elif ns.link_command == "heal":
            client.link_heal(ns.source, ns.target, one_way=ns.one_way)
        _print_links(client)
        return 0
    if ns.command == "replication":
        getattr(client, ns.action)(ns.region)
        print(f"replication to and from {ns.region}: {'paused' if ns.action == 'pause' else 'resumed'}")
        return 0
    if ns.command == "clock":
        client.clock_skew(ns.region, ns.ms)
        print(f"{ns.region}: clocks skewed by {ns.ms} ms")
        return 0
    if ns.command == "lag":
        _print_lag(client)
        return 0
    if ns.command == "verify":
        return _verify(client, ns.table, ns.timeout_s)
    if ns.command == "events":
        _print_events(client)
        return 0
    raise AssertionError(ns.command)


def _print_links(client: ControlClient) -> None:
    print(f"{'link':<32} {'latency_ms':>10} {'jitter_ms':>9} {'loss':>6}  state")
    for link in client.links():
        state = ("cut" if link["cut"] else "up") + (", paused" if link["paused"] else "")
        name = f"{link['source']} -> {link['target']}"
        print(f"{name:<32} {link['latency_ms']:>10g} {link['jitter_ms']:>9g} {link['loss']:>6g}  {state}")


def _print_lag(client: ControlClient) -> None:
    rows = client.lag()
    width = max([len("table"), *(len(r["table"]) for r in rows)])
    print(f"{'table':<{width}} {'source -> target':<32} {'count':>8} {'p50_ms':>8} {'p95_ms':>8} {'p99_ms':>8} {'max_ms':>8}")
    for r in sorted(rows, key=lambda r: (r["table"], r["source"], r["target"])):
        pair = f"{r['source']} -> {r['target']}"
        print(
            f"{r['table']:<{width}} {pair:<32} {r['count']:>8} {r['p50_ms']:>8.1f} {r['p95_ms']:>8.1f}"
            f" {r['p99_ms']:>8.1f} {r['max_ms']:>8.1f}"
        )
    print("pending changes (PendingReplicationCount):")
    for (source, target), n in client.pending().items():
        print(f"  {source + ' -> ' + target:<32} {n}")


def _verify(client: ControlClient, table: str, timeout_s: float) -> int:
    try:
        found = client.verify_details(table, timeout_s)
    except TableNotFound as exc:
        print(str(exc), file=sys.stderr)
        return 2
    if found.identical:
        print(f"{table}: {found.versions} item versions, identical in {len(found.regions)} regions")
        return 0
    print(f"{table}: replicas differ in {len(found.differing)} key(s):", file=sys.stderr)
    for key, held in found.differing.items():
        where = ", ".join(f"{r}={'version ' + v[:8] if v else 'absent'}" for r, v in held.items())
        print(f"  {key}  {where}", file=sys.stderr)
    return 1


def _print_events(client: ControlClient) -> None:
    for event in client.events():
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(event["t"])) + f".{int(event['t'] * 1000) % 1000:03d}"
        args = " ".join(f"{k}={v}" for k, v in event["args"].items())
        print(f"{stamp}  {event['region']:<16} {event['command']:<10} {args}")
