"""DAX: server CPU per cached GetItem on the DAX port vs per GetItem on the HTTP endpoint, and its latency.

    python bench/dax.py [--targets embedded,cluster] [--rounds 3] [--duration-s 10] [--connections 64]
        [--keys 10000] [--dax-nodes 3] [--profile auto|on|off] [--out bench/results/<stamp>-dax.json]

(``bash bench/setup.sh`` first, for wrk and py-spy.)  Issue 16's goals: a cached GetItem on the DAX
port costs at most a third of the server CPU of a GetItem on the 3-node cluster's HTTP endpoint,
and its server-side p50 is under 100 µs.

How, and why this way:
  * Targets: ``embedded`` is ``meridian serve --dax-port`` (one DAX node in the router's process);
    ``cluster`` is ``meridian up --nodes-per-region 3 --dax-port --dax-nodes N`` (a router, three
    storage nodes, and a DAX cluster of N ``meridian dax`` processes in front of the router,
    cluster/dax_procs.py).  Both start together, each on its own ports, started, pinned and
    stopped as bench/run.py does (bench/targets.py).  The cluster's DAX processes are found among
    ``up``'s children by their argv (``dax`` subcommand, ``--metrics-port``).
  * Each gets table ``bench`` preloaded over HTTP (bench/dynamo.py, the items bench/run.py uses),
    then its DAX item caches are warmed: bench/dax_load.py ``--warm`` reads every key once on every
    DAX node (each node has its own cache).  Every
    measured DAX GetItem is then a hit (checked: the item-cache misses on /metrics must not move).
  * Rounds alternate: every (target, path) pair in turn, the order rotated by one each round, so
    the machine's drift spreads over all of them; medians of the rounds are reported.  HTTP runs
    are bench/run.py's wrk runs (``run_wrk``: GetItem of random preloaded keys); DAX runs are
    bench/dax_load.py with as many connections, one request in flight on each, like the clients.
  * Server CPU per request: user + system time of the target's whole process tree (/proc) over
    the run, divided by the requests answered: what the request cost the server, whatever else
    the machine was doing.  The cluster's process tree includes its three storage nodes, whose
    background work (ticks, flushes) a cached DAX read still pays for; the ``serving processes``
    column is the processes answering the requests alone: the router for HTTP, the DAX node
    processes summed for DAX (on ``embedded`` both are ``meridian serve``).  On a machine with two
    or more CPUs the servers run on the first CPU and the load generators on the last
    (``--server-cpus``/``--client-cpus``/``--no-pin``).
  * Server-side latency: each DAX node times every request from its last byte parsed to its answer
    written (router/dax/latency.py) and exports the buckets on /metrics (the router's for
    ``embedded``, each DAX process's own ``--metrics-port`` for ``cluster``, summed); the
    difference of two scrapes around a run gives that run's p50/p99, interpolated within the
    grid's bucket (5 µs wide up to 50 µs, 10 µs up to 100 µs).  Client-side p50/p99 (round trips at saturation, as
    wrk's) are shown beside them.
  * ``--profile auto`` (default): when a goal is missed, one extra unrecorded DAX run per target
    with py-spy on the process that serves DAX (``meridian serve``, or the cluster's first DAX
    node, which answers 1/N of the requests); its top functions are printed and saved next to
    the JSON.  ``on``: always; ``off``: never.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent))

import dynamo  # noqa: E402  (bench/ is a folder of scripts, not a package)
import run as wrk_bench  # noqa: E402
from targets import (  # noqa: E402
    BENCH_DIR, MERIDIAN_BIN, RunningTarget, TargetSpec, TargetUnavailable, free_port, start_target, taskset_prefix,
)

TARGET_NAMES = ("embedded", "cluster")
PATHS = ("http", "dax")
DAX_LOAD = BENCH_DIR / "dax_load.py"
#: A dax_load run may overrun its duration by this much (connection setup, draining) before it is killed.
LOAD_OVERRUN_S = 60
#: A warm-up pass (every key once) may take this long.
WARM_TIMEOUT_S = 300
READY_TIMEOUT_S = 60.0
METRICS_TIMEOUT_S = 10.0
#: Goals of issue 16.
CPU_RATIO_GOAL = 1 / 3
SERVER_P50_GOAL_US = 100.0
_RESULT = re.compile(r"^DAX_LOAD_RESULT_JSON (\{.*\})$", re.MULTILINE)
_SAMPLE = re.compile(r'^(\w+)\{([^}]*)\} (\S+)$')
_LATENCY_BUCKET = "meridian_dax_request_duration_seconds_bucket"


def say(message: str) -> None:
    print(f"bench/dax: {message}", file=sys.stderr, flush=True)


@dataclass
class DaxTarget:
    """A started target: its HTTP side (``running``), its DAX seed port, the PIDs serving HTTP and DAX,
    and the /metrics URLs that export its DAX nodes' counters."""

    name: str
    running: RunningTarget
    dax_port: int
    router_pid: int
    dax_pids: list[int]
    metrics_urls: list[str]

    def dax_cpu_s(self) -> float:
        return sum(process_cpu_s(pid) for pid in self.dax_pids)


