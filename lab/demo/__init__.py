"""``meridian demo``: live demonstrations.

    meridian demo replication [--endpoint URL | --regions R=URL,...] [--rate N] [--duration-s S] [--no-keys]
    meridian demo dax [--endpoint URL [--dax-endpoint dax://HOST:PORT]] [--items N] [--duration-s S] [--plain]

A terminal dashboard of replication between regions while a workload runs:
per directed link, the replication latency p50/p99 of the last seconds,
the changes applied per second and the pending backlog; per region, the
write and read rates, local latency and errors. Keys cut (c), heal (h),
slow (s, +100 ms) or reset (r) the selected link (1-9 or arrows), q quits.
Without an endpoint it starts (and afterwards stops) its own two-region
``meridian up``. The run dir it writes (``--run-dir``) is what
``meridian report`` plots.

Modules: ``replication`` runs the demo; ``window`` (windowed percentiles
from histogram scrapes), ``sampler``, ``links``, ``keys``, ``stats``,
``view``, ``table`` and ``cluster`` are its parts.  ``dax`` runs the DAX demo
(GetItem through the DAX client beside GetItem straight to the table);
``dax_stats`` and ``dax_view`` are its parts.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def _regions_arg(text: str) -> dict[str, str]:
    """``meridian load``'s REGION=URL list, which here must name at least one region."""
    from meridian.lab.load.cli import regions_arg

    out = regions_arg(text)
    if not out:
        raise argparse.ArgumentTypeError("no region given")
    return out


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def add_arguments(sub: argparse._SubParsersAction) -> None:
    demo = sub.add_parser("demo", help="live demonstrations (replication dashboard, DAX vs direct reads)")
    demos = demo.add_subparsers(dest="demo_command", required=True)
    p = demos.add_parser(
        "replication", help="live dashboard of replication latency per region pair, with keys to cut/heal/slow links",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    where = p.add_mutually_exclusive_group()
    where.add_argument("--endpoint", metavar="URL",
                       help="a region's router; only that region is written (the others are known by name only)")
    where.add_argument("--regions", metavar="REGION=URL[,...]", type=_regions_arg,
                       help="every region's router: each region writes its own keys")
    p.add_argument("--rate", type=_positive, default=50.0, help="workload requests per second over all regions (default 50)")
    p.add_argument("--duration-s", type=_positive, help="stop after this long (default: run until q or Ctrl-C)")
    p.add_argument("--no-keys", action="store_true", help="do not read keys from the terminal")
    p.add_argument("--table", default=None, help="the table written (default meridian-demo)")
    p.add_argument("--run-dir", type=Path, help="where the run's files go (default meridian-runs/demo-<time>)")
    p.add_argument("--seed", type=int, help="seed of the workload's operations (default: random)")
    p.add_argument("--target", choices=("up", "lab"), default=None,
                   help="recorded in run.json (default: up)")
    _add_dax_arguments(demos)


DAX_DEFAULT_TABLE = "meridian-demo-dax"
#: ``meridian demo dax --help`` (``dax.py``'s docstring says more; not imported here: rich stays unloaded)
DAX_DESCRIPTION = """GetItem through DAX beside GetItem straight to the table, live.

Without --endpoint it starts its own meridian serve --in-memory --dax-port. It loads
--items items with boto3, then reads random keys twice each: with the published Python
DAX client (amazondax; pip install amazon-dax-client) and with boto3 over HTTP, showing
p50/p99 latency of each path and the DAX node's item cache hit rate (from the router's
/console/api/dax), then a summary. --plain (or no terminal): one line a second."""


def _items(text: str) -> int:
    from meridian.model import limits

    value = int(text)
    if not 1 <= value <= limits.DEMO_DAX_ITEMS_MAX:
        raise argparse.ArgumentTypeError(f"must be 1 to {limits.DEMO_DAX_ITEMS_MAX}, got {text}")
    return value


def _add_dax_arguments(demos: argparse._SubParsersAction) -> None:
    from meridian.model import limits

    p = demos.add_parser(
        "dax", help="GetItem latency through DAX vs straight to the table, side by side, live",
        description=DAX_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    p.add_argument("--endpoint", metavar="URL", help="a router serving DAX (default: start an own meridian serve)")
    p.add_argument("--dax-endpoint", metavar="dax://HOST:PORT",
                   help="its DAX node (default: the first the router's console lists)")
    p.add_argument("--items", type=_items, default=limits.DEMO_DAX_ITEMS_DEFAULT,
                   help=f"items loaded and read (default {limits.DEMO_DAX_ITEMS_DEFAULT})")
    p.add_argument("--duration-s", type=_positive, help="stop after this long (default: run until Ctrl-C)")
    p.add_argument("--plain", action="store_true", help="a plain line a second instead of the live view (no terminal)")
    p.add_argument("--table", default=DAX_DEFAULT_TABLE, help=f"the table read (default {DAX_DEFAULT_TABLE})")
    p.add_argument("--summary-json", type=Path, help="also write the closing figures to this file")
    p.add_argument("--seed", type=int, help="seed of the keys read (default: random)")


def _run_dax(ns: argparse.Namespace) -> int:
    import random

    from .dax import DaxDemoOptions, run

    return run(DaxDemoOptions(
        endpoint=ns.endpoint, dax_endpoint=ns.dax_endpoint, items=ns.items, duration_s=ns.duration_s,
        plain=ns.plain, table=ns.table, summary_json=ns.summary_json,
        seed=ns.seed if ns.seed is not None else random.SystemRandom().randrange(2**31),
    ))  # fmt: skip


def run(ns: argparse.Namespace) -> int:
    if ns.demo_command == "dax":
        return _run_dax(ns)
    if ns.demo_command != "replication":
        raise AssertionError(ns.demo_command)
    import uvloop

    from meridian.cluster.procs import StartupError

    from .cluster import OwnCluster
    from .replication import DEFAULT_RUNS_DIR, DEFAULT_TABLE, DemoOptions, new_seed, run_demo

    own = None
    try:
        if ns.regions:
            routers = ns.regions
        elif ns.endpoint:
            from meridian.cluster.control_client import ControlClient, ControlError

            try:
                region = ControlClient(ns.endpoint.rstrip("/")).regions()[0]
            except ControlError as exc:
                print(f"meridian demo: {ns.endpoint} does not control replication: {exc}", file=sys.stderr)
                return 2
            routers = {region: ns.endpoint.rstrip("/")}
        else:
            # Started here, on the main thread: its children live as long as this thread.
            own = OwnCluster()
            print(f"meridian demo: starting a {len(own.region_names)}-region meridian up "
                  f"({', '.join(own.region_names)})...", flush=True)  # fmt: skip
            try:
                routers = own.start()
            except StartupError as exc:
                print(f"meridian demo: could not start the cluster: {exc}", file=sys.stderr)
                return 1
        opts = DemoOptions(
            routers=routers, rate_per_s=ns.rate, duration_s=ns.duration_s, keys=not ns.no_keys,
            table=ns.table or DEFAULT_TABLE,
            run_dir=ns.run_dir or Path(DEFAULT_RUNS_DIR) / time.strftime("demo-%Y%m%d-%H%M%S"),
            target=ns.target or "up", seed=ns.seed if ns.seed is not None else new_seed(),
        )  # fmt: skip
        return uvloop.run(run_demo(opts))
    finally:
        if own is not None:
            print("meridian demo: stopping its meridian up...", flush=True)
            own.stop()
