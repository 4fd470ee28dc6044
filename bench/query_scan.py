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
    ``LastEvaluatedKey`` from each page (see "the measuring client" below),
    so it costs a fraction of what any server spends on the same page.
  * Goals (issue 5): Meridian embedded at least 2x dynalite's Query and Scan
    throughput, Scan memory flat as the table grows. With ``--profile auto``
    (the default), each throughput goal missed gets one more run of that op
    against meridian-embedded, not counted, under
    ``py-spy record -r 200 -f raw``; the functions with the most samples,
    own and inclusive, are printed and stored with the results.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import random
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from statistics import median

# Dependencies of Meridian itself (pyproject.toml), so present wherever `meridian` is:
# orjson for JSON, httptools (llhttp) and uvloop for a client costing far less than the servers.
import httptools
import orjson
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent))

import dynamo  # noqa: E402  (bench/ is a folder of scripts, not a package)
import report  # noqa: E402
from run import _csv, _environment, _pinning, _positive, _raise_system_exit  # noqa: E402
from targets import BENCH_DIR, TARGETS, RunningTarget, TargetUnavailable, rss_kb, start_target  # noqa: E402

TABLE = "qscan"  # DynamoDB table names have at least 3 characters
#: Items per Query page (the request's ``Limit``).
QUERY_PAGE_ITEMS = 100
PK_DIGITS = 6
#: What an item costs besides its ``data`` value, as DynamoDB sizes items:
#: attribute names, the partition key, and at most 3 bytes for ``sk`` (a
#: number of up to 3 digits is 2-3 bytes; larger tables' numbers are 1 more).
ITEM_OVERHEAD_BYTES = len("pk") + 1 + PK_DIGITS + len("sk") + 3 + len("data")
RSS_SAMPLE_INTERVAL_S = 0.02
#: One Query page in this many is decoded in full and checked against what
#: the client read from it cheaply (see ``page_count_and_last_key``); so is
#: the first page of every scan.
VERIFY_EVERY_PAGES = 64
#: Bytes after ``"LastEvaluatedKey":`` that certainly hold the whole key (a
#: key is at most 2048 + 1024 bytes of values, in JSON with its names).
LAST_KEY_JSON_BYTES_MAX = 16 * 1024
CONNECT_TIMEOUT_S = 10.0
#: A Query run that has not ended this long after its duration has a server hung.
QUERY_OVERRUN_S = 60.0
#: After a load (or an abandoned scan), wait until the server uses less than
#: this much CPU, so a measurement does not share the core with the server's
#: own background work (RocksDB flushes and compactions): what is measured is
#: the table as loaded, not the load's tail. Up to SETTLE_TIMEOUT_S.
SETTLE_CORES_MAX = 0.05
SETTLE_WINDOW_S = 1.0
SETTLE_TIMEOUT_S = 60.0
READY_TIMEOUT_S = 60.0
#: Throughput goal of issue 5: Meridian embedded vs dynalite.
GOAL_RATIO = 2.0
#: Scan memory counts as flat if what a scan adds to the server's RSS (its
#: peak during the scan minus its RSS just before) grows, from the smallest
#: table to the largest, by less than this fraction of the data added to the
#: table: a scan holding the table, or any share of it, would add at least
#: that much. (RSS before the scan grows too, while loading: memtables and
#: the block cache fill up; the tables show it separately.)
FLAT_RISE_OF_DATA_MAX = 0.10
PROFILE_RATE_HZ = 200
#: Functions listed by own samples; by inclusive samples, PROFILE_TOP_INCLUSIVE
#: (more, because the outermost frames, event loop and HTTP protocol, come first).
PROFILE_TOP = 12
PROFILE_TOP_INCLUSIVE = 20
#: Source lines listed by own samples (py-spy has no native frames: a line
#: calling into RocksDB or orjson gets their time).
PROFILE_TOP_LINES = 8
PROFILED_TARGET = "meridian-embedded"
QUERY_CONDITION = "pk = :p"


def _say(message: str) -> None:
    print(f"query_scan: {message}", file=sys.stderr, flush=True)


# --- the data -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """Where every item is: partition ``p`` holds sort keys 0 .. partition_items - 1."""

    partition_items: int
    data_len: int
    seed: int

    @staticmethod
    def pk(partition: int) -> str:
        return f"p{partition:0{PK_DIGITS}d}"

    def items(self, partition: int) -> list[dict]:
        """The items of one partition; the same for every target (seeded per partition)."""
        rng = random.Random(self.seed * 1_000_003 + partition)
        pk = {"S": self.pk(partition)}
        half = (self.data_len + 1) // 2
        return [
            {"pk": pk, "sk": {"N": str(sk)}, "data": {"S": rng.randbytes(half).hex()[: self.data_len]}}
            for sk in range(self.partition_items)
        ]


