"""GetItem / PutItem throughput and latency: Meridian side by side with peers.

    python bench/run.py [--rounds 5] [--duration-s 10] [--connections 64]
        [--targets meridian-embedded,meridian-sync,meridian-cluster,dynalite,dynoxide,moto]
        [--ops GetItem,PutItem] [--out bench/results/<stamp>.json] [--profile]

(``bash bench/setup.sh`` first, for the peers and wrk.)

How, and why this way:
  * Every target runs at once, each on its own port, each with the same
    table ``bench`` (hash key ``pk`` S) preloaded with the same items, so the
    only thing that changes between two measurements is the server.
  * Rounds alternate: each round runs every op against every target in turn,
    and the target order rotates by one each round. On a shared machine the
    background load drifts over minutes; alternating spreads that drift over
    all targets instead of loading it onto whichever ran last. The table shows
    the median of the rounds and, per op, throughput ratios against each peer
    computed from those medians: the ratios are the result, the absolute
    numbers are only this machine at this hour.
  * wrk is a closed-loop generator (each connection sends its next request
    when the previous answer arrives), so p50/p99 are the latency at each
    server's saturation throughput, not at a fixed offered rate.
  * Pinning (default on a machine with at least two CPUs): the server under
    test, all its threads and child processes, on one CPU set; wrk on
    another. Every target then gets the same CPU budget (one core on a
    2-core machine), whether it is one thread (dynalite, moto's GIL), a
    thread pool (Dynoxide's runtime sizes itself to the cores it may use) or
    several processes (``meridian up``), and the load generator never steals
    cycles from the server it measures. ``--no-pin`` leaves the scheduler
    free; the ``server cores`` and ``wrk cores`` columns show who used what.
  * Server CPU per request is measured from /proc (user + system time of the
    server's whole process tree over the run): unlike req/s it hardly depends
    on what else the machine is doing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import dynamo  # noqa: E402  (bench/ is a folder of scripts, not a package)
import report  # noqa: E402
from targets import BENCH_DIR, TARGETS, RunningTarget, TargetUnavailable, start_target, taskset_prefix  # noqa: E402

OPS = ("GetItem", "PutItem")
WRK_SCRIPTS = {"GetItem": BENCH_DIR / "wrk" / "getitem.lua", "PutItem": BENCH_DIR / "wrk" / "putitem.lua"}
TABLE = "bench"
#: wrk gives up on a request after this long; generous, so a slow server's
#: latencies are measured rather than dropped as timeouts.
WRK_TIMEOUT_S = 10
#: Extra time allowed to a wrk process beyond its duration before it is killed.
WRK_OVERRUN_S = 30
#: How long a started target may take to answer ListTables and create the table.
READY_TIMEOUT_S = 60.0
_RESULT_LINE = re.compile(r"^WRK_RESULT_JSON (\{.*\})$", re.MULTILINE)


def _csv(allowed: tuple[str, ...]):
    def parse(text: str) -> list[str]:
        items = [t.strip() for t in text.split(",") if t.strip()]
        unknown = [t for t in items if t not in allowed]
        if unknown or not items:
            raise argparse.ArgumentTypeError(f"expected a comma-separated subset of {','.join(allowed)}")
        return list(dict.fromkeys(items))

    return parse


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=_positive, default=5)
    p.add_argument("--duration-s", type=_positive, default=10, help="seconds per wrk run")
    p.add_argument("--warmup-s", type=int, default=2, help="unrecorded wrk run per target and op before round 1")
    p.add_argument("--connections", type=_positive, default=64)
    p.add_argument("--threads", type=_positive, default=1, help="wrk threads")
    p.add_argument("--targets", type=_csv(tuple(TARGETS)), default=list(TARGETS))
    p.add_argument("--ops", type=_csv(OPS), default=list(OPS))
    p.add_argument("--get-keys", type=_positive, default=10_000, help="items preloaded; GetItem reads among them")
    p.add_argument("--put-keys", type=_positive, default=100_000, help="PutItem writes random keys among these")
    p.add_argument("--item-bytes", type=_positive, default=200, help="item size as DynamoDB counts it")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", type=Path, default=None, help="results JSON (default bench/results/<stamp>.json)")
    p.add_argument("--data-root", type=Path, default=None, help="where Meridian data dirs go (default: system temp)")
    p.add_argument("--server-cpus", default=None, help="taskset CPU list for servers (default: first CPU)")
    p.add_argument("--wrk-cpus", default=None, help="taskset CPU list for wrk (default: last CPU)")
    p.add_argument("--no-pin", action="store_true", help="do not pin servers or wrk")
    p.add_argument("--profile", action="store_true", help="py-spy the meridian-embedded server, one run per op")
    p.add_argument("--profile-format", choices=("flamegraph", "speedscope"), default="flamegraph")
    args = p.parse_args(argv)
    if args.threads > args.connections:
        p.error("--threads must not exceed --connections")
    if max(args.get_keys, args.put_keys) > 10**dynamo.KEY_DIGITS:
        p.error(f"key spaces are limited to {10**dynamo.KEY_DIGITS} keys")
    if args.profile and "meridian-embedded" not in args.targets:
        p.error("--profile needs meridian-embedded among --targets")
    return args


def _pinning(args: argparse.Namespace) -> tuple[str | None, str | None]:
    if args.no_pin:
        return None, None
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2 and not (args.server_cpus and args.wrk_cpus):
        print("bench: one CPU available, not pinning", file=sys.stderr)
        return None, None
    return args.server_cpus or str(cpus[0]), args.wrk_cpus or str(cpus[-1])


def _say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def prepare(name: str, args: argparse.Namespace, work_dir: Path, log_dir: Path, server_cpus: str | None) -> RunningTarget:
    """Start one target, create and preload its table, and check it answers as wrk expects."""
    spec = TARGETS[name]
    data_dir = work_dir / name
    data_dir.mkdir()
    target = start_target(spec, data_dir, log_dir, server_cpus)
    client = dynamo.DynamoClient(target.port)
    try:
        started = time.monotonic()
        dynamo.wait_ready(client, READY_TIMEOUT_S)
        dynamo.create_table(client, TABLE, READY_TIMEOUT_S)
        data_len = dynamo.data_len_for(args.item_bytes)
        dynamo.preload(client, TABLE, args.get_keys, data_len, args.seed)
        dynamo.check_round_trip(client, TABLE, args.get_keys, data_len)
        _say(f"{name} ready on port {target.port} (pid {target.pid}), preloaded in {time.monotonic() - started:.1f} s")
    except BaseException as error:
        target.stop()
        if isinstance(error, Exception):
            raise TargetUnavailable(f"{name}: {error}\nlog {target.log_path}:\n{target.log_tail()}") from error
        raise
    finally:
        client.close()
    return target


def run_wrk(
    target: RunningTarget, op: str, duration_s: int, args: argparse.Namespace, wrk_cpus: str | None, seed: int
) -> dict:
    """One wrk run; returns wrk's JSON result plus the server's and wrk's CPU seconds."""
    key_count = args.get_keys if op == "GetItem" else args.put_keys
    argv = taskset_prefix(wrk_cpus) + [
        "wrk", "-t", str(args.threads), "-c", str(args.connections), "-d", f"{duration_s}s",
        "--timeout", f"{WRK_TIMEOUT_S}s", "-s", str(WRK_SCRIPTS[op]), f"http://127.0.0.1:{target.port}",
        "--", str(key_count), str(dynamo.data_len_for(args.item_bytes)), str(seed), TABLE,
    ]  # fmt: skip
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_before = target.cpu_seconds()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration_s + WRK_OVERRUN_S)
    server_cpu_s = target.cpu_seconds() - server_before
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    match = _RESULT_LINE.search(done.stdout)
    if done.returncode != 0 or match is None:
        raise RuntimeError(f"wrk failed (exit {done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
    result = json.loads(match.group(1))
    result["server_cpu_s"] = server_cpu_s
    result["wrk_cpu_s"] = (children_after.ru_utime + children_after.ru_stime) - (
        children_before.ru_utime + children_before.ru_stime
    )
    return result


def _to_run(round_no: int, op: str, name: str, result: dict) -> report.Run:
    return report.Run(
        round=round_no,
        op=op,
        target=name,
        requests=result["requests"],
        duration_s=result["duration_us"] / 1e6,
        requests_per_s=result["requests_per_s"],
        latency_p50_us=result["latency_p50_us"],
        latency_p99_us=result["latency_p99_us"],
        errors=sum(result["errors"].values()),
        server_cpu_s=result["server_cpu_s"],
        wrk_cpu_s=result["wrk_cpu_s"],
    )


def measure(
    running: dict[str, RunningTarget], args: argparse.Namespace, wrk_cpus: str | None, skipped: dict[str, str]
) -> list[report.Run]:
    """Warm-up, then the alternating rounds. A target that dies is dropped from later runs."""
    runs: list[report.Run] = []

    def one(name: str, op: str, duration_s: int, round_no: int | None) -> None:
        target = running[name]
        seed = args.seed * 1000 + (round_no or 0)
        try:
            result = run_wrk(target, op, duration_s, args, wrk_cpus, seed)
        except (RuntimeError, subprocess.TimeoutExpired) as error:
            result = None
            _say(f"{name} {op}: {error}")
        if not target.alive or result is None:
            skipped[name] = f"failed during {op}; log {target.log_path}:\n{target.log_tail()}"
            _say(f"dropping {name}: {skipped[name]}")
            target.stop()
            del running[name]
            return
        if round_no is None:
            return
        run = _to_run(round_no, op, name, result)
        runs.append(run)
        cpu = run.server_cpu_us_per_request
        _say(
            f"round {round_no} {op:<7} {name:<17} {run.requests_per_s:>9,.0f} req/s  "
            f"p50 {run.latency_p50_us / 1000:6.2f} ms  p99 {run.latency_p99_us / 1000:6.2f} ms  "
            f"cpu {cpu or 0:5.0f} µs/req  errors {run.errors}"
        )

    if args.warmup_s > 0:
        _say(f"warm-up: {args.warmup_s} s per target and op, not recorded")
        for op in args.ops:
            for name in [n for n in args.targets if n in running]:
                one(name, op, args.warmup_s, None)
    for round_no in range(1, args.rounds + 1):
        names = [n for n in args.targets if n in running]
        shift = (round_no - 1) % max(len(names), 1)
        order = names[shift:] + names[:shift]
        for op in args.ops:
            for name in order:
                if name in running:
                    one(name, op, args.duration_s, round_no)
    return runs


def profile(target: RunningTarget, args: argparse.Namespace, wrk_cpus: str | None, out_stem: Path) -> list[Path]:
    """One extra wrk run per op with py-spy attached; not part of the measured rounds."""
    py_spy = shutil.which("py-spy", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if py_spy is None:
        _say("py-spy not found (bash bench/setup.sh); skipping --profile")
        return []
    suffix = ".svg" if args.profile_format == "flamegraph" else ".speedscope.json"
    written = []
    for op in args.ops:
        path = out_stem.with_name(f"{out_stem.name}-{target.spec.name}-{op}{suffix}")
        # --nonblocking: sample without pausing the server, so the profile
        # shows the server at speed (at the price of occasional torn stacks).
        recorder = subprocess.Popen(
            [py_spy, "record", "--pid", str(target.pid), "--rate", "250", "--nonblocking",
             "--duration", str(args.duration_s), "--format", args.profile_format, "--output", str(path)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            run_wrk(target, op, args.duration_s, args, wrk_cpus, args.seed)
            _, stderr = recorder.communicate(timeout=WRK_OVERRUN_S)
        finally:
            if recorder.poll() is None:
                recorder.kill()
                recorder.wait()
        if recorder.returncode == 0 and path.exists():
            written.append(path)
            _say(f"profile of {target.spec.name} {op}: {path}")
        else:
            _say(f"py-spy failed for {op} (exit {recorder.returncode}): {stderr.strip()[-500:]}")
    return written


def _command_output(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        return (done.stdout or done.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "unknown"


def _environment(server_cpus: str | None, wrk_cpus: str | None) -> dict:
    cpu_model = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
        platform.processor(),
    )  # fmt: skip
    return {
        "cpu_model": cpu_model,
        "cpus_available": len(os.sched_getaffinity(0)),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "node": _command_output(["node", "--version"]),
        "wrk": _command_output(["wrk", "-v"]),
        "git_commit": _command_output(["git", "-C", str(BENCH_DIR), "rev-parse", "--short", "HEAD"]),
        "server_cpus": server_cpus,
        "wrk_cpus": wrk_cpus,
        "loadavg_start": Path("/proc/loadavg").read_text().split()[:3],
    }


def _raise_system_exit(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally that stops the targets


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        _say("wrk not found: run bash bench/setup.sh")
        return 2
    stamp = time.strftime("%Y%m%dT%H%M%S")
    out = args.out or BENCH_DIR / "results" / f"{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    log_dir = out.with_name(f"{out.stem}-logs")
    log_dir.mkdir(exist_ok=True)
    server_cpus, wrk_cpus = _pinning(args)
    environment = _environment(server_cpus, wrk_cpus)
    _say(f"servers on CPU {server_cpus or 'any'}, wrk on CPU {wrk_cpus or 'any'}; logs in {log_dir}")
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_system_exit)
    # Also when started in the background, where the shell ignores SIGINT.
    signal.signal(signal.SIGINT, signal.default_int_handler)

    work_dir = Path(tempfile.mkdtemp(prefix="meridian-bench-", dir=args.data_root))
    running: dict[str, RunningTarget] = {}
    skipped: dict[str, str] = {}
    described: dict[str, dict] = {}
    profiles: list[Path] = []
    try:
        for name in args.targets:
            try:
                running[name] = prepare(name, args, work_dir, log_dir, server_cpus)
                described[name] = {
                    "description": TARGETS[name].description,
                    "version": TARGETS[name].version(),
                    "argv": running[name].argv,
                }
            except TargetUnavailable as error:
                skipped[name] = str(error)
                _say(f"skipping {name}: {error}")
        if not running:
            _say("no target could be started")
            return 1
        runs = measure(running, args, wrk_cpus, skipped)
        if args.profile and "meridian-embedded" in running:
            profiles = profile(running["meridian-embedded"], args, wrk_cpus, out.with_suffix(""))
    except (KeyboardInterrupt, SystemExit):
        _say("interrupted: stopping the targets, no results written")
        raise
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not cut the cleanup short (bounded by STOP_GRACE_S)
        for target in running.values():
            target.stop()
        shutil.rmtree(work_dir, ignore_errors=True)

    summaries = report.summarize(runs)
    table = report.markdown_table(summaries, args.targets, args.ops)
    per_round = report.rounds_table(summaries, args.targets, args.ops)
    environment["loadavg_end"] = Path("/proc/loadavg").read_text().split()[:3]
    out.write_text(
        json.dumps(
            {
                "stamp": stamp,
                "command": [sys.executable, *sys.argv],
                "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                "environment": environment,
                "targets": described,
                "skipped": skipped,
                "runs": [r.to_json() for r in runs],
                "summary": [s.__dict__ for s in summaries],
                "profiles": [str(p) for p in profiles],
                "markdown": table,
                "markdown_rounds": per_round,
            },
            indent=2,
        )
    )
    pinning = f"servers on CPU {server_cpus}, wrk on CPU {wrk_cpus}" if server_cpus else "unpinned"
    print(
        f"\n{args.rounds} alternating round(s) x {args.duration_s} s per target and op; wrk {args.threads} thread(s), "
        f"{args.connections} connections; {pinning}; {environment['cpu_model']}, {environment['cpus_available']} CPUs.\n"
        f"Ratios: median req/s of the row's target / median req/s of the peer (above 1 = faster).\n"
    )
    print(table)
    print()
    print(per_round)
    for name, reason in skipped.items():
        lines = [line for line in reason.splitlines() if line.strip()]
        print(f"\nskipped {name}: {lines[0]}" + (f" ... {lines[-1].strip()}" if len(lines) > 1 else ""))
    print(f"\nresults: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
