"""Time to Live's sweep against foreground reads, on ``meridian serve`` (issue 12).

    python bench/ttl_sweep.py                          # 3 rounds x 5 s
    python bench/ttl_sweep.py --rounds 5 --duration-s 10

Two figures: how fast the sweeper deletes expired items (items/s) while a
GetItem benchmark runs, and what the sweep costs that benchmark (its req/s
with the sweep running / without).

One ``meridian serve --ttl-interval-s 0.2 --ttl-change-interval-s 0`` (on
disk, pinned to the first CPU; wrk on the last, as ``bench/run.py`` does).
Table ``bench`` holds ``--get-keys`` items that never expire, which wrk's
GetItem script reads (``bench/wrk/getitem.lua``, 64 connections).  Each round
runs three modes, in an order rotated by one each round (the machine's drift
spread over the modes, as in ``run.py``):

* ``get``: GetItem for ``--duration-s``, no table with TTL;
* ``get+sweep``: the same, while the sweeper expires a fresh table;
* ``sweep``: the sweeper alone, for the same time (its rate unloaded).

For a sweep mode a new table is loaded beforehand, TTL off, with
``--expired-items`` items whose ``expires`` is a minute past (default: twice
what the node may delete in a window at ``TTL_DELETES_PER_S_MAX``, so the
sweep never runs dry); TTL is enabled as the window opens and disabled as it
closes.  A node finishes the pass it is in after TTL is disabled (it does not
look at the table's setting again until its next pass), so before the next
window the bench waits for the deletions to stop (``deleted_after_disable``
in the JSON).  The sweep rate is read from the router's ``/metrics``
(``meridian_ttl_deleted_item_count``) sampled every 0.25 s: deletions in the
window over the window's length (up to the sample where the table ran dry,
if it did).  The node paces deletions at ``TTL_DELETES_PER_S_MAX`` per second
(``node/ttl.py``), so the sweep rate's ceiling is that figure: what is
measured is how close to it the sweep stays with a saturated event loop.

Prints the medians and writes ``bench/results/<stamp>-ttl-sweep.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import dynamo  # noqa: E402  (bench/ is a folder of scripts, not a package)
from run import READY_TIMEOUT_S, run_wrk  # noqa: E402
from targets import BENCH_DIR, MERIDIAN_BIN, TargetSpec, start_target  # noqa: E402

from meridian.model import limits  # noqa: E402

TABLE = "bench"
TTL_ATTRIBUTE = "expires"
MODES = ("get", "get+sweep", "sweep")
#: How often the sweeper starts a pass; short, so a window's sweep starts at once.
TTL_INTERVAL_S = 0.2
#: /metrics sampling period during a window.
SAMPLE_INTERVAL_S = 0.25
#: Pause after loading a sweep table, so its flushes are not in the window.
SETTLE_S = 1.0
#: After a sweep window, deletions have stopped once the count holds this long.
QUIET_S = 0.6
#: ... and the bench gives up waiting for that after this long.
QUIET_TIMEOUT_S = 60.0
_METRIC = "meridian_ttl_deleted_item_count"
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration-s", type=int, default=5, help="seconds per window")
    p.add_argument("--warmup-s", type=int, default=2, help="unrecorded GetItem run before round 1")
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--threads", type=int, default=1, help="wrk threads")
    p.add_argument("--get-keys", type=int, default=10_000, help="items preloaded in bench; GetItem reads among them")
    p.add_argument("--item-bytes", type=int, default=200)
    p.add_argument("--expired-items", type=int, default=None,
                   help="items per sweep window (default 1.5 x TTL_DELETES_PER_S_MAX x duration)")  # fmt: skip
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", type=Path, default=None, help="results JSON (default bench/results/<stamp>-ttl-sweep.json)")
    p.add_argument("--no-pin", action="store_true", help="do not pin the server and wrk to CPUs")
    args = p.parse_args(argv)
    args.put_keys = args.get_keys  # run_wrk's namespace
    if args.expired_items is None:
        args.expired_items = int(1.5 * limits.TTL_DELETES_PER_S_MAX * args.duration_s)
    return args


def _say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def _pinning(no_pin: bool) -> tuple[str | None, str | None]:
    cpus = sorted(os.sched_getaffinity(0))
    if no_pin or len(cpus) < 2:
        return None, None
    return str(cpus[0]), str(cpus[-1])


def deleted_count(port: int, table: str) -> int:
    """The table's TTL deletions as the router's /metrics shows them (0 when absent)."""
    with _DIRECT.open(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        for line in answer.read().decode().splitlines():
            if line.startswith(f'{_METRIC}{{TableName="{table}"}} '):
                return int(float(line.rsplit(" ", 1)[1]))
    return 0


def load_expired(client: dynamo.DynamoClient, table: str, count: int, data_len: int) -> None:
    """A new table of ``count`` items expired a minute ago, TTL still off."""
    dynamo.create_table(client, table, READY_TIMEOUT_S)
    expires = str(int(time.time()) - 60)
    data = "x" * data_len
    for start in range(0, count, dynamo.BATCH_WRITE_ITEMS_MAX):
        batch = [
            {"pk": {"S": dynamo.key(i)}, "data": {"S": data}, TTL_ATTRIBUTE: {"N": expires}}
            for i in range(start, min(start + dynamo.BATCH_WRITE_ITEMS_MAX, count))
        ]
        dynamo.write_batch(client, table, batch)


def _set_ttl(client: dynamo.DynamoClient, table: str, enabled: bool) -> None:
    spec = {"Enabled": enabled, "AttributeName": TTL_ATTRIBUTE}
    client.call("UpdateTimeToLive", {"TableName": table, "TimeToLiveSpecification": spec})


def wait_quiet(port: int, table: str) -> int:
    """Wait until the table's TTL count stops moving (the node's pass is over); the count."""
    count, since = deleted_count(port, table), time.monotonic()
    deadline = since + QUIET_TIMEOUT_S
    while time.monotonic() - since < QUIET_S and time.monotonic() < deadline:
        time.sleep(SAMPLE_INTERVAL_S)
        now = deleted_count(port, table)
        if now != count:
            count, since = now, time.monotonic()
    return count


def sweep_rate(samples: list[tuple[float, int]], total: int) -> tuple[float, bool]:
    """Items/s from (time, count) samples of one window, and whether the table
    ran dry; a dry table's rate stops at the first sample showing it empty."""
    t0, c0 = samples[0]
    end = next((i for i, (_, c) in enumerate(samples) if c - c0 >= total), len(samples) - 1)
    t1, c1 = samples[end]
    return ((c1 - c0) / (t1 - t0) if t1 > t0 else 0.0), c1 - c0 >= total