def load(port: int, layout: Layout, partitions: range, loaders: int) -> None:
    """Write ``partitions`` with BatchWriteItem over ``loaders`` concurrent connections."""
    todo = iter(partitions)
    lock = threading.Lock()

    def loader(client: dynamo.DynamoClient) -> None:
        while True:
            with lock:
                partition = next(todo, None)
            if partition is None:
                return
            items = layout.items(partition)
            for start in range(0, len(items), dynamo.BATCH_WRITE_ITEMS_MAX):
                dynamo.write_batch(client, TABLE, items[start : start + dynamo.BATCH_WRITE_ITEMS_MAX])

    _run_clients(port, [loader] * loaders)


def _run_clients(port: int, work: list[Callable[[dynamo.DynamoClient], None]]) -> None:
    """Run each function in its own thread with its own connection; re-raise the first failure."""
    failures: list[BaseException] = []

    def body(fn: Callable[[dynamo.DynamoClient], None]) -> None:
        client = dynamo.DynamoClient(port)
        try:
            fn(client)
        except BaseException as error:  # reported to the caller below
            failures.append(error)
        finally:
            client.close()

    threads = [threading.Thread(target=body, args=(fn,), daemon=True) for fn in work]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]


# --- measurements --------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadRun:
    target: str
    table_items: int
    items: int
    seconds: float
    server_cpu_s: float
    settle_s: float


@dataclass(frozen=True)
class ScanRun:
    round: int
    target: str
    table_items: int
    items: int
    pages: int
    finished: bool
    seconds: float
    server_cpu_s: float
    client_cpu_s: float
    rss_before_kb: int
    rss_max_kb: int
    rss_samples: int


@dataclass(frozen=True)
class QueryRun:
    round: int
    target: str
    pages: int
    items: int
    errors: int
    seconds: float
    latency_p50_ms: float
    latency_p99_ms: float
    server_cpu_s: float
    client_cpu_s: float


def _client_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class RssSampler:
    """Peak resident memory of fixed processes, sampled by a thread until ``stop()``."""

    def __init__(self, pids: list[int], interval_s: float = RSS_SAMPLE_INTERVAL_S):
        self.pids = pids
        self.interval_s = interval_s
        self.peak_kb = rss_kb(pids)
        self.samples = 1
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def __repr__(self) -> str:
        return f"<RssSampler pids={self.pids} peak={self.peak_kb} KiB samples={self.samples}>"

    def _sample(self) -> None:
        while not self._stopping.wait(self.interval_s):
            self.peak_kb = max(self.peak_kb, rss_kb(self.pids))
            self.samples += 1

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()
        self.peak_kb = max(self.peak_kb, rss_kb(self.pids))
        self.samples += 1


# --- the measuring client ------------------------------------------------------------------------
#
# http.client costs ~120 µs of CPU per request here, as much as Meridian
# spends serving a 100-item Query page: measured with it, the client would be
# the bottleneck. So the measuring client is one uvloop event loop with one
# asyncio.Protocol per connection and httptools (llhttp, in C) parsing the
# answers; and it reads from each page only what paginating needs, ``Count``
# and ``LastEvaluatedKey``, instead of decoding every item (orjson takes
# ~0.6 µs per item, a third of what a server spends producing it). Pages are
# still checked: one in VERIFY_EVERY_PAGES is decoded in full and compared.

_COUNT = re.compile(rb'"Count":\s*(\d+)')
_LAST_KEY = b'"LastEvaluatedKey":'
_JSON = json.JSONDecoder()


def page_count_and_last_key(raw: bytes) -> tuple[int, dict | None]:
    """A page's ``Count`` and ``LastEvaluatedKey`` without decoding its items.

    Safe for this benchmark's items only: their attribute names are ``pk``,
    ``sk`` and ``data``, and their values digits and hex, so neither marker
    can occur inside an item.
    """
    count = _COUNT.search(raw)
    if count is None:
        raise RuntimeError(f"no Count in the page: {raw[:200]!r}")
    at = raw.rfind(_LAST_KEY)
    if at < 0:
        return int(count.group(1)), None
    start = at + len(_LAST_KEY)
    window = raw[start : start + LAST_KEY_JSON_BYTES_MAX].decode("utf-8", "replace")
    return int(count.group(1)), _JSON.raw_decode(window.lstrip())[0]


