"""Restore speed over HTTP, and what point-in-time recovery costs PutItem (issue 13).

    python bench/restore.py speed                      # 1M items, embedded and 3-node cluster, 2 rounds
    python bench/restore.py speed --items 100000 --targets meridian-embedded --rounds 1
    python bench/restore.py pitr-cost                  # PutItem with PITR on vs off, 5 alternating rounds

``speed``: one target at a time (``meridian serve``, then ``meridian up``
with 3 storage nodes), unpinned, so a cluster's nodes can restore on every
core the machine has.  Per target:

1. table ``restore_src`` (``pk`` S, items of ``--item-bytes`` as bench/run.py
   writes them), PITR enabled while it is empty (so the PITR checkpoint
   taken at enable time holds none of its items);
2. ``--items`` loaded with BatchWriteItem over ``--loaders`` connections;
   the time of the last write is noted (``loaded_s``);
3. ``CreateBackup`` (waited to AVAILABLE); then PITR enabled on a small
   table ``restore_aux``, which takes a new periodic-style checkpoint on every
   node: node checkpoints hold the whole database, so this one holds all of
   ``restore_src``;
4. rounds; each runs three restores, in an order rotated every round:
   ``backup`` (RestoreTableFromBackup: every item from the backup's
   checkpoint), ``pitr-log`` (RestoreTableToPointInTime to ``loaded_s``:
   the newest checkpoint before it is the empty one, so every item comes
   from replaying the change log), ``pitr-checkpoint``
   (UseLatestRestorableTime: every item from the checkpoint of step 3, no
   log to replay).  Each is timed from the restore call to DescribeTable's
   ACTIVE (polled every ``POLL_S``); then a ``Select: COUNT`` Scan (4
   segments, consistent) must find every item, and the restored table is
   deleted.  items/s = items / (call to ACTIVE).

``pitr-cost``: two ``meridian serve`` (CPU 0; wrk on CPU 1, as bench/run.py),
each with table ``bench``; on one, PITR is enabled, and both run with
``--pitr-checkpoint-interval-s`` (default 10 s, so several checkpoints fall
in every measured run; the product's default is 3600 s).  PutItem with wrk
(bench/run.py's ``run_wrk``), the two servers alternating, the order
swapped every round; the result is the ratio of the medians.  Both write to
the change log either way; with PITR on, the log is kept since the oldest
checkpoint instead of trimmed, and a checkpoint (memtable flush + hard
links) runs every interval.  The data folders' sizes at the end show the
retention.

Results: ``bench/results/<stamp>-restore-speed.json`` / ``-pitr-cost.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import dynamo  # noqa: E402  (bench/ is a folder of scripts, not a package)
import run  # noqa: E402
from targets import BENCH_DIR, TARGETS, RunningTarget, start_target  # noqa: E402

SOURCE = "restore_src"
AUX = "restore_aux"
KINDS = ("backup", "pitr-log", "pitr-checkpoint")
#: How often DescribeTable is polled while a restore runs (bounds the timing error).
POLL_S = 0.1
#: The longest one restore (call to ACTIVE) may take before the run gives up.
RESTORE_TIMEOUT_S = 3600.0
#: Segments of the verifying COUNT scan.
COUNT_SEGMENTS = 4
READY_TIMEOUT_S = 120.0
#: InternalServerError answers to DescribeTable tolerated during one restore.
SERVER_ERRORS_MAX = 20


def _say(message: str) -> None:
    print(f"restore-bench: {message}", file=sys.stderr, flush=True)


def _loadavg() -> list[str]:
    return Path("/proc/loadavg").read_text().split()[:3]


def _folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


# --- loading and checking --------------------------------------------------------------


def load(port: int, table: str, items: int, data_len: int, loaders: int) -> float:
    """Write items 0 .. items - 1 with BatchWriteItem over ``loaders`` connections; seconds taken."""
    data = "d" * data_len
    batches = iter(range(0, items, dynamo.BATCH_WRITE_ITEMS_MAX))
    lock = threading.Lock()
    failures: list[BaseException] = []

    def loader() -> None:
        client = dynamo.DynamoClient(port, timeout_s=120.0)
        try:
            while not failures:
                with lock:
                    start = next(batches, None)
                if start is None:
                    return
                end = min(start + dynamo.BATCH_WRITE_ITEMS_MAX, items)
                dynamo.write_batch(client, table, [dynamo.item(i, data) for i in range(start, end)])
        except BaseException as error:  # reported below
            failures.append(error)
        finally:
            client.close()

    started = time.monotonic()
    threads = [threading.Thread(target=loader, daemon=True) for _ in range(loaders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
    return time.monotonic() - started


def count_items(port: int, table: str) -> int:
    """Items in ``table`` by a consistent ``Select: COUNT`` Scan in ``COUNT_SEGMENTS`` segments."""
    counts = [0] * COUNT_SEGMENTS
    failures: list[BaseException] = []

    def segment(n: int) -> None:
        client = dynamo.DynamoClient(port, timeout_s=120.0)
        body: dict = {"TableName": table, "Select": "COUNT", "ConsistentRead": True,
                      "Segment": n, "TotalSegments": COUNT_SEGMENTS}  # fmt: skip
        try:
            while True:
                page = client.call("Scan", body)
                counts[n] += page["Count"]
                if "LastEvaluatedKey" not in page:
                    return
                body["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        except BaseException as error:  # reported below
            failures.append(error)
        finally:
            client.close()

    threads = [threading.Thread(target=segment, args=(n,), daemon=True) for n in range(COUNT_SEGMENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
    return sum(counts)


def wait_status(client: dynamo.DynamoClient, table: str, timeout_s: float) -> int:
    """Poll DescribeTable every ``POLL_S`` until ``table`` is ACTIVE; the
    number of InternalServerError answers met on the way (tolerated, up to
    ``SERVER_ERRORS_MAX``: a busy cluster router may answer one)."""
    deadline = time.monotonic() + timeout_s
    server_errors = 0
    while True:
        try:
            if client.call("DescribeTable", {"TableName": table})["Table"]["TableStatus"] == "ACTIVE":
                return server_errors
        except dynamo.DynamoError as error:
            if error.status == 500 and server_errors < SERVER_ERRORS_MAX:
                server_errors += 1
                _say(f"DescribeTable {table}: {error} (tolerated)")
            elif error.type_name == "ResourceNotFoundException":
                raise RuntimeError(f"{table} vanished while restoring (a node failed; see the target's log)") from error
            else:
                raise
        if time.monotonic() > deadline:
            raise TimeoutError(f"{table} not ACTIVE after {timeout_s:.0f} s")
        time.sleep(POLL_S)


def wait_gone(client: dynamo.DynamoClient, table: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            client.call("DescribeTable", {"TableName": table})
        except dynamo.DynamoError as error:
            if error.type_name == "ResourceNotFoundException":
                return
            raise
        time.sleep(POLL_S)
    raise TimeoutError(f"{table} still there {timeout_s:.0f} s after DeleteTable")


# --- restore speed --------------------------------------------------------------------


@dataclasses.dataclass
class Source:
    """What the restores of one target start from."""

    backup_arn: str
    loaded_s: float


def prepare_source(target: RunningTarget, ns: argparse.Namespace) -> tuple[Source, dict]:
    client = dynamo.DynamoClient(target.port, timeout_s=120.0)
    try:
        dynamo.wait_ready(client, READY_TIMEOUT_S)
        for table in (SOURCE, AUX):
            dynamo.create_table(client, table, READY_TIMEOUT_S)
        pitr_on = {"PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True}}
        client.call("UpdateContinuousBackups", {"TableName": SOURCE, **pitr_on})
        time.sleep(1.1)  # the load starts after the enable checkpoint's second
        load_s = load(target.port, SOURCE, ns.items, dynamo.data_len_for(ns.item_bytes), ns.loaders)
        _say(f"{target.spec.name}: loaded {ns.items:,} items in {load_s:.1f} s ({ns.items / load_s:,.0f} items/s)")
        loaded_s = time.time()
        time.sleep(1.1)  # the backup and the next checkpoint fall in a later second
        started = time.monotonic()
        arn = client.call("CreateBackup", {"TableName": SOURCE, "BackupName": "bench"})["BackupDetails"]["BackupArn"]
        describe = {"BackupArn": arn}
        while client.call("DescribeBackup", describe)["BackupDescription"]["BackupDetails"]["BackupStatus"] != "AVAILABLE":
            time.sleep(POLL_S)
        backup_s = time.monotonic() - started
        started = time.monotonic()
        client.call("UpdateContinuousBackups", {"TableName": AUX, **pitr_on})
        checkpoint_s = time.monotonic() - started
        _say(f"{target.spec.name}: backup in {backup_s:.2f} s, PITR checkpoint in {checkpoint_s:.2f} s")
        return Source(arn, loaded_s), {"load_s": load_s, "load_items_per_s": ns.items / load_s,
                                       "backup_s": backup_s, "checkpoint_s": checkpoint_s}  # fmt: skip
    finally:
        client.close()


def restore_once(target: RunningTarget, source: Source, kind: str, name: str, items: int) -> dict:
    """One restore into ``name``: timed to ACTIVE, counted, deleted."""
    client = dynamo.DynamoClient(target.port, timeout_s=120.0)
    try:
        if kind == "backup":
            call = ("RestoreTableFromBackup", {"TargetTableName": name, "BackupArn": source.backup_arn})
        elif kind == "pitr-log":
            call = ("RestoreTableToPointInTime",
                    {"SourceTableName": SOURCE, "TargetTableName": name, "RestoreDateTime": source.loaded_s})
        else:
            call = ("RestoreTableToPointInTime",
                    {"SourceTableName": SOURCE, "TargetTableName": name, "UseLatestRestorableTime": True})
        cpu_before = target.cpu_seconds()
        started = time.monotonic()
        client.call(*call)
        server_errors = wait_status(client, name, RESTORE_TIMEOUT_S)
        restore_s = time.monotonic() - started
        cpu_s = target.cpu_seconds() - cpu_before
        started = time.monotonic()
        counted = count_items(target.port, name)
        count_s = time.monotonic() - started
        if counted != items:
            raise RuntimeError(f"{kind} restore {name}: the COUNT scan found {counted:,} items, not {items:,}")
        client.call("DeleteTable", {"TableName": name})
        wait_gone(client, name, READY_TIMEOUT_S)
    finally:
        client.close()
    return {"kind": kind, "restore_s": restore_s, "items_per_s": items / restore_s, "server_cpu_s": cpu_s,
            "server_cores": cpu_s / restore_s, "count_s": count_s, "describe_500s": server_errors,
            "loadavg": _loadavg()}  # fmt: skip


def speed(ns: argparse.Namespace) -> dict:
    out: dict = {"items": ns.items, "item_bytes": ns.item_bytes, "loaders": ns.loaders, "targets": {}}
    work_dir = Path(tempfile.mkdtemp(prefix="meridian-restore-bench-", dir=ns.data_root))
    log_dir = ns.out.with_name(ns.out.stem + "-logs")
    log_dir.mkdir(parents=True, exist_ok=True)
    try:
        for name in ns.targets:
            (work_dir / name).mkdir()
            target = start_target(TARGETS[name], work_dir / name, log_dir, None)
            try:
                source, prepared = prepare_source(target, ns)
                rounds = []
                for round_no in range(ns.rounds):
                    shift = round_no % len(KINDS)
                    for kind in KINDS[shift:] + KINDS[:shift]:
                        result = restore_once(target, source, kind, f"restored_{kind}_{round_no}", ns.items)
                        rounds.append({"round": round_no + 1, **result})
                        _say(f"{name} round {round_no + 1} {kind:<15} {result['items_per_s']:>9,.0f} items/s "
                             f"({result['restore_s']:.1f} s, {result['server_cores']:.2f} cores; "
                             f"COUNT scan {result['count_s']:.1f} s; load {' '.join(result['loadavg'])})")  # fmt: skip
                medians = {k: statistics.median(r["items_per_s"] for r in rounds if r["kind"] == k) for k in KINDS}
                out["targets"][name] = {**prepared, "rounds": rounds, "items_per_s_median": medians,
                                        "data_bytes": _folder_bytes(work_dir / name)}  # fmt: skip
                ns.out.write_text(json.dumps(out, indent=2))  # what is done so far survives a later failure
            finally:
                target.stop()
                if (work_dir / name / "logs").is_dir():  # meridian up's own logs (router, nodes)
                    shutil.copytree(work_dir / name / "logs", log_dir / f"{name}-logs", dirs_exist_ok=True)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    return out


def speed_table(out: dict) -> str:
    lines = ["| target | load items/s | " + " | ".join(f"{k} items/s (s)" for k in KINDS) + " | server cores |",
             "|---|---:|" + "---:|" * len(KINDS) + "---:|"]  # fmt: skip
    for name, result in out["targets"].items():
        cells = []
        for kind in KINDS:
            seconds = statistics.median(r["restore_s"] for r in result["rounds"] if r["kind"] == kind)
            cells.append(f"{result['items_per_s_median'][kind]:,.0f} ({seconds:.1f})")
        cores = statistics.median(r["server_cores"] for r in result["rounds"])
        lines.append(f"| {name} | {result['load_items_per_s']:,.0f} | " + " | ".join(cells) + f" | {cores:.2f} |")
    return "\n".join(lines)


# --- the cost of PITR on PutItem ---------------------------------------------------------------


def pitr_cost(ns: argparse.Namespace) -> dict:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: run bash bench/setup.sh")
    cpus = sorted(os.sched_getaffinity(0))
    server_cpus, wrk_cpus = (str(cpus[0]), str(cpus[-1])) if len(cpus) >= 2 else (None, None)
    base = TARGETS["meridian-embedded"]
    interval = ["--pitr-checkpoint-interval-s", str(ns.checkpoint_interval_s)]
    specs = {
        mode: dataclasses.replace(base, name=f"meridian-pitr-{mode}",
                                  argv=lambda port, data_dir: base.argv(port, data_dir) + interval)
        for mode in ("off", "on")
    }  # fmt: skip
    wrk_args = argparse.Namespace(get_keys=ns.preload, put_keys=ns.put_keys, item_bytes=ns.item_bytes,
                                  threads=1, connections=ns.connections)  # fmt: skip
    work_dir = Path(tempfile.mkdtemp(prefix="meridian-pitr-bench-", dir=ns.data_root))
    log_dir = ns.out.with_name(ns.out.stem + "-logs")
    log_dir.mkdir(parents=True, exist_ok=True)
    running: dict[str, RunningTarget] = {}
    runs: list[dict] = []
    try:
        for mode, spec in specs.items():
            (work_dir / mode).mkdir()
            target = running[mode] = start_target(spec, work_dir / mode, log_dir, server_cpus)
            client = dynamo.DynamoClient(target.port)
            try:
                dynamo.wait_ready(client, READY_TIMEOUT_S)
                dynamo.create_table(client, run.TABLE, READY_TIMEOUT_S)
                dynamo.preload(client, run.TABLE, ns.preload, dynamo.data_len_for(ns.item_bytes), 1)
                if mode == "on":
                    client.call("UpdateContinuousBackups", {"TableName": run.TABLE,
                                "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True}})  # fmt: skip
            finally:
                client.close()
        for mode, target in running.items():  # warm-up, not recorded
            run.run_wrk(target, "PutItem", 2, wrk_args, wrk_cpus, 0)
        for round_no in range(1, ns.rounds + 1):
            order = ("off", "on") if round_no % 2 else ("on", "off")
            for mode in order:
                result = run.run_wrk(running[mode], "PutItem", ns.duration_s, wrk_args, wrk_cpus, round_no)
                runs.append({"round": round_no, "pitr": mode, "requests_per_s": result["requests_per_s"],
                             "latency_p99_us": result["latency_p99_us"], "server_cpu_s": result["server_cpu_s"],
                             "requests": result["requests"], "loadavg": _loadavg()})  # fmt: skip
                cpu_us = result["server_cpu_s"] / max(result["requests"], 1) * 1e6
                _say(f"round {round_no} PITR {mode:<3} {result['requests_per_s']:>8,.0f} req/s  "
                     f"p99 {result['latency_p99_us'] / 1000:6.2f} ms  cpu {cpu_us:4.0f} µs/req  "
                     f"load {' '.join(_loadavg())}")  # fmt: skip
        sizes = {mode: _folder_bytes(work_dir / mode) for mode in running}
        checkpoints = {mode: len(list((work_dir / mode).rglob("checkpoints/*.json"))) for mode in running}
    finally:
        for target in running.values():
            target.stop()
        shutil.rmtree(work_dir, ignore_errors=True)
    median = {mode: statistics.median(r["requests_per_s"] for r in runs if r["pitr"] == mode) for mode in ("off", "on")}
    cpu = {mode: statistics.median(r["server_cpu_s"] / r["requests"] * 1e6 for r in runs if r["pitr"] == mode)
           for mode in ("off", "on")}  # fmt: skip
    return {"rounds": ns.rounds, "duration_s": ns.duration_s, "checkpoint_interval_s": ns.checkpoint_interval_s,
            "server_cpus": server_cpus, "wrk_cpus": wrk_cpus, "runs": runs, "median_requests_per_s": median,
            "median_cpu_us_per_request": cpu, "ratio_on_over_off": median["on"] / median["off"],
            "data_bytes_at_end": sizes, "checkpoints_at_end": checkpoints}  # fmt: skip


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="part", required=True)
    s = sub.add_parser("speed", help="restore speed of a loaded table")
    s.add_argument("--items", type=int, default=1_000_000)
    s.add_argument("--rounds", type=int, default=2)
    s.add_argument("--loaders", type=int, default=16, help="BatchWriteItem connections while loading")
    s.add_argument("--targets", default="meridian-embedded,meridian-cluster")
    c = sub.add_parser("pitr-cost", help="PutItem throughput with PITR on vs off")
    c.add_argument("--rounds", type=int, default=5)
    c.add_argument("--duration-s", type=int, default=10)
    c.add_argument("--connections", type=int, default=64)
    c.add_argument("--preload", type=int, default=10_000)
    c.add_argument("--put-keys", type=int, default=100_000)
    c.add_argument("--checkpoint-interval-s", type=float, default=10.0)
    for part in (s, c):
        part.add_argument("--item-bytes", type=int, default=200)
        part.add_argument("--data-root", type=Path, default=None, help="where data dirs go (default: system temp)")
        part.add_argument("--out", type=Path, default=None)
    ns = p.parse_args(argv)
    if ns.part == "speed":
        ns.targets = [t.strip() for t in ns.targets.split(",") if t.strip()]
        if ns.items > 10**dynamo.KEY_DIGITS or any(t not in TARGETS for t in ns.targets):
            p.error(f"--items at most {10**dynamo.KEY_DIGITS}; --targets among {','.join(TARGETS)}")
    stamp = time.strftime("%Y%m%dT%H%M%S")
    ns.out = ns.out or BENCH_DIR / "results" / f"{stamp}-{'restore-speed' if ns.part == 'speed' else 'pitr-cost'}.json"
    ns.out.parent.mkdir(parents=True, exist_ok=True)
    return ns


def main(argv: list[str] | None = None) -> int:
    ns = parse_args(argv)
    environment = {"loadavg_start": _loadavg(), "cpus": len(os.sched_getaffinity(0)),
                   "git_commit": subprocess.run(["git", "-C", str(BENCH_DIR), "rev-parse", "--short", "HEAD"],
                                                capture_output=True, text=True).stdout.strip()}  # fmt: skip
    out = speed(ns) if ns.part == "speed" else pitr_cost(ns)
    environment["loadavg_end"] = _loadavg()
    out = {"command": [sys.executable, *sys.argv], "environment": environment, **out}
    if ns.part == "speed":
        out["markdown"] = speed_table(out)
        print(out["markdown"])
    else:
        m, cpu = out["median_requests_per_s"], out["median_cpu_us_per_request"]
        print(f"PutItem median: PITR off {m['off']:,.0f} req/s ({cpu['off']:.0f} µs/req), "
              f"PITR on {m['on']:,.0f} req/s ({cpu['on']:.0f} µs/req); on/off {out['ratio_on_over_off']:.3f}; "
              f"data at end: {out['data_bytes_at_end']}, checkpoints {out['checkpoints_at_end']}")  # fmt: skip
    print(f"load average start {' '.join(environment['loadavg_start'])}, end {' '.join(environment['loadavg_end'])}")
    ns.out.write_text(json.dumps(out, indent=2))
    print(f"results: {ns.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