def window(target, client, mode: str, round_no: int, args, wrk_cpus: str | None) -> dict:
    """One mode's window: GetItem (wrk) and/or a sweep; the figures."""
    sweeping = mode != "get"
    table = f"expiring-{round_no}-{mode.replace('+', '-')}"
    if sweeping:
        load_expired(client, table, args.expired_items, dynamo.data_len_for(args.item_bytes))
        time.sleep(SETTLE_S)  # the load's flushes and compactions, out of the window
    result: dict = {"mode": mode, "round": round_no}
    wrk_result: dict = {}
    wrk_thread = None
    if mode != "sweep":

        def wrk() -> None:
            wrk_result.update(run_wrk(target, "GetItem", args.duration_s, args, wrk_cpus, args.seed * 1000 + round_no))

        wrk_thread = threading.Thread(target=wrk, name="wrk")
    cpu_before = target.cpu_seconds()
    if sweeping:
        _set_ttl(client, table, True)
    samples = [(time.monotonic(), deleted_count(target.port, table) if sweeping else 0)]
    if wrk_thread is not None:
        wrk_thread.start()
    deadline = samples[0][0] + args.duration_s
    while time.monotonic() < deadline:
        time.sleep(SAMPLE_INTERVAL_S)
        if sweeping:
            samples.append((time.monotonic(), deleted_count(target.port, table)))
    if wrk_thread is not None:
        wrk_thread.join()
    elapsed_s = time.monotonic() - samples[0][0]
    result["server_cores"] = (target.cpu_seconds() - cpu_before) / elapsed_s
    if sweeping:
        _set_ttl(client, table, False)
        result["sweep_items_per_s"], result["sweep_ran_dry"] = sweep_rate(samples, args.expired_items)
        result["sweep_samples"] = [(round(t - samples[0][0], 3), c) for t, c in samples]
        result["deleted_after_disable"] = wait_quiet(target.port, table) - samples[-1][1]
    if wrk_result:
        errors = sum(wrk_result["errors"].values())
        result |= {
            "get_requests_per_s": wrk_result["requests_per_s"], "get_p50_us": wrk_result["latency_p50_us"],
            "get_p99_us": wrk_result["latency_p99_us"], "get_errors": errors,
        }  # fmt: skip
    return result


