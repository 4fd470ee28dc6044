"""Query and Scan throughput, and Scan memory: Meridian side by side with dynalite.

    python bench/query_scan.py [--rounds 3] [--items 1000000] [--targets meridian-embedded,dynalite]
        [--partition-items 1000] [--scan-sizes 100000,300000] [--clients 8] [--query-s 10]
        [--query-pages 5] [--loaders 4] [--scan-segments 1] [--profile auto|on|off]
        [--out bench/results/<stamp>-query-scan.json]

(``bash bench/setup.sh`` first, for dynalite and py-spy.)

What one run does, and why this way:
  * Every target runs at once, each on its own port, each with the same table
    ``qscan`` (partition key ``pk`` S, sort key ``sk`` N) holding the same items:
    partitions of ``--partition-items`` items, ``pk`` = ``p000000``...,
    ``sk`` = 0..n-1, and a random hex ``data`` string that makes each item
    about ``--item-bytes`` bytes as DynamoDB counts them.
  * The table grows in stages (each of ``--scan-sizes`` below ``--items``,
    then ``--items``). At each stage every target receives the next
    partitions (BatchWriteItem of 25 items over ``--loaders`` connections),
    one target at a time so that each load time is that server's own, and
    waits for the server to go idle (RocksDB flushes, compactions); then
    every target is scanned in full ``--rounds`` times, the target order
    rotated each round (as bench/run.py does, so drift on a shared machine
    is spread over all targets). During each scan the server's resident
    memory (VmRSS of its process tree, from /proc) is sampled every 20 ms: a
    Scan that streams keeps that peak flat while the table grows 10x. A
    scan still running after ``--scan-timeout-s`` is abandoned and reported
    incomplete with the rate it had (and that target is not scanned again at
    that size): a server falling off a cliff must not stall the whole run.
  * At the full size, Query rounds: ``--clients`` threads, one keep-alive
    connection each, for ``--query-s`` seconds per target and round. Each
    picks a random partition, queries it with ``Limit`` 100 and follows
    ``LastEvaluatedKey`` for ``--query-pages`` pages, then picks another.
    Every page's size is checked, every scan's item count too.
  * Pinning as in bench/run.py: the servers on the first CPU, this process
    (the client) on the last. The client's CPU (getrusage) is reported
    beside the server's: a client well below one core was not the limit.
    It is one uvloop event loop with httptools, and reads only ``Count`` and
    ``LastEvaluatedKey`` from each page (see bench/query_scan_client.py),
    so it costs a fraction of what any server spends on the same page.
  * Goals (issue 5): Meridian embedded at least 2x dynalite's Query and Scan
    throughput, Scan memory flat as the table grows. With ``--profile auto``
    (the default), each throughput goal missed gets one more run of that op
    against meridian-embedded, not counted, under
    ``py-spy record -r 200 -f raw``; the functions with the most samples,
    own and inclusive, are printed and stored with the results.
"""

# The command line and one run from start to end; the work is split by job:
#   query_scan_data.py     the table, its items, loading them
#   query_scan_client.py   the measuring client (uvloop, httptools, cheap page reading)
#   query_scan_measure.py  one measurement: a full Scan, a Query load, settling, the run records
#   query_scan_rounds.py   the targets, growing the table, the Scan and Query rounds
#   query_scan_profile.py  py-spy on meridian-embedded, the top functions as Markdown
#   query_scan_report.py   medians, the Markdown tables, the goals

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

# bench/ is a folder of scripts, not a package: these are its modules, found through sys.path.
from query_scan_data import ITEM_OVERHEAD_BYTES, PK_DIGITS, Layout, say  # noqa: E402
from query_scan_measure import QUERY_PAGE_ITEMS, full_scan, query_load  # noqa: E402
from query_scan_profile import PROFILED_TARGET, profile_markdown, profiled  # noqa: E402
from query_scan_report import goals, markdown, query_summary, scan_summary  # noqa: E402
from query_scan_rounds import Bench  # noqa: E402
from run import _csv, _environment, _pinning, _positive, _raise_system_exit  # noqa: E402
from targets import BENCH_DIR, TARGETS, TargetUnavailable  # noqa: E402