def verify_page(raw: bytes, count: int, last_key: dict | None) -> None:
    """Decode the whole page and fail loudly if the cheap reading got it wrong."""
    page = orjson.loads(raw)
    if len(page["Items"]) != count or page["Count"] != count or page.get("LastEvaluatedKey") != last_key:
        raise RuntimeError(
            f"page check failed: {len(page['Items'])} items, Count {page['Count']}, "
            f"LastEvaluatedKey {page.get('LastEvaluatedKey')!r}; read as {count}, {last_key!r}"
        )


class Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection, one request at a time."""

    def __init__(self, port: int):
        self.port = port
        self.requests = 0
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._body: list[bytes] = []
        self._waiter: asyncio.Future | None = None
        self._heads: dict[str, bytes] = {}

    def __repr__(self) -> str:
        return f"<Connection 127.0.0.1:{self.port} open={self._transport is not None} requests={self.requests}>"

    @classmethod
    async def open(cls, port: int) -> Connection:
        loop = asyncio.get_running_loop()
        _, connection = await asyncio.wait_for(
            loop.create_connection(lambda: cls(port), "127.0.0.1", port), CONNECT_TIMEOUT_S
        )
        return connection

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(ConnectionError(f"connection to port {self.port} lost: {exc}"))

    def data_received(self, data: bytes) -> None:
        self._parser.feed_data(data)

    def on_body(self, body: bytes) -> None:  # httptools callback
        self._body.append(body)

    def on_message_complete(self) -> None:  # httptools callback
        body, self._body = b"".join(self._body), []
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result((self._parser.get_status_code(), body))

    def _head(self, action: str) -> bytes:
        head = self._heads.get(action)
        if head is None:
            target = f"DynamoDB_20120810.{action}"
            headers = {**dynamo.HEADERS, "Host": f"127.0.0.1:{self.port}", "X-Amz-Target": target}
            head = "POST / HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            self._heads[action] = head = head.encode()
        return head

    async def call(self, action: str, body: bytes) -> bytes:
        """POST one request; the answer's body, or DynamoError for a non-200 answer."""
        if self._transport is None:
            raise ConnectionError(f"connection to port {self.port} is closed")
        self._waiter = asyncio.get_running_loop().create_future()
        self._transport.writelines((self._head(action), b"Content-Length: %d\r\n\r\n" % len(body), body))
        status, answer = await self._waiter
        self.requests += 1
        if status != 200:
            raise dynamo.DynamoError(action, status, answer)
        return answer

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


def _run_async(coroutine) -> object:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coroutine)


async def _scan_all(port: int, segments: int, timeout_s: float) -> tuple[int, int, bool]:
    """Items and pages read, and whether the scan finished within ``timeout_s``."""
    counts = [[0, 0] for _ in range(segments)]  # items, pages per segment

    async def segment(number: int) -> None:
        connection = await Connection.open(port)
        body: dict = {"TableName": TABLE}
        if segments > 1:
            body |= {"Segment": number, "TotalSegments": segments}
        tally = counts[number]
        try:
            while True:
                raw = await connection.call("Scan", orjson.dumps(body))
                count, last_key = page_count_and_last_key(raw)
                if tally[1] == 0:
                    verify_page(raw, count, last_key)
                tally[0] += count
                tally[1] += 1
                if last_key is None:
                    return
                body["ExclusiveStartKey"] = last_key
        finally:
            connection.close()

    try:
        await asyncio.wait_for(asyncio.gather(*(segment(n) for n in range(segments))), timeout_s)
        finished = True
    except TimeoutError:
        finished = False
    return sum(c[0] for c in counts), sum(c[1] for c in counts), finished


def full_scan(target: RunningTarget, segments: int, timeout_s: float) -> tuple[int, int, bool, float, float, float, RssSampler]:
    """Scan the whole table, paginated (1 MB pages), giving up after ``timeout_s``.

    Items and pages read, whether it finished, seconds, server and client CPU seconds, and memory.
    """
    sampler = RssSampler(target.pids())
    server_before, client_before, started = target.cpu_seconds(), _client_cpu_s(), time.perf_counter()
    try:
        items, pages, finished = _run_async(_scan_all(target.port, segments, timeout_s))
    finally:
        seconds = time.perf_counter() - started
        client_cpu_s = _client_cpu_s() - client_before
        sampler.stop()
    return items, pages, finished, seconds, target.cpu_seconds() - server_before, client_cpu_s, sampler


