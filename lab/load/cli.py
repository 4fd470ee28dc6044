"""``meridian load``: run a workload with a progress bar and a live summary line.

    meridian load --endpoint URL --rate N --duration-s S --keys K --write-ratio R
        [--regions us-east-1=URL,eu-west-1=URL ...] [--table T] [--conflict-keys C]
        [--item-bytes B] [--seed N] [--run-dir DIR] [--visibility-probe-every N]
        [--key-distribution uniform|zipf [--zipf-s S]]
        [--billing-mode PAY_PER_REQUEST|PROVISIONED --read-capacity N --write-capacity N]

Without ``--regions`` only the ``--endpoint`` region is loaded: a router can
name the other regions but not their routers' URLs, so multi-region load
is given with ``--regions``.  The table is created (and replicated to every
region) when missing, on-demand unless ``--billing-mode`` says otherwise; an
existing table of another billing is switched to the one asked for.
``--key-distribution zipf`` makes a few keys hot (key of rank k drawn with
probability proportional to 1/k^s): against a partition's ceiling of 1,000
write units a second, a hot key is throttled where the same rate spread
over every key is not.  Throttles (ProvisionedThroughputExceededException,
ThrottlingException) are counted apart, per region and per second.  At the
end every written key is read back in every region and the run fails
(exit 1) if an acknowledged write is missing (``--no-check`` skips that).  The run directory receives ``run.json``,
``history.jsonl``, ``visibility.jsonl``, ``lag.jsonl`` and ``checks.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import signal
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import orjson

from meridian.cluster import limits

from .spec import (
    BILLING_MODES,
    KEY_DISTRIBUTIONS,
    PROVISIONED,
    UNIFORM,
    ZIPF,
    ZIPF_S_DEFAULT,
    ZIPF_S_MAX,
    ZIPF_S_MIN,
    TableBilling,
)

DEFAULT_TABLE = "meridian-load"
DEFAULT_REGION = "us-east-1"  # what ``meridian serve`` and the SDKs assume
DEFAULT_RUNS_DIR = "meridian-runs"

# Requests to the local routers go straight to them, whatever HTTP(S)_PROXY says.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def regions_arg(text: str) -> dict[str, str]:
    out = {}
    for entry in (e.strip() for e in text.split(",")):
        if not entry:
            continue
        region, sep, url = entry.partition("=")
        if not sep or not region or not url.startswith(("http://", "https://")):
            raise argparse.ArgumentTypeError(f"expected REGION=http://HOST:PORT, got {entry!r}")
        out[region] = url.rstrip("/")
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--endpoint", metavar="URL", help="a region's router (required unless --regions is given)")
    parser.add_argument(
        "--regions", metavar="REGION=URL[,REGION=URL...]", type=regions_arg, nargs="+",
        help="every region's router; each region writes its own keys, reads go to every region",
    )  # fmt: skip
    parser.add_argument("--region", help="the --endpoint region's name (default: as its router names it, else us-east-1)")
    parser.add_argument("--rate", type=float, default=100.0, help="requests per second over all regions (default 100)")
    parser.add_argument("--duration-s", type=float, default=10.0, help="how long to run (default 10)")
    parser.add_argument("--keys", type=int, default=1000, help="single-writer keys over all regions (default 1000)")
    parser.add_argument("--write-ratio", type=float, default=0.5, help="share of PutItem, the rest GetItem (default 0.5)")
    parser.add_argument("--table", default=DEFAULT_TABLE, help=f"(default {DEFAULT_TABLE})")
    parser.add_argument("--conflict-keys", type=int, default=0, help="keys written by every region (default 0)")
    parser.add_argument("--item-bytes", type=int, default=100, help="item size as DynamoDB counts it (default 100)")
    parser.add_argument("--seed", type=int, help="seed of the operation sequence (default: random, printed)")
    parser.add_argument("--run-dir", type=Path, help=f"where the run's files go (default {DEFAULT_RUNS_DIR}/load-<time>)")
    parser.add_argument(
        "--visibility-probe-every", type=int, default=10, metavar="N",
        help="probe every Nth acknowledged write for visibility in the other regions; 0: never (default 10)",
    )  # fmt: skip
    parser.add_argument(
        "--key-distribution", choices=KEY_DISTRIBUTIONS, default=UNIFORM,
        help="which keys requests name: uniform, or zipf (a few hot keys; each region's key #0 the hottest) "
        "(default uniform)",
    )  # fmt: skip
    parser.add_argument(
        "--zipf-s", type=float, default=ZIPF_S_DEFAULT, metavar="S",
        help=f"zipf's exponent, {ZIPF_S_MIN:g} to {ZIPF_S_MAX:g}: the larger, the hotter the first keys "
        f"(default {ZIPF_S_DEFAULT:g}, YCSB's)",
    )  # fmt: skip
    parser.add_argument(
        "--billing-mode", choices=BILLING_MODES,
        help="the table's BillingMode (default: an existing table as it is, a new one PAY_PER_REQUEST)",
    )  # fmt: skip
    parser.add_argument("--read-capacity", type=int, metavar="N", help="ReadCapacityUnits of a PROVISIONED table")
    parser.add_argument("--write-capacity", type=int, metavar="N", help="WriteCapacityUnits of a PROVISIONED table")
    parser.add_argument("--target", choices=("up", "lab", "embedded"), help="recorded in run.json (default: guessed)")
    parser.add_argument("--no-check", action="store_true", help="skip the final no-acknowledged-write-lost check")
    parser.add_argument(
        "--settle-timeout-s", type=float, default=limits.CHECK_SETTLE_TIMEOUT_S,
        help="time replication gets to bring every region up to date before the check "
        f"(default {limits.CHECK_SETTLE_TIMEOUT_S:g})",
    )  # fmt: skip


def _named_region(endpoint: str) -> str | None:
    """The region a router says it serves (GET /meridian/replication), None if it does not say."""
    try:
        with _DIRECT.open(endpoint.rstrip("/") + "/meridian/replication", timeout=limits.ENDPOINT_PROBE_TIMEOUT_S) as answer:
            return str(orjson.loads(answer.read())["region"])
    except (urllib.error.URLError, OSError, ValueError, KeyError, TypeError):
        return None


def _other_regions(endpoint: str) -> list[str]:
    """Every region the endpoint's replication knows (empty without replication or a control client)."""
    try:
        from meridian.cluster.control_client import ControlClient

        return ControlClient(endpoint, timeout_s=limits.ENDPOINT_PROBE_TIMEOUT_S).regions()
    except Exception:  # noqa: BLE001 - no replication here, or no control client: single region
        return []


