"""TransactWriteItems throughput and the conflict rate of transfers: Meridian side by side with Dynoxide.

    python bench/transactions.py [--rounds 3] [--duration-s 5] [--connections 32] [--sizes 2,10]
        [--targets meridian-embedded,meridian-cluster,dynoxide] [--accounts 16] [--transfer-s 5]
        [--out bench/results/<stamp>-transactions.json]

(``bash bench/setup.sh`` first, for Dynoxide.)

What one run does, and why this way:
  * Every target runs at once, each on its own port (bench/targets.py), each
    with the same table ``txn`` (hash key ``pk`` S).
  * **Throughput**: for each size in ``--sizes``, ``--connections`` keep-alive
    connections each send TransactWriteItems of that many Puts (items of
    ~``--item-bytes`` bytes, distinct random keys among ``--keys``, so two
    transactions rarely meet) back to back for ``--duration-s`` seconds:
    closed loop, so the figure is each server's saturation rate.  Rounds
    alternate the targets, the order rotated each round (as bench/run.py);
    the table shows the medians and the ratios against Dynoxide.
  * **Conflicts**: ``--accounts`` accounts of balance 1000, then
    ``--transfer-s`` seconds of transfers between two random accounts
    (two Updates, the debit conditional on ``balance >= :amt``) over the same
    connections: committed transfers/s and how the others were cancelled
    (``TransactionConflict``: met another transaction in flight;
    ``ConditionalCheckFailed``: not enough money).  A server that runs one
    transaction at a time never reports a conflict; the total is checked
    afterwards on every target.
  * Pinning as in bench/run.py: servers on the first CPU, this client on the
    last (one uvloop loop with httptools, bench/query_scan_client.py, far
    cheaper per request than any server).  Server CPU per transaction comes
    from /proc.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

import dynamo  # noqa: E402  (bench/ is a folder of scripts, not a package)
from query_scan_client import Connection, run_async  # noqa: E402
from targets import BENCH_DIR, TARGETS, RunningTarget, TargetUnavailable, start_target  # noqa: E402

TABLE = "txn"
DEFAULT_TARGETS = ("meridian-embedded", "meridian-cluster", "dynoxide")
READY_TIMEOUT_S = 60.0
INITIAL_BALANCE = 1000
TRANSFER_AMOUNT_MAX = 100
PERCENTILES = (50, 99)


def _say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration-s", type=float, default=5.0, help="seconds per throughput run")
    p.add_argument("--warmup-s", type=float, default=2.0, help="unrecorded run per target before round 1")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--sizes", type=lambda t: [int(x) for x in _csv(t)], default=[2, 10], help="items per transaction")
    p.add_argument("--targets", type=_csv, default=list(DEFAULT_TARGETS))
    p.add_argument("--keys", type=int, default=100_000, help="Puts write random keys among these")
    p.add_argument("--item-bytes", type=int, default=200)
    p.add_argument("--accounts", type=int, default=16)
    p.add_argument("--transfer-s", type=float, default=5.0, help="seconds of transfers per target and round")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--no-pin", action="store_true")
    args = p.parse_args(argv)
    unknown = [t for t in args.targets if t not in TARGETS]
    if unknown:
        p.error(f"unknown targets {unknown}; choose among {sorted(TARGETS)}")
    if not args.sizes or max(args.sizes) > 100 or min(args.sizes) < 1:
        p.error("--sizes: 1 to 100 items per transaction")
    return args


def _pinning(args: argparse.Namespace) -> tuple[str | None, set[int] | None]:
    cpus = sorted(os.sched_getaffinity(0))
    if args.no_pin or len(cpus) < 2:
        return None, None
    return str(cpus[0]), {cpus[-1]}


# --- the two workloads ----------------------------------------------------------------


def _put_body(rng: random.Random, size: int, keys: int, data: str) -> bytes:
    chosen = rng.sample(range(keys), size)
    return orjson.dumps({"TransactItems": [
        {"Put": {"TableName": TABLE, "Item": {"pk": {"S": dynamo.key(k)}, "data": {"S": data}}}} for k in chosen]})


def _transfer_body(rng: random.Random, accounts: int) -> bytes:
    source, target = rng.sample(range(accounts), 2)
    amount = {"N": str(rng.randint(1, TRANSFER_AMOUNT_MAX))}

    def leg(account: int, sign: str) -> dict:
        update = {"TableName": TABLE, "Key": {"pk": {"S": f"acct{account:03d}"}},
                  "UpdateExpression": f"SET balance = balance {sign} :amt", "ExpressionAttributeValues": {":amt": amount}}
        if sign == "-":
            update["ConditionExpression"] = "balance >= :amt"
        return {"Update": update}

    return orjson.dumps({"TransactItems": [leg(source, "-"), leg(target, "+")]})


async def _load(port: int, connections: int, duration_s: float, make_body, seed: int) -> dict:
    """Closed loop over ``connections``; counts, latencies and cancellation reasons."""
    latencies: list[float] = []
    outcome: dict[str, int] = {}
    deadline = time.monotonic() + duration_s

    async def one(index: int) -> None:
        rng = random.Random(seed * 10_000 + index)
        connection = await Connection.open(port)
        try:
            while time.monotonic() < deadline:
                body = make_body(rng)
                started = time.perf_counter()
                try:
                    await connection.call("TransactWriteItems", body)
                    key = "committed"
                except dynamo.DynamoError as error:
                    key = error.type_name or f"HTTP {error.status}"
                    if key == "TransactionCanceledException":
                        key = _cancel_key(error)
                latencies.append(time.perf_counter() - started)
                outcome[key] = outcome.get(key, 0) + 1
        finally:
            connection.close()

    started = time.monotonic()
    await asyncio.gather(*(one(i) for i in range(connections)))
    elapsed = time.monotonic() - started
    latencies.sort()
    pct = {p: latencies[min(len(latencies) - 1, int(len(latencies) * p / 100))] * 1000 if latencies else 0.0
           for p in PERCENTILES}
    return {"elapsed_s": elapsed, "outcome": outcome, "requests": len(latencies),
            "committed_per_s": outcome.get("committed", 0) / elapsed, "p50_ms": pct[50], "p99_ms": pct[99]}


def _cancel_key(error: dynamo.DynamoError) -> str:
    """``cancelled: <reasons>`` from the message DynamoDB builds: '... specific reasons [None, X]'."""
    reasons = error.text.rpartition("[")[2].rstrip("]")
    codes = sorted({c.strip() for c in reasons.split(",") if c.strip() and c.strip() != "None"})
    return "cancelled: " + ("+".join(codes) or "?")


# --- preparing targets ----------------------------------------------------------------------


def prepare(name: str, work_dir: Path, log_dir: Path, server_cpus: str | None) -> RunningTarget:
    data_dir = work_dir / name
    data_dir.mkdir()
    target = start_target(TARGETS[name], data_dir, log_dir, server_cpus)
    client = dynamo.DynamoClient(target.port)
    try:
        dynamo.wait_ready(client, READY_TIMEOUT_S)
        dynamo.create_table(client, TABLE, READY_TIMEOUT_S)
        _say(f"{name} ready on port {target.port} (pid {target.pid})")
    except BaseException as error:
        target.stop()
        if isinstance(error, Exception):
            raise TargetUnavailable(f"{name}: {error}\nlog {target.log_path}:\n{target.log_tail()}") from error
        raise
    finally:
        client.close()
    return target


def seed_accounts(target: RunningTarget, accounts: int) -> None:
    client = dynamo.DynamoClient(target.port)
    try:
        for a in range(accounts):
            client.call("PutItem", {"TableName": TABLE, "Item": {"pk": {"S": f"acct{a:03d}"},
                                                                 "balance": {"N": str(INITIAL_BALANCE)}}})
    finally:
        client.close()


def total_balance(target: RunningTarget, accounts: int) -> int:
    client = dynamo.DynamoClient(target.port)
    try:
        return sum(int(client.call("GetItem", {"TableName": TABLE, "Key": {"pk": {"S": f"acct{a:03d}"}},
                                                "ConsistentRead": True})["Item"]["balance"]["N"])
                   for a in range(accounts))
    finally:
        client.close()


# --- the run ------------------------------------------------------------------------------------


def measure(running: dict[str, RunningTarget], args: argparse.Namespace) -> list[dict]:
    data = "x" * dynamo.data_len_for(args.item_bytes)
    runs = []

    def one(name: str, workload: str, round_no: int | None, duration_s: float) -> None:
        target = running[name]
        if workload == "transfers":
            make = lambda rng: _transfer_body(rng, args.accounts)  # noqa: E731
        else:
            size = int(workload.split()[0])
            make = lambda rng, size=size: _put_body(rng, size, args.keys, data)  # noqa: E731
        cpu_before = target.cpu_seconds()
        result = run_async(_load(target.port, args.connections, duration_s, make, args.seed * 100 + (round_no or 0)))
        result["server_cpu_us_per_txn"] = (target.cpu_seconds() - cpu_before) * 1e6 / max(result["requests"], 1)
        if round_no is None:
            return
        runs.append({"round": round_no, "target": name, "workload": workload, **result})
        _say(f"round {round_no} {workload:<12} {name:<18} {result['committed_per_s']:>8,.0f} committed/s  "
             f"p50 {result['p50_ms']:6.2f} ms  p99 {result['p99_ms']:6.2f} ms  "
             f"cpu {result['server_cpu_us_per_txn']:6.0f} µs/txn  {result['outcome']}")

    workloads = [f"{size} items" for size in args.sizes] + ["transfers"]
    if args.warmup_s > 0:
        for name in running:
            one(name, workloads[0], None, args.warmup_s)
    for name in running:
        seed_accounts(running[name], args.accounts)
    for round_no in range(1, args.rounds + 1):
        names = list(running)
        shift = (round_no - 1) % len(names)
        for workload in workloads:
            for name in names[shift:] + names[:shift]:
                one(name, workload, round_no, args.transfer_s if workload == "transfers" else args.duration_s)
    for name, target in running.items():
        total = total_balance(target, args.accounts)
        assert total == INITIAL_BALANCE * args.accounts, f"{name}: total {total}, money was made or lost"
    return runs


def summarize(runs: list[dict], targets: list[str]) -> str:
    lines = ["| Workload | Target | committed txn/s (median) | items/s | p50 ms | p99 ms | server CPU µs/txn | "
             "vs Dynoxide | cancelled: conflict | cancelled: condition |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    workloads = list(dict.fromkeys(r["workload"] for r in runs))
    for workload in workloads:
        medians = {}
        for name in targets:
            mine = [r for r in runs if r["workload"] == workload and r["target"] == name]
            if mine:
                medians[name] = mine
        base = statistics.median(r["committed_per_s"] for r in medians["dynoxide"]) if "dynoxide" in medians else None
        for name, mine in medians.items():
            rate = statistics.median(r["committed_per_s"] for r in mine)
            items = 2 if workload == "transfers" else int(workload.split()[0])
            requests = sum(r["requests"] for r in mine) or 1
            conflict = sum(v for r in mine for k, v in r["outcome"].items() if "TransactionConflict" in k) / requests
            condition = sum(v for r in mine for k, v in r["outcome"].items()
                            if "ConditionalCheckFailed" in k and "TransactionConflict" not in k) / requests
            lines.append(
                f"| {workload} | {name} | {rate:,.0f} | {rate * items:,.0f} | "
                f"{statistics.median(r['p50_ms'] for r in mine):.2f} | {statistics.median(r['p99_ms'] for r in mine):.2f} | "
                f"{statistics.median(r['server_cpu_us_per_txn'] for r in mine):,.0f} | "
                f"{f'{rate / base:.2f}×' if base else '-'} | {conflict:.1%} | {condition:.1%} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    out = args.out or BENCH_DIR / "results" / f"{stamp}-transactions.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    log_dir = out.with_name(f"{out.stem}-logs")
    log_dir.mkdir(exist_ok=True)
    server_cpus, client_cpus = _pinning(args)
    if client_cpus:
        os.sched_setaffinity(0, client_cpus)
    _say(f"servers on CPU {server_cpus or 'any'}, client on {sorted(client_cpus) if client_cpus else 'any'}")
    work_dir = Path(tempfile.mkdtemp(prefix="meridian-bench-txn-"))
    running: dict[str, RunningTarget] = {}
    skipped: dict[str, str] = {}
    try:
        for name in args.targets:
            try:
                running[name] = prepare(name, work_dir, log_dir, server_cpus)
            except TargetUnavailable as error:
                skipped[name] = str(error)
                _say(f"skipping {error}")
        if not running:
            return 2
        runs = measure(running, args)
    finally:
        for target in running.values():
            target.stop()
    table = summarize(runs, args.targets)
    print(table)
    out.write_text(json.dumps({"args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                               "versions": {n: TARGETS[n].version() for n in running}, "skipped": skipped,
                               "loadavg": Path("/proc/loadavg").read_text().split()[:3], "runs": runs,
                               "table": table}, indent=2))
    _say(f"results in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