def settle(target: RunningTarget) -> float:
    """Wait until ``target`` is idle (below SETTLE_CORES_MAX), at most SETTLE_TIMEOUT_S; seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < SETTLE_TIMEOUT_S:
        before = target.cpu_seconds()
        time.sleep(SETTLE_WINDOW_S)
        if target.cpu_seconds() - before < SETTLE_CORES_MAX * SETTLE_WINDOW_S:
            break
    return time.monotonic() - started


@dataclass
class _QueryTally:
    pages: int = 0
    items: int = 0
    errors: int = 0
    latencies_s: list[float] = field(default_factory=list)


async def _query_client(
    port: int, layout: Layout, partitions: int, pages_max: int, deadline: float, rng: random.Random
) -> _QueryTally:
    """One closed-loop client: random partition, up to ``pages_max`` pages of it, again, until ``deadline``."""
    tally = _QueryTally()
    latencies = tally.latencies_s
    connection = await Connection.open(port)
    try:
        while time.monotonic() < deadline:
            values = {":p": {"S": layout.pk(rng.randrange(partitions))}}
            body = {
                "TableName": TABLE, "KeyConditionExpression": QUERY_CONDITION,
                "ExpressionAttributeValues": values, "Limit": QUERY_PAGE_ITEMS,
            }  # fmt: skip
            for page_no in range(pages_max):
                sent = time.perf_counter()
                try:
                    raw = await connection.call("Query", orjson.dumps(body))
                except dynamo.DynamoError:
                    tally.errors += 1
                    break
                except OSError:  # ConnectionError included: count it, reconnect, go on
                    tally.errors += 1
                    connection.close()
                    connection = await Connection.open(port)
                    break
                latencies.append(time.perf_counter() - sent)
                count, last_key = page_count_and_last_key(raw)
                if tally.pages % VERIFY_EVERY_PAGES == 0:
                    verify_page(raw, count, last_key)
                tally.pages += 1
                tally.items += count
                if count != min(QUERY_PAGE_ITEMS, layout.partition_items - page_no * QUERY_PAGE_ITEMS):
                    tally.errors += 1  # a short or long page: counted, so it shows in the table
                if last_key is None:
                    break
                body["ExclusiveStartKey"] = last_key
    finally:
        connection.close()
    return tally


def query_load(
    target: RunningTarget, layout: Layout, partitions: int, args: argparse.Namespace, duration_s: float, seed: int
) -> tuple[list[_QueryTally], float, float, float]:
    """``--clients`` closed-loop clients for ``duration_s``; tallies, wall seconds, server and client CPU."""

    async def clients() -> list[_QueryTally]:
        deadline = time.monotonic() + duration_s
        return await asyncio.wait_for(asyncio.gather(*(
            _query_client(target.port, layout, partitions, args.query_pages, deadline, random.Random(seed * 1000 + i))
            for i in range(args.clients)
        )), duration_s + QUERY_OVERRUN_S)  # fmt: skip

    server_before, client_before, started = target.cpu_seconds(), _client_cpu_s(), time.perf_counter()
    tallies = _run_async(clients())
    seconds = time.perf_counter() - started
    return tallies, seconds, target.cpu_seconds() - server_before, _client_cpu_s() - client_before


def _percentile_ms(sorted_s: list[float], fraction: float) -> float:
    if not sorted_s:
        return 0.0
    return sorted_s[min(len(sorted_s) - 1, int(fraction * len(sorted_s)))] * 1000


# --- profiling ---------------------------------------------------------------------------------------


def profiled(target: RunningTarget, raw_path: Path, work: Callable[[], object]) -> dict | None:
    """Run ``work`` with py-spy sampling ``target`` (raw collapsed stacks); the top functions."""
    py_spy = shutil.which("py-spy", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if py_spy is None:
        _say("py-spy not found (bash bench/setup.sh); not profiling")
        return None
    # --nonblocking: sample without pausing the server, so it runs at speed.
    recorder = subprocess.Popen(
        [py_spy, "record", "--pid", str(target.pid), "--rate", str(PROFILE_RATE_HZ), "--format", "raw",
         "--nonblocking", "--output", str(raw_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(1.0)  # py-spy attaches before the work starts
    started = time.perf_counter()
    try:
        work()
    finally:
        seconds = time.perf_counter() - started
        recorder.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
        try:
            _, stderr = recorder.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            recorder.kill()
            _, stderr = recorder.communicate()
    if recorder.returncode != 0 or not raw_path.exists():
        _say(f"py-spy failed (exit {recorder.returncode}): {stderr.strip()[-500:]}")
        return None
    return summarize_profile(raw_path.read_text(), seconds)


def _function(frame: str) -> str:
    """``name (path/to/module.py:123)`` -> ``name (to/module.py)``: one entry per function, not per line."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rpartition(":")[0] or where.rstrip(")")
    return f"{name} ({'/'.join(Path(path).parts[-2:])})"