def _resolve_regions(ns: argparse.Namespace) -> tuple[dict[str, str], str | None]:
    """``(regions, name the router gave)`` from the arguments."""
    if ns.regions:
        regions: dict[str, str] = {}
        for part in ns.regions:
            regions.update(part)
        if ns.endpoint and ns.endpoint.rstrip("/") not in regions.values():
            raise SystemExit(f"--endpoint {ns.endpoint} is not one of the --regions routers")
        names = {region: _named_region(url) for region, url in regions.items()}
        for region, named in names.items():
            if named is not None and named != region:
                raise SystemExit(f"the router at {regions[region]} serves {named}, not {region}")
        return regions, next(iter(names.values()))
    if not ns.endpoint:
        raise SystemExit("give --endpoint URL, or --regions REGION=URL,... for several regions")
    named = _named_region(ns.endpoint)
    if ns.region and named is not None and named != ns.region:
        raise SystemExit(f"the router at {ns.endpoint} serves {named}, not {ns.region}")
    region = ns.region or named or DEFAULT_REGION
    known = _other_regions(ns.endpoint)
    if len(known) > 1:
        print(
            f"note: {ns.endpoint} is one of {len(known)} regions ({', '.join(known)}); only {region} is loaded. "
            "Pass --regions REGION=URL,... to load every region.",
            file=sys.stderr,
        )
    return {region: ns.endpoint.rstrip("/")}, named


def billing_of(ns: argparse.Namespace) -> TableBilling | None:
    """The billing the arguments ask for (capacity units alone mean PROVISIONED); None: none asked."""
    mode = ns.billing_mode
    if mode is None and (ns.read_capacity is not None or ns.write_capacity is not None):
        mode = PROVISIONED
    if mode is None:
        return None
    if mode == PROVISIONED and (ns.read_capacity is None or ns.write_capacity is None):
        raise ValueError("a PROVISIONED table needs --read-capacity N and --write-capacity N")
    if mode != PROVISIONED and (ns.read_capacity is not None or ns.write_capacity is not None):
        raise ValueError("--read-capacity and --write-capacity are for --billing-mode PROVISIONED")
    return TableBilling(mode, ns.read_capacity, ns.write_capacity)


