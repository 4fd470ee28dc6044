"""Global Tables replication figures (issue 6), in one run on real processes.

    python bench/replication.py                                   # the full run, about 10 minutes
    python bench/replication.py --sustain-s 10 --catchup-cut-s 15 --cut-s 30   # a quick look

One ``LocalCluster`` (what ``meridian up --regions A,B`` starts): in each
region its storage node(s), a router and a replicator; the link between the
regions has ``--link-latency-ms`` of simulated one-way latency.  All writes
go to region A's router (BatchWriteItem, 25 items of ``--item-bytes``, at
``--rate`` items/s, open loop over ``--connections`` keep-alive connections);
each phase writes its own global table, so its latency histogram is its own.

1. **sustained**: ``--sustain-s`` of writes; replicated items/s (changes
   applied in B during the window) and replication latency p50/p95/p99/max
   as B's replicator measured it (writer's stamp -> applied in B).
   Goal: >= 5,000 items/s with p99 <= link latency + 25 ms.
2. **catch-up**: the link cut both ways for ``--catchup-cut-s`` under load;
   then writes stop, the link heals, and the backlog (``pending`` A -> B)
   is timed until it reaches 0.  Goal: >= 20,000 items/s.
3. **memory**: ``--baseline-s`` of load, then a ``--cut-s`` cut under the
   same load, then heal (writes stop) and catch-up; both replicators' RSS
   (``/proc/<pid>/status`` VmRSS) and the backlog sampled every second and
   plotted.  Goal: memory flat during the cut (the backlog waits in the
   change log on disk, never in the replicator).

Writes go to ``--out-dir`` (default ``bench/results``):
``<stamp>-replication.json`` (every figure and sample) and
``<stamp>-replication-rss.png``.  The machine may be shared: other load
shows up in every figure; the JSON records the load average.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import orjson
import uvloop

from meridian.cluster.control_client import ControlClient
from meridian.cluster.procs import LocalCluster

sys.path.insert(0, str(Path(__file__).resolve().parent))
import dynamo  # noqa: E402  (bench/ is a folder of scripts, not a package)

BENCH_DIR = Path(__file__).resolve().parent
#: Items per BatchWriteItem (DynamoDB's limit).
BATCH_ITEMS = dynamo.BATCH_WRITE_ITEMS_MAX
#: An open-loop writer further behind its schedule than this skips ahead
#: (it reports the rate it achieved; it never queues without bound).
WRITER_LAG_MAX_S = 1.0
#: Time a table may take to become global (replica ACTIVE).
GLOBAL_TABLE_TIMEOUT_S = 60.0
#: How long a backlog may take to drain before the phase gives up.
DRAIN_TIMEOUT_S = 900.0
#: Backlog polling while draining (the catch-up time's resolution).
DRAIN_POLL_S = 0.1
#: RSS / backlog sampling period in the memory phase.
SAMPLE_INTERVAL_S = 1.0
#: Slack allowed on top of the link latency by the p99 goal.
P99_SLACK_MS = 25.0
GOAL_ITEMS_S = 5000.0
GOAL_CATCHUP_ITEMS_S = 20000.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--regions", default="us-east-1,eu-west-1", help="two region names, writer first")
    p.add_argument("--nodes-per-region", type=int, default=1)
    p.add_argument("--link-latency-ms", type=float, default=50.0)
    p.add_argument("--rate", type=float, default=6000.0, help="items/s offered to region A (default 6000)")
    p.add_argument("--connections", type=int, default=8)
    p.add_argument("--item-bytes", type=int, default=100)
    p.add_argument("--sustain-s", type=float, default=30.0)
    p.add_argument("--catchup-cut-s", type=float, default=60.0)
    p.add_argument("--baseline-s", type=float, default=10.0, help="memory phase: load before the cut")
    p.add_argument("--cut-s", type=float, default=300.0, help="memory phase: length of the cut under load")
    p.add_argument("--phases", default="sustained,catchup,memory")
    p.add_argument("--out-dir", type=Path, default=BENCH_DIR / "results")
    p.add_argument("--data-dir", type=Path, default=None, help="cluster data (default: a temporary folder, removed)")
    args = p.parse_args(argv)
    args.regions = [r.strip() for r in args.regions.split(",")]
    if len(args.regions) != 2:
        p.error("--regions takes exactly two regions")
    args.phases = [x.strip() for x in args.phases.split(",") if x.strip()]
    return args


def _say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- load --------------------------------------------------------------------------


class Writer:
    """BatchWriteItem at a fixed rate to one router, open loop, keep-alive connections."""

    def __init__(self, port: int, table: str, rate_items_s: float, item_bytes: int, connections: int, prefix: str):
        self.port = port
        self.table = table
        self.batch_interval_s = BATCH_ITEMS / rate_items_s
        self.connections = connections
        self.prefix = prefix
        self.pad = "x" * dynamo.data_len_for(item_bytes)
        self.acked = 0
        self.errors = 0
        self._next_batch = 0
        self._start = 0.0
        self.elapsed_s = 0.0

    def _body(self, batch: int) -> bytes:
        first = batch * BATCH_ITEMS
        items = [
            {"PutRequest": {"Item": {"pk": {"S": f"{self.prefix}{i:010d}"}, "data": {"S": self.pad}}}}
            for i in range(first, first + BATCH_ITEMS)
        ]
        body = orjson.dumps({"RequestItems": {self.table: items}})
        head = "".join(f"{k}: {v}\r\n" for k, v in dynamo.HEADERS.items())
        return (
            f"POST / HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n{head}"
            f"X-Amz-Target: DynamoDB_20120810.BatchWriteItem\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        self._start = loop.time()
        await asyncio.gather(*(self._connection(stop) for _ in range(self.connections)))
        self.elapsed_s = loop.time() - self._start

    async def _connection(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            while not stop.is_set():
                now = loop.time()
                behind = int((now - self._start - WRITER_LAG_MAX_S) / self.batch_interval_s)
                batch = self._next_batch = max(self._next_batch, behind)
                self._next_batch += 1
                due = self._start + batch * self.batch_interval_s
                if due > now:
                    await asyncio.sleep(due - now)
                    if stop.is_set():
                        return
                writer.write(self._body(batch))
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
                body = await reader.readexactly(length)
                if not head.startswith(b"HTTP/1.1 200"):
                    self.errors += BATCH_ITEMS
                elif b'"UnprocessedItems":{}' in body:
                    self.acked += BATCH_ITEMS
                else:
                    unprocessed = sum(len(v) for v in orjson.loads(body).get("UnprocessedItems", {}).values())
                    self.acked += BATCH_ITEMS - unprocessed
                    self.errors += unprocessed
        finally:
            writer.close()


async def write_for(writer: Writer, seconds: float) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(writer.run(stop))
    await asyncio.sleep(seconds)
    stop.set()
    await task


# --- cluster helpers -------------------------------------------------------------------


def make_global(port: int, table: str, replica_region: str) -> None:
    client = dynamo.DynamoClient(port)
    try:
        dynamo.create_table(client, table, GLOBAL_TABLE_TIMEOUT_S)
        client.call("UpdateTable", {"TableName": table, "ReplicaUpdates": [{"Create": {"RegionName": replica_region}}]})
        deadline = time.monotonic() + GLOBAL_TABLE_TIMEOUT_S
        while client.call("DescribeTable", {"TableName": table})["Table"]["TableStatus"] != "ACTIVE":
            if time.monotonic() > deadline:
                raise TimeoutError(f"{table} not global after {GLOBAL_TABLE_TIMEOUT_S:g} s")
            time.sleep(0.1)
    finally:
        client.close()


def router_port(cluster: LocalCluster, region: str) -> int:
    return int(cluster.endpoints[region].rsplit(":", 1)[1])


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of one process so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def lag_row(control: ControlClient, table: str, source: str, target: str) -> dict:
    for row in control.lag():
        if (row["table"], row["source"], row["target"]) == (table, source, target):
            return row
    return {"table": table, "source": source, "target": target, "count": 0,
            "p50_ms": 0.0, "p95_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0}  # fmt: skip


async def drain(control: ControlClient, pair: tuple[str, str]) -> float:
    """Wait until nothing is pending from A to B; the loop time it happened."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DRAIN_TIMEOUT_S
    while True:
        pending = (await asyncio.to_thread(control.pending))[pair]
        if pending == 0:
            return loop.time()
        if loop.time() > deadline:
            raise TimeoutError(f"{pending} changes still pending after {DRAIN_TIMEOUT_S:g} s")
        await asyncio.sleep(DRAIN_POLL_S)


