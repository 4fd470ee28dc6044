"""GetRecords throughput: one consumer per shard, embedded and a 3-node cluster (issue 12).

    python bench/stream_records.py                             # 50,000 writes, 3 rounds
    python bench/stream_records.py --writes 50000 --rounds 5 --targets embedded,cluster

Both targets run at once, pinned to the first CPU as in ``bench/run.py``:
``embedded`` (``meridian serve``, on disk) and ``cluster`` (``meridian up
--nodes-per-region 3``: three storage nodes and a router).  Each gets table
``streamed`` (hash key ``pk`` S) with a NEW_AND_OLD_IMAGES stream, then
``--writes`` PutItems of distinct keys (BatchWriteItem, ~``--item-bytes``
each): as many INSERT records, spread over one shard per storage node.  An
unrecorded pass reads them all once (and checks the count).

A round reads the whole stream again, on every target in turn (order rotated
by one each round): DescribeStream, then one consumer thread per shard, each
with its own keep-alive connection, from TRIM_HORIZON with GetRecords
(``Limit`` 1000) until a page comes back empty (the shards are open: no new
records arrive) or the shard ends.  **records/s** = records read / wall time
from the first GetShardIterator to the last consumer's end; server CPU per
record is the target's process tree's CPU over the same time (/proc).  The
consumers run on the last CPU; their own CPU is reported (**client cores**):
well below one core, they were not the limit.

Prints the medians and writes ``bench/results/<stamp>-stream-records.json``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

import dynamo  # noqa: E402  (bench/ is a folder of scripts, not a package)
from run import READY_TIMEOUT_S  # noqa: E402
from targets import BENCH_DIR, MERIDIAN_BIN, TargetSpec, start_target  # noqa: E402

TABLE = "streamed"
#: GetRecords ``Limit``: DynamoDB's largest.
PAGE_RECORDS = 1000
#: DescribeStream ``Limit``: DynamoDB's largest.
SHARDS_PER_PAGE = 100
#: How long the written records may take to be readable (durable) in the stream.
CATCH_UP_TIMEOUT_S = 120.0
_STREAMS = "DynamoDBStreams_20120810."

TARGETS = {
    "embedded": TargetSpec(
        "embedded", "meridian serve (router + RocksDB in one process, on disk)",
        lambda port, data_dir: [str(MERIDIAN_BIN), "serve", "--port", str(port), "--data-dir", str(data_dir)],
        MERIDIAN_BIN, "pip install -e . in this environment", is_python=True,
    ),
    "cluster": TargetSpec(
        "cluster", "meridian up: 3 storage nodes + 1 router, gRPC between them",
        lambda port, data_dir: [str(MERIDIAN_BIN), "up", "--nodes-per-region", "3", "--port", str(port),
                                "--data-dir", str(data_dir)],
        MERIDIAN_BIN, "pip install -e . in this environment", is_python=True,
    ),
}  # fmt: skip


class StreamsClient(dynamo.DynamoClient):
    """``dynamo.DynamoClient`` for the ``DynamoDBStreams_20120810`` target, orjson both ways."""

    def streams(self, action: str, payload: dict) -> dict:
        headers = {**dynamo.HEADERS, "X-Amz-Target": _STREAMS + action}
        body = orjson.dumps(payload)
        for attempt in (1, 2):  # one reconnect: the server may close idle keep-alive connections
            if self._conn is None:
                self._conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout_s)
            try:
                self._conn.request("POST", "/", body, headers)
                response = self._conn.getresponse()
                data = response.read()
                break
            except (http.client.HTTPException, ConnectionError):
                self.close()
                if attempt == 2:
                    raise
        if response.status != 200:
            raise dynamo.DynamoError(action, response.status, data)
        return orjson.loads(data)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--targets", default="embedded,cluster", help="comma-separated: embedded, cluster")
    p.add_argument("--writes", type=int, default=50_000, help="items written, each one INSERT record")
    p.add_argument("--item-bytes", type=int, default=200)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", type=Path, default=None, help="results JSON (default bench/results/<stamp>-stream-records.json)")
    p.add_argument("--no-pin", action="store_true", help="do not pin the servers and the consumers to CPUs")
    args = p.parse_args(argv)
    args.targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    unknown = [t for t in args.targets if t not in TARGETS]
    if unknown or not args.targets:
        p.error(f"--targets: expected a subset of {','.join(TARGETS)}")
    return args


def _say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def _pinning(no_pin: bool) -> tuple[str | None, set[int] | None]:
    cpus = sorted(os.sched_getaffinity(0))
    if no_pin or len(cpus) < 2:
        return None, None
    return str(cpus[0]), {cpus[-1]}


def prepare(target, args) -> str:
    """Create the table with its stream, write the items; the stream's ARN."""
    client = dynamo.DynamoClient(target.port)
    try:
        dynamo.wait_ready(client, READY_TIMEOUT_S)
        client.call("CreateTable", {
            "TableName": TABLE, "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        })  # fmt: skip
        deadline = time.monotonic() + READY_TIMEOUT_S
        while (table := client.call("DescribeTable", {"TableName": TABLE})["Table"])["TableStatus"] != "ACTIVE":
            if time.monotonic() > deadline:
                raise TimeoutError(f"{TABLE} not ACTIVE")
            time.sleep(0.1)
        data = "x" * dynamo.data_len_for(args.item_bytes)
        for start in range(0, args.writes, dynamo.BATCH_WRITE_ITEMS_MAX):
            end = min(start + dynamo.BATCH_WRITE_ITEMS_MAX, args.writes)
            dynamo.write_batch(client, TABLE, [dynamo.item(i, data) for i in range(start, end)])
        return table["LatestStreamArn"]
    finally:
        client.close()


def shards(port: int, arn: str) -> list[str]:
    client = StreamsClient(port)
    try:
        out, after = [], None
        while True:
            payload = {"StreamArn": arn, "Limit": SHARDS_PER_PAGE} | ({"ExclusiveStartShardId": after} if after else {})
            description = client.streams("DescribeStream", payload)["StreamDescription"]
            out += [s["ShardId"] for s in description.get("Shards", [])]
            after = description.get("LastEvaluatedShardId")
            if after is None:
                return out
    finally:
        client.close()


def consume(port: int, arn: str, shard_id: str, counts: dict[str, int]) -> None:
    """Read one shard from TRIM_HORIZON to an empty page or its end."""
    client = StreamsClient(port)
    read = 0
    try:
        request = {"StreamArn": arn, "ShardId": shard_id, "ShardIteratorType": "TRIM_HORIZON"}
        iterator = client.streams("GetShardIterator", request)["ShardIterator"]
        while iterator is not None:
            page = client.streams("GetRecords", {"ShardIterator": iterator, "Limit": PAGE_RECORDS})
            got = len(page.get("Records", ()))
            read += got
            iterator = page.get("NextShardIterator")
            if got == 0:
                break
    finally:
        client.close()
        counts[shard_id] = read


def read_all(target, arn: str) -> dict:
    """One consumer thread per shard, all at once; the figures of the pass."""
    shard_ids = shards(target.port, arn)
    counts: dict[str, int] = {}
    threads = [threading.Thread(target=consume, args=(target.port, arn, s, counts)) for s in shard_ids]
    cpu_before = target.cpu_seconds()
    own_before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed_s = time.perf_counter() - started
    own_after = resource.getrusage(resource.RUSAGE_SELF)
    server_cpu_s = target.cpu_seconds() - cpu_before
    records = sum(counts.values())
    client_cpu_s = (own_after.ru_utime + own_after.ru_stime) - (own_before.ru_utime + own_before.ru_stime)
    return {
        "shards": len(shard_ids), "records": records, "elapsed_s": elapsed_s,
        "records_per_s": records / elapsed_s if elapsed_s > 0 else 0.0,
        "per_shard": counts,
        "server_cpu_us_per_record": server_cpu_s / records * 1e6 if records else None,
        "server_cores": server_cpu_s / elapsed_s, "client_cores": client_cpu_s / elapsed_s,
    }  # fmt: skip


def report(results: list[dict], names: list[str], rounds: int) -> str:
    lines = [
        "| target | shards | records/s | records/s per shard | server CPU µs/record | server cores | client cores |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name in names:
        mine = [r for r in results if r["target"] == name]
        if not mine:
            continue

        def med(field: str) -> float:
            return statistics.median(r[field] for r in mine if r[field] is not None)

        shard_count = mine[0]["shards"]
        lines.append(
            f"| {name} | {shard_count} | {med('records_per_s'):,.0f} | {med('records_per_s') / shard_count:,.0f} "
            f"| {med('server_cpu_us_per_record'):.1f} | {med('server_cores'):.2f} | {med('client_cores'):.2f} |"
        )
    lines.append("")
    lines.append(f"medians of {rounds} alternating rounds; per round: " + "; ".join(
        f"{name} " + ", ".join(f"{r['records_per_s']:,.0f}" for r in results if r["target"] == name) for name in names
    ))  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    server_cpus, client_cpus = _pinning(args.no_pin)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    out = args.out or BENCH_DIR / "results" / f"{stamp}-stream-records.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    work_dir = Path(tempfile.mkdtemp(prefix="meridian-stream-bench-"))
    running, arns, results = {}, {}, []
    try:
        for name in args.targets:
            (work_dir / name).mkdir()
            running[name] = start_target(TARGETS[name], work_dir / name / "data", work_dir / name, server_cpus)
        if client_cpus:
            os.sched_setaffinity(0, client_cpus)  # the consumers; the servers keep their own CPU
        for name, target in running.items():
            started = time.monotonic()
            arns[name] = prepare(target, args)
            deadline = time.monotonic() + CATCH_UP_TIMEOUT_S
            while (first := read_all(target, arns[name]))["records"] < args.writes:  # unrecorded pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name}: {first['records']} of {args.writes} records in the stream")
                time.sleep(0.5)
            _say(f"{name}: {args.writes} writes in {time.monotonic() - started:.1f} s, {first['shards']} shard(s)")
        names = list(running)
        for round_no in range(1, args.rounds + 1):
            shift = (round_no - 1) % len(names)
            for name in names[shift:] + names[:shift]:
                result = {"round": round_no, "target": name, **read_all(running[name], arns[name])}
                if result["records"] != args.writes:
                    raise RuntimeError(f"{name}: read {result['records']} records, wrote {args.writes}")
                results.append(result)
                _say(f"round {round_no} {name:<9} {result['records_per_s']:>9,.0f} records/s  "
                     f"{result['shards']} shard(s)  server {result['server_cores']:.2f} cores")  # fmt: skip
    finally:
        for target in running.values():
            target.stop()
        shutil.rmtree(work_dir, ignore_errors=True)
    table = report(results, args.targets, args.rounds)
    out.write_text(json.dumps({
        "stamp": stamp, "command": [sys.executable, *sys.argv],
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "server_cpus": server_cpus, "client_cpus": sorted(client_cpus) if client_cpus else None,
        "loadavg_end": Path("/proc/loadavg").read_text().split()[:3], "results": results, "markdown": table,
    }, indent=2))  # fmt: skip
    print(f"\n{args.writes:,} INSERT records (~{args.item_bytes} B items, NEW_AND_OLD_IMAGES), one consumer per shard.\n")
    print(table)
    print(f"\nresults: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