def summarize_profile(raw: str, seconds: float) -> dict:
    """Top functions by own samples (innermost frame) and inclusive samples (anywhere on the stack)."""
    own: Counter[str] = Counter()
    own_lines: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        raw_frames = stack.split(";")
        frames = [_function(f) for f in raw_frames]
        total += count
        own[frames[-1]] += count
        own_lines[raw_frames[-1]] += count
        for name in set(frames):
            inclusive[name] += count
    return {
        "samples": total,
        "seconds": seconds,
        # py-spy leaves out idle samples (waiting in epoll), so this is how busy the server was.
        "busy_fraction": total / (seconds * PROFILE_RATE_HZ) if seconds else 0.0,
        "own": [(name, n / total) for name, n in own.most_common(PROFILE_TOP)] if total else [],
        "own_lines": [(line, n / total) for line, n in own_lines.most_common(PROFILE_TOP_LINES)] if total else [],
        "inclusive": [(name, n / total) for name, n in inclusive.most_common(PROFILE_TOP_INCLUSIVE)] if total else [],
    }


def profile_markdown(op: str, summary: dict) -> str:
    """Where the samples were (own: by function, then by line), and what they were under (inclusive)."""
    lines = [
        f"**{op}** on {PROFILED_TARGET}: {summary['samples']:,} samples in {summary['seconds']:.1f} s "
        f"(server busy {summary['busy_fraction']:.0%} of the time at {PROFILE_RATE_HZ} Hz)",
        "",
        "| own % | function |",
        "|---:|---|",
    ]
    lines += [f"| {share:.1%} | `{name}` |" for name, share in summary["own"]]
    lines += ["", "| own % | line |", "|---:|---|"]
    lines += [f"| {share:.1%} | `{line}` |" for line, share in summary["own_lines"]]
    lines += ["", "| inclusive % | function |", "|---:|---|"]
    lines += [f"| {share:.1%} | `{name}` |" for name, share in summary["inclusive"]]
    return "\n".join(lines)


# --- the run ------------------------------------------------------------------------------------------


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