def batches(control: ControlClient, region: str) -> tuple[int, int]:
    """(batches, changes) the region's replicator has had acknowledged so far."""
    stats = control.call(region, {"command": "show"})["statistics"]
    return stats["batches_sent"], stats["changes_sent"]


def batch_figures(before: tuple[int, int], after: tuple[int, int]) -> dict:
    sent, changes = after[0] - before[0], after[1] - before[1]
    return {"batches": sent, "changes_per_batch": round(changes / sent, 1) if sent else None}


def process_cpu(cluster: LocalCluster) -> dict[str, float]:
    out = {f"{r}-replicator": cpu_s(p.pid) for r, p in cluster.replicators.items()}
    out.update({f"{r}-router": cpu_s(p.pid) for r, p in cluster.routers.items()})
    out.update({p.name: cpu_s(p.pid) for nodes in cluster.nodes.values() for p in nodes})
    return out


def cpu_delta(before: dict[str, float], after: dict[str, float], seconds: float) -> dict[str, float]:
    """Cores used per process over an interval."""
    return {name: round((after[name] - before[name]) / seconds, 2) for name in after}


# --- phases ------------------------------------------------------------------------------


async def phase_sustained(args, cluster: LocalCluster, control: ControlClient) -> dict:
    a, b = args.regions
    table = "repl-sustained"
    await asyncio.to_thread(make_global, router_port(cluster, a), table, b)
    writer = Writer(router_port(cluster, a), table, args.rate, args.item_bytes, args.connections, "s")
    _say(f"sustained: {args.rate:g} items/s offered to {a} for {args.sustain_s:g} s, link {args.link_latency_ms:g} ms")
    cpu_before = process_cpu(cluster)
    batches_before = await asyncio.to_thread(batches, control, a)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await write_for(writer, args.sustain_s)
    t1 = loop.time()
    cpu = cpu_delta(cpu_before, process_cpu(cluster), t1 - t0)
    applied_in_window = (await asyncio.to_thread(lag_row, control, table, a, b))["count"]
    done = await drain(control, (a, b))
    row = await asyncio.to_thread(lag_row, control, table, a, b)
    shipped = batch_figures(batches_before, await asyncio.to_thread(batches, control, a))
    result = {
        "offered_items_s": args.rate,
        "written_items": writer.acked,
        "write_errors": writer.errors,
        "written_items_s": round(writer.acked / writer.elapsed_s, 1),
        "replicated_items_s": round(applied_in_window / (t1 - t0), 1),
        "replicated_total": row["count"],
        "drain_after_writes_s": round(done - t1, 3),
        "latency_ms": {k: row[k] for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms")},
        "p99_goal_ms": args.link_latency_ms + P99_SLACK_MS,
        "shipped": shipped,
        "cores": cpu,
        "loadavg": os.getloadavg(),
    }
    _say(f"sustained: {json.dumps(result)}")
    return result


async def phase_catchup(args, cluster: LocalCluster, control: ControlClient) -> dict:
    a, b = args.regions
    table = "repl-catchup"
    await asyncio.to_thread(make_global, router_port(cluster, a), table, b)
    writer = Writer(router_port(cluster, a), table, args.rate, args.item_bytes, args.connections, "c")
    _say(f"catch-up: link cut for {args.catchup_cut_s:g} s under load")
    await asyncio.to_thread(control.link_cut, a, b)
    await write_for(writer, args.catchup_cut_s)
    result = await _heal_and_time(args, cluster, control, table)
    result.update(written_items=writer.acked, written_items_s=round(writer.acked / writer.elapsed_s, 1),
                  cut_s=args.catchup_cut_s)  # fmt: skip
    _say(f"catch-up: {json.dumps(result)}")
    return result


async def _heal_and_time(args, cluster: LocalCluster, control: ControlClient, table: str) -> dict:
    a, b = args.regions
    backlog = (await asyncio.to_thread(control.pending))[(a, b)]
    before = (await asyncio.to_thread(lag_row, control, table, a, b))["count"]
    cpu_before = process_cpu(cluster)
    batches_before = await asyncio.to_thread(batches, control, a)
    loop = asyncio.get_running_loop()
    healed = loop.time()
    await asyncio.to_thread(control.link_heal, a, b)
    done = await drain(control, (a, b))
    cpu = cpu_delta(cpu_before, process_cpu(cluster), done - healed)
    shipped = batch_figures(batches_before, await asyncio.to_thread(batches, control, a))
    applied = (await asyncio.to_thread(lag_row, control, table, a, b))["count"] - before
    seconds = done - healed
    return {
        "backlog_changes": backlog,
        "applied_after_heal": applied,
        "catch_up_s": round(seconds, 3),
        "catch_up_items_s": round(backlog / seconds, 1) if seconds else None,
        "shipped": shipped,
        "cores": cpu,
        "loadavg": os.getloadavg(),
    }


async def phase_memory(args, cluster: LocalCluster, control: ControlClient) -> dict:
    a, b = args.regions
    table = "repl-memory"
    await asyncio.to_thread(make_global, router_port(cluster, a), table, b)
    writer = Writer(router_port(cluster, a), table, args.rate, args.item_bytes, args.connections, "m")
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    samples: list[dict] = []
    marks: dict[str, float] = {}
    stop_sampling = asyncio.Event()

    async def sample() -> None:
        while not stop_sampling.is_set():
            row = {"t_s": round(loop.time() - t0, 2)}
            for region, process in cluster.replicators.items():
                row[f"rss_kb_{region}"] = rss_kb(process.pid)
            row["pending"] = (await asyncio.to_thread(control.pending))[(a, b)]
            samples.append(row)
            await asyncio.sleep(max(0.0, SAMPLE_INTERVAL_S - (loop.time() - t0 - row["t_s"])))

    sampler = asyncio.create_task(sample())
    stop_writing = asyncio.Event()
    writing = asyncio.create_task(writer.run(stop_writing))
    _say(f"memory: {args.baseline_s:g} s of load, then a {args.cut_s:g} s cut under load")
    await asyncio.sleep(args.baseline_s)
    await asyncio.to_thread(control.link_cut, a, b)
    marks["cut_s"] = loop.time() - t0
    await asyncio.sleep(args.cut_s)
    stop_writing.set()
    await writing
    marks["heal_s"] = loop.time() - t0
    catch_up = await _heal_and_time(args, cluster, control, table)
    marks["drained_s"] = loop.time() - t0
    await asyncio.sleep(5 * SAMPLE_INTERVAL_S)
    stop_sampling.set()
    await sampler
    result = {
        "written_items": writer.acked,
        "written_items_s": round(writer.acked / writer.elapsed_s, 1),
        "marks": {k: round(v, 2) for k, v in marks.items()},
        "catch_up": catch_up,
        "rss_during_cut": {region: _rss_stats(samples, region, marks) for region in args.regions},
        "samples": samples,
    }
    _say(f"memory: {json.dumps({k: v for k, v in result.items() if k != 'samples'})}")
    return result


def _rss_stats(samples: list[dict], region: str, marks: dict[str, float]) -> dict:
    """RSS during the cut: first, last, min, max and the least-squares slope."""
    inside = [(s["t_s"], s[f"rss_kb_{region}"] / 1024) for s in samples if marks["cut_s"] <= s["t_s"] <= marks["heal_s"]]
    if len(inside) < 2:
        return {}
    n = len(inside)
    mean_t = sum(t for t, _ in inside) / n
    mean_m = sum(m for _, m in inside) / n
    var = sum((t - mean_t) ** 2 for t, _ in inside)
    slope = sum((t - mean_t) * (m - mean_m) for t, m in inside) / var if var else 0.0
    values = [m for _, m in inside]
    return {
        "first_mib": round(values[0], 1), "last_mib": round(values[-1], 1),
        "min_mib": round(min(values), 1), "max_mib": round(max(values), 1),
        "slope_mib_per_min": round(slope * 60, 3),
    }  # fmt: skip


def plot(memory: dict, regions: list[str], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples = memory["samples"]
    t = [s["t_s"] for s in samples]
    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(9, 6), height_ratios=(2, 1))
    for region, role in zip(regions, ("sender", "receiver")):
        top.plot(t, [s[f"rss_kb_{region}"] / 1024 for s in samples], label=f"{region} replicator ({role})")
    bottom.plot(t, [s["pending"] for s in samples], color="tab:red", label=f"pending {regions[0]} -> {regions[1]}")
    marks = memory["marks"]
    for axis in (top, bottom):
        axis.axvspan(marks["cut_s"], marks["heal_s"], color="0.9", label="link cut (writes continue)" if axis is top else None)
        axis.axvline(marks["drained_s"], color="0.5", linestyle=":", label="backlog drained" if axis is top else None)
        axis.grid(alpha=0.3)
    top.set_ylabel("RSS (MiB)")
    top.set_ylim(bottom=0)
    bottom.set_ylabel("pending changes")
    bottom.set_xlabel("seconds")
    top.legend(loc="upper left", fontsize=8)
    bottom.legend(loc="upper left", fontsize=8)
    top.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --- main ------------------------------------------------------------------------------------


async def run_phases(args, cluster: LocalCluster) -> dict:
    control = ControlClient(endpoint=cluster.endpoints[args.regions[0]], timeout_s=30.0)
    results = {}
    for phase in args.phases:
        results[phase] = await {"sustained": phase_sustained, "catchup": phase_catchup, "memory": phase_memory}[phase](
            args, cluster, control
        )
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    scratch = None
    if args.data_dir is None:
        scratch = args.data_dir = Path(tempfile.mkdtemp(prefix="meridian-bench-repl-"))
    cluster = LocalCluster(
        args.regions, args.nodes_per_region, None, args.data_dir, sync=False, link_latency_ms=args.link_latency_ms
    )
    started = time.time()
    load_before = os.getloadavg()
    try:
        cluster.start()
        _say("processes: " + ", ".join(f"{p.name}={p.pid}" for p in cluster.processes()))
        results = uvloop.run(run_phases(args, cluster))
    finally:
        cluster.stop()
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    record = {
        "started_at": started,
        "ended_at": time.time(),
        "command": "python bench/replication.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "loadavg_before": load_before, "loadavg_after": os.getloadavg()},  # fmt: skip
        "results": results,
    }
    out = args.out_dir / f"{stamp}-replication.json"
    out.write_text(json.dumps(record, indent=1))
    _say(f"results in {out}")
    if "memory" in results:
        png = args.out_dir / f"{stamp}-replication-rss.png"
        title = (f"replicator RSS during a {args.cut_s:g} s cut at {args.rate:g} items/s offered "
                 f"({args.link_latency_ms:g} ms link, {args.nodes_per_region} node/region)")  # fmt: skip
        plot(results["memory"], args.regions, png, title)
        _say(f"plot in {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