def run(ns: argparse.Namespace) -> int:
    import uvloop

    from .spec import WorkloadSpec

    regions, named = _resolve_regions(ns)
    seed = ns.seed if ns.seed is not None else random.SystemRandom().randrange(2**31)
    try:
        if ns.key_distribution != ZIPF and ns.zipf_s != ZIPF_S_DEFAULT:
            raise ValueError("--zipf-s is for --key-distribution zipf")
        billing = billing_of(ns)
        spec = WorkloadSpec(
            regions=regions, table=ns.table, rate_per_s=ns.rate, duration_s=ns.duration_s, keys=ns.keys,
            write_ratio=ns.write_ratio, conflict_keys=ns.conflict_keys, seed=seed, item_bytes=ns.item_bytes,
            visibility_probe_every=ns.visibility_probe_every, key_distribution=ns.key_distribution,
            zipf_s=ns.zipf_s,
        )  # fmt: skip
    except ValueError as exc:
        raise SystemExit(f"meridian load: {exc}") from None
    run_dir = ns.run_dir or Path(DEFAULT_RUNS_DIR) / time.strftime("load-%Y%m%d-%H%M%S")
    target = ns.target or ("up" if named is not None else "embedded")
    args = {
        "rate": ns.rate, "duration_s": ns.duration_s, "keys": ns.keys, "write_ratio": ns.write_ratio,
        "conflict_keys": ns.conflict_keys, "item_bytes": ns.item_bytes,
        "visibility_probe_every": ns.visibility_probe_every, "check": not ns.no_check,
        "key_distribution": ns.key_distribution,
    }  # fmt: skip
    if ns.key_distribution == ZIPF:
        args["zipf_s"] = ns.zipf_s
    print(f"meridian load: seed {seed}, {len(regions)} region(s), table {spec.table}, run directory {run_dir}")
    return uvloop.run(_main(
        spec, run_dir, target, args, billing=billing, check=not ns.no_check, settle_timeout_s=ns.settle_timeout_s
    ))  # fmt: skip


async def _main(
    spec: Any, run_dir: Path, target: str, args: dict[str, Any], *, billing: TableBilling | None, check: bool,
    settle_timeout_s: float,
) -> int:  # fmt: skip
    from rich.console import Console

    from .checks import check_no_acknowledged_write_lost
    from .history import CHECKS_FILE, write_json, write_run_json
    from .table import TableSetupError, ensure_table
    from .workload import Workload

    console = Console(soft_wrap=not sys.stdout.isatty())  # log files get whole lines
    loop = asyncio.get_running_loop()
    try:
        found = await ensure_table(spec.regions, spec.table, billing=billing)
    except TableSetupError as exc:
        console.print(f"[red]meridian load: {exc}[/red]")
        return 2
    console.print(f"table {spec.table}: {found}")
    args.update(billing_mode=found.mode, read_capacity=found.read_capacity, write_capacity=found.write_capacity)
    workload = Workload(spec, run_dir)
    stop = asyncio.Event()

    def interrupted() -> None:
        console.print("interrupted: finishing the requests in flight (Ctrl-C again to abort)")
        stop.set()
        loop.remove_signal_handler(signal.SIGINT)

    loop.add_signal_handler(signal.SIGINT, interrupted)
    run_task = loop.create_task(workload.run(stop))
    started_at = time.time()
    meta = dict(kind="load", scenario=None, seed=spec.seed, regions=spec.regions, target=target, table=spec.table, args=args)
    await loop.run_in_executor(None, lambda: write_run_json(run_dir, started_at=started_at, ended_at=None, **meta))
    await _show_progress(console, workload, run_task)
    stats = await run_task
    loop.remove_signal_handler(signal.SIGINT)
    await loop.run_in_executor(None, lambda: write_run_json(
        run_dir, started_at=stats.started_at, ended_at=stats.ended_at, **meta
    ))  # fmt: skip
    _print_stats(console, spec, stats)
    if not check:
        return 0
    console.print(f"checking {len(workload.attempted)} written keys in {len(spec.regions)} region(s)...")
    result = await loop.run_in_executor(None, lambda: check_no_acknowledged_write_lost(
        spec.regions, spec.table, workload.acknowledged, workload.attempted, settle_timeout_s=settle_timeout_s
    ))  # fmt: skip
    await loop.run_in_executor(None, write_json, run_dir / CHECKS_FILE, [result.as_dict()])
    colour = "green" if result.passed else "red"
    console.print(f"[{colour}]{result.name}: {'passed' if result.passed else 'FAILED'}[/{colour}] - {result.detail}")
    return 0 if result.passed else 1