class Bench:
    """The running targets, and what was measured on them so far."""

    def __init__(self, args: argparse.Namespace, layout: Layout):
        self.args = args
        self.layout = layout
        self.running: dict[str, RunningTarget] = {}
        self.skipped: dict[str, str] = {}
        self.loads: list[LoadRun] = []
        self.scans: list[ScanRun] = []
        self.queries: list[QueryRun] = []

    def __repr__(self) -> str:
        done = f"loads={len(self.loads)} scans={len(self.scans)} queries={len(self.queries)}"
        return f"<Bench running={list(self.running)} {done}>"

    def names(self) -> list[str]:
        return [n for n in self.args.targets if n in self.running]

    def rotated(self, round_no: int) -> list[str]:
        names = self.names()
        shift = (round_no - 1) % max(len(names), 1)
        return names[shift:] + names[:shift]

    def guarded(self, name: str, what: str, work: Callable[[RunningTarget], None]) -> None:
        """Run ``work``; a target that fails (or dies) is stopped and dropped, the others go on."""
        target = self.running[name]
        try:
            work(target)
            if target.alive:
                return
            error: object = "exited"
        except (dynamo.DynamoError, OSError, http.client.HTTPException, RuntimeError, KeyError, ValueError) as failure:
            error = failure
        self.skipped[name] = f"failed during {what}: {error}; log {target.log_path}:\n{target.log_tail()}"
        _say(f"dropping {name}: {self.skipped[name]}")
        target.stop()
        del self.running[name]

    def start(self, name: str, work_dir: Path, log_dir: Path, server_cpus: str | None) -> None:
        data_dir = work_dir / name
        data_dir.mkdir()
        target = start_target(TARGETS[name], data_dir, log_dir, server_cpus)
        client = dynamo.DynamoClient(target.port)
        try:
            dynamo.wait_ready(client, READY_TIMEOUT_S)
            dynamo.create_table(client, TABLE, READY_TIMEOUT_S, sort_key_type="N")
        except BaseException as error:
            target.stop()
            if isinstance(error, Exception):
                raise TargetUnavailable(f"{name}: {error}\nlog {target.log_path}:\n{target.log_tail()}") from error
            raise
        finally:
            client.close()
        self.running[name] = target
        _say(f"{name} ready on port {target.port} (pid {target.pid})")

    def grow(self, table_items: int, loaded_items: int) -> None:
        """Load every target from ``loaded_items`` to ``table_items``, one target at a time."""
        partitions = range(loaded_items // self.layout.partition_items, table_items // self.layout.partition_items)
        for name in self.names():

            def work(target: RunningTarget) -> None:
                server_before, started = target.cpu_seconds(), time.perf_counter()
                load(target.port, self.layout, partitions, self.args.loaders)
                seconds, server_cpu_s = time.perf_counter() - started, target.cpu_seconds() - server_before
                run = LoadRun(name, table_items, table_items - loaded_items, seconds, server_cpu_s, settle(target))
                self.loads.append(run)
                _say(f"loaded {name} to {table_items:,} items: {run.items:,} in {run.seconds:.1f} s "
                     f"({run.items / run.seconds:,.0f} items/s), then idle after {run.settle_s:.1f} s")  # fmt: skip

            self.guarded(name, f"load to {table_items:,} items", work)

    def scan_rounds(self, table_items: int) -> None:
        """``--rounds`` full scans per target; a target whose scan times out is not scanned again at this size."""
        timed_out: set[str] = set()
        for round_no in range(1, self.args.rounds + 1):
            for name in [n for n in self.rotated(round_no) if n not in timed_out]:

                def work(target: RunningTarget) -> None:
                    rss_before = rss_kb(target.pids())
                    scanned = full_scan(target, self.args.scan_segments, self.args.scan_timeout_s)
                    items, pages, finished, seconds, server_cpu_s, client_cpu_s, sampler = scanned
                    run = ScanRun(round_no, name, table_items, items, pages, finished, seconds, server_cpu_s,
                                  client_cpu_s, rss_before, sampler.peak_kb, sampler.samples)  # fmt: skip
                    self.scans.append(run)
                    _say(f"scan {table_items:>9,} round {round_no} {name:<17} {items / seconds:>9,.0f} items/s  "
                         f"{pages} pages  RSS {rss_before / 1024:.0f} -> max {sampler.peak_kb / 1024:.0f} MB"
                         + ("" if items == table_items else f"  INCOMPLETE: {items:,} items")
                         + ("" if finished else f" (timed out after {seconds:.0f} s)"))  # fmt: skip
                    if not finished:
                        timed_out.add(name)
                        settle(target)  # the page it was serving when abandoned

                self.guarded(name, f"scan of {table_items:,} items", work)

    def query_once(self, name: str, duration_s: float, round_no: int | None) -> None:
        def work(target: RunningTarget) -> None:
            partitions = self.args.items // self.layout.partition_items
            tallies, seconds, server_cpu_s, client_cpu_s = query_load(
                target, self.layout, partitions, self.args, duration_s, self.args.seed * 1000 + (round_no or 0)
            )
            if round_no is None:
                return
            latencies = sorted(s for t in tallies for s in t.latencies_s)
            run = QueryRun(
                round_no, name, sum(t.pages for t in tallies), sum(t.items for t in tallies),
                sum(t.errors for t in tallies), seconds, _percentile_ms(latencies, 0.50),
                _percentile_ms(latencies, 0.99), server_cpu_s, client_cpu_s,
            )  # fmt: skip
            self.queries.append(run)
            _say(f"query round {round_no} {name:<17} {run.pages / seconds:>7,.0f} pages/s  "
                 f"{run.items / seconds:>9,.0f} items/s  p50 {run.latency_p50_ms:.2f} ms  "
                 f"client {client_cpu_s / seconds:.2f} cores  errors {run.errors}")  # fmt: skip

        self.guarded(name, "Query", work)

    def query_rounds(self) -> None:
        if self.args.warmup_s > 0:
            for name in self.names():
                self.query_once(name, self.args.warmup_s, None)
        for round_no in range(1, self.args.rounds + 1):
            for name in self.rotated(round_no):
                self.query_once(name, self.args.query_s, round_no)


# --- summaries ------------------------------------------------------------------------------------


def _by(runs: list, *keys: str) -> dict[tuple, list]:
    grouped: dict[tuple, list] = {}
    for run in runs:
        grouped.setdefault(tuple(getattr(run, k) for k in keys), []).append(run)
    return grouped


def _median(values) -> float | None:
    """The median, or None for no values (every run of a target read nothing)."""
    values = list(values)
    return median(values) if values else None


def _num(value: float | None, spec: str = ",.0f") -> str:
    return "—" if value is None else format(value, spec)


def query_summary(runs: list[QueryRun]) -> dict[str, dict]:
    out = {}
    for (target,), group in _by(runs, "target").items():
        out[target] = {
            "rounds": len(group),
            "pages_per_s": median(r.pages / r.seconds for r in group),
            "items_per_s": median(r.items / r.seconds for r in group),
            "latency_p50_ms": median(r.latency_p50_ms for r in group),
            "latency_p99_ms": median(r.latency_p99_ms for r in group),
            "server_cpu_us_per_page": _median(r.server_cpu_s / r.pages * 1e6 for r in group if r.pages),
            "server_cores": median(r.server_cpu_s / r.seconds for r in group),
            "client_cores": median(r.client_cpu_s / r.seconds for r in group),
            "client_cpu_us_per_page": _median(r.client_cpu_s / r.pages * 1e6 for r in group if r.pages),
            "errors": sum(r.errors for r in group),
            "pages_per_s_by_round": [r.pages / r.seconds for r in sorted(group, key=lambda r: r.round)],
        }
    return out


def scan_summary(runs: list[ScanRun]) -> dict[tuple[int, str], dict]:
    out = {}
    for (table_items, target), group in _by(runs, "table_items", "target").items():
        out[(table_items, target)] = {
            "rounds": len(group),
            "items_per_s": median(r.items / r.seconds for r in group),
            "seconds": median(r.seconds for r in group),
            "pages": median(r.pages for r in group),
            "server_cpu_us_per_1k_items": _median(r.server_cpu_s / r.items * 1e9 for r in group if r.items),
            "server_cores": median(r.server_cpu_s / r.seconds for r in group),
            "client_cores": median(r.client_cpu_s / r.seconds for r in group),
            "rss_before_mb": median(r.rss_before_kb for r in group) / 1024,
            "rss_max_mb": max(r.rss_max_kb for r in group) / 1024,
            "rss_rise_mb": max(r.rss_max_kb - r.rss_before_kb for r in group) / 1024,
            "incomplete": sum(r.items != table_items for r in group),
            "timed_out": sum(not r.finished for r in group),
            "items_per_s_by_round": [r.items / r.seconds for r in sorted(group, key=lambda r: r.round)],
        }
    return out


def _times(mine: float | None, theirs: float | None) -> str:
    return f"{mine / theirs:.2f}×" if mine is not None and theirs else "—"


def _header(cells: list[str], left: int) -> list[str]:
    return ["| " + " | ".join(cells) + " |", "|" + "|".join(["---"] * left + ["---:"] * (len(cells) - left)) + "|"]


def markdown(args: argparse.Namespace, queries: dict, scans: dict, loads: list[LoadRun]) -> dict[str, str]:
    peers = [p for p in report.PEERS if p in args.targets]
    tables = {}
    lines = _header(["Target", "pages/s", "items/s", "page p50 ms", "page p99 ms", "server CPU µs/page",
                     "server cores", "client cores", "client CPU µs/page"]
                    + [f"vs {report.PEERS[p]}" for p in peers] + ["errors"], 1)  # fmt: skip
    for target in args.targets:
        s = queries.get(target)
        if s is None:
            continue
        row = [target, f"{s['pages_per_s']:,.0f}", f"{s['items_per_s']:,.0f}", f"{s['latency_p50_ms']:.2f}",
               f"{s['latency_p99_ms']:.2f}", _num(s["server_cpu_us_per_page"]), f"{s['server_cores']:.2f}",
               f"{s['client_cores']:.2f}", _num(s["client_cpu_us_per_page"])]  # fmt: skip
        row += [_times(s["pages_per_s"], queries.get(p, {}).get("pages_per_s")) for p in peers]
        lines.append("| " + " | ".join(row + [str(s["errors"])]) + " |")
    tables["query"] = "\n".join(lines)

    lines = _header(["Table items", "Target", "items/s", "scan s", "pages", "server CPU µs/1k items",
                     "server cores", "client cores", "RSS before MB", "max RSS during scan MB", "scan's rise MB"]
                    + [f"vs {report.PEERS[p]}" for p in peers] + ["complete"], 2)  # fmt: skip
    for size in args.scan_sizes:
        for target in args.targets:
            s = scans.get((size, target))
            if s is None:
                continue
            row = [f"{size:,}", target, f"{s['items_per_s']:,.0f}", f"{s['seconds']:.1f}", f"{s['pages']:,.0f}",
                   _num(s["server_cpu_us_per_1k_items"]), f"{s['server_cores']:.2f}", f"{s['client_cores']:.2f}",
                   f"{s['rss_before_mb']:,.0f}", f"{s['rss_max_mb']:,.0f}", f"{s['rss_rise_mb']:,.1f}"]  # fmt: skip
            row += [_times(s["items_per_s"], scans.get((size, p), {}).get("items_per_s")) for p in peers]
            if not s["incomplete"]:
                row.append("yes")
            elif s["timed_out"]:
                row.append(f"no: timed out after {args.scan_timeout_s:g} s ({s['timed_out']} of {s['rounds']} rounds)")
            else:
                row.append(f"no ({s['incomplete']} of {s['rounds']} rounds)")
            lines.append("| " + " | ".join(row) + " |")
    tables["scan"] = "\n".join(lines)

    lines = _header(["Table items", "Target", "items loaded", "load s", "items/s", "server cores", "idle after s"], 2)
    for run in loads:
        lines.append(f"| {run.table_items:,} | {run.target} | {run.items:,} | {run.seconds:.1f} | "
                     f"{run.items / run.seconds:,.0f} | {run.server_cpu_s / run.seconds:.2f} | {run.settle_s:.1f} |")  # fmt: skip
    tables["load"] = "\n".join(lines)

    lines = _header(["Measure", "Target"] + [f"round {i + 1}" for i in range(args.rounds)], 2)
    for target in args.targets:
        if target in queries:
            cells = [f"{v:,.0f}" for v in queries[target]["pages_per_s_by_round"]]
            lines.append("| " + " | ".join(["Query pages/s", target, *cells]) + " |")
    for size in args.scan_sizes:
        for target in args.targets:
            if (size, target) in scans:
                cells = [f"{v:,.0f}" for v in scans[(size, target)]["items_per_s_by_round"]]
                lines.append("| " + " | ".join([f"Scan items/s, {size:,}", target, *cells]) + " |")
    tables["rounds"] = "\n".join(lines)
    return tables


def goals(args: argparse.Namespace, queries: dict, scans: dict) -> tuple[str, dict[str, bool | None]]:
    """The issue's goals against this run; ``met`` is None where the run cannot tell."""
    me, peer, full = PROFILED_TARGET, "dynalite", args.items
    query_ratio = _ratio(queries.get(me, {}).get("pages_per_s"), queries.get(peer, {}).get("pages_per_s"))
    scan_ratio = _ratio(scans.get((full, me), {}).get("items_per_s"), scans.get((full, peer), {}).get("items_per_s"))
    met: dict[str, bool | None] = {
        "Query": None if query_ratio is None else query_ratio >= GOAL_RATIO,
        "Scan": None if scan_ratio is None else scan_ratio >= GOAL_RATIO,
    }
    sizes = [size for size in args.scan_sizes if (size, me) in scans]
    if len(sizes) >= 2:
        first, last = scans[(sizes[0], me)], scans[(sizes[-1], me)]
        data_added_mb = (sizes[-1] - sizes[0]) * args.item_bytes / 2**20
        rise_growth_mb = last["rss_rise_mb"] - first["rss_rise_mb"]
        met["Scan memory"] = rise_growth_mb < FLAT_RISE_OF_DATA_MAX * data_added_mb
        memory = (
            "scan's rise " + " / ".join(f"{scans[(n, me)]['rss_rise_mb']:.1f}" for n in sizes)
            + " MB at " + " / ".join(f"{n:,}" for n in sizes) + f" items ({rise_growth_mb:+.1f} MB while the data grew "
            + f"{data_added_mb:,.0f} MB); max RSS " + " / ".join(f"{scans[(n, me)]['rss_max_mb']:,.0f}" for n in sizes)
            + " MB"
        )
    else:
        met["Scan memory"], memory = None, "needs two table sizes"
    rows = [
        (f"embedded Query ≥ {GOAL_RATIO:g}× dynalite (pages/s)", _ratio_text(query_ratio), met["Query"]),
        (f"embedded Scan ≥ {GOAL_RATIO:g}× dynalite (items/s, {full:,} items)", _ratio_text(scan_ratio), met["Scan"]),
        (f"Scan memory flat (the scan's RSS rise grows < {FLAT_RISE_OF_DATA_MAX:.0%} of the data added)", memory,
         met["Scan memory"]),
    ]  # fmt: skip
    lines = _header(["goal", "measured", "met?"], 2)
    lines += [f"| {goal} | {measured} | {'—' if ok is None else 'yes' if ok else 'no'} |" for goal, measured, ok in rows]
    return "\n".join(lines), met


def _ratio(mine: float | None, theirs: float | None) -> float | None:
    return mine / theirs if mine is not None and theirs else None


def _ratio_text(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}×"


# --- main ------------------------------------------------------------------------------------------


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
    _say(f"servers on CPU {server_cpus or 'any'}, client on CPU {client_cpus or 'any'}; logs in {log_dir}")
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
                _say(f"skipping {name}: {error}")
        if not bench.running:
            _say("no target could be started")
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
                    _say(f"profiling {PROFILED_TARGET} {op} (py-spy, raw stacks in {raw_path})")
                    summary = profiled(target, raw_path, run_op)
                    if summary is not None:
                        profiles[op] = {"raw": str(raw_path), **summary}
    except (KeyboardInterrupt, SystemExit):
        _say("interrupted: stopping the targets, no results written")
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
