"""Operating Global Tables replication from the command line.

    meridian link show|set|cut|heal ...   simulated links between regions
    meridian replication pause|resume R   stop replication to and from one region
    meridian clock skew R --ms N          offset a region's hybrid clocks
    meridian lag                          replication latency and backlog per region pair
    meridian verify --table T             do all replicas hold the same versions?

Each talks to the regions' replicators, given as ``--replicators
REGION=HOST:PORT,...`` (``meridian up`` prints them) or found through
``--endpoint URL`` of any region's router (``GET /meridian/replication``,
which a router started with ``--replicator`` answers).  A link is one
direction; ``set``, ``cut`` and ``heal`` act on both directions between two
regions unless ``--one-way`` (then only A -> B).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import urllib.error
import urllib.request

import orjson

from meridian.replication.peers import control

#: ``verify``: pause between two comparisons while replicas still differ.
VERIFY_RETRY_INTERVAL_S = 0.5
#: ``--endpoint``: how long the router may take to name the replicators.
ENDPOINT_TIMEOUT_S = 10.0


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
    where.add_argument(
        "--replicators", type=_replicators,
        help="every region's replicator, each REGION=HOST:PORT, comma-separated",
    )  # fmt: skip
    where.add_argument("--endpoint", metavar="URL", help="any region's router, e.g. http://localhost:8000")
    return parser


def _from_endpoint(url: str) -> dict[str, str]:
    """Every region's replicator, as the router at ``url`` names them."""
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/meridian/replication", timeout=ENDPOINT_TIMEOUT_S) as answer:
            return orjson.loads(answer.read())["replicators"]
    except urllib.error.HTTPError as exc:
        raise SystemExit(
            f"{url} does not name its replicators (HTTP {exc.code}): is it a router started with --replicator?"
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        raise SystemExit(f"cannot reach {url}: {exc}") from None


def add_arguments(sub: argparse._SubParsersAction) -> None:
    """Register ``link``, ``replication``, ``clock``, ``lag`` and ``verify``."""
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
    p.add_argument("--timeout-s", type=float, default=30.0, help="how long replicas may take to agree (default 30)")


def _call(replicators: dict[str, str], region: str, **command) -> dict:
    address = replicators.get(region)
    if address is None:
        raise SystemExit(f"no replicator given for region {region!r}")
    return asyncio.run(control(address, command))


def run(ns: argparse.Namespace) -> int:
    replicators = ns.replicators or _from_endpoint(ns.endpoint)
    if ns.command == "link":
        if ns.link_command != "show":
            pairs = [(ns.source, ns.target)] if ns.one_way else [(ns.source, ns.target), (ns.target, ns.source)]
            settings = {}
            if ns.link_command == "set":
                settings = {"latency_ms": ns.latency_ms, "jitter_ms": ns.jitter_ms, "loss": ns.loss}
            for source, target in pairs:
                _call(replicators, source, command=f"link-{ns.link_command}", peer=target, **settings)
        _print_links(replicators)
        return 0
    if ns.command == "replication":
        for region in replicators:
            if region == ns.region:
                _call(replicators, region, command=ns.action)
            else:
                _call(replicators, region, command=ns.action, peer=ns.region)
        print(f"replication to and from {ns.region}: {'paused' if ns.action == 'pause' else 'resumed'}")
        return 0
    if ns.command == "clock":
        _call(replicators, ns.region, command="clock-skew", ms=ns.ms)
        print(f"{ns.region}: clocks skewed by {ns.ms} ms")
        return 0
    if ns.command == "lag":
        _print_lag(replicators)
        return 0
    if ns.command == "verify":
        return _verify(replicators, ns.table, ns.timeout_s)
    raise AssertionError(ns.command)


def _print_links(replicators: dict[str, str]) -> None:
    print(f"{'link':<32} {'latency_ms':>10} {'jitter_ms':>9} {'loss':>6}  state")
    for region in replicators:
        shown = _call(replicators, region, command="show")
        paused = set(shown["statistics"]["paused"])
        for link in shown["links"]:
            state = "cut" if link["cut"] else "up"
            if link["target"] in paused:
                state += ", paused"
            name = f"{link['source']} -> {link['target']}"
            print(f"{name:<32} {link['latency_ms']:>10g} {link['jitter_ms']:>9g} {link['loss']:>6g}  {state}")


def _print_lag(replicators: dict[str, str]) -> None:
    print(f"{'table':>20} {'origin -> receiver':<32} {'count':>8} {'p50_ms':>8} {'p95_ms':>8} {'p99_ms':>8} {'max_ms':>8}")
    pending = []
    for region in replicators:
        shown = _call(replicators, region, command="show")
        for s in shown["latency"]:
            pair = f"{s['origin']} -> {s['receiver']}"
            print(
                f"{s['table_id']:>20} {pair:<32} {s['count']:>8} {s['p50_ms']:>8.1f} {s['p95_ms']:>8.1f}"
                f" {s['p99_ms']:>8.1f} {s['max_ms']:>8.1f}"
            )
        pending += [(f"{region} -> {peer}", n) for peer, n in shown["pending"].items()]
    print("pending changes (PendingReplicationCount):")
    for pair, n in pending:
        print(f"  {pair:<32} {n}")


def _verify(replicators: dict[str, str], table: str, timeout_s: float) -> int:
    """Compare every region's digest of ``table`` until they agree or time runs out."""
    deadline = time.monotonic() + timeout_s
    while True:
        digests = {region: _call(replicators, region, command="digest", table=table) for region in replicators}
        missing = [region for region, d in digests.items() if d["table_id"] is None]
        if missing:
            print(f"table {table!r} not found in {', '.join(missing)}", file=sys.stderr)
            return 2
        first = next(iter(digests.values()))
        differing = {
            leaf
            for d in digests.values()
            for leaf in first["leaves"].keys() | d["leaves"].keys()
            if first["leaves"].get(leaf) != d["leaves"].get(leaf)
        }
        if not differing:
            print(f"{table}: {first['count']} item versions, identical in {len(digests)} regions")
            return 0
        if time.monotonic() >= deadline:
            break
        time.sleep(VERIFY_RETRY_INTERVAL_S)
    entries = {
        region: _call(replicators, region, command="digest", table=table, leaves=sorted(differing))["entries"]
        for region in replicators
    }
    keys = sorted({key for e in entries.values() for key in e if len({r.get(key) for r in entries.values()}) > 1})
    if not keys:  # converged between the two looks
        print(f"{table}: identical in {len(digests)} regions")
        return 0
    print(f"{table}: replicas differ in {len(keys)} key(s) (storage keys, hex):", file=sys.stderr)
    for key in keys:
        held = ", ".join(f"{region}={'version ' + e[key][:8] if key in e else 'absent'}" for region, e in entries.items())
        print(f"  {key}  {held}", file=sys.stderr)
    return 1