def _median(results: list[dict], mode: str, field: str) -> float | None:
    values = [r[field] for r in results if r["mode"] == mode and field in r]
    return statistics.median(values) if values else None


def report(results: list[dict], args) -> str:
    def num(value: float | None, digits: int = 0) -> str:
        return "-" if value is None else f"{value:,.{digits}f}"

    lines = [
        "| mode | GetItem req/s | GetItem p50 ms | GetItem p99 ms | sweep items/s | server cores |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for mode in MODES:
        p50, p99 = _median(results, mode, "get_p50_us"), _median(results, mode, "get_p99_us")
        lines.append(
            f"| {mode} | {num(_median(results, mode, 'get_requests_per_s'))} | {num(p50 and p50 / 1000, 2)} "
            f"| {num(p99 and p99 / 1000, 2)} | {num(_median(results, mode, 'sweep_items_per_s'))} "
            f"| {num(_median(results, mode, 'server_cores'), 2)} |"
        )
    alone, swept = _median(results, "get", "get_requests_per_s"), _median(results, "get+sweep", "get_requests_per_s")
    ratio = swept / alone if alone and swept else math.nan
    lines.append("")
    lines.append(f"GetItem with the sweep / without: {ratio:.2f} (median req/s of {args.rounds} alternating rounds)")
    dry = sum(bool(r.get("sweep_ran_dry")) for r in results)
    if dry:
        lines.append(f"{dry} sweep window(s) ran out of expired items: their rate stops where the table was empty")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        _say("wrk not found: run bash bench/setup.sh")
        return 2
    server_cpus, wrk_cpus = _pinning(args.no_pin)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    out = args.out or BENCH_DIR / "results" / f"{stamp}-ttl-sweep.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    work_dir = Path(tempfile.mkdtemp(prefix="meridian-ttl-bench-"))
    spec = TargetSpec(
        "meridian-ttl", "meridian serve, sweeping TTL every 0.2 s",
        lambda port, data_dir: [str(MERIDIAN_BIN), "serve", "--port", str(port), "--data-dir", str(data_dir),
                                "--ttl-interval-s", str(TTL_INTERVAL_S), "--ttl-change-interval-s", "0"],
        MERIDIAN_BIN, "pip install -e . in this environment", is_python=True,
    )  # fmt: skip
    target = start_target(spec, work_dir / "data", work_dir, server_cpus)
    client = dynamo.DynamoClient(target.port)
    results: list[dict] = []
    try:
        dynamo.wait_ready(client, READY_TIMEOUT_S)
        dynamo.create_table(client, TABLE, READY_TIMEOUT_S)
        data_len = dynamo.data_len_for(args.item_bytes)
        dynamo.preload(client, TABLE, args.get_keys, data_len, args.seed)
        dynamo.check_round_trip(client, TABLE, args.get_keys, data_len)
        _say(f"serve on port {target.port} (pid {target.pid}), CPUs: server {server_cpus}, wrk {wrk_cpus}")
        if args.warmup_s > 0:
            run_wrk(target, "GetItem", args.warmup_s, args, wrk_cpus, args.seed)
        for round_no in range(1, args.rounds + 1):
            shift = (round_no - 1) % len(MODES)
            for mode in MODES[shift:] + MODES[:shift]:
                result = window(target, client, mode, round_no, args, wrk_cpus)
                results.append(result)
                _say(
                    f"round {round_no} {mode:<9} GetItem {result.get('get_requests_per_s', 0):>8,.0f} req/s  "
                    f"sweep {result.get('sweep_items_per_s', 0):>6,.0f} items/s  cores {result['server_cores']:.2f}"
                )
                if not target.alive:
                    raise RuntimeError(f"meridian serve exited:\n{target.log_tail()}")
    finally:
        client.close()
        target.stop()
        shutil.rmtree(work_dir, ignore_errors=True)
    table = report(results, args)
    out.write_text(json.dumps({
        "stamp": stamp, "command": [sys.executable, *sys.argv],
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "server_cpus": server_cpus, "wrk_cpus": wrk_cpus, "ttl_deletes_per_s_max": limits.TTL_DELETES_PER_S_MAX,
        "loadavg_end": Path("/proc/loadavg").read_text().split()[:3], "results": results, "markdown": table,
    }, indent=2))  # fmt: skip
    print(f"\n{args.rounds} alternating round(s) x {args.duration_s} s; wrk {args.connections} connections; "
          f"sweep paced at {limits.TTL_DELETES_PER_S_MAX} deletes/s per node.\n")  # fmt: skip
    print(table)
    print(f"\nresults: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