@dataclass
class Measurement:
    round: int
    target: str
    path: str
    requests: int
    requests_per_s: float
    server_cpu_s: float
    client_cpu_s: float
    #: CPU of the processes answering: the router (HTTP) or the DAX node processes (DAX)
    serving_cpu_s: float
    client_p50_us: float
    client_p99_us: float
    server_p50_us: float | None = None
    server_p99_us: float | None = None
    cache_misses: int | None = None
    errors: int = 0

    @property
    def cpu_us_per_request(self) -> float:
        return self.server_cpu_s / self.requests * 1e6 if self.requests else float("nan")

    @property
    def serving_cpu_us_per_request(self) -> float:
        return self.serving_cpu_s / self.requests * 1e6 if self.requests else float("nan")

    def to_json(self) -> dict:
        return {**self.__dict__, "cpu_us_per_request": self.cpu_us_per_request,
                "serving_cpu_us_per_request": self.serving_cpu_us_per_request}


def process_cpu_s(pid: int) -> float:
    """User + system CPU of one process (/proc/PID/stat fields 14 and 15), 0 once it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = raw[raw.rfind(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _spec(name: str, dax_port: int, dax_nodes: int) -> TargetSpec:
    if name == "embedded":
        argv = lambda port, data_dir: [  # noqa: E731
            str(MERIDIAN_BIN), "serve", "--port", str(port), "--data-dir", str(data_dir), "--dax-port", str(dax_port)]
        return TargetSpec("dax-embedded", "meridian serve --dax-port (one DAX node in the router's process)",
                          argv, MERIDIAN_BIN, "pip install -e .", is_python=True)
    argv = lambda port, data_dir: [  # noqa: E731
        str(MERIDIAN_BIN), "up", "--nodes-per-region", "3", "--port", str(port), "--data-dir", str(data_dir),
        "--dax-port", str(dax_port), "--dax-nodes", str(dax_nodes)]
    return TargetSpec("dax-cluster", f"meridian up: 3 storage nodes, a router, {dax_nodes} DAX node processes",
                      argv, MERIDIAN_BIN, "pip install -e .", is_python=True)


def _wait_port(port: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TargetUnavailable(f"nothing listens on DAX port {port} after {timeout_s:.0f} s") from None
            time.sleep(0.1)


def _argv(pid: int) -> list[bytes]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return []


def _router_pid(running: RunningTarget) -> int:
    """The process serving HTTP: ``meridian serve`` itself, or the cluster's router (a child of ``up``)."""
    return next((pid for pid in running.pids() if b"router" in _argv(pid)), running.pid)