def summary_line(workload: Any, rate_per_s: float, window: dict[str, Any], throttled_per_s: float = 0.0) -> str:
    """The live summary: achieved rate, outcomes, throttles, latency of the last interval, visibility."""
    live = workload.live
    if workload.progress >= 1.0:
        return f"finishing: {workload.in_flight} requests in flight, {workload.probes_running} visibility probes"
    errors = sum(live.errors.values())
    top = ", ".join(f"{name} {n}" for name, n in live.errors.most_common(3))
    parts = [
        f"{rate_per_s:,.0f} req/s",
        f"ok {live.ok:,}",
        f"errors {errors:,}" + (f" ({top})" if top else ""),
        f"behind {live.behind:,}",
        f"in flight {workload.in_flight}",
    ]
    if live.throttled:
        parts.append(f"throttled {live.throttled:,} ({throttled_per_s:,.0f}/s now)")
    for op in ("put", "get"):
        p50, p99 = window[op].percentile(50), window[op].percentile(99)
        if p50 is not None:
            parts.append(f"{op} p50 {p50:.1f} p99 {p99:.1f} ms")
    if live.probes_started:
        visible = live.visibility.percentile(50)
        shown = f"{visible:.0f} ms" if visible is not None else "-"
        parts.append(f"visible p50 {shown} ({live.probes_seen}/{live.probes_started})")
    if live.lag_samples:
        parts.append(f"lag samples {live.lag_samples}")
    return " | ".join(parts)


async def _show_progress(console: Any, workload: Any, run_task: asyncio.Task) -> None:
    """A progress bar plus the live summary line (plain lines every few seconds when not on a terminal)."""
    from rich.console import Group
    from rich.live import Live
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn
    from rich.text import Text

    loop = asyncio.get_running_loop()
    interval_s = limits.LOAD_REFRESH_INTERVAL_S if console.is_terminal else limits.LOAD_PLAIN_SUMMARY_INTERVAL_S
    last_sent, last_throttled, last_t = 0, 0, loop.time()

    def line() -> str:
        nonlocal last_sent, last_throttled, last_t
        now = loop.time()
        span = now - last_t
        rate = (workload.live.sent - last_sent) / span if span > 0 else 0.0
        throttled = (workload.live.throttled - last_throttled) / span if span > 0 else 0.0
        last_sent, last_throttled, last_t = workload.live.sent, workload.live.throttled, now
        return summary_line(workload, rate, workload.live.take_window(), throttled)

    if not console.is_terminal:
        while not run_task.done():
            await asyncio.wait({run_task}, timeout=interval_s)
            if not run_task.done():
                print(f"[{workload.progress:4.0%}] {line()}", flush=True)
        return
    progress = Progress(TextColumn("load"), BarColumn(), TaskProgressColumn(), TimeRemainingColumn(), console=console)
    bar = progress.add_task("load", total=1.0)
    summary = Text("")
    with Live(Group(progress, summary), console=console, auto_refresh=False, transient=False) as live:
        while not run_task.done():
            await asyncio.wait({run_task}, timeout=interval_s)
            progress.update(bar, completed=workload.progress)
            summary.plain = line()
            live.refresh()


def _print_stats(console: Any, spec: Any, stats: Any) -> None:
    from rich.table import Table

    elapsed = stats.schedule_ended_at - stats.started_at
    console.print(
        f"sent {stats.sent:,} of {stats.scheduled:,} scheduled in {elapsed:.1f} s "
        f"({stats.achieved_rate_per_s:,.0f} req/s for {spec.rate_per_s:,.0f} asked); "
        f"behind {stats.behind:,}, skipped {stats.skipped:,}, acknowledged writes {stats.acknowledged_writes:,}, "
        f"retired keys {stats.retired_keys}"
    )
    columns = ("requests", "ok", "errors", "behind", "throttled", "throttled_peak_per_s")
    table = Table("region", "requests", "ok", "errors", "behind", "throttled", "throttled peak/s")
    for region, counts in stats.regions.items():
        table.add_row(region, *(f"{counts[k]:,}" for k in columns))
    console.print(table)
    if stats.throttled:
        reasons = ", ".join(f"{name} {n:,}" for name, n in sorted(stats.throttle_reasons.items(), key=lambda kv: -kv[1]))
        console.print(
            f"throttled: {stats.throttled:,} of {stats.sent:,} requests ({stats.throttled_per_s:,.1f}/s on average, "
            f"at most {stats.throttled_peak_per_s:,} in one second); reasons: {reasons or 'none given'}"
        )
    for op, latency in (("PutItem", stats.put_latency), ("GetItem", stats.get_latency)):
        if latency["count"]:
            console.print(f"{op}: p50 {latency['p50_ms']} ms, p99 {latency['p99_ms']} ms, max {latency['max_ms']} ms")
    if stats.errors:
        console.print("errors: " + ", ".join(f"{name} {n}" for name, n in sorted(stats.errors.items())))
    v = stats.visibility
    if v["started"]:
        console.print(
            f"cross-region visibility: {v['seen']} seen of {v['started']} probes ({v['timed_out']} timed out, "
            f"{v['skipped']} skipped); p50 {v['p50_ms']} ms, p99 {v['p99_ms']} ms, max {v['max_ms']} ms"
        )