def _cpu_set(text: str) -> set[int]:
    """A taskset CPU list (``1``, ``0-3``, ``1,3``) as a set."""
    cpus: set[int] = set()
    for part in text.split(","):
        first, _, last = part.partition("-")
        cpus.update(range(int(first), int(last or first) + 1))
    return cpus


def _sizes(text: str) -> list[int]:
    try:
        sizes = sorted({int(t) for t in text.split(",") if t.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError("expected comma-separated item counts") from None
    if any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError("item counts must be positive")
    return sizes


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=_positive, default=3)
    p.add_argument("--items", type=_positive, default=1_000_000, help="items in the table at the end")
    p.add_argument("--partition-items", type=_positive, default=1000, help="items per partition key")
    p.add_argument("--scan-sizes", type=_sizes, default=[100_000, 300_000],
                   help="smaller table sizes also scanned on the way (those below --items)")
    p.add_argument("--item-bytes", type=_positive, default=100, help="item size as DynamoDB counts it")
    p.add_argument("--targets", type=_csv(tuple(TARGETS)), default=["meridian-embedded", "dynalite"])
    p.add_argument("--clients", type=_positive, default=8, help="concurrent Query clients")
    p.add_argument("--query-s", type=_positive, default=10, help="seconds per Query run")
    p.add_argument("--query-pages", type=_positive, default=5, help="pages followed per partition queried")
    p.add_argument("--warmup-s", type=int, default=2, help="unrecorded Query run per target before round 1")
    p.add_argument("--loaders", type=_positive, default=4, help="concurrent BatchWriteItem connections")
    p.add_argument("--scan-segments", type=_positive, default=1, help="parallel scan: TotalSegments (1: one client)")
    p.add_argument("--scan-timeout-s", type=float, default=90.0,
                   help="a scan still running after this is abandoned, reported incomplete, and not repeated")
    p.add_argument("--profile", choices=("auto", "on", "off"), default="auto",
                   help="py-spy meridian-embedded: auto = for each throughput goal missed")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", type=Path, default=None, help="results JSON (default bench/results/<stamp>-query-scan.json)")
    p.add_argument("--data-root", type=Path, default=None, help="where Meridian data dirs go (default: system temp)")
    p.add_argument("--server-cpus", default=None, help="taskset CPU list for servers (default: first CPU)")
    p.add_argument("--client-cpus", default=None, help="CPU list for this process (default: last CPU)")
    p.add_argument("--no-pin", action="store_true", help="pin neither the servers nor the client")
    args = p.parse_args(argv)  # fmt: skip
    args.scan_sizes = [s for s in args.scan_sizes if s < args.items] + [args.items]
    if any(s % args.partition_items for s in args.scan_sizes):
        p.error(f"--items and --scan-sizes must be multiples of --partition-items ({args.partition_items})")
    if args.items // args.partition_items > 10**PK_DIGITS:
        p.error(f"at most {10**PK_DIGITS} partitions")
    if args.scan_timeout_s <= 0:
        p.error("--scan-timeout-s must be positive")
    if args.item_bytes <= ITEM_OVERHEAD_BYTES:
        p.error(f"--item-bytes must exceed {ITEM_OVERHEAD_BYTES}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    out = args.out or BENCH_DIR / "results" / f"{stamp}-query-scan.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    log_dir = out.with_name(f"{out.stem}-logs")
    log_dir.mkdir(exist_ok=True)
    pin_args = argparse.Namespace(no_pin=args.no_pin, server_cpus=args.server_cpus, wrk_cpus=args.client_cpus)
    server_cpus, client_cpus = _pinning(pin_args)
    environment = _environment(server_cpus, client_cpus)  # before pinning, which hides the other CPUs
    if client_cpus:
        os.sched_setaffinity(0, _cpu_set(client_cpus))  # before any thread starts: they inherit it
    environment["client_cpus"] = environment.pop("wrk_cpus")
    environment.pop("wrk")
    say(f"servers on CPU {server_cpus or 'any'}, client on CPU {client_cpus or 'any'}; logs in {log_dir}")
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_system_exit)
    signal.signal(signal.SIGINT, signal.default_int_handler)

    layout = Layout(args.partition_items, args.item_bytes - ITEM_OVERHEAD_BYTES, args.seed)
    bench = Bench(args, layout)
    described: dict[str, dict] = {}
    profiles: dict[str, dict] = {}
    work_dir = Path(tempfile.mkdtemp(prefix="meridian-bench-qs-", dir=args.data_root))
    started = time.monotonic()
    try:
        for name in args.targets:
            try:
                bench.start(name, work_dir, log_dir, server_cpus)
                spec = TARGETS[name]
                described[name] = {"description": spec.description, "version": spec.version(),
                                   "argv": bench.running[name].argv}  # fmt: skip
            except TargetUnavailable as error:
                bench.skipped[name] = str(error)
                say(f"skipping {name}: {error}")
        if not bench.running:
            say("no target could be started")
            return 1
        loaded = 0
        for size in args.scan_sizes:
            bench.grow(size, loaded)
            loaded = size
            bench.scan_rounds(size)
        bench.query_rounds()
        queries, scans = query_summary(bench.queries), scan_summary(bench.scans)
        goal_table, met = goals(args, queries, scans)
        if PROFILED_TARGET in bench.running and args.profile != "off":
            target = bench.running[PROFILED_TARGET]
            partitions = args.items // args.partition_items
            work = {
                "Query": lambda: query_load(target, layout, partitions, args, args.query_s, args.seed),
                "Scan": lambda: full_scan(target, args.scan_segments, args.scan_timeout_s),
            }
            for op, run_op in work.items():
                if args.profile == "on" or met.get(op) is not True:
                    raw_path = out.with_name(f"{out.stem}-{PROFILED_TARGET}-{op}.txt")
                    say(f"profiling {PROFILED_TARGET} {op} (py-spy, raw stacks in {raw_path})")
                    summary = profiled(target, raw_path, run_op)
                    if summary is not None:
                        profiles[op] = {"raw": str(raw_path), **summary}
    except (KeyboardInterrupt, SystemExit):
        say("interrupted: stopping the targets, no results written")
        raise
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        for target in bench.running.values():
            target.stop()
        shutil.rmtree(work_dir, ignore_errors=True)

    tables = markdown(args, queries, scans, bench.loads)
    profile_text = "\n\n".join(profile_markdown(op, s) for op, s in profiles.items())
    environment["loadavg_end"] = Path("/proc/loadavg").read_text().split()[:3]
    command = " ".join(["python", "bench/query_scan.py", *(sys.argv[1:] if argv is None else argv)])
    out.write_text(
        json.dumps(
            {
                "stamp": stamp,
                "command": command,
                "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                "environment": environment,
                "targets": described,
                "skipped": bench.skipped,
                "wall_s": time.monotonic() - started,
                "loads": [asdict(r) for r in bench.loads],
                "scans": [asdict(r) for r in bench.scans],
                "queries": [asdict(r) for r in bench.queries],
                "query_summary": queries,
                "scan_summary": [{"table_items": k[0], "target": k[1], **v} for k, v in scans.items()],
                "profiles": profiles,
                "markdown": {**tables, "goals": goal_table, "profiles": profile_text},
            },
            indent=2,
        )
    )
    pinning = f"servers on CPU {server_cpus}, client on CPU {client_cpus}" if server_cpus else "unpinned"
    print(
        f"\n`{command}`\n\n{args.rounds} alternating round(s); {args.items:,} items of ~{args.item_bytes} bytes in "
        f"{args.items // args.partition_items:,} partitions; Query: {args.clients} clients x {args.query_s} s, "
        f"Limit {QUERY_PAGE_ITEMS}, up to {args.query_pages} pages per partition; Scan: {args.scan_segments} "
        f"segment(s), 1 MB pages; {pinning}; {environment['cpu_model']}, {environment['cpus_available']} CPUs.\n"
        f"Medians over the rounds; ratios: the row's median / the peer's (above 1 = faster).\n"
    )
    for title, key in (("Query", "query"), ("Scan", "scan"), ("Load (BatchWriteItem)", "load"), ("Rounds", "rounds")):
        print(f"### {title}\n\n{tables[key]}\n")
    print(f"### Goals\n\n{goal_table}\n")
    if profile_text:
        print(f"### Profiles\n\n{profile_text}\n")
    for name, reason in bench.skipped.items():
        lines = [line for line in reason.splitlines() if line.strip()]
        print(f"skipped {name}: {lines[0]}" + (f" ... {lines[-1].strip()}" if len(lines) > 1 else ""))
    print(f"results: {out}  ({(time.monotonic() - started) / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