def _dax_processes(running: RunningTarget, count: int, timeout_s: float) -> list[tuple[int, int]]:
    """(PID, metrics port) of each of the cluster's ``count`` DAX processes (children of ``up`` with
    ``dax`` in their argv), once all of them run and their /metrics ports listen."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = []
        for pid in running.pids():
            argv = _argv(pid)
            if b"dax" in argv and b"--metrics-port" in argv[:-1]:
                found.append((pid, int(argv[argv.index(b"--metrics-port") + 1])))
        if len(found) == count:
            break
        if time.monotonic() > deadline:
            raise TargetUnavailable(f"{len(found)} DAX processes, not {count}, under `up` after {timeout_s:.0f} s")
        time.sleep(0.1)
    for _pid, metrics_port in found:
        _wait_port(metrics_port, max(0.0, deadline - time.monotonic()))
    return sorted(found, key=lambda found_one: found_one[1])


def start(name: str, args: argparse.Namespace, work_dir: Path, log_dir: Path, server_cpus: str | None) -> DaxTarget:
    """Start one target, preload its table over HTTP, warm its DAX item cache."""
    dax_port = free_port()
    data_dir = work_dir / name
    data_dir.mkdir()
    running = start_target(_spec(name, dax_port, args.dax_nodes), data_dir, log_dir, server_cpus)
    try:
        _wait_port(dax_port, READY_TIMEOUT_S)
        client = dynamo.DynamoClient(running.port)
        try:
            dynamo.wait_ready(client, READY_TIMEOUT_S)
            dynamo.create_table(client, wrk_bench.TABLE, READY_TIMEOUT_S)
            data_len = dynamo.data_len_for(args.item_bytes)
            started = time.monotonic()
            dynamo.preload(client, wrk_bench.TABLE, args.keys, data_len, args.seed)
            dynamo.check_round_trip(client, wrk_bench.TABLE, args.keys, data_len)
            say(f"{name}: {args.keys:,} items loaded in {time.monotonic() - started:.1f} s")
        finally:
            client.close()
        router_pid = _router_pid(running)
        if name == "embedded":  # one process serves HTTP, DAX and /metrics
            target = DaxTarget(name, running, dax_port, router_pid, [running.pid],
                               [f"http://127.0.0.1:{running.port}/metrics"])
        else:
            dax = _dax_processes(running, args.dax_nodes, READY_TIMEOUT_S)
            target = DaxTarget(name, running, dax_port, router_pid, [pid for pid, _ in dax],
                               [f"http://127.0.0.1:{port}/metrics" for _, port in dax])
        warm = dax_load(target, args, None, 0.0, seed=args.seed, warm=True)
        if warm["errors"] or warm["empty"] or warm["requests"] != args.keys * len(warm["nodes"]):
            raise TargetUnavailable(f"warming the DAX cache of {name} answered {warm}")
        say(f"{name}: DAX item cache warmed ({warm['requests']:,} GetItems, nodes {', '.join(warm['nodes'])})")
        return target
    except BaseException as error:
        running.stop()
        if isinstance(error, Exception) and not isinstance(error, TargetUnavailable):
            raise TargetUnavailable(f"{name}: {error}\nlog {running.log_path}:\n{running.log_tail()}") from error
        raise


def dax_load(target: DaxTarget, args: argparse.Namespace, client_cpus: str | None, duration_s: float, *,
             seed: int, warm: bool = False) -> dict:
    """One bench/dax_load.py run against ``target``; its JSON result."""
    argv = taskset_prefix(client_cpus) + [
        sys.executable, str(DAX_LOAD), "--port", str(target.dax_port), "--table", wrk_bench.TABLE,
        "--keys", str(args.keys), "--connections", str(args.connections), "--seed", str(seed),
    ]  # fmt: skip
    argv += ["--warm"] if warm else ["--duration-s", str(duration_s)]
    done = subprocess.run(argv, capture_output=True, text=True,
                          timeout=(WARM_TIMEOUT_S if warm else duration_s) + LOAD_OVERRUN_S)
    match = _RESULT.search(done.stdout)
    if done.returncode != 0 or match is None:
        raise RuntimeError(f"dax_load failed (exit {done.returncode}): {done.stderr.strip()[-800:]}")
    return json.loads(match.group(1))


def scrape(target: DaxTarget) -> dict[str, dict[str, float]]:
    """Item-cache misses and hits and latency buckets (le -> count), summed over every DAX node: from the
    router's /metrics (embedded: its in-process node) or from every DAX process's own (cluster)."""
    texts = []
    for url in target.metrics_urls:
        with urllib.request.urlopen(url, timeout=METRICS_TIMEOUT_S) as response:
            texts.append(response.read().decode())
    out: dict[str, dict[str, float]] = {"misses": {"": 0.0}, "hits": {"": 0.0}, "buckets": {}}
    for line in "\n".join(texts).splitlines():
        match = _SAMPLE.match(line)
        if match is None:
            continue
        name, labels, value = match.group(1), match.group(2), float(match.group(3))
        if name == "meridian_dax_item_cache_misses_total":
            out["misses"][""] += value
        elif name == "meridian_dax_item_cache_hits_total":
            out["hits"][""] += value
        elif name == _LATENCY_BUCKET:
            le = re.search(r'le="([^"]+)"', labels)
            if le is not None:
                out["buckets"][le.group(1)] = out["buckets"].get(le.group(1), 0.0) + value
    return out


def percentile_us(before: dict[str, float], after: dict[str, float], p: float) -> float | None:
    """The ``p``-th percentile of the requests between two scrapes, interpolated within its bucket."""
    bounds = sorted(((float(le), after.get(le, 0.0) - before.get(le, 0.0)) for le in after), key=lambda b: b[0])
    total = bounds[-1][1] if bounds else 0.0
    if total <= 0:
        return None
    rank = p / 100 * total
    lower_s, below = 0.0, 0.0
    for bound_s, cumulative in bounds:
        if cumulative >= rank:
            if bound_s == float("inf"):
                return lower_s * 1e6  # beyond the grid: its last bound, a lower limit
            share = (rank - below) / (cumulative - below) if cumulative > below else 1.0
            return (lower_s + share * (bound_s - lower_s)) * 1e6
        lower_s, below = bound_s, cumulative
    return None


def measure_once(target: DaxTarget, path: str, args: argparse.Namespace, client_cpus: str | None,
                 duration_s: float, round_no: int) -> Measurement:
    seed = args.seed * 1000 + round_no
    if path == "http":
        router_before = process_cpu_s(target.router_pid)
        result = wrk_bench.run_wrk(target.running, "GetItem", int(duration_s), _wrk_args(args), client_cpus, seed)
        router_cpu_s = process_cpu_s(target.router_pid) - router_before
        return Measurement(round_no, target.name, path, result["requests"], result["requests_per_s"],
                           result["server_cpu_s"], result["wrk_cpu_s"], router_cpu_s,
                           result["latency_p50_us"], result["latency_p99_us"], errors=sum(result["errors"].values()))
    before = scrape(target)
    cpu_before, dax_before = target.running.cpu_seconds(), target.dax_cpu_s()
    result = dax_load(target, args, client_cpus, duration_s, seed=seed)
    server_cpu_s, dax_cpu_s = target.running.cpu_seconds() - cpu_before, target.dax_cpu_s() - dax_before
    after = scrape(target)
    return Measurement(
        round_no, target.name, path, result["requests"], result["requests_per_s"], server_cpu_s,
        result["client_cpu_s"], dax_cpu_s, result["latency_p50_us"], result["latency_p99_us"],
        server_p50_us=percentile_us(before["buckets"], after["buckets"], 50),
        server_p99_us=percentile_us(before["buckets"], after["buckets"], 99),
        cache_misses=int(after["misses"][""] - before["misses"][""]), errors=result["errors"] + result["empty"],
    )


def _wrk_args(args: argparse.Namespace) -> SimpleNamespace:
    return SimpleNamespace(threads=1, connections=args.connections, get_keys=args.keys, put_keys=args.keys,
                           item_bytes=args.item_bytes)


def rounds(targets: dict[str, DaxTarget], args: argparse.Namespace, client_cpus: str | None) -> list[Measurement]:
    pairs = [(name, path) for name in targets for path in PATHS]
    if args.warmup_s > 0:
        say(f"warm-up: {args.warmup_s} s per target and path, not recorded")
        for name, path in pairs:
            measure_once(targets[name], path, args, client_cpus, args.warmup_s, 0)
    out: list[Measurement] = []
    for round_no in range(1, args.rounds + 1):
        shift = (round_no - 1) % len(pairs)
        for name, path in pairs[shift:] + pairs[:shift]:
            m = measure_once(targets[name], path, args, client_cpus, args.duration_s, round_no)
            out.append(m)
            server = "" if m.server_p50_us is None else f"  server p50 {m.server_p50_us:5.1f} µs p99 {m.server_p99_us:6.1f} µs"
            say(f"round {round_no} {name:<8} {path:<4} {m.requests_per_s:>8,.0f} req/s  cpu {m.cpu_us_per_request:6.1f} µs/req"
                f"  client p50 {m.client_p50_us / 1000:5.2f} ms{server}  errors {m.errors}"
                + (f"  misses {m.cache_misses}" if m.cache_misses is not None else ""))
    return out


@dataclass
class Summary:
    target: str
    path: str
    requests_per_s: float
    cpu_us_per_request: float
    serving_cpu_us_per_request: float
    client_p50_us: float
    client_p99_us: float
    server_p50_us: float | None
    server_p99_us: float | None
    client_cores: float
    runs: list[Measurement] = field(repr=False, default_factory=list)


def summarize(runs: list[Measurement]) -> dict[tuple[str, str], Summary]:
    out = {}
    for key in dict.fromkeys((m.target, m.path) for m in runs):
        group = [m for m in runs if (m.target, m.path) == key]

        def median(values: list[float | None]) -> float | None:
            present = [v for v in values if v is not None]
            return statistics.median(present) if present else None

        out[key] = Summary(
            key[0], key[1], median([m.requests_per_s for m in group]), median([m.cpu_us_per_request for m in group]),
            median([m.serving_cpu_us_per_request for m in group]),
            median([m.client_p50_us for m in group]), median([m.client_p99_us for m in group]),
            median([m.server_p50_us for m in group]), median([m.server_p99_us for m in group]),
            median([m.client_cpu_s * m.requests_per_s / m.requests if m.requests else None for m in group]) or 0.0,
            group,
        )  # fmt: skip
    return out


def markdown(summaries: dict[tuple[str, str], Summary]) -> tuple[str, list[str]]:
    """The table, and the goals (met or not) as lines."""
    cluster_http = summaries.get(("cluster", "http"))
    rows = ["| target | path | req/s | server CPU µs/req | vs same target's HTTP | vs cluster HTTP "
            "| serving processes µs/req | server p50 / p99 µs | client p50 / p99 ms | client cores |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    goals = []
    for (name, path), s in summaries.items():
        http = summaries.get((name, "http"))
        same = f"{s.cpu_us_per_request / http.cpu_us_per_request:.2f}×" if path == "dax" and http else ""
        vs_cluster = (f"{s.cpu_us_per_request / cluster_http.cpu_us_per_request:.2f}×"
                      if cluster_http and (name, path) != ("cluster", "http") else "")
        server = f"{s.server_p50_us:.0f} / {s.server_p99_us:.0f}" if s.server_p50_us is not None else "—"
        rows.append(f"| {name} | {path.upper() if path == 'http' else 'DAX (cached)'} | {s.requests_per_s:,.0f} "
                    f"| {s.cpu_us_per_request:.1f} | {same} | {vs_cluster} | {s.serving_cpu_us_per_request:.1f} | {server} "
                    f"| {s.client_p50_us / 1000:.2f} / {s.client_p99_us / 1000:.2f} | {s.client_cores:.2f} |")
        if path != "dax":
            continue
        if cluster_http:
            ratio = s.cpu_us_per_request / cluster_http.cpu_us_per_request
            goals.append(f"{name} DAX cached GetItem CPU / cluster HTTP GetItem CPU = {ratio:.2f} "
                         f"(goal ≤ {CPU_RATIO_GOAL:.2f}): {'met' if ratio <= CPU_RATIO_GOAL else 'MISSED'}")
        if s.server_p50_us is not None:
            goals.append(f"{name} DAX server-side p50 = {s.server_p50_us:.0f} µs (goal < {SERVER_P50_GOAL_US:.0f} µs): "
                         f"{'met' if s.server_p50_us < SERVER_P50_GOAL_US else 'MISSED'}")
    return "\n".join(rows), goals


def profile(target: DaxTarget, args: argparse.Namespace, client_cpus: str | None, raw_path: Path) -> dict | None:
    """py-spy on the (first) process serving DAX during one extra, unrecorded DAX run."""
    import query_scan_profile  # noqa: PLC0415  (bench/ helpers: py-spy, collapsed stacks -> top functions)

    return query_scan_profile.profiled(
        SimpleNamespace(pid=target.dax_pids[0]), raw_path,  # type: ignore[arg-type]  (only .pid is read)
        lambda: dax_load(target, args, client_cpus, args.duration_s, seed=args.seed),
    )


def profile_markdown(name: str, summary: dict) -> str:
    lines = [f"**DAX cached GetItem on {name}** (py-spy, {summary['samples']:,} samples in {summary['seconds']:.1f} s, "
             f"busy {summary['busy_fraction']:.0%})", "", "| own % | function |", "|---:|---|"]
    lines += [f"| {share:.1%} | `{fn}` |" for fn, share in summary["own"]]
    lines += ["", "| inclusive % | function |", "|---:|---|"]
    lines += [f"| {share:.1%} | `{fn}` |" for fn, share in summary["inclusive"]]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--targets", type=wrk_bench._csv(TARGET_NAMES), default=list(TARGET_NAMES))
    p.add_argument("--rounds", type=wrk_bench._positive, default=3)
    p.add_argument("--duration-s", type=wrk_bench._positive, default=10)
    p.add_argument("--warmup-s", type=int, default=2, help="unrecorded run per target and path before round 1")
    p.add_argument("--connections", type=wrk_bench._positive, default=64, help="wrk's and dax_load's")
    p.add_argument("--keys", type=wrk_bench._positive, default=10_000, help="items preloaded and read")
    p.add_argument("--item-bytes", type=wrk_bench._positive, default=200)
    p.add_argument("--dax-nodes", type=wrk_bench._positive, default=3, help="DAX nodes of the cluster target")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--profile", choices=("auto", "on", "off"), default="auto")
    p.add_argument("--out", type=Path, default=None, help="results JSON (default bench/results/<stamp>-dax.json)")
    p.add_argument("--server-cpus", default=None)
    p.add_argument("--client-cpus", default=None)
    p.add_argument("--no-pin", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        say("wrk not found: run bash bench/setup.sh")
        return 2
    stamp = time.strftime("%Y%m%dT%H%M%S")
    out = args.out or BENCH_DIR / "results" / f"{stamp}-dax.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    log_dir = out.with_name(f"{out.stem}-logs")
    log_dir.mkdir(exist_ok=True)
    server_cpus, client_cpus = wrk_bench._pinning(
        SimpleNamespace(no_pin=args.no_pin, server_cpus=args.server_cpus, wrk_cpus=args.client_cpus))
    environment = wrk_bench._environment(server_cpus, client_cpus)
    say(f"servers on CPU {server_cpus or 'any'}, load generators on CPU {client_cpus or 'any'}; logs in {log_dir}")
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, wrk_bench._raise_system_exit)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    work_dir = Path(tempfile.mkdtemp(prefix="meridian-bench-dax-"))
    targets: dict[str, DaxTarget] = {}
    profiles: dict[str, dict] = {}
    try:
        for name in args.targets:
            targets[name] = start(name, args, work_dir, log_dir, server_cpus)
        runs = rounds(targets, args, client_cpus)
        summaries = summarize(runs)
        table, goals = markdown(summaries)
        missed = any("MISSED" in goal for goal in goals)
        if args.profile == "on" or (args.profile == "auto" and missed):
            for name, target in targets.items():
                summary = profile(target, args, client_cpus, out.with_name(f"{out.stem}-{name}.pyspy.txt"))
                if summary is not None:
                    profiles[name] = summary
    except (KeyboardInterrupt, SystemExit):
        say("interrupted: stopping the targets, no results written")
        raise
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        for target in targets.values():
            target.running.stop()
        shutil.rmtree(work_dir, ignore_errors=True)
    environment["loadavg_end"] = Path("/proc/loadavg").read_text().split()[:3]
    profile_text = "\n\n".join(profile_markdown(name, summary) for name, summary in profiles.items())
    out.write_text(json.dumps({
        "stamp": stamp, "command": [sys.executable, *sys.argv],
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "environment": environment, "runs": [m.to_json() for m in runs],
        "markdown": table, "goals": goals, "profiles": profiles, "profiles_markdown": profile_text,
    }, indent=2, default=str))  # fmt: skip
    pinning = f"servers on CPU {server_cpus}, load generators on CPU {client_cpus}" if server_cpus else "unpinned"
    print(f"\n{args.rounds} alternating round(s) x {args.duration_s} s per target and path; {args.connections} "
          f"connections (wrk 1 thread; dax_load one request in flight per connection); {args.keys:,} items of "
          f"~{args.item_bytes} bytes; {pinning}; {environment['cpu_model']}, {environment['cpus_available']} CPUs.\n")
    print(table)
    print()
    print("\n".join(goals))
    if profile_text:
        print("\n" + profile_text)
    print(f"\nresults: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
